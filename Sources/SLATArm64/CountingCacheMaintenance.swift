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
    @usableFromInline let dataCleans = Atomic<Int>(0)
    @usableFromInline let dataBytes = Atomic<UInt64>(0)
    @usableFromInline let instructionInvalidations = Atomic<Int>(0)
    @usableFromInline let instructionBytes = Atomic<UInt64>(0)

    /// A counter for a CPU with or without FEAT_S2FWB and `CTR_EL0.DIC`.
    public init(forcesWriteBack: Bool = false, instructionCacheIsCoherent: Bool = false) {
        self.forcesWriteBack = forcesWriteBack
        self.instructionCacheIsCoherent = instructionCacheIsCoherent
    }

    // Inlinable, with the counters: every fault that installs a cacheable
    // leaf asks for a clean, and a call across modules costs more than the
    // two atomic adds.
    @inlinable
    public func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64) {
        dataCleans.wrappingAdd(1, ordering: .relaxed)
        dataBytes.wrappingAdd(size, ordering: .relaxed)
    }

    @inlinable
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
