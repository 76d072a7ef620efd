import SLATCore
import Synchronization

// Zaps: leaves of a guest-frame range (mmu-notifier unmap, memslot removal)
// and whole roots (teardown, invalidate-all with lazy root zapping).
extension ExtendedPageTableMMU {
    /// Removes every leaf that maps any frame of `frames` (a huge leaf that
    /// only overlaps is removed whole) in `addressSpace`, or in every
    /// address space when `nil`. Tables stay linked.
    ///
    /// Locking contract: takes the MMU lock exclusively; on long ranges it
    /// flushes, drops and retakes it every ``MMUConfiguration/yieldInterval``
    /// leaves, restarting the walk where it stopped.
    /// TLB contract: everything removed is invalidated (batched) before the
    /// lock is dropped and before this returns. In a memslot logging with
    /// dirty bits, a removed leaf's dirty bit is moved to the bitmap.
    /// Returns the number of leaves removed.
    @inlinable @discardableResult
    public func zap(_ frames: GuestFrameRange, addressSpace: Int? = nil) -> Int {
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        return zapLocked(frames, addressSpace: addressSpace)
    }

    /// ``zap(_:addressSpace:)`` with the lock already held exclusively.
    @inlinable
    func zapLocked(_ frames: GuestFrameRange, addressSpace: Int?) -> Int {
        guard !frames.isEmpty else { return 0 }
        let range = frames.physicalRange
        var batch = TLBFlushBatch()
        var removed = 0
        let harvest = dirtyLoggingSlots.load(ordering: .acquiring) > 0
        for space in addressSpaces(addressSpace) {
            forEachLeaf(in: range, addressSpace: space, batch: &batch) { iterator, batch in
                let level = iterator.level
                let old = iterator.pointer.pointee.exchange(0, ordering: .acquiringAndReleasing)
                iterator.snapshot = 0
                guard format.isLeaf(old, atLevel: level) else { return false }
                let size = format.entrySize(atLevel: level)
                if harvest && old & ExtendedPageTableBits.dirty != 0 && old & ExtendedPageTableBits.write != 0 {
                    markDirtyIfLogging(GuestFrameRange(covering: GuestPhysicalRange(start: iterator.address, size: size)))
                }
                batch.invalidate(address: iterator.address, level: level, size: size)
                removed += 1
                return true
            }
        }
        settle(batch)
        return removed
    }

    /// The address spaces `addressSpace` names (`nil`: all).
    @usableFromInline
    func addressSpaces(_ addressSpace: Int?) -> Range<Int> {
        if let addressSpace {
            precondition(addressSpace >= 0 && addressSpace < configuration.addressSpaceCount, "no such address space")
            return addressSpace..<(addressSpace + 1)
        }
        return 0..<configuration.addressSpaceCount
    }

    /// Marks every frame of `frames` in the dirty bitmap of its memslot, if
    /// it logs (a dirty leaf removed before its bit was harvested).
    @usableFromInline
    func markDirtyIfLogging(_ frames: GuestFrameRange) {
        for slot in guestMemory.allMemslots where slot.flags.contains(.dirtyLogging) {
            if slot.frames.overlaps(frames) { dirtyLogs.bitmap(forMemslot: slot.id)?.mark(frames) }
        }
    }

    /// Replaces every root by a new empty one (KVM's fast invalidate-all):
    /// under the exclusive lock the roots are swapped and the whole context
    /// invalidated; the old roots are queued, unreachable, and torn down
    /// later by ``zapInvalidatedRoots()`` without the lock (lazy root
    /// zapping), so the lock is held for a few stores only. vCPUs must load
    /// the new EPTPs (``pointer(addressSpace:)``) after this returns.
    ///
    /// - Throws: ``SLATError/outOfTableMemory(needed:available:)`` before
    ///   anything changes.
    public func invalidateAllRoots() throws(SLATError) {
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
        var old: [HostPhysicalAddress] = []
        for (index, page) in fresh.enumerated() {
            old.append(HostPhysicalAddress(roots[index].exchange(page.rawValue, ordering: .acquiringAndReleasing)))
        }
        tlb.invalidateAll()
        listLock.withLock {
            invalidatedRoots.append(contentsOf: old)
            nxSplits.removeAll()
        }
        lock.unlockExclusive()
    }

    /// Tears down the roots ``invalidateAllRoots()`` replaced: every table
    /// page is retired through the reclaimer (lockless walkers that loaded an
    /// old root may still read it). Takes no MMU lock: nothing can reach
    /// those roots any more and their translations were flushed when they
    /// were replaced. Returns the pages retired.
    @discardableResult
    public func zapInvalidatedRoots() -> Int {
        let queued: [HostPhysicalAddress] = listLock.withLock {
            let list = invalidatedRoots
            invalidatedRoots.removeAll()
            return list
        }
        var total = 0
        for root in queued {
            var batch = TLBFlushBatch()
            collectTables(below: root, into: &batch)
            batch.freeAfterFlush(root)
            total += batch.pendingPageCount
            // Already flushed when the root was replaced.
            noteTablesUnlinked()
            reclaimer.retire(batch.discard())
        }
        return total
    }

    /// Adds every table page below `root` to `batch`.
    func collectTables(below root: HostPhysicalAddress, into batch: inout TLBFlushBatch) {
        let entries = memory.entries(at: root)
        let level = format.rootLevel
        for index in 0..<format.rootEntryCount {
            let entry = entries[index].load(ordering: .acquiring)
            if format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level) {
                helpers.detachSubtree(ofTableEntry: entry, level: level, mode: .exclusive, into: &batch)
            }
            entries[index].store(0, ordering: .releasing)
        }
    }

    /// Destroys the VM's tables: unregisters from the notifier, empties every
    /// root under the exclusive lock with one whole-context invalidation,
    /// tears down invalidated roots, waits for the grace period and frees
    /// the root pages. The MMU must not be used afterwards.
    public func teardown() {
        if let token = notifierToken {
            guestMemory.removeListener(token)
            notifierToken = nil
        }
        lock.lockExclusive()
        var batch = TLBFlushBatch()
        for space in 0..<configuration.addressSpaceCount {
            collectTables(below: root(addressSpace: space), into: &batch)
        }
        batch.invalidateAll()
        settle(batch)
        lock.unlockExclusive()
        zapInvalidatedRoots()
        reclaimer.synchronize()
        noteTablesUnlinked()
        for space in 0..<configuration.addressSpaceCount {
            memory.freePage(root(addressSpace: space))
        }
        listLock.withLock { nxSplits.removeAll() }
    }
}
