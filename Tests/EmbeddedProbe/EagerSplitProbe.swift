// Compiled by .ci/run as Embedded Swift (like BareMetalProbe.swift) against
// the bare-metal modules: it instantiates the eager split engine and the
// dirty-logging wrapper with both backends, a caller-provided arena and the
// spinning MMU lock, so the embedded build proves they specialise there.
// It is not run.
import SLATArm64
import SLATCore
import SLATSplit
import SLATx86

public func eagerSplitStageTwo(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> Int {
    do throws(SLATError) {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        let tables = try StageTwoPageTable(format: format, memory: arena, tlb: CountingTLB(),
                                           caches: CountingCacheMaintenance(), vmid: 1, readerSlots: 2)
        let lock = SpinningReaderWriterLock()
        let engine = EagerSplitEngine(backend: tables, lock: lock, policy: EagerSplitPolicy(chunkSize: 1 << 21))
        var events = 0
        let report = try engine.split(
            GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x20_0000),
            context: PageTableContext(readerSlot: 1), observer: { _ in events += 1 })
        let guestMemory = GuestMemory()
        let logging = EagerSplitDirtyLogging(backend: tables, lock: lock, guestMemory: guestMemory, splitReaderSlot: 1)
        _ = try? logging.enableDirtyLogging(memslot: 1)
        return report.leavesSplit + events
    } catch {
        return -1
    }
}

public func eagerSplitExtendedPageTables(region: UnsafeMutableRawPointer, physicalBase: UInt64) -> Int {
    do throws(SLATError) {
        let format = try ExtendedPageTableFormat(levelCount: 4)
        let arena = try TableArena(region: region, pageSize: 4096, pageCount: 64,
                                   physicalBase: HostPhysicalAddress(physicalBase), isZeroed: false)
        let guestMemory = GuestMemory()
        let mmu = try ExtendedPageTableMMU(format: format, memory: arena, tlb: CountingTLB(), guestMemory: guestMemory)
        let logging = EagerSplitDirtyLogging(backend: mmu, lock: mmu.lock, guestMemory: guestMemory, splitReaderSlot: 1)
        _ = try? logging.enableDirtyLogging(memslot: 1)
        let report = try logging.engine.split(
            GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: 0x20_0000),
            context: PageTableContext(readerSlot: 2))
        return report.leavesSplit
    } catch {
        return -1
    }
}
