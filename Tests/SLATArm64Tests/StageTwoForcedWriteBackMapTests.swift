import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 leaves follow the cache hooks' HCR_EL2.FWB")
struct StageTwoForcedWriteBackMapTests {
    typealias Fixture = StageTwoMMUFixture

    /// MemAttr (descriptor bits 5:2) of the leaf mapping the fixture's block.
    func memoryAttributes(_ fixture: Fixture) throws -> UInt64 {
        try #require(rawLeaf(fixture.mmu.table, Fixture.block.start)) >> 2 & 0xF
    }

    @Test("With hooks that force write-back, a normal write-back leaf carries the FWB encoding 0b0110 and no data-cache clean is made")
    func forcedWriteBackLeafUsesFWBEncoding() throws {
        let fixture = try Fixture(caches: CountingCacheMaintenance(forcesWriteBack: true))
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        #expect(try memoryAttributes(fixture) == 0b0110)
        #expect(fixture.caches.dataCacheCleanCount == 0)
    }

    @Test("Without FWB a normal write-back leaf carries 0b1111 and its output is cleaned")
    func plainLeafUsesFWBOffEncoding() throws {
        let fixture = try Fixture()
        try fixture.mmu.map(Fixture.block, to: Fixture.blockOutput, attributes: Fixture.readWrite, context: fixture.context)
        #expect(try memoryAttributes(fixture) == 0b1111)
        #expect(fixture.caches.dataCacheCleanCount == 1)
    }
}
