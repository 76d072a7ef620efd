import SLATCore
import Synchronization

// Zaps: leaves of a guest-frame range (mmu-notifier unmap, memslot removal)
// and whole roots (teardown, invalidate-all with lazy root zapping).
extension ExtendedPageTableMMU {
    /// Removes every leaf that maps any frame of `frames` (a huge leaf that
    /// only overlaps is removed whole) in `addressSpace`, or in every
    /// address space when `nil`, in the current roots and in every replaced
    /// root a vCPU may still use (``isRootReloadRequested(_:)``). Tables
    /// stay linked.
    ///
    /// Locking contract: takes the MMU lock exclusively; on long ranges it
    /// flushes, drops and retakes it every ``MMUConfiguration/yieldInterval``
    /// leaves, restarting the walk where it stopped.
    /// TLB contract: everything removed is invalidated (batched) before the
    /// lock is dropped and before this returns. Each removal is accounted
    /// where it happens (`accountChange(old:new:address:level:mode:batch:)`):
    /// a dirty bit goes to the dirty-bit-mode log that covers it at that
    /// moment. Returns the number of leaves removed.
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`,
    ///   `SLATError/guestRangeOutOfBounds(_:limit:)` for frames beyond the
    ///   format's input address size, `SLATError/tornDown`; nothing changed.
    @inlinable @discardableResult
    public func zap(_ frames: GuestFrameRange, addressSpace: Int? = nil) throws(SLATError) -> Int {
        if let addressSpace { try checkAddressSpace(addressSpace) }
        try checkGuestRange(frames)
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        return zapLocked(frames, addressSpace: addressSpace)
    }

    /// ``zap(_:addressSpace:)`` with the lock already held exclusively and
    /// the address space checked.
    @inlinable
    func zapLocked(_ frames: GuestFrameRange, addressSpace: Int?) -> Int {
        guard !frames.isEmpty else { return 0 }
        let range = frames.physicalRange
        var batch = TLBFlushBatch()
        var removed = 0
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        let mutation = Self.zapMutation(harvestingAtStart: dirtyLoggingSlots.load(ordering: .acquiring) > 0)
        #else
        let mutation = (skipsHarvest: false, currentRootsOnly: false, plainStore: false)
        #endif
        for (space, root) in liveRoots(addressSpace) where !mutation.currentRootsOnly || root == rootAddress(space) {
            forEachLeaf(in: range, addressSpace: space, root: root, batch: &batch) { iterator, batch in
                let level = iterator.level
                _explorationTableEntry()
                let old = mutation.plainStore ? iterator.snapshot
                    : iterator.pointer.pointee.exchange(0, ordering: .acquiringAndReleasing)
                if mutation.plainStore { iterator.pointer.pointee.store(0, ordering: .releasing) }
                iterator.snapshot = 0
                accountChange(old: old, new: 0, address: iterator.address, level: level, mode: .exclusive,
                              startsLogging: mutation.skipsHarvest, batch: &batch)
                guard format.isLeaf(old, atLevel: level) else { return false }
                removed += 1
                return true
            }
        }
        settle(batch)
        return removed
    }

    /// Replaces every root by a new empty one (KVM's fast invalidate-all):
    /// under the exclusive lock the roots are swapped, the root generation
    /// advances and the whole context is invalidated. The old roots stay
    /// populated while a vCPU may still use them: every vCPU that loaded
    /// them is asked to reload (``isRootReloadRequested(_:)``, checked by the
    /// VMM before each VM entry; its faults return ``FaultOutcome/retry``
    /// until it reloads), notifier zaps and dirty-log passes keep covering
    /// them, and ``zapInvalidatedRoots()`` frees them once no vCPU uses them.
    ///
    /// - Throws: `SLATError/outOfTableMemory(needed:available:)` or
    ///   `SLATError/tornDown` before anything changes.
    public func invalidateAllRoots() throws(SLATError) {
        try checkNotTornDown()
        var fresh: [HostPhysicalAddress] = []
        for _ in 0..<configuration.addressSpaceCount {
            do {
                fresh.append(try memory.allocatePage())
            } catch {
                for page in fresh { memory.freePage(page) }
                throw error
            }
        }
        lock.lockExclusive()
        guard !isTornDown else {
            lock.unlockExclusive()
            for page in fresh { memory.freePage(page) }
            throw .tornDown
        }
        let generation = rootGeneration.load(ordering: .relaxed)
        var old: [InvalidatedRoot] = []
        for (index, page) in fresh.enumerated() {
            let replaced = HostPhysicalAddress(roots[index].exchange(page.rawValue, ordering: .acquiringAndReleasing))
            old.append(InvalidatedRoot(root: replaced, addressSpace: index, generation: generation))
        }
        rootGeneration.store(generation &+ 1, ordering: .releasing)
        tlb.invalidateAll()
        listLock.withLock {
            invalidatedRoots.append(contentsOf: old)
            // The recorded splits name tables of the old roots.
            nxSplits.removeAll()
        }
        lock.unlockExclusive()
    }

    /// Frees the roots ``invalidateAllRoots()`` replaced that no vCPU uses
    /// any more (every vCPU that loaded them has reloaded): under the
    /// exclusive lock they leave the list notifier zaps and passes walk and,
    /// while any memslot logs, their entries are removed and accounted
    /// there (a dirty bit a vCPU set through the old root reaches its
    /// dirty-bit-mode log before any later harvest runs); then all
    /// contexts are invalidated (a root page reused later must carry no
    /// stale entry) and every table page is retired through the reclaimer.
    /// Roots still in use stay. Returns the pages retired.
    ///
    /// - Throws: `SLATError/tornDown` (``teardown()`` freed them all).
    @discardableResult
    public func zapInvalidatedRoots() throws(SLATError) -> Int {
        lock.lockExclusive()
        guard !isTornDown else {
            lock.unlockExclusive()
            throw .tornDown
        }
        let oldest = oldestLoadedGeneration()
        let unused: [InvalidatedRoot] = listLock.withLock {
            let unused = invalidatedRoots.filter { $0.generation < oldest }
            invalidatedRoots.removeAll { $0.generation < oldest }
            return unused
        }
        var batch = TLBFlushBatch()
        // While a log may want their dirty bits, the roots are emptied under
        // the lock: a harvest that runs after them must find those bits in
        // the log. Without logging (checked now: no vCPU writes through
        // them any more) the walk needs no lock.
        let harvesting = dirtyLoggingSlots.load(ordering: .acquiring) > 0
        if harvesting {
            for entry in unused { emptyRoot(entry.root, mode: .exclusive, batch: &batch) }
        }
        lock.unlockExclusive()
        guard !unused.isEmpty else { return 0 }
        for entry in unused {
            if !harvesting { emptyRoot(entry.root, mode: .exclusive, batch: &batch) }
            batch.freeAfterFlush(entry.root)
        }
        let total = batch.pendingPageCount
        batch.invalidateAll()
        settle(batch)
        return total
    }

    /// Clears every entry of the root table `root`, accounting each
    /// (``accountChange(old:new:address:level:mode:batch:)``); the root page
    /// itself stays the caller's.
    @usableFromInline
    func emptyRoot(_ root: HostPhysicalAddress, mode: WalkMode, batch: inout TLBFlushBatch) {
        let entries = memory.entries(at: root)
        let level = format.rootLevel
        let step = format.entrySize(atLevel: level)
        for index in 0..<format.rootEntryCount {
            let old = entries[index].exchange(0, ordering: .acquiringAndReleasing)
            accountChange(old: old, new: 0, address: GuestPhysicalAddress(step &* UInt64(index)), level: level,
                          mode: mode, batch: &batch)
        }
    }

    /// Destroys the VM's tables. Under the exclusive lock it marks the MMU
    /// torn down (a notifier event already being delivered, which takes the
    /// lock, then finds nothing to do; every later call throws
    /// `SLATError/tornDown`), empties every current and replaced root and
    /// invalidates all contexts; then it unregisters from the notifier,
    /// waits for the grace period (lockless walkers inside a read section)
    /// and frees the table pages. The emptied root pages are freed with the
    /// MMU object, so a walk started before it was torn down reads an empty
    /// root, never a freed page. Calling it again does nothing.
    ///
    /// Dirty bits still in the tables are not harvested: the logs go with
    /// the VM.
    public func teardown() {
        lock.lockExclusive()
        guard !isTornDown else {
            lock.unlockExclusive()
            return
        }
        rootGeneration.store(Self.tornDownGeneration, ordering: .releasing)
        let old: [InvalidatedRoot] = listLock.withLock {
            let list = invalidatedRoots
            invalidatedRoots.removeAll()
            nxSplits.removeAll()
            return list
        }
        var batch = TLBFlushBatch()
        for space in 0..<configuration.addressSpaceCount {
            emptyRoot(rootAddress(space), mode: .exclusive, batch: &batch)
        }
        for entry in old {
            emptyRoot(entry.root, mode: .exclusive, batch: &batch)
            batch.freeAfterFlush(entry.root)
        }
        batch.invalidateAll()
        settle(batch)
        lock.unlockExclusive()
        let token: ListenerToken? = listLock.withLock {
            defer { notifierToken = nil }
            return notifierToken
        }
        if let token { _ = guestMemory.removeListener(token) }
        reclaimer.synchronize()
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        // The defect before the fix: the root pages freed here, while a
        // notifier event already being delivered may still walk them.
        if ExplorationHooks.isActive(.teardownFreesRootsUnderNotifier) {
            for space in 0..<configuration.addressSpaceCount { memory.freePage(rootAddress(space)) }
            rootsFreedByTeardown.store(true, ordering: .releasing)
        }
        #endif
    }
}
