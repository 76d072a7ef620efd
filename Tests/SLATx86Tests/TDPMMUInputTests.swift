import Foundation
import SLATCore
import SLATSim
import Testing
@testable import SLATx86

/// What a VMM passes the TDP MMU is checked: a typed error, tables unchanged.
@Suite("TDP MMU: inputs the VMM controls")
struct TDPMMUInputTests {
    @Test("a fault above the format's input range is refused, not aliased to a low address")
    func faultAboveInputRangeIsRefused() throws {
        let vm = try SimulatedVM(frames: 64)
        let high = GuestPhysicalAddress(1 << 48 | vm.address(5).rawValue)
        let fault = GuestPageFault(address: high, access: .write)
        #expect(throws: SLATError.guestAddressOutOfRange(high, limit: 1 << 48)) {
            try vm.mmu.handleFault(fault, vcpu: vm.contexts[0])
        }
        #expect(throws: SLATError.guestAddressOutOfRange(high, limit: 1 << 48)) {
            try vm.mmu.fastPageFault(fault, vcpu: vm.contexts[0])
        }
        #expect(vm.leaf(5) == nil)
    }

    @Test("a zap or recovery above the format's input range is refused, not aliased to low frames")
    func rangeAboveInputRangeIsRefused() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.access(5, .write, vcpu: 0)
        let high = GuestFrameRange(start: GuestFrameNumber(1 << 36 | (vm.baseFrame + 5)), count: 1)
        #expect(throws: SLATError.guestRangeOutOfBounds(high.physicalRange, limit: 1 << 48)) { try vm.mmu.zap(high) }
        #expect(throws: SLATError.guestRangeOutOfBounds(high.physicalRange, limit: 1 << 48)) {
            try vm.mmu.recoverHugePages(in: high)
        }
        #expect(vm.leaf(5) != nil)
    }

    @Test("a host frame beyond the physical-address width is refused")
    func hostFrameBeyondPhysicalWidthIsRefused() throws {
        let guestMemory = GuestMemory()
        let hostBase = HostVirtualAddress(0x7f00_0000_0000)
        try guestMemory.hostPages.map(hostBase, to: HostFrameNumber(1 << 28), size: .size4K, count: 4)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(0x100), pageCount: 4, hostAddress: hostBase))
        let format = try ExtendedPageTableFormat(levelCount: 4, outputAddressBits: 39)
        let mmu = try ExtendedPageTableMMU(format: format, memory: try TableArena(pageCount: 16), tlb: CountingTLB(),
                                           guestMemory: guestMemory)
        defer { mmu.teardown() }
        let fault = GuestPageFault(address: GuestPhysicalAddress(0x100 << 12), access: .read)
        #expect(throws: SLATError.outputAddressTooWide(HostPhysicalAddress(1 << 40), outputBits: 39)) {
            try mmu.handleFault(fault, vcpu: PageTableContext(readerSlot: 0))
        }
        #expect(try mmu.table().translate(GuestPhysicalAddress(0x100 << 12)).translation == nil)
    }

    @Test("a reader slot out of range is refused by every vCPU entry point")
    func readerSlotOutOfRangeIsRefused() throws {
        let vm = try SimulatedVM(frames: 64, configuration: MMUConfiguration(readerSlots: 4))
        let slots = vm.mmu.configuration.readerSlots
        let stranger = PageTableContext(readerSlot: slots)
        let fault = GuestPageFault(address: vm.address(0), access: .read)
        let error = SLATError.readerSlotOutOfRange(slots, slots: slots)
        #expect(throws: error) { try vm.mmu.handleFault(fault, vcpu: stranger) }
        #expect(throws: error) { try vm.mmu.slowPageFault(fault, vcpu: stranger) }
        #expect(throws: error) { try vm.mmu.fastPageFault(fault, vcpu: stranger) }
        #expect(throws: error) { try vm.mmu.reloadRoot(stranger) }
        #expect(throws: error) {
            try vm.mmu.clearYoung(HostVirtualRange(start: SimulatedVM.hostBase, size: 4096), context: stranger)
        }
        #expect(vm.leaf(0) == nil)
    }

    @Test("an address space out of range is refused")
    func addressSpaceOutOfRangeIsRefused() throws {
        let vm = try SimulatedVM(frames: 64)
        let fault = GuestPageFault(address: vm.address(0), access: .read, addressSpace: 1)
        #expect(throws: SLATError.addressSpaceOutOfRange(1, count: 1)) { try vm.mmu.handleFault(fault, vcpu: vm.contexts[0]) }
        #expect(throws: SLATError.addressSpaceOutOfRange(-1, count: 1)) { try vm.mmu.zap(vm.frames, addressSpace: -1) }
        #expect(throws: SLATError.addressSpaceOutOfRange(2, count: 1)) { try vm.mmu.root(addressSpace: 2) }
        #expect(vm.leaf(0) == nil)
    }

    @Test("an unsupported address-space count is named as such")
    func unsupportedAddressSpaceCountIsNamed() throws {
        #expect(throws: SLATError.unsupportedAddressSpaceCount(3, supported: 2)) {
            _ = try SimulatedVM(frames: 64, configuration: MMUConfiguration(addressSpaceCount: 3))
        }
    }

    @Test("a removed memslot takes its dirty log with it")
    func removedMemslotDropsItsDirtyLog() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        let slot = try vm.guestMemory.removeMemslot(id: SimulatedVM.slotID)
        #expect(vm.mmu.dirtyLogMode(memslot: SimulatedVM.slotID) == nil)
        var fresh = slot
        fresh.flags = []
        try vm.guestMemory.addMemslot(fresh)
        try vm.access(7, .write, vcpu: 0)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        #expect(vm.leaf(7).map { $0.entry & ExtendedPageTableBits.write } == 0)
        try vm.access(7, .write, vcpu: 0)
        #expect(markedFrames(try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)) == [7])
    }

    @Test("dirty-log enable and disable change only the dirty-logging flag")
    func dirtyLogFlagChangesKeepOtherFlags() throws {
        let vm = try SimulatedVM(frames: 64)
        try vm.guestMemory.updateMemslotFlags(id: SimulatedVM.slotID, inserting: .readOnly)
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        try vm.mmu.disableDirtyLogging(memslot: SimulatedVM.slotID)
        #expect(vm.guestMemory.memslot(id: SimulatedVM.slotID)?.flags == .readOnly)
    }
}

