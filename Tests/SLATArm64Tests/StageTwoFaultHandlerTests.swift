import SLATArm64
import SLATCore
import SLATSim
import Testing

@Suite("Stage-2 fault handler")
struct StageTwoFaultHandlerTests {
    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase: UInt64 = 0x20_0000_0000

    func makeVM(granule: TranslationGranule = .size4KiB, host: HostMappingSize = .size2M, size: UInt64 = 4 << 20) throws -> StageTwoTestVM<SimulatedContextTLB> {
        try StageTwoTestVM(granule: granule, guestBase: Self.guestBase, size: size, hostBase: Self.hostBase,
                           hostMappingSize: host, tablePages: 64)
    }

    @Test("A fault on memory backed by 2 MiB host pages maps a 2 MiB block at the backing output")
    func hugeBackedFaultMapsBlock() throws {
        let vm = try makeVM()
        let address = vm.guestRange.start.advanced(by: 0x20_3000)
        #expect(try vm.access(address, .write) == [.mapped(level: 1)])
        let leaf = try #require(vm.mmu.table.translate(address).translation)
        #expect(leaf.level == 1 && leaf.output == vm.expectedOutput(of: address))
        #expect(leaf.attributes.permissions == .readWrite)
    }

    @Test("A fault with an unknown reader slot throws readerSlotOutOfRange instead of trapping")
    func faultWithUnknownReaderSlotThrows() throws {
        let vm = try makeVM()
        try vm.access(vm.guestRange.start, .read)
        let slots = vm.mmu.table.reclaimer.slotCount
        #expect(throws: SLATError.readerSlotOutOfRange(slots + 7, slots: slots)) {
            try vm.handler.handle(StageTwoFault(address: vm.guestRange.start, access: .write),
                                  context: PageTableContext(readerSlot: slots + 7))
        }
    }

    @Test("Relaxing to executable with an unknown reader slot throws readerSlotOutOfRange instead of trapping")
    func relaxWithUnknownReaderSlotThrows() throws {
        let vm = try makeVM()
        try vm.access(vm.guestRange.start, .read)
        let slots = vm.mmu.table.reclaimer.slotCount
        #expect(throws: SLATError.readerSlotOutOfRange(slots + 7, slots: slots)) {
            try vm.mmu.relaxPermissions(vm.guestRange.start, grant: .execute, mode: .shared,
                                        context: PageTableContext(readerSlot: slots + 7))
        }
    }

    @Test("A fault on memory backed by 4 KiB host pages maps one page")
    func smallBackedFaultMapsPage() throws {
        let vm = try makeVM(host: .size4K)
        #expect(try vm.access(vm.guestRange.start.advanced(by: 0x5000), .read) == [.mapped(level: 0)])
        #expect(vm.leaves.count == 1)
    }

    @Test("While dirty logging a read maps a read-only page and the first write relaxes it in place")
    func dirtyLoggingReadThenWrite() throws {
        let vm = try makeVM()
        try vm.setDirtyLogging(true)
        let address = vm.guestRange.start.advanced(by: 0x7000)
        #expect(try vm.access(address, .read) == [.mapped(level: 0)])
        #expect(vm.mmu.table.translate(address).translation?.attributes.permissions == .read)
        #expect(try vm.access(address, .write) == [.permissionsRelaxed])
        #expect(vm.mmu.table.translate(address).translation?.attributes.permissions == .readWrite)
    }

    @Test("An instruction fetch from a non-executable page relaxes it to executable and invalidates the instruction cache")
    func executeFaultRelaxes() throws {
        let vm = try makeVM()
        let address = vm.guestRange.start
        try vm.access(address, .read)
        let invalidations = vm.caches.instructionCacheInvalidationCount
        #expect(try vm.access(address, .execute) == [.permissionsRelaxed])
        #expect(vm.mmu.table.translate(address).translation?.attributes.permissions == .all)
        #expect(vm.caches.instructionCacheInvalidationCount == invalidations + 1)
    }

    @Test("An access-flag fault sets the flag in place")
    func accessFlagFaultMakesYoung() throws {
        let vm = try makeVM()
        let address = vm.guestRange.start
        try vm.access(address, .read)
        _ = try vm.mmu.testAndClearYoung(vm.guestRange, mode: .exclusive, context: vm.contexts[0])
        vm.simulatedTLB.invalidateAll()
        #expect(try vm.access(address, .read) == [.madeYoung])
        #expect(vm.mmu.table.translate(address).translation?.attributes.accessed == true)
    }

    @Test("A fault while an invalidation of its frame is in flight retries and maps nothing")
    func inFlightInvalidationRetries() throws {
        let vm = try makeVM()
        let range = GuestPhysicalRange(start: vm.guestRange.start, size: 0x1000)
        vm.guestMemory.invalidations.beginInvalidation(range)
        let outcome = try vm.handler.handle(StageTwoFault(address: range.start, access: .read), context: vm.contexts[0])
        #expect(outcome == .retry(.invalidationInProgress))
        #expect(vm.leaves.isEmpty)
        vm.guestMemory.invalidations.endInvalidation(range)
        #expect(try vm.access(range.start, .read) == [.mapped(level: 1)])
    }

    @Test("A fault whose memslot changed between the resolve and the lock retries and maps nothing")
    func memslotChangeRetries() throws {
        let vm = try makeVM()
        // Dirty logging is switched on just before the fault takes the lock
        // (after it resolved the frame with logging off).
        let memory = vm.guestMemory
        let lock = HookedReaderWriterLock { _ = try? memory.updateMemslotFlags(id: 1, to: .dirtyLogging) }
        let handler = StageTwoFaultHandler(pageTable: vm.mmu, guestMemory: vm.guestMemory, lock: lock)
        let outcome = try handler.handle(StageTwoFault(address: vm.guestRange.start, access: .write), context: vm.contexts[0])
        #expect(outcome == .retry(.memslotsChanged))
        #expect(vm.leaves.isEmpty)
        #expect(try handler.handle(StageTwoFault(address: vm.guestRange.start, access: .write), context: vm.contexts[0])
                == .mapped(level: 0))
    }

    @Test("A fault after a memslot flag change that moves no invalidation uses the new flags, not the vCPU's memo")
    func memoFollowsMemslotGeneration() throws {
        let vm = try makeVM()
        // The first fault fills vCPU 0's memo of the memslot and host run.
        #expect(try vm.access(vm.guestRange.start, .read) == [.mapped(level: 1)])
        // Dirty logging switched on in the memslot alone: the generation
        // moves, the invalidation sequence does not.
        try vm.guestMemory.updateMemslotFlags(id: 1, inserting: .dirtyLogging)
        let second = vm.guestRange.start.advanced(by: 2 << 20)
        #expect(try vm.access(second, .read) == [.mapped(level: 0)])
    }

    @Test("A fault after the vCPU's remembered page table was unlinked walks from the root and maps in one fault")
    func leafTableMemoDroppedAfterUnlink() throws {
        let vm = try makeVM(host: .size4K)
        // The first fault links the tables and remembers the page table.
        #expect(try vm.access(vm.guestRange.start, .write) == [.mapped(level: 0)])
        // The unmap empties the page table and frees it (and the table above).
        try vm.lock.withExclusive { () throws(SLATError) in
            try vm.mmu.unmap(GuestPhysicalRange(start: vm.guestRange.start, size: 0x1000), context: vm.contexts[0])
        }
        let next = vm.guestRange.start.advanced(by: 0x1000)
        #expect(try vm.access(next, .write) == [.mapped(level: 0)])
        #expect(vm.leaves.map(\.guestAddress) == [next])
        #expect(vm.reportsAfterCoherenceCheck().isEmpty)
    }

    @Test("A logged write after logging was switched off and on again marks the new bitmap, not the vCPU's memo of the old one")
    func dirtyLogMemoFollowsRestart() throws {
        let vm = try makeVM(host: .size4K)
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[0])
        let first = vm.guestRange.start
        #expect(try vm.access(first, .write) == [.mapped(level: 0)])
        let old = try #require(vm.mmu.dirtyLogs.bitmap(forMemslot: 1))
        #expect(old.isMarked(first.frame))
        try vm.mmu.disableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory)
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[0])
        let second = vm.guestRange.start.advanced(by: 0x1000)
        #expect(try vm.access(second, .write) == [.mapped(level: 0)])
        let new = try #require(vm.mmu.dirtyLogs.bitmap(forMemslot: 1))
        #expect(new.isMarked(second.frame))
        #expect(!old.isMarked(second.frame))
    }

    @Test("With a per-slot lock on the tables' reader slot words, faults map and leave the slot idle")
    func combinedLockAndReadSection() throws {
        let vm = try makeVM(host: .size4K)
        let lock = PerSlotReaderWriterLock(readerSlotWords: vm.mmu.table.reclaimer.readerSlotWords)
        let handler = StageTwoFaultHandler(pageTable: vm.mmu, guestMemory: vm.guestMemory, lock: lock)
        for page in 0..<4 as Range<UInt64> {
            let address = vm.guestRange.start.advanced(by: page << 12)
            #expect(try handler.handle(StageTwoFault(address: address, access: .write), context: vm.contexts[0])
                    == .mapped(level: 0))
        }
        // The slot word is clear again: an exclusive holder does not wait,
        // and the reclaimer's grace period completes.
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
        vm.mmu.table.reclaimer.synchronize()
        #expect(vm.leaves.count == 4)
    }

    @Test("A fault outside every memslot is MMIO: an error, nothing mapped")
    func faultOutsideMemslotsIsMMIO() throws {
        let vm = try makeVM()
        let address = GuestPhysicalAddress(0x4000_0000)
        #expect(throws: SLATError.noMemslot(address.frame)) {
            try vm.handler.handle(StageTwoFault(address: address, access: .read), context: vm.contexts[0])
        }
        #expect(vm.leaves.isEmpty)
    }

    @Test("A fault past the IPA size is rejected")
    func faultPastIPASize() throws {
        let vm = try makeVM()
        let address = GuestPhysicalAddress(1 << 40)
        #expect(throws: SLATError.guestRangeOutOfBounds(GuestPhysicalRange(start: address, size: 1), limit: 1 << 40)) {
            try vm.handler.handle(StageTwoFault(address: address, access: .read), context: vm.contexts[0])
        }
    }

    @Test("A 16 KiB page over contiguous 4 KiB host pages is mapped")
    func largeGranuleOverContiguousHostPages() throws {
        let vm = try makeVM(granule: .size16KiB, host: .size4K)
        let address = vm.guestRange.start.advanced(by: 0x4000 + 0x2000)
        #expect(try vm.access(address, .write) == [.mapped(level: 0)])
        let leaf = try #require(vm.mmu.table.translate(address).translation)
        #expect(leaf.leafOutput == vm.expectedOutput(of: leaf.leafAddress))
        #expect(leaf.size == 0x4000)
    }

    @Test("A 16 KiB page over scattered 4 KiB host pages is rejected, nothing mapped")
    func largeGranuleOverScatteredHostPages() throws {
        let vm = try makeVM(granule: .size16KiB, host: .size4K, size: 0x4000)
        // Move the second 4 KiB page of the granule elsewhere.
        let hva = HostVirtualAddress(StageTwoTestVM<SimulatedContextTLB>.hostVirtualBase + 0x1000)
        try vm.guestMemory.hostPages.remap(HostVirtualRange(start: hva, size: 0x1000),
                                           to: HostPhysicalAddress(0x30_0000_0000).frame)
        #expect(throws: SLATError.invalidHostMapping(hva)) {
            try vm.handler.handle(StageTwoFault(address: vm.guestRange.start, access: .read), context: vm.contexts[0])
        }
        #expect(vm.leaves.isEmpty)
    }

    @Test("A write to a read-only memslot is an error for the VMM to emulate")
    func writeToReadOnlyMemslot() throws {
        let vm = try makeVM()
        try vm.guestMemory.updateMemslotFlags(id: 1, to: .readOnly)
        #expect(throws: SLATError.readOnlyMemslot(slot: 1, frame: vm.guestRange.start.frame)) {
            try vm.handler.handle(StageTwoFault(address: vm.guestRange.start, access: .write), context: vm.contexts[0])
        }
        #expect(try vm.access(vm.guestRange.start, .read) == [.mapped(level: 1)])
        #expect(vm.mmu.table.translate(vm.guestRange.start).translation?.attributes.permissions == .read)
    }
}

