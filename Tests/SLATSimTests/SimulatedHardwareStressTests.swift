import Foundation
import SLATArm64
import SLATCore
import SLATSim
import SLATx86
import Synchronization
import Testing

/// vCPU threads demand-fault and access a region while another thread
/// splits, merges, write-protects and unmaps it in shared mode with the
/// flushes SLATCore owes: the detectors must stay quiet and every
/// translation must stay the one the region was mapped with.
@Suite struct SimulatedHardwareStressTests {
    @Test("Concurrent accesses and shared-mode changes with correct flushes raise no report",
          arguments: [SimFormat.eptAccessedDirty, .stageTwo4KiB, .stageTwo4KiBHardwareAccessFlag])
    func concurrentChangesAreCoherent(_ simFormat: SimFormat) throws {
        try checkConcurrentChanges(simFormat.format)
    }

    func checkConcurrentChanges<F: PageTableFormat>(_ format: F) throws {
        let vcpus = 3
        let machine = try SimMachine(format, vcpus: vcpus, pages: 512)
        let pager = DemandPager(table: machine.table, tlb: machine.tlb, vcpus: vcpus)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let block = format.entrySize(atLevel: 1)
        let page = format.pageSize
        let region = GuestPhysicalRange(start: GuestPhysicalAddress(4 * block), size: 2 * block)
        let stream = AccessStream(range: region, pattern: .random, mix: AccessMix(writePercent: 40),
                                  accessesPerVCPU: 20_000, step: page)

        let finished = Atomic<Bool>(false)
        // The region starts empty; the mutator starts changing it only after
        // the first demand fault, so the run always exercises faults (under
        // load the mutator could otherwise map the whole region first).
        let faulted = Atomic<Bool>(false)
        let mutatorDone = DispatchSemaphore(value: 0)
        let table = machine.table
        let tlb = machine.tlb
        let offset = pager.offset
        let mutator = Thread {
            let context = PageTableContext(readerSlot: vcpus)
            var random = SimulationRandom(seed: 0x57E55)
            var rounds = 0
            while !faulted.load(ordering: .acquiring) { sched_yield() }
            while !finished.load(ordering: .relaxed) || rounds < 20 {
                rounds += 1
                let blockStart = region.start.rawValue + random.below(2) * block
                let pageStart = blockStart + random.below(block / page - 8) * page
                var batch = TLBFlushBatch()
                do {
                    switch random.below(4) {
                    case 0:
                        try table.changePermissions(GuestPhysicalRange(start: GuestPhysicalAddress(pageStart), size: 4 * page),
                                                    revoke: .write, mode: .shared, context: context, batch: &batch, tlb: tlb)
                    case 1:
                        try table.unmap(GuestPhysicalRange(start: GuestPhysicalAddress(pageStart), size: 8 * page),
                                        mode: .shared, context: context, batch: &batch, tlb: tlb)
                    case 2:
                        try table.map(GuestPhysicalRange(start: GuestPhysicalAddress(blockStart), size: block),
                                      to: HostPhysicalAddress(blockStart + offset), attributes: LeafAttributes(permissions: .all),
                                      mode: .shared, context: context, batch: &batch, tlb: tlb)
                    default:
                        try table.map(GuestPhysicalRange(start: GuestPhysicalAddress(pageStart), size: page),
                                      to: HostPhysicalAddress(pageStart + offset), attributes: LeafAttributes(permissions: .all),
                                      maximumLevel: 0, mode: .shared, context: context, batch: &batch, tlb: tlb)
                    }
                } catch {
                    Issue.record("mutator operation failed: \(error)")
                }
                table.settle(batch, tlb: tlb, mode: .shared)
            }
            mutatorDone.signal()
        }
        mutator.start()
        let result = runner.run(stream, seed: 0xC0FFEE, maximumRetries: 1000) { vcpu, violation in
            faulted.store(true, ordering: .releasing)
            return pager.handle(vcpu, violation)
        }
        finished.store(true, ordering: .relaxed)
        mutatorDone.wait()
        machine.table.reclaimer.synchronize()

        #expect(!result.stopped)
        #expect(result.total.accesses == vcpus * 20_000)
        #expect(result.total.faults > 0)
        #expect(machine.tlb.verifyCoherence().isEmpty)
        #expect(machine.log.isEmpty, "\(machine.log.summary)")
        for leaf in machine.table.leaves(in: region) {
            #expect(leaf.output.rawValue == leaf.guestAddress.rawValue + offset, "\(leaf)")
        }
    }
}

/// The same machinery with the flushes thrown away: the detectors must
/// report while vCPU threads run.
@Suite struct LostFlushConcurrencyTests {
    @Test("Shared-mode changes whose flushes are lost are reported while vCPUs run",
          arguments: [SimFormat.eptAccessedDirty, .stageTwo4KiB])
    func lostFlushesAreReported(_ simFormat: SimFormat) throws {
        try checkLostFlushes(simFormat.format)
    }

    func checkLostFlushes<F: PageTableFormat>(_ format: F) throws {
        let vcpus = 2
        let machine = try SimMachine(format, vcpus: vcpus, pages: 512)
        let pager = DemandPager(table: machine.table, tlb: machine.tlb, vcpus: vcpus)
        let runner = VCPURunner(walker: machine.walker, tlb: machine.tlb)
        let block = format.entrySize(atLevel: 1)
        let region = GuestPhysicalRange(start: GuestPhysicalAddress(4 * block), size: block)
        let stream = AccessStream(range: region, pattern: .random, mix: AccessMix(writePercent: 50), accessesPerVCPU: 5_000,
                                  step: format.pageSize)
        _ = runner.run(stream, seed: 11) { pager.handle($0, $1) }
        // Every vCPU now caches writable pages of the region. Cut write on
        // all of it from another thread while they keep running, and lose
        // the flush.
        let done = DispatchSemaphore(value: 0)
        let table = machine.table
        let tlb = machine.tlb
        let mutator = Thread {
            let context = PageTableContext(readerSlot: vcpus)
            var batch = TLBFlushBatch()
            do {
                try table.changePermissions(region, revoke: .write, mode: .shared, context: context, batch: &batch, tlb: tlb)
            } catch {
                Issue.record("\(error)")
            }
            table.settle(batch, tlb: ForgetfulTLB(), mode: .shared)
            done.signal()
        }
        mutator.start()
        let readers = AccessStream(range: region, pattern: .random, mix: .readOnly, accessesPerVCPU: 5_000, step: format.pageSize)
        _ = runner.run(readers, seed: 12) { pager.handle($0, $1) }
        done.wait()
        let reports = machine.tlb.verifyCoherence()
        #expect(!reports.isEmpty)
        #expect(reports.allSatisfy { $0.kind == .staleEntry && region.contains($0.address) })
        // The next write through a condemned entry is a stale use.
        let writer = AccessStream(range: region, pattern: .sequential, mix: .writeOnly, accessesPerVCPU: Int(block / format.pageSize),
                                  step: format.pageSize)
        _ = runner.run(writer, seed: 13) { _, _ in .skip }
        #expect(machine.log.count(of: .staleUse) > 0)
        #expect(machine.log.reports(of: .staleUse).allSatisfy { region.contains($0.address) })
    }
}
