import SLATCore

// Dirty logging per memslot (KVM/arm64's write-protect based logging):
// enable (bitmap, flag, write protection), get-and-clear, disable. The
// stage-2 fault handler marks a page when it grants write access to it in
// a memslot that logs.
extension StageTwoPageTable {
    /// Starts logging the writes to memslot `id`: a clear bitmap
    /// (``dirtyLogs``), the memslot's `SLATCore/MemslotFlags/dirtyLogging`
    /// flag (faults then map pages, and a read maps read-only), then the
    /// write protection of the slot
    /// (``protectForDirtyLogging(memslot:guestMemory:lock:context:)``).
    /// From its return every write to the slot faults once and is logged
    /// until the next ``getAndClearDirtyLog(memslot:lock:context:)``. With
    /// `protection` `SLATCore/DirtyLogProtection/manual(initiallySet:)` set,
    /// the bitmap starts with every page marked and nothing is protected
    /// (KVM/arm64 with `KVM_DIRTY_LOG_INITIALLY_SET`): the VMM's clears
    /// (``clearDirtyLog(memslot:firstPage:bitmap:lock:context:)``) protect
    /// the slot range by range. A memslot that already logs is left as it
    /// is, unless its log outlived it: a log over other frames, or of a
    /// memslot without `SLATCore/MemslotFlags/dirtyLogging` (removed and
    /// added again under the same id), is replaced.
    ///
    /// Locking contract: takes `lock` (the VM's MMU lock) exclusively; the
    /// caller holds no MMU lock. TLB contract: every page that lost write
    /// access is invalidated before it returns.
    /// - Throws: `SLATError/unknownMemslot(slot:)`, and the protection's
    ///   errors, after which the memslot does not log.
    public func enableDirtyLogging<Lock: ReaderWriterLock>(
        memslot id: UInt32, guestMemory: GuestMemory, lock: Lock, context: PageTableContext,
        protection: DirtyLogProtection = .onHarvest
    ) throws(SLATError) {
        try checkLive()
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        if let existing = dirtyLogs.bitmap(forMemslot: id) {
            // Logging already; unless the log outlived its memslot (removed
            // and added again under the same id while no notifier binding
            // dropped the log): then it is replaced.
            if existing.frames == slot.frames && slot.flags.contains(.dirtyLogging) { return }
            dirtyLogs.stop(memslot: id)
        }
        do {
            if protection.isInitiallySet {
                // Every page reports dirty until cleared, so nothing needs
                // protecting yet; the bitmap exists before faults map pages
                // under the flag.
                _ = dirtyLogs.start(slot, protection: protection)
                try guestMemory.updateMemslotFlags(id: id, to: slot.flags.union(.dirtyLogging))
            } else {
                _ = dirtyLogs.start(slot, protection: protection)
                try guestMemory.updateMemslotFlags(id: id, to: slot.flags.union(.dirtyLogging))
                try protectForDirtyLogging(memslot: slot, guestMemory: guestMemory, lock: lock, context: context)
            }
        } catch {
            dirtyLogs.stop(memslot: id)
            try? guestMemory.updateMemslotFlags(id: id, to: slot.flags)
            throw error
        }
    }

    /// The protection half of enabling dirty logging on `memslot` (already
    /// flagged `SLATCore/MemslotFlags/dirtyLogging`; KVM/arm64's
    /// `kvm_mmu_wp_memory_region`): starts its bitmap if it has none, then
    /// write-protects its range inside an invalidation of its frames (so a
    /// fault that resolved before the flag changed retries instead of
    /// installing a writable block after the pass) under `lock` held
    /// exclusively, completing the invalidations before the lock is
    /// released. The next write to each page faults and the fault handler
    /// grants write access page by page, marking the bitmap.
    ///
    /// Locking contract: the caller holds no MMU lock. Table pages (for a
    /// block straddling the slot's ends) are allocated only outside the
    /// lock: `context`'s page cache is topped up before the lock is taken,
    /// and if it runs short under the lock, what was protected is
    /// invalidated, the lock dropped, the cache topped up and the pass
    /// resumed under the lock retaken.
    /// - Throws: `SLATError/outOfTableMemory(needed:available:)` when a
    ///   block straddling the slot's ends needs a split and the memory has
    ///   no page; range errors for a slot beyond the IPA size.
    public func protectForDirtyLogging<Lock: ReaderWriterLock>(
        memslot: Memslot, guestMemory: GuestMemory, lock: Lock, context: PageTableContext
    ) throws(SLATError) {
        try checkLive()
        let frames = memslot.frames
        _ = dirtyLogs.start(memslot)
        let tracker = guestMemory.invalidations
        tracker.beginInvalidation(frames)
        defer { tracker.endInvalidation(frames) }
        // A block straddling each end may need its tables.
        try writeProtect([frames], lock: lock, context: context, pagesWanted: 2 * format.rootLevel)
    }

