import SLATCore
import Synchronization

// Dirty logging per memslot: enable (protect), get-and-clear, disable.
extension ExtendedPageTableMMU {
    /// Starts logging the writes to memslot `id` into a new bitmap.
    ///
    /// `mode` defaults to ``DirtyLogMode/dirtyBit`` when the EPTP enables
    /// accessed/dirty flags, else ``DirtyLogMode/writeProtect``. The memslot
    /// gets `SLATCore/MemslotFlags/dirtyLogging` (faults then map 4 KiB),
    /// then, inside an invalidation of the slot's frames (so that a fault
    /// that resolved before the flag changed retries instead of installing a
    /// writable huge leaf after the pass), every leaf of the slot is
    /// protected under the exclusive lock: write-protect mode clears write
    /// access on small leaves (keeping MMU-writable, so the fast page fault
    /// restores it); dirty-bit mode clears the dirty bit of small leaves;
    /// both write-protect huge leaves and clear their MMU-writable bit so
    /// that a write splits them on the full path. With `protection`
    /// `SLATCore/DirtyLogProtection/manual(initiallySet:)` set, the bitmap
    /// starts with every page marked and only huge leaves are protected
    /// (KVM's `KVM_DIRTY_LOG_INITIALLY_SET`): the VMM's clears protect the
    /// small ones. Calling it for a slot that already logs does nothing.
    ///
    /// TLB contract: every leaf that lost write access or a set dirty bit is
    /// invalidated before this returns (decided on the exchange's old value).
    /// - Throws: `SLATError/unknownMemslot(slot:)`;
    ///   `SLATError/unsupportedDirtyFlag` for dirty-bit mode without A/D flags.
    // Inlinable so that its protection pass is specialised for the caller's
    // table memory and TLB (unspecialised, every leaf visited cost a
    // generic-metadata lookup).
    @inlinable
    public func enableDirtyLogging(
        memslot id: UInt32, mode: DirtyLogMode? = nil, protection: DirtyLogProtection = .onHarvest
    ) throws(SLATError) {
        try checkNotTornDown()
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        let mode = mode ?? (format.accessedDirtyEnabled ? .dirtyBit : .writeProtect)
        if mode == .dirtyBit && !format.accessedDirtyEnabled { throw .unsupportedDirtyFlag }
        if let existing = dirtyLogs.entry(forMemslot: id) {
            // Logging already; unless the log outlived its memslot (removed
            // and added again with the same id while the MMU was not told).
            if existing.bitmap.frames == slot.frames && slot.flags.contains(.dirtyLogging) { return }
            if Self.removedMemslotKeepsDirtyLog { return }
            dropDirtyLog(memslot: id)
        }
        let bitmap = DirtyBitmap(frames: slot.frames, allSet: protection.isInitiallySet)
        let entry = DirtyLogRegistry.Entry(memslot: id, mode: mode, bitmap: bitmap, protection: protection)
        guard dirtyLogs.add(entry) else { return }
        dirtyLoggingSlots.wrappingAdd(1, ordering: .acquiringAndReleasing)
        do {
            try guestMemory.updateMemslotFlags(id: id, inserting: .dirtyLogging)
        } catch {
            dropDirtyLog(memslot: id)
            throw error
        }
        let tracker = guestMemory.invalidations
        tracker.beginInvalidation(slot.frames)
        lock.lockExclusive()
        if !isTornDown { protectForDirtyLogging(slot.frames, mode: mode, hugeLeavesOnly: protection.isInitiallySet) }
        lock.unlockExclusive()
        tracker.endInvalidation(slot.frames)
    }

    /// Removes the log of memslot `id`, if any.
    @usableFromInline
    func dropDirtyLog(memslot id: UInt32) {
        if dirtyLogs.remove(memslot: id) != nil {
            dirtyLoggingSlots.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        }
    }

    /// The protection pass of ``enableDirtyLogging(memslot:mode:protection:)``
    /// over every live root; lock held exclusively. Each change is accounted
    /// (``accountChange(old:new:address:level:mode:batch:)``): a leaf that
    /// lost write access or a set dirty bit owes its flush, decided on the
    /// exchange's old value. With `hugeLeavesOnly` small leaves are left as
    /// they are (a log that starts with every page marked).
    @inlinable
    func protectForDirtyLogging(_ frames: GuestFrameRange, mode: DirtyLogMode, hugeLeavesOnly: Bool = false) {
        var batch = TLBFlushBatch()
        for (space, root) in liveRoots(nil) {
            forEachLeaf(in: frames.physicalRange, addressSpace: space, root: root, batch: &batch) { iterator, batch in
                let level = iterator.level
                if level == 0 && hugeLeavesOnly { return false }
                return changeLeaf(&iterator, startsLogging: true, batch: &batch) { entry in
                    if level > 0 {
                        return entry & ~(ExtendedPageTableBits.write | ExtendedPageTableBits.mmuWritable)
                    }
                    switch mode {
                    case .writeProtect: return entry & ~ExtendedPageTableBits.write
                    case .dirtyBit: return entry & ~ExtendedPageTableBits.dirty
                    }
                } != nil
            }
        }
        settle(batch)
    }

