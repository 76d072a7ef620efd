import Synchronization

/// One set of second-level tables: a root in ``TableMemory`` and the range
/// operations every backend builds on — map, unmap, change permissions,
/// translate, enumerate, destroy — generic over the format.
///
/// `PageTable` is a small value (format, memory, root, reclaimer); copies
/// share the same tables, and it is `Sendable` so every vCPU thread can hold
/// one.
///
/// Locking contract: the type holds no lock. Each changing operation takes
/// a ``WalkMode`` that states how the caller holds the MMU lock:
/// ``WalkMode/exclusive`` (no other software walker) or ``WalkMode/shared``
/// (concurrent operations; every change is a compare-and-exchange). Reads
/// (``translate(_:)``) take no lock and are safe alongside shared writers
/// when made inside a reclaimer read section.
///
/// TLB contract: changing operations add what they owe to a
/// ``TLBFlushBatch``; translations are removed or reduced only once the
/// caller settles it with ``settle(_:tlb:mode:)``. Break-before-make
/// (formats with ``PageTableFormat/requiresBreakBeforeMake``) invalidates
/// immediately through the `tlb` argument, as it must happen before the
/// new entry is written.
///
/// Errors: every operation validates its input first and throws before it
/// changes anything; table pages are reserved in the context's page cache
/// before the walk starts, so running out of table memory is also reported
/// before any change.
@frozen
public struct PageTable<Format: PageTableFormat, Memory: TableMemory>: Sendable {
    /// The format of the tables.
    public let format: Format
    /// The memory the table pages come from.
    public let memory: Memory
    /// Physical address of the root (all concatenated root tables).
    public let root: HostPhysicalAddress
    /// Frees tables unlinked by shared operations after a grace period.
    public let reclaimer: EpochReclaimer<Memory>
    /// The root pointer, linear map and input bound lookups use.
    @usableFromInline let lookup: TableLookup

    /// Allocates an empty root.
    ///
    /// - Parameters:
    ///   - format: the translation format.
    ///   - memory: the table memory; its page size must be the format's granule.
    ///   - readerSlots: threads (vCPUs) that may walk shared at once; each
    ///     uses its own slot through its ``PageTableContext``.
    /// - Throws: ``SLATError/unsupportedGranule(_:)`` if the memory's page
    ///   size is not the format's granule; ``SLATError/outOfTableMemory(needed:available:)``.
    ///   `SLATError/unsupportedReaderSlotCount(_:)` for a reader slot count
    ///   outside `1...ReaderSlotWords.maximumSlotCount`; the errors of
    ///   ``checkGeometry(of:)``.
    public init(format: Format, memory: Memory, readerSlots: Int = 64) throws(SLATError) {
        try Self.checkGeometry(of: format)
        guard memory.pageSize == format.tablePageSize else { throw .unsupportedGranule(memory.pageSize) }
        let reclaimer = try EpochReclaimer(memory: memory, slotCount: readerSlots)
        self.format = format
        self.memory = memory
        self.root = try memory.allocateContiguousPages(format.rootTableCount)
        self.reclaimer = reclaimer
        self.lookup = TableLookup(format: format, memory: memory, root: root)
    }

    /// Adopts an existing root (for instance one rebuilt from an image).
    ///
    /// - Throws: `SLATError/unsupportedReaderSlotCount(_:)` for a count
    ///   outside `1...ReaderSlotWords.maximumSlotCount`; the errors of
    ///   ``checkGeometry(of:)``.
    public init(format: Format, memory: Memory, root: HostPhysicalAddress, readerSlots: Int = 64) throws(SLATError) {
        try Self.checkGeometry(of: format)
        self.format = format
        self.memory = memory
        self.root = root
        self.reclaimer = try EpochReclaimer(memory: memory, slotCount: readerSlots)
        self.lookup = TableLookup(format: format, memory: memory, root: root)
    }

