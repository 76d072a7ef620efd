import Synchronization

/// A pre-order cursor over the entries of a guest-physical range (the shape
/// of KVM's `tdp_iter`): it visits an entry, then — if the entry is a table
/// and the cursor is above ``minimumLevel`` — the entries of its child, then
/// the next entry at the same level, climbing when a table ends.
///
/// The caller may change the current entry between steps (typically by
/// compare-and-exchange, updating ``snapshot`` with the value it wrote or
/// the value that made its exchange fail); the next ``advance()`` descends
/// according to ``snapshot``. An operation holding a lock can ``restart()``:
/// the cursor forgets its path and walks again from the root to the
/// address it has not finished, so it never uses a table pointer across a
/// lock release. ``canYield`` guarantees forward progress: it is `false`
/// until the cursor has moved past the point of the last restart.
///
/// Locking contract: as for ``PageTableWalker``: reads are atomic; the
/// caller must be in a read section of the reclaimer (or hold the lock
/// exclusively) while it holds the cursor between restarts.
public struct PageTableIterator<Format: PageTableFormat, Memory: TableMemory> {
    public let format: Format
    public let memory: Memory
    public let root: HostPhysicalAddress
    /// Deepest level the cursor descends to.
    public let minimumLevel: Int
    /// First address past the range.
    public let end: GuestPhysicalAddress

    /// Level of the current entry.
    @inlinable public var level: Int { _level }
    @usableFromInline var _level: Int
    /// First guest address the current entry maps.
    @inlinable public var address: GuestPhysicalAddress { _address }
    @usableFromInline var _address: GuestPhysicalAddress
    /// The current entry.
    @inlinable public var pointer: EntryPointer { _pointer }
    @usableFromInline var _pointer: EntryPointer
    /// The value read from (or last written to) the current entry.
    public var snapshot: UInt64
    /// `false` once the cursor has passed the end of the range.
    @inlinable public var isValid: Bool { _isValid }
    @usableFromInline var _isValid: Bool
    /// The address the walk resumes at after a restart: the start of the
    /// current entry at the smallest level the cursor has reached.
    @inlinable public var resumeAddress: GuestPhysicalAddress { _resumeAddress }
    @usableFromInline var _resumeAddress: GuestPhysicalAddress
    /// The resume address of the last restart.
    @inlinable public var lastRestartAddress: GuestPhysicalAddress { _lastRestartAddress }
    @usableFromInline var _lastRestartAddress: GuestPhysicalAddress

    @usableFromInline var tables: (EntryPointer, EntryPointer, EntryPointer, EntryPointer, EntryPointer, EntryPointer)

    /// A cursor over `range`, positioned at the root entry covering its start.
    @inlinable
    public init(
        format: Format, memory: Memory, root: HostPhysicalAddress,
        range: GuestPhysicalRange, minimumLevel: Int = 0
    ) {
        // PageTableFormat's geometry caps a format at six levels (its
        // documentation); SLAT's formats have at most five, and PageTable
        // refuses a conforming type that breaks the cap before any walk.
        precondition(format.rootLevel < 6, "the iterator supports at most six levels")
        self.format = format
        self.memory = memory
        self.root = root
        self.minimumLevel = minimumLevel
        self.end = range.end
        let rootTable = memory.entries(at: root)
        tables = (rootTable, rootTable, rootTable, rootTable, rootTable, rootTable)
        _level = format.rootLevel
        _address = range.start
        _pointer = rootTable
        snapshot = 0
        _isValid = !range.isEmpty
        _resumeAddress = range.start
        _lastRestartAddress = range.start
        if isValid { positionAtRoot(resumeAddress) }
    }

    @inlinable
    func table(atLevel level: Int) -> EntryPointer {
        switch level {
        case 0: tables.0
        case 1: tables.1
        case 2: tables.2
        case 3: tables.3
        case 4: tables.4
        default: tables.5
        }
    }

