import CHypervisor
import SLATCore
import SLATx86
import SLATx86Hardware
import Synchronization

/// VMCS field encodings used here (Intel SDM Vol. 3D, Appendix B).
enum Field {
    static let vpid: UInt64 = 0x0000
    static let eptPointer: UInt64 = 0x201a
    static let guestPhysicalAddress: UInt64 = 0x2400
    static let linkPointer: UInt64 = 0x2800
    static let guestDebugControl: UInt64 = 0x2802
    static let pinControls: UInt64 = 0x4000
    static let processorControls: UInt64 = 0x4002
    static let exceptionBitmap: UInt64 = 0x4004
    static let exitControls: UInt64 = 0x400c
    static let entryControls: UInt64 = 0x4012
    static let entryInterruptionInfo: UInt64 = 0x4016
    static let secondaryControls: UInt64 = 0x401e
    static let instructionError: UInt64 = 0x4400
    static let exitReason: UInt64 = 0x4402
    static let exitInterruptionInfo: UInt64 = 0x4404
    static let exitInstructionLength: UInt64 = 0x440c
    static let preemptionTimer: UInt64 = 0x482e
    static let exitQualification: UInt64 = 0x6400
    static let guestLinearAddress: UInt64 = 0x640a
    static let guestCR0: UInt64 = 0x6800
    static let guestCR3: UInt64 = 0x6802
    static let guestCR4: UInt64 = 0x6804
    static let guestDR7: UInt64 = 0x681a
    static let guestRSP: UInt64 = 0x681c
    static let guestRIP: UInt64 = 0x681e
    static let guestRFLAGS: UInt64 = 0x6820
}

/// Basic exit reasons handled (SDM Vol. 3D, Appendix C).
enum ExitReason {
    static let exception: UInt64 = 0
    static let tripleFault: UInt64 = 2
    static let hlt: UInt64 = 12
    static let vmcall: UInt64 = 18
    static let eptViolation: UInt64 = 48
    static let eptMisconfiguration: UInt64 = 49
    static let preemptionTimer: UInt64 = 52
}

/// A control value with the bits the capability MSR forces on or off.
func adjust(_ msr: UInt32, _ wanted: UInt64) -> UInt64 {
    let capability = hv_rdmsr(msr)
    return (wanted | (capability & 0xffff_ffff)) & (capability >> 32)
}

/// A 4 KiB-aligned, zeroed page from the heap.
func allocatePage() -> UInt64 {
    let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
    page.initializeMemory(as: UInt8.self, repeating: 0, count: 4096)
    return UInt64(UInt(bitPattern: page))
}

/// The commands the guest code understands (start.S, guest_code).
enum GuestOp: UInt64 {
    case stamp = 1, verify = 2, touch = 3, mmio = 4, halt = 5, watch = 6, write = 7
}

/// One vCPU of the VM, pinned to one physical CPU: its VMCS, its guest
/// registers, its SLAT context (reader slot = CPU index) and its counters.
final class VCPU {
    let index: Int
    let machine: Machine
    let context: PageTableContext
    let registers: UnsafeMutablePointer<hv_guest_registers>
    var launched = false
    var loadedPointer: UInt64 = 0
    /// Set when an exit could not be handled (the vCPU is not entered again).
    var failure: StaticString? = nil

    // Counters (cumulative; scenarios print differences).
    var exits = 0
    var violations = 0
    var fastFaults = 0
    var slowFaults = 0
    var spurious = 0
    var retries = 0
    var mmioExits = 0
    var misconfigurations = 0
    var timerExits = 0
    var remoteInvalidations = 0
    /// An AP's scenario-1 result (guest mismatches, -1 on failure).
    var apResult = 0

    init(index: Int, machine: Machine) {
        self.index = index
        self.machine = machine
        self.context = PageTableContext(readerSlot: index)
        self.registers = .allocate(capacity: 1)
        self.registers.initialize(to: hv_guest_registers())
    }

