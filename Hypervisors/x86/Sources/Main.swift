import CHypervisor
import SLATCore
import SLATx86
import SLATx86Hardware
import Synchronization

/// The most CPUs the hypervisor drives (slot 2 holds 2 MiB per CPU).
let maximumCPUs = 4

/// The VM, published to the APs before they are started.
nonisolated(unsafe) var theMachine: Machine? = nil

// MARK: Memory helpers

func hostWord(_ address: UInt64) -> UInt32 { hv_read32(address) }

func setHostWord(_ address: UInt64, _ value: UInt32) { hv_write32(address, value) }

/// What the guest's stamp writes at +0 and +0xffc of the page at `gpa`.
func stampValue(_ gpa: UInt64, _ seed: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: gpa ^ seed) }

/// SLAT's translation of `gpa` in the current root.
func translation(_ machine: Machine, _ gpa: UInt64) -> Translation? {
    do throws(SLATError) {
        return try machine.mmu.table().translate(GuestPhysicalAddress(gpa)).translation
    } catch {
        return nil
    }
}

/// The leaf entry of `gpa`, found by walking the EPT from the root (used
/// only by the bite build that clears dirty bits behind SLAT's back).
func leafEntry(_ machine: Machine, _ gpa: UInt64) -> UnsafeMutablePointer<UInt64>? {
    guard var table = try? machine.mmu.root().rawValue else { return nil }
    var level = 3
    while level >= 0 {
        let index = (gpa >> UInt64(12 + 9 * level)) & 511
        let entry = UnsafeMutablePointer<UInt64>(bitPattern: UInt(table + index * 8))!
        let value = entry.pointee
        if value & 7 == 0 { return nil }
        if level == 0 || value & 0x80 != 0 { return entry }
        table = value & 0x000f_ffff_ffff_f000
        level -= 1
    }
    return nil
}

/// The entry at `level` (SLAT's height) on the walk to `gpa`, when every
/// table above it is present.
func entryPointer(_ machine: Machine, _ gpa: UInt64, level target: Int) -> UnsafeMutablePointer<UInt64>? {
    guard var table = try? machine.mmu.root().rawValue else { return nil }
    var level = 3
    while true {
        let entry = UnsafeMutablePointer<UInt64>(bitPattern: UInt(table + ((gpa >> UInt64(12 + 9 * level)) & 511) * 8))!
        if level == target { return entry }
        let value = entry.pointee
        if value & 7 == 0 || value & 0x80 != 0 { return nil }
        table = value & 0x000f_ffff_ffff_f000
        level -= 1
    }
}

/// The frame indices set in a dirty bitmap.
func bitCount(_ words: [UInt64]) -> Int {
    var count = 0
    for word in words { count += word.nonzeroBitCount }
    return count
}

func isMarked(_ words: [UInt64], _ index: UInt64) -> Bool {
    let word = Int(index / 64)
    return word < words.count && words[word] & (1 << (index % 64)) != 0
}

// MARK: Per-scenario reporting

/// Counters at the start of a scenario.
struct Mark {
    var exits: Int
    var fast: Int
    var invept: Int
    var mmio: Int
    var ticks: UInt64

    init(_ vcpus: [VCPU], _ machine: Machine) {
        exits = 0
        fast = 0
        mmio = 0
        for vcpu in vcpus {
            exits += vcpu.exits
            fast += vcpu.fastFaults
            mmio += vcpu.mmioExits
        }
        invept = machine.invalidations
        ticks = hv_rdtsc()
    }
}

nonisolated(unsafe) var failedScenarios = 0

/// Prints `S<n> <name>: PASS|FAIL exits= fast= logged= invept=` and counts failures.
func report(_ number: Int, _ name: StaticString, passed: Bool, since mark: Mark, vcpus: [VCPU], machine: Machine,
            logged: Int, details: () -> Void) {
    let now = Mark(vcpus, machine)
    put("S"); putDecimal(number); put(" "); put(name); put(passed ? ": PASS" : ": FAIL")
    field("exits", now.exits - mark.exits)
    field("fast", now.fast - mark.fast)
    field("logged", logged)
    field("invept", now.invept - mark.invept)
    details()
    put("\n")
    if !passed { failedScenarios += 1 }
}

// MARK: Scenario 1: demand paging (every CPU)

/// The guest on `vcpu` stamps and verifies its 2 MiB share of the huge
/// slot (one 2 MiB leaf) and 64 pages of the small slot (4 KiB leaves).
/// Returns the guest's mismatch count (or -1 when a command failed).
func demandPagingGuest(_ vcpu: VCPU) -> Int {
    let cpu = UInt64(vcpu.index)
    let seed = 0x5100_0000 | cpu
    var mismatches = 0
    for (base, count) in [(Layout.hugeGPA + cpu * 0x20_0000, UInt64(512)), (Layout.smallGPA + cpu * 64 * 4096, UInt64(64))] {
        guard vcpu.command(.stamp, base: base, count: count, seed: seed),
              vcpu.command(.verify, base: base, count: count, seed: seed) else { return -1 }
        mismatches += Int(truncatingIfNeeded: vcpu.registers.pointee.rax)
    }
    return mismatches
}

