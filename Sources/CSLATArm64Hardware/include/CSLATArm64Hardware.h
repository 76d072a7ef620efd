// AArch64 system instructions for SLATArm64Hardware: TLB invalidation,
// barriers, cache maintenance and VTTBR_EL2 access at EL2. Each is one
// instruction (or one register move and an ISB); the sequences that make
// them correct are composed in Swift (see Docs/stage2-mmu.md).
//
// Defined only when compiling for AArch64; on other targets this header
// declares nothing and the Swift module leaves out the hardware issuer.
#ifndef CSLATARM64HARDWARE_H
#define CSLATARM64HARDWARE_H

#if defined(__aarch64__)

static inline unsigned long long slat_read_vttbr_el2(void) {
    unsigned long long value;
    __asm__ volatile("mrs %0, vttbr_el2" : "=r"(value));
    return value;
}

// Writes VTTBR_EL2 and synchronises the context (ISB).
static inline void slat_write_vttbr_el2(unsigned long long value) {
    __asm__ volatile("msr vttbr_el2, %0\n\tisb" : : "r"(value) : "memory");
}

static inline unsigned long long slat_read_ctr_el0(void) {
    unsigned long long value;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(value));
    return value;
}

static inline void slat_dsb_ishst(void) { __asm__ volatile("dsb ishst" : : : "memory"); }
static inline void slat_dsb_ish(void) { __asm__ volatile("dsb ish" : : : "memory"); }
static inline void slat_dsb_sy(void) { __asm__ volatile("dsb sy" : : : "memory"); }
static inline void slat_isb(void) { __asm__ volatile("isb" : : : "memory"); }

// TLBI IPAS2E1IS, Xt: IPA[51:12] in bits 39:0, TTL hint in bits 47:44.
static inline void slat_tlbi_ipas2e1is(unsigned long long operand) {
    __asm__ volatile("tlbi ipas2e1is, %0" : : "r"(operand) : "memory");
}

// TLBI RIPAS2E1IS (FEAT_TLBIRANGE), written as its SYS encoding
// (op1 4, CRn 8, CRm 0, op2 2) so no assembler extension is needed.
static inline void slat_tlbi_ripas2e1is(unsigned long long operand) {
    __asm__ volatile("sys #4, c8, c0, #2, %0" : : "r"(operand) : "memory");
}

static inline void slat_tlbi_vmalle1is(void) { __asm__ volatile("tlbi vmalle1is" : : : "memory"); }
static inline void slat_tlbi_vmalls12e1is(void) { __asm__ volatile("tlbi vmalls12e1is" : : : "memory"); }

static inline void slat_dc_cvac(unsigned long long address) {
    __asm__ volatile("dc cvac, %0" : : "r"(address) : "memory");
}
static inline void slat_dc_civac(unsigned long long address) {
    __asm__ volatile("dc civac, %0" : : "r"(address) : "memory");
}
static inline void slat_ic_ialluis(void) { __asm__ volatile("ic ialluis" : : : "memory"); }

#endif // __aarch64__

#endif // CSLATARM64HARDWARE_H
