import SLATCore
import Synchronization

/// The x86 TDP MMU on EPT: one object per VM owning a root per address
/// space (each with its EPTP), the MMU lock, the TLB of the VM's EPT
/// contexts, the per-memslot dirty logs and the NX-huge-page split list.
///
/// ## Paths
/// - ``handleFault(_:vcpu:)-(GuestPageFault,_)``: the page fault under the **shared** lock;
///   every entry change a compare-and-exchange (rules 1–2 of Docs/concurrency.md).
/// - ``fastPageFault(_:vcpu:)``: no lock; one exchange restores write or
///   access on a leaf that lost it only for dirty logging or access tracking.
/// - zaps (``zap(_:addressSpace:)``, ``invalidateAllRoots()``,
///   ``teardown()``), the mmu-notifier listener, dirty logging, aging and
///   huge-page recovery: see their files.
///
/// ## Locking contract
/// ``lock`` is the MMU lock. Faults take it shared; zaps, protection passes
/// and recovery take it exclusively and yield it on long ranges. Fast page
/// faults and aging take no lock and walk inside a reclaimer read section;
/// because they exist, every table page this MMU unlinks is retired through
/// the reclaimer after its flush, even under the exclusive lock.
///
/// ## TLB contract
/// ``tlb`` stands for every EPT context of the VM. Every operation that
/// removes or reduces a translation has invalidated it before it returns and
/// before it drops the exclusive lock (rule 3); a notifier `start` returns
/// only after its flush.
///
/// Tables built here do not keep the core's live-entry counts; use this
/// object's operations, not `PageTable.unmap`, on them.
// @unchecked Sendable: immutable configuration plus Atomics (roots), the
// lock-protected lists (`listLock`), and classes that are Sendable.
public final class ExtendedPageTableMMU<Memory: TableMemory, T: TLB>: @unchecked Sendable {
    /// The EPT format (levels, A/D flags, MBEC).
    public let format: ExtendedPageTableFormat
    /// Where table pages come from.
    public let memory: Memory
    /// The translation caches of the VM's EPT contexts.
    public let tlb: T
    /// The memslots and host pages faults resolve through.
    public let guestMemory: GuestMemory
    /// ``guestMemory``'s invalidation tracker, held directly for the fault path.
    public let tracker: InvalidationTracker
    /// The MMU lock: shared for faults (each vCPU through its own reader
    /// slot, `PageTableContext/readerSlot`, whose word also announces the
    /// fault's ``reclaimer`` read section), exclusive for zaps and passes.
    public let lock: PerSlotReaderWriterLock
    /// Options.
    public let configuration: MMUConfiguration
    /// Grace-period reclamation shared by every root.
    public let reclaimer: EpochReclaimer<Memory>
    /// Entry-level helpers (split, link, detach); its root is the first
    /// root ever allocated and is not used by this object's walks.
    @usableFromInline let helpers: PageTable<ExtendedPageTableFormat, Memory>
    /// The current root of each address space (physical address).
    @usableFromInline let roots: UnsafeMutablePointer<Atomic<UInt64>>
    /// Per-reader-slot memos of the last memslot and host run resolved
    /// (``ResolveCacheEntry``), ``resolveCacheStride`` bytes apart.
    @usableFromInline let resolveCaches: UnsafeMutableRawPointer
    /// Per-memslot dirty logs.
    @usableFromInline let dirtyLogs: DirtyLogRegistry
    /// Bumped before any table page is retired or freed; vCPUs' leaf-table
    /// memos (``LeafTableMemo``) are valid only while it has not moved.
    @usableFromInline let tableUnlinks = Atomic<UInt64>(0)
    /// Number of memslots with dirty logging on (a fast check for zaps).
    @usableFromInline let dirtyLoggingSlots = Atomic<Int>(0)
    /// Set, once and for good, by the first ``clearYoung(_:context:)`` that
    /// may make a leaf access-tracked (A/D flags off). Until then a fault
    /// on a not-present entry cannot be one the fast page fault fixes, and
    /// ``handleFault(_:vcpu:)-(GuestPageFault,_)`` does not try it. Read-mostly: never written
    /// by a fault.
    @usableFromInline let accessTrackingUsed = Atomic<Bool>(false)
    @usableFromInline let listLock = SpinLock()
    /// NX-huge-page splits to recover: (address space, block address, level).
    @usableFromInline var nxSplits: [NXHugePageSplit] = []
    /// Roots replaced by ``invalidateAllRoots()`` and not yet freed
    /// (protected by `listLock`; changed under the exclusive MMU lock only).
    @usableFromInline var invalidatedRoots: [InvalidatedRoot] = []
    /// The root generation: advanced by ``invalidateAllRoots()`` under the
    /// exclusive lock; ``tornDownGeneration`` after ``teardown()`` (the one
    /// record of the torn-down state, see ``isTornDown``).
    @usableFromInline let rootGeneration = Atomic<UInt64>(1)
    /// Per reader slot, the root generation whose EPTPs the vCPU loaded
    /// (0: none yet). See RootLifetime.swift.
    @usableFromInline let loadedGenerations: UnsafeMutablePointer<Atomic<UInt64>>
    /// The notifier registration (protected by `listLock`).
    var notifierToken: ListenerToken?
    #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
    /// Set by a ``teardown()`` under the explorer's
    /// ``ExplorationMutation/teardownFreesRootsUnderNotifier``, which freed
    /// the root pages itself (deinit then leaves them alone).
    let rootsFreedByTeardown = Atomic<Bool>(false)
    #endif

