import SLATArm64
import SLATArm64Hardware
import SLATCore
import Synchronization
import Testing

/// Records the instructions instead of issuing them.
final class RecordedInstructions: AArch64Instructions {
    let log = Mutex<[String]>([])
    let vttbr = Mutex<UInt64>(0)
    let ctr: UInt64
    init(ctr: UInt64 = 0) { self.ctr = ctr }
    func record(_ line: String) { log.withLock { $0.append(line) } }
    var lines: [String] { log.withLock { $0 } }

    func readVTTBR() -> UInt64 { vttbr.withLock { $0 } }
    func writeVTTBR(_ value: UInt64) { vttbr.withLock { $0 = value }; record("MSR VTTBR_EL2, \(hex(value)); ISB") }
    func dsbInnerShareableStores() { record("DSB ISHST") }
    func dsbInnerShareable() { record("DSB ISH") }
    func dsbFullSystem() { record("DSB SY") }
    func isb() { record("ISB") }
    func tlbiIPAS2E1IS(_ operand: UInt64) { record("TLBI IPAS2E1IS, \(hex(operand))") }
    func tlbiRIPAS2E1IS(_ operand: UInt64) { record("TLBI RIPAS2E1IS, \(hex(operand))") }
    func tlbiVMALLE1IS() { record("TLBI VMALLE1IS") }
    func tlbiVMALLS12E1IS() { record("TLBI VMALLS12E1IS") }
    func dcCVAC(_ virtualAddress: UInt64) { record("DC CVAC, \(hex(virtualAddress))") }
    func dcCIVAC(_ virtualAddress: UInt64) { record("DC CIVAC, \(hex(virtualAddress))") }
    func icIALLUIS() { record("IC IALLUIS") }
    func readCTR() -> UInt64 { ctr }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

@Suite("AArch64 TLB and cache maintenance sequences")
struct AArch64HardwareSequenceTests {
    static let vttbr: UInt64 = 5 << 48 | 0x8000_0000

    func tlb(ttl: Bool = true, range: Bool = false, recorder: RecordedInstructions) throws -> AArch64StageTwoTLB<RecordedInstructions> {
        recorder.vttbr.withLock { $0 = Self.vttbr }
        return AArch64StageTwoTLB(translationTableBase: Self.vttbr, format: try StageTwoFormat(), hasLevelHints: ttl,
                                  hasRangeInvalidation: range, instructions: recorder)
    }