/// The hypervisor's side: every page of `vcpu`'s share is mapped by SLAT
/// at the expected level to the memslot's frame, which holds the stamp.
func demandPagingHost(_ machine: Machine, cpu: Int) -> Int {
    let index = UInt64(cpu)
    let seed = 0x5100_0000 | index
    var problems = 0
    let shares: [(gpa: UInt64, host: UInt64, count: UInt64, level: Int)] = [
        (Layout.hugeGPA + index * 0x20_0000, Layout.hugeHost + index * 0x20_0000, 512, 1),
        (Layout.smallGPA + index * 64 * 4096, Layout.smallHost + index * 64 * 4096, 64, 0),
    ]
    for share in shares {
        for page in 0..<share.count {
            let gpa = share.gpa + page * 4096
            let host = share.host + page * 4096
            guard let found = translation(machine, gpa), found.output.rawValue == host, found.level == share.level,
                  hostWord(host) == stampValue(gpa, seed), hostWord(host + 0xffc) == stampValue(gpa, seed) else {
                problems += 1
                continue
            }
        }
    }
    return problems
}

// MARK: Scenario 2: dirty logging

/// The guest writes `pages` (indices into the slot at `base`), one stamp each.
func writePages(_ vcpu: VCPU, base: UInt64, _ pages: [UInt64], seed: UInt64) -> Bool {
    for page in pages {
        guard vcpu.command(.stamp, base: base + page * 4096, count: 1, seed: seed) else { return false }
    }
    return true
}

/// The guest verifies `pages`; returns mismatches (-1: a command failed).
func verifyPages(_ vcpu: VCPU, base: UInt64, _ pages: [UInt64], seed: UInt64) -> Int {
    var mismatches = 0
    for page in pages {
        guard vcpu.command(.verify, base: base + page * 4096, count: 1, seed: seed) else { return -1 }
        mismatches += Int(truncatingIfNeeded: vcpu.registers.pointee.rax)
    }
    return mismatches
}

/// Bite build: clears the D bit of every leaf of the slot directly in the
/// tables, without harvesting it, as a buggy component would.
func clearDirtyBitsBehindSLAT(_ machine: Machine, base: UInt64, pages: UInt64) {
    #if BITE_CLEAR_DIRTY
    for page in 0..<pages {
        if let entry = leafEntry(machine, base + page * 4096) { entry.pointee &= ~(UInt64(1) << 9) }
    }
    #endif
}

/// One round: the guest writes `pages`, the hypervisor harvests; returns
/// (reported, written pages missing from the log, extra pages, guest mismatches).
func dirtyRound(_ machine: Machine, _ vcpu: VCPU, slot: UInt32, base: UInt64, slotPages: UInt64, _ pages: [UInt64],
                seed: UInt64) -> (reported: Int, missing: Int, extra: Int, mismatches: Int) {
    guard writePages(vcpu, base: base, pages, seed: seed) else { return (0, pages.count, 0, -1) }
    clearDirtyBitsBehindSLAT(machine, base: base, pages: slotPages)
    let log: [UInt64]
    do throws(SLATError) {
        log = try machine.mmu.getAndClearDirtyLog(memslot: slot)
    } catch {
        put("get-and-clear failed: "); put(describe(error)); put("\n")
        return (0, pages.count, 0, -1)
    }
    var missing = 0
    for page in pages where !isMarked(log, page) { missing += 1 }
    let reported = bitCount(log)
    let mismatches = verifyPages(vcpu, base: base, pages, seed: seed)
    return (reported, missing, reported - (pages.count - missing), mismatches)
}

func pages(_ count: UInt64, where keep: (UInt64) -> Bool) -> [UInt64] {
    var result: [UInt64] = []
    for page in 0..<count where keep(page) { result.append(page) }
    return result
}

// MARK: Entry points

