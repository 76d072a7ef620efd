import SLATCore
import Synchronization

/// The dirty logs of the memslots that have logging on: mode and bitmap per
/// memslot id. Few entries; looked up through a reader-writer lock, and by
/// the fault paths through each vCPU's ``DirtyLogMemo``, which is valid
/// while ``generation`` has not moved.
///
/// Thread safety: every method may be called from any thread.
@usableFromInline
final class DirtyLogRegistry: Sendable {
    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline let memslot: UInt32
        @usableFromInline let mode: DirtyLogMode
        @usableFromInline let bitmap: DirtyBitmap
        /// Who re-protects what the log reports: the harvest or the VMM.
        @usableFromInline let protection: DirtyLogProtection

        @usableFromInline
        init(memslot: UInt32, mode: DirtyLogMode, bitmap: DirtyBitmap, protection: DirtyLogProtection = .onHarvest) {
            self.memslot = memslot
            self.mode = mode
            self.bitmap = bitmap
            self.protection = protection
        }
    }

    @usableFromInline let entries = ReaderWriterLocked<[Entry]>([])
    /// Bumped (inside the write side, after the list changed) by every
    /// ``add(_:)`` and ``remove(memslot:)``. A reader that loads it before
    /// looking an entry up, and finds it unchanged later, knows the list it
    /// saw is still the list.
    @usableFromInline let generation = Atomic<UInt64>(0)

    @usableFromInline init() {}

    /// The log of `memslot`, or `nil` when it does not log.
    @inlinable
    func entry(forMemslot memslot: UInt32) -> Entry? {
        entries.read { list in
            for entry in list where entry.memslot == memslot { return entry }
            return nil
        }
    }

    /// The log whose bitmap covers `frame`, or `nil`.
    @usableFromInline
    func entry(containing frame: GuestFrameNumber) -> Entry? {
        entries.read { list in
            for entry in list where entry.bitmap.frames.contains(frame) { return entry }
            return nil
        }
    }

    @inlinable
    func bitmap(forMemslot memslot: UInt32) -> DirtyBitmap? { entry(forMemslot: memslot)?.bitmap }

    @inlinable
    func mode(forMemslot memslot: UInt32) -> DirtyLogMode? { entry(forMemslot: memslot)?.mode }

    /// Adds a log; returns `false` if the memslot already has one.
    @usableFromInline
    func add(_ entry: Entry) -> Bool {
        entries.write { list in
            if list.contains(where: { $0.memslot == entry.memslot }) { return false }
            list.append(entry)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            return true
        }
    }

    /// Removes and returns the log of `memslot`.
    @usableFromInline
    func remove(memslot: UInt32) -> Entry? {
        entries.write { list in
            guard let index = list.firstIndex(where: { $0.memslot == memslot }) else { return nil }
            let removed = list.remove(at: index)
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            return removed
        }
    }
}
