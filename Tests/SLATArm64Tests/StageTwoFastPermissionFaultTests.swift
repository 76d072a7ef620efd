import SLATArm64
import SLATCore
import SLATSim
import Synchronization
import Testing

/// The fast permission fault (Docs/stage2-mmu.md, "The fast permission
/// fault"): a write to a page write-protected only for dirty logging is
/// made writable without the MMU lock; every other write-protected page
/// goes through the locked path.
@Suite("Stage-2 fast permission fault")
struct StageTwoFastPermissionFaultTests {
    typealias VM = StageTwoTestVM<SimulatedContextTLB>

    /// A VM whose pages are 4 KiB leaves (4 KiB host pages), pages 0..<8
    /// written, and a second fault handler on a lock that records whether
    /// a fault took it.
    final class Fixture {
        let vm: VM
        let lock = HolderCountingLock()
        let handler: StageTwoFaultHandler<VM.Memory, SimulatedContextTLB, CountingCacheMaintenance, HolderCountingLock>
        let tookLock = LockTakenFlag()

        init() throws {
            vm = try StageTwoTestVM(granule: .size4KiB, guestBase: 0x1_0000_0000, size: 2 << 20,
                                    hostBase: 0x20_0000_0000, hostMappingSize: .size4K, tablePages: 64)
            handler = StageTwoFaultHandler(pageTable: vm.mmu, guestMemory: vm.guestMemory, lock: lock)
            for page: UInt64 in 0..<8 { try vm.access(address(page), .write) }
        }

        func address(_ page: UInt64) -> GuestPhysicalAddress { vm.guestRange.start.advanced(by: page << 12) }

        func enableLogging() throws {
            try vm.mmu.enableDirtyLogging(memslot: 1, guestMemory: vm.guestMemory, lock: vm.lock, context: vm.contexts[0])
        }

        /// One write fault through the watched handler; whether it took the lock.
        func writeFault(_ page: UInt64) throws -> (outcome: StageTwoFaultOutcome, locked: Bool) {
            tookLock.value.store(false, ordering: .relaxed)
            let flag = tookLock
            lock.runBeforeNextSharedHold { flag.value.store(true, ordering: .relaxed) }
            let outcome = try handler.handle(StageTwoFault(address: address(page), access: .write, kind: .permission),
                                             context: vm.contexts[0])
            lock.runBeforeNextSharedHold {}
            return (outcome, tookLock.value.load(ordering: .relaxed))
        }

        func leaf(_ page: UInt64) -> Translation? { vm.mmu.table.translate(address(page)).translation }

        func marked(_ page: UInt64) -> Bool {
            vm.mmu.dirtyLogs.bitmap(forMemslot: 1)?.isMarked(GuestFrameNumber(vm.guestRange.start.frame.rawValue + page)) == true
        }
    }

