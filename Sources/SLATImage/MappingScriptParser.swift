import SLATCore

/// Parses mapping scripts (see `Docs/slat-tool.md`):
///
///     <guest-address> <size> <output-address> <permissions> <memory-type> [key=value ...]
///
/// `#` starts a comment and blank lines are ignored. Every line is checked
/// against the format (alignment, address sizes, encodable permissions and
/// memory types, leaf sizes, overlaps with earlier lines) so that a bad
/// script is rejected with all its bad lines before anything is built.
public struct MappingScriptParser {
    /// The format the mappings are for.
    public let format: ImageFormat
    /// The script's name in diagnostics.
    public let fileName: String

    /// A parser for scripts targeting `format`, naming them `fileName` in diagnostics.
    public init(format: ImageFormat, fileName: String) {
        self.format = format
        self.fileName = fileName
    }

    /// The mappings of `text` in line order.
    ///
    /// - Throws: ``ImageError/script(_:)`` with one diagnostic per bad line.
    public func parse(_ text: String) throws(ImageError) -> [MappingRequest] {
        try parse(bytes: Array(text.utf8))
    }

    /// The mappings of a script file's bytes in line order. Lines end with
    /// LF, CRLF or CR; every line must be UTF-8.
    ///
    /// - Throws: ``ImageError/script(_:)`` with one diagnostic per bad line.
    public func parse(bytes: [UInt8]) throws(ImageError) -> [MappingRequest] {
        var requests: [MappingRequest] = []
        var diagnostics: [ScriptDiagnostic] = []
        for line in TextLines.split(bytes) {
            func report(_ message: String) {
                diagnostics.append(ScriptDiagnostic(file: fileName, line: line.number, message: message))
            }
            let text: String
            switch line.decoded() {
            case .success(let decoded): text = decoded
            case .failure(let error): report(error.description); continue
            }
            let content = text.unicodeScalars.prefix { $0 != "#" }
            if let (column, scalar) = content.enumerated().first(where: { !Self.isFieldCharacter($0.element) }) {
                report("unexpected character \(Self.name(of: scalar)) at column \(column + 1) (fields are printable ASCII separated by spaces or tabs)")
                continue
            }
            let fields = Substring(String(content)).split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { continue }
            switch parseLine(fields, line: line.number) {
            case .success(let request): requests.append(request)
            case .failure(let message): report(message.text)
            }
        }
        diagnostics += overlaps(in: requests)
        if !diagnostics.isEmpty {
            throw .script(diagnostics.sorted { $0.line < $1.line })
        }
        return requests
    }