    @Test("An IPA invalidation of a 2 MiB block is DSB ISHST; TLBI IPAS2E1IS with TTL 4 KiB/level 2; DSB ISH; TLBI VMALLE1IS; DSB ISH; ISB")
    func ipaInvalidationSequenceWithLevelHint() throws {
        let recorder = RecordedInstructions()
        // The hint carries the Arm ARM level: a 2 MiB block is level 2 (height 1).
        let block = try StageTwoFormat().leafLevel(ofHeight: 1)
        #expect(block.architectural == 2)
        try tlb(recorder: recorder).invalidate(address: GuestPhysicalAddress(0x4020_0000), level: block)
        let ttl: UInt64 = (0b01 << 2 | 2) << 44
        #expect(recorder.lines == ["DSB ISHST", "TLBI IPAS2E1IS, \(hex(ttl | 0x4020_0000 >> 12))", "DSB ISH",
                                   "TLBI VMALLE1IS", "DSB ISH", "ISB"])
    }

    @Test("Without FEAT_TTL the IPA operand carries no level hint")
    func ipaInvalidationWithoutLevelHints() throws {
        let recorder = RecordedInstructions()
        try tlb(ttl: false, recorder: recorder).invalidate(address: GuestPhysicalAddress(0x4000_3000),
                                                           level: LeafLevel(height: 0, architectural: 3))
        #expect(recorder.lines[1] == "TLBI IPAS2E1IS, \(hex(0x4000_3000 >> 12))")
    }

    @Test("A VMID invalidation is DSB ISHST; TLBI VMALLS12E1IS; DSB ISH; ISB, with another VM's VTTBR switched and restored")
    func vmidInvalidationSwitchesVTTBR() throws {
        let recorder = RecordedInstructions()
        let tlb = try tlb(recorder: recorder)
        recorder.vttbr.withLock { $0 = 0x1234_0000 }
        tlb.invalidateAll()
        #expect(recorder.lines == ["MSR VTTBR_EL2, \(hex(Self.vttbr)); ISB", "DSB ISHST", "TLBI VMALLS12E1IS", "DSB ISH", "ISB",
                                   "MSR VTTBR_EL2, 0x12340000; ISB"])
    }

    @Test("With FEAT_TLBIRANGE a 2 MiB + 4 KiB range is one single-page TLBI and one RIPAS2E1IS covering 512 pages")
    func rangeInvalidationUsesRangeOperands() throws {
        let recorder = RecordedInstructions()
        try tlb(range: true, recorder: recorder).invalidate(
            range: GuestPhysicalRange(start: GuestPhysicalAddress(0x4000_0000), size: (2 << 20) + 0x1000))
        // 513 pages: one page, then 512 = 8 units of 2^(5·1+1) = 64 pages (SCALE 1, NUM 7).
        let rangeOperand: UInt64 = 0b01 << 46 | 1 << 44 | 7 << 39 | (0x4000_1000 >> 12)
        #expect(recorder.lines == ["DSB ISHST", "TLBI IPAS2E1IS, \(hex(0x4000_0000 >> 12))",
                                   "TLBI RIPAS2E1IS, \(hex(rangeOperand))", "DSB ISH", "TLBI VMALLE1IS", "DSB ISH", "ISB"])
    }

    @Test("Range operands cover exactly the pages asked for", arguments: [1, 2, 3, 64, 511, 512, 513, 100_000, 3_000_000] as [UInt64])
    func rangeOperandsCoverExactly(_ pages: UInt64) {
        var covered: UInt64 = 0
        var next: UInt64 = 0x100
        AArch64TLBIOperand.forEachRangeOperand(firstPage: 0x100, pages: pages, granule: .size4KiB) { operand, single in
            let base = single ? operand & (1 << 40 - 1) : operand & (1 << 37 - 1)
            let count = single ? 1 : (operand >> 39 & 0x1F + 1) << (5 * (operand >> 44 & 3) + 1)
            #expect(base == next)
            next += count
            covered += count
        }
        #expect(covered == pages)
    }

    @Test("With FEAT_LPA2 range operands start on 64 KiB boundaries, their base in 64 KiB units, and cover exactly the pages asked for",
          arguments: [(TranslationGranule.size4KiB, UInt64(0x40001)), (.size4KiB, 0x40010), (.size16KiB, 0x10003)],
          [1, 17, 513, 100_000] as [UInt64])
    func lpa2RangeOperandsStartOn64KiBBoundaries(_ start: (TranslationGranule, UInt64), _ pages: UInt64) {
        let (granule, firstPage) = start
        let pagesPer64KiB = UInt64(1) << (16 - granule.shift)
        var next = firstPage
        AArch64TLBIOperand.forEachRangeOperand(firstPage: firstPage, pages: pages, granule: granule, lpa2: true) { operand, single in
            if single {
                #expect((operand & (1 << 40 - 1)) >> UInt64(granule.shift - 12) == next)
                next += 1
            } else {
                let base = (operand & (1 << 37 - 1)) * pagesPer64KiB
                #expect(base == next, "range operand base \(base) where page \(next) was next")
                #expect(base % pagesPer64KiB == 0)
                next += (operand >> 39 & 0x1F + 1) << (5 * (operand >> 44 & 3) + 1)
            }
        }
        #expect(next == firstPage + pages)
    }

    @Test("Without range invalidation a large range falls back to the VMID-wide sequence")
    func largeRangeWithoutRangeInvalidationFlushesVMID() throws {
        let recorder = RecordedInstructions()
        try tlb(recorder: recorder).invalidate(range: GuestPhysicalRange(start: GuestPhysicalAddress(0), size: 4 << 20))
        #expect(recorder.lines == ["DSB ISHST", "TLBI VMALLS12E1IS", "DSB ISH", "ISB"])
    }

    @Test("The data-cache clean is DC CIVAC per CTR_EL0 line over the range, then DSB SY; the icache invalidation IC IALLUIS; DSB ISH; ISB")
    func cacheMaintenanceSequences() {
        let recorder = RecordedInstructions()
        // DminLine = 4: 64-byte lines; DIC clear.
        let caches = AArch64CacheMaintenance(forcesWriteBack: false, ctr: 4 << 16, virtualOffset: 0x1000_0000_0000,
                                             instructions: recorder)
        #expect(caches.dataCacheLineSize == 64 && !caches.instructionCacheIsCoherent)
        caches.cleanDataCacheToPointOfCoherency(HostPhysicalAddress(0x2030), size: 0x60)
        caches.invalidateInstructionCache(HostPhysicalAddress(0x2000), size: 0x1000)
        #expect(recorder.lines == ["DC CIVAC, 0x100000002000", "DC CIVAC, 0x100000002040", "DC CIVAC, 0x100000002080",
                                   "DSB SY", "IC IALLUIS", "DSB ISH", "ISB"])
    }
}
