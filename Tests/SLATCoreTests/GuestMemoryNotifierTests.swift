import Foundation
import Synchronization
import Testing
@testable import SLATCore

private let kib4: UInt64 = 0x1000

private func gfn(_ value: UInt64) -> GuestFrameNumber { GuestFrameNumber(value) }
private func hva(_ value: UInt64) -> HostVirtualAddress { HostVirtualAddress(value) }
private func pfn(_ value: UInt64) -> HostFrameNumber { HostFrameNumber(value) }
private func frames(_ start: UInt64, _ count: UInt64) -> GuestFrameRange {
    GuestFrameRange(start: GuestFrameNumber(start), count: count)
}

/// What a guest listener observed when each event arrived.
final class GuestEventLog: Sendable {
    struct Entry: Sendable, Equatable {
        var event: GuestInvalidation
        var inProgress: UInt64
        var inFlight: GuestFrameRange?
        var sequence: InvalidationSequence
    }
    private let entries = ReaderWriterLocked<[Entry]>([])
    var all: [Entry] { entries.read { $0 } }
    var events: [GuestInvalidation] { all.map(\.event) }

    func listen(to memory: GuestMemory) {
        let tracker = memory.invalidations
        _ = memory.addListener { [self] event in
            let entry = Entry(
                event: event, inProgress: tracker.inProgressCount,
                inFlight: tracker.inFlightRange, sequence: tracker.sequence)
            entries.write { $0.append(entry) }
        }
    }
}

