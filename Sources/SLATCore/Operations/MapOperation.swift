import Synchronization

extension PageTable {
    /// Maps `range` to consecutive output addresses starting at `output`,
    /// using at each address the largest leaf that the alignment of both
    /// addresses, the range and `maximumLevel` allow.
    ///
    /// Existing leaves in the range are replaced (break-before-make where
    /// the format requires it), a larger leaf that only partly overlaps is
    /// split into an equivalent table first, and tables wholly covered by a
    /// new larger leaf are merged away: the subtree is detached by its owner
    /// and freed after the flush.
    ///
    /// - Parameters:
    ///   - range: the guest range, page-aligned and inside the input address space.
    ///   - output: the host-physical address `range.start` maps to, aligned like `range`.
    ///   - attributes: permissions, memory type, flags and software bits of every leaf.
    ///   - maximumLevel: the largest level (height) a leaf may use; `nil`
    ///     for the largest the format allows.
    ///   - mode: how the caller holds the MMU lock.
    ///   - context: the calling thread's page cache and reader slot.
    ///   - batch: receives the invalidations owed for replaced translations
    ///     and the pages to free after them.
    ///   - tlb: invalidated immediately for break-before-make.
    ///   - refusingPermissionOnlyChanges: leave a live leaf that differs
    ///     from the wanted one only in its permissions as it is and report
    ///     ``MapOutcome/refusedPermissionOnlyChange`` (the stage-2 fault
    ///     path, where such a change is a race with another vCPU's fault).
    ///   - refill: where pages come from when `context`'s cache holds too
    ///     few: ``PageCacheRefill/never`` for a caller holding the MMU lock,
    ///     which then gets ``MapOutcome/stopped(_:)`` and tops up outside it.
    /// - Returns: whether a permission-only change was refused, or where
    ///   the walk stopped for pages.
    /// - Throws: ``SLATError/emptyRange``, misalignment, out-of-bounds and
    ///   output-width errors, ``SLATError/unsupportedLevel(_:)``, attribute
    ///   errors from ``PageTableFormat/validate(_:)``, and
    ///   ``SLATError/outOfTableMemory(needed:available:)`` — all before any
    ///   entry changes.
    @inlinable @discardableResult
    public func map<T: TLB>(
        _ range: GuestPhysicalRange, to output: HostPhysicalAddress, attributes: LeafAttributes,
        maximumLevel: Int? = nil, mode: WalkMode = .exclusive, context: PageTableContext,
        batch: inout TLBFlushBatch, tlb: T, refusingPermissionOnlyChanges: Bool = false,
        refill: PageCacheRefill = .fromMemory
    ) throws(SLATError) -> MapOutcome {
        try map(range, to: output, attributes: attributes, maximumLevel: maximumLevel, mode: mode, context: context,
                batch: &batch, tlb: tlb, refusingPermissionOnlyChanges: refusingPermissionOnlyChanges, refill: refill,
                preparingLeaves: NoLeafPreparation())
    }

