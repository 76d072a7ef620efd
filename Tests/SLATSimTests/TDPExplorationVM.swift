import SLATCore
import SLATSim
import SLATx86

/// An x86 TDP MMU (`ExtendedPageTableMMU`) put under a
/// ``ControlledScheduler``: its table memory and TLB are the scheduled
/// wrappers, and its own MMU lock, reclaimer and spin-waits report to the
/// scheduler through SLATCore's exploration hooks. The hardware walker
/// reads the arena directly (a vCPU access is one scheduled step). One
/// memslot of `frames` 4 KiB guest frames at `baseFrame`, backed by 4 KiB
/// host pages.
// @unchecked Sendable: used by one logical thread of the scheduler at a
// time, and by the building thread only before and after them.
final class TDPExplorationVM: @unchecked Sendable {
    typealias Memory = SimulatedTableMemory<ScheduledTableMemory<TableArena>>
    typealias MMU = ExtendedPageTableMMU<Memory, ScheduledTLB<SimulatedContextTLB>>

    static let baseFrame: UInt64 = 0x10_0000
    static let hostFrameBase: UInt64 = 0x40_0000
    static let remappedFrameBase: UInt64 = 0x80_0000
    static let hostBase = HostVirtualAddress(0x7F00_0000_0000)

    let scheduler: ControlledScheduler
    let format: ExtendedPageTableFormat
    let arena: TableArena
    let scheduledMemory: ScheduledTableMemory<TableArena>
    let log = SimulationLog()
    let simulatedTLB: SimulatedContextTLB
    let guestMemory = GuestMemory()
    let mmu: MMU
    /// The root the MMU started with.
    let firstRoot: HostPhysicalAddress
    /// Each vCPU's walker, on the root it loaded.
    var walkers: [HardwareWalker<ExtendedPageTableFormat, TableArena>]
    let contexts: [PageTableContext]
    let frames: UInt64
    /// Guest frames (slot-relative) whose host page was remapped, and
    /// whether the remap had returned.
    var remapped: [UInt64: Bool] = [:]
    /// Set once ``teardown()`` returned: vCPUs stop running.
    var tornDown = false
    /// Frames whose access ended as an MMIO exit (no memslot).
    var mmioExits: Set<UInt64> = []
    /// Set once the memslot's removal returned.
    var memslotRemoved = false
    /// Set once the memslot was made read-only.
    var memslotReadOnly = false
    /// Set once ``addSecondMemslot()`` returned.
    var secondMemslotAdded = false
    /// Called with the frame and vCPU right before each hardware attempt of an
    /// access (the attempt that translates is the access itself).
    var beforeHardwareAccess: ((_ page: UInt64, _ vcpu: Int) -> Void)?

