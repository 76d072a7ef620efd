/// How ``PfnCache/refresh(length:)`` decides whether the host frame it
/// resolved may be published, and what it does while invalidations are in
/// flight. Selectable per cache so that users and `slat-bench` can compare.
///
/// Both are correct: a refresh never publishes a frame that an invalidation
/// started before the publication has taken away. They differ in progress.
///
/// A value type; it takes no lock.
public enum PfnCacheRefreshStrategy: String, Hashable, Sendable, CaseIterable {
    /// KVM's original retry loop: snapshot the invalidation sequence, resolve,
    /// and start again while *any* invalidation is in flight anywhere or the
    /// sequence moved. It spins (no waiting), so a storm of unrelated
    /// invalidations that keeps one in flight at all times starves it for as
    /// long as the storm lasts (KVM's gfn-to-pfn cache, virt/kvm/pfncache.c).
    case legacy = "legacy"
    /// Range tracking: retry only when the cache's own address is inside
    /// the merged range of the in-flight invalidations, and then *wait*
    /// (sleeping until the in-flight count drops to zero) instead of spinning
    /// and resolving again. A flag armed before the resolution lets an
    /// invalidation that races it mark the attempt stale, so the refresh loops
    /// exactly once more. The default.
    case rangeTracked = "range-tracked"
}
