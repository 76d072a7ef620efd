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

    /// A clear bitmap for `frames`.
    public init(frames: GuestFrameRange) {
        self.frames = frames
        wordCount = Int((frames.count &+ 63) / 64)
        words = .allocate(capacity: max(wordCount, 1))
        for index in 0..<max(wordCount, 1) { (words + index).initialize(to: Atomic(0)) }
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

    /// Marks again every frame set in `words` (as ``takeAll()`` returned
    /// them): a harvest that could not finish puts its bits back, so no
    /// write is lost.
    public func mark(words: [UInt64]) {
        for (index, word) in words.enumerated() where word != 0 && index < wordCount {
            self.words[index].bitwiseOr(word, ordering: .relaxed)
        }
    }

    /// Whether `frame` is marked.
    public func isMarked(_ frame: GuestFrameNumber) -> Bool {
        let offset = frame.rawValue &- frames.start.rawValue
        guard offset < frames.count else { return false }
        return words[Int(offset >> 6)].load(ordering: .relaxed) & (1 &<< (offset & 63)) != 0
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
