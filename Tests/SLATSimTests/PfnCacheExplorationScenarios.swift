import SLATCore
import SLATPfnCache
import SLATSim

/// A pfn cache (`PfnCache`, range-tracked refresh) on one guest page, put
/// under a ``ControlledScheduler``: the cache itself reports its retry
/// loop, its wait for invalidations and the point between resolving the
/// host frame and publishing it through SLATCore's exploration hooks; the
/// notifier calls of a scenario yield before each `start` and `end`. Every
/// host frame holds a stamp (its generation) in its first bytes.
// @unchecked Sendable: used by one logical thread of the scheduler at a
// time, and by the building thread only before and after them.
final class PfnCacheExplorationWorld: @unchecked Sendable {
    static let baseFrame = GuestFrameNumber(0x100)
    static let cacheHost = HostVirtualAddress(0x7000_0000)
    static let firstFrame = HostFrameNumber(0x1000)
    static let remappedFrame = HostFrameNumber(0x2000)
    static let stormHost = HostVirtualAddress(0x9000_0000)
    static let page: UInt64 = 4096

    let scheduler: ControlledScheduler
    let guestMemory = GuestMemory()
    let hostMemory = HostFrameMemory()
    let registry: PfnCacheRegistry
    let cache: PfnCache
    /// Set once the refresh under test returned.
    var refreshed = false
    /// Set once the host's remap of the cached page returned.
    var remapReturned = false
    /// Storm invalidations started and not yet ended (host page indices).
    var stormInFlight: [UInt64] = []

    init(_ scheduler: ControlledScheduler) throws {
        self.scheduler = scheduler
        try guestMemory.hostPages.map(Self.cacheHost, to: Self.firstFrame, count: 1)
        try guestMemory.hostPages.map(Self.stormHost, to: HostFrameNumber(0x8000), count: 16)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: Self.baseFrame, pageCount: 1, hostAddress: Self.cacheHost))
        registry = PfnCacheRegistry(guestMemory: guestMemory, hostMemory: hostMemory)
        cache = PfnCache(registry: registry)
        stamp(Self.firstFrame, generation: 1)
        stamp(Self.remappedFrame, generation: 2)
        try cache.activate(guestAddress: GuestPhysicalAddress(Self.baseFrame.rawValue << 12), length: 8)
    }

    func stamp(_ frame: HostFrameNumber, generation: UInt64) {
        hostMemory.bytes(of: frame).storeBytes(of: generation, as: UInt64.self)
    }

    func stormRange(_ index: UInt64) -> HostVirtualRange {
        HostVirtualRange(start: Self.stormHost.advanced(by: (index % 16) * Self.page), size: Self.page)
    }

    /// A notifier `start` for unrelated host page `index` (nothing cached there).
    func startStorm(_ index: UInt64) {
        scheduler.yield(at: .notifier)
        registry.invalidateRangeStart(stormRange(index))
        stormInFlight.append(index)
    }

    /// The notifier `end` of the oldest storm invalidation in flight.
    func endStorm() {
        guard !stormInFlight.isEmpty else { return }
        scheduler.yield(at: .notifier)
        registry.invalidateRangeEnd(stormRange(stormInFlight.removeFirst()))
    }

    /// The host moves the cached page to another frame (notifier start,
    /// the new mapping, notifier end, as one host operation).
    func remapCachedPage() throws {
        scheduler.yield(at: .notifier)
        try guestMemory.hostPages.remap(HostVirtualRange(start: Self.cacheHost, size: Self.page), to: Self.remappedFrame)
        remapReturned = true
    }

    /// Reads the cached page's stamp through the cache, refreshing as
    /// needed; fails when it reads the old frame after the remap returned.
    func read() throws -> String? {
        let remapDone = remapReturned
        let generation = try cache.access(length: 8) { $0.load(as: UInt64.self) }
        if remapDone && generation != 2 { return "the cache read the old host frame after the remap returned" }
        if generation != 1 && generation != 2 { return "the cache read generation \(generation)" }
        return nil
    }

    /// Reads the stamp only if the mapping is valid (no refresh: one
    /// thread refreshes a cache at a time, its refresh lock is an OS lock).
    func readIfValid() throws -> String? {
        let remapDone = remapReturned
        guard let generation = try cache.withMappedBytes(length: 8, { $0.load(as: UInt64.self) }) else { return nil }
        if remapDone && generation != 2 { return "an accessor read the old host frame after the remap returned" }
        return nil
    }

    /// At the end: the cache valid or refreshable, mapping the current frame.
    func check() -> String? {
        do {
            try cache.refresh(length: 8)
        } catch {
            return "final refresh threw \(error)"
        }
        let expected = remapReturned ? Self.remappedFrame : Self.firstFrame
        if cache.hostFrame != expected { return "the cache maps \(String(describing: cache.hostFrame)), expected \(expected)" }
        if registry.invalidationsInFlight != 0 { return "\(registry.invalidationsInFlight) invalidations left in flight" }
        return nil
    }
}

