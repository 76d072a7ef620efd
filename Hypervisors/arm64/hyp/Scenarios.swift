import SLATArm64
import SLATCore
import Synchronization

/// The value the guest stamps in word 0 of the page at `ipa`, generation `generation`.
@inline(__always)
func stamp(_ ipa: UInt64, _ generation: UInt64) -> UInt64 { (ipa >> 12) &* 0x9E37_79B9_7F4A_7C15 &+ generation }
/// The value the hypervisor writes in word 1 of a page while it is unmapped.
@inline(__always)
func hostStamp(_ ipa: UInt64) -> UInt64 { (ipa >> 12) &* 0xC2B2_AE3D_27D4_EB4F ^ 0x4057 }
/// What an old frame holds after the remap: a guest reading it used a stale translation.
let poison: UInt64 = 0xBAD0_BAD0_BAD0_BAD0

/// Per-scenario figures: counters at `begin`, deltas printed at `end`.
// @unchecked Sendable: only the guest's driving vCPU calls begin, end and
// printSummary (its hypercalls run one at a time on its CPU); the other
// vCPU never touches this object.
final class ScenarioLog: @unchecked Sendable {
    struct Snapshot {
        var time: UInt64 = 0
        var faults = 0, retries = 0, merges = 0, mmio = 0, logged = 0, failures = 0
        var ipa = 0, range = 0, vmid = 0
    }
    var start = Snapshot()
    var results: [(Int, Bool)] = []

    static func name(_ scenario: Int) -> String {
        switch scenario {
        case 1: return "demand-paging"
        case 2: return "dirty-logging"
        case 3: return "remap"
        case 4: return "unmap-and-permissions"
        case 5: return "mmio"
        case 6: return "compaction"
        default: return "unknown"
        }
    }

    func snapshot(_ statistics: ExitStatistics, _ tlb: HypTLB) -> Snapshot {
        let totals = tlb.totals
        return Snapshot(time: Platform.microseconds, faults: statistics.faultsHandled,
                        retries: statistics.retries.load(ordering: .relaxed),
                        merges: statistics.merges.load(ordering: .relaxed),
                        mmio: statistics.mmioReads.load(ordering: .relaxed) + statistics.mmioWrites.load(ordering: .relaxed),
                        logged: statistics.pagesLogged.load(ordering: .relaxed),
                        failures: statistics.failures.load(ordering: .relaxed),
                        ipa: totals.ipa, range: totals.range, vmid: totals.vmid)
    }

    func begin(_ scenario: Int, statistics: ExitStatistics, tlb: HypTLB) {
        start = snapshot(statistics, tlb)
    }

    /// Prints the scenario's line; returns its failures.
    func end(_ scenario: Int, failures: Int, statistics: ExitStatistics, tlb: HypTLB) -> Int {
        let now = snapshot(statistics, tlb)
        let failed = failures + now.failures - start.failures
        results.append((scenario, failed == 0))
        Console.write("scenario \(scenario) \(Self.name(scenario)): \(failed == 0 ? "PASS" : "FAIL")"
            + " faults=\(now.faults - start.faults) retries=\(now.retries - start.retries)"
            + " pages-logged=\(now.logged - start.logged) merges=\(now.merges - start.merges)"
            + " ipa-flushes=\(now.ipa - start.ipa) range-flushes=\(now.range - start.range)"
            + " vmid-flushes=\(now.vmid - start.vmid) mmio=\(now.mmio - start.mmio)"
            + " time=\(now.time - start.time)us" + (failed == 0 ? "" : " failures=\(failed)"))
        return failed
    }

    func printSummary(statistics: ExitStatistics) {
        let passed = results.filter { $0.1 }.count
        let ok = passed == results.count && results.count == 6
        Console.write("summary: \(passed)/\(results.count) scenarios passed, faults=\(statistics.faultsHandled)"
            + " merges=\(statistics.merges.load(ordering: .relaxed)) heap=\(hyp_heap_used()) -> \(ok ? "PASS" : "FAIL")")
    }
}

