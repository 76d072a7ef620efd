#if SLAT_EXPLORATION_HOOKS && !hasFeature(Embedded)
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a controlled scheduler implements to be told about the library's
/// ``ExplorationPoint``s and to switch ``ExplorationMutation``s on.
///
/// An observer is installed per thread (``ExplorationHooks/install(_:)``):
/// threads without one run the library exactly as a build without the
/// hooks, so tests that run beside an exploration are not affected.
public protocol ExplorationObserver: AnyObject, Sendable {
    /// The calling thread reached `point`; returns when it may go on.
    func reached(_ point: ExplorationPoint)
    /// Whether `mutation` is switched on for the calling thread.
    func isActive(_ mutation: ExplorationMutation) -> Bool
}

/// The per-thread hook through which the library reports its
/// ``ExplorationPoint``s and asks about ``ExplorationMutation``s. Present
/// only in hosted debug builds (`SLAT_EXPLORATION_HOOKS`); when no observer
/// is installed on the calling thread each call is one thread-specific load.
public enum ExplorationHooks {
    /// Holds the observer existential behind one pointer for the
    /// thread-specific slot.
    final class Box {
        let observer: any ExplorationObserver
        init(_ observer: any ExplorationObserver) { self.observer = observer }
    }

    /// The thread-specific slot (created once, never deleted).
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        // No caller input reaches this: one key is created per process, at
        // first use; only the system running out of keys fails it.
        // Fails only when the process has used all of its thread-specific
        // keys (EAGAIN); this one is created once, in debug builds only.
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()

    /// Installs `observer` for the calling thread (`nil` removes it). The
    /// caller removes it before the thread ends.
    public static func install(_ observer: (any ExplorationObserver)?) {
        if let old = pthread_getspecific(key) {
            Unmanaged<Box>.fromOpaque(old).release()
        }
        let new = observer.map { Unmanaged.passRetained(Box($0)).toOpaque() }
        pthread_setspecific(key, new)
    }

    /// The calling thread's observer, if any.
    public static var current: (any ExplorationObserver)? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue().observer
    }

    /// Reports `point` to the calling thread's observer, if any.
    public static func reached(_ point: ExplorationPoint) {
        current?.reached(point)
    }

    /// For a waiting loop: reports ``ExplorationPoint/spin`` and returns
    /// true when an observer took it (the loop then re-checks at once
    /// instead of spinning), false when the thread has no observer.
    public static func spin() -> Bool {
        guard let observer = current else { return false }
        observer.reached(.spin)
        return true
    }

    /// Whether `mutation` is on for the calling thread.
    public static func isActive(_ mutation: ExplorationMutation) -> Bool {
        current?.isActive(mutation) ?? false
    }
}
#endif
