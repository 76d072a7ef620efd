import SLATCore

/// The cache maintenance a stage-2 MMU needs from the VMM (the analogue of
/// the `dcache_clean_inval_poc` / `icache_inval_pou` hooks of KVM's
/// `kvm_pgtable_mm_ops`).
///
/// A guest may run with its caches off, or see memory through a
/// non-cacheable alias, so a page the host wrote through its cacheable
/// mapping must be cleaned to the Point of Coherency before the guest can
/// reach it; and instructions the host wrote must be invalidated from the
/// instruction cache before the guest may execute them. ``StageTwoPageTable``
/// calls these hooks before it makes such a mapping visible, and skips them
/// when the CPU makes them unnecessary: ``forcesWriteBack`` (FEAT_S2FWB) for
/// the data cache, ``instructionCacheIsCoherent`` (`CTR_EL0.DIC`) for the
/// instruction cache.
///
/// Locking contract: the hooks may be called from any thread, with the MMU
/// lock held in either mode; they must not take the MMU lock.
public protocol CacheMaintenance: AnyObject, Sendable {
    /// Whether stage 2 forces write-back cacheability (`HCR_EL2.FWB`): then
    /// the guest never sees memory uncached and no data-cache clean is needed.
    var forcesWriteBack: Bool { get }
    /// Whether the instruction cache is coherent with the data cache
    /// (`CTR_EL0.DIC`): then no instruction-cache invalidation is needed.
    var instructionCacheIsCoherent: Bool { get }
    /// Cleans (and invalidates) the data cache to the Point of Coherency for
    /// the host-physical bytes `[output, output + size)`.
    func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64)
    /// Invalidates the instruction cache to the Point of Unification for the
    /// host-physical bytes `[output, output + size)`.
    func invalidateInstructionCache(_ output: HostPhysicalAddress, size: UInt64)
}

extension CacheMaintenance {
    /// The maintenance a new leaf mapping `[output, output + size)` with
    /// `attributes` needs before it becomes visible: a data-cache clean for
    /// a cacheable (normal write-back or write-through) mapping unless stage 2 forces
    /// write-back, an instruction-cache invalidation for an executable one
    /// unless the instruction cache is coherent.
    @inlinable
    public func prepare(_ output: HostPhysicalAddress, size: UInt64, attributes: LeafAttributes) {
        if (attributes.memoryType == .writeBack || attributes.memoryType == .writeThrough) && !forcesWriteBack {
            cleanDataCacheToPointOfCoherency(output, size: size)
        }
        if !attributes.permissions.intersection(.execute).isEmpty && !instructionCacheIsCoherent {
            invalidateInstructionCache(output, size: size)
        }
    }
}