/// The BSP: VM setup, APs, the four scenarios, the summary.
@_cdecl("hypervisor_main")
public func hypervisorMain() {
    put("HELLO slat x86 hypervisor\n")
    let capability = hv_rdmsr(0x48c)
    put("CPU"); hexField("vmx_basic", hv_rdmsr(0x480)); hexField("procbased2", hv_rdmsr(0x48b))
    hexField("ept_vpid_cap", capability); hexField("vmx_misc", hv_rdmsr(0x485)); put("\n")
    if capability & (1 << 21) == 0 { put("FATAL: no EPT accessed/dirty flags\n"); put("RESULT: FAIL\n"); return }
    #if BITE_NOOP_TLB
    put("BITE: the TLB issues no INVEPT\n")
    #endif
    #if BITE_CLEAR_DIRTY
    put("BITE: EPT dirty bits are cleared without harvesting\n")
    #endif
    // The guest's code in its own frame.
    let codeSize = hv_guest_code_size()
    UnsafeMutableRawPointer(bitPattern: UInt(Layout.guestCodeHost))!.copyMemory(
        from: UnsafeRawPointer(bitPattern: UInt(hv_guest_code_start()))!, byteCount: Int(codeSize))

    let machine: Machine
    do throws(SLATError) {
        machine = try Machine(maximumCPUs: maximumCPUs)
    } catch {
        put("FATAL: VM setup: "); put(describe(error)); put("\n"); put("RESULT: FAIL\n")
        return
    }
    theMachine = machine
    let bsp = VCPU(index: 0, machine: machine)
    machine.vcpus[0] = bsp
    guard bsp.enterVMX() else {
        put("FATAL: "); put(bsp.failure ?? "VMX"); put("\n"); put("RESULT: FAIL\n")
        return
    }
    put("EPTP"); hexField("value", bsp.loadedPointer); field("arena_pages", Layout.arenaPages)
    hexField("arena", Layout.arenaBase); put("\n")
    // The guest's first instruction is its VMCALL asking for a command.
    guard bsp.runUntilCall() else { put("FATAL: first entry: "); put(bsp.failure ?? "?"); put("\n"); put("RESULT: FAIL\n"); return }

    let apCount = startAPs(machine)
    put("CPUS"); field("count", apCount + 1); put("\n")
    var vcpus: [VCPU] = [bsp]
    for cpu in 1..<maximumCPUs { if let vcpu = machine.vcpus[cpu] { vcpus.append(vcpu) } }

    // Scenario 1 on every CPU at once.
    var mark = Mark(vcpus, machine)
    machine.go.store(true, ordering: .releasing)
    let bspMismatches = demandPagingGuest(bsp)
    while machine.finishedAPs.load(ordering: .acquiring) < apCount { hv_pause() }
    vcpus = [bsp]
    for cpu in 1..<maximumCPUs { if let vcpu = machine.vcpus[cpu] { vcpus.append(vcpu) } }
    var guestMismatches = bspMismatches
    var hostProblems = 0
    var failedCPUs = 0
    for vcpu in vcpus {
        if vcpu.index != 0 { guestMismatches += vcpu.apResult }
        if vcpu.failure != nil || (vcpu.index != 0 && vcpu.apResult < 0) { failedCPUs += 1 }
        hostProblems += demandPagingHost(machine, cpu: vcpu.index)
    }
    if bspMismatches < 0 { failedCPUs += 1 }
    report(1, "demand-paging", passed: guestMismatches == 0 && hostProblems == 0 && failedCPUs == 0 && vcpus.count >= 2,
           since: mark, vcpus: vcpus, machine: machine, logged: 0) {
        field("cpus", vcpus.count); field("guest_mismatches", guestMismatches); field("host_mismatches", hostProblems)
        var slow = 0
        for vcpu in vcpus { slow += vcpu.slowFaults }
        field("slow_faults", slow)
        for vcpu in vcpus { put(" cpu"); putDecimal(vcpu.index); put("_exits_since_launch="); putDecimal(vcpu.exits) }
    }

    // MMIO: a store and a load to a guest-physical page with no memslot.
    mark = Mark([bsp], machine)
    let mmioOK = bsp.command(.mmio, base: Layout.mmioGPA + 0x10, seed: 0x1234_5678)
    let mmioValue = bsp.registers.pointee.rax & 0xffff_ffff
    report(1, "mmio", passed: mmioOK && mmioValue == 0x1234_5678 ^ 0xa5a5_a5a5 && machine.mmioRegister == 0x1234_5678,
           since: mark, vcpus: [bsp], machine: machine, logged: 0) {
        field("mmio_exits", bsp.mmioExits - mark.mmio); hexField("read", mmioValue)
    }

    dirtyLogging(machine, bsp)
    dirtyLoggingUnderRunningGuest(machine, vcpus: vcpus, slot: Slot.dirty, name: "dirty-log-dirty-bit-running-guest",
                                  base: Layout.dirtyGPA, first: 600)
    dirtyLoggingUnderRunningGuest(machine, vcpus: vcpus, slot: Slot.protect, name: "dirty-log-write-protect-running-guest",
                                  base: Layout.protectGPA, first: 200)
    aging(machine, bsp)
    remapAndZap(machine, bsp)
    remapUnderRunningGuest(machine, bsp, vcpus: vcpus)
    misconfiguration(machine, bsp)

    var misconfigurations = 0
    for vcpu in vcpus { misconfigurations += vcpu.misconfigurations }
    put("SUMMARY"); field("failed", failedScenarios); field("misconfigurations", misconfigurations)
    field("single_context_invept", machine.tlb.singleContextInvalidations)
    field("all_context_invept", machine.tlb.allContextInvalidations)
    field("catch_up_invept", machine.cpus.remoteCatchUps.load(ordering: .relaxed))
    field("failed_invept", machine.tlb.failedInvalidations)
    field("table_pages", Layout.arenaPages - machine.mmu.memory.freePageCount)
    field("heap_bytes", Int(hv_heap_used())); put("\n")
    put(failedScenarios == 0 ? "RESULT: PASS\n" : "RESULT: FAIL\n")
}

