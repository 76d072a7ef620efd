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
}
