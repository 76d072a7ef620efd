import Dispatch
import Foundation
import SLATCore
import SLATPfnCache
import Synchronization

/// The `pfncache` workload: what a pfn cache costs its users and how its two
/// refresh strategies fare against a storm of unrelated
/// invalidations. Format-independent; one pass per run (run the binary
/// several times for spread).
///
/// - `check`: ``PfnCache/check(length:)`` on a valid cache, median of
///   ``checkRepeats`` timed loops of ``checkCalls`` calls.
/// - Refresh latency: `activate(guestAddress:length:)` of a deactivated cache
///   (deactivation untimed), which is one full refresh — memslot lookup,
///   host page lookup, host frame bytes, publication. Deactivating, rather than invalidating the cache's own page,
///   keeps that page out of the storm's merged in-flight range (an
///   invalidation of it during a storm that never lets the count reach zero
///   would hold a range-tracked refresh until the storm pauses: the hull's
///   known limit). Idle: ``idleRefreshes`` samples. Under the storm: as many
///   as complete in ``stormWindow``, on a refresher thread.
/// - The storm: one thread that keeps at least one notifier invalidation in
///   flight at every moment — each `invalidateRangeStart` of a 4 KiB host
///   page in a region far from the cache comes before the previous one's
///   `invalidateRangeEnd` — the overlapping `MADV_DONTNEED`s of a storm of unrelated invalidations.
/// - Counters: around each timed refresh under the storm the refresher
///   reads the cache's instrumentation counters (untimed) — resolutions,
///   waits, blocking lock holds, in-flight re-reads — so the report can say
///   why refreshes were slow, not just that they were.
enum PfnCacheWorkload {
    static let checkCalls = 10_000_000
    static let checkRepeats = 5
    static let idleRefreshes = 20_000
    /// How long refreshes are watched under the storm.
    static let stormWindow: UInt64 = 500_000_000

    static let slot = Memslot(
        id: 1, baseFrame: GuestFrameNumber(0x100), pageCount: 64, hostAddress: HostVirtualAddress(0x7000_0000))
    static let cacheAddress = GuestPhysicalAddress(0x100 << frameShift)
    static let stormBase = HostVirtualAddress(0x9000_0000)
    static let stormPages: UInt64 = 256

    /// Measures and prints the report (a table, or one JSON line).
    static func run(json: Bool, progress: Progress, load: SystemLoad) throws(BenchFailure) {
        let report = try measure(progress: progress)
        if json {
            print(report.json)
        } else {
            let loadAfter = SystemLoad.current().oneMinute.map { DecimalText.fixed($0, 2) } ?? "unknown"
            print(report.table(loadBefore: load.description, loadAfter: loadAfter))
        }
    }

    static func measure(progress: Progress) throws(BenchFailure) -> PfnCacheReport {
        let memory = GuestMemory()
        do {
            try memory.hostPages.map(slot.hostAddress, to: HostFrameNumber(0x1000), count: slot.pageCount)
            try memory.hostPages.map(stormBase, to: HostFrameNumber(0x8000), count: stormPages)
            try memory.addMemslot(slot)
        } catch {
            throw .library("pfncache setup", error)
        }
        let registry = PfnCacheRegistry(guestMemory: memory)
        announce(progress, "check: \(checkRepeats) x \(checkCalls) calls")
        let check = try measureCheck(registry)
        var strategies: [PfnCacheReport.StrategyFigures] = []
        for strategy in PfnCacheRefreshStrategy.allCases {
            announce(progress, "\(strategy.rawValue) refresh: \(idleRefreshes) idle, then \(stormWindow / 1_000_000) ms under the storm")
            let cache = PfnCache(registry: registry, strategy: strategy)
            let idle = try idleLatencies(cache)
            let storm = try stormLatencies(cache, registry: registry)
            cache.deactivate()
            strategies.append(PfnCacheReport.StrategyFigures(
                strategy: strategy, idle: idle.latencies, idleSeconds: idle.seconds,
                storm: storm.latencies, stormCompletedInWindow: storm.completedInWindow,
                stormWindowSeconds: Double(stormWindow) / 1e9, stormResolutions: storm.resolutions,
                stormInvalidationsPerSecond: Double(storm.invalidations) / storm.stormSeconds,
                stuckRefresh: storm.stuck, stormCounters: storm.counters, stormBlocked: storm.blocked))
        }
        return PfnCacheReport(checkNanoseconds: check, strategies: strategies)
    }

