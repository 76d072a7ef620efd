import SLAT

/// `wrprotect`: `changePermissions(range, revoke: .write)`, exclusive, over
/// a fresh mapping of smallest pages each repeat. Timed: the call and
/// settling its batch (the flush the revoke owes).
enum WriteProtectWorkload {
    /// Runs the repeats on `format` and verifies every one.
    static func run<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> BenchResult {
        plan.progress.starting(Metric.wrprotect.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan)
        }
        return BenchResult(metric: .wrprotect, format: plan.format, size: plan.geometry.size,
                           ops: plan.geometry.pageCount, samples: samples)
    }

    /// One repeat: a fresh mapping (untimed), the timed revoke, then the checks.
    static func once<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> Sample {
        let fixture = try TableFixture(format: format, geometry: plan.geometry, name: plan.format.rawValue)
        try fixture.mapWholeRange()
        let table = fixture.table
        let range = plan.geometry.range
        var batch = TLBFlushBatch()
        let before = fixture.snapshot()

        let start = MonotonicClock.now()
        do {
            try table.changePermissions(range, revoke: .write, mode: .exclusive,
                                        context: fixture.context, batch: &batch, tlb: fixture.tlb)
        } catch {
            throw .library("\(plan.format.rawValue) wrprotect: changePermissions", error)
        }
        table.settle(batch, tlb: fixture.tlb, mode: .exclusive)
        let end = MonotonicClock.now()

        let counters = OperationCounters(from: before, to: fixture.snapshot())
        let expected = MappingGeometry.attributes.permissions.subtracting(.write)
        try fixture.verifyEveryPage(permissions: expected, after: "wrprotect")
        guard counters.tlbTotal > 0 else {
            throw .verification("\(plan.format.rawValue) wrprotect: write was revoked but no TLB invalidation was issued")
        }
        return Sample(nanoseconds: end &- start, counters: counters)
    }
}
