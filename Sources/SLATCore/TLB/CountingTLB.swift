import Synchronization

/// A ``TLB`` with no hardware behind it: it counts the invalidations it is
/// asked for. For tables no CPU walks (building an image, benchmarks of the
/// table code alone) and as the observable counter of tests.
public final class CountingTLB: TLB {
    // Sendable: only Atomic state.
    @usableFromInline let addressCount = Atomic<Int>(0)
    @usableFromInline let rangeCount = Atomic<Int>(0)
    @usableFromInline let contextCount = Atomic<Int>(0)

    /// Whether it answers ``TLB/supportsRangeInvalidation`` with `true`
    /// (to count what a CPU with range invalidation would be asked for).
    public let supportsRangeInvalidation: Bool

    /// A TLB with all counts zero; `supportsRangeInvalidation` as a CPU
    /// with FEAT_TLBIRANGE (`true`) or without it (`false`, the default).
    public init(supportsRangeInvalidation: Bool = false) {
        self.supportsRangeInvalidation = supportsRangeInvalidation
    }

    // Inlinable, with the counters: a stage-2 permission fault asks for one
    // invalidation, and a call across modules costs more than the add.
    @inlinable
    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        addressCount.wrappingAdd(1, ordering: .relaxed)
    }

    @inlinable
    public func invalidate(range: GuestPhysicalRange) {
        rangeCount.wrappingAdd(1, ordering: .relaxed)
    }

    @inlinable
    public func invalidateAll() {
        contextCount.wrappingAdd(1, ordering: .relaxed)
    }

    /// The invalidations requested so far.
    public var counts: TLBInvalidationCounts {
        TLBInvalidationCounts(
            addresses: addressCount.load(ordering: .relaxed),
            ranges: rangeCount.load(ordering: .relaxed),
            contexts: contextCount.load(ordering: .relaxed))
    }
}
