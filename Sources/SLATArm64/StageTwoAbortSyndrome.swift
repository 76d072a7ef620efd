import SLATCore

// Decoding of the syndrome a stage-2 abort leaves at EL2 (Arm ARM D24,
// "ESR_EL2", "HPFAR_EL2", "FAR_EL2"; ISS encodings for exceptions with
// EC 0b100000 and 0b100100), into SLAT's fault type. KVM's equivalents are
// the kvm_vcpu_* syndrome accessors of arch/arm64/include/asm/kvm_emulate.h.

/// What kind of stage-2 fault the fault status code (`DFSC`/`IFSC`) reports.
///
/// A value type; it takes no lock.
public enum StageTwoAbortKind: Hashable, Sendable {
    /// No valid entry at `level`: the page is not mapped (yet) — demand
    /// paging, or MMIO when no memslot holds the address.
    case translation
    /// The leaf has its access flag clear.
    case accessFlag
    /// The leaf does not grant the access.
    case permission
}

/// The register access of a data abort whose syndrome is valid
/// (`ESR_EL2.ISV` = 1): what an MMIO emulator needs to complete the
/// load or store for the guest.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoDataAccess: Hashable, Sendable {
    /// The transferred register, `Xt`/`Wt` (`SRT`); 31 is the zero
    /// register (a store of zero, a load that is discarded).
    public var register: Int
    /// Bytes transferred: 1, 2, 4 or 8 (`SAS`).
    public var size: Int
    /// A load sign-extends the value to the register width (`SSE`).
    public var signExtends: Bool
    /// The register is 64 bits wide (`SF`); else 32 bits, upper half zeroed.
    public var isSixtyFourBitRegister: Bool
    /// The instruction has acquire/release semantics (`AR`).
    public var acquiresOrReleases: Bool
    /// A store (`WnR`); else a load.
    public var isWrite: Bool

    /// An access as the syndrome describes it.
    @inlinable
    public init(register: Int, size: Int, signExtends: Bool, isSixtyFourBitRegister: Bool,
                acquiresOrReleases: Bool, isWrite: Bool) {
        self.register = register
        self.size = size
        self.signExtends = signExtends
        self.isSixtyFourBitRegister = isSixtyFourBitRegister
        self.acquiresOrReleases = acquiresOrReleases
        self.isWrite = isWrite
    }

    /// The register value a load of `raw` (the device's bytes, zero-extended)
    /// leaves: sign-extended from ``size`` when ``signExtends``, truncated to
    /// 32 bits unless ``isSixtyFourBitRegister``.
    @inlinable
    public func loadedValue(_ raw: UInt64) -> UInt64 {
        let bits = UInt64(size) &* 8
        var value = bits >= 64 ? raw : raw & ((1 &<< bits) &- 1)
        if signExtends && bits < 64 && value >> (bits &- 1) & 1 != 0 {
            value |= ~((1 &<< bits) &- 1)
        }
        return isSixtyFourBitRegister ? value : value & 0xFFFF_FFFF
    }
}

/// A decoded stage-2 abort: the fault SLAT's fault handler takes, and what
/// else the syndrome says.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoAbort: Hashable, Sendable {
    /// The faulting IPA and the access, for ``StageTwoFaultHandler/handle(_:context:)``.
    public var fault: StageTwoFault
    /// Translation, access-flag or permission fault.
    public var kind: StageTwoAbortKind
    /// The lookup level the fault was reported at, in the Arm ARM's
    /// numbering (−1 with FEAT_LPA2 ... 3 for a 4 KiB page). SLAT's heights
    /// are `3 − level` for the 4 KiB granule (``StageTwoFormat/architecturalLevel(_:)``
    /// converts the other way).
    public var level: Int
    /// An instruction fetch faulted (`EC` 0b100000); else a data access.
    public var isInstructionAbort: Bool
    /// The fault happened on a stage-1 table walk (`S1PTW`): the guest's
    /// own page tables are not mapped (or not writable for a hardware
    /// access-flag update). ``fault``'s access is then ``StageTwoAccess/write``,
    /// as KVM treats it.
    public var isStageOneWalk: Bool
    /// A cache-maintenance or address-translation instruction faulted
    /// (`CM`); the syndrome reports it as a write.
    public var isCacheMaintenance: Bool
    /// `FAR_EL2` holds the faulting virtual address (`FnV` clear); else
    /// ``fault``'s address is only known to the page.
    public var farIsValid: Bool
    /// The register access for MMIO emulation when the syndrome is valid
    /// (`ISV` = 1 on a data abort), else `nil`: the VMM must decode the
    /// instruction itself, or refuse it.
    public var dataAccess: StageTwoDataAccess?
    /// The instruction is 32 bits long (`IL`): step `ELR_EL2` by this many
    /// bytes (4, or 2 for a 16-bit T32 instruction) after emulating it.
    public var instructionLength: Int

    /// An abort with these fields.
    @inlinable
    public init(fault: StageTwoFault, kind: StageTwoAbortKind, level: Int, isInstructionAbort: Bool,
                isStageOneWalk: Bool, isCacheMaintenance: Bool, farIsValid: Bool,
                dataAccess: StageTwoDataAccess?, instructionLength: Int) {
        self.fault = fault
        self.kind = kind
        self.level = level
        self.isInstructionAbort = isInstructionAbort
        self.isStageOneWalk = isStageOneWalk
        self.isCacheMaintenance = isCacheMaintenance
        self.farIsValid = farIsValid
        self.dataAccess = dataAccess
        self.instructionLength = instructionLength
    }
}

