import SLATCore
import Synchronization

// The one place where a change of an entry is accounted (KVM's
// handle_changed_spte): every path that removes, replaces, downgrades or
// splits a leaf, or replaces a table entry, calls
// ``ExtendedPageTableMMU/accountChange(old:new:address:level:mode:batch:)``
// with the value its exchange replaced. Paths differ in how they walk and
// write, never in what a change owes. See Docs/x86-tdp-mmu.md, "One
// accounting point".
extension ExtendedPageTableMMU {
    /// Accounts the change of the entry at `level` covering `address` from
    /// `old` (the value the caller's exchange replaced) to `new`:
    ///
    /// - a present leaf that loses its set dirty bit while writable (removed,
    ///   replaced by another output, or cleaned) has its frames marked in the
    ///   dirty-bit-mode log that covers them, looked up now, at the change
    ///   (a pass that yielded the lock sees a log enabled meanwhile);
    /// - a leaf removed, moved, reduced (permission or dirty bit lost) owes
    ///   its invalidation at its level; a huge leaf split into an equivalent
    ///   table (`new` a table entry) owes it at its size and harvests
    ///   nothing (the small leaves carry its bits);
    /// - a table entry replaced (by nothing or a huge leaf) makes its subtree
    ///   the caller's (rule 2 of Docs/concurrency.md): its leaves are
    ///   harvested as above, its NX-huge-page splits forgotten, its pages
    ///   queued to be retired after the flush, and the whole range owed;
    /// - an addition owes nothing.
    ///
    /// `startsLogging` is set only by the protection pass that enables
    /// dirty-bit logging: the dirty bits it cleans are the state before
    /// logging began, owed to no log (the flush is still owed).
    ///
    /// `harvestingInto`, when given, is the dirty-bit-mode log the caller is
    /// harvesting now (its exclusive-lock pass): a dirty bit it covers goes
    /// there without a registry lookup (the log a lookup would find, or one
    /// being dropped, whose caller returns its words anyway).
    ///
    /// `mode` is `.shared` when other walkers may change the detached
    /// subtree's entries (each is then frozen by exchange); `.exclusive`
    /// when the caller holds the MMU lock exclusively (only the lockless
    /// fast page fault and hardware can still change leaves, so leaves are
    /// exchanged only when a dirty log could want their bits).
    @inlinable
    package func accountChange(
        old: UInt64, new: UInt64, address: GuestPhysicalAddress, level: Int, mode: WalkMode,
        startsLogging: Bool = false, harvestingInto log: DirtyBitmap? = nil, batch: inout TLBFlushBatch
    ) {
        let format = self.format
        guard format.isPresent(old, atLevel: level) else { return }
        let size = format.entrySize(atLevel: level)
        let start = address.alignedDown(to: size)
        if format.isTable(old, atLevel: level) {
            retireSubtree(ofTableEntry: old, level: level, address: start, mode: mode, batch: &batch)
            batch.invalidate(range: GuestPhysicalRange(start: start, size: size))
            return
        }
        let newPresent = format.isPresent(new, atLevel: level)
        if newPresent && format.isTable(new, atLevel: level) {
            // A split: the same translations, now in a table; a cached huge
            // entry must go so no later small invalidation misses it.
            batch.invalidate(address: start, level: format.leafLevel(ofHeight: level), size: size)
            return
        }
        let owed = obligations(ofReplacingLeaf: old, by: new, atLevel: level)
        if owed.harvest && !startsLogging && !Self.dropsRemovedDirtyBits {
            let frames = GuestFrameRange(covering: GuestPhysicalRange(start: start, size: size))
            if let log, level == 0, log.frames.contains(frames.start) {
                log.mark(frames.start)
            } else {
                harvestDirty(frames)
            }
        }
        if owed.flush {
            batch.invalidate(address: start, level: format.leafLevel(ofHeight: level), size: size)
        }
    }

