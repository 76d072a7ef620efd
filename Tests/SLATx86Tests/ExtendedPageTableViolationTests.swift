import SLATCore
import Testing
@testable import SLATx86

/// The EPT-violation exit-qualification decoder (Intel SDM Vol. 3C, Table
/// 28-7): access kind, permission fault (bits 3–5, bit 6 with mode-based
/// execute control), user/supervisor fetches, and the fault the MMU takes.
@Suite("EPT violation exit qualification")
struct ExtendedPageTableViolationTests {
    let gpa = GuestPhysicalAddress(0x1234_5000)

    func decode(_ qualification: UInt64, mbec: Bool = false) -> ExtendedPageTableViolation {
        ExtendedPageTableViolation(exitQualification: qualification, guestPhysicalAddress: gpa, modeBasedExecute: mbec)
    }

    @Test("a read, a write and a fetch of a not-present page: the access, not a permission fault")
    func notPresentAccesses() {
        let read = decode(0x181)    // read, linear valid, translated access
        #expect(read.access == .read && !read.isPermissionFault && read.isRead && !read.isWrite)
        let write = decode(0x182)
        #expect(write.access == .write && !write.isPermissionFault)
        let fetch = decode(0x184)
        #expect(fetch.access == .execute && !fetch.isPermissionFault && fetch.isFetch)
        #expect(read.fault() == GuestPageFault(address: gpa, access: .read, isPermissionFault: false))
    }

    @Test("a write to a readable (write-protected) translation is a permission fault")
    func writeToReadOnlyIsPermissionFault() {
        let violation = decode(0x18a)   // write; entry readable
        #expect(violation.isPermissionFault)
        #expect(violation.entryPermissions == ExtendedPageTableViolation.entryReadable)
        #expect(violation.fault(addressSpace: 1) == GuestPageFault(address: gpa, access: .write, isPermissionFault: true,
                                                                  addressSpace: 1))
        // Each of bits 3, 4 and 5 alone makes it a permission fault.
        for bit in [UInt64(1) << 3, 1 << 4, 1 << 5] { #expect(decode(0x184 | bit).isPermissionFault) }
    }

    @Test("bit 6 (user-execute) counts as a present translation only under mode-based execute control")
    func userExecuteBitNeedsModeBasedExecute() {
        #expect(!decode(0x184 | 1 << 6).isPermissionFault)
        #expect(decode(0x184 | 1 << 6, mbec: true).isPermissionFault)
        #expect(decode(0x184 | 1 << 6, mbec: true).entryPermissions == ExtendedPageTableViolation.entryUserExecutable)
    }

    @Test("a fetch from a user-mode linear address needs user-execute under mode-based execute control")
    func userAndSupervisorFetches() {
        let user: UInt64 = 0x384           // fetch, linear valid, translated, user-mode linear address
        #expect(decode(user, mbec: true).access == .userExecute)
        #expect(decode(user, mbec: true).isUserModeLinearAddress)
        // Without mode-based execute control bit 2 governs every fetch.
        #expect(decode(user).access == .execute)
        // A supervisor-mode fetch.
        #expect(decode(0x184, mbec: true).access == .execute)
        // Bit 9 means nothing for an access to a paging-structure entry (bit 8 clear).
        let walk = decode(0x284, mbec: true)
        #expect(walk.access == .execute && !walk.isUserModeLinearAddress)
        // A supervisor fetch of a page executable by user mode only: present, permission fault.
        let supervisorOnUserPage = decode(0x184 | 1 << 6 | 1 << 3, mbec: true)
        #expect(supervisorOnUserPage.access == .execute && supervisorOnUserPage.isPermissionFault)
    }

    @Test("a read-modify-write reports read and write: decoded as a write; a fetch wins over both")
    func accessPriority() {
        #expect(decode(0x183).access == .write)
        #expect(decode(0x187).access == .execute)
        #expect(decode(0).access == .read)
    }

    @Test("guest paging-structure accesses and the advanced information bits")
    func pagingStructureAccess() {
        let walk = decode(0x083)   // the guest walker setting an accessed flag: read+write, bit 7, bit 8 clear
        #expect(walk.isGuestPagingStructureAccess)
        #expect(walk.access == .write)
        #expect(!decode(0x183).isGuestPagingStructureAccess)
        #expect(!decode(0x003).isGuestPagingStructureAccess)   // no linear address at all
        #expect(decode(0x1000).exitQualification & ExtendedPageTableViolation.nmiUnblocking != 0)
    }

    @Test("decoded violations drive the MMU: a not-present write maps, a write after write-protect takes the fast path")
    func decodedFaultsDriveTheMMU() throws {
        let vm = try SimulatedVM(frames: 512, hostSize: .size2M)
        let vcpu = vm.contexts[0]
        let address = vm.address(3)
        let notPresent = ExtendedPageTableViolation(exitQualification: 0x182, guestPhysicalAddress: address)
        #expect(try vm.mmu.handleFault(notPresent.fault(), vcpu: vcpu) == .fixed(level: 1))
        try vm.mmu.enableDirtyLogging(memslot: SimulatedVM.slotID, mode: .writeProtect)
        _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        // Hardware now reports a write to a readable translation.
        let protected = ExtendedPageTableViolation(exitQualification: 0x182 | ExtendedPageTableViolation.entryReadable
                                                   | ExtendedPageTableViolation.entryExecutable, guestPhysicalAddress: address)
        // The huge leaf is split by the full path first; the next write-protected 4 KiB leaf is fast.
        _ = try vm.mmu.handleFault(protected.fault(), vcpu: vcpu)
        _ = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        #expect(try vm.mmu.fastPageFault(protected.fault(), vcpu: vcpu) == .fixed(level: 0))
        let log = try vm.mmu.getAndClearDirtyLog(memslot: SimulatedVM.slotID)
        #expect(markedFrames(log) == [3])
    }
}
