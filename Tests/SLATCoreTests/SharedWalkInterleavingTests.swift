import Testing
import SLATArm64
import SLATCore
import SLATx86

/// Shared-mode races forced deterministically on one thread: a hook in the
/// table memory runs a second operation (with its own context and reader
/// slot, as another vCPU would) at an exact point inside the first. Each
/// test names the interleaving and checks that both operations took effect
/// as if one had run after the other, and that every table page is either
/// reachable or freed exactly once.
@Suite struct SharedWalkInterleavingTests {
    static let kib4: UInt64 = 0x1000
    static let mib2: UInt64 = 0x20_0000
    static let gib1: UInt64 = 0x4000_0000

    struct Setup {
        let arena: TableArena
        let memory: HookedMemory
        let table: PageTable<ExtendedPageTableFormat, HookedMemory>
        let first = PageTableContext(readerSlot: 0)
        let second = PageTableContext(readerSlot: 1)
        let tlb = CountingTLB()

        init() throws {
            arena = try TableArena(pageCount: 64, prefault: false)
            memory = HookedMemory(arena)
            table = try PageTable(format: try ExtendedPageTableFormat(levelCount: 4), memory: memory, readerSlots: 2)
        }

        func map(_ start: UInt64, size: UInt64 = kib4, to output: UInt64, permissions: Permissions = .readWrite,
                 maximumLevel: Int? = 0, context: PageTableContext) throws(SLATError) {
            var batch = TLBFlushBatch()
            var failure: SLATError?
            do throws(SLATError) {
                try table.map(GuestPhysicalRange(start, size: size), to: HostPhysicalAddress(output),
                              attributes: LeafAttributes(permissions: permissions), maximumLevel: maximumLevel,
                              mode: .shared, context: context, batch: &batch, tlb: tlb)
            } catch { failure = error }
            table.settle(batch, tlb: tlb, mode: .shared)
            if let failure { throw failure }
        }

        func unmap(_ start: UInt64, size: UInt64 = kib4, context: PageTableContext) throws(SLATError) {
            var batch = TLBFlushBatch()
            var failure: SLATError?
            do throws(SLATError) {
                try table.unmap(GuestPhysicalRange(start, size: size), mode: .shared, context: context, batch: &batch, tlb: tlb)
            } catch { failure = error }
            table.settle(batch, tlb: tlb, mode: .shared)
            if let failure { throw failure }
        }

        func output(_ address: UInt64) -> UInt64? { table.outputAddress(of: GuestPhysicalAddress(address))?.rawValue }

