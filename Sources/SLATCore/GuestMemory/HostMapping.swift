/// One run of host mappings of equal size and permission: `count` mappings
/// of `size` from `start`, backed by consecutive host frames from `frame`.
/// ``HostPageMap`` describes the host address space as a sorted list of these.
///
/// A value type; it takes no lock.
@frozen
public struct HostMapping: Hashable, Sendable, CustomStringConvertible {
    /// The first mapped address (aligned to `size`).
    public var start: HostVirtualAddress
    /// The host frame backing `start` (aligned to `size`).
    public var frame: HostFrameNumber
    /// The size of each mapping in the run.
    public var size: HostMappingSize
    /// How many mappings of `size` the run holds (at least one).
    public var count: UInt64
    /// Whether the run is mapped writable.
    public var writable: Bool

    /// A run description.
    @inlinable
    public init(
        start: HostVirtualAddress, frame: HostFrameNumber, size: HostMappingSize,
        count: UInt64, writable: Bool
    ) {
        self.start = start
        self.frame = frame
        self.size = size
        self.count = count
        self.writable = writable
    }

    /// The addresses the run maps.
    @inlinable
    public var range: HostVirtualRange { HostVirtualRange(start: start, size: count << size.shift) }

    /// The host frame backing `address`, which must lie in ``range``.
    @inlinable
    public func frame(of address: HostVirtualAddress) -> HostFrameNumber {
        HostFrameNumber(frame.rawValue &+ (address.distance(from: start) >> frameShift))
    }

    /// The page description of `address`, which must lie in ``range``.
    @inlinable
    public func page(at address: HostVirtualAddress) -> HostPage {
        let base = address.alignedDown(to: size.bytes)
        return HostPage(
            frame: frame(of: address), mappingSize: size, mappingBase: base,
            mappingFrame: frame(of: base), writable: writable)
    }

    /// The run's range, first frame, size and permission.
    public var description: String {
        "\(range) -> pfn \(frame) (\(count) x \(size)\(writable ? "" : ", read-only"))"
    }

    /// The runs that map `[from, to)` (4 KiB-aligned) to consecutive frames
    /// from `frame`, using mappings of `size` where both the addresses and the
    /// frames allow, and smaller ones towards the unaligned edges. This is how
    /// the host re-expresses what is left of a huge page it has to split.
    static func runs(
        from: HostVirtualAddress, to: HostVirtualAddress, frame: HostFrameNumber,
        size: HostMappingSize, writable: Bool
    ) -> [HostMapping] {
        guard from < to else { return [] }
        func frameAt(_ address: HostVirtualAddress) -> HostFrameNumber {
            HostFrameNumber(frame.rawValue &+ (address.distance(from: from) >> frameShift))
        }
        guard let smaller = size.smaller else {
            return [HostMapping(
                start: from, frame: frame, size: .size4K,
                count: to.distance(from: from) >> frameShift, writable: writable)]
        }
        let bytes = size.bytes
        // Mappings of `size` need the address and the frame congruent modulo it.
        let congruent = (from.rawValue ^ (frame.rawValue << frameShift)) & (bytes &- 1) == 0
        guard congruent, let bodyStart = from.alignedUp(to: bytes) else {
            return runs(from: from, to: to, frame: frame, size: smaller, writable: writable)
        }
        let bodyEnd = to.alignedDown(to: bytes)
        guard bodyStart < bodyEnd else {
            return runs(from: from, to: to, frame: frame, size: smaller, writable: writable)
        }
        var result = runs(from: from, to: bodyStart, frame: frame, size: smaller, writable: writable)
        result.append(HostMapping(
            start: bodyStart, frame: frameAt(bodyStart), size: size,
            count: bodyEnd.distance(from: bodyStart) >> size.shift, writable: writable))
        result += runs(from: bodyEnd, to: to, frame: frameAt(bodyEnd), size: smaller, writable: writable)
        return result
    }
}
