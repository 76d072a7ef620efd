import Testing
import SLATCore
import SLATx86

/// ``PageTableIterator``: a pre-order cursor (KVM's `tdp_iter`) with
/// explicit steps, restart from the root and a forward-progress guarantee.
@Suite struct PageTableIteratorTests {
    static let kib4: UInt64 = 0x1000
    static let mib2: UInt64 = 0x20_0000

    /// Positions of an iterator from its start to the end of its range.
    static func positions<F: PageTableFormat, M: TableMemory>(_ iterator: PageTableIterator<F, M>) -> [String] {
        var iterator = iterator
        var positions: [String] = []
        while iterator.isValid {
            positions.append("\(iterator.level)@0x\(String(iterator.address.rawValue, radix: 16))")
            iterator.advance()
        }
        return positions
    }

    static func walkerOrder<F: PageTableFormat, M: TableMemory>(_ table: PageTable<F, M>, _ range: GuestPhysicalRange) throws -> [String] {
        var recorder = PageTableWalkerTests.Recorder(visits: [.tablePre, .leaf])
        _ = try table.walker.walk(range, with: &recorder)
        return recorder.log.map { "\($0.level)@0x\(String($0.address, radix: 16))" }
    }

    @Test("The pre-order sequence of entries equals the walker's, for ranges starting and ending mid-table",
          arguments: [(UInt64(0), UInt64(0x40_0000)), (0x3000, 0x20_0000), (0x1F_F000, 0x20_3000), (0x1FF_FFFF_F000, 0x40_1000)])
    func preOrderMatchesTheWalker(_ start: UInt64, _ size: UInt64) throws {
        let f = try PageTableWalkerTests.smallTree()
        try f.map(0x200_0000_0000, size: Self.kib4, to: 0x90_0000_0000)  // another root entry
        let range = GuestPhysicalRange(start, size: size)
        let order = Self.positions(f.table.iterator(over: range))
        #expect(!order.isEmpty)
        #expect(order == (try Self.walkerOrder(f.table, range)))
    }

    /// Where the cursor is, as `level@address`, after `move` (and whether it moved).
    static func after<F: PageTableFormat, M: TableMemory>(
        _ it: inout PageTableIterator<F, M>, _ move: (inout PageTableIterator<F, M>) -> Bool
    ) -> String {
        let moved = move(&it)
        return "\(moved ? "moved" : "stayed") \(it.level)@0x\(String(it.address.rawValue, radix: 16))"
    }

    @Test("stepDown, stepSide and stepUp move one entry down, across and up, and refuse at the edges")
    func steps() throws {
        let f = try PageTableWalkerTests.smallTree()
        var it = f.table.iterator(over: GuestPhysicalRange(0, size: 2 * Self.mib2))
        #expect(it.level == 3 && it.address.rawValue == 0 && it.isAtTable)
        #expect(Self.after(&it) { $0.stepUp() } == "stayed 3@0x0", "the root has no parent")
        #expect(Self.after(&it) { $0.stepDown() } == "moved 2@0x0")
        #expect(Self.after(&it) { $0.stepDown() } == "moved 1@0x0")
        #expect(Self.after(&it) { $0.stepDown() } == "moved 0@0x0")
        #expect(it.snapshot != 0 && !it.isAtTable)
        #expect(Self.after(&it) { $0.stepDown() } == "stayed 0@0x0", "a leaf has no children")
        #expect(Self.after(&it) { $0.stepSide() } == "moved 0@0x1000")
        #expect(it.snapshot == 0)
        #expect(Self.after(&it) { $0.stepUp() } == "moved 1@0x0")
        #expect(it.isAtTable)
        #expect(Self.after(&it) { $0.stepSide() } == "moved 1@0x200000")
        #expect(it.snapshot != 0 && !it.isAtTable, "the 2 MiB leaf")
        #expect(Self.after(&it) { $0.stepUp() } == "moved 2@0x0")
        #expect(Self.after(&it) { $0.stepDown() } == "moved 1@0x200000", "down at the resume address")
        // The last entry of a 4 KiB table has no side step.
        var last = f.table.iterator(over: GuestPhysicalRange(Self.mib2 - Self.kib4, size: Self.kib4))
        for _ in 0..<3 { _ = last.stepDown() }
        #expect(Self.after(&last) { $0.stepSide() } == "stayed 0@0x1ff000")
    }

