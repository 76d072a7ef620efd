import SLATCore
import SLATx86
import Testing

@Suite("EPT pointer (EPTP)")
struct ExtendedPageTablePointerTests {
    @Test func fourLevelWriteBackWithAccessedDirty() throws {
        let format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        // WB 6 | (4 − 1) << 3 = 0x18 | A/D 1 << 6 = 0x40 → 0x5E, plus root 0x1234_5000
        let pointer = try ExtendedPageTablePointer(format: format, root: HostPhysicalAddress(0x1234_5000))
        #expect(pointer.rawValue == 0x0000_0000_1234_505E)
    }

    @Test func fiveLevelUncachedWithoutAccessedDirtyAtTopOf52Bits() throws {
        let format = try ExtendedPageTableFormat(levelCount: 5, accessedDirtyEnabled: false)
        // UC 0 | (5 − 1) << 3 = 0x20, plus root 0x000F_FFFF_FFFF_F000
        let pointer = try ExtendedPageTablePointer(
            format: format, root: HostPhysicalAddress(0x000F_FFFF_FFFF_F000), memoryType: .uncached)
        #expect(pointer.rawValue == 0x000F_FFFF_FFFF_F020)
    }

    @Test func rawValueDecodesEveryField() {
        let pointer = ExtendedPageTablePointer(rawValue: 0x0000_0000_1234_505E)
        #expect(pointer.memoryType == .writeBack)
        #expect(pointer.levelCount == 4)
        #expect(pointer.accessedDirtyEnabled)
        #expect(pointer.rootAddress == HostPhysicalAddress(0x1234_5000))

        let other = ExtendedPageTablePointer(rawValue: 0x000F_FFFF_FFFF_F020)
        #expect(other.memoryType == .uncached)
        #expect(other.levelCount == 5)
        #expect(!other.accessedDirtyEnabled)
        #expect(other.rootAddress == HostPhysicalAddress(0x000F_FFFF_FFFF_F000))
    }

    @Test func memoryTypesOtherThanUCAndWBDecodeAsReserved() {
        #expect(ExtendedPageTablePointer(rawValue: 0x1C).memoryType == .reserved(4))
    }

    @Test func rootNotOn4KiBBoundaryIsMisaligned() throws {
        let format = try ExtendedPageTableFormat()
        #expect(throws: SLATError.misalignedOutputAddress(HostPhysicalAddress(0x1234_5800), alignment: 4096)) {
            try ExtendedPageTablePointer(format: format, root: HostPhysicalAddress(0x1234_5800))
        }
    }

    @Test func rootBeyondTheOutputSizeIsTooWide() throws {
        let format = try ExtendedPageTableFormat(outputAddressBits: 39)
        #expect(throws: SLATError.outputAddressTooWide(HostPhysicalAddress(0x80_0000_0000), outputBits: 39)) {
            try ExtendedPageTablePointer(format: format, root: HostPhysicalAddress(0x80_0000_0000))
        }
    }

    @Test(arguments: [MemoryType.writeThrough, .writeCombining, .writeProtected, .device, .reserved(2)])
    func tableMemoryTypeOtherThanWBOrUCIsUnsupported(type: MemoryType) throws {
        let format = try ExtendedPageTableFormat()
        #expect(throws: SLATError.unsupportedMemoryType(type)) {
            try ExtendedPageTablePointer(format: format, root: HostPhysicalAddress(0x1000), memoryType: type)
        }
    }
}
