/// A half-open range of guest frames `[start, start + count)`: the unit in
/// which invalidations and memslots speak about guest memory.
///
/// A value type; it takes no lock.
@frozen
public struct GuestFrameRange: Hashable, Sendable, CustomStringConvertible {
    /// The first frame of the range.
    public var start: GuestFrameNumber
    /// How many frames the range holds (zero for an empty range).
    public var count: UInt64

    /// The range of `count` frames from `start`.
    @inlinable
    public init(start: GuestFrameNumber, count: UInt64) {
        self.start = start
        self.count = count
    }

    /// The range from `start` up to, not including, `end` (`end >= start`).
    @inlinable
    public init(start: GuestFrameNumber, end: GuestFrameNumber) {
        precondition(end >= start, "range end below its start")
        self.init(start: start, count: end.rawValue - start.rawValue)
    }

    /// The smallest frame range holding every byte of `range` (an empty
    /// guest-physical range gives an empty frame range at its start frame).
    @inlinable
    public init(covering range: GuestPhysicalRange) {
        let first = range.start.rawValue >> frameShift
        guard !range.isEmpty else {
            self.init(start: GuestFrameNumber(first), count: 0)
            return
        }
        let last = (range.start.rawValue &+ (range.size &- 1)) >> frameShift
        self.init(start: GuestFrameNumber(first), count: last &- first &+ 1)
    }

    /// The frame just past the range.
    @inlinable public var end: GuestFrameNumber { GuestFrameNumber(start.rawValue &+ count) }

    /// Whether the range holds no frame.
    @inlinable public var isEmpty: Bool { count == 0 }

    /// The guest-physical bytes of the range.
    @inlinable
    public var physicalRange: GuestPhysicalRange {
        GuestPhysicalRange(start: start.address, size: count << frameShift)
    }

    /// Whether `frame` lies in the range.
    @inlinable
    public func contains(_ frame: GuestFrameNumber) -> Bool {
        frame.rawValue &- start.rawValue < count
    }

    /// Whether `other` lies wholly inside this range.
    @inlinable
    public func contains(_ other: GuestFrameRange) -> Bool {
        other.start >= start && other.end <= end
    }

    /// Whether the two ranges share at least one frame.
    @inlinable
    public func overlaps(_ other: GuestFrameRange) -> Bool {
        !isEmpty && !other.isEmpty && start < other.end && other.start < end
    }

    /// The frames both ranges hold, or `nil` when they share none.
    @inlinable
    public func intersection(_ other: GuestFrameRange) -> GuestFrameRange? {
        guard overlaps(other) else { return nil }
        return GuestFrameRange(start: max(start, other.start), end: min(end, other.end))
    }

    /// The smallest range holding both ranges (and everything between them).
    /// An empty range contributes nothing.
    @inlinable
    public func hull(_ other: GuestFrameRange) -> GuestFrameRange {
        if other.isEmpty { return self }
        if isEmpty { return other }
        return GuestFrameRange(start: min(start, other.start), end: max(end, other.end))
    }

    /// The range as `frames [start, end)` in hexadecimal.
    public var description: String { "frames [\(start), \(end))" }
}
