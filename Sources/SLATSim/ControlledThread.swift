import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One logical thread of a ``ControlledScheduler``: a real thread that
/// waits on its own semaphore whenever it is not the one chosen to run.
// @unchecked Sendable: `status` and `waitingFor` are read and written only with the
// scheduler's state lock held; the other properties are immutable (the
// semaphore is itself thread-safe).
final class ControlledThread: @unchecked Sendable {
    enum Status { case runnable, parked, finished }

    let index: Int
    let name: String
    unowned let scheduler: ControlledScheduler
    let wakeUp = DispatchSemaphore(value: 0)
    var status: Status = .runnable
    /// While parked: the threads that must take a step before it runs again.
    var waitingFor: Set<Int> = []

    init(index: Int, name: String, scheduler: ControlledScheduler) {
        self.index = index
        self.name = name
        self.scheduler = scheduler
    }

    /// The thread-specific slot naming the logical thread a real thread runs.
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        // No caller input reaches this: one key is created per process, at
        // first use; only the system running out of keys fails it.
        // Fails only when the process has used all its thread-specific keys.
        precondition(status == 0, "pthread_key_create failed")
        return key
    }()

    /// The logical thread the calling real thread runs, if any.
    static var current: ControlledThread? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<ControlledThread>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Makes (or, with `nil`, stops making) the calling real thread `thread`.
    static func setCurrent(_ thread: ControlledThread?) {
        pthread_setspecific(key, thread.map { Unmanaged.passUnretained($0).toOpaque() })
    }
}