    /// What replacing the present leaf `old` at `level` by `new` (not a
    /// table) owes: a harvest when a writable leaf loses its set dirty bit
    /// (removed, moved or cleaned), a flush when the translation is removed,
    /// moved, loses a permission or its dirty bit. The fault path asks it
    /// before it records a replacement, so a leaf that only gained access
    /// costs nothing more.
    @inlinable @inline(__always)
    func obligations(ofReplacingLeaf old: UInt64, by new: UInt64, atLevel level: Int) -> (harvest: Bool, flush: Bool) {
        let moved = !format.isPresent(new, atLevel: level)
            || format.outputAddress(ofLeaf: old, atLevel: level) != format.outputAddress(ofLeaf: new, atLevel: level)
        let dirtyLost = old & ExtendedPageTableBits.dirty != 0 && (moved || new & ExtendedPageTableBits.dirty == 0)
        let permissionBits = ExtendedPageTableBits.readWriteExecute | ExtendedPageTableBits.userExecute
        return (dirtyLost && old & ExtendedPageTableBits.write != 0, moved || old & permissionBits & ~new != 0 || dirtyLost)
    }

    /// Marks `frames` in every dirty-bit-mode log that covers any of them
    /// (a dirty bit is leaving the tables before a harvest read it).
    /// Write-protect-mode logs are marked by the fault that grants write
    /// access, so a dirty bit means nothing to them.
    @usableFromInline
    func harvestDirty(_ frames: GuestFrameRange) {
        guard dirtyLoggingSlots.load(ordering: .acquiring) > 0 else { return }
        dirtyLogs.entries.read { list in
            for entry in list where entry.mode == .dirtyBit {
                if let overlap = entry.bitmap.frames.intersection(frames) { entry.bitmap.mark(overlap) }
            }
        }
    }

    /// Takes the subtree below the table entry `entry` (at `level`, mapping
    /// from `address`) out of use: every leaf's change to "removed" is
    /// accounted, marked NX-huge-page tables leave the split list, and every
    /// table page goes to `batch` to be retired after its flush.
    @usableFromInline
    func retireSubtree(
        ofTableEntry entry: UInt64, level: Int, address: GuestPhysicalAddress, mode: WalkMode,
        batch: inout TLBFlushBatch
    ) {
        if entry & ExtendedPageTableBits.nxHugePageSplit != 0 {
            forgetNXSplit(address: address, level: level)
        }
        let format = self.format
        let page = format.childTable(of: entry)
        let child = memory.entries(at: page)
        let childLevel = level - 1
        let step = format.entrySize(atLevel: childLevel)
        let shared = mode == .shared
        // Under the exclusive lock a leaf table needs no visit unless a
        // dirty log may want its bits; the check is made here, at the
        // change (a log enabled later protects what is left after us).
        let visitLeaves = shared || (dirtyLoggingSlots.load(ordering: .acquiring) > 0 && !Self.skipsSubtreeHarvest)
        if childLevel == 0 && !visitLeaves {
            batch.freeAfterFlush(page)
            return
        }
        let frozen = format.frozenEntry
        for index in 0..<format.entriesPerTable {
            let value: UInt64
            if shared || childLevel == 0 {
                value = child[index].exchange(shared ? frozen : 0, ordering: .acquiringAndReleasing)
            } else {
                value = child[index].load(ordering: .relaxed)
            }
            guard value != frozen, format.isPresent(value, atLevel: childLevel) else { continue }
            let childAddress = address.advanced(by: step &* UInt64(index))
            if format.isTable(value, atLevel: childLevel) {
                retireSubtree(ofTableEntry: value, level: childLevel, address: childAddress, mode: mode, batch: &batch)
            } else if value & ExtendedPageTableBits.dirty != 0 && value & ExtendedPageTableBits.write != 0 {
                harvestDirty(GuestFrameRange(covering: GuestPhysicalRange(start: childAddress, size: step)))
            }
        }
        batch.freeAfterFlush(page)
    }

    /// Removes the NX-huge-page split recorded at `address`/`level` (its
    /// table is going away another way than recovery).
    @usableFromInline
    func forgetNXSplit(address: GuestPhysicalAddress, level: Int) {
        listLock.withLock {
            nxSplits.removeAll { $0.address == address && $0.level == level }
        }
    }
}
