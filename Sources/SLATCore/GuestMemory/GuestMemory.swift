/// The guest memory of one VM as the MMU sees it: the memslots, the host page
/// map behind them and the invalidation tracker that ties host changes to
/// page faults.
///
/// ## Invalidation
/// It listens to its ``HostPageMap``. For a host `start` it finds every
/// memslot whose host range the event range touches (aliased slots each
/// count), begins an invalidation of each guest frame range in
/// ``invalidations``, then sends a ``GuestInvalidation`` `start` per range to
/// its listeners — the MMU backends zap the range there (taking the MMU lock
/// exclusively, after the tracker begin, as the tracker's protocol requires),
/// pfn caches drop what they hold. For the host `end` it ends those
/// invalidations (bumping the sequence), then sends the `end`s. Removing a
/// memslot, or making it read-only, is wrapped the same way.
///
/// ## Faults
/// ``resolve(frame:write:)`` takes the tracker snapshot first, then looks up
/// the memslot and the host page; the fault checks
/// ``InvalidationTracker/needsRetry(frame:since:)`` with the result's
/// ``ResolvedGuestPage/sequence`` under the MMU lock before installing.
///
/// ## Locking contract
/// Every method may be called from any thread. Lookups (``resolve(frame:write:)``
/// and the memslot queries) take only short internal reader locks and never
/// wait for a listener. Memslot changes wait until no host invalidation is in
/// flight and hold off new ones meanwhile. Listener callbacks run on the
/// thread making the change — with the host map's change lock held for host
/// changes — and may take the MMU lock, look up memslots and host pages and
/// call `resolve`, but must not change the memslots or the host map.
public final class GuestMemory: Sendable {
    /// The host address space behind the memslots. Change it freely; its
    /// notifier keeps this object informed.
    public let hostPages: HostPageMap
    /// The invalidation state faults check under the MMU lock.
    public let invalidations: InvalidationTracker
    @usableFromInline let memslots: MemslotTable
    private let listeners: ListenerList<GuestInvalidation>
    private let translator: HostEventTranslator
    private let hostListener: ListenerToken

    /// Guest memory with no memslot, over `hostPages` (a fresh empty address
    /// space by default), listening to its notifier from now on.
    public init(hostPages: HostPageMap = HostPageMap()) {
        let memslots = MemslotTable()
        let tracker = InvalidationTracker()
        let listeners = ListenerList<GuestInvalidation>()
        let translator = HostEventTranslator(memslots: memslots, tracker: tracker, listeners: listeners)
        self.hostPages = hostPages
        self.invalidations = tracker
        self.memslots = memslots
        self.listeners = listeners
        self.translator = translator
        self.hostListener = hostPages.addListener { event in translator.handle(event) }
    }

    deinit {
        hostPages.removeListener(hostListener)
    }

    // MARK: Listeners

    /// Registers `listener` for the guest invalidation events of later
    /// changes; returns the token for ``removeListener(_:)``.
    public func addListener(_ listener: @escaping @Sendable (GuestInvalidation) -> Void) -> ListenerToken {
        listeners.add(listener)
    }

    /// Unregisters a listener; it may still receive an event being delivered.
    @discardableResult
    public func removeListener(_ token: ListenerToken) -> Bool {
        listeners.remove(token)
    }

    // MARK: Memslots

    /// Adds a memslot (no invalidation: nothing was mapped there). Waits for
    /// in-flight host invalidations to end first. Throws as
    /// ``MemslotTable/insert(_:)``.
    public func addMemslot(_ slot: Memslot) throws(SLATError) {
        try translator.memslotUpdates.withExclusive { () throws(SLATError) in
            try memslots.insert(slot)
        }
    }

    /// Removes the memslot named `id` and returns it: invalidates its whole
    /// guest range (listeners zap it), removes it, ends the invalidation.
    /// Throws ``SLATError/unknownMemslot(slot:)`` when there is none.
    @discardableResult
    public func removeMemslot(id: UInt32) throws(SLATError) -> Memslot {
        try translator.memslotUpdates.withExclusive { () throws(SLATError) -> Memslot in
            guard let slot = memslots.memslot(id: id) else { throw .unknownMemslot(slot: id) }
            return try invalidating(slot, cause: .memslotRemoved) { () throws(SLATError) in
                try memslots.remove(id: id)
            }
        }
    }

    /// Replaces the flags of the memslot named `id`. Making it read-only
    /// invalidates its guest range (writable translations must go), and so
    /// does changing its memory type (``MemslotFlags/memoryTypes``); other
    /// changes only update the table (enabling dirty logging is the MMU's
    /// own write-protect / split flow). Throws
    /// ``SLATError/unknownMemslot(slot:)`` when there is none.
    public func updateMemslotFlags(id: UInt32, to flags: MemslotFlags) throws(SLATError) {
        try updateMemslotFlags(id: id) { _ in flags }
    }

    /// Adds `flags` to the memslot named `id`, reading and writing its flags
    /// in one step (a concurrent change of other flags is kept). As
    /// ``updateMemslotFlags(id:to:)`` otherwise.
    public func updateMemslotFlags(id: UInt32, inserting flags: MemslotFlags) throws(SLATError) {
        try updateMemslotFlags(id: id) { $0.union(flags) }
    }

    /// Removes `flags` from the memslot named `id`, in one step. As
    /// ``updateMemslotFlags(id:inserting:)``.
    public func updateMemslotFlags(id: UInt32, removing flags: MemslotFlags) throws(SLATError) {
        try updateMemslotFlags(id: id) { $0.subtracting(flags) }
    }

