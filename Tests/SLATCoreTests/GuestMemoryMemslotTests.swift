import Testing
@testable import SLATCore

private func slot(
    _ id: UInt32, base: UInt64, pages: UInt64, hva: UInt64, flags: MemslotFlags = []
) -> Memslot {
    Memslot(id: id, baseFrame: GuestFrameNumber(base), pageCount: pages,
            hostAddress: HostVirtualAddress(hva), flags: flags)
}

@Suite("Memslots")
struct GuestMemoryMemslotTests {
    @Test("a memslot overlapping an existing one's guest frames is rejected")
    func overlapRejected() throws {
        let table = MemslotTable()
        try table.insert(slot(1, base: 0x100, pages: 0x100, hva: 0x10_0000))
        #expect(throws: SLATError.overlappingMemslot(slot: 2, existing: 1)) {
            try table.insert(slot(2, base: 0x1FF, pages: 1, hva: 0x90_0000))
        }
        #expect(throws: SLATError.overlappingMemslot(slot: 3, existing: 1)) {
            try table.insert(slot(3, base: 0x0, pages: 0x101, hva: 0x90_0000))
        }
        #expect(table.count == 1)
    }

    @Test("memslots that touch without overlapping are accepted")
    func adjacentSlotsAccepted() throws {
        let table = MemslotTable()
        try table.insert(slot(1, base: 0x100, pages: 0x100, hva: 0x10_0000))
        try table.insert(slot(2, base: 0x200, pages: 0x10, hva: 0x90_0000))
        try table.insert(slot(3, base: 0xF0, pages: 0x10, hva: 0xA0_0000))
        #expect(table.memslots.map(\.id) == [3, 1, 2])
    }

    @Test("a memslot with zero pages is invalid")
    func zeroPagesRejected() {
        let table = MemslotTable()
        #expect(throws: SLATError.invalidMemslot(slot: 7)) {
            try table.insert(slot(7, base: 0, pages: 0, hva: 0x1000))
        }
    }

    @Test("a memslot whose host address is not 4 KiB-aligned is invalid")
    func misalignedHostAddressRejected() {
        let table = MemslotTable()
        #expect(throws: SLATError.invalidMemslot(slot: 7)) {
            try table.insert(slot(7, base: 0, pages: 1, hva: 0x1008))
        }
    }

    @Test("a memslot whose ranges wrap past 2^64 is invalid")
    func wrappingRangeRejected() {
        let table = MemslotTable()
        #expect(throws: SLATError.invalidMemslot(slot: 7)) {
            try table.insert(slot(7, base: UInt64.max - 1, pages: 4, hva: 0x1000))
        }
        #expect(throws: SLATError.invalidMemslot(slot: 8)) {
            try table.insert(slot(8, base: 0, pages: 4, hva: UInt64.max & ~0xFFF))
        }
    }

    @Test("a memslot id already in use is rejected")
    func duplicateIdRejected() throws {
        let table = MemslotTable()
        try table.insert(slot(1, base: 0, pages: 1, hva: 0x1000))
        #expect(throws: SLATError.duplicateMemslot(slot: 1)) {
            try table.insert(slot(1, base: 100, pages: 1, hva: 0x2000))
        }
    }

    @Test("removing or updating an unknown memslot id is rejected")
    func unknownIdRejected() {
        let table = MemslotTable()
        #expect(throws: SLATError.unknownMemslot(slot: 9)) { try table.remove(id: 9) }
        #expect(throws: SLATError.unknownMemslot(slot: 9)) { try table.updateFlags(id: 9, to: .readOnly) }
    }

    @Test("lookup finds the right memslot among many by binary search, and none in the gaps")
    func lookupAmongManySlots() throws {
        let table = MemslotTable()
        // Insert out of order: slot i holds frames [1000 i, 1000 i + 600).
        for i in (0..<500 as Range<UInt64>).shuffled() {
            try table.insert(slot(UInt32(i), base: i * 1000, pages: 600, hva: 0x1_0000_0000 + i * 0x100_0000))
        }
        for i in stride(from: 0 as UInt64, to: 500, by: 7) {
            #expect(table.lookup(frame: GuestFrameNumber(i * 1000))?.id == UInt32(i))
            #expect(table.lookup(frame: GuestFrameNumber(i * 1000 + 599))?.id == UInt32(i))
            #expect(table.lookup(frame: GuestFrameNumber(i * 1000 + 600)) == nil)
            #expect(table.lookup(frame: GuestFrameNumber(i * 1000 + 999)) == nil)
        }
        #expect(table.lookup(frame: GuestFrameNumber(500_000)) == nil)
    }

    @Test("every change bumps the generation; a rejected change does not")
    func generationBumps() throws {
        let table = MemslotTable()
        #expect(table.generation == 0)
        try table.insert(slot(1, base: 0, pages: 1, hva: 0x1000))
        #expect(table.generation == 1)
        try table.updateFlags(id: 1, to: .dirtyLogging)
        #expect(table.generation == 2)
        #expect(table.lookup(frame: GuestFrameNumber(0))?.flags == .dirtyLogging)
        #expect(throws: SLATError.duplicateMemslot(slot: 1)) {
            try table.insert(slot(1, base: 5, pages: 1, hva: 0x1000))
        }
        #expect(table.generation == 2)
        try table.remove(id: 1)
        #expect(table.generation == 3)
        #expect(table.versionedLookup(frame: GuestFrameNumber(0)).generation == 3)
        #expect(table.versionedLookup(frame: GuestFrameNumber(0)).memslot == nil)
    }

    @Test("memslots overlapping a host range include every alias of that memory")
    func hostRangeFindsAliases() throws {
        let table = MemslotTable()
        try table.insert(slot(1, base: 0x000, pages: 16, hva: 0x40_0000))
        try table.insert(slot(2, base: 0x800, pages: 16, hva: 0x40_0000))
        try table.insert(slot(3, base: 0x900, pages: 16, hva: 0x80_0000))
        let hit = table.memslots(overlapping: HostVirtualRange(start: HostVirtualAddress(0x40_3000), size: 0x2000))
        #expect(hit.map(\.id) == [1, 2])
    }

    @Test("a memslot translates between its guest frames and host addresses")
    func memslotAddressTranslation() {
        let s = slot(1, base: 0x100, pages: 16, hva: 0x40_0000)
        #expect(s.hostAddress(of: GuestFrameNumber(0x103)) == HostVirtualAddress(0x40_3000))
        #expect(s.hostAddress(of: GuestFrameNumber(0x110)) == nil)
        #expect(s.frame(of: HostVirtualAddress(0x40_3FFF)) == GuestFrameNumber(0x103))
        #expect(s.frame(of: HostVirtualAddress(0x41_0000)) == nil)
        let backed = s.frames(backedBy: HostVirtualRange(start: HostVirtualAddress(0x3F_0000), size: 0x1_2000))
        #expect(backed == GuestFrameRange(start: GuestFrameNumber(0x100), count: 2))
    }
}
