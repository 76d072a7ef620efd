import SLATArm64
import SLATCore
import SLATSim
import Testing

/// The configurations of the anchored-merge sequence: granule and the host
/// mapping size behind the memslot (large enough for the granule's block).
struct SeedThreeCase: CustomTestStringConvertible, Sendable {
    var granule: TranslationGranule
    var hostMappingSize: HostMappingSize
    var memslotSize: UInt64
    var testDescription: String { "\(granule.byteCount >> 10) KiB granule" }

    static let all = [
        SeedThreeCase(granule: .size4KiB, hostMappingSize: .size2M, memslotSize: 8 << 20),
        SeedThreeCase(granule: .size16KiB, hostMappingSize: .size1G, memslotSize: 1 << 30),
        SeedThreeCase(granule: .size64KiB, hostMappingSize: .size1G, memslotSize: 1 << 30),
    ]
}

@Suite("Seed 003: a block split by dirty logging and re-installed after the log is cancelled")
struct StageTwoSeedThreeTests {
    static let guestBase: UInt64 = 0x40_0000_0000 >> 2  // 64 GiB: aligned for every block size
    static let hostBase: UInt64 = 0x80_0000_0000 >> 2

    /// Runs the seed's steps on the first block of `vm`: map the block, two
    /// vCPUs cache it; dirty logging breaks it by a write fault into a table
    /// holding only the written page, more writes and reads map more pages
    /// and the vCPUs cache them; logging is cancelled; a write fault on a
    /// page left write-protected re-installs the block. Returns the
    /// outcomes of that last fault.
    static func runSequence<T: TLB>(_ vm: StageTwoTestVM<T>) throws -> [StageTwoFaultOutcome] {
        let base = vm.guestRange.start
        let page = vm.format.pageSize
        let blockLevel = 1
        let mapped = try vm.access(base, .write, vcpu: 0)
        #expect(mapped == [.mapped(level: blockLevel)])
        try vm.access(base.advanced(by: 3 * page), .read, vcpu: 1)
        try vm.setDirtyLogging(true)
        for (index, pageIndex) in [0, 1, 7, 300, 511].enumerated() {
            try vm.access(base.advanced(by: UInt64(pageIndex) * page), .write, vcpu: index % 2)
        }
        for pageIndex in 0..<64 {
            try vm.access(base.advanced(by: UInt64(pageIndex) * page), .read, vcpu: pageIndex % 2)
        }
        let split = vm.mmu.table.leaves(in: GuestPhysicalRange(start: base, size: vm.format.entrySize(atLevel: blockLevel)))
        #expect(split.allSatisfy { $0.level == 0 })
        // Only the pages accessed: 0..<64, 300 and 511.
        #expect(split.count == 66)
        try vm.setDirtyLogging(false)
        return try vm.access(base.advanced(by: 100 * page), .write, vcpu: 0)
    }

