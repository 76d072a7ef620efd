/// A small ordered JSON value for the files the tool writes (key order is
/// kept so the files diff well).
public enum JSONValue: Hashable, Sendable {
    /// A string (escaped when rendered).
    case string(String)
    /// An integer.
    case number(Int)
    /// `true` or `false`.
    case bool(Bool)
    /// An array.
    case array([JSONValue])
    /// An object, members in order.
    case object([JSONMember])

    /// An object from key-value pairs in order.
    public static func object(_ pairs: [(String, JSONValue)]) -> JSONValue {
        .object(pairs.map { JSONMember(key: $0.0, value: $0.1) })
    }

    /// Appends a member to an object (no effect on other values).
    public mutating func append(_ key: String, _ value: JSONValue) {
        if case .object(var members) = self {
            members.append(JSONMember(key: key, value: value))
            self = .object(members)
        }
    }

    /// The JSON text, objects indented by two spaces per level; arrays of
    /// scalars and small objects stay on one line.
    public func rendered(indent: Int = 0) -> String {
        switch self {
        case .string(let text): return JSONValue.quote(text)
        case .number(let value): return String(value)
        case .bool(let value): return value ? "true" : "false"
        case .array(let items):
            if items.isEmpty { return "[]" }
            let pad = String(repeating: "  ", count: indent + 1)
            return "[\n" + items.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n")
                + "\n" + String(repeating: "  ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty { return "{}" }
            if indent > 0 && members.allSatisfy(\.value.isScalar) {
                return "{" + members.map { JSONValue.quote($0.key) + ": " + $0.value.rendered() }.joined(separator: ", ") + "}"
            }
            let pad = String(repeating: "  ", count: indent + 1)
            return "{\n" + members.map { pad + JSONValue.quote($0.key) + ": " + $0.value.rendered(indent: indent + 1) }
                .joined(separator: ",\n") + "\n" + String(repeating: "  ", count: indent) + "}"
        }
    }

    var isScalar: Bool {
        switch self {
        case .string, .number, .bool: true
        case .array, .object: false
        }
    }

    static func quote(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// One member of a JSON object.
public struct JSONMember: Hashable, Sendable {
    /// The member's name.
    public var key: String
    /// The member's value.
    public var value: JSONValue
}
