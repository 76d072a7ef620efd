/// The stage-2 execute-never field (descriptor bits 54:53) as two tiny
/// lookup tables, so that encoding and decoding execute rights is shifts and
/// masks, with no branch on the entry.
///
/// Execute rights are written as a 2-bit number `PU`: bit 0 = executable by
/// privileged (EL1) code, bit 1 = executable by user (EL0) code — the
/// execute bits of ``Permissions`` shifted down by 2. A table packs four
/// 2-bit results, the one for index `i` at bits `2i+1:2i`.
///
/// With FEAT_XNX (XN[1:0] in bits 54:53):
///
/// | XN[1:0] | EL1 | EL0 | PU |
/// |---|---|---|---|
/// | 0b00 | yes | yes | 0b11 |
/// | 0b01 | no  | yes | 0b10 |
/// | 0b10 | no  | no  | 0b00 |
/// | 0b11 | yes | no  | 0b01 |
///
/// Without it only bit 54 (XN) counts and bit 53 is RES0: XN = 0 is
/// executable everywhere, XN = 1 nowhere, and a `PU` other than 0b11 encodes
/// as XN = 1 (execution needs both rights).
@usableFromInline
enum StageTwoExecuteNever {
    /// XN[1:0] → PU, with FEAT_XNX: entries 0b11, 0b10, 0b00, 0b01.
    @inlinable static var splitDecodeTable: UInt64 { 0b01_00_10_11 }
    /// PU → XN[1:0], with FEAT_XNX: entries 0b10, 0b11, 0b01, 0b00.
    @inlinable static var splitEncodeTable: UInt64 { 0b00_01_11_10 }
    /// XN[1:0] → PU, without FEAT_XNX (bit 53 ignored): entries 0b11, 0b11, 0b00, 0b00.
    @inlinable static var plainDecodeTable: UInt64 { 0b00_00_11_11 }
    /// PU → XN[1:0], without FEAT_XNX: entries 0b10, 0b10, 0b10, 0b00.
    @inlinable static var plainEncodeTable: UInt64 { 0b00_10_10_10 }

    /// The 2-bit entry at `index` (0...3) of a packed table.
    @inlinable
    static func lookUp(_ table: UInt64, _ index: UInt64) -> UInt64 { table &>> (index << 1) & 0b11 }
}
