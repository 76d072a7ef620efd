import SLAT

/// Work to run against one concrete format type. ``BenchFormat`` builds the
/// format and calls ``visit(_:)`` with its concrete type, so everything the
/// visitor does is specialised for that format (an unspecialised generic
/// walker across modules is several times slower; Docs/architecture.md).
protocol FormatVisitor {
    /// What the visit produces.
    associatedtype Output
    /// Runs the work against `format`.
    func visit<Format: PageTableFormat>(_ format: Format) throws(BenchFailure) -> Output
}
