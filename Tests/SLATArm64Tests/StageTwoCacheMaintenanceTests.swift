import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 cache maintenance hooks")
struct StageTwoCacheMaintenanceTests {
    typealias Fixture = StageTwoMMUFixture

    @Test("Mapping cacheable memory cleans the data cache to PoC for its output once")
    func cacheableMapCleansDataCache() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .readWrite), context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount == 1)
        #expect(fixture.caches.dataCacheCleanBytes == Fixture.block.size)
        #expect(fixture.caches.instructionCacheInvalidationCount == 0)
    }

    @Test("Mapping over the same mapping writes no leaf and asks for no cache maintenance")
    func identicalMapAsksForNoMaintenance() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all), context: fixture.context)
        let (cleans, invalidations) = (fixture.caches.dataCacheCleanCount, fixture.caches.instructionCacheInvalidationCount)
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all), context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount == cleans)
        #expect(fixture.caches.instructionCacheInvalidationCount == invalidations)
    }

    @Test("Splitting a block into pages of its own output and attributes asks for no cache maintenance")
    func splitIntoOwnPagesAsksForNoMaintenance() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all), context: fixture.context)
        let (cleans, invalidations) = (fixture.caches.dataCacheCleanCount, fixture.caches.instructionCacheInvalidationCount)
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all),
                            maximumLevel: 0, context: fixture.context)
        #expect(fixture.leaves.count == 512)
        #expect(fixture.caches.dataCacheCleanCount == cleans)
        #expect(fixture.caches.instructionCacheInvalidationCount == invalidations)
    }

    @Test("Filling a table that holds some of the pages cleans the new pages only, as one run")
    func fillCleansOnlyTheNewPages() throws {
        let fixture = try Fixture()
        let firstPages = GuestPhysicalRange(start: Fixture.block.start, size: 0x4000)
        try fixture.mmu.map(firstPages, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let (cleans, bytes) = (fixture.caches.dataCacheCleanCount, fixture.caches.dataCacheCleanBytes)
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount - cleans == 1)
        #expect(fixture.caches.dataCacheCleanBytes - bytes == Fixture.block.size - 0x4000)
    }

    @Test("A page of a new output inside a block cleans that page only")
    func newPageInsideBlockCleansThatPage() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        let bytes = fixture.caches.dataCacheCleanBytes
        let page = GuestPhysicalRange(start: Fixture.block.start.advanced(by: 0x5000), size: 0x1000)
        try fixture.mmu.map(page, to: HostPhysicalAddress(8 << 30), attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        #expect(fixture.caches.dataCacheCleanBytes - bytes == 0x1000)
    }

    @Test("Mapping executable memory invalidates the instruction cache")
    func executableMapInvalidatesInstructionCache() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all), context: fixture.context)
        #expect(fixture.caches.instructionCacheInvalidationCount == 1)
        #expect(fixture.caches.instructionCacheInvalidationBytes == Fixture.block.size)
    }

    @Test("Device memory needs no data-cache clean")
    func deviceMemoryIsNotCleaned() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput,
                            attributes: LeafAttributes(permissions: .readWrite, memoryType: .device), context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount == 0)
    }

    @Test("With FWB and DIC reported, no maintenance is asked for")
    func forcedWriteBackAndCoherentInstructionCacheSkipMaintenance() throws {
        let fixture = try Fixture(caches: CountingCacheMaintenance(forcesWriteBack: true, instructionCacheIsCoherent: true))
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: LeafAttributes(permissions: .all), context: fixture.context)
        try fixture.mmu.unmap(Fixture.block, context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount == 0)
        #expect(fixture.caches.instructionCacheInvalidationCount == 0)
    }

    @Test("Unmapping cleans the data cache for each cacheable leaf it removes")
    func unmapCleansRemovedLeaves() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let before = fixture.caches.dataCacheCleanCount
        let range = GuestPhysicalRange(start: Fixture.block.start, size: 0x4000)
        try fixture.mmu.unmap(range, context: fixture.context)
        #expect(fixture.caches.dataCacheCleanCount - before == 4)
        #expect(fixture.leaves.count == 508)
    }

    @Test("flush(range) cleans every cacheable leaf in the range and changes no entry")
    func flushCleansLeaves() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, maximumLevel: 0, context: fixture.context)
        let leaves = fixture.leaves
        let before = fixture.caches.dataCacheCleanBytes
        let cleaned = try fixture.mmu.flush(Fixture.block, context: fixture.context)
        #expect(cleaned == 512)
        #expect(fixture.caches.dataCacheCleanBytes - before == Fixture.block.size)
        #expect(fixture.leaves == leaves)
        #expect(fixture.tlb.counts.total == 0)
    }

    @Test("Relaxing a leaf to executable invalidates the instruction cache for its output first")
    func relaxToExecutableInvalidatesInstructionCache() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        try fixture.mmu.relaxPermissions(Fixture.block.start, grant: .execute, mode: .shared, context: fixture.context)
        #expect(fixture.caches.instructionCacheInvalidationCount == 1)
        #expect(fixture.caches.instructionCacheInvalidationBytes == Fixture.block.size)
        #expect(fixture.leaves.first?.attributes.permissions == .all)
    }
}
