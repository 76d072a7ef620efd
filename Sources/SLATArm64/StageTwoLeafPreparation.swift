import SLATCore

/// The cache maintenance a stage-2 map does before each leaf it writes
/// (``CacheMaintenance/prepare(_:size:attributes:)`` for the map's
/// attributes): the data-cache clean of a cacheable leaf, the
/// instruction-cache invalidation of an executable one.
@frozen @usableFromInline
struct StageTwoLeafPreparation<Caches: CacheMaintenance>: LeafPreparation {
    @usableFromInline let caches: Caches
    @usableFromInline let attributes: LeafAttributes

    @inlinable
    init(caches: Caches, attributes: LeafAttributes) {
        self.caches = caches
        self.attributes = attributes
    }

    @inlinable
    func prepare(output: HostPhysicalAddress, size: UInt64) {
        caches.prepare(output, size: size, attributes: attributes)
    }
}
