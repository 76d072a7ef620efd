/// Progress lines on standard error, so long runs show they are alive
/// without disturbing the report (or the JSON) on standard output.
struct Progress: Sendable {
    /// Whether to write anything.
    let enabled: Bool

    /// Announces that `what` starts on `format`.
    func starting(_ what: String, on format: BenchFormat, repeats: Int, size: UInt64) {
        guard enabled else { return }
        let plural = repeats == 1 ? "" : "s"
        StandardError.writeLine("slat-bench: \(format.rawValue) \(what): \(repeats) repeat\(plural) over \(ByteSize.format(size))")
    }

    /// Announces a step that is not one workload on one format.
    func note(_ text: String) {
        guard enabled else { return }
        StandardError.writeLine("slat-bench: \(text)")
    }
}
