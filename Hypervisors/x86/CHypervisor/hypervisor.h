// What the x86 hypervisor's Swift code needs from the machine: one
// instruction per static inline function (port I/O, MSRs, control
// registers, VMX instructions) and the symbols of start.S.
#ifndef HYPERVISOR_H
#define HYPERVISOR_H

#include <stdint.h>

// The guest's general-purpose registers while it is not running (RSP,
// RIP and RFLAGS live in the VMCS). Offsets are vmx_run's.
struct hv_guest_registers {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};

int vmx_run(struct hv_guest_registers *regs, int launched);
extern char guest_code_start[], guest_code_end[], guest_mmio_store[], guest_mmio_load[];
extern char ap_trampoline_start[], ap_trampoline_end[];
extern char host_tss[];
extern struct __attribute__((packed)) hv_gdt_descriptor { uint16_t limit; uint64_t base; } gdt_descriptor;

// Addresses of start.S's symbols (identity-mapped: virtual = physical).
static inline uint64_t hv_guest_code_start(void) { return (uint64_t)guest_code_start; }
static inline uint64_t hv_guest_code_size(void) { return (uint64_t)(guest_code_end - guest_code_start); }
static inline uint64_t hv_guest_mmio_store_offset(void) { return (uint64_t)(guest_mmio_store - guest_code_start); }
static inline uint64_t hv_guest_mmio_load_offset(void) { return (uint64_t)(guest_mmio_load - guest_code_start); }
static inline uint64_t hv_ap_trampoline_start(void) { return (uint64_t)ap_trampoline_start; }
static inline uint64_t hv_ap_trampoline_size(void) { return (uint64_t)(ap_trampoline_end - ap_trampoline_start); }
static inline uint64_t hv_host_tss(void) { return (uint64_t)host_tss; }
static inline uint64_t hv_gdt_base(void) { return gdt_descriptor.base; }
uint64_t hv_heap_used(void);

static inline void hv_outb(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}
static inline uint64_t hv_rdmsr(uint32_t msr) {
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline uint64_t hv_read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline uint64_t hv_read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint64_t hv_read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void hv_write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void hv_write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
// Volatile accesses to memory another CPU (or the guest) changes.
static inline uint32_t hv_read32(uint64_t address) { return *(volatile uint32_t *)address; }
static inline void hv_write32(uint64_t address, uint32_t value) { *(volatile uint32_t *)address = value; }
static inline void hv_pause(void) { __asm__ volatile("pause" : : : "memory"); }
static inline uint64_t hv_rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

// VMX instructions; each returns 0 on success, 1 on VMfail (CF or ZF).
static inline int hv_vmxon(uint64_t region) {
    uint8_t bad;
    __asm__ volatile("vmxon %1; setbe %0" : "=q"(bad) : "m"(region) : "cc", "memory");
    return bad;
}
static inline int hv_vmclear(uint64_t vmcs) {
    uint8_t bad;
    __asm__ volatile("vmclear %1; setbe %0" : "=q"(bad) : "m"(vmcs) : "cc", "memory");
    return bad;
}
static inline int hv_vmptrld(uint64_t vmcs) {
    uint8_t bad;
    __asm__ volatile("vmptrld %1; setbe %0" : "=q"(bad) : "m"(vmcs) : "cc", "memory");
    return bad;
}
static inline uint64_t hv_vmread(uint64_t field) {
    uint64_t v;
    __asm__ volatile("vmread %1, %0" : "=r"(v) : "r"(field) : "cc");
    return v;
}
static inline int hv_vmwrite(uint64_t field, uint64_t value) {
    uint8_t bad;
    __asm__ volatile("vmwrite %1, %2; setbe %0" : "=q"(bad) : "r"(value), "r"(field) : "cc");
    return bad;
}

#endif // HYPERVISOR_H