    /// A VM of `frames` guest frames; with `hugeBacking` the host maps
    /// them with 2 MiB pages (`frames` a multiple of 512), so faults may
    /// map 2 MiB leaves; `nxHugePages` turns on the iTLB-multihit policy
    /// (an instruction fetch splits a huge leaf).
    init(_ scheduler: ControlledScheduler, frames: UInt64 = 16, vcpus: Int = 2, yieldInterval: Int = 2,
         hugeBacking: Bool = false, nxHugePages: Bool = false) throws {
        self.scheduler = scheduler
        self.frames = frames
        format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        arena = try TableArena(pageCount: 64, prefault: false)
        scheduledMemory = ScheduledTableMemory(wrapping: arena, scheduler: scheduler, poison: format.frozenEntry)
        simulatedTLB = SimulatedContextTLB(format: format, vcpuCount: vcpus, log: log)
        let memory = SimulatedTableMemory(wrapping: scheduledMemory, watching: [simulatedTLB])
        if hugeBacking {
            try guestMemory.hostPages.map(Self.hostBase, to: HostFrameNumber(Self.hostFrameBase), size: .size2M,
                                          count: frames / 512)
        } else {
            try guestMemory.hostPages.map(Self.hostBase, to: HostFrameNumber(Self.hostFrameBase), size: .size4K,
                                          count: frames)
        }
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(Self.baseFrame), pageCount: frames,
                                           hostAddress: Self.hostBase))
        mmu = try MMU(format: format, memory: memory, tlb: ScheduledTLB(wrapping: simulatedTLB, scheduler: scheduler),
                      guestMemory: guestMemory,
                      configuration: MMUConfiguration(readerSlots: vcpus + 2, nxHugePages: nxHugePages,
                                                      yieldInterval: yieldInterval))
        let root = try mmu.root()
        firstRoot = root
        walkers = Array(repeating: HardwareWalker(format: format, memory: arena, root: root), count: vcpus)
        // Each cached entry is judged against the root it was walked from.
        let format = format, arena = arena
        simulatedTLB.attachPerRoot { root in HardwareWalker(format: format, memory: arena, root: root) }
        contexts = (0..<(vcpus + 2)).map { PageTableContext(readerSlot: $0) }
    }

    deinit { mmu.teardown() }

    func address(_ index: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress((Self.baseFrame + index) << 12) }
    func hostAddress(_ index: UInt64, remapped: Bool = false) -> HostPhysicalAddress {
        HostPhysicalAddress(((remapped ? Self.remappedFrameBase : Self.hostFrameBase) + index) << 12)
    }
    var slotFrames: GuestFrameRange { GuestFrameRange(start: GuestFrameNumber(Self.baseFrame), count: frames) }

    /// One guest access of `vcpu` to frame `index`, to completion (each
    /// attempt one hardware step, each fault to `handleFault`, a retry lets
    /// other threads run first). Fails when the access does not complete,
    /// or reaches a host page other than the current one — in particular
    /// the old page after the notifier for its remap returned.
    func access(_ index: UInt64, _ kind: AccessKind, vcpu: Int, attempts: Int = 100) -> String? {
        if tornDown { return nil }
        let address = address(index)
        for _ in 0..<attempts {
            // The VMM's check before VM entry; the entry itself is the next step.
            do {
                if try mmu.isRootReloadRequested(contexts[vcpu]) {
                    let pointer = try mmu.reloadRoot(contexts[vcpu])
                    walkers[vcpu] = HardwareWalker(format: format, memory: arena, root: pointer.rootAddress)
                }
            } catch SLATError.tornDown {
                return nil
            } catch {
                return "vCPU \(vcpu)'s root reload threw \(error)"
            }
            scheduler.yield(at: .hardwareAccess)
            beforeHardwareAccess?(index, vcpu)
            let remapReturned = remapped[index] == true
            let removedBeforeAccess = memslotRemoved
            let readOnlyBeforeAccess = memslotReadOnly
            let addedBeforeAccess = secondMemslotAdded
            switch walkers[vcpu].access(address, kind, through: simulatedTLB.vcpu(vcpu)) {
            case .translated(let output, _):
                if removedBeforeAccess {
                    return "vCPU \(vcpu) reached \(output) for frame \(index) after its memslot's removal returned"
                }
                if readOnlyBeforeAccess && kind == .write {
                    return "vCPU \(vcpu) wrote frame \(index) after its memslot was made read-only"
                }
                if output == hostAddress(index, remapped: true) { return nil }
                if output == hostAddress(index) {
                    return remapReturned ? "vCPU \(vcpu) reached the old host page of frame \(index) after its remap returned" : nil
                }
                return "vCPU \(vcpu) reached \(output) for frame \(index)"
            case .violation(let violation):
                let fault = GuestPageFault(address: address, access: Self.guestAccess(kind),
                                           isPermissionFault: violation.kind == .permission)
                do {
                    let outcome = try mmu.handleFault(fault, vcpu: contexts[vcpu])
                    if case .retry = outcome { scheduler.yield(at: .spin) }
                } catch SLATError.tornDown {
                    // The VM is going away: the vCPU stops (KVM's vCPU exits).
                    return nil
                } catch SLATError.noMemslot {
                    // No memslot (removed, or not added yet): an MMIO exit
                    // the VMM emulates, unless the memslot was there before.
                    if addedBeforeAccess { return "vCPU \(vcpu)'s access to frame \(index) found no memslot after it was added" }
                    mmioExits.insert(index)
                    return nil
                } catch SLATError.readOnlyMemslot {
                    // A write to a read-only memslot: an exit the VMM emulates.
                    mmioExits.insert(index)
                    return nil
                } catch {
                    return "vCPU \(vcpu)'s fault at frame \(index) threw \(error)"
                }
            }
        }
        return "vCPU \(vcpu)'s \(kind) of frame \(index) never completed (\(attempts) attempts)"
    }

    /// The host moves frame `index` to another host page: notifier start
    /// (the MMU zaps it), the new mapping, notifier end.
    func remap(_ index: UInt64) throws {
        scheduler.yield(at: .notifier)
        remapped[index] = false
        try guestMemory.hostPages.remap(HostVirtualRange(start: Self.hostBase.advanced(by: index << 12), size: 4096),
                                        to: HostFrameNumber(Self.remappedFrameBase + index))
        remapped[index] = true
    }

    /// Removes the memslot (the MMU zaps its frames).
    func removeMemslot() throws {
        scheduler.yield(at: .memslot)
        _ = try guestMemory.removeMemslot(id: 1)
        memslotRemoved = true
    }

    /// Adds memslot 2: `count` frames right after memslot 1, backed by the
    /// host pages that follow its own (mapped by ``mapSecondMemslotHostPages(count:)``).
    func addSecondMemslot(count: UInt64) throws {
        scheduler.yield(at: .memslot)
        try guestMemory.addMemslot(Memslot(id: 2, baseFrame: GuestFrameNumber(Self.baseFrame + frames), pageCount: count,
                                           hostAddress: Self.hostBase.advanced(by: frames << 12)))
        secondMemslotAdded = true
    }

    /// Maps the host pages memslot 2 will use (before the scenario's threads).
    func mapSecondMemslotHostPages(count: UInt64) throws {
        try guestMemory.hostPages.map(Self.hostBase.advanced(by: frames << 12),
                                      to: HostFrameNumber(Self.hostFrameBase + frames), size: .size4K, count: count)
    }

    /// Makes the memslot read-only (the MMU write-protects its frames).
    func makeMemslotReadOnly() throws {
        scheduler.yield(at: .memslot)
        try guestMemory.updateMemslotFlags(id: 1, inserting: .readOnly)
        memslotReadOnly = true
    }

    /// Tears the MMU down (the VM is destroyed while the host and vCPUs
    /// may still be running).
    func teardown() {
        scheduler.yield(at: .custom("teardown"))
        mmu.teardown()
        tornDown = true
    }

    /// The oracles after a teardown: the TLB detectors, page accounting (no
    /// double free, no read of a freed page), and after the grace periods
    /// nothing live but the contexts' cached pages and the emptied root
    /// (kept until the MMU goes; a teardown that freed it is judged by the
    /// read-after-free and double-free checks, not by this count).
    func checkTornDown() -> String? {
        simulatedTLB.verifyCoherence()
        if !log.isEmpty { return "simulated TLB: \(log.summary)" }
        if let violation = scheduledMemory.violations.first { return violation }
        if !mmu.isTornDown { return "teardown returned but the MMU is not torn down" }
        mmu.reclaimer.synchronize()
        let cached = contexts.reduce(0) { $0 + $1.cachedPageCount }
        let live = scheduledMemory.livePages.count
        let root = scheduledMemory.livePages.contains(firstRoot) ? 1 : 0
        if live != root + cached { return "after teardown \(live) table pages live, expected \(root) root and \(cached) cached" }
        return nil
    }

    /// What a sequential order of the operations decides about the tables
    /// (SLATSim's `translationSummary(of:in:)` over the memslot's frames).
    func tableSummary() -> String {
        guard let table = try? mmu.table() else { return "torn down" }
        return translationSummary(of: table, in: slotFrames.physicalRange)
    }

    static func guestAccess(_ kind: AccessKind) -> GuestAccess {
        switch kind {
        case .read: .read
        case .write: .write
        case .executePrivileged: .execute
        case .executeUser: .userExecute
        }
    }

    /// The oracles at the end: TLB detectors at a quiescent point, page
    /// accounting (no double free, no read of a freed page; after the grace
    /// periods every live table page reachable or cached in a context),
    /// and every leaf mapping the current host page of its frame.
    func check() -> String? {
        simulatedTLB.verifyCoherence()
        if !log.isEmpty { return "simulated TLB: \(log.summary)" }
        if let violation = scheduledMemory.violations.first { return violation }
        // Every vCPU reloads before its next entry; replaced roots then go.
        for vcpu in walkers.indices where (try? mmu.isRootReloadRequested(contexts[vcpu])) == true {
            guard let pointer = try? mmu.reloadRoot(contexts[vcpu]) else { return "vCPU \(vcpu) could not reload" }
            walkers[vcpu] = HardwareWalker(format: format, memory: arena, root: pointer.rootAddress)
        }
        do { try mmu.zapInvalidatedRoots() } catch { return "zapInvalidatedRoots threw \(error)" }
        if let violation = scheduledMemory.violations.first { return violation }
        mmu.reclaimer.synchronize()
        guard let table = try? mmu.table() else { return "MMU torn down" }
        let reachable = Set(table.reachableTablePages())
        let cached = contexts.reduce(0) { $0 + $1.cachedPageCount }
        let live = scheduledMemory.livePages
        if !reachable.isSubset(of: live) { return "a reachable table page was freed" }
        if live.count != reachable.count + cached {
            return "table pages leaked: \(live.count) live, \(reachable.count) reachable, \(cached) cached"
        }
        for index in 0..<frames {
            if case .mapped(let translation) = table.translate(address(index)) {
                if memslotRemoved { return "frame \(index) still mapped after its memslot was removed" }
                if memslotReadOnly && translation.attributes.permissions.contains(.write) {
                    return "frame \(index) still writable after its memslot was made read-only"
                }
                let expected = hostAddress(index, remapped: remapped[index] == true)
                if translation.output != expected {
                    return "frame \(index) maps \(translation.output), expected \(expected)"
                }
            }
        }
        return nil
    }
}
