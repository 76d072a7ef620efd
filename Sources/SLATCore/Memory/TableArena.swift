import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The default ``TableMemory``: a page-aligned region with its own physical
/// base, so that a page's physical address is `physicalBase + offset` and an
/// image of the region is position-exact.
///
/// Free pages are kept zeroed (``freePage(_:)`` clears them), so allocation
/// is a pop from a lock-free stack and never touches the page: the fault and
/// map paths do not pay for zeroing. Never-used pages are handed out in
/// address order from a bump pointer, which keeps images compact.
///
/// Thread safety: every method may be called from any thread at any time;
/// the free stack is a Treiber stack whose head carries a generation tag
/// against ABA, and all per-page metadata is atomic.
// @unchecked Sendable: the region and metadata pointers are immutable after
// init; every per-page word behind them is an Atomic, and page contents are
// only touched by whoever owns the page (allocator on free, tables after).
public final class TableArena: TableMemory, @unchecked Sendable {
    /// Bytes in one table page.
    public let pageSize: Int
    /// Pages in the region.
    public let pageCount: Int
    /// Physical address of the first page of the region.
    public let physicalBase: HostPhysicalAddress
    /// The first byte of the region.
    public let region: UnsafeMutableRawPointer

    @usableFromInline let pageShift: Int
    /// Each page's count of live entries, one per 64-byte cache line, so
    /// that vCPUs installing entries into different tables at once do not
    /// bounce one line between them: the tables they allocate one after the
    /// other are neighbours here, and every installed leaf counts.
    @usableFromInline let liveCounts: UnsafeMutablePointer<Atomic<Int32>>
    /// Counts per cache line: page `i`'s count is `liveCounts[i * liveCountStride]`.
    @usableFromInline static let liveCountStride = 64 / MemoryLayout<Atomic<Int32>>.stride
    // 0 = never used (above the bump pointer), 1 = allocated, 2 = free.
    @usableFromInline let states: UnsafeMutablePointer<Atomic<UInt8>>
    @usableFromInline let nextFree: UnsafeMutablePointer<Atomic<UInt32>>
    // Tagged head of the free stack: low 32 bits page index + 1 (0 = empty), high 32 a tag.
    @usableFromInline let freeHead = Atomic<UInt64>(0)
    @usableFromInline let bump = Atomic<Int>(0)
    @usableFromInline let allocations = Atomic<Int>(0)
    @usableFromInline let frees = Atomic<Int>(0)
    private let ownsRegion: Bool

    /// An arena over memory the caller provides (bare metal: a physical
    /// region mapped at `region`).
    ///
    /// - Parameters:
    ///   - region: start of the region, aligned to `pageSize`.
    ///   - pageSize: bytes per table page: 4096, 16384 or 65536.
    ///   - pageCount: pages in the region (at least 1, below 2^32).
    ///   - physicalBase: physical address of `region`, aligned to `pageSize`.
    ///   - isZeroed: pass `true` when the region is known to be all zero;
    ///     otherwise the arena clears it now.
    /// - Throws: ``SLATError/invalidTableRegion`` for a bad size or alignment.
    public init(
        region: UnsafeMutableRawPointer,
        pageSize: Int,
        pageCount: Int,
        physicalBase: HostPhysicalAddress,
        isZeroed: Bool
    ) throws(SLATError) {
        try Self.checkGeometry(pageSize: pageSize, pageCount: pageCount, physicalBase: physicalBase)
        guard UInt(bitPattern: region) % UInt(pageSize) == 0 else { throw .invalidTableRegion }
        self.region = region
        self.ownsRegion = false
        self.mappedBase = nil
        self.mappedBytes = 0
        self.pageSize = pageSize
        self.pageCount = pageCount
        self.physicalBase = physicalBase
        self.pageShift = pageSize.trailingZeroBitCount
        (liveCounts, states, nextFree) = Self.makeMetadata(pageCount: pageCount)
        if !isZeroed { region.initializeMemory(as: UInt8.self, repeating: 0, count: pageSize * pageCount) }
    }

