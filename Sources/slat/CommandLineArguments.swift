import SLATImage

/// Hand-written parsing of `--option value`, `--option=value`, `--flag`
/// and positional arguments.
struct CommandLineArguments {
    /// Options given with a value, by name without the dashes (each at most once).
    var values: [String: [String]] = [:]
    /// Flags given.
    var flags: Set<String> = []
    /// Everything else, in order.
    var positionals: [String] = []

    /// Parses `arguments` accepting the options in `valued` and the flags in `flags`.
    ///
    /// - Throws: ``UsageError`` for an unknown option, a missing value, or an
    ///   option or flag given twice (which one was meant cannot be known).
    init(_ arguments: [String], valued: Set<String>, flags allowedFlags: Set<String>) throws(UsageError) {
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("--") || argument == "-" {
                positionals.append(argument)
                continue
            }
            if argument == "--" { onlyPositionals = true; continue }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if values[name] != nil || flags.contains(name) { throw UsageError("--\(name) is given twice") }
            if valued.contains(name) {
                if let inlineValue {
                    values[name, default: []].append(inlineValue)
                } else {
                    guard index < arguments.count else { throw UsageError("--\(name) needs a value") }
                    values[name, default: []].append(arguments[index])
                    index += 1
                }
            } else if allowedFlags.contains(name) {
                guard inlineValue == nil else { throw UsageError("--\(name) takes no value") }
                flags.insert(name)
            } else {
                throw UsageError("unknown option --\(name)")
            }
        }
    }

    /// The last value of `--name`, if given.
    func value(_ name: String) -> String? { values[name]?.last }

    /// `--name` as a number, if given.
    func number(_ name: String, allowsSuffix: Bool = false) throws(UsageError) -> UInt64? {
        guard let text = value(name) else { return nil }
        guard let number = NumberSyntax.parse(text, allowsSuffix: allowsSuffix) else {
            throw UsageError("--\(name): '\(text)' is not a number (0x-hex or decimal)")
        }
        return number
    }

    /// `--name` as a small count (bits), if given.
    func count(_ name: String) throws(UsageError) -> Int? {
        guard let value = try number(name) else { return nil }
        guard value <= 64 else { throw UsageError("--\(name): \(value) is too large") }
        return Int(value)
    }
}

/// Bad command-line usage: printed with a hint, exit status 2.
struct UsageError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

