import Synchronization

extension PageTable {
    /// Removes every translation in `range`.
    ///
    /// Leaves inside the range are cleared; a larger leaf that only partly
    /// overlaps is first split into an equivalent table; a table wholly
    /// inside the range is unlinked with one write and its subtree freed
    /// after the flush. A table left with no live entry is unlinked and
    /// freed too: at once in exclusive mode; in shared mode only after its
    /// parent entry and all its entries have been frozen and found empty (a
    /// concurrent writer that got in first keeps the table alive).
    ///
    /// TLB contract: in exclusive mode the invalidations owed go to `batch`
    /// (no other writer can reuse an emptied entry before the caller settles
    /// it). In shared mode another thread's map could fill an emptied entry
    /// at once — a block over pages some CPU still caches, a TLB conflict —
    /// so every entry the unmap empties stays frozen (locked, invalid) until
    /// its translations are invalidated through `tlb`, and only then becomes
    /// zero: a concurrent map meets the frozen value and restarts (as KVM's
    /// TDP MMU zaps under the shared lock). Pages are still freed only after
    /// `batch` is settled.
    ///
    /// - Throws: ``SLATError/emptyRange``, misalignment and out-of-bounds
    ///   errors, ``SLATError/readerSlotOutOfRange(_:slots:)`` (shared mode),
    ///   ``SLATError/outOfTableMemory(needed:available:)`` only when a leaf
    ///   straddling an end of the range must be split — all before any entry
    ///   changes.
    @inlinable
    public func unmap<T: TLB>(
        _ range: GuestPhysicalRange, mode: WalkMode = .exclusive, context: PageTableContext,
        batch: inout TLBFlushBatch, tlb: T
    ) throws(SLATError) {
        try validate(range)
        try validateReaderSlot(of: context, mode: mode)
        try context.pageCache.topUp(
            from: memory, toAtLeast: tablePagesNeededToSplitEnds(of: range, mode: mode, context: context))
        var visitor = UnmapVisitor(table: self, context: context, tlb: tlb, range: range, shared: mode == .shared)
        try run(&visitor, over: range, mode: mode, context: context)
        batch.requests.merge(visitor.requests)
    }
}

/// The walk visitor of ``PageTable/unmap(_:mode:context:batch:tlb:)``.
@usableFromInline
struct UnmapVisitor<Format: PageTableFormat, Memory: TableMemory, T: TLB>: RestartableVisitor {
    @usableFromInline let table: PageTable<Format, Memory>
    @usableFromInline let context: PageTableContext
    @usableFromInline let tlb: T
    @usableFromInline let start: UInt64
    @usableFromInline let end: UInt64
    @usableFromInline let shared: Bool
    @usableFromInline var requests = FlushRequests()
    @usableFromInline var restartAddress: GuestPhysicalAddress?
    @usableFromInline var pagesWanted = 0

    @inlinable
    init(table: PageTable<Format, Memory>, context: PageTableContext, tlb: T, range: GuestPhysicalRange, shared: Bool) {
        self.table = table
        self.context = context
        self.tlb = tlb
        self.start = range.start.rawValue
        self.end = range.end.rawValue
        self.shared = shared
    }

    @inlinable var visits: WalkVisits { [.tablePre, .leaf, .tablePost] }
    @inlinable var format: Format { table.format }

