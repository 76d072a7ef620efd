import Synchronization

/// The mmu-notifier side of the MMU (KVM's `mmu_invalidate_seq`,
/// `mmu_invalidate_in_progress` and the in-flight range): it lets a page fault
/// tell whether the host page it looked up may have been invalidated while it
/// was not holding the MMU lock.
///
/// ## State
/// - ``sequence``: bumped by every `endInvalidation(_:)`.
/// - ``inProgressCount``: invalidations begun and not yet ended.
/// - ``inFlightRange``: the hull of the ranges of every invalidation begun
///   since the count last was zero; reset when it drops back to zero. A hull,
///   not a list: an unrelated invalidation far away widens it, but a fault
///   outside the hull is not held up by invalidations elsewhere (KVM's gfn-to-pfn cache, virt/kvm/pfncache.c).
///
/// ## Protocol
/// *Invalidation* (host unmap, migration, protection change, memslot removal):
/// 1. `beginInvalidation(_:)` for the guest range,
///    **before** taking the MMU lock exclusively;
/// 2. take the MMU lock exclusively, zap the range, flush TLBs, release;
/// 3. change the host mapping;
/// 4. `endInvalidation(_:)`.
///
/// The invalidation side is SLAT's own (package access): `GuestMemory`'s host
/// page changes and memslot changes and the backends' dirty-log enabling
/// begin and end it, always as a pair, so a VMM cannot unbalance it.
///
/// *Fault*:
/// 1. ``snapshot()``, **before** looking up the memslot and host page;
/// 2. look up the memslot and host page (no MMU lock);
/// 3. take the MMU lock (shared), call ``needsRetry(frame:since:)`` for the
///    guest frame (or ``needsRetry(range:since:)`` for the whole block it will
///    map); if `true`, release and start again, else install and release.
///
/// Why a fault that passes the check cannot install a translation for a range
/// whose invalidation has started: the check sees one consistent state of the
/// tracker (see below). Take an invalidation I of the fault's frame.
/// - If I began after the check, it takes the MMU lock exclusively after the
///   fault released its shared hold, so its zap removes what the fault installed.
/// - If I began before the check and had not ended, the count is non-zero and
///   the hull covers the frame: retry.
/// - If I ended after the snapshot and before the check, the sequence moved: retry.
/// - If I ended before the snapshot, its host change happened before the
///   snapshot, which the fault takes before its host lookup (the snapshot is
///   an acquiring read that orders the lookup after it), so the fault saw the
///   new host state.
///
/// ## Synchronisation
/// Writers (`begin`/`end`) serialise on an internal ``SpinLock`` and publish
/// through a sequence lock; readers (`snapshot`, `needsRetry`, the
/// properties) take no lock and never block a writer: they read the four
/// words and retry if a writer was active meanwhile, so each read sees a state
/// that existed between two writer updates. All methods may be called from any
/// thread; none calls out.
public final class InvalidationTracker: Sendable {
    /// Serialises begin/end.
    private let writer = SpinLock()
    /// Sequence-lock version: odd while a writer updates the words below.
    @usableFromInline let version = Atomic<UInt64>(0)
    @usableFromInline let sequenceWord = Atomic<UInt64>(0)
    @usableFromInline let countWord = Atomic<UInt64>(0)
    private let rangeStartWord = Atomic<UInt64>(0)
    private let rangeEndWord = Atomic<UInt64>(0)

    /// One consistent reading of the tracker.
    private struct State {
        var sequence: UInt64
        var count: UInt64
        var range: GuestFrameRange
    }

    /// A tracker with no invalidation in progress and sequence zero.
    public init() {}

    // MARK: Invalidation side

    /// Marks the start of an invalidation of `range`: counts it in progress
    /// and widens the in-flight hull to cover it. Call it before taking the
    /// MMU lock exclusively to zap the range. An empty range counts but covers
    /// no frame. Must be matched by one `endInvalidation(_:)`.
    @usableFromInline package func beginInvalidation(_ range: GuestFrameRange) {
        writer.withLock {
            let count = countWord.load(ordering: .relaxed)
            // 2^64 - 1 invalidations in progress at once cannot be begun.
            precondition(count != UInt64.max, "too many invalidations in progress")
            let current = count == 0
                ? GuestFrameRange(start: range.start, count: 0)
                : GuestFrameRange(
                    start: GuestFrameNumber(rangeStartWord.load(ordering: .relaxed)),
                    uncheckedEnd: GuestFrameNumber(rangeEndWord.load(ordering: .relaxed)))
            let merged = current.hull(range)
            publish {
                rangeStartWord.store(merged.start.rawValue, ordering: .relaxed)
                rangeEndWord.store(merged.end.rawValue, ordering: .relaxed)
                countWord.store(count &+ 1, ordering: .relaxed)
            }
        }
    }

    /// Marks the start of an invalidation of the frames holding `range`.
    @usableFromInline package func beginInvalidation(_ range: GuestPhysicalRange) {
        beginInvalidation(GuestFrameRange(covering: range))
    }

