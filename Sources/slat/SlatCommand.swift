import Foundation
import SLATImage

/// The `slat` commands. Each returns the process exit status: 0 success,
/// 1 failure (or malformed entries found by `dump`), 2 bad usage or input.
enum SlatCommand {
    static let usage = """
        usage: slat build --format F [--ipa-bits N] [--pa-bits N] [--base PHYS] [--mbec] [--xnx] [--fwb] [--lpa2] [--start-level N] --map FILE --out DIR
               slat dump IMAGE (--format F --base PHYS --root PHYS [--ipa-bits N] [--pa-bits N] [--mbec] [--xnx] [--fwb] [--lpa2] [--start-level N] | --registers FILE)
               slat translate IMAGE (... as dump ...) [--access r|w|x|s|u] ADDRESS...
               (IMAGE may be a slat build output directory: its tables.bin and registers.env)
               slat svg IMAGE (... as dump ...) [--out FILE.svg]
        formats: \(TableFormatKind.names)
        numbers: 0x-hex or decimal, '_' allowed; sizes may end in K, M or G
        """

    static func run(_ arguments: [String]) -> Int32 {
        guard let command = arguments.first else {
            printError(usage)
            return 2
        }
        let rest = Array(arguments.dropFirst())
        do {
            switch command {
            case "build": return try build(rest)
            case "dump": return try dump(rest)
            case "translate": return try translate(rest)
            case "svg": return try svg(rest)
            case "help", "--help", "-h":
                print(usage)
                return 0
            default:
                throw UsageError("unknown command '\(command)'")
            }
        } catch let error as UsageError {
            printError("slat: \(error.message)\n\(usage)")
            return 2
        } catch let error as ImageError {
            if case .script(let diagnostics) = error {
                // Compiler style, exactly `FILE:LINE: message`, as the contract fixes.
                printError(diagnostics.map(\.description).joined(separator: "\n"))
            } else {
                printError("slat: \(error.description)")
            }
            switch error {
            case .script, .invalidConfiguration, .invalidRegisters, .rootOutsideImage: return 2
            case .buildFailed: return 1
            }
        } catch {
            printError("slat: \(error)")
            return 1
        }
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    // MARK: Shared option handling

    static let formatOptions: Set<String> = ["format", "ipa-bits", "pa-bits", "base", "start-level"]
    static let formatFlags: Set<String> = ["mbec", "xnx", "fwb", "lpa2"]

    /// `--start-level N`: an Arm ARM level, −1...3.
    static func startLevel(_ arguments: CommandLineArguments) throws(UsageError) -> Int? {
        guard let text = arguments.value("start-level") else { return nil }
        guard let level = Int(text), (-1...3).contains(level) else {
            throw UsageError("--start-level takes a level from -1 to 3, not '\(text)'")
        }
        return level
    }

    static func formatKind(_ arguments: CommandLineArguments) throws(UsageError) -> TableFormatKind {
        guard let name = arguments.value("format") else { throw UsageError("--format is required (\(TableFormatKind.names))") }
        guard let kind = TableFormatKind(rawValue: name) else {
            throw UsageError("unknown format '\(name)' (\(TableFormatKind.names))")
        }
        return kind
    }

    static func configuration(_ arguments: CommandLineArguments, requireBase: Bool) throws(UsageError) -> ImageConfiguration {
        let kind = try formatKind(arguments)
        let base = try arguments.number("base")
        if requireBase && base == nil { throw UsageError("--base is required") }
        return ImageConfiguration(
            kind: kind, inputAddressBits: try arguments.count("ipa-bits"),
            outputAddressBits: try arguments.count("pa-bits") ?? 48, base: base,
            modeBasedExecute: arguments.flags.contains("mbec"), executeNeverSplit: arguments.flags.contains("xnx"),
            forcedWriteBack: arguments.flags.contains("fwb"), lpa2: arguments.flags.contains("lpa2"),
            startLevel: try startLevel(arguments))
    }

    // MARK: build

    static func build(_ rawArguments: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments(rawArguments, valued: formatOptions.union(["map", "out"]), flags: formatFlags)
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        let configuration = try configuration(arguments, requireBase: false)
        guard let mapPath = arguments.value("map") else { throw UsageError("--map FILE is required") }
        guard let outPath = arguments.value("out") else { throw UsageError("--out DIR is required") }
        guard let data = FileManager.default.contents(atPath: mapPath) else {
            throw UsageError("cannot read mapping script '\(mapPath)'")
        }
        let format = try configuration.makeFormat()
        let requests = try MappingScriptParser(format: format, fileName: mapPath).parse(bytes: [UInt8](data))
        let image = try ImageBuilder.build(requests, configuration: configuration, fileName: mapPath)
        if requests.isEmpty {
            printError("\(mapPath): warning: no mappings (the image has only the root table\(image.bytes.count > format.geometry.tablePageSize ? "s" : ""))")
        }
        for var warning in image.warnings {
            warning.file = mapPath
            printError(warning.description)
        }
        try ImageFiles.write(image, to: outPath)
        let registers = try image.registers()
        print("wrote \(outPath)/tables.bin (\(image.bytes.count) bytes, \(image.leaves.count) leaves from \(requests.count) mappings)")
        print(registers.environmentText, terminator: "")
        return 0
    }

    // MARK: reading commands

    static let readOptions: Set<String> = formatOptions.union(["root", "registers"])

    /// The walker for `IMAGE` and the format options or `--registers`.
    /// `IMAGE` may be a `slat build` output directory: its `tables.bin`,
    /// and its `registers.env` unless format options or `--registers` say
    /// otherwise.
    static func walker(_ arguments: CommandLineArguments, command: String) throws -> ImageWalker {
        guard var path = arguments.positionals.first else {
            throw UsageError("\(command): IMAGE (a tables.bin file or a slat build output directory) is required")
        }
        var registersPath = arguments.value("registers")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let directory = path
            path = directory + "/tables.bin"
            if registersPath == nil && arguments.value("format") == nil { registersPath = directory + "/registers.env" }
        }
        let configuration: ImageConfiguration
        let root: UInt64
        if let registersPath {
            guard let data = FileManager.default.contents(atPath: registersPath) else {
                throw UsageError("cannot read registers file '\(registersPath)'")
            }
            let registers = try RegisterFile(parsing: [UInt8](data))
            var recorded = registers.configuration
            // Options given next to --registers override it.
            if arguments.value("format") != nil {
                let base = recorded.base
                recorded = try Self.configuration(arguments, requireBase: false)
                recorded.base = base
            }
            if let base = try arguments.number("base") { recorded.base = base }
            if let bits = try arguments.count("ipa-bits"), !recorded.kind.isEPT {
                // A new IPA size gets SLAT's start level unless one is given.
                recorded.inputAddressBits = bits
                recorded.startLevel = nil
            }
            if let level = try startLevel(arguments) { recorded.startLevel = level }
            if arguments.flags.contains("lpa2") { recorded.lpa2 = true }
            if let bits = try arguments.count("pa-bits") { recorded.outputAddressBits = bits }
            if arguments.flags.contains("mbec") { recorded.modeBasedExecute = true }
            if arguments.flags.contains("xnx") { recorded.executeNeverSplit = true }
            if arguments.flags.contains("fwb") { recorded.forcedWriteBack = true }
            configuration = recorded
            root = try arguments.number("root") ?? registers.root
        } else {
            configuration = try Self.configuration(arguments, requireBase: true)
            guard let given = try arguments.number("root") else { throw UsageError("--root is required (or --registers FILE)") }
            root = given
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw UsageError("cannot read image '\(path)'") }
        let format = try configuration.makeFormat()
        return try ImageWalker(format: format, image: TableImage(bytes: [UInt8](data), base: configuration.base), root: root)
    }

