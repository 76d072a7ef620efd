/// Properties of a memslot (KVM's `KVM_MEM_*` flags).
///
/// A value type; it takes no lock.
@frozen
public struct MemslotFlags: OptionSet, Hashable, Sendable {
    /// The flag bits (bit 0 dirty logging, bit 1 read-only, as KVM numbers them).
    public var rawValue: UInt32

    /// Flags from their bits.
    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Writes to the slot are recorded in a dirty log: the MMU maps it with
    /// small pages and without write access (or with clean dirty bits) so that
    /// each first write is seen.
    public static var dirtyLogging: MemslotFlags { MemslotFlags(rawValue: 1 << 0) }
    /// The guest may only read the slot; its writes exit to the VMM (ROM).
    public static var readOnly: MemslotFlags { MemslotFlags(rawValue: 1 << 1) }
    /// The slot is device memory (MMIO a VMM hands to the guest, KVM's
    /// `VM_PFNMAP`/`VM_IO` host mappings): faults map it page by page as
    /// Device-nGnRE on stage 2, never executable, never as a block and
    /// without cache maintenance. Not a `KVM_MEM_*` bit (KVM learns it
    /// from the host mapping; SLAT's host page map carries no attributes,
    /// so the slot does). Changing it on a live slot invalidates the slot.
    /// Honoured by the stage-2 fault handler; the EPT MMU ignores it.
    public static var device: MemslotFlags { MemslotFlags(rawValue: 1 << 16) }
    /// The slot is normal non-cacheable memory (KVM maps device memory
    /// whose host mapping allows any uncached type, `VM_ALLOW_ANY_UNCACHED`,
    /// as Normal-NC): as ``device`` but stage 2's Normal-NC type. With
    /// ``device`` also set, ``device`` wins. Not a `KVM_MEM_*` bit.
    public static var nonCacheable: MemslotFlags { MemslotFlags(rawValue: 1 << 17) }

    /// The flags that choose the memory type of the slot's mappings.
    @inlinable
    public static var memoryTypes: MemslotFlags { [.device, .nonCacheable] }
}
