import SLATCore

/// What one ``EagerSplitEngine`` run did.
@frozen
public struct EagerSplitReport: Sendable, Hashable {
    /// Huge leaves replaced by tables (a 1 GiB leaf split to 4 KiB one level
    /// at a time counts 1 + 512).
    public var leavesSplit: Int = 0
    /// Table pages linked by those splits.
    public var tablePagesLinked: Int = 0
    /// Lock drops to refill the split cache.
    public var refills: Int = 0
    /// Lock drops for ``EagerSplitPolicy/yieldInterval`` or
    /// ``EagerSplitPolicy/chunkSize``.
    public var yields: Int = 0
    /// Exchanges lost to other threads (each retried from the new value).
    public var lostRaces: Int = 0
    /// Set when the run stopped at the minimum-free threshold: the address
    /// (in the last address space walked) where splitting stopped.
    public var stoppedAt: GuestPhysicalAddress?

    /// An empty report.
    @inlinable public init() {}

    /// Whether the whole range was walked.
    @inlinable public var isComplete: Bool { stoppedAt == nil }
}
