import SLAT

/// Why `slat-bench` stops early, and the exit status each reason maps to.
enum BenchFailure: Error {
    /// The command line is wrong (unknown workload or format, bad size,
    /// unsupported thread count): exit status 2.
    case usage(String)
    /// An operation produced tables that do not say what it was asked to do:
    /// the figure would measure a broken operation. Exit status 1.
    case verification(String)
    /// The library refused an operation the benchmark expected to succeed.
    /// Exit status 1.
    case library(String, SLATError)

    /// The process exit status for this failure.
    var exitStatus: Int32 {
        switch self {
        case .usage: 2
        case .verification, .library: 1
        }
    }

    /// The message printed on standard error.
    var message: String {
        switch self {
        case .usage(let text): text
        case .verification(let text): "verification failed: \(text)"
        case .library(let what, let error): "\(what) failed: \(error)"
        }
    }
}

/// Runs `body`, reporting a refusal by the library as ``BenchFailure/library(_:_:)``
/// named `what`.
func library<T>(_ what: String, _ body: () throws(SLATError) -> T) throws(BenchFailure) -> T {
    do {
        return try body()
    } catch {
        throw .library(what, error)
    }
}
