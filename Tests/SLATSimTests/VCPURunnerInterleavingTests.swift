import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Foundation
import Synchronization
import Testing

/// Per-vCPU state a fault handler may touch only from that vCPU's thread.
// @unchecked Sendable: element i is used only by vCPU thread i (and by the
// test thread before and after the run, which the run's thread start and
// join order).
final class PerVCPUContexts: @unchecked Sendable {
    let contexts: [PageTableContext]
    init(count: Int, firstSlot: Int = 0) { contexts = (0..<count).map { PageTableContext(readerSlot: firstSlot + $0) } }
    subscript(vcpu: Int) -> PageTableContext { contexts[vcpu] }
}

/// Demand paging for the tests: maps the faulting page (shared mode) to
/// guest + `offset`, or grants every right on a permission fault.
final class DemandPager<Format: PageTableFormat>: Sendable {
    let table: PageTable<Format, SimMemory>
    let tlb: SimulatedContextTLB
    let contexts: PerVCPUContexts
    let offset: UInt64

    init(table: PageTable<Format, SimMemory>, tlb: SimulatedContextTLB, vcpus: Int, offset: UInt64 = 0x1_0000_0000) {
        self.table = table
        self.tlb = tlb
        self.contexts = PerVCPUContexts(count: vcpus)
        self.offset = offset
    }

    func handle(_ vcpu: Int, _ violation: Violation) -> FaultResolution {
        let page = violation.address.alignedDown(to: table.format.pageSize)
        let range = GuestPhysicalRange(start: page, size: table.format.pageSize)
        var batch = TLBFlushBatch()
        do {
            switch violation.kind {
            case .notPresent:
                try table.map(range, to: HostPhysicalAddress(page.rawValue + offset), attributes: LeafAttributes(permissions: .all),
                              maximumLevel: 0, mode: .shared, context: contexts[vcpu], batch: &batch, tlb: tlb)
            case .permission:
                try table.changePermissions(range, grant: .all, mode: .shared, context: contexts[vcpu], batch: &batch, tlb: tlb)
            default:
                table.settle(batch, tlb: tlb, mode: .shared)
                return .stop
            }
        } catch {
            table.settle(batch, tlb: tlb, mode: .shared)
            return .stop
        }
        table.settle(batch, tlb: tlb, mode: .shared)
        return .retry
    }
}

/// vCPU threads really overlap, their counters add up, and streams are
/// reproducible from the seed.
@Suite struct VCPURunnerInterleavingTests {
    static let ept = try! ExtendedPageTableFormat(levelCount: 4)

