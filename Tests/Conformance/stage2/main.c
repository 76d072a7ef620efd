// EL2 side of the stage-2 conformance harness. It programs VTCR_EL2 and
// VTTBR_EL2 with the values `slat build` computed, runs every probe of the
// list loaded at PROBES (one access at EL1 per probe, or one AT S12E1R/W
// at EL2), and prints what the hardware model did on the PL011 UART. It
// interprets nothing: the comparison with `slat translate` is conform.py's.
#include <stdint.h>

#define UART_DR ((volatile uint32_t *)0x09000000UL)
#define UART_FR ((volatile uint32_t *)0x09000018UL)
#define PROBES ((volatile uint64_t *)0x40400000UL)
#define PROBE_MAGIC 0x3142525054414c53ULL   /* "SLATPRB1" */
#define STAMP_TAG 0x57a4000000000000ULL
#define TOKEN_TAG 0x7e57000000000000ULL
#define WRITE_OFFSET 0x800

enum { OP_READ, OP_WRITE, OP_EXEC, OP_AT_READ, OP_AT_WRITE };

extern uint64_t el1_trap[6];
extern uint64_t el1_vectors_address;
extern void run_el1(uint64_t address, uint64_t op, uint64_t token);
extern void power_off(void);

static void putc_uart(char c) {
    while (*UART_FR & (1u << 5)) { }
    *UART_DR = (uint32_t)c;
}
static void puts_uart(const char *s) { while (*s) putc_uart(*s++); }
static void hex(uint64_t v) {
    puts_uart("0x");
    for (int shift = 60; shift >= 0; shift -= 4) putc_uart("0123456789abcdef"[(v >> shift) & 0xf]);
}
static void dec(uint64_t v) {
    char buffer[24]; int n = 0;
    do { buffer[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) putc_uart(buffer[--n]);
}
static void field(const char *name, uint64_t v) { putc_uart(' '); puts_uart(name); putc_uart('='); hex(v); }

#define READ_SYSREG(name) ({ uint64_t _v; __asm__ volatile("mrs %0, " #name : "=r"(_v)); _v; })
#define WRITE_SYSREG(name, v) __asm__ volatile("msr " #name ", %0" :: "r"((uint64_t)(v)))

void el2_crash(uint64_t esr, uint64_t far, uint64_t elr) {
    puts_uart("CRASH"); field("esr", esr); field("far", far); field("elr", elr); puts_uart("\n");
}

/* Every 4 KiB page of the stamp area says where it is: its physical
   address tagged at +0, and at +0x10 code returning its frame number. */
static void stamp(uint64_t base, uint64_t size) {
    for (uint64_t page = base; page < base + size; page += 0x1000) {
        volatile uint64_t *word = (volatile uint64_t *)page;
        volatile uint32_t *code = (volatile uint32_t *)(page + 0x10);
        uint64_t frame = page >> 12;
        word[0] = STAMP_TAG | page;
        code[0] = 0xd2800000u | (uint32_t)((frame & 0xffff) << 5);                     /* movz x0, #lo */
        code[1] = 0xf2800000u | (1u << 21) | (uint32_t)(((frame >> 16) & 0xffff) << 5); /* movk x0, #mid, lsl 16 */
        code[2] = 0xf2800000u | (2u << 21) | (uint32_t)(((frame >> 32) & 0xffff) << 5); /* movk x0, #hi, lsl 32 */
        code[3] = 0xd65f03c0u;                                                          /* ret */
        *(volatile uint64_t *)(page + WRITE_OFFSET) = 0;
    }
    __asm__ volatile("dsb sy; ic iallu; dsb sy; isb" ::: "memory");
}

/* Where did the write land? Every stamped page's write slot is searched. */
static uint64_t find_token(uint64_t base, uint64_t size, uint64_t token) {
    uint64_t found = 0;
    for (uint64_t page = base; page < base + size; page += 0x1000) {
        volatile uint64_t *slot = (volatile uint64_t *)(page + WRITE_OFFSET);
        if (*slot == token) { found = page + WRITE_OFFSET; *slot = 0; }
    }
    return found;
}

static const char *const op_names[] = { "r", "w", "x", "atr", "atw" };

void el2_main(void) {
    puts_uart("HELLO stage2-harness\n");
    puts_uart("CPU"); field("midr", READ_SYSREG(midr_el1)); field("mmfr0", READ_SYSREG(id_aa64mmfr0_el1));
    field("mmfr1", READ_SYSREG(id_aa64mmfr1_el1)); puts_uart("\n");
    if (PROBES[0] != PROBE_MAGIC) { puts_uart("ERROR no probe list\n"); return; }
    uint64_t count = PROBES[1], vtcr = PROBES[2], vttbr = PROBES[3];
    uint64_t stamp_base = PROBES[4], stamp_size = PROBES[5];
    stamp(stamp_base, stamp_size);

    WRITE_SYSREG(sctlr_el1, 0x30d00800);     /* RES1 bits, stage 1 off */
    WRITE_SYSREG(vbar_el1, el1_vectors_address);
    WRITE_SYSREG(vtcr_el2, vtcr);
    WRITE_SYSREG(vttbr_el2, vttbr);
    __asm__ volatile("isb");
    /* RW: EL1 is AArch64; DC: stage 1 off counts as Normal write-back; VM: stage 2 on;
       PROBES[6]: extra bits the case asks for (FWB, bit 46, for FWB-encoded tables). */
    WRITE_SYSREG(hcr_el2, (1ULL << 31) | (1ULL << 12) | 1ULL | PROBES[6]);
    __asm__ volatile("isb; tlbi vmalls12e1; dsb sy; isb" ::: "memory");
    puts_uart("CFG"); field("vtcr", READ_SYSREG(vtcr_el2)); field("vttbr", READ_SYSREG(vttbr_el2));
    field("hcr", READ_SYSREG(hcr_el2)); puts_uart("\n");

    for (uint64_t i = 0; i < count; i++) {
        uint64_t address = PROBES[8 + 2 * i], op = PROBES[9 + 2 * i];
        puts_uart("P "); dec(i); putc_uart(' '); puts_uart(op <= OP_AT_WRITE ? op_names[op] : "?"); putc_uart(' '); hex(address);
        if (op == OP_AT_READ || op == OP_AT_WRITE) {
            if (op == OP_AT_READ) __asm__ volatile("at s12e1r, %0" :: "r"(address));
            else __asm__ volatile("at s12e1w, %0" :: "r"(address));
            __asm__ volatile("isb");
            field("par", READ_SYSREG(par_el1));
            puts_uart("\n");
            continue;
        }
        uint64_t token = TOKEN_TAG | i;
        for (int k = 0; k < 6; k++) el1_trap[k] = 0;
        run_el1(address, op, token);
        uint64_t esr = el1_trap[0], ec = esr >> 26;
        if (ec == 0x16 && (esr & 0xffff) == 0) {
            puts_uart(" ok");
            if (op == OP_WRITE) {
                uint64_t where = find_token(stamp_base, stamp_size, token);
                if (where) field("wrote", where); else puts_uart(" wrote=none");
            } else {
                field("value", el1_trap[3]);
            }
        } else if (ec == 0x24 || ec == 0x20) {
            puts_uart(" abort"); field("esr", esr); field("far", el1_trap[1]); field("hpfar", el1_trap[2]);
        } else {
            puts_uart(" other"); field("esr", esr); field("esr1", el1_trap[4]); field("far1", el1_trap[5]);
        }
        puts_uart("\n");
    }
    puts_uart("END "); dec(count); puts_uart("\n");
}
