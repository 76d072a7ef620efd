import SLATCore

/// Errors of building, reading and describing table images. Each names the
/// problem in words a person can act on (``description``).
public enum ImageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Format options that do not go together or that the format rejects.
    case invalidConfiguration(String)
    /// A mapping script with bad lines (all of them, in line order).
    case script([ScriptDiagnostic])
    /// Building failed for a reason not tied to one line (table memory).
    case buildFailed(String)
    /// The root tables are not inside the image or not aligned.
    case rootOutsideImage(root: UInt64, base: UInt64, size: Int)
    /// A registers file that lacks a key or has a bad value.
    case invalidRegisters(String)

    /// The message printed after `slat: `.
    public var description: String {
        switch self {
        case .invalidConfiguration(let message): message
        case .script(let diagnostics): diagnostics.map(\.description).joined(separator: "\n")
        case .buildFailed(let message): message
        case .rootOutsideImage(let root, let base, let size):
            "root \(NumberSyntax.hex(root)) is not an aligned table inside the image "
                + "[\(NumberSyntax.hex(base)), \(NumberSyntax.hex(base &+ UInt64(size))))"
        case .invalidRegisters(let message): message
        }
    }

    /// A sentence for a `SLATError` (its `description`).
    public static func describe(_ error: SLATError) -> String { error.description }
}

/// One bad line of a mapping script: `FILE:LINE: message`.
public struct ScriptDiagnostic: Hashable, Sendable, CustomStringConvertible {
    /// The script's name as given on the command line.
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// What is wrong with the line.
    public var message: String

    /// A diagnostic for `line` of `file`.
    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`.
    public var description: String { "\(file):\(line): \(message)" }
}
