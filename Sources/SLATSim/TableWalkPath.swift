import SLATCore

/// The table pages a hardware walk went through, root first: what a
/// paging-structure (walk) cache holds for the translation it produced.
///
/// A fixed-size value (at most ``capacity`` pages), so recording it costs no
/// allocation on the access path.
@frozen
public struct TableWalkPath: Hashable, Sendable, CustomStringConvertible {
    /// The most pages a path holds (5-level EPT walks use five; one spare).
    public static var capacity: Int { 6 }

    @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    /// Pages recorded.
    public private(set) var count: Int = 0

    /// An empty path.
    @inlinable public init() {}

    /// A path through `pages` (at most ``capacity``).
    public init(_ pages: [HostPhysicalAddress]) {
        // Internal: walks record at most one page per level, and formats
        // have at most six levels (PageTable.checkGeometry).
        precondition(pages.count <= Self.capacity, "a walk path holds at most \(Self.capacity) pages")
        for page in pages { append(page) }
    }

    /// Records the next page of the walk.
    public mutating func append(_ page: HostPhysicalAddress) {
        // As in init: one page per level of a format of at most six.
        precondition(count < Self.capacity, "walk deeper than \(Self.capacity) levels")
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.storeBytes(of: page.rawValue, toByteOffset: count &* 8, as: UInt64.self)
        }
        count &+= 1
    }

    /// The page at `index` (0 = the root page the walk started in).
    public subscript(index: Int) -> HostPhysicalAddress {
        // An index past the path is a test reading beyond the walk it
        // recorded (as an Array subscript would trap).
        precondition(index >= 0 && index < count, "walk path index out of range")
        return withUnsafeBytes(of: storage) { raw in
            HostPhysicalAddress(raw.load(fromByteOffset: index &* 8, as: UInt64.self))
        }
    }

    /// Whether the walk went through `page`.
    public func contains(_ page: HostPhysicalAddress) -> Bool {
        for index in 0..<count where self[index] == page { return true }
        return false
    }

    /// The pages, root first.
    public var pages: [HostPhysicalAddress] { (0..<count).map { self[$0] } }

    public static func == (lhs: TableWalkPath, rhs: TableWalkPath) -> Bool { lhs.pages == rhs.pages }
    public func hash(into hasher: inout Hasher) { hasher.combine(pages) }

    public var description: String { "[" + pages.map(\.description).joined(separator: " → ") + "]" }
}
