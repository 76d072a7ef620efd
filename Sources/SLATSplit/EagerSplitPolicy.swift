/// How an ``EagerSplitEngine`` splits: whether at all, to which level, how
/// it allocates, and how long it holds the MMU lock.
///
/// The allocation policy is KVM's eager split's: table pages come from a split cache
/// topped up **outside** the lock; when it runs dry mid-range the engine
/// drops the lock, refills, retakes it and restarts at the next address
/// not yet done; it refuses to start, and stops early, when the table
/// memory has ``minimumFreePages`` or fewer free pages, leaving those pages
/// to the fault path (the rest is split by write faults, as without it).
@frozen
public struct EagerSplitPolicy: Sendable, Hashable {
    /// Whether dirty-logging integration splits eagerly (default on, like
    /// KVM's `eager_page_split`). The engine itself always splits when
    /// asked; the dirty-logging wrappers consult this switch.
    public var isEnabled: Bool
    /// The level huge leaves are split down to (0: the smallest pages).
    /// It must hold leaves in the backend's format.
    public var targetLevel: Int
    /// Pages the split cache is topped up to at each refill (at least what
    /// the next split needs).
    public var cacheCapacity: Int
    /// The engine refuses to start, and stops early, when the memory has at
    /// most this many free pages.
    public var minimumFreePages: Int
    /// Bytes of huge leaves split per hold of the lock before the engine
    /// drops and retakes it (arm64's eager-split chunk size); 0: no chunking.
    public var chunkSize: UInt64
    /// Leaves split per hold of the lock before the engine yields it so
    /// faults waiting and notifier zaps are not starved.
    public var yieldInterval: Int
    /// Whether the pages left in the split cache go back to the memory when
    /// the engine is done.
    public var releasesCacheWhenDone: Bool

    /// A policy; defaults: enabled, split to level 0, refill 64 pages,
    /// refuse at 16 free pages, no chunking, yield every 256 splits, release
    /// the cache afterwards.
    @inlinable
    public init(
        isEnabled: Bool = true, targetLevel: Int = 0, cacheCapacity: Int = 64, minimumFreePages: Int = 16,
        chunkSize: UInt64 = 0, yieldInterval: Int = 256, releasesCacheWhenDone: Bool = true
    ) {
        self.isEnabled = isEnabled
        self.targetLevel = targetLevel
        self.cacheCapacity = cacheCapacity
        self.minimumFreePages = minimumFreePages
        self.chunkSize = chunkSize
        self.yieldInterval = yieldInterval
        self.releasesCacheWhenDone = releasesCacheWhenDone
    }
}
