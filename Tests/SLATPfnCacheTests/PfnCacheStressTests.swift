import Dispatch
import Foundation
import SLATCore
import Synchronization
import Testing
@testable import SLATPfnCache

/// The torture test: real threads refresh and access several caches while
/// others migrate the cached pages and run notifier storms over overlapping
/// and unrelated ranges. Every host frame carries a generation stamp; an
/// accessor must never see a page that was invalidated before it started.
@Suite("Pfn cache: torture (stress)")
struct PfnCacheStressTests {
    @Test("accessors never see an invalidated page and nothing deadlocks under migration and notifier storms")
    func torture() throws {
        let pages = 4
        let fixture = try PfnCacheFixture(pages: pages)
        // Six caches: each page by guest and by host address, both strategies.
        var made: [(cache: PfnCache, page: Int)] = []
        for index in 0..<6 {
            let page = index % pages
            // The hook widens the window between resolution and publication,
            // where an invalidation must be caught, by giving the CPU away.
            let cache = fixture.cache(index < 4 ? .rangeTracked : .legacy) { _ in sched_yield() }
            if index.isMultiple(of: 2) {
                try cache.activate(guestAddress: fixture.guestAddress(page: page), length: 16)
            } else {
                try cache.activate(hostAddress: fixture.hostAddress(page: page), length: 16)
            }
            made.append((cache, page))
        }
        let caches = made
        // Per page: the generation the migrator is installing, and the
        // generation every accessor starting from now on must see at least.
        let installing = ReaderWriterLocked<[UInt64]>(Array(repeating: 1, count: pages))
        let minimum = ReaderWriterLocked<[UInt64]>(Array(repeating: 1, count: pages))
        let poisoned = Atomic<Int>(0)
        _ = fixture.memory.hostPages.addListener { event in
            // Runs after the registry's start: the old frames are no longer
            // reachable through any cache, so scribble over them.
            guard event.phase == .start, event.kind == .remap else { return }
            for page in 0..<pages where event.range.contains(fixture.hostAddress(page: page)) {
                if let old = fixture.memory.hostPages.lookup(fixture.hostAddress(page: page)) {
                    fixture.stamp(old.frame, generation: 0, backing: HostVirtualAddress(0))
                    poisoned.wrappingAdd(1, ordering: .relaxed)
                }
                let generation = installing.read { $0[page] }
                minimum.write { $0[page] = generation }
            }
        }
        let stale = Atomic<Int>(0)
        let accesses = Atomic<Int>(0)
        let refreshes = Atomic<Int>(0)
        let migrations = Atomic<Int>(0)
        let storms = Atomic<Int>(0)
        let deadline = nanoseconds() + 1_500_000_000
        let migratorDeadline = deadline - 200_000_000
        runThreads(6) { role in
            var random = SystemRandomNumberGenerator()
            switch role {
            case 0:
                // Migrator: moves a random cached page to a fresh stamped frame
                // (one migrator, so `installing` has one writer per page).
                // Stops early so starved legacy refreshes can finish.
                while nanoseconds() < migratorDeadline {
                    let page = Int.random(in: 0..<pages, using: &random)
                    let generation = installing.write { generations in
                        generations[page] += 1
                        return generations[page]
                    }
                    if (try? fixture.migrate(page: page, generation: generation)) != nil {
                        migrations.wrappingAdd(1, ordering: .relaxed)
                    }
                    if Bool.random(using: &random) { sched_yield() }
                }
            case 1:
                // Host storm over unrelated pages: unmap and map back.
                var index: UInt64 = 0
                while nanoseconds() < migratorDeadline {
                    let range = fixture.stormRange(index)
                    index &+= 1
                    try? fixture.memory.hostPages.unmap(range)
                    try? fixture.memory.hostPages.map(range.start, to: HostFrameNumber(0x8000 + index % 64))
                    storms.wrappingAdd(1, ordering: .relaxed)
                    // The host map's change lock is a spin lock: leave the
                    // migrator room to take it.
                    usleep(20)
                }
            case 2:
                // Notifier storm through the registry over ranges that overlap
                // the cached pages and ranges that do not (no host change).
                while nanoseconds() < migratorDeadline {
                    let overlapping = Bool.random(using: &random)
                    let range = overlapping
                        ? HostVirtualRange(start: fixture.hostAddress(page: Int.random(in: 0..<pages, using: &random)),
                                           size: PfnCacheFixture.page * UInt64.random(in: 1...2, using: &random))
                        : fixture.stormRange(UInt64.random(in: 0..<64, using: &random))
                    fixture.registry.invalidateRangeStart(range)
                    fixture.registry.invalidateRangeEnd(range)
                    storms.wrappingAdd(1, ordering: .relaxed)
                    sched_yield()
                }
            case 3:
                // Refresher.
                while nanoseconds() < deadline {
                    let entry = caches[Int.random(in: 0..<caches.count, using: &random)]
                    if (try? entry.cache.refresh(length: 16)) != nil { refreshes.wrappingAdd(1, ordering: .relaxed) }
                }
            default:
                // Accessors.
                while nanoseconds() < deadline {
                    let entry = caches[Int.random(in: 0..<caches.count, using: &random)]
                    let floor = minimum.read { $0[entry.page] }
                    guard let stamp = try? entry.cache.access(length: 16, readStamp) else { continue }
                    accesses.wrappingAdd(1, ordering: .relaxed)
                    if stamp.generation < floor
                        || stamp.address != fixture.hostAddress(page: entry.page).rawValue {
                        stale.wrappingAdd(1, ordering: .relaxed)
                    }
                }
            }
        }
        #expect(stale.load(ordering: .relaxed) == 0)
        #expect(migrations.load(ordering: .relaxed) > 0)
        #expect(poisoned.load(ordering: .relaxed) == migrations.load(ordering: .relaxed))
        #expect(storms.load(ordering: .relaxed) > 0)
        #expect(accesses.load(ordering: .relaxed) > 0)
        #expect(refreshes.load(ordering: .relaxed) > 0)
        #expect(fixture.registry.invalidationsInFlight == 0)
        // Quiescent: every cache refreshes onto its page's latest frame.
        for entry in caches {
            try entry.cache.refresh(length: 16)
            let stamp = try entry.cache.withMappedBytes(length: 16, readStamp)
            #expect(stamp?.generation == installing.read { $0[entry.page] })
        }
    }
}
