/// Work a map does before a leaf it writes can be used: on stage 2 the
/// data-cache clean and instruction-cache invalidation of the leaf's output
/// (SLATArm64's `CacheMaintenance.prepare`), which must complete before a
/// vCPU can reach the memory through the new translation.
///
/// ``PageTable/map(_:to:attributes:maximumLevel:mode:context:batch:tlb:refusingPermissionOnlyChanges:refill:preparingLeaves:)``
/// calls it for each leaf (or run of consecutive leaves) it writes, before
/// the write: a leaf installed, replaced, merged into a block, or put in a
/// split's new table; not for a leaf already as wanted, nor for the copies
/// of a split block (they map what the block mapped).
public protocol LeafPreparation {
    /// Called before leaves mapping `[output, output + size)` are written.
    func prepare(output: HostPhysicalAddress, size: UInt64)
    /// Whether ``prepare(output:size:)`` does nothing, so a walk need not
    /// look for the leaves it will write before it writes them.
    static var preparesNothing: Bool { get }
}

extension LeafPreparation {
    @inlinable public static var preparesNothing: Bool { false }
}

/// No work before a leaf is written (EPT: the caches are coherent with its
/// table walks and DMA).
@frozen
public struct NoLeafPreparation: LeafPreparation {
    @inlinable public init() {}
    @inlinable public func prepare(output: HostPhysicalAddress, size: UInt64) {}
    @inlinable public static var preparesNothing: Bool { true }
}
