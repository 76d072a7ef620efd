import SLATArm64
import SLATCore

/// SLATArm64's `CacheMaintenance` on AArch64 hardware.
///
/// | hook | sequence |
/// |---|---|
/// | ``cleanDataCacheToPointOfCoherency(_:size:)`` | `DC CIVAC` for every data-cache line of the range (line size `4 << CTR_EL0.DminLine`), then `DSB SY` |
/// | ``invalidateInstructionCache(_:size:)`` | `IC IALLUIS; DSB ISH; ISB` |
///
/// Clean-and-invalidate (`DC CIVAC`, as KVM's `dcache_clean_inval_poc`)
/// rather than clean only (`DC CVAC`, ``cleanDataCache(_:size:)``), so no
/// stale line survives for a guest that reads with its caches off. The
/// hooks get host-physical addresses; the data-cache operations take
/// virtual ones, so the hypervisor gives the offset of its linear map of
/// physical memory (0 for an identity map). Any CPU, any lock state.
public final class AArch64CacheMaintenance<Instructions: AArch64Instructions>: CacheMaintenance {
    public let forcesWriteBack: Bool
    public let instructionCacheIsCoherent: Bool
    /// The smallest data-cache line in bytes (from `CTR_EL0.DminLine`).
    public let dataCacheLineSize: UInt64
    /// Virtual address = physical address + this offset.
    public let virtualOffset: UInt64
    /// The instruction issuer.
    public let instructions: Instructions

    /// Cache maintenance with the line size read from `ctr` (`CTR_EL0`).
    ///
    /// - Parameters:
    ///   - forcesWriteBack: `HCR_EL2.FWB` is set (FEAT_S2FWB).
    ///   - ctr: `CTR_EL0`; `DIC` (bit 29) says the instruction cache needs
    ///     no invalidation, `DminLine` (bits 19:16) gives the line size.
    ///   - virtualOffset: added to a physical address to get the virtual address the `DC` instructions take (0 with an identity map at EL2).
    ///   - instructions: the instruction issuer (`AArch64SystemInstructions` on hardware, a recorder in tests).
    public init(forcesWriteBack: Bool, ctr: UInt64, virtualOffset: UInt64 = 0, instructions: Instructions) {
        self.forcesWriteBack = forcesWriteBack
        self.instructionCacheIsCoherent = ctr >> 29 & 1 != 0
        self.dataCacheLineSize = 4 << (ctr >> 16 & 0xF)
        self.virtualOffset = virtualOffset
        self.instructions = instructions
    }

    @inlinable
    func forEachLine(_ output: HostPhysicalAddress, size: UInt64, _ body: (UInt64) -> Void) {
        let line = dataCacheLineSize
        var address = (output.rawValue &+ virtualOffset) & ~(line &- 1)
        let end = output.rawValue &+ virtualOffset &+ size
        while address < end {
            body(address)
            address &+= line
        }
    }

    public func cleanDataCacheToPointOfCoherency(_ output: HostPhysicalAddress, size: UInt64) {
        forEachLine(output, size: size) { instructions.dcCIVAC($0) }
        instructions.dsbFullSystem()
    }

    /// `DC CVAC` for every line of the range, then `DSB SY`: clean only.
    public func cleanDataCache(_ output: HostPhysicalAddress, size: UInt64) {
        forEachLine(output, size: size) { instructions.dcCVAC($0) }
        instructions.dsbFullSystem()
    }

    public func invalidateInstructionCache(_ output: HostPhysicalAddress, size: UInt64) {
        instructions.icIALLUIS()
        instructions.dsbInnerShareable()
        instructions.isb()
    }
}
