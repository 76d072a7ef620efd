import SLAT
import SLATArm64

/// `split`: a mapping of blocks over the range (untimed) split into smallest
/// pages, either by one `map` with page leaves (each block broken — locked,
/// invalidated by address at its level — and replaced by a filled table)
/// or by `splitBlocks` (a fully populated unlinked table per block from a
/// page cache topped up beforehand, linked with one exchange, break-before-
/// make). Timed: the call. Verified: one by-address invalidation per block
/// at least, every page translated by a page leaf to the same output.
enum SplitWorkload {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, eager: Bool) throws(BenchFailure) -> BenchResult {
        let metric: Metric = eager ? .splitEager : .split
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        var blocks = 0
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan, eager: eager, blocks: &blocks)
        }
        return BenchResult(metric: metric, format: plan.format, size: plan.geometry.size, ops: blocks, samples: samples)
    }

    static func once(_ format: StageTwoFormat, plan: FormatPlan, eager: Bool, blocks: inout Int) throws(BenchFailure) -> Sample {
        let name = "\(plan.format.rawValue) \(eager ? "split-eager" : "split")"
        let fixture = try StageTwoBenchFixture(format: format, geometry: plan.geometry, name: name)
        try fixture.mapWholeRange(maximumLevel: 1)
        blocks = fixture.blockCount
        let context = fixture.contexts[0]
        if eager {
            do {
                try context.pageCache.topUp(from: fixture.arena, toAtLeast: blocks)
            } catch {
                throw .library("\(name): topping up the page cache", error)
            }
        }
        let before = fixture.snapshot()
        let start = MonotonicClock.now()
        let split: Int
        do {
            split = try timedSplit(fixture, plan: plan, eager: eager, context: context, blocks: blocks)
        } catch {
            throw .library("\(name): split", error)
        }
        let end = MonotonicClock.now()
        guard split == blocks else { throw .verification("\(name): split \(split) of \(blocks) blocks") }
        let counters = OperationCounters(from: before, to: fixture.snapshot())
        guard counters.tlbAddresses >= blocks, counters.tlbContexts == 0 else {
            throw .verification("\(name): \(counters.tlbAddresses) by-address and \(counters.tlbContexts) VMID-wide invalidations for \(blocks) blocks")
        }
        try fixture.verify(level: 0, after: "split")
        return Sample(nanoseconds: end &- start, counters: counters)
    }

    /// The timed call, kept out of line so that a profile can count it
    /// alone (`valgrind --tool=callgrind --collect-atstart=no
    /// --toggle-collect='*SplitWorkloadO*timed*'`). Returns the blocks split
    /// (-1: the eager split stopped early). Each form has its own function,
    /// so that a change to one does not move the other's code.
    static func timedSplit(
        _ fixture: StageTwoBenchFixture, plan: FormatPlan, eager: Bool, context: PageTableContext, blocks: Int
    ) throws(SLATError) -> Int {
        if eager { return try timedEagerSplit(fixture, plan: plan, context: context) }
        try timedMapSplit(fixture, plan: plan, context: context)
        return blocks
    }

    @inline(never)
    static func timedEagerSplit(
        _ fixture: StageTwoBenchFixture, plan: FormatPlan, context: PageTableContext
    ) throws(SLATError) -> Int {
        let progress = try fixture.mmu.splitBlocks(in: plan.geometry.range, mode: .exclusive, context: context)
        return progress.isComplete ? progress.blocksSplit : -1
    }

    @inline(never)
    static func timedMapSplit(
        _ fixture: StageTwoBenchFixture, plan: FormatPlan, context: PageTableContext
    ) throws(SLATError) {
        try fixture.mmu.map(plan.geometry.range, to: HostPhysicalAddress(plan.geometry.outputBase),
                            attributes: MappingGeometry.attributes, maximumLevel: 0, context: context)
    }
}