    /// ``map(_:to:attributes:maximumLevel:mode:context:batch:tlb:refusingPermissionOnlyChanges:refill:)``
    /// with `preparation` called before each leaf (or run of consecutive
    /// leaves) the walk writes, for the output it maps (``LeafPreparation``):
    /// leaves already as wanted and the copies of a split block cost none.
    @inlinable @discardableResult
    public func map<T: TLB, Preparation: LeafPreparation>(
        _ range: GuestPhysicalRange, to output: HostPhysicalAddress, attributes: LeafAttributes,
        maximumLevel: Int? = nil, mode: WalkMode = .exclusive, context: PageTableContext,
        batch: inout TLBFlushBatch, tlb: T, refusingPermissionOnlyChanges: Bool = false,
        refill: PageCacheRefill = .fromMemory, preparingLeaves preparation: Preparation
    ) throws(SLATError) -> MapOutcome {
        try validate(range)
        try validateOutput(output, size: range.size)
        try format.validate(attributes)
        if let maximumLevel, maximumLevel < 0 || maximumLevel > format.rootLevel || format.largestLeafLevel(atMost: maximumLevel) == nil {
            throw .unsupportedLevel(maximumLevel)
        }
        try validateReaderSlot(of: context, mode: mode)
        let best = largestUsableLeafLevel(for: range, output: output, maximumLevel: maximumLevel ?? format.rootLevel)
        if let shortfall = try reserve(
            tablePagesNeeded(toMap: range, largestLeafLevel: best), at: range.start, context: context, refill: refill) {
            return .stopped(shortfall)
        }
        var visitor = MapVisitor(
            table: self, context: context, tlb: tlb, range: range, output: output,
            attributes: attributes, largestLeafLevel: best,
            shared: mode == .shared, refusesPermissionOnlyChanges: refusingPermissionOnlyChanges,
            preparation: preparation)
        let shortfall = try run(&visitor, over: range, mode: mode, context: context, refill: refill)
        batch.requests.merge(visitor.requests)
        if let shortfall { return .stopped(shortfall) }
        return visitor.refusedPermissionOnlyChange ? .refusedPermissionOnlyChange : .mapped
    }

    /// The largest leaf level any part of a mapping of `range` to `output`
    /// can use: at most `maximumLevel`, a level that holds leaves, whose
    /// size divides the distance between guest and output addresses, and
    /// of which at least one aligned block fits in the range.
    @inlinable
    func largestUsableLeafLevel(for range: GuestPhysicalRange, output: HostPhysicalAddress, maximumLevel: Int) -> Int {
        var level = min(maximumLevel, format.rootLevel)
        let delta = output.rawValue &- range.start.rawValue
        while level > 0 {
            let size = format.entrySize(atLevel: level)
            if format.canHoldLeaf(atLevel: level), delta & (size - 1) == 0,
               let first = range.start.alignedUp(to: size), first.rawValue < range.end.rawValue,
               range.end.rawValue - first.rawValue >= size {
                return level
            }
            level -= 1
        }
        return 0
    }

    /// An upper bound on the table pages a mapping can need: at every height
    /// where leaves of that height or smaller are placed everywhere, one
    /// table per table-sized block the range touches; above that only the
    /// unaligned head and tail need tables.
    @inlinable
    func tablePagesNeeded(toMap range: GuestPhysicalRange, largestLeafLevel best: Int) -> Int {
        var total = 0
        for height in 0..<format.rootLevel {
            let span = UInt64(format.shift(atLevel: height + 1))
            let count = Int((range.end.rawValue &- 1) >> span - range.start.rawValue >> span) + 1
            total += height >= best ? count : min(2, count)
        }
        return total
    }

    /// The most pages an operation that splits only at the ends of its
    /// range can ever need: a chain of tables at each end. Used when a race
    /// made an end need a split the up-front count did not see.
    @inlinable
    var tablePagesForAnySplitAtEnds: Int { 2 * format.rootLevel }

    /// Pages needed to split the leaves that straddle the ends of `range`
    /// right now: one per distinct entry, from each end's leaf down to the
    /// smallest pages, that the range covers only in part (the two ends
    /// share the splits of a block holding both). Zero when the range ends
    /// on leaf boundaries, so an unmap never needs free memory to free
    /// memory.
    @inlinable
    func tablePagesNeededToSplitEnds(of range: GuestPhysicalRange, mode: WalkMode, context: PageTableContext) -> Int {
        if mode == .shared { reclaimer.enterReadSection(slot: context.readerSlot) }
        defer { if mode == .shared { reclaimer.leaveReadSection(slot: context.readerSlot) } }
        let first = range.start.rawValue
        let last = range.end.rawValue &- format.pageSize
        let startSplits = splitChain(at: first, in: range)
        let endSplits = splitChain(at: last, in: range)
        // Levels where both chains split the same entry are counted once.
        var shared = 0
        var both = startSplits & endSplits
        while both != 0 {
            let size = format.entrySize(atLevel: both.trailingZeroBitCount)
            if first & ~(size &- 1) == last & ~(size &- 1) { shared += 1 }
            both &= both &- 1
        }
        return startSplits.nonzeroBitCount + endSplits.nonzeroBitCount - shared
    }

