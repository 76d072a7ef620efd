import SLATArm64
import SLATCore
import SLATSim

/// A stage-2 VM put under a ``ControlledScheduler``: the MMU's table memory,
/// TLB and lock are the scheduled wrappers, so every walk level, live-entry
/// count, allocation, free, invalidation and lock operation is a point
/// where another thread may run. The hardware walker reads the arena
/// directly: a vCPU access is one scheduled step. Built on the test's own
/// thread, before the scenario's threads start.
// @unchecked Sendable: used by one logical thread of the scheduler at a
// time, and by the building thread only before and after them.
final class StageTwoExplorationVM: @unchecked Sendable {
    typealias Memory = SimulatedTableMemory<ScheduledTableMemory<TableArena>>
    typealias ScheduledContextTLB = ScheduledTLB<SimulatedContextTLB>
    typealias Lock = ScheduledReaderWriterLock<SpinningReaderWriterLock>
    typealias MMU = StageTwoPageTable<Memory, ScheduledContextTLB, CountingCacheMaintenance>

    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase: UInt64 = 0x20_0000_0000
    static let hostVirtualBase: UInt64 = 0x7F00_0000_0000
    static let page: UInt64 = 0x1000

    let scheduler: ControlledScheduler
    let format: StageTwoFormat
    let arena: TableArena
    let scheduledMemory: ScheduledTableMemory<TableArena>
    let log = SimulationLog()
    let simulatedTLB: SimulatedContextTLB
    let mmu: MMU
    let walker: HardwareWalker<StageTwoFormat, TableArena>
    let guestMemory = GuestMemory()
    let lock: Lock
    let handler: StageTwoFaultHandler<Memory, ScheduledContextTLB, CountingCacheMaintenance, Lock>
    /// One context per vCPU, then one per host-side thread.
    let contexts: [PageTableContext]
    let guestRange: GuestPhysicalRange
    /// Steps' own findings (a vCPU access that never completed, ...).
    var findings: [String] = []
    /// The guest-memory notifier binding (zaps on memslot and host changes).
    var binding: StageTwoNotifierBinding<Memory, ScheduledContextTLB, CountingCacheMaintenance, Lock>?
    /// Set once the memslot's removal returned.
    var memslotRemoved = false
    /// Pages whose access ended as an MMIO exit (no memslot, or a write to
    /// a read-only memslot).
    var mmioExits: Set<UInt64> = []
    /// Set once the memslot was made read-only.
    var memslotReadOnly = false
    /// Set once ``addSecondMemslot(pages:)`` returned.
    var secondMemslotAdded = false
    /// Called with the page and vCPU right before each hardware attempt of an
    /// access (the attempt that translates is the access itself).
    var beforeHardwareAccess: ((_ page: UInt64, _ vcpu: Int) -> Void)?