/// Pfn cache scenarios for the explorer (Docs/pfn-cache.md, through the
/// cache's and the registry's public API).
enum PfnCacheExplorationScenarios {
    /// Resolutions a refresh may make when no invalidation covering its
    /// address is in flight: one, plus one more if the host's remap of
    /// its page disarmed it during the resolution.
    static let resolutionBound: UInt64 = 2

    /// A refresh of an invalidated cache while a storm of unrelated
    /// invalidations always keeps one in flight (each `start` before the
    /// previous `end`, as long as the refresh has not returned, at most
    /// `relays` of them) and the host remaps the cached page: the refresh
    /// must complete within ``resolutionBound`` resolutions (a refresh that
    /// keeps resolving again while the storm runs makes no progress: a
    /// livelock, bounded only by the storm), and no read may see the old
    /// frame after the remap returned.
    static func refreshBesideNotifierStorm(relays: Int = 8) -> ExplorationScenario<PfnCacheExplorationWorld> {
        typealias Step = ExplorationScenario<PfnCacheExplorationWorld>.Step
        return ExplorationScenario(
            name: "pfn cache: refresh beside an unrelated notifier storm and a remap",
            threads: [
                [Step("refresh") { world in
                    let before = world.cache.resolutionCount
                    try world.cache.refresh(length: 8)
                    world.refreshed = true
                    let resolutions = world.cache.resolutionCount - before
                    if resolutions > resolutionBound {
                        return "livelock: the refresh resolved \(resolutions) times (at most \(resolutionBound) allowed) while unrelated invalidations kept one in flight"
                    }
                    return nil
                }, Step("read") { try $0.read() }],
                [Step("unrelated notifier storm") { world in
                    var index: UInt64 = 1
                    while !world.refreshed && index <= UInt64(relays) {
                        world.startStorm(index)
                        world.endStorm()
                        index += 1
                    }
                    while !world.stormInFlight.isEmpty { world.endStorm() }
                    return nil
                }],
                [Step("host remaps the cached page") { world in
                    try world.remapCachedPage()
                    return nil
                }, Step("read without refreshing") { try $0.readIfValid() }],
            ],
            makeWorld: { scheduler in
                let world = try PfnCacheExplorationWorld(scheduler)
                // Invalidated by an unrelated-looking host event on its own
                // page (the cache must refresh), and the storm's first
                // invalidation already in flight.
                world.registry.invalidateRangeStart(HostVirtualRange(start: PfnCacheExplorationWorld.cacheHost,
                                                                     size: PfnCacheExplorationWorld.page))
                world.registry.invalidateRangeEnd(HostVirtualRange(start: PfnCacheExplorationWorld.cacheHost,
                                                                   size: PfnCacheExplorationWorld.page))
                world.registry.invalidateRangeStart(world.stormRange(0))
                world.stormInFlight = [0]
                return world
            },
            check: { $0.check() })
    }
}
