import Testing
@testable import SLATCore
import Synchronization

/// ``TableArena``: zeroed, position-exact table pages with per-page live
/// counts; contiguous aligned runs for concatenated roots.
@Suite struct TableArenaTests {
    static let base = HostPhysicalAddress(0x4000_0000)

    @Test("Fresh pages come from the start of the region in address order, zeroed")
    func freshPagesInOrderAndZeroed() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 8, physicalBase: Self.base, prefault: false)
        let pages = try (0..<3).map { _ throws(SLATError) in try arena.allocatePage() }
        #expect(pages == [0, 1, 2].map { Self.base.advanced(by: UInt64($0) * 4096) })
        for page in pages {
            let entries = arena.entries(at: page)
            #expect((0..<512).allSatisfy { entries[$0].load(ordering: .relaxed) == 0 })
            #expect(arena.liveEntryCount(of: page) == 0)
            #expect(arena.isAllocated(page))
        }
        #expect(arena.usedByteCount == 3 * 4096)
    }

    @Test("A freed page is zeroed, its live count reset, and handed out again")
    func freeRezeroes() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 4, prefault: false)
        let page = try arena.allocatePage()
        let entries = arena.entries(at: page)
        for index in 0..<512 { entries[index].store(0xDEAD_0000 | UInt64(index), ordering: .relaxed) }
        arena.setLiveEntryCount(of: page, to: 512)
        arena.freePage(page)
        #expect(!arena.isAllocated(page))
        #expect(arena.liveEntryCount(of: page) == 0)
        let again = try arena.allocatePage()
        #expect(again == page, "a freed page is reused before fresh ones")
        #expect((0..<512).allSatisfy { entries[$0].load(ordering: .relaxed) == 0 })
        #expect(arena.liveEntryCount(of: again) == 0)
    }

    @Test("Contiguous runs are aligned to their size; the pages skipped for alignment stay usable",
          arguments: [4096, 16384, 65536])
    func contiguousRunsAreAligned(_ pageSize: Int) throws {
        // A physical base aligned to one page only, so the run must skip.
        let arena = try TableArena(pageSize: pageSize, pageCount: 40, physicalBase: HostPhysicalAddress(UInt64(pageSize)),
                                   prefault: false)
        let first = try arena.allocatePage()
        let run = try arena.allocateContiguousPages(16)
        #expect(run.rawValue % UInt64(16 * pageSize) == 0)
        #expect(run.rawValue == UInt64(16 * pageSize))
        for index in 0..<16 {
            let page = run.advanced(by: UInt64(index * pageSize))
            #expect(arena.isAllocated(page))
            let entries = arena.entries(at: page)
            #expect(entries[0].load(ordering: .relaxed) == 0 && entries[pageSize / 8 - 1].load(ordering: .relaxed) == 0)
        }
        #expect(arena.allocatedPageCount == 17)
        // The 14 pages between the first page and the run are free again.
        var reused: [HostPhysicalAddress] = []
        for _ in 0..<14 { reused.append(try arena.allocatePage()) }
        #expect(Set(reused).count == 14)
        #expect(reused.allSatisfy { $0 > first && $0 < run })
        #expect(arena.allocatedPageCount == 31)
    }

    @Test("Running out of pages throws outOfTableMemory for single pages and for runs")
    func exhaustion() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 6, prefault: false)
        for _ in 0..<6 { _ = try arena.allocatePage() }
        #expect(arena.freePageCount == 0)
        #expect(throws: SLATError.outOfTableMemory(needed: 1, available: 0)) { _ = try arena.allocatePage() }
        let roomy = try TableArena(pageSize: 4096, pageCount: 6, prefault: false)
        _ = try roomy.allocatePage()
        #expect(throws: SLATError.outOfTableMemory(needed: 8, available: 5)) { _ = try roomy.allocateContiguousPages(8) }
        #expect(roomy.allocatedPageCount == 1)
    }

    @Test("Physical addresses and entry pointers translate both ways")
    func physicalPointerRoundTrip() throws {
        let arena = try TableArena(pageSize: 16384, pageCount: 8, physicalBase: HostPhysicalAddress(0x8_0000_0000), prefault: false)
        for _ in 0..<8 {
            let page = try arena.allocatePage()
            let entries = arena.entries(at: page)
            #expect(UnsafeMutableRawPointer(entries) - arena.region == Int(page.rawValue - 0x8_0000_0000))
            for index in [0, 1, 1000, 2047] {
                #expect(arena.page(containing: entries + index) == page)
            }
            #expect(arena.contains(page))
        }
        #expect(!arena.contains(HostPhysicalAddress(0x8_0000_0000 + 8 * 16384)))
        #expect(!arena.contains(HostPhysicalAddress(0x8_0000_0000 + 4096)))
        #expect(!arena.contains(HostPhysicalAddress(0x7_FFFF_C000)))
    }

    @Test("Live-entry counts are per page: set, adjusted through an entry, read back")
    func liveEntryCounts() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 4, prefault: false)
        let a = try arena.allocatePage(), b = try arena.allocatePage()
        arena.setLiveEntryCount(of: a, to: 7)
        #expect(arena.adjustLiveEntryCount(containing: arena.entries(at: a) + 511, by: 3) == 10)
        #expect(arena.adjustLiveEntryCount(containing: arena.entries(at: b), by: -2) == -2)
        #expect(arena.liveEntryCount(of: a) == 10)
        #expect(arena.liveEntryCount(of: b) == -2)
    }

    @Test("Neighbouring pages' live counts lie in different cache lines, so vCPUs counting into them do not contend")
    func liveCountsOnePerCacheLine() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 4, prefault: false)
        let first = try arena.allocatePage()
        let second = try arena.allocatePage()
        let line = 64
        // The count each page's entries adjust, by address.
        let counts = UnsafeRawPointer(arena.liveCounts)
        let offsets = [first, second].map { page in
            (Int(page.rawValue - arena.physicalBase.rawValue) >> arena.pageShift) * TableArena.liveCountStride
                * MemoryLayout<Atomic<Int32>>.stride
        }
        #expect(Int(bitPattern: counts) % line == 0)
        #expect(offsets[0] / line != offsets[1] / line)
        // And the stride is what the counting uses.
        _ = arena.adjustLiveEntryCount(containing: arena.entries(at: second), by: 3)
        #expect(counts.load(fromByteOffset: offsets[1], as: Int32.self) == 3)
        #expect(arena.liveEntryCount(of: second) == 3 && arena.liveEntryCount(of: first) == 0)
    }

    @Test("Allocation and free totals are monotonic; allocated and free counts add up")
    func totals() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 10, prefault: false)
        let pages = try (0..<4).map { _ throws(SLATError) in try arena.allocatePage() }
        arena.freePage(pages[1])
        arena.freePage(pages[3])
        _ = try arena.allocatePage()
        #expect(arena.totalAllocations == 5)
        #expect(arena.totalFrees == 2)
        #expect(arena.allocatedPageCount == 3)
        #expect(arena.freePageCount == 7)
    }

    @Test("Bad geometry is rejected")
    func invalidGeometry() throws {
        #expect(throws: SLATError.invalidTableRegion) { _ = try TableArena(pageSize: 8192, pageCount: 4, prefault: false) }
        #expect(throws: SLATError.invalidTableRegion) { _ = try TableArena(pageSize: 4096, pageCount: 0, prefault: false) }
        #expect(throws: SLATError.invalidTableRegion) {
            _ = try TableArena(pageSize: 4096, pageCount: 4, physicalBase: HostPhysicalAddress(0x800), prefault: false)
        }
        #expect(throws: SLATError.invalidTableRegion) {
            _ = try TableArena(pageSize: 4096, pageCount: 4, physicalBase: HostPhysicalAddress(0 &- 0x2000), prefault: false)
        }
    }

    @Test("An arena over caller memory clears it unless told it is zero, and rejects a misaligned region")
    func callerProvidedRegion() throws {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: 4 * 4096, alignment: 4096)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0xAB, count: 4 * 4096)
        #expect(throws: SLATError.invalidTableRegion) {
            _ = try TableArena(region: raw + 8, pageSize: 4096, pageCount: 2, physicalBase: HostPhysicalAddress(0x1000), isZeroed: false)
        }
        let arena = try TableArena(region: raw, pageSize: 4096, pageCount: 4, physicalBase: HostPhysicalAddress(0x1000), isZeroed: false)
        let page = try arena.allocatePage()
        #expect(page == HostPhysicalAddress(0x1000))
        #expect(arena.entries(at: page)[17].load(ordering: .relaxed) == 0)
        #expect(raw.load(fromByteOffset: 3 * 4096 + 8, as: UInt64.self) == 0)
    }

    @Test("Threads allocating and freeing at once never get the same page twice (stress)")
    func concurrentAllocationStress() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 64, prefault: false)
        let problems = UncheckedBox([Int](repeating: 0, count: 4))
        runConcurrently(4) { thread in
            var held: [HostPhysicalAddress] = []
            var rng = SplitMix64(seed: 0xA11C + UInt64(thread))
            for _ in 0..<2000 {
                if held.count < 8 && (held.isEmpty || rng.chance(55)), let page = try? arena.allocatePage() {
                    let word = arena.entries(at: page)
                    // A page handed to two threads at once would show the other's mark.
                    if word[0].load(ordering: .relaxed) != 0 { problems.value[thread] += 1 }
                    word[0].store(UInt64(thread + 1), ordering: .relaxed)
                    held.append(page)
                } else if !held.isEmpty {
                    let page = held.removeLast()
                    if arena.entries(at: page)[0].load(ordering: .relaxed) != UInt64(thread + 1) { problems.value[thread] += 1 }
                    arena.freePage(page)
                }
            }
            for page in held { arena.freePage(page) }
        }
        #expect(problems.value == [0, 0, 0, 0])
        #expect(arena.allocatedPageCount == 0)
        #expect(arena.totalAllocations == arena.totalFrees)
    }
}