    /// Returns the dirty bitmap of memslot `id` and clears it, write-
    /// protecting again the pages it reports (KVM_GET_DIRTY_LOG). Bit `i` of
    /// word `w` is frame `memslot.baseFrame + 64w + i`.
    ///
    /// Every write made before this call is in this or an earlier result;
    /// every write made after it returns faults and will be in a later one
    /// (a page written between the harvest of its word and its protection
    /// is reported now, so the VMM's copy after the return sees the write).
    ///
    /// Locking contract: takes `lock` exclusively; the caller holds no MMU
    /// lock. Table pages (a reported page inside a block is split first)
    /// are allocated only outside the lock: when `context`'s cache runs
    /// short, what was protected so far is invalidated, the lock dropped,
    /// the cache topped up and the protection resumed under the lock
    /// retaken (faults may run meanwhile; the words already taken are
    /// returned all the same). TLB contract: the pages re-protected are
    /// invalidated before the lock is released each time.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`;
    ///   `SLATError/outOfTableMemory(needed:available:)` if a reported page
    ///   lies in a block that must be split first; the bits it took are
    ///   marked again then, so no write is lost.
    public func getAndClearDirtyLog<Lock: ReaderWriterLock>(
        memslot id: UInt32, lock: Lock, context: PageTableContext
    ) throws(SLATError) -> [UInt64] {
        try checkLive()
        guard let bitmap = dirtyLogs.bitmap(forMemslot: id) else { throw .dirtyLoggingNotEnabled(slot: id) }
        if dirtyLogs.protection(forMemslot: id)?.isManual == true { throw .dirtyLogClearedManually(slot: id) }
        let frames = bitmap.frames
        // Taken under the lock, so a fault's mark (made under the shared
        // lock) is seen with the write access it stands for.
        let words = lock.withExclusive { bitmap.takeAll() }
        do {
            try writeProtect(reported: words, firstFrame: frames.start.rawValue, within: frames,
                             lock: lock, context: context)
        } catch {
            bitmap.mark(words: words)
            throw error
        }
        return words
    }

    /// The dirty bitmap of memslot `id`, a log with manual protection,
    /// clearing and protecting nothing (KVM_GET_DIRTY_LOG with manual
    /// protection): every page written since its last clear. Bit `i` of
    /// word `w` is frame `memslot.baseFrame + 64w + i`.
    ///
    /// Locking contract: takes no MMU lock. A write whose fault marks the
    /// page while this reads is in this result or the next.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`, `SLATError/tornDown`.
    public func getDirtyLog(memslot id: UInt32) throws(SLATError) -> [UInt64] {
        let bitmap = try manualLogBitmap(memslot: id)
        return bitmap.snapshot()
    }

    /// Clears the marks `mask` names from the log of memslot `id` (a log
    /// with manual protection) and write-protects again each page whose
    /// mark it cleared (KVM_CLEAR_DIRTY_LOG); bit `i` of `mask[w]` is page
    /// `firstPage + 64w + i` of the slot. A marked page inside a block
    /// (a log enabled with every page set leaves blocks writable) is split
    /// first, so the rest of the block stays writable until its own clear.
    /// From the return, the next write to each cleared page faults and is
    /// logged: the VMM copies a page after the clear that covers it.
    ///
    /// Locking contract: takes `lock` exclusively; the caller holds no MMU
    /// lock. Table pages are allocated only with the lock dropped, as in
    /// ``getAndClearDirtyLog(memslot:lock:context:)``. TLB contract: the
    /// pages re-protected are invalidated before the lock is released each
    /// time.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`,
    ///   `SLATError/dirtyLogClearOutOfRange(slot:firstPage:pageCount:slotPages:)`,
    ///   `SLATError/tornDown` (the log unchanged);
    ///   `SLATError/outOfTableMemory(needed:available:)` when a split finds
    ///   no table page, after which the marks it cleared are set again.
    public func clearDirtyLog<Lock: ReaderWriterLock>(
        memslot id: UInt32, firstPage: UInt64, bitmap mask: [UInt64], lock: Lock, context: PageTableContext
    ) throws(SLATError) {
        let bitmap = try manualLogBitmap(memslot: id)
        // Cleared under the lock, as the harvest takes its words.
        let cleared = try lock.withExclusive { () throws(SLATError) -> [UInt64] in
            try bitmap.clear(mask, firstPage: firstPage, slot: id)
        }
        if Self.manualClearSkipsReprotection { return }
        do {
            try writeProtect(reported: cleared, firstFrame: bitmap.frames.start.rawValue &+ firstPage,
                             within: bitmap.frames, lock: lock, context: context)
        } catch {
            bitmap.mark(words: cleared, firstWord: Int(firstPage >> 6))
            throw error
        }
    }