    private static func announce(_ progress: Progress, _ text: String) {
        guard progress.enabled else { return }
        StandardError.writeLine("slat-bench: pfncache \(text)")
    }

    /// Nanoseconds per `check` call of each repeat.
    private static func measureCheck(_ registry: PfnCacheRegistry) throws(BenchFailure) -> [Double] {
        let cache = PfnCache(registry: registry)
        do {
            try cache.activate(guestAddress: cacheAddress, length: 8)
        } catch {
            throw .library("pfncache activate", error)
        }
        defer { cache.deactivate() }
        var figures: [Double] = []
        for repeatIndex in 0...checkRepeats {
            var hits = 0
            let start = MonotonicClock.now()
            for _ in 0..<checkCalls where cache.check(length: 8) { hits &+= 1 }
            let end = MonotonicClock.now()
            guard hits == checkCalls else {
                throw .verification("pfncache check: \(hits) of \(checkCalls) calls found the valid cache valid")
            }
            if repeatIndex > 0 { figures.append(Double(end - start) / Double(checkCalls)) }
        }
        return figures
    }

    /// One timed refresh (activate of the deactivated cache); nanoseconds.
    private static func timedRefresh(_ cache: PfnCache) throws(BenchFailure) -> UInt64 {
        cache.deactivate()
        let start = MonotonicClock.now()
        do {
            try cache.activate(guestAddress: cacheAddress, length: 8)
        } catch {
            throw .library("pfncache refresh", error)
        }
        let end = MonotonicClock.now()
        guard cache.check(length: 8) else { throw .verification("pfncache: the cache is not valid after a refresh") }
        return end - start
    }

    private static func idleLatencies(_ cache: PfnCache) throws(BenchFailure) -> (latencies: [UInt64], seconds: Double) {
        for _ in 0..<100 { _ = try timedRefresh(cache) }
        var latencies: [UInt64] = []
        latencies.reserveCapacity(idleRefreshes)
        let start = MonotonicClock.now()
        for _ in 0..<idleRefreshes { latencies.append(try timedRefresh(cache)) }
        return (latencies, MonotonicClock.seconds(from: start, to: MonotonicClock.now()))
    }

    private struct StormFigures {
        var latencies: [UInt64]
        var completedInWindow: Int
        var resolutions: UInt64
        var invalidations: UInt64
        var stormSeconds: Double
        /// The latency of a refresh in progress when the window closed that
        /// finished only once the storm was being stopped (nanoseconds).
        var stuck: UInt64?
        /// The cache's counters over the refreshes completed in the window.
        var counters: PfnCacheReport.RefreshCounters
        /// Latencies of the refreshes in the window that blocked on a lock.
        var blocked: [UInt64]
    }

