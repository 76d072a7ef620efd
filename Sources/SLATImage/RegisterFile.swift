import SLATCore
import SLATx86
import SLATArm64

/// The root register values of an image, as written to `registers.env`
/// (`KEY=value` lines) and `registers.json`, and read back by `--registers`.
///
/// EPT: `FORMAT`, `BASE`, `ROOT`, `EPTP`, then `PA_BITS` and `MBEC`.
/// Stage 2: `FORMAT`, `BASE`, `ROOT`, `VTTBR` (VMID 0), `VTCR`, `IPA_BITS`,
/// `PA_BITS`, `GRANULE`, `START_LEVEL`, `ROOT_TABLES`, then `XNX` and, for
/// FWB images only, `FWB=0x1` (the hypervisor sets `HCR_EL2.FWB`), and for
/// FEAT_LPA2 images only, `LPA2=0x1` (`VTCR` has DS set). Every value but
/// `FORMAT` is `0x` hexadecimal; `START_LEVEL` is the Arm ARM level as a
/// 64-bit two's complement number (level −1 is `0xffffffffffffffff`).
public struct RegisterFile: Hashable, Sendable {
    /// The keys and values in file order (values without the `0x`: numbers).
    public var values: [(key: String, value: UInt64)]
    /// The format name (`FORMAT=`).
    public var kind: TableFormatKind

    /// Same format, keys and values in the same order.
    public static func == (lhs: RegisterFile, rhs: RegisterFile) -> Bool {
        lhs.kind == rhs.kind && lhs.values.map(\.key) == rhs.values.map(\.key) && lhs.values.map(\.value) == rhs.values.map(\.value)
    }

