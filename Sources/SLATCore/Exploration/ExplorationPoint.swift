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
}
#endif
