import SLATCore
import SLATSim
import Synchronization

/// Forwards everything to the simulated TLBs, but runs a hook once, just
/// before the first invalidation of any kind reaches them: "another vCPU
/// acts while the operation is about to flush".
final class FirstInvalidationHookTLB: TLB {
    let inner: SimulatedContextTLB
    private let hook: Mutex<(@Sendable () -> Void)?>

    init(_ inner: SimulatedContextTLB) {
        self.inner = inner
        self.hook = Mutex(nil)
    }

    /// Arms the hook (replacing one not yet run).
    func beforeNextInvalidation(_ body: @escaping @Sendable () -> Void) {
        hook.withLock { $0 = body }
    }

    private func runHook() {
        let pending = hook.withLock { hook in
            defer { hook = nil }
            return hook
        }
        pending?()
    }

    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        runHook()
        inner.invalidate(address: address, level: level)
    }
    func invalidate(range: GuestPhysicalRange) {
        runHook()
        inner.invalidate(range: range)
    }
    func invalidateAll() {
        runHook()
        inner.invalidateAll()
    }
}
