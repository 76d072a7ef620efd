import Dispatch
import Foundation
import SLATCore
import Synchronization
import Testing
@testable import SLATPfnCache

/// Seed 001: the legacy refresh is starved by invalidations that never touch
/// its page; the range-tracked refresh is not, and waits instead of spinning
/// when they do.
@Suite("Pfn cache: refresh progress under invalidation storms (concurrency)")
struct PfnCacheLivelockConcurrencyTests {
    /// How long the storm runs while refreshes are watched.
    static let window: UInt64 = 500_000_000

    @Test("legacy: a refresh makes no progress while unrelated invalidations keep one in flight")
    func legacyStarvedByUnrelatedStorm() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.legacy)
        try cache.activate(hostAddress: fixture.hostAddress(page: 0), length: 8)
        try fixture.migrate(page: 0, generation: 2)
        let storm = relayStorm(fixture.registry) { fixture.stormRange($0) }
        let resolutionsBefore = cache.resolutionCount
        let finished = Atomic<UInt64>(0)
        let refresher = BackgroundLoop { _ in
            try? cache.refresh(length: 8)
            finished.store(nanoseconds(), ordering: .releasing)
        }
        let windowEnd = nanoseconds() + Self.window
        while nanoseconds() < windowEnd { usleep(10_000) }
        let finishedDuringStorm = finished.load(ordering: .acquiring) != 0
        let spun = cache.resolutionCount - resolutionsBefore
        storm.stop()
        refresher.stop()
        #expect(!finishedDuringStorm)
        #expect(spun > 1, "the legacy refresh resolves again and again instead of waiting")
        // Once the storm is over it completes.
        #expect(cache.check(length: 8))
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == 2)
    }

    @Test("range-tracked: every refresh completes during the same storm, each with one resolution and no wait")
    func rangeTrackedProgressesUnderUnrelatedStorm() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        let storm = relayStorm(fixture.registry) { fixture.stormRange($0) }
        let refreshes = 200
        let start = nanoseconds()
        var completedInWindow = 0
        for round in 0..<refreshes {
            cache.deactivate()
            try cache.activate(guestAddress: fixture.guestAddress(page: round % fixture.pages), length: 8)
            if nanoseconds() - start <= Self.window { completedInWindow += 1 }
        }
        let inFlightDuringStorm = fixture.registry.invalidationsInFlight
        storm.stop()
        #expect(inFlightDuringStorm >= 1, "the storm kept an invalidation in flight")
        #expect(completedInWindow == refreshes)
        #expect(cache.resolutionCount == UInt64(refreshes))
        #expect(cache.waitCount == 0)
    }

    @Test("range-tracked: a refresh of a page being invalidated sleeps until the invalidation ends, resolving once")
    func rangeTrackedWaitsInsteadOfSpinning() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 2), length: 8)
        let range = fixture.hostRange(page: 2)
        fixture.registry.invalidateRangeStart(range)
        #expect(!cache.check(length: 8))
        let resolutionsBefore = cache.resolutionCount
        let done = Atomic<Bool>(false)
        let refresher = BackgroundLoop { _ in
            try? cache.refresh(length: 8)
            done.store(true, ordering: .releasing)
        }
        usleep(100_000)
        let doneWhileInFlight = done.load(ordering: .acquiring)
        let resolutionsWhileInFlight = cache.resolutionCount - resolutionsBefore
        fixture.registry.invalidateRangeEnd(range)
        refresher.stop()
        #expect(!doneWhileInFlight, "no refresh publishes before the invalidation ends")
        #expect(resolutionsWhileInFlight <= 1, "it sleeps rather than resolving again")
        #expect(cache.check(length: 8))
        #expect(cache.waitCount == 1)
        #expect(cache.resolutionCount - resolutionsBefore == 1)
    }

    @Test("legacy: no refresh publishes while an invalidation of its page is in flight")
    func legacyHeldOffByInFlightInvalidation() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.legacy)
        try cache.activate(hostAddress: fixture.hostAddress(page: 2), length: 8)
        let range = fixture.hostRange(page: 2)
        fixture.registry.invalidateRangeStart(range)
        let done = Atomic<Bool>(false)
        let refresher = BackgroundLoop { _ in
            try? cache.refresh(length: 8)
            done.store(true, ordering: .releasing)
        }
        usleep(50_000)
        let doneWhileInFlight = done.load(ordering: .acquiring)
        fixture.registry.invalidateRangeEnd(range)
        refresher.stop()
        #expect(!doneWhileInFlight)
        #expect(cache.check(length: 8))
    }

    @Test("with a storm that migrates the cached page, accessors of both strategies only ever see the current page", arguments: PfnCacheRefreshStrategy.allCases)
    func touchingStormStaysCorrect(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(strategy)
        try cache.activate(guestAddress: fixture.guestAddress(page: 1), length: 16)
        let minimum = Atomic<UInt64>(1)
        let pending = Atomic<UInt64>(1)
        _ = fixture.memory.hostPages.addListener { event in
            // After the registry's start: from now on only the new generation may be seen.
            if event.phase == .start, event.range.contains(fixture.hostAddress(page: 1)) {
                minimum.store(pending.load(ordering: .relaxed), ordering: .releasing)
            }
        }
        let stale = Atomic<Int>(0)
        let accesses = Atomic<Int>(0)
        let deadline = nanoseconds() + Self.window
        // The storm ends by itself at the deadline, so that a legacy refresh
        // it starves can finish and the accessors can stop.
        let storm = BackgroundLoop { shouldStop in
            var generation: UInt64 = 1
            while !shouldStop(), nanoseconds() < deadline {
                generation += 1
                pending.store(generation, ordering: .relaxed)
                _ = try? fixture.migrate(page: 1, generation: generation)
            }
        }
        runThreads(2) { _ in
            while nanoseconds() < deadline {
                let floor = minimum.load(ordering: .acquiring)
                guard let stamp = try? cache.access(length: 16, readStamp) else { continue }
                accesses.wrappingAdd(1, ordering: .relaxed)
                if stamp.generation < floor || stamp.address != fixture.hostAddress(page: 1).rawValue {
                    stale.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        storm.stop()
        #expect(stale.load(ordering: .relaxed) == 0)
        #expect(accesses.load(ordering: .relaxed) > 0)
        try cache.refresh(length: 16)
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == pending.load(ordering: .relaxed))
    }
}
