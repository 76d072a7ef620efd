/// What a guest access needed when it faulted on the second stage.
///
/// A value type; it takes no lock.
@frozen
public enum SecondStageAccess: UInt8, Hashable, Sendable {
    /// A data read.
    case read
    /// A data write.
    case write
    /// An instruction fetch at the guest's supervisor level (EL1; x86
    /// supervisor mode).
    case execute
    /// An instruction fetch at the guest's user level (EL0; x86 user mode).
    /// Backends without separate user execute rights treat it as ``execute``.
    case userExecute
}

/// A second-level translation fault as a VM exit reports it, in either
/// architecture: an EPT violation (decode its exit qualification with
/// `ExtendedPageTableViolation`) or a stage-2 abort (decode `ESR_EL2`,
/// `HPFAR_EL2` and `FAR_EL2` with `StageTwoAbortSyndrome`).
///
/// A value type; it takes no lock.
@frozen
public struct SecondStageFault: Hashable, Sendable {
    /// The faulting guest-physical address.
    public var address: GuestPhysicalAddress
    /// What the access needed.
    public var access: SecondStageAccess
    /// Whether a present leaf refused the access (EPT qualification bits
    /// 5:3 not all zero; a stage-2 permission or access-flag fault), rather
    /// than no leaf being there.
    public var isPermissionFault: Bool
    /// The address space (x86 SMM is address space 1; stage 2 has only 0).
    public var addressSpace: Int

    /// A fault at `address` for `access`.
    @inlinable
    public init(address: GuestPhysicalAddress, access: SecondStageAccess, isPermissionFault: Bool = false,
                addressSpace: Int = 0) {
        self.address = address
        self.access = access
        self.isPermissionFault = isPermissionFault
        self.addressSpace = addressSpace
    }
}
