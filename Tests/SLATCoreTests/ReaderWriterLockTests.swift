import Foundation
import Synchronization
import Testing
@testable import SLATCore

/// Runs `body(index)` on `count` real threads at once and waits for all.
enum LockTestThreads {
    static func run(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let done = DispatchSemaphore(value: 0)
        for index in 0..<count {
            let thread = Thread {
                body(index)
                done.signal()
            }
            thread.start()
        }
        for _ in 0..<count { done.wait() }
    }

    /// Polls `condition` until it holds or `seconds` pass; returns whether it held.
    static func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while !condition() {
            if ContinuousClock.now > deadline { return false }
            usleep(200)
        }
        return true
    }
}

/// A plain, non-atomic counter: only the lock under test protects it.
///
/// `@unchecked Sendable`: every access in these tests happens with the lock
/// under test held (exclusively for writes), which is what the tests check.
final class UnprotectedCounter: @unchecked Sendable {
    var value = 0
}

/// The reader-writer lock implementations under test.
enum ReaderWriterLockKind: CaseIterable, Sendable, CustomStringConvertible {
    case spinning
    case pthread
    case perSlot

    func make() -> any ReaderWriterLock {
        switch self {
        case .spinning: SpinningReaderWriterLock()
        case .pthread: PThreadReaderWriterLock()
        case .perSlot: try! PerSlotReaderWriterLock(slotCount: 4)   // 4 slots are in range
        }
    }

    var description: String {
        switch self {
        case .spinning: "SpinningReaderWriterLock"
        case .pthread: "PThreadReaderWriterLock"
        case .perSlot: "PerSlotReaderWriterLock (callers without a slot)"
        }
    }
}

@Suite("Reader-writer locks")
struct ReaderWriterLockTests {
    @Test("exclusive holders exclude each other: an unprotected counter reaches the exact total",
          arguments: ReaderWriterLockKind.allCases)
    func exclusiveHoldersAreMutuallyExclusive(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        let counter = UnprotectedCounter()
        let threads = 4
        let increments = 20_000
        LockTestThreads.run(threads) { _ in
            for _ in 0..<increments {
                lock.withExclusive { counter.value += 1 }
            }
        }
        #expect(counter.value == threads * increments)
    }

    @Test("shared holders never see a half-done exclusive update",
          arguments: ReaderWriterLockKind.allCases)
    func sharedHoldersSeeCompleteUpdates(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        let pair = UnprotectedCounter()   // value and `mirror` must always agree
        let mirror = UnprotectedCounter()
        let torn = Atomic<Int>(0)
        LockTestThreads.run(4) { index in
            for _ in 0..<10_000 {
                if index < 2 {
                    lock.withExclusive {
                        pair.value += 1
                        mirror.value += 1
                    }
                } else {
                    lock.withShared {
                        if pair.value != mirror.value { torn.wrappingAdd(1, ordering: .relaxed) }
                    }
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(pair.value == 20_000)
    }

    @Test("shared holders overlap: two readers are inside at the same time",
          arguments: ReaderWriterLockKind.allCases)
    func sharedHoldersOverlap(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        let inside = Atomic<Int>(0)
        let sawBoth = Atomic<Int>(0)
        LockTestThreads.run(2) { _ in
            lock.withShared {
                inside.wrappingAdd(1, ordering: .sequentiallyConsistent)
                // Bounded: an exclusive-only lock would time out here.
                if LockTestThreads.wait(seconds: 5, until: { inside.load(ordering: .sequentiallyConsistent) == 2 }) {
                    sawBoth.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        #expect(sawBoth.load(ordering: .relaxed) == 2)
    }

    @Test("a writer is not starved by a continuous stream of overlapping readers",
          arguments: ReaderWriterLockKind.allCases)
    func writerIsNotStarvedByReaders(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        let stop = Atomic<Bool>(false)
        let readerPasses = Atomic<Int>(0)
        let writerDone = Atomic<Bool>(false)
        let writerAcquired = Atomic<Bool>(false)
        let writerInTime = Atomic<Bool>(false)
        LockTestThreads.run(4) { index in
            switch index {
            case 0, 1, 2:
                // Readers hold the lock in overlapping sections so that, without
                // writer preference, there would always be a reader inside.
                while !stop.load(ordering: .relaxed) {
                    lock.withShared { _ = usleep(200) }
                    readerPasses.wrappingAdd(1, ordering: .relaxed)
                }
            default:
                _ = LockTestThreads.wait(seconds: 5) { readerPasses.load(ordering: .relaxed) > 30 }
                let writer = Thread {
                    lock.withExclusive { writerAcquired.store(true, ordering: .relaxed) }
                    writerDone.store(true, ordering: .releasing)
                }
                writer.start()
                // Bounded: give up (and release the readers) after 5 s.
                let inTime = LockTestThreads.wait(seconds: 5) { writerAcquired.load(ordering: .relaxed) }
                writerInTime.store(inTime, ordering: .relaxed)
                stop.store(true, ordering: .relaxed)
                _ = LockTestThreads.wait(seconds: 10) { writerDone.load(ordering: .acquiring) }
            }
        }
        #expect(writerInTime.load(ordering: .relaxed) == true)
        #expect(readerPasses.load(ordering: .relaxed) > 30)
    }

    @Test("tryLockExclusive fails while a reader or writer holds the lock and succeeds when free",
          arguments: ReaderWriterLockKind.allCases)
    func tryLockExclusiveReflectsHolders(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        lock.lockShared()
        #expect(!lock.tryLockExclusive())
        lock.unlockShared()
        #expect(lock.tryLockExclusive())
        #expect(!lock.tryLockShared())
        lock.unlockExclusive()
        #expect(lock.tryLockShared())
        lock.unlockShared()
    }

    @Test("withShared and withExclusive release the lock when the body throws",
          arguments: ReaderWriterLockKind.allCases)
    func helpersReleaseOnThrow(kind: ReaderWriterLockKind) {
        let lock = kind.make()
        #expect(throws: SLATError.emptyRange) {
            try lock.withExclusive { () throws(SLATError) in throw .emptyRange }
        }
        #expect(throws: SLATError.emptyRange) {
            try lock.withShared { () throws(SLATError) in throw .emptyRange }
        }
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
    }

    @Test("a waiting writer keeps new readers out of the spinning lock")
    func waitingWriterBlocksNewReaders() {
        let lock = SpinningReaderWriterLock()
        lock.lockShared()
        let writerIn = Atomic<Bool>(false)
        let writer = Thread {
            lock.lockExclusive()
            writerIn.store(true, ordering: .relaxed)
            lock.unlockExclusive()
        }
        writer.start()
        // Wait until the writer has announced itself: new readers fail then.
        let blocked = LockTestThreads.wait(seconds: 5) {
            if lock.tryLockShared() {
                lock.unlockShared()
                return false
            }
            return true
        }
        #expect(blocked)
        #expect(writerIn.load(ordering: .relaxed) == false)
        lock.unlockShared()
        #expect(LockTestThreads.wait(seconds: 5) { writerIn.load(ordering: .relaxed) })
    }
}
