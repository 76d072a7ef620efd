/// A list of event callbacks that can be changed while events are delivered.
///
/// Locking contract: internally locked; every method may be called from any
/// thread. ``notify(_:)`` copies the list under the lock and calls the
/// listeners after releasing it, in registration order, on the calling thread;
/// so a listener may add or remove listeners, and a listener removed while an
/// event is being delivered may still receive that event.
public final class ListenerList<Event>: Sendable {
    /// A registered callback.
    public typealias Listener = @Sendable (Event) -> Void

    private struct Entry: Sendable {
        var token: ListenerToken
        var listener: Listener
    }

    private struct State: Sendable {
        /// Sorted by token (tokens are issued in increasing order).
        var entries: [Entry] = []
        var nextToken: UInt64 = 0
    }

    private let state = ReaderWriterLocked(State())

    /// An empty list.
    public init() {}

    /// Registers `listener`; returns the token that removes it.
    public func add(_ listener: @escaping Listener) -> ListenerToken {
        state.write { state in
            let token = ListenerToken(id: state.nextToken)
            state.nextToken &+= 1
            state.entries.append(Entry(token: token, listener: listener))
            return token
        }
    }

    /// Unregisters the listener of `token`; returns whether it was registered.
    @discardableResult
    public func remove(_ token: ListenerToken) -> Bool {
        state.write { state in
            guard let index = state.entries.firstIndex(where: { $0.token == token }) else { return false }
            state.entries.remove(at: index)
            return true
        }
    }

    /// How many listeners are registered.
    public var count: Int { state.read { $0.entries.count } }

    /// Calls every registered listener with `event`, outside the lock.
    public func notify(_ event: Event) {
        let entries = state.read { $0.entries }
        for entry in entries { entry.listener(event) }
    }
}
