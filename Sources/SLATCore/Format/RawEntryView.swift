/// A typed view of one raw 64-bit table entry, giving its format's bit and
/// field accessors a shared way to read and write the word.
///
/// The format-specific views (`ExtendedPageTableEntry`,
/// `StageTwoDescriptor`) conform and name the bits; this protocol knows
/// none. A value type: it changes its copy of the word, never the table.
public protocol RawEntryView {
    /// The 64-bit entry.
    var rawValue: UInt64 { get set }
}

extension RawEntryView {
    /// Whether any bit of `mask` is set.
    @inlinable
    public func bit(_ mask: UInt64) -> Bool { rawValue & mask != 0 }

    /// Sets (`value` true) or clears the bits of `mask`.
    @inlinable
    public mutating func setBit(_ mask: UInt64, _ value: Bool) {
        rawValue = value ? rawValue | mask : rawValue & ~mask
    }

    /// The field selected by `mask`, shifted down by `shift`.
    @inlinable
    public func field(_ mask: UInt64, _ shift: UInt64) -> UInt64 { (rawValue & mask) >> shift }

    /// Replaces the field selected by `mask` with `value` shifted up by
    /// `shift` (bits of `value` outside the field are dropped).
    @inlinable
    public mutating func setField(_ mask: UInt64, _ shift: UInt64, _ value: UInt64) {
        rawValue = rawValue & ~mask | value << shift & mask
    }
}
