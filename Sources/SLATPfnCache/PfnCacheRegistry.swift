import SLATCore

/// The pfn caches of one VM and the notifier plumbing that invalidates them
/// (KVM's per-VM cache list, in-flight invalidation count and range, and
/// wait queue).
///
/// It listens to the VM's ``HostPageMap`` notifier directly, in host-virtual
/// space (caches may be bound to host addresses no memslot covers), and to
/// the ``GuestMemory`` events of memslot removals and read-only changes,
/// which it turns into the host-virtual range of the memslot. For each
/// invalidation `start` it counts the invalidation in flight, widens the
/// in-flight range, then visits the active caches: each is checked under its
/// read lock, and only a cache whose address is in the range is taken under
/// its write lock and marked invalid. When the `start` callback returns, no
/// accessor of a covered cache is running and none will run on the old
/// mapping (concurrency rule 6). Each `end` bumps the sequence, drops the
/// count and, at zero, wakes the refreshes waiting for it.
///
/// Other notifier sources (a VMM's own mmu-notifier glue, or a model of
/// invalidations that overlap — Linux runs `MADV_DONTNEED` under the mmap
/// lock held for reading, so its ranges overlap, while ``HostPageMap``
/// serialises its changes) call ``invalidateRangeStart(_:)`` and
/// ``invalidateRangeEnd(_:)`` themselves.
///
/// Locking contract: every method may be called from any thread. The
/// notifier callbacks run on the changing thread; they take the cache list's
/// lock briefly, the in-flight mutex briefly and each covered cache's lock
/// exclusively (so they wait for running accessors of that cache to return).
/// Therefore an accessor's closure must not change the host map or the
/// memslots.
public final class PfnCacheRegistry: Sendable {
    /// The VM's guest memory: memslots for guest-address caches, the host
    /// page map for every cache.
    public let guestMemory: GuestMemory
    /// The bytes behind host frames that caches map.
    public let hostMemory: HostFrameMemory
    /// The in-flight invalidations in host-virtual space.
    let invalidations = InFlightInvalidations()
    /// The active caches.
    private let caches = ReaderWriterLocked<[PfnCache]>([])
    /// Host events whose `start` this registry saw (it may have been
    /// registered in the middle of a change and must ignore that `end`), and
    /// the host ranges of in-flight memslot invalidations by guest event id
    /// and memslot.
    private let pending = ReaderWriterLocked<Pending>(Pending())
    private let tokens = ReaderWriterLocked<(host: ListenerToken?, guest: ListenerToken?)>((nil, nil))

    private struct Pending: Sendable {
        var hostEvents: Set<UInt64> = []
        var memslotEvents: [MemslotEventKey: HostVirtualRange] = [:]
    }

    private struct MemslotEventKey: Hashable, Sendable {
        var id: UInt64
        var memslot: UInt32
    }

    /// A registry for `guestMemory`, mapping frames of `hostMemory` (a fresh
    /// model by default), listening to its notifiers from now on.
    public init(guestMemory: GuestMemory, hostMemory: HostFrameMemory = HostFrameMemory()) {
        self.guestMemory = guestMemory
        self.hostMemory = hostMemory
        // Weak: the host map and the guest memory must not keep the registry alive.
        let host = guestMemory.hostPages.addListener { [weak self] event in self?.handleHost(event) }
        let guest = guestMemory.addListener { [weak self] event in self?.handleGuest(event) }
        tokens.write { $0 = (host, guest) }
    }

    deinit {
        let (host, guest) = tokens.read { $0 }
        if let host { guestMemory.hostPages.removeListener(host) }
        if let guest { guestMemory.removeListener(guest) }
    }

    // MARK: Notifier entry points

    /// Notifier `start` for host-virtual `range`: counts it in flight, widens
    /// the in-flight range, and invalidates every active cache whose address
    /// is in `range`. When it returns, no accessor of such a cache runs on
    /// its old mapping and no refresh of it can publish until the matching
    /// ``invalidateRangeEnd(_:)``. Takes each covered cache's lock exclusively.
    public func invalidateRangeStart(_ range: HostVirtualRange) {
        invalidations.begin(range)
        for cache in caches.read({ $0 }) {
            cache.invalidate(ifCovering: range)
        }
    }

    /// Notifier `end` matching an ``invalidateRangeStart(_:)``: the change is
    /// visible; bumps the sequence and, when none is left in flight, wakes the
    /// refreshes waiting. Calling it without a matching start is a
    /// programmer error (trap).
    public func invalidateRangeEnd(_ range: HostVirtualRange) {
        _ = range
        invalidations.end()
    }

    /// Invalidations in flight now (started, not ended).
    public var invalidationsInFlight: UInt64 { invalidations.inFlightCount }

    /// How many caches are active.
    public var activeCacheCount: Int { caches.read { $0.count } }

    // MARK: Cache list

    func register(_ cache: PfnCache) {
        caches.write { list in
            if !list.contains(where: { $0 === cache }) { list.append(cache) }
        }
    }

    func unregister(_ cache: PfnCache) {
        caches.write { list in list.removeAll { $0 === cache } }
    }

    // MARK: Listeners

    private func handleHost(_ event: HostInvalidation) {
        switch event.phase {
        case .start:
            pending.write { _ = $0.hostEvents.insert(event.id) }
            invalidateRangeStart(event.range)
        case .end:
            guard pending.write({ $0.hostEvents.remove(event.id) }) != nil else { return }
            invalidateRangeEnd(event.range)
        }
    }

    /// Memslot removals and read-only changes: the guest-address caches in
    /// the slot resolved their host address through it. Host-caused guest
    /// events are ignored: the host listener has seen them in host space.
    private func handleGuest(_ event: GuestInvalidation) {
        switch event.cause {
        case .memslotRemoved, .memslotMadeReadOnly: break
        case .host: return
        }
        let key = MemslotEventKey(id: event.id, memslot: event.memslot)
        switch event.phase {
        case .start:
            // The slot still exists at `start` (it changes between start and end).
            guard let slot = guestMemory.memslot(id: event.memslot),
                  let first = slot.hostAddress(of: event.range.start)
            else { return }
            let range = HostVirtualRange(start: first, size: event.range.count << frameShift)
            pending.write { $0.memslotEvents[key] = range }
            invalidateRangeStart(range)
        case .end:
            guard let range = pending.write({ $0.memslotEvents.removeValue(forKey: key) }) else { return }
            invalidateRangeEnd(range)
        }
    }
}
