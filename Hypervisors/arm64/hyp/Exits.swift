import SLATArm64
import SLATCore
import Synchronization

/// The saved guest registers of one vCPU (``HypVCPUFrame``): x0–x30, then
/// ELR_EL2, SPSR_EL2, SP_EL1.
struct GuestRegisters {
    let words: UnsafeMutablePointer<UInt64>
    init(_ frame: UnsafeMutablePointer<HypVCPUFrame>) {
        words = UnsafeMutableRawPointer(frame).assumingMemoryBound(to: UInt64.self)
    }
    subscript(_ register: Int) -> UInt64 {
        get { register == 31 ? 0 : words[register] }
        nonmutating set { if register != 31 { words[register] = newValue } }
    }
    var elr: UInt64 {
        get { words[31] }
        nonmutating set { words[31] = newValue }
    }
    var spsr: UInt64 {
        get { words[32] }
        nonmutating set { words[32] = newValue }
    }
}

/// Counters of what the exits did, all CPUs (relaxed atomics).
final class ExitStatistics: Sendable {
    let mapped = Atomic<Int>(0)
    let relaxed = Atomic<Int>(0)
    let madeYoung = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let merges = Atomic<Int>(0)
    let mmioReads = Atomic<Int>(0)
    let mmioWrites = Atomic<Int>(0)
    let pagesLogged = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    var faultsHandled: Int {
        mapped.load(ordering: .relaxed) + relaxed.load(ordering: .relaxed) + madeYoung.load(ordering: .relaxed)
    }
}

/// Which guest pages took which fault since the last reset: one bitmap per
/// CPU and kind over the guest's RAM (IPA 0x4000_0000, 13 MiB).
/// Kinds: 0 a write permission fault fixed, 1 mapped by a translation
/// fault, 2 an access-flag fault fixed.
// @unchecked Sendable: each CPU writes only its own bitmaps (indexed by
// its MPIDR affinity); they are read or cleared by the guest's driving
// vCPU after the guest's barriers have ordered both vCPUs (acquire/release).
final class FaultMap: @unchecked Sendable {
    static let base: UInt64 = 0x4000_0000
    static let pages = 13 * 256
    static let words = pages / 64
    static let kinds = 3
    /// [cpu][kind][word].
    let bits: UnsafeMutablePointer<UInt64>

    init() {
        bits = UnsafeMutablePointer<UInt64>.allocate(capacity: Platform.cpus * Self.kinds * Self.words)
        reset()
    }

    func reset() { bits.initialize(repeating: 0, count: Platform.cpus * Self.kinds * Self.words) }

    func mark(kind: Int, from ipa: UInt64, size: UInt64) {
        var page = ipa
        let words = bits + (Platform.currentCPU * Self.kinds + kind) * Self.words
        while page < ipa + size {
            if page >= Self.base {
                let index = Int((page - Self.base) >> 12)
                if index < Self.pages { words[index / 64] |= 1 << UInt64(index % 64) }
            }
            page += 0x1000
        }
    }

    func isMarked(kind: Int, _ ipa: UInt64) -> Bool {
        let index = Int((ipa - Self.base) >> 12)
        for cpu in 0..<Platform.cpus where bits[(cpu * Self.kinds + kind) * Self.words + index / 64] >> UInt64(index % 64) & 1 != 0 {
            return true
        }
        return false
    }
}

/// The emulated device at ``GuestLayout/mmioBase``: 0x0 reads the ID
/// "SLAT", 0x8 reads back what was last written there, 0x10 counts reads.
final class EmulatedDevice: Sendable {
    let scratch = Atomic<UInt64>(0)
    let reads = Atomic<UInt64>(0)

    func read(offset: UInt64) -> UInt64 {
        let count = reads.wrappingAdd(1, ordering: .relaxed).newValue
        switch offset {
        case 0x0: return 0x534C_4154
        case 0x8: return scratch.load(ordering: .acquiring)
        case 0x10: return count
        default: return 0
        }
    }

    func write(offset: UInt64, value: UInt64) {
        if offset == 0x8 { scratch.store(value, ordering: .releasing) }
    }
}

