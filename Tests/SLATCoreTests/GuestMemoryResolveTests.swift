import Testing
@testable import SLATCore

private let mib2: UInt64 = 0x20_0000
private let gib1: UInt64 = 0x4000_0000

private func gfn(_ value: UInt64) -> GuestFrameNumber { GuestFrameNumber(value) }
private func hva(_ value: UInt64) -> HostVirtualAddress { HostVirtualAddress(value) }
private func pfn(_ value: UInt64) -> HostFrameNumber { HostFrameNumber(value) }

/// Guest memory with one slot of `pages` frames from `base`, backed from
/// `hostAddress`, over host memory mapped with `size` pages from frame 0x10_0000.
private func memory(
    base: UInt64, pages: UInt64, hostAddress: UInt64, flags: MemslotFlags = [],
    hostSize: HostMappingSize, hostBytes: UInt64, hostStart: UInt64? = nil, writable: Bool = true
) throws -> GuestMemory {
    let memory = GuestMemory()
    let start = hostStart ?? (hostAddress & ~(hostSize.bytes - 1))
    try memory.hostPages.map(
        hva(start), to: pfn(0x10_0000), size: hostSize, count: hostBytes / hostSize.bytes, writable: writable)
    try memory.addMemslot(Memslot(
        id: 1, baseFrame: gfn(base), pageCount: pages, hostAddress: hva(hostAddress), flags: flags))
    return memory
}

@Suite("Guest memory: fault resolution")
struct GuestMemoryResolveTests {
    @Test("resolving a frame no memslot holds throws noMemslot")
    func noMemslot() throws {
        let memory = try memory(base: 0x100, pages: 16, hostAddress: 0x1000_0000, hostSize: .size4K, hostBytes: 0x10000)
        #expect(throws: SLATError.noMemslot(gfn(0x110))) { try memory.resolve(frame: gfn(0x110), write: false) }
    }

