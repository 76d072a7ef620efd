import SLATCore

/// Stage-2 page and block descriptors: validation, encoding, decoding and
/// permission changes.
extension StageTwoFormat {
    /// Throws unless `attributes` can be encoded in a stage-2 leaf.
    ///
    /// - Throws: `SLATError/unsupportedPermissions(_:)` for unknown
    ///   permission bits or, without FEAT_XNX, one execute right without the
    ///   other; `SLATError/unsupportedMemoryType(_:)` for
    ///   `MemoryType/writeProtected`, `MemoryType/reserved(_:)` and,
    ///   with ``forcesWriteBack``, `MemoryType/writeThrough`;
    ///   `SLATError/unsupportedDirtyFlag` for `dirty`;
    ///   `SLATError/softwareBitsOutOfRange(_:width:)` for software bits
    ///   wider than 4 bits.
    @inlinable @inline(__always)
    public func validate(_ attributes: LeafAttributes) throws(SLATError) {
        let raw = attributes.permissions.rawValue
        let unknownBits = raw & ~0b1111 != 0
        let splitExecute = !executeNeverSplit && (raw >> 2 ^ raw >> 3) & 1 != 0
        if unknownBits || splitExecute { throw .unsupportedPermissions(attributes.permissions) }
        if StageTwoMemoryAttributes.field(of: attributes.memoryType, forcedWriteBack: forcesWriteBack) == nil {
            throw .unsupportedMemoryType(attributes.memoryType)
        }
        if attributes.dirty { throw .unsupportedDirtyFlag }
        if Int(attributes.softwareBits) >> StageTwoDescriptorBits.softwareWidth != 0 {
            throw .softwareBitsOutOfRange(attributes.softwareBits, width: StageTwoDescriptorBits.softwareWidth)
        }
    }

    /// A page (height 0) or block descriptor: valid, page bit at height 0,
    /// MemAttr, S2AP, inner shareable (bits 9:8; with FEAT_LPA2 those bits
    /// are OA[51:50] and `VTCR_EL2.SH0` gives shareability), AF, output
    /// address, execute-never and software bits.
    @inlinable
    public func leafEntry(output: HostPhysicalAddress, attributes: LeafAttributes, atLevel level: Int) -> UInt64 {
        assert(canHoldLeaf(atLevel: level), "no stage-2 leaf at this height")
        assert(output.rawValue & (entrySize(atLevel: level) &- 1) == 0, "leaf output address not aligned to its size")
        let raw = UInt64(attributes.permissions.rawValue)
        let memoryAttributes = UInt64(
            StageTwoMemoryAttributes.field(of: attributes.memoryType, forcedWriteBack: forcesWriteBack) ?? 0)
        let executeNever = StageTwoExecuteNever.lookUp(executeNeverEncodeTable, raw >> 2 & 0b11)
        var entry = StageTwoDescriptorBits.valid
            | memoryAttributes << StageTwoDescriptorBits.memoryAttributesShift
            | (raw & 0b11) << 6
            | leafShareability
            | encodedAddress(output)
            | executeNever << StageTwoDescriptorBits.executeNeverShift & executeNeverMask
            | UInt64(attributes.softwareBits) << StageTwoDescriptorBits.softwareShift & StageTwoDescriptorBits.software
        entry |= level == 0 ? StageTwoDescriptorBits.tableOrPage : 0
        entry |= attributes.accessed ? StageTwoDescriptorBits.accessFlag : 0
        return entry
    }

    /// The output address of a leaf: bits 47:(leaf size) (49:(leaf size)
    /// with FEAT_LPA2) and the high bits: OA[51:48] from bits 15:12 with the
    /// 64 KiB granule and a 52-bit PA, OA[51:50] from bits 9:8 with FEAT_LPA2.
    @inlinable
    public func outputAddress(ofLeaf entry: UInt64, atLevel level: Int) -> HostPhysicalAddress {
        let inPlace = entry & tableAddressMask & UInt64.max &<< UInt64(truncatingIfNeeded: shift(atLevel: level))
        return HostPhysicalAddress(withHighAddress(inPlace, of: entry))
    }

    /// Every attribute of a leaf; `dirty` is always `false` (stage 2 has no
    /// dirty flag), and MemAttr values without a name decode as
    /// `MemoryType/reserved(_:)`.
    @inlinable
    public func attributes(ofLeaf entry: UInt64, atLevel level: Int) -> LeafAttributes {
        LeafAttributes(
            permissions: permissions(ofLeaf: entry),
            memoryType: StageTwoMemoryAttributes.type(
                ofField: UInt8(truncatingIfNeeded: entry >> StageTwoDescriptorBits.memoryAttributesShift),
                forcedWriteBack: forcesWriteBack),
            accessed: entry & StageTwoDescriptorBits.accessFlag != 0,
            dirty: false,
            softwareBits: UInt16(truncatingIfNeeded: entry >> StageTwoDescriptorBits.softwareShift) & 0b1111
        )
    }