    /// Refreshes on a refresher thread while the storm runs for the window.
    private static func stormLatencies(_ cache: PfnCache, registry: PfnCacheRegistry) throws(BenchFailure) -> StormFigures {
        let stormStart = MonotonicClock.now()
        let storm = RelayStorm(registry: registry) { index in
            HostVirtualRange(start: stormBase.advanced(by: (index % stormPages) << frameShift), size: 1 << frameShift)
        }
        let shared = RefresherState()
        let resolutionsBefore = cache.resolutionCount
        let refresher = Thread {
            while !shared.stop.load(ordering: .relaxed) {
                cache.deactivate()
                // The counters only this thread changes (the storm's visits
                // do not count), read untimed around the timed call.
                let before = PfnCacheReport.RefreshCounters(cache)
                let start = MonotonicClock.now()
                do {
                    try cache.activate(guestAddress: cacheAddress, length: 8)
                } catch {
                    shared.failed.store(true, ordering: .relaxed)
                    break
                }
                let end = MonotonicClock.now()
                let counters = PfnCacheReport.RefreshCounters(cache) - before
                shared.samples.withLock { $0.append(RefreshSample(start: start, end: end, counters: counters)) }
            }
            shared.done.signal()
        }
        let windowStart = MonotonicClock.now()
        refresher.start()
        let windowEnd = windowStart + stormWindow
        while MonotonicClock.now() < windowEnd { usleep(5_000) }
        let resolutionsInWindow = cache.resolutionCount - resolutionsBefore
        let inWindow = shared.samples.withLock { $0.filter { $0.end <= windowEnd } }
        let stopRequested = MonotonicClock.now()
        let invalidations = storm.stop()
        let stormEnd = MonotonicClock.now()
        shared.stop.store(true, ordering: .relaxed)
        shared.done.wait()
        if shared.failed.load(ordering: .relaxed) {
            throw .verification("pfncache: a refresh under the storm failed")
        }
        // A refresh that was running when the window closed and only
        // finished once the storm was being stopped: its whole latency.
        let straddling = shared.samples.withLock { samples in
            samples.first { $0.start < windowEnd && $0.end >= stopRequested }
        }
        let stuck = straddling.map { $0.end - $0.start }
        let counters = inWindow.reduce(PfnCacheReport.RefreshCounters()) { $0 + $1.counters }
        let blocked = inWindow.filter { $0.counters.contendedLocks != 0 }.map { $0.end - $0.start }
        return StormFigures(
            latencies: inWindow.map { $0.end - $0.start }, completedInWindow: inWindow.count,
            resolutions: resolutionsInWindow, invalidations: invalidations,
            stormSeconds: MonotonicClock.seconds(from: stormStart, to: stormEnd), stuck: stuck,
            counters: counters, blocked: blocked)
    }
}

/// One timed refresh under the storm.
private struct RefreshSample: Sendable {
    var start: UInt64
    var end: UInt64
    /// What the cache's counters recorded during the refresh.
    var counters: PfnCacheReport.RefreshCounters
}

/// What the storm refresher thread shares with the measuring thread.
private final class RefresherState: Sendable {
    let stop = Atomic<Bool>(false)
    let failed = Atomic<Bool>(false)
    let samples = Mutex<[RefreshSample]>([])
    let done = DispatchSemaphore(value: 0)
}

/// A thread keeping at least one notifier invalidation in flight at every
/// moment: each range starts before the previous one ends.
final class RelayStorm: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let count = Atomic<UInt64>(0)
    private let done = DispatchSemaphore(value: 0)

    /// Starts the storm over `ranges(0)`, `ranges(1)`, ...; returns once the
    /// first invalidation is in flight.
    init(registry: PfnCacheRegistry, ranges: @escaping @Sendable (UInt64) -> HostVirtualRange) {
        let running = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            var index: UInt64 = 0
            var previous = ranges(index)
            registry.invalidateRangeStart(previous)
            running.signal()
            while !self.stopping.load(ordering: .relaxed) {
                index &+= 1
                let next = ranges(index)
                registry.invalidateRangeStart(next)
                registry.invalidateRangeEnd(previous)
                previous = next
            }
            registry.invalidateRangeEnd(previous)
            self.count.store(index &+ 1, ordering: .relaxed)
            self.done.signal()
        }
        thread.start()
        running.wait()
    }

    /// Ends the storm; returns how many invalidations it ran.
    func stop() -> UInt64 {
        stopping.store(true, ordering: .relaxed)
        done.wait()
        return count.load(ordering: .relaxed)
    }
}
