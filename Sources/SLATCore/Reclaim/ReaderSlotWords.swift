import Synchronization

/// The per-reader-slot announcement words of an ``EpochReclaimer``, which a
/// ``PerSlotReaderWriterLock`` may share so that one store announces both a
/// reclaimer read section and a shared hold of the lock.
///
/// Each slot (a per-vCPU index, ``PageTableContext/readerSlot``) is one word
/// in its own 128-byte block (a cache line and its adjacent-line prefetch
/// partner), so vCPUs announcing on every fault never write a line another
/// vCPU writes. A slot word holds:
/// - bit 0 (``inReadSection``): the slot is inside a reclaimer read section,
///   entered at epoch `word >> epochShift`;
/// - bit 1 (``holdsShared``): the slot holds a sharing lock shared.
///
/// The global epoch word lives in a further block of the same allocation.
///
/// Locking contract: only the thread that owns slot `i` writes word `i`
/// (so it may read its own word with a plain atomic load and store a
/// changed copy); anyone may read any word; every access is atomic.
///
/// Sendable safety argument (`@unchecked`): the stored properties are
/// immutable after `init`; `words` points at `Atomic` words this object
/// allocates in `init` and frees in `deinit`.
public final class ReaderSlotWords: @unchecked Sendable {
    /// Reader slots; slot indices are `0..<slotCount`.
    public let slotCount: Int
    /// Slot `i` is word `i * stride`; the global epoch is word `slotCount * stride`.
    @usableFromInline let words: UnsafeMutablePointer<Atomic<UInt64>>

    /// Words per slot.
    @usableFromInline static var stride: Int { 16 }
    /// Slot-word bit: inside a reclaimer read section.
    @inlinable public static var inReadSection: UInt64 { 1 }
    /// Slot-word bit: holding the sharing lock shared.
    @inlinable public static var holdsShared: UInt64 { 2 }
    /// Shift of the announced epoch in a slot word.
    @inlinable public static var epochShift: UInt64 { 2 }

    /// The most reader slots one set of words holds: twice Linux's
    /// `KVM_MAX_VCPUS` (4096), leaving room for an MMU's own slots.
    public static let maximumSlotCount = 8192

    /// `slotCount` quiescent slots and the global epoch at `initialEpoch`.
    ///
    /// - Throws: `SLATError/unsupportedReaderSlotCount(_:)` unless
    ///   `1...maximumSlotCount` holds `slotCount`.
    public init(slotCount: Int, initialEpoch: UInt64 = 2) throws(SLATError) {
        guard slotCount > 0 && slotCount <= Self.maximumSlotCount else { throw .unsupportedReaderSlotCount(slotCount) }
        self.slotCount = slotCount
        let count = (slotCount + 1) * Self.stride
        words = UnsafeMutableRawPointer.allocate(byteCount: count * 8, alignment: 128)
            .bindMemory(to: Atomic<UInt64>.self, capacity: count)
        for i in 0..<slotCount { (words + i * Self.stride).initialize(to: Atomic(0)) }
        (words + slotCount * Self.stride).initialize(to: Atomic(initialEpoch))
    }

    deinit {
        for i in 0...slotCount { (words + i * Self.stride).deinitialize(count: 1) }
        UnsafeMutableRawPointer(words).deallocate()
    }

    /// Slot `slot`'s word.
    @inlinable
    public func word(slot: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        // SLAT's MMUs check a context's slot at every entry
        // (`SLATError.readerSlotOutOfRange`); a slot reaching here out of
        // range is a caller of these raw words breaking their contract,
        // which would otherwise write another object's memory.
        precondition(slot >= 0 && slot < slotCount, "reader slot out of range")
        return words + slot &* Self.stride
    }

    /// The global epoch word.
    @inlinable
    public var epoch: UnsafeMutablePointer<Atomic<UInt64>> { words + slotCount &* Self.stride }
}
