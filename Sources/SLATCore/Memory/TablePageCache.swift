/// A per-vCPU reserve of zeroed table pages (KVM's `kvm_mmu_memory_cache`).
///
/// Topped up *outside* the MMU lock, so that operations under the lock never
/// allocate: an operation first computes how many pages it can need, calls
/// ``topUp(from:toAtLeast:)`` and only then starts changing tables. Pages in
/// the cache are always zero; a page taken and written but not linked must
/// be cleared before it is ``giveBack(_:)``-ed.
///
/// Not thread-safe: each vCPU (thread) owns its cache, which is why it is
/// noncopyable — a copy would hand the same pages out twice.
public struct TablePageCache: ~Copyable {
    @usableFromInline var pages: [HostPhysicalAddress] = []

    /// An empty cache.
    public init() {}

    /// Pages held.
    @inlinable public var count: Int { pages.count }

    /// Allocates from `memory` until the cache holds at least `minimum` pages.
    ///
    /// - Throws: ``SLATError/outOfTableMemory(needed:available:)`` if memory
    ///   cannot supply them; pages allocated by this call are given back, so
    ///   on failure the cache and the memory are as they were.
    public mutating func topUp<Memory: TableMemory>(from memory: Memory, toAtLeast minimum: Int) throws(SLATError) {
        let before = pages.count
        if before >= minimum { return }
        pages.reserveCapacity(minimum)
        while pages.count < minimum {
            do {
                pages.append(try memory.allocatePage())
            } catch {
                let needed = minimum - before
                while pages.count > before { memory.freePage(pages.removeLast()) }
                throw .outOfTableMemory(needed: needed, available: memory.freePageCount)
            }
        }
    }

    /// A zeroed page, or `nil` when the cache is empty (a bug in the caller's
    /// page budget: operations reserve before they start).
    @inlinable
    public mutating func take() -> HostPhysicalAddress? { pages.popLast() }

    /// Returns an unused page. It must be all zero.
    @inlinable
    public mutating func giveBack(_ page: HostPhysicalAddress) { pages.append(page) }

    /// Frees every page back to `memory` (vCPU teardown).
    public mutating func release<Memory: TableMemory>(to memory: Memory) {
        while let page = pages.popLast() { memory.freePage(page) }
    }
}