    /// A VM with `vcpus` vCPUs (and `hostThreads` more contexts) and one
    /// 2 MiB memslot backed by host memory mapped with `hostMappingSize`.
    init(_ scheduler: ControlledScheduler, vcpus: Int = 2, hostThreads: Int = 1,
         hostMappingSize: HostMappingSize = .size2M) throws {
        self.scheduler = scheduler
        format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        arena = try TableArena(pageCount: 64, prefault: false)
        scheduledMemory = ScheduledTableMemory(wrapping: arena, scheduler: scheduler, poison: format.frozenEntry)
        simulatedTLB = SimulatedContextTLB(format: format, vcpuCount: vcpus, context: 5, log: log)
        let memory = SimulatedTableMemory(wrapping: scheduledMemory, watching: [simulatedTLB])
        mmu = try StageTwoPageTable(format: format, memory: memory,
                                    tlb: ScheduledTLB(wrapping: simulatedTLB, scheduler: scheduler),
                                    caches: CountingCacheMaintenance(), vmid: 5, readerSlots: vcpus + hostThreads + 1)
        walker = HardwareWalker(format: mmu.format, memory: arena, root: mmu.table.root)
        simulatedTLB.attach(walker)
        let size: UInt64 = 2 << 20
        let hva = HostVirtualAddress(Self.hostVirtualBase)
        try guestMemory.hostPages.map(hva, to: HostPhysicalAddress(Self.hostBase).frame, size: hostMappingSize,
                                      count: size >> hostMappingSize.shift)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(Self.guestBase).frame,
                                           pageCount: size >> frameShift, hostAddress: hva))
        lock = ScheduledReaderWriterLock(wrapping: SpinningReaderWriterLock(), scheduler: scheduler)
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
        contexts = (0..<(vcpus + hostThreads)).map { PageTableContext(readerSlot: $0) }
        guestRange = GuestPhysicalRange(start: GuestPhysicalAddress(Self.guestBase), size: size)
    }

    /// Binds the MMU to guest-memory events (memslot removal, host
    /// changes), as `StageTwoMMU` does, with its own reader slot.
    func bindNotifier() {
        binding = StageTwoNotifierBinding(pageTable: mmu, guestMemory: guestMemory, lock: lock,
                                          readerSlot: contexts.count)
    }

    /// Removes the memslot (the bound notifier zaps its range).
    func removeMemslot() throws {
        scheduler.yield(at: .memslot)
        _ = try guestMemory.removeMemslot(id: 1)
        memslotRemoved = true
    }

    /// Makes memslot 1 read-only (the bound notifier zaps its range).
    func makeMemslotReadOnly() throws {
        scheduler.yield(at: .memslot)
        try guestMemory.updateMemslotFlags(id: 1, inserting: .readOnly)
        memslotReadOnly = true
    }

    /// Maps the host pages memslot 2 will use, 4 KiB each, right after
    /// memslot 1's (before the scenario's threads).
    func mapSecondMemslotHostPages(pages: UInt64) throws {
        try guestMemory.hostPages.map(HostVirtualAddress(Self.hostVirtualBase + guestRange.size),
                                      to: HostPhysicalAddress(Self.hostBase + guestRange.size).frame,
                                      size: .size4K, count: pages)
    }

    /// Adds memslot 2: `pages` pages right after memslot 1 (page 512 on),
    /// backed by the host pages ``mapSecondMemslotHostPages(pages:)`` mapped.
    func addSecondMemslot(pages: UInt64) throws {
        scheduler.yield(at: .memslot)
        try guestMemory.addMemslot(Memslot(id: 2, baseFrame: GuestPhysicalAddress(Self.guestBase + guestRange.size).frame,
                                           pageCount: pages,
                                           hostAddress: HostVirtualAddress(Self.hostVirtualBase + guestRange.size)))
        secondMemslotAdded = true
    }

    func address(page index: UInt64) -> GuestPhysicalAddress {
        GuestPhysicalAddress(Self.guestBase + index * Self.page)
    }

    func output(page index: UInt64) -> HostPhysicalAddress {
        HostPhysicalAddress(Self.hostBase + index * Self.page)
    }

    /// Maps pages `pages` of the memslot by 4 KiB leaves under the exclusive
    /// lock (read-write unless `permissions` says otherwise).
    func mapPages(_ pages: Range<UInt64>, permissions: Permissions = .readWrite, context: Int) throws {
        let range = GuestPhysicalRange(start: address(page: pages.lowerBound), size: UInt64(pages.count) * Self.page)
        try lock.withExclusive { () throws(SLATError) in
            _ = try mmu.map(range, to: output(page: pages.lowerBound), attributes: LeafAttributes(permissions: permissions),
                            maximumLevel: 0, context: contexts[context])
        }
    }

    /// One guest access of `vcpu` to page `index`, run to completion: each
    /// attempt is one hardware step; each fault goes to the fault handler.
    /// Returns a failure when the access translates to the wrong page or
    /// does not complete within `attempts`.
    func access(page index: UInt64, _ kind: AccessKind, vcpu: Int, attempts: Int = 100) -> String? {
        let address = address(page: index)
        for _ in 0..<attempts {
            scheduler.yield(at: .hardwareAccess)
            beforeHardwareAccess?(index, vcpu)
            let removedBeforeAccess = memslotRemoved
            let readOnlyBeforeAccess = memslotReadOnly
            let addedBeforeAccess = secondMemslotAdded
            switch walker.access(address, kind, through: simulatedTLB.vcpu(vcpu)) {
            case .translated(let output, _):
                if removedBeforeAccess { return "vCPU \(vcpu) reached \(output) for \(address) after its memslot's removal returned" }
                if readOnlyBeforeAccess && kind == .write {
                    return "vCPU \(vcpu) wrote \(address) after its memslot was made read-only"
                }
                return output == self.output(page: index)
                    ? nil : "vCPU \(vcpu) reached \(output) for \(address), expected \(self.output(page: index))"
            case .violation(let violation):
                let access: StageTwoAccess = switch violation.access {
                case .read: .read
                case .write: .write
                case .executePrivileged, .executeUser: .execute
                }
                do {
                    let kind: StageTwoAbortKind? = switch violation.kind {
                    case .notPresent: .translation
                    case .permission: .permission
                    case .accessFlag: .accessFlag
                    default: nil
                    }
                    let outcome = try handler.handle(StageTwoFault(address: violation.address, access: access, kind: kind),
                                                     context: contexts[vcpu])
                    // A retry waits for another thread (a locked entry, a
                    // racing fault): let it run before the next attempt.
                    if outcome.isRetry { scheduler.yield(at: .spin) }
                } catch SLATError.noMemslot {
                    // No memslot (removed, or not added yet): an MMIO exit
                    // the VMM emulates, unless the memslot was there before.
                    if addedBeforeAccess && index >= 512 {
                        return "vCPU \(vcpu)'s access to \(address) found no memslot after it was added"
                    }
                    mmioExits.insert(index)
                    return nil
                } catch SLATError.readOnlyMemslot {
                    // A write to a read-only memslot: an exit the VMM emulates.
                    mmioExits.insert(index)
                    return nil
                } catch {
                    return "vCPU \(vcpu)'s fault at \(address) threw \(error)"
                }
            }
        }
        return "vCPU \(vcpu)'s \(kind) of \(address) never completed (\(attempts) attempts)"
    }

    /// What a sequential order of the operations decides about the tables
    /// (SLATSim's `translationSummary(of:in:)`): each page's output and
    /// permissions over memslot 1 and the memslot 2 added after it.
    func tableSummary() -> String {
        translationSummary(of: mmu.table, in: GuestPhysicalRange(start: guestRange.start, size: 2 * guestRange.size))
    }

    /// The oracles at the end of an execution, the scenario's threads all
    /// done: the TLB detectors at a quiescent point, the scheduled memory's
    /// accounting (no double free, no read of a freed page), every table
    /// page reachable, cached in a context or freed (after the reclaimer's
    /// grace periods), and every leaf mapping its own host page.
    func check() -> String? {
        simulatedTLB.verifyCoherence()
        if !log.isEmpty { return "simulated TLB: \(log.summary)" }
        if let violation = scheduledMemory.violations.first { return violation }
        mmu.table.reclaimer.synchronize()
        let reachable = Set(mmu.table.reachableTablePages())
        let cached = contexts.reduce(0) { $0 + $1.cachedPageCount }
        let live = scheduledMemory.livePages
        if !reachable.isSubset(of: live) { return "a reachable table page was freed" }
        if live.count != reachable.count + cached {
            return "table pages leaked: \(live.count) live, \(reachable.count) reachable, \(cached) cached"
        }
        for leaf in mmu.table.leaves(in: guestRange) {
            if memslotRemoved { return "leaf at \(leaf.guestAddress) left after the memslot was removed" }
            if memslotReadOnly && leaf.attributes.permissions.contains(.write) {
                return "leaf at \(leaf.guestAddress) still writable after the memslot was made read-only"
            }
            let expected = Self.hostBase + (leaf.guestAddress.rawValue - Self.guestBase)
            if leaf.output.rawValue != expected { return "leaf at \(leaf.guestAddress) maps \(leaf.output), expected \(expected)" }
        }
        return nil
    }
}