    /// The bitmap of memslot `id`, whose log must have manual protection.
    /// - Throws: `SLATError/tornDown`, `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`.
    func manualLogBitmap(memslot id: UInt32) throws(SLATError) -> DirtyBitmap {
        try checkLive()
        guard let bitmap = dirtyLogs.bitmap(forMemslot: id) else { throw .dirtyLoggingNotEnabled(slot: id) }
        if dirtyLogs.protection(forMemslot: id)?.isManual != true { throw .dirtyLogNotClearedManually(slot: id) }
        return bitmap
    }

    /// Write-protects the pages `words` reports (bit `i` of word `w` is
    /// frame `firstFrame + 64w + i`, clipped to `frames`), a run of set
    /// bits at a time.
    func writeProtect<Lock: ReaderWriterLock>(
        reported words: [UInt64], firstFrame: UInt64, within frames: GuestFrameRange,
        lock: Lock, context: PageTableContext
    ) throws(SLATError) {
        var runs: [GuestFrameRange] = []
        for (index, word) in words.enumerated() where word != 0 {
            appendRuns(of: word, from: firstFrame &+ UInt64(index) &* 64, within: frames, to: &runs)
        }
        try writeProtect(runs, lock: lock, context: context, pagesWanted: 0)
    }

    /// Appends each run of set bits of `word` (bit `i` is frame
    /// `first + i`), clipped to `frames`, to `runs`.
    @inlinable
    func appendRuns(
        of word: UInt64, from first: UInt64, within frames: GuestFrameRange, to runs: inout [GuestFrameRange]
    ) {
        var rest = word
        while rest != 0 {
            let start = UInt64(rest.trailingZeroBitCount)
            let length = UInt64((~(rest >> start)).trailingZeroBitCount)
            rest = length + start >= 64 ? 0 : rest & ~(((1 &<< length) &- 1) &<< start)
            let run = GuestFrameRange(start: GuestFrameNumber(first &+ start), count: length)
            guard let clipped = run.intersection(frames) else { continue }
            runs.append(clipped)
        }
    }

    /// Write-protects `runs` under `lock` held exclusively, allocating
    /// table pages only with the lock dropped: the cache is topped up to
    /// `pagesWanted` first; when a split finds it short, what was done is
    /// settled (invalidated), the lock released, the cache topped up and
    /// the work resumed where it stopped.
    func writeProtect<Lock: ReaderWriterLock>(
        _ runs: [GuestFrameRange], lock: Lock, context: PageTableContext, pagesWanted: Int
    ) throws(SLATError) {
        var pagesWanted = pagesWanted
        var next = 0
        var resume: GuestPhysicalAddress?
        while next < runs.count {
            if pagesWanted > 0 { try context.pageCache.topUp(from: table.memory, toAtLeast: pagesWanted) }
            pagesWanted = 0
            try lock.withExclusive { () throws(SLATError) in
                var batch = TLBFlushBatch()
                do throws(SLATError) {
                    while next < runs.count {
                        var range = runs[next].physicalRange
                        if let resume { range = GuestPhysicalRange(start: resume, uncheckedEnd: range.end) }
                        if let shortfall = try writeProtect(
                            range, mode: .exclusive, context: context, batch: &batch, refill: .never) {
                            resume = shortfall.resumeAddress
                            pagesWanted = max(shortfall.pagesWanted, 1)
                            break
                        }
                        resume = nil
                        next += 1
                    }
                } catch {
                    settle(batch, mode: .exclusive)
                    throw error
                }
                settle(batch, mode: .exclusive)
            }
        }
    }

    /// Stops logging memslot `id`: clears its flag and drops its bitmap
    /// (harvest it first). Blocks come back as faults map them: the fault
    /// handler's anchored merge replaces the page tables (no TLB conflict abort).
    ///
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/unknownMemslot(slot:)`.
    public func disableDirtyLogging(memslot id: UInt32, guestMemory: GuestMemory) throws(SLATError) {
        try checkLive()
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        guard dirtyLogs.bitmap(forMemslot: id) != nil else { throw .dirtyLoggingNotEnabled(slot: id) }
        try guestMemory.updateMemslotFlags(id: id, to: slot.flags.subtracting(.dirtyLogging))
        dirtyLogs.stop(memslot: id)
    }
}

extension StageTwoPageTable {
    /// False except under the explorer's
    /// ``ExplorationMutation/manualClearSkipsReprotection`` (hosted debug
    /// builds only).
    @inlinable
    static var manualClearSkipsReprotection: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.manualClearSkipsReprotection)
        #else
        false
        #endif
    }
}