    #if canImport(Glibc)
    /// A hosted arena of `pageCount` pages of anonymous memory.
    ///
    /// - Parameters:
    ///   - prefault: touch every page now so first use on a hot path
    ///     does not take a host page fault (benchmarks want this).
    ///   - pageSize: bytes per table page (a power of two of at least 4 KiB): the format's granule.
    ///   - pageCount: how many table pages the arena holds.
    ///   - physicalBase: the host-physical address SLAT gives the first page (aligned to the page size).
    /// - Throws: ``SLATError/invalidTableRegion`` for a bad geometry or when
    ///   the host cannot provide the memory.
    public init(
        pageSize: Int = 4096,
        pageCount: Int,
        physicalBase: HostPhysicalAddress = HostPhysicalAddress(0x4000_0000),
        prefault: Bool = true
    ) throws(SLATError) {
        try Self.checkGeometry(pageSize: pageSize, pageCount: pageCount, physicalBase: physicalBase)
        let bytes = pageSize * pageCount
        // Over-allocate so the region can be aligned; mmap memory is zero and
        // only backed on first touch. Regions of 2 MiB or more are aligned to
        // 2 MiB and offered to transparent huge pages, so that table walks
        // do not also miss in the host's TLB (hypervisors back table memory
        // with huge pages for the same reason).
        let hugePage = 2 << 20
        let alignment = bytes >= hugePage ? max(hugePage, pageSize) : pageSize
        let mapped = mmap(nil, bytes + alignment, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapped, mapped != MAP_FAILED else { throw .invalidTableRegion }
        let aligned = (UInt(bitPattern: mapped) + UInt(alignment) - 1) & ~(UInt(alignment) - 1)
        self.region = UnsafeMutableRawPointer(bitPattern: aligned)!
        if alignment == hugePage { _ = madvise(self.region, bytes, MADV_HUGEPAGE) }
        self.mappedBase = mapped
        self.mappedBytes = bytes + alignment
        self.ownsRegion = true
        self.pageSize = pageSize
        self.pageCount = pageCount
        self.physicalBase = physicalBase
        self.pageShift = pageSize.trailingZeroBitCount
        (liveCounts, states, nextFree) = Self.makeMetadata(pageCount: pageCount)
        if prefault { self.prefault() }
    }
    #endif
    private let mappedBase: UnsafeMutableRawPointer?
    private let mappedBytes: Int

    deinit {
        liveCounts.deinitialize(count: pageCount &* Self.liveCountStride); liveCounts.deallocate()
        states.deinitialize(count: pageCount); states.deallocate()
        nextFree.deinitialize(count: pageCount); nextFree.deallocate()
        #if canImport(Glibc)
        if ownsRegion, let mappedBase { munmap(mappedBase, mappedBytes) }
        #else
        _ = (ownsRegion, mappedBase, mappedBytes)
        #endif
    }

    private static func checkGeometry(pageSize: Int, pageCount: Int, physicalBase: HostPhysicalAddress) throws(SLATError) {
        guard pageSize == 4096 || pageSize == 16384 || pageSize == 65536,
              pageCount > 0, pageCount < Int(UInt32.max),
              physicalBase.isAligned(to: UInt64(pageSize)),
              physicalBase.rawValue <= UInt64.max - UInt64(pageSize) * UInt64(pageCount)
        else { throw .invalidTableRegion }
    }

    private static func makeMetadata(pageCount: Int) -> (
        UnsafeMutablePointer<Atomic<Int32>>, UnsafeMutablePointer<Atomic<UInt8>>, UnsafeMutablePointer<Atomic<UInt32>>
    ) {
        // Line-aligned, so no two pages' counts share a line.
        let counts = UnsafeMutableRawPointer.allocate(
            byteCount: pageCount &* liveCountStride &* MemoryLayout<Atomic<Int32>>.stride, alignment: 64
        ).bindMemory(to: Atomic<Int32>.self, capacity: pageCount &* liveCountStride)
        let states = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: pageCount)
        let next = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: pageCount)
        for i in 0..<(pageCount &* liveCountStride) { (counts + i).initialize(to: Atomic(0)) }
        for i in 0..<pageCount {
            (states + i).initialize(to: Atomic(0))
            (next + i).initialize(to: Atomic(0))
        }
        return (counts, states, next)
    }

    /// Writes every page once so the host backs it now rather than on the hot path.
    public func prefault() {
        var offset = 0
        let bytes = pageSize * pageCount
        while offset < bytes {
            region.storeBytes(of: 0, toByteOffset: offset, as: UInt64.self)
            offset += 4096
        }
    }

    /// Bytes from the start of the region to the end of the highest page ever
    /// allocated: the part of the region an image must contain.
    public var usedByteCount: Int { min(bump.load(ordering: .acquiring), pageCount) * pageSize }

    @inlinable
    func pageIndex(of page: HostPhysicalAddress) -> Int {
        Int(truncatingIfNeeded: (page.rawValue &- physicalBase.rawValue) >> UInt64(pageShift))
    }

    @inlinable
    func pageAddress(ofIndex index: Int) -> HostPhysicalAddress {
        HostPhysicalAddress(physicalBase.rawValue + (UInt64(index) << UInt64(pageShift)))
    }

    /// Whether `page` is a page of this arena (aligned and inside the region).
    @inlinable
    public func contains(_ page: HostPhysicalAddress) -> Bool {
        page.isAligned(to: UInt64(pageSize)) && page >= physicalBase
            && (page.rawValue - physicalBase.rawValue) >> UInt64(pageShift) < UInt64(pageCount)
    }

    /// Whether `page` is currently allocated.
    public func isAllocated(_ page: HostPhysicalAddress) -> Bool {
        contains(page) && states[pageIndex(of: page)].load(ordering: .acquiring) == 1
    }

    public func allocatePage() throws(SLATError) -> HostPhysicalAddress {
        if let index = popFree() ?? bumpAllocate(count: 1) {
            markAllocated(index)
            return pageAddress(ofIndex: index)
        }
        throw .outOfTableMemory(needed: 1, available: 0)
    }

    public func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        guard count > 0 && count.nonzeroBitCount == 1 else { throw .unsupportedPageRun(count) }
        if count == 1 { return try allocatePage() }
        // Runs come from never-used pages only; skipped pages go to the free stack.
        while true {
            let start = bump.load(ordering: .relaxed)
            let physical = pageAddress(ofIndex: min(start, pageCount)).rawValue
            let alignment = UInt64(count) << UInt64(pageShift)
            let alignedPhysical = (physical + alignment - 1) & ~(alignment - 1)
            let first = start + Int((alignedPhysical - physical) >> UInt64(pageShift))
            guard first + count <= pageCount else {
                throw .outOfTableMemory(needed: count, available: freePageCount)
            }
            if bump.compareExchange(expected: start, desired: first + count, ordering: .acquiringAndReleasing).exchanged {
                for skipped in start..<first {
                    states[skipped].store(2, ordering: .releasing)
                    pushFree(skipped)
                }
                for index in first..<(first + count) { markAllocated(index) }
                return pageAddress(ofIndex: first)
            }
        }
    }

    public func freePage(_ page: HostPhysicalAddress) {
        // TableMemory's contract: only pages this memory handed out come
        // back, once. SLAT frees a page only after unlinking it and its
        // grace period (and teardown is idempotent); a second free would give
        // one page to two tables, so a caller's breach stops here.
        precondition(contains(page), "freeing a page that is not in this arena")
        let index = pageIndex(of: page)
        let previous = states[index].exchange(2, ordering: .acquiringAndReleasing)
        precondition(previous == 1, "table page freed twice (or never allocated)")
        (region + (index << pageShift)).initializeMemory(as: UInt8.self, repeating: 0, count: pageSize)
        liveCounts[index &* Self.liveCountStride].store(0, ordering: .relaxed)
        frees.wrappingAdd(1, ordering: .relaxed)
        pushFree(index)
    }

    @inlinable
    public func entries(at page: HostPhysicalAddress) -> EntryPointer {
        (region + Int(truncatingIfNeeded: page.rawValue &- physicalBase.rawValue))
            .assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// The arena is one linear region.
    @inlinable
    public var linearMap: LinearTableMap? { LinearTableMap(base: region, physicalBase: physicalBase.rawValue) }

    @inlinable
    public func page(containing entry: EntryPointer) -> HostPhysicalAddress {
        let offset = UInt64(UInt(bitPattern: UnsafeMutableRawPointer(entry) - region))
        return HostPhysicalAddress(physicalBase.rawValue + (offset & ~UInt64(pageSize - 1)))
    }

    public func liveEntryCount(of page: HostPhysicalAddress) -> Int {
        Int(liveCounts[pageIndex(of: page) &* Self.liveCountStride].load(ordering: .acquiring))
    }

    // Always inlined: the fault paths count every installed entry, and left
    // to the optimiser the stage-2 fault called this out of line.
    @inlinable @inline(__always)
    @discardableResult
    public func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        // A masking shift: `pageShift` is a power of two's trailing zeros,
        // below 64, so the checks of `>>` for other amounts never apply.
        let index = (UnsafeMutableRawPointer(entry) - region) &>> pageShift
        return Int(liveCounts[index &* Self.liveCountStride].wrappingAdd(Int32(truncatingIfNeeded: delta), ordering: .acquiringAndReleasing).newValue)
    }

    @inlinable
    public func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) {
        liveCounts[pageIndex(of: page) &* Self.liveCountStride].store(Int32(truncatingIfNeeded: count), ordering: .releasing)
    }

    public var freePageCount: Int { pageCount - allocatedPageCount }
    public var allocatedPageCount: Int { allocations.load(ordering: .relaxed) - frees.load(ordering: .relaxed) }
    public var totalAllocations: Int { allocations.load(ordering: .relaxed) }
    public var totalFrees: Int { frees.load(ordering: .relaxed) }

    private func markAllocated(_ index: Int) {
        let previous = states[index].exchange(1, ordering: .acquiringAndReleasing)
        // Internal: the free list and bump pointer hold free pages only.
        precondition(previous != 1, "arena handed out an allocated page")
        allocations.wrappingAdd(1, ordering: .relaxed)
    }

    private func bumpAllocate(count: Int) -> Int? {
        var start = bump.load(ordering: .relaxed)
        while start + count <= pageCount {
            let (exchanged, original) = bump.compareExchange(expected: start, desired: start + count, ordering: .acquiringAndReleasing)
            if exchanged { return start }
            start = original
        }
        return nil
    }

    private func pushFree(_ index: Int) {
        var head = freeHead.load(ordering: .relaxed)
        while true {
            nextFree[index].store(UInt32(truncatingIfNeeded: head), ordering: .relaxed)
            let tag = (head >> 32) &+ 1
            let desired = (tag << 32) | UInt64(index + 1)
            let (exchanged, original) = freeHead.compareExchange(expected: head, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged { return }
            head = original
        }
    }

    private func popFree() -> Int? {
        var head = freeHead.load(ordering: .acquiring)
        while true {
            let top = Int(head & 0xFFFF_FFFF)
            if top == 0 { return nil }
            let next = UInt64(nextFree[top - 1].load(ordering: .relaxed))
            let desired = (((head >> 32) &+ 1) << 32) | next
            let (exchanged, original) = freeHead.compareExchange(expected: head, desired: desired, ordering: .acquiringAndReleasing)
            if exchanged { return top - 1 }
            head = original
        }
    }
}
