import SLATCore

/// One vCPU's memo of the last level-0 table (the table of 4 KiB leaves) its
/// fault walked into: a fault that needs a 4 KiB leaf in the same 2 MiB
/// region of the same root starts its walk there instead of at the root,
/// skipping three levels (sequential faults stay in one table for 512
/// faults).
///
/// Soundness: the memo is used only while
/// ``ExtendedPageTableMMU/tableUnlinks`` still has the value read when it
/// was filled. Every path that unlinks a table page bumps that counter
/// (sequentially consistent) *before* the page is retired or freed: faults
/// that replace a table by a huge leaf, zaps, NX recovery, huge-page
/// recovery, root teardown (``ExtendedPageTableMMU/settle(_:)`` when its
/// batch carries pages, ``ExtendedPageTableMMU/zapInvalidatedRoots()``,
/// ``ExtendedPageTableMMU/teardown()``). A fault reads the counter after it
/// has taken the lock and entered its read section, so:
/// - an unlink under the exclusive lock finished (bump included) before the
///   fault's shared hold began, and the fault sees the bump;
/// - an unlink whose page was retired before the fault's read section began
///   bumped the counter before that (the retirement loaded an epoch the
///   fault's announcement follows), and the fault sees the bump;
/// - an unlink racing the fault under the shared lock (a concurrent fault
///   merging the region into a huge leaf) retires the page only after the
///   fault's read section began, so the page is not freed under it, and the
///   fault's exchange on it either fails on a frozen entry (retry) or is
///   captured and flushed by the freezer — exactly as for a fault that
///   reached the table through the root.
/// The memo also names its root and address space, so a replaced root
/// (``ExtendedPageTableMMU/invalidateAllRoots()``) never matches.
///
/// Not thread-safe: the memo belongs to the thread using the reader slot.
@frozen @usableFromInline
struct LeafTableMemo {
    /// Host-physical address of the level-0 table, 0 for none.
    @usableFromInline var table: UInt64 = 0
    /// ``ExtendedPageTableMMU/tableUnlinks`` when it was filled.
    @usableFromInline var generation: UInt64 = 0
    /// The root it was reached from.
    @usableFromInline var root: UInt64 = 0
    /// The address space of that root.
    @usableFromInline var addressSpace = 0
    /// First guest address of the 2 MiB region the table maps.
    @usableFromInline var region: UInt64 = 0

    @inlinable init() {}

    @inlinable
    init(table: UInt64, generation: UInt64, root: UInt64, addressSpace: Int, region: UInt64) {
        self.table = table
        self.generation = generation
        self.root = root
        self.addressSpace = addressSpace
        self.region = region
    }
}
