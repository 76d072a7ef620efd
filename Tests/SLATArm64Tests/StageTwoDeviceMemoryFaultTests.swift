import SLATArm64
import SLATCore
import Testing

/// A stage-2 VM with memslots over one 2 MiB-aligned host block run: the
/// fault handler maps them; `forcesWriteBack` is HCR_EL2.FWB.
final class DeviceMemoryVM {
    typealias MMU = StageTwoPageTable<TableArena, CountingTLB, CountingCacheMaintenance>
    static let guestBase: UInt64 = 0x1_0000_0000
    static let hostBase: UInt64 = 0x20_0000_0000
    static let hostVirtualBase: UInt64 = 0x7F00_0000_0000

    let caches: CountingCacheMaintenance
    let mmu: MMU
    let guestMemory = GuestMemory()
    let lock = PThreadReaderWriterLock()
    let handler: StageTwoFaultHandler<TableArena, CountingTLB, CountingCacheMaintenance, PThreadReaderWriterLock>
    let binding: StageTwoNotifierBinding<TableArena, CountingTLB, CountingCacheMaintenance, PThreadReaderWriterLock>
    let context = PageTableContext(readerSlot: 0)

    /// `slots`: (flags, size) of consecutive memslots from `guestBase`
    /// over host memory mapped with 2 MiB pages.
    init(forcesWriteBack: Bool = false, slots: [(MemslotFlags, UInt64)]) throws {
        let format = try StageTwoFormat(granule: .size4KiB, inputAddressBits: 40)
        let arena = try TableArena(pageSize: 4096, pageCount: 64, prefault: false)
        caches = CountingCacheMaintenance(forcesWriteBack: forcesWriteBack)
        mmu = try StageTwoPageTable(format: format, memory: arena, tlb: CountingTLB(), caches: caches,
                                    vmid: 1, readerSlots: 2)
        let total = slots.reduce(0) { $0 + $1.1 }
        try guestMemory.hostPages.map(HostVirtualAddress(Self.hostVirtualBase), to: HostPhysicalAddress(Self.hostBase).frame,
                                      size: .size2M, count: max(1, total >> HostMappingSize.size2M.shift))
        var offset: UInt64 = 0
        for (index, (flags, size)) in slots.enumerated() {
            try guestMemory.addMemslot(Memslot(id: UInt32(index + 1), baseFrame: GuestPhysicalAddress(Self.guestBase + offset).frame,
                                               pageCount: size >> frameShift,
                                               hostAddress: HostVirtualAddress(Self.hostVirtualBase + offset), flags: flags))
            offset += size
        }
        handler = StageTwoFaultHandler(pageTable: mmu, guestMemory: guestMemory, lock: lock)
        binding = StageTwoNotifierBinding(pageTable: mmu, guestMemory: guestMemory, lock: lock, readerSlot: 1)
    }

    func page(_ index: UInt64) -> GuestPhysicalAddress { GuestPhysicalAddress(Self.guestBase + index << 12) }

    @discardableResult
    func fault(_ index: UInt64, _ access: StageTwoAccess) throws -> StageTwoFaultOutcome {
        try handler.handle(StageTwoFault(address: page(index), access: access), context: context)
    }

    func leaf(_ index: UInt64) -> Translation? { mmu.table.translate(page(index)).translation }

    /// MemAttr (descriptor bits 5:2) of the leaf mapping page `index`.
    func memoryAttributes(_ index: UInt64) throws -> UInt64 {
        try #require(rawLeaf(mmu.table, page(index))) >> 2 & 0xF
    }

    /// The execute-never field (descriptor bits 54:53) of that leaf.
    func executeNever(_ index: UInt64) throws -> UInt64 {
        try #require(rawLeaf(mmu.table, page(index))) >> 53 & 0b11
    }
}

@Suite("Stage-2 faults in device and non-cacheable memslots")
struct StageTwoDeviceMemoryFaultTests {
    static let block: UInt64 = 2 << 20

    @Test("A write fault in a device memslot maps one Device-nGnRE page, execute-never, where the host allows a block",
          arguments: [false, true])
    func deviceSlotMapsDevicePage(forcesWriteBack: Bool) throws {
        let vm = try DeviceMemoryVM(forcesWriteBack: forcesWriteBack, slots: [(.device, Self.block)])
        #expect(try vm.fault(5, .write) == .mapped(level: 0))
        let leaf = try #require(vm.leaf(5))
        #expect(leaf.level == 0 && leaf.attributes.memoryType == .device)
        #expect(leaf.attributes.permissions == .readWrite)
        #expect(try vm.memoryAttributes(5) == 0b0001)
        #expect(try vm.executeNever(5) == 0b10)
    }

    @Test("A write fault in a non-cacheable memslot maps one Normal-NC page, execute-never",
          arguments: [false, true])
    func nonCacheableSlotMapsNormalNCPage(forcesWriteBack: Bool) throws {
        let vm = try DeviceMemoryVM(forcesWriteBack: forcesWriteBack, slots: [(.nonCacheable, Self.block)])
        #expect(try vm.fault(9, .write) == .mapped(level: 0))
        let leaf = try #require(vm.leaf(9))
        #expect(leaf.level == 0 && leaf.attributes.memoryType == .writeCombining)
        #expect(try vm.memoryAttributes(9) == 0b0101)
        #expect(try vm.executeNever(9) == 0b10)
    }

    @Test("Device and non-cacheable mappings cost no data-cache clean without FWB")
    func deviceMappingsAreNotCleaned() throws {
        let vm = try DeviceMemoryVM(slots: [(.device, Self.block / 2), (.nonCacheable, Self.block / 2)])
        try vm.fault(1, .write)
        try vm.fault(256 + 1, .read)
        #expect(vm.leaf(1)?.attributes.memoryType == .device)
        #expect(vm.leaf(257)?.attributes.memoryType == .writeCombining)
        #expect(vm.caches.dataCacheCleanCount == 0)
    }

    @Test("An instruction fetch from a device memslot throws and maps nothing")
    func executeFromDeviceThrows() throws {
        let vm = try DeviceMemoryVM(slots: [(.device, Self.block)])
        #expect(throws: SLATError.executeFromDeviceMemory(vm.page(3).frame)) { try vm.fault(3, .execute) }
        #expect(vm.leaf(3) == nil)
    }

    @Test("A cacheable fault beside device pages in one block's range maps a page, leaving the device page as it is")
    func cacheableBesideDeviceIsNeverABlock() throws {
        let vm = try DeviceMemoryVM(slots: [(.device, Self.block / 2), ([], Self.block / 2)])
        try vm.fault(7, .write)
        try vm.fault(300, .write)
        #expect(vm.leaf(300)?.level == 0 && vm.leaf(300)?.attributes.memoryType == .writeBack)
        #expect(vm.leaf(7)?.level == 0 && vm.leaf(7)?.attributes.memoryType == .device)
    }

    @Test("Making a mapped memslot device memory removes its write-back block; the next fault maps a device page")
    func memoryTypeChangeZapsTheSlot() throws {
        let vm = try DeviceMemoryVM(slots: [([], Self.block)])
        #expect(try vm.fault(4, .write) == .mapped(level: 1))
        try vm.guestMemory.updateMemslotFlags(id: 1, inserting: .device)
        #expect(vm.leaf(4) == nil)
        #expect(try vm.fault(4, .write) == .mapped(level: 0))
        #expect(vm.leaf(4)?.attributes.memoryType == .device)
    }
}
