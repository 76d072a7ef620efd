import SLATCore
import SLATImage

/// Builds `script` for `configuration` and returns the image and a walker over it.
func buildImage(_ script: String, _ configuration: ImageConfiguration) throws -> (image: BuiltImage, walker: ImageWalker) {
    let format = try configuration.makeFormat()
    let requests = try MappingScriptParser(format: format, fileName: "test.map").parse(script)
    let image = try ImageBuilder.build(requests, configuration: configuration)
    let walker = try ImageWalker(format: format, image: TableImage(bytes: image.bytes, base: configuration.base), root: image.root)
    return (image, walker)
}

/// A walker over `bytes` (a modified copy of `image`'s).
func walker(over bytes: [UInt8], like image: BuiltImage) throws -> ImageWalker {
    try ImageWalker(format: image.configuration.makeFormat(), image: TableImage(bytes: bytes, base: image.configuration.base), root: image.root)
}

/// The diagnostics `script` produces for `format`, or `[]` when it parses.
func diagnostics(_ script: String, _ configuration: ImageConfiguration = ImageConfiguration(kind: .ept4)) throws -> [ScriptDiagnostic] {
    do {
        _ = try MappingScriptParser(format: configuration.makeFormat(), fileName: "bad.map").parse(script)
        return []
    } catch {
        if case .script(let diagnostics) = error { return diagnostics }
        throw error
    }
}

/// Replaces the little-endian word at physical `address` of an image's bytes.
func poke(_ bytes: inout [UInt8], base: UInt64, at address: UInt64, _ value: UInt64) {
    let offset = Int(address - base)
    for byte in 0..<8 { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> UInt64(8 * byte)) }
}

/// Reads the little-endian word at physical `address`.
func peek(_ bytes: [UInt8], base: UInt64, at address: UInt64) -> UInt64 {
    TableImage(bytes: bytes, base: base).word(at: address)!
}

/// A mapping script every format accepts (64K aligned), with the
/// architecture's memory type names.
func portableScript(ept: Bool) -> String {
    let device = ept ? "uc" : "device"
    let uncached = ept ? "wc" : "nc"
    return """
        # portable test script
        0x0          2M    0x80000000   rwx  wb
        0x200000     128K  0x80400000   rw   wb                # not contiguous with the line above
        0x400000     64K   0x90000000   r    wt    accessed=0

        0x1000000    32M   0xA2000000   rw   \(uncached)
        0x40000000   1G    0x100000000  rwx  wb
        0x9000000    64K   0x9000000    rw   \(device)
        """
}

/// Every format with its default configuration.
let allFormatKinds = TableFormatKind.allCases
