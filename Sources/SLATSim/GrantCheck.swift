import Synchronization

/// Answers "do the tables still grant this cached translation?" for the
/// detectors: set once a ``HardwareWalker`` is attached to a
/// ``SimulatedContextTLB``, shared by its vCPU TLBs.
final class GrantCheck: Sendable {
    typealias Check = @Sendable (CachedTranslation) -> Bool

    /// The check in a class: a closure kept directly in the generic locked
    /// storage is re-abstracted through the lock's `inout` access on every
    /// read and written back wrapped in new thunks, so after many reads a
    /// call overflows the stack. A reference is stored and read as is.
    private final class Box: Sendable {
        let check: Check
        init(_ check: @escaping Check) { self.check = check }
    }

    private let box = PThreadLocked<Box?>(nil)

    func set(_ newCheck: @escaping Check) {
        let fresh = Box(newCheck)
        box.withLock { $0 = fresh }
    }

    var current: Check? { box.withLock { $0 }?.check }
}
