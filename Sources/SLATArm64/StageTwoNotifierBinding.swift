import SLATCore

/// The mmu-notifier side of a stage-2 MMU: on every guest invalidation
/// `start` of its `GuestMemory` (host unmap, migration, protection change,
/// memslot removal or read-only), the bound ``StageTwoPageTable`` zaps the
/// range under the MMU lock held exclusively, invalidating the TLB before
/// the listener returns (rule 6: after `start` no translation of the range
/// is used). Faults meanwhile see the tracker's in-flight range and retry.
/// At the `end` of a memslot's removal its dirty log (if any) is dropped.
///
/// Keep the binding alive as long as the VM runs; ``cancel()`` (or dropping
/// it) stops listening.
///
/// Thread-safe: the listener runs on the thread making the host change; the
/// zap context it uses is touched only with the MMU lock held exclusively.
public final class StageTwoNotifierBinding<Memory: TableMemory, T: TLB, Caches: CacheMaintenance, Lock: ReaderWriterLock>: Sendable {
    /// The guest memory listened to.
    public let guestMemory: GuestMemory
    let token: ListenerToken

    /// Binds `pageTable` to `guestMemory`'s invalidations, taking `lock`
    /// (the VM's MMU lock) exclusively for each zap. `readerSlot` is the
    /// reclaimer slot of the zap context (exclusive walks do not use it,
    /// but it must exist).
    public init(pageTable: StageTwoPageTable<Memory, T, Caches>, guestMemory: GuestMemory, lock: Lock, readerSlot: Int = 0) {
        let box = ZapContext(PageTableContext(readerSlot: readerSlot))
        self.guestMemory = guestMemory
        self.token = guestMemory.addListener { event in
            switch event.phase {
            case .start:
                lock.withExclusive {
                    pageTable.zap(event.range, context: box.context)
                }
            case .end:
                // A removed memslot takes its dirty log with it (KVM frees
                // the dirty bitmap with the memslot): a memslot added again
                // under the same id starts without a log.
                if event.cause == .memslotRemoved { pageTable.dirtyLogs.stop(memslot: event.memslot) }
            }
        }
    }

    deinit { guestMemory.removeListener(token) }

    /// Stops listening (an event being delivered may still arrive).
    public func cancel() { guestMemory.removeListener(token) }
}

/// The page-table context the notifier listener zaps with.
// @unchecked Sendable: the context is only used inside the listener with the
// VM's MMU lock held exclusively, so no two threads ever touch it at once.
final class ZapContext: @unchecked Sendable {
    let context: PageTableContext
    init(_ context: PageTableContext) { self.context = context }
}

extension StageTwoPageTable {
    /// Removes every translation of the guest frames `frames`, widened to
    /// whole granule pages and to the whole leaves straddling its ends (so
    /// nothing is split and no table memory is needed), with its TLB
    /// invalidation completed before returning. The caller holds the MMU
    /// lock exclusively. Frames beyond the IPA size are ignored; after
    /// ``destroy()`` it does nothing.
    @inlinable
    public func zap(_ frames: GuestFrameRange, context: PageTableContext) {
        if isDestroyed { return }
        let limit = format.inputAddressSpaceSize
        let physical = frames.physicalRange
        var start = physical.start.alignedDown(to: format.pageSize).rawValue
        guard start < limit, !frames.isEmpty else { return }
        var end = min(limit, (physical.end.rawValue &+ format.pageSize &- 1) & ~(format.pageSize &- 1))
        if let first = table.translate(GuestPhysicalAddress(start)).translation {
            start = first.leafAddress.rawValue
        }
        if let last = table.translate(GuestPhysicalAddress(end &- 1)).translation {
            end = last.leafAddress.rawValue &+ last.size
        }
        // Cannot fail: the range is valid and aligned, and its ends lie on
        // leaf boundaries, so no split (no page) is needed.
        do {
            try unmap(GuestPhysicalRange(start: GuestPhysicalAddress(start), end: GuestPhysicalAddress(end)),
                      mode: .exclusive, context: context)
        } catch {
            preconditionFailure("a zap of whole leaves needs no table memory")
        }
    }
}
