import SLAT
import SLATArm64

/// Runs the selected stage-2 MMU metrics (`fault`, `merge`, `split`,
/// `kvm-page-table-test`) on a stage-2 format; the other formats have none.
enum StageTwoWorkloads {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, metrics: [Metric]) throws(BenchFailure) -> [BenchResult] {
        var results: [BenchResult] = []
        // Merges and splits work on whole blocks; the fault workload on any size.
        let blockSize = format.entrySize(atLevel: 1)
        let wholeBlocks = plan.geometry.size % blockSize == 0
        for metric in metrics {
            if !wholeBlocks && metric.workload != .fault && metric.workload.isStageTwoMMU {
                StandardError.writeLine("slat-bench: \(plan.format.rawValue) \(metric.rawValue): skipped, --size \(ByteSize.format(plan.geometry.size)) is not a multiple of the \(ByteSize.format(blockSize)) block")
                continue
            }
            switch metric {
            case .fault: results.append(try FaultWorkload.run(format, plan: plan, threads: 1))
            case .faultThreads where plan.threads > 1:
                results.append(try FaultWorkload.run(format, plan: plan, threads: plan.threads))
            case .faultThreadsSeparateVMs where plan.threads > 1:
                results.append(try FaultWorkload.run(format, plan: plan, threads: plan.threads, separateVMs: true))
            case .merge: results.append(try MergeWorkload.run(format, plan: plan, mode: .exclusive))
            case .mergeShared: results.append(try MergeWorkload.run(format, plan: plan, mode: .shared))
            case .mergeRange:
                results.append(try MergeWorkload.run(format, plan: plan, mode: .exclusive, rangeInvalidation: true))
            case .mergeSharedRange:
                results.append(try MergeWorkload.run(format, plan: plan, mode: .shared, rangeInvalidation: true))
            case .split: results.append(try SplitWorkload.run(format, plan: plan, eager: false))
            case .splitEager: results.append(try SplitWorkload.run(format, plan: plan, eager: true))
            default: break
            }
        }
        let splitting = metrics.filter { $0.workload == .eagerSplit }
        if !splitting.isEmpty && plan.format == .stageTwo4K && wholeBlocks {
            let size = plan.geometry.size
            let repeats = plan.repeats
            plan.progress.starting(Workload.eagerSplit.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
            results += try EagerSplitWorkload.results(
                plan: plan, metrics: splitting, size: plan.geometry.size,
                twoMegabyte: { () throws(BenchFailure) in try EagerSplitWorkload.stageTwo(size: size, repeats: repeats, hostSize: .size2M) },
                oneGigabyte: { () throws(BenchFailure) in try EagerSplitWorkload.stageTwo(size: size, repeats: repeats, hostSize: .size1G) })
        }
        let stages = metrics.filter { $0.workload == .kvmPageTableTest }
        if !stages.isEmpty && wholeBlocks {
            results += try KVMPageTableTestWorkload.run(format, plan: plan).filter { stages.contains($0.metric) }
        }
        return results
    }
}

extension Workload {
    /// Whether the workload is one of the stage-2 MMU ones (stage-2 formats only).
    var isStageTwoMMU: Bool {
        switch self {
        case .fault, .merge, .split, .kvmPageTableTest: true
        default: false
        }
    }
}
