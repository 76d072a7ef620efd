/// A half-open range `[start, start + size)` in one address space: guest-
/// physical bytes (``GuestPhysicalRange``), host-virtual bytes
/// (``HostVirtualRange``) or guest frames (``GuestFrameRange``, whose size
/// counts frames).
///
/// `size` may be zero; range operations of ``PageTable`` reject empty ranges
/// with ``SLATError/emptyRange``. Ranges ending at 2^64 are not
/// representable. A value type; it takes no lock.
@frozen
public struct AddressRange<Address: AddressValue>: Hashable, Sendable, CustomStringConvertible {
    /// The first address (or frame) of the range.
    public var start: Address
    /// The length, in the units of `Address` (bytes, or frames).
    public var size: UInt64

    /// The range of `size` units from `start`.
    @inlinable
    public init(start: Address, size: UInt64) {
        self.start = start
        self.size = size
    }

    /// The range from `start` up to, not including, `end`.
    ///
    /// - Throws: `SLATError/rangeEndBelowStart(start:end:)` when `end` is
    ///   below `start`.
    @inlinable
    public init(start: Address, end: Address) throws(SLATError) {
        guard end >= start else { throw .rangeEndBelowStart(start: start.rawValue, end: end.rawValue) }
        self.init(start: start, size: end.rawValue &- start.rawValue)
    }

    /// The range from `start` up to `end`, for SLAT's own callers, which
    /// derive `end` from a range that ends at or after `start` (an
    /// intersection, a resumed walk); no caller-supplied pair reaches it.
    @inlinable
    package init(start: Address, uncheckedEnd end: Address) {
        self.init(start: start, size: end.rawValue &- start.rawValue)
    }

    /// The first address past the range.
    @inlinable public var end: Address { Address(start.rawValue &+ size) }

    /// Whether the range holds nothing.
    @inlinable public var isEmpty: Bool { size == 0 }

    /// Whether `address` lies in the range.
    @inlinable
    public func contains(_ address: Address) -> Bool {
        address.rawValue &- start.rawValue < size
    }

    /// Whether `other` lies wholly inside this range.
    @inlinable
    public func contains(_ other: Self) -> Bool {
        other.start >= start && other.end <= end
    }

    /// Whether the two ranges share at least one unit.
    @inlinable
    public func overlaps(_ other: Self) -> Bool {
        !isEmpty && !other.isEmpty && start < other.end && other.start < end
    }

    /// What both ranges hold, or `nil` when they share nothing.
    @inlinable
    public func intersection(_ other: Self) -> Self? {
        guard overlaps(other) else { return nil }
        return Self(start: max(start, other.start), uncheckedEnd: min(end, other.end))
    }

    /// The smallest range holding both ranges (and everything between them).
    /// An empty range contributes nothing.
    @inlinable
    public func hull(_ other: Self) -> Self {
        if other.isEmpty { return self }
        if isEmpty { return other }
        return Self(start: min(start, other.start), uncheckedEnd: max(end, other.end))
    }

    /// The range as `[start, end)` in hexadecimal, after the address space's label.
    public var description: String { "\(Address.rangeLabel)[\(start), \(end))" }
}

/// A range of guest-physical addresses.
public typealias GuestPhysicalRange = AddressRange<GuestPhysicalAddress>
/// A range of host-virtual addresses: the unit of host page map changes and
/// of the notifier events they raise.
public typealias HostVirtualRange = AddressRange<HostVirtualAddress>
/// A range of guest frames: the unit in which invalidations and memslots
/// speak about guest memory.
public typealias GuestFrameRange = AddressRange<GuestFrameNumber>

extension AddressRange where Address == GuestFrameNumber {
    /// The range of `count` frames from `start`.
    @inlinable
    public init(start: GuestFrameNumber, count: UInt64) {
        self.init(start: start, size: count)
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

    /// How many frames the range holds.
    @inlinable
    public var count: UInt64 {
        get { size }
        set { size = newValue }
    }

    /// The guest-physical bytes of the range.
    @inlinable
    public var physicalRange: GuestPhysicalRange {
        GuestPhysicalRange(start: start.address, size: size << frameShift)
    }
}