    /// The levels (a bit per level) at which the entry holding `address`
    /// must be split: from the leaf's level down, while the range covers
    /// that entry only in part.
    @inlinable
    func splitChain(at address: UInt64, in range: GuestPhysicalRange) -> UInt64 {
        let (entry, leafLevel) = leafEntry(for: GuestPhysicalAddress(address))
        guard entry != nil, leafLevel > 0 else { return 0 }
        var levels: UInt64 = 0
        var level = leafLevel
        while level > 0 {
            let size = format.entrySize(atLevel: level)
            let entryStart = address & ~(size &- 1)
            if entryStart >= range.start.rawValue && entryStart &+ size <= range.end.rawValue { break }
            levels |= 1 << UInt64(level)
            level -= 1
        }
        return levels
    }

    /// Throws unless `context`'s reader slot exists, before an operation
    /// reserves anything (shared mode only needs one).
    @inlinable
    func validateReaderSlot(of context: PageTableContext, mode: WalkMode) throws(SLATError) {
        let slot = context.readerSlot
        guard mode == .exclusive || (slot >= 0 && slot < reclaimer.slotCount) else {
            throw .readerSlotOutOfRange(slot, slots: reclaimer.slotCount)
        }
    }
}

/// The walk visitor of ``PageTable/map(_:to:attributes:maximumLevel:mode:context:batch:tlb:refusingPermissionOnlyChanges:refill:)``.
@usableFromInline
struct MapVisitor<Format: PageTableFormat, Memory: TableMemory, T: TLB, Preparation: LeafPreparation>: RestartableVisitor {
    @usableFromInline let table: PageTable<Format, Memory>
    @usableFromInline let context: PageTableContext
    @usableFromInline let tlb: T
    @usableFromInline let start: UInt64
    @usableFromInline let end: UInt64
    @usableFromInline let output: UInt64
    @usableFromInline let attributes: LeafAttributes
    @usableFromInline let largestLeafLevel: Int
    @usableFromInline let shared: Bool
    @usableFromInline let refusesPermissionOnlyChanges: Bool
    @usableFromInline let preparation: Preparation
    @usableFromInline var refusedPermissionOnlyChange = false
    @usableFromInline var requests = FlushRequests()
    @usableFromInline var restartAddress: GuestPhysicalAddress?
    @usableFromInline var pagesWanted = 0

    @inlinable
    init(table: PageTable<Format, Memory>, context: PageTableContext, tlb: T, range: GuestPhysicalRange,
         output: HostPhysicalAddress, attributes: LeafAttributes, largestLeafLevel: Int, shared: Bool,
         refusesPermissionOnlyChanges: Bool = false, preparation: Preparation) {
        self.table = table
        self.context = context
        self.tlb = tlb
        self.start = range.start.rawValue
        self.end = range.end.rawValue
        self.output = output.rawValue
        self.attributes = attributes
        self.largestLeafLevel = largestLeafLevel
        self.shared = shared
        self.refusesPermissionOnlyChanges = refusesPermissionOnlyChanges
        self.preparation = preparation
    }

    /// Calls the preparation for `count` leaves at `level` from `address`.
    @inlinable @inline(__always)
    func prepare(level: Int, address: UInt64, count: Int = 1) {
        preparation.prepare(output: HostPhysicalAddress(output &+ (address &- start)),
                            size: format.entrySize(atLevel: level) &* UInt64(count))
    }

    @inlinable var visits: WalkVisits { [.tablePre, .leaf] }

    @inlinable var format: Format { table.format }

