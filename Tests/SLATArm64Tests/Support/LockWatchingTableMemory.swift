import SLATCore
import Synchronization

/// A reader-writer lock that counts its holders, so that other test
/// doubles can ask whether anyone holds it right now.
final class HolderCountingLock: ReaderWriterLock {
    private let lock = PThreadReaderWriterLock()
    private let holders = Atomic<Int>(0)
    /// Runs once, just before the first shared hold is taken.
    private let beforeFirstShared: Mutex<(@Sendable () -> Void)?>

    init() { beforeFirstShared = Mutex(nil) }

    /// Sets what runs once, just before the next first shared hold.
    func runBeforeNextSharedHold(_ hook: @escaping @Sendable () -> Void) {
        beforeFirstShared.withLock { $0 = hook }
    }

    /// Whether some thread holds the lock, shared or exclusive.
    var isHeld: Bool { holders.load(ordering: .acquiring) > 0 }

    func lockShared() {
        let pending = beforeFirstShared.withLock { hook in
            defer { hook = nil }
            return hook
        }
        pending?()
        lock.lockShared()
        holders.wrappingAdd(1, ordering: .acquiringAndReleasing)
    }
    func unlockShared() {
        holders.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        lock.unlockShared()
    }
    func lockExclusive() {
        lock.lockExclusive()
        holders.wrappingAdd(1, ordering: .acquiringAndReleasing)
    }
    func unlockExclusive() {
        holders.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        lock.unlockExclusive()
    }
    func tryLockShared() -> Bool {
        guard lock.tryLockShared() else { return false }
        holders.wrappingAdd(1, ordering: .acquiringAndReleasing)
        return true
    }
    func tryLockExclusive() -> Bool {
        guard lock.tryLockExclusive() else { return false }
        holders.wrappingAdd(1, ordering: .acquiringAndReleasing)
        return true
    }
}

/// Table memory that records every page allocation made while `lock` is
/// held: the observable form of "never allocate under the MMU lock".
final class LockWatchingTableMemory: TableMemory {
    let base: TableArena
    let lock: HolderCountingLock
    private let underLock = Atomic<Int>(0)
    private let allocations = Atomic<Int>(0)

    init(wrapping base: TableArena, lock: HolderCountingLock) {
        self.base = base
        self.lock = lock
    }

    /// Pages allocated while the lock was held.
    var allocationsUnderLock: Int { underLock.load(ordering: .relaxed) }
    /// Pages allocated in all.
    var allocationCount: Int { allocations.load(ordering: .relaxed) }

    private func record(_ count: Int) {
        allocations.wrappingAdd(count, ordering: .relaxed)
        if lock.isHeld { underLock.wrappingAdd(count, ordering: .relaxed) }
    }

    var pageSize: Int { base.pageSize }
    func allocatePage() throws(SLATError) -> HostPhysicalAddress {
        record(1)
        return try base.allocatePage()
    }
    func allocateContiguousPages(_ count: Int) throws(SLATError) -> HostPhysicalAddress {
        record(count)
        return try base.allocateContiguousPages(count)
    }
    func freePage(_ page: HostPhysicalAddress) { base.freePage(page) }
    func entries(at page: HostPhysicalAddress) -> EntryPointer { base.entries(at: page) }
    func page(containing entry: EntryPointer) -> HostPhysicalAddress { base.page(containing: entry) }
    func liveEntryCount(of page: HostPhysicalAddress) -> Int { base.liveEntryCount(of: page) }
    @discardableResult
    func adjustLiveEntryCount(containing entry: EntryPointer, by delta: Int) -> Int {
        base.adjustLiveEntryCount(containing: entry, by: delta)
    }
    func setLiveEntryCount(of page: HostPhysicalAddress, to count: Int) { base.setLiveEntryCount(of: page, to: count) }
    var freePageCount: Int { base.freePageCount }
    var allocatedPageCount: Int { base.allocatedPageCount }
    var totalAllocations: Int { base.totalAllocations }
    var totalFrees: Int { base.totalFrees }
}
