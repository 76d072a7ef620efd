import SLATArm64
import SLATCore
import Testing

@Suite("Translation granule")
struct TranslationGranuleTests {
    @Test func granulesHaveTheirSizesAndShifts() {
        #expect(TranslationGranule.size4KiB.byteCount == 4096 && TranslationGranule.size4KiB.shift == 12)
        #expect(TranslationGranule.size16KiB.byteCount == 16384 && TranslationGranule.size16KiB.shift == 14)
        #expect(TranslationGranule.size64KiB.byteCount == 65536 && TranslationGranule.size64KiB.shift == 16)
    }

    @Test func granulesAreMadeFromTheirByteCounts() throws {
        #expect(try TranslationGranule(byteCount: 4096) == .size4KiB)
        #expect(try TranslationGranule(byteCount: 16384) == .size16KiB)
        #expect(try TranslationGranule(byteCount: 65536) == .size64KiB)
    }

    @Test(arguments: [0, 512, 4095, 8192, 32768, 131_072, 2 << 20])
    func otherByteCountsAreUnsupportedGranules(bytes: Int) {
        #expect(throws: SLATError.unsupportedGranule(bytes)) { try TranslationGranule(byteCount: bytes) }
    }

    @Test func translationControlEncodingsFollowTG0() {
        #expect(TranslationGranule.size4KiB.translationControlEncoding == 0b00)
        #expect(TranslationGranule.size64KiB.translationControlEncoding == 0b01)
        #expect(TranslationGranule.size16KiB.translationControlEncoding == 0b10)
    }
}
