import Dispatch
import SLAT
import SLATArm64
import SLATx86
import Synchronization
import Testing

/// One VMM, written once against ``SecondStageMMU``, drives an EPT VM and a
/// stage-2 VM: faults from two vCPU threads, pre-faulting, aging, a dirty-log
/// round, a notifier invalidation and teardown.
@Suite("One VMM fault loop for both architectures")
struct SecondStageMMUTests {
    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase = HostVirtualAddress(0x7f00_0000_0000)
    static let pages = 512   // 2 MiB of 4 KiB host pages

    static func guestMemory() throws -> GuestMemory {
        let memory = GuestMemory()
        try memory.hostPages.map(hostBase, to: HostFrameNumber(0x8_0000), count: UInt64(pages))
        try memory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(guestBase).frame, pageCount: UInt64(pages),
                                      hostAddress: hostBase))
        return memory
    }

    static func page(_ index: Int) -> GuestPhysicalAddress { GuestPhysicalAddress(guestBase + UInt64(index) << 12) }

    /// The VMM's fault loop: fault until the outcome is not a retry; MMIO
    /// (no memslot) is emulated, anything else is a VMM error.
    static func fault<MMU: SecondStageMMU>(_ mmu: MMU, _ fault: SecondStageFault, vcpu: PageTableContext) throws -> SecondStageFaultOutcome {
        while true {
            if try mmu.isRootReloadRequested(vcpu) { _ = try mmu.loadRoot(vcpu) }
            let outcome = try mmu.handleFault(fault, vcpu: vcpu)
            if !outcome.isRetry { return outcome }
        }
    }

    /// The whole VMM, generic over the backend.
    static func runVM<MMU: SecondStageMMU>(_ mmu: MMU) throws {
        // Two vCPU threads write their halves of the memslot.
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let vcpu = PageTableContext(readerSlot: index)
            do {
                _ = try mmu.loadRoot(vcpu)
                for page in stride(from: index, to: pages, by: 2) {
                    _ = try fault(mmu, SecondStageFault(address: Self.page(page), access: .write), vcpu: vcpu)
                }
            } catch {
                failures.wrappingAdd(1, ordering: .relaxed)
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let vcpu = PageTableContext(readerSlot: 0)
        for page in 0..<pages {
            #expect(try mmu.translate(Self.page(page), context: vcpu).translation?.output.rawValue
                == (0x8_0000 + UInt64(page)) << 12)
        }
        // Pre-faulting what is mapped maps nothing more.
        #expect(try mmu.preFault(GuestPhysicalRange(start: page(0), size: 0x10_000), vcpu: vcpu) == 0)

        // A dirty-log round: every page written after enabling is reported.
        try mmu.enableDirtyLogging(memslot: 1)
        let written = [3, 64, 65, 300, 511]
        for page in written {
            _ = try fault(mmu, SecondStageFault(address: Self.page(page), access: .write, isPermissionFault: true), vcpu: vcpu)
        }
        let bitmap = try mmu.getAndClearDirtyLog(memslot: 1)
        let reported = (0..<pages).filter { bitmap[$0 / 64] >> UInt64($0 % 64) & 1 != 0 }
        #expect(reported == written)
        try mmu.disableDirtyLogging(memslot: 1)

        // Aging: the pages were accessed; clearing makes them old.
        let host = HostVirtualRange(start: hostBase, size: UInt64(pages) << 12)
        #expect(try mmu.testYoung(host, context: vcpu))
        #expect(try mmu.clearYoung(host, context: vcpu))
        #expect(try !mmu.testYoung(host, context: vcpu))

        // A host unmap (mmu-notifier) removes the translations before it returns.
        try mmu.guestMemory.hostPages.unmap(HostVirtualRange(start: hostBase.advanced(by: 0x1000), size: 0x1000))
        #expect(try mmu.translate(page(1), context: vcpu).translation == nil)
        #expect(throws: SLATError.hostAddressNotMapped(hostBase.advanced(by: 0x1000))) {
            _ = try mmu.handleFault(SecondStageFault(address: page(1), access: .read), vcpu: vcpu)
        }
        // No memslot: MMIO.
        #expect(throws: SLATError.noMemslot(GuestPhysicalAddress(0x8000_0000).frame)) {
            _ = try mmu.handleFault(SecondStageFault(address: GuestPhysicalAddress(0x8000_0000), access: .read), vcpu: vcpu)
        }

        // Teardown: idempotent, then every call throws tornDown.
        mmu.teardown()
        mmu.teardown()
        #expect(mmu.isTornDown)
        #expect(throws: SLATError.tornDown) {
            _ = try mmu.handleFault(SecondStageFault(address: page(0), access: .read), vcpu: vcpu)
        }
    }

    @Test("The generic VMM drives an EPT VM (SDM levels in outcomes)")
    func ept() throws {
        let memory = try Self.guestMemory()
        // Without A/D flags: dirty logging write-protects (no CPU here sets D bits).
        let mmu = try ExtendedPageTableMMU(format: try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false),
                                           memory: try TableArena(pageCount: 256), tlb: CountingTLB(), guestMemory: memory,
                                           configuration: MMUConfiguration(readerSlots: 4))
        let vcpu = PageTableContext(readerSlot: 0)
        _ = try mmu.loadRoot(vcpu)
        #expect(try mmu.handleFault(SecondStageFault(address: Self.page(0), access: .read), vcpu: vcpu) == .mapped(level: 1))
        try Self.runVM(mmu)
    }

    @Test("The generic VMM drives a stage-2 VM (Arm ARM levels in outcomes)")
    func stageTwo() throws {
        let memory = try Self.guestMemory()
        let mmu = try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 256),
                                  tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1, guestMemory: memory,
                                  lock: PThreadReaderWriterLock(), readerSlots: 4)
        let vcpu = PageTableContext(readerSlot: 0)
        #expect(try mmu.handleFault(SecondStageFault(address: Self.page(0), access: .read), vcpu: vcpu) == .mapped(level: 3))
        try Self.runVM(mmu)
    }

    /// After teardown the aging calls throw, also for a host range that no
    /// memslot backs (nothing to walk).
    static func agingAfterTeardown<MMU: SecondStageMMU>(_ mmu: MMU) {
        let vcpu = PageTableContext(readerSlot: 0)
        mmu.teardown()
        let unbacked = HostVirtualRange(start: HostVirtualAddress(0x7E00_0000_0000), size: 0x1000)
        #expect(throws: SLATError.tornDown) { try mmu.clearYoung(unbacked, context: vcpu) }
        #expect(throws: SLATError.tornDown) { try mmu.testYoung(unbacked, context: vcpu) }
    }

    @Test("After teardown, clear young and test young throw tornDown on an EPT VM, even over unbacked host memory")
    func eptAgingAfterTeardown() throws {
        Self.agingAfterTeardown(try ExtendedPageTableMMU(
            format: try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true),
            memory: try TableArena(pageCount: 64), tlb: CountingTLB(), guestMemory: try Self.guestMemory(),
            configuration: MMUConfiguration(readerSlots: 4)))
    }

    @Test("After teardown, clear young and test young throw tornDown on a stage-2 VM, even over unbacked host memory")
    func stageTwoAgingAfterTeardown() throws {
        Self.agingAfterTeardown(try StageTwoMMU(
            format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 64), tlb: CountingTLB(),
            caches: CountingCacheMaintenance(), vmid: 1, guestMemory: try Self.guestMemory(),
            lock: PThreadReaderWriterLock(), readerSlots: 4))
    }

    /// The VMM's own zap: what it removes is gone, counted; bad ranges and
    /// address spaces are refused; after teardown it throws.
    static func zapRound<MMU: SecondStageMMU>(_ mmu: MMU, inputLimit: UInt64) throws {
        let vcpu = PageTableContext(readerSlot: 0)
        for index in 0..<8 {
            _ = try fault(mmu, SecondStageFault(address: page(index), access: .write), vcpu: vcpu)
        }
        let frames = GuestFrameRange(start: page(2).frame, count: 3)
        #expect(try mmu.zap(frames, addressSpace: nil) == 3)
        #expect(try mmu.translate(page(2), context: vcpu).translation == nil)
        #expect(try mmu.translate(page(4), context: vcpu).translation == nil)
        #expect(try mmu.translate(page(5), context: vcpu).translation != nil)
        #expect(try mmu.zap(frames, addressSpace: 0) == 0)
        #expect(throws: SLATError.addressSpaceOutOfRange(7, count: 1)) { try mmu.zap(frames, addressSpace: 7) }
        let beyond = GuestFrameRange(start: GuestPhysicalAddress(inputLimit).frame, count: 1)
        #expect(throws: SLATError.guestRangeOutOfBounds(beyond.physicalRange, limit: inputLimit)) {
            try mmu.zap(beyond, addressSpace: nil)
        }
        mmu.teardown()
        #expect(throws: SLATError.tornDown) { try mmu.zap(frames, addressSpace: nil) }
    }

    @Test("The generic VMM zaps a range of an EPT VM")
    func eptZap() throws {
        let mmu = try ExtendedPageTableMMU(format: try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: false),
                                           memory: try TableArena(pageCount: 64), tlb: CountingTLB(),
                                           guestMemory: try Self.guestMemory(), configuration: MMUConfiguration(readerSlots: 2))
        _ = try mmu.loadRoot(PageTableContext(readerSlot: 0))
        try Self.zapRound(mmu, inputLimit: 1 << 48)
    }

    @Test("The generic VMM zaps a range of a stage-2 VM")
    func stageTwoZap() throws {
        let mmu = try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 64),
                                  tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1,
                                  guestMemory: try Self.guestMemory(), lock: PThreadReaderWriterLock(), readerSlots: 2)
        try Self.zapRound(mmu, inputLimit: 1 << 40)
    }

    @Test("A stage-2 fault in address space 1 is refused with addressSpaceOutOfRange")
    func stageTwoHasOneAddressSpace() throws {
        let mmu = try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 16),
                                  tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1,
                                  guestMemory: try Self.guestMemory(), lock: PThreadReaderWriterLock(), readerSlots: 1)
        #expect(throws: SLATError.addressSpaceOutOfRange(1, count: 1)) {
            _ = try mmu.handleFault(SecondStageFault(address: Self.page(0), access: .read, addressSpace: 1),
                                    vcpu: PageTableContext(readerSlot: 0))
        }
    }

    @Test("The stage-2 VM owns its notifier binding: a host unmap zaps without the VMM keeping anything alive")
    func stageTwoOwnsItsBinding() throws {
        let memory = try Self.guestMemory()
        let mmu = try StageTwoMMU(format: try StageTwoFormat(inputAddressBits: 40), memory: try TableArena(pageCount: 16),
                                  tlb: CountingTLB(), caches: CountingCacheMaintenance(), vmid: 1, guestMemory: memory,
                                  lock: PThreadReaderWriterLock(), readerSlots: 1)
        let vcpu = PageTableContext(readerSlot: 0)
        _ = try mmu.handleFault(SecondStageFault(address: Self.page(5), access: .read), vcpu: vcpu)
        try memory.hostPages.unmap(HostVirtualRange(start: Self.hostBase.advanced(by: 0x5000), size: 0x1000))
        #expect(try mmu.translate(Self.page(5), context: vcpu).translation == nil)
    }
}
