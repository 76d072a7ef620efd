// libFuzzer target: arbitrary bytes as a `slat build` mapping script (for
// a format chosen by the first byte) and as a registers file. Parsing may
// refuse the input with a typed ImageError; it must never trap, hang or
// touch memory it does not own (AddressSanitizer). Built by Tests/Fuzz/run.
import SLATImage
#if canImport(Glibc)
import Glibc
#endif

let parserFormats: [ImageFormat] = TableFormatKind.allCases.compactMap {
    try? ImageConfiguration(kind: $0).makeFormat()
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 1, !parserFormats.isEmpty else { return 0 }
    let format = parserFormats[Int(data[0]) % parserFormats.count]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    _ = try? MappingScriptParser(format: format, fileName: "fuzz.map").parse(bytes: bytes)
    _ = try? RegisterFile(parsing: String(decoding: bytes, as: UTF8.self))
    return 0
}
