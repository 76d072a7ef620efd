import SLATArm64
import SLATCore
import Synchronization

/// Hypercalls of the test guest (HVC #0, x0 = function, SMCCC vendor-
/// specific hypervisor service range).
enum Hypercall: UInt64 {
    case begin = 0xC600_0001          // x1 scenario
    case end = 0xC600_0002            // x1 scenario, x2 failures the guest saw → x0 failures in all
    case dirtyEnable = 0xC600_0003    // x1 memslot
    case dirtyHarvest = 0xC600_0004   // x1 memslot → x0 recorded pages missing from the harvest
    case dirtyDisable = 0xC600_0005   // x1 memslot
    case remap = 0xC600_0006          // x1 IPA → x0 0 when moved
    case writeProtect = 0xC600_0007   // x1 IPA, x2 size
    case unmap = 0xC600_0008          // x1 IPA, x2 size
    case fail = 0xC600_0009           // x1 code, x2, x3 details
    case trackReset = 0xC600_000A
    case compactionPrepare = 0xC600_000B  // maps the compaction region page by page
    case compact = 0xC600_000C        // copies it into one 2 MiB frame and maps a block over the pages
    case age = 0xC600_000D            // x1 IPA, x2 size: clear the access flags, then invalidate
}

/// The hypervisor: one VM with one vCPU per physical CPU, and the
/// scenario bookkeeping.
final class Hypervisor: Sendable {
    let vm: VM
    let statistics = ExitStatistics()
    let faults = FaultMap()
    let device = EmulatedDevice()
    /// PSCI CPU_ON from the guest for vCPU 1: entry (0 = none yet), context.
    let secondaryEntry = Atomic<UInt64>(0)
    let secondaryContext = Atomic<UInt64>(0)
    let scenarios = ScenarioLog()
    let remapped = RemapLog()
    let remapCount = Atomic<Int>(0)

    init(vm: VM) { self.vm = vm }

    /// Runs vCPU `cpu` on this CPU until the guest powers the system off.
    func run(cpu: Int, entry: UInt64, context: UInt64) -> Never {
        configureEL2(cpu: cpu)
        let frame = UnsafeMutablePointer<HypVCPUFrame>.allocate(capacity: 1)
        frame.initialize(to: HypVCPUFrame())
        let registers = GuestRegisters(frame)
        registers.elr = entry
        registers.spsr = 0x3C5        // EL1h, DAIF masked
        registers[0] = context
        let pageContext = PageTableContext(readerSlot: cpu)
        while true {
            let kind = hyp_run_vcpu(frame)
            let esr = hyp_read_esr_el2()
            guard kind == 0 else { fatal("unexpected exception kind \(kind) from the guest") }
            switch esr >> 26 & 0x3F {
            case 0x16:                       // HVC: ELR_EL2 is past the instruction
                hypercall(registers, cpu: cpu)
            case 0x17:                       // SMC trapped by HCR_EL2.TSC: ELR_EL2 is at it
                registers.elr &+= 4
                hypercall(registers, cpu: cpu)
            case 0x20, 0x24:
                handleAbort(registers, context: pageContext)
            default:
                fatal("unexpected exit esr=\(hex(esr)) elr=\(hex(registers.elr))")
            }
        }
    }

    /// HCR_EL2: VM (stage 2 on), DC (guest stage 1 off: Normal write-back),
    /// TSC (trap SMC), RW (EL1 is AArch64). Stage 2 and the vCPU's MPIDR.
    func configureEL2(cpu: Int) {
        vm.load()
        hyp_write_vmpidr_el2(0x8000_0000 | UInt64(cpu))
        hyp_write_sctlr_el1(0x30D0_0800)
        hyp_write_cnthctl_el2(0x3)
        hyp_write_cntvoff_el2(0)
        hyp_write_hcr_el2(1 << 0 | 1 << 12 | 1 << 19 | 1 << 31)
    }

    /// Waits for the guest's PSCI CPU_ON of vCPU `cpu`, then runs it.
    func runSecondary(cpu: Int) -> Never {
        while secondaryEntry.load(ordering: .acquiring) == 0 { hyp_wait_for_event() }
        run(cpu: cpu, entry: secondaryEntry.load(ordering: .acquiring), context: secondaryContext.load(ordering: .acquiring))
    }

