/// Runs a repeat body once to warm up (its sample is verified but dropped:
/// the first run of a process pays for cold caches, lazy symbol binding and
/// clock ramp-up) and then the requested number of timed repeats.
enum RepeatLoop {
    /// The samples of `count` repeats of `body`, after one discarded warm-up.
    static func samples(count: Int, _ body: () throws(BenchFailure) -> Sample) throws(BenchFailure) -> [Sample] {
        _ = try body()
        var samples: [Sample] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            samples.append(try body())
        }
        return samples
    }
}
