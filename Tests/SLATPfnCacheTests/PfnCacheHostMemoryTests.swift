import SLATCore
import Synchronization
import Testing
@testable import SLATPfnCache

/// Counts access mappings in and out, over the heap model.
final class CountingHostMemory: PfnCacheHostMemory {
    let model = HostFrameMemory()
    let maps = Atomic<Int>(0)
    let unmaps = Atomic<Int>(0)

    func mapForAccess(page: HostVirtualAddress, frame: HostFrameNumber) throws(SLATError) -> UnsafeMutableRawPointer {
        maps.wrappingAdd(1, ordering: .relaxed)
        return model.bytes(of: frame)
    }

    func unmapAfterAccess(_ bytes: UnsafeMutableRawPointer, page: HostVirtualAddress, frame: HostFrameNumber) {
        unmaps.wrappingAdd(1, ordering: .relaxed)
    }

    var outstanding: Int { maps.load(ordering: .relaxed) - unmaps.load(ordering: .relaxed) }
}

/// A VM whose guest RAM is real memory of this process (`mmap`ed), reached
/// by the pfn cache through ``ProcessMappedHostMemory``.
struct ProcessMemoryVM {
    static let baseFrame = GuestFrameNumber(0x200)
    let hostMemory = ProcessMappedHostMemory()
    let guestMemory = GuestMemory()
    let ram: HostVirtualRange
    let registry: PfnCacheRegistry

    init(pages: Int = 4) throws {
        ram = try hostMemory.mapAnonymousRegion(byteCount: pages * HostFrameMemory.frameBytes)
        // The host page map names a frame per page; a user-space VMM has no
        // real frame numbers, any distinct ones do.
        try guestMemory.hostPages.map(ram.start, to: HostFrameNumber(0x5000), count: UInt64(pages))
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: Self.baseFrame, pageCount: UInt64(pages), hostAddress: ram.start))
        registry = PfnCacheRegistry(guestMemory: guestMemory, hostMemory: hostMemory)
    }

    func guest(_ offset: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress(Self.baseFrame.rawValue << frameShift + offset) }

    /// The VMM's own pointer to the byte at `offset` of guest RAM.
    func vmmPointer(_ offset: UInt64) -> UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(bitPattern: UInt(ram.start.rawValue + offset))!
    }
}

@Suite("Pfn cache over pluggable host memory")
struct PfnCacheHostMemoryTests {
    @Test("A write through the cache is read back through the VMM's own mapping of guest RAM")
    func writeThroughCacheReachesRealMemory() throws {
        let vm = try ProcessMemoryVM()
        let cache = PfnCache(registry: vm.registry)
        try cache.activate(guestAddress: vm.guest(0x1040), length: 8)
        try cache.access(length: 8) { bytes in bytes.storeBytes(of: UInt64(0x5EA1_7135), as: UInt64.self) }
        #expect(vm.vmmPointer(0x1040).load(as: UInt64.self) == 0x5EA1_7135)
    }

    @Test("A write by the VMM to guest RAM is read through the cache")
    func vmmWriteIsReadThroughCache() throws {
        let vm = try ProcessMemoryVM()
        vm.vmmPointer(0x2008).storeBytes(of: UInt64(77), as: UInt64.self)
        let cache = PfnCache(registry: vm.registry)
        try cache.activate(guestAddress: vm.guest(0x2008), length: 8)
        #expect(try cache.access(length: 8) { $0.load(as: UInt64.self) } == 77)
    }

    @Test("After a host remap of the page the refreshed cache reads the page's contents, not zero")
    func remapKeepsContents() throws {
        let vm = try ProcessMemoryVM()
        let cache = PfnCache(registry: vm.registry)
        try cache.activate(guestAddress: vm.guest(0x40), length: 8)
        try cache.access(length: 8) { $0.storeBytes(of: UInt64(9), as: UInt64.self) }
        // The kernel migrates the page: same virtual address, new frame, contents kept.
        try vm.guestMemory.hostPages.remap(HostVirtualRange(start: vm.ram.start, size: 4096), to: HostFrameNumber(0x9000))
        #expect(!cache.check(length: 8))
        try cache.refresh(length: 8)
        #expect(try cache.access(length: 8) { $0.load(as: UInt64.self) } == 9)
    }

