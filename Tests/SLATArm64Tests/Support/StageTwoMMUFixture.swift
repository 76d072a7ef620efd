import SLATArm64
import SLATCore

/// A stage-2 MMU over a fresh arena with a counting TLB and counting cache
/// hooks, for the single-threaded operation tests.
struct StageTwoMMUFixture {
    typealias MMU = StageTwoPageTable<TableArena, CountingTLB, CountingCacheMaintenance>
    let format: StageTwoFormat
    let arena: TableArena
    let tlb = CountingTLB()
    let caches: CountingCacheMaintenance
    let mmu: MMU
    let context = PageTableContext(readerSlot: 0)

    init(granule: TranslationGranule = .size4KiB, inputAddressBits: Int = 40, outputAddressBits: Int = 48,
         caches: CountingCacheMaintenance = CountingCacheMaintenance(), tablePages: Int = 2048) throws {
        format = try StageTwoFormat(granule: granule, inputAddressBits: inputAddressBits,
                                    outputAddressBits: outputAddressBits)
        arena = try TableArena(pageSize: granule.byteCount, pageCount: tablePages, prefault: false)
        self.caches = caches
        mmu = try StageTwoPageTable(format: format, memory: arena, tlb: tlb, caches: caches, vmid: 7, readerSlots: 4)
    }

    static let readWrite = LeafAttributes(permissions: .readWrite)

    /// The 2 MiB block at 1 GiB → 4 GiB (4 KiB granule).
    static let block = GuestPhysicalRange(start: GuestPhysicalAddress(1 << 30), size: 2 << 20)
    static let blockOutput = HostPhysicalAddress(4 << 30)

    /// Every leaf of the tables.
    var leaves: [LeafMapping] { mmu.table.leaves() }

    /// A picture of the tables that changes whenever any entry does.
    var shape: [LeafMapping] { mmu.table.leaves() }
    var tablePages: [HostPhysicalAddress] { mmu.table.reachableTablePages() }
}