/// Scenario 2: dirty logging, dirty-bit mode then write-protect mode.
func dirtyLogging(_ machine: Machine, _ vcpu: VCPU) {
    // Dirty-bit mode on slot 4 (2 MiB host mappings: huge leaves at first).
    var mark = Mark([vcpu], machine)
    let seed: UInt64 = 0x5200_0000
    var ok = vcpu.command(.stamp, base: Layout.dirtyGPA, count: Layout.dirtyPages, seed: seed)
    var first = (reported: 0, missing: 0, extra: 0, mismatches: 0)
    var second = first
    var third = first
    var cpuOnlyExits = -1
    let set1 = pages(Layout.dirtyPages) { $0 % 7 == 3 }
    let set2 = pages(Layout.dirtyPages) { $0 % 5 == 1 }
    do throws(SLATError) {
        try machine.mmu.enableDirtyLogging(memslot: Slot.dirty, mode: .dirtyBit)
        _ = try machine.mmu.getAndClearDirtyLog(memslot: Slot.dirty)
    } catch {
        put("enable failed: "); put(describe(error)); put("\n")
        ok = false
    }
    if ok {
        // Round 1: the writes split the write-protected huge leaves (full path).
        first = dirtyRound(machine, vcpu, slot: Slot.dirty, base: Layout.dirtyGPA, slotPages: Layout.dirtyPages, set1,
                           seed: seed ^ 1)
        // Round 2: the same pages again; their 4 KiB leaves are writable with
        // D clear, so the CPU sets D and no EPT violation happens.
        let before = vcpu.violations
        second = dirtyRound(machine, vcpu, slot: Slot.dirty, base: Layout.dirtyGPA, slotPages: Layout.dirtyPages, set1,
                            seed: seed ^ 2)
        cpuOnlyExits = vcpu.violations - before
        // Round 3: another set, partly the first one.
        third = dirtyRound(machine, vcpu, slot: Slot.dirty, base: Layout.dirtyGPA, slotPages: Layout.dirtyPages, set2,
                           seed: seed ^ 3)
    }
    let logged = first.reported + second.reported + third.reported
    let dirtyPassed = ok && first.missing == 0 && second.missing == 0 && third.missing == 0
        && first.mismatches == 0 && second.mismatches == 0 && third.mismatches == 0 && cpuOnlyExits == 0
    report(2, "dirty-log-dirty-bit", passed: dirtyPassed, since: mark, vcpus: [vcpu], machine: machine, logged: logged) {
        field("written", set1.count * 2 + set2.count)
        field("missing", first.missing + second.missing + third.missing)
        field("extra", first.extra + second.extra + third.extra)
        field("cpu_set_d_round_violations", cpuOnlyExits)
        field("round2_reported", second.reported)
        field("guest_mismatches", max(first.mismatches, 0) + max(second.mismatches, 0) + max(third.mismatches, 0))
    }

    // Write-protect mode on slot 5 (4 KiB leaves): writes take the fast page fault.
    mark = Mark([vcpu], machine)
    let protectSeed: UInt64 = 0x5300_0000
    ok = vcpu.command(.stamp, base: Layout.protectGPA, count: Layout.protectPages, seed: protectSeed)
    do throws(SLATError) {
        try machine.mmu.enableDirtyLogging(memslot: Slot.protect, mode: .writeProtect)
        _ = try machine.mmu.getAndClearDirtyLog(memslot: Slot.protect)
    } catch {
        put("enable failed: "); put(describe(error)); put("\n")
        ok = false
    }
    let protectSet = pages(Layout.protectPages) { $0 % 3 == 0 }
    var rounds: [(reported: Int, missing: Int, extra: Int, mismatches: Int)] = []
    var fastPerRound: [Int] = []
    if ok {
        for round in 0..<2 {
            let before = vcpu.fastFaults
            rounds.append(dirtyRound(machine, vcpu, slot: Slot.protect, base: Layout.protectGPA,
                                     slotPages: Layout.protectPages, protectSet, seed: protectSeed ^ UInt64(round + 1)))
            fastPerRound.append(vcpu.fastFaults - before)
        }
    }
    var missing = 0
    var extra = 0
    var logged2 = 0
    var mismatches = 0
    for round in rounds {
        missing += round.missing
        extra += round.extra
        logged2 += round.reported
        mismatches += max(round.mismatches, 0) + (round.mismatches < 0 ? 1 : 0)
    }
    let protectPassed = ok && rounds.count == 2 && missing == 0 && mismatches == 0
        && fastPerRound.count == 2 && fastPerRound[0] == protectSet.count && fastPerRound[1] == protectSet.count
    report(2, "dirty-log-write-protect", passed: protectPassed, since: mark, vcpus: [vcpu], machine: machine,
           logged: logged2) {
        field("written", protectSet.count * 2); field("missing", missing); field("extra", extra)
        for (round, count) in fastPerRound.enumerated() {
            put(" round"); putDecimal(round + 1); put("_fast="); putDecimal(count)
        }
        field("guest_mismatches", mismatches)
    }
}

