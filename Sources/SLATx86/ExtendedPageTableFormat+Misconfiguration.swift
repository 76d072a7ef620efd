import SLATCore

/// What the processor checks when it reads an EPT entry: hardware presence
/// and the conditions that cause an EPT misconfiguration (SDM vol. 3,
/// "EPT Misconfigurations"), for tools that read images they did not write.
extension ExtendedPageTableFormat {
    /// Whether the processor uses the entry: any of bits 2:0, or bit 10 with
    /// mode-based execute control. Unlike ``isPresent(_:atLevel:)`` this
    /// ignores the software "MMU present" bit 11, which hardware never reads.
    @inlinable
    public func isPresentToHardware(_ entry: UInt64) -> Bool {
        entry & (ExtendedPageTableBits.readWriteExecute | (modeBasedExecute ? ExtendedPageTableBits.userExecute : 0)) != 0
    }

    /// The bits of an entry at `level` that the SDM reserves and that are
    /// set in `entry` (zero for a well-formed entry). A hardware-present
    /// entry with any of them set causes an EPT misconfiguration.
    ///
    /// Reserved: address bits 51 down to the output address size; in a
    /// table entry bits 7:3 (bit 7, page size, is reserved at heights 3 and 4
    /// where no large page exists); in a 2 MiB or 1 GiB leaf the address
    /// bits below the page size (20:12 or 29:12).
    @inlinable
    public func reservedBits(inEntry entry: UInt64, atLevel level: Int) -> UInt64 {
        let beyondOutput = ExtendedPageTableBits.address & ~(outputAddressLimit &- 1)
        let isLargeLeaf = level >= 1 && canHoldLeaf(atLevel: level) && entry & ExtendedPageTableBits.pageSize != 0
        let reserved: UInt64
        if level == 0 {
            reserved = beyondOutput
        } else if isLargeLeaf {
            reserved = beyondOutput | (ExtendedPageTableBits.address & (entrySize(atLevel: level) &- 1))
        } else {
            reserved = beyondOutput | 0xF8
        }
        return entry & reserved
    }

    /// Whether the processor reports an EPT misconfiguration when its walk
    /// reads this hardware-present entry at `level`: write without read,
    /// reserved bits set (``reservedBits(inEntry:atLevel:)``), or in a leaf
    /// a reserved memory type (2, 3 or 7). Execute-only entries are assumed
    /// supported (`IA32_VMX_EPT_VPID_CAP` bit 0).
    @inlinable
    public func isMisconfigured(_ entry: UInt64, atLevel level: Int) -> Bool {
        if entry & 0b11 == ExtendedPageTableBits.write { return true }
        if reservedBits(inEntry: entry, atLevel: level) != 0 { return true }
        let isLeaf = level == 0 || (canHoldLeaf(atLevel: level) && entry & ExtendedPageTableBits.pageSize != 0)
        if isLeaf, case .reserved = ExtendedPageTableMemoryType.type(ofField: UInt8(truncatingIfNeeded: entry >> 3)) {
            return true
        }
        return false
    }
}
