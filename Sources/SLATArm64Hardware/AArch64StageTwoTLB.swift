import SLATArm64
import SLATCore

/// The TLB of one VM (one VMID) on AArch64 hardware: SLATCore's `TLB`
/// as the exact instruction sequences KVM/arm64 uses.
///
/// | method | sequence |
/// |---|---|
/// | ``invalidate(address:level:)`` | `DSB ISHST; TLBI IPAS2E1IS (TTL hint with FEAT_TTL); DSB ISH; TLBI VMALLE1IS; DSB ISH; ISB` |
/// | ``invalidate(range:)`` | `DSB ISHST;` `TLBI RIPAS2E1IS` per range chunk with FEAT_TLBIRANGE, else `TLBI IPAS2E1IS` per granule page (past ``maximumPageInvalidations`` pages: ``invalidateAll()``); `DSB ISH; TLBI VMALLE1IS; DSB ISH; ISB` |
/// | ``invalidateAll()`` | `DSB ISHST; TLBI VMALLS12E1IS; DSB ISH; ISB` |
///
/// The leading `DSB ISHST` orders the store that changed the entry before
/// the invalidation; an IPA-based invalidation does not remove combined
/// stage 1+2 entries, hence `TLBI VMALLE1IS` after it (Arm ARM D8,
/// "TLB maintenance instructions"; KVM's `__kvm_tlb_flush_vmid_ipa`).
/// The TTL hint carries `LeafLevel/architectural`, the Arm ARM level (a
/// 2 MiB block is level 2).
///
/// The stage-2 TLBIs act on the VMID in `VTTBR_EL2`, so each method loads
/// this VM's ``translationTableBase`` first when another one is loaded and
/// restores it after. Call with interrupts masked at EL2 (the VTTBR switch
/// must not be preempted), from any CPU; the `IS` forms reach every CPU of
/// the inner shareable domain, and the final `DSB ISH` waits for them.
public final class AArch64StageTwoTLB<Instructions: AArch64Instructions>: TLB {
    /// The VM's `VTTBR_EL2` value (root and VMID).
    public let translationTableBase: UInt64
    /// The stage-2 format (granule and level numbering).
    public let format: StageTwoFormat
    /// Whether the CPU has FEAT_TTL (level hints in TLBI operands).
    public let hasLevelHints: Bool
    /// Whether the CPU has FEAT_TLBIRANGE (`TLBI RIPAS2E1IS`).
    public let hasRangeInvalidation: Bool
    /// ``hasRangeInvalidation``: with it a table→block merge invalidates the
    /// block's range rather than the VMID (KVM's `kvm_tlb_flush_vmid_range`).
    public var supportsRangeInvalidation: Bool { hasRangeInvalidation }
    /// Without range invalidation, the most single-page invalidations a
    /// range costs before the whole VMID is invalidated instead.
    public let maximumPageInvalidations: UInt64
    /// The instruction issuer.
    public let instructions: Instructions

    /// A TLB for the VM whose `VTTBR_EL2` is `translationTableBase`.
    public init(translationTableBase: UInt64, format: StageTwoFormat, hasLevelHints: Bool, hasRangeInvalidation: Bool,
                maximumPageInvalidations: UInt64 = 512, instructions: Instructions) {
        self.translationTableBase = translationTableBase
        self.format = format
        self.hasLevelHints = hasLevelHints
        self.hasRangeInvalidation = hasRangeInvalidation
        self.maximumPageInvalidations = maximumPageInvalidations
        self.instructions = instructions
    }

    /// Runs `body` with this VM's VMID loaded in `VTTBR_EL2`.
    @inlinable
    func withVMID(_ body: () -> Void) {
        let previous = instructions.readVTTBR()
        if previous != translationTableBase { instructions.writeVTTBR(translationTableBase) }
        body()
        if previous != translationTableBase { instructions.writeVTTBR(previous) }
    }

    /// `DSB ISH; TLBI VMALLE1IS; DSB ISH; ISB`: completes IPA invalidations
    /// and removes combined stage 1+2 entries.
    @inlinable
    func finishIPAInvalidation() {
        instructions.dsbInnerShareable()
        instructions.tlbiVMALLE1IS()
        instructions.dsbInnerShareable()
        instructions.isb()
    }

    public func invalidate(address: GuestPhysicalAddress, level: LeafLevel?) {
        let operand = AArch64TLBIOperand.ipa(address, level: hasLevelHints ? level?.architectural : nil,
                                             granule: format.granule)
        withVMID {
            instructions.dsbInnerShareableStores()
            instructions.tlbiIPAS2E1IS(operand)
            finishIPAInvalidation()
        }
    }

