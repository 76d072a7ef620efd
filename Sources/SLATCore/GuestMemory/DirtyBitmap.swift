import Synchronization

/// The dirty bitmap of one memslot: one bit per guest frame, set atomically
/// by any thread (faults, fast faults, harvests), read and cleared in one
/// exchange per word by get-and-clear.
///
/// Thread safety: every method may be called from any thread at any time.
// @unchecked Sendable: the word pointer is immutable after init and points
// at Atomics that are only accessed atomically; freed in deinit.
public final class DirtyBitmap: @unchecked Sendable {
    /// The frames the bitmap covers (the memslot's frames).
    public let frames: GuestFrameRange
    /// Words in the bitmap.
    public let wordCount: Int
    /// The bitmap's words, for fault paths that mark without a call (bit
    /// `i` of word `w` is frame `frames.start + 64w + i`; set bits with an
    /// atomic OR). Valid while the bitmap is alive: keep a reference.
    public let words: UnsafeMutablePointer<Atomic<UInt64>>

    /// A bitmap for `frames`, clear, or with every frame marked when
    /// `allSet` (a log enabled with `DirtyLogProtection/manual(initiallySet:)`
    /// set reports every page until the VMM clears it).
    public init(frames: GuestFrameRange, allSet: Bool = false) {
        self.frames = frames
        wordCount = Int((frames.count &+ 63) / 64)
        words = .allocate(capacity: max(wordCount, 1))
        for index in 0..<max(wordCount, 1) {
            var word: UInt64 = 0
            if allSet && index < wordCount {
                let remaining = frames.count &- UInt64(index) &* 64
                word = remaining >= 64 ? ~0 : (1 &<< remaining) &- 1
            }
            (words + index).initialize(to: Atomic(word))
        }
    }

    deinit {
        words.deinitialize(count: max(wordCount, 1))
        words.deallocate()
    }

    /// Marks `frame` dirty (ignored outside ``frames``).
    @inlinable
    public func mark(_ frame: GuestFrameNumber) {
        let offset = frame.rawValue &- frames.start.rawValue
        guard offset < frames.count else { return }
        let bit: UInt64 = 1 &<< (offset & 63)
        let word = words + Int(truncatingIfNeeded: offset >> 6)
        // Skip the read-modify-write when already set: re-marking is common.
        if word.pointee.load(ordering: .relaxed) & bit == 0 {
            word.pointee.bitwiseOr(bit, ordering: .relaxed)
        }
    }

    /// Marks every frame of `range` that the bitmap covers.
    public func mark(_ range: GuestFrameRange) {
        guard let common = range.intersection(frames) else { return }
        var frame = common.start.rawValue
        while frame < common.end.rawValue {
            mark(GuestFrameNumber(frame))
            frame &+= 1
        }
    }

    /// Marks again every frame set in `words` (as ``takeAll()`` or, with
    /// `firstWord` the clear's first page / 64,
    /// ``clear(_:firstPage:slot:)`` returned them): a harvest or clear that
    /// could not finish puts its bits back, so no write is lost. Words past
    /// the bitmap's end are ignored.
    public func mark(words: [UInt64], firstWord: Int = 0) {
        for (index, word) in words.enumerated() where word != 0 && firstWord + index < wordCount {
            self.words[firstWord + index].bitwiseOr(word, ordering: .relaxed)
        }
    }

    /// Whether `frame` is marked.
    public func isMarked(_ frame: GuestFrameNumber) -> Bool {
        let offset = frame.rawValue &- frames.start.rawValue
        guard offset < frames.count else { return false }
        return words[Int(offset >> 6)].load(ordering: .relaxed) & (1 &<< (offset & 63)) != 0
    }

    /// Clears the marks `mask` names and returns those that were set (a
    /// dirty-log clear, `KVM_CLEAR_DIRTY_LOG`): bit `i` of `mask[w]` is
    /// frame `frames.start + firstPage + 64w + i`; bit `i` of the result's
    /// word `w` says that frame was marked and is now clear. Each word is
    /// one atomic AND-NOT, so a mark made meanwhile is either taken here or
    /// kept for the next read.
    ///
    /// - Throws: `SLATError/dirtyLogClearOutOfRange(slot:firstPage:pageCount:slotPages:)`
    ///   when `firstPage` is not a multiple of 64 or lies past the memslot,
    ///   or `mask` sets a bit past its last page (`slot` names it in the
    ///   error). Nothing is cleared then.
    public func clear(_ mask: [UInt64], firstPage: UInt64, slot: UInt32) throws(SLATError) -> [UInt64] {
        let pageCount = UInt64(mask.count) &* 64
        let outOfRange = SLATError.dirtyLogClearOutOfRange(
            slot: slot, firstPage: firstPage, pageCount: pageCount, slotPages: frames.count)
        guard firstPage & 63 == 0, firstPage <= frames.count else { throw outOfRange }
        let firstWord = Int(firstPage >> 6)
        for (index, word) in mask.enumerated() where word != 0 {
            let page = firstPage &+ UInt64(index) &* 64
            let valid = frames.count &- min(page, frames.count)
            let allowed: UInt64 = valid >= 64 ? ~0 : (1 &<< valid) &- 1
            if word & ~allowed != 0 { throw outOfRange }
        }
        var cleared = [UInt64](repeating: 0, count: mask.count)
        for (index, word) in mask.enumerated() where word != 0 {
            cleared[index] = words[firstWord + index].bitwiseAnd(~word, ordering: .acquiringAndReleasing).oldValue & word
        }
        return cleared
    }

    /// The bitmap's words, clearing each in the same exchange (bit `i` of
    /// word `w` is frame `frames.start + 64w + i`).
    public func takeAll() -> [UInt64] {
        var result = [UInt64](repeating: 0, count: wordCount)
        for index in 0..<wordCount {
            result[index] = words[index].exchange(0, ordering: .acquiringAndReleasing)
        }
        return result
    }

    /// The bitmap's words without clearing them.
    public func snapshot() -> [UInt64] {
        var result = [UInt64](repeating: 0, count: wordCount)
        for index in 0..<wordCount { result[index] = words[index].load(ordering: .acquiring) }
        return result
    }

    /// Frames marked now.
    public var markedCount: Int {
        var total = 0
        for index in 0..<wordCount { total += words[index].load(ordering: .relaxed).nonzeroBitCount }
        return total
    }
}
