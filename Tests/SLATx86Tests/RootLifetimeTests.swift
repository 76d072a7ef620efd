import Foundation
import SLATCore
import SLATSim
import Synchronization
import Testing
@testable import SLATx86

/// A replaced root lives while a vCPU may use it; a torn-down MMU stays
/// torn down.
@Suite("TDP MMU: root lifetime and teardown")
struct RootLifetimeTests {
    /// A hardware walker on the root the MMU has now (what a vCPU that
    /// loaded the EPTP now walks).
    static func walker(on vm: SimulatedVM) throws -> HardwareWalker<ExtendedPageTableFormat, SimulatedTableMemory<TableArena>> {
        HardwareWalker(format: vm.format, memory: vm.memory, root: try vm.mmu.root())
    }

    @Test("a vCPU that has not reloaded is asked to, and its faults retry")
    func faultBeforeReloadRetries() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(0, .read, vcpu: 0)
        #expect(try !vm.mmu.isRootReloadRequested(vm.contexts[0]))
        try vm.mmu.invalidateAllRoots()
        #expect(try vm.mmu.isRootReloadRequested(vm.contexts[0]))
        let fault = GuestPageFault(address: vm.address(1), access: .read)
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) == .retry)
        #expect(vm.leaf(1) == nil)
        let pointer = try vm.mmu.reloadRoot(vm.contexts[0])
        #expect(pointer == (try vm.mmu.pointer()))
        #expect(try !vm.mmu.isRootReloadRequested(vm.contexts[0]))
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
    }

    @Test("a replaced root is freed only after every vCPU that used it has reloaded")
    func replacedRootLivesUntilReload() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(0, .read, vcpu: 0)
        try vm.access(1, .read, vcpu: 1)
        try vm.mmu.invalidateAllRoots()
        #expect(try vm.mmu.zapInvalidatedRoots() == 0)
        _ = try vm.mmu.reloadRoot(vm.contexts[0])
        #expect(try vm.mmu.zapInvalidatedRoots() == 0)
        _ = try vm.mmu.reloadRoot(vm.contexts[1])
        #expect(try vm.mmu.zapInvalidatedRoots() > 0)
    }

    @Test("a notifier zap reaches a replaced root a vCPU still walks")
    func notifierZapReachesReplacedRoot() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(5, .read, vcpu: 0)
        let oldWalker = try Self.walker(on: vm)
        try vm.mmu.invalidateAllRoots()
        #expect(oldWalker.lookUp(vm.address(5)).translation != nil)
        try vm.guestMemory.hostPages.unmap(
            HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 5 << 12), size: 4096))
        // vCPU 0 has not reloaded and still walks the old root.
        #expect(oldWalker.lookUp(vm.address(5)).translation == nil)
    }

    @Test("teardown waits for a notifier event being delivered, which then changes nothing")
    func teardownRacesNotifierDelivery() throws {
        let guestMemory = GuestMemory()
        let hostBase = HostVirtualAddress(0x7f00_0000_0000)
        try guestMemory.hostPages.map(hostBase, to: HostFrameNumber(0x40_0000), size: .size4K, count: 16)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(0x100), pageCount: 16, hostAddress: hostBase))
        // A listener registered before the MMU's holds the event until the
        // MMU is torn down.
        let inListener = DoneFlag()
        let release = DoneFlag()
        _ = guestMemory.addListener { event in
            guard event.phase == .start else { return }
            inListener.set()
            while !release.isSet { sched_yield() }
        }
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(pageCount: 64)
        let mmu = try ExtendedPageTableMMU(format: format, memory: arena, tlb: CountingTLB(), guestMemory: guestMemory)
        let vcpu = PageTableContext(readerSlot: 0)
        _ = try mmu.handleFault(GuestPageFault(address: GuestPhysicalAddress(0x100 << 12), access: .write), vcpu: vcpu)
        let unmapper = Thread {
            try? guestMemory.hostPages.unmap(HostVirtualRange(start: hostBase, size: 4096))
        }
        unmapper.start()
        while !inListener.isSet { sched_yield() }
        mmu.teardown()
        // Another VM reuses every free page: each entry links to its own
        // page, so a late walk through any of them reaches a "leaf".
        var pages: [HostPhysicalAddress] = []
        while let page = try? arena.allocatePage() { pages.append(page) }
        for page in pages {
            let entries = arena.entries(at: page)
            for index in 0..<512 { entries[index].store(format.tableEntry(child: page), ordering: .relaxed) }
        }
        release.set()
        while !unmapper.isFinished { sched_yield() }
        var changed = 0
        for page in pages {
            let entries = arena.entries(at: page)
            for index in 0..<512 where entries[index].load(ordering: .relaxed) != format.tableEntry(child: page) { changed += 1 }
        }
        #expect(changed == 0, "the torn-down MMU's late zap wrote into pages it had freed")
    }

    @Test("every call on a torn-down MMU throws, and teardown is idempotent")
    func tornDownMMUThrows() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(0, .write, vcpu: 0)
        vm.mmu.teardown()
        vm.mmu.teardown()
        let context = vm.contexts[0]
        let fault = GuestPageFault(address: vm.address(0), access: .write)
        let everything = HostVirtualRange(start: SimulatedVM.hostBase, size: 64 << 12)
        #expect(throws: SLATError.tornDown) { try vm.mmu.handleFault(fault, vcpu: context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.slowPageFault(fault, vcpu: context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.fastPageFault(fault, vcpu: context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.zap(vm.frames) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.root() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.pointer() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.table() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.invalidateAllRoots() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.zapInvalidatedRoots() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.recoverNXHugePages() }
        #expect(throws: SLATError.tornDown) { try vm.mmu.recoverHugePages(in: vm.frames) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.clearYoung(everything, context: context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.testYoung(everything, context: context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.reloadRoot(context) }
        #expect(throws: SLATError.tornDown) { try vm.mmu.isRootReloadRequested(context) }
        #expect(vm.mmu.isTornDown)
    }
}
