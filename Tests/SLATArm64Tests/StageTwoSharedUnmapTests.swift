import Foundation
import SLATArm64
import SLATCore
import SLATSim
import Synchronization
import Testing

/// The parts of a stage-2 test VM a second vCPU thread uses.
// @unchecked Sendable: the handler, lock and guest memory are Sendable; the
// fault thread uses only vCPU 1's context, and the test reads the VM's
// simulated state again only after joining it.
final class SharedHookedVM: @unchecked Sendable {
    let vm: StageTwoTestVM<FirstInvalidationHookTLB>
    init(_ vm: StageTwoTestVM<FirstInvalidationHookTLB>) { self.vm = vm }
}

@Suite("Stage-2 unmap under the shared MMU lock")
struct StageTwoSharedUnmapTests {
    static let guestBase: UInt64 = 0x1_0000_0000

    @Test("A table entry emptied by a shared unmap cannot take a block before its old pages are invalidated (no TLB conflict)")
    func emptiedTableEntryIsNotReusedBeforeItsInvalidation() throws {
        // vCPU 0 caches a 4 KiB page of a 2 MiB range mapped by pages; a
        // shared unmap of the range empties the table entry; just before
        // the unmap's first invalidation, vCPU 1 faults in the 2 MiB block
        // and vCPU 0 reads another page. If the entry could be reused
        // before the invalidation, vCPU 0 would hold the old 4 KiB entry
        // beside the new block: a TLB conflict.
        let vm = try StageTwoTestVM(granule: .size4KiB, vcpus: 2, guestBase: Self.guestBase, size: 2 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size2M, tablePages: 64) {
            FirstInvalidationHookTLB($0)
        }
        _ = try vm.lock.withExclusive { () throws(SLATError) in
            try vm.mmu.map(vm.guestRange, to: vm.hostBase, attributes: LeafAttributes(permissions: .readWrite),
                           maximumLevel: 0, context: vm.contexts[0])
        }
        try vm.access(vm.guestRange.start, .read, vcpu: 0)
        #expect(vm.simulatedTLB.vcpu(0).entries.map(\.size) == [0x1000])

        let shared = SharedHookedVM(vm)
        let faultDone = DispatchSemaphore(value: 0)
        let faultOutcome = Mutex<Result<StageTwoFaultOutcome, SLATError>?>(nil)
        vm.mmu.tlb.beforeNextInvalidation {
            Thread.detachNewThread {
                let vm = shared.vm
                let result = Result { () throws(SLATError) -> StageTwoFaultOutcome in
                    try vm.handler.handle(StageTwoFault(address: vm.guestRange.start.advanced(by: 0x3000), access: .read),
                                          context: vm.contexts[1])
                }
                faultOutcome.withLock { $0 = result }
                faultDone.signal()
            }
            // Give the fault every chance to get in (it cannot while the
            // entry stays locked), then let vCPU 0 read another page.
            _ = faultDone.wait(timeout: .now() + .milliseconds(300))
            let vm = shared.vm
            _ = vm.walker.access(vm.guestRange.start.advanced(by: 0x1000), .read, through: vm.simulatedTLB.vcpu(0))
        }
        let unmapper = PageTableContext(readerSlot: 2)
        try vm.lock.withShared { () throws(SLATError) in
            try vm.mmu.unmap(vm.guestRange, mode: .shared, context: unmapper)
        }
        if faultOutcome.withLock({ $0 }) == nil { faultDone.wait() }
        #expect(try faultOutcome.withLock { $0 }?.get() == .mapped(level: 1))
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }
}
