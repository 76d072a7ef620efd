/// Why a guest frame range is being invalidated.
///
/// A value type; it takes no lock.
public enum GuestInvalidationCause: Hashable, Sendable {
    /// The host changed the memory behind the range (a notifier event).
    case host(HostInvalidationKind)
    /// The memslot holding the range is being deleted.
    case memslotRemoved
    /// The memslot holding the range is becoming read-only.
    case memslotMadeReadOnly
    /// The memslot's memory type flags (``MemslotFlags/device``,
    /// ``MemslotFlags/nonCacheable``) changed: translations of the old
    /// type must go.
    case memslotMemoryTypeChanged
}
