// The test guest: runs at EL1 on both vCPUs with stage 1 off (addresses
// are IPAs), drives the scenarios through hypercalls and checks every page
// it stamped. No allocation, no runtime: raw loads and stores.

let slot1: UInt64 = 0x4040_0000, slot2: UInt64 = 0x4080_0000, slot3: UInt64 = 0x40C0_0000
let mmio: UInt64 = 0x1000_0000
// Shared words (slot 0).
let barrierWord: UInt64 = 0x4018_0000
let onlineWord: UInt64 = 0x4018_0008
let targetWord: UInt64 = 0x4018_0010
let doneWord: UInt64 = 0x4018_0018
let failureWord: UInt64 = 0x4018_0020
let compactedWord: UInt64 = 0x4018_0028
/// Mapped by the hypervisor itself (no memslot), page by page, then as a block.
let compactionRegion: UInt64 = 0x4200_0000
/// Per-vCPU lists of the pages written while dirty logging: count, then IPAs.
let dirtyLists: UInt64 = 0x401A_0000
/// Generation of each slot-1 page's stamp (one byte per page).
let generations: UInt64 = 0x401C_0000
let poison: UInt64 = 0xBAD0_BAD0_BAD0_BAD0

@inline(__always) func stamp(_ ipa: UInt64, _ generation: UInt64) -> UInt64 { (ipa >> 12) &* 0x9E37_79B9_7F4A_7C15 &+ generation }
@inline(__always) func hostStamp(_ ipa: UInt64) -> UInt64 { (ipa >> 12) &* 0xC2B2_AE3D_27D4_EB4F ^ 0x4057 }

/// One vCPU's view: its number, its barrier count and its failures.
struct VCPU {
    let id: UInt64
    var episodes: UInt64 = 0
    var failures: UInt64 = 0

    /// Both vCPUs meet here.
    mutating func barrier() {
        episodes += 1
        _ = guest_atomic_add(barrierWord, 1)
        while guest_atomic_load(barrierWord) < 2 * episodes {}
    }

    mutating func fail(_ code: UInt64, _ address: UInt64, _ value: UInt64) {
        failures += 1
        if failures <= 4 { _ = guest_hvc(0xC600_0009, code, address, value) }
    }

    /// Stamps the page: word 0 and word 511.
    func write(_ ipa: UInt64, _ generation: UInt64) {
        guest_store(ipa, stamp(ipa, generation))
        guest_store(ipa + 0xFF8, ~stamp(ipa, generation))
    }

    mutating func verify(_ ipa: UInt64, _ generation: UInt64, code: UInt64) {
        let first = guest_load(ipa)
        let last = guest_load(ipa + 0xFF8)
        if first != stamp(ipa, generation) || last != ~stamp(ipa, generation) { fail(code, ipa, first) }
    }

    /// Adds this vCPU's failures to the shared count at the end of a
    /// scenario; vCPU 0 then reports the total.
    mutating func finish(_ scenario: UInt64) {
        _ = guest_atomic_add(failureWord, failures)
        failures = 0
        barrier()
        if id == 0 {
            let total = guest_atomic_load(failureWord)
            guest_atomic_store(failureWord, 0)
            _ = guest_hvc(0xC600_0002, scenario, total, 0)
        }
        barrier()
    }
}

@_cdecl("guest_main")
func guestMain(_ id: UInt64) -> Never {
    var vcpu = VCPU(id: id)
    if id == 0 {
        // Start vCPU 1 through PSCI, as an operating system would.
        let version = guest_hvc(0x8400_0000, 0, 0, 0)
        if version >> 16 != 1 { vcpu.fail(100, 0, version) }
        let result = guest_hvc(0xC400_0003, 1, guest_entry_address(), 1)
        if result != 0 { vcpu.fail(101, 0, result) }
        while guest_atomic_load(onlineWord) == 0 {}
    } else {
        guest_atomic_store(onlineWord, 1)
    }
    demandPaging(&vcpu)
    dirtyLogging(&vcpu)
    remap(&vcpu)
    unmapAndPermissions(&vcpu)
    deviceAccess(&vcpu)
    compaction(&vcpu)
    if id == 0 {
        _ = guest_smc(0x8400_0008, 0, 0, 0)         // SYSTEM_OFF
    }
    while true {}
}

func pages(_ base: UInt64, _ size: UInt64, _ body: (UInt64, UInt64) -> Void) {
    var index: UInt64 = 0
    while index < size >> 12 {
        body(index, base + index << 12)
        index += 1
    }
}

