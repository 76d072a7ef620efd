import SLAT
import SLATArm64

/// `merge`: a mapping of smallest pages over the range (untimed) merged
/// into blocks by one `map` with block leaves: at each block the table
/// entry is locked (the anchor), the table of pages detached, the block's
/// translations invalidated once, the block written. Timed: the call, which
/// settles its own flush and frees (exclusive) or retires (shared) the
/// tables. Verified: per block exactly one VMID-wide invalidation (a TLB
/// without range invalidation) or exactly one range invalidation and none
/// VMID-wide (`merge-range-tlbi`, `merge-shared-range-tlbi`: a TLB with
/// FEAT_TLBIRANGE), one freed table, no page-level invalidation, every
/// page translated by a block. The report's TLB column gives both counts.
enum MergeWorkload {
    static func run(
        _ format: StageTwoFormat, plan: FormatPlan, mode: WalkMode, rangeInvalidation: Bool = false
    ) throws(BenchFailure) -> BenchResult {
        let metric: Metric = switch (mode, rangeInvalidation) {
        case (.exclusive, false): .merge
        case (.shared, false): .mergeShared
        case (.exclusive, true): .mergeRange
        case (.shared, true): .mergeSharedRange
        }
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        var blocks = 0
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan, mode: mode, rangeInvalidation: rangeInvalidation, blocks: &blocks)
        }
        return BenchResult(metric: metric, format: plan.format, size: plan.geometry.size, ops: blocks, samples: samples)
    }

    static func once(
        _ format: StageTwoFormat, plan: FormatPlan, mode: WalkMode, rangeInvalidation: Bool, blocks: inout Int
    ) throws(BenchFailure) -> Sample {
        let name = "\(plan.format.rawValue) merge"
        let fixture = try StageTwoBenchFixture(
            format: format, geometry: plan.geometry, name: name, rangeInvalidation: rangeInvalidation)
        try fixture.mapWholeRange(maximumLevel: 0)
        blocks = fixture.blockCount
        let before = fixture.snapshot()
        let start = MonotonicClock.now()
        let result: StageTwoMapResult
        do {
            result = try timedMerge(fixture, plan: plan, mode: mode)
        } catch {
            throw .library("\(name): map", error)
        }
        let end = MonotonicClock.now()
        fixture.mmu.table.reclaimer.synchronize()
        let counters = OperationCounters(from: before, to: fixture.snapshot())
        let (vmidWide, ranges) = rangeInvalidation ? (0, blocks) : (blocks, 0)
        guard counters.tlbContexts == vmidWide, counters.tlbRanges == ranges, counters.tlbAddresses == 0,
              result.freedTablePages == blocks, counters.tablesFreed == blocks else {
            throw .verification("\(name): \(counters.tlbContexts) VMID-wide, \(counters.tlbRanges) range and \(counters.tlbAddresses) page invalidations, \(result.freedTablePages) tables unlinked and \(counters.tablesFreed) freed for \(blocks) blocks")
        }
        try fixture.verify(level: 1, after: "merge")
        return Sample(nanoseconds: end &- start, counters: counters)
    }

    /// The timed call, kept out of line so that a profile can count it
    /// alone (`valgrind --tool=callgrind --toggle-collect='*timedMerge*'`).
    @inline(never)
    static func timedMerge(
        _ fixture: StageTwoBenchFixture, plan: FormatPlan, mode: WalkMode
    ) throws(SLATError) -> StageTwoMapResult {
        try fixture.mmu.map(plan.geometry.range, to: HostPhysicalAddress(plan.geometry.outputBase),
                            attributes: MappingGeometry.attributes, maximumLevel: 1, mode: mode,
                            context: fixture.contexts[0])
    }
}
