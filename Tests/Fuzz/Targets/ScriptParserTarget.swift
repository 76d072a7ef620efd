// The script-parser fuzz target's body: arbitrary bytes as a `slat build`
// mapping script (for a format chosen by the first byte) and as a
// registers file. Parsing may refuse the input with a typed ImageError; it
// must never trap, hang or touch memory it does not own (AddressSanitizer
// in the libFuzzer build). Run by Tests/Fuzz/ScriptParserFuzzer.swift and,
// for every committed corpus input, by FuzzCorpusTests.
import SLATImage

/// The script-parser target.
public enum ScriptParserTarget {
    static let formats: [ImageFormat] = TableFormatKind.allCases.compactMap {
        try? ImageConfiguration(kind: $0).makeFormat()
    }

    /// Parses `bytes` both ways; a trap is the failure.
    public static func run(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 1, !formats.isEmpty else { return }
        let format = formats[Int(bytes[0]) % formats.count]
        let rest = Array(bytes[1...])
        _ = try? MappingScriptParser(format: format, fileName: "fuzz.map").parse(bytes: rest)
        _ = try? RegisterFile(parsing: String(decoding: rest, as: UTF8.self))
    }
}
