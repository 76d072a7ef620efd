import Foundation
import SLATArm64
import SLATCore
import SLATSim
import Synchronization
import Testing

/// The vCPU contexts of a run, one per vCPU thread.
// @unchecked Sendable: vCPU thread i only ever touches contexts[i], and the
// runner joins every thread before the test reads them again.
final class VCPUContexts: @unchecked Sendable {
    let contexts: [PageTableContext]
    init(_ contexts: [PageTableContext]) { self.contexts = contexts }
}

/// One granule's configuration for the kvm_page_table_test-style stress.
struct StressCase: CustomTestStringConvertible, Sendable {
    var granule: TranslationGranule
    var hostMappingSize: HostMappingSize
    var memslotSize: UInt64
    var blocks: Int
    var testDescription: String { "\(granule.byteCount >> 10) KiB granule, \(blocks) blocks" }

    static let all = [
        StressCase(granule: .size4KiB, hostMappingSize: .size2M, memslotSize: 16 << 20, blocks: 8),
        StressCase(granule: .size16KiB, hostMappingSize: .size1G, memslotSize: 1 << 30, blocks: 2),
        StressCase(granule: .size64KiB, hostMappingSize: .size1G, memslotSize: 1 << 30, blocks: 1),
    ]
}

@Suite("Stage-2 kvm_page_table_test-style stress: create, split under dirty logging, merge back")
struct StageTwoPageTableStressTests {
    static let vcpus = 4

    /// Runs `stream` on every vCPU with the fault handler; returns the
    /// run's counters and any error a handler threw.
    static func run(
        _ vm: StageTwoTestVM<SimulatedContextTLB>, _ stream: AccessStream, seed: UInt64
    ) -> (VCPURunResult, [String]) {
        vm.refreshGrantCheck()
        let runner = VCPURunner(walker: vm.walker, tlb: vm.simulatedTLB)
        let contexts = VCPUContexts(vm.contexts)
        let handler = vm.handler
        let errors = Mutex<[String]>([])
        let result = runner.run(stream, seed: seed, maximumRetries: 64) { vcpu, violation in
            do {
                _ = try handler.handle(StageTwoTestVM<SimulatedContextTLB>.fault(for: violation), context: contexts.contexts[vcpu])
                return .retry
            } catch {
                errors.withLock { $0.append("vCPU \(vcpu) at \(violation.address): \(error)") }
                return .stop
            }
        }
        return (result, errors.withLock { $0 })
    }

    /// A stream writing every page of `range`, each vCPU its own slice.
    static func writeEveryPage(_ range: GuestPhysicalRange, pageSize: UInt64) -> AccessStream {
        AccessStream(range: range, pattern: .sequential, mix: .writeOnly, sharing: .perVCPU,
                     accessesPerVCPU: Int(range.size / pageSize) / vcpus, step: pageSize)
    }

    /// A stream of reads and writes at random pages, every vCPU over the whole range (contention).
    static func contend(_ range: GuestPhysicalRange, pageSize: UInt64, accesses: Int) -> AccessStream {
        AccessStream(range: range, pattern: .random, mix: AccessMix(writePercent: 50), sharing: .overlapping,
                     accessesPerVCPU: accesses, step: pageSize)
    }