/// 1: both vCPUs fault in three memslots at once (in opposite orders),
/// each stamping its half of the pages, then verify all of them.
func demandPaging(_ vcpu: inout VCPU) {
    if vcpu.id == 0 { _ = guest_hvc(0xC600_0001, 1, 0, 0) }
    vcpu.barrier()
    var step: UInt64 = 0
    while step < 3 {
        let base = slotInOrder(step, reversed: vcpu.id == 1)
        pages(base, base == slot3 ? 0x10_0000 : 0x40_0000) { index, ipa in if index & 1 == vcpu.id { vcpu.write(ipa, 1) } }
        step += 1
    }
    vcpu.barrier()
    step = 0
    while step < 3 {
        let base = slotInOrder(step, reversed: vcpu.id == 1)
        pages(base, base == slot3 ? 0x10_0000 : 0x40_0000) { _, ipa in vcpu.verify(ipa, 1, code: 1) }
        step += 1
    }
    vcpu.finish(1)
}

/// Slots 1, 2, 3 in order, or 3, 2, 1.
func slotInOrder(_ step: UInt64, reversed: Bool) -> UInt64 {
    switch reversed ? 2 - step : step {
    case 0: return slot1
    case 1: return slot2
    default: return slot3
    }
}

/// 2: dirty logging rounds on slot 1 (eager split at enable), then
/// disabled: the next writes bring 2 MiB blocks back (anchored merge).
func dirtyLogging(_ vcpu: inout VCPU) {
    if vcpu.id == 0 {
        _ = guest_hvc(0xC600_0001, 2, 0, 0)
        pages(slot1, 0x40_0000) { index, _ in
            UnsafeMutablePointer<UInt8>(bitPattern: UInt(generations + index))!.pointee = 1
        }
        _ = guest_hvc(0xC600_0003, 1, 0, 0)
    }
    vcpu.barrier()
    let list = dirtyLists + vcpu.id * 0x1_0000
    var round: UInt64 = 1
    while round <= 3 {
        var count: UInt64 = 0
        pages(slot1, 0x40_0000) { index, ipa in
            let chosen = (index &* 0x9E37_79B9_7F4A_7C15 &+ round &* 0xBF58_476D_1CE4_E5B9) >> 59 < 6
            if index & 1 == vcpu.id && chosen {
                vcpu.write(ipa, round + 1)
                UnsafeMutablePointer<UInt8>(bitPattern: UInt(generations + index))!.pointee = UInt8(round + 1)
                count += 1
                guest_store(list + count * 8, ipa)
            }
        }
        guest_store(list, count)
        vcpu.barrier()
        if vcpu.id == 0 {
            let missing = guest_hvc(0xC600_0004, 1, round, 0)
            if missing != 0 { vcpu.fail(2, round, missing) }
        }
        vcpu.barrier()
        pages(slot1, 0x40_0000) { index, ipa in
            let generation = UInt64(UnsafeMutablePointer<UInt8>(bitPattern: UInt(generations + index))!.pointee)
            vcpu.verify(ipa, generation, code: 3)
        }
        vcpu.barrier()
        round += 1
    }
    if vcpu.id == 0 { _ = guest_hvc(0xC600_0005, 1, 0, 0) }
    vcpu.barrier()
    // Logging is off: writes fault once per 2 MiB block, which merges.
    pages(slot1, 0x40_0000) { index, ipa in if index & 1 == vcpu.id { vcpu.write(ipa, 9) } }
    vcpu.barrier()
    pages(slot1, 0x40_0000) { _, ipa in vcpu.verify(ipa, 9, code: 4) }
    vcpu.finish(2)
}

/// 3: vCPU 0 has pages moved to new host frames while vCPU 1 keeps reading
/// them; the old frame is poisoned, so reading poison is a stale translation.
func remap(_ vcpu: inout VCPU) {
    if vcpu.id == 0 { _ = guest_hvc(0xC600_0001, 3, 0, 0) }
    vcpu.barrier()
    if vcpu.id == 0 {
        var index: UInt64 = 0
        while index < 12 {
            let ipa = index < 8 ? slot2 + ((index &* 131 + 7) % 1024) << 12 : slot3 + ((index &* 37) % 256) << 12
            guest_atomic_store(targetWord, ipa)
            var reads = 0
            while reads < 200 {
                vcpu.verify(ipa, 1, code: 5)
                reads += 1
            }
            let result = guest_hvc(0xC600_0006, ipa, 0, 0)
            if result != 0 { vcpu.fail(6, ipa, result) }
            let after = guest_load(ipa)
            if after == poison { vcpu.fail(7, ipa, after) }
            vcpu.verify(ipa, 1, code: 8)
            reads = 0
            while reads < 200 {
                vcpu.verify(ipa, 1, code: 8)
                reads += 1
            }
            index += 1
        }
        guest_atomic_store(doneWord, 1)
    } else {
        while guest_atomic_load(doneWord) == 0 {
            let ipa = guest_atomic_load(targetWord)
            if ipa == 0 { continue }
            let value = guest_load(ipa)
            if value == poison {
                vcpu.fail(9, ipa, value)
            } else if value != stamp(ipa, 1) {
                vcpu.fail(10, ipa, value)
            }
        }
    }
    vcpu.finish(3)
}

