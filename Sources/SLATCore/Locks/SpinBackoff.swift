#if canImport(Glibc)
import Glibc
#endif

/// The waiting strategy of the spinning locks: busy-wait a growing number of
/// iterations, then (hosted builds only) give the processor away.
///
/// Spinning alone is the right strategy on a bare-metal hypervisor, where a
/// lock holder is never descheduled. A hosted process may have more threads
/// than cores; there a holder can be preempted and pure spinning would burn
/// the waiter's whole time slice, so after a while the hosted build calls
/// `sched_yield()`.
///
/// Locking contract: a value owned by one waiting thread; it takes no lock.
public struct SpinBackoff: Sendable {
    @usableFromInline var spins: UInt32 = 1

    /// The spin count after which a hosted build yields instead of spinning.
    @usableFromInline static var yieldThreshold: UInt32 { 1 << 10 }

    /// A fresh backoff that starts with the shortest wait.
    @inlinable
    public init() {}

    /// Waits a little, longer on each call.
    @inlinable
    public mutating func wait() {
        #if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
        // Under a controlled scheduler: let the thread being waited for run.
        if ExplorationHooks.spin() { return }
        #endif
        if spins >= Self.yieldThreshold {
            #if canImport(Glibc)
            _ = sched_yield()
            return
            #endif
        } else {
            spins &<<= 1
        }
        var remaining = spins
        while remaining > 0 {
            remaining &-= 1
            spinLoopHint()
        }
    }
}

/// An empty function the optimiser cannot remove, so that a busy-wait loop is
/// not folded away. (Swift exposes no portable pause instruction.)
@inline(never)
@usableFromInline
func spinLoopHint() {}
