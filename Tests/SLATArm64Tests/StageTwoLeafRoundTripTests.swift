import SLATArm64
import SLATCore
import Testing

/// Every encodable field survives `leafEntry` → `attributes` / `outputAddress`
/// at every leaf height of every granule.
@Suite("Stage-2 leaf round trips")
struct StageTwoLeafRoundTripTests {
    static func roundTrip(
        _ format: StageTwoFormat, _ attributes: LeafAttributes, level: Int,
        output: HostPhysicalAddress = HostPhysicalAddress(0)
    ) throws -> (LeafAttributes, HostPhysicalAddress) {
        try format.validate(attributes)
        let entry = format.leafEntry(output: output, attributes: attributes, atLevel: level)
        #expect(format.isPresent(entry, atLevel: level))
        #expect(!format.isTable(entry, atLevel: level))
        return (format.attributes(ofLeaf: entry, atLevel: level), format.outputAddress(ofLeaf: entry, atLevel: level))
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func everyPermissionSetWithoutXNXRoundTrips(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration)
        let sets: [Permissions] = [[], .read, .write, .readWrite, .execute, .readExecute, [.write, .execute], .all]
        for level in TestConfigurations.leafLevels(format) {
            for permissions in sets {
                let attributes = LeafAttributes(permissions: permissions)
                #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func everyPermissionSetWithXNXRoundTrips(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration, executeNeverSplit: true)
        for level in TestConfigurations.leafLevels(format) {
            for raw in UInt8(0)..<16 {
                let attributes = LeafAttributes(permissions: Permissions(rawValue: raw))
                #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func everyMemoryTypeRoundTrips(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration)
        for level in TestConfigurations.leafLevels(format) {
            for type in [MemoryType.writeBack, .writeThrough, .writeCombining, .uncached, .device] {
                let attributes = LeafAttributes(permissions: .readWrite, memoryType: type)
                #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func accessFlagRoundTripsAndDirtyDecodesFalse(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration)
        for level in TestConfigurations.leafLevels(format) {
            for accessed in [false, true] {
                let attributes = LeafAttributes(permissions: .readWrite, accessed: accessed)
                let decoded = try Self.roundTrip(format, attributes, level: level).0
                #expect(decoded.accessed == accessed)
                #expect(!decoded.dirty)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func everySoftwareBitRoundTrips(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration)
        for level in TestConfigurations.leafLevels(format) {
            for bits: UInt16 in [0, 1, 2, 4, 8, 0xF] {
                let attributes = LeafAttributes(permissions: .read, softwareBits: bits)
                #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func addressesUpToTheOutputSizeRoundTrip(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration, executeNeverSplit: true)
        let limit = UInt64(1) << UInt64(format.outputAddressBits)
        for level in TestConfigurations.leafLevels(format) {
            let size = format.entrySize(atLevel: level)
            let middle = UInt64(0x000A_5555_5555_5555) & (limit - 1) & ~(size - 1)
            for raw in [0, size, middle, limit - size] {
                let attributes = LeafAttributes(permissions: .all, memoryType: .device, softwareBits: 0xF)
                let (decoded, address) = try Self.roundTrip(format, attributes, level: level, output: HostPhysicalAddress(raw))
                #expect(address == HostPhysicalAddress(raw))
                #expect(decoded == attributes)
            }
        }
    }

    @Test(arguments: TestConfigurations.everyLeafLayout)
    func tableDescriptorsRoundTripUpToTheOutputSize(configuration: (TranslationGranule, Int, Int, Bool)) throws {
        let format = try TestConfigurations.format(configuration)
        let limit = UInt64(1) << UInt64(format.outputAddressBits)
        for raw in [UInt64(format.tablePageSize), limit - UInt64(format.tablePageSize)] {
            let entry = format.tableEntry(child: HostPhysicalAddress(raw))
            #expect(format.childTable(of: entry) == HostPhysicalAddress(raw))
            for level in 1...format.rootLevel {
                #expect(format.isPresent(entry, atLevel: level) && format.isTable(entry, atLevel: level))
            }
        }
    }
}
