import SLATCore
import Synchronization
import Testing
@testable import SLATPfnCache

/// Seed 001's promise, checked step by step on one thread (no timing): an
/// invalidation that does not cover a range-tracked cache's address costs
/// its refresh nothing — no second resolution, no sleep, and the
/// invalidation never takes the cache's lock, so the refresh cannot queue
/// behind it.
@Suite("Pfn cache: unrelated invalidations leave a range-tracked refresh alone")
struct PfnCacheUnrelatedInvalidationTests {
    @Test("refreshes amid a relay of unrelated invalidations resolve once each, never wait, never meet the visit on the cache lock")
    func relayCausesNoRetryNoWait() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        let refreshes = 64
        // One unrelated invalidation in flight throughout; each round starts
        // the next before ending the previous, then refreshes.
        fixture.registry.invalidateRangeStart(fixture.stormRange(0))
        for round in 0..<refreshes {
            fixture.registry.invalidateRangeStart(fixture.stormRange(UInt64(round + 1)))
            fixture.registry.invalidateRangeEnd(fixture.stormRange(UInt64(round)))
            cache.deactivate()
            try cache.activate(guestAddress: fixture.guestAddress(page: round % fixture.pages), length: 8)
            #expect(cache.check(length: 8))
        }
        #expect(fixture.registry.invalidationsInFlight == 1)
        fixture.registry.invalidateRangeEnd(fixture.stormRange(UInt64(refreshes)))
        #expect(cache.resolutionCount == UInt64(refreshes), "one resolution per refresh: no retry")
        #expect(cache.waitCount == 0)
        #expect(cache.invalidationVisitLockCount == 0, "no unrelated visit took the cache lock")
    }

    @Test("unrelated invalidations starting and ending between resolution and publication do not make the refresh retry")
    func unrelatedInvalidationsRacingTheResolution() throws {
        let fixture = try PfnCacheFixture()
        let racing = Atomic<Bool>(false)
        let cache = fixture.cache(.rangeTracked) { _ in
            // On the refreshing thread, after the lookup, before publishing.
            guard racing.exchange(false, ordering: .relaxed) else { return }
            fixture.registry.invalidateRangeStart(fixture.stormRange(1))
            fixture.registry.invalidateRangeStart(fixture.stormRange(2))
            fixture.registry.invalidateRangeEnd(fixture.stormRange(1))
        }
        try cache.activate(hostAddress: fixture.hostAddress(page: 4), length: 8)
        try fixture.migrate(page: 4, generation: 3)
        let before = cache.resolutionCount
        let visitsBefore = cache.invalidationVisitLockCount
        racing.store(true, ordering: .relaxed)
        try cache.refresh(length: 8)
        fixture.registry.invalidateRangeEnd(fixture.stormRange(2))
        #expect(cache.resolutionCount - before == 1)
        #expect(cache.waitCount == 0)
        #expect(cache.invalidationVisitLockCount == visitsBefore)
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == 3)
    }

    @Test("an invalidation covering the cache takes its lock once and invalidates it")
    func coveringInvalidationTakesTheLock() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 5), length: 8)
        fixture.registry.invalidateRangeStart(fixture.stormRange(0))
        fixture.registry.invalidateRangeEnd(fixture.stormRange(0))
        #expect(cache.invalidationVisitLockCount == 0)
        fixture.registry.invalidateRangeStart(fixture.hostRange(page: 5))
        #expect(!cache.check(length: 8))
        #expect(cache.invalidationVisitLockCount == 1)
        fixture.registry.invalidateRangeEnd(fixture.hostRange(page: 5))
    }

    @Test("an invalidation of the same page but not the cached address leaves the cache valid after the locked re-check")
    func samePageOtherBytesIsRecheckedUnderTheLock() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 5).advanced(by: 0x800), length: 8)
        let firstHalf = HostVirtualRange(start: fixture.hostAddress(page: 5), size: 0x800)
        fixture.registry.invalidateRangeStart(firstHalf)
        #expect(cache.invalidationVisitLockCount == 1, "the page overlaps: the visit looks under the lock")
        #expect(cache.check(length: 8), "the address is outside the range: still valid")
        fixture.registry.invalidateRangeEnd(firstHalf)
    }

    @Test("a deactivated cache is not visited, and a destroyed one leaves the registry's list")
    func inactiveAndDestroyedCachesAreNotVisited() throws {
        let fixture = try PfnCacheFixture()
        let listedBefore = fixture.registry.listedCacheCount
        var cache: PfnCache? = fixture.cache(.rangeTracked)
        try cache?.activate(hostAddress: fixture.hostAddress(page: 6), length: 8)
        #expect(fixture.registry.listedCacheCount == listedBefore + 1)
        cache?.deactivate()
        fixture.registry.invalidateRangeStart(fixture.hostRange(page: 6))
        fixture.registry.invalidateRangeEnd(fixture.hostRange(page: 6))
        #expect(cache?.invalidationVisitLockCount == 0)
        cache = nil
        #expect(fixture.registry.listedCacheCount == listedBefore)
        #expect(fixture.registry.activeCacheCount == 0)
    }
}
