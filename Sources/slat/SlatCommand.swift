import Foundation
import SLATImage

/// The `slat` commands. Each returns the process exit status: 0 success,
/// 1 failure (or malformed entries found by `dump`), 2 bad usage or input.
enum SlatCommand {
    static let usage = """
        usage: slat build --format F [--ipa-bits N] [--pa-bits N] [--base PHYS] [--mbec] [--xnx] --map FILE --out DIR
               slat dump IMAGE (--format F --base PHYS --root PHYS [--ipa-bits N] [--pa-bits N] [--mbec] [--xnx] | --registers FILE) [--entries]
               slat translate IMAGE (... as dump ...) [--access r|w|x|s|u] ADDRESS...
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
            printError(error.description.split(separator: "\n").map { "slat: \($0)" }.joined(separator: "\n"))
            switch error {
            case .script, .invalidConfiguration, .invalidRegisters: return 2
            case .buildFailed, .rootOutsideImage: return 1
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

    static let formatOptions: Set<String> = ["format", "ipa-bits", "pa-bits", "base"]
    static let formatFlags: Set<String> = ["mbec", "xnx"]

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
            modeBasedExecute: arguments.flags.contains("mbec"), executeNeverSplit: arguments.flags.contains("xnx"))
    }

    // MARK: build

    static func build(_ rawArguments: [String]) throws -> Int32 {
        let arguments = try CommandLineArguments(rawArguments, valued: formatOptions.union(["map", "out"]), flags: formatFlags)
        guard arguments.positionals.isEmpty else { throw UsageError("unexpected argument '\(arguments.positionals[0])'") }
        let configuration = try configuration(arguments, requireBase: false)
        guard let mapPath = arguments.value("map") else { throw UsageError("--map FILE is required") }
        guard let outPath = arguments.value("out") else { throw UsageError("--out DIR is required") }
        guard let data = FileManager.default.contents(atPath: mapPath), let text = String(data: data, encoding: .utf8) else {
            throw UsageError("cannot read mapping script '\(mapPath)'")
        }
        let format = try configuration.makeFormat()
        let requests = try MappingScriptParser(format: format, fileName: mapPath).parse(text)
        let image = try ImageBuilder.build(requests, configuration: configuration)
        for warning in image.warnings { printError("slat: warning: \(mapPath):\(warning)") }
        try ImageFiles.write(image, to: outPath)
        let registers = try image.registers()
        print("wrote \(outPath)/tables.bin (\(image.bytes.count) bytes, \(image.leaves.count) leaves from \(requests.count) mappings)")
        print(registers.environmentText, terminator: "")
        return 0
    }

    // MARK: reading commands

    static func dump(_ rawArguments: [String]) throws -> Int32 {
        throw UsageError("dump: not yet implemented")
    }

    static func translate(_ rawArguments: [String]) throws -> Int32 {
        throw UsageError("translate: not yet implemented")
    }

    static func svg(_ rawArguments: [String]) throws -> Int32 {
        throw UsageError("svg: not yet implemented")
    }
}
