import SLATArm64
import SLATCore

extension StageTwoPageTable: DirtyLogProtectionBackend {
    /// Write-protects the memslot's range (KVM/arm64's
    /// `kvm_mmu_wp_memory_region`): inside an invalidation of its frames,
    /// so that a fault that resolved before the flag changed retries instead
    /// of installing a writable block after the pass, under `lock` held
    /// exclusively; the invalidations are completed before the lock is
    /// released. The next write to each page faults and the stage-2 fault
    /// handler grants write access page by page.
    ///
    /// - Throws: ``SLATError/outOfTableMemory(needed:available:)`` when a
    ///   block straddling the slot's ends needs a split and the memory has
    ///   no page; range errors for a slot beyond the IPA size.
    public func protectForDirtyLogging<Lock: ReaderWriterLock>(
        memslot: Memslot, guestMemory: GuestMemory, lock: Lock, context: PageTableContext
    ) throws(SLATError) {
        let frames = memslot.frames
        // Outside the lock: a block straddling each end may need its tables.
        try context.pageCache.topUp(from: table.memory, toAtLeast: 2 * format.rootLevel)
        let tracker = guestMemory.invalidations
        tracker.beginInvalidation(frames)
        defer { tracker.endInvalidation(frames) }
        try lock.withExclusive { () throws(SLATError) in
            var batch = TLBFlushBatch()
            do throws(SLATError) {
                try writeProtect(frames.physicalRange, mode: .exclusive, context: context, batch: &batch)
            } catch {
                settle(batch, mode: .exclusive)
                throw error
            }
            settle(batch, mode: .exclusive)
        }
    }
}
