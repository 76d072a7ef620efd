import SLATCore

/// How far ``StageTwoPageTable/splitBlocks(in:leafLevel:mode:context:)`` got.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoSplitProgress: Hashable, Sendable {
    /// Blocks replaced by fully populated tables.
    public var blocksSplit: Int
    /// Where to resume when the page cache ran short (`nil`: the range is
    /// done). The caller drops the MMU lock, tops the cache up to
    /// ``pagesWanted`` pages and calls again from here.
    public var resumeAddress: GuestPhysicalAddress?
    /// The cache size the next block needs (0 when done).
    public var pagesWanted: Int

    /// A progress report.
    @inlinable
    public init(blocksSplit: Int, resumeAddress: GuestPhysicalAddress?, pagesWanted: Int) {
        self.blocksSplit = blocksSplit
        self.resumeAddress = resumeAddress
        self.pagesWanted = pagesWanted
    }

    /// Whether the whole range was split.
    @inlinable public var isComplete: Bool { resumeAddress == nil }
}
