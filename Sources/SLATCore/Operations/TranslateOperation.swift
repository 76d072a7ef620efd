import Synchronization

extension PageTable {
    /// The leaf entry and its level for `address` (which must be inside the
    /// input address space), or the level of the first non-present entry
    /// (`entry == nil`).
    @inlinable @inline(__always)
    func leafEntry(for address: GuestPhysicalAddress) -> (entry: UInt64?, level: Int) {
        leafEntry(ifInside: address) ?? (nil, format.rootLevel)
    }

    /// The leaf entry and its level for `address`, or the level of the
    /// first non-present entry (`entry == nil`); `nil` if `address` is
    /// outside the input address space.
    @inlinable @inline(__always)
    func leafEntry(ifInside address: GuestPhysicalAddress) -> (entry: UInt64?, level: Int)? {
        walk(ifInside: address, leaf: { ($0, $1) }, missing: { (nil, $0) })
    }

    /// The hot walk shared by ``translate(_:)`` and ``outputAddress(of:)``:
    /// `nil` if `address` is outside the input address space, else
    /// `leaf(entry, level)` for the leaf that maps it or `missing(level)`
    /// for the level of the first non-present entry. The walk calls them
    /// where it finds the leaf, with the level a constant, so what they
    /// compute from the level folds there.
    ///
    /// A random lookup is bound by the instructions around its dependent
    /// loads (independent lookups overlap in the processor), so the root
    /// pointer, linear map and bound come precomputed (``TableLookup``) and,
    /// over a linear table memory, the walk is straight-line code for the
    /// shapes formats use: root levels 2 to 4 with the 4 KiB granule (every
    /// EPT walk, stage 2 with 3 or 4 levels) and 1 to 2 with larger ones.
    /// With the level (and for 4 KiB the granule) constant, every shift,
    /// index mask and level test folds, and a table address becomes a
    /// pointer with one add. Every entry is still read with an acquiring
    /// load and tested by the format exactly as before; other shapes and
    /// memories take the same code with the geometry in variables.
    @inlinable @inline(__always)
    func walk<Result>(
        ifInside address: GuestPhysicalAddress,
        leaf: (_ entry: UInt64, _ level: Int) -> Result, missing: (_ level: Int) -> Result
    ) -> Result? {
        guard address.rawValue < lookup.inputLimit else { return nil }
        let rootLevel = format.rootLevel
        if let linear = lookup.linear {
            // Constant for EPT; one compare for stage 2. `bitsPerLevel` is
            // `granuleShift - 3` (checked when the table was made), so 9.
            if format.granuleShift == 12 {
                // Three cases: compares, where four would make a jump table.
                switch rootLevel {
                case 3: return walk(address, rootLevel: 3, granuleShift: 12, bitsPerLevel: 9, linear: linear,
                                    leaf: leaf, missing: missing)
                case 2: return walk(address, rootLevel: 2, granuleShift: 12, bitsPerLevel: 9, linear: linear,
                                    leaf: leaf, missing: missing)
                case 4: return walk(address, rootLevel: 4, granuleShift: 12, bitsPerLevel: 9, linear: linear,
                                    leaf: leaf, missing: missing)
                default: break
                }
            } else {
                // Larger granules (stage 2's 16 and 64 KiB): two- and
                // three-level walks, the granule a variable.
                switch rootLevel {
                case 1: return walk(address, rootLevel: 1, granuleShift: format.granuleShift,
                                    bitsPerLevel: format.bitsPerLevel, linear: linear, leaf: leaf, missing: missing)
                case 2: return walk(address, rootLevel: 2, granuleShift: format.granuleShift,
                                    bitsPerLevel: format.bitsPerLevel, linear: linear, leaf: leaf, missing: missing)
                default: break
                }
            }
            return walk(address, rootLevel: rootLevel, granuleShift: format.granuleShift,
                        bitsPerLevel: format.bitsPerLevel, linear: linear, leaf: leaf, missing: missing)
        }
        return walk(address, rootLevel: rootLevel, granuleShift: format.granuleShift,
                    bitsPerLevel: format.bitsPerLevel, linear: nil, leaf: leaf, missing: missing)
    }

