import SLAT
import SLATx86

/// `tdp dirty-log`, like KVM's dirty_log_perf_test: a 2 MiB-backed range is
/// populated by write faults (2 MiB leaves), dirty logging enabled, every
/// 4 KiB page written once (write faults: the huge leaves split on the full
/// path), the log fetched and cleared, logging disabled (huge pages
/// recovered in place). Time per phase.
enum TDPDirtyLogWorkload {
    static func run(_ options: TDPOptions) throws(BenchFailure) -> [TDPResult] {
        var phases: [[UInt64]] = Array(repeating: [], count: 6)
        var phaseCounters = Array(repeating: OperationCounters(), count: 6)
        var pages = 0
        for repeatIndex in 0...options.repeats {
            let fixture = try TDPFixture(format: options.format, size: options.size, hostSize: .size2M, threads: 1)
            let vcpu = fixture.contexts[0]
            let mmu = fixture.mmu
            let frames = fixture.frameCount
            pages = Int(frames)
            var times: [UInt64] = []
            var counters: [OperationCounters] = []
            var before = fixture.snapshot()
            var start = MonotonicClock.now()
            // One phase: its time and what it asked of the TLB and the arena.
            func begin() {
                before = fixture.snapshot()
                start = MonotonicClock.now()
            }
            func end() {
                times.append(MonotonicClock.now() &- start)
                counters.append(OperationCounters(from: before, to: fixture.snapshot()))
            }
            begin()
            try fixture.fault(0..<frames, access: .write, step: 512, vcpu: vcpu)
            end()
            do {
                begin()
                try mmu.enableDirtyLogging(memslot: TDPFixture.memslotID, mode: options.dirtyMode)
                end()
                begin()
                try fixture.fault(0..<frames, access: .write, permission: true, vcpu: vcpu)
                end()
                begin()
                let words = try mmu.getAndClearDirtyLog(memslot: TDPFixture.memslotID)
                end()
                let marked = words.reduce(0) { $0 + $1.nonzeroBitCount }
                guard marked == pages else {
                    throw BenchFailure.verification("tdp dirty-log: \(marked) of \(pages) written pages in the log")
                }
                // A second pass: every page is write-protected again, so the
                // writes take the fast path (the steady state of migration).
                begin()
                try fixture.fault(0..<frames, access: .write, permission: true, vcpu: vcpu)
                end()
                begin()
                try mmu.disableDirtyLogging(memslot: TDPFixture.memslotID)
                end()
            } catch let error as SLATError {
                throw .library("tdp dirty-log", error)
            } catch let error as BenchFailure {
                throw error
            } catch {
                throw .verification("tdp dirty-log: \(error)")
            }
            guard case .mapped(let translation) = try library("table", { () throws(SLATError) in try mmu.table() }).translate(fixture.address(ofFrame: 0)),
                  translation.level == 1 else {
                throw .verification("tdp dirty-log: huge pages not recovered after disable")
            }
            if repeatIndex > 0 { for (index, time) in times.enumerated() { phases[index].append(time) } }
            phaseCounters = counters
            mmu.teardown()
        }
        let hugeCount = pages / 512
        let mode = options.dirtyMode == .writeProtect ? "wp" : "dbit"
        return [
            TDPResult(name: "dirty-log populate (2M write faults)", operations: hugeCount, unit: "fault", samples: phases[0], counters: phaseCounters[0]),
            TDPResult(name: "dirty-log enable (\(mode))", operations: pages, unit: "page", samples: phases[1], counters: phaseCounters[1]),
            TDPResult(name: "dirty-log first write pass (splitting faults)", operations: pages, unit: "fault", samples: phases[2], counters: phaseCounters[2]),
            TDPResult(name: "dirty-log get+clear", operations: pages, unit: "page", samples: phases[3], counters: phaseCounters[3]),
            TDPResult(name: "dirty-log second write pass (\(mode == "wp" ? "fast faults" : "spurious"))", operations: pages, unit: "fault", samples: phases[4], counters: phaseCounters[4]),
            TDPResult(name: "dirty-log disable + huge-page recovery", operations: pages, unit: "page", samples: phases[5], counters: phaseCounters[5]),
        ]
    }
}
