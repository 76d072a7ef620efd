import SLATCore

/// How the simulated CPU treats the flags and corner cases the
/// `PageTableFormat` protocol leaves to the hardware and its configuration.
@frozen
public struct HardwareProfile: Hashable, Sendable {
    /// What the CPU does with a leaf whose accessed flag is clear.
    @frozen
    public enum AccessFlagBehaviour: Hashable, Sendable {
        /// Nothing (EPT with A/D flags off: bit 8 is ignored).
        case ignored
        /// An access-flag fault (stage 2 without `VTCR_EL2.HA`).
        case faultWhenClear
        /// The CPU sets it atomically (EPT A/D, stage 2 with HA).
        case setByHardware
    }

    /// Accessed flag of leaves.
    public var accessFlag: AccessFlagBehaviour
    /// Whether a write sets the leaf's dirty flag atomically (EPT A/D; the
    /// format must have a dirty flag). A cached entry whose dirty flag was
    /// clear re-walks on a write, as processors do.
    public var setsDirtyFlag: Bool
    /// Whether the accessed flag is also set in every table entry the walk
    /// uses (EPT A/D does; the same bit as the leaf's). Off by default, as
    /// software seldom looks at it and it makes table entries change under
    /// software that compares them.
    public var setsAccessedFlagInTables: Bool
    /// Whether a leaf that grants no permission at all is *not present* to
    /// the CPU (EPT: bits 2:0 all zero) rather than present with a
    /// permission fault (stage 2).
    public var permissionlessLeafIsNotPresent: Bool
    /// Whether a cached translation that does not grant an access stays in
    /// the TLB and raises the permission fault itself, without a new walk.
    /// The Arm ARM's TLB rules (chapter D8, "TLB behavior") never cache an
    /// entry that causes a Translation, Address size or Access flag fault,
    /// but may cache one that causes a Permission fault, so a vCPU whose
    /// cached entry is less permissive than the tables faults until the
    /// entry is invalidated (the livelock KVM commit be097997a273 fixed). Intel processors drop the entry and re-walk before
    /// reporting an EPT violation.
    public var keepsEntriesFailingPermissionChecks: Bool

    /// A profile.
    @inlinable
    public init(accessFlag: AccessFlagBehaviour, setsDirtyFlag: Bool, setsAccessedFlagInTables: Bool = false,
                permissionlessLeafIsNotPresent: Bool, keepsEntriesFailingPermissionChecks: Bool = false) {
        self.accessFlag = accessFlag
        self.setsDirtyFlag = setsDirtyFlag
        self.setsAccessedFlagInTables = setsAccessedFlagInTables
        self.permissionlessLeafIsNotPresent = permissionlessLeafIsNotPresent
        self.keepsEntriesFailingPermissionChecks = keepsEntriesFailingPermissionChecks
    }

    /// An Intel CPU walking EPT, with or without the EPTP's A/D enable.
    @inlinable
    public static func intelEPT(accessedDirtyEnabled: Bool, setsAccessedFlagInTables: Bool = false) -> HardwareProfile {
        HardwareProfile(accessFlag: accessedDirtyEnabled ? .setByHardware : .ignored, setsDirtyFlag: accessedDirtyEnabled,
                        setsAccessedFlagInTables: accessedDirtyEnabled && setsAccessedFlagInTables,
                        permissionlessLeafIsNotPresent: true)
    }

    /// An Arm CPU walking stage 2, with or without `VTCR_EL2.HA`. By
    /// default it keeps a cached entry that fails a permission check (see
    /// ``keepsEntriesFailingPermissionChecks``), as Arm CPUs may.
    @inlinable
    public static func armStageTwo(hardwareAccessFlag: Bool, keepsEntriesFailingPermissionChecks: Bool = true) -> HardwareProfile {
        HardwareProfile(accessFlag: hardwareAccessFlag ? .setByHardware : .faultWhenClear, setsDirtyFlag: false,
                        permissionlessLeafIsNotPresent: false,
                        keepsEntriesFailingPermissionChecks: keepsEntriesFailingPermissionChecks)
    }

    /// The profile a format implies: formats with break-before-make behave
    /// as Arm stage 2, the others as Intel EPT; hardware flag updates as
    /// `PageTableFormat/hardwareUpdatesAccessFlags` says.
    @inlinable
    public init<Format: PageTableFormat>(deriving format: Format) {
        if format.requiresBreakBeforeMake {
            self = .armStageTwo(hardwareAccessFlag: format.hardwareUpdatesAccessFlags)
        } else {
            self = .intelEPT(accessedDirtyEnabled: format.hardwareUpdatesAccessFlags)
        }
    }
}