/// Scenario 2 on a running guest: CPU 1's guest writes 16 pages of the
/// slot in a loop (leaving guest mode only for faults and the preemption
/// timer) while the BSP harvests the log three times; each harvest must
/// report every page, since the guest wrote all of them after the previous
/// one. In dirty-bit mode the CPU sets D again only if the harvest's INVEPT
/// reached CPU 1; in write-protect mode CPU 1 faults (fast page fault) only
/// if the write-protect did.
func dirtyLoggingUnderRunningGuest(_ machine: Machine, vcpus: [VCPU], slot: UInt32, name: StaticString, base: UInt64,
                                   first: UInt64) {
    let mark = Mark(vcpus, machine)
    let count: UInt64 = 16
    guard let ap = machine.vcpus[1], ap.failure == nil else {
        report(2, name, passed: false, since: mark, vcpus: vcpus, machine: machine, logged: 0) { put(" no second CPU") }
        return
    }
    let timerBefore = ap.timerExits
    let fastBefore = ap.fastFaults
    let catchUpsBefore = machine.cpus.remoteCatchUps.load(ordering: .relaxed)
    var ok = startOnCPU1(machine, .write, base: base + first * 4096, count: count)
    var harvests = 0
    var missing = 0
    var logged = 0
    do throws(SLATError) {
        _ = try machine.mmu.getAndClearDirtyLog(memslot: slot)      // what came before
        for _ in 0..<3 {
            ok = letCPU1Run(passes: 5) && ok
            clearDirtyBitsBehindSLAT(machine, base: base, pages: first + count)
            let log = try machine.mmu.getAndClearDirtyLog(memslot: slot)
            logged += bitCount(log)
            for page in first..<(first + count) where !isMarked(log, page) { missing += 1 }
            harvests += 1
        }
    } catch {
        put("harvest failed: "); put(describe(error)); put("\n")
        ok = false
    }
    let result = stopCPU1(machine, ap)
    report(2, name, passed: ok && result == 0 && missing == 0 && harvests == 3, since: mark, vcpus: vcpus,
           machine: machine, logged: logged) {
        field("cpu", 1); field("pages", Int(count)); field("harvests", harvests); field("missing", missing)
        field("cpu1_fast", ap.fastFaults - fastBefore); field("cpu1_timer_exits", ap.timerExits - timerBefore)
        field("catch_up_invept", machine.cpus.remoteCatchUps.load(ordering: .relaxed) - catchUpsBefore)
    }
}

/// Scenario 3: clear-young / test-young against the accessed bits the CPU sets.
func aging(_ machine: Machine, _ vcpu: VCPU) {
    let mark = Mark([vcpu], machine)
    let seed: UInt64 = 0x5400_0000
    var ok = vcpu.command(.stamp, base: Layout.agingGPA, count: Layout.agingPages, seed: seed)
    let touched = pages(Layout.agingPages) { $0 % 4 == 0 }
    var youngAfterClear = -1
    var youngTouched = 0
    var youngUntouched = 0
    var clearedYoung = false
    func hostRange(_ page: UInt64) -> HostVirtualRange {
        HostVirtualRange(start: HostVirtualAddress(Layout.agingHost + page * 4096), size: 4096)
    }
    do throws(SLATError) {
        let slotRange = HostVirtualRange(start: HostVirtualAddress(Layout.agingHost), size: Layout.agingPages * 4096)
        clearedYoung = try machine.mmu.clearYoung(slotRange, context: vcpu.context)
        // Clear-young does not flush (KVM's clear_flush_young without the
        // flush): a translation the CPU still caches would hide an access.
        // The VMM flushes here so that every access below walks the EPT.
        machine.tlb.invalidateAll()
        youngAfterClear = 0
        for page in 0..<Layout.agingPages where try machine.mmu.testYoung(hostRange(page), context: vcpu.context) {
            youngAfterClear += 1
        }
        ok = ok && vcpu.command(.touch, base: Layout.agingGPA, count: UInt64(touched.count), stride: 4 * 4096)
        for page in 0..<Layout.agingPages {
            let young = try machine.mmu.testYoung(hostRange(page), context: vcpu.context)
            if page % 4 == 0 { youngTouched += young ? 1 : 0 } else { youngUntouched += young ? 1 : 0 }
        }
    } catch {
        put("aging failed: "); put(describe(error)); put("\n")
        ok = false
    }
    report(3, "aging", passed: ok && clearedYoung && youngAfterClear == 0 && youngTouched == touched.count
           && youngUntouched == 0, since: mark, vcpus: [vcpu], machine: machine, logged: 0) {
        field("touched", touched.count); field("young_touched", youngTouched); field("young_untouched", youngUntouched)
        field("young_after_clear", youngAfterClear)
    }
}

