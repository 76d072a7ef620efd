import SLATArm64
import SLATCore

/// A small VM for the stage-2 MMU tests: a table arena, the simulated
/// per-vCPU TLBs, counting cache hooks, guest memory with one memslot backed
/// by host memory, the MMU lock, the fault handler and the notifier binding.
///
/// The MMU gets `T`, made from the simulated TLB (itself, or a wrapper that
/// breaks it on purpose).
final class StageTwoTestVM<T: TLB> {
    typealias MMU = StageTwoPageTable<TableArena, T, CountingCacheMaintenance>

    let format: StageTwoFormat
    let arena: TableArena
    let simulatedTLB: SimulatedStageTwoTLB
    let caches: CountingCacheMaintenance
    let mmu: MMU
    let guestMemory: GuestMemory
    let lock = PThreadReaderWriterLock()
    let handler: StageTwoFaultHandler<TableArena, T, CountingCacheMaintenance, PThreadReaderWriterLock>
    let binding: StageTwoNotifierBinding<TableArena, T, CountingCacheMaintenance, PThreadReaderWriterLock>
    let contexts: [PageTableContext]
    /// The memslot's guest range and host-physical start.
    let guestRange: GuestPhysicalRange
    let hostBase: HostPhysicalAddress
    static var hostVirtualBase: UInt64 { 0x7F00_0000_0000 }

    /// A VM with `vcpus` vCPUs and one memslot of `size` bytes at `guestBase`,
    /// backed by host memory at `hostBase` mapped with `hostMappingSize`.
    init(
        granule: TranslationGranule, inputAddressBits: Int = 40, vcpus: Int = 1,
        guestBase: UInt64, size: UInt64, hostBase: UInt64, hostMappingSize: HostMappingSize,
        tablePages: Int = 4096, makeTLB: (SimulatedStageTwoTLB) -> T
    ) throws {
        format = try StageTwoFormat(granule: granule, inputAddressBits: inputAddressBits)
        arena = try TableArena(pageSize: granule.byteCount, pageCount: tablePages, prefault: false)
        simulatedTLB = SimulatedStageTwoTLB(format: format, vcpus: vcpus)
        caches = CountingCacheMaintenance()
        mmu = try StageTwoPageTable(format: format, memory: arena, tlb: makeTLB(simulatedTLB), caches: caches,
                                    vmid: 5, readerSlots: vcpus + 1)
        guestMemory = GuestMemory()
        let hva = HostVirtualAddress(Self.hostVirtualBase)
        try guestMemory.hostPages.map(hva, to: HostPhysicalAddress(hostBase).frame, size: hostMappingSize,
                                      count: size >> hostMappingSize.shift)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(guestBase).frame,
                                           pageCount: size >> frameShift, hostAddress: hva))
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
        binding = StageTwoNotifierBinding(pageTable: mmu, guestMemory: guestMemory, lock: lock, readerSlot: vcpus)
        contexts = (0..<vcpus).map { PageTableContext(readerSlot: $0) }
        guestRange = GuestPhysicalRange(start: GuestPhysicalAddress(guestBase), size: size)
        self.hostBase = HostPhysicalAddress(hostBase)
    }

    /// The host-physical address the guest address is backed by.
    func expectedOutput(of address: GuestPhysicalAddress) -> HostPhysicalAddress {
        hostBase.advanced(by: address.rawValue - guestRange.start.rawValue)
    }

    /// Runs one guest access of `vcpu` to completion: through its TLB, and
    /// on a fault through the fault handler, until it completes. Returns the
    /// faults taken. Throws if the handler throws or the access never completes.
    @discardableResult
    func access(_ address: GuestPhysicalAddress, _ kind: StageTwoAccess, vcpu: Int = 0) throws -> [StageTwoFaultOutcome] {
        let needs: Permissions = switch kind {
        case .read: .read
        case .write: .readWrite
        case .execute: [.read, .executePrivileged, .executeUser]
        }
        var outcomes: [StageTwoFaultOutcome] = []
        for _ in 0..<10_000 {
            let result = simulatedTLB.access(vcpu: vcpu, address: address, needs: needs, table: mmu.table,
                                             context: contexts[vcpu])
            if case .completed = result { return outcomes }
            outcomes.append(try handler.handle(StageTwoFault(address: address, access: kind), context: contexts[vcpu]))
        }
        throw AccessNeverCompleted(address: address, outcomes: Array(outcomes.suffix(8)))
    }

    /// Write-protects the whole memslot under the lock held exclusively and
    /// flushes (enabling dirty logging, or clearing the dirty log).
    func writeProtectMemslot() throws {
        try lock.withExclusive { () throws(SLATError) in
            var batch = TLBFlushBatch()
            do throws(SLATError) {
                try mmu.writeProtect(guestRange, mode: .exclusive, context: contexts[0], batch: &batch)
            } catch {
                mmu.settle(batch, mode: .exclusive)
                throw error
            }
            mmu.settle(batch, mode: .exclusive)
        }
    }

    /// Turns dirty logging on (write-protecting the memslot) or off.
    func setDirtyLogging(_ on: Bool) throws {
        try guestMemory.updateMemslotFlags(id: 1, to: on ? .dirtyLogging : [])
        if on { try writeProtectMemslot() }
    }

    /// Leaves overlapping the memslot.
    var leaves: [LeafMapping] { mmu.table.leaves(in: guestRange) }
}

struct AccessNeverCompleted: Error {
    var address: GuestPhysicalAddress
    var outcomes: [StageTwoFaultOutcome]
}

extension StageTwoTestVM where T == SimulatedStageTwoTLB {
    /// A VM whose MMU uses the simulated TLB directly.
    convenience init(
        granule: TranslationGranule, inputAddressBits: Int = 40, vcpus: Int = 1,
        guestBase: UInt64, size: UInt64, hostBase: UInt64, hostMappingSize: HostMappingSize,
        tablePages: Int = 4096
    ) throws {
        try self.init(granule: granule, inputAddressBits: inputAddressBits, vcpus: vcpus, guestBase: guestBase,
                      size: size, hostBase: hostBase, hostMappingSize: hostMappingSize, tablePages: tablePages,
                      makeTLB: { $0 })
    }
}
