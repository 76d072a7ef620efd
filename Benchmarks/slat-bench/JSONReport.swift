/// The `--json` report: one JSON object per result, one per line.
enum JSONReport {
    /// The JSON object line for `result`.
    static func line(_ result: BenchResult) -> String {
        let counters = result.counters
        var fields: [(String, String)] = [
            ("workload", string(result.metric.rawValue)),
            ("format", string(result.format.rawValue)),
            ("threads", "\(result.threads)"),
            ("size", "\(result.size)"),
            ("ops", "\(result.ops)"),
            ("unit", string(result.metric.unit)),
            ("api", string(result.metric.entryPoint(on: result.format))),
            ("seconds", number(result.medianSeconds)),
            ("nsPerOp", number(result.nsPerOp)),
            ("opsPerSecond", number(result.opsPerSecond)),
            ("repeats", "\(result.repeats)"),
            ("minNsPerOp", number(result.minNsPerOp)),
            ("maxNsPerOp", number(result.maxNsPerOp)),
        ]
        if counters.measured {
            fields += [
                ("tlbAddressInvalidations", "\(counters.tlbAddresses)"),
                ("tlbRangeInvalidations", "\(counters.tlbRanges)"),
                ("tlbContextInvalidations", "\(counters.tlbContexts)"),
                ("tablesAllocated", "\(counters.tablesAllocated)"),
                ("tablesFreed", "\(counters.tablesFreed)"),
            ]
        }
        if let pattern = result.metric.pattern {
            fields.insert(("pattern", string(pattern.rawValue)), at: 2)
        }
        if let target = result.target {
            fields.append(("targetNsPerOp", number(target.limitNsPerOp)))
            fields.append(("verdict", string(target.passes(result.nsPerOp) ? "PASS" : "MISS")))
        }
        return "{" + fields.map { "\(string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var escaped = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped + "\""
    }

    /// A JSON number (`null` for a value JSON cannot represent).
    static func number(_ value: Double) -> String {
        value.isFinite ? "\(value)" : "null"
    }
}
