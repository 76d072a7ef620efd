/// A notifier event of ``GuestMemory``: one phase of the invalidation of a
/// guest frame range in one memslot, delivered to the MMU backends (which zap
/// the range at `start`) and to pfn caches.
///
/// A host change whose range is backed by several memslots produces one event
/// per memslot; all `start`s come before the host change and all `end`s after.
/// Every `start` is followed by one `end` with the same ``id``, range, slot
/// and cause. A value type; it takes no lock.
public struct GuestInvalidation: Hashable, Sendable {
    /// Identifies the change that caused the event (shared by all the ranges
    /// of one change and by its `start` and `end`).
    public var id: UInt64
    /// Before or after the change.
    public var phase: InvalidationPhase
    /// The guest frames whose translations must go.
    public var range: GuestFrameRange
    /// The memslot that holds `range`.
    public var memslot: UInt32
    /// What the change is.
    public var cause: GuestInvalidationCause

    /// An event description; ``GuestMemory`` builds these.
    public init(
        id: UInt64, phase: InvalidationPhase, range: GuestFrameRange, memslot: UInt32,
        cause: GuestInvalidationCause
    ) {
        self.id = id
        self.phase = phase
        self.range = range
        self.memslot = memslot
        self.cause = cause
    }
}
