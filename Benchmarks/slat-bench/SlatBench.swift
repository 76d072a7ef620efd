/// The `slat-bench` program: parses the command line, runs the command and
/// turns failures into messages and exit statuses (0 success, 1 a failed
/// operation or verification, 2 a usage error).
enum SlatBench {
    /// Runs the program on `arguments` (without the program name) and
    /// returns the exit status.
    static func main(_ arguments: [String]) -> Int32 {
        do {
            switch try CommandLineParser.parse(arguments) {
            case .help:
                print(BenchCommand.usage)
            case .list:
                print(ListReport.render())
            case .tdp(let options):
                try TDPRunner.run(options)
            case .run(let options):
                try BenchRunner.run(options)
            }
            return 0
        } catch {
            StandardError.writeLine("slat-bench: \(error.message)")
            if case .usage = error { StandardError.writeLine("run 'slat-bench help' for usage") }
            return error.exitStatus
        }
    }
}
