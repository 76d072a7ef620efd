import SLATCore

/// How a pfn cache reaches the bytes of the host page it resolved: the
/// VMM's side of the contract, as KVM's `kvm_gpc_refresh` maps the pfn it
/// found (`kmap`/`memremap`) and unmaps it when the cache is invalidated.
///
/// A refresh resolves the cache's host-virtual page to a host frame through
/// `HostPageMap` and then asks this object for the bytes. Implementations:
/// ``HostFrameMemory`` (a heap model of host frames, for simulation and
/// tests) and ``ProcessMappedHostMemory`` (host-virtual addresses are the
/// VMM's own pointers into guest RAM it `mmap`ed: the cache reads and writes
/// the guest's real memory).
///
/// Locking contract: ``mapForAccess(page:frame:)`` is called by a refresh
/// with no SLAT lock held; ``unmapAfterAccess(_:page:frame:)`` with the
/// cache's lock held exclusively (no accessor runs), possibly from a
/// notifier `start`. Neither may call back into the registry, the host page
/// map or the memslots. Both may be called from any thread.
public protocol PfnCacheHostMemory: AnyObject, Sendable {
    /// Makes host page `page` (host-virtual, 4 KiB aligned), which the host
    /// page map backs with `frame`, accessible and returns its first byte.
    /// The bytes must stay accessible until ``unmapAfterAccess(_:page:frame:)``
    /// is called with the returned pointer.
    ///
    /// - Throws: `SLATError/hostAddressNotMapped(_:)` when the page is not
    ///   memory this object can reach.
    func mapForAccess(page: HostVirtualAddress, frame: HostFrameNumber) throws(SLATError) -> UnsafeMutableRawPointer

    /// Ends an access mapping that ``mapForAccess(page:frame:)`` returned:
    /// the cache was invalidated, refreshed to another page, deactivated or
    /// destroyed, or a refresh did not publish it.
    func unmapAfterAccess(_ bytes: UnsafeMutableRawPointer, page: HostVirtualAddress, frame: HostFrameNumber)
}

extension HostFrameMemory: PfnCacheHostMemory {
    /// The model's bytes of `frame` (allocated zeroed on first use); `page`
    /// is not needed, the model is indexed by frame. Never throws.
    public func mapForAccess(page: HostVirtualAddress, frame: HostFrameNumber) throws(SLATError) -> UnsafeMutableRawPointer {
        bytes(of: frame)
    }

    /// Nothing to undo: the model's frames stay allocated.
    public func unmapAfterAccess(_ bytes: UnsafeMutableRawPointer, page: HostVirtualAddress, frame: HostFrameNumber) {}
}
