import SLAT
import SLATx86

/// Runs the selected x86 TDP MMU metrics (`fault`, `dirty-log`, `zap`,
/// `age`) on an EPT format; the stage-2 formats have none. Each workload
/// builds its own VM (``TDPFixture``) per repeat; its figures become
/// ``BenchResult``s like every other workload's.
enum TDPWorkloads {
    static func run(_ format: ExtendedPageTableFormat, plan: FormatPlan, metrics: [Metric]) throws(BenchFailure) -> [BenchResult] {
        let size = plan.geometry.size
        let wanted = metrics.filter(\.workload.isTDPMMU)
        guard !wanted.isEmpty else { return [] }
        guard size % (1 << 21) == 0 else {
            StandardError.writeLine("slat-bench: \(plan.format.rawValue) TDP MMU workloads: skipped, --size \(ByteSize.format(size)) is not a multiple of 2M")
            return []
        }
        var options = TDPOptions(format: format)
        options.size = size
        options.repeats = plan.repeats
        options.dirtyMode = plan.dirtyMode ?? (format.accessedDirtyEnabled ? .dirtyBit : .writeProtect)
        if options.dirtyMode == .dirtyBit && !format.accessedDirtyEnabled {
            throw .usage("--dirty-mode dbit needs EPT A/D flags (format ept4-ad), not \(plan.format.rawValue)")
        }
        var results: [BenchResult] = []
        func report(_ metric: Metric, _ result: TDPResult, threads: Int = 1) {
            results.append(BenchResult(
                metric: metric, format: plan.format, size: size, ops: result.operations,
                samples: result.samples.map { Sample(nanoseconds: $0, counters: result.counters) }, threads: threads))
        }
        if wanted.contains(.fault) || wanted.contains(.faultCPUTime) {
            plan.progress.starting(Metric.fault.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            let figures = try TDPFaultWorkload.run(options)
            if wanted.contains(.fault) { report(.fault, figures[0]) }
            if wanted.contains(.faultCPUTime) { report(.faultCPUTime, figures[1]) }
        }
        if wanted.contains(.faultThreads) && plan.threads > 1 {
            var threaded = options
            threaded.threads = plan.threads
            plan.progress.starting(Metric.faultThreads.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            report(.faultThreads, try TDPFaultWorkload.run(threaded)[0], threads: plan.threads)
        }
        if wanted.contains(.faultThreadsExclusive) {
            var baseline = options
            baseline.threads = plan.threads
            baseline.exclusiveLock = true
            plan.progress.starting(Metric.faultThreadsExclusive.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            report(.faultThreadsExclusive, try TDPFaultWorkload.run(baseline)[0], threads: plan.threads)
        }
        if wanted.contains(.faultThreadsSeparateVMs) && plan.threads > 1 {
            var ceiling = options
            ceiling.threads = plan.threads
            ceiling.separateVMs = true
            plan.progress.starting(Metric.faultThreadsSeparateVMs.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            report(.faultThreadsSeparateVMs, try TDPFaultWorkload.run(ceiling)[0], threads: plan.threads)
        }
        let phases = wanted.filter { $0.workload == .dirtyLog }
        if !phases.isEmpty {
            plan.progress.starting(Workload.dirtyLog.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            let figures = try TDPDirtyLogWorkload.run(options)
            for (metric, figure) in zip(Workload.dirtyLog.metrics, figures) where phases.contains(metric) {
                report(metric, figure)
            }
        }
        if wanted.contains(.zap) {
            plan.progress.starting(Metric.zap.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            report(.zap, try TDPZapWorkload.run(options)[0])
        }
        let aging = wanted.filter { $0.workload == .age }
        if !aging.isEmpty {
            plan.progress.starting(Workload.age.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            let figures = try TDPAgeWorkload.run(options)
            for (metric, figure) in zip(Workload.age.metrics, figures) where aging.contains(metric) {
                report(metric, figure)
            }
        }
        let splitting = wanted.filter { $0.workload == .eagerSplit }
        if !splitting.isEmpty {
            plan.progress.starting(Workload.eagerSplit.rawValue, on: plan.format, repeats: plan.repeats, size: size)
            results += try EagerSplitWorkload.results(
                plan: plan, metrics: splitting, size: size,
                twoMegabyte: { () throws(BenchFailure) in try EagerSplitWorkload.ept(options, hostSize: .size2M, mode: options.dirtyMode) },
                oneGigabyte: { () throws(BenchFailure) in try EagerSplitWorkload.ept(options, hostSize: .size1G, mode: options.dirtyMode) })
        }
        return results
    }
}

extension Workload {
    /// Whether the workload is one of the x86 TDP MMU ones (EPT formats only).
    var isTDPMMU: Bool {
        switch self {
        case .fault, .dirtyLog, .zap, .age, .eagerSplit: true
        default: false
        }
    }
}
