import SLATCore
import SLATx86
import Testing

@Suite("EPT leaf attribute validation")
struct ExtendedPageTableValidationTests {
    @Test(arguments: [
        Permissions.write, [.write, .execute], [.write, .executePrivileged], [.write, .executeUser],
    ] as [Permissions])
    func writeWithoutReadIsUnsupported(permissions: Permissions) throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        #expect(throws: SLATError.unsupportedPermissions(permissions)) {
            try format.validate(LeafAttributes(permissions: permissions))
        }
    }

    @Test(arguments: [[.read, .executePrivileged], [.read, .executeUser], .executeUser] as [Permissions])
    func oneExecuteRightWithoutMBECIsUnsupported(permissions: Permissions) throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: false)
        #expect(throws: SLATError.unsupportedPermissions(permissions)) {
            try format.validate(LeafAttributes(permissions: permissions))
        }
    }

    @Test func unknownPermissionBitsAreUnsupported() throws {
        let format = try ExtendedPageTableFormat()
        let permissions = Permissions(rawValue: 0x11)
        #expect(throws: SLATError.unsupportedPermissions(permissions)) {
            try format.validate(LeafAttributes(permissions: permissions))
        }
    }

    @Test func oneExecuteRightWithMBECIsAccepted() throws {
        let format = try ExtendedPageTableFormat(modeBasedExecute: true)
        try format.validate(LeafAttributes(permissions: [.read, .executeUser]))
        try format.validate(LeafAttributes(permissions: [.read, .write, .executePrivileged]))
    }

    @Test func executeOnlyIsAccepted() throws {
        let format = try ExtendedPageTableFormat()
        try format.validate(LeafAttributes(permissions: .execute))
    }

    @Test func noPermissionAtAllIsAccepted() throws {
        try ExtendedPageTableFormat().validate(LeafAttributes(permissions: []))
    }

    @Test(arguments: [MemoryType.device, .reserved(2), .reserved(3), .reserved(7)])
    func memoryTypesWithoutEPTEncodingAreUnsupported(type: MemoryType) throws {
        let format = try ExtendedPageTableFormat()
        #expect(throws: SLATError.unsupportedMemoryType(type)) {
            try format.validate(LeafAttributes(permissions: .all, memoryType: type))
        }
    }

    @Test func softwareBitsWiderThanElevenBitsAreOutOfRange() throws {
        let format = try ExtendedPageTableFormat()
        #expect(throws: SLATError.softwareBitsOutOfRange(0x800, width: 11)) {
            try format.validate(LeafAttributes(permissions: .all, softwareBits: 0x800))
        }
    }

    @Test func dirtyFlagAndAllElevenSoftwareBitsAreAccepted() throws {
        try ExtendedPageTableFormat().validate(
            LeafAttributes(permissions: .all, accessed: true, dirty: true, softwareBits: 0x7FF))
    }
}