    /// VMXON and a VMCS for a 32-bit protected-mode guest without paging
    /// (unrestricted guest) whose EPTP comes from SLAT. Returns false on a
    /// VMX instruction failure (reported).
    func enterVMX() -> Bool {
        let basic = hv_rdmsr(0x480)
        let revision = basic & 0x7fff_ffff
        hv_write_cr0(hv_read_cr0() | 0x20)                  // NE
        hv_write_cr4(hv_read_cr4() | (1 << 13))            // VMXE
        let vmxon = allocatePage()
        UnsafeMutablePointer<UInt32>(bitPattern: UInt(vmxon))!.pointee = UInt32(truncatingIfNeeded: revision)
        if hv_vmxon(vmxon) != 0 { failure = "vmxon failed"; return false }
        let vmcs = allocatePage()
        UnsafeMutablePointer<UInt32>(bitPattern: UInt(vmcs))!.pointee = UInt32(truncatingIfNeeded: revision)
        if hv_vmclear(vmcs) != 0 || hv_vmptrld(vmcs) != 0 { failure = "vmclear/vmptrld failed"; return false }
        let trueControls = (basic >> 55) & 1 == 1
        var bad = 0
        func write(_ field: UInt64, _ value: UInt64) { bad += Int(hv_vmwrite(field, value)) }

        let pinMSR: UInt32 = trueControls ? 0x48d : 0x481
        let preemption = (hv_rdmsr(pinMSR) >> 32) & (1 << 6) != 0
        write(Field.pinControls, adjust(pinMSR, preemption ? 1 << 6 : 0))
        if preemption { write(Field.preemptionTimer, 0x40_0000) }
        write(Field.processorControls, adjust(trueControls ? 0x48e : 0x482, (1 << 7) | (1 << 31)))   // HLT exiting, secondary
        let wantedSecondary: UInt64 = (1 << 1) | (1 << 5) | (1 << 7)                               // EPT, VPID, unrestricted guest
        let secondary = adjust(0x48b, wantedSecondary)
        if secondary & wantedSecondary != wantedSecondary { failure = "no EPT, VPID or unrestricted guest"; return false }
        write(Field.secondaryControls, secondary)
        write(Field.exitControls, adjust(trueControls ? 0x48f : 0x483, 1 << 9))   // host address-space size
        write(Field.entryControls, adjust(trueControls ? 0x490 : 0x484, 0))       // 32-bit guest
        write(Field.exceptionBitmap, 0xffff_ffff)
        write(Field.vpid, UInt64(index + 1))
        write(Field.linkPointer, ~0)

        // Host state: this CPU's long-mode context.
        write(0x6c00, hv_read_cr0()); write(0x6c02, hv_read_cr3()); write(0x6c04, hv_read_cr4())
        write(0x0c00, 0x10); write(0x0c02, 0x18); write(0x0c04, 0x10); write(0x0c06, 0x10)
        write(0x0c08, 0x10); write(0x0c0a, 0x10); write(0x0c0c, 0x20)
        write(0x6c06, 0); write(0x6c08, 0); write(0x6c0a, hv_host_tss())
        write(0x6c0c, hv_gdt_base()); write(0x6c0e, 0)
        write(0x4c00, 0); write(0x6c10, 0); write(0x6c12, 0)

        // Guest state: 32-bit protected mode, paging off, flat segments.
        write(Field.guestCR0, 0x31)                                   // PE, ET, NE
        write(Field.guestCR3, 0)
        write(Field.guestCR4, hv_rdmsr(0x488) & hv_rdmsr(0x489))      // the bits VMX fixes to 1 (VMXE)
        write(Field.guestDR7, 0x400)
        write(Field.guestRFLAGS, 0x2)
        write(Field.guestRIP, Layout.guestCodeGPA)
        write(Field.guestRSP, 0)
        let selectors: [UInt64] = [0x10, 0x08, 0x10, 0x10, 0x10, 0x10]   // ES CS SS DS FS GS
        for segment in 0..<6 {
            let offset = UInt64(2 * segment)
            write(0x0800 + offset, selectors[segment])
            write(0x6806 + offset, 0)
            write(0x4800 + offset, 0xffff_ffff)
            write(0x4814 + offset, segment == 1 ? 0xc09b : 0xc093)
        }
        write(0x080c, 0); write(0x6812, 0); write(0x480c, 0); write(0x4820, 0x10000)    // LDTR unusable
        write(0x080e, 0); write(0x6814, 0); write(0x480e, 0x67); write(0x4822, 0x8b)    // TR: busy TSS
        write(0x6816, 0); write(0x4810, 0); write(0x6818, 0); write(0x4812, 0)          // GDTR, IDTR
        write(0x4824, 0); write(0x4826, 0); write(0x4828, 0)                            // interruptibility, activity, SMBASE
        write(0x6822, 0); write(0x482a, 0); write(0x6824, 0); write(0x6826, 0)          // pending debug, SYSENTER
        write(Field.guestDebugControl, 0)
        if bad != 0 { failure = "vmwrite failed"; return false }
        return loadRoot()
    }

    /// Loads SLAT's EPTP into the VMCS (and the TLB's context).
    func loadRoot() -> Bool {
        do throws(SLATError) {
            let pointer = try machine.mmu.reloadRoot(context)
            machine.tlb.load(pointer: pointer)
            loadedPointer = pointer.rawValue
            if hv_vmwrite(Field.eptPointer, pointer.rawValue) != 0 { failure = "EPTP vmwrite failed"; return false }
            return true
        } catch {
            failure = "reloadRoot failed"
            return false
        }
    }

    /// Runs the guest until it asks for its next command (VMCALL) or halts,
    /// handling every other exit. The command is in `op` and the registers;
    /// returns false (and sets `failure`) on an exit it cannot handle.
    func command(_ op: GuestOp, base: UInt64, count: UInt64 = 1, stride: UInt64 = 4096, seed: UInt64 = 0,
                 mailbox: UInt64 = 0) -> Bool {
        guard failure == nil else { return false }
        registers.pointee.rax = op.rawValue
        registers.pointee.rbx = base
        registers.pointee.rcx = count
        registers.pointee.rdx = stride
        registers.pointee.rsi = seed
        registers.pointee.rdi = mailbox
        if launched {
            // Past the VMCALL that asked for this command.
            hv_vmwrite(Field.guestRIP, hv_vmread(Field.guestRIP) &+ hv_vmread(Field.exitInstructionLength))
        }
        return runUntilCall()
    }

