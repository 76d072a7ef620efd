import Synchronization

/// The part of ``GuestMemory`` that the host page map's notifier calls: it
/// turns host-virtual notifier ranges into guest frame ranges through the
/// memslots, drives the invalidation tracker and forwards guest events.
///
/// A separate object so that the host map's listener closure does not keep
/// the ``GuestMemory`` alive (it holds no reference to the host map).
///
/// Locking contract: ``handle(_:)`` is called by ``HostPageMap`` on the
/// changing thread with the map's change lock held (so host events never
/// interleave). A host `start` takes ``memslotUpdates`` shared and the
/// matching `end` releases it, so the memslots cannot change while a host
/// invalidation is in flight (KVM makes a memslot update wait for
/// in-progress invalidations for the same reason: a slot added mid-way
/// would be missed by the in-flight range). Listeners run outside every
/// internal lock except those two.
final class HostEventTranslator: Sendable {
    /// One guest range of an in-flight host event.
    struct SlotRange: Sendable {
        var memslot: UInt32
        var range: GuestFrameRange
    }

    /// A host event between its `start` and `end`.
    struct Pending: Sendable {
        var hostID: UInt64
        var guestID: UInt64
        var cause: GuestInvalidationCause
        var ranges: [SlotRange]
    }

    let memslots: MemslotTable
    let tracker: InvalidationTracker
    let listeners: ListenerList<GuestInvalidation>
    /// Held shared by in-flight host invalidations, exclusively by memslot changes.
    let memslotUpdates = SpinningReaderWriterLock()
    private let pending = ReaderWriterLocked<[Pending]>([])
    private let eventIDs = Atomic<UInt64>(0)

    init(memslots: MemslotTable, tracker: InvalidationTracker, listeners: ListenerList<GuestInvalidation>) {
        self.memslots = memslots
        self.tracker = tracker
        self.listeners = listeners
    }

    /// A fresh id for a guest event.
    func nextEventID() -> UInt64 {
        eventIDs.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// The host map's listener.
    func handle(_ event: HostInvalidation) {
        switch event.phase {
        case .start: hostStart(event)
        case .end: hostEnd(event)
        }
    }

    private func hostStart(_ event: HostInvalidation) {
        memslotUpdates.lockShared()
        var ranges: [SlotRange] = []
        for slot in memslots.memslots(overlapping: event.range) {
            if let frames = slot.frames(backedBy: event.range) {
                ranges.append(SlotRange(memslot: slot.id, range: frames))
            }
        }
        let entry = Pending(hostID: event.id, guestID: nextEventID(), cause: .host(event.kind), ranges: ranges)
        pending.write { $0.append(entry) }
        begin(entry)
    }

    private func hostEnd(_ event: HostInvalidation) {
        let entry = pending.write { list -> Pending? in
            guard let index = list.firstIndex(where: { $0.hostID == event.id }) else { return nil }
            return list.remove(at: index)
        }
        // No entry: this translator was registered after the event started.
        guard let entry else { return }
        end(entry)
        memslotUpdates.unlockShared()
    }

    /// Tracker begin for every range, then every `start` event.
    func begin(_ entry: Pending) {
        for part in entry.ranges { tracker.beginInvalidation(part.range) }
        for part in entry.ranges {
            listeners.notify(GuestInvalidation(
                id: entry.guestID, phase: .start, range: part.range, memslot: part.memslot, cause: entry.cause))
        }
    }

    /// Tracker end for every range, then every `end` event.
    func end(_ entry: Pending) {
        for part in entry.ranges { tracker.endInvalidation(part.range) }
        for part in entry.ranges {
            listeners.notify(GuestInvalidation(
                id: entry.guestID, phase: .end, range: part.range, memslot: part.memslot, cause: entry.cause))
        }
    }
}
