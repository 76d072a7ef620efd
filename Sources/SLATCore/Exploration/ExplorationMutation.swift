#if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
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
    /// The stage-2 fast permission fault gives write access back without
    /// checking the leaf's MMU-writable bit: a write removed by the VMM (or
    /// for a read-only memslot) is restored without the MMU lock
    /// (Docs/stage2-mmu.md, "The fast permission fault").
    case fastPermissionFaultIgnoresMMUWritable
    /// The stage-2 fast permission fault writes the writable leaf with a
    /// plain store instead of one compare-and-exchange against the value it
    /// read: a leaf that a lock holder removed or changed meanwhile (zap,
    /// harvest) is brought back (rule 1 of Docs/concurrency.md).
    case fastPermissionFaultPlainStore
    /// ``EpochReclaimer/retire(_:)`` frees the pages at once instead of
    /// after a grace period: a lockless or shared walker still inside its
    /// read section may read a freed table (rule 2 of Docs/concurrency.md).
    case retiredTablesFreedWithoutGracePeriod
    /// The x86 fault path installs its leaf without checking that no host
    /// invalidation began since it resolved the host page (KVM's
    /// `mmu_invalidate_retry_gfn`): a fault racing an mmu-notifier remap
    /// can map the old host page after the notifier returned.
    case faultIgnoresInvalidationRetry
    /// The x86 TDP MMU removes or cleans a writable leaf whose dirty bit is
    /// set without marking the dirty-bit-mode log (KVM's
    /// `handle_changed_spte_dirty_log`): the write is lost to the log.
    case removedDirtyLeafNotHarvested
    /// The x86 zap decides once, before it starts, whether removed leaves'
    /// dirty bits are harvested: after it yields the lock to a dirty-bit
    /// log being enabled, the leaves it removes lose their new dirty bits
    /// (Docs/x86-tdp-mmu.md, "One accounting point": the log is looked up
    /// at the change).
    case zapDecidesHarvestAtStart
    /// The x86 mmu-notifier zap walks the current roots only, not replaced
    /// roots a vCPU that has not reloaded still uses (Docs/x86-tdp-mmu.md,
    /// "Root lifetime"; rule 6 of Docs/concurrency.md across roots).
    case notifierZapsCurrentRootsOnly
    /// The x86 TDP MMU retires a subtree under the exclusive lock (a
    /// replaced root emptied, NX or huge-page recovery) without harvesting
    /// its leaves' dirty bits into a dirty-bit-mode log (KVM's
    /// `handle_removed_pt` accounts every leaf it drops).
    case retiredSubtreeNotHarvested
    /// The x86 zap, under the exclusive lock, removes a leaf with a plain
    /// store and accounts the value its walk read before, instead of
    /// exchanging it: a dirty bit the hardware set in between is lost
    /// (rule 5 of Docs/concurrency.md; KVM's TDP MMU writes SPTEs with
    /// volatile bits by atomic exchange for this reason, "KVM: x86/mmu: Use
    /// atomic XCHG to write TDP MMU SPTEs with volatile bits").
    case zapStoresOverVolatileLeaf
    /// A pfn cache refresh, whatever its strategy, uses the legacy retry:
    /// it resolves again while *any* invalidation is in flight or the
    /// invalidation sequence moved (KVM's gfn-to-pfn cache before its
    /// range-based rework), so unrelated invalidations that keep one in
    /// flight starve it (a livelock).
    case pfnCacheLegacyRetry
    /// x86 NX huge-page recovery as it was before both of its fixes: it
    /// also zaps splits inside a memslot that logs dirty pages, and it
    /// retires the split table without harvesting its leaves' dirty bits
    /// (like ``retiredSubtreeNotHarvested``, for every subtree the
    /// scenario's threads retire), so writes made since the last harvest
    /// are lost to the dirty-bit log.
    case nxRecoveryDropsDirtyBits
    /// x86 teardown as it was before its fix, both guards gone: teardown
    /// frees the emptied root pages itself after the grace period (the
    /// MMU's deinit then does not free them again), and the
    /// mmu-notifier's zap does not check whether the MMU was torn down, so
    /// an event already being delivered when teardown unregistered the
    /// listener zaps through a freed root.
    case teardownFreesRootsUnderNotifier
    /// x86 dirty logging as it was before both of its fixes for a removed
    /// memslot: the removal's notifier `end` does not drop the memslot's
    /// log, and `enableDirtyLogging` keeps any log it finds for the id,
    /// so a memslot added again elsewhere under the same id keeps logging
    /// (and harvesting) the old memslot's frames: its writes are lost.
    case removedMemslotKeepsDirtyLog
    /// `clearDirtyLog` of a log with manual protection clears the marks but
    /// does not write-protect the pages again (both backends; x86 in
    /// write-protect mode): a page written, reported and cleared stays
    /// writable, so its next write is never logged (`KVM_CLEAR_DIRTY_LOG`
    /// re-protects what it clears).
    case manualClearSkipsReprotection
}
#endif
