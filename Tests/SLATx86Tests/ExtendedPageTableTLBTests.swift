import SLATCore
import SLATx86Hardware
import Synchronization
import Testing
@testable import SLATx86

/// Records INVEPTs instead of issuing them; fails the types in `refused`.
final class RecordingInvalidator: ExtendedPageTableInvalidator {
    let lock = Mutex<[(ExtendedPageTableInvalidationType, UInt64)]>([])
    let refused: Set<ExtendedPageTableInvalidationType>
    init(refusing refused: Set<ExtendedPageTableInvalidationType> = []) { self.refused = refused }
    func invalidate(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) -> Bool {
        lock.withLock { $0.append((type, pointer)) }
        return !refused.contains(type)
    }
    var issued: [(ExtendedPageTableInvalidationType, UInt64)] { lock.withLock { $0 } }
}

/// Records what the TLB hands to the other CPUs.
final class RecordingBroadcast: ProcessorInvalidationBroadcast {
    let lock = Mutex<[ExtendedPageTableInvalidationType]>([])
    func invalidateOnOtherProcessors(_ type: ExtendedPageTableInvalidationType, pointer: UInt64) {
        lock.withLock { $0.append(type) }
    }
    var sent: [ExtendedPageTableInvalidationType] { lock.withLock { $0 } }
}

@Suite("INVEPT TLB")
struct ExtendedPageTableTLBTests {
    @Test("address, range and whole-context requests are single-context INVEPTs of the loaded EPTP; all-context where asked")
    func requestsMapToINVEPTTypes() {
        let invalidator = RecordingInvalidator()
        let broadcast = RecordingBroadcast()
        let tlb = ExtendedPageTableTLB(hasSingleContext: true, invalidator: invalidator, broadcast: broadcast)
        tlb.load(pointer: ExtendedPageTablePointer(rawValue: 0x5000_005e))
        tlb.invalidate(address: GuestPhysicalAddress(0x20_0000), level: LeafLevel(height: 1, architectural: 2))
        tlb.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 0x4000_0000))
        tlb.invalidateAll()
        tlb.invalidateAllContexts()
        #expect(invalidator.issued.map(\.0) == [.singleContext, .singleContext, .singleContext, .allContexts])
        #expect(invalidator.issued.allSatisfy { $0.1 == 0x5000_005e })
        #expect(broadcast.sent == [.singleContext, .singleContext, .singleContext, .allContexts])
        #expect(tlb.singleContextInvalidations == 3 && tlb.allContextInvalidations == 1 && tlb.failedInvalidations == 0)
        #expect(tlb.supportsRangeInvalidation)
    }

    @Test("without the single-context type or a loaded EPTP every request is all-context; a refused single-context is retried all-context")
    func fallbacks() {
        let noType = RecordingInvalidator()
        let tlb = ExtendedPageTableTLB(pointer: 0x1000_001e, hasSingleContext: false, invalidator: noType,
                                       broadcast: SingleProcessor())
        tlb.invalidate(address: GuestPhysicalAddress(0x1000), level: nil)
        #expect(noType.issued.map(\.0) == [.allContexts])

        let unloaded = RecordingInvalidator()
        ExtendedPageTableTLB(hasSingleContext: true, invalidator: unloaded, broadcast: SingleProcessor()).invalidateAll()
        #expect(unloaded.issued.map(\.0) == [.allContexts])

        let refusing = RecordingInvalidator(refusing: [.singleContext])
        let retried = ExtendedPageTableTLB(pointer: 0x1000_001e, hasSingleContext: true, invalidator: refusing,
                                           broadcast: SingleProcessor())
        retried.invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 0x1000))
        #expect(refusing.issued.map(\.0) == [.singleContext, .allContexts])
        #expect(retried.failedInvalidations == 1 && retried.allContextInvalidations == 1)

        let whole = RecordingInvalidator()
        ExtendedPageTableTLB(pointer: 0x1000_001e, hasSingleContext: true, wholeFlushesAllContexts: true,
                             invalidator: whole, broadcast: SingleProcessor()).invalidateAll()
        #expect(whole.issued.map(\.0) == [.allContexts])
    }

    @Test("the MMU's flushes reach INVEPT: a zap of a mapped page issues one")
    func mmuFlushesIssueINVEPT() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        let guestMemory = GuestMemory()
        try guestMemory.hostPages.map(HostVirtualAddress(0x7f00_0000_0000), to: HostFrameNumber(0x40_0000), count: 16)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(0x100), pageCount: 16,
                                           hostAddress: HostVirtualAddress(0x7f00_0000_0000)))
        let invalidator = RecordingInvalidator()
        let tlb = ExtendedPageTableTLB(hasSingleContext: true, invalidator: invalidator, broadcast: SingleProcessor())
        let mmu = try ExtendedPageTableMMU(format: format, memory: try TableArena(pageCount: 64), tlb: tlb,
                                           guestMemory: guestMemory)
        defer { mmu.teardown() }
        let vcpu = PageTableContext(readerSlot: 0)
        let pointer = try mmu.reloadRoot(vcpu)
        tlb.load(pointer: pointer)
        _ = try mmu.handleFault(GuestPageFault(address: GuestPhysicalAddress(0x10_0000), access: .write), vcpu: vcpu)
        #expect(invalidator.issued.isEmpty)   // a pure addition owes nothing
        #expect(try mmu.zap(GuestFrameRange(start: GuestFrameNumber(0x100), count: 16)) == 1)
        #expect(invalidator.issued.count == 1)
        #expect(invalidator.issued.first?.1 == pointer.rawValue)
    }
}
