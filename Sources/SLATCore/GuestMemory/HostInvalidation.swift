/// A notifier event of a ``HostPageMap``: one phase of a change that removes
/// or reduces the host mappings of a range.
///
/// Every `start` is followed by one `end` with the same ``id``, range and
/// kind. A value type; it takes no lock.
public struct HostInvalidation: Hashable, Sendable {
    /// Identifies the change; its `start` and `end` carry the same id.
    public var id: UInt64
    /// Before or after the change.
    public var phase: InvalidationPhase
    /// The addresses whose mappings change: the range asked for, widened to
    /// whole huge mappings where one had to be split.
    public var range: HostVirtualRange
    /// What the change is.
    public var kind: HostInvalidationKind

    /// An event description; ``HostPageMap`` builds these.
    public init(id: UInt64, phase: InvalidationPhase, range: HostVirtualRange, kind: HostInvalidationKind) {
        self.id = id
        self.phase = phase
        self.range = range
        self.kind = kind
    }
}
