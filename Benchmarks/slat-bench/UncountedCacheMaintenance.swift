import SLAT
import SLATArm64

/// The stage-2 benchmarks' cache maintenance: a CPU without FEAT_S2FWB or
/// `CTR_EL0.DIC` (so the MMU asks for every clean and invalidation, as
/// with SLATArm64's `CountingCacheMaintenance`) whose operations do
/// nothing. The benchmarks never report the counting type's counts, and its
/// two atomic adds per clean were the benchmark's own cost: with vCPUs
/// sharing one VM they also contend on the counters' cache line, which no
/// CPU's `DC CVAC` does, and so slowed `fault-threads` against
/// `fault-threads-separate-vms` (a VM, and so a counter, per thread).
///
/// Thread-safe: no state.
final class UncountedCacheMaintenance: CacheMaintenance {
    let forcesWriteBack = false
    let instructionCacheIsCoherent = false

    func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64) {}

    func invalidateInstructionCache(_ output: HostPhysicalAddress, size: UInt64) {}
}
