import Synchronization
import Testing
@testable import SLATCore

/// A `SpinLock` in a class, so that threads share one lock.
final class SharedSpinLock: Sendable {
    let lock = SpinLock()
}

@Suite("SpinLock")
struct SpinLockTests {
    @Test("holders exclude each other: an unprotected counter reaches the exact total")
    func mutualExclusion() {
        let shared = SharedSpinLock()
        let counter = UnprotectedCounter()
        LockTestThreads.run(4) { _ in
            for _ in 0..<20_000 {
                shared.lock.withLock { counter.value += 1 }
            }
        }
        #expect(counter.value == 80_000)
    }

    @Test("tryLock fails while the lock is held and succeeds once it is released")
    func tryLockReflectsHolder() {
        let lock = SpinLock()
        #expect(lock.tryLock() == true)
        #expect(lock.tryLock() == false)
        lock.unlock()
        #expect(lock.tryLock() == true)
        lock.unlock()
    }

    @Test("withLock releases the lock when the body throws")
    func withLockReleasesOnThrow() {
        let lock = SpinLock()
        #expect(throws: SLATError.emptyRange) {
            try lock.withLock { () throws(SLATError) in throw .emptyRange }
        }
        #expect(lock.tryLock() == true)
        lock.unlock()
    }
}
