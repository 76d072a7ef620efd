import SLATCore

/// The AArch64 system instructions the stage-2 TLB and cache maintenance
/// sequences are made of, one method per instruction. The hardware issuer
/// is `AArch64SystemInstructions` (AArch64 builds only); tests record the
/// calls instead.
///
/// Methods are called at EL2 from any CPU; an implementation issues exactly
/// the named instruction and nothing else.
public protocol AArch64Instructions: Sendable {
    /// `MRS Xt, VTTBR_EL2`.
    func readVTTBR() -> UInt64
    /// `MSR VTTBR_EL2, Xt; ISB`.
    func writeVTTBR(_ value: UInt64)
    /// `DSB ISHST`.
    func dsbInnerShareableStores()
    /// `DSB ISH`.
    func dsbInnerShareable()
    /// `DSB SY`.
    func dsbFullSystem()
    /// `ISB`.
    func isb()
    /// `TLBI IPAS2E1IS, Xt`.
    func tlbiIPAS2E1IS(_ operand: UInt64)
    /// `TLBI RIPAS2E1IS, Xt` (FEAT_TLBIRANGE).
    func tlbiRIPAS2E1IS(_ operand: UInt64)
    /// `TLBI VMALLE1IS`.
    func tlbiVMALLE1IS()
    /// `TLBI VMALLS12E1IS`.
    func tlbiVMALLS12E1IS()
    /// `DC CVAC, Xt`.
    func dcCVAC(_ virtualAddress: UInt64)
    /// `DC CIVAC, Xt`.
    func dcCIVAC(_ virtualAddress: UInt64)
    /// `IC IALLUIS`.
    func icIALLUIS()
    /// `MRS Xt, CTR_EL0`.
    func readCTR() -> UInt64
}

#if arch(arm64)
import CSLATArm64Hardware

/// The real instructions, for a hypervisor running at EL2.
@frozen
public struct AArch64SystemInstructions: AArch64Instructions {
    @inlinable public init() {}
    @inlinable public func readVTTBR() -> UInt64 { UInt64(slat_read_vttbr_el2()) }
    @inlinable public func writeVTTBR(_ value: UInt64) { slat_write_vttbr_el2(CUnsignedLongLong(value)) }
    @inlinable public func dsbInnerShareableStores() { slat_dsb_ishst() }
    @inlinable public func dsbInnerShareable() { slat_dsb_ish() }
    @inlinable public func dsbFullSystem() { slat_dsb_sy() }
    @inlinable public func isb() { slat_isb() }
    @inlinable public func tlbiIPAS2E1IS(_ operand: UInt64) { slat_tlbi_ipas2e1is(CUnsignedLongLong(operand)) }
    @inlinable public func tlbiRIPAS2E1IS(_ operand: UInt64) { slat_tlbi_ripas2e1is(CUnsignedLongLong(operand)) }
    @inlinable public func tlbiVMALLE1IS() { slat_tlbi_vmalle1is() }
    @inlinable public func tlbiVMALLS12E1IS() { slat_tlbi_vmalls12e1is() }
    @inlinable public func dcCVAC(_ virtualAddress: UInt64) { slat_dc_cvac(CUnsignedLongLong(virtualAddress)) }
    @inlinable public func dcCIVAC(_ virtualAddress: UInt64) { slat_dc_civac(CUnsignedLongLong(virtualAddress)) }
    @inlinable public func icIALLUIS() { slat_ic_ialluis() }
    @inlinable public func readCTR() -> UInt64 { UInt64(slat_read_ctr_el0()) }
}
#endif
