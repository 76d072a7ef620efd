import SLATArm64
import SLATCore
import SLATSim

/// A small VM for the stage-2 MMU tests on SLATSim: a table arena watched
/// by the freed-table detector, the simulated per-vCPU TLBs (conflict and
/// stale detectors) with the hardware walker attached, counting cache
/// hooks, guest memory with one memslot backed by host memory, the MMU
/// lock, the fault handler and the notifier binding.
///
/// The MMU gets `T`, made from the simulated TLBs (themselves, or a wrapper
/// that breaks them on purpose).
final class StageTwoTestVM<T: TLB> {
    typealias Memory = SimulatedTableMemory<TableArena>
    typealias MMU = StageTwoPageTable<Memory, T, CountingCacheMaintenance>

    let format: StageTwoFormat
    let arena: TableArena
    let memory: Memory
    let log = SimulationLog()
    let simulatedTLB: SimulatedContextTLB
    let caches: CountingCacheMaintenance
    let mmu: MMU
    let walker: HardwareWalker<StageTwoFormat, Memory>
    let guestMemory: GuestMemory
    let lock = PThreadReaderWriterLock()
    let handler: StageTwoFaultHandler<Memory, T, CountingCacheMaintenance, PThreadReaderWriterLock>
    let binding: StageTwoNotifierBinding<Memory, T, CountingCacheMaintenance, PThreadReaderWriterLock>
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
        tablePages: Int = 4096, makeTLB: (SimulatedContextTLB) -> T
    ) throws {
        format = try StageTwoFormat(granule: granule, inputAddressBits: inputAddressBits)
        arena = try TableArena(pageSize: granule.byteCount, pageCount: tablePages, prefault: false)
        simulatedTLB = SimulatedContextTLB(format: format, vcpuCount: vcpus, context: 5, log: log)
        memory = SimulatedTableMemory(wrapping: arena, watching: [simulatedTLB])
        caches = CountingCacheMaintenance()
        mmu = try StageTwoPageTable(format: format, memory: memory, tlb: makeTLB(simulatedTLB), caches: caches,
                                    vmid: 5, readerSlots: vcpus + 1)
        walker = HardwareWalker(table: mmu.table)
        simulatedTLB.attach(walker)
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

    /// The fault a simulated access violation raises.
    static func fault(for violation: Violation) -> StageTwoFault {
        let access: StageTwoAccess = switch violation.access {
        case .read: .read
        case .write: .write
        case .executePrivileged, .executeUser: .execute
        }
        let kind: StageTwoAbortKind? = switch violation.kind {
        case .notPresent: .translation
        case .permission: .permission
        case .accessFlag: .accessFlag
        default: nil
        }
        return StageTwoFault(address: violation.address, access: access, kind: kind)
    }

    /// Runs one guest access of `vcpu` to completion through the hardware
    /// walker and its TLB, calling the fault handler on each violation.
    /// Returns the fault outcomes. Throws if the handler throws or the
    /// access never completes.
    @discardableResult
    func access(_ address: GuestPhysicalAddress, _ kind: StageTwoAccess, vcpu: Int = 0) throws -> [StageTwoFaultOutcome] {
        let accessKind: AccessKind = switch kind {
        case .read: .read
        case .write: .write
        case .execute: .executePrivileged
        }
        var outcomes: [StageTwoFaultOutcome] = []
        for _ in 0..<1000 {
            switch walker.access(address, accessKind, through: simulatedTLB.vcpu(vcpu)) {
            case .translated:
                return outcomes
            case .violation(let violation):
                outcomes.append(try handler.handle(Self.fault(for: violation), context: contexts[vcpu]))
            }
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

    /// Declares a quiescent point and returns every report so far.
    func reportsAfterCoherenceCheck() -> [SimulationReport] {
        simulatedTLB.verifyCoherence()
        return log.reports
    }
}

struct AccessNeverCompleted: Error {
    var address: GuestPhysicalAddress
    var outcomes: [StageTwoFaultOutcome]
}

extension StageTwoTestVM where T == SimulatedContextTLB {
    /// A VM whose MMU uses the simulated TLBs directly.
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
