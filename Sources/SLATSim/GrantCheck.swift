import Synchronization

/// Answers "do the tables still grant this cached translation?" for the
/// detectors: set once a ``HardwareWalker`` is attached to a
/// ``SimulatedContextTLB``, shared by its vCPU TLBs.
final class GrantCheck: Sendable {
    typealias Check = @Sendable (CachedTranslation) -> Bool
    private let check = PThreadLocked<Check?>(nil)

    func set(_ newCheck: @escaping Check) { check.withLock { $0 = newCheck } }
    var current: Check? { check.withLock { $0 } }
}