extension Hypervisor {
    /// Handles a stage-2 abort of the vCPU on this CPU: decode, then SLAT's
    /// fault handler; a fault it refuses with `noMemslot` in the device's
    /// page is MMIO, emulated from the syndrome's register access.
    func handleAbort(_ registers: GuestRegisters, context: PageTableContext) {
        let syndrome = StageTwoAbortSyndrome(esr: hyp_read_esr_el2(), hpfar: hyp_read_hpfar_el2(), far: hyp_read_far_el2())
        let abort: StageTwoAbort
        do throws(StageTwoAbortError) {
            // Stage 1 is off in the guest: the IPA is FAR_EL2.
            abort = try syndrome.decode(resolvedIPA: GuestPhysicalAddress(syndrome.far))
        } catch {
            fatal("undecodable stage-2 abort esr=\(hex(syndrome.esr)) far=\(hex(syndrome.far)) elr=\(hex(registers.elr))")
        }
        let address = abort.fault.address.rawValue
        let before = vm.pageTable.tlb.vmidOnThisCPU
        let outcome: StageTwoFaultOutcome
        do throws(SLATError) {
            outcome = try vm.handler.handle(abort.fault, context: context)
        } catch {
            switch error {
            case .noMemslot:
                if address >= GuestLayout.mmioBase && address < GuestLayout.mmioBase + GuestLayout.mmioSize {
                    emulateMMIO(abort, registers: registers)
                } else if address >= GuestLayout.compactionIPA && address < GuestLayout.compactionIPA + 0x20_0000 {
                    // Mapped by the hypervisor itself: the fault met the
                    // break-before-make window of its change (the anchor
                    // or a locked entry); re-run the access.
                    statistics.retries.wrappingAdd(1, ordering: .relaxed)
                } else {
                    fatal("guest access outside memory at \(hex(address)) elr=\(hex(registers.elr))")
                }
            case .hostPageReadOnly, .hostAddressNotMapped:
                // A host change (migration) is in flight: re-run the access.
                statistics.retries.wrappingAdd(1, ordering: .relaxed)
            default:
                fatal("fault handler failed at \(hex(address))")
            }
            return
        }
        switch outcome {
        case .mapped(let level):
            statistics.mapped.wrappingAdd(1, ordering: .relaxed)
            if level > 0 && vm.pageTable.tlb.vmidOnThisCPU > before { statistics.merges.wrappingAdd(1, ordering: .relaxed) }
            if abort.kind == .translation {
                let size = vm.pageTable.format.entrySize(atLevel: level)
                faults.mark(kind: 1, from: address & ~(size - 1), size: size)
            }
            if abort.kind == .permission && abort.fault.access == .write { faults.mark(kind: 0, from: address & ~0xFFF, size: 0x1000) }
        case .permissionsRelaxed:
            statistics.relaxed.wrappingAdd(1, ordering: .relaxed)
            if abort.fault.access == .write { faults.mark(kind: 0, from: address & ~0xFFF, size: 0x1000) }
        case .madeYoung:
            statistics.madeYoung.wrappingAdd(1, ordering: .relaxed)
            if abort.kind == .accessFlag { faults.mark(kind: 2, from: address & ~0xFFF, size: 0x1000) }
        case .retry, .spurious:
            statistics.retries.wrappingAdd(1, ordering: .relaxed)
        }
    }

    func emulateMMIO(_ abort: StageTwoAbort, registers: GuestRegisters) {
        guard let access = abort.dataAccess else {
            fatal("MMIO access without a valid syndrome at \(hex(abort.fault.address.rawValue))")
        }
        let offset = abort.fault.address.rawValue - GuestLayout.mmioBase
        if access.isWrite {
            statistics.mmioWrites.wrappingAdd(1, ordering: .relaxed)
            device.write(offset: offset, value: registers[access.register])
        } else {
            statistics.mmioReads.wrappingAdd(1, ordering: .relaxed)
            registers[access.register] = access.loadedValue(device.read(offset: offset))
        }
        registers.elr &+= UInt64(abort.instructionLength)
    }
}

/// Prints a hypervisor failure and powers off: CI sees no summary line.
func fatal(_ message: String) -> Never {
    Console.write("hyp: FATAL (cpu \(Platform.currentCPU)): " + message)
    Console.write("hyp: summary FAIL")
    Platform.systemOff()
}