    /// Marks the end of an invalidation begun with the same range: bumps the
    /// sequence, then counts the invalidation finished (both in one published
    /// update); when none is left in progress the in-flight hull is reset.
    /// Call it after the host change is visible.
    @usableFromInline package func endInvalidation(_ range: GuestFrameRange) {
        writer.withLock {
            let count = countWord.load(ordering: .relaxed)
            // Begin and end are package-internal: only SLAT's notifier,
            // memslot and dirty-log paths call them, always as a pair.
            precondition(count != 0, "endInvalidation without beginInvalidation")
            let inFlight = GuestFrameRange(
                start: GuestFrameNumber(rangeStartWord.load(ordering: .relaxed)),
                uncheckedEnd: GuestFrameNumber(rangeEndWord.load(ordering: .relaxed)))
            precondition(range.isEmpty || inFlight.contains(range), "endInvalidation of a range never begun")
            let sequence = sequenceWord.load(ordering: .relaxed)
            publish {
                sequenceWord.store(sequence &+ 1, ordering: .relaxed)
                countWord.store(count &- 1, ordering: .relaxed)
                if count == 1 {
                    rangeStartWord.store(0, ordering: .relaxed)
                    rangeEndWord.store(0, ordering: .relaxed)
                }
            }
        }
    }

    /// Marks the end of an invalidation begun for the frames holding `range`.
    @usableFromInline package func endInvalidation(_ range: GuestPhysicalRange) {
        endInvalidation(GuestFrameRange(covering: range))
    }

    /// Runs `update` as one sequence-lock write section (writer lock held).
    private func publish(_ update: () -> Void) {
        let start = version.load(ordering: .relaxed)
        version.store(start &+ 1, ordering: .relaxed)
        // Orders the odd version before the data stores of `update`.
        atomicMemoryFence(ordering: .releasing)
        update()
        version.store(start &+ 2, ordering: .releasing)
    }

    // MARK: Fault side

    /// The current sequence number; take it before looking up the host page.
    /// Lock-free.
    public func snapshot() -> InvalidationSequence {
        // One word needs no sequence-lock read. Acquire: if this reads the
        // bump of an ended invalidation, the release fence in `publish`
        // makes that invalidation's host changes visible to the caller's
        // later lookups.
        InvalidationSequence(sequenceWord.load(ordering: .acquiring))
    }

    /// Whether a fault on `frame` that took `snapshot` before its host lookup
    /// must start again: an invalidation in progress covers the frame, or one
    /// ended since the snapshot. Call it with the MMU lock held (shared or
    /// exclusive). Lock-free.
    public func needsRetry(frame: GuestFrameNumber, since snapshot: InvalidationSequence) -> Bool {
        needsRetry(range: GuestFrameRange(start: frame, count: 1), since: snapshot)
    }

    /// Whether a fault about to map every frame of `range` (a huge block) that
    /// took `snapshot` before its host lookup must start again: an
    /// invalidation in progress overlaps the range, or one ended since the
    /// snapshot. Call it with the MMU lock held. Lock-free.
    @inlinable
    public func needsRetry(range: GuestFrameRange, since snapshot: InvalidationSequence) -> Bool {
        // Common case first, inline in the fault path: a consistent
        // reading of the sequence and count with nothing in flight.
        let before = version.load(ordering: .acquiring)
        if before & 1 == 0 {
            let sequence = sequenceWord.load(ordering: .relaxed)
            let count = countWord.load(ordering: .relaxed)
            atomicMemoryFence(ordering: .acquiring)
            if count == 0 && version.load(ordering: .relaxed) == before { return sequence != snapshot.value }
        }
        return needsRetryReadingRange(range, since: snapshot)
    }

    /// ``needsRetry(range:since:)`` with the in-flight range read too.
    @usableFromInline
    func needsRetryReadingRange(_ range: GuestFrameRange, since snapshot: InvalidationSequence) -> Bool {
        let state = read()
        if state.count != 0 && state.range.overlaps(range) { return true }
        return state.sequence != snapshot.value
    }

    /// Invalidations ended so far (wrapping). Lock-free.
    public var sequence: InvalidationSequence { InvalidationSequence(read().sequence) }

    /// Invalidations begun and not yet ended. Lock-free.
    public var inProgressCount: UInt64 { read().count }

    /// The hull of the ranges of the invalidations in progress, `nil` when none
    /// is (an empty range when only empty ranges are). Lock-free.
    public var inFlightRange: GuestFrameRange? {
        let state = read()
        return state.count == 0 ? nil : state.range
    }

    /// A consistent reading of the words (sequence-lock read side).
    private func read() -> State {
        var backoff = SpinBackoff()
        while true {
            let before = version.load(ordering: .acquiring)
            if before & 1 == 0 {
                let sequence = sequenceWord.load(ordering: .relaxed)
                let count = countWord.load(ordering: .relaxed)
                let start = rangeStartWord.load(ordering: .relaxed)
                let end = rangeEndWord.load(ordering: .relaxed)
                // Orders the data loads before the re-check (and before
                // whatever the caller reads next, e.g. the host page map).
                atomicMemoryFence(ordering: .acquiring)
                if version.load(ordering: .relaxed) == before {
                    // Only now are the words known to be consistent.
                    return State(
                        sequence: sequence, count: count,
                        range: GuestFrameRange(start: GuestFrameNumber(start), count: end &- start))
                }
            }
            backoff.wait()
        }
    }
}
