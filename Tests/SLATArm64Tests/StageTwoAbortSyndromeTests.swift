import SLATArm64
import SLATCore
import Testing

/// Syndromes built field by field as the Arm ARM lays out ESR_EL2 for
/// EC 0b100000 / 0b100100.
struct Syndrome {
    var ec: UInt64 = 0b100100
    var il = true
    var isv = false
    var sas: UInt64 = 0
    var sse = false
    var srt: UInt64 = 0
    var sf = false
    var ar = false
    var fnv = false
    var ea = false
    var cm = false
    var s1ptw = false
    var wnr = false
    var fsc: UInt64 = 0b000111

    var esr: UInt64 {
        var value = ec << 26 | fsc
        if il { value |= 1 << 25 }
        if isv { value |= 1 << 24 | sas << 22 | srt << 16 }
        if sse { value |= 1 << 21 }
        if sf { value |= 1 << 15 }
        if ar { value |= 1 << 14 }
        if fnv { value |= 1 << 10 }
        if ea { value |= 1 << 9 }
        if cm { value |= 1 << 8 }
        if s1ptw { value |= 1 << 7 }
        if wnr { value |= 1 << 6 }
        return value
    }
}

@Suite("Stage-2 abort syndrome decoding")
struct StageTwoAbortSyndromeTests {
    static let ipa: UInt64 = 0x8_4321_5000
    static var hpfar: UInt64 { (ipa >> 12) << 4 }

    func decode(_ s: Syndrome, far: UInt64 = 0xFFFF_0000_1234_5ABC, resolved: GuestPhysicalAddress? = nil,
                trusting: Bool = false) throws(StageTwoAbortError) -> StageTwoAbort {
        try StageTwoAbortSyndrome(esr: s.esr, hpfar: Self.hpfar, far: far).decode(resolvedIPA: resolved, trustingHPFAR: trusting)
    }

