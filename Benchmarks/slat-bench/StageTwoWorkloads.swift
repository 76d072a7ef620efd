import SLAT
import SLATArm64

/// Runs the selected stage-2 MMU metrics (`fault`, `merge`, `split`,
/// `kvm-page-table-test`) on a stage-2 format; the other formats have none.
enum StageTwoWorkloads {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, metrics: [Metric]) throws(BenchFailure) -> [BenchResult] {
        var results: [BenchResult] = []
        for metric in metrics {
            switch metric {
            case .fault: results.append(try FaultWorkload.run(format, plan: plan, threads: 1))
            case .faultTwoThreads: results.append(try FaultWorkload.run(format, plan: plan, threads: 2))
            case .merge: results.append(try MergeWorkload.run(format, plan: plan, mode: .exclusive))
            case .mergeShared: results.append(try MergeWorkload.run(format, plan: plan, mode: .shared))
            case .split: results.append(try SplitWorkload.run(format, plan: plan, eager: false))
            case .splitEager: results.append(try SplitWorkload.run(format, plan: plan, eager: true))
            default: break
            }
        }
        let stages = metrics.filter { $0.workload == .kvmPageTableTest }
        if !stages.isEmpty {
            results += try KVMPageTableTestWorkload.run(format, plan: plan).filter { stages.contains($0.metric) }
        }
        return results
    }
}