/// 4: slot 3 write-protected (every write must fault, then succeed), then
/// aged (every access must take an access-flag fault), slot 2 unmapped (every page must fault back in, showing what the host wrote
/// while it was unmapped).
func unmapAndPermissions(_ vcpu: inout VCPU) {
    if vcpu.id == 0 {
        _ = guest_hvc(0xC600_0001, 4, 0, 0)
        _ = guest_hvc(0xC600_000A, 0, 0, 0)
        _ = guest_hvc(0xC600_0007, slot3, 0x10_0000, 0)
    }
    vcpu.barrier()
    pages(slot3, 0x10_0000) { index, ipa in
        if index & 1 == vcpu.id {
            vcpu.verify(ipa, 1, code: 11)
            vcpu.write(ipa, 2)
        }
    }
    vcpu.barrier()
    pages(slot3, 0x10_0000) { _, ipa in vcpu.verify(ipa, 2, code: 12) }
    vcpu.barrier()
    // Aged: every page's next access takes an access-flag fault.
    if vcpu.id == 0 { _ = guest_hvc(0xC600_000D, slot3, 0x10_0000, 0) }
    vcpu.barrier()
    pages(slot3, 0x10_0000) { _, ipa in vcpu.verify(ipa, 2, code: 22) }
    vcpu.barrier()
    if vcpu.id == 0 { _ = guest_hvc(0xC600_0008, slot2, 0x40_0000, 0) }
    vcpu.barrier()
    // Both vCPUs read every page, so they fault the same blocks at once.
    pages(slot2, 0x40_0000) { _, ipa in
        vcpu.verify(ipa, 1, code: 13)
        let word = guest_load(ipa + 8)
        if word != hostStamp(ipa) { vcpu.fail(14, ipa, word) }
    }
    vcpu.finish(4)
}

/// 5: the emulated device: ID register, a write read back, sign extension.
func deviceAccess(_ vcpu: inout VCPU) {
    if vcpu.id == 0 { _ = guest_hvc(0xC600_0001, 5, 0, 0) }
    vcpu.barrier()
    let id = guest_load32(mmio)
    if id != 0x534C_4154 { vcpu.fail(15, mmio, UInt64(id)) }
    if vcpu.id == 0 {
        guest_store(mmio + 8, 0x8123_4567_89AB_CDEF)
        let back = guest_load(mmio + 8)
        if back != 0x8123_4567_89AB_CDEF { vcpu.fail(16, mmio + 8, back) }
        let signed = guest_load16_signed(mmio + 8)
        if signed != Int64(bitPattern: 0xFFFF_FFFF_FFFF_CDEF) { vcpu.fail(17, mmio + 8, UInt64(bitPattern: signed)) }
    }
    vcpu.finish(5)
}

/// 6: the hypervisor compacts a region it mapped page by page into one
/// 2 MiB block at new frames (anchored merge) while vCPU 1 keeps reading
/// it; the old frames are poisoned, so reading poison is a stale translation.
func compaction(_ vcpu: inout VCPU) {
    if vcpu.id == 0 {
        _ = guest_hvc(0xC600_0001, 6, 0, 0)
        _ = guest_hvc(0xC600_000B, 0, 0, 0)
    }
    vcpu.barrier()
    pages(compactionRegion, 0x20_0000) { index, ipa in if index & 1 == vcpu.id { vcpu.write(ipa, 1) } }
    vcpu.barrier()
    if vcpu.id == 0 {
        pages(compactionRegion, 0x20_0000) { _, ipa in vcpu.verify(ipa, 1, code: 18) }
        _ = guest_hvc(0xC600_000C, 0, 0, 0)
        var pass = 0
        while pass < 3 {
            pages(compactionRegion, 0x20_0000) { _, ipa in vcpu.verify(ipa, 1, code: 19) }
            pass += 1
        }
        guest_atomic_store(compactedWord, 1)
    } else {
        // 64 pages, so their translations stay in the TLB between passes
        // (QEMU's starts with 256 entries and grows only when flushed).
        while guest_atomic_load(compactedWord) == 0 {
            pages(compactionRegion + 0x4_0000, 0x4_0000) { _, ipa in
                let value = guest_load(ipa)
                if value == poison {
                    vcpu.fail(20, ipa, value)
                } else if value != stamp(ipa, 1) {
                    vcpu.fail(21, ipa, value)
                }
            }
        }
    }
    vcpu.finish(6)
}