    /// Whether `scalar` may appear in the fields of a line: printable ASCII,
    /// space and tab. Anything else (a vertical tab, a form feed, a
    /// non-breaking space) would otherwise be hidden inside a field.
    static func isFieldCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || (0x20...0x7E).contains(scalar.value)
    }

    /// `U+000B (vertical tab)` and the like, for messages.
    static func name(of scalar: Unicode.Scalar) -> String {
        let code = String(scalar.value, radix: 16, uppercase: true)
        let number = "U+" + String(repeating: "0", count: max(0, 4 - code.count)) + code
        let names: [UInt32: String] = [
            0x00: "NUL", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "escape", 0x7F: "delete",
            0x85: "next line", 0xA0: "no-break space", 0x2028: "line separator", 0x2029: "paragraph separator",
            0xFEFF: "byte order mark",
        ]
        return number + (names[scalar.value].map { " (\($0))" } ?? "")
    }

    /// One diagnostic for each mapping whose guest range overlaps a mapping
    /// on an earlier line (a later mapping would silently replace part of
    /// an earlier one). Sorted by address, so a script of many lines is
    /// checked in O(n log n).
    func overlaps(in requests: [MappingRequest]) -> [ScriptDiagnostic] {
        let order = requests.indices.sorted {
            (requests[$0].guest, requests[$0].line) < (requests[$1].guest, requests[$1].line)
        }
        var diagnostics: [ScriptDiagnostic] = []
        var reported: Set<Int> = []
        var furthest: MappingRequest?   // of the ranges starting at or before this one, the one reaching furthest
        for index in order {
            let request = requests[index]
            if let other = furthest, request.guest < other.guest + other.size {
                let (earlier, later) = other.line < request.line ? (other, request) : (request, other)
                if reported.insert(later.line).inserted {
                    diagnostics.append(ScriptDiagnostic(
                        file: fileName, line: later.line,
                        message: "guest range [\(NumberSyntax.hex(later.guest)), \(NumberSyntax.hex(later.guest + later.size))) overlaps the mapping on line \(earlier.line)"))
                }
            }
            if furthest.map({ request.guest + request.size > $0.guest + $0.size }) ?? true { furthest = request }
        }
        return diagnostics
    }

    struct Message: Error { var text: String }

    func parseLine(_ fields: [Substring], line: Int) -> Result<MappingRequest, Message> {
        do throws(Message) {
            return .success(try checkedRequest(fields, line: line))
        } catch {
            return .failure(error)
        }
    }

    func checkedRequest(_ fields: [Substring], line: Int) throws(Message) -> MappingRequest {
        guard fields.count >= 5 else {
            throw Message(text: "expected <guest-address> <size> <output-address> <permissions> <memory-type>, found \(fields.count) field\(fields.count == 1 ? "" : "s")")
        }
        let geometry = format.geometry
        let guest = try number(fields[0], "guest address", allowsSuffix: false)
        let size = try number(fields[1], "size", allowsSuffix: true)
        let output = try number(fields[2], "output address", allowsSuffix: false)
        let permissions = try parsePermissions(fields[3])
        guard let memoryType = format.memoryType(named: fields[4]) else {
            throw Message(text: "unknown memory type '\(fields[4])' (\(format.isEPT ? "EPT" : "stage 2") accepts \(format.memoryTypeNames))")
        }
        var request = MappingRequest(
            line: line, guest: guest, size: size, output: HostPhysicalAddress(output), permissions: permissions,
            memoryType: memoryType, maximumLevel: nil, accessed: true, dirty: false, ignorePAT: false,
            encodedWithoutRead: false)
        var keys: Set<Substring> = []
        for field in fields.dropFirst(5) {
            try applyKey(field, to: &request, given: &keys)
        }

        // Addresses and sizes.
        let page = geometry.pageSize
        if size == 0 { throw Message(text: "size is zero") }
        if guest & (page - 1) != 0 { throw Message(text: "guest address \(NumberSyntax.hex(guest)) is not aligned to the \(NumberSyntax.size(page)) page size") }
        if size & (page - 1) != 0 { throw Message(text: "size \(NumberSyntax.hex(size)) is not a multiple of the \(NumberSyntax.size(page)) page size") }
        if output & (page - 1) != 0 { throw Message(text: "output address \(NumberSyntax.hex(output)) is not aligned to the \(NumberSyntax.size(page)) page size") }
        let inputLimit = geometry.inputAddressSpaceSize
        if guest >= inputLimit || size > inputLimit - guest {
            throw Message(text: "guest range [\(NumberSyntax.hex(guest)), \(NumberSyntax.hex(guest &+ size))) reaches past the \(geometry.inputAddressBits)-bit input address space")
        }
        let outputLimit = geometry.outputAddressLimit
        if output >= outputLimit || size > outputLimit - output {
            throw Message(text: "output range [\(NumberSyntax.hex(output)), \(NumberSyntax.hex(output &+ size))) reaches past the \(geometry.outputAddressBits)-bit physical address size")
        }

        // Attributes the format must encode.
        if format.isEPT && permissions.contains(.write) && !permissions.contains(.read) {
            request.encodedWithoutRead = true   // literal misconfiguration probe, see the contract
        }
        if request.dirty {
            guard case .ept(let ept) = format, ept.accessedDirtyEnabled else {
                throw Message(text: "dirty=1 needs an EPT format with accessed/dirty flags (ept4-ad, ept5-ad)")
            }
        }
        if request.ignorePAT && !format.isEPT { throw Message(text: "ipat=1 applies to EPT formats only") }
        do {
            try geometry.validate(request.encodableAttributes)
        } catch {
            switch error {
            case .unsupportedPermissions:
                let hint = format.isEPT ? "'s' and 'u' need --mbec" : "'s' and 'u' need --xnx"
                throw Message(text: "permissions '\(fields[3])' cannot be encoded in this format (\(hint))")
            default:
                throw Message(text: ImageError.describe(error))
            }
        }

        return request
    }

    func number(_ field: Substring, _ what: String, allowsSuffix: Bool) throws(Message) -> UInt64 {
        guard let value = NumberSyntax.parse(field, allowsSuffix: allowsSuffix) else {
            throw Message(text: "bad \(what) '\(field)' (0x-hex or decimal\(allowsSuffix ? ", optional K/M/G suffix" : ""))")
        }
        return value
    }

    func parsePermissions(_ field: Substring) throws(Message) -> Permissions {
        var permissions: Permissions = []
        for letter in field.lowercased() {
            switch letter {
            case "r": permissions.insert(.read)
            case "w": permissions.insert(.write)
            case "x": permissions.insert(.execute)
            case "s": permissions.insert(.executePrivileged)
            case "u": permissions.insert(.executeUser)
            case "-": continue
            default: throw Message(text: "bad permissions '\(field)': '\(letter)' is not one of r, w, x, s, u or -")
            }
        }
        return permissions
    }

    func applyKey(_ field: Substring, to request: inout MappingRequest, given keys: inout Set<Substring>) throws(Message) {
        let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw Message(text: "bad option '\(field)' (expected key=value)") }
        let key = Substring(parts[0].lowercased()), value = parts[1]
        guard keys.insert(key).inserted else { throw Message(text: "option '\(key)' is given twice") }
        func flag() throws(Message) -> Bool {
            switch value {
            case "0": return false
            case "1": return true
            default: throw Message(text: "bad value '\(value)' for \(key) (expected 0 or 1)")
            }
        }
        switch key {
        case "leaf":
            let geometry = format.geometry
            let sizes = (0...geometry.rootLevel).filter(geometry.canHoldLeaf(atLevel:))
            guard let bytes = NumberSyntax.parse(value, allowsSuffix: true),
                  let level = sizes.first(where: { geometry.entrySize(atLevel: $0) == bytes }) else {
                let names = sizes.map { NumberSyntax.size(geometry.entrySize(atLevel: $0)) }.joined(separator: ", ")
                throw Message(text: "leaf=\(value) is not a leaf size of this format (\(names))")
            }
            request.maximumLevel = level
        case "accessed": request.accessed = try flag()
        case "dirty": request.dirty = try flag()
        case "ipat":
            request.ignorePAT = try flag()
        default:
            throw Message(text: "unknown option '\(key)' (leaf, accessed, dirty, ipat)")
        }
    }
}
