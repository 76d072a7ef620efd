/// The level of the leaf a by-address invalidation is for, in SLAT's
/// numbering and in the architecture manual's: what a ``TLB`` receives.
///
/// Hardware wants the manual's number — Arm's FEAT_TTL level hint in a
/// `TLBI IPAS2E1IS` operand is the Arm ARM level (a 2 MiB block is level 2,
/// a 4 KiB page level 3) — while simulators and counters index by height.
/// Both come with every hint, so no implementation converts.
@frozen
public struct LeafLevel: Hashable, Sendable {
    /// SLAT's height: 0 is the smallest page (see ``PageTableFormat``).
    public var height: Int
    /// The architecture's number for the level: the Arm ARM's (3 − height;
    /// −1 is the FEAT_LPA2 start level) or the Intel SDM's (height + 1;
    /// level 1 holds 4 KiB pages).
    public var architectural: Int

    /// A level given in both numberings; use
    /// ``PageTableFormat/leafLevel(ofHeight:)`` to derive one from a format.
    @inlinable
    public init(height: Int, architectural: Int) {
        self.height = height
        self.architectural = architectural
    }
}

extension PageTableFormat {
    /// The leaf level at `height` in this format's numbering and the
    /// architecture's (``architecturalLevel(_:)``).
    @inlinable
    public func leafLevel(ofHeight height: Int) -> LeafLevel {
        LeafLevel(height: height, architectural: architecturalLevel(height))
    }
}
