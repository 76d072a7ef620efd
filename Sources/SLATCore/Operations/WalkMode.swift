/// How an operation may change entries, matching how the caller holds the MMU lock.
public enum WalkMode: Sendable {
    /// The caller holds the MMU lock exclusively: no other software walker
    /// runs, so entries may be stored directly (still exchanged atomically
    /// when hardware may set their accessed/dirty bits, rule 5 of Docs/concurrency.md),
    /// and unlinked tables are freed as soon as the TLB flush is done.
    case exclusive
    /// The caller holds the MMU lock shared: other writers may run, so every
    /// change is a compare-and-exchange against the value read (rule 1),
    /// the winner owns what it replaced (rule 2), and unlinked tables are
    /// retired through the reclaimer after a grace period.
    case shared
}