/// Scenario 4: remap under the running guest (old frames poisoned after the
/// flush), then a zap by an mmu-notifier-style unmap.
func remapAndZap(_ machine: Machine, _ vcpu: VCPU) {
    var mark = Mark([vcpu], machine)
    let seed: UInt64 = 0x5400_0000      // the stamps of scenario 3
    let moved: UInt64 = 64
    // The guest reads every page: its TLB now holds their translations.
    var ok = vcpu.command(.verify, base: Layout.agingGPA, count: Layout.agingPages, seed: seed)
    let before = Int(truncatingIfNeeded: vcpu.registers.pointee.rax)
    // Migrate the first 64 pages: copy, remap (the notifier zaps and
    // flushes), then poison the old frames.
    UnsafeMutableRawPointer(bitPattern: UInt(Layout.remapTarget))!.copyMemory(
        from: UnsafeRawPointer(bitPattern: UInt(Layout.agingHost))!, byteCount: Int(moved * 4096))
    do throws(SLATError) {
        try machine.guestMemory.hostPages.remap(
            HostVirtualRange(start: HostVirtualAddress(Layout.agingHost), size: moved * 4096),
            to: HostFrameNumber(Layout.remapTarget >> 12))
    } catch {
        put("remap failed: "); put(describe(error)); put("\n")
        ok = false
    }
    for page in 0..<moved {
        setHostWord(Layout.agingHost + page * 4096, 0xdead_beef)
        setHostWord(Layout.agingHost + page * 4096 + 0xffc, 0xdead_beef)
    }
    let faultsBefore = vcpu.slowFaults
    ok = ok && vcpu.command(.verify, base: Layout.agingGPA, count: Layout.agingPages, seed: seed)
    let after = Int(truncatingIfNeeded: vcpu.registers.pointee.rax)
    let refaults = vcpu.slowFaults - faultsBefore
    var wrongOutput = 0
    for page in 0..<moved {
        let output = translation(machine, Layout.agingGPA + page * 4096)?.output.rawValue
        if output != Layout.remapTarget + page * 4096 { wrongOutput += 1 }
    }
    report(4, "remap", passed: ok && before == 0 && after == 0 && wrongOutput == 0 && refaults == Int(moved),
           since: mark, vcpus: [vcpu], machine: machine, logged: 0) {
        field("moved", Int(moved)); field("guest_mismatches", after); field("refaults", refaults)
        field("wrong_output", wrongOutput)
        if after != 0 { hexField("first_bad", vcpu.registers.pointee.rbx) }
    }

    // Zap: the host unmaps pages 64..127 (an invalidation event SLAT's
    // notifier handles), then maps the same frames again (no event).
    mark = Mark([vcpu], machine)
    let zapStart = Layout.agingHost + moved * 4096
    var present = 0
    do throws(SLATError) {
        let range = HostVirtualRange(start: HostVirtualAddress(zapStart), size: moved * 4096)
        try machine.guestMemory.hostPages.unmap(range)
        for page in 0..<moved where translation(machine, Layout.agingGPA + (moved + page) * 4096) != nil { present += 1 }
        try machine.guestMemory.hostPages.map(HostVirtualAddress(zapStart), to: HostFrameNumber(zapStart >> 12),
                                              count: moved)
    } catch {
        put("zap failed: "); put(describe(error)); put("\n")
        ok = false
    }
    let zapFaultsBefore = vcpu.slowFaults
    ok = ok && vcpu.command(.verify, base: Layout.agingGPA, count: Layout.agingPages, seed: seed)
    let zapMismatches = Int(truncatingIfNeeded: vcpu.registers.pointee.rax)
    let zapRefaults = vcpu.slowFaults - zapFaultsBefore
    report(4, "zap", passed: ok && present == 0 && zapMismatches == 0 && zapRefaults == Int(moved),
           since: mark, vcpus: [vcpu], machine: machine, logged: 0) {
        field("zapped", Int(moved)); field("still_present", present); field("refaults", zapRefaults)
        field("guest_mismatches", zapMismatches)
    }
}

// MARK: Scenario 4 on a running guest

/// The pages CPU 1's guest watches (slot 6, stamped by scenario 3).
enum Watch {
    static let first: UInt64 = 192
    static let pages: UInt64 = 16
    static let seed: UInt64 = 0x5400_0000
    static let firstGPA = Layout.agingGPA + first * 4096
}