    /// Refuses a format whose geometry SLAT's walks cannot follow: a table
    /// page of 8-byte entries resolves `granuleShift - 3` bits, and a walk
    /// has one to six levels. SLAT's formats always pass; a caller's own
    /// `PageTableFormat` is checked here before any walk.
    ///
    /// - Throws: `SLATError/unsupportedGranule(_:)` when `bitsPerLevel` is
    ///   not `granuleShift - 3`; `SLATError/unsupportedLevelCount(_:)` for
    ///   a root level outside `0..<6`.
    public static func checkGeometry(of format: Format) throws(SLATError) {
        guard format.granuleShift >= 3 && format.granuleShift < 32 && format.bitsPerLevel == format.granuleShift - 3 else {
            throw .unsupportedGranule(format.granuleShift >= 0 && format.granuleShift < 63 ? 1 << format.granuleShift : 0)
        }
        guard format.rootLevel >= 0 && format.rootLevel < 6 else { throw .unsupportedLevelCount(format.rootLevel + 1) }
    }

    /// Adopts an existing root whose unlinked pages go through an existing
    /// reclaimer (a backend with several roots sharing one grace period).
    /// `format` must pass ``checkGeometry(of:)`` (SLAT's formats do; its
    /// backends call this with their own).
    public init(format: Format, memory: Memory, root: HostPhysicalAddress, reclaimer: EpochReclaimer<Memory>) {
        self.format = format
        self.memory = memory
        self.root = root
        self.reclaimer = reclaimer
        self.lookup = TableLookup(format: format, memory: memory, root: root)
    }

    /// A walker over these tables.
    @inlinable
    public var walker: PageTableWalker<Format, Memory> {
        PageTableWalker(format: format, memory: memory, root: root)
    }

    /// An iterator over `range` of these tables.
    @inlinable
    public func iterator(over range: GuestPhysicalRange, minimumLevel: Int = 0) -> PageTableIterator<Format, Memory> {
        PageTableIterator(format: format, memory: memory, root: root, range: range, minimumLevel: minimumLevel)
    }

    /// Issues what `batch` owes to `tlb`, then frees its pages: at once in
    /// ``WalkMode/exclusive`` mode, after a grace period in shared mode.
    public func settle<T: TLB>(_ batch: consuming TLBFlushBatch, tlb: T, mode: WalkMode) {
        let pages = batch.flush(to: tlb)
        // Every unlink path bumps the count already; a batch filled by
        // other code still moves it before its pages go.
        if !pages.isEmpty { reclaimer.noteTableUnlinked() }
        switch mode {
        case .exclusive:
            for page in pages { memory.freePage(page) }
        case .shared:
            reclaimer.retire(pages)
        }
    }

    // MARK: Validation

    /// Throws unless `range` is a non-empty, page-aligned range inside the
    /// input address space.
    @inlinable
    public func validate(_ range: GuestPhysicalRange) throws(SLATError) {
        let page = format.pageSize
        guard range.size > 0 else { throw .emptyRange }
        guard range.start.isAligned(to: page) else { throw .misalignedGuestAddress(range.start, alignment: page) }
        guard range.size & (page - 1) == 0 else { throw .misalignedSize(range.size, alignment: page) }
        let limit = format.inputAddressSpaceSize
        guard range.start.rawValue < limit, range.size <= limit - range.start.rawValue else {
            throw .guestRangeOutOfBounds(range, limit: limit)
        }
    }

    /// Throws unless `[output, output + size)` is page-aligned and fits the
    /// format's output address size.
    @inlinable
    public func validateOutput(_ output: HostPhysicalAddress, size: UInt64) throws(SLATError) {
        let page = format.pageSize
        guard output.isAligned(to: page) else { throw .misalignedOutputAddress(output, alignment: page) }
        let limit = format.outputAddressLimit
        guard output.rawValue < limit else { throw .outputAddressTooWide(output, outputBits: format.outputAddressBits) }
        guard size <= limit - output.rawValue else {
            throw .outputAddressTooWide(HostPhysicalAddress(output.rawValue &+ (size - 1)), outputBits: format.outputAddressBits)
        }
    }
}
