import SLATCore

/// Eager page splitting for dirty logging, as KVM's: splits every huge
/// leaf of a guest-physical range down to ``EagerSplitPolicy/targetLevel``
/// ahead of the vCPUs, so the writes after dirty logging starts find small
/// leaves and take the lockless fast path instead of each faulting,
/// taking the lock and allocating to split.
///
/// Generic over any ``EagerSplitBackend``; it walks with SLATCore's
/// `SLATCore/PageTableIterator` and decides from the format's decoders
/// only. Each huge leaf is replaced by tables filled completely with
/// equivalent entries before one compare-and-exchange links them, so a
/// vCPU sees the huge or the split translation, never a hole; a lost
/// exchange (a fault, a fast fault or the hardware changed the leaf) is
/// retried from the value that beat it, and the pages it had filled go back
/// to the cache: the thread whose exchange wins owns what it replaced.
///
/// ## Allocation
/// Pages come from the caller's split cache (`context.pageCache`), topped
/// up to ``EagerSplitPolicy/cacheCapacity`` **outside** the lock. When the
/// cache cannot supply the next split the engine settles what it owes,
/// drops the lock, refills, retakes the lock and restarts from the root at
/// the entry it could not split (nothing before it is walked again, nothing
/// is skipped). A refill that would leave the memory at or below
/// ``EagerSplitPolicy/minimumFreePages`` stops the run early; a run is
/// refused outright (`SLATError/outOfTableMemory(needed:available:)`)
/// when the memory is at or below it before starting.
///
/// ## Locking contract
/// The engine takes `lock` (the VM's MMU lock) **shared**, like faults,
/// and walks inside a read section of the backend's reclaimer using
/// `context`'s reader slot; the caller holds no MMU lock. Every
/// ``EagerSplitPolicy/yieldInterval`` splits (or
/// ``EagerSplitPolicy/chunkSize`` bytes) it yields the lock, when the
/// iterator has made progress since its last restart, so writers (zaps,
/// notifier invalidations) get in; after each retake it re-reads the root,
/// so it never uses a table pointer across a lock release.
///
/// ## TLB contract
/// A complete split changes no translation and owes no flush. What a
/// backend does owe is settled before each lock drop and before the run
/// returns.
public struct EagerSplitEngine<Backend: EagerSplitBackend, Lock: ReaderWriterLock> {
    /// The tables split.
    public let backend: Backend
    /// The VM's MMU lock (taken shared).
    public let lock: Lock
    /// Allocation, level and lock-hold policy.
    public var policy: EagerSplitPolicy

    /// An engine for `backend`, whose MMU lock is `lock`.
    @inlinable
    public init(backend: Backend, lock: Lock, policy: EagerSplitPolicy = EagerSplitPolicy()) {
        self.backend = backend
        self.lock = lock
        self.policy = policy
    }

    /// Splits every huge leaf mapping any frame of `frames` (all address
    /// spaces). See ``split(_:context:observer:)``.
    @inlinable @discardableResult
    public func split(
        frames: GuestFrameRange, context: PageTableContext, observer: ((EagerSplitEvent) -> Void)? = nil
    ) throws(SLATError) -> EagerSplitReport {
        guard !frames.isEmpty else { throw .emptyRange }
        return try split(frames.physicalRange, context: context, observer: observer)
    }

    /// Splits every huge leaf above ``EagerSplitPolicy/targetLevel`` that
    /// overlaps `range`, in every address space of the backend (a leaf
    /// straddling an end of the range is split whole; the translation does
    /// not change).
    ///
    /// - Parameters:
    ///   - range: the guest range whose huge leaves are split.
    ///   - context: the split cache and the reader slot of the calling
    ///     thread; pages left in the cache are released afterwards when
    ///     ``EagerSplitPolicy/releasesCacheWhenDone``.
    ///   - observer: called for each ``EagerSplitEvent`` (splits under the lock).
    /// - Returns: what was done; ``EagerSplitReport/stoppedAt`` is set when
    ///   the minimum-free threshold stopped it early.
    /// - Throws: before any change: range errors of the backend,
    ///   `SLATError/unsupportedLevel(_:)` for a target level without
    ///   leaves, `SLATError/readerSlotOutOfRange(_:slots:)`, and
    ///   `SLATError/outOfTableMemory(needed:available:)` when the memory
    ///   has ``EagerSplitPolicy/minimumFreePages`` or fewer free pages.
    @inlinable @discardableResult
    public func split(
        _ range: GuestPhysicalRange, context: PageTableContext, observer: ((EagerSplitEvent) -> Void)? = nil
    ) throws(SLATError) -> EagerSplitReport {
        let format = backend.format
        let target = policy.targetLevel
        try backend.validateSplitRange(range)
        guard target >= 0, target < format.rootLevel, format.canHoldLeaf(atLevel: target) else {
            throw .unsupportedLevel(target)
        }
        let reclaimer = backend.splitReclaimer
        let slot = context.readerSlot
        guard slot >= 0 && slot < reclaimer.slotCount else {
            throw .readerSlotOutOfRange(slot, slots: reclaimer.slotCount)
        }
        let memory = backend.splitMemory
        let free = memory.freePageCount
        guard free > policy.minimumFreePages else {
            throw .outOfTableMemory(needed: policy.minimumFreePages + 1, available: free)
        }
        var report = EagerSplitReport()
        defer { if policy.releasesCacheWhenDone { context.pageCache.release(to: memory) } }
        _ = refill(context, needing: 1)
        for space in 0..<backend.splitAddressSpaceCount {
            if !splitAddressSpace(space, range: range, context: context, report: &report, observer: observer) {
                break
            }
        }
        return report
    }

