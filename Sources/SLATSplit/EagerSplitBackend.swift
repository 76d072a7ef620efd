import SLATCore

/// What the eager split engine needs from a backend: its tables, its root
/// per address space, and one entry-level primitive that replaces a huge
/// leaf by fully populated tables. No format bits reach the engine; it only
/// uses `SLATCore/PageTableFormat`'s decoders through ``format``.
///
/// Conforming types: `ExtendedPageTableMMU` (x86 EPT, one level per split,
/// one compare-and-exchange) and `StageTwoPageTable` (arm64 stage 2, the
/// whole subtree down to the target level, linked by break-before-make).
///
/// Locking contract: the engine calls every requirement with the VM's MMU
/// lock held **shared** and inside a read section of ``splitReclaimer``
/// (its context's reader slot), except ``tablePagesToSplit(level:targetLevel:)``
/// and ``validateSplitRange(_:)``, which touch no table.
public protocol EagerSplitBackend: AnyObject {
    /// The table format.
    associatedtype Format: PageTableFormat
    /// Where table pages come from.
    associatedtype Memory: TableMemory

    /// The format of the tables.
    var format: Format { get }
    /// The memory the split pages are allocated from (and whose free count
    /// the minimum-free policy reads).
    var splitMemory: Memory { get }
    /// The reclaimer lockless walkers and shared walks use.
    var splitReclaimer: EpochReclaimer<Memory> { get }
    /// Address spaces (roots) to split in: 1, or 2 with x86 SMM.
    var splitAddressSpaceCount: Int { get }

    /// The current root of `addressSpace`; read again after each lock drop
    /// (a backend may replace its roots while the lock is not held).
    func splitRoot(addressSpace: Int) -> HostPhysicalAddress

    /// Throws unless `range` is a non-empty, page-aligned range inside the
    /// guest address space the tables translate.
    func validateSplitRange(_ range: GuestPhysicalRange) throws(SLATError)

    /// Table pages ``splitHugeLeaf(_:expected:level:address:targetLevel:context:batch:)``
    /// takes from the cache for a leaf at `level` split toward `targetLevel`.
    func tablePagesToSplit(level: Int, targetLevel: Int) -> Int

    /// Replaces the present leaf `expected` at `level` (above `targetLevel`)
    /// by tables built *completely* from `context`'s page cache, holding the
    /// same translations (output, permissions, memory type, accessed/dirty
    /// and software bits) at some level in `targetLevel..<level`, and links
    /// them with one compare-and-exchange against `expected`, so a walker
    /// sees the leaf or the tables and never a missing translation.
    ///
    /// - Returns: `SLATCore/LeafSplitOutcome/split(child:)` when the
    ///   exchange won (the top new table); `SLATCore/LeafSplitOutcome/lostRace`
    ///   with `expected` updated and every page back in the cache, zeroed;
    ///   `SLATCore/LeafSplitOutcome/cacheEmpty` when the cache holds fewer
    ///   than ``tablePagesToSplit(level:targetLevel:)`` pages (nothing changed).
    ///
    /// TLB contract: a complete split owes nothing; whatever a backend does
    /// owe goes into `batch`, which the engine settles with
    /// ``settleSplitBatch(_:)`` before it drops the lock.
    func splitHugeLeaf(
        _ pointer: EntryPointer, expected: inout UInt64, level: Int, address: GuestPhysicalAddress,
        targetLevel: Int, context: PageTableContext, batch: inout TLBFlushBatch
    ) -> LeafSplitOutcome

    /// Issues what `batch` owes to the VM's TLB and retires its pages
    /// through the reclaimer (shared mode).
    func settleSplitBatch(_ batch: consuming TLBFlushBatch)
}
