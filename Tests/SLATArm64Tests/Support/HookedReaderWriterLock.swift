import SLATCore
import Synchronization

/// A reader-writer lock that runs a hook once, the first time it is taken
/// shared, just before taking it: a deterministic "something changed while
/// the fault was on its way to the lock".
final class HookedReaderWriterLock: ReaderWriterLock {
    private let lock = PThreadReaderWriterLock()
    private let hook: Mutex<(@Sendable () -> Void)?>

    init(beforeFirstSharedHold hook: @escaping @Sendable () -> Void) {
        self.hook = Mutex(hook)
    }

    func lockShared() {
        let pending = hook.withLock { hook in
            defer { hook = nil }
            return hook
        }
        pending?()
        lock.lockShared()
    }
    func unlockShared() { lock.unlockShared() }
    func lockExclusive() { lock.lockExclusive() }
    func unlockExclusive() { lock.unlockExclusive() }
    func tryLockShared() -> Bool { lock.tryLockShared() }
    func tryLockExclusive() -> Bool { lock.tryLockExclusive() }
}
