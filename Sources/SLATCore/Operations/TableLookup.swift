/// What a lookup needs besides the format, resolved once when a
/// ``PageTable`` is made instead of on every lookup: the root's entries as a
/// pointer, the memory's linear map, and the input address bound.
///
/// A random lookup is bound by the instructions around its dependent loads,
/// so each of these saves work on every ``PageTable/translate(_:)`` and
/// ``PageTable/outputAddress(of:)``.
@usableFromInline @frozen
struct TableLookup: @unchecked Sendable {
    // @unchecked Sendable: immutable values; the root pointer and the linear
    // map point into table memory, which is only ever accessed through
    // atomics (rule 1 of Docs/concurrency.md), and live as long as the table's memory.
    /// The entries of the root (all concatenated root tables).
    @usableFromInline let rootEntries: EntryPointer
    /// The memory's linear map, if it has one (fixed for a memory's lifetime).
    @usableFromInline let linear: LinearTableMap?
    /// `1 << inputAddressBits`: addresses at or above it are outside the tables.
    @usableFromInline let inputLimit: UInt64

    /// Resolves the lookup values of a table. Traps if `format` breaks the
    /// protocol's geometry (a table page of 8-byte entries resolves
    /// `granuleShift - 3` bits), which the lookup's 4 KiB walk relies on.
    @inlinable
    init<Format: PageTableFormat, Memory: TableMemory>(format: Format, memory: Memory, root: HostPhysicalAddress) {
        // Internal: built only by PageTable's initialisers, which refuse a
        // format whose geometry breaks this first.
        precondition(format.bitsPerLevel == format.granuleShift - 3, "bitsPerLevel must be granuleShift - 3")
        let linear = memory.linearMap
        self.linear = linear
        self.rootEntries = linear?.entries(at: root) ?? memory.entries(at: root)
        self.inputLimit = format.inputAddressSpaceSize
    }
}
