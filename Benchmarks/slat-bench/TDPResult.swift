import SLAT
import SLATx86

/// One timed figure of a TDP workload: the median and spread of its samples.
struct TDPResult: Sendable {
    let name: String
    let operations: Int
    let unit: String
    let samples: [UInt64]

    var sorted: [UInt64] { samples.sorted() }
    var median: UInt64 { sorted[sorted.count / 2] }
    var perOperation: Double { Double(median) / Double(max(operations, 1)) }

    var line: String {
        let ms = Double(median) / 1e6
        let low = Double(sorted.first ?? 0) / Double(max(operations, 1))
        let high = Double(sorted.last ?? 0) / Double(max(operations, 1))
        return "\(name): \(DecimalText.fixed(perOperation, 2)) ns/\(unit) (spread \(DecimalText.fixed(low, 2))-\(DecimalText.fixed(high, 2))), "
            + "\(DecimalText.fixed(ms, 3)) ms for \(operations) \(unit)s, \(samples.count) timed repeats"
    }
}

/// Runs `slat-bench tdp <workload>` and prints its results.
enum TDPRunner {
    static func run(_ options: TDPOptions) throws(BenchFailure) {
        if BenchRunner.isDebugBuild {
            StandardError.writeLine("slat-bench: warning: this is a debug build; its figures are meaningless (use swift build -c release)")
        }
        let load = SystemLoad.current()
        let results: [TDPResult]
        switch options.workload {
        case .fault: results = try TDPFaultWorkload.run(options)
        case .dirtyLog: results = try TDPDirtyLogWorkload.run(options)
        case .zap: results = try TDPZapWorkload.run(options)
        case .age: results = try TDPAgeWorkload.run(options)
        case .eagerSplit: results = try EagerSplitWorkload.run(options)
        }
        print("slat-bench tdp \(options.workload.rawValue): \(BenchRunner.isDebugBuild ? "DEBUG build" : "release build"), EPT 4-level A/D on, "
            + "\(ByteSize.format(options.size)), host: \(load.description) at start")
        for result in results { print(result.line) }
    }
}
