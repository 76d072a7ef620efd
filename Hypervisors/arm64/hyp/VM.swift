import SLATArm64
import SLATArm64Hardware
import SLATCore
import Synchronization

typealias HypCaches = AArch64CacheMaintenance<AArch64SystemInstructions>
typealias HypPageTable = StageTwoPageTable<TableArena, HypTLB, HypCaches>
typealias HypFaultHandler = StageTwoFaultHandler<TableArena, HypTLB, HypCaches, SpinningReaderWriterLock>

/// The guest's physical memory: memslots (IPA → host address) and the host
/// frames behind them. Host addresses are host-physical (the hypervisor
/// runs identity-mapped).
enum GuestLayout {
    struct Slot {
        let id: UInt32
        let ipa: UInt64
        let size: UInt64
        let host: UInt64
        /// The host maps it with 2 MiB pages (stage 2 may use blocks).
        let huge: Bool
    }
    static let slots: [Slot] = [
        Slot(id: 0, ipa: 0x4000_0000, size: 0x20_0000, host: 0x4800_0000, huge: true),   // image, stacks
        Slot(id: 1, ipa: 0x4040_0000, size: 0x40_0000, host: 0x4880_0000, huge: true),
        Slot(id: 2, ipa: 0x4080_0000, size: 0x40_0000, host: 0x4900_0000, huge: true),
        Slot(id: 3, ipa: 0x40C0_0000, size: 0x10_0000, host: 0x4980_0000, huge: false),  // pages only
    ]
    /// Frames the remap scenario moves pages to.
    static let remapPool: UInt64 = 0x4A00_0000
    /// The compaction region: no memslot; the hypervisor maps it itself,
    /// page by page to scattered frames, then as one block.
    static let compactionIPA: UInt64 = 0x4200_0000
    static let compactionPages: UInt64 = 0x4C00_0000
    static let compactionBlock: UInt64 = 0x4C20_0000
    /// The emulated device (no memslot).
    static let mmioBase: UInt64 = 0x1000_0000
    static let mmioSize: UInt64 = 0x1000
    /// Where the guest starts (slot 0).
    static let entry: UInt64 = 0x4000_0000
    static let ipaBits = 32

    static func hostAddress(ofIPA ipa: UInt64) -> UInt64? {
        for slot in slots where ipa >= slot.ipa && ipa < slot.ipa + slot.size { return ipa - slot.ipa + slot.host }
        return nil
    }
}

/// One VM: stage 2 built by SLATArm64 over a `TableArena` on the physical
/// region the hypervisor owns, its guest memory, MMU lock and fault handler.
final class VM: Sendable {
    let arena: TableArena
    let pageTable: HypPageTable
    let guestMemory: GuestMemory
    let lock: SpinningReaderWriterLock
    let handler: HypFaultHandler
    let binding: StageTwoNotifierBinding<TableArena, HypTLB, HypCaches, SpinningReaderWriterLock>

    init(arenaBase: UInt64, pages: Int, vmid: UInt32, withMemslots: Bool) throws(SLATError) {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: GuestLayout.ipaBits)
        arena = try TableArena(region: UnsafeMutableRawPointer(bitPattern: UInt(arenaBase))!, pageSize: 4096,
                               pageCount: pages, physicalBase: HostPhysicalAddress(arenaBase), isZeroed: false)
        // FEAT_TTL (ID_AA64MMFR2_EL1.TTL, bits 51:48): level hints in TLBI.
        let levelHints = hyp_read_id_aa64mmfr2_el1() >> 48 & 0xF != 0
        // The TLB needs VTTBR_EL2 (root and VMID) before the tables exist;
        // the root is the arena's first page (checked below).
        let root = arenaBase
        let vttbr = UInt64(vmid) << 48 | root
        let tlb = HypTLB(translationTableBase: vttbr, format: format, hasLevelHints: levelHints)
        let caches = HypCaches(forcesWriteBack: false, ctr: hyp_read_ctr_el0(), instructions: AArch64SystemInstructions())
        pageTable = try HypPageTable(format: format, memory: arena, tlb: tlb, caches: caches, vmid: vmid,
                                     readerSlots: Platform.cpus + 1)
        guard pageTable.translationTableBase.rawValue == vttbr else { throw .invalidTableRegion }
        guestMemory = GuestMemory()
        lock = SpinningReaderWriterLock()
        handler = HypFaultHandler(pageTable: pageTable, guestMemory: guestMemory, lock: lock)
        binding = StageTwoNotifierBinding(pageTable: pageTable, guestMemory: guestMemory, lock: lock,
                                          readerSlot: Platform.cpus)
        if withMemslots {
            for slot in GuestLayout.slots {
                let size: HostMappingSize = slot.huge ? .size2M : .size4K
                try guestMemory.hostPages.map(HostVirtualAddress(slot.host), to: HostFrameNumber(slot.host >> 12),
                                              size: size, count: slot.size / size.bytes)
                try guestMemory.addMemslot(Memslot(id: slot.id, baseFrame: GuestFrameNumber(slot.ipa >> 12),
                                                   pageCount: slot.size >> 12, hostAddress: HostVirtualAddress(slot.host)))
            }
        }
    }

    /// Loads this VM's stage 2 on the calling CPU (VTCR_EL2, VTTBR_EL2).
    func load() {
        hyp_write_vtcr_el2(pageTable.translationControl.rawValue)
        hyp_write_vttbr_el2(pageTable.translationTableBase.rawValue)
    }
}
