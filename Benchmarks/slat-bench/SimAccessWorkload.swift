import SLAT
import SLATSim

/// `sim-access`: SLATSim's vCPU threads (``VCPURunner``) make random reads
/// and writes (30 %) over a mapping of smallest pages through their
/// simulated TLBs and the hardware walker, with every detector on. Shows
/// what the simulated machine costs per access, on 1 and `--threads`
/// threads, for people who test their own tables with it. Timed: the run
/// (thread start to the last thread's end); verified: no access faulted
/// and no detector reported.
enum SimAccessWorkload {
    /// Accesses each vCPU makes per repeat.
    static let accessesPerVCPU = 1 << 17

    static func run<Format: PageTableFormat>(_ format: Format, plan: FormatPlan, threads: Int) throws(BenchFailure) -> BenchResult {
        let metric: Metric = threads == 1 ? .simAccess : .simAccessThreads
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let fixture = try TableFixture(format: format, geometry: plan.geometry, name: plan.format.rawValue)
        try fixture.mapWholeRange()
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(fixture, plan: plan, threads: threads)
        }
        return BenchResult(metric: metric, format: plan.format, size: plan.geometry.size,
                           ops: accessesPerVCPU * threads, samples: samples, threads: threads)
    }

    /// One run on fresh TLBs over the mapped tables.
    static func once<Format: PageTableFormat>(_ fixture: TableFixture<Format>, plan: FormatPlan,
                                              threads: Int) throws(BenchFailure) -> Sample {
        let log = SimulationLog()
        let tlb = SimulatedContextTLB(format: fixture.format, vcpuCount: threads, log: log)
        let walker = HardwareWalker(table: fixture.table)
        tlb.attach(walker)
        let runner = VCPURunner(walker: walker, tlb: tlb)
        let stream = AccessStream(range: plan.geometry.range, pattern: .random, mix: AccessMix(writePercent: 30),
                                  sharing: .overlapping, accessesPerVCPU: accessesPerVCPU, step: plan.geometry.pageSize)
        let start = MonotonicClock.now()
        let result = runner.run(stream, seed: 0x51A7) { _, _ in .stop }
        let end = MonotonicClock.now()
        let total = result.total
        guard !result.stopped, total.faults == 0, total.accesses == accessesPerVCPU * threads else {
            throw .verification("\(plan.format.rawValue) sim-access: \(total.faults) faults, \(total.accesses) accesses")
        }
        guard log.isEmpty else { throw .verification("\(plan.format.rawValue) sim-access: \(log.summary)") }
        return Sample(nanoseconds: end &- start, counters: .unmeasured)
    }
}
