import SLATCore
import Synchronization

/// One guest (or VMM) page kept mapped for the host's own use — a shared-info
/// page, a steal-time record, a vCPU's run area — that the host reads and
/// writes directly and must never touch once an invalidation of its address
/// has started (KVM's `gfn_to_pfn_cache`).
///
/// ## Life cycle
/// ``activate(guestAddress:length:)`` or ``activate(hostAddress:length:)``
/// binds the cache to an address and refreshes it; ``check(length:)`` says
/// whether the mapping is valid right now; ``refresh(length:)`` makes it valid
/// again after an invalidation; ``withMappedBytes(length:_:)`` runs a closure
/// on the mapped bytes under the cache's read lock (so the pointer cannot be
/// used past an invalidation) and ``access(length:_:)`` refreshes as needed
/// first; ``deactivate()`` unbinds it. A cache is listed by its
/// ``PfnCacheRegistry`` from creation to destruction (the registry does not
/// keep it alive); an inactive cache is never visited by invalidations.
///
/// ## Invalidation
/// When a notifier `start` covering the cache's host-virtual address returns,
/// ``check(length:)`` is `false` and no accessor runs on the old mapping; no
/// refresh publishes a mapping until the relevant invalidations have ended
/// (concurrency rule 6). Memslot removals and read-only changes covering a
/// guest-address cache invalidate it the same way, and a refresh that
/// resolved through a memslot generation that has since changed resolves
/// again.
///
/// ## Refresh
/// See ``PfnCacheRefreshStrategy``. Range-tracked (the default): arm a flag
/// under the write lock, sleep while the in-flight range covers the address,
/// resolve the host frame with no lock held, re-take the write lock and
/// publish if the flag is still armed, else loop once more. Legacy: resolve,
/// and loop while any invalidation is in flight or the sequence moved.
///
/// ## Locking contract
/// Every method may be called from any thread. Refreshes, activations and
/// deactivations of one cache are serialised by its refresh mutex and block
/// (a range-tracked refresh may sleep until invalidations end). The mapping
/// state is guarded by a writer-preferring reader-writer lock: accessors hold
/// it shared while their closure runs; invalidations and publications hold
/// it exclusively and briefly. An invalidation takes it only when the
/// cache's watch word (an atomic mirror of its address and of whether a
/// mapping is published or being resolved) overlaps the invalidated range,
/// so a refresh never waits for invalidations elsewhere.
/// ``check(length:)`` takes no lock. A closure
/// given to an accessor must not call this cache's methods, nor change the
/// host page map or the memslots (the invalidation would wait for the
/// closure: deadlock). The host page map, guest memory and host memory are
/// the registry's; no TLB is involved (the host uses the pointer directly).
// @unchecked Sendable: `state` is the only mutable stored property; it is
// read with `lock` held shared or exclusively and written only with `lock`
// held exclusively (and, outside invalidations, with `refreshMutex` held
// too). The lock's acquire/release ordering publishes every write to later
// holders. `checkWord`, `watchWord` and `activeWord` are atomic mirrors of
// parts of `state` (written with `lock` held exclusively) for the lock-free
// ``check(length:)``, invalidation screen and active count.
public final class PfnCache: @unchecked Sendable {
    /// The registry the cache belongs to (its guest memory, host memory and
    /// notifier state).
    public let registry: PfnCacheRegistry
    /// How refreshes wait and retry.
    public let strategy: PfnCacheRefreshStrategy