    /// Replaces the flags of memslot `id` by `transform` of the current ones,
    /// under the memslot update lock.
    private func updateMemslotFlags(id: UInt32, _ transform: (MemslotFlags) -> MemslotFlags) throws(SLATError) {
        try translator.memslotUpdates.withExclusive { () throws(SLATError) in
            guard let slot = memslots.memslot(id: id) else { throw .unknownMemslot(slot: id) }
            let flags = transform(slot.flags)
            if flags.contains(.readOnly) && !slot.flags.contains(.readOnly) {
                _ = try invalidating(slot, cause: .memslotMadeReadOnly) { () throws(SLATError) in
                    try memslots.updateFlags(id: id, to: flags)
                }
            } else if flags.intersection(.memoryTypes) != slot.flags.intersection(.memoryTypes) {
                _ = try invalidating(slot, cause: .memslotMemoryTypeChanged) { () throws(SLATError) in
                    try memslots.updateFlags(id: id, to: flags)
                }
            } else {
                try memslots.updateFlags(id: id, to: flags)
            }
        }
    }

    /// Runs `change` between a begin/start and end/end of `slot`'s range.
    /// Called with the memslot update lock held exclusively.
    private func invalidating<R>(
        _ slot: Memslot, cause: GuestInvalidationCause, _ change: () throws(SLATError) -> R
    ) throws(SLATError) -> R {
        let entry = HostEventTranslator.Pending(
            hostID: 0, guestID: translator.nextEventID(), cause: cause,
            ranges: [HostEventTranslator.SlotRange(memslot: slot.id, range: slot.frames)])
        translator.begin(entry)
        defer { translator.end(entry) }
        return try change()
    }

    /// The memslot holding `frame`, or `nil` (binary search).
    public func memslot(containing frame: GuestFrameNumber) -> Memslot? {
        memslots.lookup(frame: frame)
    }

    /// The memslot holding `frame` and the memslot generation it was found
    /// in, read together.
    public func versionedMemslot(containing frame: GuestFrameNumber) -> (memslot: Memslot?, generation: UInt64) {
        memslots.versionedLookup(frame: frame)
    }

    /// The memslot named `id`, or `nil`.
    public func memslot(id: UInt32) -> Memslot? {
        memslots.memslot(id: id)
    }

    /// Every memslot, sorted by base frame.
    public var allMemslots: [Memslot] { memslots.memslots }

    /// Bumped by every memslot change; pfn caches compare it.
    @inlinable public var memslotGeneration: UInt64 { memslots.generation }

    /// The memslots backed by any byte of the host range, sorted by base frame.
    public func memslots(overlapping range: HostVirtualRange) -> [Memslot] {
        memslots.memslots(overlapping: range)
    }

    // MARK: Faults

    /// Everything a fault on `frame` needs: the memslot, the host frame, the
    /// largest mapping size the host mapping and the memslot's alignment and
    /// bounds allow (KVM's host mapping level and memslot alignment check),
    /// the write permission and dirty-logging state, and the invalidation
    /// snapshot taken before the lookups.
    ///
    /// Throws ``SLATError/noMemslot(_:)`` when no memslot holds the frame
    /// (MMIO) and ``SLATError/hostAddressNotMapped(_:)`` when the host maps
    /// nothing behind it. A write (`write: true`) needs write access: to a
    /// read-only memslot it throws ``SLATError/readOnlyMemslot(slot:frame:)``
    /// (the VMM emulates it, as KVM exits for MMIO), and to a page the host
    /// maps read-only ``SLATError/hostPageReadOnly(_:)``. A read of a writable page reports ``ResolvedGuestPage/writable``
    /// so the MMU can map it writable at once.
    public func resolve(frame: GuestFrameNumber, write: Bool) throws(SLATError) -> ResolvedGuestPage {
        let sequence = invalidations.snapshot()
        guard let slot = memslots.lookup(frame: frame),
              let address = slot.hostAddress(of: frame)
        else { throw .noMemslot(frame) }
        let slotWritable = !slot.flags.contains(.readOnly)
        if write && !slotWritable { throw .readOnlyMemslot(slot: slot.id, frame: frame) }
        guard let page = hostPages.lookup(address) else { throw .hostAddressNotMapped(address) }
        if write && !page.writable { throw .hostPageReadOnly(address) }
        return ResolvedGuestPage(
            frame: frame, memslot: slot, hostAddress: address, hostFrame: page.frame,
            hostMappingSize: page.mappingSize,
            maximumMappingSize: Self.maximumMappingSize(frame: frame, slot: slot, hostSize: page.mappingSize),
            writable: page.writable && slotWritable,
            dirtyLogging: slot.flags.contains(.dirtyLogging),
            sequence: sequence)
    }

    /// The largest size not above `hostSize` whose aligned block around
    /// `frame` lies inside `slot` with guest and host addresses congruent
    /// modulo the size (so the block maps one aligned host block). What
    /// ``resolve(frame:write:)`` reports as
    /// ``ResolvedGuestPage/maximumMappingSize``, for a fault path that
    /// resolves from a memo of its last memslot and host run.
    @inlinable
    public static func maximumMappingSize(
        frame: GuestFrameNumber, slot: Memslot, hostSize: HostMappingSize
    ) -> HostMappingSize {
        var size = hostSize
        while let smaller = size.smaller {
            let frames = size.frameCount
            let blockStart = frame.rawValue & ~(frames &- 1)
            let insideSlot = blockStart >= slot.baseFrame.rawValue
                && blockStart &+ frames <= slot.frames.end.rawValue
            let hostFrameIndex = slot.hostAddress.rawValue >> frameShift
            let congruent = (hostFrameIndex &- slot.baseFrame.rawValue) & (frames &- 1) == 0
            if insideSlot && congruent { return size }
            size = smaller
        }
        return size
    }
}