    public func invalidate(range: GuestPhysicalRange) {
        let shift = UInt64(format.granuleShift)
        let first = range.start.rawValue >> shift
        let last = (range.end.rawValue &+ (1 << shift) &- 1) >> shift
        let pages = last &- first
        if pages == 0 { return }
        if !hasRangeInvalidation && pages > maximumPageInvalidations {
            invalidateAll()
            return
        }
        withVMID {
            instructions.dsbInnerShareableStores()
            if hasRangeInvalidation {
                AArch64TLBIOperand.forEachRangeOperand(firstPage: first, pages: pages, granule: format.granule,
                                                       lpa2: format.lpa2) { operand, single in
                    if single { instructions.tlbiIPAS2E1IS(operand) } else { instructions.tlbiRIPAS2E1IS(operand) }
                }
            } else {
                var page = first
                while page < last {
                    instructions.tlbiIPAS2E1IS(AArch64TLBIOperand.ipa(
                        GuestPhysicalAddress(page << shift), level: nil, granule: format.granule))
                    page &+= 1
                }
            }
            finishIPAInvalidation()
        }
    }

    public func invalidateAll() {
        withVMID {
            instructions.dsbInnerShareableStores()
            instructions.tlbiVMALLS12E1IS()
            instructions.dsbInnerShareable()
            instructions.isb()
        }
    }
}

/// Operand encodings of the stage-2 TLBI instructions (Arm ARM C5,
/// "TLBI IPAS2E1IS" and "TLBI RIPAS2E1IS").
public enum AArch64TLBIOperand {
    /// TTL[3:2] / TG: 0b01 4 KiB, 0b10 16 KiB, 0b11 64 KiB.
    @inlinable
    public static func granuleCode(_ granule: TranslationGranule) -> UInt64 {
        switch granule {
        case .size4KiB: 0b01
        case .size16KiB: 0b10
        case .size64KiB: 0b11
        }
    }

    /// `TLBI IPAS2E1IS` operand: IPA[51:12] in bits 39:0 and, when `level`
    /// (Arm ARM numbering) is 1...3, the TTL hint in bits 47:44 (granule in
    /// TTL[3:2], level in TTL[1:0]); otherwise TTL is 0, "no hint".
    @inlinable
    public static func ipa(_ address: GuestPhysicalAddress, level: Int?, granule: TranslationGranule) -> UInt64 {
        var operand = address.rawValue >> 12 & (1 << 40 - 1)
        if let level, level >= 1 && level <= 3 {
            operand |= (granuleCode(granule) << 2 | UInt64(level)) << 44
        }
        return operand
    }

    /// `TLBI RIPAS2E1IS` operand: TG in bits 47:46, SCALE 45:44, NUM 43:39,
    /// TTL 38:37 (0: no hint), BaseADDR 36:0 — in granules, or with
    /// FEAT_LPA2 (`VTCR_EL2.DS` = 1) in 64 KiB units whatever the granule, so
    /// the base must then be 64 KiB aligned. It covers
    /// `(NUM + 1) · 2^(5·SCALE + 1)` granule pages.
    @inlinable
    public static func range(basePage: UInt64, scale: UInt64, number: UInt64, granule: TranslationGranule,
                             lpa2: Bool = false) -> UInt64 {
        let base = lpa2 ? (basePage << UInt64(granule.shift)) >> 16 : basePage
        return granuleCode(granule) << 46 | (scale & 0b11) << 44 | (number & 0x1F) << 39 | base & (1 << 37 - 1)
    }

    /// Splits `pages` granule pages from `firstPage` into range operands
    /// (largest scale first, up to 32 units each) and, for an odd page left
    /// over, single-page `IPAS2E1IS` operands (`single` true). With `lpa2`
    /// a range operand can only start on a 64 KiB boundary, so pages before
    /// one are invalidated singly (as Linux's `__flush_tlb_range_op` does).
    @inlinable
    public static func forEachRangeOperand(
        firstPage: UInt64, pages: UInt64, granule: TranslationGranule, lpa2: Bool = false,
        _ body: (UInt64, Bool) -> Void
    ) {
        let shift = UInt64(granule.shift)
        let alignment: UInt64 = lpa2 ? (1 << 16) >> shift : 1
        var page = firstPage
        var left = pages
        while left > 0 {
            if left & 1 != 0 || page & (alignment &- 1) != 0 {
                body(ipa(GuestPhysicalAddress(page << shift), level: nil, granule: granule), true)
                page &+= 1
                left &-= 1
                continue
            }
            var scale: UInt64 = 3
            while true {
                let unit: UInt64 = 1 << (5 * scale + 1)
                let count = min(left / unit, 32)
                if count > 0 {
                    body(range(basePage: page, scale: scale, number: count - 1, granule: granule, lpa2: lpa2), false)
                    page &+= count &* unit
                    left &-= count &* unit
                    break
                }
                scale -= 1
            }
        }
    }
}
