import SLATArm64
import SLATCore
import SLATSim
import Testing

@Suite("Stage-2 permission faults that find nothing to change")
struct StageTwoSpuriousPermissionFaultTests {
    @Test("A write fault on a page made writable without an invalidation flushes the faulting IPA: the access completes after one fault")
    func permissionFaultWithNothingToChangeInvalidates() throws {
        // The simulated Arm CPU keeps a cached entry that fails a
        // permission check, as the architecture allows.
        let vm = try StageTwoTestVM(granule: .size4KiB, guestBase: 0x1_0000_0000, size: 2 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size4K, tablePages: 64)
        #expect(vm.walker.profile.keepsEntriesFailingPermissionChecks)
        let page = GuestPhysicalRange(start: vm.guestRange.start.advanced(by: 0x5000), size: 0x1000)
        let output = vm.expectedOutput(of: page.start)
        try vm.mmu.map(page, to: output, attributes: LeafAttributes(permissions: .read), context: vm.contexts[0])
        try vm.access(page.start, .read)
        // Write access added in place (only gains: nothing owed).
        try vm.mmu.map(page, to: output, attributes: LeafAttributes(permissions: .readWrite), context: vm.contexts[0])
        #expect(try vm.access(page.start, .write) == [.spurious])
        #expect(vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("A write fault on a page an earlier read fault mapped writable is spurious, not a retry: a fault-until-fixed loop ends")
    func writeAfterWritableReadMappingIsSpurious() throws {
        let vm = try DeviceMemoryVM(slots: [([], 2 << 20)])
        #expect(try vm.fault(3, .read) == .mapped(level: 1))
        let outcome = try vm.fault(3, .write)
        #expect(outcome == .spurious)
        #expect(!outcome.isRetry)
    }
}