/// CPU 1's guest loops until the host writes its mailbox (slot 6, page 255,
/// +0x100); +0x104 is its heartbeat, bumped once per pass.
enum Mailbox {
    static let gpa = Layout.agingGPA + 255 * 4096 + 0x100
    static let host = Layout.agingHost + 255 * 4096 + 0x100
    static var heartbeat: UInt32 { hostWord(host + 4) }
}

/// Starts `op` on CPU 1's guest; returns once it has made 3 passes.
func startOnCPU1(_ machine: Machine, _ op: GuestOp, base: UInt64, count: UInt64, seed: UInt64 = 0) -> Bool {
    setHostWord(Mailbox.host, 0)
    setHostWord(Mailbox.host + 4, 0)
    machine.apTaskBase.store(base, ordering: .relaxed)
    machine.apTaskCount.store(count, ordering: .relaxed)
    machine.apTaskSeed.store(seed, ordering: .relaxed)
    machine.apTask.store(op.rawValue, ordering: .releasing)
    return spin { Mailbox.heartbeat >= 3 }
}

/// Lets CPU 1's guest make `passes` more passes.
func letCPU1Run(passes: UInt32) -> Bool {
    let beat = Mailbox.heartbeat
    return spin { Mailbox.heartbeat >= beat &+ passes }
}

/// Stops CPU 1's loop; returns its guest's result (-1 on failure).
func stopCPU1(_ machine: Machine, _ ap: VCPU) -> Int {
    let done = machine.apTasksDone.load(ordering: .acquiring)
    setHostWord(Mailbox.host, 1)
    guard spin(until: { machine.apTasksDone.load(ordering: .acquiring) > done }) else { return -1 }
    return ap.apResult
}

/// Waits until `condition` holds, at most `limit` pauses; returns whether it held.
func spin(_ limit: Int = 20_000_000, until condition: () -> Bool) -> Bool {
    var left = limit
    while !condition() {
        if left == 0 { return false }
        left -= 1
        hv_pause()
    }
    return true
}

/// The BSP remaps pages that CPU 1's guest is reading in a loop (never
/// leaving guest mode except for the VMX-preemption timer), then poisons
/// the old frames: the TLB's INVEPT and its cross-CPU catch-up must keep
/// the guest from ever reading the poison.
func remapUnderRunningGuest(_ machine: Machine, _ bsp: VCPU, vcpus: [VCPU]) {
    let mark = Mark(vcpus, machine)
    guard let ap = machine.vcpus[1], ap.failure == nil else {
        report(4, "remap-running-guest", passed: false, since: mark, vcpus: vcpus, machine: machine, logged: 0) {
            put(" no second CPU")
        }
        return
    }
    let timerBefore = ap.timerExits
    let catchUpsBefore = machine.cpus.remoteCatchUps.load(ordering: .relaxed)
    // The guest reads every page in a loop: its TLB holds their translations.
    var ok = startOnCPU1(machine, .watch, base: Watch.firstGPA, count: Watch.pages, seed: Watch.seed)
    let firstHost = Layout.agingHost + Watch.first * 4096
    let target = Layout.remapTarget + Watch.first * 4096
    UnsafeMutableRawPointer(bitPattern: UInt(target))!.copyMemory(
        from: UnsafeRawPointer(bitPattern: UInt(firstHost))!, byteCount: Int(Watch.pages * 4096))
    do throws(SLATError) {
        try machine.guestMemory.hostPages.remap(
            HostVirtualRange(start: HostVirtualAddress(firstHost), size: Watch.pages * 4096),
            to: HostFrameNumber(target >> 12))
    } catch {
        put("remap failed: "); put(describe(error)); put("\n")
        ok = false
    }
    for page in 0..<Watch.pages { setHostWord(firstHost + page * 4096, 0xdead_beef) }
    ok = letCPU1Run(passes: 20) && ok
    let passes = Int(Mailbox.heartbeat)
    let mismatches = stopCPU1(machine, ap)
    ok = ok && mismatches >= 0
    var wrongOutput = 0
    for page in 0..<Watch.pages
    where translation(machine, Watch.firstGPA + page * 4096)?.output.rawValue != target + page * 4096 {
        wrongOutput += 1
    }
    report(4, "remap-running-guest", passed: ok && mismatches == 0 && wrongOutput == 0, since: mark, vcpus: vcpus,
           machine: machine, logged: 0) {
        field("cpu", 1); field("pages", Int(Watch.pages)); field("guest_passes", passes)
        field("guest_mismatches", mismatches); field("wrong_output", wrongOutput)
        field("ap_timer_exits", ap.timerExits - timerBefore)
        field("catch_up_invept", machine.cpus.remoteCatchUps.load(ordering: .relaxed) - catchUpsBefore)
    }
}

// MARK: Scenario 5: an EPT misconfiguration

