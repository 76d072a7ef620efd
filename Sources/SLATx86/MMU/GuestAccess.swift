/// The kind of guest access that caused an EPT violation (exit
/// qualification bits 0–2).
@frozen
public enum GuestAccess: UInt8, Sendable, Hashable {
    /// A data read.
    case read
    /// A data write.
    case write
    /// An instruction fetch by supervisor-mode code (with mode-based execute
    /// control it needs bit 2; without, bit 2 governs every fetch).
    case execute
    /// An instruction fetch by user-mode code: with mode-based execute
    /// control it needs bit 10 (user-execute), without it bit 2.
    case userExecute
}

extension ExtendedPageTableFormat {
    /// The entry bit `access` needs: read (bit 0), write (bit 1), execute
    /// (bit 2), or user-execute (bit 10 with mode-based execute control,
    /// else bit 2).
    @inlinable
    public func permissionBit(for access: GuestAccess) -> UInt64 {
        switch access {
        case .read: ExtendedPageTableBits.read
        case .write: ExtendedPageTableBits.write
        case .execute: ExtendedPageTableBits.execute
        case .userExecute: userExecuteBit
        }
    }
}

/// An EPT violation as the fault handler receives it: the guest-physical
/// address, the access, and whether the translation was present but did
/// not allow the access (exit qualification bits 3–5 not all clear), which
/// is when the lockless fast page fault can fix it.
@frozen
public struct GuestPageFault: Sendable, Hashable {
    /// The faulting guest-physical address.
    public var address: GuestPhysicalAddress
    /// The access that faulted.
    public var access: GuestAccess
    /// Whether the entry was present and only lacked the permission.
    public var isPermissionFault: Bool
    /// The address space (0, or 1 for SMM) whose root the vCPU uses.
    public var addressSpace: Int

    /// A fault description.
    @inlinable
    public init(address: GuestPhysicalAddress, access: GuestAccess, isPermissionFault: Bool = false, addressSpace: Int = 0) {
        self.address = address
        self.access = access
        self.isPermissionFault = isPermissionFault
        self.addressSpace = addressSpace
    }
}

import SLATCore
