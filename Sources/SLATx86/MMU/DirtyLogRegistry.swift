import SLATCore

/// The dirty logs of the memslots that have logging on: mode and bitmap per
/// memslot id. Few entries; looked up by faults that grant write access in
/// a dirty-logged slot, so reads take only the shared side of a
/// reader-writer lock.
///
/// Thread safety: every method may be called from any thread.
@usableFromInline
final class DirtyLogRegistry: Sendable {
    @usableFromInline
    struct Entry: Sendable {
        @usableFromInline let memslot: UInt32
        @usableFromInline let mode: DirtyLogMode
        @usableFromInline let bitmap: DirtyBitmap
    }

    @usableFromInline let entries = ReaderWriterLocked<[Entry]>([])

    @usableFromInline init() {}

    /// The log of `memslot`, or `nil` when it does not log.
    @inlinable
    func entry(forMemslot memslot: UInt32) -> Entry? {
        entries.read { list in
            for entry in list where entry.memslot == memslot { return entry }
            return nil
        }
    }

    @inlinable
    func bitmap(forMemslot memslot: UInt32) -> DirtyBitmap? { entry(forMemslot: memslot)?.bitmap }

    @inlinable
    func mode(forMemslot memslot: UInt32) -> DirtyLogMode? { entry(forMemslot: memslot)?.mode }

    /// Adds a log; returns `false` if the memslot already has one.
    func add(_ entry: Entry) -> Bool {
        entries.write { list in
            if list.contains(where: { $0.memslot == entry.memslot }) { return false }
            list.append(entry)
            return true
        }
    }

    /// Removes and returns the log of `memslot`.
    func remove(memslot: UInt32) -> Entry? {
        entries.write { list in
            guard let index = list.firstIndex(where: { $0.memslot == memslot }) else { return nil }
            return list.remove(at: index)
        }
    }
}