extension Hypervisor {
    /// The hypervisor's own checks of a scenario; returns the failures.
    func check(scenario: Int) -> Int {
        var failures = 0
        func fail(_ message: String) {
            failures += 1
            if failures <= 4 { Console.write("hyp: check failed: " + message) }
        }
        let table = vm.pageTable.table
        switch scenario {
        case 1:
            // Every page of slots 1–3 is mapped, by a 2 MiB block where the
            // host maps 2 MiB, to its frame, and holds the guest's stamp.
            for slot in GuestLayout.slots where slot.id != 0 {
                var offset: UInt64 = 0
                while offset < slot.size {
                    let ipa = slot.ipa + offset
                    guard let leaf = table.translate(GuestPhysicalAddress(ipa)).translation else {
                        fail("\(hex(ipa)) not mapped after demand paging")
                        offset += 0x1000
                        continue
                    }
                    if leaf.size != (slot.huge ? 0x20_0000 : 0x1000) { fail("\(hex(ipa)) mapped by \(hex(leaf.size))") }
                    if leaf.output.rawValue != slot.host + offset { fail("\(hex(ipa)) maps \(hex(leaf.output.rawValue))") }
                    let word = UnsafePointer<UInt64>(bitPattern: UInt(slot.host + offset))!.pointee
                    if word != stamp(ipa, 1) { fail("host frame of \(hex(ipa)) holds \(hex(word))") }
                    offset += 0x1000
                }
            }
        case 2:
            // Logging is off and slot 1 is mapped by blocks again (merged).
            let slot = GuestLayout.slots[1]
            if vm.pageTable.dirtyLogs.bitmap(forMemslot: slot.id) != nil { fail("slot 1 still logs") }
            var offset: UInt64 = 0
            while offset < slot.size {
                let leaf = table.translate(GuestPhysicalAddress(slot.ipa + offset)).translation
                if leaf?.size != 0x20_0000 { fail("\(hex(slot.ipa + offset)) not a block after logging stopped") }
                offset += 0x20_0000
            }
            if statistics.merges.load(ordering: .relaxed) - scenarios.start.merges < Int(slot.size / 0x20_0000) {
                fail("fewer merges than blocks")
            }
        case 3:
            for index in 0..<remapCount.load(ordering: .relaxed) {
                let record = remapped[index]
                if let leaf = table.translate(GuestPhysicalAddress(record.ipa)).translation,
                   leaf.output.rawValue != record.new {
                    fail("\(hex(record.ipa)) still maps \(hex(leaf.output.rawValue)) after the remap")
                }
                let word = UnsafePointer<UInt64>(bitPattern: UInt(record.new))!.pointee
                if word != stamp(record.ipa, 1) { fail("new frame of \(hex(record.ipa)) holds \(hex(word))") }
            }
        case 4:
            // Every page of slot 3 took a write fault after the write
            // protection and an access-flag fault after aging; every page
            // of slot 2 was faulted in after the unmap.
            for page in 0..<Int(GuestLayout.slots[3].size >> 12) {
                let ipa = GuestLayout.slots[3].ipa + UInt64(page) << 12
                if !faults.isMarked(kind: 0, ipa) { fail("write to \(hex(ipa)) did not fault after write protection") }
                if !faults.isMarked(kind: 2, ipa) { fail("\(hex(ipa)) took no access-flag fault after aging") }
            }
            for page in 0..<Int(GuestLayout.slots[2].size >> 12) {
                let ipa = GuestLayout.slots[2].ipa + UInt64(page) << 12
                if !faults.isMarked(kind: 1, ipa) { fail("\(hex(ipa)) not faulted in after the unmap") }
            }
        case 5:
            if statistics.mmioReads.load(ordering: .relaxed) == 0 { fail("no MMIO read was emulated") }
        case 6:
            let leaf = table.translate(GuestPhysicalAddress(GuestLayout.compactionIPA)).translation
            if leaf?.size != 0x20_0000 || leaf?.output.rawValue != GuestLayout.compactionBlock {
                fail("compaction region not mapped by the new block")
            }
            if statistics.merges.load(ordering: .relaxed) == scenarios.start.merges { fail("compaction did not merge") }
        default:
            fail("unknown scenario \(scenario)")
        }
        return failures
    }

