import SLATCore

/// The order in which a vCPU visits its range.
@frozen
public enum AccessPattern: Hashable, Sendable {
    /// One ``AccessStream/step`` after another, wrapping at the end.
    case sequential
    /// `stride` bytes apart, wrapping at the end (modulo the range size).
    case strided(UInt64)
    /// Uniformly random multiples of ``AccessStream/step``.
    case random
}

/// How a stream's accesses divide between reads, writes and instruction
/// fetches, in percent (the rest of 100 after writes and executes is reads).
@frozen
public struct AccessMix: Hashable, Sendable {
    /// Percent of writes.
    public var writePercent: Int
    /// Percent of privileged instruction fetches.
    public var executePercent: Int

    /// A mix; `writePercent + executePercent` must not exceed 100.
    @inlinable
    public init(writePercent: Int = 0, executePercent: Int = 0) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(writePercent >= 0 && executePercent >= 0 && writePercent + executePercent <= 100, "percentages out of range")
        self.writePercent = writePercent
        self.executePercent = executePercent
    }

    /// Reads only.
    @inlinable public static var readOnly: AccessMix { AccessMix() }
    /// Writes only.
    @inlinable public static var writeOnly: AccessMix { AccessMix(writePercent: 100) }
}

/// Whether vCPUs share the stream's range.
@frozen
public enum RangeSharing: Hashable, Sendable {
    /// Every vCPU accesses the whole range (they contend).
    case overlapping
    /// The range is cut into one equal slice per vCPU (multiples of the
    /// step); vCPU *i* stays in slice *i*.
    case perVCPU
}

/// What each simulated vCPU does: which addresses, in which order, with
/// which access kinds, how many times.
@frozen
public struct AccessStream: Hashable, Sendable {
    /// The guest range accessed.
    public var range: GuestPhysicalRange
    /// The visiting order.
    public var pattern: AccessPattern
    /// The access kinds.
    public var mix: AccessMix
    /// Shared or per-vCPU slices.
    public var sharing: RangeSharing
    /// Accesses each vCPU makes (retries not counted).
    public var accessesPerVCPU: Int
    /// Granularity of addresses (sequential and random patterns), a
    /// positive number of bytes; one page by default.
    public var step: UInt64

    /// A stream.
    @inlinable
    public init(range: GuestPhysicalRange, pattern: AccessPattern = .sequential, mix: AccessMix = .readOnly,
                sharing: RangeSharing = .overlapping, accessesPerVCPU: Int, step: UInt64 = 4096) {
        // A test's own configuration: SLATSim is test support, never on a
        // VMM's path, and stopping here is that test failing at its setup.
        precondition(step > 0 && range.size >= step, "the range must hold at least one step")
        self.range = range
        self.pattern = pattern
        self.mix = mix
        self.sharing = sharing
        self.accessesPerVCPU = accessesPerVCPU
        self.step = step
    }
}

/// One vCPU's position in an ``AccessStream``: yields its addresses and
/// access kinds deterministically from the seed. A plain value with no
/// allocation per access.
@frozen
public struct AccessStreamCursor: Sendable {
    /// The stream.
    public let stream: AccessStream
    /// First address of this vCPU's part of the range.
    public let start: UInt64
    /// Bytes of this vCPU's part of the range.
    public let size: UInt64
    @usableFromInline var random: SimulationRandom
    @usableFromInline var index: UInt64 = 0

    /// The cursor of vCPU `vcpu` of `vcpuCount` for `seed` (each vCPU's
    /// sequence depends only on the seed and its index).
    public init(stream: AccessStream, vcpu: Int, vcpuCount: Int, seed: UInt64) {
        self.stream = stream
        switch stream.sharing {
        case .overlapping:
            start = stream.range.start.rawValue
            size = stream.range.size
        case .perVCPU:
            let steps = stream.range.size / stream.step / UInt64(vcpuCount)
            // A test's own configuration: SLATSim is test support, never on a
            // VMM's path, and stopping here is that test failing at its setup.
            precondition(steps > 0, "the range is too small for one step per vCPU")
            size = steps * stream.step
            start = stream.range.start.rawValue + UInt64(vcpu) * size
        }
        random = SimulationRandom(seed: SimulationRandom.derivedSeed(seed, stream: vcpu))
    }

    /// The next access.
    @inlinable
    public mutating func next() -> (address: GuestPhysicalAddress, kind: AccessKind) {
        let offset: UInt64
        switch stream.pattern {
        case .sequential: offset = (index &* stream.step) % size
        case .strided(let stride): offset = (index &* stride) % size
        case .random: offset = random.below(size / stream.step) &* stream.step
        }
        index &+= 1
        let kind: AccessKind
        if stream.mix.writePercent == 0 && stream.mix.executePercent == 0 {
            kind = .read
        } else {
            let roll = Int(truncatingIfNeeded: random.below(UInt64(100)))
            kind = roll < stream.mix.writePercent ? .write
                : roll < stream.mix.writePercent + stream.mix.executePercent ? .executePrivileged : .read
        }
        return (GuestPhysicalAddress(start &+ offset), kind)
    }
}
