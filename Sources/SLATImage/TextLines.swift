/// One line of a text file the tool reads (a mapping script or a
/// registers file), as raw bytes with its 1-based number.
public struct TextLine: Sendable {
    /// 1-based line number.
    public var number: Int
    /// The bytes of the line, without its line ending.
    public var bytes: ArraySlice<UInt8>

    /// The line as text, or where its first byte that is not valid UTF-8 is.
    public func decoded() -> Result<String, TextLineError> {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var text = String.UnicodeScalarView()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): text.append(scalar)
            case .emptyInput: return .success(String(text))
            case .error:
                return .failure(TextLineError.invalidUTF8(column: invalidUTF8Column()))
            }
        }
    }

    /// The 1-based byte column where decoding first fails (the decoder
    /// does not say how many bytes it consumed, so each prefix is tried).
    func invalidUTF8Column() -> Int {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            // Length of the sequence the lead byte announces.
            let lead = bytes[start]
            let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
            guard length > 0, start + length <= bytes.endIndex else { break }
            var iterator = bytes[start..<start + length].makeIterator()
            var decoder = UTF8()
            guard case .scalarValue = decoder.decode(&iterator) else { break }
            start += length
        }
        return start - bytes.startIndex + 1
    }
}

/// Why a line could not be read as text.
public enum TextLineError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A byte that is not valid UTF-8, at this 1-based byte column.
    case invalidUTF8(column: Int)

    /// The problem in words.
    public var description: String {
        switch self {
        case .invalidUTF8(let column): "byte \(column) is not valid UTF-8 (the file must be UTF-8 text)"
        }
    }
}

/// Splits text files into lines the same way on every platform's line
/// endings: LF, CRLF and a lone CR each end one line, so a file written on
/// any system keeps every line and its number.
public enum TextLines {
    /// The lines of `bytes`. A final line without a line ending is a line;
    /// a line ending at the very end does not start another.
    public static func split(_ bytes: [UInt8]) -> [TextLine] {
        var lines: [TextLine] = []
        var start = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A || byte == 0x0D {
                lines.append(TextLine(number: lines.count + 1, bytes: bytes[start..<index]))
                index += byte == 0x0D && index + 1 < bytes.count && bytes[index + 1] == 0x0A ? 2 : 1
                start = index
            } else {
                index += 1
            }
        }
        if start < bytes.count { lines.append(TextLine(number: lines.count + 1, bytes: bytes[start..<bytes.count])) }
        return lines
    }
}
