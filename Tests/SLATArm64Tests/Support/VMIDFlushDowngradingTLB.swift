import SLATCore
import SLATSim

/// The anchored-merge bug as a TLB: a VMID-wide invalidation is downgraded to a
/// by-address invalidation (no level hint) of one address — what the merge
/// did before the fix ("TLBI IPAS2E1IS of the input address"). Everything
/// else is forwarded to the simulated TLBs.
final class VMIDFlushDowngradingTLB: TLB {
    let inner: SimulatedContextTLB
    let address: GuestPhysicalAddress

    init(_ inner: SimulatedContextTLB, invalidatingOnly address: GuestPhysicalAddress) {
        self.inner = inner
        self.address = address
    }

    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) { inner.invalidate(address: address, level: level) }
    func invalidate(range: GuestPhysicalRange) { inner.invalidate(range: range) }
    func invalidateAll() { inner.invalidate(address: address, level: nil) }
}
