import SLAT

/// `unmap`: `unmap(range)`, exclusive, of a fresh mapping of smallest pages
/// each repeat. Timed: the call and settling its batch, which flushes and
/// frees the unlinked tables.
enum UnmapWorkload {
    /// Runs the repeats on `format` and verifies every one.
    static func run<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> BenchResult {
        plan.progress.starting(Metric.unmap.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan)
        }
        return BenchResult(metric: .unmap, format: plan.format, size: plan.geometry.size,
                           ops: plan.geometry.pageCount, samples: samples)
    }

    /// One repeat: a fresh mapping (untimed), the timed unmap, then the checks.
    static func once<Format: PageTableFormat>(_ format: Format, plan: FormatPlan) throws(BenchFailure) -> Sample {
        let fixture = try TableFixture(format: format, geometry: plan.geometry, name: plan.format.rawValue)
        try fixture.mapWholeRange()
        let table = fixture.table
        let geometry = plan.geometry
        var batch = TLBFlushBatch()
        let before = fixture.snapshot()

        let start = MonotonicClock.now()
        do {
            try table.unmap(geometry.range, mode: .exclusive, context: fixture.context, batch: &batch, tlb: fixture.tlb)
        } catch {
            throw .library("\(plan.format.rawValue) unmap: unmap", error)
        }
        table.settle(batch, tlb: fixture.tlb, mode: .exclusive)
        let end = MonotonicClock.now()

        let counters = OperationCounters(from: before, to: fixture.snapshot())
        let name = plan.format.rawValue
        for probe in [geometry.guestBase, geometry.guestBase + geometry.size / 2, geometry.guestEnd - 1] {
            if case .mapped = table.translate(GuestPhysicalAddress(probe)) {
                throw .verification("\(name) unmap: 0x\(String(probe, radix: 16)) is still mapped")
            }
        }
        try fixture.verifyReachableTables(belowRoot: 0, after: "unmap")
        fixture.context.pageCache.release(to: fixture.arena)
        guard fixture.arena.allocatedPageCount == format.rootTableCount else {
            throw .verification("\(name) unmap: \(fixture.arena.allocatedPageCount) table pages still allocated, expected only the \(format.rootTableCount) root page(s)")
        }
        guard counters.tlbTotal > 0 else {
            throw .verification("\(name) unmap: translations were removed but no TLB invalidation was issued")
        }
        return Sample(nanoseconds: end &- start, counters: counters)
    }
}
