import SLATCore
import Synchronization

/// What ``ExtendedPageTableMMU/fastPageFault(_:vcpu:)`` did.
@frozen
public enum FastFaultOutcome: Sendable, Hashable {
    /// The leaf at `level` was fixed by one compare-and-exchange.
    case fixed(level: Int)
    /// The leaf already allowed the access.
    case spurious
    /// Not a fault this path can fix (no leaf, a real permission the MMU
    /// never granted, a huge leaf in a dirty-logged slot, or a leaf that
    /// kept changing): take the full fault path.
    case notFixable
}

// The fast page fault (seed 002): no MMU lock; one exchange on the leaf.
extension ExtendedPageTableMMU {
    /// Fixes, without the MMU lock, a fault on a present leaf that lost an
    /// access only for dirty logging or access tracking: restores write
    /// access on a leaf write-protected with the MMU-writable bit kept (and
    /// marks the page in its memslot's dirty bitmap), or restores the saved
    /// access bits of an access-tracked leaf. One compare-and-exchange,
    /// retried at most ``MMUConfiguration/fastFaultAttempts`` times against
    /// the value that made it fail; never for a huge leaf in a dirty-logged
    /// slot.
    ///
    /// Locking contract: takes no lock; walks inside `vcpu`'s reclaimer
    /// read section. Entries it may change are volatile (rule 5): every
    /// locked writer exchanges them and reads the old value from that
    /// exchange to decide its TLB flush, so a write access granted here is
    /// never left cached behind a write-protect.
    /// TLB contract: it only adds access; nothing to flush.
    @inlinable
    public func fastPageFault(_ fault: GuestPageFault, vcpu: PageTableContext) -> FastFaultOutcome {
        let format = self.format
        let slot = vcpu.readerSlot
        reclaimer.enterReadSection(slot: slot)
        defer { reclaimer.leaveReadSection(slot: slot) }
        var level = format.rootLevel
        var pointer = memory.entries(at: root(addressSpace: fault.addressSpace)) + format.index(of: fault.address, atLevel: level)
        var entry = pointer.pointee.load(ordering: .acquiring)
        while format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level) {
            level -= 1
            pointer = memory.entries(at: format.childTable(of: entry)) + format.index(of: fault.address, atLevel: level)
            entry = pointer.pointee.load(ordering: .acquiring)
        }
        let needed: UInt64
        switch fault.access {
        case .read: needed = ExtendedPageTableBits.read
        case .write: needed = ExtendedPageTableBits.write
        case .execute: needed = ExtendedPageTableBits.execute
        }
        var attempts = configuration.fastFaultAttempts
        while attempts > 0 {
            guard format.isPresent(entry, atLevel: level) else { return .notFixable }
            let tracked = entry & ExtendedPageTableBits.accessTracked != 0
            if !tracked && entry & needed != 0 { return .spurious }
            var new = tracked ? Self.restoringAccess(entry) : entry
            if fault.access == .write {
                guard new & ExtendedPageTableBits.mmuWritable != 0 else { return .notFixable }
                if level > 0 && isDirtyLogging(fault.address.frame) { return .notFixable }
                new |= ExtendedPageTableBits.write | ExtendedPageTableBits.dirty | ExtendedPageTableBits.accessed
            }
            guard new & needed != 0 else { return .notFixable }
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: entry, desired: new, ordering: .acquiringAndReleasing)
            if exchanged {
                if new & ~entry & ExtendedPageTableBits.write != 0 { markDirtyIfLogging(fault.address.frame, slot: slot) }
                return .fixed(level: level)
            }
            entry = original
            attempts -= 1
        }
        return .notFixable
    }

    /// An access-tracked leaf with its saved read and execute bits back
    /// (write comes back only through the MMU-writable path).
    @inlinable
    static func restoringAccess(_ entry: UInt64) -> UInt64 {
        let saved = (entry & ExtendedPageTableBits.savedRead) >> 54 | (entry & ExtendedPageTableBits.savedExecute) >> 54
        return entry & ~(ExtendedPageTableBits.accessTracked | ExtendedPageTableBits.savedRead | ExtendedPageTableBits.savedExecute)
            | saved | ExtendedPageTableBits.accessed
    }

    /// The access-tracked form of a leaf: read and execute saved, every
    /// access bit cleared, the marker set (present to software through the
    /// "MMU present" bit, not to hardware).
    @inlinable
    static func accessTrackedForm(of entry: UInt64) -> UInt64 {
        let saved = (entry & ExtendedPageTableBits.read) << 54 | (entry & ExtendedPageTableBits.execute) << 54
        return entry & ~(ExtendedPageTableBits.readWriteExecute | ExtendedPageTableBits.userExecute)
            | saved | ExtendedPageTableBits.accessTracked
    }

    /// Whether the memslot holding `frame` logs dirty pages.
    @usableFromInline
    func isDirtyLogging(_ frame: GuestFrameNumber) -> Bool {
        guard dirtyLoggingSlots.load(ordering: .acquiring) > 0 else { return false }
        return guestMemory.memslot(containing: frame)?.flags.contains(.dirtyLogging) ?? false
    }

    /// Marks `frame` in its memslot's dirty bitmap if the slot logs. The
    /// memslot comes from reader slot `slot`'s resolve memo when that is
    /// current (its dirty-logging flag can only be stale towards "on",
    /// which finds no bitmap), else from ``guestMemory``.
    @usableFromInline
    func markDirtyIfLogging(_ frame: GuestFrameNumber, slot: Int) {
        guard dirtyLoggingSlots.load(ordering: .acquiring) > 0 else { return }
        let entry = resolveCacheEntry(slot: slot)
        let memslot: Memslot
        if entry.pointee.isValid && entry.pointee.memslot.contains(frame)
            && entry.pointee.sequence == tracker.snapshot().value {
            memslot = entry.pointee.memslot
        } else {
            guard let found = guestMemory.memslot(containing: frame) else { return }
            memslot = found
        }
        guard memslot.flags.contains(.dirtyLogging) else { return }
        dirtyLogs.bitmap(forMemslot: memslot.id)?.mark(frame)
    }
}