    /// An MMU with an empty root per address space, registered on
    /// `guestMemory`'s notifier (until ``teardown()``).
    ///
    /// - Throws: `SLATError/unsupportedGranule(_:)`,
    ///   `SLATError/readerSlotOutOfRange(_:slots:)` for no reader slot,
    ///   `SLATError/unsupportedAddressSpaceCount(_:supported:)` for an
    ///   address-space count other than 1 or 2,
    ///   `SLATError/unsupportedLevel(_:)` for a maximum leaf level outside 0...2,
    ///   `SLATError/outOfTableMemory(needed:available:)`.
    public init(
        format: ExtendedPageTableFormat, memory: Memory, tlb: T, guestMemory: GuestMemory,
        configuration: MMUConfiguration = MMUConfiguration()
    ) throws(SLATError) {
        guard configuration.addressSpaceCount == 1 || configuration.addressSpaceCount == 2 else {
            throw .unsupportedAddressSpaceCount(configuration.addressSpaceCount, supported: 2)
        }
        guard (0...2).contains(configuration.maximumLeafLevel) else { throw .unsupportedLevel(configuration.maximumLeafLevel) }
        let first = try PageTable(format: format, memory: memory, readerSlots: configuration.readerSlots)
        var allocated = [first.root]
        while allocated.count < configuration.addressSpaceCount {
            do {
                allocated.append(try memory.allocatePage())
            } catch {
                for page in allocated { memory.freePage(page) }
                throw error
            }
        }
        self.format = format
        self.memory = memory
        self.tlb = tlb
        self.guestMemory = guestMemory
        self.tracker = guestMemory.invalidations
        // One word per vCPU stands for both its shared hold and its read section.
        self.lock = PerSlotReaderWriterLock(readerSlotWords: first.reclaimer.readerSlotWords)
        self.configuration = configuration
        self.reclaimer = first.reclaimer
        self.helpers = first
        self.roots = .allocate(capacity: allocated.count)
        for (index, root) in allocated.enumerated() { (roots + index).initialize(to: Atomic(root.rawValue)) }
        self.loadedGenerations = .allocate(capacity: configuration.readerSlots)
        for slot in 0..<configuration.readerSlots { (loadedGenerations + slot).initialize(to: Atomic(0)) }
        self.dirtyLogs = DirtyLogRegistry()
        let stride = Self.resolveCacheStride
        self.resolveCaches = .allocate(byteCount: stride * configuration.readerSlots, alignment: 128)
        for slot in 0..<configuration.readerSlots {
            (resolveCaches + slot * stride).initializeMemory(as: ResolveCacheEntry.self, repeating: ResolveCacheEntry(), count: 1)
        }
        self.notifierToken = guestMemory.addListener { [self] event in self.handleInvalidation(event) }
    }

