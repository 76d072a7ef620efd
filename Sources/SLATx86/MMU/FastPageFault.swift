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

// The fast page fault (KVM's fast_page_fault): no MMU lock; one exchange on the leaf.
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
    /// The walk starts at `vcpu`'s remembered leaf table when it is still
    /// current (`fastFaultLeaf(_:addressSpace:slot:)`); the page is marked
    /// through `vcpu`'s `DirtyLogMemo`.
    ///
    /// Locking contract: takes no lock; walks inside `vcpu`'s reclaimer
    /// read section. Entries it may change are volatile (rule 5): every
    /// locked writer exchanges them and reads the old value from that
    /// exchange to decide its TLB flush, so a write access granted here is
    /// never left cached behind a write-protect.
    /// TLB contract: it only adds access; nothing to flush.
    /// - Throws: as ``handleFault(_:vcpu:)-(GuestPageFault,_)`` for what the VMM passed
    ///   (reader slot, address space, address) and `SLATError/tornDown`.
    @inlinable
    public func fastPageFault(_ fault: GuestPageFault, vcpu: PageTableContext) throws(SLATError) -> FastFaultOutcome {
        try validate(fault, vcpu: vcpu)
        try checkNotTornDown()
        return fastPageFaultValidated(fault, vcpu: vcpu)
    }

    /// ``fastPageFault(_:vcpu:)`` after ``validate(_:vcpu:)``. A vCPU that
    /// must reload its roots, or a torn-down MMU, gets
    /// ``FastFaultOutcome/notFixable`` (the full path says which).
    @inlinable
    func fastPageFaultValidated(_ fault: GuestPageFault, vcpu: PageTableContext) -> FastFaultOutcome {
        let format = self.format
        let slot = vcpu.readerSlot
        reclaimer.enterReadSection(slot: slot)
        defer { reclaimer.leaveReadSection(slot: slot) }
        // Loaded inside the read section: teardown changes it before it
        // waits for read sections, so a walk that saw the old value ends
        // before any page is freed.
        let generation = rootGeneration.load(ordering: .sequentiallyConsistent)
        let loaded = loadedGenerations[slot].load(ordering: .relaxed)
        if loaded != generation {
            // A vCPU that loaded nothing yet can only use the current EPTP
            // (recorded before the walk reads the root, as reloadRoot does);
            // else it must reload first, or the MMU is torn down.
            guard loaded == 0 && generation != Self.tornDownGeneration else { return .notFixable }
            loadedGenerations[slot].store(generation, ordering: .sequentiallyConsistent)
        }
        var (pointer, entry, level) = fastFaultLeaf(fault.address, addressSpace: fault.addressSpace, slot: slot)
        let needed = format.permissionBit(for: fault.access)
        var attempts = configuration.fastFaultAttempts
        while attempts > 0 {
            guard format.isPresent(entry, atLevel: level) else { return .notFixable }
            let tracked = entry & ExtendedPageTableBits.accessTracked != 0
            if !tracked && entry & needed != 0 { return .spurious }
            var new = tracked ? Self.restoringAccess(entry) : entry
            if fault.access == .write {
                guard new & ExtendedPageTableBits.mmuWritable != 0 else { return .notFixable }
                if level > 0 && isDirtyLogging(fault.address.frame, slot: slot) { return .notFixable }
                new |= ExtendedPageTableBits.write | ExtendedPageTableBits.dirty | ExtendedPageTableBits.accessed
            }
            guard new & needed != 0 else { return .notFixable }
            _explorationTableEntry()
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

    /// The entry the fast page fault works on: the leaf mapping `address`,
    /// or the first entry that is not a table on the way to it. A walk that
    /// needs a 4 KiB leaf in the 2 MiB region of reader slot `slot`'s
    /// ``LeafTableMemo`` starts at the remembered table while no table has
    /// been unlinked since; a walk that reaches a level-0 table remembers it.
    ///
    /// Soundness without the lock (the fast path takes none): the caller is
    /// inside its read section, and ``tableUnlinks`` is loaded after entering
    /// it and before anything is read from the tables. An unlink whose bump
    /// this load does not see is concurrent with the walk: its page is
    /// retired only after the bump, so not freed before this read section
    /// ends, and the walk may use it exactly as a walk from the root that
    /// read the parent entry just before the unlink (an exchange on a leaf
    /// of an unlinked table grants nothing the hardware can reach once the
    /// unlinker has flushed; a frozen entry is not present).
    @inlinable @inline(__always)
    func fastFaultLeaf(
        _ address: GuestPhysicalAddress, addressSpace: Int, slot: Int
    ) -> (pointer: EntryPointer, entry: UInt64, level: Int) {
        let format = self.format
        let generation = tableUnlinks.load(ordering: .sequentiallyConsistent)
        let rootAddress = self.rootAddress(addressSpace).rawValue
        let slotEntry = resolveCacheEntry(slot: slot)
        let region = address.rawValue & ~(format.entrySize(atLevel: 1) &- 1)
        let memo = slotEntry.pointee.leafTable
        if memo.table != 0 && memo.generation == generation && memo.root == rootAddress
            && memo.addressSpace == addressSpace && memo.region == region {
            let pointer = memory.entries(at: HostPhysicalAddress(memo.table)) + format.index(of: address, atLevel: 0)
            return (pointer, pointer.pointee.load(ordering: .acquiring), 0)
        }
        var level = format.rootLevel
        var pointer = memory.entries(at: HostPhysicalAddress(rootAddress)) + format.index(of: address, atLevel: level)
        var entry = pointer.pointee.load(ordering: .acquiring)
        while format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level) {
            level -= 1
            let child = format.childTable(of: entry)
            if level == 0 {
                slotEntry.pointee.leafTable = LeafTableMemo(
                    table: child.rawValue, generation: generation, root: rootAddress,
                    addressSpace: addressSpace, region: region)
            }
            pointer = memory.entries(at: child) + format.index(of: address, atLevel: level)
            entry = pointer.pointee.load(ordering: .acquiring)
        }
        return (pointer, entry, level)
    }

    /// An access-tracked leaf with its saved read, execute and user-execute
    /// bits back (write comes back only through the MMU-writable path).
    @inlinable
    static func restoringAccess(_ entry: UInt64) -> UInt64 {
        let saved = (entry & ExtendedPageTableBits.savedRead) >> 54 | (entry & ExtendedPageTableBits.savedExecute) >> 54
            | (entry & ExtendedPageTableBits.savedUserExecute) >> 50
        return entry & ~(ExtendedPageTableBits.accessTracked | ExtendedPageTableBits.savedRead
                         | ExtendedPageTableBits.savedExecute | ExtendedPageTableBits.savedUserExecute)
            | saved | ExtendedPageTableBits.accessed
    }

    /// The access-tracked form of a leaf: read, execute and user-execute
    /// (mode-based execute control) saved, every access bit cleared, the
    /// marker set (present to software through the "MMU present" bit, not
    /// to hardware).
    @inlinable
    static func accessTrackedForm(of entry: UInt64) -> UInt64 {
        let saved = (entry & ExtendedPageTableBits.read) << 54 | (entry & ExtendedPageTableBits.execute) << 54
            | (entry & ExtendedPageTableBits.userExecute) << 50
        return entry & ~(ExtendedPageTableBits.readWriteExecute | ExtendedPageTableBits.userExecute)
            | saved | ExtendedPageTableBits.accessTracked
    }

    /// Whether a dirty log covers `frame` (through reader slot `slot`'s
    /// ``DirtyLogMemo``). A log is registered before its memslot is flagged
    /// and unregistered after the flag is cleared, so this errs towards
    /// "logging", which only sends a huge-leaf write to the full path.
    @inlinable
    func isDirtyLogging(_ frame: GuestFrameNumber, slot: Int) -> Bool {
        guard dirtyLoggingSlots.load(ordering: .acquiring) > 0 else { return false }
        return dirtyLog(containing: frame, slot: slot) != nil
    }

    /// Marks `frame` in the dirty log that covers it, if any (through
    /// reader slot `slot`'s ``DirtyLogMemo``). Call it after the exchange
    /// that granted write access: see ``DirtyLogMemo`` for why a log
    /// enabled before the write-protect that exchange replaced is seen.
    @inlinable @inline(__always)
    func markDirtyIfLogging(_ frame: GuestFrameNumber, slot: Int) {
        guard dirtyLoggingSlots.load(ordering: .acquiring) > 0 else { return }
        dirtyLog(containing: frame, slot: slot)?.mark(frame)
    }
}
