/// Which end of an invalidation a notifier event marks.
///
/// A value type; it takes no lock.
public enum InvalidationPhase: Hashable, Sendable {
    /// The change is about to happen; it is not yet visible. When the
    /// listener returns, it must no longer use or create a translation of the
    /// range (concurrency rule 6) until the matching `end`.
    case start
    /// The change is visible; translations may be created again.
    case end
}
