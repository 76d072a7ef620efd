import SLAT
import SLATArm64

/// `fault`: every page of the range faulted in by a write through
/// ``StageTwoFaultHandler`` (memslot lookup, host page, invalidation check,
/// MMU lock shared, map), on 1 or 2 threads each faulting its half. The
/// memslot is backed by 4 KiB host pages for `s2-4k` and 2 MiB host pages
/// for the 16/64 KiB granules (whose blocks are larger), so every fault maps
/// one smallest page. Timed: all the faults, page-cache top-ups included.
enum FaultWorkload {
    static func run(_ format: StageTwoFormat, plan: FormatPlan, threads: Int) throws(BenchFailure) -> BenchResult {
        let metric: Metric = threads == 1 ? .fault : .faultTwoThreads
        plan.progress.starting(metric.rawValue, on: plan.format, repeats: plan.repeats, size: plan.geometry.size)
        let samples = try RepeatLoop.samples(count: plan.repeats) { () throws(BenchFailure) in
            try once(format, plan: plan, threads: threads)
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
}
