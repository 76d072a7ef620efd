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

    /// A sentence for a ``SLATError``.
    public static func describe(_ error: SLATError) -> String {
        switch error {
        case .misalignedGuestAddress(let address, let alignment):
            "guest address \(address) is not aligned to \(NumberSyntax.size(alignment))"
        case .misalignedOutputAddress(let address, let alignment):
            "output address \(address) is not aligned to \(NumberSyntax.size(alignment))"
        case .misalignedSize(let size, let alignment):
            "size \(NumberSyntax.hex(size)) is not a multiple of \(NumberSyntax.size(alignment))"
        case .emptyRange: "size is zero"
        case .guestRangeOutOfBounds(let range, let limit):
            "guest range \(range) reaches past the input address space (\(NumberSyntax.hex(limit)))"
        case .outputAddressTooWide(let address, let bits):
            "output address \(address) does not fit in \(bits) physical address bits"
        case .unsupportedLevel(let level): "level \(level) cannot hold a leaf"
        case .unsupportedGranule(let bytes): "granule of \(bytes) bytes is not supported"
        case .unsupportedInputAddressSize(let bits): "an input address size of \(bits) bits is not supported"
        case .unsupportedOutputAddressSize(let bits): "an output address size of \(bits) bits is not supported"
        case .unsupportedLevelCount(let count): "\(count)-level walks are not supported"
        case .unsupportedStartLevel(let level, let bits): "start level \(level) cannot translate a \(bits)-bit input address space"
        case .unsupportedMemoryType(let type): "memory type \(type) cannot be encoded in this format"
        case .unsupportedPermissions(let permissions): "permissions \(permissions) cannot be encoded in this format"
        case .unsupportedDirtyFlag: "this format has no dirty flag"
        case .softwareBitsOutOfRange(let bits, let width): "software bits \(bits) do not fit in \(width) bits"
        case .vmidOutOfRange(let vmid, let bits): "VMID \(vmid) does not fit in \(bits) bits"
        case .outOfTableMemory(let needed, let available):
            "out of table memory (needed \(needed) pages, \(available) available)"
        case .invalidTableRegion: "invalid table memory region (base not aligned, or too large)"
        default: "\(error)"
        }
    }
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
