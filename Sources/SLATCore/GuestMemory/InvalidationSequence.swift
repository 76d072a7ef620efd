/// A snapshot of an ``InvalidationTracker``'s sequence number, taken by a
/// fault before it looks up the host page (KVM's `mmu_seq`).
///
/// A value type; it takes no lock. Compare it only with the tracker that
/// produced it.
@frozen
public struct InvalidationSequence: Hashable, Sendable, CustomStringConvertible {
    /// The number of invalidations that had ended when the snapshot was taken
    /// (wrapping).
    public var value: UInt64

    /// A snapshot with the given sequence number.
    @inlinable
    public init(_ value: UInt64) { self.value = value }

    /// The snapshot as `seq N`.
    public var description: String { "seq \(value)" }
}
