// EL2 register access and assembly entry points for the hypervisor's Swift
// code: one instruction per function (Arm ARM C5, "System instructions").
#ifndef HYP_SUPPORT_H
#define HYP_SUPPORT_H

#include <stdint.h>

#define HYP_SYSREG_READ(name) \
    static inline uint64_t hyp_read_##name(void) { uint64_t v; __asm__ volatile("mrs %0, " #name : "=r"(v)); return v; }
#define HYP_SYSREG_WRITE(name) \
    static inline void hyp_write_##name(uint64_t v) { __asm__ volatile("msr " #name ", %0\n\tisb" : : "r"(v) : "memory"); }

HYP_SYSREG_READ(esr_el2)
HYP_SYSREG_READ(elr_el2)
HYP_SYSREG_READ(far_el2)
HYP_SYSREG_READ(hpfar_el2)
HYP_SYSREG_READ(mpidr_el1)
HYP_SYSREG_READ(cntpct_el0)
HYP_SYSREG_READ(cntfrq_el0)
HYP_SYSREG_READ(ctr_el0)
HYP_SYSREG_READ(par_el1)
HYP_SYSREG_READ(id_aa64mmfr0_el1)
HYP_SYSREG_READ(id_aa64isar0_el1)
HYP_SYSREG_READ(id_aa64mmfr2_el1)
HYP_SYSREG_WRITE(hcr_el2)
HYP_SYSREG_WRITE(vtcr_el2)
HYP_SYSREG_WRITE(vttbr_el2)
HYP_SYSREG_WRITE(sctlr_el1)
HYP_SYSREG_WRITE(cptr_el2)
HYP_SYSREG_WRITE(cnthctl_el2)
HYP_SYSREG_WRITE(cntvoff_el2)
HYP_SYSREG_WRITE(vmpidr_el2)

/// SMC to the firmware (PSCI, SMC calling convention): returns x0.
static inline uint64_t hyp_smc(uint64_t function, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = function;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

/// AT S12E1R / S12E1W: the hardware's stage 1+2 walk of `address` for the
/// EL1&0 regime; the result is in PAR_EL1.
static inline uint64_t hyp_translate_read(uint64_t address) {
    __asm__ volatile("at s12e1r, %0\n\tisb" : : "r"(address) : "memory");
    return hyp_read_par_el1();
}
static inline uint64_t hyp_translate_write(uint64_t address) {
    __asm__ volatile("at s12e1w, %0\n\tisb" : : "r"(address) : "memory");
    return hyp_read_par_el1();
}

static inline void hyp_wait_for_event(void) { __asm__ volatile("wfe" : : : "memory"); }
static inline void hyp_send_event(void) { __asm__ volatile("dsb ish\n\tsev" : : : "memory"); }
static inline void hyp_barrier(void) { __asm__ volatile("dsb ish" : : : "memory"); }

/// The guest's registers and exception state as the exit saved them.
typedef struct HypVCPUFrame {
    uint64_t x[31];
    uint64_t elr;
    uint64_t spsr;
    uint64_t spEL1;
    uint64_t hostSP;
} HypVCPUFrame;

/// Enters the guest with `frame`'s registers (ERET); returns at the next
/// exit with the vector's kind: 0 synchronous, 1 IRQ, 2 FIQ, 3 SError.
uint64_t hyp_run_vcpu(HypVCPUFrame *frame);

/// Where a secondary CPU started by PSCI CPU_ON enters (context id = CPU).
void hyp_secondary_entry(void);

/// The guest image embedded in the hypervisor (start.s): address and size.
static inline uint64_t hyp_guest_image_address(void) {
    extern const uint8_t hyp_guest_image_start[];
    return (uint64_t)hyp_guest_image_start;
}
static inline uint64_t hyp_guest_image_size(void) {
    extern const uint8_t hyp_guest_image_start[], hyp_guest_image_end[];
    return (uint64_t)(hyp_guest_image_end - hyp_guest_image_start);
}

/// Bytes the allocator has taken from the heap (runtime.c).
uint64_t hyp_heap_used(void);

#endif
