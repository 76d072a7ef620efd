/// The receipt for a registered listener, used to remove it again. Only
/// meaningful to the object that issued it.
///
/// A value type; it takes no lock.
public struct ListenerToken: Hashable, Sendable {
    /// The issuer's number for the listener.
    public let id: UInt64

    /// A token with the given number (issuers create these).
    public init(id: UInt64) { self.id = id }
}
