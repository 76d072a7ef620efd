import SLATCore

/// What a fault will install, decided before the lock is taken: the leaf
/// level (KVM's host-mapping-level and huge-page adjust) and the bits of the
/// leaf at any level it may end up at.
///
/// Level choice: the largest size the memslot alignment and host mapping
/// allow (``SLATCore/ResolvedGuestPage/maximumMappingSize``), capped by
/// ``MMUConfiguration/maximumLeafLevel``; 4 KiB in a dirty-logged slot;
/// 4 KiB for an instruction fetch when the NX-huge-page policy is on (huge
/// leaves are never executable then) — the tables linked or split on the way
/// down at the levels that could have held the huge leaf carry
/// ``ExtendedPageTableBits/nxHugePageSplit``. The walk lowers the level
/// further when it meets such a marked table at its level.
@usableFromInline
struct FaultPlan {
    /// The leaf height the walk installs at (lowered by marked tables).
    @usableFromInline var level: Int
    /// The height chosen before the NX-huge-page policy applied.
    @usableFromInline let naturalLevel: Int
    /// Whether the NX-huge-page policy lowered the level.
    @usableFromInline let nxForced: Bool
    /// Whether huge leaves lose execute permission.
    @usableFromInline let nxHugePages: Bool
    /// Host-physical address of the faulting 4 KiB page.
    @usableFromInline let output: UInt64
    /// Every leaf bit except the address and page-size bits.
    @usableFromInline let template: UInt64
    /// The execute bits of the template.
    @usableFromInline let executeBits: UInt64
    /// The permission bit the access needs.
    @usableFromInline let neededBit: UInt64
    /// Whether a successful install marks the dirty bitmap (a write granted
    /// write access in a dirty-logged slot).
    @usableFromInline let marksDirty: Bool
    /// The guest frames the largest leaf the fault may install covers.
    @usableFromInline let block: GuestFrameRange

    @inlinable
    init(page: ResolvedGuestPage, access: GuestAccess, format: ExtendedPageTableFormat,
         configuration: MMUConfiguration, logMode: DirtyLogMode) {
        var level = min(Int(page.maximumMappingSize.rawValue), configuration.maximumLeafLevel)
        let write = access == .write
        if page.dirtyLogging { level = 0 }
        let natural = level
        let forced = configuration.nxHugePages && (access == .execute || access == .userExecute) && level > 0
        if forced { level = 0 }
        self.level = level
        naturalLevel = natural
        nxForced = forced
        nxHugePages = configuration.nxHugePages
        output = page.hostFrame.address.rawValue
        block = page.block(HostMappingSize(rawValue: UInt8(truncatingIfNeeded: natural)) ?? .size4K)

        let execute = ExtendedPageTableBits.execute | (format.modeBasedExecute ? ExtendedPageTableBits.userExecute : 0)
        let grantsWrite = page.writable && !(page.dirtyLogging && logMode == .writeProtect && !write)
        var bits = ExtendedPageTableBits.mmuPresent | ExtendedPageTableBits.read | execute
            | 6 << ExtendedPageTableBits.memoryTypeShift | ExtendedPageTableBits.accessed
        if format.ignoreGuestPAT { bits |= ExtendedPageTableBits.ignorePAT }
        if page.writable { bits |= ExtendedPageTableBits.hostWritable | ExtendedPageTableBits.mmuWritable }
        if grantsWrite {
            bits |= ExtendedPageTableBits.write
            // Dirty at once, except where a clean dirty bit is the log.
            if write || !page.dirtyLogging { bits |= ExtendedPageTableBits.dirty }
        }
        template = bits
        executeBits = execute
        neededBit = format.permissionBit(for: access)
        marksDirty = grantsWrite && write && page.dirtyLogging
    }

    /// The leaf to install at `level`.
    @inlinable
    func leaf(atLevel level: Int) -> UInt64 {
        if level == 0 { return template | output }
        let size: UInt64 = 1 &<< UInt64(truncatingIfNeeded: 12 &+ 9 &* level)
        var leaf = template | output & ~(size &- 1) | ExtendedPageTableBits.pageSize
        if nxHugePages { leaf &= ~executeBits }
        return leaf
    }

    /// Whether the present leaf `entry` at `level` already maps the page
    /// and allows the access (a concurrent fault fixed it first).
    @inlinable
    func isSatisfied(by entry: UInt64, atLevel level: Int) -> Bool {
        let size: UInt64 = 1 &<< UInt64(truncatingIfNeeded: 12 &+ 9 &* level)
        let address = entry & ExtendedPageTableBits.address & ~(size &- 1)
        return address == output & ~(size &- 1) && entry & neededBit != 0
            && entry & ExtendedPageTableBits.accessTracked == 0
    }

    /// The software bits of a table linked or split at `level` on the way
    /// down: the NX-huge-page marker where the huge leaf was refused.
    @inlinable
    func splitMarker(atLevel level: Int) -> UInt64 {
        nxForced && level <= naturalLevel ? ExtendedPageTableBits.nxHugePageSplit : 0
    }

    /// Maps one level lower (a marked table sits at the chosen level).
    @inlinable
    mutating func lowerLevel() { level -= 1 }
}
