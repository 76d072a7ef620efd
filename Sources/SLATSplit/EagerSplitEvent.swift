import SLATCore

/// Why the engine dropped the MMU lock mid-range.
@frozen
public enum EagerSplitLockDrop: Sendable, Hashable {
    /// The split cache could not supply the next split: refilled outside
    /// the lock.
    case cacheEmpty
    /// ``EagerSplitPolicy/yieldInterval`` splits were made in this hold.
    case yieldInterval
    /// ``EagerSplitPolicy/chunkSize`` bytes were split in this hold.
    case chunk
}

/// One step of an ``EagerSplitEngine`` run, for observers (tests, tracing).
/// Every event is reported on the engine's thread with the MMU lock held
/// shared (a lock drop once the lock is retaken): an observer must not
/// take the MMU lock and should be quick.
@frozen
public enum EagerSplitEvent: Sendable, Hashable {
    /// The leaf at `address`, `level`, was replaced by tables.
    case split(addressSpace: Int, address: GuestPhysicalAddress, level: Int)
    /// Another thread changed the leaf first; the engine looks at it again.
    case lostRace(addressSpace: Int, address: GuestPhysicalAddress, level: Int)
    /// The lock was dropped and retaken; the walk restarts at `resumeAddress`.
    case lockDropped(EagerSplitLockDrop, resumeAddress: GuestPhysicalAddress)
    /// The memory reached the minimum-free threshold; nothing at or after
    /// `address` in that address space (nor in later ones) was split.
    case stoppedAtMinimumFree(addressSpace: Int, address: GuestPhysicalAddress)
}
