import SLATArm64
import SLATCore
import Testing

/// `VTTBR_EL2` values worked out by hand: VMID in 63:48, BADDR in 47:1, CnP bit 0.
@Suite("VTTBR_EL2")
struct StageTwoTranslationTableBaseTests {
    @Test func rootAndVMIDAreCombined() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        // VMID 5 << 48 = 0x0005_0000_0000_0000 | root 0x8000_2000
        let base = try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x8000_2000), vmid: 5)
        #expect(base.rawValue == 0x0005_0000_8000_2000)
        #expect(base.vmid == 5)
        #expect(base.rootAddress(in: format) == HostPhysicalAddress(0x8000_2000))
    }

    @Test func commonNotPrivateSetsBit0() throws {
        let format = try StageTwoFormat()
        let base = try StageTwoTranslationTableBase(
            format: format, root: HostPhysicalAddress(0x8000_2000), vmid: 0xFFFF, commonNotPrivate: true)
        #expect(base.rawValue == 0xFFFF_0000_8000_2001)
        #expect(base.commonNotPrivate)
        #expect(base.rootAddress(in: format) == HostPhysicalAddress(0x8000_2000))
    }

    @Test func rootMustBeAlignedToTheConcatenatedTables() throws {
        // 4 KiB / 40-bit: two root tables → 8 KiB alignment
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        #expect(throws: SLATError.misalignedOutputAddress(HostPhysicalAddress(0x8000_1000), alignment: 0x2000)) {
            try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x8000_1000), vmid: 1)
        }
    }

    @Test func sixteenConcatenated16KiBTablesNeed256KiBAlignment() throws {
        let format = try StageTwoFormat(granule: .size16KiB, inputAddressBits: 40)
        #expect(throws: SLATError.misalignedOutputAddress(HostPhysicalAddress(0x8002_0000), alignment: 0x4_0000)) {
            try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x8002_0000), vmid: 1)
        }
        let base = try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x8004_0000), vmid: 1)
        #expect(base.rawValue == 0x0001_0000_8004_0000)
    }

    @Test func rootBeyondThePASizeIsTooWide() throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40, outputAddressBits: 40)
        #expect(throws: SLATError.outputAddressTooWide(HostPhysicalAddress(0x100_0000_0000), outputBits: 40)) {
            try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x100_0000_0000), vmid: 1)
        }
    }

    @Test func eightBitVMIDAbove255IsOutOfRange() throws {
        let format = try StageTwoFormat()
        let base = try StageTwoTranslationTableBase(
            format: format, root: HostPhysicalAddress(0x2000), vmid: 0xFF, vmidSize: .bits8)
        #expect(base.rawValue == 0x00FF_0000_0000_2000)
        #expect(throws: SLATError.vmidOutOfRange(0x100, bits: 8)) {
            try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x2000), vmid: 0x100, vmidSize: .bits8)
        }
    }

    @Test func sixteenBitVMIDAbove65535IsOutOfRange() throws {
        let format = try StageTwoFormat()
        #expect(throws: SLATError.vmidOutOfRange(0x1_0000, bits: 16)) {
            try StageTwoTranslationTableBase(format: format, root: HostPhysicalAddress(0x2000), vmid: 0x1_0000)
        }
    }

    @Test func sixtyFourKiB52BitRootPutsBits51To48InBits5To2() throws {
        let format = try StageTwoFormat(granule: .size64KiB, inputAddressBits: 52, outputAddressBits: 52)
        // root 0x000F_0000_0001_0000: bits 47:1 → 0x1_0000; bits 51:48 = 0xF << 2 = 0x3C; VMID 1 << 48
        let base = try StageTwoTranslationTableBase(
            format: format, root: HostPhysicalAddress(0x000F_0000_0001_0000), vmid: 1)
        #expect(base.rawValue == 0x0001_0000_0001_003C)
        #expect(base.rootAddress(in: format) == HostPhysicalAddress(0x000F_0000_0001_0000))
    }
}