    @Test("The merge re-installs the block with zero TLB conflicts and exactly one VMID-wide invalidation",
          arguments: SeedThreeCase.all)
    func mergeAfterCancelledDirtyLoggingIsConflictFree(_ configuration: SeedThreeCase) throws {
        let vm = try StageTwoTestVM(
            granule: configuration.granule, vcpus: 2, guestBase: Self.guestBase, size: configuration.memslotSize,
            hostBase: Self.hostBase, hostMappingSize: configuration.hostMappingSize, tablePages: 256)
        let countsBefore = vm.simulatedTLB.counts
        let outcomes = try Self.runSequence(vm)
        #expect(outcomes == [.mapped(level: 1)])
        let blockSize = vm.format.entrySize(atLevel: 1)
        for pageIndex in stride(from: 0, to: 512, by: 37) {
            try vm.access(vm.guestRange.start.advanced(by: UInt64(pageIndex) * vm.format.pageSize), .read,
                          vcpu: pageIndex % 2)
        }
        let leaves = vm.mmu.table.leaves(in: GuestPhysicalRange(start: vm.guestRange.start, size: blockSize))
        #expect(leaves.count == 1 && leaves.first?.level == 1)
        #expect(leaves.first?.output == vm.hostBase)
        #expect(vm.simulatedTLB.counts.contexts - countsBefore.contexts == 1)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("With range invalidation the merge invalidates the block's range once, conflict-free, and not the VMID",
          arguments: SeedThreeCase.all)
    func mergeUsesOneRangeInvalidationWhereSupported(_ configuration: SeedThreeCase) throws {
        let vm = try StageTwoTestVM(
            granule: configuration.granule, vcpus: 2, guestBase: Self.guestBase, size: configuration.memslotSize,
            hostBase: Self.hostBase, hostMappingSize: configuration.hostMappingSize, tablePages: 256,
            makeTLB: { RangeInvalidatingTLB($0) })
        let outcomesBefore = try Self.runSequenceUpToMerge(vm)
        #expect(outcomesBefore.allSatisfy { !$0.isRetry })
        let before = vm.simulatedTLB.counts
        let outcomes = try vm.access(vm.guestRange.start.advanced(by: 100 * vm.format.pageSize), .write, vcpu: 0)
        #expect(outcomes == [.mapped(level: 1)])
        let after = vm.simulatedTLB.counts
        #expect(after.contexts - before.contexts == 0)
        #expect(after.ranges - before.ranges == 1)
        for pageIndex in stride(from: 0, to: 512, by: 37) {
            try vm.access(vm.guestRange.start.advanced(by: UInt64(pageIndex) * vm.format.pageSize), .read,
                          vcpu: pageIndex % 2)
        }
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    /// ``runSequence(_:)`` without its last fault (the one that merges).
    static func runSequenceUpToMerge<T: TLB>(_ vm: StageTwoTestVM<T>) throws -> [StageTwoFaultOutcome] {
        let base = vm.guestRange.start
        let page = vm.format.pageSize
        var outcomes = try vm.access(base, .write, vcpu: 0)
        outcomes += try vm.access(base.advanced(by: 3 * page), .read, vcpu: 1)
        try vm.setDirtyLogging(true)
        for (index, pageIndex) in [0, 1, 7, 300, 511].enumerated() {
            outcomes += try vm.access(base.advanced(by: UInt64(pageIndex) * page), .write, vcpu: index % 2)
        }
        for pageIndex in 0..<64 {
            outcomes += try vm.access(base.advanced(by: UInt64(pageIndex) * page), .read, vcpu: pageIndex % 2)
        }
        try vm.setDirtyLogging(false)
        return outcomes
    }

    @Test("With the VMID-wide flush downgraded to one page-level invalidation the conflict detector fires",
          arguments: SeedThreeCase.all)
    func pageLevelInvalidationOnMergeIsCaught(_ configuration: SeedThreeCase) throws {
        // The buggy merge invalidated the faulting input address only.
        let pageSize = UInt64(configuration.granule.byteCount)
        let faultAddress = GuestPhysicalAddress(Self.guestBase + 100 * pageSize)
        let vm = try StageTwoTestVM(
            granule: configuration.granule, vcpus: 2, guestBase: Self.guestBase, size: configuration.memslotSize,
            hostBase: Self.hostBase, hostMappingSize: configuration.hostMappingSize, tablePages: 256,
            makeTLB: { VMIDFlushDowngradingTLB($0, invalidatingOnly: faultAddress) })
        _ = try Self.runSequence(vm)
        // A page the vCPUs never cached at page size: filling the block
        // next to the stale page entries is the conflict.
        try vm.access(vm.guestRange.start.advanced(by: 200 * vm.format.pageSize), .read, vcpu: 1)
        #expect(vm.log.count(of: .conflict) > 0)
    }

    @Test("Each merged block costs one VMID-wide invalidation and frees its page table",
          arguments: SeedThreeCase.all.prefix(1))
    func oneVMIDWideInvalidationPerMergedBlock(_ configuration: SeedThreeCase) throws {
        let vm = try StageTwoTestVM(
            granule: configuration.granule, vcpus: 1, guestBase: Self.guestBase, size: configuration.memslotSize,
            hostBase: Self.hostBase, hostMappingSize: configuration.hostMappingSize, tablePages: 256)
        let blockSize = vm.format.entrySize(atLevel: 1)
        let blocks = Int(vm.guestRange.size / blockSize)
        for block in 0..<blocks {
            try vm.access(vm.guestRange.start.advanced(by: UInt64(block) * blockSize), .read)
        }
        try vm.setDirtyLogging(true)
        for block in 0..<blocks {
            try vm.access(vm.guestRange.start.advanced(by: UInt64(block) * blockSize), .write)
        }
        // Each block broken into a table holding only its written page.
        #expect(vm.leaves.count == blocks)
        try vm.setDirtyLogging(false)
        try vm.writeProtectMemslot()
        let freesBefore = vm.arena.totalFrees
        let before = vm.simulatedTLB.counts
        for block in 0..<blocks {
            let outcomes = try vm.access(vm.guestRange.start.advanced(by: UInt64(block) * blockSize + 5 * vm.format.pageSize), .write)
            #expect(outcomes == [.mapped(level: 1)])
        }
        #expect(vm.simulatedTLB.counts.contexts - before.contexts == blocks)
        #expect(vm.leaves.count == blocks)
        // Faults map shared: the subtrees are retired through the reclaimer.
        vm.mmu.table.reclaimer.synchronize()
        #expect(vm.arena.totalFrees - freesBefore == blocks)
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }
}
