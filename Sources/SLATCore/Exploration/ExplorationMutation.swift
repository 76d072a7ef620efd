#if SLAT_EXPLORATION_HOOKS
/// A known defect that a hosted debug build can switch back on, one thread
/// at a time, so that a test can show the interleaving explorer catches it
/// (mutation testing of the explorer, see Docs/simulation.md). Each case
/// names the fix it undoes; none exists in release or Embedded builds.
public enum ExplorationMutation: String, Sendable, Hashable, CaseIterable {
    /// The table→block merge (break-before-make formats) stores the block
    /// without any invalidation of the range it replaces (the merge's
    /// VMID-wide flush dropped; Docs/stage2-mmu.md, "The map walk").
    case mergeWithoutInvalidation
    /// The merge invalidates only the anchor's first page, by address at
    /// the smallest level, instead of the block's range or the whole VMID.
    case mergeInvalidatesFirstPageOnly
    /// A shared-mode unmap stores zero into the entries it empties and
    /// defers their invalidation to the batch, so a concurrent fault can
    /// fill an emptied entry before the flush (the order before KVM's
    /// freeze/flush/clear, Docs/concurrency.md).
    case sharedUnmapDefersInvalidation
    /// The stage-2 fault handler returns from a permission fault that finds
    /// nothing to change without invalidating the faulting IPA (before KVM
    /// commit be097997a273, "Always invalidate TLB for stage-2 permission
    /// faults").
    case spuriousPermissionFaultWithoutInvalidation
}
#endif
