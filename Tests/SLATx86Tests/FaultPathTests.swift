import SLATCore
import SLATSim
import Testing
@testable import SLATx86

@Suite("TDP MMU fault path")
struct FaultPathTests {
    @Test("a write fault on a 4 KiB-backed frame installs a writable 4 KiB leaf to the host frame")
    func writeFaultMapsSmallPage() throws {
        let vm = try SimulatedVM()
        let outcome = try vm.mmu.handleFault(GuestPageFault(address: vm.address(5), access: .write), vcpu: vm.contexts[0])
        #expect(outcome == .fixed(level: 0))
        let translation = try #require(vm.mmu.table().translate(vm.address(5)).translation)
        #expect(translation.output == vm.hostAddress(5))
        #expect(translation.attributes.permissions.contains(.write))
    }

    @Test("a fault on a 2 MiB-backed, aligned frame installs a 2 MiB leaf")
    func hugeBackedFaultMapsHugePage() throws {
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M)
        let outcome = try vm.mmu.handleFault(GuestPageFault(address: vm.address(700), access: .read), vcpu: vm.contexts[0])
        #expect(outcome == .fixed(level: 1))
        #expect(try vm.access(700, .read, vcpu: 0) == vm.hostAddress(700))
    }

    @Test("the maximum leaf level caps the mapping size")
    func maximumLeafLevelCaps() throws {
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M, configuration: MMUConfiguration(maximumLeafLevel: 0))
        #expect(try vm.mmu.handleFault(GuestPageFault(address: vm.address(3), access: .read), vcpu: vm.contexts[0]) == .fixed(level: 0))
    }

    @Test("a second fault on a mapped page is spurious")
    func repeatedFaultIsSpurious() throws {
        let vm = try SimulatedVM()
        let fault = GuestPageFault(address: vm.address(9), access: .write)
        _ = try vm.mmu.handleFault(fault, vcpu: vm.contexts[0])
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[1]) == .spurious)
    }

    @Test("a fault whose block an invalidation covers meanwhile retries")
    func invalidationInFlightRetries() throws {
        let vm = try SimulatedVM()
        vm.guestMemory.invalidations.beginInvalidation(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + 4), count: 1))
        let fault = GuestPageFault(address: vm.address(4), access: .read)
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) == .retry)
        #expect(vm.leaf(4) == nil)
        vm.guestMemory.invalidations.endInvalidation(GuestFrameRange(start: GuestFrameNumber(vm.baseFrame + 4), count: 1))
        #expect(try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) == .fixed(level: 0))
    }

    @Test("a huge leaf is split into an equivalent table when a smaller mapping is needed")
    func hugeLeafSplitOnTheWay() throws {
        let vm = try SimulatedVM(frames: 2048, hostSize: .size2M)
        try vm.access(10, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        let outcome = try vm.mmu.handleFault(GuestPageFault(address: vm.address(11), access: .write), vcpu: vm.contexts[0])
        #expect(outcome == .fixed(level: 0))
        for index: UInt64 in [0, 10, 11, 511] {
            #expect(vm.leaf(index)?.level == 0)
            #expect(try vm.mmu.table().translate(vm.address(index)).translation?.output == vm.hostAddress(index))
        }
        #expect(vm.detectorReports().isEmpty)
    }

    @Test("the vCPU's resolve memo never refuses a write the host allows now (page made writable without an invalidation)")
    func memoDefersToHostForWrites() throws {
        let vm = try SimulatedVM()
        let page = HostVirtualRange(start: SimulatedVM.hostBase, size: 8 << 12)
        try vm.guestMemory.hostPages.protect(page, writable: false)
        try vm.access(1, .read, vcpu: 0)
        try vm.guestMemory.hostPages.protect(page, writable: true)
        #expect(try vm.access(2, .write, vcpu: 0) == vm.hostAddress(2))
        #expect(try vm.access(1, .write, vcpu: 0) == vm.hostAddress(1))
    }

    @Test("the vCPU's resolve memo is dropped when an invalidation ends (a remapped page is seen)")
    func memoDroppedOnInvalidation() throws {
        let vm = try SimulatedVM()
        try vm.access(0, .read, vcpu: 0)
        try vm.guestMemory.hostPages.remap(HostVirtualRange(start: SimulatedVM.hostBase.advanced(by: 1 << 12), size: 1 << 12),
                                           to: HostFrameNumber(0x77_0000))
        #expect(try vm.access(1, .read, vcpu: 0) == HostPhysicalAddress(0x77_0000 << 12))
        #expect(try vm.access(2, .read, vcpu: 0) == vm.hostAddress(2))
    }

    @Test("a read fault on a read-only memslot maps without write access")
    func readOnlySlotMapsReadOnly() throws {
        let vm = try SimulatedVM(slotFlags: .readOnly)
        _ = try vm.mmu.handleFault(GuestPageFault(address: vm.address(1), access: .read), vcpu: vm.contexts[0])
        let entry = try #require(vm.leaf(1)).entry
        #expect(entry & ExtendedPageTableBits.write == 0)
        #expect(entry & ExtendedPageTableBits.mmuWritable == 0)
    }
}

