import SLATArm64
import SLATCore
import Testing

@Suite("Stage-2 leaf attribute validation")
struct StageTwoValidationTests {
    @Test func dirtyFlagIsUnsupported() throws {
        #expect(throws: SLATError.unsupportedDirtyFlag) {
            try StageTwoFormat().validate(LeafAttributes(permissions: .readWrite, dirty: true))
        }
    }

    @Test(arguments: [MemoryType.writeProtected, .reserved(2), .reserved(14)])
    func memoryTypesWithoutStageTwoEncodingAreUnsupported(type: MemoryType) throws {
        #expect(throws: SLATError.unsupportedMemoryType(type)) {
            try StageTwoFormat().validate(LeafAttributes(permissions: .all, memoryType: type))
        }
    }

    @Test(arguments: [[.read, .executePrivileged], [.read, .executeUser], .executeUser] as [Permissions])
    func oneExecuteRightWithoutXNXIsUnsupported(permissions: Permissions) throws {
        #expect(throws: SLATError.unsupportedPermissions(permissions)) {
            try StageTwoFormat(executeNeverSplit: false).validate(LeafAttributes(permissions: permissions))
        }
    }

    @Test func unknownPermissionBitsAreUnsupported() throws {
        let permissions = Permissions(rawValue: 0x81)
        #expect(throws: SLATError.unsupportedPermissions(permissions)) {
            try StageTwoFormat().validate(LeafAttributes(permissions: permissions))
        }
    }

    @Test func softwareBitsWiderThanFourBitsAreOutOfRange() throws {
        #expect(throws: SLATError.softwareBitsOutOfRange(0x10, width: 4)) {
            try StageTwoFormat().validate(LeafAttributes(permissions: .all, softwareBits: 0x10))
        }
    }

    @Test func everyPermissionSetIsAcceptedWithXNX() throws {
        let format = try StageTwoFormat(executeNeverSplit: true)
        for raw in UInt8(0)..<16 { try format.validate(LeafAttributes(permissions: Permissions(rawValue: raw))) }
    }

    @Test func writeOnlyAndExecuteOnlyAreAcceptedWithoutXNX() throws {
        let format = try StageTwoFormat()
        try format.validate(LeafAttributes(permissions: .write))
        try format.validate(LeafAttributes(permissions: .execute))
    }

    @Test(arguments: [MemoryType.writeBack, .writeThrough, .writeCombining, .uncached, .device])
    func namedStageTwoMemoryTypesAreAccepted(type: MemoryType) throws {
        try StageTwoFormat().validate(LeafAttributes(permissions: .readWrite, memoryType: type, softwareBits: 0xF))
    }
}
