/// The invalidations and deferred page frees an operation has accumulated:
/// the copyable body of a ``TLBFlushBatch`` that walk visitors fill in.
///
/// Up to ``addressCapacity`` addresses and as many ranges are kept exactly;
/// beyond that the requests degrade to one range covering all of them.
@frozen
public struct FlushRequests {
    /// Single-address (and separate range) invalidations kept before degrading.
    public static let addressCapacity = 8

    @usableFromInline var addresses: [(GuestPhysicalAddress, LeafLevel)] = []
    @usableFromInline var ranges: [GuestPhysicalRange] = []
    @usableFromInline var hullStart: UInt64 = .max
    @usableFromInline var hullEnd: UInt64 = 0
    @usableFromInline var overflowed = false
    @usableFromInline var wholeContext = false
    @usableFromInline var pagesToFree: [HostPhysicalAddress] = []

    /// No requests.
    @inlinable public init() {}

    /// Whether nothing is owed and no page waits.
    @inlinable
    public var isEmpty: Bool {
        addresses.isEmpty && ranges.isEmpty && !overflowed && !wholeContext && pagesToFree.isEmpty
    }

    /// Whether any invalidation is owed.
    @inlinable
    public var owesInvalidation: Bool { !addresses.isEmpty || !ranges.isEmpty || overflowed || wholeContext }

    @inlinable
    mutating func widenHull(_ start: UInt64, _ end: UInt64) {
        hullStart = min(hullStart, start)
        hullEnd = max(hullEnd, end)
    }

    /// Owes an invalidation of `address`, a leaf of `size` bytes at `level`.
    @inlinable
    public mutating func invalidate(address: GuestPhysicalAddress, level: LeafLevel, size: UInt64) {
        widenHull(address.rawValue, address.rawValue &+ size)
        if overflowed || wholeContext { return }
        if addresses.count < Self.addressCapacity { addresses.append((address, level)) } else { overflowed = true }
    }

    /// Owes an invalidation of every translation in `range`.
    @inlinable
    public mutating func invalidate(range: GuestPhysicalRange) {
        widenHull(range.start.rawValue, range.end.rawValue)
        if overflowed || wholeContext { return }
        if ranges.count < Self.addressCapacity { ranges.append(range) } else { overflowed = true }
    }

    /// Owes a whole-context invalidation.
    @inlinable
    public mutating func invalidateAll() { wholeContext = true }

    /// Frees `page` only after the flush.
    @inlinable
    public mutating func freeAfterFlush(_ page: HostPhysicalAddress) { pagesToFree.append(page) }

    /// Adds everything `other` owes.
    @inlinable
    public mutating func merge(_ other: FlushRequests) {
        if other.wholeContext { wholeContext = true }
        if other.overflowed { overflowed = true }
        widenHull(other.hullStart, other.hullEnd)
        for (address, level) in other.addresses {
            if overflowed || wholeContext { break }
            if addresses.count < Self.addressCapacity { addresses.append((address, level)) } else { overflowed = true }
        }
        for range in other.ranges {
            if overflowed || wholeContext { break }
            if ranges.count < Self.addressCapacity { ranges.append(range) } else { overflowed = true }
        }
        pagesToFree.append(contentsOf: other.pagesToFree)
    }

    /// Issues the owed invalidations to `tlb`.
    @inlinable
    public func issue<T: TLB>(to tlb: T) {
        if wholeContext {
            tlb.invalidateAll()
        } else if overflowed {
            tlb.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(hullStart), size: hullEnd &- hullStart))
        } else {
            for (address, level) in addresses { tlb.invalidate(address: address, level: level) }
            for range in ranges { tlb.invalidate(range: range) }
        }
    }
}