/// Why a syndrome is not a stage-2 abort SLAT's fault handler can take.
/// Every case carries what the hypervisor needs to report or inject it.
///
/// A value type; it takes no lock.
public enum StageTwoAbortError: Error, Hashable, Sendable {
    /// `ESR_EL2.EC` is not an instruction or data abort from a lower
    /// exception level (0b100000, 0b100100); 0b100001 and 0b100101 are
    /// aborts taken at EL2 itself — a hypervisor bug, not a guest fault.
    case notALowerLevelAbort(exceptionClass: UInt8)
    /// A synchronous external abort (`EA`, or an external-abort fault
    /// status, on the access or on a table walk): the memory system failed
    /// the access; the VMM injects it or stops the VM.
    case externalAbort(faultStatus: UInt8)
    /// An address size fault at `level`: the IPA, or an output address in
    /// the tables, is wider than configured (`VTCR_EL2.T0SZ`/`PS`).
    case addressSizeFault(level: Int)
    /// An alignment fault (stage-1 or stage-2 memory type): for the guest.
    case alignmentFault
    /// A TLB conflict abort: the TLB held two overlapping translations of
    /// different sizes — a missing invalidation on a table/block change.
    case tlbConflictAbort
    /// Any other fault status code (unsupported atomic update, exclusive,
    /// lockdown, parity, granule protection, ...).
    case unsupportedFaultStatus(UInt8)
    /// A permission fault not on a stage-1 walk, where `HPFAR_EL2` may be
    /// UNKNOWN (Arm ARM; KVM's `__translate_far_to_hpfar`), and the caller
    /// gave no IPA resolved from `FAR_EL2`; the VMM translates FAR with
    /// `AT S1E1R` (or uses FAR itself when the guest's stage 1 is off).
    case faultAddressUnknown
}

/// The syndrome registers a stage-2 abort leaves at EL2, and their decoding.
///
/// A value type; it takes no lock.
@frozen
public struct StageTwoAbortSyndrome: Hashable, Sendable {
    /// `ESR_EL2`.
    public var esr: UInt64
    /// `HPFAR_EL2`: `FIPA` (bits 47:4) holds IPA bits 55:12.
    public var hpfar: UInt64
    /// `FAR_EL2`: the faulting virtual address (its page offset completes
    /// the IPA).
    public var far: UInt64

    /// The registers as read at the exception.
    @inlinable
    public init(esr: UInt64, hpfar: UInt64, far: UInt64) {
        self.esr = esr
        self.hpfar = hpfar
        self.far = far
    }

    /// `ESR_EL2.EC`.
    @inlinable public var exceptionClass: UInt8 { UInt8(truncatingIfNeeded: esr >> 26 & 0x3F) }
    /// The fault status code, `DFSC`/`IFSC` (`ISS` bits 5:0).
    @inlinable public var faultStatus: UInt8 { UInt8(truncatingIfNeeded: esr & 0x3F) }
    /// The page-aligned IPA in `HPFAR_EL2.FIPA`.
    @inlinable public var hpfarPage: UInt64 { (hpfar >> 4 & (1 &<< 44 &- 1)) &<< 12 }