    /// The leaf with `grant` added and `revoke` removed (revoke wins).
    /// Revoking write also clears ``StageTwoDescriptorBits/mmuWritable``: a
    /// write removed for any reason but dirty logging must not come back
    /// through the lockless fault path.
    /// S2AP is a pair of mask operations; the execute-never field is decoded
    /// and re-encoded through lookup tables only when `grant` or `revoke`
    /// names an execute right. Without FEAT_XNX execution needs both rights,
    /// so granting one alone grants nothing and revoking either revokes both.
    @inlinable
    public func changingPermissions(ofLeaf entry: UInt64, grant: Permissions, revoke: Permissions) -> UInt64 {
        let granted = UInt64(grant.rawValue)
        let revoked = UInt64(revoke.rawValue)
        let changed = (entry | (granted & 0b11) << 6) & ~((revoked & 0b11) << 6)
            & ~((revoked & 0b10) &<< 57)
        if (granted | revoked) & 0b1100 == 0 { return changed }
        let field = entry >> StageTwoDescriptorBits.executeNeverShift & 0b11
        let rights = (StageTwoExecuteNever.lookUp(executeNeverDecodeTable, field) | granted >> 2) & ~(revoked >> 2) & 0b11
        let executeNever = StageTwoExecuteNever.lookUp(executeNeverEncodeTable, rights)
        return changed & ~executeNeverMask | executeNever << StageTwoDescriptorBits.executeNeverShift & executeNeverMask
    }

    /// Read and write from S2AP; the execute rights from the execute-never field.
    @inlinable
    public func permissions(ofLeaf entry: UInt64) -> Permissions {
        let field = entry >> StageTwoDescriptorBits.executeNeverShift & 0b11
        let rights = StageTwoExecuteNever.lookUp(executeNeverDecodeTable, field)
        return Permissions(rawValue: UInt8(truncatingIfNeeded: entry >> 6 & 0b11 | rights << 2))
    }

    /// The leaf `bytes` further on. Normally `entry + bytes`. Where the
    /// address is split (64 KiB granule with a 52-bit PA: OA[47:0] in place,
    /// OA[51:48] in bits 15:12; FEAT_LPA2: OA[49:0] in place, OA[51:50] in
    /// bits 9:8), the carry out of the in-place field — which lands in its
    /// first bit above (48 or 50, RES0 in every leaf) — is moved into the
    /// high field together with the high bits of `bytes`. The only branch is
    /// on the configuration, which callers' loops hoist or predict perfectly.
    @inlinable
    public func leafEntry(_ entry: UInt64, advancedBy bytes: UInt64) -> UInt64 {
        if highAddressMask == 0 { return entry &+ bytes }
        let carryBit: UInt64 = lpa2 ? 50 : 48
        let highFieldShift: UInt64 = lpa2 ? 8 : 12
        let sum = entry &+ (bytes & tableAddressMask)
        let carry = (sum &>> carryBit & 1) &+ (bytes &>> carryBit)
        return (sum & ~(1 &<< carryBit)) &+ (carry &<< highFieldShift)
    }

    /// The first leaf of the table replacing the block `entry` at `level`:
    /// every attribute kept (memory type, shareability, access flag, DBM, XN,
    /// software bits), bit 1 set when the new level is the page level, and
    /// the contiguous hint cleared (the smaller leaves are not known to form
    /// a contiguous run).
    @inlinable
    public func splitLeaf(_ entry: UInt64, fromLevel level: Int) -> UInt64 {
        let leaf = entry & ~StageTwoDescriptorBits.contiguous
        return level == 1 ? leaf | StageTwoDescriptorBits.tableOrPage : leaf
    }

    /// Whether hardware sets the access flag (`VTCR_EL2.HA`).
    @inlinable public var hardwareUpdatesAccessFlags: Bool { hardwareAccessFlag }

    /// With hardware access-flag updates, a leaf whose access flag is still
    /// clear (the hardware may set it); and a leaf write-protected for dirty
    /// logging (``StageTwoDescriptorBits/mmuWritable`` set, write clear),
    /// whose write access the fault handler's fast path may give back
    /// without the MMU lock (rule 5 of Docs/concurrency.md).
    @inlinable
    public func isVolatile(_ entry: UInt64, atLevel level: Int) -> Bool {
        hardwareAccessFlag && entry & StageTwoDescriptorBits.accessFlag == 0
            || entry & (StageTwoDescriptorBits.mmuWritable | StageTwoDescriptorBits.write) == StageTwoDescriptorBits.mmuWritable
    }

    /// Always: the fault handler's fast permission fault changes leaves
    /// without the MMU lock.
    @inlinable public var leavesChangeOutsideTheLock: Bool { true }

    /// Write access removed and ``StageTwoDescriptorBits/mmuWritable`` set,
    /// for a leaf that had write access; any other value unchanged.
    @inlinable
    public func writeProtectedForDirtyLogging(_ entry: UInt64, atLevel level: Int) -> UInt64 {
        entry & StageTwoDescriptorBits.write == 0 ? entry
            : entry & ~StageTwoDescriptorBits.write | StageTwoDescriptorBits.mmuWritable
    }

    /// Revoking read or write as a mask: clearing S2AP bits leaves an
    /// invalid descriptor invalid, and the invalid values this library
    /// writes (zero, the frozen marker) have none of them. Execute changes
    /// set XN bits, so they have no mask form.
    @inlinable
    public func permissionMasks(grant: Permissions, revoke: Permissions) -> (set: UInt64, clear: UInt64)? {
        guard grant.isEmpty, revoke.subtracting(.readWrite).isEmpty else { return nil }
        let mmuWritable = revoke.contains(.write) ? StageTwoDescriptorBits.mmuWritable : 0
        return (0, (UInt64(revoke.rawValue) & 0b11) << 6 | mmuWritable)
    }
}