    func hypercall(_ registers: GuestRegisters, cpu: Int) {
        let function = registers[0]
        switch function {
        case Platform.psciVersion:
            registers[0] = 0x1_0000
        case Platform.psciFeatures:
            registers[0] = registers[1] == Platform.psciCPUOn || registers[1] == Platform.psciSystemOff ? 0 : UInt64(bitPattern: -1)
        case Platform.psciCPUOn:
            // x1 target MPIDR, x2 entry, x3 context id.
            if registers[1] & 0xFF != 1 || registers[1] >> 8 != 0 {
                registers[0] = UInt64(bitPattern: -2)        // INVALID_PARAMETERS
            } else if secondaryEntry.load(ordering: .acquiring) != 0 {
                registers[0] = UInt64(bitPattern: -4)        // ALREADY_ON
            } else {
                secondaryContext.store(registers[3], ordering: .releasing)
                secondaryEntry.store(registers[2], ordering: .releasing)
                hyp_send_event()
                registers[0] = 0
            }
        case Platform.psciSystemOff:
            scenarios.printSummary(statistics: statistics)
            Platform.systemOff()
        default:
            guard let call = Hypercall(rawValue: function) else {
                registers[0] = UInt64(bitPattern: -1)        // NOT_SUPPORTED
                return
            }
            registers[0] = serviceCall(call, registers)
        }
    }

    func serviceCall(_ call: Hypercall, _ registers: GuestRegisters) -> UInt64 {
        let context = PageTableContext(readerSlot: Platform.currentCPU)
        defer { context.pageCache.release(to: vm.arena) }
        switch call {
        case .begin:
            scenarios.begin(Int(registers[1]), statistics: statistics, tlb: vm.pageTable.tlb)
            return 0
        case .end:
            let failures = Int(registers[2]) + check(scenario: Int(registers[1]))
            return UInt64(scenarios.end(Int(registers[1]), failures: failures, statistics: statistics, tlb: vm.pageTable.tlb))
        case .dirtyEnable:
            return enableDirtyLogging(slot: UInt32(registers[1]), context: context)
        case .dirtyHarvest:
            return harvest(slot: UInt32(registers[1]), context: context)
        case .dirtyDisable:
            do throws(SLATError) {
                try vm.pageTable.disableDirtyLogging(memslot: UInt32(registers[1]), guestMemory: vm.guestMemory)
                return 0
            } catch { return report("dirty logging could not be disabled") }
        case .remap:
            return remap(registers[1])
        case .writeProtect:
            do throws(SLATError) {
                try vm.lock.withExclusive { () throws(SLATError) in
                    var batch = TLBFlushBatch()
                    try vm.pageTable.writeProtect(GuestPhysicalRange(start: GuestPhysicalAddress(registers[1]), size: registers[2]),
                                                  context: context, batch: &batch)
                    vm.pageTable.settle(batch, mode: .exclusive)
                }
                return 0
            } catch { return report("write protection failed") }
        case .unmap:
            return unmap(registers[1], size: registers[2], context: context)
        case .fail:
            Console.write("guest: check failed: code \(registers[1]) at \(hex(registers[2])) value \(hex(registers[3]))")
            return 0
        case .trackReset:
            faults.reset()
            return 0
        case .compactionPrepare:
            return prepareCompaction(context: context)
        case .compact:
            return compact(context: context)
        case .age:
            // Clearing the access flag owes no invalidation (aging is
            // advisory); the range is invalidated here so the next access
            // of each page takes an access-flag fault.
            let range = GuestPhysicalRange(start: GuestPhysicalAddress(registers[1]), size: registers[2])
            do throws(SLATError) {
                _ = try vm.lock.withExclusive { () throws(SLATError) -> Bool in
                    try vm.pageTable.testAndClearYoung(range, mode: .exclusive, context: context)
                }
            } catch { return report("aging failed") }
            vm.pageTable.tlb.invalidate(range: range)
            return 0
        }
    }

    func report(_ message: String) -> UInt64 {
        Console.write("hyp: check failed: " + message)
        statistics.failures.wrappingAdd(1, ordering: .relaxed)
        return 1
    }
}
