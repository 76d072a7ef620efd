import Synchronization
import SLAT
import SLATArm64
import SLATx86
import Testing

/// Dirty logging with manual protection (KVM_CLEAR_DIRTY_LOG), written once
/// against ``SecondStageMMU`` and run on an EPT VM (write protection) and a
/// stage-2 VM.
@Suite("Manual dirty-log protection on both architectures")
struct ManualDirtyLogProtectionTests {
    let guestBase: UInt64 = 0x1_0000_0000
    let hostBase = HostVirtualAddress(0x7f00_0000_0000)
    let pages = 512   // 2 MiB

    /// One memslot of 2 MiB, backed by one 2 MiB host page when `huge`
    /// (faults then map a block) or by 4 KiB pages.
    func guestMemory(huge: Bool = false) throws -> GuestMemory {
        let memory = GuestMemory()
        if huge {
            try memory.hostPages.map(hostBase, to: HostFrameNumber(0x8_0000), size: .size2M)
        } else {
            try memory.hostPages.map(hostBase, to: HostFrameNumber(0x8_0000), count: UInt64(pages))
        }
        try memory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(guestBase).frame, pageCount: UInt64(pages),
                                      hostAddress: hostBase))
        return memory
    }

    func eptVM(huge: Bool = false) throws -> ExtendedPageTableMMU<TableArena, CountingTLB> {
        try ExtendedPageTableMMU(format: try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false),
                                 memory: try TableArena(pageCount: 64), tlb: CountingTLB(),
                                 guestMemory: try guestMemory(huge: huge), configuration: MMUConfiguration(readerSlots: 2))
    }

    func stageTwoVM(huge: Bool = false) throws -> StageTwoMMU<TableArena, CountingTLB, CountingCacheMaintenance, PThreadReaderWriterLock> {
        try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 64),
                        tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1,
                        guestMemory: try guestMemory(huge: huge), lock: PThreadReaderWriterLock(), readerSlots: 2)
    }

    let vcpu = PageTableContext(readerSlot: 0)

    func page(_ index: Int) -> GuestPhysicalAddress { GuestPhysicalAddress(guestBase + UInt64(index) << 12) }

    /// Faults until the outcome is not a retry.
    func write<MMU: SecondStageMMU>(_ mmu: MMU, page index: Int, permissionFault: Bool = false) throws {
        let fault = SecondStageFault(address: page(index), access: .write, isPermissionFault: permissionFault)
        while try mmu.handleFault(fault, vcpu: vcpu).isRetry { continue }
    }

    func isWritable<MMU: SecondStageMMU>(_ mmu: MMU, page index: Int) throws -> Bool {
        try mmu.translate(page(index), context: vcpu).translation?.attributes.permissions.contains(.write) == true
    }

    func reported(_ bitmap: [UInt64]) -> [Int] {
        (0..<pages).filter { bitmap[$0 / 64] >> UInt64($0 % 64) & 1 != 0 }
    }

    /// A one-word-per-64-pages mask of `indices` for a clear from page 0.
    func mask(_ indices: [Int]) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: pages / 64)
        for index in indices { words[index / 64] |= 1 << UInt64(index % 64) }
        return words
    }

    // MARK: Behaviours, generic

    /// Reading the log clears nothing; the pages stay writable until cleared.
    func readingClearsNothing<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        for index in 0..<pages { try write(mmu, page: index) }
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: false))
        try write(mmu, page: 7, permissionFault: true)
        try write(mmu, page: 300, permissionFault: true)
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == [7, 300])
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == [7, 300])
        #expect(try isWritable(mmu, page: 7))
        #expect(try isWritable(mmu, page: 300))
        #expect(try !isWritable(mmu, page: 8))
    }

    /// A clear drops the marks it names and write-protects those pages; a
    /// later write faults and is logged again; an unnamed mark stays.
    func clearReprotects<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        for index in 0..<pages { try write(mmu, page: index) }
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: false))
        for index in [7, 300, 511] { try write(mmu, page: index, permissionFault: true) }
        try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: mask([7, 511]))
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == [300])
        #expect(try !isWritable(mmu, page: 7))
        #expect(try !isWritable(mmu, page: 511))
        #expect(try isWritable(mmu, page: 300))
        try write(mmu, page: 7, permissionFault: true)
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == [7, 300])
    }

    /// A clear that starts past page 0 names pages relative to its start.
    func clearFromAnOffset<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        for index in 0..<pages { try write(mmu, page: index) }
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: false))
        for index in [70, 200] { try write(mmu, page: index, permissionFault: true) }
        try mmu.clearDirtyLog(memslot: 1, firstPage: 64, bitmap: [1 << 6, 0])
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == [200])
        #expect(try !isWritable(mmu, page: 70))
        #expect(try isWritable(mmu, page: 200))
    }

    /// Initially set: every page reports dirty at once, nothing mapped loses
    /// write access until a clear covers it.
    func initiallySet<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        for index in 0..<pages { try write(mmu, page: index) }
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: true))
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == Array(0..<pages))
        #expect(try isWritable(mmu, page: 0))
        #expect(try isWritable(mmu, page: 511))
        try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: mask(Array(0..<64)))
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == Array(64..<pages))
        #expect(try !isWritable(mmu, page: 0))
        #expect(try !isWritable(mmu, page: 63))
        #expect(try isWritable(mmu, page: 64))
    }

    /// Mixing the two protocols is refused with errors that name the mode.
    func refusesTheOtherProtocol<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: false))
        #expect(throws: SLATError.dirtyLogClearedManually(slot: 1)) { _ = try mmu.getAndClearDirtyLog(memslot: 1) }
        try mmu.disableDirtyLogging(memslot: 1)
        try mmu.enableDirtyLogging(memslot: 1)
        #expect(throws: SLATError.dirtyLogNotClearedManually(slot: 1)) { _ = try mmu.getDirtyLog(memslot: 1) }
        #expect(throws: SLATError.dirtyLogNotClearedManually(slot: 1)) {
            try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: [1])
        }
        #expect(throws: SLATError.dirtyLoggingNotEnabled(slot: 2)) { _ = try mmu.getDirtyLog(memslot: 2) }
    }

    /// A clear off a 64-page boundary, or naming a page past the slot, is
    /// refused and leaves the log as it was.
    func refusesClearsOutOfRange<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: true))
        #expect(throws: SLATError.dirtyLogClearOutOfRange(slot: 1, firstPage: 1, pageCount: 64, slotPages: 512)) {
            try mmu.clearDirtyLog(memslot: 1, firstPage: 1, bitmap: [1])
        }
        #expect(throws: SLATError.dirtyLogClearOutOfRange(slot: 1, firstPage: 448, pageCount: 128, slotPages: 512)) {
            try mmu.clearDirtyLog(memslot: 1, firstPage: 448, bitmap: [1, 1])
        }
        #expect(throws: SLATError.dirtyLogClearOutOfRange(slot: 1, firstPage: 576, pageCount: 0, slotPages: 512)) {
            try mmu.clearDirtyLog(memslot: 1, firstPage: 576, bitmap: [])
        }
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == Array(0..<pages))
        // A zero word past the end names nothing and is accepted.
        try mmu.clearDirtyLog(memslot: 1, firstPage: 448, bitmap: [1, 0])
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == Array(0..<448) + Array(449..<pages))
    }

    // MARK: The tests

    @Test("EPT: reading a manually protected log clears and protects nothing")
    func eptReadingClearsNothing() throws { try readingClearsNothing(try eptVM()) }

    @Test("Stage 2: reading a manually protected log clears and protects nothing")
    func stageTwoReadingClearsNothing() throws { try readingClearsNothing(try stageTwoVM()) }

    @Test("EPT: a clear drops the marks it names and write-protects their pages")
    func eptClearReprotects() throws { try clearReprotects(try eptVM()) }

    @Test("Stage 2: a clear drops the marks it names and write-protects their pages")
    func stageTwoClearReprotects() throws { try clearReprotects(try stageTwoVM()) }

    @Test("EPT: a clear from page 64 names pages from its start")
    func eptClearFromAnOffset() throws { try clearFromAnOffset(try eptVM()) }

    @Test("Stage 2: a clear from page 64 names pages from its start")
    func stageTwoClearFromAnOffset() throws { try clearFromAnOffset(try stageTwoVM()) }

    @Test("EPT: initially set reports every page and protects none until cleared")
    func eptInitiallySet() throws { try initiallySet(try eptVM()) }

    @Test("Stage 2: initially set reports every page and protects none until cleared")
    func stageTwoInitiallySet() throws { try initiallySet(try stageTwoVM()) }

    @Test("EPT: get-and-clear on a manual log, and get or clear on a harvested one, are refused")
    func eptRefusesTheOtherProtocol() throws { try refusesTheOtherProtocol(try eptVM()) }

    @Test("Stage 2: get-and-clear on a manual log, and get or clear on a harvested one, are refused")
    func stageTwoRefusesTheOtherProtocol() throws { try refusesTheOtherProtocol(try stageTwoVM()) }

    @Test("EPT: a clear off a 64-page boundary or past the slot is refused, the log unchanged")
    func eptRefusesClearsOutOfRange() throws { try refusesClearsOutOfRange(try eptVM()) }

    @Test("Stage 2: a clear off a 64-page boundary or past the slot is refused, the log unchanged")
    func stageTwoRefusesClearsOutOfRange() throws { try refusesClearsOutOfRange(try stageTwoVM()) }

    @Test("Stage 2, initially set: clearing one page of a writable block splits it; the rest stays writable")
    func stageTwoClearSplitsABlock() throws {
        let mmu = try stageTwoVM(huge: true)
        try write(mmu, page: 0)
        #expect(try mmu.translate(page(0), context: vcpu).translation?.size == 0x20_0000)
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: true))
        #expect(try mmu.translate(page(0), context: vcpu).translation?.size == 0x20_0000)
        try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: mask([5]))
        #expect(try !isWritable(mmu, page: 5))
        #expect(try isWritable(mmu, page: 4))
        #expect(try isWritable(mmu, page: 511))
        try write(mmu, page: 5, permissionFault: true)
        #expect(reported(try mmu.getDirtyLog(memslot: 1)) == Array(0..<pages))
    }

    @Test("EPT, initially set: a huge leaf is write-protected at enable, its small pages after a write split it")
    func eptInitiallySetProtectsHugeLeaves() throws {
        let mmu = try eptVM(huge: true)
        try write(mmu, page: 0)
        #expect(try mmu.translate(page(0), context: vcpu).translation?.size == 0x20_0000)
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: true))
        #expect(try !isWritable(mmu, page: 0))
        try write(mmu, page: 9, permissionFault: true)
        #expect(try mmu.translate(page(9), context: vcpu).translation?.size == 0x1000)
        #expect(try isWritable(mmu, page: 9))
        try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: mask([9]))
        #expect(try !isWritable(mmu, page: 9))
    }
}

