import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 in-place leaf updates: access flag, relaxed permissions, write protection")
struct StageTwoLeafUpdateTests {
    typealias Fixture = StageTwoMMUFixture

    func mappedBlock(_ permissions: Permissions = .readWrite) throws -> Fixture {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: permissions),
                            context: fixture.context)
        return fixture
    }

    @Test("test-and-clear-young reports a young leaf once, clears its access flag and invalidates nothing")
    func testAndClearYoungClearsOnce() throws {
        let fixture = try mappedBlock()
        let counts = fixture.tlb.counts
        #expect(try fixture.mmu.testAndClearYoung(Fixture.block, mode: .exclusive, context: fixture.context))
        #expect(fixture.leaves.first?.attributes.accessed == false)
        #expect(try !fixture.mmu.testAndClearYoung(Fixture.block, mode: .exclusive, context: fixture.context))
        #expect(fixture.tlb.counts == counts)
    }

    @Test("mkyoung sets the access flag of the leaf holding the address, keeping its output and size")
    func makeYoungSetsAccessFlag() throws {
        let fixture = try mappedBlock()
        _ = try fixture.mmu.testAndClearYoung(Fixture.block, mode: .exclusive, context: fixture.context)
        let result = try fixture.mmu.makeYoung(Fixture.block.start.advanced(by: 0x3_4000), mode: .shared, context: fixture.context)
        #expect(result.leavesChanged == 1)
        #expect(result.lastLeaf?.address == Fixture.block.start)
        #expect(result.lastLeaf?.level == 1)
        let leaf = try #require(fixture.leaves.first)
        #expect(leaf.attributes.accessed && leaf.output == Fixture.blockOutput && leaf.level == 1)
    }

    @Test("mkyoung of an unmapped address changes nothing")
    func makeYoungOfHoleChangesNothing() throws {
        let fixture = try Fixture()
        let result = try fixture.mmu.makeYoung(GuestPhysicalAddress(0x1000), mode: .shared, context: fixture.context)
        #expect(result.leavesSeen == 0)
        #expect(fixture.leaves.isEmpty)
    }

    @Test("Relaxing permissions only adds them and invalidates the leaf's address at its level")
    func relaxAddsAndInvalidatesLocally() throws {
        let fixture = try mappedBlock(.read)
        let result = try fixture.mmu.relaxPermissions(Fixture.block.start.advanced(by: 0x1000), grant: .write,
                                                      mode: .shared, context: fixture.context)
        #expect(result.leavesChanged == 1)
        #expect(fixture.leaves.first?.attributes.permissions == .readWrite)
        #expect(fixture.tlb.counts == TLBInvalidationCounts(addresses: 1))
        _ = try fixture.mmu.relaxPermissions(Fixture.block.start, grant: .read, mode: .shared, context: fixture.context)
        #expect(fixture.leaves.first?.attributes.permissions == .readWrite)
    }

    @Test("Relaxing permissions a leaf already has still invalidates its address (a CPU may cache the faulting entry)")
    func relaxWithNothingToAddInvalidates() throws {
        let fixture = try mappedBlock(.readWrite)
        let result = try fixture.mmu.relaxPermissions(Fixture.block.start, grant: .write, mode: .shared,
                                                      context: fixture.context)
        #expect(result.leavesSeen == 1 && result.leavesChanged == 0)
        #expect(fixture.tlb.counts == TLBInvalidationCounts(addresses: 1))
    }

    @Test("A locked entry is reported to the caller, which retries")
    func lockedEntryIsReported() throws {
        let fixture = try mappedBlock()
        let pointer = try #require(leafPointer(fixture, at: Fixture.block.start))
        let original = pointer.pointee.load(ordering: .relaxed)
        pointer.pointee.store(fixture.format.frozenEntry, ordering: .relaxed)
        let result = try fixture.mmu.makeYoung(Fixture.block.start, mode: .shared, context: fixture.context)
        #expect(result.metLockedEntry)
        #expect(pointer.pointee.load(ordering: .relaxed) == fixture.format.frozenEntry)
        pointer.pointee.store(original, ordering: .relaxed)
    }

    @Test("Write protection owes its invalidation to the caller's batch: nothing is flushed before settling")
    func writeProtectLeavesTheFlushToTheCaller() throws {
        let fixture = try mappedBlock()
        var batch = TLBFlushBatch()
        try fixture.mmu.writeProtect(Fixture.block, context: fixture.context, batch: &batch)
        #expect(fixture.tlb.counts.total == 0)
        let owes = !batch.isEmpty
        #expect(owes)
        fixture.mmu.settle(batch, mode: .exclusive)
        #expect(fixture.tlb.counts.total == 1)
        #expect(fixture.leaves.first?.attributes.permissions == .read)
    }

    /// The entry that maps `address` (found by walking).
    func leafPointer(_ fixture: Fixture, at address: GuestPhysicalAddress) -> EntryPointer? {
        struct Finder: PageTableVisitor {
            var pointer: EntryPointer?
            var visits: WalkVisits { .leaf }
            mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
                pointer = entry.pointer
                return .stop
            }
        }
        var finder = Finder()
        _ = try? fixture.mmu.table.walker.walk(GuestPhysicalRange(start: address, size: 0x1000), with: &finder)
        return finder.pointer
    }
}
