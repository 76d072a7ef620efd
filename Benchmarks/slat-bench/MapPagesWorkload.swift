import SLAT

/// `map-pages`: one `map` call over the whole range with the smallest page
/// (`maximumLevel: 0`), exclusive, into a fresh pre-faulted arena and an
/// empty table each repeat. Timed: the call and settling its batch.
enum MapPagesWorkload {
    /// Runs the repeats on `format` and verifies every one.
    static func run<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> BenchResult {
        plan.progress.starting(Metric.mapPages.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan)
        }
        return BenchResult(metric: .mapPages, format: plan.format, size: plan.geometry.size,
                           ops: plan.geometry.pageCount, samples: samples)
    }

    /// One repeat: a fresh table, the timed map, then the checks.
    static func once<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> Sample {
        let fixture = try TableFixture(format: format, geometry: plan.geometry, name: plan.format.rawValue)
        let table = fixture.table
        let range = plan.geometry.range
        let output = HostPhysicalAddress(plan.geometry.outputBase)
        let attributes = MappingGeometry.attributes
        var batch = TLBFlushBatch()
        let before = fixture.snapshot()

        let start = MonotonicClock.now()
        do {
            try table.map(range, to: output, attributes: attributes, maximumLevel: 0, mode: .exclusive,
                          context: fixture.context, batch: &batch, tlb: fixture.tlb)
        } catch {
            throw .library("\(plan.format.rawValue) map-pages: map", error)
        }
        table.settle(batch, tlb: fixture.tlb, mode: .exclusive)
        let end = MonotonicClock.now()

        let counters = OperationCounters(from: before, to: fixture.snapshot())
        try fixture.verifyEveryPage(permissions: attributes.permissions, after: "map-pages")
        try fixture.verifyReachableTables(belowRoot: plan.geometry.tablePagesBelowRoot(for: format), after: "map-pages")
        return Sample(nanoseconds: end &- start, counters: counters)
    }
}