    @Test("resolving a frame whose host page is not mapped throws hostAddressNotMapped")
    func hostAddressNotMapped() throws {
        let memory = GuestMemory()
        try memory.addMemslot(Memslot(id: 1, baseFrame: gfn(0), pageCount: 4, hostAddress: hva(0x7000_0000)))
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(9))
        #expect(throws: SLATError.hostAddressNotMapped(hva(0x7000_1000))) {
            try memory.resolve(frame: gfn(1), write: false)
        }
    }

    @Test("a resolved page gives the host frame, the slot, the host size and the snapshot")
    func resolvedPageContents() throws {
        let memory = try memory(base: 0x100, pages: 16, hostAddress: 0x1000_0000, hostSize: .size4K, hostBytes: 0x10000)
        let page = try memory.resolve(frame: gfn(0x103), write: true)
        #expect(page.memslot.id == 1)
        #expect(page.hostAddress == hva(0x1000_3000))
        #expect(page.hostFrame == pfn(0x10_0003))
        #expect(page.hostMappingSize == .size4K)
        #expect(page.maximumMappingSize == .size4K)
        #expect(page.writable)
        #expect(!page.dirtyLogging)
        #expect(page.sequence == memory.invalidations.snapshot())
    }

    @Test("a read-only memslot resolves read-only, and a write to it is refused as MMIO")
    func readOnlyMemslot() throws {
        let memory = try memory(
            base: 0, pages: 4, hostAddress: 0x1000_0000, flags: .readOnly, hostSize: .size4K, hostBytes: 0x4000)
        #expect(try memory.resolve(frame: gfn(1), write: false).writable == false)
        #expect(throws: SLATError.readOnlyMemslot(slot: 1, frame: gfn(1))) { try memory.resolve(frame: gfn(1), write: true) }
    }

    @Test("a page the host maps read-only resolves read-only, and a write to it is refused")
    func readOnlyHostPage() throws {
        let memory = try memory(
            base: 0, pages: 4, hostAddress: 0x1000_0000, hostSize: .size4K, hostBytes: 0x4000, writable: false)
        #expect(try memory.resolve(frame: gfn(1), write: false).writable == false)
        #expect(throws: SLATError.hostPageReadOnly(hva(0x1000_1000))) {
            try memory.resolve(frame: gfn(1), write: true)
        }
    }

    @Test("dirty logging is reported but does not change the size the mappings allow")
    func dirtyLoggingReported() throws {
        let memory = try memory(
            base: 0x200, pages: 512, hostAddress: 0x4000_0000, flags: .dirtyLogging,
            hostSize: .size2M, hostBytes: mib2)
        let page = try memory.resolve(frame: gfn(0x201), write: false)
        #expect(page.dirtyLogging)
        #expect(page.maximumMappingSize == .size2M)
    }

    @Test("a 2 MiB block is allowed when the host maps 2 MiB and the aligned block lies in the slot")
    func twoMegabyteWhenAlignedAndInside() throws {
        let memory = try memory(base: 0x200, pages: 1024, hostAddress: 0x4000_0000, hostSize: .size2M, hostBytes: 2 * mib2)
        let page = try memory.resolve(frame: gfn(0x345), write: false)
        #expect(page.maximumMappingSize == .size2M)
        #expect(page.block(.size2M) == GuestFrameRange(start: gfn(0x200), count: 512))
        #expect(page.blockHostFrame(.size2M) == pfn(0x10_0000))
        #expect(page.hostFrame == pfn(0x10_0145))
    }

    @Test("a block that would reach outside the slot falls back to 4 KiB")
    func fourKilobyteWhenBlockLeavesSlot() throws {
        // The slot starts 16 frames into a 2 MiB guest block.
        let memory = try memory(
            base: 0x210, pages: 1024, hostAddress: 0x4001_0000, hostSize: .size2M, hostBytes: 4 * mib2,
            hostStart: 0x4000_0000)
        #expect(try memory.resolve(frame: gfn(0x211), write: false).maximumMappingSize == .size4K)
        // The next guest block lies wholly inside the slot, and is congruent.
        #expect(try memory.resolve(frame: gfn(0x400), write: false).maximumMappingSize == .size2M)
        // The slot ends 16 frames into its last block.
        #expect(try memory.resolve(frame: gfn(0x60F), write: false).maximumMappingSize == .size4K)
    }

    @Test("guest and host addresses not congruent modulo 2 MiB allow only 4 KiB")
    func fourKilobyteWhenNotCongruent() throws {
        let memory = try memory(
            base: 0x200, pages: 1024, hostAddress: 0x4001_0000, hostSize: .size2M, hostBytes: 4 * mib2,
            hostStart: 0x4000_0000)
        #expect(try memory.resolve(frame: gfn(0x300), write: false).maximumMappingSize == .size4K)
    }

    @Test("a 1 GiB block is allowed only when the host maps 1 GiB and the slot holds the aligned block")
    func gigabyteWhenEverythingAllows() throws {
        let huge = try memory(base: 0x40000, pages: 0x40000, hostAddress: gib1, hostSize: .size1G, hostBytes: gib1)
        #expect(try huge.resolve(frame: gfn(0x41234), write: false).maximumMappingSize == .size1G)

        // The host maps 2 MiB pages only: 2 MiB at most.
        let smallHost = try memory(base: 0x40000, pages: 0x40000, hostAddress: gib1, hostSize: .size2M, hostBytes: gib1)
        #expect(try smallHost.resolve(frame: gfn(0x41234), write: false).maximumMappingSize == .size2M)

        // The slot holds only half of the 1 GiB block: 2 MiB at most.
        let halfSlot = try memory(base: 0x40000, pages: 0x20000, hostAddress: gib1, hostSize: .size1G, hostBytes: gib1)
        #expect(try halfSlot.resolve(frame: gfn(0x41234), write: false).maximumMappingSize == .size2M)
    }
}
