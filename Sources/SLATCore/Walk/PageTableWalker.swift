import Synchronization

/// A depth-first walk over the entries of a guest-physical range, calling a
/// visitor before (table-pre), at (leaf) and after (table-post) each entry.
///
/// The walker re-reads an entry after a table-pre or leaf visit and
/// descends only into what the entry holds *then*: it never walks a subtree
/// a visitor has just replaced, and it walks a table a leaf visit has just
/// installed (how mapping builds tables on its way down).
///
/// Locking contract: the walker itself only reads. Concurrent writers are
/// allowed if the visitor follows the shared rules and the caller is inside
/// a read section of the table's ``EpochReclaimer`` (child tables found
/// through entries stay readable until the section ends).
@frozen
public struct PageTableWalker<Format: PageTableFormat, Memory: TableMemory> {
    /// The format of the tables.
    public let format: Format
    /// The memory the table pages live in.
    public let memory: Memory
    /// Physical address of the root table (all concatenated root tables).
    public let root: HostPhysicalAddress

    /// A walker over the tables rooted at `root`.
    @inlinable
    public init(format: Format, memory: Memory, root: HostPhysicalAddress) {
        self.format = format
        self.memory = memory
        self.root = root
    }

    /// Walks the entries that overlap `range` from the root down.
    ///
    /// - Parameters:
    ///   - mode: ``WalkMode/shared`` when other writers may run
    ///     (the caller holds the MMU lock shared and is inside a reclaimer read
    ///     section); passed to every visit so the visitor changes entries by
    ///     compare-and-exchange. ``WalkMode/exclusive`` (the default) when no
    ///     other software walker runs.
    ///   - range: the guest range whose entries are visited.
    ///   - visitor: called for each entry, as its `visits` asks; may change it.
    /// - Returns: `false` if a visitor stopped the walk, `true` otherwise.
    /// - Throws: whatever the visitor throws; the walk ends there.
    @inlinable
    public func walk<Visitor: PageTableVisitor>(
        _ range: GuestPhysicalRange, mode: WalkMode = .exclusive, with visitor: inout Visitor
    ) throws(SLATError) -> Bool {
        if range.isEmpty { return true }
        let visits = visitor.visits
        return try walkTable(
            memory.entries(at: root), level: format.rootLevel,
            start: range.start.rawValue, end: range.end.rawValue &- 1,
            visits: visits, mode: mode, visitor: &visitor)
    }

    // `last` is inclusive so a range ending at the top of the space works.
    @inlinable
    func walkTable<Visitor: PageTableVisitor>(
        _ table: EntryPointer, level: Int, start: UInt64, end last: UInt64,
        visits: WalkVisits, mode: WalkMode, visitor: inout Visitor
    ) throws(SLATError) -> Bool {
        let shift = UInt64(format.shift(atLevel: level))
        let size: UInt64 = 1 << shift
        let mask = UInt64(format.entryCount(atLevel: level) - 1)
        var address = start & ~(size - 1)
        var index = Int(truncatingIfNeeded: (address >> shift) & mask)
        let lastIndex = Int(truncatingIfNeeded: (last >> shift) & mask)
        let lastInTable = (last >> shift) & ~mask == (address >> shift) & ~mask ? lastIndex : Int(mask)
        while index <= lastInTable {
            let pointer = table + index
            _explorationTableEntry()
            var entry = VisitedEntry(
                level: level, address: GuestPhysicalAddress(address), pointer: pointer,
                snapshot: pointer.pointee.load(ordering: .acquiring), mode: mode)
            var isTable = level > 0 && format.isPresent(entry.snapshot, atLevel: level)
                && format.isTable(entry.snapshot, atLevel: level)
            var skip = false
            if isTable && visits.contains(.tablePre) {
                switch try visitor.visit(&entry, kind: .tablePre) {
                case .stop: return false
                case .skipChildren: skip = true
                case .proceed: break
                }
                entry.snapshot = pointer.pointee.load(ordering: .acquiring)
                isTable = level > 0 && format.isPresent(entry.snapshot, atLevel: level)
                    && format.isTable(entry.snapshot, atLevel: level)
            }
            if !skip && !isTable && visits.contains(.leaf) {
                switch try visitor.visit(&entry, kind: .leaf) {
                case .stop: return false
                case .skipChildren: skip = true
                case .proceed: break
                }
                entry.snapshot = pointer.pointee.load(ordering: .acquiring)
                isTable = level > 0 && format.isPresent(entry.snapshot, atLevel: level)
                    && format.isTable(entry.snapshot, atLevel: level)
            }
            if !skip && isTable {
                let childStart = max(start, address)
                let childLast = min(last, address &+ (size - 1))
                let child = memory.entries(at: format.childTable(of: entry.snapshot))
                if try !walkTable(child, level: level - 1, start: childStart, end: childLast,
                                  visits: visits, mode: mode, visitor: &visitor) {
                    return false
                }
                if visits.contains(.tablePost) {
                    if try visitor.visit(&entry, kind: .tablePost) == .stop { return false }
                }
            }
            if address &+ size == 0 || address &+ size > last { break }
            address &+= size
            index += 1
        }
        return true
    }
}
