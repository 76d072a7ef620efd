import SLATCore

/// EPT leaf entries: validation, encoding, decoding and permission changes.
extension ExtendedPageTableFormat {
    /// Throws unless `attributes` can be encoded in an EPT leaf.
    ///
    /// - Throws: `SLATError/unsupportedPermissions(_:)` for write without
    ///   read, for one execute right without the other when mode-based execute
    ///   control is off, or for unknown permission bits;
    ///   `SLATError/unsupportedMemoryType(_:)` for `MemoryType/device` and
    ///   `MemoryType/reserved(_:)`; `SLATError/softwareBitsOutOfRange(_:width:)`
    ///   for software bits wider than 11 bits.
    @inlinable
    public func validate(_ attributes: LeafAttributes) throws(SLATError) {
        let raw = attributes.permissions.rawValue
        let unknownBits = raw & ~0b1111 != 0
        let writeWithoutRead = raw & 0b11 == 0b10
        let splitExecute = !modeBasedExecute && (raw >> 2 ^ raw >> 3) & 1 != 0
        if unknownBits || writeWithoutRead || splitExecute {
            throw .unsupportedPermissions(attributes.permissions)
        }
        if ExtendedPageTableMemoryType.field(of: attributes.memoryType) == nil {
            throw .unsupportedMemoryType(attributes.memoryType)
        }
        if Int(attributes.softwareBits) >> ExtendedPageTableBits.softwareWidth != 0 {
            throw .softwareBitsOutOfRange(attributes.softwareBits, width: ExtendedPageTableBits.softwareWidth)
        }
    }

    /// The entry bits that grant `permissions`. Without mode-based execute
    /// control bit 2 is set only when both execute rights are in the set;
    /// with it bit 2 is supervisor and bit 10 user execution.
    @inlinable
    func grantedBits(_ permissions: Permissions) -> UInt64 {
        let raw = UInt64(permissions.rawValue)
        let mbec = modeBasedExecuteMask
        return raw & 0b11 | raw & 0b100 & (raw >> 1 | mbec) | (raw & 0b1000) << 7 & mbec
    }

    /// The entry bits to clear to revoke `permissions`. Without mode-based
    /// execute control revoking either execute right clears bit 2.
    @inlinable
    func revokedBits(_ permissions: Permissions) -> UInt64 {
        let raw = UInt64(permissions.rawValue)
        let mbec = modeBasedExecuteMask
        return raw & 0b111 | raw >> 1 & 0b100 & ~mbec | (raw & 0b1000) << 7 & mbec
    }

    /// A leaf: permissions, memory type, bit 11, ignore-PAT if configured,
    /// page size at heights 1 and 2, accessed, dirty, software bits and the
    /// address (bits 51:12, aligned to the leaf size).
    @inlinable
    public func leafEntry(output: HostPhysicalAddress, attributes: LeafAttributes, atLevel level: Int) -> UInt64 {
        assert(canHoldLeaf(atLevel: level), "EPT leaves exist at heights 0...2")
        assert(output.rawValue & (entrySize(atLevel: level) &- 1) == 0, "leaf output address not aligned to its size")
        let memoryType = UInt64(ExtendedPageTableMemoryType.field(of: attributes.memoryType) ?? 0)
        var entry = leafTemplate | grantedBits(attributes.permissions)
            | memoryType << ExtendedPageTableBits.memoryTypeShift
            | output.rawValue & ExtendedPageTableBits.address
            | UInt64(attributes.softwareBits) << ExtendedPageTableBits.softwareShift & ExtendedPageTableBits.software
        entry |= level != 0 ? ExtendedPageTableBits.pageSize : 0
        entry |= attributes.accessed ? ExtendedPageTableBits.accessed : 0
        entry |= attributes.dirty ? ExtendedPageTableBits.dirty : 0
        return entry
    }

    /// Bits 51:12 of a leaf, less the bits below its size at `level`.
    @inlinable
    public func outputAddress(ofLeaf entry: UInt64, atLevel level: Int) -> HostPhysicalAddress {
        HostPhysicalAddress(entry & ExtendedPageTableBits.address & UInt64.max &<< UInt64(truncatingIfNeeded: shift(atLevel: level)))
    }