    /// Enters the guest and handles exits until VMCALL (or HLT).
    func runUntilCall() -> Bool {
        while true {
            do throws(SLATError) {
                if try machine.mmu.isRootReloadRequested(context) { guard loadRoot() else { return false } }
            } catch {
                failure = "root check failed"
                return false
            }
            let entryFailed = machine.cpus.enterGuest(self) { vmx_run(registers, launched ? 1 : 0) }
            if entryFailed != 0 {
                put("vcpu "); putDecimal(index); put(" entry failed"); hexField("error", hv_vmread(Field.instructionError)); put("\n")
                failure = "VM entry failed"
                return false
            }
            let fullReason = hv_vmread(Field.exitReason)
            if fullReason & (1 << 31) != 0 {
                put("vcpu "); putDecimal(index); put(" entry failure exit"); hexField("reason", fullReason)
                hexField("qual", hv_vmread(Field.exitQualification)); put("\n")
                failure = "VM entry failure"
                return false
            }
            launched = true
            exits += 1
            switch fullReason & 0xffff {
            case ExitReason.vmcall, ExitReason.hlt:
                return true
            case ExitReason.preemptionTimer:
                timerExits += 1
            case ExitReason.eptViolation:
                guard handleViolation() else { return false }
            case ExitReason.eptMisconfiguration:
                // Reported, never re-entered: the same entry would misconfigure again.
                misconfigurations += 1
                put("vcpu "); putDecimal(index); put(" EPT misconfiguration")
                hexField("gpa", hv_vmread(Field.guestPhysicalAddress)); put("\n")
                failure = "EPT misconfiguration"
                return false
            default:
                put("vcpu "); putDecimal(index); put(" unexpected exit"); hexField("reason", fullReason)
                hexField("qual", hv_vmread(Field.exitQualification)); hexField("rip", hv_vmread(Field.guestRIP))
                hexField("intinfo", hv_vmread(Field.exitInterruptionInfo)); put("\n")
                failure = "unexpected exit"
                return false
            }
        }
    }

    /// Exit 48: the qualification decoded by SLATx86, then the fast page
    /// fault for a violation on a present entry and the full fault path
    /// otherwise; a guest-physical address outside every memslot is MMIO.
    func handleViolation() -> Bool {
        violations += 1
        let violation = ExtendedPageTableViolation(
            exitQualification: hv_vmread(Field.exitQualification),
            guestPhysicalAddress: GuestPhysicalAddress(hv_vmread(Field.guestPhysicalAddress)))
        let fault = violation.fault()
        do throws(SLATError) {
            if fault.isPermissionFault {
                switch try machine.mmu.fastPageFault(fault, vcpu: context) {
                case .fixed:
                    fastFaults += 1
                    return true
                case .spurious:
                    spurious += 1
                    return true
                case .notFixable:
                    break
                }
            }
            switch try machine.mmu.slowPageFault(fault, vcpu: context) {
            case .fixed: slowFaults += 1
            case .spurious: spurious += 1
            case .retry: retries += 1
            }
            return true
        } catch {
            if case .noMemslot = error { return emulateMMIO(violation) }
            put("vcpu "); putDecimal(index); put(" fault failed: "); put(describe(error))
            hexField("gpa", violation.guestPhysicalAddress.rawValue); hexField("qual", violation.exitQualification); put("\n")
            failure = "fault failed"
            return false
        }
    }

    /// The MMIO device: one register at ``Layout/mmioGPA``; a store keeps the
    /// value, a load returns it XOR 0xa5a5a5a5. Only the guest's two fixed
    /// instructions are decoded (`89 33` store esi to [ebx], `8b 03` load
    /// [ebx] into eax); RIP moves past them.
    func emulateMMIO(_ violation: ExtendedPageTableViolation) -> Bool {
        mmioExits += 1
        let rip = hv_vmread(Field.guestRIP)
        guard violation.guestPhysicalAddress.rawValue & ~0xfff == Layout.mmioGPA,
              rip >= Layout.guestCodeGPA, rip < Layout.guestCodeGPA + 4094 else {
            failure = "MMIO outside the device"
            return false
        }
        let code = UnsafePointer<UInt8>(bitPattern: UInt(Layout.guestCodeHost + rip - Layout.guestCodeGPA))!
        switch (code[0], code[1]) {
        case (0x89, 0x33) where violation.isWrite:
            machine.mmioRegister = UInt32(truncatingIfNeeded: registers.pointee.rsi)
        case (0x8b, 0x03) where !violation.isWrite:
            registers.pointee.rax = UInt64(machine.mmioRegister ^ 0xa5a5_a5a5)
        default:
            failure = "MMIO instruction not emulated"
            return false
        }
        hv_vmwrite(Field.guestRIP, rip &+ 2)
        return true
    }
}
