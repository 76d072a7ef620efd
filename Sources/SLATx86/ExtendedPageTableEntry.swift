import SLATCore

/// A typed view of one raw EPT entry, for tools, dumps and tests.
///
/// Every hardware and software field can be read and written; the view does
/// not check that the combination is valid (use ``ExtendedPageTableFormat``
/// to build entries). Which fields hardware uses depends on the entry's level
/// and kind, as the SDM describes.
@frozen
public struct ExtendedPageTableEntry: RawEntryView, Hashable, Sendable {
    /// The 64-bit entry.
    public var rawValue: UInt64

    /// Views `rawValue` as an EPT entry.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Bit 0: read access.
    @inlinable public var isReadable: Bool {
        get { bit(ExtendedPageTableBits.read) }
        set { setBit(ExtendedPageTableBits.read, newValue) }
    }
    /// Bit 1: write access.
    @inlinable public var isWritable: Bool {
        get { bit(ExtendedPageTableBits.write) }
        set { setBit(ExtendedPageTableBits.write, newValue) }
    }
    /// Bit 2: execute access (supervisor-mode only with mode-based execute control).
    @inlinable public var isExecutable: Bool {
        get { bit(ExtendedPageTableBits.execute) }
        set { setBit(ExtendedPageTableBits.execute, newValue) }
    }
    /// Bits 5:3: the raw memory-type field of a leaf.
    @inlinable public var memoryTypeField: UInt8 {
        get { UInt8(truncatingIfNeeded: (rawValue & ExtendedPageTableBits.memoryType) >> ExtendedPageTableBits.memoryTypeShift) }
        set {
            rawValue = rawValue & ~ExtendedPageTableBits.memoryType
                | UInt64(newValue) << ExtendedPageTableBits.memoryTypeShift & ExtendedPageTableBits.memoryType
        }
    }
    /// Bits 5:3 decoded; 2, 3 and 7 decode as `MemoryType/reserved(_:)`.
    @inlinable public var memoryType: MemoryType { ExtendedPageTableMemoryType.type(ofField: memoryTypeField) }
    /// Bit 6: ignore the guest PAT memory type.
    @inlinable public var ignorePAT: Bool {
        get { bit(ExtendedPageTableBits.ignorePAT) }
        set { setBit(ExtendedPageTableBits.ignorePAT, newValue) }
    }
    /// Bit 7: page size — set in a 2 MiB or 1 GiB leaf.
    @inlinable public var isLargePage: Bool {
        get { bit(ExtendedPageTableBits.pageSize) }
        set { setBit(ExtendedPageTableBits.pageSize, newValue) }
    }
    /// Bit 8: accessed.
    @inlinable public var isAccessed: Bool {
        get { bit(ExtendedPageTableBits.accessed) }
        set { setBit(ExtendedPageTableBits.accessed, newValue) }
    }
    /// Bit 9: dirty.
    @inlinable public var isDirty: Bool {
        get { bit(ExtendedPageTableBits.dirty) }
        set { setBit(ExtendedPageTableBits.dirty, newValue) }
    }
    /// Bit 10: user-mode execute access (with mode-based execute control).
    @inlinable public var isUserExecutable: Bool {
        get { bit(ExtendedPageTableBits.userExecute) }
        set { setBit(ExtendedPageTableBits.userExecute, newValue) }
    }
    /// Bit 11 (software): KVM's "MMU present" bit.
    @inlinable public var isMMUPresent: Bool {
        get { bit(ExtendedPageTableBits.mmuPresent) }
        set { setBit(ExtendedPageTableBits.mmuPresent, newValue) }
    }
    /// Bits 51:12: the page's or next table's physical address.
    @inlinable public var address: HostPhysicalAddress {
        get { HostPhysicalAddress(rawValue & ExtendedPageTableBits.address) }
        set { rawValue = rawValue & ~ExtendedPageTableBits.address | newValue.rawValue & ExtendedPageTableBits.address }
    }
    /// Bits 62:52 as an 11-bit number (bit 52 is bit 0).
    @inlinable public var softwareBits: UInt16 {
        get { UInt16(truncatingIfNeeded: (rawValue & ExtendedPageTableBits.software) >> ExtendedPageTableBits.softwareShift) }
        set {
            rawValue = rawValue & ~ExtendedPageTableBits.software
                | UInt64(newValue) << ExtendedPageTableBits.softwareShift & ExtendedPageTableBits.software
        }
    }
    /// Bit 57 (software): KVM's host-writable bit.
    @inlinable public var isHostWritable: Bool {
        get { bit(ExtendedPageTableBits.hostWritable) }
        set { setBit(ExtendedPageTableBits.hostWritable, newValue) }
    }
    /// Bit 58 (software): KVM's MMU-writable bit.
    @inlinable public var isMMUWritable: Bool {
        get { bit(ExtendedPageTableBits.mmuWritable) }
        set { setBit(ExtendedPageTableBits.mmuWritable, newValue) }
    }
    /// Bit 63: suppress #VE.
    @inlinable public var suppressVE: Bool {
        get { bit(ExtendedPageTableBits.suppressVE) }
        set { setBit(ExtendedPageTableBits.suppressVE, newValue) }
    }
}
