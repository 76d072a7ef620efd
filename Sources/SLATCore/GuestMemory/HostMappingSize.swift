/// The size of one host page-table mapping: what the host MMU maps in one
/// entry (a base page, a 2 MiB huge page, a 1 GiB huge page). A guest block
/// mapping is never larger than the host mapping behind it.
///
/// A value type; it takes no lock.
@frozen
public enum HostMappingSize: UInt8, Comparable, Hashable, Sendable, CustomStringConvertible {
    /// A 4 KiB base page.
    case size4K = 0
    /// A 2 MiB huge page.
    case size2M = 1
    /// A 1 GiB huge page.
    case size1G = 2

    /// log2 of ``bytes``.
    @inlinable
    public var shift: UInt64 {
        switch self {
        case .size4K: 12
        case .size2M: 21
        case .size1G: 30
        }
    }

    /// The mapping's length in bytes.
    @inlinable public var bytes: UInt64 { 1 << shift }

    /// How many 4 KiB frames one mapping of this size spans.
    @inlinable public var frameCount: UInt64 { 1 << (shift - frameShift) }

    /// The next smaller size, `nil` for 4 KiB.
    @inlinable
    public var smaller: HostMappingSize? {
        switch self {
        case .size4K: nil
        case .size2M: .size4K
        case .size1G: .size2M
        }
    }

    /// Orders sizes from 4 KiB to 1 GiB.
    @inlinable
    public static func < (lhs: HostMappingSize, rhs: HostMappingSize) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// `4K`, `2M` or `1G`.
    public var description: String {
        switch self {
        case .size4K: "4K"
        case .size2M: "2M"
        case .size1G: "1G"
        }
    }
}
