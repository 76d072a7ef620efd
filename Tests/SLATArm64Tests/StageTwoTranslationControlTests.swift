import SLATArm64
import SLATCore
import Testing

/// `VTCR_EL2` values worked out by hand from the Arm ARM field layout:
/// T0SZ 5:0, SL0 7:6, IRGN0 9:8 (1), ORGN0 11:10 (1), SH0 13:12 (3), TG0 15:14,
/// PS 18:16, VS 19, HA 21, HD 22, RES1 31. IRGN0 + ORGN0 + SH0 = 0x3500.
@Suite("VTCR_EL2")
struct StageTwoTranslationControlTests {
    @Test func fourKiB40BitIPA40BitPAWith16BitVMIDAndHA() throws {
        let format = try StageTwoFormat(
            granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 40, hardwareAccessFlag: true)
        // T0SZ 24 = 0x18; SL0 = 2 − 1 = 1 → 0x40; 0x3500; TG0 0; PS 2 → 0x2_0000;
        // VS 0x8_0000; HA 0x20_0000; RES1 0x8000_0000 → 0x802A_3558
        #expect(StageTwoTranslationControl(format: format, vmidSize: .bits16).rawValue == 0x802A_3558)
    }

    @Test func fourKiB40BitIPAWith8BitVMIDAndNoHA() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 40)
        // as above without VS and HA: 0x8000_0000 + 0x2_0000 + 0x3558 = 0x8002_3558
        #expect(StageTwoTranslationControl(format: format, vmidSize: .bits8).rawValue == 0x8002_3558)
    }

    @Test func sixteenKiB40BitIPA48BitPA() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40, outputAddressBits: 48)
        // T0SZ 0x18; SL0 = 3 − 2 = 1 → 0x40; 0x3500; TG0 0b10 → 0x8000; PS 5 → 0x5_0000; VS 0x8_0000
        // → 0x8000_0000 + 0x8_0000 + 0x5_0000 + 0x8000 + 0x3500 + 0x58 = 0x800D_B558
        #expect(StageTwoTranslationControl(format: format).rawValue == 0x800D_B558)
    }

    @Test func sixtyFourKiB52BitIPAAndPAWith8BitVMIDHAAndHD() throws {
        let format = try StageTwoFormat(
            granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52, hardwareAccessFlag: true)
        // T0SZ 12 = 0xC; SL0 = 3 − 1 = 2 → 0x80; 0x3500; TG0 0b01 → 0x4000; PS 6 → 0x6_0000;
        // HA 0x20_0000; HD 0x40_0000; RES1 → 0x8066_758C
        let control = StageTwoTranslationControl(format: format, vmidSize: .bits8, hardwareDirtyState: true)
        #expect(control.rawValue == 0x8066_758C)
    }

    @Test func fourKiB48BitIPAStartsAtLevel0() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 48, outputAddressBits: 48)
        // T0SZ 16 = 0x10; SL0 = 2 − 0 = 2 → 0x80; 0x3500; PS 5 → 0x5_0000; VS 0x8_0000 → 0x800D_3590
        #expect(StageTwoTranslationControl(format: format).rawValue == 0x800D_3590)
    }

    @Test func fourKiB32BitIPAStartsAtLevel2() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 32, outputAddressBits: 32)
        // T0SZ 32 = 0x20; SL0 = 2 − 2 = 0; 0x3500; PS 0; VS 0x8_0000 → 0x8008_3520
        #expect(StageTwoTranslationControl(format: format).rawValue == 0x8008_3520)
    }

    @Test(arguments: [(32, UInt64(0)), (36, 1), (40, 2), (42, 3), (44, 4), (48, 5)])
    func psEncodesEveryPASize(bits: Int, field: UInt64) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 32, outputAddressBits: bits)
        #expect(StageTwoTranslationControl(format: format).rawValue >> 16 & 0b111 == field)
    }

    @Test func rawValueDecodesEveryField() {
        let control = StageTwoTranslationControl(rawValue: 0x802A_3558)
        #expect(control.t0sz == 24 && control.inputAddressBits == 40)
        #expect(control.sl0 == 1 && control.granule == .size4KiB && control.startLevel == 1)
        #expect(control.innerCacheability == 1 && control.outerCacheability == 1 && control.shareability == 3)
        #expect(control.outputAddressBits == 40 && control.vmidSize == .bits16)
        #expect(control.hardwareAccessFlag && !control.hardwareDirtyState)
    }

    @Test func reservedTG0AndPSDecodeAsNil() {
        let control = StageTwoTranslationControl(rawValue: 0b11 << 14 | 0b111 << 16)
        #expect(control.granule == nil && control.startLevel == nil && control.outputAddressBits == nil)
    }

    @Test func decodedStartLevelAndSizesMatchTheFormatAcrossTheMatrix() throws {
        for granule in [TranslationGranule.size4KiB, .size16KiB, .size64KiB] {
            for ipa in 32...(granule == .size64KiB ? 52 : 48) {
                let pa = ipa > 48 ? 52 : 48
                let format = try StageTwoFormat(granule: granule, inputAddressBits: ipa, outputAddressBits: pa)
                let control = StageTwoTranslationControl(format: format)
                #expect(control.startLevel == format.startLevel)
                #expect(control.granule == granule)
                #expect(control.inputAddressBits == ipa)
                #expect(control.outputAddressBits == pa)
            }
        }
    }
}
