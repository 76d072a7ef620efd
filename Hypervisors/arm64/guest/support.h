// The test guest's instructions: hypercalls (HVC and SMC conduits),
// atomics on shared guest memory, and single-instruction loads and stores
// (so an MMIO abort has a valid syndrome and every check is a real access).
#ifndef GUEST_SUPPORT_H
#define GUEST_SUPPORT_H

#include <stdint.h>

static inline uint64_t guest_hvc(uint64_t function, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = function;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

static inline uint64_t guest_smc(uint64_t function, uint64_t a1, uint64_t a2, uint64_t a3) {
    register uint64_t x0 __asm__("x0") = function;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

static inline uint64_t guest_load(uint64_t address) {
    uint64_t v;
    __asm__ volatile("ldr %0, [%1]" : "=r"(v) : "r"(address) : "memory");
    return v;
}
static inline void guest_store(uint64_t address, uint64_t value) {
    __asm__ volatile("str %0, [%1]" : : "r"(value), "r"(address) : "memory");
}
static inline uint32_t guest_load32(uint64_t address) {
    uint32_t v;
    __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(address) : "memory");
    return v;
}
static inline int64_t guest_load16_signed(uint64_t address) {
    int64_t v;
    __asm__ volatile("ldrsh %0, [%1]" : "=r"(v) : "r"(address) : "memory");
    return v;
}
static inline uint64_t guest_atomic_load(uint64_t address) {
    return __atomic_load_n((volatile uint64_t *)address, __ATOMIC_ACQUIRE);
}
static inline void guest_atomic_store(uint64_t address, uint64_t value) {
    __atomic_store_n((volatile uint64_t *)address, value, __ATOMIC_RELEASE);
}
static inline uint64_t guest_atomic_add(uint64_t address, uint64_t value) {
    return __atomic_add_fetch((volatile uint64_t *)address, value, __ATOMIC_ACQ_REL);
}
static inline uint64_t guest_entry_address(void) {
    extern char _start[];
    return (uint64_t)_start;
}

#endif
