import SLATCore
import SLATSim

/// A broken TLB for tests that must fail: by-address invalidations (the
/// break-before-make ones) are dropped; the rest is forwarded.
final class AddressInvalidationDroppingTLB: TLB {
    let inner: SimulatedContextTLB
    init(_ inner: SimulatedContextTLB) { self.inner = inner }
    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {}
    func invalidate(range: GuestPhysicalRange) { inner.invalidate(range: range) }
    func invalidateAll() { inner.invalidateAll() }
}
