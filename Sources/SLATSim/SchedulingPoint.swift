/// Where a thread under a ``ControlledScheduler`` hands control back: the
/// scheduler may then run any enabled thread before this one goes on.
public enum SchedulingPoint: Sendable, Hashable {
    /// A table page's entries are about to be read or changed
    /// (`TableMemory.entries(at:)`: every level of every software walk).
    case tableAccess
    /// One table entry is about to be loaded, stored or
    /// compare-and-exchanged by the library (a walk's read of an entry, a
    /// leaf-changing primitive's write). The library's own such points are
    /// taken only by a scheduler with
    /// ``ControlledScheduler/yieldsAtTableEntries`` on (hosted debug
    /// builds); an explicit `yield(at: .tableEntry)` always yields.
    case tableEntry
    /// A live-entry count is about to change or be read.
    case entryCount
    /// A table page is about to be allocated.
    case tableAllocation
    /// A table page is about to be freed.
    case tableFree
    /// A TLB invalidation is about to be issued.
    case tlbInvalidation
    /// Before an attempt to take a lock.
    case lockAcquire
    /// After a lock was released.
    case lockRelease
    /// Before a reclaimer read section is entered.
    case readSectionEnter
    /// After a reclaimer read section was left.
    case readSectionLeave
    /// A simulated vCPU access (TLB lookup, walk, fill, accessed/dirty
    /// update) is about to run as one hardware step.
    case hardwareAccess
    /// A host invalidation (mmu-notifier start or end) is about to be sent.
    case notifier
    /// A memslot is about to be added, removed or changed.
    case memslot
    /// A point a scenario names itself.
    case custom(String)
    /// The thread cannot go on until another thread acts (a spin-wait
    /// iteration): it is not scheduled again until some other thread has
    /// taken a step.
    case spin
}
