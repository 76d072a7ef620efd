import Synchronization
import Testing
@testable import SLATCore

private let kib4: UInt64 = 0x1000
private let mib2: UInt64 = 0x20_0000
private let gib1: UInt64 = 0x4000_0000

private func hva(_ value: UInt64) -> HostVirtualAddress { HostVirtualAddress(value) }
private func pfn(_ value: UInt64) -> HostFrameNumber { HostFrameNumber(value) }
private func hvaRange(_ start: UInt64, _ size: UInt64) -> HostVirtualRange {
    HostVirtualRange(start: HostVirtualAddress(start), size: size)
}

/// Collects notifier events (and what a lookup returned when each arrived).
final class HostEventLog: Sendable {
    struct Entry: Sendable, Equatable {
        var event: HostInvalidation
        var pageSeen: HostPage?
    }
    private let entries = ReaderWriterLocked<[Entry]>([])
    var all: [Entry] { entries.read { $0 } }
    var events: [HostInvalidation] { all.map(\.event) }
    func record(_ event: HostInvalidation, _ page: HostPage?) { entries.write { $0.append(Entry(event: event, pageSeen: page)) } }
}

@Suite("Host page map")
struct GuestMemoryHostPageMapTests {
    @Test("a lookup inside a 2 MiB mapping gives the exact 4 KiB frame, the mapping size and its base")
    func lookupInsideHugeMapping() throws {
        let map = HostPageMap()
        try map.map(hva(0x4000_0000), to: pfn(0x80_000), size: .size2M, count: 2, writable: true)
        let page = try #require(map.lookup(hva(0x4020_5123)))
        #expect(page.frame == pfn(0x80_000 + 0x205))
        #expect(page.mappingSize == .size2M)
        #expect(page.mappingBase == hva(0x4020_0000))
        #expect(page.mappingFrame == pfn(0x80_200))
        #expect(page.writable)
    }

    @Test("a lookup where nothing is mapped gives nil")
    func lookupOfHoleIsNil() throws {
        let map = HostPageMap()
        try map.map(hva(0x1000), to: pfn(5))
        #expect(map.lookup(hva(0x0FFF)) == nil)
        #expect(map.lookup(hva(0x2000)) == nil)
    }

