import Synchronization

// The entry-changing primitives every range operation shares. All are
// `@inlinable` so that the generic operations specialise around them.

/// The entries of a page as plain words, for loops the compiler may
/// vectorise. Only for pages nothing else can read or write while the loop
/// runs: a page not yet linked. A linked page is read by hardware walkers
/// even under the exclusive MMU lock, so its stores stay single-copy atomic.
/// `Atomic<UInt64>` has the layout of `UInt64`, so both views agree.
@inlinable
func plainEntries(_ entries: EntryPointer) -> UnsafeMutablePointer<UInt64> {
    UnsafeMutableRawPointer(entries).assumingMemoryBound(to: UInt64.self)
}

extension PageTable {
    /// Whether replacing `entry` needs a compare-and-exchange: always in a
    /// shared walk (rule 1), and for volatile leaves hardware or a lockless
    /// fault path may change behind the lock (rule 5).
    @inlinable
    func needsExchange(_ entry: UInt64, level: Int, shared: Bool) -> Bool {
        shared || (format.leavesChangeOutsideTheLock && format.isPresent(entry, atLevel: level)
            && format.isVolatile(entry, atLevel: level))
    }

    /// Writes `new` over the entry whose value was `expected`: by
    /// compare-and-exchange when ``needsExchange(_:level:shared:)`` says so —
    /// on failure `expected` receives the current value and the result is
    /// `false` — otherwise by a plain release store.
    @inlinable
    func write(_ pointer: EntryPointer, expected: inout UInt64, _ new: UInt64, level: Int, shared: Bool) -> Bool {
        _explorationTableEntry()
        if needsExchange(expected, level: level, shared: shared) {
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: expected, desired: new, ordering: .acquiringAndReleasing)
            if !exchanged { expected = original }
            return exchanged
        }
        pointer.pointee.store(new, ordering: .releasing)
        return true
    }

    /// Takes ownership of an entry by exchanging it for the frozen value,
    /// waiting while another thread holds it frozen. Returns the value it had.
    @inlinable
    func freeze(_ pointer: EntryPointer) -> UInt64 {
        let frozen = format.frozenEntry
        var value = pointer.pointee.load(ordering: .acquiring)
        while true {
            if value == frozen {
                value = pointer.pointee.load(ordering: .acquiring)
                continue
            }
            _explorationTableEntry()
            let (exchanged, original) = pointer.pointee.compareExchange(
                expected: value, desired: frozen, ordering: .acquiringAndReleasing)
            if exchanged { return value }
            value = original
        }
    }

    /// Hands every table page below the table entry `entry` (at `level`) to
    /// `requests` to be freed after the flush. The entry has already been
    /// replaced by the caller, who owns the subtree (rule 2). In a shared
    /// walk every child entry is frozen first so that a writer still inside
    /// the subtree fails its exchange and restarts from the root, and a
    /// table such a writer linked at the last moment is collected too.
    ///
    /// A table of smallest pages holds no table to collect and nothing of
    /// its leaves is kept, so its entries are frozen by single-copy-atomic
    /// stores, not exchanges: an exchange made before the store is
    /// discarded with the page (as one before a frozen exchange is), one
    /// after it fails. A thread that had frozen a leaf itself (a
    /// break-before-make, a shared unmap) may store its value over the
    /// frozen one: later writes there succeed in a table no walk reaches
    /// any more and are discarded, each overlapping this operation. The
    /// page is freed only after the grace period, so none of them touches
    /// a freed page.
    @inlinable
    func detachSubtree(of entry: UInt64, level: Int, shared: Bool, into requests: inout FlushRequests) {
        reclaimer.noteTableUnlinked()
        let childPage = format.childTable(of: entry)
        let childLevel = level - 1
        if shared && childLevel == 0 {
            let child = memory.entries(at: childPage)
            let frozen = format.frozenEntry
            for index in 0..<format.entriesPerTable {
                _explorationTableEntry()
                child[index].store(frozen, ordering: .relaxed)
            }
        } else if shared || childLevel > 0 {
            let child = memory.entries(at: childPage)
            for index in 0..<format.entriesPerTable {
                let value = shared ? freeze(child + index) : child[index].load(ordering: .relaxed)
                if childLevel > 0 && format.isPresent(value, atLevel: childLevel) && format.isTable(value, atLevel: childLevel) {
                    detachSubtree(of: value, level: childLevel, shared: shared, into: &requests)
                }
            }
        }
        requests.freeAfterFlush(childPage)
    }

    /// Fills a page from the cache with the leaves equivalent to the leaf
    /// `entry` at `level`, one level down. The page is not yet linked.
    @inlinable
    func makeSplitTable(of entry: UInt64, level: Int, context: PageTableContext) -> HostPhysicalAddress? {
        guard let page = context.pageCache.take() else { return nil }
        // Not linked yet: nobody else can see the page, so plain stores.
        let child = plainEntries(memory.entries(at: page))
        let step = format.entrySize(atLevel: level - 1)
        let first = format.splitLeaf(entry, fromLevel: level)
        let format = self.format
        for index in 0..<format.entriesPerTable {
            child[index] = format.leafEntry(first, advancedBy: step &* UInt64(index))
        }
        memory.setLiveEntryCount(of: page, to: format.entriesPerTable)
        return page
    }

    /// Clears a page that was filled but lost the race to be linked, and
    /// returns it to the cache.
    @inlinable
    func recycle(_ page: HostPhysicalAddress, context: PageTableContext) {
        let entries = memory.entries(at: page)
        for index in 0..<format.entriesPerTable { entries[index].store(0, ordering: .relaxed) }
        memory.setLiveEntryCount(of: page, to: 0)
        context.pageCache.giveBack(page)
    }

    /// Whether `new` is the leaf `old` with other permissions and nothing
    /// else changed.
    @inlinable
    func differsOnlyInPermissions(_ old: UInt64, _ new: UInt64, level: Int) -> Bool {
        guard format.isLeaf(new, atLevel: level), !format.isTable(old, atLevel: level) || level == 0 else { return false }
        let granted = format.permissions(ofLeaf: new)
        return format.changingPermissions(ofLeaf: old, grant: granted, revoke: Permissions.all.subtracting(granted)) == new
    }

    /// Replaces the entry `expected` (a present leaf or a non-present entry)
    /// by `new`. When the format requires break-before-make, `expected` is
    /// a valid entry and the change is more than one of permissions (a new
    /// output address, size, memory type...), the entry is first frozen
    /// (invalid), the TLB invalidated for `address` at `level`, and only
    /// then `new` written. Permission changes are made in place, as the
    /// architecture allows.
    ///
    /// - Returns: `false` if the exchange lost a race (`expected` then holds
    ///   the current value).
    @inlinable
    func replace<T: TLB>(
        _ pointer: EntryPointer, expected: inout UInt64, with new: UInt64,
        breakingAt address: GuestPhysicalAddress, level: Int, shared: Bool, tlb: T
    ) -> Bool {
        if format.requiresBreakBeforeMake && format.isPresent(expected, atLevel: level)
            && !differsOnlyInPermissions(expected, new, level: level) {
            if !write(pointer, expected: &expected, format.frozenEntry, level: level, shared: shared) { return false }
            tlb.invalidate(address: address, level: format.leafLevel(ofHeight: level))
            _explorationTableEntry()
            pointer.pointee.store(new, ordering: .releasing)
            return true
        }
        return write(pointer, expected: &expected, new, level: level, shared: shared)
    }
}

