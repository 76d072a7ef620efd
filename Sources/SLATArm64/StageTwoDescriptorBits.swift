/// Bit positions and masks of a VMSAv8-64 stage-2 descriptor (Arm ARM,
/// "Translation table descriptor formats", stage 2 attributes).
///
/// Every mask is an `@inlinable` computed property so that it folds to a
/// constant in the code that uses it, in this module and in clients.
public enum StageTwoDescriptorBits {
    /// Bit 0: valid. A descriptor with bit 0 clear is invalid (faults).
    @inlinable public static var valid: UInt64 { 1 << 0 }
    /// Bit 1: table descriptor above level 3, page descriptor at level 3.
    /// Clear with bit 0 set: a block descriptor (reserved at level 3 and at
    /// levels without blocks).
    @inlinable public static var tableOrPage: UInt64 { 1 << 1 }
    /// Bit position of the MemAttr field (bits 5:2).
    @inlinable public static var memoryAttributesShift: UInt64 { 2 }
    /// Bits 5:2: MemAttr, the stage-2 memory type (with `HCR_EL2.FWB` = 0).
    @inlinable public static var memoryAttributes: UInt64 { 0b1111 << 2 }
    /// Bit 6: S2AP[0], read access.
    @inlinable public static var read: UInt64 { 1 << 6 }
    /// Bit 7: S2AP[1], write access.
    @inlinable public static var write: UInt64 { 1 << 7 }
    /// Bit position of the shareability field (bits 9:8).
    @inlinable public static var shareabilityShift: UInt64 { 8 }
    /// Bits 9:8: SH, shareability: 0 non-shareable, 2 outer, 3 inner shareable.
    @inlinable public static var shareability: UInt64 { 0b11 << 8 }
    /// Bits 9:8 = 3: inner shareable, which SLAT writes in every leaf.
    @inlinable public static var innerShareable: UInt64 { 0b11 << 8 }
    /// Bit 10: AF, the access flag. Access to a leaf with AF clear faults
    /// unless `VTCR_EL2.HA` lets hardware set it.
    @inlinable public static var accessFlag: UInt64 { 1 << 10 }
    /// Bit 10 in an *invalid* descriptor: KVM's "locked" marker, SLAT's frozen entry.
    @inlinable public static var locked: UInt64 { 1 << 10 }
    /// Bits 47:0: the span of the in-place output-address field (the bits
    /// below the granule or block size are not part of it).
    @inlinable public static var addressSpan: UInt64 { 0x0000_FFFF_FFFF_FFFF }
    /// Bits 15:12: OA[51:48] with the 64 KiB granule and a 52-bit PA.
    @inlinable public static var addressHigh: UInt64 { 0xF << 12 }
    /// How far OA[51:48] moves down into bits 15:12.
    @inlinable public static var addressHighShift: UInt64 { 36 }
    /// Bit 51: DBM, dirty bit modifier (hardware dirty state, `VTCR_EL2.HD`).
    @inlinable public static var dirtyBitModifier: UInt64 { 1 << 51 }
    /// Bit 52: contiguous hint.
    @inlinable public static var contiguous: UInt64 { 1 << 52 }
    /// Bit position of the execute-never field (bits 54:53).
    @inlinable public static var executeNeverShift: UInt64 { 53 }
    /// Bits 54:53: XN[1:0] with FEAT_XNX (0b00 executable at EL1 and EL0,
    /// 0b01 not at EL1, 0b10 at neither, 0b11 not at EL0).
    @inlinable public static var executeNeverField: UInt64 { 0b11 << 53 }
    /// Bit 54: XN — not executable (the whole field without FEAT_XNX, where bit 53 is RES0).
    @inlinable public static var executeNever: UInt64 { 1 << 54 }
    /// Bit position of the software field (bits 58:55).
    @inlinable public static var softwareShift: UInt64 { 55 }
    /// Width of the software field in bits.
    @inlinable public static var softwareWidth: Int { 4 }
    /// Bits 58:55: reserved for software use, `LeafAttributes/softwareBits` 0 to 3.
    @inlinable public static var software: UInt64 { 0b1111 << 55 }
    /// Bit 58 (software bit 3) in a leaf of tables a ``StageTwoPageTable``
    /// manages: **MMU-writable** (KVM x86's name for the same idea) — write
    /// access was removed only for dirty logging, and the fault handler may
    /// give it back without the MMU lock (its fast permission fault). Set
    /// only by the dirty-log write protection (and by a fault that maps a
    /// page read-only for a read while its slot logs); every other removal
    /// of write access clears it (``StageTwoFormat/changingPermissions(ofLeaf:grant:revoke:)``
    /// with write revoked, a new leaf from `map`, an unmap or zap).
    /// `StageTwoPageTable` refuses attributes with software bit 3
    /// (`SLATError.softwareBitReservedByMMU`); a raw `PageTable` over a
    /// ``StageTwoFormat`` with no MMU may use all four bits.
    @inlinable public static var mmuWritable: UInt64 { 1 << 58 }
    /// `LeafAttributes/softwareBits` value of ``mmuWritable``.
    @inlinable public static var mmuWritableSoftwareBit: UInt16 { 1 << 3 }
}