    @Test("a mapping whose address is not aligned to its size is rejected")
    func misalignedAddressRejected() {
        let map = HostPageMap()
        #expect(throws: SLATError.invalidHostMapping(hva(0x1000))) {
            try map.map(hva(0x1000), to: pfn(0x200), size: .size2M)
        }
        #expect(throws: SLATError.invalidHostMapping(hva(0x20_0000))) {
            try map.map(hva(0x20_0000), to: pfn(0), size: .size1G)
        }
    }

    @Test("a mapping whose frame is not aligned to its size is rejected")
    func misalignedFrameRejected() {
        let map = HostPageMap()
        #expect(throws: SLATError.invalidHostMapping(hva(0x20_0000))) {
            try map.map(hva(0x20_0000), to: pfn(0x201), size: .size2M)
        }
    }

    @Test("a mapping overlapping an existing one is rejected")
    func overlappingMappingRejected() throws {
        let map = HostPageMap()
        try map.map(hva(0x20_0000), to: pfn(0x200), size: .size2M)
        #expect(throws: SLATError.invalidHostMapping(hva(0x3F_F000))) {
            try map.map(hva(0x3F_F000), to: pfn(1), count: 2)
        }
        #expect(throws: SLATError.invalidHostMapping(hva(0x1F_F000))) {
            try map.map(hva(0x1F_F000), to: pfn(1), count: 2)
        }
        #expect(map.mappings.count == 1)
    }

    @Test("a mapping of zero pages is rejected")
    func emptyMappingRejected() {
        let map = HostPageMap()
        #expect(throws: SLATError.emptyRange) { try map.map(hva(0x1000), to: pfn(1), count: 0) }
    }

    @Test("unmap raises start before the change is visible and end after it")
    func unmapNotifiesAroundTheChange() throws {
        let map = HostPageMap()
        try map.map(hva(0x10_000), to: pfn(0x500), count: 4)
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, map.lookup(hva(0x11_000))) }
        try map.unmap(hvaRange(0x11_000, 2 * kib4))
        let entries = log.all
        try #require(entries.count == 2)
        #expect(entries[0].event.phase == .start)
        #expect(entries[1].event.phase == .end)
        #expect(entries[0].event.id == entries[1].event.id)
        #expect(entries[0].event.kind == .unmap)
        #expect(entries[0].event.range == hvaRange(0x11_000, 2 * kib4))
        #expect(entries[1].event.range == hvaRange(0x11_000, 2 * kib4))
        #expect(entries[0].pageSeen?.frame == pfn(0x501))   // still mapped at start
        #expect(entries[1].pageSeen == nil)                   // gone at end
        #expect(map.lookup(hva(0x10_000))?.frame == pfn(0x500))
        #expect(map.lookup(hva(0x13_000))?.frame == pfn(0x503))
    }

    @Test("unmapping part of a huge mapping splits the rest into smaller pages and notifies the whole huge page")
    func partialUnmapSplitsHugeMapping() throws {
        let map = HostPageMap()
        try map.map(hva(0x4000_0000), to: pfn(0x40_000), size: .size2M, count: 2)
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, nil) }
        try map.unmap(hvaRange(0x4000_1000, kib4))
        #expect(log.events.first?.range == hvaRange(0x4000_0000, mib2))
        #expect(map.lookup(hva(0x4000_1000)) == nil)
        let before = try #require(map.lookup(hva(0x4000_0000)))
        #expect(before.mappingSize == .size4K)
        #expect(before.frame == pfn(0x40_000))
        let after = try #require(map.lookup(hva(0x4000_2000)))
        #expect(after.mappingSize == .size4K)
        #expect(after.frame == pfn(0x40_002))
        // The second huge page is untouched.
        #expect(map.lookup(hva(0x4020_0000))?.mappingSize == .size2M)
    }

    @Test("splitting a 1 GiB mapping keeps 2 MiB mappings where they still fit")
    func splitOfGigabyteMappingKeepsTwoMegabytePieces() throws {
        let map = HostPageMap()
        try map.map(hva(gib1), to: pfn(0x40_000), size: .size1G)
        try map.protect(hvaRange(gib1 + 0x1000, kib4), writable: false)
        #expect(map.lookup(hva(gib1))?.mappingSize == .size4K)
        #expect(map.lookup(hva(gib1 + 0x1000))?.writable == false)
        #expect(map.lookup(hva(gib1 + mib2))?.mappingSize == .size2M)
        #expect(map.lookup(hva(gib1 + gib1 - kib4))?.mappingSize == .size2M)
        #expect(map.lookup(hva(gib1 + gib1 - kib4))?.frame == pfn(0x40_000 + 0x3FFFF))
    }

    @Test("unmapping a range where nothing is mapped raises no event")
    func unmapOfHoleIsSilent() throws {
        let map = HostPageMap()
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, nil) }
        try map.unmap(hvaRange(0x10_000, kib4))
        #expect(log.events.isEmpty)
    }

    @Test("unmapping a range that is not 4 KiB-aligned is rejected")
    func misalignedUnmapRejected() {
        let map = HostPageMap()
        #expect(throws: SLATError.invalidHostMapping(hva(0x10_800))) { try map.unmap(hvaRange(0x10_800, kib4)) }
        #expect(throws: SLATError.emptyRange) { try map.unmap(hvaRange(0x10_000, 0)) }
    }

    @Test("remap moves pages to new frames, keeps their permission and notifies with kind remap")
    func remapMovesPages() throws {
        let map = HostPageMap()
        try map.map(hva(0x10_000), to: pfn(0x500), count: 4, writable: false)
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, map.lookup(hva(0x11_000))) }
        try map.remap(hvaRange(0x11_000, 2 * kib4), to: pfn(0x900))
        #expect(log.events.map(\.kind) == [.remap, .remap])
        #expect(log.all.map { $0.pageSeen?.frame } == [pfn(0x501), pfn(0x900)])
        #expect(map.lookup(hva(0x12_000))?.frame == pfn(0x901))
        #expect(map.lookup(hva(0x12_000))?.writable == false)
        #expect(map.lookup(hva(0x13_000))?.frame == pfn(0x503))
    }

    @Test("remap can build huge mappings when the new frames are aligned")
    func remapToHugeMapping() throws {
        let map = HostPageMap()
        try map.map(hva(0x20_0000), to: pfn(0x1000), count: 512)
        try map.remap(hvaRange(0x20_0000, mib2), to: pfn(0x4_0000), size: .size2M)
        #expect(map.lookup(hva(0x20_1000))?.mappingSize == .size2M)
        #expect(map.lookup(hva(0x20_1000))?.frame == pfn(0x4_0001))
    }

    @Test("remap or protect of a range with a hole is rejected at the first unmapped address")
    func remapOfUnmappedRejected() throws {
        let map = HostPageMap()
        try map.map(hva(0x10_000), to: pfn(0x500))
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, nil) }
        #expect(throws: SLATError.hostAddressNotMapped(hva(0x11_000))) {
            try map.remap(hvaRange(0x10_000, 2 * kib4), to: pfn(0x900))
        }
        #expect(throws: SLATError.hostAddressNotMapped(hva(0x11_000))) {
            try map.protect(hvaRange(0x10_000, 2 * kib4), writable: false)
        }
        #expect(log.events.isEmpty)
        #expect(map.lookup(hva(0x10_000))?.frame == pfn(0x500))
    }

    @Test("write-protecting raises protect events; granting write access raises none")
    func protectNotifiesOnlyWhenReducing() throws {
        let map = HostPageMap()
        try map.map(hva(0x10_000), to: pfn(0x500), count: 2)
        let log = HostEventLog()
        _ = map.addListener { event in log.record(event, map.lookup(hva(0x10_000))) }
        try map.protect(hvaRange(0x10_000, kib4), writable: false)
        #expect(log.events.map(\.kind) == [.protect, .protect])
        #expect(log.all.map { $0.pageSeen?.writable } == [true, false])
        #expect(map.lookup(hva(0x11_000))?.writable == true)
        try map.protect(hvaRange(0x10_000, kib4), writable: true)
        #expect(log.events.count == 2)
        #expect(map.lookup(hva(0x10_000))?.writable == true)
    }

    @Test("a removed listener receives no further events")
    func removedListenerIsSilent() throws {
        let map = HostPageMap()
        try map.map(hva(0x10_000), to: pfn(0x500), count: 2)
        let log = HostEventLog()
        let token = map.addListener { event in log.record(event, nil) }
        #expect(map.removeListener(token))
        #expect(!map.removeListener(token))
        try map.unmap(hvaRange(0x10_000, kib4))
        #expect(log.events.isEmpty)
    }
}
