import SLAT

/// Work to run against one concrete format type. ``BenchFormat`` builds the
/// format and calls ``visit(_:)`` with its concrete type, so everything the
/// visitor does is specialised for that format (DESIGN.md, "Performance
/// principles": an unspecialised generic walker is several times slower).
protocol FormatVisitor {
    /// What the visit produces.
    associatedtype Output
    /// Runs the work against `format`.
    func visit<Format: PageTableFormat>(_ format: Format) throws(BenchFailure) -> Output
}
