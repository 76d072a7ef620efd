import SLATCore
import Synchronization

/// A root replaced by ``ExtendedPageTableMMU/invalidateAllRoots()`` that a
/// vCPU may still have loaded: it stays populated, reached by notifier zaps
/// and dirty-log passes, until no vCPU uses its generation any more.
@usableFromInline
struct InvalidatedRoot: Sendable {
    @usableFromInline let root: HostPhysicalAddress
    @usableFromInline let addressSpace: Int
    /// The root generation the root belonged to.
    @usableFromInline let generation: UInt64

    @usableFromInline
    init(root: HostPhysicalAddress, addressSpace: Int, generation: UInt64) {
        self.root = root
        self.addressSpace = addressSpace
        self.generation = generation
    }
}

// Root lifetime (KVM's obsolete roots, KVM_REQ_MMU_FREE_OBSOLETE_ROOTS and
// kvm_mmu_reload): every root belongs to a generation; a vCPU records the
// generation whose EPTPs it loaded (``reloadRoot(_:addressSpace:)``); a
// replaced root is walked by every zap and dirty-log pass and freed only
// when no vCPU records its generation. See Docs/x86-tdp-mmu.md, "Root
// lifetime".
extension ExtendedPageTableMMU {
    /// The generation ``teardown()`` leaves: no vCPU can have loaded it, so
    /// every fault sees its recorded generation differ and finds the MMU
    /// torn down.
    @inlinable static var tornDownGeneration: UInt64 { .max }

    /// Whether `vcpu` must reload its EPTPs (``reloadRoot(_:addressSpace:)``)
    /// before its next VM entry: the roots it loaded were replaced by
    /// ``invalidateAllRoots()``. Until it reloads, its faults return
    /// ``FaultOutcome/retry`` without changing anything, and the old roots
    /// it may still walk stay populated and covered by notifier zaps.
    ///
    /// A vCPU that has loaded nothing yet needs no reload: its first fault
    /// records the current generation (it can only have loaded the current
    /// EPTP).
    ///
    /// Locking contract: no lock; `vcpu` belongs to the calling thread.
    /// - Throws: `SLATError/readerSlotOutOfRange(_:slots:)`,
    ///   `SLATError/tornDown`.
    @inlinable
    public func isRootReloadRequested(_ vcpu: PageTableContext) throws(SLATError) -> Bool {
        let slot = try checkedSlot(vcpu)
        let current = rootGeneration.load(ordering: .acquiring)
        if current == Self.tornDownGeneration { throw .tornDown }
        let loaded = loadedGenerations[slot].load(ordering: .relaxed)
        return loaded != 0 && loaded != current
    }

    /// Records that `vcpu` now uses the current roots and returns the EPTP
    /// of `addressSpace` to load before the next VM entry (call it when
    /// ``isRootReloadRequested(_:)`` says so, and once per address space the
    /// vCPU uses). The vCPU's reference on the roots it used before is
    /// dropped: once every vCPU has reloaded, ``zapInvalidatedRoots()``
    /// frees them.
    ///
    /// Hardware contract: after loading a new EPTP the vCPU must not use
    /// translations cached for an EPTP of the same root address: SLAT
    /// invalidates all contexts when it frees a replaced root, so a root
    /// page reused later carries no stale entry.
    /// - Throws: `SLATError/readerSlotOutOfRange(_:slots:)`,
    ///   `SLATError/addressSpaceOutOfRange(_:count:)`, `SLATError/tornDown`.
    @inlinable
    public func reloadRoot(_ vcpu: PageTableContext, addressSpace: Int = 0) throws(SLATError) -> ExtendedPageTablePointer {
        let slot = try checkedSlot(vcpu)
        try checkAddressSpace(addressSpace)
        let current = rootGeneration.load(ordering: .acquiring)
        if current == Self.tornDownGeneration { throw .tornDown }
        // Record the generation before reading the root: the root read is
        // then of this generation or a newer one, never an older one that
        // zapInvalidatedRoots could free because nobody recorded it.
        loadedGenerations[slot].store(current, ordering: .sequentiallyConsistent)
        return try pointer(addressSpace: addressSpace)
    }

    /// The reader slot of `vcpu`, checked against ``MMUConfiguration/readerSlots``.
    @inlinable @inline(__always)
    func checkedSlot(_ vcpu: PageTableContext) throws(SLATError) -> Int {
        let slot = vcpu.readerSlot
        guard slot >= 0 && slot < configuration.readerSlots else {
            throw .readerSlotOutOfRange(slot, slots: configuration.readerSlots)
        }
        return slot
    }

    /// Throws unless `addressSpace` is one of the MMU's.
    @inlinable @inline(__always)
    func checkAddressSpace(_ addressSpace: Int) throws(SLATError) {
        guard addressSpace >= 0 && addressSpace < configuration.addressSpaceCount else {
            throw .addressSpaceOutOfRange(addressSpace, count: configuration.addressSpaceCount)
        }
    }

    /// Throws unless `frames` lies below the format's input address size
    /// (the walks index only those bits: a higher frame would alias a low one).
    @inlinable
    func checkGuestRange(_ frames: GuestFrameRange) throws(SLATError) {
        let limit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: format.inputAddressBits)
        let limitFrames = limit >> 12
        guard frames.start.rawValue <= limitFrames && frames.count <= limitFrames &- frames.start.rawValue else {
            throw .guestRangeOutOfBounds(frames.physicalRange, limit: limit)
        }
    }

    /// Throws ``SLATError/tornDown`` after ``teardown()``.
    @inlinable
    func checkNotTornDown() throws(SLATError) {
        if isTornDown { throw .tornDown }
    }

    /// Whether ``teardown()`` has run (it leaves `tornDownGeneration`,
    /// under the exclusive lock, before it frees anything).
    @inlinable
    public var isTornDown: Bool { rootGeneration.load(ordering: .acquiring) == Self.tornDownGeneration }

    /// Every root a locked pass must walk for `addressSpace` (`nil`: all):
    /// the current ones and the replaced ones still alive. Exclusive lock held.
    @usableFromInline
    func liveRoots(_ addressSpace: Int?) -> [(space: Int, root: HostPhysicalAddress)] {
        var result: [(space: Int, root: HostPhysicalAddress)] = []
        let spaces = addressSpace.map { $0..<($0 + 1) } ?? 0..<configuration.addressSpaceCount
        for space in spaces { result.append((space, rootAddress(space))) }
        let old = listLock.withLock { invalidatedRoots }
        for entry in old where spaces.contains(entry.addressSpace) { result.append((entry.addressSpace, entry.root)) }
        return result
    }

    /// Whether `root` is still a current or a live replaced root (a pass that
    /// yielded the lock checks it before walking on). Exclusive lock held.
    @usableFromInline
    func isLiveRoot(_ root: HostPhysicalAddress, addressSpace: Int) -> Bool {
        if rootAddress(addressSpace) == root { return true }
        return listLock.withLock { invalidatedRoots.contains { $0.root == root } }
    }

    /// The oldest generation a vCPU still records (the current one when no
    /// vCPU records any).
    @usableFromInline
    func oldestLoadedGeneration() -> UInt64 {
        var oldest = rootGeneration.load(ordering: .acquiring)
        for slot in 0..<configuration.readerSlots {
            let loaded = loadedGenerations[slot].load(ordering: .sequentiallyConsistent)
            if loaded != 0 && loaded < oldest { oldest = loaded }
        }
        return oldest
    }
}
