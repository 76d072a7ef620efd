import SLATCore

/// The address a ``PfnCache`` is bound to.
///
/// A value type; it takes no lock.
public enum PfnCacheTarget: Hashable, Sendable {
    /// A guest-physical address, resolved to a host-virtual address through
    /// the memslots (memslot changes invalidate the cache).
    case guest(GuestPhysicalAddress)
    /// A host-virtual address of the VMM, used as is.
    case host(HostVirtualAddress)

    /// The offset of the address in its 4 KiB page.
    public var pageOffset: UInt64 {
        switch self {
        case .guest(let address): address.rawValue & (UInt64(HostFrameMemory.frameBytes) - 1)
        case .host(let address): address.rawValue & (UInt64(HostFrameMemory.frameBytes) - 1)
        }
    }
}
