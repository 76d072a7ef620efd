/// Which visits a walker makes (KVM's `KVM_PGTABLE_WALK_*` flags).
@frozen
public struct WalkVisits: OptionSet, Sendable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Visit a table entry before descending into its child table.
    public static let tablePre = WalkVisits(rawValue: 1 << 0)
    /// Visit every entry that is not a table: leaves, invalid and frozen entries.
    public static let leaf = WalkVisits(rawValue: 1 << 1)
    /// Visit a table entry after its child table has been walked.
    public static let tablePost = WalkVisits(rawValue: 1 << 2)
}

/// The kind of one visit.
public enum VisitKind: Sendable {
    case tablePre, leaf, tablePost
}

/// What the walker does after a visit.
public enum VisitOutcome: Sendable {
    /// Re-read the entry; descend if it is now a table; go on.
    case proceed
    /// Do not descend into this entry (the visitor handled the subtree);
    /// continue with the next entry.
    case skipChildren
    /// End the walk now; ``PageTableWalker/walk(_:mode:with:)`` returns `false`.
    case stop
}

/// One entry as the walker presents it to a visitor.
@frozen
public struct VisitedEntry {
    /// Height of the table holding the entry (0 = smallest pages).
    public let level: Int
    /// First guest address the entry maps.
    public let address: GuestPhysicalAddress
    /// The entry itself, for atomic reads and compare-and-exchange.
    public let pointer: EntryPointer
    /// The value the walker read. After a visit the walker re-reads it.
    public var snapshot: UInt64
    /// How the walk runs: in ``WalkMode/shared`` other writers may change
    /// entries concurrently and every change must be a compare-and-exchange
    /// against ``snapshot``.
    public let mode: WalkMode

    @inlinable
    public init(level: Int, address: GuestPhysicalAddress, pointer: EntryPointer, snapshot: UInt64,
                mode: WalkMode = .exclusive) {
        self.level = level
        self.address = address
        self.pointer = pointer
        self.snapshot = snapshot
        self.mode = mode
    }
}

/// A callback a ``PageTableWalker`` runs at entries of a range.
///
/// Conforming types are usually small structs holding the operation's state;
/// `visit` is called with the walker specialised and inlined around it, so
/// it should be `@inlinable` when declared in another module.
///
/// Locking contract: the walker reads entries atomically and never writes;
/// the visitor decides how to change an entry. In a shared walk (other
/// writers may run) every change must be a compare-and-exchange against
/// `entry.snapshot` (rule 1 of Docs/concurrency.md).
public protocol PageTableVisitor {
    /// The visits this visitor wants.
    var visits: WalkVisits { get }
    /// Visits one entry.
    mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome
}