    /// Instruction abort from a lower exception level.
    public static let instructionAbortFromLowerLevel: UInt8 = 0b100000
    /// Data abort from a lower exception level.
    public static let dataAbortFromLowerLevel: UInt8 = 0b100100

    /// Decodes the syndrome.
    ///
    /// - Parameters:
    ///   - resolvedIPA: for a permission fault not on a stage-1 walk, the
    ///     IPA of `FAR_EL2` as the VMM translated it (`AT S1E1R`, or FAR
    ///     when the guest runs with stage 1 off), used instead of the
    ///     possibly UNKNOWN `HPFAR_EL2`; ignored otherwise.
    ///   - trustingHPFAR: use `HPFAR_EL2` for those faults too, where the
    ///     implementation is known to report it.
    /// - Throws: ``StageTwoAbortError`` for anything that is not a
    ///   translation, access-flag or permission fault from a lower level.
    @inlinable
    public func decode(
        resolvedIPA: GuestPhysicalAddress? = nil, trustingHPFAR: Bool = false
    ) throws(StageTwoAbortError) -> StageTwoAbort {
        let ec = exceptionClass
        let instruction: Bool
        switch ec {
        case Self.instructionAbortFromLowerLevel: instruction = true
        case Self.dataAbortFromLowerLevel: instruction = false
        default: throw .notALowerLevelAbort(exceptionClass: ec)
        }
        let status = faultStatus
        let stageOneWalk = esr >> 7 & 1 != 0
        if esr >> 9 & 1 != 0 { throw .externalAbort(faultStatus: status) }
        let (kind, level) = try Self.classify(status)
        let farValid = esr >> 10 & 1 == 0
        let offset = farValid ? far & 0xFFF : 0
        let address: UInt64
        if kind == .permission && !stageOneWalk && !trustingHPFAR {
            guard let resolvedIPA else { throw .faultAddressUnknown }
            address = resolvedIPA.rawValue & ~0xFFF | offset
        } else {
            address = hpfarPage | offset
        }
        let cacheMaintenance = !instruction && esr >> 8 & 1 != 0
        let wnr = esr >> 6 & 1 != 0
        let access: StageTwoAccess
        if stageOneWalk {
            access = .write
        } else if instruction {
            access = .execute
        } else {
            access = wnr ? .write : .read
        }
        var dataAccess: StageTwoDataAccess?
        if !instruction && esr >> 24 & 1 != 0 && !stageOneWalk && !cacheMaintenance {
            dataAccess = StageTwoDataAccess(
                register: Int(esr >> 16 & 0x1F), size: 1 << Int(esr >> 22 & 0b11),
                signExtends: esr >> 21 & 1 != 0, isSixtyFourBitRegister: esr >> 15 & 1 != 0,
                acquiresOrReleases: esr >> 14 & 1 != 0, isWrite: wnr)
        }
        return StageTwoAbort(
            fault: StageTwoFault(address: GuestPhysicalAddress(address), access: access, kind: kind),
            kind: kind, level: level, isInstructionAbort: instruction, isStageOneWalk: stageOneWalk,
            isCacheMaintenance: cacheMaintenance, farIsValid: farValid, dataAccess: dataAccess,
            instructionLength: esr >> 25 & 1 != 0 ? 4 : 2)
    }

    /// The kind and Arm ARM level of a fault status code, or the error it is.
    @inlinable
    static func classify(_ status: UInt8) throws(StageTwoAbortError) -> (StageTwoAbortKind, Int) {
        let level = Int(status & 0b11)
        switch status {
        case 0b000000...0b000011: throw .addressSizeFault(level: level)
        case 0b101001: throw .addressSizeFault(level: -1)
        case 0b000100...0b000111: return (.translation, level)
        case 0b101011: return (.translation, -1)
        // Level 0 access-flag and permission faults exist with FEAT_LPA2.
        case 0b001000...0b001011: return (.accessFlag, level)
        case 0b001100...0b001111: return (.permission, level)
        case 0b010000, 0b010100...0b010111, 0b010011: throw .externalAbort(faultStatus: status)
        case 0b100001: throw .alignmentFault
        case 0b110000: throw .tlbConflictAbort
        default: throw .unsupportedFaultStatus(status)
        }
    }
}