    /// Hashes the format, keys and values.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        for (key, value) in values { hasher.combine(key); hasher.combine(value) }
    }

    /// The registers for tables of `configuration` rooted at `root`.
    ///
    /// - Throws: ``ImageError/invalidConfiguration(_:)`` when the root
    ///   cannot be encoded (misaligned, beyond the PA size).
    public init(configuration: ImageConfiguration, root: UInt64) throws(ImageError) {
        kind = configuration.kind
        let rootAddress = HostPhysicalAddress(root)
        do {
            switch try configuration.makeFormat() {
            case .ept(let format):
                let eptp = try ExtendedPageTablePointer(format: format, root: rootAddress)
                values = [
                    ("BASE", configuration.base), ("ROOT", root), ("EPTP", eptp.rawValue),
                    ("PA_BITS", UInt64(format.outputAddressBits)), ("MBEC", format.modeBasedExecute ? 1 : 0),
                ]
            case .stageTwo(let format):
                let vttbr = try StageTwoTranslationTableBase(format: format, root: rootAddress, vmid: 0)
                let vtcr = StageTwoTranslationControl(format: format)
                values = [
                    ("BASE", configuration.base), ("ROOT", root), ("VTTBR", vttbr.rawValue), ("VTCR", vtcr.rawValue),
                    ("IPA_BITS", UInt64(format.inputAddressBits)), ("PA_BITS", UInt64(format.outputAddressBits)),
                    ("GRANULE", UInt64(format.granule.byteCount)),
                    ("START_LEVEL", UInt64(bitPattern: Int64(format.startLevel))),
                    ("ROOT_TABLES", UInt64(format.rootTableCount)), ("XNX", format.executeNeverSplit ? 1 : 0),
                ]
                if format.forcesWriteBack { values.append(("FWB", 1)) }
                if format.lpa2 { values.append(("LPA2", 1)) }
            }
        } catch let error as ImageError {
            throw error
        } catch let error as SLATError {
            throw .invalidConfiguration("root \(NumberSyntax.hex(root)): " + ImageError.describe(error))
        } catch {
            throw .invalidConfiguration("\(error)")
        }
    }

    /// Reads `registers.env` text.
    ///
    /// - Throws: ``ImageError/invalidRegisters(_:)`` as the `[UInt8]` form of `init(parsing:)`.
    public init(parsing text: String) throws(ImageError) {
        try self.init(parsing: Array(text.utf8))
    }

    /// Reads the bytes of a `registers.env` file (lines end with LF, CRLF or CR).
    ///
    /// - Throws: ``ImageError/invalidRegisters(_:)`` for a line that is not
    ///   `KEY=value` or not UTF-8, a missing `FORMAT`, `BASE` or `ROOT`, an
    ///   unknown format or key, a key given twice, a value that is not a
    ///   number, or a register value that contradicts `FORMAT` and the sizes
    ///   (naming the key and the value it should have).
    public init(parsing bytes: [UInt8]) throws(ImageError) {
        var kind: TableFormatKind?
        var values: [(key: String, value: UInt64)] = []
        var keys: Set<String> = []
        for line in TextLines.split(bytes) {
            let text: String
            switch line.decoded() {
            case .success(let decoded): text = decoded
            case .failure(let error): throw .invalidRegisters("registers line \(line.number): \(error)")
            }
            let trimmed = text.trimmingPrefix(while: { $0 == " " })
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw .invalidRegisters("registers line \(line.number): expected KEY=value") }
            let key = String(parts[0]), value = parts[1].filter { $0 != "\"" }
            guard keys.insert(key).inserted else { throw .invalidRegisters("registers line \(line.number): \(key) is given twice") }
            if key == "FORMAT" {
                guard let known = TableFormatKind(rawValue: value) else {
                    throw .invalidRegisters("registers line \(line.number): unknown format '\(value)'")
                }
                kind = known
            } else {
                guard let number = NumberSyntax.parse(value[...], allowsSuffix: false) else {
                    throw .invalidRegisters("registers line \(line.number): \(key) value '\(value)' is not a number")
                }
                values.append((key, number))
            }
        }
        guard let kind else { throw .invalidRegisters("registers file has no FORMAT line") }
        self.kind = kind
        self.values = values
        for required in ["BASE", "ROOT"] where self[required] == nil {
            throw .invalidRegisters("registers file has no \(required) line")
        }
        try checkAgainstFormat()
    }

    /// The keys a registers file of `kind` has besides `FORMAT`.
    static func keys(of kind: TableFormatKind) -> [String] {
        kind.isEPT ? ["BASE", "ROOT", "EPTP", "PA_BITS", "MBEC"]
            : ["BASE", "ROOT", "VTTBR", "VTCR", "IPA_BITS", "PA_BITS", "GRANULE", "START_LEVEL", "ROOT_TABLES", "XNX", "FWB", "LPA2"]
    }

    /// Refuses keys the format does not have and register values other
    /// than the ones `FORMAT`, the sizes, the flags and `ROOT` give, so a
    /// hand-edited file cannot describe one walk to the tool and another
    /// to the hardware.
    func checkAgainstFormat() throws(ImageError) {
        let known = Self.keys(of: kind)
        if let unknown = values.first(where: { !known.contains($0.key) }) {
            throw .invalidRegisters("registers file: unknown key \(unknown.key) for FORMAT=\(kind.rawValue) (keys: \(known.joined(separator: " ")))")
        }
        for flag in ["MBEC", "XNX", "FWB", "LPA2"] {
            if let value = self[flag], value > 1 { throw .invalidRegisters("registers file: \(flag)=\(NumberSyntax.hex(value)) is not 0 or 1") }
        }
        for size in ["IPA_BITS", "PA_BITS"] {
            if let value = self[size], value > 64 { throw .invalidRegisters("registers file: \(size)=\(NumberSyntax.hex(value)) is too large") }
        }
        let expected: RegisterFile
        do {
            expected = try RegisterFile(configuration: configuration, root: root)
        } catch {
            throw .invalidRegisters("registers file: \(error.description)")
        }
        for (key, value) in values {
            guard let wanted = expected[key], wanted != value else { continue }
            let sizes = (kind.isEPT ? ["PA_BITS"] : ["IPA_BITS", "PA_BITS"])
                .map { "\($0)=\(NumberSyntax.hex(UInt64(expected[$0] ?? 0)))" }.joined(separator: ", ")
            throw .invalidRegisters("registers file: \(key)=\(NumberSyntax.hex(value)) contradicts FORMAT=\(kind.rawValue) with \(sizes) and ROOT=\(NumberSyntax.hex(root)) (expected \(NumberSyntax.hex(wanted)))")
        }
    }

    /// The value of `key`, if present.
    public subscript(key: String) -> UInt64? { values.first { $0.key == key }?.value }

    /// The configuration these registers describe (IPA and PA sizes, MBEC,
    /// XNX, FWB, LPA2 as recorded). A start level other than SLAT's choice
    /// for the sizes is taken when `START_LEVEL` and `VTCR` (SL0, SL2) both
    /// record it; otherwise SLAT's choice, which a disagreeing `START_LEVEL`
    /// then contradicts.
    public var configuration: ImageConfiguration {
        var configuration = ImageConfiguration(
            kind: kind, inputAddressBits: self["IPA_BITS"].map { Int(clamping: $0) },
            outputAddressBits: Int(clamping: self["PA_BITS"] ?? 48),
            base: self["BASE"], modeBasedExecute: self["MBEC"] == 1, executeNeverSplit: self["XNX"] == 1,
            forcedWriteBack: self["FWB"] == 1, lpa2: self["LPA2"] == 1)
        if !kind.isEPT, let recorded = self["START_LEVEL"].map({ Int(truncatingIfNeeded: Int64(bitPattern: $0)) }),
           let vtcr = self["VTCR"], StageTwoTranslationControl(rawValue: vtcr).startLevel == recorded,
           case .stageTwo(let chosen)? = try? configuration.makeFormat(), chosen.startLevel != recorded {
            configuration.startLevel = recorded
        }
        return configuration
    }

    /// The root address (`ROOT=`).
    public var root: UInt64 { self["ROOT"] ?? 0 }

    /// `registers.env`: `FORMAT=name` then `KEY=0xHEX` lines.
    public var environmentText: String {
        (["FORMAT=\(kind.rawValue)"] + values.map { "\($0.key)=\(NumberSyntax.hex($0.value))" }).joined(separator: "\n") + "\n"
    }

    /// `registers.json`: one object, values as `"0x..."` strings.
    public var jsonText: String {
        var object = JSONValue.object([("FORMAT", .string(kind.rawValue))])
        for (key, value) in values { object.append(key, .string(NumberSyntax.hex(value))) }
        return object.rendered() + "\n"
    }
}