    /// Every attribute of a leaf; a memory type of 2, 3 or 7 decodes as
    /// `MemoryType/reserved(_:)`.
    @inlinable
    public func attributes(ofLeaf entry: UInt64, atLevel level: Int) -> LeafAttributes {
        LeafAttributes(
            permissions: permissions(ofLeaf: entry),
            memoryType: ExtendedPageTableMemoryType.type(
                ofField: UInt8(truncatingIfNeeded: entry >> ExtendedPageTableBits.memoryTypeShift)),
            accessed: entry & ExtendedPageTableBits.accessed != 0,
            dirty: entry & ExtendedPageTableBits.dirty != 0,
            softwareBits: UInt16(truncatingIfNeeded: entry >> ExtendedPageTableBits.softwareShift) & 0x7FF
        )
    }

    /// The leaf with `grant` set and `revoke` cleared (revoke wins), then
    /// write cleared if read is clear, since write without read is an EPT
    /// misconfiguration. Without mode-based execute control, bit 2 is
    /// granted only by a `grant` holding both execute rights and revoked by
    /// a `revoke` holding either. Branch-free on the entry.
    @inlinable
    public func changingPermissions(ofLeaf entry: UInt64, grant: Permissions, revoke: Permissions) -> UInt64 {
        let changed = (entry | grantedBits(grant)) & ~revokedBits(revoke)
        return changed & ~((~changed & ExtendedPageTableBits.read) << 1)
    }

    /// Read, write and execute from bits 0, 1, 2 and 10 (with mode-based
    /// execute control; without it bit 2 gives both execute rights).
    @inlinable
    public func permissions(ofLeaf entry: UInt64) -> Permissions {
        let user: UInt64 = entry & userExecuteBit != 0 ? 0b1000 : 0
        return Permissions(rawValue: UInt8(truncatingIfNeeded: entry & ExtendedPageTableBits.readWriteExecute | user))
    }

    /// `entry + bytes`: the address field is the low end of bits 51:12, so
    /// adding the leaf size moves the leaf to the next output address.
    @inlinable
    public func leafEntry(_ entry: UInt64, advancedBy bytes: UInt64) -> UInt64 { entry &+ bytes }

    /// The first leaf of the table replacing the leaf `entry` at `level`:
    /// every bit kept (ignore-PAT, accessed, dirty, software bits, suppress-#VE),
    /// the page-size bit kept only if the new level still holds large pages.
    @inlinable
    public func splitLeaf(_ entry: UInt64, fromLevel level: Int) -> UInt64 {
        level == 1 ? entry & ~ExtendedPageTableBits.pageSize : entry
    }

    /// Whether hardware sets the accessed and dirty flags (the EPTP enables them).
    @inlinable public var hardwareUpdatesAccessFlags: Bool { accessedDirtyEnabled }

    /// A leaf that may change behind the MMU lock (rule 5 of Docs/concurrency.md): with
    /// accessed/dirty flags enabled, one hardware may still update — not yet
    /// accessed, or writable and not yet dirty (the dirty bit of such a leaf
    /// must never be lost: dirty logging depends on it) — and, whatever the
    /// flags, one the lockless fast page fault may restore: write-protected
    /// with the MMU-writable bit set, or access-tracked.
    @inlinable
    public func isVolatile(_ entry: UInt64, atLevel level: Int) -> Bool {
        if entry & (ExtendedPageTableBits.mmuWritable | ExtendedPageTableBits.write) == ExtendedPageTableBits.mmuWritable
            || entry & ExtendedPageTableBits.accessTracked != 0 {
            return true
        }
        guard accessedDirtyEnabled else { return false }
        let accessed = entry & ExtendedPageTableBits.accessed != 0
        let writableClean = entry & (ExtendedPageTableBits.write | ExtendedPageTableBits.dirty) == ExtendedPageTableBits.write
        return !accessed || writableClean
    }

    /// Revocations as a mask: a non-present EPT entry has no permission bits
    /// (the frozen value included), so clearing them leaves it unchanged.
    /// Revoking read also clears write, as ``changingPermissions(ofLeaf:grant:revoke:)``
    /// does, because write without read is a misconfiguration.
    @inlinable
    public func permissionMasks(grant: Permissions, revoke: Permissions) -> (set: UInt64, clear: UInt64)? {
        guard grant.isEmpty else { return nil }
        let clearsWrite: UInt64 = revoke.contains(.read) ? ExtendedPageTableBits.write : 0
        return (0, revokedBits(revoke) | clearsWrite)
    }
}
