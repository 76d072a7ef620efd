import SLAT
import SLATArm64

/// `fault`: every page of the range faulted in by a write through
/// ``StageTwoFaultHandler`` (memslot lookup, host page, invalidation check,
/// MMU lock shared, map), on 1 or `--threads` threads each faulting its share. The
/// memslot is backed by 4 KiB host pages for `s2-4k` and 2 MiB host pages
/// for the 16/64 KiB granules (whose blocks are larger), so every fault maps
/// one smallest page. Timed: all the faults, page-cache top-ups included.
/// `fault-threads-separate-vms`: the same faults with a VM (tables, guest
/// memory, lock) per thread, nothing shared in SLAT: the machine's ceiling
/// for `fault-threads`.
enum FaultWorkload {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, threads: Int, separateVMs: Bool = false) throws(BenchFailure) -> BenchResult {
        let metric: Metric = separateVMs ? .faultThreadsSeparateVMs : threads == 1 ? .fault : .faultThreads
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            separateVMs ? try onceSeparate(format, plan: plan, threads: threads) : try once(format, plan: plan, threads: threads)
        }
        return BenchResult(metric: metric, format: plan.format, size: plan.geometry.size,
                           ops: plan.geometry.pageCount, samples: samples, threads: threads)
    }

    static func once(_ format: StageTwoFormat, plan: FormatPlan, threads: Int) throws(BenchFailure) -> Sample {
        let geometry = plan.geometry
        let name = "\(plan.format.rawValue) fault"
        let fixture = try StageTwoBenchFixture(
            format: format, geometry: geometry, name: name, threads: threads,
            hostMapping: format.granule == .size4KiB ? .size4K : .size2M)
        let handler = fixture.handler
        let contexts = ContextsBox(fixture.contexts)
        let pages = geometry.pageCount
        let share = pages / threads
        let before = fixture.snapshot()
        let (nanoseconds, failure) = StageTwoBenchFixture.timeThreads(threads) { thread in
            let end = thread == threads - 1 ? pages : (thread + 1) * share
            for page in (thread * share)..<end {
                let address = GuestPhysicalAddress(geometry.guestBase &+ UInt64(page) &* geometry.pageSize)
                do {
                    let outcome = try handler.handle(StageTwoFault(address: address, access: .write),
                                                     context: contexts.contexts[thread])
                    guard case .mapped(level: 0) = outcome else { return "\(address): \(outcome)" }
                } catch {
                    return "\(address): \(error)"
                }
            }
            return nil
        }
        if let failure { throw .verification("\(name): \(failure)") }
        let counters = OperationCounters(from: before, to: fixture.snapshot())
        try fixture.verify(level: 0, after: "fault")
        return Sample(nanoseconds: nanoseconds, counters: counters)
    }

    /// One repeat with a VM per thread: thread `t` faults its share of the
    /// pages in its own VM (the same guest range in each, so the work per
    /// thread equals `once`'s).
    static func onceSeparate(_ format: StageTwoFormat, plan: FormatPlan, threads: Int) throws(BenchFailure) -> Sample {
        let geometry = plan.geometry
        let name = "\(plan.format.rawValue) fault (a VM per thread)"
        var fixtures: [StageTwoBenchFixture] = []
        for _ in 0..<threads {
            fixtures.append(try StageTwoBenchFixture(
                format: format, geometry: geometry, name: name, threads: 1,
                hostMapping: format.granule == .size4KiB ? .size4K : .size2M))
        }
        let handlers = HandlersBox(fixtures.map(\.handler), contexts: fixtures.map { $0.contexts[0] })
        let pages = geometry.pageCount
        let share = pages / threads
        let befores = fixtures.map { $0.snapshot() }
        let (nanoseconds, failure) = StageTwoBenchFixture.timeThreads(threads) { thread in
            let end = thread == threads - 1 ? pages : (thread + 1) * share
            for page in (thread * share)..<end {
                let address = GuestPhysicalAddress(geometry.guestBase &+ UInt64(page) &* geometry.pageSize)
                do {
                    let outcome = try handlers.handlers[thread].handle(StageTwoFault(address: address, access: .write),
                                                                       context: handlers.contexts[thread])
                    guard case .mapped(level: 0) = outcome else { return "\(address): \(outcome)" }
                } catch {
                    return "\(address): \(error)"
                }
            }
            return nil
        }
        if let failure { throw .verification("\(name): \(failure)") }
        // Summed over the VMs.
        var counters = OperationCounters()
        for index in 0..<threads {
            let vm = OperationCounters(from: befores[index], to: fixtures[index].snapshot())
            counters.tlbAddresses += vm.tlbAddresses
            counters.tlbRanges += vm.tlbRanges
            counters.tlbContexts += vm.tlbContexts
            counters.tablesAllocated += vm.tablesAllocated
            counters.tablesFreed += vm.tablesFreed
        }
        // Each VM maps its thread's share, at the smallest level.
        for thread in 0..<threads {
            let end = thread == threads - 1 ? pages : (thread + 1) * share
            for page in (thread * share)..<end {
                let probe = geometry.guestBase &+ UInt64(page) &* geometry.pageSize
                guard let translation = fixtures[thread].mmu.table.translate(GuestPhysicalAddress(probe)).translation,
                      translation.output.rawValue == geometry.expectedOutput(of: probe), translation.level == 0 else {
                    throw .verification("\(name): 0x\(String(probe, radix: 16)) not mapped in VM \(thread)")
                }
            }
        }
        return Sample(nanoseconds: nanoseconds, counters: counters)
    }
}

/// The per-thread handlers and contexts of a VM-per-thread section.
// @unchecked Sendable: thread i only uses handlers[i] and contexts[i]; the
// section joins every thread before anything else reads them.
final class HandlersBox: @unchecked Sendable {
    let handlers: [StageTwoBenchFixture.Handler]
    let contexts: [PageTableContext]
    init(_ handlers: [StageTwoBenchFixture.Handler], contexts: [PageTableContext]) {
        self.handlers = handlers
        self.contexts = contexts
    }
}