    /// The walk of ``walk(ifInside:leaf:missing:)`` for an address inside
    /// the input address space, with the format's root level, granule
    /// shift and bits per level passed as constants where the caller can. The loop's only
    /// back edge counts the levels down, so a constant `rootLevel` unrolls
    /// it completely.
    @inlinable @inline(__always)
    func walk<Result>(
        _ address: GuestPhysicalAddress, rootLevel: Int, granuleShift: Int, bitsPerLevel: Int,
        linear: LinearTableMap?, leaf: (_ entry: UInt64, _ level: Int) -> Result, missing: (_ level: Int) -> Result
    ) -> Result {
        let raw = address.rawValue
        let tableMask = (1 as UInt64) &<< UInt64(truncatingIfNeeded: bitsPerLevel) &- 1
        var table = lookup.rootEntries
        // Below `1 << inputAddressBits`, the root index needs no mask.
        var index = raw &>> UInt64(truncatingIfNeeded: granuleShift &+ bitsPerLevel &* rootLevel)
        var level = rootLevel
        while level > 0 {
            let entry = table[Int(truncatingIfNeeded: index)].load(ordering: .acquiring)
            let child: HostPhysicalAddress
            if Format.testsTablesFirst {
                guard let table = format.childTableIfTable(entry, atLevel: level) else {
                    return format.isPresent(entry, atLevel: level) ? leaf(entry, level) : missing(level)
                }
                child = table
            } else {
                if !format.isPresent(entry, atLevel: level) { return missing(level) }
                if !format.isTable(entry, atLevel: level) { return leaf(entry, level) }
                child = format.childTable(of: entry)
            }
            table = linear?.entries(at: child) ?? memory.entries(at: child)
            level &-= 1
            index = (raw &>> UInt64(truncatingIfNeeded: granuleShift &+ bitsPerLevel &* level)) & tableMask
        }
        let entry = table[Int(truncatingIfNeeded: index)].load(ordering: .acquiring)
        return format.isPresent(entry, atLevel: 0) ? leaf(entry, 0) : missing(0)
    }

    /// Walks the tables for `address` as the hardware would.
    ///
    /// Takes no lock. Alongside shared writers, call it inside a reclaimer
    /// read section (``translate(_:context:)``) so the tables it walks are
    /// not freed under it.
    @inlinable @inline(__always)
    public func translate(_ address: GuestPhysicalAddress) -> TranslationResult {
        guard let (found, level) = leafEntry(ifInside: address) else { return .outsideAddressSpace }
        guard let entry = found else { return .notPresent(level: level) }
        let size = format.entrySize(atLevel: level)
        let leafAddress = address.alignedDown(to: size)
        let leafOutput = format.outputAddress(ofLeaf: entry, atLevel: level)
        return .mapped(Translation(
            output: leafOutput.advanced(by: address.rawValue & (size &- 1)),
            leafAddress: leafAddress, leafOutput: leafOutput, level: level, size: size,
            attributes: format.attributes(ofLeaf: entry, atLevel: level), entry: entry))
    }

    /// The output address of `address`, or `nil` if it is not mapped: the
    /// hot lookup, without decoding attributes.
    @inlinable @inline(__always)
    public func outputAddress(of address: GuestPhysicalAddress) -> HostPhysicalAddress? {
        let output = walk(ifInside: address, leaf: { entry, level in
            // The leaf's output is aligned to its size, so adding the offset is an or.
            let offset = address.rawValue & (format.entrySize(atLevel: level) &- 1)
            return format.outputAddress(ofLeaf: entry, atLevel: level).rawValue | offset
        }, missing: { _ in UInt64?.none })
        return (output ?? nil).map { HostPhysicalAddress($0) }
    }

    /// ``translate(_:)`` inside a read section of `context`'s reader slot:
    /// safe while shared writers free tables.
    @inlinable @inline(__always)
    public func translate(_ address: GuestPhysicalAddress, context: PageTableContext) -> TranslationResult {
        reclaimer.enterReadSection(slot: context.readerSlot)
        defer { reclaimer.leaveReadSection(slot: context.readerSlot) }
        return translate(address)
    }