@Suite("TDP MMU fault errors")
struct FaultErrorTests {
    @Test("a fault outside every memslot throws noMemslot and changes nothing")
    func noMemslotThrows() throws {
        let vm = try SimulatedVM()
        let before = vm.memory.allocatedPageCount
        let outside = GuestPhysicalAddress(0x1000)
        #expect(throws: SLATError.noMemslot(outside.frame)) {
            _ = try vm.mmu.handleFault(GuestPageFault(address: outside, access: .read), vcpu: vm.contexts[0])
        }
        #expect(try vm.mmu.table().translate(outside).translation == nil)
        // Only the vCPU's cache was topped up; no table was linked.
        #expect(vm.memory.allocatedPageCount - before == vm.contexts[0].pageCache.count)
    }

    @Test("a write to a read-only memslot throws readOnlyMemslot")
    func readOnlySlotWriteThrows() throws {
        let vm = try SimulatedVM(slotFlags: .readOnly)
        let address = vm.address(2)
        #expect(throws: SLATError.readOnlyMemslot(slot: SimulatedVM.slotID, frame: address.frame)) {
            _ = try vm.mmu.handleFault(GuestPageFault(address: address, access: .write), vcpu: vm.contexts[0])
        }
        #expect(vm.leaf(2) == nil)
    }

    @Test("out of table memory: the fault throws before linking anything")
    func outOfTableMemoryThrows() throws {
        // Root plus two pages: the fault's budget (one per level) cannot be met.
        let vm = try SimulatedVM(arenaPages: 3)
        #expect(throws: SLATError.self) {
            _ = try vm.mmu.handleFault(GuestPageFault(address: vm.address(0), access: .read), vcpu: vm.contexts[0])
        }
        let root = vm.memory.entries(at: try vm.mmu.root())
        #expect((0..<512).allSatisfy { root[$0].load(ordering: .relaxed) == 0 })
        #expect(vm.contexts[0].pageCache.count == 0)
    }

    @Test("an empty page cache mid-walk returns retry with no half-installed table; the next fault tops up")
    func emptyCacheRetries() throws {
        let vm = try SimulatedVM()
        let page = try vm.guestMemory.resolve(frame: vm.address(0).frame, write: false)
        var plan = FaultPlan(page: page, access: .read, format: vm.format, configuration: vm.mmu.configuration,
                             logMode: .writeProtect)
        var cleanup = FaultCleanup()
        let empty = vm.contexts[1]
        vm.mmu.lock.lockShared()
        vm.mmu.reclaimer.enterReadSection(slot: empty.readerSlot)
        let outcome = vm.mmu.install(&plan, at: vm.address(0), addressSpace: 0, vcpu: empty, cleanup: &cleanup)
        vm.mmu.reclaimer.leaveReadSection(slot: empty.readerSlot)
        vm.mmu.lock.unlockShared()
        #expect(outcome == .retry)
        let root = vm.memory.entries(at: try vm.mmu.root())
        #expect((0..<512).allSatisfy { root[$0].load(ordering: .relaxed) == 0 })
        #expect(try vm.mmu.handleFault(GuestPageFault(address: vm.address(0), access: .read), vcpu: empty) == .fixed(level: 0))
    }
}
