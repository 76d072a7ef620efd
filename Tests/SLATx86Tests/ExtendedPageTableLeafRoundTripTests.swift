import SLATCore
import SLATx86
import Testing

/// Every encodable field survives `leafEntry` → `attributes` / `outputAddress` at every leaf height.
@Suite("EPT leaf round trips")
struct ExtendedPageTableLeafRoundTripTests {
    static let leafLevels = [0, 1, 2]

    /// Every permission set EPT can encode without MBEC.
    static let plainPermissions: [Permissions] = [
        [], .read, .readWrite, .readExecute, .all, .execute,
    ]

    /// Every permission set with MBEC: all 16 minus the four with write but not read.
    static let modeBasedPermissions: [Permissions] = (0..<16).map { Permissions(rawValue: UInt8($0)) }
        .filter { !($0.contains(.write) && !$0.contains(.read)) }

    static func roundTrip(
        _ format: ExtendedPageTableFormat, _ attributes: LeafAttributes, level: Int,
        output: HostPhysicalAddress = HostPhysicalAddress(0)
    ) throws -> (LeafAttributes, HostPhysicalAddress) {
        try format.validate(attributes)
        let entry = format.leafEntry(output: output, attributes: attributes, atLevel: level)
        #expect(format.isPresent(entry, atLevel: level))
        #expect(!format.isTable(entry, atLevel: level))
        return (format.attributes(ofLeaf: entry, atLevel: level), format.outputAddress(ofLeaf: entry, atLevel: level))
    }

    @Test(arguments: leafLevels)
    func everyPermissionSetWithoutMBECRoundTrips(level: Int) throws {
        let format = try ExtendedPageTableFormat()
        #expect(Self.modeBasedPermissions.count == 12)
        for permissions in Self.plainPermissions {
            let attributes = LeafAttributes(permissions: permissions)
            #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            let entry = format.leafEntry(output: HostPhysicalAddress(0), attributes: attributes, atLevel: level)
            #expect(format.permissions(ofLeaf: entry) == permissions)
        }
    }

    @Test(arguments: leafLevels)
    func everyPermissionSetWithMBECRoundTrips(level: Int) throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        for permissions in Self.modeBasedPermissions {
            let attributes = LeafAttributes(permissions: permissions)
            #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
        }
    }

    @Test(arguments: leafLevels, [MemoryType.uncached, .writeCombining, .writeThrough, .writeProtected, .writeBack])
    func everyMemoryTypeRoundTrips(level: Int, type: MemoryType) throws {
        for ignorePAT in [false, true] {
            let format = try ExtendedPageTableFormat(ignoreGuestPAT: ignorePAT)
            let attributes = LeafAttributes(permissions: .all, memoryType: type)
            #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
        }
    }

    @Test(arguments: leafLevels)
    func accessedAndDirtyRoundTripInEveryCombination(level: Int) throws {
        let format = try ExtendedPageTableFormat()
        for accessed in [false, true] {
            for dirty in [false, true] {
                let attributes = LeafAttributes(permissions: .readWrite, accessed: accessed, dirty: dirty)
                #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
            }
        }
    }

    @Test(arguments: leafLevels)
    func everySoftwareBitRoundTripsAlone(level: Int) throws {
        let format = try ExtendedPageTableFormat()
        for bit in 0..<11 {
            let attributes = LeafAttributes(permissions: .read, softwareBits: 1 << UInt16(bit))
            #expect(try Self.roundTrip(format, attributes, level: level).0 == attributes)
        }
        let all = LeafAttributes(permissions: .read, softwareBits: 0x7FF)
        #expect(try Self.roundTrip(format, all, level: level).0 == all)
    }

    @Test(arguments: leafLevels, [36, 39, 46, 52])
    func addressesUpToTheOutputSizeRoundTrip(level: Int, outputBits: Int) throws {
        let format = try ExtendedPageTableFormat(outputAddressBits: outputBits)
        let size = format.entrySize(atLevel: level)
        let top = (UInt64(1) << UInt64(outputBits)) - size
        let middle = (UInt64(0x5_5555_5555_5555) & (UInt64(1) << UInt64(outputBits) - 1)) & ~(size - 1)
        for raw in [0, size, middle, top] {
            let output = HostPhysicalAddress(raw)
            let attributes = LeafAttributes(permissions: .all, softwareBits: 0x7FF)
            let (decoded, address) = try Self.roundTrip(format, attributes, level: level, output: output)
            #expect(address == output)
            #expect(decoded == attributes)
        }
    }
}
