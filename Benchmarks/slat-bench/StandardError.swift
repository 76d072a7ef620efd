#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes diagnostics and progress to standard error (file descriptor 2)
/// without touching the C `stderr` global, which Swift 6 treats as shared
/// mutable state.
enum StandardError {
    /// Writes `line` followed by a newline.
    static func writeLine(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = write(2, base + offset, bytes.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
