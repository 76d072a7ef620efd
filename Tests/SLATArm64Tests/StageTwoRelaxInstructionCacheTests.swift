import SLATArm64
import SLATCore
import Synchronization
import Testing

/// Cache hooks that record the instruction-cache invalidations and run a
/// hook once, inside the first one: "the page is remapped while the
/// execute right is on its way".
final class RemapDuringInvalidationCaches: CacheMaintenance {
    let forcesWriteBack = true
    let instructionCacheIsCoherent = false
    let invalidated = Mutex<[HostPhysicalAddress]>([])
    let hook = Mutex<(@Sendable () -> Void)?>(nil)

    func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64) {}
    func invalidateInstructionCache(_ output: HostPhysicalAddress, size: UInt64) {
        invalidated.withLock { $0.append(output) }
        let pending = hook.withLock { hook in
            defer { hook = nil }
            return hook
        }
        pending?()
    }
}

@Suite("Stage-2 relaxing to executable: instruction cache")
struct StageTwoRelaxInstructionCacheTests {
    @Test("Relaxing to executable invalidates the instruction cache for the output of the leaf it changes, even if the page was remapped meanwhile")
    func relaxInvalidatesOutputOfChangedLeaf() throws {
        let caches = RemapDuringInvalidationCaches()
        let format = try StageTwoFormat()
        let mmu = try StageTwoPageTable(format: format, memory: try TableArena(pageCount: 64, prefault: false),
                                        tlb: CountingTLB(), caches: caches, vmid: 1, readerSlots: 2)
        let context = PageTableContext(readerSlot: 0)
        let page = GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x1000)
        let first = HostPhysicalAddress(0x8000_0000)
        let second = HostPhysicalAddress(0x9000_0000)
        try mmu.map(page, to: first, attributes: LeafAttributes(permissions: .readWrite), context: context)
        // Inside the first invalidation another thread remaps the page to a
        // new output (no execute right).
        caches.hook.withLock {
            $0 = {
                _ = try? mmu.map(page, to: second, attributes: LeafAttributes(permissions: .readWrite),
                                 mode: .shared, context: PageTableContext(readerSlot: 1))
            }
        }
        try mmu.relaxPermissions(page.start, grant: .execute, mode: .shared, context: context)
        #expect(mmu.table.translate(page.start).translation?.leafOutput == second)
        #expect(mmu.table.translate(page.start).translation?.attributes.permissions == .all)
        #expect(caches.invalidated.withLock { $0.last } == second)
    }
}