    @Test("A translation fault on a read gives the IPA from HPFAR with FAR's page offset, its level and a read")
    func translationRead() throws {
        for level in 0...3 {
            let abort = try decode(Syndrome(fsc: 0b000100 | UInt64(level)))
            #expect(abort.fault == StageTwoFault(address: GuestPhysicalAddress(Self.ipa | 0xABC), access: .read,
                                                 kind: .translation))
            #expect(abort.kind == .translation && abort.level == level)
            #expect(!abort.isInstructionAbort && !abort.isStageOneWalk && abort.farIsValid)
            #expect(abort.dataAccess == nil && abort.instructionLength == 4)
        }
        #expect(try decode(Syndrome(fsc: 0b101011)).level == -1)
    }

    @Test("WnR makes a write; an instruction abort is an execute whatever WnR says")
    func accessKinds() throws {
        #expect(try decode(Syndrome(wnr: true)).fault.access == .write)
        let fetch = try decode(Syndrome(ec: 0b100000, wnr: true))
        #expect(fetch.fault.access == .execute && fetch.isInstructionAbort)
    }

    @Test("A fault on a stage-1 table walk is a write, with no register access to emulate")
    func stageOneWalk() throws {
        let abort = try decode(Syndrome(isv: true, s1ptw: true, fsc: 0b001110))
        #expect(abort.isStageOneWalk && abort.fault.access == .write && abort.kind == .permission)
        #expect(abort.fault.kind == .permission)
        #expect(abort.level == 2 && abort.dataAccess == nil)
    }

    @Test("Access-flag and permission faults decode with their levels")
    func accessFlagAndPermission() throws {
        let young = try decode(Syndrome(fsc: 0b001011))
        #expect(young.kind == .accessFlag && young.level == 3)
        let permission = try decode(Syndrome(wnr: true, fsc: 0b001111), trusting: true)
        #expect(permission.kind == .permission && permission.level == 3 && permission.fault.access == .write)
        #expect(permission.fault.address.rawValue == Self.ipa | 0xABC)
    }

    @Test("A permission fault not on a stage-1 walk needs the IPA resolved from FAR unless HPFAR is trusted")
    func permissionNeedsResolvedAddress() throws {
        #expect(throws: StageTwoAbortError.faultAddressUnknown) { try decode(Syndrome(fsc: 0b001101)) }
        let abort = try decode(Syndrome(fsc: 0b001101), far: 0x4000_2123,
                               resolved: GuestPhysicalAddress(0x4000_2000))
        #expect(abort.fault.address == GuestPhysicalAddress(0x4000_2123) && abort.level == 1)
    }

    @Test("FnV leaves the address page-aligned")
    func farNotValid() throws {
        let abort = try decode(Syndrome(fnv: true))
        #expect(!abort.farIsValid && abort.fault.address.rawValue == Self.ipa)
    }

    @Test("A valid syndrome gives register, size, sign extension and width for MMIO emulation")
    func mmioSyndrome() throws {
        let load = try #require(try decode(Syndrome(isv: true, sas: 0b10, srt: 7, sf: true)).dataAccess)
        #expect(load == StageTwoDataAccess(register: 7, size: 4, signExtends: false, isSixtyFourBitRegister: true,
                                           acquiresOrReleases: false, isWrite: false))
        #expect(load.loadedValue(0xFFFF_FFFF_8000_0001) == 0x8000_0001)
        let signed = try #require(try decode(Syndrome(isv: true, sas: 0b00, sse: true, srt: 3, sf: false)).dataAccess)
        #expect(signed.size == 1 && signed.loadedValue(0x80) == 0xFFFF_FF80)
        let store = try #require(try decode(Syndrome(isv: true, sas: 0b11, srt: 31, ar: true, wnr: true)).dataAccess)
        #expect(store.isWrite && store.register == 31 && store.size == 8 && store.acquiresOrReleases)
        #expect(try decode(Syndrome(il: false, isv: true)).instructionLength == 2)
    }

    @Test("A cache maintenance fault is flagged and carries no register access")
    func cacheMaintenance() throws {
        let abort = try decode(Syndrome(isv: true, cm: true, wnr: true))
        #expect(abort.isCacheMaintenance && abort.dataAccess == nil && abort.fault.access == .write)
    }

    @Test("Syndromes that are not guest stage-2 translation, access-flag or permission faults throw typed errors")
    func undecodable() {
        #expect(throws: StageTwoAbortError.notALowerLevelAbort(exceptionClass: 0b100101)) {
            try decode(Syndrome(ec: 0b100101))
        }
        #expect(throws: StageTwoAbortError.notALowerLevelAbort(exceptionClass: 0b010110)) {
            try decode(Syndrome(ec: 0b010110))
        }
        #expect(throws: StageTwoAbortError.externalAbort(faultStatus: 0b000111)) { try decode(Syndrome(ea: true)) }
        #expect(throws: StageTwoAbortError.externalAbort(faultStatus: 0b010101)) { try decode(Syndrome(fsc: 0b010101)) }
        #expect(throws: StageTwoAbortError.addressSizeFault(level: 2)) { try decode(Syndrome(fsc: 0b000010)) }
        #expect(throws: StageTwoAbortError.addressSizeFault(level: -1)) { try decode(Syndrome(fsc: 0b101001)) }
        #expect(throws: StageTwoAbortError.alignmentFault) { try decode(Syndrome(fsc: 0b100001)) }
        #expect(throws: StageTwoAbortError.tlbConflictAbort) { try decode(Syndrome(fsc: 0b110000)) }
        #expect(throws: StageTwoAbortError.unsupportedFaultStatus(0b110001)) { try decode(Syndrome(fsc: 0b110001)) }
    }

    @Test("A decoded write translation fault, then the permission fault after write protection, go through the fault handler")
    func decodedFaultsDriveTheHandler() throws {
        let vm = try StageTwoTestVM(granule: .size4KiB, guestBase: 0x1_0000_0000, size: 4 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size4K, tablePages: 64)
        let ipa = vm.guestRange.start.rawValue + 0x3008
        let translation = try StageTwoAbortSyndrome(
            esr: Syndrome(wnr: true, fsc: 0b000101).esr, hpfar: (ipa >> 12) << 4, far: ipa).decode()
        #expect(try vm.handler.handle(translation.fault, context: vm.contexts[0]) == .mapped(level: 0))
        var batch = TLBFlushBatch()
        try vm.mmu.writeProtect(GuestPhysicalRange(start: GuestPhysicalAddress(ipa & ~0xFFF), size: 0x1000),
                                context: vm.contexts[0], batch: &batch)
        vm.mmu.settle(batch, mode: .exclusive)
        let permission = try StageTwoAbortSyndrome(
            esr: Syndrome(wnr: true, fsc: 0b001111).esr, hpfar: 0, far: ipa).decode(resolvedIPA: GuestPhysicalAddress(ipa))
        #expect(permission.kind == .permission && permission.fault.address.rawValue == ipa)
        #expect(try vm.handler.handle(permission.fault, context: vm.contexts[0]) == .permissionsRelaxed)
    }
}
