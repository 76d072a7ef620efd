import Dispatch
import Foundation
import SLATCore
import Synchronization
@testable import SLATPfnCache

/// One VM for the pfn cache tests: a memslot of `pages` guest frames from
/// `baseFrame`, backed from `cacheHost` by host frames from `firstFrame`; a
/// host-only region at `stormHost` (no memslot) for unrelated invalidations;
/// a registry; and a stamp in every host frame's first 16 bytes (a
/// generation, then the host-virtual address the frame was given to back).
final class PfnCacheFixture: Sendable {
    static let baseFrame = GuestFrameNumber(0x100)
    static let cacheHost = HostVirtualAddress(0x7000_0000)
    static let firstFrame = HostFrameNumber(0x1000)
    static let stormHost = HostVirtualAddress(0x9000_0000)
    static let stormPages: UInt64 = 64
    static let page = UInt64(HostFrameMemory.frameBytes)

    let pages: Int
    let memory: GuestMemory
    let hostMemory: HostFrameMemory
    let registry: PfnCacheRegistry
    let slot: Memslot
    /// The next unused host frame for remaps.
    let nextFrame = Atomic<UInt64>(0x10_0000)

    init(pages: Int = 8) throws {
        self.pages = pages
        memory = GuestMemory()
        hostMemory = HostFrameMemory()
        slot = Memslot(id: 1, baseFrame: Self.baseFrame, pageCount: UInt64(pages), hostAddress: Self.cacheHost)
        try memory.hostPages.map(Self.cacheHost, to: Self.firstFrame, count: UInt64(pages))
        try memory.hostPages.map(Self.stormHost, to: HostFrameNumber(0x8000), count: Self.stormPages)
        try memory.addMemslot(slot)
        registry = PfnCacheRegistry(guestMemory: memory, hostMemory: hostMemory)
        for index in 0..<pages {
            stamp(HostFrameNumber(Self.firstFrame.rawValue + UInt64(index)), generation: 1, backing: hostAddress(page: index))
        }
    }

    func guestAddress(page: Int) -> GuestPhysicalAddress {
        GuestPhysicalAddress((Self.baseFrame.rawValue + UInt64(page)) << frameShift)
    }

    func hostAddress(page: Int) -> HostVirtualAddress {
        Self.cacheHost.advanced(by: UInt64(page) * Self.page)
    }

    func hostRange(page: Int) -> HostVirtualRange {
        HostVirtualRange(start: hostAddress(page: page), size: Self.page)
    }

    /// The `index`th page of the unrelated region.
    func stormRange(_ index: UInt64) -> HostVirtualRange {
        HostVirtualRange(start: Self.stormHost.advanced(by: (index % Self.stormPages) * Self.page), size: Self.page)
    }

    func stamp(_ frame: HostFrameNumber, generation: UInt64, backing address: HostVirtualAddress) {
        let bytes = hostMemory.bytes(of: frame)
        bytes.storeBytes(of: generation, as: UInt64.self)
        bytes.storeBytes(of: address.rawValue, toByteOffset: 8, as: UInt64.self)
    }

    /// Moves cached page `page` to a fresh host frame stamped `generation`;
    /// returns the frame.
    @discardableResult
    func migrate(page: Int, generation: UInt64) throws -> HostFrameNumber {
        let frame = HostFrameNumber(nextFrame.wrappingAdd(1, ordering: .relaxed).oldValue)
        stamp(frame, generation: generation, backing: hostAddress(page: page))
        try memory.hostPages.remap(hostRange(page: page), to: frame)
        return frame
    }

    func cache(_ strategy: PfnCacheRefreshStrategy, afterResolution: (@Sendable (UInt64) -> Void)? = nil) -> PfnCache {
        PfnCache(registry: registry, strategy: strategy, afterResolution: afterResolution)
    }
}

/// The stamp an accessor reads: (generation, backed host-virtual address).
func readStamp(_ bytes: UnsafeMutableRawBufferPointer) -> (generation: UInt64, address: UInt64) {
    (bytes.load(as: UInt64.self), bytes.load(fromByteOffset: 8, as: UInt64.self))
}

/// Runs `body(i)` for `i` in `0..<count` on new threads started together and
/// returns when all have finished. Still running after `limit` seconds means
/// a deadlock: the process stops with that message rather than hanging.
func runThreads(_ count: Int, limit: Int = 60, _ body: @escaping @Sendable (Int) -> Void) {
    let started = Atomic<Int>(0)
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            started.wrappingAdd(1, ordering: .acquiringAndReleasing)
            while started.load(ordering: .acquiring) < count { sched_yield() }
            body(index)
            group.leave()
        }
        thread.start()
    }
    if group.wait(timeout: .now() + .seconds(limit)) == .timedOut {
        fatalError("\(count) threads still running after \(limit) s: deadlock")
    }
}

/// A thread running `body` until ``stop()``; ``stop()`` returns when it has.
final class BackgroundLoop: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable (_ shouldStop: () -> Bool) -> Void) {
        let thread = Thread { [self] in
            body { self.stopping.load(ordering: .relaxed) }
            self.done.signal()
        }
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        if done.wait(timeout: .now() + .seconds(60)) == .timedOut {
            fatalError("background loop did not stop within 60 s: deadlock")
        }
    }
}

/// A storm of notifier invalidations, through the registry's entry points,
/// that keeps at least one in flight at every moment (each starts before the
/// previous ends, as concurrent `MADV_DONTNEED`s under the mmap read lock
/// do), over `ranges(i)`. Returns the loop; stop it to end the storm.
func relayStorm(_ registry: PfnCacheRegistry, _ ranges: @escaping @Sendable (UInt64) -> HostVirtualRange) -> BackgroundLoop {
    let firstStarted = DispatchSemaphore(value: 0)
    let loop = BackgroundLoop { shouldStop in
        var index: UInt64 = 0
        var previous = ranges(index)
        registry.invalidateRangeStart(previous)
        firstStarted.signal()
        while !shouldStop() {
            index &+= 1
            let next = ranges(index)
            registry.invalidateRangeStart(next)
            registry.invalidateRangeEnd(previous)
            previous = next
        }
        registry.invalidateRangeEnd(previous)
    }
    firstStarted.wait()
    return loop
}

func nanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
