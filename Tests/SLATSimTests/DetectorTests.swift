import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

/// The TLB detectors report deliberately wrong flush sequences with the
/// right kind and address, and stay quiet on the right ones.
@Suite struct DetectorTests {
    static let stageTwo = try! StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
    static let ept = try! ExtendedPageTableFormat(levelCount: 4)

    /// Maps a 2 MiB region as 4 KiB pages, caches two of them on vCPU 0,
    /// then replaces the level-0 table by a 2 MiB block by hand: the table
    /// entry is cleared, `invalidate` runs, the block is written and the
    /// table page freed, as a merge does.
    func mergeByHand(invalidate: (SimMachine<StageTwoFormat>) -> Void) throws -> SimMachine<StageTwoFormat> {
        let machine = try SimMachine(Self.stageTwo)
        let block: UInt64 = 0x20_0000
        try machine.map(block, size: 0x20_0000, to: 0x4000_0000, maximumLevel: 0)
        machine.access(block, .read)
        machine.access(block + 0x1000, .read)
        #expect(machine.tlb.vcpu(0).count == 2)

        let leaf = try #require(machine.walker.lookUp(GuestPhysicalAddress(block)).translation)
        let tablePage = leaf.path[leaf.path.count - 1]
        let parentPage = leaf.path[leaf.path.count - 2]
        let parentEntry = machine.memory.entries(at: parentPage) + Self.stageTwo.index(of: GuestPhysicalAddress(block), atLevel: 1)
        parentEntry.pointee.store(0, ordering: .releasing)
        invalidate(machine)
        let blockEntry = Self.stageTwo.leafEntry(output: HostPhysicalAddress(0x4000_0000),
                                                 attributes: LeafAttributes(permissions: .readWrite), atLevel: 1)
        parentEntry.pointee.store(blockEntry, ordering: .releasing)
        machine.memory.freePage(tablePage)
        return machine
    }

    @Test("Coherence checks can run any number of times: the stored grant check does not grow with reads")
    func repeatedCoherenceChecksStayShallow() throws {
        let machine = try SimMachine(Self.ept)
        try machine.map(0x10_0000, size: 0x1000, to: 0x4000_0000)
        machine.access(0x10_0000, .read)
        // Each check reads the stored closure and calls it on the cached
        // entry; a closure re-wrapped on every read overflowed the stack
        // after some tens of thousands of reads.
        for _ in 0..<200_000 { machine.tlb.verifyCoherence() }
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
        #expect(machine.tlb.vcpu(0).count == 1)
    }

    @Test("A table replaced by a block with only a page-level invalidation: freed table still cached, stale use, conflict")
    func blockWithPageLevelInvalidationIsReported() throws {
        let machine = try mergeByHand { $0.tlb.invalidate(address: GuestPhysicalAddress(0x20_0000), level: $0.format.leafLevel(ofHeight: 1)) }
        let freed = machine.log.reports(of: .freedTableStillCached)
        #expect(freed.count == 1)
        #expect(freed.first?.address == GuestPhysicalAddress(0x20_0000))
        #expect(Set(freed.first?.entries.map(\.guestAddress.rawValue) ?? []) == [0x20_0000, 0x20_1000])

        // The guest keeps using a 4 KiB entry through the freed table...
        #expect(machine.access(0x20_1008, .read) == .translated(HostPhysicalAddress(0x4000_1008), tlbHit: true))
        let stale = machine.log.reports(of: .staleUse)
        #expect(stale.count == 1 && stale.first?.address == GuestPhysicalAddress(0x20_1008))

        // ...and a miss elsewhere in the block fills the block beside them.
        #expect(machine.access(0x20_8000, .read).output == HostPhysicalAddress(0x4000_8000))
        let conflicts = machine.log.reports(of: .conflict)
        #expect(conflicts.count == 1)
        #expect(conflicts.first?.address == GuestPhysicalAddress(0x20_8000))
        #expect(conflicts.first?.entries.first?.size == 0x20_0000)
        #expect(conflicts.first?.entries.count == 3)
    }

    @Test("A table replaced by a block with a whole-context invalidation reports nothing")
    func blockWithContextInvalidationIsQuiet() throws {
        let machine = try mergeByHand { $0.tlb.invalidateAll() }
        #expect(machine.access(0x20_1008, .read) == .translated(HostPhysicalAddress(0x4000_1008), tlbHit: false))
        #expect(machine.access(0x20_8000, .read) == .translated(HostPhysicalAddress(0x4000_8000), tlbHit: true))
        machine.tlb.verifyCoherence()
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
    }

