import Synchronization
import Testing
import SLATCore

/// ``EpochReclaimer``: a page retired while shared walkers may hold it is
/// freed only after every reader that could have seen it has left.
@Suite struct EpochReclaimerTests {
    @Test("A page is not freed while a reader that entered before its retirement is inside")
    func readerInsideHoldsThePage() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 8, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 2)
        let page = try arena.allocatePage()
        reclaimer.enterReadSection(slot: 1)
        reclaimer.retire([page])
        for _ in 0..<8 { reclaimer.reclaim() }
        #expect(arena.isAllocated(page))
        #expect(reclaimer.pendingCount == 1 && reclaimer.freedCount == 0)
        reclaimer.leaveReadSection(slot: 1)
        var reclaims = 0
        while arena.isAllocated(page) && reclaims < 8 {
            reclaimer.reclaim()
            reclaims += 1
        }
        #expect(!arena.isAllocated(page))
        #expect(reclaims <= 2, "the grace period is two epochs")
        #expect(reclaimer.pendingCount == 0 && reclaimer.freedCount == 1 && reclaimer.retiredCount == 1)
    }

    @Test("A reader holds the epoch back by at most one step")
    func readerHoldsTheEpoch() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 2, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 3)
        let start = reclaimer.epoch
        reclaimer.enterReadSection(slot: 2)
        for _ in 0..<5 { reclaimer.reclaim() }
        #expect(reclaimer.epoch == start + 1)
        reclaimer.leaveReadSection(slot: 2)
        for _ in 0..<5 { reclaimer.reclaim() }
        #expect(reclaimer.epoch == start + 6)
    }

    @Test("Retiring frees nothing at once, even without readers")
    func retirementIsNeverImmediate() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 8, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 1)
        let pages = try (0..<3).map { _ throws(SLATError) in try arena.allocatePage() }
        reclaimer.retire(pages)
        #expect(pages.allSatisfy { arena.isAllocated($0) })
        #expect(reclaimer.pendingCount == 3)
        reclaimer.retire([])
        #expect(reclaimer.retiredCount == 3)
    }

    @Test("synchronize frees every retired page once no reader is inside")
    func synchronizeFreesEverything() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 16, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 4)
        for slot in 0..<4 {
            reclaimer.enterReadSection(slot: slot)
            reclaimer.retire([try arena.allocatePage(), try arena.allocatePage()])
            reclaimer.leaveReadSection(slot: slot)
        }
        reclaimer.synchronize()
        #expect(reclaimer.pendingCount == 0 && reclaimer.freedCount == 8)
        #expect(arena.allocatedPageCount == 0)
    }

    @Test("Pages still retired when the reclaimer goes away are freed")
    func deinitFreesRetiredPages() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 4, prefault: false)
        do {
            let reclaimer = try EpochReclaimer(memory: arena, slotCount: 1)
            reclaimer.enterReadSection(slot: 0)
            reclaimer.retire([try arena.allocatePage()])
            #expect(arena.allocatedPageCount == 1)
        }
        #expect(arena.allocatedPageCount == 0)
    }

    @Test("Readers never see a page freed under them while a writer keeps replacing it (stress)")
    func replacingPublishedPagesStress() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 256, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 4)
        let first = try arena.allocatePage()
        arena.entries(at: first)[0].store(1, ordering: .relaxed)
        let published = AtomicWord(first.rawValue)
        let done = AtomicWord(0)
        let torn = UncheckedBox([0, 0, 0, 0])
        runConcurrently(4) { thread in
            if thread == 0 {
                // The writer: publish a new marked page, retire the old one.
                for generation in 2...1500 as ClosedRange<UInt64> {
                    guard let page = try? arena.allocatePage() else { reclaimer.reclaim(); continue }
                    arena.entries(at: page)[0].store(generation, ordering: .relaxed)
                    let old = published.word.exchange(page.rawValue, ordering: .acquiringAndReleasing)
                    reclaimer.retire([HostPhysicalAddress(old)])
                }
                done.word.store(1, ordering: .releasing)
                return
            }
            // Readers: a page read inside a read section still carries its mark
            // (freed pages are zeroed).
            while done.word.load(ordering: .acquiring) == 0 {
                reclaimer.enterReadSection(slot: thread)
                let page = HostPhysicalAddress(published.word.load(ordering: .acquiring))
                for _ in 0..<16 where arena.entries(at: page)[0].load(ordering: .relaxed) == 0 { torn.value[thread] += 1 }
                reclaimer.leaveReadSection(slot: thread)
            }
        }
        #expect(torn.value == [0, 0, 0, 0])
        reclaimer.synchronize()
        #expect(arena.allocatedPageCount == 1)
    }
}

/// One atomic word shared by threads.
final class AtomicWord: Sendable {
    let word: Atomic<UInt64>
    init(_ value: UInt64) { word = Atomic(value) }
}
