import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 permission changes")
struct StageTwoPermissionChangeTests {
    /// RW, execute-never, WB, AF, page at 0x8000_1000.
    static let readWrite: UInt64 = 0x0040_0000_8000_17FF

    @Test func revokingWriteClearsS2APWrite() throws {
        #expect(try StageTwoFormat().changingPermissions(ofLeaf: Self.readWrite, grant: [], revoke: .write)
            == 0x0040_0000_8000_177F)
    }

    @Test func grantingWriteSetsS2APWrite() throws {
        #expect(try StageTwoFormat().changingPermissions(ofLeaf: 0x0040_0000_8000_177F, grant: .write, revoke: [])
            == Self.readWrite)
    }

    @Test func revokeWinsOverGrant() throws {
        let format = try StageTwoFormat()
        #expect(format.changingPermissions(ofLeaf: Self.readWrite, grant: .all, revoke: .all) == 0x0040_0000_8000_173F)
    }

    @Test func grantingExecuteClearsXN() throws {
        #expect(try StageTwoFormat().changingPermissions(ofLeaf: Self.readWrite, grant: .execute, revoke: [])
            == 0x0000_0000_8000_17FF)
    }

    @Test func withoutXNXOneExecuteRightAloneIsNotGranted() throws {
        let format = try StageTwoFormat()
        #expect(format.changingPermissions(ofLeaf: Self.readWrite, grant: .executePrivileged, revoke: []) == Self.readWrite)
        #expect(format.changingPermissions(ofLeaf: Self.readWrite, grant: .executeUser, revoke: []) == Self.readWrite)
    }

    @Test func withoutXNXRevokingEitherExecuteRightSetsXN() throws {
        let format = try StageTwoFormat()
        #expect(format.changingPermissions(ofLeaf: 0x0000_0000_8000_17FF, grant: [], revoke: .executeUser)
            == Self.readWrite)
        #expect(format.changingPermissions(ofLeaf: 0x0000_0000_8000_17FF, grant: [], revoke: .executePrivileged)
            == Self.readWrite)
    }

    @Test func withoutXNXBit53IsLeftAsItWas() throws {
        let format = try StageTwoFormat()
        // bit 53 is RES0 without FEAT_XNX; changing execute rights must not touch it
        #expect(format.changingPermissions(ofLeaf: 0x0020_0000_0000_07FF, grant: [], revoke: .execute)
            == 0x0060_0000_0000_07FF)
    }

    @Test func withXNXExecuteRightsChangeIndependently() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        let executable: UInt64 = 0x0000_0000_0000_07FF
        // revoke EL0 → XN 0b11; revoke EL1 → XN 0b01; from XN 0b10 grant EL0 → 0b01
        #expect(format.changingPermissions(ofLeaf: executable, grant: [], revoke: .executeUser) == 0x0060_0000_0000_07FF)
        #expect(format.changingPermissions(ofLeaf: executable, grant: [], revoke: .executePrivileged)
            == 0x0020_0000_0000_07FF)
        #expect(format.changingPermissions(ofLeaf: 0x0040_0000_0000_07FF, grant: .executeUser, revoke: [])
            == 0x0020_0000_0000_07FF)
    }

    @Test("Revoking write has a mask form, which also clears the MMU-writable bit")
    func revokingWriteMaskClearsMMUWritable() throws {
        let format = try StageTwoFormat()
        let masks = try #require(format.permissionMasks(grant: [], revoke: .write))
        #expect(masks.set == 0 && masks.clear == StageTwoDescriptorBits.write | StageTwoDescriptorBits.mmuWritable)
    }

    @Test func everyOtherBitIsLeftUnchanged() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        // all bits but S2AP (7:6) and XN (54:53)
        let others: UInt64 = 0xFF9F_FFFF_FFFF_FF3F
        #expect(format.changingPermissions(ofLeaf: others, grant: .all, revoke: []) == 0xFF9F_FFFF_FFFF_FFFF)
        // Revoking write also clears the MMU-writable bit (58).
        #expect(format.changingPermissions(ofLeaf: UInt64.max, grant: [], revoke: .all) == 0xFBDF_FFFF_FFFF_FF3F)
        #expect(format.changingPermissions(ofLeaf: UInt64.max, grant: [], revoke: .read) == 0xFFFF_FFFF_FFFF_FFBF)
    }

    @Test(arguments: [false, true])
    func resultMatchesTheSetArithmeticForEveryCombination(split: Bool) throws {
        let format = try StageTwoFormat(executeNeverSplit: split)
        let sets = (0..<16).map { Permissions(rawValue: UInt8($0)) }
        let starts = sets.filter { split || $0.isSuperset(of: .execute) || $0.isDisjoint(with: .execute) }
        for start in starts {
            let entry = format.leafEntry(
                output: HostPhysicalAddress(0x1000), attributes: LeafAttributes(permissions: start), atLevel: 0)
            for grant in sets {
                for revoke in sets {
                    var expected = start.union(grant).subtracting(revoke)
                    if !split && !expected.isSuperset(of: .execute) { expected.subtract(.execute) }
                    let changed = format.changingPermissions(ofLeaf: entry, grant: grant, revoke: revoke)
                    #expect(format.permissions(ofLeaf: changed) == expected)
                    #expect(changed & ~0x0060_0000_0000_00C0 == entry & ~0x0060_0000_0000_00C0)
                }
            }
        }
    }
}