    @Test("Create, split by dirty logging, merge back: reference model equal, detectors clean, one VMID-wide flush per merge",
          arguments: StressCase.all)
    func createSplitMerge(_ configuration: StressCase) throws {
        let vm = try StageTwoTestVM(
            granule: configuration.granule, vcpus: Self.vcpus, guestBase: 0x40_0000_0000, size: configuration.memslotSize,
            hostBase: 0x80_0000_0000, hostMappingSize: configuration.hostMappingSize, tablePages: 512)
        let pageSize = vm.format.pageSize
        let blockSize = vm.format.entrySize(atLevel: 1)
        let range = GuestPhysicalRange(start: vm.guestRange.start, size: blockSize * UInt64(configuration.blocks))
        var model = ReferenceModel(format: vm.format)
        model.map(range, to: vm.hostBase, permissions: .readWrite)

        // Stage 1: create the mappings (blocks).
        var (result, errors) = Self.run(vm, Self.writeEveryPage(range, pageSize: pageSize), seed: 1)
        #expect(errors == [] && result.total.abandoned == 0)
        #expect(model.differences(from: vm.mmu.table, in: range) == [])
        #expect(vm.mmu.table.leaves(in: range).allSatisfy { $0.level == 1 })

        // Stage 2: dirty logging splits the blocks into pages under contention.
        try vm.setDirtyLogging(true)
        (result, errors) = Self.run(vm, Self.contend(range, pageSize: pageSize, accesses: 512), seed: 2)
        #expect(errors == [] && result.total.abandoned == 0)
        (result, errors) = Self.run(vm, Self.writeEveryPage(range, pageSize: pageSize), seed: 3)
        #expect(errors == [] && result.total.abandoned == 0)
        #expect(model.differences(from: vm.mmu.table, in: range) == [])
        #expect(vm.mmu.table.leaves(in: range).allSatisfy { $0.level == 0 })
        #expect(vm.reportsAfterCoherenceCheck() == [])

        // Stage 3: log cleared and dirty logging cancelled; faults merge the pages back into blocks.
        try vm.writeProtectMemslot()
        try vm.setDirtyLogging(false)
        let before = vm.simulatedTLB.counts
        (result, errors) = Self.run(vm, Self.contend(range, pageSize: pageSize, accesses: 512), seed: 4)
        #expect(errors == [] && result.total.abandoned == 0)
        (result, errors) = Self.run(vm, Self.writeEveryPage(range, pageSize: pageSize), seed: 5)
        #expect(errors == [] && result.total.abandoned == 0)
        #expect(model.differences(from: vm.mmu.table, in: range) == [])
        #expect(vm.mmu.table.leaves(in: range).map(\.level) == Array(repeating: 1, count: configuration.blocks))
        #expect(vm.simulatedTLB.counts.contexts - before.contexts == configuration.blocks)
        #expect(vm.reportsAfterCoherenceCheck() == [])
        vm.mmu.table.reclaimer.synchronize()
    }
}

@Suite("Stage-2 parallel fault concurrency")
struct StageTwoFaultConcurrencyTests {
    // The next two tests drive the fault handler directly with a counting
    // TLB (atomics only), so ThreadSanitizer sees only SLAT's own
    // synchronisation.

    @Test("Racing read and write faults on the same pages never downgrade a writable page")
    func racingFaultsNeverDowngrade() throws {
        let vm = try StageTwoTestVM(granule: .size4KiB, vcpus: 2, guestBase: 0x1_0000_0000, size: 2 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 64,
                                    makeTLB: { _ in CountingTLB() })
        try vm.setDirtyLogging(true)
        let contexts = VCPUContexts(vm.contexts)
        let handler = vm.handler
        let pages = 512
        let errors = Mutex<[String]>([])
        // Both vCPUs meet before each page, so their faults on it overlap.
        let arrived = Atomic<Int>(0)
        let done = DispatchGroup()
        for vcpu in 0..<2 {
            done.enter()
            Thread {
                let access: StageTwoAccess = vcpu == 0 ? .write : .read
                for page in 0..<pages {
                    arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
                    while arrived.load(ordering: .acquiring) < 2 * (page + 1) {}
                    let fault = StageTwoFault(address: GuestPhysicalAddress(0x1_0000_0000 + UInt64(page) * 0x1000), access: access)
                    do {
                        // A refused or raced fault is re-run, as the guest would.
                        for _ in 0..<100 {
                            if case .retry = try handler.handle(fault, context: contexts.contexts[vcpu]) { continue }
                            break
                        }
                    } catch {
                        errors.withLock { $0.append("\(error)") }
                    }
                }
                done.leave()
            }.start()
        }
        done.wait()
        #expect(errors.withLock { $0 } == [])
        let leaves = vm.leaves
        #expect(leaves.count == pages)
        #expect(leaves.allSatisfy { $0.attributes.permissions == .readWrite })
        vm.mmu.table.reclaimer.synchronize()
    }

