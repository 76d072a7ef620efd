import SLATCore

/// The exit qualification of a VM exit caused by an EPT violation (basic exit
/// reason 48), decoded (Intel SDM Vol. 3C, "Exit Qualification for EPT
/// Violations", Table 28-7), and the ``GuestPageFault`` the fault handler
/// takes.
///
/// | bits | meaning |
/// |---|---|
/// | 0, 1, 2 | the access was a data read, a data write, an instruction fetch |
/// | 3, 4, 5 | the translation allowed read, write, (supervisor) execute |
/// | 6 | the translation allowed user-mode execute (mode-based execute control) |
/// | 7 | the guest linear address field is valid |
/// | 8 | (bit 7 set) the access was to the translated linear address, not to a guest paging-structure entry |
/// | 9 | (bits 7 and 8 set, advanced VM-exit information) the linear address is user-mode |
/// | 10, 11 | (same) the linear address is writable, execute-disabled |
/// | 12 | NMI unblocking due to IRET |
///
/// A violation with any of bits 3–5 set (and bit 6 under mode-based execute
/// control) happened on a *present* translation that lacked the access: a
/// permission fault, which the lockless fast page fault can fix (KVM's
/// `handle_ept_violation` sets `PFERR_PRESENT_MASK` from the same bits).
/// A fetch from a user-mode linear address under mode-based execute control
/// needs the user-execute bit (bit 10 of the entry), so it decodes as
/// ``GuestAccess/userExecute``; every other fetch as ``GuestAccess/execute``.
@frozen
public struct ExtendedPageTableViolation: Sendable, Hashable {
    /// The raw exit qualification (VMCS field 0x6400).
    public var exitQualification: UInt64
    /// The guest-physical address of the access (VMCS field 0x2400).
    public var guestPhysicalAddress: GuestPhysicalAddress
    /// Whether mode-based execute control was enabled for the guest (it
    /// gives bit 6 its meaning and makes user-mode fetches need bit 10).
    public var modeBasedExecute: Bool

    /// Bit 0: a data read.
    public static let readAccess: UInt64 = 1 << 0
    /// Bit 1: a data write.
    public static let writeAccess: UInt64 = 1 << 1
    /// Bit 2: an instruction fetch.
    public static let fetchAccess: UInt64 = 1 << 2
    /// Bit 3: the translation was readable.
    public static let entryReadable: UInt64 = 1 << 3
    /// Bit 4: the translation was writable.
    public static let entryWritable: UInt64 = 1 << 4
    /// Bit 5: the translation was executable (supervisor-mode with mode-based execute control).
    public static let entryExecutable: UInt64 = 1 << 5
    /// Bit 6: the translation was executable for user-mode linear addresses
    /// (mode-based execute control).
    public static let entryUserExecutable: UInt64 = 1 << 6
    /// Bit 7: the guest linear address field is valid.
    public static let linearAddressValid: UInt64 = 1 << 7
    /// Bit 8: the access was to the translated linear address (not a paging-structure entry).
    public static let translatedAccess: UInt64 = 1 << 8
    /// Bit 9: the linear address is a user-mode address (advanced VM-exit information).
    public static let userModeLinearAddress: UInt64 = 1 << 9
    /// Bit 10: the linear address is writable (advanced VM-exit information).
    public static let writableLinearAddress: UInt64 = 1 << 10
    /// Bit 11: the linear address is execute-disabled (advanced VM-exit information).
    public static let executeDisabledLinearAddress: UInt64 = 1 << 11
    /// Bit 12: NMI unblocking due to IRET.
    public static let nmiUnblocking: UInt64 = 1 << 12

    /// Decodes the exit qualification `exitQualification` of an EPT violation
    /// at `guestPhysicalAddress`.
    @inlinable
    public init(exitQualification: UInt64, guestPhysicalAddress: GuestPhysicalAddress, modeBasedExecute: Bool = false) {
        self.exitQualification = exitQualification
        self.guestPhysicalAddress = guestPhysicalAddress
        self.modeBasedExecute = modeBasedExecute
    }

    @inlinable func has(_ bit: UInt64) -> Bool { exitQualification & bit != 0 }

    /// Whether the access was a data read (bit 0).
    @inlinable public var isRead: Bool { has(Self.readAccess) }
    /// Whether the access was a data write (bit 1).
    @inlinable public var isWrite: Bool { has(Self.writeAccess) }
    /// Whether the access was an instruction fetch (bit 2).
    @inlinable public var isFetch: Bool { has(Self.fetchAccess) }

    /// Whether the faulting linear address was a user-mode one: bits 7, 8
    /// and 9 set (bit 9 is defined only for an access to the translated
    /// linear address).
    @inlinable public var isUserModeLinearAddress: Bool {
        has(Self.linearAddressValid) && has(Self.translatedAccess) && has(Self.userModeLinearAddress)
    }

    /// Whether the access was to a guest paging-structure entry (bit 7 set,
    /// bit 8 clear): the guest's page walk, or its accessed/dirty update.
    @inlinable public var isGuestPagingStructureAccess: Bool {
        has(Self.linearAddressValid) && !has(Self.translatedAccess)
    }

    /// The permission bits the translation had (bits 3–5, and bit 6 under
    /// mode-based execute control), as exit-qualification bits.
    @inlinable public var entryPermissions: UInt64 {
        exitQualification & (Self.entryReadable | Self.entryWritable | Self.entryExecutable
            | (modeBasedExecute ? Self.entryUserExecutable : 0))
    }

    /// Whether the translation was present and only lacked the access.
    @inlinable public var isPermissionFault: Bool { entryPermissions != 0 }

    /// The access for the fault handler: a fetch wins over a write, a write
    /// over a read (a read-modify-write reports both). A fetch from a
    /// user-mode linear address under mode-based execute control is
    /// ``GuestAccess/userExecute``. A qualification with no access bit
    /// (which the processor does not report) decodes as a read.
    @inlinable public var access: GuestAccess {
        if isFetch { return modeBasedExecute && isUserModeLinearAddress ? .userExecute : .execute }
        if isWrite { return .write }
        return .read
    }

    /// The fault for ``ExtendedPageTableMMU/handleFault(_:vcpu:)`` in
    /// address space `addressSpace` (1 for a vCPU in SMM).
    @inlinable
    public func fault(addressSpace: Int = 0) -> GuestPageFault {
        GuestPageFault(address: guestPhysicalAddress, access: access, isPermissionFault: isPermissionFault,
                       addressSpace: addressSpace)
    }
}