    private let lock = PThreadReaderWriterLock()
    /// Serialises activate/refresh/deactivate; a sleeping lock (only its
    /// exclusive mode is used) because a refresh may sleep holding it.
    private let refreshMutex = PThreadReaderWriterLock()
    private var state = State()
    /// `validBit | page offset` while the mapping is valid, else 0.
    @usableFromInline let checkWord = Atomic<UInt64>(0)
    /// Keeps `watchWord`, which every notifier `start` reads, off the lines
    /// of the fields a refresh writes (counters, `checkWord`, the state).
    private let watchSeparation = CacheLineGap()
    /// What the registry's invalidation visit reads without a lock:
    /// `watchedBit | host page number of state.hostAddress` while the
    /// mapping is valid or a refresh is resolving it (`valid || armed`),
    /// else 0. Written only with `lock` held exclusively, together with the
    /// state it mirrors.
    let watchWord = Atomic<UInt64>(0)
    private let trailingWatchSeparation = CacheLineGap()
    /// `state.active`, for the registry's count without the cache lock.
    let activeWord = Atomic<Bool>(false)
    private let attempts = Atomic<UInt64>(0)
    private let waits = Atomic<UInt64>(0)
    private let refreshes = Atomic<UInt64>(0)
    private let contendedHolds = Atomic<UInt64>(0)
    private let snapshotRetries = Atomic<UInt64>(0)
    private let visitLocks = Atomic<UInt64>(0)
    /// Test seam: called on the refreshing thread after each host-frame
    /// resolution, before the write lock is re-taken (no lock held).
    let afterResolution: (@Sendable (UInt64) -> Void)?

    @usableFromInline static var validBit: UInt64 { 1 << 63 }
    static var watchedBit: UInt64 { 1 << 63 }
    @usableFromInline static var pageBytes: UInt64 { 1 << frameShift }

    /// The mapping state, guarded by `lock`.
    private struct State {
        var target: PfnCacheTarget?
        var active = false
        /// The mapping may be used.
        var valid = false
        /// A refresh is resolving (or has published) the current address;
        /// an invalidation covering it disarms it. The range-tracked
        /// strategy publishes only while armed; legacy ignores it (it
        /// re-checks the in-flight count and sequence instead), but arms
        /// too, so that the lock-free visit sees its resolution.
        var armed = false
        /// The host-virtual address the refresh resolved the target to.
        var hostAddress: HostVirtualAddress?
        /// The host frame published, while valid.
        var hostFrame: HostFrameNumber?
        /// The published first byte (the target's byte), while valid.
        var bytes: UnsafeMutableRawPointer?
        /// The host memory's access mapping behind `bytes` (its page's
        /// first byte, the page and the frame), until it is unmapped.
        var mapping: (base: UnsafeMutableRawPointer, page: HostVirtualAddress, frame: HostFrameNumber)?
    }

    /// An inactive cache of `registry` that refreshes with `strategy`.
    public convenience init(registry: PfnCacheRegistry, strategy: PfnCacheRefreshStrategy = .rangeTracked) {
        self.init(registry: registry, strategy: strategy, afterResolution: nil)
    }

    init(
        registry: PfnCacheRegistry, strategy: PfnCacheRefreshStrategy,
        afterResolution: (@Sendable (UInt64) -> Void)?
    ) {
        self.registry = registry
        self.strategy = strategy
        self.afterResolution = afterResolution
        // Listed for the cache's whole life, so that activation and
        // refresh never change the registry's list (which every notifier
        // start reads).
        registry.register(self)
    }

    deinit {
        registry.unregister(self)
        if let mapping = state.mapping {
            registry.hostMemory.unmapAfterAccess(mapping.base, page: mapping.page, frame: mapping.frame)
        }
    }

    // MARK: Activation

    /// Binds the cache to guest-physical `address` for accesses of `length`
    /// bytes and refreshes it (resolving through the memslots). On error the
    /// cache is left inactive.
    ///
    /// Throws `SLATError/pfnCacheLengthOutOfPage(offset:length:)` when
    /// `length` is not positive or runs past the page, `SLATError/noMemslot(_:)`
    /// when no memslot holds the address, `SLATError/readOnlyMemslot(slot:frame:)`
    /// for a read-only slot, `SLATError/hostAddressNotMapped(_:)` and
    /// `SLATError/hostPageReadOnly(_:)` from the host page map.
    public func activate(guestAddress address: GuestPhysicalAddress, length: Int) throws(SLATError) {
        try activate(.guest(address), length: length)
    }

    /// Binds the cache to host-virtual `address` for accesses of `length`
    /// bytes and refreshes it. On error the cache is left inactive. Throws as
    /// ``activate(guestAddress:length:)`` (without the memslot errors).
    public func activate(hostAddress address: HostVirtualAddress, length: Int) throws(SLATError) {
        try activate(.host(address), length: length)
    }