@Suite("Guest memory: invalidation")
struct GuestMemoryNotifierTests {
    @Test("a host unmap reaches guest listeners as a frame range, tracked in progress at start and ended before end")
    func hostUnmapBecomesGuestInvalidation() throws {
        let memory = GuestMemory()
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(0x500), count: 16)
        try memory.addMemslot(Memslot(id: 3, baseFrame: gfn(0x100), pageCount: 16, hostAddress: hva(0x7000_0000)))
        let log = GuestEventLog()
        log.listen(to: memory)
        let before = memory.invalidations.sequence
        try memory.hostPages.unmap(HostVirtualRange(start: hva(0x7000_4000), size: 2 * kib4))
        let entries = log.all
        try #require(entries.count == 2)
        #expect(entries[0].event.phase == .start)
        #expect(entries[0].event.range == frames(0x104, 2))
        #expect(entries[0].event.memslot == 3)
        #expect(entries[0].event.cause == .host(.unmap))
        #expect(entries[0].inProgress == 1)
        #expect(entries[0].inFlight == frames(0x104, 2))
        #expect(entries[0].sequence == before)
        #expect(entries[1].event.phase == .end)
        #expect(entries[1].event.id == entries[0].event.id)
        #expect(entries[1].inProgress == 0)
        #expect(entries[1].sequence == InvalidationSequence(before.value + 1))
    }

    @Test("a host range behind two memslots that alias it invalidates both guest ranges")
    func aliasedMemslotsBothInvalidated() throws {
        let memory = GuestMemory()
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(0x500), count: 16)
        try memory.addMemslot(Memslot(id: 1, baseFrame: gfn(0x100), pageCount: 16, hostAddress: hva(0x7000_0000)))
        try memory.addMemslot(Memslot(id: 2, baseFrame: gfn(0x900), pageCount: 8, hostAddress: hva(0x7000_8000)))
        let log = GuestEventLog()
        log.listen(to: memory)
        try memory.hostPages.remap(HostVirtualRange(start: hva(0x7000_6000), size: 4 * kib4), to: pfn(0x800))
        let starts = log.all.filter { $0.event.phase == .start }
        let ends = log.all.filter { $0.event.phase == .end }
        #expect(starts.map(\.event.memslot) == [1, 2])
        #expect(starts.map(\.event.range) == [frames(0x106, 4), frames(0x900, 2)])
        #expect(ends.map(\.event.range) == [frames(0x106, 4), frames(0x900, 2)])
        // Every start comes before every end; both ranges are in flight at the starts.
        #expect(log.all.map(\.event.phase) == [.start, .start, .end, .end])
        #expect(starts.last?.inProgress == 2)
        #expect(starts.last?.inFlight == frames(0x106, 0x900 + 2 - 0x106))
        #expect(ends.first?.inProgress == 0)
        #expect(memory.invalidations.inProgressCount == 0)
    }

    @Test("a host change outside every memslot raises no guest event")
    func hostChangeOutsideMemslotsIsSilent() throws {
        let memory = GuestMemory()
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(0x500), count: 16)
        try memory.addMemslot(Memslot(id: 1, baseFrame: gfn(0x100), pageCount: 4, hostAddress: hva(0x7000_0000)))
        let log = GuestEventLog()
        log.listen(to: memory)
        try memory.hostPages.unmap(HostVirtualRange(start: hva(0x7000_8000), size: kib4))
        #expect(log.events.isEmpty)
        #expect(memory.invalidations.sequence == InvalidationSequence(0))
    }

    @Test("at start the host page is still there but a fault on it must retry; after end it is gone")
    func faultDuringInvalidationMustRetry() throws {
        let memory = GuestMemory()
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(0x500), count: 4)
        try memory.addMemslot(Memslot(id: 1, baseFrame: gfn(0), pageCount: 4, hostAddress: hva(0x7000_0000)))
        let seenAtStart = ReaderWriterLocked<(page: ResolvedGuestPage?, retry: Bool)>((nil, false))
        _ = memory.addListener { event in
            guard event.phase == .start else { return }
            let page = try? memory.resolve(frame: gfn(1), write: false)
            let retry = page.map { memory.invalidations.needsRetry(frame: gfn(1), since: $0.sequence) } ?? false
            seenAtStart.write { $0 = (page, retry) }
        }
        let early = try memory.resolve(frame: gfn(1), write: false)
        try memory.hostPages.unmap(HostVirtualRange(start: hva(0x7000_1000), size: kib4))
        let atStart = seenAtStart.read { $0 }
        #expect(atStart.page?.hostFrame == pfn(0x501))
        #expect(atStart.retry)
        #expect(memory.invalidations.needsRetry(frame: gfn(1), since: early.sequence))
        #expect(throws: SLATError.hostAddressNotMapped(hva(0x7000_1000))) {
            try memory.resolve(frame: gfn(1), write: false)
        }
    }

    @Test("removing a memslot invalidates its whole range before it disappears")
    func memslotRemovalInvalidates() throws {
        let memory = GuestMemory()
        try memory.addMemslot(Memslot(id: 4, baseFrame: gfn(0x100), pageCount: 8, hostAddress: hva(0x7000_0000)))
        let stillThere = ReaderWriterLocked<[Bool]>([])
        _ = memory.addListener { _ in
            let present = memory.memslot(id: 4) != nil
            stillThere.write { $0.append(present) }
        }
        let log = GuestEventLog()
        log.listen(to: memory)
        let generation = memory.memslotGeneration
        let removed = try memory.removeMemslot(id: 4)
        #expect(removed.id == 4)
        #expect(log.events.map(\.phase) == [.start, .end])
        #expect(log.events.map(\.cause) == [.memslotRemoved, .memslotRemoved])
        #expect(log.events.first?.range == frames(0x100, 8))
        #expect(log.all.first?.inFlight == frames(0x100, 8))
        #expect(stillThere.read { $0 } == [true, false])
        #expect(memory.memslotGeneration == generation + 1)
        #expect(throws: SLATError.unknownMemslot(slot: 4)) { try memory.removeMemslot(id: 4) }
    }

    @Test("making a memslot read-only invalidates it; toggling dirty logging does not")
    func readOnlyFlagInvalidates() throws {
        let memory = GuestMemory()
        try memory.addMemslot(Memslot(id: 4, baseFrame: gfn(0x100), pageCount: 8, hostAddress: hva(0x7000_0000)))
        let log = GuestEventLog()
        log.listen(to: memory)
        try memory.updateMemslotFlags(id: 4, to: .dirtyLogging)
        #expect(log.events.isEmpty)
        try memory.updateMemslotFlags(id: 4, to: [.dirtyLogging, .readOnly])
        #expect(log.events.map(\.cause) == [.memslotMadeReadOnly, .memslotMadeReadOnly])
        #expect(memory.memslot(id: 4)?.flags == [.dirtyLogging, .readOnly])
        #expect(throws: SLATError.unknownMemslot(slot: 5)) { try memory.updateMemslotFlags(id: 5, to: []) }
    }

    @Test("adding a memslot waits until the host invalidation in flight has ended")
    func memslotAddWaitsForInFlightInvalidation() throws {
        let memory = GuestMemory()
        try memory.hostPages.map(hva(0x7000_0000), to: pfn(0x500), count: 4)
        try memory.addMemslot(Memslot(id: 1, baseFrame: gfn(0), pageCount: 4, hostAddress: hva(0x7000_0000)))
        let added = Atomic<Bool>(false)
        let addedDuringInvalidation = Atomic<Bool>(false)
        _ = memory.addListener { event in
            guard event.phase == .start else { return }
            let adder = Thread {
                // An alias of the memory being unmapped: must not slip in mid-way.
                try? memory.addMemslot(Memslot(id: 2, baseFrame: gfn(0x100), pageCount: 4, hostAddress: hva(0x7000_0000)))
                added.store(true, ordering: .sequentiallyConsistent)
            }
            adder.start()
            usleep(50_000)
            addedDuringInvalidation.store(added.load(ordering: .sequentiallyConsistent), ordering: .relaxed)
        }
        try memory.hostPages.unmap(HostVirtualRange(start: hva(0x7000_0000), size: kib4))
        #expect(addedDuringInvalidation.load(ordering: .relaxed) == false)
        #expect(LockTestThreads.wait(seconds: 5) { added.load(ordering: .sequentiallyConsistent) })
        #expect(memory.memslot(id: 2) != nil)
    }

    @Test("a removed guest listener receives no further events")
    func removedGuestListenerIsSilent() throws {
        let memory = GuestMemory()
        try memory.addMemslot(Memslot(id: 4, baseFrame: gfn(0x100), pageCount: 8, hostAddress: hva(0x7000_0000)))
        let count = Atomic<Int>(0)
        let token = memory.addListener { _ in count.wrappingAdd(1, ordering: .relaxed) }
        #expect(memory.removeListener(token))
        try memory.removeMemslot(id: 4)
        #expect(count.load(ordering: .relaxed) == 0)
    }
}
