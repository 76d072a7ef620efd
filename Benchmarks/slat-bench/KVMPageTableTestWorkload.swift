import SLAT
import SLATArm64

/// `kvm-page-table-test`: the three stages of Linux's
/// tools/testing/selftests/kvm/kvm_page_table_test.c with 2 vCPU threads,
/// each writing one address in every page of its half of the range. An
/// access faults (through ``StageTwoFaultHandler``) unless the tables
/// already grant the write, as the hardware would decide.
///
/// 1. create: the memslot is backed by huge host pages (2 MiB for `s2-4k`,
///    1 GiB for the 16/64 KiB granules), so the first fault in each block
///    maps the block;
/// 2. split: dirty logging is enabled (memslot flag, the range write-
///    protected and flushed under the MMU lock held exclusively), then every
///    write faults: the first in a block splits it, the rest map pages;
/// 3. merge: the log is cleared (write-protected again) and dirty logging
///    disabled, then the first write fault in each block merges its pages
///    back into the block (one VMID-wide invalidation each).
///
/// Timed: each stage, the write protection included; reported per page.
enum KVMPageTableTestWorkload {
    static let threads = 2

    static func run(_ format: StageTwoFormat, plan: FormatPlan) throws(BenchFailure) -> [BenchResult] {
        plan.progress.starting(Workload.kvmPageTableTest.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        var stages: [[Sample]] = [[], [], []]
        _ = try once(format, plan: plan)
        for _ in 0..<plan.repeats {
            let samples = try once(format, plan: plan)
            for stage in 0..<3 { stages[stage].append(samples[stage]) }
        }
        let metrics: [Metric] = [.kvmPageTableTestCreate, .kvmPageTableTestSplit, .kvmPageTableTestMerge]
        return (0..<3).map {
            BenchResult(metric: metrics[$0], format: plan.format, size: plan.geometry.size, ops: plan.geometry.pageCount,
                        samples: stages[$0], threads: threads)
        }
    }

    static func once(_ format: StageTwoFormat, plan: FormatPlan) throws(BenchFailure) -> [Sample] {
        let geometry = plan.geometry
        let name = "\(plan.format.rawValue) kvm-page-table-test"
        let fixture = try StageTwoBenchFixture(
            format: format, geometry: geometry, name: name, threads: threads,
            hostMapping: format.granule == .size4KiB ? .size2M : .size1G)
        var samples: [Sample] = []
        // Stage 1: create.
        samples.append(try stage(fixture, name: "\(name) create") { () throws(BenchFailure) in })
        try fixture.verify(level: 1, after: "create")
        // Stage 2: dirty logging on, writes split the blocks.
        samples.append(try stage(fixture, name: "\(name) split") { () throws(BenchFailure) in
            try setDirtyLogging(fixture, true, name: name)
        })
        try fixture.verify(level: 0, after: "split")
        // Stage 3: log cleared, dirty logging off, writes merge the pages back.
        samples.append(try stage(fixture, name: "\(name) merge") { () throws(BenchFailure) in
            try writeProtect(fixture, name: name)
            try setDirtyLogging(fixture, false, name: name)
        })
        try fixture.verify(level: 1, after: "merge")
        guard samples[2].counters.tlbContexts == fixture.blockCount else {
            throw .verification("\(name) merge: \(samples[2].counters.tlbContexts) VMID-wide invalidations for \(fixture.blockCount) blocks")
        }
        fixture.mmu.table.reclaimer.synchronize()
        return samples
    }

    /// Times `prepare` and then every thread writing its half of the pages.
    static func stage(_ fixture: StageTwoBenchFixture, name: String,
                      prepare: () throws(BenchFailure) -> Void) throws(BenchFailure) -> Sample {
        let before = fixture.snapshot()
        let start = MonotonicClock.now()
        try prepare()
        let failure = writeEveryPage(fixture)
        let end = MonotonicClock.now()
        if let failure { throw .verification("\(name): \(failure)") }
        return Sample(nanoseconds: end &- start, counters: OperationCounters(from: before, to: fixture.snapshot()))
    }

    /// Every thread writes one address in each page of its half; a write the
    /// tables do not grant faults, and the fault is retried until it maps.
    static func writeEveryPage(_ fixture: StageTwoBenchFixture) -> String? {
        let geometry = fixture.geometry
        let table = fixture.mmu.table
        let handler = fixture.handler
        let contexts = ContextsBox(fixture.contexts)
        let pages = geometry.pageCount
        let share = pages / threads
        return StageTwoBenchFixture.timeThreads(threads) { thread in
            let context = contexts.contexts[thread]
            let end = thread == threads - 1 ? pages : (thread + 1) * share
            for page in (thread * share)..<end {
                let address = GuestPhysicalAddress(geometry.guestBase &+ UInt64(page) &* geometry.pageSize)
                var attempts = 0
                while table.translate(address, context: context).translation?.attributes.permissions.contains(.write) != true {
                    attempts += 1
                    if attempts > 100 { return "\(address): the write still faults after 100 faults" }
                    do {
                        _ = try handler.handle(StageTwoFault(address: address, access: .write), context: context)
                    } catch {
                        return "\(address): \(error)"
                    }
                }
            }
            return nil
        }.1
    }

    static func writeProtect(_ fixture: StageTwoBenchFixture, name: String) throws(BenchFailure) {
        fixture.lock.lockExclusive()
        defer { fixture.lock.unlockExclusive() }
        var batch = TLBFlushBatch()
        do {
            try fixture.mmu.writeProtect(fixture.geometry.range, context: fixture.contexts[0], batch: &batch)
        } catch {
            fixture.mmu.settle(batch, mode: .exclusive)
            throw .library("\(name): write protection", error)
        }
        fixture.mmu.settle(batch, mode: .exclusive)
    }

    static func setDirtyLogging(_ fixture: StageTwoBenchFixture, _ on: Bool, name: String) throws(BenchFailure) {
        do {
            try fixture.guestMemory.updateMemslotFlags(id: 1, to: on ? .dirtyLogging : [])
        } catch {
            throw .library("\(name): memslot flags", error)
        }
        if on { try writeProtect(fixture, name: name) }
    }
}