    @Test("Write faults of four threads split every block under dirty logging and merge each back with one VMID-wide flush",
          arguments: [TranslationGranule.size4KiB, .size16KiB])
    func threadsSplitAndMergeBlocks(_ granule: TranslationGranule) throws {
        let blocks = 2
        let tlb = CountingTLB()
        let blockSize: UInt64 = granule == .size4KiB ? 2 << 20 : 32 << 20
        // Host pages as large as the granule's block, no larger (4 KiB: 2 MiB; 16 KiB: 32 MiB blocks need 1 GiB).
        let host: HostMappingSize = granule == .size4KiB ? .size2M : .size1G
        let vm = try StageTwoTestVM(granule: granule, vcpus: 4, guestBase: 0x40_0000_0000,
                                    size: granule == .size4KiB ? blockSize * UInt64(blocks) : 1 << 30,
                                    hostBase: 0x80_0000_0000, hostMappingSize: host, tablePages: 64,
                                    makeTLB: { _ in tlb })
        let page = vm.format.pageSize
        let pagesPerBlock = Int(blockSize / page)
        let contexts = VCPUContexts(vm.contexts)
        let handler = vm.handler
        let errors = Mutex<[String]>([])
        /// Every thread write-faults pages `thread, thread + 4, ...` of every block until each fault maps.
        func writeAll(stride: Int) {
            let done = DispatchGroup()
            for thread in 0..<4 {
                done.enter()
                Thread {
                    for block in 0..<blocks {
                        for index in Swift.stride(from: thread, to: pagesPerBlock, by: stride) {
                            let address = GuestPhysicalAddress(0x40_0000_0000 + UInt64(block) * blockSize + UInt64(index) * page)
                            do {
                                for _ in 0..<100 {
                                    if case .retry = try handler.handle(StageTwoFault(address: address, access: .write),
                                                                        context: contexts.contexts[thread]) { continue }
                                    break
                                }
                            } catch {
                                errors.withLock { $0.append("\(address): \(error)") }
                            }
                        }
                    }
                    done.leave()
                }.start()
            }
            done.wait()
        }
        let range = GuestPhysicalRange(start: vm.guestRange.start, size: blockSize * UInt64(blocks))
        writeAll(stride: pagesPerBlock)  // one fault per thread per block: blocks mapped
        #expect(vm.mmu.table.leaves(in: range).map(\.level) == Array(repeating: 1, count: blocks))
        try vm.setDirtyLogging(true)
        writeAll(stride: 4)  // every page: blocks split, pages made writable
        #expect(vm.mmu.table.leaves(in: range).count == blocks * pagesPerBlock)
        try vm.writeProtectMemslot()
        try vm.setDirtyLogging(false)
        let before = tlb.counts.contexts
        writeAll(stride: 4)  // every page again: merged back
        #expect(errors.withLock { $0 } == [])
        #expect(vm.mmu.table.leaves(in: range).map(\.level) == Array(repeating: 1, count: blocks))
        #expect(tlb.counts.contexts - before == blocks)
        for offset in Swift.stride(from: UInt64(0), to: range.size, by: Int(blockSize / 4)) {
            #expect(vm.mmu.table.translate(range.start.advanced(by: offset)).translation?.output
                    == vm.hostBase.advanced(by: offset))
        }
        vm.mmu.table.reclaimer.synchronize()
    }

    @Test("Concurrent faults on every page of a block during and after dirty logging keep the tables equal to the model")
    func concurrentFaultsMatchModel() throws {
        let vm = try StageTwoTestVM(granule: .size4KiB, vcpus: 4, guestBase: 0x1_0000_0000, size: 4 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 64)
        var model = ReferenceModel(format: vm.format)
        model.map(vm.guestRange, to: vm.hostBase, permissions: .readWrite)
        try vm.setDirtyLogging(true)
        let stream = AccessStream(range: vm.guestRange, pattern: .sequential, mix: .writeOnly, sharing: .overlapping,
                                  accessesPerVCPU: 1024)
        var (result, errors) = StageTwoPageTableStressTests.run(vm, stream, seed: 9)
        #expect(errors == [] && result.total.abandoned == 0)
        #expect(model.differences(from: vm.mmu.table, in: vm.guestRange) == [])
        try vm.setDirtyLogging(false)
        try vm.writeProtectMemslot()
        (result, errors) = StageTwoPageTableStressTests.run(vm, stream, seed: 10)
        #expect(errors == [] && result.total.abandoned == 0)
        #expect(model.differences(from: vm.mmu.table, in: vm.guestRange) == [])
        #expect(vm.leaves.map(\.level) == [1, 1])
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }
}
