/// A half-open range of guest-physical addresses `[start, start + size)`.
///
/// `size` may be zero only where an operation says so; range operations
/// reject empty ranges with ``SLATError/emptyRange``.
@frozen
public struct GuestPhysicalRange: Hashable, Sendable, CustomStringConvertible {
    public var start: GuestPhysicalAddress
    public var size: UInt64

    @inlinable
    public init(start: GuestPhysicalAddress, size: UInt64) {
        self.start = start
        self.size = size
    }

    /// The range from `start` up to, not including, `end` (`end >= start`).
    @inlinable
    public init(start: GuestPhysicalAddress, end: GuestPhysicalAddress) {
        precondition(end >= start, "range end below its start")
        self.start = start
        self.size = end.rawValue - start.rawValue
    }

    /// The first address past the range. Ranges ending at 2^64 are not representable.
    @inlinable public var end: GuestPhysicalAddress { GuestPhysicalAddress(start.rawValue &+ size) }

    @inlinable public var isEmpty: Bool { size == 0 }

    @inlinable
    public func contains(_ address: GuestPhysicalAddress) -> Bool {
        address.rawValue &- start.rawValue < size
    }

    @inlinable
    public func overlaps(_ other: GuestPhysicalRange) -> Bool {
        start < other.end && other.start < end && !isEmpty && !other.isEmpty
    }

    /// Whether `other` lies wholly inside this range.
    @inlinable
    public func contains(_ other: GuestPhysicalRange) -> Bool {
        other.start >= start && other.end <= end
    }

    public var description: String { "[\(start), \(end))" }
}
