/// A memslot: a contiguous range of guest frames backed by a contiguous range
/// of the VMM's host-virtual memory (KVM's `kvm_memory_slot`).
///
/// A value type; it takes no lock. ``MemslotTable`` keeps the live set.
@frozen
public struct Memslot: Hashable, Sendable, CustomStringConvertible {
    /// The VMM's name for the slot, unique in a table.
    public var id: UInt32
    /// The first guest frame of the slot.
    public var baseFrame: GuestFrameNumber
    /// How many 4 KiB frames the slot holds (at least one in a table).
    public var pageCount: UInt64
    /// The host-virtual address of the slot's first byte (4 KiB-aligned in a table).
    public var hostAddress: HostVirtualAddress
    /// Dirty logging and read-only.
    public var flags: MemslotFlags

    /// A slot of `pageCount` frames from `baseFrame`, backed from `hostAddress`.
    @inlinable
    public init(
        id: UInt32, baseFrame: GuestFrameNumber, pageCount: UInt64,
        hostAddress: HostVirtualAddress, flags: MemslotFlags = []
    ) {
        self.id = id
        self.baseFrame = baseFrame
        self.pageCount = pageCount
        self.hostAddress = hostAddress
        self.flags = flags
    }

    /// The guest frames of the slot.
    @inlinable
    public var frames: GuestFrameRange { GuestFrameRange(start: baseFrame, count: pageCount) }

    /// The host-virtual bytes that back the slot.
    @inlinable
    public var hostRange: HostVirtualRange {
        HostVirtualRange(start: hostAddress, size: pageCount << frameShift)
    }

    /// Whether `frame` belongs to the slot.
    @inlinable
    public func contains(_ frame: GuestFrameNumber) -> Bool { frames.contains(frame) }

    /// The host-virtual address backing the first byte of `frame`, or `nil`
    /// when the frame is not in the slot.
    @inlinable
    public func hostAddress(of frame: GuestFrameNumber) -> HostVirtualAddress? {
        guard contains(frame) else { return nil }
        return hostAddress.advanced(by: (frame.rawValue &- baseFrame.rawValue) << frameShift)
    }

    /// The guest frame that `address` backs, or `nil` when the address is not
    /// in the slot's host range.
    @inlinable
    public func frame(of address: HostVirtualAddress) -> GuestFrameNumber? {
        guard hostRange.contains(address) else { return nil }
        return GuestFrameNumber(baseFrame.rawValue &+ (address.distance(from: hostAddress) >> frameShift))
    }

    /// The guest frames backed by the host-virtual bytes of `range` (whole
    /// frames, rounded outwards), or `nil` when the slot has none of them.
    @inlinable
    public func frames(backedBy range: HostVirtualRange) -> GuestFrameRange? {
        guard let common = hostRange.intersection(range) else { return nil }
        let first = common.start.distance(from: hostAddress) >> frameShift
        let last = (common.end.distance(from: hostAddress) &- 1) >> frameShift
        return GuestFrameRange(start: GuestFrameNumber(baseFrame.rawValue &+ first), count: last &- first &+ 1)
    }

    /// The largest guest-physical address size any second-level table
    /// translates: 52 bits (Arm FEAT_LPA/FEAT_LPA2; EPT's 5-level walk
    /// covers 57 bits of guest address but no CPU has more than 52 physical).
    public static let maximumGuestAddressBits = 52

    /// Whether the slot's ranges are well-formed for a table: at least one
    /// page, a 4 KiB-aligned host address, a guest range below
    /// 2^``maximumGuestAddressBits``, and the host range not wrapping past 2^64.
    @inlinable
    public var isWellFormed: Bool {
        guard pageCount != 0, hostAddress.isAligned(to: 1 << frameShift) else { return false }
        guard pageCount <= UInt64.max >> frameShift else { return false }
        let guestFrameLimit = UInt64(1) << UInt64(Self.maximumGuestAddressBits - Int(frameShift))
        guard baseFrame.rawValue < guestFrameLimit, pageCount <= guestFrameLimit - baseFrame.rawValue else { return false }
        let (_, guestOverflow) = baseFrame.rawValue.addingReportingOverflow(pageCount)
        let (_, hostOverflow) = hostAddress.rawValue.addingReportingOverflow(pageCount << frameShift)
        return !guestOverflow && !hostOverflow
    }

    /// The slot's id and its guest and host ranges.
    public var description: String {
        "memslot \(id): \(frames) -> \(hostRange)"
    }
}
