import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Testing

extension SimFormat {
    /// A window holding two of the second-smallest leaves (so blocks,
    /// splits and merges happen) without making the model large.
    var window: GuestPhysicalRange {
        let format = self.format
        let levels = format.leafLevels
        let size = format.entrySize(atLevel: levels[min(1, levels.count - 1)])
        return GuestPhysicalRange(start: GuestPhysicalAddress(size * 4), size: size * 2)
    }
}

/// The random operation generator, the differential harness and the shrinker.
@Suite struct OperationGeneratorTests {
    @Test("Random sequences with correct flushes keep tables, model and TLBs coherent", arguments: SimFormat.allCases)
    func randomSequencesAreCoherent(_ simFormat: SimFormat) throws {
        try checkRandomSequences(simFormat.format, window: simFormat.window)
    }

    func checkRandomSequences<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange) throws {
        for seed: UInt64 in [1, 2] {
            let generator = OperationGenerator(format: format, window: window, seed: seed)
            let failure = OperationShrinker.check(seed: seed, count: 200, generator: generator) {
                TableHarness.replay($0, format: format, window: window)
            }
            #expect(failure == nil, "\(failure?.description ?? "")")
        }
    }

    @Test("Protects whose flush is lost are found and shrunk to a 1-minimal sequence ending in the protect",
          arguments: [SimFormat.eptAccessedDirty, .stageTwo4KiB])
    func lostFlushIsShrunk(_ simFormat: SimFormat) throws {
        try checkLostFlush(simFormat.format, window: simFormat.window)
    }

    func checkLostFlush<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange) throws {
        let losesProtectFlushes: (TableHarness<F>) -> Void = { harness in
            harness.dropsFlush = { if case .protect = $0 { true } else { false } }
        }
        let property: ([TableOperation]) -> String? = {
            TableHarness.replay($0, format: format, window: window, configure: losesProtectFlushes)
        }
        let generator = OperationGenerator(format: format, window: window, seed: 0xBAD)
        let failure = try #require(OperationShrinker.check(seed: 0xBAD, count: 400, generator: generator, property: property))
        // A stale translation needs at least a mapping, an access that caches
        // it and the protect (which reduced it or split its leaf).
        #expect((3...5).contains(failure.operations.count), "\(failure)")
        if case .protect = failure.operations.last {} else { Issue.record("the last operation is not a protect: \(failure)") }
        #expect(failure.operations.contains { if case .access = $0 { true } else { false } })
        #expect(failure.message.contains("stale translation"), "\(failure.message)")
        #expect(failure.description.contains("seed 0xbad"))
        // 1-minimal: without any one of its operations the sequence passes.
        for index in failure.operations.indices {
            var fewer = failure.operations
            fewer.remove(at: index)
            #expect(property(fewer) == nil, "still fails without operation \(index): \(failure)")
        }
        // And with correct flushes the same sequence passes.
        #expect(TableHarness.replay(failure.operations, format: format, window: window) == nil)
    }

    @Test("The shrinker reduces a failure to the operations that cause it")
    func shrinkerFindsTheCause() {
        let culpritMap = TableOperation.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x5000), size: 0x1000),
                                            output: HostPhysicalAddress(0x9000), permissions: .read, maximumLevel: 0)
        let culpritUnmap = TableOperation.unmap(GuestPhysicalRange(start: GuestPhysicalAddress(0x5000), size: 0x8000))
        var operations: [TableOperation] = (0..<40).map { .invalidate(GuestPhysicalRange(start: GuestPhysicalAddress(UInt64($0) << 12), size: 0x1000)) }
        operations.insert(culpritMap, at: 7)
        operations.insert(culpritUnmap, at: 30)
        // Fails when an unmap covering 0x5000 follows the map of 0x5000.
        let property: ([TableOperation]) -> String? = { sequence in
            guard let mapIndex = sequence.firstIndex(of: culpritMap) else { return nil }
            let unmapsAfter = sequence[mapIndex...].contains {
                if case .unmap(let range) = $0 { return range.contains(GuestPhysicalAddress(0x5000)) }
                return false
            }
            return unmapsAfter ? "unmapped" : nil
        }
        let (shrunk, message) = OperationShrinker.shrink(operations, message: "unmapped", property: property)
        #expect(message == "unmapped")
        #expect(shrunk == [culpritMap, .unmap(GuestPhysicalRange(start: GuestPhysicalAddress(0x5000), size: 0x1000))])
    }

    @Test("The generator's operations follow from the seed")
    func generatorIsDeterministic() {
        let format = SimFormat.stageTwo4KiB.format as! StageTwoFormat
        let window = SimFormat.stageTwo4KiB.window
        var first = OperationGenerator(format: format, window: window, seed: 42)
        var second = OperationGenerator(format: format, window: window, seed: 42)
        var other = OperationGenerator(format: format, window: window, seed: 43)
        let sequence = first.operations(200)
        #expect(sequence == second.operations(200))
        #expect(sequence != other.operations(200))
    }

    @Test("Generated operations stay in the window, aligned, and cover every kind", arguments: SimFormat.allCases)
    func generatedOperationsAreWellFormed(_ simFormat: SimFormat) {
        checkWellFormed(simFormat.format, window: simFormat.window)
    }

    func checkWellFormed<F: PageTableFormat>(_ format: F, window: GuestPhysicalRange) {
        var generator = OperationGenerator(format: format, window: window, seed: 9)
        var kinds = Set<String>()
        for operation in generator.operations(500) {
            let name = String(describing: operation).split(separator: " ").first.map(String.init) ?? ""
            kinds.insert(name == "vCPU" ? "access" : name)
            guard let range = operation.range else { continue }
            #expect(window.contains(range.start) && range.end <= window.end, "\(operation)")
            if case .access = operation { continue }
            #expect(range.start.isAligned(to: format.pageSize) && range.size % format.pageSize == 0 && range.size > 0, "\(operation)")
        }
        #expect(kinds == ["map", "unmap", "protect", "split", "merge", "invalidate", "access"])
    }
}

