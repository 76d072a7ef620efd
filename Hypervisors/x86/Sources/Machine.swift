import CHypervisor
import SLATCore
import SLATx86
import SLATx86Hardware
import Synchronization

/// Physical memory (host-physical = host-virtual: the first 4 GiB are
/// identity-mapped) and the guest-physical layout.
enum Layout {
    /// The AP trampoline's page (SIPI vector 0x08).
    static let trampoline: UInt64 = 0x8000
    // 0x0010_0000 image (text, data, bss with stacks); 0x0100_0000 heap (runtime.c).
    /// The table arena: SLAT's EPT pages, owned by a `TableArena`.
    static let arenaBase: UInt64 = 0x0300_0000
    static let arenaPages = 2048
    /// The guest's code frame (the host copies guest_code there).
    static let guestCodeHost: UInt64 = 0x0400_0000
    static let guestCodeGPA: UInt64 = 0x0010_0000
    /// Guest RAM backing (host frames) and the frames remapping moves to.
    static let hugeHost: UInt64 = 0x0800_0000       // slot 2: 8 MiB, 2 MiB host mappings
    static let smallHost: UInt64 = 0x0880_0000      // slot 3: 1 MiB, 4 KiB host mappings
    static let dirtyHost: UInt64 = 0x0900_0000      // slot 4: 4 MiB, 2 MiB host mappings
    static let protectHost: UInt64 = 0x0940_0000    // slot 5: 1 MiB, 4 KiB host mappings
    static let agingHost: UInt64 = 0x0980_0000      // slot 6: 1 MiB, 4 KiB host mappings
    static let remapTarget: UInt64 = 0x0a00_0000
    /// Guest-physical bases of the slots.
    static let hugeGPA: UInt64 = 0x0100_0000
    static let smallGPA: UInt64 = 0x0200_0000
    static let dirtyGPA: UInt64 = 0x0300_0000
    static let protectGPA: UInt64 = 0x0400_0000
    static let agingGPA: UInt64 = 0x0500_0000
    /// The emulated device (no memslot).
    static let mmioGPA: UInt64 = 0x0800_0000

    static let hugePages: UInt64 = 2048
    static let smallPages: UInt64 = 256
    static let dirtyPages: UInt64 = 1024
    static let protectPages: UInt64 = 256
    static let agingPages: UInt64 = 256
}

/// Memslot ids.
enum Slot {
    static let code: UInt32 = 1
    static let huge: UInt32 = 2
    static let small: UInt32 = 3
    static let dirty: UInt32 = 4
    static let protect: UInt32 = 5
    static let aging: UInt32 = 6
}

#if BITE_NOOP_TLB
/// Bite build: the TLB issues nothing (INVEPT never runs).
struct Invalidator: ExtendedPageTableInvalidator {
    func invalidate(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) -> Bool { true }
}
#else
typealias Invalidator = INVEPTInstruction
#endif

/// The CPUs of the machine and the cross-CPU half of invalidation. INVEPT
/// acts on the executing CPU only, so an invalidation bumps `generation`
/// and waits for every other CPU that is in guest mode to have caught up;
/// a CPU catches up (single-context INVEPT of its EPTP) before each VM
/// entry when the generation moved, and announces guest mode before it
/// reads the generation (KVM's request + kick, with the VMX-preemption
/// timer as the kick: a CPU in guest mode exits within one timer period).
final class CPUTable: @unchecked Sendable {
    // @unchecked Sendable: the pointers are allocated once in init, never
    // reassigned, and every element is an Atomic.
    let capacity: Int
    let generation = Atomic<UInt64>(0)
    let inGuest: UnsafeMutablePointer<Atomic<Bool>>
    let caughtUp: UnsafeMutablePointer<Atomic<UInt64>>
    let remoteCatchUps = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = capacity
        inGuest = .allocate(capacity: capacity)
        caughtUp = .allocate(capacity: capacity)
        for cpu in 0..<capacity {
            (inGuest + cpu).initialize(to: Atomic(false))
            (caughtUp + cpu).initialize(to: Atomic(0))
        }
    }

    /// Runs `enter` (vmx_run) as CPU `vcpu.index` in guest mode.
    func enterGuest(_ vcpu: VCPU, _ enter: () -> Int32) -> Int32 {
        let cpu = vcpu.index
        inGuest[cpu].store(true, ordering: .sequentiallyConsistent)
        let wanted = generation.load(ordering: .sequentiallyConsistent)
        if caughtUp[cpu].load(ordering: .relaxed) != wanted {
            _ = Invalidator().invalidate(.singleContext, pointer: vcpu.loadedPointer)
            vcpu.remoteInvalidations += 1
            remoteCatchUps.add(1, ordering: .relaxed)
            caughtUp[cpu].store(wanted, ordering: .releasing)
        }
        let result = enter()
        inGuest[cpu].store(false, ordering: .releasing)
        return result
    }
}

/// The broadcast half of ``ExtendedPageTableTLB``: see ``CPUTable``.
struct VMXBroadcast: ProcessorInvalidationBroadcast {
    let cpus: CPUTable

