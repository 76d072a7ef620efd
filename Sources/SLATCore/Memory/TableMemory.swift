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
/// reachable from any table nor cached in any TLB (rule 3 of Docs/concurrency.md).
public protocol TableMemory: AnyObject, Sendable {
    /// Bytes in one table page (the format's granule).
    var pageSize: Int { get }
    /// A zeroed page. Throws ``SLATError/outOfTableMemory(needed:available:)``.
    func allocatePage() throws(SLATError) -> HostPhysicalAddress
    /// `count` physically contiguous zeroed pages aligned to their total size
    /// (concatenated root tables). Throws `SLATError/unsupportedPageRun(_:)`
    /// unless `count` is a positive power of two, and
    /// `SLATError/outOfTableMemory(needed:available:)` when no such run is free.
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
    /// If every page lives in one linear region (physical address =
    /// region base offset + physical base), that mapping, so walks can
    /// translate table addresses without calling back into the memory on
    /// every level. `nil` (the default) for memories that are not linear.
    /// It must not change over the memory's lifetime: a ``PageTable`` reads
    /// it once, when it is made, for its lookups.
    var linearMap: LinearTableMap? { get }
}

extension TableMemory {
    /// Default: not a linear region.
    @inlinable public var linearMap: LinearTableMap? { nil }
}

/// A linear mapping from table physical addresses to pointers, read once
/// per walk (the analogue of the kernel's `__va` on its linear map).
@frozen
public struct LinearTableMap: @unchecked Sendable {
    // @unchecked Sendable: an immutable base pointer and offset; the memory
    // behind it is accessed only through atomics (or by its owner).
    /// Where the page at `physicalBase` is mapped.
    public let base: UnsafeMutableRawPointer
    /// The physical address of the first page of the region.
    public let physicalBase: UInt64
    /// `base - physicalBase` as a wrapping address: a table's pointer is its
    /// physical address plus this, one add per level of a walk.
    @usableFromInline let bias: UInt

    /// A map of a region starting at `base` whose first page is at `physicalBase`.
    @inlinable
    public init(base: UnsafeMutableRawPointer, physicalBase: UInt64) {
        self.base = base
        self.physicalBase = physicalBase
        self.bias = UInt(bitPattern: base) &- UInt(truncatingIfNeeded: physicalBase)
    }

    /// The entries of the page at `page` (a page of the region).
    @inlinable
    public func entries(at page: HostPhysicalAddress) -> EntryPointer {
        // A page of the region maps to a non-null address inside it.
        EntryPointer(bitPattern: UInt(truncatingIfNeeded: page.rawValue) &+ bias).unsafelyUnwrapped
    }
}
