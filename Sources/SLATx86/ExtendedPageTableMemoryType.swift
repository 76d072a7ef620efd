import SLATCore

/// The EPT memory-type field (leaf bits 5:3) and the EPTP memory-type field
/// (bits 2:0) use the same encodings as the x86 PAT/MTRR memory types.
///
/// | value | type |
/// |---|---|
/// | 0 | UC (``MemoryType/uncached``) |
/// | 1 | WC (``MemoryType/writeCombining``) |
/// | 4 | WT (``MemoryType/writeThrough``) |
/// | 5 | WP (``MemoryType/writeProtected``) |
/// | 6 | WB (``MemoryType/writeBack``) |
/// | 2, 3, 7 | reserved (``MemoryType/reserved(_:)``) |
///
/// ``MemoryType/device`` has no EPT encoding.
@usableFromInline
enum ExtendedPageTableMemoryType {
    /// The field value for `type`, or `nil` when EPT cannot encode it.
    @inlinable
    static func field(of type: MemoryType) -> UInt8? {
        switch type {
        case .uncached: 0
        case .writeCombining: 1
        case .writeThrough: 4
        case .writeProtected: 5
        case .writeBack: 6
        case .device, .reserved: nil
        }
    }

    /// The memory type a 3-bit field value names.
    @inlinable
    static func type(ofField field: UInt8) -> MemoryType {
        switch field & 0b111 {
        case 0: .uncached
        case 1: .writeCombining
        case 4: .writeThrough
        case 5: .writeProtected
        case 6: .writeBack
        case let other: .reserved(other)
        }
    }
}
