import SLATCore
import Synchronization

/// Enabling dirty logging with eager page splitting (KVM's
/// `kvm_mmu_slot_apply_flags` order): flag the memslot (new faults map
/// small pages), split its huge leaves with the ``EagerSplitEngine``, then
/// let the backend protect it (``DirtyLogProtectionBackend``). With eager
/// splitting switched off (``isEagerSplitEnabled``), the huge leaves are
/// protected as they are and split one write fault at a time.
///
/// Lives in SLATSplit because the backends cannot import the engine.
///
/// Thread safety: every method may be called from any thread; runs are
/// serialized on the split cache (one split context, KVM's split caches
/// under `slots_lock`). Locking contract: the caller holds no MMU lock.
// @unchecked Sendable: the backend, lock and guest memory are Sendable
// classes; the split context (not Sendable) is only touched with
// `contextLock` held; the switch is an Atomic.
public final class EagerSplitDirtyLogging<Backend: DirtyLogProtectionBackend, Lock: ReaderWriterLock>: @unchecked Sendable {
    /// The engine (its policy's ``EagerSplitPolicy/isEnabled`` is the
    /// initial value of ``isEagerSplitEnabled``).
    public let engine: EagerSplitEngine<Backend, Lock>
    /// The VM's memslots.
    public let guestMemory: GuestMemory
    @usableFromInline let splitContext: PageTableContext
    @usableFromInline let contextLock = SpinLock()
    @usableFromInline let enabled: Atomic<Bool>

    /// Dirty logging for `backend`, whose MMU lock is `lock` (for the x86
    /// MMU: its own `lock`), over `guestMemory`. `splitReaderSlot` is the
    /// reclaimer slot the split walks use: one no vCPU uses.
    public init(
        backend: Backend, lock: Lock, guestMemory: GuestMemory, policy: EagerSplitPolicy = EagerSplitPolicy(),
        splitReaderSlot: Int
    ) {
        engine = EagerSplitEngine(backend: backend, lock: lock, policy: policy)
        self.guestMemory = guestMemory
        splitContext = PageTableContext(readerSlot: splitReaderSlot)
        enabled = Atomic(policy.isEnabled)
    }

    /// Whether enabling dirty logging splits eagerly (default on).
    public var isEagerSplitEnabled: Bool {
        get { enabled.load(ordering: .relaxed) }
        set { enabled.store(newValue, ordering: .relaxed) }
    }

    /// Starts dirty logging on memslot `id`: sets its
    /// `SLATCore/MemslotFlags/dirtyLogging` flag, splits its huge leaves
    /// eagerly unless that is switched off or `splitOnClear` (KVM's
    /// initially-all-set mode: split range by range in
    /// ``splitForDirtyLogClear(memslot:frames:)``), then protects it.
    ///
    /// A memslot that already logs is split again (nothing to do if it
    /// already is) and protected as its backend does for a second enable
    /// (the x86 MMU leaves its log as it is).
    ///
    /// - Returns: the split's report, or `nil` when nothing was split
    ///   eagerly (switched off, deferred, or refused at the minimum-free
    ///   threshold: the faults split then, as without the engine).
    /// - Throws: `SLATError/unknownMemslot(slot:)`, and the backend's
    ///   protection errors, with the flag restored.
    @discardableResult
    public func enableDirtyLogging(memslot id: UInt32, splitOnClear: Bool = false) throws(SLATError) -> EagerSplitReport? {
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        let wasLogging = slot.flags.contains(.dirtyLogging)
        try guestMemory.updateMemslotFlags(id: id, to: slot.flags.union(.dirtyLogging))
        var report: EagerSplitReport?
        do {
            if isEagerSplitEnabled && !splitOnClear && !slot.frames.isEmpty {
                report = try splitIfMemoryAllows(slot.frames)
            }
            try withContext { () throws(SLATError) in
                try engine.backend.protectForDirtyLogging(
                    memslot: slot, guestMemory: guestMemory, lock: engine.lock, context: splitContext)
                splitContext.pageCache.release(to: engine.backend.splitMemory)
            }
        } catch {
            if !wasLogging { try? guestMemory.updateMemslotFlags(id: id, to: slot.flags) }
            throw error
        }
        return report
    }

    /// Eagerly splits the part of `frames` inside memslot `id` before its
    /// dirty log is cleared there (KVM's clear-dirty-log path): only that
    /// range, and only when eager splitting is on.
    ///
    /// - Returns: the report, or `nil` when nothing was split (switched
    ///   off, no overlap, or the minimum-free threshold).
    /// - Throws: `SLATError/unknownMemslot(slot:)`,
    ///   `SLATError/dirtyLoggingNotEnabled(slot:)`.
    @discardableResult
    public func splitForDirtyLogClear(memslot id: UInt32, frames: GuestFrameRange) throws(SLATError) -> EagerSplitReport? {
        guard let slot = guestMemory.memslot(id: id) else { throw .unknownMemslot(slot: id) }
        guard slot.flags.contains(.dirtyLogging) else { throw .dirtyLoggingNotEnabled(slot: id) }
        guard isEagerSplitEnabled else { return nil }
        let start = max(frames.start.rawValue, slot.frames.start.rawValue)
        let end = min(frames.start.rawValue &+ frames.count, slot.frames.start.rawValue &+ slot.frames.count)
        guard start < end else { return nil }
        return try splitIfMemoryAllows(GuestFrameRange(start: GuestFrameNumber(start), count: end &- start))
    }

    /// Runs the engine; the minimum-free refusal becomes `nil`.
    func splitIfMemoryAllows(_ frames: GuestFrameRange) throws(SLATError) -> EagerSplitReport? {
        let memory = engine.backend.splitMemory
        if memory.freePageCount <= engine.policy.minimumFreePages { return nil }
        return try withContext { () throws(SLATError) -> EagerSplitReport in
            try engine.split(frames: frames, context: splitContext)
        }
    }

    func withContext<R>(_ body: () throws(SLATError) -> R) throws(SLATError) -> R {
        contextLock.lock()
        defer { contextLock.unlock() }
        return try body()
    }
}