    @Test("Dirty-log protection marks each leaf it takes write access from as MMU-writable")
    func protectionSetsTheBit() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        let leaf = try #require(fixture.leaf(3))
        #expect(leaf.attributes.permissions == .read)
        #expect(leaf.attributes.softwareBits == StageTwoDescriptorBits.mmuWritableSoftwareBit)
    }

    @Test("A write to a page protected for dirty logging is fixed without the MMU lock, marked and invalidated")
    func fastPathTaken() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        let invalidationsBefore = fixture.vm.simulatedTLB.counts.addresses
        let result = try fixture.writeFault(3)
        #expect(result.outcome == .permissionsRelaxed)
        #expect(!result.locked)
        #expect(fixture.leaf(3)?.attributes.permissions == .readWrite)
        #expect(fixture.marked(3) && !fixture.marked(4))
        #expect(fixture.vm.simulatedTLB.counts.addresses == invalidationsBefore + 1)
        #expect(fixture.vm.reportsAfterCoherenceCheck() == [])
    }

    @Test("A write fault on a page another fault already made writable is spurious and still invalidates, without the lock")
    func fastPathSpurious() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        _ = try fixture.writeFault(3)
        let invalidationsBefore = fixture.vm.simulatedTLB.counts.addresses
        let result = try fixture.writeFault(3)
        #expect(result.outcome == .spurious && !result.locked)
        #expect(fixture.vm.simulatedTLB.counts.addresses == invalidationsBefore + 1)
    }

    @Test("A write to a page whose write the VMM removed takes the locked path: the removal cleared the bit")
    func refusedAfterVMMRemovedWrite() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        var batch = TLBFlushBatch()
        try fixture.vm.mmu.table.changePermissions(
            GuestPhysicalRange(start: fixture.address(3), size: 0x1000), revoke: .write,
            context: fixture.vm.contexts[0], batch: &batch, tlb: fixture.vm.mmu.tlb)
        fixture.vm.mmu.settle(batch, mode: .exclusive)
        #expect(fixture.leaf(3)?.attributes.softwareBits == 0)
        let result = try fixture.writeFault(3)
        #expect(result.locked)
    }

    @Test("A write to a page of a memslot made read-only is refused: the zap left nothing to restore")
    func refusedForReadOnlyMemslot() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        try fixture.vm.guestMemory.updateMemslotFlags(id: 1, inserting: .readOnly)
        try fixture.vm.access(fixture.address(3), .read)
        #expect(fixture.leaf(3)?.attributes.softwareBits == 0)
        #expect(throws: SLATError.self) { _ = try fixture.writeFault(3) }
        #expect(fixture.leaf(3)?.attributes.permissions == .read)
    }

    @Test("A write to a protected page after logging stopped takes the locked path")
    func refusedWhenLoggingOff() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        try fixture.vm.mmu.disableDirtyLogging(memslot: 1, guestMemory: fixture.vm.guestMemory)
        #expect(fixture.leaf(3)?.attributes.softwareBits == StageTwoDescriptorBits.mmuWritableSoftwareBit)
        let result = try fixture.writeFault(3)
        #expect(result.locked)
        #expect(fixture.leaf(3)?.attributes.permissions == .readWrite)
    }

    @Test("A read while the memslot logs maps the page read-only and MMU-writable; its first write takes the fast path")
    func readThenWriteTakesFastPath() throws {
        let fixture = try Fixture()
        try fixture.enableLogging()
        try fixture.vm.access(fixture.address(20), .read)
        #expect(fixture.leaf(20)?.attributes.softwareBits == StageTwoDescriptorBits.mmuWritableSoftwareBit)
        let result = try fixture.writeFault(20)
        #expect(result.outcome == .permissionsRelaxed && !result.locked)
        #expect(fixture.marked(20))
    }

    @Test("The tables refuse attributes that use the MMU's software bit")
    func reservedSoftwareBitRefused() throws {
        let fixture = try Fixture()
        let attributes = LeafAttributes(permissions: .readWrite, softwareBits: 0b1001)
        #expect(throws: SLATError.softwareBitReservedByMMU(0b1001, reserved: 0b1000)) {
            try fixture.vm.mmu.map(GuestPhysicalRange(start: fixture.address(40), size: 0x1000),
                                   to: HostPhysicalAddress(0x30_0000_0000), attributes: attributes,
                                   context: fixture.vm.contexts[0])
        }
        #expect(fixture.leaf(40) == nil)
        // Software bits 0...2 stay the caller's.
        try fixture.vm.mmu.map(GuestPhysicalRange(start: fixture.address(40), size: 0x1000),
                               to: HostPhysicalAddress(0x30_0000_0000),
                               attributes: LeafAttributes(permissions: .readWrite, softwareBits: 0b0111),
                               context: fixture.vm.contexts[0])
        #expect(fixture.leaf(40)?.attributes.softwareBits == 0b0111)
    }
}

/// A flag a `@Sendable` hook sets.
final class LockTakenFlag: Sendable {
    let value = Atomic<Bool>(false)
}
