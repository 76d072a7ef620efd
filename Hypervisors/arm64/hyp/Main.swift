import SLATArm64
import SLATCore
import Synchronization

/// Set once by CPU 0 before ``hypervisorReady`` is released; read by CPU 1
/// only after acquiring it.
nonisolated(unsafe) var sharedHypervisor: Hypervisor?
let hypervisorReady = Atomic<Bool>(false)
let selfTestStart = Atomic<Bool>(false)

/// Both CPUs enter here from `start.s` at EL2 with the MMU on.
@_cdecl("hyp_main")
func hypMain(_ cpu: Int) -> Never {
    let selfTest = UnsafePointer<UInt32>(bitPattern: UInt(Platform.modeWord))!.pointee == Platform.selfTestMagic
    if cpu != 0 {
        if selfTest {
            while !selfTestStart.load(ordering: .acquiring) { hyp_wait_for_event() }
            SelfTest.shared!.run(cpu: cpu)
        }
        while !hypervisorReady.load(ordering: .acquiring) { hyp_wait_for_event() }
        sharedHypervisor!.runSecondary(cpu: cpu)
    }
    #if HYP_BITE_NO_INVALIDATION
    let build = "bite: every TLB invalidation is a no-op"
    #elseif HYP_BITE_NO_VMID_FLUSH
    let build = "bite: VMID-wide flush (merge) dropped"
    #else
    let build = "normal"
    #endif
    Console.write("hyp: SLAT stage-2 hypervisor, EL2, \(Platform.cpus) CPUs, build \(build), mode \(selfTest ? "self-test" : "scenarios")")
    if selfTest {
        SelfTest.start()
    }
    let vm: VM
    do throws(SLATError) {
        vm = try VM(arenaBase: Platform.tableArenaBase, pages: Platform.tableArenaPages, vmid: 1, withMemslots: true)
    } catch { fatal("stage 2 could not be built") }
    // The guest image goes to the start of slot 0's host frames.
    let imageSize = Int(hyp_guest_image_size())
    UnsafeMutableRawPointer(bitPattern: UInt(GuestLayout.slots[0].host))!
        .copyMemory(from: UnsafeRawPointer(bitPattern: UInt(hyp_guest_image_address()))!, byteCount: imageSize)
    let hypervisor = Hypervisor(vm: vm)
    sharedHypervisor = hypervisor
    hypervisorReady.store(true, ordering: .releasing)
    let started = Platform.startCPU(1)
    if started != 0 { fatal("PSCI CPU_ON of CPU 1 returned \(started)") }
    Console.write("hyp: guest image \(imageSize) bytes at IPA \(hex(GuestLayout.entry)), VTTBR_EL2 \(hex(vm.pageTable.translationTableBase.rawValue)), VTCR_EL2 \(hex(vm.pageTable.translationControl.rawValue))")
    hypervisor.run(cpu: 0, entry: GuestLayout.entry, context: 0)
}

/// An exception taken at EL2 itself (a hypervisor bug) or from AArch32.
@_cdecl("hyp_exception")
func hypException(_ kind: UInt64) -> Never {
    fatal("exception at EL2: kind \(kind) esr=\(hex(hyp_read_esr_el2())) elr=\(hex(hyp_read_elr_el2())) far=\(hex(hyp_read_far_el2()))")
}