/// Mode-based execute control: user-mode fetches need bit 10 in every entry.
@Suite("TDP MMU: mode-based execute control")
struct ModeBasedExecuteTests {
    static func vm(accessedDirty: Bool) throws -> SimulatedVM {
        try SimulatedVM(frames: 64, accessedDirty: accessedDirty, modeBasedExecute: true)
    }

    @Test("a user-mode fetch translates through the tables a fault builds")
    func userFetchTranslates() throws {
        let vm = try Self.vm(accessedDirty: true)
        #expect(try vm.access(3, .executeUser, vcpu: 0) == vm.hostAddress(3))
        var walk = try vm.mmu.root()
        for level in stride(from: vm.format.rootLevel, to: 0, by: -1) {
            let entry = vm.memory.entries(at: walk)[vm.format.index(of: vm.address(3), atLevel: level)].load(ordering: .relaxed)
            #expect(entry & ExtendedPageTableBits.userExecute != 0, "table entry at level \(level) lacks user-execute")
            walk = vm.format.childTable(of: entry)
        }
    }

    @Test("a user-mode fetch after aging (A/D off) is restored, not spurious forever")
    func userFetchAfterAgingIsRestored() throws {
        let vm = try Self.vm(accessedDirty: false)
        try vm.access(3, .executeUser, vcpu: 0)
        #expect(try vm.mmu.clearYoung(HostVirtualRange(start: SimulatedVM.hostBase, size: 64 << 12), context: vm.contexts[2]))
        #expect(try vm.access(3, .executeUser, vcpu: 0) == vm.hostAddress(3))
        #expect(vm.leaf(3).map { $0.entry & ExtendedPageTableBits.userExecute != 0 } == true)
    }
}
