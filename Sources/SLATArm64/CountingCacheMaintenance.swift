import SLATCore
import Synchronization

/// A ``CacheMaintenance`` with no caches behind it: it counts the calls and
/// bytes it is asked for. For hosted use (the tables are not walked by a
/// real CPU), tests and benchmarks.
///
/// Thread-safe: only atomic state.
public final class CountingCacheMaintenance: CacheMaintenance {
    public let forcesWriteBack: Bool
    public let instructionCacheIsCoherent: Bool
    private let dataCleans = Atomic<Int>(0)
    private let dataBytes = Atomic<UInt64>(0)
    private let instructionInvalidations = Atomic<Int>(0)
    private let instructionBytes = Atomic<UInt64>(0)

    /// A counter for a CPU with or without FEAT_S2FWB and `CTR_EL0.DIC`.
    public init(forcesWriteBack: Bool = false, instructionCacheIsCoherent: Bool = false) {
        self.forcesWriteBack = forcesWriteBack
        self.instructionCacheIsCoherent = instructionCacheIsCoherent
    }

    public func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64) {
        dataCleans.wrappingAdd(1, ordering: .relaxed)
        dataBytes.wrappingAdd(size, ordering: .relaxed)
    }

    public func invalidateInstructionCache(_ output: HostPhysicalAddress, size: UInt64) {
        instructionInvalidations.wrappingAdd(1, ordering: .relaxed)
        instructionBytes.wrappingAdd(size, ordering: .relaxed)
    }

    /// Data-cache cleans requested so far.
    public var dataCacheCleanCount: Int { dataCleans.load(ordering: .relaxed) }
    /// Bytes those cleans covered.
    public var dataCacheCleanBytes: UInt64 { dataBytes.load(ordering: .relaxed) }
    /// Instruction-cache invalidations requested so far.
    public var instructionCacheInvalidationCount: Int { instructionInvalidations.load(ordering: .relaxed) }
    /// Bytes those invalidations covered.
    public var instructionCacheInvalidationBytes: UInt64 { instructionBytes.load(ordering: .relaxed) }
}
