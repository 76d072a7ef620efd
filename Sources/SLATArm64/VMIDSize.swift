/// The width of the virtual machine identifier that tags a guest's stage-2
/// TLB entries (`VTCR_EL2.VS`; 16 bits needs FEAT_VMID16).
@frozen
public enum VMIDSize: Int, Hashable, Sendable {
    /// 8-bit VMIDs: `VTTBR_EL2` bits 55:48.
    case bits8 = 8
    /// 16-bit VMIDs: `VTTBR_EL2` bits 63:48.
    case bits16 = 16

    /// The number of VMID bits.
    @inlinable public var bitCount: Int { rawValue }

    /// The largest VMID of this size.
    @inlinable public var maximum: UInt32 { (1 << UInt32(rawValue)) - 1 }
}
