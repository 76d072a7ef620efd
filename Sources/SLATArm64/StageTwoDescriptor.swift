import SLATCore

/// A typed view of one raw stage-2 descriptor, for tools, dumps and tests.
///
/// Every field can be read and written; the view does not check that the
/// combination is valid (use ``StageTwoFormat`` to build descriptors). The
/// output address depends on the granule and PA size, so it is read and
/// written through a format.
@frozen
public struct StageTwoDescriptor: RawEntryView, Hashable, Sendable {
    /// The 64-bit descriptor.
    public var rawValue: UInt64

    /// Views `rawValue` as a stage-2 descriptor.
    @inlinable public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Bit 0: valid.
    @inlinable public var isValid: Bool {
        get { bit(StageTwoDescriptorBits.valid) }
        set { setBit(StageTwoDescriptorBits.valid, newValue) }
    }
    /// Bit 1: table (levels 0–2) or page (level 3); clear in a block.
    @inlinable public var isTableOrPage: Bool {
        get { bit(StageTwoDescriptorBits.tableOrPage) }
        set { setBit(StageTwoDescriptorBits.tableOrPage, newValue) }
    }
    /// Bits 5:2: the raw MemAttr field.
    @inlinable public var memoryAttributesField: UInt8 {
        get { UInt8(truncatingIfNeeded: field(StageTwoDescriptorBits.memoryAttributes, StageTwoDescriptorBits.memoryAttributesShift)) }
        set { setField(StageTwoDescriptorBits.memoryAttributes, StageTwoDescriptorBits.memoryAttributesShift, UInt64(newValue)) }
    }
    /// Bits 5:2 decoded with `HCR_EL2.FWB` = 0 (values without a name decode
    /// as `MemoryType/reserved(_:)`).
    @inlinable public var memoryType: MemoryType { StageTwoMemoryAttributes.type(ofField: memoryAttributesField) }
    /// Bits 5:2 decoded in the encoding of `HCR_EL2.FWB` = `forcedWriteBack`
    /// (with FWB: 0b0110 normal write-back, 0b0101 normal non-cacheable,
    /// 0b0000/0b0001 device; others, such as 0b0111 "stage 1's attributes",
    /// as `MemoryType/reserved(_:)`).
    @inlinable public func memoryType(forcedWriteBack: Bool) -> MemoryType {
        StageTwoMemoryAttributes.type(ofField: memoryAttributesField, forcedWriteBack: forcedWriteBack)
    }
    /// Bit 6: S2AP[0], read access.
    @inlinable public var isReadable: Bool {
        get { bit(StageTwoDescriptorBits.read) }
        set { setBit(StageTwoDescriptorBits.read, newValue) }
    }
    /// Bit 7: S2AP[1], write access.
    @inlinable public var isWritable: Bool {
        get { bit(StageTwoDescriptorBits.write) }
        set { setBit(StageTwoDescriptorBits.write, newValue) }
    }
    /// Bits 9:8: SH, the shareability field (0 non-, 2 outer, 3 inner shareable).
    @inlinable public var shareability: UInt8 {
        get { UInt8(truncatingIfNeeded: field(StageTwoDescriptorBits.shareability, StageTwoDescriptorBits.shareabilityShift)) }
        set { setField(StageTwoDescriptorBits.shareability, StageTwoDescriptorBits.shareabilityShift, UInt64(newValue)) }
    }
    /// Bit 10: AF, the access flag (in an invalid descriptor: the locked marker).
    @inlinable public var isAccessed: Bool {
        get { bit(StageTwoDescriptorBits.accessFlag) }
        set { setBit(StageTwoDescriptorBits.accessFlag, newValue) }
    }
    /// Bit 51: DBM, the dirty bit modifier.
    @inlinable public var dirtyBitModifier: Bool {
        get { bit(StageTwoDescriptorBits.dirtyBitModifier) }
        set { setBit(StageTwoDescriptorBits.dirtyBitModifier, newValue) }
    }
    /// Bit 52: the contiguous hint.
    @inlinable public var isContiguous: Bool {
        get { bit(StageTwoDescriptorBits.contiguous) }
        set { setBit(StageTwoDescriptorBits.contiguous, newValue) }
    }
    /// Bits 54:53: XN[1:0] (without FEAT_XNX only bit 54, XN, is defined).
    @inlinable public var executeNeverField: UInt8 {
        get { UInt8(truncatingIfNeeded: field(StageTwoDescriptorBits.executeNeverField, StageTwoDescriptorBits.executeNeverShift)) }
        set { setField(StageTwoDescriptorBits.executeNeverField, StageTwoDescriptorBits.executeNeverShift, UInt64(newValue)) }
    }
    /// Bits 58:55: the software field as a 4-bit number.
    @inlinable public var softwareBits: UInt16 {
        get { UInt16(truncatingIfNeeded: field(StageTwoDescriptorBits.software, StageTwoDescriptorBits.softwareShift)) }
        set { setField(StageTwoDescriptorBits.software, StageTwoDescriptorBits.softwareShift, UInt64(newValue)) }
    }

    /// The granule-aligned address the descriptor holds in `format`: bits
    /// 47:granule shift and, with the 64 KiB granule and a 52-bit PA,
    /// OA[51:48] from bits 15:12. For a block the bits below the block size
    /// are part of this value (they are zero in a well-formed block).
    @inlinable
    public func address(in format: StageTwoFormat) -> HostPhysicalAddress { format.childTable(of: rawValue) }

    /// Replaces the address field with `address` (granule aligned) as `format` lays it out.
    @inlinable
    public mutating func setAddress(_ address: HostPhysicalAddress, in format: StageTwoFormat) {
        rawValue = rawValue & ~(format.tableAddressMask | format.highAddressMask) | format.encodedAddress(address)
    }
}
