/// The translation caches of one translation context (one VMID on Arm, one
/// EPTP on Intel): what operations must invalidate before they report done
/// (rule 3 of Docs/concurrency.md).
///
/// A by-address invalidation names its leaf's level in both numberings
/// (``LeafLevel``): the architecture's for hardware hints, SLAT's heights for
/// simulators. Implementations: ``CountingTLB`` (no hardware, counts requests), the
/// simulated per-vCPU TLBs of SLATSim, and a bare-metal one issuing TLBI /
/// INVEPT. All methods may be called from any thread and return only when
/// the invalidation is complete on every CPU of the context.
public protocol TLB: AnyObject, Sendable {
    /// Invalidates cached translations of `address`. `level`, when given,
    /// promises the leaf was at that level; as on Arm, an implementation may
    /// then leave entries of other sizes in place (`level.architectural` is
    /// the TTL hint of `TLBI IPAS2E1IS` with FEAT_TTL).
    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?)
    /// Invalidates every cached translation overlapping `range` (any size).
    func invalidate(range: GuestPhysicalRange)
    /// Invalidates every translation of the context (Arm VMALLS12E1IS,
    /// Intel single-context INVEPT), including cached table walks.
    func invalidateAll()
    /// Whether ``invalidate(range:)`` is one hardware operation that
    /// removes every cached translation of the range, of any size, and the
    /// table walks cached for it (Arm `TLBI RIPAS2E1IS`, FEAT_TLBIRANGE).
    /// A table→block merge then invalidates the block's range instead of
    /// the whole context (KVM's `kvm_tlb_flush_vmid_range`). Default
    /// `false`: the merge invalidates the whole context.
    var supportsRangeInvalidation: Bool { get }
}

extension TLB {
    /// Default: no range invalidation worth using in place of
    /// ``invalidateAll()`` for a merge.
    @inlinable public var supportsRangeInvalidation: Bool { false }
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
