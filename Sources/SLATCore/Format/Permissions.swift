/// Access rights a second-level leaf grants to the guest.
///
/// Both formats distinguish execution by privileged and by user code (EPT
/// with mode-based execute control, stage 2 with FEAT_XNX). A format without
/// that feature accepts only both or neither execute right; see
/// ``PageTableFormat/validate(_:)``.
@frozen
public struct Permissions: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    // Computed, inlinable constants rather than stored statics: a stored
    // static is read through a global accessor the optimiser cannot hoist
    // out of per-entry loops.

    @inlinable public static var read: Permissions { Permissions(rawValue: 1 << 0) }
    @inlinable public static var write: Permissions { Permissions(rawValue: 1 << 1) }
    /// Instruction fetch by privileged (supervisor / EL1) guest code.
    @inlinable public static var executePrivileged: Permissions { Permissions(rawValue: 1 << 2) }
    /// Instruction fetch by user (EL0) guest code.
    @inlinable public static var executeUser: Permissions { Permissions(rawValue: 1 << 3) }

    /// Instruction fetch at every privilege.
    @inlinable public static var execute: Permissions { Permissions(rawValue: 0b1100) }
    @inlinable public static var readWrite: Permissions { Permissions(rawValue: 0b0011) }
    @inlinable public static var readExecute: Permissions { Permissions(rawValue: 0b1101) }
    @inlinable public static var all: Permissions { Permissions(rawValue: 0b1111) }

    /// `rwx`-style text: `r`, `w`, then `x` (both), `s` (privileged only),
    /// `u` (user only) or `-`.
    public var description: String {
        var text = contains(.read) ? "r" : "-"
        text += contains(.write) ? "w" : "-"
        switch (contains(.executePrivileged), contains(.executeUser)) {
        case (true, true): text += "x"
        case (true, false): text += "s"
        case (false, true): text += "u"
        case (false, false): text += "-"
        }
        return text
    }
}

/// The memory type a leaf gives the guest's accesses.
///
/// Formats encode the types they support (``PageTableFormat/validate(_:)``
/// rejects the others); decoding an encoding the architecture reserves
/// yields ``reserved(_:)`` with the raw field, so images are read bit-exactly.
public enum MemoryType: Hashable, Sendable, CustomStringConvertible {
    /// Normal memory, write-back cacheable (EPT WB=6, stage-2 MemAttr 0xF).
    case writeBack
    /// Normal memory, write-through (EPT WT=4, stage-2 MemAttr 0xA).
    case writeThrough
    /// EPT write-protected (WP=5). Stage 2 has no such type.
    case writeProtected
    /// Normal memory, not cacheable, writes may combine (EPT WC=1, stage-2 normal-NC 0x5).
    case writeCombining
    /// Strongly ordered, uncacheable (EPT UC=0, stage-2 Device-nGnRnE 0x0).
    case uncached
    /// Device memory with early write acknowledgement (stage-2 Device-nGnRE 0x1). EPT has no such type.
    case device
    /// A field value the architecture reserves or this library does not name.
    case reserved(UInt8)

    public var description: String {
        switch self {
        case .writeBack: "WB"
        case .writeThrough: "WT"
        case .writeProtected: "WP"
        case .writeCombining: "WC"
        case .uncached: "UC"
        case .device: "DEV"
        case .reserved(let raw): "RSV(\(raw))"
        }
    }
}

/// Everything a leaf entry says about its page besides the output address.
@frozen
public struct LeafAttributes: Hashable, Sendable {
    public var permissions: Permissions
    public var memoryType: MemoryType
    /// Accessed flag (EPT bit 8 / stage-2 AF). Stage 2 faults on access with AF clear.
    public var accessed: Bool
    /// Dirty flag (EPT bit 9). Formats without one (stage 2) always decode `false`
    /// and reject `true` in ``PageTableFormat/validate(_:)``.
    public var dirty: Bool
    /// The format's software-available bits, packed from bit 0 upward
    /// (``PageTableFormat/softwareBitCount`` of them).
    public var softwareBits: UInt16

    @inlinable
    public init(
        permissions: Permissions,
        memoryType: MemoryType = .writeBack,
        accessed: Bool = true,
        dirty: Bool = false,
        softwareBits: UInt16 = 0
    ) {
        self.permissions = permissions
        self.memoryType = memoryType
        self.accessed = accessed
        self.dirty = dirty
        self.softwareBits = softwareBits
    }
}
