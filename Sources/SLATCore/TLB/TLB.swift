/// The translation caches of one translation context (one VMID on Arm, one
/// EPTP on Intel): what operations must invalidate before they report done
/// (rule 3 of Docs/concurrency.md).
///
/// Levels are heights (0 = smallest page), as in ``PageTableFormat``.
/// Implementations: ``CountingTLB`` (no hardware, counts requests), the
/// simulated per-vCPU TLBs of SLATSim, and a bare-metal one issuing TLBI /
/// INVEPT. All methods may be called from any thread and return only when
/// the invalidation is complete on every CPU of the context.
public protocol TLB: AnyObject, Sendable {
    /// Invalidates cached translations of `address`. `level`, when given,
    /// promises the leaf was at that level; as on Arm, an implementation may
    /// then leave entries of other sizes in place.
    func invalidate(address: GuestPhysicalAddress, level: Int?)
    /// Invalidates every cached translation overlapping `range` (any size).
    func invalidate(range: GuestPhysicalRange)
    /// Invalidates every translation of the context (Arm VMALLS12E1IS,
    /// Intel single-context INVEPT), including cached table walks.
    func invalidateAll()
}

/// How many invalidations of each kind a TLB has been asked for.
@frozen
public struct TLBInvalidationCounts: Hashable, Sendable {
    /// By-address invalidations.
    public var addresses: Int
    /// Range invalidations.
    public var ranges: Int
    /// Whole-context invalidations.
    public var contexts: Int

    @inlinable
    public init(addresses: Int = 0, ranges: Int = 0, contexts: Int = 0) {
        self.addresses = addresses
        self.ranges = ranges
        self.contexts = contexts
    }

    /// All invalidations together.
    @inlinable public var total: Int { addresses + ranges + contexts }
}
