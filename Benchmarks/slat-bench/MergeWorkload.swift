import SLAT
import SLATArm64

/// `merge`: a mapping of smallest pages over the range (untimed) merged
/// into blocks by one `map` with block leaves: at each block the table
/// entry is locked (the anchor), the table of pages detached, the VMID
/// invalidated once, the block written. Timed: the call, which settles its
/// own flush and frees (exclusive) or retires (shared) the tables. Verified:
/// exactly one VMID-wide invalidation and one freed table per block, no
/// page-level invalidation, every page translated by a block.
enum MergeWorkload {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, mode: WalkMode) throws(BenchFailure) -> BenchResult {
        let metric: Metric = mode == .exclusive ? .merge : .mergeShared
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        var blocks = 0
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan, mode: mode, blocks: &blocks)
        }
        return BenchResult(metric: metric, format: plan.format, size: plan.geometry.size, ops: blocks, samples: samples)
    }

    static func once(_ format: StageTwoFormat, plan: FormatPlan, mode: WalkMode, blocks: inout Int) throws(BenchFailure) -> Sample {
        let name = "\(plan.format.rawValue) merge"
        let fixture = try StageTwoBenchFixture(format: format, geometry: plan.geometry, name: name)
        try fixture.mapWholeRange(maximumLevel: 0)
        blocks = fixture.blockCount
        let before = fixture.snapshot()
        let start = MonotonicClock.now()
        let result: StageTwoMapResult
        do {
            result = try fixture.mmu.map(plan.geometry.range, to: HostPhysicalAddress(plan.geometry.outputBase),
                                         attributes: MappingGeometry.attributes, maximumLevel: 1, mode: mode,
                                         context: fixture.contexts[0])
        } catch {
            throw .library("\(name): map", error)
        }
        let end = MonotonicClock.now()
        fixture.mmu.table.reclaimer.synchronize()
        let counters = OperationCounters(from: before, to: fixture.snapshot())
        guard counters.tlbContexts == blocks, counters.tlbAddresses == 0, result.freedTablePages == blocks,
              counters.tablesFreed == blocks else {
            throw .verification("\(name): \(counters.tlbContexts) VMID-wide and \(counters.tlbAddresses) page invalidations, \(result.freedTablePages) tables unlinked and \(counters.tablesFreed) freed for \(blocks) blocks")
        }
        try fixture.verify(level: 1, after: "merge")
        return Sample(nanoseconds: end &- start, counters: counters)
    }
}
