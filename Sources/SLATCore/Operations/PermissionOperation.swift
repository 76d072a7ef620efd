import Synchronization

extension PageTable {
    /// Adds `grant` to and removes `revoke` from the permissions of every
    /// leaf in `range` (revoke wins); entries that are not present stay so.
    ///
    /// A larger leaf that only partly overlaps is split first. Leaves that
    /// lose a permission are owed an invalidation in `batch`; gaining a
    /// permission needs none (rule 3).
    ///
    /// - Throws: range errors; ``SLATError/unsupportedPermissions(_:)`` if
    ///   some leaf's new permissions cannot be encoded (checked over the
    ///   whole range before anything changes, when the change can produce
    ///   such a combination at all); ``SLATError/outOfTableMemory(needed:available:)``.
    /// - Parameters:
    ///   - refill: where split pages come from when `context`'s
    ///     cache holds too few: ``PageCacheRefill/never`` for a caller holding
    ///     the MMU lock, which then gets the shortfall and tops up outside it.
    ///   - range: the guest range, page-aligned and inside the input address space.
    ///   - grant: permissions to add.
    ///   - revoke: permissions to remove (wins over `grant`).
    ///   - mode: how the caller holds the MMU lock.
    ///   - context: the calling thread's page cache and reader slot.
    ///   - batch: receives the invalidations owed and the pages to free after them.
    ///   - tlb: invalidated immediately where a split needs break-before-make.
    ///   - forDirtyLogging: a write protection for dirty logging (`grant`
    ///     empty, `revoke` `.write`): each leaf becomes
    ///     ``PageTableFormat/writeProtectedForDirtyLogging(_:atLevel:)``
    ///     instead, so that a backend's lockless fault path may give the
    ///     write back (and log it).
    /// - Returns: `nil` when the whole range is done, else where it stopped
    ///   for pages (only with ``PageCacheRefill/never``); the invalidations
    ///   owed by what was done are in `batch` either way.
    @inlinable @discardableResult
    public func changePermissions<T: TLB>(
        _ range: GuestPhysicalRange, grant: Permissions = [], revoke: Permissions = [],
        mode: WalkMode = .exclusive, context: PageTableContext,
        batch: inout TLBFlushBatch, tlb: T, refill: PageCacheRefill = .fromMemory, forDirtyLogging: Bool = false
    ) throws(SLATError) -> PageCacheShortfall? {
        try validate(range)
        try validateReaderSlot(of: context, mode: mode)
        if grant.isEmpty && revoke.isEmpty { return nil }
        if !permissionChangeIsAlwaysEncodable(grant: grant, revoke: revoke) {
            if mode == .shared {
                // Shared writers may unlink and retire tables: walk them
                // inside this thread's read section, as every shared walk.
                let slot = context.readerSlot
                reclaimer.enterReadSection(slot: slot)
                defer { reclaimer.leaveReadSection(slot: slot) }
                try checkPermissionChange(range, grant: grant, revoke: revoke, mode: mode)
            } else {
                try checkPermissionChange(range, grant: grant, revoke: revoke, mode: mode)
            }
        }
        if let shortfall = try reserve(
            tablePagesNeededToSplitEnds(of: range, mode: mode, context: context), at: range.start,
            context: context, refill: refill) {
            return shortfall
        }
        var visitor = PermissionVisitor(
            table: self, context: context, tlb: tlb, range: range, grant: grant, revoke: revoke,
            shared: mode == .shared, dirtyLogging: forDirtyLogging)
        let shortfall = try run(&visitor, over: range, mode: mode, context: context, refill: refill)
        batch.requests.merge(visitor.requests)
        return shortfall
    }

    /// Whether every encodable permission set stays encodable under the change.
    @inlinable
    func permissionChangeIsAlwaysEncodable(grant: Permissions, revoke: Permissions) -> Bool {
        for raw in UInt8(0)..<16 {
            let before = Permissions(rawValue: raw)
            if format.canEncode(before) && !format.canEncode(before.union(grant).subtracting(revoke)) {
                return false
            }
        }
        return true
    }

    /// Throws if any present leaf in `range` would get permissions the format cannot encode.
    @inlinable
    func checkPermissionChange(_ range: GuestPhysicalRange, grant: Permissions, revoke: Permissions,
                               mode: WalkMode) throws(SLATError) {
        var checker = PermissionChecker(format: format, grant: grant, revoke: revoke)
        _ = try walker.walk(range, mode: mode, with: &checker)
    }
}

/// Read-only pre-check of a permission change.
@usableFromInline
struct PermissionChecker<Format: PageTableFormat>: PageTableVisitor {
    @usableFromInline let format: Format
    @usableFromInline let grant: Permissions
    @usableFromInline let revoke: Permissions

    @inlinable
    init(format: Format, grant: Permissions, revoke: Permissions) {
        self.format = format
        self.grant = grant
        self.revoke = revoke
    }

