/// Bit positions and masks of an EPT paging-structure entry (Intel SDM vol. 3,
/// "EPT Translation Mechanism"), plus the ignored bits KVM gives meaning to.
///
/// Every mask is an `@inlinable` computed property so that it folds to a
/// constant in the code that uses it, in this module and in clients.
public enum ExtendedPageTableBits {
    /// Bit 0: read access.
    @inlinable public static var read: UInt64 { 1 << 0 }
    /// Bit 1: write access. Set without ``read`` it is an EPT misconfiguration.
    @inlinable public static var write: UInt64 { 1 << 1 }
    /// Bit 2: instruction fetch; with mode-based execute control, supervisor-mode fetch only.
    @inlinable public static var execute: UInt64 { 1 << 2 }
    /// Bits 2:0: the permission bits whose being all zero makes an entry
    /// not present to hardware (without mode-based execute control).
    @inlinable public static var readWriteExecute: UInt64 { 0b111 }
    /// Bit position of the memory-type field (bits 5:3, leaves only).
    @inlinable public static var memoryTypeShift: UInt64 { 3 }
    /// Bits 5:3: the EPT memory type of a leaf.
    @inlinable public static var memoryType: UInt64 { 0b111 << 3 }
    /// Bit 6: ignore the guest's PAT memory type (leaves only).
    @inlinable public static var ignorePAT: UInt64 { 1 << 6 }
    /// Bit 7: page size; set in a 2 MiB or 1 GiB leaf, clear in a table entry.
    @inlinable public static var pageSize: UInt64 { 1 << 7 }
    /// Bit 8: accessed (set by hardware when EPTP enables accessed/dirty flags).
    @inlinable public static var accessed: UInt64 { 1 << 8 }
    /// Bit 9: dirty (leaves only; set by hardware when EPTP enables accessed/dirty flags).
    @inlinable public static var dirty: UInt64 { 1 << 9 }
    /// Bit 10: user-mode instruction fetch (only with mode-based execute control).
    @inlinable public static var userExecute: UInt64 { 1 << 10 }
    /// Bit 11 (ignored by hardware): KVM's "MMU present" bit. SLAT sets it in
    /// every table and leaf entry it creates, so that a leaf without any
    /// access right (for example one made inaccessible for access tracking)
    /// is still present to software.
    @inlinable public static var mmuPresent: UInt64 { 1 << 11 }
    /// Bits 51:12: the physical address of the page, or of the next table.
    @inlinable public static var address: UInt64 { 0x000F_FFFF_FFFF_F000 }
    /// Bit position of the software-available field (bits 62:52).
    @inlinable public static var softwareShift: UInt64 { 52 }
    /// Width of the software-available field in bits.
    @inlinable public static var softwareWidth: Int { 11 }
    /// Bits 62:52: software-available bits, `LeafAttributes/softwareBits` 0 to 10.
    @inlinable public static var software: UInt64 { 0x7FF << 52 }
    /// Bit 57 (software bit 5): KVM's host-writable bit — the host mapping of the page is writable.
    @inlinable public static var hostWritable: UInt64 { 1 << 57 }
    /// Bit 58 (software bit 6): KVM's MMU-writable bit — the MMU allows the
    /// entry to be made writable (it is not write-tracked).
    @inlinable public static var mmuWritable: UInt64 { 1 << 58 }
    /// Bit 54 (software bit 2): the read bit of an access-tracked leaf, saved
    /// while bits 2:0 are cleared (KVM's saved access-track bits, read part).
    @inlinable public static var savedRead: UInt64 { 1 << 54 }
    /// Bit 55 (software bit 3): the leaf is *access-tracked*: its access bits
    /// were cleared by aging (A/D flags off) so that the next access faults
    /// and the fast page fault restores them from the saved bits.
    @inlinable public static var accessTracked: UInt64 { 1 << 55 }
    /// Bit 56 (software bit 4): the execute bit of an access-tracked leaf, saved.
    @inlinable public static var savedExecute: UInt64 { 1 << 56 }
    /// Bit 60 (software bit 8): the user-execute bit (bit 10, mode-based
    /// execute control) of an access-tracked leaf, saved.
    @inlinable public static var savedUserExecute: UInt64 { 1 << 60 }
    /// Bit 59 (software bit 7), table entries only: the table replaced (or
    /// stands for) a huge leaf that an instruction fetch forced down to small
    /// pages under the NX-huge-page policy; faults must not put a huge leaf
    /// back over it, only the recovery pass may.
    @inlinable public static var nxHugePageSplit: UInt64 { 1 << 59 }
    /// Bit 63: suppress #VE — an EPT violation on this entry is not turned
    /// into a virtualization exception.
    @inlinable public static var suppressVE: UInt64 { 1 << 63 }
}
