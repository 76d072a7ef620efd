/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, deterministic
/// generator, so every randomised simulation is reproduced by its seed alone.
///
/// A value type owned by one thread; copy it to fork a stream.
@frozen
public struct SimulationRandom: RandomNumberGenerator, Sendable {
    /// The generator's state (the seed, advanced by every draw).
    public var state: UInt64

    /// A generator starting at `seed`.
    @inlinable
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` by multiply-high (deterministic whatever the
    /// standard library's own algorithm is). `bound` must be positive.
    @inlinable
    public mutating func below(_ bound: UInt64) -> UInt64 {
        // Internal callers pass a count of at least one choice; a test
        // asking for a value below 0 has a bug of its own (SLATSim is test
        // support).
        precondition(bound > 0, "bound must be positive")
        return next().multipliedFullWidth(by: bound).high
    }

    /// A value in `0..<bound` (`bound > 0`).
    @inlinable
    public mutating func below(_ bound: Int) -> Int { Int(truncatingIfNeeded: below(UInt64(bound))) }

    /// `true` with probability `percent` / 100.
    @inlinable
    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    /// A seed for stream `index` derived from `seed`: streams of one seed
    /// are independent and each is reproducible on its own.
    @inlinable
    public static func derivedSeed(_ seed: UInt64, stream index: Int) -> UInt64 {
        var generator = SimulationRandom(seed: seed ^ (UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93))
        return generator.next()
    }
}