    deinit {
        // Torn down (the listener held this object until then): the emptied
        // root pages go now, when nothing can walk them any more.
        if isTornDown && !rootsFreedByTeardownMutation {
            for space in 0..<configuration.addressSpaceCount { memory.freePage(rootAddress(space)) }
        }
        loadedGenerations.deinitialize(count: configuration.readerSlots)
        loadedGenerations.deallocate()
        roots.deinitialize(count: configuration.addressSpaceCount)
        roots.deallocate()
        for slot in 0..<configuration.readerSlots {
            (resolveCaches + slot * Self.resolveCacheStride).assumingMemoryBound(to: ResolveCacheEntry.self).deinitialize(count: 1)
        }
        resolveCaches.deallocate()
    }

    /// The current root of `addressSpace`.
    ///
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`, `SLATError/tornDown`.
    @inlinable
    public func root(addressSpace: Int = 0) throws(SLATError) -> HostPhysicalAddress {
        try checkAddressSpace(addressSpace)
        try checkNotTornDown()
        return rootAddress(addressSpace)
    }

    /// The current root of `addressSpace`, unchecked: for SLAT's walks,
    /// which pass only address spaces they checked or counted. After
    /// ``teardown()`` it is the emptied root page.
    @inlinable
    package func rootAddress(_ addressSpace: Int) -> HostPhysicalAddress {
        HostPhysicalAddress(roots[addressSpace].load(ordering: .acquiring))
    }

    /// The EPTP a vCPU loads for `addressSpace` (write-back tables). A vCPU
    /// loads it through ``reloadRoot(_:addressSpace:)``, which also records
    /// which roots it uses.
    ///
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`, `SLATError/tornDown`.
    public func pointer(addressSpace: Int = 0) throws(SLATError) -> ExtendedPageTablePointer {
        // The root comes from this MMU's memory, which the format accepted
        // when it allocated it: aligned and in range.
        try ExtendedPageTablePointer(format: format, root: root(addressSpace: addressSpace))
    }

    /// A core page-table view of `addressSpace`'s current root (for
    /// translation, enumeration and tests). Sharing the MMU's reclaimer.
    ///
    /// - Throws: `SLATError/addressSpaceOutOfRange(_:count:)`, `SLATError/tornDown`.
    public func table(addressSpace: Int = 0) throws(SLATError) -> PageTable<ExtendedPageTableFormat, Memory> {
        PageTable(format: format, memory: memory, root: try root(addressSpace: addressSpace), reclaimer: reclaimer)
    }

    /// Table pages a fault may need at most: one per level below the root,
    /// plus one for a split on the way.
    @inlinable
    public var faultPageBudget: Int { format.rootLevel + 1 }

    /// Tops up `vcpu`'s page cache to ``faultPageBudget``, outside the lock.
    ///
    /// - Throws: `SLATError/outOfTableMemory(needed:available:)`; the
    ///   cache is then as it was.
    @inlinable
    public func topUp(_ vcpu: PageTableContext) throws(SLATError) {
        if vcpu.cachedPageCount < faultPageBudget {
            try vcpu.pageCache.topUp(from: memory, toAtLeast: faultPageBudget)
        }
    }