    static func dump(_ rawArguments: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments(rawArguments, valued: readOptions, flags: formatFlags)
        guard arguments.positionals.count <= 1 else { throw UsageError("dump: unexpected argument '\(arguments.positionals[1])'") }
        let (text, malformed) = ImageDumper(walker: try walker(arguments, command: "dump")).render()
        print(text, terminator: "")
        return malformed == 0 ? 0 : 1
    }

    static func translate(_ rawArguments: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments(rawArguments, valued: readOptions.union(["access"]), flags: formatFlags)
        var access: ImageAccess?
        if let name = arguments.value("access") {
            guard let known = ImageAccess(rawValue: name) else { throw UsageError("--access must be r, w, x, s or u (got '\(name)')") }
            access = known
        }
        let addresses = arguments.positionals.dropFirst()
        guard !addresses.isEmpty else { throw UsageError("translate: at least one ADDRESS is required") }
        var guests: [UInt64] = []
        for text in addresses {
            guard let value = NumberSyntax.parse(text, allowsSuffix: false) else { throw UsageError("translate: bad address '\(text)'") }
            guests.append(value)
        }
        let translator = ImageTranslator(walker: try walker(arguments, command: "translate"))
        for guest in guests { print(translator.line(for: guest, access: access)) }
        return 0
    }

    static func svg(_ rawArguments: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments(rawArguments, valued: readOptions.union(["out"]), flags: formatFlags)
        guard arguments.positionals.count <= 1 else { throw UsageError("svg: unexpected argument '\(arguments.positionals[1])'") }
        let document = ImageSVGRenderer(walker: try walker(arguments, command: "svg")).render()
        if let out = arguments.value("out") {
            guard FileManager.default.createFile(atPath: out, contents: Data(document.utf8)) else {
                throw ImageError.buildFailed("cannot write \(out)")
            }
        } else {
            print(document, terminator: "")
        }
        return 0
    }
}
