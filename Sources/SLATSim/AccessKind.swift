import SLATCore

/// What a guest access does with the memory it reaches, and so which
/// permission of a second-level leaf it needs.
@frozen
public enum AccessKind: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A data read.
    case read
    /// A data write (sets the dirty flag where hardware tracks it).
    case write
    /// An instruction fetch by privileged (supervisor / EL1) code.
    case executePrivileged
    /// An instruction fetch by user (EL0) code.
    case executeUser

    /// The permission a leaf must grant for this access.
    @inlinable
    public var requiredPermission: Permissions {
        switch self {
        case .read: .read
        case .write: .write
        case .executePrivileged: .executePrivileged
        case .executeUser: .executeUser
        }
    }

    public var description: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .executePrivileged: "execute (privileged)"
        case .executeUser: "execute (user)"
        }
    }
}
