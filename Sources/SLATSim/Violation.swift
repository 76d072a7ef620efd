import SLATCore

/// A second-level fault the simulated CPU raises (EPT violation or
/// misconfiguration; stage-2 translation, access-flag, permission or
/// address-size fault), with the level where the walk stopped.
@frozen
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    /// Why the access faulted.
    @frozen
    public enum Kind: UInt8, Hashable, Sendable, CustomStringConvertible {
        /// An entry on the walk is not present (translation fault / EPT
        /// violation with no access bits).
        case notPresent
        /// The leaf does not grant the access.
        case permission
        /// The leaf is encoded in a way the hardware rejects (EPT
        /// misconfiguration: write without read, a reserved memory type, a
        /// large page at a level that cannot hold one).
        case misconfiguration
        /// The leaf's access flag is clear and hardware does not set it.
        case accessFlag
        /// The address is beyond the input address space.
        case addressSize

        public var description: String {
            switch self {
            case .notPresent: "not present"
            case .permission: "permission"
            case .misconfiguration: "misconfiguration"
            case .accessFlag: "access flag"
            case .addressSize: "address size"
            }
        }
    }

    /// Why.
    public var kind: Kind
    /// The guest address accessed.
    public var address: GuestPhysicalAddress
    /// The access.
    public var access: AccessKind
    /// Level (height) of the entry where the walk stopped.
    public var level: Int
    /// The permissions the leaf granted (permission faults; empty otherwise).
    public var granted: Permissions

    /// A violation.
    @inlinable
    public init(kind: Kind, address: GuestPhysicalAddress, access: AccessKind, level: Int, granted: Permissions = []) {
        self.kind = kind
        self.address = address
        self.access = access
        self.level = level
        self.granted = granted
    }

    public var description: String {
        "\(kind) violation: \(access) of \(address) at level \(level)" + (kind == .permission ? " (granted \(granted))" : "")
    }
}

/// The outcome of one simulated access.
@frozen
public enum AccessResult: Hashable, Sendable {
    /// Translated: the output address and whether the TLB served it.
    case translated(HostPhysicalAddress, tlbHit: Bool)
    /// Faulted.
    case violation(Violation)

    /// The output address, if translated.
    @inlinable
    public var output: HostPhysicalAddress? {
        if case .translated(let output, _) = self { return output }
        return nil
    }

    /// The violation, if one was raised.
    @inlinable
    public var violation: Violation? {
        if case .violation(let violation) = self { return violation }
        return nil
    }
}

/// The outcome of one hardware walk (without a TLB).
@frozen
public enum HardwareWalkResult: Hashable, Sendable {
    /// The leaf found, as a TLB would cache it.
    case leaf(CachedTranslation)
    /// The fault raised.
    case violation(Violation)

    /// The leaf, if the walk reached a usable one.
    @inlinable
    public var translation: CachedTranslation? {
        if case .leaf(let translation) = self { return translation }
        return nil
    }

    /// The violation, if one was raised.
    @inlinable
    public var violation: Violation? {
        if case .violation(let violation) = self { return violation }
        return nil
    }
}
