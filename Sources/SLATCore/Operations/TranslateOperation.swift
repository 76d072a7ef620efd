import Synchronization

extension PageTable {
    /// The leaf entry and its level for `address`, or the level of the
    /// first non-present entry (`entry == nil`). The hot walk shared by
    /// ``translate(_:)`` and ``outputAddress(of:)``: the shift and index mask
    /// are updated per level rather than recomputed, and a linear table
    /// memory is resolved without calling back into it.
    @inlinable @inline(__always)
    func leafEntry(for address: GuestPhysicalAddress) -> (entry: UInt64?, level: Int) {
        let raw = address.rawValue
        let linear = memory.linearMap
        let bitsPerLevel = UInt64(truncatingIfNeeded: format.bitsPerLevel)
        let tableMask = UInt64(truncatingIfNeeded: format.entriesPerTable &- 1)
        var shift = UInt64(truncatingIfNeeded: format.shift(atLevel: format.rootLevel))
        var mask = UInt64(truncatingIfNeeded: format.rootEntryCount &- 1)
        var table = linear?.entries(at: root) ?? memory.entries(at: root)
        var level = format.rootLevel
        while true {
            let index = Int(truncatingIfNeeded: (raw &>> shift) & mask)
            let entry = table[index].load(ordering: .acquiring)
            let child: HostPhysicalAddress
            if Format.testsTablesFirst {
                guard let table = format.childTableIfTable(entry, atLevel: level) else {
                    return (format.isPresent(entry, atLevel: level) ? entry : nil, level)
                }
                child = table
            } else {
                if !format.isPresent(entry, atLevel: level) { return (nil, level) }
                if level == 0 || !format.isTable(entry, atLevel: level) { return (entry, level) }
                child = format.childTable(of: entry)
            }
            table = linear?.entries(at: child) ?? memory.entries(at: child)
            level &-= 1
            shift &-= bitsPerLevel
            mask = tableMask
        }
    }

    /// Walks the tables for `address` as the hardware would.
    ///
    /// Takes no lock. Alongside shared writers, call it inside a reclaimer
    /// read section (``translate(_:context:)``) so the tables it walks are
    /// not freed under it.
    @inlinable
    public func translate(_ address: GuestPhysicalAddress) -> TranslationResult {
        guard address.rawValue < format.inputAddressSpaceSize else { return .outsideAddressSpace }
        let (found, level) = leafEntry(for: address)
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
        guard address.rawValue < format.inputAddressSpaceSize else { return nil }
        let (found, level) = leafEntry(for: address)
        guard let entry = found else { return nil }
        let offset = address.rawValue & (format.entrySize(atLevel: level) &- 1)
        return format.outputAddress(ofLeaf: entry, atLevel: level).advanced(by: offset)
    }

    /// ``translate(_:)`` inside a read section of `context`'s reader slot:
    /// safe while shared writers free tables.
    @inlinable
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