    @inlinable var visits: WalkVisits { .leaf }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        if format.isLeaf(entry.snapshot, atLevel: entry.level) {
            let after = format.permissions(ofLeaf: entry.snapshot).union(grant).subtracting(revoke)
            if !format.canEncode(after) { throw .unsupportedPermissions(after) }
        }
        return .proceed
    }
}

/// The walk visitor of ``PageTable/changePermissions(_:grant:revoke:mode:context:batch:tlb:)``.
@usableFromInline
struct PermissionVisitor<Format: PageTableFormat, Memory: TableMemory, T: TLB>: RestartableVisitor {
    @usableFromInline let table: PageTable<Format, Memory>
    @usableFromInline let context: PageTableContext
    @usableFromInline let tlb: T
    @usableFromInline let start: UInt64
    @usableFromInline let end: UInt64
    @usableFromInline let grant: Permissions
    @usableFromInline let revoke: Permissions
    @usableFromInline let shared: Bool
    /// Write protection for dirty logging (``PageTableFormat/writeProtectedForDirtyLogging(_:atLevel:)``).
    @usableFromInline let dirtyLogging: Bool
    @usableFromInline var requests = FlushRequests()
    @usableFromInline var restartAddress: GuestPhysicalAddress?
    @usableFromInline var pagesWanted = 0

    @inlinable
    init(table: PageTable<Format, Memory>, context: PageTableContext, tlb: T, range: GuestPhysicalRange,
         grant: Permissions, revoke: Permissions, shared: Bool, dirtyLogging: Bool = false) {
        self.table = table
        self.context = context
        self.tlb = tlb
        self.start = range.start.rawValue
        self.end = range.end.rawValue
        self.grant = grant
        self.revoke = revoke
        self.shared = shared
        self.dirtyLogging = dirtyLogging
    }

    /// `old` after the change.
    @inlinable @inline(__always)
    func changed(_ old: UInt64, level: Int) -> UInt64 {
        dirtyLogging ? format.writeProtectedForDirtyLogging(old, atLevel: level)
            : format.changingPermissions(ofLeaf: old, grant: grant, revoke: revoke)
    }

    @inlinable var visits: WalkVisits { [.tablePre, .leaf] }
    @inlinable var format: Format { table.format }

