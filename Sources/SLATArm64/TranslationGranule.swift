import SLATCore

/// The translation granule of an Armv8-A stage-2 regime (`VTCR_EL2.TG0`):
/// the size of a page and of a table page.
@frozen
public enum TranslationGranule: Int, Hashable, Sendable {
    /// 4 KiB pages and tables of 512 entries.
    case size4KiB = 4096
    /// 16 KiB pages and tables of 2048 entries.
    case size16KiB = 16384
    /// 64 KiB pages and tables of 8192 entries.
    case size64KiB = 65536

    /// The granule of `byteCount` bytes.
    ///
    /// - Throws: `SLATError/unsupportedGranule(_:)` unless `byteCount` is
    ///   4096, 16384 or 65536.
    @inlinable
    public init(byteCount: Int) throws(SLATError) {
        guard let granule = TranslationGranule(rawValue: byteCount) else { throw .unsupportedGranule(byteCount) }
        self = granule
    }

    /// Bytes in one page or table page.
    @inlinable public var byteCount: Int { rawValue }

    /// log2 of ``byteCount``: 12, 14 or 16.
    @inlinable public var shift: Int {
        switch self {
        case .size4KiB: 12
        case .size16KiB: 14
        case .size64KiB: 16
        }
    }

    /// The `VTCR_EL2.TG0` encoding: 0b00 for 4 KiB, 0b10 for 16 KiB, 0b01 for 64 KiB.
    @inlinable public var translationControlEncoding: UInt64 {
        switch self {
        case .size4KiB: 0b00
        case .size16KiB: 0b10
        case .size64KiB: 0b01
        }
    }
}
