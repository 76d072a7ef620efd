/// Turns `CommandLine.arguments` (without the program name) into a
/// ``BenchCommand``. Options take their value as the next argument or
/// after `=` (`--size 1G`, `--size=1G`). Every mistake is a
/// ``BenchFailure/usage(_:)`` (exit status 2).
struct CommandLineParser {
    private var arguments: [String]
    private var position = 0

    /// A parser over `arguments`.
    init(_ arguments: [String]) { self.arguments = arguments }

    /// Parses the whole command line.
    static func parse(_ arguments: [String]) throws(BenchFailure) -> BenchCommand {
        var parser = CommandLineParser(arguments)
        return try parser.parseCommand()
    }

    private mutating func parseCommand() throws(BenchFailure) -> BenchCommand {
        guard let first = arguments.first else { return .run(RunOptions()) }
        switch first {
        case "help", "-h", "--help":
            return .help
        case "list":
            guard arguments.count == 1 else { throw .usage("list takes no arguments") }
            return .list
        case "run":
            guard arguments.count >= 2, !arguments[1].hasPrefix("-") else {
                throw .usage("run needs a workload: \(Workload.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var options = RunOptions()
            options.selectionName = "run \(arguments[1])"
            options.metrics = try Self.metrics(named: arguments[1])
            position = 2
            try parseOptions(into: &options)
            return .run(options)
        default:
            guard first.hasPrefix("-") else {
                throw .usage("unknown command '\(first)' (commands: run, list, help; no command runs the default suite)")
            }
            var options = RunOptions()
            try parseOptions(into: &options)
            return .run(options)
        }
    }

    /// The metrics a workload or metric name selects.
    static func metrics(named name: String) throws(BenchFailure) -> [Metric] {
        if name.contains(",") {
            var metrics: [Metric] = []
            for part in name.split(separator: ",") {
                for metric in try Self.metrics(named: String(part)) where !metrics.contains(metric) { metrics.append(metric) }
            }
            return metrics
        }
        if let workload = Workload(rawValue: name) { return workload.metrics }
        if let metric = Metric(rawValue: name) { return [metric] }
        throw .usage("unknown workload '\(name)' (workloads: \(Workload.allCases.map(\.rawValue).joined(separator: ", ")); metrics: \(Metric.allCases.map(\.rawValue).joined(separator: ", ")))")
    }

    private mutating func parseOptions(into options: inout RunOptions) throws(BenchFailure) {
        var formats: [BenchFormat] = []
        while position < arguments.count {
            let argument = arguments[position]
            position += 1
            let (name, inlineValue) = Self.split(argument)
            switch name {
            case "--json":
                try Self.rejectValue(inlineValue, of: name)
                options.json = true
            case "--quiet", "-q":
                try Self.rejectValue(inlineValue, of: name)
                options.quiet = true
            case "--format", "-f":
                for item in try value(of: name, inline: inlineValue).split(separator: ",") {
                    guard let format = BenchFormat(rawValue: String(item)) else {
                        throw .usage("unknown format '\(item)' (formats: \(BenchFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    if !formats.contains(format) { formats.append(format) }
                }
            case "--size", "-s":
                let text = try value(of: name, inline: inlineValue)
                guard let size = ByteSize.parse(text) else {
                    throw .usage("bad --size '\(text)': give a positive byte count such as 1G, 512M, 64K or 4096")
                }
                options.size = size
            case "--repeat", "--repeats", "-r":
                let text = try value(of: name, inline: inlineValue)
                guard let repeats = Int(text), repeats >= 1, repeats <= 10_000 else {
                    throw .usage("bad --repeat '\(text)': give a whole number from 1 to 10000")
                }
                options.repeats = repeats
            case "--threads", "-t":
                let text = try value(of: name, inline: inlineValue)
                guard let threads = Int(text), threads >= 1 else {
                    throw .usage("bad --threads '\(text)': give a positive whole number")
                }
                guard threads <= 64 else { throw .usage("bad --threads '\(text)': at most 64") }
                options.threads = threads
            case "--rounds":
                let text = try value(of: name, inline: inlineValue)
                guard let rounds = Int(text), rounds >= 0, rounds <= 1_000 else {
                    throw .usage("bad --rounds '\(text)': give a whole number from 0 to 1000")
                }
                options.rounds = rounds
            case "--dirty-mode":
                switch try value(of: name, inline: inlineValue) {
                case "wp": options.dirtyMode = .writeProtect
                case "dbit": options.dirtyMode = .dirtyBit
                case let other: throw .usage("bad --dirty-mode '\(other)': give wp or dbit")
                }
            default:
                throw .usage("unknown option '\(argument)' (see slat-bench help)")
            }
        }
        if !formats.isEmpty {
            options.formats = formats
            let workloads = Set(options.metrics.map(\.workload))
            if !workloads.contains(where: { workload in formats.contains { workload.applies(to: $0) } }) {
                let names = workloads.map(\.rawValue).sorted().joined(separator: ", ")
                throw .usage("\(names) measures nothing on \(formats.map(\.rawValue).joined(separator: ", ")) (EPT-only: dirty-log, zap, age; stage-2-only: merge, split, kvm-page-table-test)")
            }
        }
        for format in options.formats {
            try MappingGeometry.check(size: options.size, for: format)
        }
    }

    /// An option's value: after `=`, else the next argument.
    private mutating func value(of name: String, inline: String?) throws(BenchFailure) -> String {
        if let inline {
            guard !inline.isEmpty else { throw .usage("\(name) needs a value") }
            return inline
        }
        guard position < arguments.count else { throw .usage("\(name) needs a value") }
        defer { position += 1 }
        return arguments[position]
    }

    /// `--name=value` as (`--name`, `value`); anything else as (argument, nil).
    private static func split(_ argument: String) -> (String, String?) {
        guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { return (argument, nil) }
        return (String(argument[..<equals]), String(argument[argument.index(after: equals)...]))
    }

    private static func rejectValue(_ value: String?, of name: String) throws(BenchFailure) {
        if value != nil { throw .usage("\(name) takes no value") }
    }
}
