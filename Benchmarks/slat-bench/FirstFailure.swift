import Synchronization

/// The first failure recorded by the threads of a timed section.
final class FirstFailure<Failure: Sendable>: Sendable {
    private let value = Mutex<Failure?>(nil)

    /// Keeps `failure` unless an earlier one was recorded.
    func record(_ failure: Failure) { value.withLock { if $0 == nil { $0 = failure } } }

    /// The first failure recorded, if any.
    var first: Failure? { value.withLock { $0 } }
}