    func enableDirtyLogging(slot: UInt32, context: PageTableContext) -> UInt64 {
        guard let memslot = vm.guestMemory.memslot(id: slot) else { return report("no memslot \(slot)") }
        do throws(SLATError) {
            try vm.pageTable.enableDirtyLogging(memslot: slot, guestMemory: vm.guestMemory, lock: vm.lock, context: context)
            // Eager split (KVM's kvm_mmu_split_memory_region): blocks become
            // pages now, not at the first write of each page.
            let range = memslot.frames.physicalRange
            var start = range.start
            var wanted = 4
            while true {
                try context.pageCache.topUp(from: vm.arena, toAtLeast: wanted)
                let progress = try vm.lock.withShared { () throws(SLATError) -> StageTwoSplitProgress in
                    try vm.pageTable.splitBlocks(in: GuestPhysicalRange(start: start, end: range.end), mode: .shared,
                                                 context: context)
                }
                guard let resume = progress.resumeAddress else { break }
                start = resume
                wanted = max(progress.pagesWanted, 1)
            }
            return 0
        } catch { return report("dirty logging could not be enabled") }
    }

    /// Harvests the slot's log and checks that every page the guest
    /// recorded as written (lists at IPA 0x401A_0000 and 0x401B_0000:
    /// count, then IPAs) is in it. Returns the pages missing.
    func harvest(slot: UInt32, context: PageTableContext) -> UInt64 {
        guard let memslot = vm.guestMemory.memslot(id: slot) else { return report("no memslot \(slot)") }
        let words: [UInt64]
        do throws(SLATError) {
            words = try vm.pageTable.getAndClearDirtyLog(memslot: slot, lock: vm.lock, context: context)
        } catch { return report("harvest failed") }
        var logged = 0
        for word in words { logged += word.nonzeroBitCount }
        statistics.pagesLogged.wrappingAdd(logged, ordering: .relaxed)
        var missing: UInt64 = 0
        for list: UInt64 in [0x401A_0000, 0x401B_0000] {
            guard let host = GuestLayout.hostAddress(ofIPA: list) else { continue }
            let entries = UnsafePointer<UInt64>(bitPattern: UInt(host))!
            for index in 0..<Int(entries[0]) {
                let ipa = entries[1 + index]
                let bit = Int((ipa >> 12) - memslot.baseFrame.rawValue)
                if bit < 0 || bit / 64 >= words.count || words[bit / 64] >> UInt64(bit % 64) & 1 == 0 {
                    missing += 1
                    if missing <= 4 { _ = report("write to \(hex(ipa)) missing from the dirty log") }
                }
            }
        }
        return missing
    }

    /// Moves the page at `ipa` to a new host frame as migration does:
    /// write-protect the host page (the notifier zaps stage 2: break, then
    /// TLB invalidation), copy, point the host page at the new frame,
    /// make it writable again, then poison the old frame.
    func remap(_ ipa: UInt64) -> UInt64 {
        let frame = GuestFrameNumber(ipa >> 12)
        let hostPages = vm.guestMemory.hostPages
        guard let slot = vm.guestMemory.memslot(containing: frame), let hva = slot.hostAddress(of: frame),
              let page = hostPages.lookup(hva) else { return report("remap of unbacked \(hex(ipa))") }
        let index = remapCount.load(ordering: .relaxed)
        guard index < remapped.count else { return report("remap pool exhausted") }
        let old = page.frame.address.rawValue
        let new = GuestLayout.remapPool + UInt64(index) << 12
        let range = HostVirtualRange(start: hva, size: 0x1000)
        do throws(SLATError) {
            try hostPages.protect(range, writable: false)
            UnsafeMutableRawPointer(bitPattern: UInt(new))!.copyMemory(from: UnsafeRawPointer(bitPattern: UInt(old))!, byteCount: 0x1000)
            try hostPages.remap(range, to: HostFrameNumber(new >> 12))
            try hostPages.protect(range, writable: true)
        } catch { return report("host remap of \(hex(ipa)) failed") }
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(old))!.update(repeating: poison, count: 512)
        remapped[index] = RemapRecord(ipa: ipa & ~0xFFF, old: old, new: new)
        remapCount.store(index + 1, ordering: .relaxed)
        return 0
    }

    /// Unmaps `size` bytes at `ipa` from stage 2, then writes the host stamp
    /// into word 1 of each page's frame while the guest cannot reach it.
    func unmap(_ ipa: UInt64, size: UInt64, context: PageTableContext) -> UInt64 {
        do throws(SLATError) {
            try vm.lock.withExclusive { () throws(SLATError) in
                try vm.pageTable.unmap(GuestPhysicalRange(start: GuestPhysicalAddress(ipa), size: size), context: context)
            }
        } catch { return report("unmap failed") }
        var offset: UInt64 = 0
        while offset < size {
            let frame = GuestFrameNumber((ipa + offset) >> 12)
            if let slot = vm.guestMemory.memslot(containing: frame), let hva = slot.hostAddress(of: frame),
               let page = vm.guestMemory.hostPages.lookup(hva) {
                UnsafeMutablePointer<UInt64>(bitPattern: UInt(page.frame.address.rawValue))![1] = hostStamp(ipa + offset)
            }
            offset += 0x1000
        }
        return 0
    }
}

