import SLATCore

/// One invalidation a TLB received: the operation a detector report names
/// when it blames a missing or insufficient flush.
@frozen
public enum TLBInvalidation: Hashable, Sendable, CustomStringConvertible {
    /// By address, with the level hint (height) if one was given.
    case address(GuestPhysicalAddress, level: Int?)
    /// Every translation overlapping a range.
    case range(GuestPhysicalRange)
    /// The whole context.
    case all

    public var description: String {
        switch self {
        case .address(let address, let level?): "invalidate \(address) level \(level)"
        case .address(let address, nil): "invalidate \(address) (any level)"
        case .range(let range): "invalidate range \(range)"
        case .all: "invalidate context"
        }
    }
}