    /// Binds the cache to `target` and refreshes it; see the two forms above.
    public func activate(_ target: PfnCacheTarget, length: Int) throws(SLATError) {
        try Self.validate(length: length, offset: target.pageOffset)
        try exclusively(refreshMutex) { () throws(SLATError) in
            exclusively(lock) {
                if state.target != target { state.hostAddress = nil }
                state.target = target
                state.active = true
                activeWord.store(true, ordering: .relaxed)
                unpublish()
            }
            do throws(SLATError) {
                try refreshLocked(length: length)
            } catch {
                deactivateLocked()
                throw error
            }
        }
    }

    /// Unbinds the cache: invalid and inactive (no invalidation visits it
    /// any more). Waits for running accessors and for a refresh in progress.
    public func deactivate() {
        exclusively(refreshMutex) { deactivateLocked() }
    }

    private func deactivateLocked() {
        exclusively(lock) {
            state.active = false
            activeWord.store(false, ordering: .relaxed)
            unpublish()
        }
    }

    // MARK: Queries

    /// Whether an access of `length` bytes at the cached address may use the
    /// mapping right now: active, valid, and inside the page. Lock-free (one
    /// atomic load); the answer can change at once, so users that go on to
    /// touch the bytes use an accessor, which checks again under the lock.
    @inlinable
    public func check(length: Int) -> Bool {
        let word = checkWord.load(ordering: .acquiring)
        return word != 0 && length > 0 && (word & ~Self.validBit) &+ UInt64(truncatingIfNeeded: length) <= Self.pageBytes
    }

    /// The address the cache is bound to, or `nil` before the first activation.
    public var target: PfnCacheTarget? { lock.withShared { state.target } }

    /// Whether the cache is active.
    public var isActive: Bool { lock.withShared { state.active } }

    /// The host frame of the valid mapping, or `nil` while invalid.
    public var hostFrame: HostFrameNumber? { lock.withShared { state.valid ? state.hostFrame : nil } }

    /// The host-virtual address last resolved for the target, or `nil`.
    public var hostAddress: HostVirtualAddress? { lock.withShared { state.hostAddress } }

    /// Host-frame resolutions made by refreshes so far (one per attempt).
    public var resolutionCount: UInt64 { attempts.load(ordering: .relaxed) }
    /// Times a range-tracked refresh slept for invalidations covering its address.
    public var waitCount: UInt64 { waits.load(ordering: .relaxed) }
    /// Refreshes that published a mapping.
    public var publishedRefreshCount: UInt64 { refreshes.load(ordering: .relaxed) }
    /// Times an activation, refresh or deactivation found the cache lock or
    /// the refresh mutex held by another thread and had to block for it
    /// (instrumentation: a refresh whose address no invalidation covers
    /// should never have to).
    public var contendedLockCount: UInt64 { contendedHolds.load(ordering: .relaxed) }
    /// Times a range-tracked refresh re-read the in-flight state because a
    /// notifier was rewriting it at that moment (sequence-lock read retries).
    public var inFlightSnapshotRetryCount: UInt64 { snapshotRetries.load(ordering: .relaxed) }
    /// Times an invalidation visit took this cache's lock (only visits of
    /// invalidations whose range overlaps the watched page do).
    var invalidationVisitLockCount: UInt64 { visitLocks.load(ordering: .relaxed) }

    /// Runs `body` holding `lock` exclusively, counting a hold that had to
    /// wait for another thread (the refresh path's instrumentation).
    private func exclusively<R, E: Error>(_ lock: PThreadReaderWriterLock, _ body: () throws(E) -> R) throws(E) -> R {
        if !lock.tryLockExclusive() {
            contendedHolds.wrappingAdd(1, ordering: .relaxed)
            lock.lockExclusive()
        }
        defer { lock.unlockExclusive() }
        return try body()
    }

    // MARK: Refresh

    /// Makes the mapping valid for accesses of `length` bytes, resolving the
    /// host frame again unless it is valid already. Blocks until done: a
    /// range-tracked refresh sleeps while invalidations cover its address; a
    /// legacy refresh spins while any invalidation is in flight.
    ///
    /// Throws `SLATError/pfnCacheInactive` when not active,
    /// `SLATError/pfnCacheLengthOutOfPage(offset:length:)` for a bad
    /// length, and the resolution errors listed at
    /// ``activate(guestAddress:length:)``; the cache is then left invalid.
    public func refresh(length: Int) throws(SLATError) {
        try exclusively(refreshMutex) { () throws(SLATError) in try refreshLocked(length: length) }
    }

