import SLATCore
import SLATx86
import Testing

@Suite("EPT permission changes")
struct ExtendedPageTablePermissionChangeTests {
    /// RWX, WB, accessed, MMU present, at 0x1234_5000 with suppress #VE.
    static let readWriteExecute: UInt64 = 0x8000_0000_1234_5937

    @Test func revokingWriteClearsBit1Only() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: Self.readWriteExecute, grant: [], revoke: .write)
            == 0x8000_0000_1234_5935)
    }

    @Test func grantingWriteRestoresBit1() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: 0x8000_0000_1234_5935, grant: .write, revoke: [])
            == Self.readWriteExecute)
    }

    @Test func revokeWinsOverGrant() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: 0x935, grant: .write, revoke: .write) == 0x935)
        #expect(format.changingPermissions(ofLeaf: 0x935, grant: .all, revoke: .all) == 0x930)
    }

    @Test func revokingReadAlsoClearsWrite() throws {
        let format = try ExtendedPageTableFormat()
        // RWX → X only: write without read would be a misconfiguration
        #expect(format.changingPermissions(ofLeaf: 0x937, grant: [], revoke: .read) == 0x934)
    }

    @Test func grantingWriteWithoutReadChangesNothing() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: 0x934, grant: .write, revoke: []) == 0x934)
        #expect(format.changingPermissions(ofLeaf: 0x934, grant: .readWrite, revoke: []) == 0x937)
    }

    @Test func withoutMBECOneExecuteRightAloneIsNotGranted() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: 0x933, grant: .executePrivileged, revoke: []) == 0x933)
        #expect(format.changingPermissions(ofLeaf: 0x933, grant: .executeUser, revoke: []) == 0x933)
        #expect(format.changingPermissions(ofLeaf: 0x933, grant: .execute, revoke: []) == 0x937)
    }

    @Test func withoutMBECRevokingEitherExecuteRightClearsBit2() throws {
        let format = try ExtendedPageTableFormat()
        #expect(format.changingPermissions(ofLeaf: 0x937, grant: [], revoke: .executeUser) == 0x933)
        #expect(format.changingPermissions(ofLeaf: 0x937, grant: [], revoke: .executePrivileged) == 0x933)
    }

    @Test func withMBECExecuteRightsChangeIndependently() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        // user execute is bit 10 (0x400)
        #expect(format.changingPermissions(ofLeaf: 0x933, grant: .executeUser, revoke: []) == 0xD33)
        #expect(format.changingPermissions(ofLeaf: 0xD37, grant: [], revoke: .executePrivileged) == 0xD33)
        #expect(format.changingPermissions(ofLeaf: 0xD37, grant: [], revoke: .executeUser) == 0x937)
    }

    @Test func everyOtherBitIsLeftUnchanged() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        // all bits but R, W, X (0x7) and user-exec (0x400)
        let others: UInt64 = 0xFFFF_FFFF_FFFF_FBF8
        #expect(format.changingPermissions(ofLeaf: others, grant: .all, revoke: []) == UInt64.max)
        #expect(format.changingPermissions(ofLeaf: UInt64.max, grant: [], revoke: .all) == others)
    }

    @Test func resultMatchesTheSetArithmeticForEveryEncodableCombination() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        let sets = (0..<16).map { Permissions(rawValue: UInt8($0)) }
        for start in sets where !(start.contains(.write) && !start.contains(.read)) {
            let entry = format.leafEntry(
                output: HostPhysicalAddress(0x1000), attributes: LeafAttributes(permissions: start), atLevel: 0)
            for grant in sets {
                for revoke in sets {
                    var expected = start.union(grant).subtracting(revoke)
                    if !expected.contains(.read) { expected.remove(.write) }
                    let changed = format.changingPermissions(ofLeaf: entry, grant: grant, revoke: revoke)
                    #expect(format.permissions(ofLeaf: changed) == expected)
                }
            }
        }
    }
}