    /// Returns the dirty bitmap of memslot `id` and clears it, re-protecting
    /// what it reports (KVM_GET_DIRTY_LOG): in dirty-bit mode the dirty bits
    /// of the slot's small leaves are first harvested into the bitmap and
    /// cleared; in write-protect mode the reported pages lose write access
    /// again. Bit `i` of word `w` is frame `memslot.baseFrame + 64w + i`.
    ///
    /// Every write made before this call is in this or an earlier result;
    /// every write made after it returns will be in a later one.
    /// Locking contract: takes the MMU lock exclusively.
    /// TLB contract: leaves re-protected (or whose set dirty bit was
    /// cleared) are invalidated before the lock is released.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`;
    ///   `SLATError/dirtyLogClearedManually(slot:)` for a log with manual
    ///   protection (use ``getDirtyLog(memslot:)`` and
    ///   ``clearDirtyLog(memslot:firstPage:bitmap:)``).
    @inlinable
    public func getAndClearDirtyLog(memslot id: UInt32) throws(SLATError) -> [UInt64] {
        try checkNotTornDown()
        guard let log = dirtyLogs.entry(forMemslot: id) else { throw .dirtyLoggingNotEnabled(slot: id) }
        if log.protection.isManual { throw .dirtyLogClearedManually(slot: id) }
        let frames = log.bitmap.frames
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        var batch = TLBFlushBatch()
        let roots = liveRoots(nil)
        if log.mode == .dirtyBit { harvestDirtyBits(of: log, roots: roots, batch: &batch) }
        let words = log.bitmap.takeAll()
        if log.mode == .writeProtect {
            writeProtectReported(words, firstFrame: frames.start.rawValue, within: frames, roots: roots, batch: &batch)
        }
        settle(batch)
        return words
    }

    /// The dirty bitmap of memslot `id`, a log with manual protection,
    /// without clearing or re-protecting anything (KVM_GET_DIRTY_LOG with
    /// manual protection). In dirty-bit mode the dirty bits of the slot's
    /// small leaves are first harvested into the bitmap and cleaned, so a
    /// page written after this returns is reported again by the next call.
    ///
    /// Locking contract: takes the MMU lock exclusively. TLB contract: the
    /// leaves whose dirty bit was cleaned are invalidated before the lock is
    /// released.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`, `SLATError/tornDown`.
    @inlinable
    public func getDirtyLog(memslot id: UInt32) throws(SLATError) -> [UInt64] {
        let log = try manualLog(memslot: id)
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        if log.mode == .dirtyBit {
            var batch = TLBFlushBatch()
            harvestDirtyBits(of: log, roots: liveRoots(nil), batch: &batch)
            settle(batch)
        }
        return log.bitmap.snapshot()
    }

