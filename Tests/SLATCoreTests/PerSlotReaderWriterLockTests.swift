import Foundation
import Synchronization
import Testing
@testable import SLATCore

/// The per-slot (big-reader) lock through its slot API, alone and mixed
/// with callers without a slot. The slot-less API also runs every test of
/// ``ReaderWriterLockTests``.
@Suite("Per-slot reader-writer lock")
struct PerSlotReaderWriterLockTests {
    @Test("slotted readers never see a half-done exclusive update, with writers and slot-less readers racing")
    func slottedReadersSeeCompleteUpdates() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 3)
        let pair = UnprotectedCounter()   // value and `mirror` must always agree
        let mirror = UnprotectedCounter()
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        LockTestThreads.run(5) { index in
            for _ in 0..<10_000 {
                switch index {
                case 0, 1:
                    lock.withExclusive {
                        pair.value += 1
                        mirror.value += 1
                    }
                case 2, 3:
                    lock.lockShared(slot: index - 2)
                    if pair.value != mirror.value { torn.wrappingAdd(1, ordering: .relaxed) }
                    lock.unlockShared(slot: index - 2)
                    reads.wrappingAdd(1, ordering: .relaxed)
                default:
                    lock.withShared {
                        if pair.value != mirror.value { torn.wrappingAdd(1, ordering: .relaxed) }
                    }
                    reads.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(pair.value == 20_000)
        #expect(reads.load(ordering: .relaxed) == 30_000)
    }

    @Test("exclusive holders exclude each other while slotted readers come and go")
    func writersExcludeEachOtherAmongSlottedReaders() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 2)
        let counter = UnprotectedCounter()
        LockTestThreads.run(4) { index in
            for _ in 0..<10_000 {
                if index < 2 {
                    lock.withExclusive { counter.value += 1 }
                } else {
                    lock.lockShared(slot: index - 2)
                    _ = counter.value
                    lock.unlockShared(slot: index - 2)
                }
            }
        }
        #expect(counter.value == 20_000)
    }

    @Test("readers in different slots hold the lock at the same time")
    func slottedReadersOverlap() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 2)
        let inside = Atomic<Int>(0)
        let sawBoth = Atomic<Int>(0)
        LockTestThreads.run(2) { index in
            lock.lockShared(slot: index)
            inside.wrappingAdd(1, ordering: .sequentiallyConsistent)
            // Bounded: an exclusive-only lock would time out here.
            if LockTestThreads.wait(seconds: 5, until: { inside.load(ordering: .sequentiallyConsistent) == 2 }) {
                sawBoth.wrappingAdd(1, ordering: .relaxed)
            }
            lock.unlockShared(slot: index)
        }
        #expect(sawBoth.load(ordering: .relaxed) == 2)
    }

    @Test("a slotted reader keeps tryLockExclusive out until it leaves")
    func slottedReaderBlocksTryLockExclusive() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 2)
        lock.lockShared(slot: 1)
        #expect(!lock.tryLockExclusive())
        lock.unlockShared(slot: 1)
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
    }

    @Test("tryLockShared(slot:) fails while a writer holds the lock and succeeds after")
    func tryLockSharedSlotFailsUnderWriter() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 2)
        lock.lockExclusive()
        #expect(!lock.tryLockShared(slot: 0))
        lock.unlockExclusive()
        #expect(lock.tryLockShared(slot: 0))
        lock.unlockShared(slot: 0)
    }

    @Test("a waiting writer keeps new slotted readers out and enters when the last reader leaves")
    func waitingWriterBlocksNewSlottedReaders() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 2)
        lock.lockShared(slot: 0)
        let writerIn = Atomic<Bool>(false)
        let writer = Thread {
            lock.lockExclusive()
            writerIn.store(true, ordering: .relaxed)
            lock.unlockExclusive()
        }
        writer.start()
        let blocked = LockTestThreads.wait(seconds: 5) {
            if lock.tryLockShared(slot: 1) {
                lock.unlockShared(slot: 1)
                return false
            }
            return true
        }
        #expect(blocked)
        #expect(writerIn.load(ordering: .relaxed) == false)
        lock.unlockShared(slot: 0)
        #expect(LockTestThreads.wait(seconds: 5) { writerIn.load(ordering: .relaxed) })
    }

    @Test("a writer is not starved by slotted readers whose holds always overlap")
    func writerIsNotStarvedBySlottedReaders() throws {
        let lock = try PerSlotReaderWriterLock(slotCount: 3)
        let stop = Atomic<Bool>(false)
        let readerPasses = Atomic<Int>(0)
        let writerAcquired = Atomic<Bool>(false)
        let writerInTime = Atomic<Bool>(false)
        let writerDone = Atomic<Bool>(false)
        LockTestThreads.run(4) { index in
            if index < 3 {
                while !stop.load(ordering: .relaxed) {
                    lock.lockShared(slot: index)
                    usleep(200)
                    lock.unlockShared(slot: index)
                    readerPasses.wrappingAdd(1, ordering: .relaxed)
                }
            } else {
                _ = LockTestThreads.wait(seconds: 5) { readerPasses.load(ordering: .relaxed) > 30 }
                let writer = Thread {
                    lock.withExclusive { writerAcquired.store(true, ordering: .relaxed) }
                    writerDone.store(true, ordering: .releasing)
                }
                writer.start()
                writerInTime.store(LockTestThreads.wait(seconds: 5) { writerAcquired.load(ordering: .relaxed) },
                                   ordering: .relaxed)
                stop.store(true, ordering: .relaxed)
                _ = LockTestThreads.wait(seconds: 10) { writerDone.load(ordering: .acquiring) }
            }
        }
        #expect(writerInTime.load(ordering: .relaxed) == true)
        #expect(readerPasses.load(ordering: .relaxed) > 30)
    }
}

