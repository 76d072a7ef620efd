import Dispatch
import Testing
import SLAT

/// The "Quick start for a VMM author" sample of README.md, statement for
/// statement (between the `// README` markers), so the README keeps
/// compiling and doing what it says.
@Suite struct ReadmeQuickStartTests {
    @Test("The README's quick start faults a VM's memory in from two vCPU threads, logs dirty pages and uses a pfn cache")
    func quickStart() throws {
        // README begin
        // The VM's memory: 1 GiB of this process's memory (mmap, populated on first
        // touch) in 2 MiB host pages, one memslot at guest 4 GiB.
        let ram = ProcessMappedHostMemory()
        let hostRAM = try ram.mapAnonymousRegion(byteCount: 1 << 30, alignment: 2 << 20)
        let guestMemory = GuestMemory()
        try guestMemory.hostPages.map(hostRAM.start, to: HostFrameNumber(0x40_0000), size: .size2M, count: 512)
        try guestMemory.addMemslot(Memslot(id: 1, baseFrame: GuestFrameNumber(0x10_0000), pageCount: 1 << 18,
                                           hostAddress: hostRAM.start))

        // Its EPT tables, TLB (your INVEPT) and MMU; load `mmu.pointer()` into the VMCS.
        let format = try ExtendedPageTableFormat(levelCount: 4, accessedDirtyEnabled: true)
        let tlb = CountingTLB()
        let mmu = try ExtendedPageTableMMU(format: format, memory: try TableArena(pageCount: 4096), tlb: tlb,
                                           guestMemory: guestMemory, configuration: MMUConfiguration(nxHugePages: true))

        // vCPU threads handle their EPT violations under the shared MMU lock,
        // each with its own context (page cache + reader slot).
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let vcpu = PageTableContext(readerSlot: index)
            var eptp = try? mmu.reloadRoot(vcpu)                      // write it to the VMCS
            for page in UInt64(0)..<256 {
                let address = GuestPhysicalAddress(0x1_0000_0000 + (UInt64(index) * 256 + page) * 0x20_0000)
                let fault = GuestPageFault(address: address, access: .write)
                while true {
                    // Before each VM entry: were the roots replaced (invalidateAllRoots)?
                    if (try? mmu.isRootReloadRequested(vcpu)) == true { eptp = try? mmu.reloadRoot(vcpu) }
                    guard case .retry? = try? mmu.handleFault(fault, vcpu: vcpu) else { break }
                }
            }
            _ = eptp
        }

        // Dirty logging for migration: write-protect, let the guest write (its
        // write faults mark the bitmap), fetch and clear; D bits work too (`.dirtyBit`).
        try mmu.enableDirtyLogging(memslot: 1, mode: .writeProtect)
        _ = try mmu.handleFault(GuestPageFault(address: GuestPhysicalAddress(0x1_0000_3000), access: .write,
                                               isPermissionFault: true), vcpu: PageTableContext(readerSlot: 0))
        let dirtyWords = try mmu.getAndClearDirtyLog(memslot: 1)      // bit n = frame n of the slot
        try mmu.disableDirtyLogging(memslot: 1)                       // huge pages come back in place

        // A pfn cache: a guest page the VMM itself reads and writes (steal time, say),
        // here the real guest RAM mapped above.
        let registry = PfnCacheRegistry(guestMemory: guestMemory, hostMemory: ram)
        let stealTime = PfnCache(registry: registry)
        try stealTime.activate(guestAddress: GuestPhysicalAddress(0x1_0000_0040), length: 64)
        try stealTime.access(length: 64) { bytes in bytes.storeBytes(of: UInt64(42), as: UInt64.self) }
        // README end

        #expect(try mmu.table().translate(GuestPhysicalAddress(0x1_3FFF_F000)).translation?.size == 0x20_0000,
                "every 2 MiB page of the slot was faulted in as a 2 MiB leaf")
        #expect(dirtyWords.first == 1 << 3, "exactly the written frame 3 is dirty")
        #expect(try mmu.table().translate(GuestPhysicalAddress(0x1_0000_3000)).translation?.size == 0x20_0000,
                "disabling dirty logging recovered the huge page")
        #expect(try stealTime.access(length: 8) { $0.load(as: UInt64.self) } == 42)
        #expect(UnsafeRawPointer(bitPattern: UInt(hostRAM.start.rawValue + 0x40))?.load(as: UInt64.self) == 42,
                "the cache wrote the VMM's real guest RAM")
        #expect(try mmu.pointer().rawValue & 0x40 != 0, "the EPTP enables A/D flags")
        mmu.teardown()
    }
}
