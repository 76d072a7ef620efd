import SLATArm64
import SLATCore
import SLATSim
import Testing

@Suite("Stage-2 break-before-make observed through the simulated TLBs")
struct StageTwoBreakBeforeMakeTests {
    static let guestBase: UInt64 = 0x1_0000_0000
    static let newOutput = HostPhysicalAddress(0x30_0000_0000)

    func makeVM<T: TLB>(_ makeTLB: (SimulatedContextTLB) -> T) throws -> StageTwoTestVM<T> {
        try StageTwoTestVM(granule: .size4KiB, vcpus: 2, guestBase: Self.guestBase, size: 2 << 20,
                           hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 64, makeTLB: makeTLB)
    }

    /// Both vCPUs cache the block, then it gets a new output address.
    func remapCachedBlock<T: TLB>(_ vm: StageTwoTestVM<T>) throws {
        try vm.access(vm.guestRange.start, .read, vcpu: 0)
        try vm.access(vm.guestRange.start.advanced(by: 0x1000), .read, vcpu: 1)
        _ = try vm.lock.withExclusive { () throws(SLATError) in
            try vm.mmu.map(vm.guestRange, to: Self.newOutput, attributes: LeafAttributes(permissions: .readWrite),
                           context: vm.contexts[0])
        }
    }

    @Test("A block given a new output is broken first: no TLB keeps the old translation")
    func remappedBlockLeavesNoStaleTranslation() throws {
        let vm = try makeVM { $0 }
        try remapCachedBlock(vm)
        #expect(vm.reportsAfterCoherenceCheck() == [])
        #expect(vm.walker.access(vm.guestRange.start.advanced(by: 0x5000), .read, through: vm.simulatedTLB.vcpu(1)).output
                == Self.newOutput.advanced(by: 0x5000))
    }

    @Test("A page remapped inside a cached block splits it break-before-make: no TLB keeps the block")
    func splitLeavesNoStaleBlock() throws {
        let vm = try makeVM { $0 }
        try vm.access(vm.guestRange.start, .read, vcpu: 0)
        _ = try vm.lock.withExclusive { () throws(SLATError) in
            try vm.mmu.map(GuestPhysicalRange(start: vm.guestRange.start.advanced(by: 0x3000), size: 0x1000),
                           to: Self.newOutput, attributes: LeafAttributes(permissions: .readWrite), maximumLevel: 0,
                           context: vm.contexts[0])
        }
        #expect(vm.reportsAfterCoherenceCheck() == [])
        #expect(vm.walker.access(vm.guestRange.start.advanced(by: 0x3000), .read, through: vm.simulatedTLB.vcpu(0)).output
                == Self.newOutput)
    }

    @Test("Eager splitting of cached blocks leaves no TLB holding a block")
    func eagerSplitLeavesNoStaleBlock() throws {
        let vm = try makeVM { $0 }
        try vm.access(vm.guestRange.start, .read, vcpu: 0)
        try vm.access(vm.guestRange.start, .read, vcpu: 1)
        try vm.contexts[0].pageCache.topUp(from: vm.memory, toAtLeast: 1)
        let progress = try vm.lock.withShared { () throws(SLATError) in
            try vm.mmu.splitBlocks(in: vm.guestRange, mode: .shared, context: vm.contexts[0])
        }
        #expect(progress.blocksSplit == 1)
        #expect(vm.simulatedTLB.vcpu(0).entries.isEmpty && vm.simulatedTLB.vcpu(1).entries.isEmpty)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("Without the break's invalidation the stale-entry detector fires (the check bites)")
    func droppedBreakInvalidationIsCaught() throws {
        let vm = try makeVM { AddressInvalidationDroppingTLB($0) }
        try remapCachedBlock(vm)
        #expect(vm.reportsAfterCoherenceCheck().contains { $0.kind == .staleEntry })
    }
}