    @Test("SLATCore's own merge (map over cached pages) through the simulated TLB reports nothing")
    func libraryMergeIsQuiet() throws {
        let machine = try SimMachine(Self.stageTwo)
        try machine.map(0x20_0000, size: 0x20_0000, to: 0x4000_0000, maximumLevel: 0)
        for page in stride(from: UInt64(0x20_0000), to: 0x40_0000, by: 0x4_0000) { machine.access(page, .read) }
        try machine.map(0x20_0000, size: 0x20_0000, to: 0x4000_0000)
        #expect(machine.access(0x20_4000, .read) == .translated(HostPhysicalAddress(0x4000_4000), tlbHit: false))
        #expect(machine.tlb.vcpu(0).entries.map(\.size) == [0x20_0000])
        machine.tlb.verifyCoherence()
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
    }

    @Test("A permission cut with no flush: stale entry at the quiescent point, then stale use", arguments: [true, false])
    func permissionCutWithoutFlushIsReported(_ onEPT: Bool) throws {
        if onEPT { try checkPermissionCutWithoutFlush(Self.ept) } else { try checkPermissionCutWithoutFlush(Self.stageTwo) }
    }

    func checkPermissionCutWithoutFlush<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        try machine.map(0x30_0000, size: 0x1000, to: 0x5000_0000)
        machine.access(0x30_0000, .write, vcpu: 1)
        try machine.protect(0x30_0000, size: 0x1000, revoke: .write, flushTo: ForgetfulTLB())
        #expect(machine.log.isEmpty)
        let found = machine.tlb.verifyCoherence()
        #expect(found.count == 1)
        #expect(found.first?.kind == .staleEntry && found.first?.address == GuestPhysicalAddress(0x30_0000) && found.first?.vcpu == 1)
        #expect(machine.access(0x30_0040, .write, vcpu: 1) == .translated(HostPhysicalAddress(0x5000_0040), tlbHit: true))
        let uses = machine.log.reports(of: .staleUse)
        #expect(uses.count == 1 && uses.first?.address == GuestPhysicalAddress(0x30_0040) && uses.first?.vcpu == 1)
    }

    @Test("A permission cut with its flush reports nothing and the write faults", arguments: [true, false])
    func permissionCutWithFlushIsQuiet(_ onEPT: Bool) throws {
        if onEPT { try checkPermissionCutWithFlush(Self.ept) } else { try checkPermissionCutWithFlush(Self.stageTwo) }
    }

    func checkPermissionCutWithFlush<F: PageTableFormat>(_ format: F) throws {
        let machine = try SimMachine(format)
        try machine.map(0x30_0000, size: 0x1000, to: 0x5000_0000)
        machine.access(0x30_0000, .write, vcpu: 1)
        try machine.protect(0x30_0000, size: 0x1000, revoke: .write)
        #expect(machine.tlb.verifyCoherence().isEmpty)
        #expect(machine.access(0x30_0040, .write, vcpu: 1).violation?.kind == .permission)
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
    }

    @Test("An unmap whose flush is lost frees a table still cached", arguments: [true, false])
    func freedTableStillCachedIsReported(_ onEPT: Bool) throws {
        if onEPT { try checkFreedTable(Self.ept, flush: false) } else { try checkFreedTable(Self.stageTwo, flush: false) }
    }

    @Test("An unmap with its flush frees the table quietly", arguments: [true, false])
    func freedTableWithFlushIsQuiet(_ onEPT: Bool) throws {
        if onEPT { try checkFreedTable(Self.ept, flush: true) } else { try checkFreedTable(Self.stageTwo, flush: true) }
    }

    func checkFreedTable<F: PageTableFormat>(_ format: F, flush: Bool) throws {
        let machine = try SimMachine(format)
        try machine.map(0x60_3000, size: 0x1000, to: 0x7000_0000, maximumLevel: 0)
        machine.access(0x60_3000, .read, vcpu: 0)
        let path = try #require(machine.tlb.vcpu(0).entries.first?.path)
        let lastTable = path[path.count - 1]
        let freesBefore = machine.memory.totalFrees
        try machine.unmap(0x60_3000, size: 0x1000, flushTo: flush ? nil : ForgetfulTLB())
        #expect(machine.memory.totalFrees > freesBefore, "the emptied table is freed")
        if flush {
            #expect(machine.log.isEmpty, "\(machine.log.summary)")
            #expect(machine.access(0x60_3000, .read).violation?.kind == .notPresent)
        } else {
            let reports = machine.log.reports(of: .freedTableStillCached)
            #expect(reports.count == 1)
            #expect(reports.first?.address == GuestPhysicalAddress(0x60_3000))
            #expect(reports.first?.event == .tableFree(lastTable))
        }
    }

    @Test("A level-hinted invalidation that misses the cached size leaves a stale block; its use is reported")
    func mismatchedLevelHintIsReported() throws {
        let machine = try SimMachine(Self.ept)
        try machine.map(0x40_0000, size: 0x20_0000, to: 0x4000_0000, maximumLevel: 1)
        machine.access(0x40_0000, .read)
        // Remove the block by hand and invalidate with a level-0 hint.
        let (pointer, level) = machine.leafPointer(for: 0x40_0000)
        #expect(level == 1)
        pointer.pointee.store(0, ordering: .releasing)
        machine.tlb.invalidate(address: GuestPhysicalAddress(0x40_0000), level: machine.format.leafLevel(ofHeight: 0))
        #expect(machine.access(0x40_5000, .read).output == HostPhysicalAddress(0x4000_5000))
        let reports = machine.tlb.verifyCoherence()
        #expect(reports.count == 1)
        #expect(reports.first?.kind == .staleUse)
        #expect(reports.first?.address == GuestPhysicalAddress(0x40_5000))
        #expect(reports.first?.missedBy == .address(GuestPhysicalAddress(0x40_0000), level: 0))
    }

    @Test("The matching level hint removes the block and nothing is reported")
    func matchingLevelHintIsQuiet() throws {
        let machine = try SimMachine(Self.ept)
        try machine.map(0x40_0000, size: 0x20_0000, to: 0x4000_0000, maximumLevel: 1)
        machine.access(0x40_0000, .read)
        let (pointer, _) = machine.leafPointer(for: 0x40_0000)
        pointer.pointee.store(0, ordering: .releasing)
        machine.tlb.invalidate(address: GuestPhysicalAddress(0x40_0000), level: machine.format.leafLevel(ofHeight: 1))
        #expect(machine.access(0x40_5000, .read).violation?.kind == .notPresent)
        #expect(machine.tlb.verifyCoherence().isEmpty)
        #expect(machine.log.isEmpty)
    }

    @Test("Conflicts are not reported on EPT by default but are on request")
    func eptConflictsOnlyOnRequest() throws {
        for requested in [false, true] {
            let machine = try SimMachine(Self.ept, reportsConflicts: requested ? true : nil)
            let small = CachedTranslation(guestAddress: GuestPhysicalAddress(0x20_1000), level: 0, size: 0x1000,
                                          output: HostPhysicalAddress(0x4000_1000), permissions: .readWrite)
            let large = CachedTranslation(guestAddress: GuestPhysicalAddress(0x20_0000), level: 1, size: 0x20_0000,
                                          output: HostPhysicalAddress(0x4000_0000), permissions: .readWrite)
            machine.tlb.vcpu(0).fill(small, accessing: GuestPhysicalAddress(0x20_1000))
            machine.tlb.vcpu(0).fill(large, accessing: GuestPhysicalAddress(0x20_3000))
            #expect(machine.log.count(of: .conflict) == (requested ? 1 : 0))
            #expect(machine.tlb.vcpu(0).entries.map(\.size) == [0x20_0000], "the older entry is replaced")
        }
    }

    @Test("A report carries every field in its description")
    func reportDescription() {
        let entry = CachedTranslation(vcpu: 3, guestAddress: GuestPhysicalAddress(0x1000), level: 0, size: 0x1000,
                                      output: HostPhysicalAddress(0x9000), permissions: .read)
        let report = SimulationReport(kind: .staleUse, address: GuestPhysicalAddress(0x1008), vcpu: 3, entries: [entry],
                                      event: .access(GuestPhysicalAddress(0x1008), .read), missedBy: .address(GuestPhysicalAddress(0x1000), level: 1))
        let text = report.description
        #expect(text.contains("stale translation used") && text.contains("0x1008") && text.contains("vCPU 3"))
        #expect(text.contains("invalidate 0x1000 level 1") && text.contains("0x9000"))
    }
}
