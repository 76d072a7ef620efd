import SLATCore

/// EPT's table geometry and its present, table and frozen entries.
extension ExtendedPageTableFormat: PageTableFormat {
    /// 12: EPT tables and pages are 4 KiB.
    @inlinable public var granuleShift: Int { 12 }
    /// 9: each EPT table holds 512 entries.
    @inlinable public var bitsPerLevel: Int { 9 }
    /// 1: the EPTP points to a single root table (PML4 or PML5).
    @inlinable public var rootTableCount: Int { 1 }
    /// 11: entry bits 62:52.
    @inlinable public var softwareBitCount: Int { ExtendedPageTableBits.softwareWidth }
    /// `false`: EPT allows replacing a present entry in place.
    @inlinable public var requiresBreakBeforeMake: Bool { false }

    /// The SDM's level for a height: height + 1 (1 = page table, 2 = page
    /// directory, 3 = PDPT, 4 = PML4, 5 = PML5).
    @inlinable public func architecturalLevel(_ level: Int) -> Int { level + 1 }

    /// Heights 0, 1 and 2 hold leaves: 4 KiB pages, 2 MiB and 1 GiB pages.
    @inlinable
    public func canHoldLeaf(atLevel level: Int) -> Bool { UInt(bitPattern: level) <= 2 }

    /// `0x1a0`: no access bit, no "MMU present" bit, no address. See the type's documentation.
    @inlinable public var frozenEntry: UInt64 { 0x1a0 }

    /// Whether any of bits 2:0, bit 11, or (with mode-based execute control)
    /// bit 10 is set. The frozen entry has none of them.
    @inlinable
    public func isPresent(_ entry: UInt64, atLevel level: Int) -> Bool { entry & presentMask != 0 }

    /// Whether a present entry above height 0 has its page-size bit 7 clear.
    @inlinable
    public func isTable(_ entry: UInt64, atLevel level: Int) -> Bool {
        level != 0 && entry & ExtendedPageTableBits.pageSize == 0
    }

    /// `R|W|X` (and user-execute, bit 10, with mode-based execute control:
    /// a user-mode fetch needs it in every entry of the walk, SDM vol. 3
    /// "EPT Violations") + "MMU present" + the child's address (bits 51:12).
    @inlinable
    public func tableEntry(child: HostPhysicalAddress) -> UInt64 {
        assert(child.rawValue & 0xFFF == 0, "table pages are 4 KiB aligned")
        return (child.rawValue & ExtendedPageTableBits.address)
            | ExtendedPageTableBits.readWriteExecute | ExtendedPageTableBits.mmuPresent
            | (ExtendedPageTableBits.userExecute & modeBasedExecuteMask)
    }

    /// The accesses a table entry lets the walk through: its R/W/X bits
    /// (and user-execute with mode-based execute control), decoded as a
    /// leaf's (SDM: an access is allowed only if every entry of the walk
    /// allows it).
    @inlinable
    public func permissions(ofTable entry: UInt64, atLevel level: Int) -> Permissions {
        permissions(ofLeaf: entry)
    }

    /// Bits 51:12 of a table entry.
    @inlinable
    public func childTable(of entry: UInt64) -> HostPhysicalAddress {
        HostPhysicalAddress(entry & ExtendedPageTableBits.address)
    }
}
