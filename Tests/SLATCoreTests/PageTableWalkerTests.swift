import Testing
import SLATArm64
import SLATCore
import SLATx86

/// ``PageTableWalker`` and ``PageTableVisitor``: visit order, visits of
/// invalid entries, the re-read after a visit, skipping and stopping, and
/// ranges that end at the top of the input address space.
@Suite struct PageTableWalkerTests {
    static let kib4: UInt64 = 0x1000
    static let mib2: UInt64 = 0x20_0000

    /// One visit, written `kind level@address`.
    struct Visit: Hashable, CustomStringConvertible {
        let kind: VisitKind
        let level: Int
        let address: UInt64
        var description: String { "\(kind) \(level)@0x\(String(address, radix: 16))" }
    }

    /// Records every visit; optionally answers with a chosen outcome.
    struct Recorder: PageTableVisitor {
        var visits: WalkVisits = [.tablePre, .leaf, .tablePost]
        var log: [Visit] = []
        var answer: (Visit, VisitedEntry) -> VisitOutcome = { _, _ in .proceed }
        mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
            let visit = Visit(kind: kind, level: entry.level, address: entry.address.rawValue)
            log.append(visit)
            return answer(visit, entry)
        }
    }

    /// EPT 4-level: a 4 KiB page at 0 and a 2 MiB leaf at 2 MiB.
    static func smallTree() throws -> TableFixture<ExtendedPageTableFormat> {
        let f = try TableFixture(try ExtendedPageTableFormat(levelCount: 4))
        try f.map(0, size: kib4, to: 0x80_0000_0000)
        try f.map(mib2, size: mib2, to: 0x80_0020_0000)
        return f
    }

    @Test("Tables are visited before and after their children, leaves in address order, invalid entries included")
    func visitOrder() throws {
        let f = try Self.smallTree()
        var recorder = Recorder()
        let completed = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &recorder)
        #expect(completed)
        var expected = [Visit(kind: .tablePre, level: 3, address: 0), Visit(kind: .tablePre, level: 2, address: 0),
                        Visit(kind: .tablePre, level: 1, address: 0)]
        expected += (0..<512).map { Visit(kind: .leaf, level: 0, address: UInt64($0) * Self.kib4) }
        expected += [Visit(kind: .tablePost, level: 1, address: 0), Visit(kind: .leaf, level: 1, address: Self.mib2),
                     Visit(kind: .tablePost, level: 2, address: 0), Visit(kind: .tablePost, level: 3, address: 0)]
        #expect(recorder.log == expected)
    }

    @Test("Every visit carries the walk's mode, exclusive by default")
    func visitsCarryTheWalkMode() throws {
        let f = try Self.smallTree()
        for mode in [WalkMode.shared, .exclusive] {
            var modes: [WalkMode] = []
            var recorder = Recorder()
            recorder.answer = { _, entry in
                modes.append(entry.mode)
                return .proceed
            }
            _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), mode: mode, with: &recorder)
            #expect(modes.count == recorder.log.count && !modes.isEmpty)
            #expect(modes.allSatisfy { $0 == mode })
        }
        var defaultModes: [WalkMode] = []
        var recorder = Recorder(visits: .leaf)
        recorder.answer = { _, entry in
            defaultModes.append(entry.mode)
            return .proceed
        }
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: Self.kib4), with: &recorder)
        #expect(defaultModes == [.exclusive])
    }

    @Test("Leaf visits see invalid entries with their snapshot")
    func invalidEntriesAreVisited() throws {
        let f = try Self.smallTree()
        var snapshots: [UInt64: UInt64] = [:]
        var recorder = Recorder(visits: .leaf)
        recorder.answer = { visit, entry in
            snapshots[visit.address] = entry.snapshot
            return .proceed
        }
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 3 * Self.kib4), with: &recorder)
        #expect(recorder.log.map(\.address) == [0, Self.kib4, 2 * Self.kib4])
        #expect(snapshots[0] != 0)
        #expect(snapshots[Self.kib4] == 0 && snapshots[2 * Self.kib4] == 0)
    }

    @Test("Only the requested kinds of visit are made")
    func visitKindsAreFiltered() throws {
        let f = try Self.smallTree()
        var pre = Recorder(visits: .tablePre)
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &pre)
        #expect(pre.log.map(\.description) == ["tablePre 3@0x0", "tablePre 2@0x0", "tablePre 1@0x0"])
        var post = Recorder(visits: .tablePost)
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &post)
        #expect(post.log.map(\.description) == ["tablePost 1@0x0", "tablePost 2@0x0", "tablePost 3@0x0"])
    }

    @Test("A table a leaf visit installs is walked into (the walker re-reads after each visit)")
    func installedTableIsWalkedInto() throws {
        let f = try Self.smallTree()
        let page = try f.arena.allocatePage()
        let format = f.format
        var recorder = Recorder(visits: .leaf)
        // At the empty 2 MiB entry at 4 MiB, link a (zeroed) 4 KiB table.
        recorder.answer = { visit, entry in
            if visit.level == 1 && visit.address == 2 * Self.mib2 {
                entry.pointer.pointee.store(format.tableEntry(child: page), ordering: .releasing)
            }
            return .proceed
        }
        _ = try f.table.walker.walk(GuestPhysicalRange(2 * Self.mib2, size: 4 * Self.kib4), with: &recorder)
        #expect(recorder.log.map(\.description)
                == ["leaf 1@0x400000", "leaf 0@0x400000", "leaf 0@0x401000", "leaf 0@0x402000", "leaf 0@0x403000"])
    }

    @Test("A subtree a table-pre visit replaced is not walked")
    func replacedSubtreeIsNotWalked() throws {
        let f = try Self.smallTree()
        var recorder = Recorder(visits: [.tablePre, .leaf, .tablePost])
        // Clear the level-1 table entry at 0 in its table-pre visit: the
        // walker re-reads it, finds no table, and makes a leaf visit instead.
        recorder.answer = { visit, entry in
            if visit.kind == .tablePre && visit.level == 1 { entry.pointer.pointee.store(0, ordering: .releasing) }
            return .proceed
        }
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: Self.mib2), with: &recorder)
        #expect(recorder.log.map(\.description)
                == ["tablePre 3@0x0", "tablePre 2@0x0", "tablePre 1@0x0", "leaf 1@0x0", "tablePost 2@0x0", "tablePost 3@0x0"])
    }

    @Test("skipChildren from a table-pre visit skips the subtree and its table-post visit")
    func skipChildren() throws {
        let f = try Self.smallTree()
        var recorder = Recorder()
        recorder.answer = { visit, _ in visit.kind == .tablePre && visit.level == 2 ? .skipChildren : .proceed }
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &recorder)
        #expect(recorder.log.map(\.description) == ["tablePre 3@0x0", "tablePre 2@0x0", "tablePost 3@0x0"])
    }

    @Test("stop ends the walk at once and makes walk return false")
    func stop() throws {
        let f = try Self.smallTree()
        var recorder = Recorder()
        recorder.answer = { visit, _ in visit.kind == .leaf && visit.address == 2 * Self.kib4 ? .stop : .proceed }
        let completed = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &recorder)
        #expect(!completed)
        #expect(recorder.log.last?.description == "leaf 0@0x2000")
        #expect(recorder.log.count == 3 + 3)
    }

    @Test("An error thrown by a visitor ends the walk and reaches the caller")
    func visitorErrorsPropagate() throws {
        let f = try Self.smallTree()
        struct Thrower: PageTableVisitor {
            var visits: WalkVisits { .leaf }
            var seen = 0
            mutating func visit(_ entry: inout VisitedEntry, kind: VisitKind) throws(SLATError) -> VisitOutcome {
                seen += 1
                if seen == 2 { throw .unsupportedLevel(42) }
                return .proceed
            }
        }
        var thrower = Thrower()
        #expect(throws: SLATError.unsupportedLevel(42)) {
            _ = try f.table.walker.walk(GuestPhysicalRange(0, size: 2 * Self.mib2), with: &thrower)
        }
        #expect(thrower.seen == 2)
    }

    @Test("An empty range visits nothing")
    func emptyRange() throws {
        let f = try Self.smallTree()
        var recorder = Recorder()
        #expect(try f.table.walker.walk(GuestPhysicalRange(0, size: 0), with: &recorder))
        #expect(recorder.log.isEmpty)
    }

    @Test("A range ending exactly at the end of the input address space is walked to its last entry",
          arguments: FormatCase.allCases)
    func rangeEndingAtTheTop(_ formatCase: FormatCase) throws { try checkTop(formatCase.format) }

    func checkTop<F: PageTableFormat>(_ format: F) throws {
        let f = try TableFixture(format)
        let top = format.inputAddressSpaceSize
        try f.map(top - f.page, size: f.page, to: 0x80_0000_0000)
        var recorder = Recorder(visits: .leaf)
        let completed = try f.table.walker.walk(GuestPhysicalRange(top - 3 * f.page, size: 3 * f.page), with: &recorder)
        #expect(completed)
        #expect(recorder.log.map(\.address) == [top - 3 * f.page, top - 2 * f.page, top - f.page])
        #expect(recorder.log.allSatisfy { $0.level == 0 })
        // The whole space: the last leaf is the last visit, every root entry is seen once.
        var all = Recorder(visits: [.tablePre, .leaf])
        _ = try f.table.walker.walk(GuestPhysicalRange(0, size: top), with: &all)
        #expect(all.log.last == Visit(kind: .leaf, level: 0, address: top - f.page))
        #expect(all.log.filter { $0.level == format.rootLevel }.count == format.rootEntryCount)
        #expect(f.table.leaves().map(\.guestAddress.rawValue) == [top - f.page])
    }
}