    /// One address space; returns `false` when the run stopped early.
    @inlinable
    func splitAddressSpace(
        _ space: Int, range: GuestPhysicalRange, context: PageTableContext, report: inout EagerSplitReport,
        observer: ((EagerSplitEvent) -> Void)?
    ) -> Bool {
        let format = backend.format
        let memory = backend.splitMemory
        let reclaimer = backend.splitReclaimer
        let slot = context.readerSlot
        let target = policy.targetLevel
        let frozen = format.frozenEntry
        var batch = TLBFlushBatch()
        lock.lockShared()
        reclaimer.enterReadSection(slot: slot)
        var iterator = PageTableIterator(
            format: format, memory: memory, root: backend.splitRoot(addressSpace: space), range: range,
            minimumLevel: target + 1)
        var splitsThisHold = 0
        var bytesThisHold: UInt64 = 0
        var completed = true
        while iterator.isValid {
            let level = iterator.level
            let entry = iterator.snapshot
            if entry == frozen {
                // Another thread owns this entry (break-before-make, or a
                // subtree being detached around us): walk again from the
                // root once it is done.
                iterator.restart()
                continue
            }
            guard level > target, format.isLeaf(entry, atLevel: level) else {
                iterator.advance()
                continue
            }
            let chunkDone = policy.chunkSize > 0 && bytesThisHold >= policy.chunkSize
            if (splitsThisHold >= policy.yieldInterval || chunkDone) && iterator.canYield {
                let reason: EagerSplitLockDrop = chunkDone ? .chunk : .yieldInterval
                cycleLock(&iterator, space: space, range: range, slot: slot, batch: &batch) { true }
                report.yields += 1
                observer?(.lockDropped(reason, resumeAddress: iterator.resumeAddress))
                splitsThisHold = 0
                bytesThisHold = 0
                continue
            }
            let needed = backend.tablePagesToSplit(level: level, targetLevel: target)
            if context.pageCache.count < needed {
                var refilled = false
                cycleLock(&iterator, space: space, range: range, slot: slot, batch: &batch) {
                    refilled = refill(context, needing: needed)
                    return refilled
                }
                if !refilled {
                    report.stoppedAt = iterator.address
                    observer?(.stoppedAtMinimumFree(addressSpace: space, address: iterator.address))
                    completed = false
                    break
                }
                report.refills += 1
                observer?(.lockDropped(.cacheEmpty, resumeAddress: iterator.resumeAddress))
                splitsThisHold = 0
                bytesThisHold = 0
                continue
            }
            var expected = entry
            switch backend.splitHugeLeaf(
                iterator.pointer, expected: &expected, level: level, address: iterator.address,
                targetLevel: target, context: context, batch: &batch) {
            case .split:
                report.leavesSplit += 1
                report.tablePagesLinked += needed
                splitsThisHold += 1
                bytesThisHold &+= format.entrySize(atLevel: level)
                observer?(.split(addressSpace: space, address: iterator.address, level: level))
                // Descend into the new tables (a backend that splits one
                // level at a time leaves leaves above the target there).
                iterator.reread()
                iterator.advance()
            case .lostRace:
                report.lostRaces += 1
                observer?(.lostRace(addressSpace: space, address: iterator.address, level: level))
                iterator.snapshot = expected
            case .cacheEmpty:
                // The cache was checked; a backend wanting more than it
                // declared: take what it says next time round.
                iterator.reread()
            }
        }
        backend.settleSplitBatch(batch)
        reclaimer.leaveReadSection(slot: slot)
        lock.unlockShared()
        return completed
    }

    /// Settles `batch`, leaves the read section and drops the lock, runs
    /// `outside` (which returns whether to go on), then, if so, retakes the
    /// lock and positions `iterator` again from the (possibly new) root at
    /// its resume address. When `outside` says stop, the lock is retaken
    /// too (the caller's exit path releases it) but the iterator is left.
    @inlinable
    func cycleLock(
        _ iterator: inout PageTableIterator<Backend.Format, Backend.Memory>, space: Int, range: GuestPhysicalRange,
        slot: Int, batch: inout TLBFlushBatch, outside: () -> Bool
    ) {
        let owed = batch
        batch = TLBFlushBatch()
        backend.settleSplitBatch(owed)
        let reclaimer = backend.splitReclaimer
        reclaimer.leaveReadSection(slot: slot)
        lock.unlockShared()
        let goOn = outside()
        lock.lockShared()
        reclaimer.enterReadSection(slot: slot)
        guard goOn else { return }
        let root = backend.splitRoot(addressSpace: space)
        if root == iterator.root {
            iterator.restart()
        } else {
            let resume = iterator.resumeAddress
            iterator = PageTableIterator(
                format: backend.format, memory: backend.splitMemory, root: root,
                range: GuestPhysicalRange(start: max(resume, range.start), uncheckedEnd: range.end),
                minimumLevel: iterator.minimumLevel)
        }
    }

    /// Tops the split cache up outside the lock to the policy's capacity
    /// (at least `needed`), never taking the memory to the minimum-free
    /// threshold. Returns whether the cache now holds `needed` pages.
    @inlinable
    func refill(_ context: PageTableContext, needing needed: Int) -> Bool {
        let memory = backend.splitMemory
        let have = context.pageCache.count
        let spare = memory.freePageCount - policy.minimumFreePages
        let goal = min(max(needed, policy.cacheCapacity), have + max(spare, 0))
        if goal > have {
            do {
                try context.pageCache.topUp(from: memory, toAtLeast: goal)
            } catch {
                return context.pageCache.count >= needed
            }
        }
        return context.pageCache.count >= needed
    }
}