@Suite("Stage-2 mmu-notifier binding")
struct StageTwoNotifierTests {
    func makeVM() throws -> StageTwoTestVM<SimulatedContextTLB> {
        try StageTwoTestVM(granule: .size4KiB, vcpus: 2, guestBase: 0x1_0000_0000, size: 4 << 20,
                           hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 64)
    }

    @Test("A host unmap inside a block zaps the whole block and invalidates it before returning")
    func hostUnmapZapsBlock() throws {
        let vm = try makeVM()
        try vm.access(vm.guestRange.start, .read, vcpu: 0)
        try vm.access(vm.guestRange.start.advanced(by: 0x20_0000), .read, vcpu: 1)
        let hva = HostVirtualAddress(StageTwoTestVM<SimulatedContextTLB>.hostVirtualBase + 0x3000)
        try vm.guestMemory.hostPages.unmap(HostVirtualRange(start: hva, size: 0x1000))
        #expect(vm.leaves.map(\.guestAddress) == [vm.guestRange.start.advanced(by: 0x20_0000)])
        #expect(vm.simulatedTLB.vcpu(0).entries.isEmpty)
        #expect(vm.simulatedTLB.vcpu(1).entries.count == 1)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("After the host moves a page, the next fault maps the new frame")
    func faultAfterRemapMapsNewFrame() throws {
        let vm = try makeVM()
        try vm.access(vm.guestRange.start, .read)
        let hva = HostVirtualAddress(StageTwoTestVM<SimulatedContextTLB>.hostVirtualBase)
        let moved = HostPhysicalAddress(0x30_0000_0000)
        try vm.guestMemory.hostPages.remap(HostVirtualRange(start: hva, size: 0x1000), to: moved.frame)
        #expect(try vm.access(vm.guestRange.start, .read) == [.mapped(level: 0)])
        #expect(vm.mmu.table.translate(vm.guestRange.start).translation?.output == moved)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("Removing the memslot zaps everything it mapped")
    func memslotRemovalZaps() throws {
        let vm = try makeVM()
        try vm.access(vm.guestRange.start, .write)
        try vm.access(vm.guestRange.start.advanced(by: 0x20_0000), .write)
        _ = try vm.guestMemory.removeMemslot(id: 1)
        #expect(vm.leaves.isEmpty)
        #expect(vm.simulatedTLB.vcpu(0).entries.isEmpty)
    }
}
