import SLATCore
import Synchronization

/// One vCPU's memo of the dirty log its last logged write went to: the
/// frames the log's bitmap covers, its mode and its words, so that the fast
/// page fault and the full fault path mark a page dirty with one load of
/// ``DirtyLogRegistry/generation`` and one bit set, instead of looking the
/// memslot and the log up behind reader locks on every write (KVM marks
/// through the memslot its fault already holds).
///
/// Soundness: the memo is used only while the registry's generation is the
/// one loaded *before* the lookup that filled it; every add and remove of a
/// log bumps it. A fault that restores write access loads the generation
/// after its exchange on the leaf: if a log was added before a protection
/// pass whose write-protect that exchange overwrote, the exchange (acquire)
/// orders the add before the load, so the fault sees the new generation and
/// looks the new log up. A memo that is stale towards a removed log marks a
/// bitmap that is being dropped (the strong reference keeps its words
/// alive): harmless, as a write racing the disable is not owed to any log.
///
/// Not thread-safe: the memo belongs to the thread using the reader slot.
@usableFromInline
struct DirtyLogMemo {
    /// Whether the fields below describe a log.
    @usableFromInline var isValid = false
    /// ``DirtyLogRegistry/generation`` loaded before the lookup.
    @usableFromInline var generation: UInt64 = 0
    /// The first frame and the frame count of the bitmap.
    @usableFromInline var firstFrame: UInt64 = 0
    @usableFromInline var frameCount: UInt64 = 0
    @usableFromInline var mode = DirtyLogMode.writeProtect
    /// The bitmap's words (kept alive by ``bitmap``).
    @usableFromInline var words: UnsafeMutablePointer<Atomic<UInt64>>?
    @usableFromInline var bitmap: DirtyBitmap?

    @usableFromInline init() {}
}

/// The dirty log covering one frame, as a fault uses it: its mode, and a
/// way to mark the frame without a lookup or reference counting.
@frozen @usableFromInline
struct DirtyLogTarget {
    @usableFromInline let mode: DirtyLogMode
    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let firstFrame: UInt64

    @inlinable
    init(mode: DirtyLogMode, words: UnsafeMutablePointer<Atomic<UInt64>>, firstFrame: UInt64) {
        self.mode = mode
        self.words = words
        self.firstFrame = firstFrame
    }

    /// Marks `frame`, which the log covers (as ``DirtyBitmap/mark(_:)-(GuestFrameNumber)``).
    @inlinable
    func mark(_ frame: GuestFrameNumber) {
        let offset = frame.rawValue &- firstFrame
        let bit: UInt64 = 1 &<< (offset & 63)
        let word = words + Int(truncatingIfNeeded: offset >> 6)
        if word.pointee.load(ordering: .relaxed) & bit == 0 {
            word.pointee.bitwiseOr(bit, ordering: .relaxed)
        }
    }
}

extension ExtendedPageTableMMU {
    /// The dirty log covering `frame`, from reader slot `slot`'s memo while
    /// the registry has not changed, else looked up (refilling the memo);
    /// `nil` when no log covers it. Call it after the exchange whose effect
    /// must be logged. The caller owns reader slot `slot`.
    @inlinable @inline(__always)
    func dirtyLog(containing frame: GuestFrameNumber, slot: Int) -> DirtyLogTarget? {
        let entry = resolveCacheEntry(slot: slot)
        let generation = dirtyLogs.generation.load(ordering: .acquiring)
        if entry.pointee.dirtyLog.isValid && entry.pointee.dirtyLog.generation == generation
            && frame.rawValue &- entry.pointee.dirtyLog.firstFrame < entry.pointee.dirtyLog.frameCount,
            let words = entry.pointee.dirtyLog.words {
            return DirtyLogTarget(mode: entry.pointee.dirtyLog.mode, words: words,
                                  firstFrame: entry.pointee.dirtyLog.firstFrame)
        }
        return refillDirtyLogMemo(entry, frame: frame, generation: generation)
    }

    /// Looks the log of `frame` up in the registry and remembers it in
    /// `entry`'s memo with `generation` (loaded before the lookup).
    @usableFromInline
    func refillDirtyLogMemo(
        _ entry: UnsafeMutablePointer<ResolveCacheEntry>, frame: GuestFrameNumber, generation: UInt64
    ) -> DirtyLogTarget? {
        guard let log = dirtyLogs.entry(containing: frame) else {
            entry.pointee.dirtyLog = DirtyLogMemo()
            return nil
        }
        let bitmap = log.bitmap
        var memo = DirtyLogMemo()
        memo.isValid = true
        memo.generation = generation
        memo.firstFrame = bitmap.frames.start.rawValue
        memo.frameCount = bitmap.frames.count
        memo.mode = log.mode
        memo.words = bitmap.words
        memo.bitmap = bitmap
        entry.pointee.dirtyLog = memo
        return DirtyLogTarget(mode: log.mode, words: bitmap.words, firstFrame: bitmap.frames.start.rawValue)
    }
}
