/// The number syntax of the `slat` tool and its mapping scripts, and the
/// way it prints sizes and addresses.
///
/// Numbers are `0x` hexadecimal or decimal, with `_` allowed between digits;
/// sizes may end in `K`, `M`, `G` or `T` (binary multiples). Letters (the
/// `0x` prefix, hex digits, suffixes) may be either case; there is no sign.
public enum NumberSyntax {
    /// The value of `text`, or `nil` when it is not a number (or overflows).
    ///
    /// - Parameters:
    ///   - allowsSuffix: whether a `K`/`M`/`G`/`T` multiplier is accepted.
    ///   - text: the number as written (`0x`-hex or decimal, `_` separators).
    public static func parse(_ text: Substring, allowsSuffix: Bool = true) -> UInt64? {
        var digits = text.filter { $0 != "_" }[...]
        var multiplier: UInt64 = 1
        var radix = 10
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
            radix = 16
            digits = digits.dropFirst(2)
        } else if allowsSuffix, let last = digits.last {
            switch last {
            case "K", "k": multiplier = 1 << 10
            case "M", "m": multiplier = 1 << 20
            case "G", "g": multiplier = 1 << 30
            case "T", "t": multiplier = 1 << 40
            default: break
            }
            if multiplier != 1 { digits = digits.dropLast() }
        }
        // Only digits of the radix: `UInt64(_:radix:)` alone would also take a sign.
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit && (radix == 16 || $0.isWholeNumber) }),
              let value = UInt64(digits, radix: radix) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// The value of `text` (as ``parse(_:allowsSuffix:)``).
    public static func parse(_ text: String, allowsSuffix: Bool = true) -> UInt64? {
        parse(text[...], allowsSuffix: allowsSuffix)
    }

    /// `0x` and the hexadecimal digits of `value`, zero-padded to `width` digits.
    public static func hex(_ value: UInt64, width: Int = 0) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The shortest exact size name: `4K`, `2M`, `1G`, `3T`, or bytes.
    public static func size(_ bytes: UInt64) -> String {
        let units: [(shift: UInt64, suffix: String)] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")]
        for unit in units where bytes >= 1 << unit.shift && bytes & ((1 << unit.shift) - 1) == 0 {
            return "\(bytes >> unit.shift)\(unit.suffix)"
        }
        return "\(bytes)"
    }
}
