import Synchronization
import Testing
@testable import SLATCore

private func frames(_ start: UInt64, _ count: UInt64) -> GuestFrameRange {
    GuestFrameRange(start: GuestFrameNumber(start), count: count)
}

@Suite("InvalidationTracker")
struct InvalidationTrackerTests {
    @Test("a fault with no invalidation since its snapshot needs no retry")
    func quietTrackerNeedsNoRetry() {
        let tracker = InvalidationTracker()
        let snapshot = tracker.snapshot()
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(5), since: snapshot))
        #expect(tracker.inProgressCount == 0)
        #expect(tracker.inFlightRange == nil)
    }

    @Test("a fault on a frame inside an invalidation in progress must retry")
    func frameInFlightNeedsRetry() {
        let tracker = InvalidationTracker()
        let snapshot = tracker.snapshot()
        tracker.beginInvalidation(frames(100, 10))
        #expect(tracker.needsRetry(frame: GuestFrameNumber(100), since: snapshot))
        #expect(tracker.needsRetry(frame: GuestFrameNumber(109), since: snapshot))
        // Even a snapshot taken after the begin: the host page may be stale.
        #expect(tracker.needsRetry(frame: GuestFrameNumber(105), since: tracker.snapshot()))
    }

    @Test("a fault outside the in-flight range is not held up by an unrelated invalidation")
    func frameOutsideInFlightRangeNeedsNoRetry() {
        let tracker = InvalidationTracker()
        let snapshot = tracker.snapshot()
        tracker.beginInvalidation(frames(100, 10))
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(99), since: snapshot))
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(110), since: snapshot))
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(5000), since: snapshot))
    }

    @Test("a fault must retry when an invalidation ended after its snapshot, wherever it was")
    func movedSequenceNeedsRetry() {
        let tracker = InvalidationTracker()
        let snapshot = tracker.snapshot()
        tracker.beginInvalidation(frames(100, 10))
        tracker.endInvalidation(frames(100, 10))
        #expect(tracker.sequence == InvalidationSequence(snapshot.value &+ 1))
        #expect(tracker.needsRetry(frame: GuestFrameNumber(5000), since: snapshot))
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(5000), since: tracker.snapshot()))
    }

    @Test("concurrent invalidations merge into their hull, which is reset when the count reaches zero")
    func rangeIsHullAndResetsAtZero() {
        let tracker = InvalidationTracker()
        tracker.beginInvalidation(frames(10, 10))
        tracker.beginInvalidation(frames(100, 10))
        #expect(tracker.inProgressCount == 2)
        #expect(tracker.inFlightRange == frames(10, 100))
        // The hull covers the gap between them: conservative, as in KVM.
        #expect(tracker.needsRetry(frame: GuestFrameNumber(50), since: tracker.snapshot()))
        tracker.endInvalidation(frames(10, 10))
        #expect(tracker.inProgressCount == 1)
        #expect(tracker.inFlightRange == frames(10, 100))
        tracker.endInvalidation(frames(100, 10))
        #expect(tracker.inProgressCount == 0)
        #expect(tracker.inFlightRange == nil)
        tracker.beginInvalidation(frames(500, 1))
        #expect(tracker.inFlightRange == frames(500, 1))
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(50), since: tracker.snapshot()))
    }

    @Test("a guest-physical range is tracked as the frames that hold it")
    func physicalRangeCoversItsFrames() {
        let tracker = InvalidationTracker()
        tracker.beginInvalidation(GuestPhysicalRange(start: GuestPhysicalAddress(0x1800), size: 0x1000))
        #expect(tracker.inFlightRange == frames(1, 2))
        tracker.endInvalidation(GuestPhysicalRange(start: GuestPhysicalAddress(0x1800), size: 0x1000))
        #expect(tracker.inFlightRange == nil)
    }

    @Test("a block fault must retry when an invalidation in progress overlaps any frame of the block")
    func blockOverlappingInFlightRangeNeedsRetry() {
        let tracker = InvalidationTracker()
        let snapshot = tracker.snapshot()
        tracker.beginInvalidation(frames(700, 1))
        #expect(tracker.needsRetry(range: frames(512, 512), since: snapshot))
        #expect(!tracker.needsRetry(range: frames(0, 512), since: snapshot))
    }

    @Test("an empty invalidation counts as in progress but covers no frame")
    func emptyInvalidationCoversNothing() {
        let tracker = InvalidationTracker()
        tracker.beginInvalidation(frames(100, 0))
        #expect(tracker.inProgressCount == 1)
        #expect(!tracker.needsRetry(frame: GuestFrameNumber(100), since: tracker.snapshot()))
        tracker.endInvalidation(frames(100, 0))
        #expect(tracker.inProgressCount == 0)
    }

    @Test("lock-free readers never see a torn state while invalidations begin and end")
    func readersNeverSeeTornState() {
        let tracker = InvalidationTracker()
        let stop = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        LockTestThreads.run(3) { index in
            if index == 0 {
                // One invalidation at a time: the range is always [10k, 10k + 5).
                for k in 0..<20_000 as Range<UInt64> {
                    tracker.beginInvalidation(frames(k * 10, 5))
                    tracker.endInvalidation(frames(k * 10, 5))
                }
                stop.store(true, ordering: .relaxed)
            } else {
                while !stop.load(ordering: .relaxed) {
                    if let range = tracker.inFlightRange,
                       range.count != 5 || range.start.rawValue % 10 != 0 {
                        torn.wrappingAdd(1, ordering: .relaxed)
                    }
                    reads.wrappingAdd(1, ordering: .relaxed)
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(tracker.sequence == InvalidationSequence(20_000))
        #expect(tracker.inProgressCount == 0)
    }
}