    /// Clears the marks `bitmap` names from the log of memslot `id` (a log
    /// with manual protection) and write-protects again each page whose
    /// mark it cleared (KVM_CLEAR_DIRTY_LOG); bit `i` of `bitmap[w]` is page
    /// `firstPage + 64w + i` of the slot. In dirty-bit mode no leaf
    /// changes: ``getDirtyLog(memslot:)`` cleaned the dirty bits of what it
    /// reported, and a page written since keeps its dirty bit, so the next
    /// read reports it again.
    ///
    /// Locking contract: takes the MMU lock exclusively. TLB contract: every
    /// page re-protected is invalidated before the lock is released.
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`,
    ///   `SLATError/dirtyLogClearOutOfRange(slot:firstPage:pageCount:slotPages:)`,
    ///   `SLATError/tornDown`; the log is unchanged then.
    @inlinable
    public func clearDirtyLog(memslot id: UInt32, firstPage: UInt64, bitmap mask: [UInt64]) throws(SLATError) {
        let log = try manualLog(memslot: id)
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        guard !isTornDown else { throw .tornDown }
        // Under the lock, as the harvest takes its words: a mark made with
        // the write access it stands for is cleared together with it.
        let cleared = try log.bitmap.clear(mask, firstPage: firstPage, slot: id)
        guard log.mode == .writeProtect, !Self.manualClearSkipsReprotection else { return }
        var batch = TLBFlushBatch()
        let frames = log.bitmap.frames
        writeProtectReported(cleared, firstFrame: frames.start.rawValue &+ firstPage, within: frames,
                             roots: liveRoots(nil), batch: &batch)
        settle(batch)
    }

    /// The log of memslot `id`, which must have manual protection.
    /// - Throws: `SLATError/tornDown`, `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/dirtyLogNotClearedManually(slot:)`.
    @inlinable
    func manualLog(memslot id: UInt32) throws(SLATError) -> DirtyLogRegistry.Entry {
        try checkNotTornDown()
        guard let log = dirtyLogs.entry(forMemslot: id) else { throw .dirtyLoggingNotEnabled(slot: id) }
        if !log.protection.isManual { throw .dirtyLogNotClearedManually(slot: id) }
        return log
    }

    /// Moves the set dirty bits of the small leaves under `log`'s memslot
    /// into its bitmap, cleaning them (each an accounted change, which
    /// marks the log and owes the leaf's flush). Lock held exclusively.
    @inlinable
    func harvestDirtyBits(of log: DirtyLogRegistry.Entry, roots: [(space: Int, root: HostPhysicalAddress)], batch: inout TLBFlushBatch) {
        for (space, root) in roots {
            forEachLeaf(in: log.bitmap.frames.physicalRange, addressSpace: space, root: root, batch: &batch) { iterator, batch in
                changeLeaf(&iterator, harvestingInto: log.bitmap, batch: &batch) { entry in
                    entry & ExtendedPageTableBits.dirty != 0 ? entry & ~ExtendedPageTableBits.dirty : nil
                } != nil
            }
        }
    }

    /// Write-protects the leaves of the pages `words` reports (bit `i` of
    /// word `w` is frame `firstFrame + 64w + i`, clipped to `frames`): small
    /// leaves lose write access and keep MMU-writable (the fast page fault
    /// restores it and logs the page), huge leaves lose both. One walk per
    /// word with a set bit. Lock held exclusively.
    @inlinable
    func writeProtectReported(
        _ words: [UInt64], firstFrame: UInt64, within frames: GuestFrameRange,
        roots: [(space: Int, root: HostPhysicalAddress)], batch: inout TLBFlushBatch
    ) {
        for (index, word) in words.enumerated() where word != 0 {
            let first = firstFrame &+ UInt64(index) &* 64
            let range = GuestFrameRange(start: GuestFrameNumber(first), count: 64).intersection(frames)
            guard let range else { continue }
            for (space, root) in roots {
                forEachLeaf(in: range.physicalRange, addressSpace: space, root: root, batch: &batch) { iterator, batch in
                    let level = iterator.level
                    if level == 0 {
                        let bit = (iterator.address.frame.rawValue &- first) & 63
                        if word & (1 &<< bit) == 0 { return false }
                    }
                    return changeLeaf(&iterator, batch: &batch) { entry in
                        level > 0 ? entry & ~(ExtendedPageTableBits.write | ExtendedPageTableBits.mmuWritable)
                            : entry & ~ExtendedPageTableBits.write
                    } != nil
                }
            }
        }
    }

    /// Clears write access on the leaf mapping `address` (keeping
    /// MMU-writable on small leaves); accounted, so it owes its flush if it
    /// was writable.
    @inlinable
    func writeProtectLeaf(holding address: GuestPhysicalAddress, addressSpace: Int, batch: inout TLBFlushBatch) {
        guard let (pointer, entry, level) = leafPointer(for: address, addressSpace: addressSpace) else { return }
        let change = updateLeaf(pointer, expected: entry) { entry in
            level > 0 ? entry & ~(ExtendedPageTableBits.write | ExtendedPageTableBits.mmuWritable)
                : entry & ~ExtendedPageTableBits.write
        }
        if let (old, new) = change {
            accountChange(old: old, new: new, address: address, level: level, mode: .exclusive, batch: &batch)
        }
    }

    /// The leaf mapping `address`, its value and level, or `nil`. Caller
    /// holds the lock or is inside a read section.
    @inlinable
    func leafPointer(for address: GuestPhysicalAddress, addressSpace: Int) -> (EntryPointer, UInt64, Int)? {
        var level = format.rootLevel
        var pointer = memory.entries(at: rootAddress(addressSpace)) + format.index(of: address, atLevel: level)
        var entry = pointer.pointee.load(ordering: .acquiring)
        while format.isPresent(entry, atLevel: level) {
            if !format.isTable(entry, atLevel: level) { return (pointer, entry, level) }
            level -= 1
            pointer = memory.entries(at: format.childTable(of: entry)) + format.index(of: address, atLevel: level)
            entry = pointer.pointee.load(ordering: .acquiring)
        }
        return nil
    }

    /// Stops logging memslot `id`: clears its flag and drops its bitmap
    /// (harvest it first), then, if `recoverHugePages`, collapses its page
    /// tables back into huge leaves where the host mapping allows
    /// (``recoverHugePages(in:)``).
    ///
    /// - Throws: `SLATError/dirtyLoggingNotEnabled(slot:)`,
    ///   `SLATError/unknownMemslot(slot:)`.
    public func disableDirtyLogging(memslot id: UInt32, recoverHugePages recover: Bool = true) throws(SLATError) {
        try checkNotTornDown()
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        guard dirtyLogs.entry(forMemslot: id) != nil else { throw .dirtyLoggingNotEnabled(slot: id) }
        try guestMemory.updateMemslotFlags(id: id, removing: .dirtyLogging)
        dropDirtyLog(memslot: id)
        if recover { try recoverHugePages(in: slot.frames) }
    }

    /// The dirty bitmap of memslot `id` (not cleared), or `nil` when it does
    /// not log.
    public func dirtyBitmap(memslot id: UInt32) -> DirtyBitmap? { dirtyLogs.bitmap(forMemslot: id) }

    /// The dirty-log mode of memslot `id`, or `nil` when it does not log.
    public func dirtyLogMode(memslot id: UInt32) -> DirtyLogMode? { dirtyLogs.mode(forMemslot: id) }
}