/// The per-slot lock built on an ``EpochReclaimer``'s slot words: one store
/// takes the lock shared and enters the read section.
@Suite("Per-slot lock sharing the reclaimer's slot words")
struct PerSlotLockReclaimerSharingTests {
    @Test("the combined entry keeps a page retired meanwhile until the combined exit")
    func combinedEntryHoldsRetiredPage() throws {
        let arena = try TableArena(pageSize: 4096, pageCount: 8, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        let page = try arena.allocatePage()
        lock.lockSharedEnteringReadSection(slot: 1)
        reclaimer.retire([page])
        for _ in 0..<8 { reclaimer.reclaim() }
        #expect(arena.isAllocated(page))
        lock.unlockSharedLeavingReadSection(slot: 1)
        for _ in 0..<3 { reclaimer.reclaim() }
        #expect(!arena.isAllocated(page))
    }

    @Test("the combined entry keeps a writer out until the combined exit")
    func combinedEntryExcludesWriter() throws {
        let reclaimer = try EpochReclaimer(memory: try! TableArena(pageSize: 4096, pageCount: 1, prefault: false), slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        lock.lockSharedEnteringReadSection(slot: 0)
        #expect(!lock.tryLockExclusive())
        lock.unlockSharedLeavingReadSection(slot: 0)
        #expect(lock.tryLockExclusive())
        #expect(!lock.tryLockSharedEnteringReadSection(slot: 0))
        lock.unlockExclusive()
    }

    @Test("a read section alone (a lockless walker) does not keep a writer out")
    func readSectionAloneDoesNotExcludeWriter() throws {
        let reclaimer = try EpochReclaimer(memory: try! TableArena(pageSize: 4096, pageCount: 1, prefault: false), slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        reclaimer.enterReadSection(slot: 1)
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
        reclaimer.leaveReadSection(slot: 1)
    }

    @Test("entering and leaving a read section keeps the slot's shared hold")
    func readSectionKeepsSharedHold() throws {
        let reclaimer = try EpochReclaimer(memory: try! TableArena(pageSize: 4096, pageCount: 1, prefault: false), slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        lock.lockShared(slot: 0)
        reclaimer.enterReadSection(slot: 0)
        reclaimer.leaveReadSection(slot: 0)
        #expect(!lock.tryLockExclusive())
        lock.unlockShared(slot: 0)
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
    }

    @Test("a shared hold alone does not hold the epoch back")
    func sharedHoldAloneDoesNotHoldEpoch() throws {
        let reclaimer = try EpochReclaimer(memory: try! TableArena(pageSize: 4096, pageCount: 1, prefault: false), slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        lock.lockShared(slot: 0)
        let start = reclaimer.epoch
        for _ in 0..<3 { reclaimer.reclaim() }
        #expect(reclaimer.epoch == start + 3)
        lock.unlockShared(slot: 0)
    }

    @Test("stress: combined readers, writers and a reclaiming thread; readers never see a torn update or a freed page")
    func combinedReadersWritersAndReclaimStress() throws {
        let pages = 64
        let arena = try TableArena(pageSize: 4096, pageCount: pages, prefault: false)
        let reclaimer = try EpochReclaimer(memory: arena, slotCount: 2)
        let lock = PerSlotReaderWriterLock(readerSlotWords: reclaimer.readerSlotWords)
        let pair = UnprotectedCounter()
        let mirror = UnprotectedCounter()
        // The page readers may dereference: replaced (and retired) by writers.
        let published = Atomic<UInt64>(try arena.allocatePage().rawValue)
        let torn = Atomic<Int>(0)
        let freedSeen = Atomic<Int>(0)
        LockTestThreads.run(5) { index in
            switch index {
            case 0, 1:
                for _ in 0..<3_000 {
                    lock.withExclusive {
                        pair.value += 1
                        mirror.value += 1
                    }
                }
            case 2, 3:
                for _ in 0..<5_000 {
                    lock.lockSharedEnteringReadSection(slot: index - 2)
                    if pair.value != mirror.value { torn.wrappingAdd(1, ordering: .relaxed) }
                    let page = HostPhysicalAddress(published.load(ordering: .acquiring))
                    if !arena.isAllocated(page) { freedSeen.wrappingAdd(1, ordering: .relaxed) }
                    lock.unlockSharedLeavingReadSection(slot: index - 2)
                }
            default:
                // Replace the published page and retire the old one, as a
                // fault that replaced a table does; reclaim advances epochs.
                var replaced = 0
                while replaced < 2_000 {
                    guard let next = try? arena.allocatePage() else {
                        reclaimer.reclaim()
                        continue
                    }
                    let old = published.exchange(next.rawValue, ordering: .acquiringAndReleasing)
                    reclaimer.retire([HostPhysicalAddress(old)])
                    replaced += 1
                }
            }
        }
        reclaimer.synchronize()
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(freedSeen.load(ordering: .relaxed) == 0)
        #expect(pair.value == 6_000)
        #expect(lock.tryLockExclusive())
        lock.unlockExclusive()
    }
}
