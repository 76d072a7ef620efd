import SLATCore

/// Intel EPT (extended page tables): the second-level format of VMX, as KVM's
/// x86 TDP MMU uses it.
///
/// Geometry: 4 KiB granule, 9 index bits per level, one root table, 4-level
/// (48-bit guest-physical) or 5-level (57-bit) walks, leaves at heights 0, 1
/// and 2 (4 KiB pages, 2 MiB and 1 GiB large pages). Heights are SLAT's level
/// numbers; ``architecturalLevel(_:)`` gives the SDM's (height + 1: level 1 is
/// the page table, level 4 the PML4, level 5 the PML5).
///
/// Entry encoding decisions (see `Docs/formats.md`):
/// - **Present** means bits 2:0 (and bit 10 with mode-based execute control)
///   are not all zero, *or* the "MMU present" bit 11 is set. Every entry SLAT
///   creates sets bit 11, so a leaf that grants no access (as KVM makes for
///   access tracking) is still present to software, while hardware faults on it.
/// - The **frozen** entry is `0x1a0`: no access bits and no bit 11, so it is
///   not present to hardware nor software. It is KVM's `0x5a0` without bit 10,
///   which mode-based execute control turns into an access bit.
/// - **Table entries** are `R|W|X` (`0x7`) + bit 11 + the child's address; no
///   memory type (hardware ignores bits 6:3 of a non-leaf entry).
/// - **Write without read** is an EPT misconfiguration: ``validate(_:)``
///   rejects it and ``changingPermissions(ofLeaf:grant:revoke:)`` never
///   produces it (a leaf left without read loses write too).
/// - **Execute-only** (X without R) is allowed; hardware accepts it only when
///   `IA32_VMX_EPT_VPID_CAP` bit 0 (execute-only translations) is set, which
///   the caller must check.
/// - Without mode-based execute control (MBEC) bit 2 grants execution at every
///   privilege, so a permission set with only one of
///   `Permissions/executePrivileged` and `Permissions/executeUser` is
///   unsupported. With MBEC bit 2 is supervisor and bit 10 user execution.
/// - Bits 62:52 are `LeafAttributes/softwareBits` 0...10. They are ignored
///   by hardware only while the VMX controls that give some of them a meaning
///   (sub-page write permissions, guest-paging verification, paging-write
///   access, supervisor shadow stacks) are off, as KVM also assumes.
@frozen
public struct ExtendedPageTableFormat: Hashable, Sendable {
    /// Height of the root table: 3 for a 4-level walk, 4 for 5-level.
    public let rootLevel: Int
    /// Guest-physical address bits translated: 48 (4-level) or 57 (5-level).
    public let inputAddressBits: Int
    /// Host-physical address bits (the processor's MAXPHYADDR), 36 to 52.
    public let outputAddressBits: Int
    /// Whether mode-based execute control for EPT is enabled (secondary
    /// processor-based VM-execution control bit 22): bit 2 is then
    /// supervisor-mode and bit 10 user-mode execute permission.
    public let modeBasedExecute: Bool
    /// Whether the EPTP this format produces enables hardware accessed and
    /// dirty flags (EPTP bit 6). Entries are encoded the same either way.
    public let accessedDirtyEnabled: Bool
    /// Whether leaves set the ignore-PAT bit 6, making the EPT memory type the
    /// effective one instead of combining it with the guest's PAT type.
    /// Off by default: the guest's PAT is honoured, as current KVM does.
    public let ignoreGuestPAT: Bool

    /// The bits any of which makes an entry present: bits 2:0, bit 11, and
    /// bit 10 with mode-based execute control.
    @usableFromInline let presentMask: UInt64
    /// The bit that grants user-mode execution: bit 10 with MBEC, else bit 2.
    @usableFromInline let userExecuteBit: UInt64
    /// The constant part of every leaf: bit 11 and, if chosen, ignore-PAT.
    @usableFromInline let leafTemplate: UInt64
    /// All ones with mode-based execute control, else zero: lets the
    /// permission encoding choose between its two forms with masks instead
    /// of branches, so that callers' loops hoist it.
    @usableFromInline let modeBasedExecuteMask: UInt64

    /// An EPT format.
    ///
    /// - Parameters:
    ///   - levelCount: walk levels, 4 or 5 (EPTP page-walk length).
    ///   - outputAddressBits: the host's physical address width, 36...52.
    ///   - modeBasedExecute: whether mode-based execute control is enabled.
    ///   - accessedDirtyEnabled: whether the EPTP enables accessed/dirty flags.
    ///   - ignoreGuestPAT: whether leaves set the ignore-PAT bit.
    /// - Throws: `SLATError/unsupportedLevelCount(_:)` or
    ///   `SLATError/unsupportedOutputAddressSize(bits:)`.
    @inlinable
    public init(
        levelCount: Int = 4,
        outputAddressBits: Int = 52,
        modeBasedExecute: Bool = false,
        accessedDirtyEnabled: Bool = true,
        ignoreGuestPAT: Bool = false
    ) throws(SLATError) {
        guard levelCount == 4 || levelCount == 5 else { throw .unsupportedLevelCount(levelCount) }
        guard (36...52).contains(outputAddressBits) else {
            throw .unsupportedOutputAddressSize(bits: outputAddressBits)
        }
        self.rootLevel = levelCount - 1
        self.inputAddressBits = levelCount == 5 ? 57 : 48
        self.outputAddressBits = outputAddressBits
        self.modeBasedExecute = modeBasedExecute
        self.accessedDirtyEnabled = accessedDirtyEnabled
        self.ignoreGuestPAT = ignoreGuestPAT
        self.presentMask = ExtendedPageTableBits.readWriteExecute | ExtendedPageTableBits.mmuPresent
            | (modeBasedExecute ? ExtendedPageTableBits.userExecute : 0)
        self.userExecuteBit = modeBasedExecute ? ExtendedPageTableBits.userExecute : ExtendedPageTableBits.execute
        self.leafTemplate = ExtendedPageTableBits.mmuPresent | (ignoreGuestPAT ? ExtendedPageTableBits.ignorePAT : 0)
        self.modeBasedExecuteMask = modeBasedExecute ? ~0 : 0
    }
}
