import Synchronization

/// The live set of memslots of one guest, sorted by guest frame so that a
/// fault finds its slot by binary search (KVM's `kvm_memslots`).
///
/// Every change bumps ``generation``, so a cache that remembers a lookup
/// (a pfn cache) can tell that it must look again.
///
/// Locking contract: internally locked with a writer-preferring
/// reader-writer spin lock; lookups take it shared and run concurrently,
/// changes take it exclusively. Every method may be called from any thread;
/// none calls out while holding the lock. Results are copies, current at the
/// moment of the call. A table change does not by itself invalidate MMU
/// translations: ``GuestMemory`` wraps removals in an invalidation.
public final class MemslotTable: Sendable {
    private struct State: Sendable {
        /// Sorted by `baseFrame`; guest ranges pairwise disjoint.
        var slots: [Memslot] = []
        var generation: UInt64 = 0
    }

    private let state = ReaderWriterLocked(State())
    /// ``State/generation``, mirrored for lock-free reads: stored (release)
    /// inside every change, after the slots changed, while the write lock
    /// is held, so a reader that loads a generation (acquire) and then looks
    /// up under the shared lock sees slots at least as new as it.
    @usableFromInline let publishedGeneration = Atomic<UInt64>(0)

    /// An empty table at generation zero.
    public init() {}

    /// Adds `slot`.
    ///
    /// Throws ``SLATError/invalidMemslot(slot:)`` for zero pages, a host
    /// address that is not 4 KiB-aligned or a range that wraps,
    /// ``SLATError/duplicateMemslot(slot:)`` when the id is taken, and
    /// ``SLATError/overlappingMemslot(slot:existing:)`` when its guest frames
    /// overlap another slot's. Host ranges may overlap (aliases).
    public func insert(_ slot: Memslot) throws(SLATError) {
        guard slot.isWellFormed else { throw .invalidMemslot(slot: slot.id) }
        try state.write { (state: inout State) throws(SLATError) in
            if state.slots.contains(where: { $0.id == slot.id }) {
                throw .duplicateMemslot(slot: slot.id)
            }
            let index = Self.firstIndex(in: state.slots, endingAfter: slot.baseFrame)
            if index < state.slots.count, state.slots[index].frames.overlaps(slot.frames) {
                throw .overlappingMemslot(slot: slot.id, existing: state.slots[index].id)
            }
            state.slots.insert(slot, at: index)
            state.generation &+= 1
            publishedGeneration.store(state.generation, ordering: .releasing)
        }
    }

    /// Removes the slot named `id` and returns it; throws
    /// ``SLATError/unknownMemslot(slot:)`` when there is none.
    @discardableResult
    public func remove(id: UInt32) throws(SLATError) -> Memslot {
        try state.write { (state: inout State) throws(SLATError) in
            guard let index = state.slots.firstIndex(where: { $0.id == id }) else {
                throw .unknownMemslot(slot: id)
            }
            let removed = state.slots.remove(at: index)
            state.generation &+= 1
            publishedGeneration.store(state.generation, ordering: .releasing)
            return removed
        }
    }

    /// Replaces the flags of the slot named `id` and returns the slot as it
    /// was before; throws ``SLATError/unknownMemslot(slot:)`` when there is none.
    @discardableResult
    public func updateFlags(id: UInt32, to flags: MemslotFlags) throws(SLATError) -> Memslot {
        try state.write { (state: inout State) throws(SLATError) in
            guard let index = state.slots.firstIndex(where: { $0.id == id }) else {
                throw .unknownMemslot(slot: id)
            }
            let old = state.slots[index]
            state.slots[index].flags = flags
            state.generation &+= 1
            publishedGeneration.store(state.generation, ordering: .releasing)
            return old
        }
    }

    /// The slot holding `frame`, or `nil` (binary search, shared lock).
    public func lookup(frame: GuestFrameNumber) -> Memslot? {
        state.read { state in Self.slot(in: state.slots, holding: frame) }
    }

    /// The slot holding `frame` and the generation of the table it was found
    /// in, read together under one shared hold.
    public func versionedLookup(frame: GuestFrameNumber) -> (memslot: Memslot?, generation: UInt64) {
        state.read { state in (Self.slot(in: state.slots, holding: frame), state.generation) }
    }

    /// The slot named `id`, or `nil`.
    public func memslot(id: UInt32) -> Memslot? {
        state.read { state in state.slots.first(where: { $0.id == id }) }
    }

    /// Bumped (wrapping) by every insert, remove and flag update. One
    /// acquiring load, no lock (the page fault reads it twice per fault): a
    /// lookup made after reading it sees that generation's slots or newer.
    @inlinable public var generation: UInt64 { publishedGeneration.load(ordering: .acquiring) }

    /// Every slot, sorted by base frame.
    public var memslots: [Memslot] { state.read { $0.slots } }

    /// How many slots the table holds.
    public var count: Int { state.read { $0.slots.count } }

    /// The slots whose host range shares a byte with `range`, sorted by base
    /// frame (several when slots alias the same host memory). Used to turn a
    /// host notifier range into guest frame ranges.
    public func memslots(overlapping range: HostVirtualRange) -> [Memslot] {
        state.read { state in state.slots.filter { $0.hostRange.overlaps(range) } }
    }

    /// Index of the first slot whose guest range ends after `frame`: the only
    /// slot that can hold `frame`, or where a slot starting at `frame` goes.
    private static func firstIndex(in slots: [Memslot], endingAfter frame: GuestFrameNumber) -> Int {
        var low = 0
        var high = slots.count
        while low < high {
            let middle = low + (high - low) / 2
            if slots[middle].frames.end <= frame {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return low
    }

    private static func slot(in slots: [Memslot], holding frame: GuestFrameNumber) -> Memslot? {
        let index = firstIndex(in: slots, endingAfter: frame)
        guard index < slots.count, slots[index].contains(frame) else { return nil }
        return slots[index]
    }
}