    /// Settles `batch`: issues the invalidations, then retires its pages
    /// through the reclaimer (lockless walkers may still read them).
    /// Pages in the batch were unlinked: bumps ``tableUnlinks`` before they
    /// are retired.
    @inlinable
    func settle(_ batch: consuming TLBFlushBatch) {
        if batch.pendingPageCount > 0 { noteTablesUnlinked() }
        helpers.settle(batch, tlb: tlb, mode: .shared)
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/faultIgnoresInvalidationRetry`` (hosted debug
    /// builds only).
    @inlinable
    static var ignoresInvalidationRetry: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.faultIgnoresInvalidationRetry)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/removedDirtyLeafNotHarvested`` (hosted debug
    /// builds only).
    @inlinable
    static var dropsRemovedDirtyBits: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.removedDirtyLeafNotHarvested)
        #else
        false
        #endif
    }

    #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
    /// Both false except under the explorer's
    /// ``ExplorationMutation/zapDecidesHarvestAtStart`` (then removed
    /// leaves skip the harvest when no log existed at the zap's start) and
    /// ``ExplorationMutation/notifierZapsCurrentRootsOnly``, and
    /// `plainStore` under ``ExplorationMutation/zapStoresOverVolatileLeaf``
    /// (hosted debug builds only; other builds use constants in the zap).
    @inlinable
    static func zapMutation(harvestingAtStart: Bool) -> (skipsHarvest: Bool, currentRootsOnly: Bool, plainStore: Bool) {
        (ExplorationHooks.isActive(.zapDecidesHarvestAtStart) && !harvestingAtStart,
         ExplorationHooks.isActive(.notifierZapsCurrentRootsOnly),
         ExplorationHooks.isActive(.zapStoresOverVolatileLeaf))
    }
    #endif

    /// False except under the explorer's
    /// ``ExplorationMutation/retiredSubtreeNotHarvested`` or
    /// ``ExplorationMutation/nxRecoveryDropsDirtyBits`` (hosted debug
    /// builds only).
    @inlinable
    static var skipsSubtreeHarvest: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.retiredSubtreeNotHarvested) || ExplorationHooks.isActive(.nxRecoveryDropsDirtyBits)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/nxRecoveryDropsDirtyBits`` (hosted debug
    /// builds only).
    @inlinable
    static var nxRecoveryDropsDirtyBits: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.nxRecoveryDropsDirtyBits)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/removedMemslotKeepsDirtyLog`` (hosted debug
    /// builds only).
    @inlinable
    static var removedMemslotKeepsDirtyLog: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.removedMemslotKeepsDirtyLog)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/manualClearSkipsReprotection`` (hosted debug
    /// builds only).
    @inlinable
    static var manualClearSkipsReprotection: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.manualClearSkipsReprotection)
        #else
        false
        #endif
    }

    /// False except under the explorer's
    /// ``ExplorationMutation/teardownFreesRootsUnderNotifier`` (hosted
    /// debug builds only): the notifier's zap then skips its torn-down check.
    static var notifierSkipsTornDownCheck: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        ExplorationHooks.isActive(.teardownFreesRootsUnderNotifier)
        #else
        false
        #endif
    }

    /// Whether a ``teardown()`` under the explorer's
    /// ``ExplorationMutation/teardownFreesRootsUnderNotifier`` freed the
    /// root pages already (always false outside hosted debug builds).
    var rootsFreedByTeardownMutation: Bool {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        rootsFreedByTeardown.load(ordering: .acquiring)
        #else
        false
        #endif
    }

    /// Invalidates every vCPU's ``LeafTableMemo``; call it after unlinking
    /// table pages and before retiring or freeing them.
    @inlinable
    func noteTablesUnlinked() {
        tableUnlinks.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }
}

/// One NX-huge-page split waiting for recovery.
@frozen
public struct NXHugePageSplit: Sendable, Hashable {
    /// Address space of the root holding it.
    public var addressSpace: Int
    /// First guest address of the table entry that would have been the huge leaf.
    public var address: GuestPhysicalAddress
    /// Height of that entry.
    public var level: Int

    @inlinable
    public init(addressSpace: Int, address: GuestPhysicalAddress, level: Int) {
        self.addressSpace = addressSpace
        self.address = address
        self.level = level
    }
}
