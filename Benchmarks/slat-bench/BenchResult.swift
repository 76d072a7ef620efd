/// One metric on one format, summarised over its repeats.
struct BenchResult: Sendable {
    /// What was measured.
    let metric: Metric
    /// The format it was measured on.
    let format: BenchFormat
    /// Threads running the workload (1 until SLATSim brings concurrency).
    let threads: Int
    /// Bytes of guest-physical space mapped.
    let size: UInt64
    /// Operations (pages or lookups) per repeat.
    let ops: Int
    /// Nanoseconds of each repeat, in run order.
    let samples: [UInt64]
    /// Counters of the last repeat (every repeat does the same work).
    let counters: OperationCounters

    /// Builds the summary of `samples`, which must not be empty.
    init(metric: Metric, format: BenchFormat, size: UInt64, ops: Int, samples: [Sample], threads: Int = 1) {
        self.metric = metric
        self.format = format
        self.threads = threads
        self.size = size
        self.ops = ops
        self.samples = samples.map(\.nanoseconds)
        self.counters = samples.last?.counters ?? OperationCounters()
    }

    /// Repeats run.
    var repeats: Int { samples.count }

    /// Median seconds of one repeat (mean of the middle two for an even count).
    var medianSeconds: Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return 0 }
        let middle = sorted.count / 2
        let nanoseconds = sorted.count % 2 == 1
            ? Double(sorted[middle])
            : (Double(sorted[middle - 1]) + Double(sorted[middle])) / 2
        return nanoseconds / 1e9
    }

    /// Median nanoseconds per operation.
    var nsPerOp: Double { medianSeconds * 1e9 / Double(max(ops, 1)) }
    /// Fastest repeat, nanoseconds per operation.
    var minNsPerOp: Double { Double(samples.min() ?? 0) / Double(max(ops, 1)) }
    /// Slowest repeat, nanoseconds per operation.
    var maxNsPerOp: Double { Double(samples.max() ?? 0) / Double(max(ops, 1)) }
    /// Operations per second at the median.
    var opsPerSecond: Double { medianSeconds > 0 ? Double(ops) / medianSeconds : 0 }

    /// The target this result is judged against, if any.
    var target: PerformanceTarget? { PerformanceTarget.target(for: metric, format: format, threads: threads) }
}
