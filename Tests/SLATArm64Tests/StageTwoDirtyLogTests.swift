import SLATArm64
import SLATCore
import SLATSim
import Testing

@Suite("Stage-2 dirty logging: bitmap, write protection, get-and-clear")
struct StageTwoDirtyLogTests {
    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase: UInt64 = 0x20_0000_0000

    func makeVM(host: HostMappingSize = .size2M, size: UInt64 = 4 << 20) throws -> StageTwoTestVM<SimulatedContextTLB> {
        try StageTwoTestVM(granule: .size4KiB, guestBase: Self.guestBase, size: size, hostBase: Self.hostBase,
                           hostMappingSize: host, tablePages: 64)
    }

    func enable(_ vm: StageTwoTestVM<SimulatedContextTLB>) throws {
        try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[0])
    }

    func harvest(_ vm: StageTwoTestVM<SimulatedContextTLB>) throws -> Set<UInt64> {
        let words = try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[0])
        let first = vm.guestRange.start.frame.rawValue
        var frames: Set<UInt64> = []
        for (index, word) in words.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 {
                frames.insert(first + UInt64(index) * 64 + UInt64(bit))
            }
        }
        return frames
    }

    func page(_ vm: StageTwoTestVM<SimulatedContextTLB>, _ index: UInt64) -> GuestPhysicalAddress {
        vm.guestRange.start.advanced(by: index << 12)
    }

    func frame(_ vm: StageTwoTestVM<SimulatedContextTLB>, _ index: UInt64) -> UInt64 {
        vm.guestRange.start.frame.rawValue + index
    }

    @Test("Enabling starts a clear bitmap over the memslot, flags it and write-protects every leaf")
    func enableProtects() throws {
        let vm = try makeVM()
        try vm.access(page(vm, 0), .write)
        try vm.access(page(vm, 600), .write)
        #expect(vm.leaves.allSatisfy { $0.attributes.permissions.contains(.write) })
        try enable(vm)
        #expect(vm.guestMemory.memslot(id: 1)?.flags.contains(.dirtyLogging) == true)
        let bitmap = try #require(vm.mmu.dirtyLogs.bitmap(forMemslot: 1))
        #expect(bitmap.frames == GuestFrameRange(covering: vm.guestRange) && bitmap.markedCount == 0)
        #expect(!vm.leaves.isEmpty && vm.leaves.allSatisfy { !$0.attributes.permissions.contains(.write) })
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("A removed memslot takes its dirty log with it")
    func removedMemslotDropsItsLog() throws {
        let vm = try makeVM()
        try enable(vm)
        _ = try vm.guestMemory.removeMemslot(id: 1)
        #expect(vm.mmu.dirtyLogs.bitmap(forMemslot: 1) == nil)
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: 1)) {
            try vm.mmu.getAndClearDirtyLog(memslot: 1, lock: vm.lock, context: vm.contexts[0])
        }
    }

    @Test("Enabling replaces a log that outlived its memslot, so writes to the memslot added again are logged")
    func enableReplacesStaleLog() throws {
        let vm = try makeVM()
        try enable(vm)
        // The notifier binding would drop the log; without it the log outlives the memslot.
        vm.binding.cancel()
        var slot = try vm.guestMemory.removeMemslot(id: 1)
        slot.flags = []
        try vm.guestMemory.addMemslot(slot)
        try vm.access(page(vm, 7), .write)
        try enable(vm)
        #expect(vm.guestMemory.memslot(id: 1)?.flags.contains(.dirtyLogging) == true)
        try vm.access(page(vm, 7), .write)
        #expect(try harvest(vm) == [frame(vm, 7)])
    }

    @Test("A write fault in a logged memslot makes the page writable and marks its frame")
    func writeFaultMarks() throws {
        let vm = try makeVM()
        try enable(vm)
        #expect(try vm.access(page(vm, 5), .write) == [.mapped(level: 0)])
        #expect(vm.mmu.table.translate(page(vm, 5)).translation?.attributes.permissions == .readWrite)
        #expect(try harvest(vm) == [frame(vm, 5)])
    }

    @Test("A read fault in a logged memslot maps the page read-only and marks nothing")
    func readFaultDoesNotMark() throws {
        let vm = try makeVM()
        try enable(vm)
        try vm.access(page(vm, 9), .read)
        #expect(vm.mmu.table.translate(page(vm, 9)).translation?.attributes.permissions == .read)
        #expect(vm.mmu.dirtyLogs.bitmap(forMemslot: 1)?.markedCount == 0)
    }

    @Test("A write to a protected block breaks it and marks only the written page")
    func writeToProtectedBlockMarksItsPage() throws {
        let vm = try makeVM()
        try vm.access(page(vm, 512), .write)
        #expect(vm.leaves.map(\.level) == [1])
        try enable(vm)
        try vm.access(page(vm, 700), .write)
        #expect(vm.mmu.table.translate(page(vm, 700)).translation?.level == 0)
        #expect(try harvest(vm) == [frame(vm, 700)])
    }

    @Test("A write to a write-protected block while logging is mapped in one fault into a fresh table holding only that page, writable and marked")
    func writeToProtectedBlockTakesOneFault() throws {
        let vm = try makeVM()
        try vm.access(page(vm, 512), .write)
        try enable(vm)
        #expect(try vm.access(page(vm, 700), .write) == [.mapped(level: 0)])
        #expect(vm.mmu.table.translate(page(vm, 700)).translation?.attributes.permissions == .readWrite)
        // The rest of the block is unmapped: later faults map it page by page.
        #expect(vm.mmu.table.translate(page(vm, 701)).translation == nil)
        #expect(vm.leaves.count == 1)
        #expect(try harvest(vm) == [frame(vm, 700)])
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("Get-and-clear reports the written frames, clears the bitmap and write-protects exactly those pages")
    func harvestReprotectsReportedPages() throws {
        let vm = try makeVM()
        try enable(vm)
        for index: UInt64 in [3, 4, 70] { try vm.access(page(vm, index), .write) }
        try vm.access(page(vm, 71), .read)
        let flushesBefore = vm.simulatedTLB.counts
        #expect(try harvest(vm) == [frame(vm, 3), frame(vm, 4), frame(vm, 70)])
        #expect(vm.mmu.dirtyLogs.bitmap(forMemslot: 1)?.markedCount == 0)
        for index: UInt64 in [3, 4, 70, 71] {
            #expect(vm.mmu.table.translate(page(vm, index)).translation?.attributes.permissions == .read)
        }
        #expect(vm.simulatedTLB.counts != flushesBefore)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("A write after get-and-clear faults again and is in the next harvest")
    func writeAfterHarvestIsLoggedAgain() throws {
        let vm = try makeVM()
        try enable(vm)
        try vm.access(page(vm, 8), .write)
        _ = try harvest(vm)
        #expect(try vm.access(page(vm, 8), .write) == [.permissionsRelaxed])
        #expect(try harvest(vm) == [frame(vm, 8)])
        #expect(try harvest(vm) == [])
    }

    @Test("Runs of dirty pages spanning whole bitmap words are all reported and re-protected")
    func wholeWordRunsAreReprotected() throws {
        let vm = try makeVM()
        try enable(vm)
        let written = Array(UInt64(60)..<UInt64(200))
        for index in written { try vm.access(page(vm, index), .write) }
        #expect(try harvest(vm) == Set(written.map { frame(vm, $0) }))
        #expect(written.allSatisfy {
            vm.mmu.table.translate(page(vm, $0)).translation?.attributes.permissions == .read
        })
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("Enabling a memslot that already logs keeps its bitmap and marks")
    func enableTwiceKeepsMarks() throws {
        let vm = try makeVM()
        try enable(vm)
        try vm.access(page(vm, 1), .write)
        try enable(vm)
        #expect(try harvest(vm) == [frame(vm, 1)])
    }

    @Test("Disabling clears the flag and drops the bitmap; writes are no longer logged")
    func disableStopsLogging() throws {
        let vm = try makeVM()
        try enable(vm)
        try vm.mmu.disableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory)
        #expect(vm.guestMemory.memslot(id: 1)?.flags.contains(.dirtyLogging) == false)
        #expect(vm.mmu.dirtyLogs.bitmap(forMemslot: 1) == nil)
        #expect(try vm.access(page(vm, 2), .write) == [.mapped(level: 1)])
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: 1)) { try harvest(vm) }
    }

    @Test("Enabling an unknown memslot throws unknownMemslot and changes nothing")
    func enableUnknownMemslot() throws {
        let vm = try makeVM()
        try vm.access(page(vm, 0), .write)
        let before = vm.leaves
        #expect(throws: SLATError.unknownMemslot(slot: 7)) {
            try vm.mmu.enableDirtyLogging(memslot: 7, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[0])
        }
        #expect(vm.leaves == before && vm.mmu.dirtyLogs.bitmap(forMemslot: 7) == nil)
    }

    @Test("Get-and-clear or disable of a memslot that does not log throws dirtyLoggingNotEnabled and changes nothing")
    func harvestWithoutLogging() throws {
        let vm = try makeVM()
        try vm.access(page(vm, 0), .write)
        let before = vm.leaves
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: 1)) { try harvest(vm) }
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: 1)) {
            try vm.mmu.disableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory)
        }
        #expect(vm.leaves == before)
    }
}
