/// What a page fault needs to know about a guest frame: the answer of
/// ``GuestMemory/resolve(frame:write:)``.
///
/// A value type; it takes no lock. It was true when ``sequence`` was current;
/// the fault must check ``InvalidationTracker/needsRetry(frame:since:)`` (or
/// the range form for a block) under the MMU lock before installing it.
@frozen
public struct ResolvedGuestPage: Hashable, Sendable {
    /// The faulting frame.
    public var frame: GuestFrameNumber
    /// The memslot holding it.
    public var memslot: Memslot
    /// The host-virtual address backing the frame.
    public var hostAddress: HostVirtualAddress
    /// The host frame backing the frame.
    public var hostFrame: HostFrameNumber
    /// The host's own mapping size for that page.
    public var hostMappingSize: HostMappingSize
    /// The largest mapping the guest may use for the frame: no larger than
    /// the host mapping, with the guest and host addresses congruent modulo
    /// the size, and the whole aligned block inside the memslot. Dirty
    /// logging and other policy are not applied here (see ``dirtyLogging``).
    public var maximumMappingSize: HostMappingSize
    /// Whether the guest may be given write access: the host maps the page
    /// writable and the memslot is not read-only.
    public var writable: Bool
    /// Whether the memslot logs dirty pages (the MMU then maps 4 KiB pages and
    /// tracks writes).
    public var dirtyLogging: Bool
    /// The invalidation sequence taken before the lookups.
    public var sequence: InvalidationSequence

    /// A resolution; ``GuestMemory`` builds these.
    @inlinable
    public init(
        frame: GuestFrameNumber, memslot: Memslot, hostAddress: HostVirtualAddress,
        hostFrame: HostFrameNumber, hostMappingSize: HostMappingSize,
        maximumMappingSize: HostMappingSize, writable: Bool, dirtyLogging: Bool,
        sequence: InvalidationSequence
    ) {
        self.frame = frame
        self.memslot = memslot
        self.hostAddress = hostAddress
        self.hostFrame = hostFrame
        self.hostMappingSize = hostMappingSize
        self.maximumMappingSize = maximumMappingSize
        self.writable = writable
        self.dirtyLogging = dirtyLogging
        self.sequence = sequence
    }

    /// The guest frames a mapping of `size` around the frame covers; a size
    /// above ``maximumMappingSize`` (which the memslot and host mapping do
    /// not back whole) gives the block of ``maximumMappingSize``.
    @inlinable
    public func block(_ size: HostMappingSize) -> GuestFrameRange {
        let size = min(size, maximumMappingSize)
        return GuestFrameRange(
            start: GuestFrameNumber(frame.rawValue & ~(size.frameCount &- 1)), count: size.frameCount)
    }

    /// The host frame at the start of the mapping of `size` around the
    /// frame: the output of that block (of ``maximumMappingSize`` for a
    /// larger size, as ``block(_:)``).
    @inlinable
    public func blockHostFrame(_ size: HostMappingSize) -> HostFrameNumber {
        let size = min(size, maximumMappingSize)
        return HostFrameNumber(hostFrame.rawValue & ~(size.frameCount &- 1))
    }
}
