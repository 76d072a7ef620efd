/// Fixed-point and SI-scaled text for figures, without Foundation.
enum DecimalText {
    /// `value` rounded to `digits` decimals (`fixed(1.23456, 2)` is `"1.23"`).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return "\(value)" }
        let units = UInt64(scaled)
        let whole = units / UInt64(scale)
        var text = value < 0 && units != 0 ? "-\(whole)" : "\(whole)"
        if digits > 0 {
            let fraction = String(units % UInt64(scale))
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    /// `value` with an SI prefix and three significant-ish digits
    /// (`scaled(456_200_000)` is `"456.2M"`).
    static func scaled(_ value: Double) -> String {
        let prefixes: [(Double, String)] = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        for (factor, name) in prefixes where value >= factor {
            return fixed(value / factor, 1) + name
        }
        return fixed(value, 1)
    }

    /// `value` padded with spaces on the left to `width` characters.
    static func padLeft(_ value: String, _ width: Int) -> String {
        value.count >= width ? value : String(repeating: " ", count: width - value.count) + value
    }

    /// `value` padded with spaces on the right to `width` characters.
    static func padRight(_ value: String, _ width: Int) -> String {
        value.count >= width ? value : value + String(repeating: " ", count: width - value.count)
    }
}
