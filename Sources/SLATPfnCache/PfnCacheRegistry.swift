import SLATCore
import Synchronization

/// The pfn caches of one VM and the notifier plumbing that invalidates them
/// (KVM's per-VM cache list, in-flight invalidation count and range, and
/// wait queue).
///
/// It listens to the VM's `HostPageMap` notifier directly, in host-virtual
/// space (caches may be bound to host addresses no memslot covers), and to
/// the `GuestMemory` events of memslot removals and read-only changes,
/// which it turns into the host-virtual range of the memslot. For each
/// invalidation `start` it counts the invalidation in flight, widens the
/// in-flight range, then visits the caches: each is checked with one atomic
/// load of its watch word (no lock: a refresh of an unrelated cache never
/// waits for the visit), and only a cache whose page overlaps the range is
/// taken under its write lock, re-checked and marked invalid. When the
/// `start` callback returns, no accessor of a covered cache is running and
/// none will run on the old mapping (concurrency rule 6). Each `end` bumps
/// the sequence, drops the count and, at zero, wakes the refreshes waiting
/// for it (if any).
///
/// Other notifier sources (a VMM's own mmu-notifier glue, or a model of
/// invalidations that overlap — Linux runs `MADV_DONTNEED` under the mmap
/// lock held for reading, so its ranges overlap, while `HostPageMap`
/// serialises its changes) call ``invalidateRangeStart(_:)`` and
/// ``invalidateRangeEnd(_:)`` themselves.
///
/// Locking contract: every method may be called from any thread. The
/// notifier callbacks run on the changing thread; they take the cache list's
/// lock shared while they read the watch words (a few loads per cache; the
/// list changes only when a cache is created or destroyed), the in-flight
/// mutex briefly, and each covered cache's lock exclusively (so they wait
/// for running accessors of that cache to return). Therefore an accessor's
/// closure must not change the host map or the memslots. The registry lists
/// every cache created on it, active or not, until the cache is destroyed;
/// it does not keep caches alive.
public final class PfnCacheRegistry: Sendable {
    /// The VM's guest memory: memslots for guest-address caches, the host
    /// page map for every cache.
    public let guestMemory: GuestMemory
    /// How caches reach the bytes of the host pages they resolve.
    public let hostMemory: any PfnCacheHostMemory
    /// The in-flight invalidations in host-virtual space.
    let invalidations = InFlightInvalidations()
    /// Every live cache of this registry (active or not).
    private let caches = ReaderWriterLocked<[Entry]>([])
    /// Host events whose `start` this registry saw (it may have been
    /// registered in the middle of a change and must ignore that `end`), and
    /// the host ranges of in-flight memslot invalidations by guest event id
    /// and memslot.
    private let pending = ReaderWriterLocked<Pending>(Pending())
    private let tokens = ReaderWriterLocked<(host: ListenerToken?, guest: ListenerToken?)>((nil, nil))

    /// One listed cache. The list does not own it: the cache removes its
    /// entry in `deinit`, under the list's write lock, before its memory
    /// goes away, so `object` may be read while the list's lock is held (the
    /// watch word, without reference counting); `reference` (weak) yields a
    /// strong reference for use after the lock is released, or `nil` once
    /// the cache has begun to deinitialise.
    private struct Entry: Sendable {
        unowned(unsafe) let object: PfnCache
        weak var reference: PfnCache?
        let identity: ObjectIdentifier
    }

    private struct Pending: Sendable {
        var hostEvents: Set<UInt64> = []
        var memslotEvents: [MemslotEventKey: HostVirtualRange] = [:]
    }

    private struct MemslotEventKey: Hashable, Sendable {
        var id: UInt64
        var memslot: UInt32
    }

    /// A registry for `guestMemory` whose caches reach host pages through
    /// `hostMemory` (a fresh ``HostFrameMemory`` model by default; a
    /// ``ProcessMappedHostMemory`` for guest RAM the VMM has mapped),
    /// listening to its notifiers from now on.
    public init(guestMemory: GuestMemory, hostMemory: any PfnCacheHostMemory = HostFrameMemory()) {
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
        // Store buffering with the fence after a refresh arms its watch
        // word: either this visit reads the armed word, or that refresh's
        // in-flight checks see this invalidation (PfnCache.attempt).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        // Lock-free screen of every cache; only overlapping ones are taken
        // (strongly) and invalidated under their lock, after the list's lock
        // is released (that may wait for an accessor's closure).
        let covered = caches.read { entries -> [PfnCache] in
            var covered: [PfnCache] = []
            for index in entries.indices where entries[index].object.watchOverlaps(range) {
                if let cache = entries[index].reference { covered.append(cache) }
            }
            return covered
        }
        for cache in covered {
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
    public var activeCacheCount: Int {
        caches.read { entries in
            entries.indices.reduce(0) { count, index in
                count + (entries[index].object.activeWord.load(ordering: .relaxed) ? 1 : 0)
            }
        }
    }

    /// How many caches the registry lists (every live cache created on it).
    var listedCacheCount: Int { caches.read { $0.count } }

    // MARK: Cache list

    /// Lists `cache`; called once, at the end of its initialiser.
    func register(_ cache: PfnCache) {
        let entry = Entry(object: cache, reference: cache, identity: ObjectIdentifier(cache))
        caches.write { list in list.append(entry) }
    }

    /// Removes the entry of the cache with `identity`; called from its
    /// `deinit`, so no visit can read it after its memory is freed.
    func unregister(_ cache: PfnCache) {
        let identity = ObjectIdentifier(cache)
        caches.write { list in list.removeAll { $0.identity == identity } }
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
        case .memslotRemoved, .memslotMadeReadOnly, .memslotMemoryTypeChanged: break
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