    @Test("A page outside every registered region is refused with hostAddressNotMapped and the cache stays inactive")
    func unregisteredPageIsRefused() throws {
        let vm = try ProcessMemoryVM()
        let outside = HostVirtualAddress(0x7100_0000_0000)
        try vm.guestMemory.hostPages.map(outside, to: HostFrameNumber(0x6000), count: 1)
        let cache = PfnCache(registry: vm.registry)
        #expect(throws: SLATError.hostAddressNotMapped(outside)) {
            try cache.activate(hostAddress: outside, length: 8)
        }
        #expect(!cache.isActive)
    }

    @Test("Registering a misaligned or overlapping region throws invalidHostMapping")
    func badRegionsAreRefused() throws {
        let memory = ProcessMappedHostMemory()
        #expect(throws: SLATError.invalidHostMapping(HostVirtualAddress(0x1000_0800))) {
            try memory.register(HostVirtualRange(start: HostVirtualAddress(0x1000_0800), size: 4096))
        }
        try memory.register(HostVirtualRange(start: HostVirtualAddress(0x2000_0000), size: 0x4000))
        #expect(throws: SLATError.invalidHostMapping(HostVirtualAddress(0x2000_3000))) {
            try memory.register(HostVirtualRange(start: HostVirtualAddress(0x2000_3000), size: 0x2000))
        }
        #expect(memory.registeredRegions.count == 1)
    }

    @Test("An anonymous region asked for with 2 MiB alignment starts on a 2 MiB boundary and is registered")
    func anonymousRegionIsAligned() throws {
        let memory = ProcessMappedHostMemory()
        let range = try memory.mapAnonymousRegion(byteCount: 3 << 20, alignment: 2 << 20)
        #expect(range.start.rawValue % (2 << 20) == 0)
        #expect(range.size == 3 << 20)
        #expect(memory.registeredRegions == [range])
    }

    @Test("An alignment below 4 KiB or not a power of two is refused")
    func badAlignmentIsRefused() {
        let memory = ProcessMappedHostMemory()
        #expect(throws: SLATError.misalignedSize(0x3000, alignment: 4096)) {
            try memory.mapAnonymousRegion(byteCount: 4096, alignment: 0x3000)
        }
        #expect(throws: SLATError.emptyRange) { try memory.mapAnonymousRegion(byteCount: 0) }
    }

    @Test("Every access mapping is unmapped once: on invalidation, on refresh after it, on deactivation")
    func mappingsAreBalanced() throws {
        let fixture = try PfnCacheFixture()
        let counting = CountingHostMemory()
        let registry = PfnCacheRegistry(guestMemory: fixture.memory, hostMemory: counting)
        let cache = PfnCache(registry: registry)
        try cache.activate(guestAddress: fixture.guestAddress(page: 1), length: 8)
        #expect(counting.outstanding == 1)
        try fixture.migrate(page: 1, generation: 2)
        #expect(counting.outstanding == 0)
        try cache.refresh(length: 8)
        #expect(counting.outstanding == 1)
        cache.deactivate()
        #expect(counting.outstanding == 0)
        #expect(counting.maps.load(ordering: .relaxed) == 2)
    }

    @Test("A cache destroyed while mapped unmaps its access mapping")
    func destroyedCacheUnmaps() throws {
        let fixture = try PfnCacheFixture()
        let counting = CountingHostMemory()
        let registry = PfnCacheRegistry(guestMemory: fixture.memory, hostMemory: counting)
        do {
            let cache = PfnCache(registry: registry)
            try cache.activate(guestAddress: fixture.guestAddress(page: 0), length: 8)
            #expect(counting.outstanding == 1)
        }
        #expect(counting.outstanding == 0)
    }
}
