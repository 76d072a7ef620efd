import SLATArm64
import SLATCore
import Synchronization

/// The self-test mode: both CPUs run random SLAT operations (map pages,
/// map blocks over tables — the anchored merge —, unmap, split, write
/// protection, relaxing permissions) on one shared stage 2, each in its
/// own 16 MiB of IPA space, and check every result against a reference
/// model: SLAT's own walk (`translate`) and the CPU's (`AT S12E1R`/`AT
/// S12E1W`, the emulated hardware walking the tables as the guest would).
final class SelfTest: Sendable {
    /// Set once by CPU 0 before ``selfTestStart`` is released.
    nonisolated(unsafe) static var shared: SelfTest?
    static let operations = 4000
    static let regionPages = 4096
    /// Outputs are drawn from here (never accessed: only translated).
    static let outputBase: UInt64 = 0x5000_0000

    let vm: VM
    let finished = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let merges = Atomic<Int>(0)
    let splits = Atomic<Int>(0)

    init(vm: VM) { self.vm = vm }

    static func start() -> Never {
        let vm: VM
        do throws(SLATError) {
            vm = try VM(arenaBase: Platform.selfTestArenaBase, pages: Platform.tableArenaPages, vmid: 2, withMemslots: false)
        } catch { fatal("self-test stage 2 could not be built") }
        let test = SelfTest(vm: vm)
        shared = test
        selfTestStart.store(true, ordering: .releasing)
        hyp_send_event()
        let started = Platform.startCPU(1)
        if started != 0 { fatal("PSCI CPU_ON of CPU 1 returned \(started)") }
        test.run(cpu: 0)
    }

    func run(cpu: Int) -> Never {
        vm.load()
        hyp_write_sctlr_el1(0x30D0_0800)
        hyp_write_hcr_el2(1 << 0 | 1 << 31)
        let began = Platform.microseconds
        let failed = exercise(cpu: cpu)
        failures.wrappingAdd(failed, ordering: .relaxed)
        let totals = vm.pageTable.tlb.totals
        Console.write("self-test cpu \(cpu): \(Self.operations) operations, \(failed == 0 ? "PASS" : "FAIL"), time=\(Platform.microseconds - began)us")
        if finished.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == Platform.cpus {
            let total = failures.load(ordering: .relaxed)
            Console.write("self-test: \(Platform.cpus * Self.operations) operations on \(Platform.cpus) CPUs,"
                + " merges=\(merges.load(ordering: .relaxed)) splits=\(splits.load(ordering: .relaxed))"
                + " ipa-flushes=\(totals.ipa) range-flushes=\(totals.range) vmid-flushes=\(totals.vmid)"
                + " table-pages=\(vm.arena.allocatedPageCount) -> \(total == 0 ? "PASS" : "FAIL")")
            Platform.systemOff()
        }
        while true { hyp_wait_for_event() }
    }

