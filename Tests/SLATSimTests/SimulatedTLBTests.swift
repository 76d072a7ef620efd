import SLATCore
import SLATSim
import SLATx86
import Testing

/// Invalidation semantics of the simulated TLBs and the context broadcast.
@Suite struct SimulatedTLBTests {
    static let format = try! ExtendedPageTableFormat(levelCount: 4)

    func entry(_ address: UInt64, level: Int) -> CachedTranslation {
        let size = Self.format.entrySize(atLevel: level)
        return CachedTranslation(guestAddress: GuestPhysicalAddress(address), level: level, size: size,
                                 output: HostPhysicalAddress(0x1_0000_0000 + address), permissions: .all)
    }

    func contextWithEntries(vcpus: Int = 1) -> SimulatedContextTLB {
        let tlb = SimulatedContextTLB(format: Self.format, vcpuCount: vcpus)
        for vcpu in 0..<vcpus {
            tlb.vcpu(vcpu).fill(entry(0x1000, level: 0), accessing: GuestPhysicalAddress(0x1000))
            tlb.vcpu(vcpu).fill(entry(0x40_0000, level: 1), accessing: GuestPhysicalAddress(0x40_0000))
            tlb.vcpu(vcpu).fill(entry(0x4000_0000, level: 2), accessing: GuestPhysicalAddress(0x4000_0000))
        }
        return tlb
    }

    @Test("A level-hinted invalidation removes only the entry at that level")
    func levelHintRemovesOnlyThatLevel() {
        let tlb = contextWithEntries()
        tlb.invalidate(address: GuestPhysicalAddress(0x40_0000), level: Self.format.leafLevel(ofHeight: 0))
        #expect(tlb.vcpu(0).entry(covering: GuestPhysicalAddress(0x40_0000)) != nil)
        tlb.invalidate(address: GuestPhysicalAddress(0x40_1000), level: Self.format.leafLevel(ofHeight: 1))
        #expect(tlb.vcpu(0).entry(covering: GuestPhysicalAddress(0x40_0000)) == nil)
        #expect(tlb.vcpu(0).count == 2)
    }

    @Test("An address invalidation without a hint removes every size at that address")
    func unhintedRemovesEverySize() {
        let tlb = SimulatedContextTLB(format: Self.format, vcpuCount: 1, reportsConflicts: false)
        tlb.vcpu(0).fill(entry(0x40_0000, level: 1), accessing: GuestPhysicalAddress(0x40_0000))
        tlb.vcpu(0).fill(entry(0x7000, level: 0), accessing: GuestPhysicalAddress(0x7000))
        tlb.invalidate(address: GuestPhysicalAddress(0x40_0000), level: nil)
        #expect(tlb.vcpu(0).entries.map(\.guestAddress.rawValue) == [0x7000])
    }

    @Test("Hint-blind hardware removes every size even with a hint")
    func hintBlindIgnoresHints() {
        let tlb = SimulatedContextTLB(format: Self.format, vcpuCount: 1, honoursLevelHints: false)
        tlb.vcpu(0).fill(entry(0x40_0000, level: 1), accessing: GuestPhysicalAddress(0x40_0000))
        tlb.invalidate(address: GuestPhysicalAddress(0x40_0000), level: Self.format.leafLevel(ofHeight: 0))
        #expect(tlb.vcpu(0).count == 0)
    }

    @Test("A range invalidation removes every entry overlapping it, of any size")
    func rangeRemovesOverlapping() {
        let tlb = contextWithEntries()
        tlb.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(0x5F_F000), size: 0x2000))
        #expect(tlb.vcpu(0).entries.map(\.guestAddress.rawValue) == [0x1000, 0x4000_0000])
        tlb.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(0x7FFF_F000), size: 0x1000))
        #expect(tlb.vcpu(0).entries.map(\.guestAddress.rawValue) == [0x1000])
    }

    @Test("Context invalidations reach every vCPU and are counted once")
    func broadcastReachesEveryVCPU() {
        let tlb = contextWithEntries(vcpus: 3)
        tlb.invalidate(address: GuestPhysicalAddress(0x1000), level: Self.format.leafLevel(ofHeight: 0))
        #expect(tlb.vcpus.map(\.count) == [2, 2, 2])
        tlb.invalidateAll()
        #expect(tlb.vcpus.map(\.count) == [0, 0, 0])
        #expect(tlb.counts == TLBInvalidationCounts(addresses: 1, ranges: 0, contexts: 1))
        #expect(tlb.vcpus.allSatisfy { $0.statistics.invalidationsReceived == 2 })
    }

    @Test("A vCPU's own invalidation stays local")
    func localInvalidationStaysLocal() {
        let tlb = contextWithEntries(vcpus: 2)
        tlb.vcpu(1).invalidateAll()
        #expect(tlb.vcpus.map(\.count) == [3, 0])
    }

    @Test("A full TLB evicts its oldest entry")
    func capacityEvictsOldest() {
        let tlb = SimulatedContextTLB(format: Self.format, vcpuCount: 1, capacity: 4)
        for page in 0..<6 { tlb.vcpu(0).fill(entry(UInt64(page) << 12, level: 0), accessing: GuestPhysicalAddress(UInt64(page) << 12)) }
        #expect(tlb.vcpu(0).entries.map(\.guestAddress.rawValue).sorted() == [0x2000, 0x3000, 0x4000, 0x5000])
        #expect(tlb.vcpu(0).statistics.evictions == 2)
    }

    @Test("Entries record the vCPU and context that cached them")
    func entriesRecordVCPUAndContext() {
        let tlb = SimulatedContextTLB(format: Self.format, vcpuCount: 2, context: 7)
        tlb.vcpu(1).fill(entry(0x1000, level: 0), accessing: GuestPhysicalAddress(0x1000))
        #expect(tlb.vcpu(1).entries.first?.vcpu == 1 && tlb.vcpu(1).entries.first?.context == 7)
    }
}

/// Ownership between the table-memory wrapper and the contexts it watches.
@Suite struct SimulatedTableMemoryTests {
    @Test("A watching table memory does not keep its context alive")
    func watchIsWeak() throws {
        let format = try ExtendedPageTableFormat()
        let memory = SimulatedTableMemory(wrapping: try TableArena(pageCount: 8, prefault: false))
        weak var gone: SimulatedContextTLB?
        do {
            let tlb = SimulatedContextTLB(format: format, vcpuCount: 1)
            memory.watch(tlb)
            gone = tlb
        }
        #expect(gone == nil)
        let page = try memory.allocatePage()
        memory.freePage(page)
        #expect(memory.totalFrees == 1)
    }

    @Test("The wrapper forwards allocation, counts and the linear map to the wrapped memory")
    func forwards() throws {
        let arena = try TableArena(pageCount: 8, prefault: false)
        let memory = SimulatedTableMemory(wrapping: arena)
        let page = try memory.allocatePage()
        #expect(arena.isAllocated(page) && memory.allocatedPageCount == arena.allocatedPageCount)
        #expect(memory.linearMap?.physicalBase == arena.linearMap?.physicalBase)
        #expect(memory.entries(at: page) == arena.entries(at: page))
        memory.freePage(page)
        #expect(!arena.isAllocated(page))
    }
}
