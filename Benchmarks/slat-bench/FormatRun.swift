import SLAT
import SLATArm64
import SLATx86

/// Runs the selected metrics on one format, as a ``FormatVisitor`` so that
/// every workload is specialised for the concrete format type.
struct FormatRun: FormatVisitor {
    /// The format, the mapping and the repeats.
    let plan: FormatPlan
    /// The metrics to measure, in report order.
    let metrics: [Metric]

    func visit<Format: PageTableFormat>(_ format: Format) throws(BenchFailure) -> [BenchResult] {
        var results: [BenchResult] = []
        if metrics.contains(.mapPages) {
            results.append(try MapPagesWorkload.run(format, plan: plan))
        }
        let lookups = metrics.filter { $0.workload == .translate }
        if !lookups.isEmpty {
            results += try TranslateWorkload.run(format, plan: plan, metrics: lookups)
        }
        if metrics.contains(.wrprotect) {
            results.append(try WriteProtectWorkload.run(format, plan: plan))
        }
        if metrics.contains(.unmap) {
            results.append(try UnmapWorkload.run(format, plan: plan))
        }
        if metrics.contains(.simAccess) {
            results.append(try SimAccessWorkload.run(format, plan: plan, threads: 1))
        }
        if metrics.contains(.simAccessThreads) && plan.threads > 1 {
            results.append(try SimAccessWorkload.run(format, plan: plan, threads: plan.threads))
        }
        // Backend workloads: the TDP MMU on EPT, the stage-2 MMU on stage 2.
        if let ept = format as? ExtendedPageTableFormat {
            results += try TDPWorkloads.run(ept, plan: plan, metrics: metrics)
        }
        if let stageTwo = format as? StageTwoFormat {
            results += try StageTwoWorkloads.run(stageTwo, plan: plan, metrics: metrics)
        }
        return results
    }
}
