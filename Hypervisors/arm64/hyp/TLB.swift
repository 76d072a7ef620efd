import SLATArm64
import SLATArm64Hardware
import SLATCore

/// The VM's TLB: SLATArm64Hardware's `AArch64StageTwoTLB` (real `TLBI`,
/// `DSB`, `ISB`) with per-CPU counters, and the bite builds' breakage:
///
/// - `-D HYP_BITE_NO_VMID_FLUSH`: ``invalidateAll()`` does nothing (the
///   anchored merge's one VMID-wide flush is dropped);
/// - `-D HYP_BITE_NO_INVALIDATION`: every invalidation does nothing.
///
/// Levels pass through unchanged to the hardware TLB, which turns SLAT's
/// level into the Arm ARM level of the TTL hint; this type never reads
/// them, so a change of the level's type touches only the signature below.
// @unchecked Sendable: `counts` is a fixed buffer of CPUS × 3 words; each CPU
// writes only its own three words (indexed by its MPIDR affinity), and the
// totals are read after the CPUs have synchronised through the guest's
// barriers and the scenario hypercalls (acquire/release atomics).
final class HypTLB: TLB, @unchecked Sendable {
    let hardware: AArch64StageTwoTLB<AArch64SystemInstructions>
    let counts: UnsafeMutablePointer<Int>

    init(translationTableBase: UInt64, format: StageTwoFormat, hasLevelHints: Bool) {
        hardware = AArch64StageTwoTLB(translationTableBase: translationTableBase, format: format,
                                      hasLevelHints: hasLevelHints, hasRangeInvalidation: false,
                                      instructions: AArch64SystemInstructions())
        counts = UnsafeMutablePointer<Int>.allocate(capacity: Platform.cpus * 3)
        counts.initialize(repeating: 0, count: Platform.cpus * 3)
    }

    func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        counts[Platform.currentCPU * 3] += 1
        #if !HYP_BITE_NO_INVALIDATION
        hardware.invalidate(address: address, level: level)
        #endif
    }

    func invalidate(range: GuestPhysicalRange) {
        counts[Platform.currentCPU * 3 + 1] += 1
        #if !HYP_BITE_NO_INVALIDATION
        hardware.invalidate(range: range)
        #endif
    }

    func invalidateAll() {
        counts[Platform.currentCPU * 3 + 2] += 1
        #if !HYP_BITE_NO_INVALIDATION && !HYP_BITE_NO_VMID_FLUSH
        hardware.invalidateAll()
        #endif
    }

    /// IPA, range and VMID-wide invalidations asked for, all CPUs.
    var totals: (ipa: Int, range: Int, vmid: Int) {
        var result = (ipa: 0, range: 0, vmid: 0)
        for cpu in 0..<Platform.cpus {
            result.ipa += counts[cpu * 3]
            result.range += counts[cpu * 3 + 1]
            result.vmid += counts[cpu * 3 + 2]
        }
        return result
    }

    /// VMID-wide invalidations this CPU asked for.
    var vmidOnThisCPU: Int { counts[Platform.currentCPU * 3 + 2] }
}