extension Hypervisor {
    /// Maps the compaction region's 512 pages to frames in reverse order
    /// (so no block can cover them), writable.
    func prepareCompaction(context: PageTableContext) -> UInt64 {
        do throws(SLATError) {
            try vm.lock.withExclusive { () throws(SLATError) in
                for page in UInt64(0)..<512 {
                    _ = try vm.pageTable.map(
                        GuestPhysicalRange(start: GuestPhysicalAddress(GuestLayout.compactionIPA + page << 12), size: 0x1000),
                        to: HostPhysicalAddress(GuestLayout.compactionPages + (511 - page) << 12),
                        attributes: LeafAttributes(permissions: .readWrite), maximumLevel: 0, context: context)
                }
            }
            return 0
        } catch { return report("compaction region could not be mapped") }
    }

    /// Compaction under a running guest (which only reads the region
    /// meanwhile): copy the 512 scattered pages into one aligned 2 MiB
    /// frame, map a block over the page tables at the new output — SLAT's
    /// anchored merge, with its one VMID-wide invalidation — then poison
    /// the old frames. A guest that reads poison used a stale translation.
    func compact(context: PageTableContext) -> UInt64 {
        for page in UInt64(0)..<512 {
            UnsafeMutableRawPointer(bitPattern: UInt(GuestLayout.compactionBlock + page << 12))!.copyMemory(
                from: UnsafeRawPointer(bitPattern: UInt(GuestLayout.compactionPages + (511 - page) << 12))!, byteCount: 0x1000)
        }
        let before = vm.pageTable.tlb.vmidOnThisCPU
        do throws(SLATError) {
            try context.pageCache.topUp(from: vm.arena, toAtLeast: 2)
            try vm.lock.withShared { () throws(SLATError) in
                _ = try vm.pageTable.map(
                    GuestPhysicalRange(start: GuestPhysicalAddress(GuestLayout.compactionIPA), size: 0x20_0000),
                    to: HostPhysicalAddress(GuestLayout.compactionBlock), attributes: LeafAttributes(permissions: .readWrite),
                    mode: .shared, context: context)
            }
        } catch { return report("compaction map failed") }
        if vm.pageTable.tlb.vmidOnThisCPU > before { statistics.merges.wrappingAdd(1, ordering: .relaxed) }
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(GuestLayout.compactionPages))!.update(repeating: poison, count: 512 * 512)
        return 0
    }
}

/// A page the remap scenario moved.
struct RemapRecord {
    var ipa: UInt64 = 0
    var old: UInt64 = 0
    var new: UInt64 = 0
}

/// The pages the remap scenario moved, in order.
// @unchecked Sendable: written and read only by the guest's driving vCPU's
// hypercalls, which run one at a time on its CPU.
final class RemapLog: @unchecked Sendable {
    let records: UnsafeMutablePointer<RemapRecord>
    let count = 64
    init() {
        records = UnsafeMutablePointer<RemapRecord>.allocate(capacity: count)
        records.initialize(repeating: RemapRecord(), count: count)
    }
    subscript(_ index: Int) -> RemapRecord {
        get { records[index] }
        set { records[index] = newValue }
    }
}
