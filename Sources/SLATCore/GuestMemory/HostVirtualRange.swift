/// A half-open range of host-virtual addresses `[start, start + size)`: the
/// unit of host page map changes and of the notifier events they raise.
///
/// A value type; it takes no lock.
@frozen
public struct HostVirtualRange: Hashable, Sendable, CustomStringConvertible {
    /// The first byte of the range.
    public var start: HostVirtualAddress
    /// The length in bytes (zero for an empty range).
    public var size: UInt64

    /// The range of `size` bytes from `start`.
    @inlinable
    public init(start: HostVirtualAddress, size: UInt64) {
        self.start = start
        self.size = size
    }

    /// The range from `start` up to, not including, `end` (`end >= start`).
    @inlinable
    public init(start: HostVirtualAddress, end: HostVirtualAddress) {
        precondition(end >= start, "range end below its start")
        self.init(start: start, size: end.rawValue - start.rawValue)
    }

    /// The first address past the range. Ranges ending at 2^64 are not representable.
    @inlinable public var end: HostVirtualAddress { HostVirtualAddress(start.rawValue &+ size) }

    /// Whether the range holds no byte.
    @inlinable public var isEmpty: Bool { size == 0 }

    /// Whether `address` lies in the range.
    @inlinable
    public func contains(_ address: HostVirtualAddress) -> Bool {
        address.rawValue &- start.rawValue < size
    }

    /// Whether `other` lies wholly inside this range.
    @inlinable
    public func contains(_ other: HostVirtualRange) -> Bool {
        other.start >= start && other.end <= end
    }

    /// Whether the two ranges share at least one byte.
    @inlinable
    public func overlaps(_ other: HostVirtualRange) -> Bool {
        !isEmpty && !other.isEmpty && start < other.end && other.start < end
    }

    /// The bytes both ranges hold, or `nil` when they share none.
    @inlinable
    public func intersection(_ other: HostVirtualRange) -> HostVirtualRange? {
        guard overlaps(other) else { return nil }
        return HostVirtualRange(start: max(start, other.start), end: min(end, other.end))
    }

    /// The range as `hva [start, end)` in hexadecimal.
    public var description: String { "hva [\(start), \(end))" }
}
