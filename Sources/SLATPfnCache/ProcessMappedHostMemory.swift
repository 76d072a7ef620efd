#if canImport(Glibc)
import Glibc
#endif
import SLATCore

/// Guest RAM the VMM has mapped into its own address space (`mmap`), as a
/// ``PfnCacheHostMemory``: host-virtual addresses are this process's
/// pointers, so a pfn cache reads and writes the guest's real memory and a
/// write through the cache is what the VMM (and the guest) see at that
/// address.
///
/// The VMM registers each region it maps guest RAM into (or lets this
/// object `mmap` one with `mapAnonymousRegion(byteCount:)`); a refresh
/// whose page lies outside every registered region fails with
/// `SLATError/hostAddressNotMapped(_:)` rather than dereferencing an
/// arbitrary address. The host page map (`HostPageMap`) still decides
/// whether a page is mapped and which frame backs it: register the region's
/// pages there too, with whatever frame numbers the VMM uses for them.
///
/// Locking contract: internally locked (a reader-writer lock around the
/// region list); every method may be called from any thread. Unregistering
/// or unmapping a region that a cache still maps is the VMM's error, as
/// unmapping guest RAM without an mmu-notifier event would be: send the
/// invalidation (`HostPageMap.unmap(_:)`) first.
public final class ProcessMappedHostMemory: PfnCacheHostMemory {
    private struct Region: Sendable {
        var range: HostVirtualRange
        /// Whether this object created the mapping (and unmaps it).
        var ownsMapping: Bool
    }

    private let regions = ReaderWriterLocked<[Region]>([])

    /// No region registered yet.
    public init() {}

    deinit {
        for region in regions.read({ $0 }) where region.ownsMapping {
            Self.unmapPages(region.range)
        }
    }

    /// Lets caches reach `range`, memory the VMM has mapped in this process.
    ///
    /// - Throws: `SLATError/invalidHostMapping(_:)` when `range` is
    ///   empty, not 4 KiB aligned, or overlaps a registered region.
    public func register(_ range: HostVirtualRange) throws(SLATError) {
        try insert(Region(range: range, ownsMapping: false))
    }

    /// Forgets a region registered with ``register(_:)`` (no cache may still
    /// map it). Returns whether it was registered.
    @discardableResult
    public func unregister(_ range: HostVirtualRange) -> Bool {
        regions.write { list in
            guard let index = list.firstIndex(where: { $0.range == range && !$0.ownsMapping }) else { return false }
            list.remove(at: index)
            return true
        }
    }

    /// Maps `byteCount` bytes (rounded up to 4 KiB) of zeroed, private,
    /// readable and writable memory for guest RAM, starting at a multiple
    /// of `alignment` (2 MiB lets the host page map, and so the second-level
    /// tables, use 2 MiB pages), and registers it; it is unmapped when this
    /// object goes away. Pages are populated on first touch.
    ///
    /// - Throws: `SLATError/emptyRange` for no bytes,
    ///   `SLATError/misalignedSize(_:alignment:)` for an alignment that is
    ///   not a power of two of at least 4 KiB (`alignment` 4096 in the error),
    ///   `SLATError/outOfTableMemory(needed:available:)` when the system
    ///   refuses the mapping (`needed` in pages, `available` 0).
    public func mapAnonymousRegion(byteCount: Int, alignment: Int = 4096) throws(SLATError) -> HostVirtualRange {
        guard byteCount > 0 else { throw .emptyRange }
        let pageBytes = UInt64(HostFrameMemory.frameBytes)
        guard alignment >= Int(pageBytes), alignment.nonzeroBitCount == 1 else {
            throw .misalignedSize(UInt64(truncatingIfNeeded: alignment), alignment: pageBytes)
        }
        let size = (UInt64(byteCount) + pageBytes - 1) & ~(pageBytes - 1)
        let slack = UInt64(alignment) - pageBytes
        #if canImport(Glibc)
        // Over-map by the alignment's slack, then give back the head and tail.
        let pointer = mmap(nil, Int(size + slack), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw .outOfTableMemory(needed: Int(size / pageBytes), available: 0)
        }
        let mapped = UInt64(UInt(bitPattern: pointer))
        let start = (mapped + UInt64(alignment) - 1) & ~(UInt64(alignment) - 1)
        if start > mapped { Self.unmapPages(HostVirtualRange(start: HostVirtualAddress(mapped), size: start - mapped)) }
        let tail = mapped + size + slack - (start + size)
        if tail > 0 { Self.unmapPages(HostVirtualRange(start: HostVirtualAddress(start + size), size: tail)) }
        let range = HostVirtualRange(start: HostVirtualAddress(start), size: size)
        do throws(SLATError) {
            try insert(Region(range: range, ownsMapping: true))
        } catch {
            Self.unmapPages(range)
            throw error
        }
        return range
        #else
        throw .outOfTableMemory(needed: Int(size / pageBytes), available: 0)
        #endif
    }

    /// The registered regions.
    public var registeredRegions: [HostVirtualRange] { regions.read { $0.map(\.range) } }

    /// This process's pointer to `page`, which must lie in a registered region.
    public func mapForAccess(page: HostVirtualAddress, frame: HostFrameNumber) throws(SLATError) -> UnsafeMutableRawPointer {
        let reachable = regions.read { list in list.contains { $0.range.contains(page) } }
        guard reachable, let pointer = UnsafeMutableRawPointer(bitPattern: UInt(page.rawValue)) else {
            throw .hostAddressNotMapped(page)
        }
        return pointer
    }

    /// Nothing to undo: the VMM's mapping outlives the cache's use of it.
    public func unmapAfterAccess(_ bytes: UnsafeMutableRawPointer, page: HostVirtualAddress, frame: HostFrameNumber) {}

    private func insert(_ region: Region) throws(SLATError) {
        let pageBytes = UInt64(HostFrameMemory.frameBytes)
        let range = region.range
        guard range.size > 0, range.start.rawValue & (pageBytes - 1) == 0, range.size & (pageBytes - 1) == 0 else {
            throw .invalidHostMapping(range.start)
        }
        let inserted = regions.write { list -> Bool in
            if list.contains(where: { $0.range.overlaps(range) }) { return false }
            list.append(region)
            return true
        }
        guard inserted else { throw .invalidHostMapping(range.start) }
    }

    private static func unmapPages(_ range: HostVirtualRange) {
        #if canImport(Glibc)
        _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(range.start.rawValue)), Int(range.size))
        #endif
    }
}
