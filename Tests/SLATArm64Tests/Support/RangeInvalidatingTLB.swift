import SLATCore
import SLATSim

/// The simulated TLBs of a CPU with range invalidation (FEAT_TLBIRANGE):
/// everything is forwarded, and ``supportsRangeInvalidation`` is true.
final class RangeInvalidatingTLB: TLB {
    let inner: SimulatedContextTLB

    init(_ inner: SimulatedContextTLB) { self.inner = inner }

    var supportsRangeInvalidation: Bool { true }
    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) { inner.invalidate(address: address, level: level) }
    func invalidate(range: GuestPhysicalRange) { inner.invalidate(range: range) }
    func invalidateAll() { inner.invalidateAll() }
}
