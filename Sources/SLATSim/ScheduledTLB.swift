import SLATCore

/// A `TLB` wrapper that yields to a ``ControlledScheduler`` before every
/// invalidation and forwards it unchanged: a thin forwarder, so the
/// invalidation's position among the other threads' steps is explored.
public final class ScheduledTLB<Base: TLB>: TLB {
    /// The TLB invalidations go to.
    public let base: Base
    /// The scheduler every invalidation yields to.
    public let scheduler: ControlledScheduler

    /// Wraps `base` for `scheduler`.
    public init(wrapping base: Base, scheduler: ControlledScheduler) {
        self.base = base
        self.scheduler = scheduler
    }

    /// Yields, then invalidates `address` in `base`.
    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        scheduler.yield(at: .tlbInvalidation)
        base.invalidate(address: address, level: level)
    }

    /// Yields, then invalidates `range` in `base`.
    public func invalidate(range: GuestPhysicalRange) {
        scheduler.yield(at: .tlbInvalidation)
        base.invalidate(range: range)
    }

    /// Yields, then invalidates the whole context in `base`.
    public func invalidateAll() {
        scheduler.yield(at: .tlbInvalidation)
        base.invalidateAll()
    }

    /// As `base`.
    public var supportsRangeInvalidation: Bool { base.supportsRangeInvalidation }
}