    /// The refresh loop; called with `refreshMutex` held.
    private func refreshLocked(length: Int) throws(SLATError) {
        let target = try exclusively(lock) { () throws(SLATError) -> PfnCacheTarget in
            guard state.active, let target = state.target else { throw .pfnCacheInactive }
            try Self.validate(length: length, offset: target.pageOffset)
            return target
        }
        if check(length: length) { return }
        do throws(SLATError) {
            while true {
                if try attempt(target) { break }
                #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
                _ = ExplorationHooks.spin()  // under a controlled scheduler: let the notifiers run
                #endif
            }
            refreshes.wrappingAdd(1, ordering: .relaxed)
        } catch {
            exclusively(lock) { unpublish() }
            throw error
        }
    }

    /// One resolution; returns whether it was published.
    private func attempt(_ target: PfnCacheTarget) throws(SLATError) -> Bool {
        let count = attempts.wrappingAdd(1, ordering: .relaxed).newValue
        // 1. The host-virtual address (memslot lookup for a guest address).
        let address: HostVirtualAddress
        var generation: UInt64?
        switch target {
        case .host(let host):
            address = host
        case .guest(let guest):
            let (slot, slotGeneration) = registry.guestMemory.versionedMemslot(containing: guest.frame)
            guard let slot, let base = slot.hostAddress(of: guest.frame) else { throw .noMemslot(guest.frame) }
            if slot.flags.contains(.readOnly) { throw .readOnlyMemslot(slot: slot.id, frame: guest.frame) }
            address = base.advanced(by: target.pageOffset)
            generation = slotGeneration
        }
        // 2. Arm before any lookup: an invalidation of the address that
        //    starts from now on either disarms the attempt or is seen in
        //    flight by the wait (range-tracked) or the sequence (legacy).
        exclusively(lock) {
            state.hostAddress = address
            state.armed = true
            publishWatch()
        }
        // Pairs with the fence in `PfnCacheRegistry.invalidateRangeStart`
        // between counting an invalidation in flight and reading the
        // caches' watch words (store buffering): either that visit sees the
        // armed watch word, or the reads below see the invalidation.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        let strategy = ExplorationHooks.isActive(.pfnCacheLegacyRetry) ? .legacy : self.strategy
        #endif
        let sequence: UInt64
        switch strategy {
        case .legacy:
            sequence = registry.invalidations.currentSequence
        case .rangeTracked:
            sequence = 0
            let outcome = registry.invalidations.waitUntilClear(of: address)
            if outcome.slept { waits.wrappingAdd(1, ordering: .relaxed) }
            if outcome.snapshotRetries != 0 {
                snapshotRetries.wrappingAdd(outcome.snapshotRetries, ordering: .relaxed)
            }
        }
        // 3. Resolve the host frame, no lock held.
        guard let page = registry.guestMemory.hostPages.lookup(address) else { throw .hostAddressNotMapped(address) }
        guard page.writable else { throw .hostPageReadOnly(address) }
        let pageAddress = address.alignedDown(to: Self.pageBytes)
        let base = try registry.hostMemory.mapForAccess(page: pageAddress, frame: page.frame)
        let bytes = base.advanced(by: Int(target.pageOffset))
        afterResolution?(count)
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.reached(.pfnCacheResolved)
        #endif
        // 4. Publish unless an invalidation may have overtaken the resolution.
        let published = exclusively(lock) { () -> Bool in
            let stale = switch strategy {
            case .legacy: registry.invalidations.anyActivity(since: sequence)
            case .rangeTracked: !state.armed
            }
            if stale { return false }
            if let generation, registry.guestMemory.memslotGeneration != generation {
                state.armed = false
                publishWatch()
                return false
            }
            unmapAccess()
            state.valid = true
            state.hostFrame = page.frame
            state.bytes = bytes
            state.mapping = (base, pageAddress, page.frame)
            publishWatch()
            checkWord.store(Self.validBit | target.pageOffset, ordering: .releasing)
            return true
        }
        if !published { registry.hostMemory.unmapAfterAccess(base, page: pageAddress, frame: page.frame) }
        return published
    }

