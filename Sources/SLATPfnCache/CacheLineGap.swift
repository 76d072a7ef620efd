/// 128 bytes nobody reads or writes: a stored property of this type keeps
/// the atomics declared after it off the cache lines (and adjacent-line
/// prefetch pairs) of those declared before it, so a word one thread reads
/// on every notifier event does not share a line with words another thread
/// writes on every refresh (false sharing). Stored properties of a class are
/// laid out in declaration order.
///
/// Locking contract: none; it holds no state.
struct CacheLineGap: Sendable {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The gap.
    init() {}
}
