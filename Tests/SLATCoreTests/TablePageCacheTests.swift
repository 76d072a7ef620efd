import Testing
import SLATCore

/// ``TablePageCache``: the per-vCPU reserve topped up outside the lock.
@Suite struct TablePageCacheTests {
    @Test("Topping up allocates only what is missing, and the pages are zero")
    func topUpAllocatesWhatIsMissing() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 16, prefault: false)
        var cache = TablePageCache()
        try cache.topUp(from: arena, toAtLeast: 3)
        var counts = [(cache.count, arena.allocatedPageCount)]
        try cache.topUp(from: arena, toAtLeast: 2)
        counts.append((cache.count, arena.allocatedPageCount))
        try cache.topUp(from: arena, toAtLeast: 5)
        counts.append((cache.count, arena.allocatedPageCount))
        #expect(counts.map(\.0) == [3, 3, 5])
        #expect(counts.map(\.1) == [3, 3, 5])
        while let page = cache.take() {
            let entries = arena.entries(at: page)
            #expect((0..<512).allSatisfy { entries[$0].load(ordering: .relaxed) == 0 })
            arena.freePage(page)
        }
    }

    @Test("A top-up memory cannot satisfy fails whole: the cache and the memory are as before")
    func topUpIsAllOrNothing() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 5, prefault: false)
        var cache = TablePageCache()
        try cache.topUp(from: arena, toAtLeast: 2)
        let frees = arena.totalFrees
        var thrown: SLATError?
        do throws(SLATError) { try cache.topUp(from: arena, toAtLeast: 10) } catch { thrown = error }
        #expect(thrown == .outOfTableMemory(needed: 8, available: 3))
        let count = cache.count
        #expect(count == 2)
        #expect(arena.allocatedPageCount == 2)
        #expect(arena.totalFrees == frees + 3, "the three pages it got were given back")
        cache.release(to: arena)
    }

    @Test("Pages are taken last-in first-out; an empty cache yields nil; a page given back is taken next")
    func takeAndGiveBack() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 8, prefault: false)
        var cache = TablePageCache()
        let none = cache.take()
        #expect(none == nil)
        try cache.topUp(from: arena, toAtLeast: 2)
        let takenFirst = cache.take(), takenSecond = cache.take(), afterBoth = cache.take()
        let first = try #require(takenFirst)
        let second = try #require(takenSecond)
        #expect(first != second)
        #expect(afterBoth == nil)
        cache.giveBack(second)
        let count = cache.count
        #expect(count == 1)
        let again = cache.take()
        #expect(again == second)
        cache.giveBack(first)
        cache.giveBack(second)
        cache.release(to: arena)
    }

    @Test("Releasing frees every cached page to the memory")
    func releaseFreesEverything() throws {
        let arena = try TableArena(pageSize: 16384, pageCount: 8, prefault: false)
        var cache = TablePageCache()
        try cache.topUp(from: arena, toAtLeast: 6)
        cache.release(to: arena)
        let count = cache.count
        #expect(count == 0)
        #expect(arena.allocatedPageCount == 0)
        #expect(arena.totalFrees == 6)
    }
}
