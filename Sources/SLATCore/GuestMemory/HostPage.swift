/// What the host maps at one host-virtual address: the answer of
/// ``HostPageMap/lookup(_:)``, a copy valid at the moment of the lookup.
///
/// A value type; it takes no lock.
@frozen
public struct HostPage: Hashable, Sendable {
    /// The host frame of the 4 KiB page holding the looked-up address.
    public var frame: HostFrameNumber
    /// The size of the host mapping that holds the page.
    public var mappingSize: HostMappingSize
    /// The first address of that mapping (aligned to `mappingSize`).
    public var mappingBase: HostVirtualAddress
    /// The host frame at `mappingBase` (aligned to `mappingSize`).
    public var mappingFrame: HostFrameNumber
    /// Whether the host maps the page writable.
    public var writable: Bool

    /// A page description; ``HostPageMap`` builds these.
    @inlinable
    public init(
        frame: HostFrameNumber, mappingSize: HostMappingSize,
        mappingBase: HostVirtualAddress, mappingFrame: HostFrameNumber, writable: Bool
    ) {
        self.frame = frame
        self.mappingSize = mappingSize
        self.mappingBase = mappingBase
        self.mappingFrame = mappingFrame
        self.writable = writable
    }
}
