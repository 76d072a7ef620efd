import SLATCore

/// The stage-2 MemAttr field (descriptor bits 5:2), in both of its
/// encodings: the one of `HCR_EL2.FWB` = 0, where stage 2 limits what stage
/// 1 chose, and the one of FEAT_S2FWB with `HCR_EL2.FWB` = 1, where stage 2
/// can force the final type (Arm ARM D8, "Stage 2 memory type and
/// Cacheability attributes when FEAT_S2FWB is enabled"/"disabled").
///
/// | type | FWB = 0 | FWB = 1 |
/// |---|---|---|
/// | ``MemoryType/writeBack`` (normal WB) | 0b1111 | 0b0110 (forced write-back; KVM's `MT_S2_FWB_NORMAL`) |
/// | ``MemoryType/writeThrough`` (normal WT) | 0b1010 | none |
/// | ``MemoryType/writeCombining`` (normal NC) | 0b0101 | 0b0101 |
/// | ``MemoryType/uncached`` (Device-nGnRnE) | 0b0000 | 0b0000 |
/// | ``MemoryType/device`` (Device-nGnRE) | 0b0001 | 0b0001 |
///
/// With FWB, MemAttr[3] (descriptor bit 5) is RES0 and 0b0111 means "use
/// stage 1's attributes", which no ``MemoryType`` names: other values
/// decode as ``MemoryType/reserved(_:)``. ``MemoryType/writeProtected`` has
/// no stage-2 encoding.
@usableFromInline
enum StageTwoMemoryAttributes {
    /// The MemAttr value for `type`, or `nil` when stage 2 cannot encode it
    /// in the encoding `forcedWriteBack` selects.
    @inlinable
    static func field(of type: MemoryType, forcedWriteBack: Bool = false) -> UInt8? {
        switch type {
        case .writeBack: forcedWriteBack ? 0b0110 : 0xF
        case .writeThrough: forcedWriteBack ? nil : 0xA
        case .writeCombining: 0x5
        case .uncached: 0x0
        case .device: 0x1
        case .writeProtected, .reserved: nil
        }
    }

    /// The memory type a 4-bit MemAttr value names in the encoding
    /// `forcedWriteBack` selects.
    @inlinable
    static func type(ofField field: UInt8, forcedWriteBack: Bool = false) -> MemoryType {
        switch (field & 0xF, forcedWriteBack) {
        case (0xF, false), (0b0110, true): .writeBack
        case (0xA, false): .writeThrough
        case (0x5, _): .writeCombining
        case (0x0, _): .uncached
        case (0x1, _): .device
        case (let other, _): .reserved(other)
        }
    }
}