    /// Whether the entry at `level` starting at `address` becomes one leaf.
    @inlinable
    func isLeafHere(level: Int, address: UInt64) -> Bool {
        level <= largestLeafLevel && address >= start && address &+ format.entrySize(atLevel: level) <= end
    }

    @inlinable
    func desiredLeaf(level: Int, address: UInt64) -> UInt64 {
        format.leafEntry(output: HostPhysicalAddress(output &+ (address &- start)), attributes: attributes, atLevel: level)
    }

    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        let level = entry.level
        let address = entry.address.rawValue
        if kind == .tablePre && !isLeafHere(level: level, address: address) {
            // An existing table we pass through: fill its children that
            // become leaves in one loop instead of one visit each.
            if level - 1 <= largestLeafLevel {
                return fillChildren(of: entry.snapshot, level: level, address: address)
            }
            return .proceed
        }
        return mapEntry(entry.pointer, level: level, address: address, snapshot: entry.snapshot)
    }

    /// Makes one entry what the mapping wants: a leaf here, or a table to
    /// descend into.
    @inlinable
    mutating func mapEntry(_ pointer: EntryPointer, level: Int, address: UInt64, snapshot: UInt64) -> VisitOutcome {
        var old = snapshot
        while true {
            if old == format.frozenEntry {
                // Owned by another thread, possibly in a table it is
                // detaching: restart from the root here.
                restartAddress = GuestPhysicalAddress(address)
                return .stop
            }
            let present = format.isPresent(old, atLevel: level)
            let isTable = present && level > 0 && format.isTable(old, atLevel: level)
            if isLeafHere(level: level, address: address) {
                let new = desiredLeaf(level: level, address: address)
                if old == new { return .skipChildren }
                if !present {
                    prepare(level: level, address: address)
                    if table.write(pointer, expected: &old, new, level: level, shared: shared) {
                        table.memory.adjustLiveEntryCount(containing: pointer, by: 1)
                        return .skipChildren
                    }
                } else if isTable {
                    prepare(level: level, address: address)
                    if merge(pointer, expected: &old, with: new, level: level, address: address) { return .skipChildren }
                } else {
                    if refusesPermissionOnlyChanges && table.differsOnlyInPermissions(old, new, level: level) {
                        refusedPermissionOnlyChange = true
                        return .skipChildren
                    }
                    let onlyGains = format.changingPermissions(
                        ofLeaf: old, grant: format.permissions(ofLeaf: new), revoke: []) == new
                    prepare(level: level, address: address)
                    if table.replace(pointer, expected: &old, with: new, breakingAt: GuestPhysicalAddress(address),
                                     level: level, shared: shared, tlb: tlb) {
                        if !onlyGains {
                            requests.invalidate(address: GuestPhysicalAddress(address), level: format.leafLevel(ofHeight: level),
                                                size: format.entrySize(atLevel: level))
                        }
                        return .skipChildren
                    }
                }
                continue
            }
            if isTable { return .proceed }
            // A leaf split for smaller leaves of this mapping gets them in
            // its new table before the table is linked, so one
            // break-before-make (one invalidation of the leaf) is the whole
            // change: no walk over copies of the leaf, no replacement of
            // each copy. Copies are made only where the mapping leaves part
            // of the leaf as it was.
            let fillsSplit = present && !refusesPermissionOnlyChanges && level - 1 <= largestLeafLevel
            let copiesLeaf = present && !(fillsSplit && coversWholeEntry(level: level, address: address))
            guard let page = copiesLeaf
                ? table.makeSplitTable(of: old, level: level, context: context)
                : context.pageCache.take()
            else {
                pagesWanted = table.tablePagesNeeded(
                    toMap: GuestPhysicalRange(start: GuestPhysicalAddress(max(address, start)), uncheckedEnd: GuestPhysicalAddress(end)),
                    largestLeafLevel: largestLeafLevel)
                restartAddress = GuestPhysicalAddress(address)
                return .stop
            }
            var complete = false
            if !copiesLeaf && level - 1 <= largestLeafLevel {
                // A whole split leaf whose pages are its copies (same
                // output and attributes) maps nothing new: no preparation.
                let newMemory = !present
                    || desiredLeaf(level: level - 1, address: address) != format.splitLeaf(old, fromLevel: level)
                complete = prefill(page, level: level, address: address, preparing: newMemory)
            } else if fillsSplit {
                complete = overwriteSplit(page, level: level, address: address)
            } else if present && refusesPermissionOnlyChanges && level - 1 <= largestLeafLevel {
                // The fault path: the wanted leaf (more rights than the
                // protected block) goes into the split itself, not into a
                // second fault; copies it would only take rights from stay.
                overlaySplit(page, level: level, address: address)
            }
            if table.replace(pointer, expected: &old, with: format.tableEntry(child: page),
                             breakingAt: GuestPhysicalAddress(address), level: level, shared: shared, tlb: tlb) {
                if !present { table.memory.adjustLiveEntryCount(containing: pointer, by: 1) }
                // A split leaf without break-before-make: its translation
                // may still be cached at its size, which the smaller
                // invalidations owed below it do not reach.
                if present && !format.requiresBreakBeforeMake {
                    requests.invalidate(address: GuestPhysicalAddress(address), level: format.leafLevel(ofHeight: level),
                                        size: format.entrySize(atLevel: level))
                }
                if shared && !present && !complete {
                    // A new table still to be filled: a concurrent unmap may
                    // find it empty and free it before the walker re-reads
                    // the entry, and the walker would then skip our range
                    // under it. Restart here: the next walk meets it as a
                    // table (or finds it gone) and handles either.
                    restartAddress = GuestPhysicalAddress(address)
                    return .stop
                }
                return complete ? .skipChildren : .proceed
            }
            table.recycle(page, context: context)
        }
    }

    /// Fills the children of a new, unlinked table that lie wholly inside
    /// the range with their leaves. Returns whether that is all of the
    /// table's part of the range (nothing left to descend for).
    @inlinable
    func prefill(_ page: HostPhysicalAddress, level: Int, address: UInt64, preparing: Bool = true) -> Bool {
        let childLevel = level - 1
        guard let span = wholeChildren(level: level, address: address) else { return false }
        let (childSize, first, firstIndex, count) = (span.childSize, span.first, span.firstIndex, span.count)
        if preparing { prepare(level: childLevel, address: first, count: count) }
        // Not linked yet: nobody else can see the page, so plain stores.
        let entries = plainEntries(table.memory.entries(at: page))
        var leaf = desiredLeaf(level: childLevel, address: first)
        let format = self.format  // a local, so the loop does not reload it
        for index in firstIndex..<(firstIndex + count) {
            entries[index] = leaf
            leaf = format.leafEntry(leaf, advancedBy: childSize)
        }
        table.memory.setLiveEntryCount(of: page, to: count)
        return span.coversRange
    }

    /// Whether the range covers all of the entry at `level` that starts at
    /// `address`.
    @inlinable @inline(__always)
    func coversWholeEntry(level: Int, address: UInt64) -> Bool {
        address >= start && address &+ format.entrySize(atLevel: level) <= end
    }

    /// Writes the wanted leaves over the copies of a split leaf, in its new,
    /// unlinked table, where they lie wholly inside the range (a map that
    /// replaces permission-only changes too). Nothing could cache the copies
    /// it replaces: the break-before-make that links the table invalidates
    /// the split leaf. Returns whether that is all of the table's part of
    /// the range.
    @inlinable
    func overwriteSplit(_ page: HostPhysicalAddress, level: Int, address: UInt64) -> Bool {
        guard let span = wholeChildren(level: level, address: address) else { return false }
        prepare(level: level - 1, address: span.first, count: span.count)
        // Not linked yet: nobody else can see the page, so plain stores.
        let entries = plainEntries(table.memory.entries(at: page))
        var leaf = desiredLeaf(level: level - 1, address: span.first)
        let format = self.format  // a local, so the loop does not reload it
        for index in span.firstIndex..<(span.firstIndex + span.count) {
            entries[index] = leaf
            leaf = format.leafEntry(leaf, advancedBy: span.childSize)
        }
        return span.coversRange
    }

    /// The children of the entry at `level` mapping from `address` that lie
    /// wholly inside the range: their size, first address, first index and
    /// count, and whether they cover all of the entry's part of the range;
    /// `nil` when there is none.
    @inlinable @inline(__always)
    func wholeChildren(level: Int, address: UInt64) -> WholeChildSpan? {
        let childSize = format.entrySize(atLevel: level - 1)
        let low = max(start, address)
        let high = min(end, address &+ format.entrySize(atLevel: level))
        let first = (low &+ childSize &- 1) & ~(childSize &- 1)
        let last = high & ~(childSize &- 1)
        guard first < last else { return nil }
        return WholeChildSpan(
            childSize: childSize, first: first,
            firstIndex: Int(truncatingIfNeeded: (first &- address) / childSize),
            count: Int(truncatingIfNeeded: (last &- first) / childSize),
            coversRange: first == low && last == high)
    }

    /// Writes the wanted leaves over the copies of a split block, in its
    /// new, unlinked table, where they lie wholly inside the range: the
    /// split and the new leaves become visible in one exchange, so a fault
    /// that lands in a write-protected block (dirty logging) maps its
    /// writable page at once, and the break-before-make of the split has
    /// already invalidated everything the old block cached. Used when
    /// permission-only changes are refused (the fault path); a copy the new
    /// leaf would only take permissions from is kept: the walk then meets it
    /// and refuses, as for a live leaf (a racing vCPU's rights are never
    /// reduced).
    @inlinable
    func overlaySplit(_ page: HostPhysicalAddress, level: Int, address: UInt64) {
        let childLevel = level - 1
        guard let span = wholeChildren(level: level, address: address) else { return }
        let (childSize, first) = (span.childSize, span.first)
        // Not linked yet: nobody else can see the page, so plain stores.
        let entries = plainEntries(table.memory.entries(at: page))
        var index = span.firstIndex
        let stop = index + span.count
        var leaf = desiredLeaf(level: childLevel, address: first)
        let format = self.format
        while index < stop {
            let copy = entries[index]
            let keep = table.differsOnlyInPermissions(copy, leaf, level: childLevel)
                && format.changingPermissions(ofLeaf: copy, grant: format.permissions(ofLeaf: leaf), revoke: []) != leaf
            if !keep {
                prepare(level: childLevel, address: first &+ UInt64(index &- span.firstIndex) &* childSize)
                entries[index] = leaf
            }
            leaf = format.leafEntry(leaf, advancedBy: childSize)
            index += 1
        }
    }

    /// Maps the children of an existing table that lie wholly inside the
    /// range in one pass; entries already present go through ``mapEntry``.
    @inlinable
    mutating func fillChildren(of tableEntry: UInt64, level: Int, address: UInt64) -> VisitOutcome {
        let childLevel = level - 1
        guard let span = wholeChildren(level: level, address: address) else { return .proceed }
        let (childSize, first) = (span.childSize, span.first)
        let entries = table.memory.entries(at: format.childTable(of: tableEntry))
        var index = span.firstIndex
        let stop = index + span.count
        var leaf = desiredLeaf(level: childLevel, address: first)
        var childAddress = first
        var added = 0
        let format = self.format  // locals, so the loop does not reload them
        let shared = self.shared
        // The empty entries the loop will fill, prepared as one run first; an
        // entry emptied meanwhile by a concurrent unmap is prepared alone.
        var prepared = index..<index
        if !Preparation.preparesNothing {
            var low = stop, high = index
            for scan in index..<stop where entries[scan].load(ordering: .relaxed) == 0 {
                low = min(low, scan)
                high = scan + 1
            }
            if low < high {
                prepare(level: childLevel, address: first &+ UInt64(low &- index) &* childSize, count: high - low)
                prepared = low..<high
            }
        }
        while index < stop {
            let pointer = entries + index
            var old = pointer.pointee.load(ordering: .relaxed)
            if old == 0 {
                if !prepared.contains(index) { prepare(level: childLevel, address: childAddress) }
                // Not present, so never volatile: only a shared walk exchanges.
                if !shared {
                    pointer.pointee.store(leaf, ordering: .releasing)
                    old = leaf
                    added += 1
                } else {
                    let (exchanged, original) = pointer.pointee.compareExchange(
                        expected: 0, desired: leaf, ordering: .acquiringAndReleasing)
                    if exchanged { added += 1 }
                    old = exchanged ? leaf : original
                }
            }
            if old != leaf {
                if mapEntry(pointer, level: childLevel, address: childAddress, snapshot: old) == .stop {
                    if added != 0 { table.memory.adjustLiveEntryCount(containing: entries, by: added) }
                    return .stop
                }
            }
            leaf = format.leafEntry(leaf, advancedBy: childSize)
            childAddress &+= childSize
            index += 1
        }
        if added != 0 { table.memory.adjustLiveEntryCount(containing: entries, by: added) }
        return span.coversRange ? .skipChildren : .proceed
    }

    /// Replaces the table entry `expected` by the leaf `new` and detaches the
    /// subtree (table→block merge). With break-before-make the entry is
    /// frozen, the subtree torn down, the block's whole range invalidated —
    /// by one range invalidation where the TLB has one
    /// (``TLB/supportsRangeInvalidation``, KVM's `kvm_tlb_flush_vmid_range`),
    /// else the whole context (a by-address invalidation would leave the
    /// subtree's smaller leaves cached next to the new block: a TLB
    /// conflict) — then the leaf written.
    @inlinable
    mutating func merge(_ pointer: EntryPointer, expected: inout UInt64, with new: UInt64, level: Int, address: UInt64) -> Bool {
        let size = format.entrySize(atLevel: level)
        if format.requiresBreakBeforeMake {
            let tableEntry = expected
            if !table.write(pointer, expected: &expected, format.frozenEntry, level: level, shared: shared) { return false }
            table.detachSubtree(of: tableEntry, level: level, shared: shared, into: &requests)
            #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
            // Mutations of this flush for the explorer's tests (Docs/simulation.md).
            if ExplorationHooks.isActive(.mergeWithoutInvalidation) {
                pointer.pointee.store(new, ordering: .releasing)
                return true
            }
            if ExplorationHooks.isActive(.mergeInvalidatesFirstPageOnly) {
                tlb.invalidate(address: GuestPhysicalAddress(address), level: format.leafLevel(ofHeight: 0))
                pointer.pointee.store(new, ordering: .releasing)
                return true
            }
            #endif
            if tlb.supportsRangeInvalidation {
                tlb.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(address), size: size))
            } else {
                tlb.invalidateAll()
            }
            pointer.pointee.store(new, ordering: .releasing)
            return true
        }
        let tableEntry = expected
        if !table.write(pointer, expected: &expected, new, level: level, shared: shared) { return false }
        table.detachSubtree(of: tableEntry, level: level, shared: shared, into: &requests)
        requests.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(address), size: size))
        return true
    }
}

/// The children of one table entry that lie wholly inside a map's range
/// (``MapVisitor/wholeChildren(level:address:)``).
@frozen @usableFromInline
struct WholeChildSpan {
    @usableFromInline let childSize: UInt64
    @usableFromInline let first: UInt64
    @usableFromInline let firstIndex: Int
    @usableFromInline let count: Int
    @usableFromInline let coversRange: Bool

    @inlinable
    init(childSize: UInt64, first: UInt64, firstIndex: Int, count: Int, coversRange: Bool) {
        self.childSize = childSize
        self.first = first
        self.firstIndex = firstIndex
        self.count = count
        self.coversRange = coversRange
    }
}
