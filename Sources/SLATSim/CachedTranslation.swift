import SLATCore

/// One translation as a simulated TLB caches it: the leaf's guest range,
/// level, output, permissions and flags, the context and vCPU it belongs
/// to, and the table pages its walk went through.
@frozen
public struct CachedTranslation: Hashable, Sendable, CustomStringConvertible {
    /// The translation context (VMID / EPTP) the entry was filled for.
    public var context: UInt64
    /// The vCPU whose TLB holds it.
    public var vcpu: Int
    /// First guest address the leaf maps.
    public var guestAddress: GuestPhysicalAddress
    /// Level (height; 0 = smallest page) of the leaf.
    public var level: Int
    /// Bytes the entry maps.
    public var size: UInt64
    /// Output address of the first byte of the leaf.
    public var output: HostPhysicalAddress
    /// Permissions the leaf granted when it was cached.
    public var permissions: Permissions
    /// Whether the leaf's dirty flag was set when cached (always `false` in
    /// formats without one). A write through an entry whose dirty flag is
    /// clear re-walks the tables where hardware tracks dirtiness.
    public var dirty: Bool
    /// The table pages the walk went through, root first.
    public var path: TableWalkPath

    /// A cached translation.
    public init(context: UInt64 = 0, vcpu: Int = 0, guestAddress: GuestPhysicalAddress, level: Int, size: UInt64,
                output: HostPhysicalAddress, permissions: Permissions, dirty: Bool = false, path: TableWalkPath = TableWalkPath()) {
        self.context = context
        self.vcpu = vcpu
        self.guestAddress = guestAddress
        self.level = level
        self.size = size
        self.output = output
        self.permissions = permissions
        self.dirty = dirty
        self.path = path
    }

    /// The guest range the entry covers.
    @inlinable public var guestRange: GuestPhysicalRange { GuestPhysicalRange(start: guestAddress, size: size) }

    /// Whether the entry covers `address`.
    @inlinable public func covers(_ address: GuestPhysicalAddress) -> Bool { guestRange.contains(address) }

    /// The output of `address` (which the entry must cover).
    @inlinable
    public func output(of address: GuestPhysicalAddress) -> HostPhysicalAddress {
        output.advanced(by: address.rawValue &- guestAddress.rawValue)
    }

    public var description: String {
        "vCPU \(vcpu) ctx \(context): \(guestRange) level \(level) → \(output) \(permissions)\(dirty ? " D" : "") via \(path)"
    }
}
