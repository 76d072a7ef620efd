import Synchronization

/// Raw access to the 64-bit entries of one table page.
public typealias EntryPointer = UnsafeMutablePointer<Atomic<UInt64>>

/// Where table pages come from: the analogue of KVM's `kvm_pgtable_mm_ops`.
///
/// Table pages are one granule each and are addressed by host-physical
/// address, so the tables are a bit-exact hardware image. Implementations
/// are shared by every thread that walks or changes the tables and must be
/// safe to call concurrently; none of these calls may block on the MMU lock.
///
/// Contract: a page returned by ``allocatePage()`` or
/// ``allocateContiguousPages(_:)`` reads as all zero and has a live-entry
/// count of zero. A page handed to ``freePage(_:)`` must no longer be
/// reachable from any table nor cached in any TLB (DESIGN.md rule 3).
public protocol TableMemory: AnyObject, Sendable {
    /// Bytes in one table page (the format's granule).
    var pageSize: Int { get }
    /// A zeroed page. Throws ``SLATError/outOfTableMemory(needed:available:)``.
    func allocatePage() throws(SLATError) -> HostPhysicalAddress
    /// `count` physically contiguous zeroed pages aligned to their total size
    /// (concatenated root tables). Throws when no such run is free.
    func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress
    /// Returns a page; its contents may be anything (the memory re-zeroes it).
    /// Freeing a page twice is a programmer error and traps.
    func freePage(_ page: HostPhysicalAddress)
    /// The entries of the page at `page` (which must be a page this memory gave out).
    func entries(at page: HostPhysicalAddress) -> EntryPointer
    /// The physical address of the page holding `entry`.
    func page(containing entry: EntryPointer) -> HostPhysicalAddress
    /// The live (present) entry count recorded for a page.
    func liveEntryCount(of page: HostPhysicalAddress) -> Int
    /// Adds `delta` to the live-entry count of the page holding `entry`;
    /// returns the new count. Callers batch changes per table where they can.
    @discardableResult
    func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int
    /// Sets the live-entry count of a page not yet reachable by other threads.
    func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int)
    /// Pages that can still be allocated.
    var freePageCount: Int { get }
    /// Pages currently allocated (given out and not freed).
    var allocatedPageCount: Int { get }
    /// Pages allocated since creation (monotonic; benchmarks report it).
    var totalAllocations: Int { get }
    /// Pages freed since creation (monotonic).
    var totalFrees: Int { get }
}