    @Test("skipChildren moves past a table without entering it; past the range the cursor is invalid")
    func skipChildren() throws {
        let f = try PageTableWalkerTests.smallTree()
        var it = f.table.iterator(over: GuestPhysicalRange(0, size: 2 * Self.mib2))
        #expect(Self.after(&it) { $0.stepDown() && $0.stepDown() } == "moved 1@0x0")
        it.skipChildren()
        #expect(it.isValid && it.level == 1 && it.address.rawValue == Self.mib2)
        it.skipChildren()
        #expect(!it.isValid)
        #expect(it.resumeAddress.rawValue == 2 * Self.mib2)
    }

    @Test("restart walks again from the root and resumes at resumeAddress")
    func restartResumes() throws {
        let f = try PageTableWalkerTests.smallTree()
        var it = f.table.iterator(over: GuestPhysicalRange(0, size: 2 * Self.mib2))
        while !(it.level == 0 && it.address.rawValue == 3 * Self.kib4) { it.advance() }
        let resume = it.resumeAddress
        #expect(resume.rawValue == 3 * Self.kib4)
        it.restart()
        #expect(it.isValid && it.level == 3 && it.address.rawValue == 0)
        #expect(it.lastRestartAddress == resume)
        it.advance()
        it.advance()
        it.advance()
        #expect(it.level == 0 && it.address == resume)
        // And the rest of the walk continues from there.
        it.advance()
        #expect(it.address.rawValue == 4 * Self.kib4)
    }

    @Test("canYield is false until the cursor has moved past its last restart")
    func canYieldNeedsProgress() throws {
        let f = try PageTableWalkerTests.smallTree()
        var it = f.table.iterator(over: GuestPhysicalRange(Self.kib4, size: 2 * Self.mib2))
        #expect(!it.canYield)
        it.advance()
        it.advance()
        it.advance()
        #expect(it.level == 0 && it.address.rawValue == Self.kib4)
        #expect(!it.canYield, "still at the start")
        it.advance()
        #expect(it.canYield)
        it.restart()
        #expect(!it.canYield)
        for _ in 0..<3 { it.advance() }
        #expect(!it.canYield, "back where it restarted")
        it.advance()
        #expect(it.canYield)
    }

    @Test("A restart past the end of the range leaves the cursor invalid")
    func restartAtTheEnd() throws {
        let f = try PageTableWalkerTests.smallTree()
        var it = f.table.iterator(over: GuestPhysicalRange(0, size: Self.kib4))
        while it.isValid { it.advance() }
        it.restart()
        #expect(!it.isValid)
    }

    @Test("The cursor does not descend below minimumLevel")
    func minimumLevel() throws {
        let f = try PageTableWalkerTests.smallTree()
        let order = Self.positions(f.table.iterator(over: GuestPhysicalRange(0, size: 2 * Self.mib2), minimumLevel: 1))
        #expect(order == ["3@0x0", "2@0x0", "1@0x0", "1@0x200000"])
    }

    @Test("An empty range gives an invalid cursor")
    func emptyRange() throws {
        let f = try PageTableWalkerTests.smallTree()
        #expect(!f.table.iterator(over: GuestPhysicalRange(0, size: 0)).isValid)
    }

    @Test("A table the caller installs at the current entry is descended into by the next advance")
    func advanceFollowsTheSnapshot() throws {
        let f = try PageTableWalkerTests.smallTree()
        let page = try f.arena.allocatePage()
        var it = f.table.iterator(over: GuestPhysicalRange(2 * Self.mib2, size: 2 * Self.kib4))
        while it.level > 1 { it.advance() }
        #expect(it.address.rawValue == 2 * Self.mib2 && it.snapshot == 0)
        let table = f.format.tableEntry(child: page)
        let (exchanged, _) = it.pointer.pointee.compareExchange(expected: 0, desired: table, ordering: .acquiringAndReleasing)
        #expect(exchanged)
        it.snapshot = table
        it.advance()
        #expect(it.level == 0 && it.address.rawValue == 2 * Self.mib2)
        it.advance()
        #expect(it.level == 0 && it.address.rawValue == 2 * Self.mib2 + Self.kib4)
        it.advance()
        #expect(!it.isValid)
    }
}
