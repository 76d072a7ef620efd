#if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
/// A place inside SLATCore or a backend where a controlled scheduler
/// (SLATSim's `ControlledScheduler`) may hand the processor to another
/// thread. The points exist only in builds that define
/// `SLAT_EXPLORATION_HOOKS` (hosted debug builds, see Package.swift); a
/// release or Embedded build has none of them.
public enum ExplorationPoint: Sendable, Hashable {
    /// Before an attempt to take the MMU lock (either mode, try-locks too).
    case lockAcquire
    /// After a hold of the MMU lock was released.
    case lockRelease
    /// Before a reclaimer read section is entered.
    case readSectionEnter
    /// After a reclaimer read section was left.
    case readSectionLeave
    /// A waiting loop found it cannot go on yet (``SpinBackoff/wait()``, a
    /// grace-period wait): the thread waits for another one to act, and a
    /// scheduler must run something else.
    case spin
    /// A table entry is about to be loaded, stored or compare-and-exchanged
    /// (the walks' loads and the leaf-changing primitives, reported
    /// through `_explorationTableEntry()`).
    case tableEntry
    /// A pfn cache refresh resolved the host frame and is about to publish
    /// it (an invalidation may overtake the resolution here).
    case pfnCacheResolved
}
#endif

/// Reports `ExplorationPoint.tableEntry` in hosted debug builds; compiles
/// to nothing elsewhere. Called right before a load, store or
/// compare-and-exchange of a table entry that another thread or the
/// hardware may access at the same time, so that a controlled scheduler
/// can switch threads between an operation's read of an entry and its
/// write (one line at each site, no `#if` there).
@inlinable @inline(__always)
public func _explorationTableEntry() {
    #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
    ExplorationHooks.reached(.tableEntry)
    #endif
}
