/// What one simulated vCPU TLB has done since it was created.
@frozen
public struct TLBStatistics: Hashable, Sendable {
    /// Accesses served by a cached entry.
    public var hits: Int = 0
    /// Accesses that had to walk the tables.
    public var misses: Int = 0
    /// Entries filled after a walk.
    public var fills: Int = 0
    /// Entries evicted for capacity.
    public var evictions: Int = 0
    /// Invalidation requests received (any kind).
    public var invalidationsReceived: Int = 0
    /// Entries removed by invalidations.
    public var entriesInvalidated: Int = 0

    /// All zero.
    @inlinable public init() {}
}
