import SLATCore

/// What ``StageTwoPageTable/map(_:to:attributes:maximumLevel:mode:context:refusingPermissionOnlyChanges:refill:)``
/// did.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoMapResult: Hashable, Sendable {
    /// Whether the range was mapped, or a permission-only change of a live
    /// leaf was refused (the caller retries the guest access).
    public var outcome: MapOutcome
    /// Table pages the map unlinked (the subtrees that table→block merges
    /// replaced) and freed after their invalidation — at once in an
    /// exclusive walk, through the reclaimer in a shared one.
    public var freedTablePages: Int

    /// A result.
    @inlinable
    public init(outcome: MapOutcome, freedTablePages: Int) {
        self.outcome = outcome
        self.freedTablePages = freedTablePages
    }
}