    // MARK: Access

    /// Runs `body` on the `length` mapped bytes at the cached address, with
    /// the read lock held (an invalidation of the address waits for `body` to
    /// return, and no accessor starts on the old mapping after it). Returns
    /// `nil` without running `body` when the mapping is not valid (refresh and
    /// try again). The pointer must not escape `body`.
    ///
    /// Throws `SLATError/pfnCacheInactive` when not active and
    /// `SLATError/pfnCacheLengthOutOfPage(offset:length:)` for a bad length.
    public func withMappedBytes<R>(
        length: Int, _ body: (UnsafeMutableRawBufferPointer) -> R
    ) throws(SLATError) -> R? {
        try lock.withShared { () throws(SLATError) -> R? in
            guard state.active, let target = state.target else { throw .pfnCacheInactive }
            try Self.validate(length: length, offset: target.pageOffset)
            guard state.valid, let bytes = state.bytes else { return nil }
            return body(UnsafeMutableRawBufferPointer(start: bytes, count: length))
        }
    }

    /// Runs `body` on the mapped bytes as ``withMappedBytes(length:_:)``,
    /// refreshing first (as often as needed) while the mapping is invalid.
    /// Throws as ``refresh(length:)``.
    public func access<R>(length: Int, _ body: (UnsafeMutableRawBufferPointer) -> R) throws(SLATError) -> R {
        while true {
            if let result = try withMappedBytes(length: length, body) { return result }
            try refresh(length: length)
        }
    }

    // MARK: Invalidation

    /// Whether the watch word says a mapping published or being resolved
    /// may lie in `range` (its page overlaps it). Lock-free, for the
    /// registry's visit; a `true` is confirmed under the lock.
    func watchOverlaps(_ range: HostVirtualRange) -> Bool {
        let word = watchWord.load(ordering: .relaxed)
        guard word != 0 else { return false }
        let pageStart = (word & ~Self.watchedBit) << frameShift
        return range.start.rawValue < pageStart &+ Self.pageBytes && pageStart < range.end.rawValue
    }

    /// The registry's visit of a cache whose watch word overlaps `range`:
    /// if the cache's address is in `range` and a mapping is published or
    /// being resolved, invalidate and disarm it under the write lock.
    func invalidate(ifCovering range: HostVirtualRange) {
        visitLocks.wrappingAdd(1, ordering: .relaxed)
        lock.withExclusive {
            if covers(range) { unpublish() }
        }
    }

    /// Called with `lock` held.
    private func covers(_ range: HostVirtualRange) -> Bool {
        guard state.valid || state.armed, let address = state.hostAddress else { return false }
        return range.contains(address)
    }

    /// Invalid and disarmed; called with `lock` held exclusively.
    private func unpublish() {
        checkWord.store(0, ordering: .releasing)
        state.valid = false
        state.armed = false
        state.hostFrame = nil
        state.bytes = nil
        unmapAccess()
        publishWatch()
    }

    /// Ends the host memory's access mapping, if any; called with `lock`
    /// held exclusively, so no accessor is using it.
    private func unmapAccess() {
        guard let mapping = state.mapping else { return }
        state.mapping = nil
        registry.hostMemory.unmapAfterAccess(mapping.base, page: mapping.page, frame: mapping.frame)
    }

    /// Mirrors `valid || armed` and the host address into the watch word;
    /// called with `lock` held exclusively after changing them.
    private func publishWatch() {
        var word: UInt64 = 0
        if state.valid || state.armed, let address = state.hostAddress {
            word = Self.watchedBit | (address.rawValue >> frameShift)
        }
        // An unchanged word is not written again: the line stays shared
        // with the notifier threads that read it.
        if watchWord.load(ordering: .relaxed) != word {
            watchWord.store(word, ordering: .relaxed)
        }
    }

    private static func validate(length: Int, offset: UInt64) throws(SLATError) {
        guard length > 0, offset &+ UInt64(length) <= pageBytes else {
            throw .pfnCacheLengthOutOfPage(offset: offset, length: length)
        }
    }
}