/// The reference model and its differential check.
@Suite struct ReferenceModelTests {
    static let format = try! ExtendedPageTableFormat(levelCount: 4)

    @Test("A table built by the same operations matches the model")
    func matchingTableHasNoDifferences() throws {
        let machine = try SimMachine(Self.format)
        var model = ReferenceModel(format: Self.format)
        try machine.map(0x20_0000, size: 0x40_0000, to: 0x8000_0000)
        model.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x20_0000), size: 0x40_0000), to: HostPhysicalAddress(0x8000_0000), permissions: .readWrite)
        try machine.protect(0x30_0000, size: 0x2000, revoke: .write)
        model.changePermissions(GuestPhysicalRange(start: GuestPhysicalAddress(0x30_0000), size: 0x2000), grant: [], revoke: .write, format: Self.format)
        #expect(model.translation(of: GuestPhysicalAddress(0x30_0010))?.permissions == .read)
        #expect(model.differences(from: machine.table).isEmpty)
    }

    @Test("A wrong output, wrong permissions, a missing and an extra page are each reported at their address")
    func differencesAreReported() throws {
        let machine = try SimMachine(Self.format)
        var model = ReferenceModel(format: Self.format)
        try machine.map(0x1000, size: 0x3000, to: 0x10_0000, maximumLevel: 0)
        model.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), size: 0x1000), to: HostPhysicalAddress(0x10_0000), permissions: .readWrite)
        model.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x2000), size: 0x1000), to: HostPhysicalAddress(0x99_0000), permissions: .readWrite)
        model.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x3000), size: 0x1000), to: HostPhysicalAddress(0x10_2000), permissions: .read)
        model.map(GuestPhysicalRange(start: GuestPhysicalAddress(0x5000), size: 0x1000), to: HostPhysicalAddress(0x10_4000), permissions: .read)
        try machine.map(0x7000, size: 0x1000, to: 0x20_0000, maximumLevel: 0)
        let differences = model.differences(from: machine.table)
        #expect(differences.map(\.address.rawValue).sorted() == [0x2000, 0x3000, 0x5000, 0x7000])
        #expect(differences.first { $0.address.rawValue == 0x5000 }?.actual == nil)
        #expect(differences.first { $0.address.rawValue == 0x7000 }?.expected == nil)
    }
}
