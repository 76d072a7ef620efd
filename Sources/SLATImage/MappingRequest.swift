import SLATCore

/// One mapping of a mapping script, parsed and checked against a format.
public struct MappingRequest: Hashable, Sendable {
    /// The script line it came from (1-based).
    public var line: Int
    /// First guest-physical address.
    public var guest: UInt64
    /// Bytes mapped.
    public var size: UInt64
    /// Output (host-physical) address of `guest`.
    public var output: HostPhysicalAddress
    /// Permissions as written. For EPT write-without-read this holds write
    /// without read; ``encodedWithoutRead`` says it is written literally.
    public var permissions: Permissions
    /// The memory type.
    public var memoryType: MemoryType
    /// The largest leaf level (height) allowed by `leaf=`, or `nil` for any.
    public var maximumLevel: Int?
    /// `accessed=` (default true).
    public var accessed: Bool
    /// `dirty=` (default false).
    public var dirty: Bool
    /// `ipat=1`: set the EPT ignore-PAT bit.
    public var ignorePAT: Bool
    /// EPT write without read, encoded literally (R=0, W=1) as a misconfiguration probe.
    public var encodedWithoutRead: Bool

    /// The guest range.
    public var range: GuestPhysicalRange { GuestPhysicalRange(start: GuestPhysicalAddress(guest), size: size) }

    /// The attributes handed to `PageTable.map(_:to:attributes:maximumLevel:mode:context:batch:tlb:refusingPermissionOnlyChanges:refill:)`:
    /// read is added for a literal write-without-read leaf (the builder clears it afterwards).
    public var encodableAttributes: LeafAttributes {
        LeafAttributes(
            permissions: encodedWithoutRead ? permissions.union(.read) : permissions,
            memoryType: memoryType, accessed: accessed, dirty: dirty)
    }
}