    /// Runs the operations of CPU `cpu`; returns the mismatches found.
    func exercise(cpu: Int) -> Int {
        let base: UInt64 = 0x4000_0000 + UInt64(cpu) * 0x100_0000
        // Per page: 0 unmapped, else output | 1 (readable) | 2 (writable).
        let model = UnsafeMutablePointer<UInt64>.allocate(capacity: Self.regionPages)
        model.initialize(repeating: 0, count: Self.regionPages)
        let context = PageTableContext(readerSlot: cpu)
        var random: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(cpu + 1)
        func next(_ bound: Int) -> Int {
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            return Int(random % UInt64(bound))
        }
        var mismatches = 0
        func check(_ page: Int) {
            let ipa = base + UInt64(page) << 12
            let expected = model[page]
            let leaf = vm.pageTable.table.translate(GuestPhysicalAddress(ipa)).translation
            let read = hyp_translate_read(ipa)
            let write = hyp_translate_write(ipa)
            var ok: Bool
            if expected == 0 {
                ok = leaf == nil && read & 1 == 1 && write & 1 == 1
            } else {
                let output = expected & ~0xFFF
                let writable = expected & 2 != 0
                ok = leaf?.output.rawValue == output && leaf?.attributes.permissions.contains(.write) == writable
                ok = ok && read & 1 == 0 && read & 0xFFFF_FFFF_F000 == output
                ok = ok && (write & 1 == 0) == writable
            }
            if !ok {
                mismatches += 1
                if mismatches <= 4 {
                    Console.write("self-test cpu \(cpu): \(hex(ipa)) model \(hex(expected)) table \(hex(leaf?.output.rawValue ?? 0)) PAR r \(hex(read)) w \(hex(write))")
                }
            }
        }
        for operation in 0..<Self.operations {
            do throws(SLATError) {
                switch next(7) {
                case 0, 1:      // map 1–16 pages
                    let first = next(Self.regionPages)
                    let count = min(1 + next(16), Self.regionPages - first)
                    let output = Self.outputBase + UInt64(next(0x10000)) << 12
                    let writable = next(2) == 0
                    let range = GuestPhysicalRange(start: GuestPhysicalAddress(base + UInt64(first) << 12), size: UInt64(count) << 12)
                    try vm.lock.withShared { () throws(SLATError) in
                        _ = try vm.pageTable.map(range, to: HostPhysicalAddress(output),
                                             attributes: LeafAttributes(permissions: writable ? .readWrite : .read),
                                             maximumLevel: 0, mode: .shared, context: context)
                    }
                    for index in 0..<count { model[first + index] = output + UInt64(index) << 12 | (writable ? 3 : 1) }
                    for index in 0..<count { check(first + index) }
                case 2:         // map a 2 MiB block (merging any tables there)
                    let block = next(Self.regionPages / 512)
                    let output = Self.outputBase + UInt64(next(128)) << 21
                    let writable = next(2) == 0
                    let range = GuestPhysicalRange(start: GuestPhysicalAddress(base + UInt64(block) << 21), size: 0x20_0000)
                    let before = vm.pageTable.tlb.vmidOnThisCPU
                    try vm.lock.withShared { () throws(SLATError) in
                        _ = try vm.pageTable.map(range, to: HostPhysicalAddress(output),
                                             attributes: LeafAttributes(permissions: writable ? .readWrite : .read),
                                             mode: .shared, context: context)
                    }
                    if vm.pageTable.tlb.vmidOnThisCPU > before { merges.wrappingAdd(1, ordering: .relaxed) }
                    for index in 0..<512 { model[block * 512 + index] = output + UInt64(index) << 12 | (writable ? 3 : 1) }
                    check(block * 512)
                    check(block * 512 + next(512))
                case 3:         // unmap up to 600 pages
                    let first = next(Self.regionPages)
                    let count = min(1 + next(600), Self.regionPages - first)
                    let range = GuestPhysicalRange(start: GuestPhysicalAddress(base + UInt64(first) << 12), size: UInt64(count) << 12)
                    try vm.lock.withExclusive { () throws(SLATError) in
                        try vm.pageTable.unmap(range, context: context)
                    }
                    for index in 0..<count { model[first + index] = 0 }
                    check(first)
                    check(first + count - 1)
                    if first > 0 { check(first - 1) }
                    if first + count < Self.regionPages { check(first + count) }
                case 4:         // split the blocks of a 2 MiB region
                    let block = next(Self.regionPages / 512)
                    let range = GuestPhysicalRange(start: GuestPhysicalAddress(base + UInt64(block) << 21), size: 0x20_0000)
                    var wanted = 1
                    while true {
                        try context.pageCache.topUp(from: vm.arena, toAtLeast: wanted)
                        let progress = try vm.lock.withShared { () throws(SLATError) -> StageTwoSplitProgress in
                            try vm.pageTable.splitBlocks(in: range, mode: .shared, context: context)
                        }
                        splits.wrappingAdd(progress.blocksSplit, ordering: .relaxed)
                        if progress.isComplete { break }
                        wanted = max(progress.pagesWanted, 1)
                    }
                    check(block * 512 + next(512))
                case 5:         // write-protect up to 100 pages
                    let first = next(Self.regionPages)
                    let count = min(1 + next(100), Self.regionPages - first)
                    let range = GuestPhysicalRange(start: GuestPhysicalAddress(base + UInt64(first) << 12), size: UInt64(count) << 12)
                    try vm.lock.withExclusive { () throws(SLATError) in
                        var batch = TLBFlushBatch()
                        try vm.pageTable.writeProtect(range, context: context, batch: &batch)
                        vm.pageTable.settle(batch, mode: .exclusive)
                    }
                    for index in 0..<count where model[first + index] != 0 { model[first + index] &= ~2 }
                    check(first)
                    check(first + count - 1)
                default:        // give write access back to the leaf of one page
                    let page = next(Self.regionPages)
                    let ipa = base + UInt64(page) << 12
                    guard let leaf = vm.pageTable.table.translate(GuestPhysicalAddress(ipa)).translation else { break }
                    try vm.lock.withShared { () throws(SLATError) in
                        _ = try vm.pageTable.relaxPermissions(GuestPhysicalAddress(ipa), grant: .write, mode: .shared, context: context)
                    }
                    let first = Int((leaf.leafAddress.rawValue - base) >> 12)
                    for index in 0..<Int(leaf.size >> 12) where model[first + index] != 0 { model[first + index] |= 2 }
                    check(page)
                }
            } catch {
                mismatches += 1
                Console.write("self-test cpu \(cpu): operation \(operation) threw")
            }
            if operation % 100 == 99 {
                var page = next(16)
                while page < Self.regionPages {
                    check(page)
                    page += 16
                }
            }
        }
        context.pageCache.release(to: vm.arena)
        return mismatches
    }
}
