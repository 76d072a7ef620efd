import SLATCore
import Synchronization
import Testing
@testable import SLATPfnCache

@Suite("Pfn cache: activation, check, refresh and access")
struct PfnCacheTests {
    @Test("activating by guest address maps the host frame behind the memslot", arguments: PfnCacheRefreshStrategy.allCases)
    func activateByGuestAddress(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(strategy)
        try cache.activate(guestAddress: fixture.guestAddress(page: 3), length: 16)
        #expect(cache.check(length: 16))
        #expect(cache.hostFrame == HostFrameNumber(PfnCacheFixture.firstFrame.rawValue + 3))
        let stamp = try cache.withMappedBytes(length: 16, readStamp)
        #expect(stamp?.address == fixture.hostAddress(page: 3).rawValue)
    }

    @Test("activating by host address maps the frame the host maps there", arguments: PfnCacheRefreshStrategy.allCases)
    func activateByHostAddress(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(strategy)
        try cache.activate(hostAddress: fixture.hostAddress(page: 5), length: 16)
        #expect(cache.hostFrame == HostFrameNumber(PfnCacheFixture.firstFrame.rawValue + 5))
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.address == fixture.hostAddress(page: 5).rawValue)
    }

    @Test("the accessor's bytes start at the cached address's offset in the page")
    func accessorHonoursOffset() throws {
        let fixture = try PfnCacheFixture()
        let frame = PfnCacheFixture.firstFrame.rawValue + 2
        fixture.hostMemory.bytes(of: HostFrameNumber(frame)).storeBytes(of: 0xABCD, toByteOffset: 0x100, as: UInt64.self)
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 2).advanced(by: 0x100), length: 8)
        #expect(try cache.withMappedBytes(length: 8) { $0.load(as: UInt64.self) } == 0xABCD)
    }

    @Test("writes through the accessor land in the host frame")
    func accessorWritesReachHostFrame() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(guestAddress: fixture.guestAddress(page: 1).advanced(by: 64), length: 8)
        try cache.access(length: 8) { $0.storeBytes(of: 0x1234_5678, as: UInt64.self) }
        let frame = fixture.hostMemory.bytes(of: HostFrameNumber(PfnCacheFixture.firstFrame.rawValue + 1))
        #expect(frame.load(fromByteOffset: 64, as: UInt64.self) == 0x1234_5678)
    }

    @Test("a length that crosses the page end is a typed error", arguments: [(0xFF8, 16), (0, 4097), (0x800, 0), (0, -1)])
    func lengthOutOfPage(offset: Int, length: Int) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        #expect(throws: SLATError.pfnCacheLengthOutOfPage(offset: UInt64(offset), length: length)) {
            try cache.activate(hostAddress: fixture.hostAddress(page: 0).advanced(by: UInt64(offset)), length: length)
        }
        #expect(!cache.isActive)
    }

    @Test("check fails for a length past the page end of a valid cache")
    func checkRejectsLongLength() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 0).advanced(by: 0xF00), length: 0x100)
        #expect(cache.check(length: 0x100))
        #expect(!cache.check(length: 0x101))
        #expect(throws: SLATError.pfnCacheLengthOutOfPage(offset: 0xF00, length: 0x101)) {
            try cache.withMappedBytes(length: 0x101) { _ in () }
        }
    }

    @Test("an inactive cache refuses refresh and access")
    func inactiveCacheIsAnError() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        #expect(throws: SLATError.pfnCacheInactive) { try cache.refresh(length: 8) }
        #expect(throws: SLATError.pfnCacheInactive) { try cache.withMappedBytes(length: 8) { _ in () } }
        try cache.activate(hostAddress: fixture.hostAddress(page: 0), length: 8)
        cache.deactivate()
        #expect(!cache.check(length: 8))
        #expect(throws: SLATError.pfnCacheInactive) { try cache.refresh(length: 8) }
        #expect(fixture.registry.activeCacheCount == 0)
    }

    @Test("a guest address outside every memslot is a typed error and leaves the cache inactive")
    func guestAddressWithoutMemslot() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        #expect(throws: SLATError.noMemslot(GuestFrameNumber(0x5000))) {
            try cache.activate(guestAddress: GuestPhysicalAddress(0x5000_000), length: 8)
        }
        #expect(!cache.isActive)
    }

    @Test("a host address the host does not map is a typed error")
    func unmappedHostAddress() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.legacy)
        let address = HostVirtualAddress(0x5555_0000)
        #expect(throws: SLATError.hostAddressNotMapped(address)) {
            try cache.activate(hostAddress: address, length: 8)
        }
        #expect(!cache.check(length: 8))
    }

    @Test("a read-only memslot is a typed error for a guest-address cache")
    func readOnlyMemslot() throws {
        let fixture = try PfnCacheFixture()
        try fixture.memory.updateMemslotFlags(id: 1, to: .readOnly)
        let cache = fixture.cache(.rangeTracked)
        #expect(throws: SLATError.readOnlyMemslot(slot: 1, frame: PfnCacheFixture.baseFrame)) {
            try cache.activate(guestAddress: fixture.guestAddress(page: 0), length: 8)
        }
    }

    @Test("when the notifier start of an unmap returns, check fails and the accessor does not run", arguments: PfnCacheRefreshStrategy.allCases)
    func startInvalidates(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(strategy)
        try cache.activate(hostAddress: fixture.hostAddress(page: 4), length: 8)
        let seenAtStart = ReaderWriterLocked<[Bool]>([])
        // Registered after the registry, so it runs after the registry's start.
        _ = fixture.memory.hostPages.addListener { event in
            guard event.phase == .start else { return }
            let ran = (try? cache.withMappedBytes(length: 8) { _ in true }) ?? nil
            seenAtStart.write { $0 += [cache.check(length: 8), ran ?? false] }
        }
        try fixture.memory.hostPages.unmap(fixture.hostRange(page: 4))
        #expect(seenAtStart.read { $0 } == [false, false])
        #expect(throws: SLATError.hostAddressNotMapped(fixture.hostAddress(page: 4))) { try cache.refresh(length: 8) }
    }

    @Test("after a migration a refresh maps the new frame", arguments: PfnCacheRefreshStrategy.allCases)
    func refreshFollowsMigration(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(strategy)
        try cache.activate(guestAddress: fixture.guestAddress(page: 6), length: 16)
        let frame = try fixture.migrate(page: 6, generation: 2)
        #expect(!cache.check(length: 16))
        #expect(try cache.withMappedBytes(length: 16, readStamp) == nil)
        try cache.refresh(length: 16)
        #expect(cache.hostFrame == frame)
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == 2)
    }

    @Test("an invalidation elsewhere leaves the cache valid")
    func unrelatedInvalidationKeepsCache() throws {
        let fixture = try PfnCacheFixture()
        let caches = (0..<3).map { _ in fixture.cache(.rangeTracked) }
        for (index, cache) in caches.enumerated() {
            try cache.activate(hostAddress: fixture.hostAddress(page: index), length: 8)
        }
        try fixture.migrate(page: 1, generation: 2)
        try fixture.memory.hostPages.unmap(fixture.stormRange(0))
        #expect(caches.map { $0.check(length: 8) } == [true, false, true])
    }

    @Test("a cache on a host address no memslot covers is invalidated by the host notifier")
    func hostOnlyAddressIsInvalidated() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        let range = fixture.stormRange(3)
        try cache.activate(hostAddress: range.start, length: 8)
        #expect(fixture.memory.memslots(overlapping: range).isEmpty)
        try fixture.memory.hostPages.unmap(range)
        #expect(!cache.check(length: 8))
    }

    @Test("removing the memslot invalidates a guest-address cache and a refresh then finds no memslot")
    func memslotRemovalInvalidates() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(guestAddress: fixture.guestAddress(page: 2), length: 8)
        try fixture.memory.removeMemslot(id: 1)
        #expect(!cache.check(length: 8))
        #expect(throws: SLATError.noMemslot(fixture.guestAddress(page: 2).frame)) { try cache.refresh(length: 8) }
    }

    @Test("a memslot moved to other host memory during a refresh makes it resolve through the new slot", arguments: PfnCacheRefreshStrategy.allCases)
    func memslotMovedDuringRefresh(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let movedHost = HostVirtualAddress(0xA000_0000)
        let movedFrame = HostFrameNumber(0x2000)
        try fixture.memory.hostPages.map(movedHost, to: movedFrame, count: UInt64(fixture.pages))
        fixture.stamp(HostFrameNumber(movedFrame.rawValue + 2), generation: 9, backing: movedHost.advanced(by: 2 * PfnCacheFixture.page))
        let moving = Atomic<Bool>(false)
        let cache = fixture.cache(strategy) { _ in
            guard moving.exchange(false, ordering: .relaxed) else { return }
            var slot = fixture.slot
            _ = try? fixture.memory.removeMemslot(id: slot.id)
            slot.hostAddress = movedHost
            try? fixture.memory.addMemslot(slot)
        }
        try cache.activate(guestAddress: fixture.guestAddress(page: 2), length: 16)
        try fixture.migrate(page: 2, generation: 2)
        moving.store(true, ordering: .relaxed)
        try cache.refresh(length: 16)
        #expect(cache.hostAddress == movedHost.advanced(by: 2 * PfnCacheFixture.page))
        #expect(cache.hostFrame == HostFrameNumber(movedFrame.rawValue + 2))
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == 9)
    }

    @Test("a refresh of a valid cache resolves nothing")
    func refreshOfValidCacheIsFree() throws {
        let fixture = try PfnCacheFixture()
        let cache = fixture.cache(.rangeTracked)
        try cache.activate(hostAddress: fixture.hostAddress(page: 0), length: 8)
        let before = cache.resolutionCount
        try cache.refresh(length: 8)
        #expect(cache.resolutionCount == before)
    }

    @Test("an invalidation racing the resolution makes the refresh resolve exactly once more", arguments: PfnCacheRefreshStrategy.allCases)
    func racingInvalidationRetriesOnce(strategy: PfnCacheRefreshStrategy) throws {
        let fixture = try PfnCacheFixture()
        let racing = Atomic<Bool>(false)
        let migrated = ReaderWriterLocked<HostFrameNumber?>(nil)
        let cache = fixture.cache(strategy) { _ in
            // On the refreshing thread, between resolution and publication.
            guard racing.exchange(false, ordering: .relaxed) else { return }
            let frame = try? fixture.migrate(page: 3, generation: 7)
            migrated.write { $0 = frame }
        }
        try cache.activate(hostAddress: fixture.hostAddress(page: 3), length: 16)
        try fixture.migrate(page: 3, generation: 5)
        let before = cache.resolutionCount
        racing.store(true, ordering: .relaxed)
        try cache.refresh(length: 16)
        #expect(cache.resolutionCount - before == 2)
        #expect(cache.hostFrame == migrated.read { $0 })
        #expect(try cache.withMappedBytes(length: 16, readStamp)?.generation == 7)
    }

    @Test("many caches on one page are all invalidated by one start")
    func manyCachesOnOnePage() throws {
        let fixture = try PfnCacheFixture()
        let caches = (0..<4).map { index in fixture.cache(index.isMultiple(of: 2) ? .rangeTracked : .legacy) }
        for (index, cache) in caches.enumerated() {
            if index < 2 {
                try cache.activate(guestAddress: fixture.guestAddress(page: 7).advanced(by: UInt64(index * 64)), length: 8)
            } else {
                try cache.activate(hostAddress: fixture.hostAddress(page: 7).advanced(by: UInt64(index * 64)), length: 8)
            }
        }
        #expect(fixture.registry.activeCacheCount == 4)
        try fixture.migrate(page: 7, generation: 3)
        #expect(caches.allSatisfy { !$0.check(length: 8) })
    }
}