    func invalidateOnOtherProcessors(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) {
        #if !BITE_NOOP_TLB
        // (The bite build makes the whole TLB a no-op, this half included.)
        let wanted = cpus.generation.add(1, ordering: .sequentiallyConsistent).newValue
        let me = currentCPU()
        // The calling CPU has just invalidated: it need not catch up.
        if me < cpus.capacity { cpus.caughtUp[me].store(wanted, ordering: .releasing) }
        for cpu in 0..<cpus.capacity where cpu != me {
            while cpus.inGuest[cpu].load(ordering: .sequentiallyConsistent)
                && cpus.caughtUp[cpu].load(ordering: .acquiring) < wanted {
                hv_pause()
            }
        }
        #endif
    }
}

/// This CPU's index: its local APIC ID (Bochs numbers them 0, 1, …).
func currentCPU() -> Int {
    let apicID = UnsafeMutablePointer<UInt32>(bitPattern: UInt(0xfee0_0020))!
    return Int(apicID.pointee >> 24)
}

typealias HardwareTLB = ExtendedPageTableTLB<Invalidator, VMXBroadcast>
typealias MMU = ExtendedPageTableMMU<TableArena, HardwareTLB>

/// The VM: SLAT's MMU over the arena, the guest memory map, the TLB, the
/// CPUs and the MMIO device.
final class Machine {
    let cpus: CPUTable
    let tlb: HardwareTLB
    let guestMemory: GuestMemory
    let mmu: MMU
    var mmioRegister: UInt32 = 0
    let startedAPs = Atomic<Int>(0)
    let finishedAPs = Atomic<Int>(0)
    let go = Atomic<Bool>(false)
    /// A command for CPU 1's guest while the BSP changes the tables under
    /// it (the `GuestOp` raw value, 0 none), its operands, and how many
    /// such commands CPU 1 has finished.
    let apTask = Atomic<UInt64>(0)
    let apTaskBase = Atomic<UInt64>(0)
    let apTaskCount = Atomic<UInt64>(0)
    let apTaskSeed = Atomic<UInt64>(0)
    let apTasksDone = Atomic<Int>(0)
    /// The vCPU of each CPU, set once by that CPU before it reports started.
    let vcpus: UnsafeMutablePointer<VCPU?>

    init(maximumCPUs: Int) throws(SLATError) {
        cpus = CPUTable(capacity: maximumCPUs)
        let capability = hv_rdmsr(0x48c)
        tlb = ExtendedPageTableTLB(hasSingleContext: capability & (1 << 25) != 0, invalidator: Invalidator(),
                                   broadcast: VMXBroadcast(cpus: cpus))
        let guestMemory = GuestMemory()
        self.guestMemory = guestMemory
        let pages = guestMemory.hostPages
        func identity(_ address: UInt64) -> HostVirtualAddress { HostVirtualAddress(address) }
        func frame(_ address: UInt64) -> HostFrameNumber { HostFrameNumber(address >> 12) }
        try pages.map(identity(Layout.guestCodeHost), to: frame(Layout.guestCodeHost), count: 16)
        try pages.map(identity(Layout.hugeHost), to: frame(Layout.hugeHost), size: .size2M, count: Layout.hugePages / 512)
        try pages.map(identity(Layout.smallHost), to: frame(Layout.smallHost), count: Layout.smallPages)
        try pages.map(identity(Layout.dirtyHost), to: frame(Layout.dirtyHost), size: .size2M, count: Layout.dirtyPages / 512)
        try pages.map(identity(Layout.protectHost), to: frame(Layout.protectHost), count: Layout.protectPages)
        try pages.map(identity(Layout.agingHost), to: frame(Layout.agingHost), count: Layout.agingPages)
        func slot(_ id: UInt32, _ gpa: UInt64, _ count: UInt64, _ host: UInt64) throws(SLATError) {
            try guestMemory.addMemslot(Memslot(id: id, baseFrame: GuestFrameNumber(gpa >> 12), pageCount: count,
                                               hostAddress: identity(host)))
        }
        try slot(Slot.code, Layout.guestCodeGPA, 16, Layout.guestCodeHost)
        try slot(Slot.huge, Layout.hugeGPA, Layout.hugePages, Layout.hugeHost)
        try slot(Slot.small, Layout.smallGPA, Layout.smallPages, Layout.smallHost)
        try slot(Slot.dirty, Layout.dirtyGPA, Layout.dirtyPages, Layout.dirtyHost)
        try slot(Slot.protect, Layout.protectGPA, Layout.protectPages, Layout.protectHost)
        try slot(Slot.aging, Layout.agingGPA, Layout.agingPages, Layout.agingHost)
        let format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        let arena = try TableArena(region: UnsafeMutableRawPointer(bitPattern: UInt(Layout.arenaBase))!, pageSize: 4096,
                                   pageCount: Layout.arenaPages, physicalBase: HostPhysicalAddress(Layout.arenaBase),
                                   isZeroed: false)
        mmu = try MMU(format: format, memory: arena, tlb: tlb, guestMemory: guestMemory,
                      configuration: MMUConfiguration(readerSlots: maximumCPUs + 1, maximumLeafLevel: 1))
        vcpus = .allocate(capacity: maximumCPUs)
        vcpus.initialize(repeating: nil, count: maximumCPUs)
    }

    /// INVEPTs so far: on the requesting CPUs and as catch-ups before entry.
    var invalidations: Int {
        tlb.singleContextInvalidations + tlb.allContextInvalidations + cpus.remoteCatchUps.load(ordering: .relaxed)
    }
}