/// Two vCPU threads write while the VMM reads and clears the log round after
/// round, on real threads. The oracle is the manual-protection contract:
/// every write is seen by a copy made after a clear of its page that
/// returned after the write began, or is reported by the final read.
@Suite("Manual dirty-log protection beside writing vCPUs")
struct ManualDirtyLogInteractionTests {
    static let pages = 256

    static func address(_ page: Int) -> GuestPhysicalAddress { GuestPhysicalAddress(0x1_0000_0000 + UInt64(page) << 12) }

    static func run<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        let base = ManualDirtyLogProtectionTests()
        for index in 0..<pages { try base.write(mmu, page: index) }
        try mmu.enableDirtyLogging(memslot: 1, protection: .manual(initiallySet: false))
        let clock = Atomic<UInt64>(1)
        let writersDone = Atomic<Int>(0)
        let rounds = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let writes = Mutex<[(page: Int, start: UInt64)]>([])
        let clears = Mutex<[Int: [UInt64]]>([:])
        // Real threads, one each: the writers wait for the VMM's rounds.
        runConcurrently(3, limit: 120) { thread in
            do {
                if thread < 2 {
                    let vcpu = PageTableContext(readerSlot: thread)
                    var random = SplitMix64(seed: UInt64(thread) &+ 7)
                    var mine: [(page: Int, start: UInt64)] = []
                    // Write until both the quota is met and the VMM has
                    // cleared 20 rounds meanwhile, so the two interleave.
                    while mine.count < 1500 || rounds.load(ordering: .relaxed) < 20 {
                        let page = Int(random.next() % UInt64(pages))
                        let start = clock.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
                        while true {
                            let leaf = try mmu.translate(Self.address(page), context: vcpu).translation
                            if leaf?.attributes.permissions.contains(.write) == true { break }
                            _ = try mmu.handleFault(SecondStageFault(address: Self.address(page), access: .write,
                                                                     isPermissionFault: leaf != nil), vcpu: vcpu)
                        }
                        mine.append((page, start))
                    }
                    writes.withLock { $0 += mine }
                    writersDone.wrappingAdd(1, ordering: .sequentiallyConsistent)
                } else {
                    while writersDone.load(ordering: .sequentiallyConsistent) < 2 {
                        let bitmap = try mmu.getDirtyLog(memslot: 1)
                        // Clear in two halves, as a VMM copying range by range.
                        try mmu.clearDirtyLog(memslot: 1, firstPage: 0, bitmap: Array(bitmap[0..<2]))
                        let first = clock.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
                        try mmu.clearDirtyLog(memslot: 1, firstPage: 128, bitmap: Array(bitmap[2..<4]))
                        let second = clock.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
                        rounds.wrappingAdd(1, ordering: .relaxed)
                        clears.withLock { clears in
                            for page in 0..<pages where bitmap[page / 64] >> UInt64(page % 64) & 1 != 0 {
                                clears[page, default: []].append(page < 128 ? first : second)
                            }
                        }
                    }
                }
            } catch {
                failures.wrappingAdd(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let final = try mmu.getDirtyLog(memslot: 1)
        let clearTimes = clears.withLock { $0 }
        var lost: [Int] = []
        for write in writes.withLock({ $0 }) {
            let clearedAfter = clearTimes[write.page]?.contains { $0 > write.start } ?? false
            let reported = final[write.page / 64] >> UInt64(write.page % 64) & 1 != 0
            if !clearedAfter && !reported { lost.append(write.page) }
        }
        #expect(lost.isEmpty, "\(lost.count) writes lost from the log, pages \(Set(lost).sorted().prefix(10))…")
        #expect(rounds.load(ordering: .relaxed) >= 20)
    }

    @Test("EPT: no write is lost while the VMM reads and clears beside two writing vCPUs")
    func ept() throws {
        try Self.run(try ManualDirtyLogProtectionTests().eptVM())
    }

    @Test("Stage 2: no write is lost while the VMM reads and clears beside two writing vCPUs")
    func stageTwo() throws {
        try Self.run(try ManualDirtyLogProtectionTests().stageTwoVM())
    }
}
