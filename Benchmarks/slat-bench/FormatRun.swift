import SLAT
import SLATArm64

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
        // Stage-2 MMU workloads: only for the stage-2 formats.
        if let stageTwo = format as? StageTwoFormat {
            results += try StageTwoWorkloads.run(stageTwo, plan: plan, metrics: metrics)
        }
        return results
    }
}
