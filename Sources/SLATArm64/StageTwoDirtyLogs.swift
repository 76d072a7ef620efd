import SLATCore
import Synchronization

/// The dirty bitmaps of the memslots whose writes a stage-2 page table logs
/// (KVM/arm64 keeps one per memslot). Few entries; the fault handler looks
/// one up only for a write to a memslot flagged
/// `SLATCore/MemslotFlags/dirtyLogging`, so lookups take the shared side
/// of a reader-writer lock and changes the exclusive side.
///
/// Thread safety: every method may be called from any thread.
public final class StageTwoDirtyLogs: Sendable {
    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline let memslot: UInt32
        @usableFromInline let bitmap: DirtyBitmap
        @usableFromInline let protection: DirtyLogProtection
    }

    @usableFromInline let bitmaps = ReaderWriterLocked<[Entry]>([])
    /// Bumped (sequentially consistent, with the list's write lock held, after the change)
    /// by every start and stop: a vCPU's memo of the bitmap its last
    /// logged write went to (the fault handler's) is valid while it has not
    /// moved since the load made before the lookup that filled it.
    @usableFromInline let generation = Atomic<UInt64>(0)

    /// No memslot logs.
    public init() {}

    /// The bitmap of `memslot`, or `nil` when it does not log.
    @inlinable
    public func bitmap(forMemslot memslot: UInt32) -> DirtyBitmap? {
        bitmaps.read { list in
            for entry in list where entry.memslot == memslot { return entry.bitmap }
            return nil
        }
    }

    /// The memslot and bitmap of the log covering `frame`, or `nil` when
    /// no logging memslot holds it.
    @inlinable
    public func log(containing frame: GuestFrameNumber) -> (memslot: UInt32, bitmap: DirtyBitmap)? {
        bitmaps.read { list in
            for entry in list where entry.bitmap.frames.contains(frame) { return (entry.memslot, entry.bitmap) }
            return nil
        }
    }

    /// Who re-protects what `memslot`'s log reports, or `nil` when it does
    /// not log.
    public func protection(forMemslot memslot: UInt32) -> DirtyLogProtection? {
        bitmaps.read { list in
            for entry in list where entry.memslot == memslot { return entry.protection }
            return nil
        }
    }

    /// Starts a bitmap over `memslot`'s frames, clear or, for a log with
    /// manual protection set initially, with every frame marked; returns
    /// `nil` (and changes nothing) when the memslot already logs.
    func start(_ memslot: Memslot, protection: DirtyLogProtection = .onHarvest) -> DirtyBitmap? {
        bitmaps.write { list in
            if list.contains(where: { $0.memslot == memslot.id }) { return nil }
            let bitmap = DirtyBitmap(frames: memslot.frames, allSet: protection.isInitiallySet)
            list.append(Entry(memslot: memslot.id, bitmap: bitmap, protection: protection))
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            return bitmap
        }
    }

    /// Drops and returns the bitmap of `memslot`.
    @discardableResult
    func stop(memslot: UInt32) -> DirtyBitmap? {
        bitmaps.write { list in
            guard let index = list.firstIndex(where: { $0.memslot == memslot }) else { return nil }
            let removed = list.remove(at: index).bitmap
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            return removed
        }
    }
}
