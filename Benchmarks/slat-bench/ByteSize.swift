/// Byte counts as the command line spells them (`1G`, `512M`, `64K`,
/// `2GiB`, `4096`) and as reports print them. Every suffix is binary:
/// `K` is 1024 bytes.
enum ByteSize {
    /// The byte count `text` names, or `nil` if it is not a positive
    /// integer with an optional `K`, `M`, `G` or `T` suffix (optionally
    /// followed by `B` or `iB`, any case) or overflows 64 bits.
    static func parse(_ text: String) -> UInt64? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = UInt64(digits) else { return nil }
        let suffix = text.dropFirst(digits.count).lowercased()
        let shift: UInt64
        switch suffix {
        case "", "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        case "t", "tb", "tib": shift = 40
        default: return nil
        }
        guard value > 0, value <= UInt64.max >> shift else { return nil }
        return value << shift
    }

    /// `bytes` in the largest binary unit that divides it exactly
    /// (`1 GiB`, `512 MiB`, `4100 KiB`), else in bytes.
    static func format(_ bytes: UInt64) -> String {
        let units: [(UInt64, String)] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
        for (shift, name) in units where bytes >= 1 << shift && bytes & ((1 << shift) - 1) == 0 {
            return "\(bytes >> shift) \(name)"
        }
        return "\(bytes) B"
    }
}
