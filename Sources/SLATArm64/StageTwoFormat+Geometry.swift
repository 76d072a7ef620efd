import SLATCore

/// Stage-2 levels and the encoding of valid, table and frozen descriptors.
extension StageTwoFormat: PageTableFormat {
    /// 4: descriptor bits 58:55.
    @inlinable public var softwareBitCount: Int { StageTwoDescriptorBits.softwareWidth }
    /// `true`: changing a valid descriptor's output address or size needs an
    /// invalid descriptor and a TLB invalidation in between.
    @inlinable public var requiresBreakBeforeMake: Bool { true }

    /// The Arm ARM's level for a height: 3 − height (level 3 holds pages).
    /// (−1 for height 4, the FEAT_LPA2 start level of a 52-bit 4 KiB walk.)
    @inlinable public func architecturalLevel(_ level: Int) -> Int { 3 - level }

    /// Height 0 (pages), and the block heights of the granule that the walk reaches.
    @inlinable
    public func canHoldLeaf(atLevel level: Int) -> Bool {
        UInt(bitPattern: level) < 64 && leafLevelMask &>> UInt64(truncatingIfNeeded: level) & 1 != 0
    }

    /// `0x400`: invalid (bit 0 clear) with bit 10 set, KVM's locked marker.
    @inlinable public var frozenEntry: UInt64 { StageTwoDescriptorBits.locked }

    /// Whether bit 0 is set and the descriptor type is not reserved: bit 1
    /// must be set at height 0 (a page) and at heights without blocks (a
    /// table); at block heights either value is valid.
    @inlinable
    public func isPresent(_ entry: UInt64, atLevel level: Int) -> Bool {
        let typeAllowed = entry >> 1 | blockLevelMask &>> UInt64(truncatingIfNeeded: level)
        return entry & typeAllowed & 1 != 0
    }

    /// Whether a present descriptor above height 0 has bit 1 set.
    @inlinable
    public func isTable(_ entry: UInt64, atLevel level: Int) -> Bool {
        level != 0 && entry & StageTwoDescriptorBits.tableOrPage != 0
    }

    /// `true`: the table test is one mask compare, the presence test is
    /// level-dependent (blocks are valid only at some heights).
    @inlinable public static var testsTablesFirst: Bool { true }

    /// Above height 0, bits 1:0 = 0b11 is a table descriptor at every level,
    /// so one test replaces the level-dependent validity check.
    @inlinable
    public func childTableIfTable(_ entry: UInt64, atLevel level: Int) -> HostPhysicalAddress? {
        let type = StageTwoDescriptorBits.valid | StageTwoDescriptorBits.tableOrPage
        return level != 0 && entry & type == type ? childTable(of: entry) : nil
    }

    /// Valid + table bits + the child's address; no attributes.
    @inlinable
    public func tableEntry(child: HostPhysicalAddress) -> UInt64 {
        assert(child.rawValue & (UInt64(granule.byteCount) &- 1) == 0, "table pages are granule aligned")
        return encodedAddress(child) | StageTwoDescriptorBits.valid | StageTwoDescriptorBits.tableOrPage
    }

    /// The next-level table address of a table descriptor.
    @inlinable
    public func childTable(of entry: UInt64) -> HostPhysicalAddress {
        HostPhysicalAddress(withHighAddress(entry & tableAddressMask, of: entry))
    }

    /// `inPlace` (address bits taken in place from `entry`) with the high
    /// output-address bits added from where the format keeps them: OA[51:48]
    /// from bits 15:12 (64 KiB granule, 52-bit PA) or OA[51:50] from bits
    /// 9:8 (FEAT_LPA2). Branch-free: both the mask and the shift are 0 when
    /// the format has no high field.
    @inlinable
    func withHighAddress(_ inPlace: UInt64, of entry: UInt64) -> UInt64 {
        inPlace | (entry & highAddressMask) &<< highAddressShift
    }

    /// A granule-aligned output address in descriptor form: the in-place
    /// bits (47:granule, or 49:granule with FEAT_LPA2) and the high bits
    /// moved into their field.
    @inlinable
    func encodedAddress(_ address: HostPhysicalAddress) -> UInt64 {
        address.rawValue & tableAddressMask
            | address.rawValue &>> highAddressShift & highAddressMask
    }
}