    /// Whether changing `old` into `new` removed a permission.
    @inlinable
    func reduces(_ old: UInt64, _ new: UInt64) -> Bool {
        if revoke.isEmpty { return false }
        if grant.isEmpty { return old != new }
        return format.changingPermissions(ofLeaf: old, grant: [], revoke: revoke) != old
    }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        let level = entry.level
        if kind == .tablePre {
            // A table of smallest pages: every child is wholly in or out of
            // the (page-aligned) range, so change them in one loop.
            return level == 1 ? changeSmallestPages(in: entry.snapshot, address: entry.address.rawValue) : .proceed
        }
        let address = entry.address.rawValue
        let size = format.entrySize(atLevel: level)
        var old = entry.snapshot
        while true {
            if old == format.frozenEntry {
                restartAddress = entry.address
                return .stop
            }
            if !format.isPresent(old, atLevel: level) { return .skipChildren }
            if level > 0 && format.isTable(old, atLevel: level) { return .proceed }
            if address >= start && address &+ size <= end {
                let new = changed(old, level: level)
                if new == old { return .skipChildren }
                if table.write(entry.pointer, expected: &old, new, level: level, shared: shared) {
                    if reduces(old, new) { requests.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level), size: size) }
                    return .skipChildren
                }
                continue
            }
            guard let page = table.makeSplitTable(of: old, level: level, context: context) else {
                pagesWanted = table.tablePagesForAnySplitAtEnds
                restartAddress = entry.address
                return .stop
            }
            if table.replace(entry.pointer, expected: &old, with: format.tableEntry(child: page),
                             breakingAt: entry.address, level: level, shared: shared, tlb: tlb) {
                // Without break-before-make the leaf may still be cached at
                // its size: owe its invalidation (smaller ones do not reach it).
                if !format.requiresBreakBeforeMake { requests.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level), size: size) }
                return .proceed
            }
            table.recycle(page, context: context)
        }
    }

    @inlinable
    mutating func changeSmallestPages(in tableEntry: UInt64, address: UInt64) -> VisitOutcome {
        // Loop invariants in locals: the atomic accesses in the loop are
        // compiler barriers, so values read from `self` would be reloaded
        // (and the format's masks rebuilt) on every entry.
        let format = self.format
        let grant = self.grant
        let dirtyLogging = self.dirtyLogging
        let revoke = self.revoke
        let shared = self.shared
        let frozen = format.frozenEntry
        let pageSize = format.pageSize
        let low = max(start, address)
        let high = min(end, address &+ format.entrySize(atLevel: 1))
        let entries = table.memory.entries(at: format.childTable(of: tableEntry))
        var index = Int(truncatingIfNeeded: (low &- address) / pageSize)
        let stop = Int(truncatingIfNeeded: (high &- address) / pageSize)
        if !shared && !format.hardwareUpdatesAccessFlags && dirtyLogging {
            // Exclusive write protection for dirty logging: only leaves with
            // write access change, and no lockless path changes those (a fast
            // fault only restores write access), so each is one release store
            // (the fast fault's acquiring load of the leaf pairs with it). An
            // unchanged leaf is not written: it may be volatile, and a store
            // of its old value would take back a write access a fast fault
            // granted meanwhile without the flush it needs (rule 5).
            var reduced = false
            for slot in index..<stop {
                let pointer = entries + slot
                let old = pointer.pointee.load(ordering: .relaxed)
                let new = format.writeProtectedForDirtyLogging(old, atLevel: 0)
                if new != old {
                    pointer.pointee.store(new, ordering: .releasing)
                    reduced = true
                }
            }
            if reduced { owe(low, high) }
            return .skipChildren
        }
        if !shared && !format.hardwareUpdatesAccessFlags {
            // Exclusive and no hardware flags: no other thread writes these
            // entries, so no exchange is needed — except through a backend's
            // lockless fault path (`leavesChangeOutsideTheLock`: stage 2's
            // fast permission fault), which only restores write access to a
            // volatile leaf. A revoke then stores only the entries it
            // changes, and owes the flush of every one of them, so a write
            // access granted between its load and its store is taken away
            // and invalidated with it; an unchanged volatile entry is not
            // written. Grants on such formats take the exchanging loop
            // below. Hardware walkers still read the entries at any time,
            // so each store is one single-copy-atomic (relaxed) store, never
            // a torn or vector store.
            let lockless = format.leavesChangeOutsideTheLock
            var changed: UInt64 = 0
            let masks = format.permissionMasks(grant: grant, revoke: revoke)
            if let masks, masks.set == 0 {
                // Revoke only (write protection): an entry changes iff it
                // had a cleared bit, so OR-ing the old values decides the
                // flush with one instruction per entry.
                let keep = ~masks.clear
                var seen: UInt64 = 0
                if !lockless || revoke.contains(.write) {
                    // Revoking write changes every volatile leaf (the state
                    // that lets a lockless path give write back goes with
                    // it, `changingPermissions`), so every entry is stored.
                    for slot in index..<stop {
                        let pointer = entries + slot
                        let old = pointer.pointee.load(ordering: .relaxed)
                        seen |= old
                        pointer.pointee.store(old & keep, ordering: .relaxed)
                    }
                } else {
                    for slot in index..<stop {
                        let pointer = entries + slot
                        let old = pointer.pointee.load(ordering: .relaxed)
                        seen |= old
                        if old & keep != old { pointer.pointee.store(old & keep, ordering: .relaxed) }
                    }
                }
                if seen & masks.clear != 0 { owe(low, high) }
                return .skipChildren
            }
            if !lockless {
                if let masks {
                    let set = masks.set
                    let keep = ~masks.clear
                    for slot in index..<stop {
                        let pointer = entries + slot
                        let old = pointer.pointee.load(ordering: .relaxed)
                        let new = (old | set) & keep
                        changed |= old ^ new
                        pointer.pointee.store(new, ordering: .relaxed)
                    }
                    if changed != 0 && !revoke.isEmpty { owe(low, high) }
                    return .skipChildren
                }
                for slot in index..<stop {
                    let pointer = entries + slot
                    let old = pointer.pointee.load(ordering: .relaxed)
                    let new = format.isPresent(old, atLevel: 0)
                        ? format.changingPermissions(ofLeaf: old, grant: grant, revoke: revoke) : old
                    changed |= old ^ new
                    pointer.pointee.store(new, ordering: .relaxed)
                }
                if changed != 0 && !revoke.isEmpty { owe(low, high) }
                return .skipChildren
            }
        }
        var reduced = false
        while index < stop {
            let pointer = entries + index
            var old = pointer.pointee.load(ordering: .relaxed)
            while format.isPresent(old, atLevel: 0) {
                let new = dirtyLogging ? format.writeProtectedForDirtyLogging(old, atLevel: 0)
                    : format.changingPermissions(ofLeaf: old, grant: grant, revoke: revoke)
                if new == old { break }
                if !table.needsExchange(old, level: 0, shared: shared) {
                    pointer.pointee.store(new, ordering: .releasing)
                    reduced = reduced || reduces(old, new)
                    break
                }
                let (exchanged, original) = pointer.pointee.compareExchange(
                    expected: old, desired: new, ordering: .acquiringAndReleasing)
                if exchanged {
                    reduced = reduced || reduces(old, new)
                    break
                }
                old = original
            }
            if old == frozen {
                if reduced { owe(low, high) }
                restartAddress = GuestPhysicalAddress(address &+ UInt64(index) &* pageSize)
                return .stop
            }
            index += 1
        }
        if reduced { owe(low, high) }
        return .skipChildren
    }

    @inlinable
    mutating func owe(_ low: UInt64, _ high: UInt64) {
        requests.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(low), uncheckedEnd: GuestPhysicalAddress(high)))
    }
}