/// A visitor of a range operation that can stop mid-walk and ask to be
/// restarted from the root at an address (a frozen entry that belongs to a
/// detached table, or a page cache run dry by a race).
@usableFromInline
protocol RestartableVisitor: PageTableVisitor {
    /// Where to restart, set when the visitor stopped the walk.
    var restartAddress: GuestPhysicalAddress? { get set }
    /// Pages to add to the cache before restarting.
    var pagesWanted: Int { get set }
}

extension PageTable {
    /// Runs `visitor` over `range`, inside a reclaimer read section when
    /// shared, restarting from the root where the visitor asks to. When
    /// the visitor ran out of cached pages, `refill` says whether to top
    /// the cache up from memory or to stop and return the shortfall.
    @inlinable @discardableResult
    func run<Visitor: RestartableVisitor>(
        _ visitor: inout Visitor, over range: GuestPhysicalRange, mode: WalkMode, context: PageTableContext,
        refill: PageCacheRefill = .fromMemory
    ) throws(SLATError) -> PageCacheShortfall? {
        // The operation validated the slot before reserving pages.
        let slot = context.readerSlot
        if mode == .shared { reclaimer.enterReadSection(slot: slot) }
        defer { if mode == .shared { reclaimer.leaveReadSection(slot: slot) } }
        var remaining = range
        while try !walker.walk(remaining, mode: mode, with: &visitor) {
            guard let restart = visitor.restartAddress else { return nil }
            visitor.restartAddress = nil
            let start = max(restart.alignedDown(to: format.pageSize), range.start)
            if visitor.pagesWanted > 0 {
                if refill == .never && context.pageCache.count < visitor.pagesWanted {
                    return PageCacheShortfall(resumeAddress: start, pagesWanted: visitor.pagesWanted)
                }
                try context.pageCache.topUp(from: memory, toAtLeast: visitor.pagesWanted)
                visitor.pagesWanted = 0
            }
            if mode == .shared {
                // Let the thread that owns the frozen entry finish, and let
                // our own stale pointers go.
                #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
                // Under a controlled scheduler: that thread must run first.
                _ = ExplorationHooks.spin()
                #endif
                reclaimer.leaveReadSection(slot: slot)
                reclaimer.enterReadSection(slot: slot)
            }
            remaining = GuestPhysicalRange(start: start, uncheckedEnd: range.end)
        }
        return nil
    }

    /// Makes sure `context`'s cache holds `pages` pages before an
    /// operation starts: tops it up from memory, or with `refill` ==
    /// ``PageCacheRefill/never`` returns the shortfall (resuming at
    /// `start`) when it holds fewer.
    @inlinable
    func reserve(
        _ pages: Int, at start: GuestPhysicalAddress, context: PageTableContext, refill: PageCacheRefill
    ) throws(SLATError) -> PageCacheShortfall? {
        if refill == .never {
            return context.pageCache.count < pages ? PageCacheShortfall(resumeAddress: start, pagesWanted: pages) : nil
        }
        try context.pageCache.topUp(from: memory, toAtLeast: pages)
        return nil
    }
}