        /// After both operations: grace periods over, every page reachable,
        /// cached in a context, or freed.
        func checkAccounting(_ comment: Comment? = nil) {
            table.reclaimer.synchronize()
            #expect(tableInvariantViolations(table, allowEmptyTables: true).isEmpty, comment)
            #expect(arena.allocatedPageCount
                    == table.reachableTablePages().count + first.pageCache.count + second.pageCache.count, comment)
        }
    }

    @Test("A map whose new, still empty table is freed by a concurrent unmap still maps its range")
    func mapSurvivesItsNewTableBeingFreed() throws {
        let s = try Setup()
        // Keep the 512 GiB table alive with a page in the first 1 GiB slot.
        try s.map(Self.gib1, to: 0x10_0000_0000, context: s.first)
        let target = 2 * Self.gib1
        var raced = false
        var hookError: SLATError?
        // Right after the mapper links an empty table for the second 1 GiB
        // slot (and counts it), an unmapper walks into that table, finds it
        // empty and frees it — before the mapper's walk descends.
        s.memory.afterAdjust = { _, delta in
            guard delta == 1, !raced else { return }
            raced = true
            do throws(SLATError) { try s.unmap(target + 2 * Self.mib2, context: s.second) } catch { hookError = error }
        }
        try s.map(target, to: 0x20_0000_0000, context: s.first)
        s.memory.afterAdjust = nil
        #expect(raced && hookError == nil)
        #expect(s.table.reclaimer.retiredCount == 1, "the unmapper did not free the new table")
        #expect(s.output(target) == 0x20_0000_0000, "the map returned without mapping its page")
        s.checkAccounting()
    }

    @Test("A shared permission change keeps the tables it pre-checks alive (it checks inside its read section)")
    func permissionPrecheckRunsInsideTheReadSection() throws {
        let s = try Setup()
        let target = Self.gib1
        try s.map(target, to: 0x10_0000_0000, permissions: .read, context: s.first)
        let tables = Array(s.table.reachableTablePages().dropFirst())
        #expect(tables.count == 3)
        var raced = false
        var hookError: SLATError?
        var allocatedDuringCheck: [Bool] = []
        // Granting write needs the encodability pre-check on EPT (an
        // execute-only leaf cannot get write). While it walks, another
        // vCPU unmaps the page, retires the tables and tries to reclaim them.
        s.memory.onEntries = { _ in
            guard !raced else { return }
            raced = true
            do throws(SLATError) { try s.unmap(target, context: s.second) } catch { hookError = error }
            for _ in 0..<4 { s.table.reclaimer.reclaim() }
            allocatedDuringCheck = tables.map { s.arena.isAllocated($0) }
        }
        var batch = TLBFlushBatch()
        try s.table.changePermissions(GuestPhysicalRange(target, size: Self.kib4), grant: .write, mode: .shared,
                                      context: s.first, batch: &batch, tlb: s.tlb)
        s.table.settle(batch, tlb: s.tlb, mode: .shared)
        s.memory.onEntries = nil
        #expect(raced && hookError == nil)
        #expect(s.table.reclaimer.retiredCount == 3)
        #expect(allocatedDuringCheck == [true, true, true], "tables were freed under a walk of the permission check")
        s.checkAccounting()
        #expect(s.table.reachableTablePages().count == 1)
    }

    @Test("A map that loses the race to link a table gives its page back and uses the winner's table")
    func lostLinkRaceRecyclesThePage() throws {
        let s = try Setup()
        try s.map(Self.gib1, to: 0x10_0000_0000, context: s.first)
        let known = Set(s.table.reachableTablePages())
        var raced = false
        var hookError: SLATError?
        var recycled: HostPhysicalAddress?
        // While the first mapper fills its new (unlinked) table for the
        // second 2 MiB region, the second links its own table there first.
        s.memory.onEntries = { page in
            guard !raced, !known.contains(page) else { return }
            raced = true
            recycled = page
            do throws(SLATError) { try s.map(Self.gib1 + Self.mib2 + Self.kib4, to: 0x30_0000_0000, context: s.second) } catch { hookError = error }
        }
        try s.map(Self.gib1 + Self.mib2, to: 0x20_0000_0000, context: s.first)
        s.memory.onEntries = nil
        #expect(raced && hookError == nil)
        #expect(s.output(Self.gib1 + Self.mib2) == 0x20_0000_0000)
        #expect(s.output(Self.gib1 + Self.mib2 + Self.kib4) == 0x30_0000_0000)
        // One table per 2 MiB region: the loser's page is not linked...
        let reachable = s.table.reachableTablePages()
        #expect(reachable.count == 5)
        let page = try #require(recycled)
        #expect(!reachable.contains(page))
        // ...but back in its cache, zeroed, with no live entries.
        #expect(s.arena.isAllocated(page))
        #expect(s.arena.liveEntryCount(of: page) == 0)
        let entries = s.arena.entries(at: page)
        #expect((0..<512).allSatisfy { entries[$0].load(ordering: .relaxed) == 0 })
        var cached: [HostPhysicalAddress] = []
        while let taken = s.first.pageCache.take() { cached.append(taken) }
        #expect(cached.contains(page))
        for taken in cached { s.first.pageCache.giveBack(taken) }
        s.checkAccounting()
    }

    @Test("An unmap that finds a table empty keeps it when a concurrent map filled it meanwhile")
    func emptyTableRefilledMeanwhileIsKept() throws {
        let s = try Setup()
        let a = Self.gib1, b = Self.gib1 + Self.kib4
        try s.map(a, to: 0x10_0000_0000, context: s.first)
        let smallest = try #require(s.table.reachableTablePages().last)
        var raced = false
        var hookError: SLATError?
        // The unmapper has cleared the table's only leaf and read its live
        // count as zero; before it freezes the table, a mapper adds a leaf.
        s.memory.onLiveEntryCount = { page, count in
            guard !raced, page == smallest, count == 0 else { return }
            raced = true
            do throws(SLATError) { try s.map(b, to: 0x20_0000_0000, context: s.second) } catch { hookError = error }
        }
        try s.unmap(a, context: s.first)
        s.memory.onLiveEntryCount = nil
        #expect(raced && hookError == nil)
        #expect(s.output(a) == nil)
        #expect(s.output(b) == 0x20_0000_0000)
        #expect(s.table.reachableTablePages().contains(smallest))
        #expect(s.table.reclaimer.retiredCount == 0)
        s.checkAccounting()
    }

    @Test("A writer inside a subtree that a merge detaches restarts from the root and finishes over the new block")
    func writerInsideMergedSubtreeRestarts() throws {
        let s = try Setup()
        let region = Self.gib1
        try s.map(region, size: Self.mib2, to: 0x10_0000_0000, context: s.first)
        let smallest = try #require(s.table.reachableTablePages().last)
        var raced = false
        var hookError: SLATError?
        // The first writer is about to fill the existing 4 KiB table; a
        // second maps the whole 2 MiB as one block over it (a merge), which
        // freezes and detaches the table under the first writer.
        s.memory.onEntries = { page in
            guard !raced, page == smallest else { return }
            raced = true
            do throws(SLATError) {
                try s.map(region, size: Self.mib2, to: 0x10_0000_0000, maximumLevel: nil, context: s.second)
            } catch { hookError = error }
        }
        try s.map(region + 2 * Self.kib4, size: 2 * Self.kib4, to: 0x20_0000_0000, context: s.first)
        s.memory.onEntries = nil
        #expect(raced && hookError == nil)
        #expect(s.table.reclaimer.retiredCount == 1, "the merge did not detach the 4 KiB table")
        #expect(s.output(region + 2 * Self.kib4) == 0x20_0000_0000)
        #expect(s.output(region + 3 * Self.kib4) == 0x20_0000_1000)
        #expect(s.output(region + Self.kib4) == 0x10_0000_1000)
        #expect(s.output(region + Self.mib2 - Self.kib4) == 0x10_001F_F000)
        s.checkAccounting()
    }
}