    @Test("Two vCPU threads interleave their accesses and fault on a shared range, and the detectors stay quiet")
    func twoThreadsInterleave() throws {
        let machine = try SimMachine(Self.ept, vcpus: 2, pages: 256)
        let pager = DemandPager(table: machine.table, tlb: machine.tlb, vcpus: 2)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let pages: UInt64 = 64
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0x100_0000), size: pages * 4096),
                                  pattern: .random, mix: AccessMix(writePercent: 30), sharing: .overlapping, accessesPerVCPU: 40_000)
        let result = runner.run(stream, seed: 0x5EED, tracksInterleaving: true) { pager.handle($0, $1) }
        #expect(!result.stopped)
        for counters in result.vcpus {
            #expect(counters.accesses == 40_000)
            #expect(counters.tlbHits + counters.tlbMisses == counters.accesses + counters.retries)
            #expect(counters.faults == counters.retries + counters.abandoned)
            #expect(counters.abandoned == 0)
            #expect(counters.interleavings > 0, "vCPU \(counters.vcpu) never followed the other: \(result.vcpus)")
        }
        // Every page was demand-mapped once by whichever vCPU got there first.
        #expect(result.total.faults >= Int(pages))
        #expect(machine.tlb.verifyCoherence().isEmpty)
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
        var model = ReferenceModel(format: Self.ept)
        model.map(stream.range, to: HostPhysicalAddress(0x1_0100_0000), permissions: .all)
        #expect(model.differences(from: machine.table).isEmpty)
    }

    @Test("Both vCPUs are inside the fault handler for the same page at once, and the page ends up mapped correctly")
    func simultaneousFaultsOnOnePage() throws {
        let machine = try SimMachine(Self.ept, vcpus: 2, pages: 64)
        let pager = DemandPager(table: machine.table, tlb: machine.tlb, vcpus: 2)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let first = GuestPhysicalAddress(0x200_0000)
        let arrivals = Atomic<Int>(0)
        let overlapped = Atomic<Bool>(false)
        let stream = AccessStream(range: GuestPhysicalRange(start: first, size: 16 * 4096), pattern: .sequential, accessesPerVCPU: 64)
        let result = runner.run(stream, seed: 5) { vcpu, violation in
            if violation.address == first && arrivals.load(ordering: .relaxed) < 2 {
                // Wait (bounded) until the other vCPU faults on the same page too.
                arrivals.wrappingAdd(1, ordering: .acquiringAndReleasing)
                let deadline = ContinuousClock.now + .seconds(20)
                while arrivals.load(ordering: .acquiring) < 2 && ContinuousClock.now < deadline { sched_yield() }
                if arrivals.load(ordering: .acquiring) == 2 { overlapped.store(true, ordering: .relaxed) }
            }
            return pager.handle(vcpu, violation)
        }
        let bothInside = overlapped.load(ordering: .relaxed)
        #expect(bothInside, "the two vCPUs never faulted on one page at the same time")
        #expect(result.vcpus.allSatisfy { $0.faults >= 1 && $0.accesses == 64 && $0.abandoned == 0 })
        #expect(machine.table.translate(first).translation?.output == HostPhysicalAddress(first.rawValue + pager.offset))
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
    }

    @Test("A vCPU's accesses follow from the seed alone")
    func streamsAreDeterministic() {
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 1 << 24), pattern: .random,
                                  mix: AccessMix(writePercent: 40, executePercent: 10), accessesPerVCPU: 100)
        func sequence(_ seed: UInt64, vcpu: Int) -> [String] {
            var cursor = AccessStreamCursor(stream: stream, vcpu: vcpu, vcpuCount: 4, seed: seed)
            return (0..<100).map { _ in let next = cursor.next(); return "\(next.address) \(next.kind)" }
        }
        #expect(sequence(7, vcpu: 2) == sequence(7, vcpu: 2))
        #expect(sequence(7, vcpu: 2) != sequence(8, vcpu: 2))
        #expect(sequence(7, vcpu: 1) != sequence(7, vcpu: 2))
    }

    @Test("Per-vCPU slices keep each vCPU in its own part of the range")
    func perVCPUSlicesAreDisjoint() {
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0x10_0000), size: 0x40_0000), pattern: .random,
                                  sharing: .perVCPU, accessesPerVCPU: 1000)
        for vcpu in 0..<4 {
            var cursor = AccessStreamCursor(stream: stream, vcpu: vcpu, vcpuCount: 4, seed: 1)
            let slice = GuestPhysicalRange(start: GuestPhysicalAddress(0x10_0000 + UInt64(vcpu) * 0x10_0000), size: 0x10_0000)
            #expect((0..<1000).allSatisfy { _ in slice.contains(cursor.next().address) })
        }
    }

    @Test("Sequential and strided patterns visit in order and wrap")
    func orderedPatterns() {
        let range = GuestPhysicalRange(start: GuestPhysicalAddress(0x1000), size: 0x4000)
        var sequential = AccessStreamCursor(stream: AccessStream(range: range, accessesPerVCPU: 6), vcpu: 0, vcpuCount: 1, seed: 0)
        #expect((0..<6).map { _ in sequential.next().address.rawValue } == [0x1000, 0x2000, 0x3000, 0x4000, 0x1000, 0x2000])
        var strided = AccessStreamCursor(stream: AccessStream(range: range, pattern: .strided(0x3000), accessesPerVCPU: 4),
                                         vcpu: 0, vcpuCount: 1, seed: 0)
        #expect((0..<4).map { _ in strided.next().address.rawValue } == [0x1000, 0x4000, 0x3000, 0x2000])
    }

    @Test("The access mix gives reads, writes and fetches in its proportions")
    func mixProportions() {
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 1 << 20),
                                  mix: AccessMix(writePercent: 30, executePercent: 20), accessesPerVCPU: 10_000)
        var cursor = AccessStreamCursor(stream: stream, vcpu: 0, vcpuCount: 1, seed: 3)
        var counts: [AccessKind: Int] = [:]
        for _ in 0..<10_000 { counts[cursor.next().kind, default: 0] += 1 }
        #expect((2_700...3_300).contains(counts[.write, default: 0]))
        #expect((1_700...2_300).contains(counts[.executePrivileged, default: 0]))
        #expect((4_600...5_400).contains(counts[.read, default: 0]))
    }

    @Test("A handler that never fixes the fault exhausts the retries and the access is abandoned")
    func retryLimitAbandons() throws {
        let machine = try SimMachine(Self.ept, vcpus: 2)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 0x10000), accessesPerVCPU: 5)
        let result = runner.run(stream, seed: 1, maximumRetries: 3) { _, _ in .retry }
        for counters in result.vcpus {
            #expect(counters.accesses == 5 && counters.retries == 15 && counters.faults == 20 && counters.abandoned == 5)
        }
    }

    @Test("A handler's stop ends every vCPU's run")
    func stopEndsTheRun() throws {
        let machine = try SimMachine(Self.ept, vcpus: 2)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let stream = AccessStream(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 0x10000), accessesPerVCPU: 1_000_000)
        let result = runner.run(stream, seed: 1) { _, _ in .stop }
        #expect(result.stopped)
        #expect(result.total.accesses < 2_000_000)
        #expect(result.total.abandoned >= 1)
    }
}