/// Exit 49 is reported and the vCPU is never entered again. SLAT never
/// writes a misconfigured entry, so one is written behind its back: a 2 MiB
/// leaf that is writable but not readable (SDM Vol. 3C, "EPT
/// Misconfigurations") over the MMIO block, which no memslot covers. SLAT's
/// format says why it is misconfigured; the entry is removed afterwards.
/// Runs last: the BSP's vCPU stays stopped.
func misconfiguration(_ machine: Machine, _ vcpu: VCPU) {
    let mark = Mark([vcpu], machine)
    let bad: UInt64 = Layout.remapTarget | 0x80 | 0x2
    let slatSays = machine.mmu.format.isMisconfigured(bad, atLevel: 1)
    guard let entry = entryPointer(machine, Layout.mmioGPA, level: 1), entry.pointee == 0 else {
        report(5, "ept-misconfiguration", passed: false, since: mark, vcpus: [vcpu], machine: machine, logged: 0) {
            put(" no empty 2 MiB entry over the MMIO block")
        }
        return
    }
    let misconfigurationsBefore = vcpu.misconfigurations
    entry.pointee = bad
    let ran = vcpu.command(.touch, base: Layout.mmioGPA + 0x1000, count: 1)
    let exits = Mark([vcpu], machine).exits - mark.exits
    entry.pointee = 0
    // An entry changed behind SLAT's back: flush every context (all-context INVEPT).
    machine.tlb.invalidateAllContexts()
    let reported = vcpu.misconfigurations - misconfigurationsBefore
    report(5, "ept-misconfiguration", passed: !ran && reported == 1 && exits == 1 && slatSays, since: mark,
           vcpus: [vcpu], machine: machine, logged: 0) {
        hexField("entry", bad); field("slat_misconfigured", slatSays ? 1 : 0); field("reported", reported)
        put(" vcpu_stopped="); put(vcpu.failure == nil ? "no" : "yes")
    }
}

// MARK: APs

/// INIT-SIPI-SIPI to every other CPU (local APIC ICR, all excluding self),
/// then waits for the APs to enter VMX. Returns how many did.
func startAPs(_ machine: Machine) -> Int {
    UnsafeMutableRawPointer(bitPattern: UInt(Layout.trampoline))!.copyMemory(
        from: UnsafeRawPointer(bitPattern: UInt(hv_ap_trampoline_start()))!, byteCount: Int(hv_ap_trampoline_size()))
    let icrLow = UnsafeMutablePointer<UInt32>(bitPattern: UInt(0xfee0_0300))!
    func wait(_ iterations: Int) { for _ in 0..<iterations { hv_pause() } }
    icrLow.pointee = 0x000c_4500                 // INIT, all excluding self
    wait(20_000)
    icrLow.pointee = 0x000c_4600 | UInt32(Layout.trampoline >> 12)   // SIPI
    wait(2_000)
    icrLow.pointee = 0x000c_4600 | UInt32(Layout.trampoline >> 12)
    // Wait until the count has not changed for a while.
    var last = -1
    var stable = 0
    while stable < 40 {
        wait(50_000)
        let now = machine.startedAPs.load(ordering: .acquiring)
        if now == last { stable += 1 } else { stable = 0; last = now }
        if now == maximumCPUs - 1 { break }
    }
    return machine.startedAPs.load(ordering: .acquiring)
}

/// An AP: VMX, its vCPU, scenario 1 on its share, then it parks (start.S).
@_cdecl("hypervisor_ap_main")
public func hypervisorAPMain(_ index: UInt32) {
    guard let machine = theMachine, Int(index) < maximumCPUs else { return }
    let vcpu = VCPU(index: Int(index), machine: machine)
    guard vcpu.enterVMX(), vcpu.runUntilCall() else { return }
    machine.vcpus[Int(index)] = vcpu
    machine.startedAPs.add(1, ordering: .releasing)
    while !machine.go.load(ordering: .acquiring) { hv_pause() }
    vcpu.apResult = demandPagingGuest(vcpu)
    machine.finishedAPs.add(1, ordering: .releasing)
    // CPU 1 then runs the commands the BSP gives it while it changes the
    // tables under the running guest (scenarios 2 and 4).
    guard index == 1 else { return }
    while true {
        while machine.apTask.load(ordering: .acquiring) == 0 { hv_pause() }
        let op = GuestOp(rawValue: machine.apTask.exchange(0, ordering: .acquiringAndReleasing)) ?? .halt
        let ok = vcpu.command(op, base: machine.apTaskBase.load(ordering: .relaxed),
                              count: machine.apTaskCount.load(ordering: .relaxed),
                              seed: machine.apTaskSeed.load(ordering: .relaxed), mailbox: Mailbox.gpa)
        vcpu.apResult = ok ? Int(truncatingIfNeeded: vcpu.registers.pointee.rax & 0xffff_ffff) : -1
        machine.apTasksDone.add(1, ordering: .releasing)
    }
}