    @inlinable
    func isCovered(level: Int, address: UInt64) -> Bool {
        address >= start && address &+ format.entrySize(atLevel: level) <= end
    }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        let level = entry.level
        let address = entry.address.rawValue
        let size = format.entrySize(atLevel: level)
        switch kind {
        case .tablePre:
            guard isCovered(level: level, address: address) else { return .proceed }
            var old = entry.snapshot
            if !table.write(entry.pointer, expected: &old, shared ? format.frozenEntry : 0, level: level, shared: shared) {
                // Changed under us: look again (the walker re-reads).
                if old == format.frozenEntry {
                    restartAddress = entry.address
                    return .stop
                }
                return .proceed
            }
            table.detachSubtree(of: entry.snapshot, level: level, shared: shared, into: &requests)
            table.memory.adjustLiveEntryCount(containing: entry.pointer, by: -1)
            emptied(entry.pointer, range: GuestPhysicalRange(start: entry.address, size: size))
            return .skipChildren
        case .leaf:
            var old = entry.snapshot
            while true {
                if old == format.frozenEntry {
                    restartAddress = entry.address
                    return .stop
                }
                if !format.isPresent(old, atLevel: level) { return .skipChildren }
                if level > 0 && format.isTable(old, atLevel: level) { return .proceed }
                if isCovered(level: level, address: address) {
                    if table.write(entry.pointer, expected: &old, shared ? format.frozenEntry : 0, level: level, shared: shared) {
                        table.memory.adjustLiveEntryCount(containing: entry.pointer, by: -1)
                        if shared && !Self.defersSharedInvalidation {
                            tlb.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level))
                            entry.pointer.pointee.store(0, ordering: .releasing)
                        } else {
                            if shared { entry.pointer.pointee.store(0, ordering: .releasing) }
                            requests.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level), size: size)
                        }
                        return .skipChildren
                    }
                    continue
                }
                // A block only partly inside the range: split it, then descend.
                guard let page = table.makeSplitTable(of: old, level: level, context: context) else {
                    pagesWanted = table.tablePagesForAnySplitAtEnds
                    restartAddress = entry.address
                    return .stop
                }
                if table.replace(entry.pointer, expected: &old, with: format.tableEntry(child: page),
                                 breakingAt: entry.address, level: level, shared: shared, tlb: tlb) {
                    // Without break-before-make the block may still be cached
                    // at its size: owe its invalidation (smaller ones do not reach it).
                    if !format.requiresBreakBeforeMake { requests.invalidate(address: entry.address, level: format.leafLevel(ofHeight: level), size: size) }
                    return .proceed
                }
                table.recycle(page, context: context)
            }
        case .tablePost:
            let child = format.childTable(of: entry.snapshot)
            guard table.memory.liveEntryCount(of: child) <= 0 else { return .proceed }
            if shared {
                freeIfEmpty(entry.pointer, tableEntry: entry.snapshot, level: level, address: entry.address)
            } else {
                entry.pointer.pointee.store(0, ordering: .releasing)
                table.memory.adjustLiveEntryCount(containing: entry.pointer, by: -1)
                requests.invalidate(range: GuestPhysicalRange(start: entry.address, size: size))
                table.reclaimer.noteTableUnlinked()
                requests.freeAfterFlush(child)
            }
            return .proceed
        }
    }

    /// Shared-mode freeing of a table that looks empty: freeze the parent
    /// entry so no new walker enters, freeze every child entry so a walker
    /// already inside fails its exchange, and free only if every child was
    /// empty; otherwise put everything back as it was.
    @inlinable
    mutating func freeIfEmpty(_ pointer: EntryPointer, tableEntry: UInt64, level: Int, address: GuestPhysicalAddress) {
        var expected = tableEntry
        guard table.write(pointer, expected: &expected, format.frozenEntry, level: level, shared: shared) else { return }
        let child = table.memory.entries(at: format.childTable(of: tableEntry))
        var frozenCount = 0
        var live: UInt64 = 0
        while frozenCount < format.entriesPerTable {
            let value = table.freeze(child + frozenCount)
            if value != 0 {
                live = value
                break
            }
            frozenCount += 1
        }
        if frozenCount < format.entriesPerTable {
            // Someone mapped into it meanwhile: restore.
            child[frozenCount].store(live, ordering: .releasing)
            for index in 0..<frozenCount { child[index].store(0, ordering: .releasing) }
            pointer.pointee.store(tableEntry, ordering: .releasing)
            return
        }
        // The parent entry is still frozen: invalidate, then empty it.
        table.memory.adjustLiveEntryCount(containing: pointer, by: -1)
        emptied(pointer, range: GuestPhysicalRange(start: address, size: format.entrySize(atLevel: level)))
        table.reclaimer.noteTableUnlinked()
        requests.freeAfterFlush(format.childTable(of: tableEntry))
    }

    /// An entry covering `range` was emptied: in exclusive mode it is zero
    /// already and its invalidation is owed to the batch; in shared mode it
    /// is frozen, so it is invalidated now and only then made zero (no
    /// concurrent map can reuse it while its old translations may be cached).
    @inlinable
    mutating func emptied(_ pointer: EntryPointer, range: GuestPhysicalRange) {
        if shared && !Self.defersSharedInvalidation {
            tlb.invalidate(range: range)
            pointer.pointee.store(0, ordering: .releasing)
        } else {
            if shared { pointer.pointee.store(0, ordering: .releasing) }
            requests.invalidate(range: range)
        }
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/sharedUnmapDefersInvalidation`` (hosted debug
    /// builds only): then a shared unmap empties entries at once and owes
    /// their invalidation to the batch, the defect the freeze prevents.
    @inlinable
    static var defersSharedInvalidation: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.sharedUnmapDefersInvalidation)
        #else
        false
        #endif
    }
}