    /// Every present leaf overlapping `range`, in address order.
    /// Safe alongside writers only under the same conditions as ``translate(_:)``.
    public func leaves(in range: GuestPhysicalRange? = nil) -> [LeafMapping] {
        var collector = LeafCollector(format: format)
        let whole = GuestPhysicalRange(start: GuestPhysicalAddress(0), size: format.inputAddressSpaceSize)
        _ = try? walker.walk(range ?? whole, with: &collector)
        return collector.leaves
    }

    /// Every table page reachable from the root, root pages first.
    public func reachableTablePages() -> [HostPhysicalAddress] {
        var pages: [HostPhysicalAddress] = []
        for index in 0..<format.rootTableCount {
            pages.append(root.advanced(by: UInt64(index * format.tablePageSize)))
        }
        var collector = TableCollector(format: format)
        let whole = GuestPhysicalRange(start: GuestPhysicalAddress(0), size: format.inputAddressSpaceSize)
        _ = try? walker.walk(whole, with: &collector)
        return pages + collector.pages
    }

    /// Clears every root entry and frees every table page below the root;
    /// the root pages stay, so the table translates nothing and a walk of
    /// it reads no freed page. Requires the MMU lock held exclusively and
    /// the TLB context already invalidated (or never loaded). Used by
    /// teardowns that keep the root until no one can hold the table; free
    /// it then with ``destroy()`` (which finds nothing else to free).
    public func clearRoot() {
        var requests = FlushRequests()
        let rootEntries = memory.entries(at: root)
        for index in 0..<format.rootEntryCount {
            let entry = rootEntries[index].load(ordering: .acquiring)
            if format.rootLevel > 0 && format.isPresent(entry, atLevel: format.rootLevel)
                && format.isTable(entry, atLevel: format.rootLevel) {
                detachSubtree(of: entry, level: format.rootLevel, shared: false, into: &requests)
            }
            if entry != 0 { rootEntries[index].store(0, ordering: .releasing) }
        }
        // Walkers in read sections may still be in the detached subtrees.
        reclaimer.synchronize()
        for page in requests.pagesToFree { memory.freePage(page) }
    }

    /// Frees every table page, root included. Requires the MMU lock held
    /// exclusively and the TLB context already invalidated (or never
    /// loaded); the table must not be used afterwards. Pages retired by
    /// shared operations are freed as their grace periods end.
    public func destroy() {
        var requests = FlushRequests()
        let rootEntries = memory.entries(at: root)
        for index in 0..<format.rootEntryCount {
            let entry = rootEntries[index].load(ordering: .acquiring)
            if format.rootLevel > 0 && format.isPresent(entry, atLevel: format.rootLevel)
                && format.isTable(entry, atLevel: format.rootLevel) {
                detachSubtree(of: entry, level: format.rootLevel, shared: false, into: &requests)
            }
        }
        for page in requests.pagesToFree { memory.freePage(page) }
        for index in 0..<format.rootTableCount {
            memory.freePage(root.advanced(by: UInt64(index * format.tablePageSize)))
        }
        reclaimer.synchronize()
    }
}

@usableFromInline
struct LeafCollector<Format: PageTableFormat>: PageTableVisitor {
    @usableFromInline let format: Format
    @usableFromInline var leaves: [LeafMapping] = []
    @inlinable init(format: Format) { self.format = format }
    @inlinable var visits: WalkVisits { .leaf }
    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        if format.isPresent(entry.snapshot, atLevel: entry.level) {
            leaves.append(LeafMapping(
                guestAddress: entry.address, level: entry.level, size: format.entrySize(atLevel: entry.level),
                output: format.outputAddress(ofLeaf: entry.snapshot, atLevel: entry.level),
                attributes: format.attributes(ofLeaf: entry.snapshot, atLevel: entry.level)))
        }
        return .proceed
    }
}

@usableFromInline
struct TableCollector<Format: PageTableFormat>: PageTableVisitor {
    @usableFromInline let format: Format
    @usableFromInline var pages: [HostPhysicalAddress] = []
    @inlinable init(format: Format) { self.format = format }
    @inlinable var visits: WalkVisits { .tablePre }
    @inlinable
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
        pages.append(format.childTable(of: entry.snapshot))
        return .proceed
    }
}