    @inlinable
    mutating func setTable(_ table: EntryPointer, atLevel level: Int) {
        switch level {
        case 0: tables.0 = table
        case 1: tables.1 = table
        case 2: tables.2 = table
        case 3: tables.3 = table
        case 4: tables.4 = table
        default: tables.5 = table
        }
    }

    @inlinable
    mutating func positionAtRoot(_ target: GuestPhysicalAddress) {
        _level = format.rootLevel
        setTable(memory.entries(at: root), atLevel: level)
        _address = target.alignedDown(to: format.entrySize(atLevel: level))
        load()
    }

    @inlinable
    mutating func load() {
        _pointer = table(atLevel: level) + format.index(of: address, atLevel: level)
        _explorationTableEntry()
        snapshot = pointer.pointee.load(ordering: .acquiring)
    }

    /// Re-reads the current entry into ``snapshot``.
    @inlinable
    public mutating func reread() {
        _explorationTableEntry()
        snapshot = pointer.pointee.load(ordering: .acquiring)
    }

    /// Whether the current entry is a table the cursor would descend into.
    @inlinable
    public var isAtTable: Bool {
        level > minimumLevel && format.isPresent(snapshot, atLevel: level) && format.isTable(snapshot, atLevel: level)
    }

    /// Moves to the first entry in range of the current entry's child table.
    /// Returns `false` (and stays) if the entry is not a table to descend into.
    @inlinable
    public mutating func stepDown() -> Bool {
        guard isAtTable else { return false }
        let child = memory.entries(at: format.childTable(of: snapshot))
        _level -= 1
        setTable(child, atLevel: level)
        _address = max(address, resumeAddress).alignedDown(to: format.entrySize(atLevel: level))
        load()
        _resumeAddress = max(resumeAddress, address)
        return true
    }

    /// Moves to the next entry of the same table. Returns `false` (and stays)
    /// at the last entry of the table.
    @inlinable
    public mutating func stepSide() -> Bool {
        let size = format.entrySize(atLevel: level)
        if format.index(of: address, atLevel: level) == format.entryCount(atLevel: level) - 1 { return false }
        _address = address.advanced(by: size)
        _resumeAddress = address
        load()
        return true
    }

    /// Moves to the entry of the parent table that points to the current
    /// table. Returns `false` at the root.
    @inlinable
    public mutating func stepUp() -> Bool {
        if level == format.rootLevel { return false }
        _level += 1
        _address = address.alignedDown(to: format.entrySize(atLevel: level))
        load()
        return true
    }

    /// Moves to the next entry in pre-order: into the current table if it is
    /// one, otherwise to the next entry, climbing as needed. Clears
    /// ``isValid`` when the range is done.
    @inlinable
    public mutating func advance() {
        if !isValid { return }
        if stepDown() {
            if address >= end { _isValid = false }
            return
        }
        skipChildren()
    }

    /// Moves past the current entry without descending into it.
    @inlinable
    public mutating func skipChildren() {
        if !isValid { return }
        while true {
            let next = address.rawValue &+ format.entrySize(atLevel: level)
            if next == 0 || next >= end.rawValue {
                // Past the range (or the top of the space).
                _resumeAddress = end
                _isValid = false
                return
            }
            if stepSide() { return }
            if !stepUp() {
                _isValid = false
                return
            }
        }
    }

    /// Whether a restart now would make progress: the cursor has moved past
    /// where it was last restarted. Operations yield their lock only when
    /// this is `true`, which bounds the restarts by the range's size.
    @inlinable
    public var canYield: Bool { resumeAddress > lastRestartAddress }

    /// Forgets the path and walks again from the root to ``resumeAddress``
    /// (call after reacquiring a lock that was dropped).
    @inlinable
    public mutating func restart() {
        _lastRestartAddress = resumeAddress
        if resumeAddress >= end {
            _isValid = false
            return
        }
        _isValid = true
        positionAtRoot(resumeAddress)
    }
}
