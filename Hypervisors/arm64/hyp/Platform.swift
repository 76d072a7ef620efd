import Synchronization

/// QEMU `virt` with `-smp 2 -m 512M`: where the hypervisor's memory is and
/// how it talks to the firmware.
enum Platform {
    static let cpus = 2
    /// The CPU running this code (MPIDR_EL1.Aff0).
    static var currentCPU: Int { Int(hyp_read_mpidr_el1() & 0xFF) }

    // Physical memory the hypervisor owns (see Docs/bare-metal.md).
    /// The scenario VM's table arena: 4 MiB.
    static let tableArenaBase: UInt64 = 0x4400_0000
    static let tableArenaPages = 1024
    /// The self-test's table arena: 4 MiB.
    static let selfTestArenaBase: UInt64 = 0x4440_0000
    /// The mode word, written by QEMU's `-device loader` (self-test: 0x5E1F7E57).
    static let modeWord: UInt64 = 0x41FF_F000
    static let selfTestMagic: UInt32 = 0x5E1F_7E57

    // PSCI (Arm DEN0022) function IDs.
    static let psciVersion: UInt64 = 0x8400_0000
    static let psciCPUOn: UInt64 = 0xC400_0003
    static let psciSystemOff: UInt64 = 0x8400_0008
    static let psciFeatures: UInt64 = 0x8400_000A

    /// Starts physical CPU `cpu` at the hypervisor's secondary entry.
    static func startCPU(_ cpu: Int) -> Int64 {
        let entry = UInt64(UInt(bitPattern: unsafeBitCast(hyp_secondary_entry as @convention(c) () -> Void,
                                                          to: UnsafeRawPointer.self)))
        return Int64(bitPattern: hyp_smc(psciCPUOn, UInt64(cpu), entry, UInt64(cpu)))
    }

    static func systemOff() -> Never {
        _ = hyp_smc(psciSystemOff, 0, 0, 0)
        while true { hyp_wait_for_event() }
    }

    /// Microseconds of the generic timer.
    static var microseconds: UInt64 { hyp_read_cntpct_el0() &* 1_000_000 / max(hyp_read_cntfrq_el0(), 1) }
}
