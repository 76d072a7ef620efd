/// A 64-bit address or frame number in one address space.
///
/// Each address space has its own type so that a guest-physical address can
/// never be passed where a host-physical one is expected. The alignment
/// helpers are shared through this protocol.
public protocol AddressValue: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address as a number.
    var rawValue: UInt64 { get }
    /// Wraps a number as an address of this space.
    init(_ rawValue: UInt64)
    /// What ``AddressRange/description`` writes before a range of this
    /// space (`""` for guest-physical, `"hva "`, `"frames "`...).
    static var rangeLabel: String { get }
}

extension AddressValue {
    @inlinable
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Whether the address is a multiple of `alignment`. Any alignment is
    /// accepted: a power of two (the usual case, a mask) or any other value
    /// (a division); 0 and 1 impose nothing.
    @inlinable
    public func isAligned(to alignment: UInt64) -> Bool {
        if alignment & (alignment &- 1) == 0 {
            return alignment == 0 || rawValue & (alignment &- 1) == 0
        }
        return rawValue % alignment == 0
    }

    /// The largest multiple of `alignment` not above the address (the
    /// address itself for 0 and 1; any other value is accepted).
    @inlinable
    public func alignedDown(to alignment: UInt64) -> Self {
        if alignment & (alignment &- 1) == 0 {
            return alignment == 0 ? self : Self(rawValue & ~(alignment &- 1))
        }
        return Self(rawValue &- rawValue % alignment)
    }

    /// The smallest multiple of `alignment` not below the address (the
    /// address itself for 0 and 1; any other value is accepted), or `nil`
    /// when that is past the end of the 64-bit space.
    @inlinable
    public func alignedUp(to alignment: UInt64) -> Self? {
        let down = alignedDown(to: alignment)
        if down == self { return self }
        let (sum, overflow) = down.rawValue.addingReportingOverflow(alignment)
        return overflow ? nil : Self(sum)
    }

    /// The address `bytes` further on (wrapping is a programmer error).
    @inlinable
    public func advanced(by bytes: UInt64) -> Self { Self(rawValue + bytes) }

    /// Bytes from `other` up to this address (`other` must not be above it).
    @inlinable
    public func distance(from other: Self) -> UInt64 { rawValue - other.rawValue }

    public var description: String { "0x" + String(rawValue, radix: 16) }

    /// Default: no label.
    public static var rangeLabel: String { "" }
}

/// Byte offset of a 4 KiB frame number: frame numbers are always in 4 KiB
/// units, whatever the translation granule, as KVM's gfn and pfn are.
public let frameShift: UInt64 = 12

/// A guest-physical address (Intel: GPA; Arm: IPA), the input of a
/// second-level translation.
@frozen
public struct GuestPhysicalAddress: AddressValue {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// The frame that holds this address.
    @inlinable public var frame: GuestFrameNumber { GuestFrameNumber(rawValue >> frameShift) }
}

/// A guest frame number: a guest-physical address divided by 4 KiB.
@frozen
public struct GuestFrameNumber: AddressValue {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// Frame ranges print as `frames [start, end)`.
    public static var rangeLabel: String { "frames " }
    /// The first byte of the frame.
    @inlinable public var address: GuestPhysicalAddress { GuestPhysicalAddress(rawValue << frameShift) }
}

/// A host-physical address (Intel: HPA; Arm: PA), the output of a
/// second-level translation and the address of every table page.
@frozen
public struct HostPhysicalAddress: AddressValue {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// The frame that holds this address.
    @inlinable public var frame: HostFrameNumber { HostFrameNumber(rawValue >> frameShift) }
}

/// A host frame number (KVM's pfn): a host-physical address divided by 4 KiB.
@frozen
public struct HostFrameNumber: AddressValue {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// The first byte of the frame.
    @inlinable public var address: HostPhysicalAddress { HostPhysicalAddress(rawValue << frameShift) }
}

/// A host-virtual address (KVM's hva): where the VMM's process sees guest memory.
@frozen
public struct HostVirtualAddress: AddressValue {
    public var rawValue: UInt64
    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    /// Host-virtual ranges print as `hva [start, end)`.
    public static var rangeLabel: String { "hva " }
}
