import Foundation
import Synchronization
import SLAT
import SLATArm64

/// A stage-2 MMU for one repeat of the stage-2 workloads: a pre-faulted
/// arena sized for a mapping of smallest pages plus the split reserve, a
/// ``StageTwoPageTable`` with a counting TLB and counting cache hooks, and
/// (for the fault workloads) guest memory with one memslot over the range,
/// the MMU lock and the fault handler.
final class StageTwoBenchFixture {
    typealias MMU = StageTwoPageTable<TableArena, CountingTLB, UncountedCacheMaintenance>
    let format: StageTwoFormat
    let geometry: MappingGeometry
    let arena: TableArena
    let tlb: CountingTLB
    let mmu: MMU
    let contexts: [PageTableContext]
    let guestMemory = GuestMemory()
    /// The MMU lock, on the tables' reclaimer slot words as the EPT MMU's
    /// is: a fault takes it shared and enters the read section in one store.
    let lock: PerSlotReaderWriterLock
    typealias Handler = StageTwoFaultHandler<TableArena, CountingTLB, UncountedCacheMaintenance, PerSlotReaderWriterLock>
    let handler: Handler
    let name: String
    static var hostVirtualBase: UInt64 { 0x7F00_0000_0000 }

    /// A fresh MMU for `geometry`; with `hostMapping`, a memslot over the
    /// range backed by host mappings of that size at the output base. With
    /// `rangeInvalidation` its TLB says it has range invalidation.
    init(format: StageTwoFormat, geometry: MappingGeometry, name: String, threads: Int = 1,
         hostMapping: HostMappingSize? = nil, rangeInvalidation: Bool = false) throws(BenchFailure) {
        self.format = format
        self.tlb = CountingTLB(supportsRangeInvalidation: rangeInvalidation)
        self.geometry = geometry
        self.name = name
        let pages = 2 * format.rootTableCount + geometry.tablePagesBelowRoot(for: format) + 8 * format.levelCount * (threads + 1) + 64
        do {
            arena = try TableArena(pageSize: format.tablePageSize, pageCount: pages, prefault: true)
            mmu = try StageTwoPageTable(format: format, memory: arena, tlb: tlb, caches: UncountedCacheMaintenance(),
                                        vmid: 1, readerSlots: threads + 1)
            if let hostMapping {
                // The memslot spans whole host mappings (at least the range),
                // so a fault may map the largest block the host page allows.
                let mappings = max(1, (geometry.size + hostMapping.bytes - 1) >> hostMapping.shift)
                let hva = HostVirtualAddress(Self.hostVirtualBase)
                try guestMemory.hostPages.map(hva, to: HostPhysicalAddress(geometry.outputBase).frame, size: hostMapping,
                                              count: mappings)
                try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestPhysicalAddress(geometry.guestBase).frame,
                                                   pageCount: (mappings << hostMapping.shift) >> frameShift, hostAddress: hva))
            }
        } catch {
            throw .library("\(name): creating the stage-2 MMU (\(pages) table pages)", error)
        }
        contexts = (0...threads).map { PageTableContext(readerSlot: $0) }
        lock = PerSlotReaderWriterLock(readerSlotWords: mmu.table.reclaimer.readerSlotWords)
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
    }

    /// The counters now.
    func snapshot() -> CounterSnapshot { CounterSnapshot(tlb: tlb, arena: arena) }

    /// Bytes of one block (the largest leaf below the root's level 2).
    var blockSize: UInt64 { format.entrySize(atLevel: 1) }
    /// Blocks in the range.
    var blockCount: Int { Int(geometry.size / blockSize) }

    /// Maps the whole range with leaves no larger than `level` (untimed setup).
    func mapWholeRange(maximumLevel level: Int) throws(BenchFailure) {
        do {
            try mmu.map(geometry.range, to: HostPhysicalAddress(geometry.outputBase), attributes: MappingGeometry.attributes,
                        maximumLevel: level, context: contexts[0])
        } catch {
            throw .library("\(name): mapping \(ByteSize.format(geometry.size)) for setup", error)
        }
    }

    /// Checks that every page translates to its output at `level`.
    func verify(level: Int, after operation: String) throws(BenchFailure) {
        var guest = geometry.guestBase
        while guest < geometry.guestEnd {
            let probe = guest &+ geometry.pageSize / 2
            guard let translation = mmu.table.translate(GuestPhysicalAddress(probe)).translation,
                  translation.output.rawValue == geometry.expectedOutput(of: probe), translation.level == level else {
                throw .verification("\(name) \(operation): 0x\(String(probe, radix: 16)) does not translate to 0x\(String(geometry.expectedOutput(of: probe), radix: 16)) at level \(level)")
            }
            guest &+= geometry.pageSize
        }
    }

    /// Runs `body(thread)` on `threads` threads started together; returns
    /// the wall-clock nanoseconds from the start signal to the last finish,
    /// and the first error.
    static func timeThreads(_ threads: Int, _ body: @escaping @Sendable (Int) -> String?) -> (UInt64, String?) {
        let ready = DispatchGroup()
        let done = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        let failures = FirstFailure<String>()
        for thread in 0..<threads {
            ready.enter()
            done.enter()
            Thread {
                ready.leave()
                go.wait()
                if let failure = body(thread) { failures.record(failure) }
                done.leave()
            }.start()
        }
        ready.wait()
        let start = MonotonicClock.now()
        for _ in 0..<threads { go.signal() }
        done.wait()
        return (MonotonicClock.now() &- start, failures.first)
    }
}


/// The per-thread contexts of a threaded section.
// @unchecked Sendable: thread i only touches contexts[i]; the section joins
// every thread before anything else reads them.
final class ContextsBox: @unchecked Sendable {
    let contexts: [PageTableContext]
    init(_ contexts: [PageTableContext]) { self.contexts = contexts }
}
