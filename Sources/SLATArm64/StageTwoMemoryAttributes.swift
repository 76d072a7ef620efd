import SLATCore

/// The stage-2 MemAttr field (descriptor bits 5:2, with `HCR_EL2.FWB` = 0).
///
/// | MemAttr | type |
/// |---|---|
/// | 0xF | normal, inner and outer write-back (``MemoryType/writeBack``) |
/// | 0xA | normal, inner and outer write-through (``MemoryType/writeThrough``) |
/// | 0x5 | normal, inner and outer non-cacheable (``MemoryType/writeCombining``) |
/// | 0x0 | Device-nGnRnE (``MemoryType/uncached``) |
/// | 0x1 | Device-nGnRE (``MemoryType/device``) |
/// | other | not named here: ``MemoryType/reserved(_:)`` |
///
/// ``MemoryType/writeProtected`` has no stage-2 encoding.
@usableFromInline
enum StageTwoMemoryAttributes {
    /// The MemAttr value for `type`, or `nil` when stage 2 cannot encode it.
    @inlinable
    static func field(of type: MemoryType) -> UInt8? {
        switch type {
        case .writeBack: 0xF
        case .writeThrough: 0xA
        case .writeCombining: 0x5
        case .uncached: 0x0
        case .device: 0x1
        case .writeProtected, .reserved: nil
        }
    }

    /// The memory type a 4-bit MemAttr value names.
    @inlinable
    static func type(ofField field: UInt8) -> MemoryType {
        switch field & 0xF {
        case 0xF: .writeBack
        case 0xA: .writeThrough
        case 0x5: .writeCombining
        case 0x0: .uncached
        case 0x1: .device
        case let other: .reserved(other)
        }
    }
}
