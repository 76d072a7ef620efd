import SLATCore
import Synchronization

// How the locked passes (zap, dirty logging, recovery) change a leaf:
// compare-and-exchange, even under the exclusive lock, because the fast
// page fault, aging and hardware A/D change leaves without it (rule 5). The
// old value the exchange returns is what gets accounted
// (LeafChangeAccounting.swift): dirty bit, NX list, TLB obligation.
extension ExtendedPageTableMMU {
    /// Replaces the leaf `expected` by `transform(expected)` until the
    /// exchange succeeds or `transform` returns `nil` (nothing to do).
    /// Returns the value replaced, or `nil` if nothing was written.
    @inlinable
    func updateLeaf(_ pointer: EntryPointer, expected: UInt64, _ transform: (UInt64) -> UInt64?) -> (old: UInt64, new: UInt64)? {
        var old = expected
        while true {
            guard let new = transform(old), new != old else { return nil }
            _explorationTableEntry()
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: old, desired: new, ordering: .acquiringAndReleasing)
            if exchanged { return (old, new) }
            old = original
        }
    }

    /// ``updateLeaf(_:expected:_:)`` on the iterator's leaf, accounted
    /// (``accountChange(old:new:address:level:mode:batch:)``, exclusive
    /// lock held); the iterator's snapshot becomes the new value. Returns
    /// the value replaced, or `nil` if nothing was written.
    @inlinable
    func changeLeaf(
        _ iterator: inout PageTableIterator<ExtendedPageTableFormat, Memory>, startsLogging: Bool = false,
        harvestingInto log: DirtyBitmap? = nil, batch: inout TLBFlushBatch, _ transform: (UInt64) -> UInt64?
    ) -> UInt64? {
        guard let (old, new) = updateLeaf(iterator.pointer, expected: iterator.snapshot, transform) else { return nil }
        accountChange(old: old, new: new, address: iterator.address, level: iterator.level, mode: .exclusive,
                      startsLogging: startsLogging, harvestingInto: log, batch: &batch)
        iterator.snapshot = new
        return old
    }

    /// Runs `body` on every present leaf of `range` in `addressSpace` with
    /// the exclusive lock held by the caller, yielding it every
    /// ``MMUConfiguration/yieldInterval`` leaves `body` changed: the batch
    /// is settled (flush before the lock is dropped), the lock dropped and
    /// retaken, and the iterator restarted from the root at the address it
    /// had not finished (forward progress: only when it moved).
    ///
    /// `body` returns whether it changed the leaf (it may set the
    /// iterator's snapshot to the new value).
    ///
    /// It walks `root` (a current root of `addressSpace` or a replaced one
    /// still alive, see ``liveRoots(_:)``); after a yield it stops if the
    /// root was freed meanwhile.
    @inlinable
    func forEachLeaf(
        in range: GuestPhysicalRange, addressSpace: Int, root: HostPhysicalAddress, batch: inout TLBFlushBatch,
        _ body: (inout PageTableIterator<ExtendedPageTableFormat, Memory>, inout TLBFlushBatch) -> Bool
    ) {
        var iterator = PageTableIterator(format: format, memory: memory, root: root, range: range)
        var changed = 0
        while iterator.isValid {
            if changed >= configuration.yieldInterval && iterator.canYield {
                yieldExclusiveLock(&batch)
                // Replaced roots are freed under the exclusive lock only.
                guard isLiveRoot(root, addressSpace: addressSpace) else { return }
                iterator.restart()
                changed = 0
                continue
            }
            if format.isLeaf(iterator.snapshot, atLevel: iterator.level) {
                if body(&iterator, &batch) { changed += 1 }
            }
            iterator.advance()
        }
    }

    /// Settles `batch`, drops the exclusive lock and takes it again.
    @usableFromInline
    func yieldExclusiveLock(_ batch: inout TLBFlushBatch) {
        let owed = batch
        batch = TLBFlushBatch()
        settle(owed)
        lock.unlockExclusive()
        lock.lockExclusive()
    }
}
