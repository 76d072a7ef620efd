/// A value guarded by a ``SpinningReaderWriterLock``: readers borrow it
/// concurrently, writers change it alone. The building block of the guest
/// memory model's shared tables.
///
/// Locking contract: ``read(_:)`` holds the lock shared and ``write(_:)``
/// exclusively for the duration of the closure; closures must be short, must
/// not block and must not call back into the same object. Values that
/// outlive the closure are copies.
///
/// Sendable safety argument (`@unchecked`): `value` is a mutable stored
/// property, but it is only touched inside `read` (shared hold: concurrent
/// borrows of an immutable value, which is `Sendable`, so concurrent reads are
/// safe) and `write` (exclusive hold: no other access at the same time). The
/// lock's acquire/release ordering publishes each write to later readers.
public final class ReaderWriterLocked<Value: Sendable>: @unchecked Sendable {
    @usableFromInline let lock = SpinningReaderWriterLock()
    @usableFromInline var value: Value

    /// Guards `value`. Any thread may then use the object.
    public init(_ value: Value) { self.value = value }

    /// Runs `body` on the value with the lock held shared.
    @inlinable
    public func read<R, E: Error>(_ body: (borrowing Value) throws(E) -> R) throws(E) -> R {
        lock.lockShared()
        defer { lock.unlockShared() }
        return try body(value)
    }

    /// Runs `body` on the value with the lock held exclusively.
    @inlinable
    public func write<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock.lockExclusive()
        defer { lock.unlockExclusive() }
        return try body(&value)
    }
}
