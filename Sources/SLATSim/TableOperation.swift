import SLATCore

/// One step of a randomised differential or stress test: a table change,
/// an explicit invalidation, or a vCPU access. Every operation is valid in
/// any table state, so a shrunk sequence (some steps removed) still runs.
@frozen
public enum TableOperation: Hashable, Sendable, CustomStringConvertible {
    /// Map `range` to `output` with `permissions`, leaves at most `maximumLevel` (nil: largest).
    case map(GuestPhysicalRange, output: HostPhysicalAddress, permissions: Permissions, maximumLevel: Int?)
    /// Unmap `range`.
    case unmap(GuestPhysicalRange)
    /// Grant and revoke permissions over `range`.
    case protect(GuestPhysicalRange, grant: Permissions, revoke: Permissions)
    /// Re-map `range` (inside a larger leaf) identically with leaves of at
    /// most `level`: splits the leaf, the guest sees no change.
    case split(GuestPhysicalRange, output: HostPhysicalAddress, permissions: Permissions, level: Int)
    /// Map an aligned block with the largest leaves: merges the tables below.
    case merge(GuestPhysicalRange, output: HostPhysicalAddress, permissions: Permissions)
    /// An explicit invalidation of a range (`nil`: the whole context).
    case invalidate(GuestPhysicalRange?)
    /// vCPU `vcpu` accesses `address`.
    case access(GuestPhysicalAddress, AccessKind, vcpu: Int)

    public var description: String {
        switch self {
        case .map(let range, let output, let permissions, let level):
            "map \(range) → \(output) \(permissions)" + (level.map { " max level \($0)" } ?? "")
        case .unmap(let range): "unmap \(range)"
        case .protect(let range, let grant, let revoke): "protect \(range) grant \(grant) revoke \(revoke)"
        case .split(let range, let output, let permissions, let level): "split \(range) → \(output) \(permissions) to level \(level)"
        case .merge(let range, let output, let permissions): "merge \(range) → \(output) \(permissions)"
        case .invalidate(let range?): "invalidate \(range)"
        case .invalidate(nil): "invalidate context"
        case .access(let address, let kind, let vcpu): "vCPU \(vcpu) \(kind) \(address)"
        }
    }

    /// The guest range the operation touches (`nil` for a context invalidation).
    public var range: GuestPhysicalRange? {
        switch self {
        case .map(let range, _, _, _), .unmap(let range), .protect(let range, _, _), .split(let range, _, _, _), .merge(let range, _, _):
            range
        case .invalidate(let range): range
        case .access(let address, _, _): GuestPhysicalRange(start: address, size: 1)
        }
    }
}
