// Host side of the EPT conformance harness (Bochs, VMX with EPT). It
// enters VMX operation, builds a VMCS whose EPTP is the one `slat build`
// computed, runs one guest access per probe and prints on port 0xE9 what
// the model did: the values read, the VM exit reason, the exit
// qualification and guest-physical address. At the end it prints every
// table word the walker changed (accessed/dirty flags). It interprets
// nothing: the comparison with `slat translate` is conform.py's.
#include <stdint.h>

#define PROBES ((volatile uint64_t *)0x200000UL)
#define PROBE_MAGIC 0x3142525054414c53ULL   /* "SLATPRB1" */
#define STAMP_TAG 0x57a4000000000000ULL
#define TOKEN_TAG 0x7e570000U
#define WRITE_OFFSET 0x800
#define SNAPSHOT ((volatile uint64_t *)0x1000000UL)  /* 16 MiB: copy of the tables before the run */
#define GUEST_PAGE_TABLES 0x300000UL                  /* guest PML4 + 512 PDPTs: 0x300000-0x500fff */

enum { OP_READ, OP_WRITE, OP_EXEC };

extern uint64_t guest_gprs[4];
extern char guest_entry[], guest_stack_top[], host_tss[];
extern struct __attribute__((packed)) { uint16_t limit; uint64_t base; } gdt_descriptor;
extern int vm_run(uint64_t address, uint64_t op, uint64_t token, int launched);
extern void shutdown(void);

static void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static void putc_e9(char c) { outb(0xe9, (uint8_t)c); }
static void puts_e9(const char *s) { while (*s) putc_e9(*s++); }
static void hex(uint64_t v) {
    puts_e9("0x");
    for (int shift = 60; shift >= 0; shift -= 4) putc_e9("0123456789abcdef"[(v >> shift) & 0xf]);
}
static void dec(uint64_t v) {
    char buffer[24]; int n = 0;
    do { buffer[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) putc_e9(buffer[--n]);
}
static void field(const char *name, uint64_t v) { putc_e9(' '); puts_e9(name); putc_e9('='); hex(v); }

static uint64_t rdmsr(uint32_t msr) {
    uint32_t lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((uint64_t)hi << 32) | lo;
}
static uint64_t read_cr0(void) { uint64_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static uint64_t read_cr4(void) { uint64_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v)); }
static void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v)); }

static uint64_t vmread(uint64_t field_id) {
    uint64_t v; __asm__ volatile("vmread %1, %0" : "=r"(v) : "r"(field_id) : "cc"); return v;
}
static int vmwrite_failed;
static void vmwrite(uint64_t field_id, uint64_t v) {
    uint8_t bad;
    __asm__ volatile("vmwrite %1, %2; setbe %0" : "=q"(bad) : "r"(v), "r"(field_id) : "cc");
    if (bad) { vmwrite_failed = 1; puts_e9("ERROR vmwrite"); field("field", field_id); puts_e9("\n"); }
}
/* A control value with the bits the capability MSR forces on or off. */
static uint64_t adjust(uint32_t msr, uint64_t wanted) {
    uint64_t cap = rdmsr(msr);
    return (wanted | (cap & 0xffffffffU)) & (cap >> 32);
}

static uint8_t vmxon_region[4096] __attribute__((aligned(4096)));
static uint8_t vmcs_region[4096] __attribute__((aligned(4096)));

/* Every 4 KiB page of the stamp area says where it is: its physical
   address tagged at +0, and at +0x10 code returning its frame number. */
static void stamp(uint64_t base, uint64_t size) {
    for (uint64_t page = base; page < base + size; page += 0x1000) {
        volatile uint64_t *word = (volatile uint64_t *)page;
        volatile uint8_t *code = (volatile uint8_t *)(page + 0x10);
        uint32_t frame = (uint32_t)(page >> 12);
        word[0] = STAMP_TAG | page;
        code[0] = 0xb8;                             /* mov eax, imm32 */
        code[1] = (uint8_t)frame; code[2] = (uint8_t)(frame >> 8);
        code[3] = (uint8_t)(frame >> 16); code[4] = (uint8_t)(frame >> 24);
        code[5] = 0xc3;                             /* ret */
        *(volatile uint32_t *)(page + WRITE_OFFSET) = 0;
    }
}

static uint64_t find_token(uint64_t base, uint64_t size, uint32_t token) {
    uint64_t found = 0;
    for (uint64_t page = base; page < base + size; page += 0x1000) {
        volatile uint32_t *slot = (volatile uint32_t *)(page + WRITE_OFFSET);
        if (*slot == token) { found = page + WRITE_OFFSET; *slot = 0; }
    }
    return found;
}

static void setup_vmcs(uint64_t eptp) {
    uint64_t basic = rdmsr(0x480);
    int true_controls = (basic >> 55) & 1;
    *(uint32_t *)vmcs_region = (uint32_t)(basic & 0x7fffffff);
    uint64_t vmcs = (uint64_t)vmcs_region;
    __asm__ volatile("vmclear %0" :: "m"(vmcs) : "cc");
    __asm__ volatile("vmptrld %0" :: "m"(vmcs) : "cc");

    vmwrite(0x4000, adjust(true_controls ? 0x48d : 0x481, 0));                       /* pin-based */
    vmwrite(0x4002, adjust(true_controls ? 0x48e : 0x482, (1U << 7) | (1U << 31)));  /* HLT exit, secondary */
    vmwrite(0x401e, adjust(0x48b, 1U << 1));                                         /* enable EPT */
    vmwrite(0x400c, adjust(true_controls ? 0x48f : 0x483, 1U << 9));                 /* host address-space size */
    vmwrite(0x4012, adjust(true_controls ? 0x490 : 0x484, 1U << 9));                 /* entry: IA-32e mode guest */
    vmwrite(0x4004, 0xffffffff);                                                     /* exception bitmap: all */
    vmwrite(0x201a, eptp);
    vmwrite(0x2800, ~0ULL);                                                          /* VMCS link pointer */

    /* Host state: the current long-mode context. */
    vmwrite(0x6c00, read_cr0()); vmwrite(0x6c02, read_cr3()); vmwrite(0x6c04, read_cr4());
    vmwrite(0x0c00, 0x10); vmwrite(0x0c02, 0x18); vmwrite(0x0c04, 0x10); vmwrite(0x0c06, 0x10);
    vmwrite(0x0c08, 0x10); vmwrite(0x0c0a, 0x10); vmwrite(0x0c0c, 0x20);
    vmwrite(0x6c06, 0); vmwrite(0x6c08, 0); vmwrite(0x6c0a, (uint64_t)host_tss);
    vmwrite(0x6c0c, gdt_descriptor.base); vmwrite(0x6c0e, 0);
    vmwrite(0x4c00, 0); vmwrite(0x6c10, 0); vmwrite(0x6c12, 0);

    /* Guest state: 64-bit mode, paging through GUEST_PAGE_TABLES. */
    vmwrite(0x6800, 0x80000031);    /* CR0: PG, NE, ET, PE */
    vmwrite(0x6802, GUEST_PAGE_TABLES);
    vmwrite(0x6804, (rdmsr(0x488) & rdmsr(0x489)) | 0x20);  /* CR4: the bits VMX fixes to 1 (VMXE), PAE */
    vmwrite(0x681a, 0x400);         /* DR7 */
    vmwrite(0x6820, 0x2);           /* RFLAGS */
    static const uint32_t selectors[] = { 0x10, 0x08, 0x10, 0x10, 0x10, 0x10 }; /* ES CS SS DS FS GS */
    for (int i = 0; i < 6; i++) {
        vmwrite(0x0800 + 2 * i, selectors[i]);
        vmwrite(0x6806 + 2 * i, 0);
        vmwrite(0x4800 + 2 * i, 0xffffffff);
        vmwrite(0x4814 + 2 * i, i == 1 ? 0xa09b : 0xc093);   /* CS: 64-bit code */
    }
    vmwrite(0x080c, 0); vmwrite(0x6812, 0); vmwrite(0x480c, 0); vmwrite(0x4820, 0x10000); /* LDTR unusable */
    vmwrite(0x080e, 0); vmwrite(0x6814, 0); vmwrite(0x480e, 0x67); vmwrite(0x4822, 0x8b); /* TR: busy TSS (type 11) */
    vmwrite(0x6816, 0); vmwrite(0x4810, 0); vmwrite(0x6818, 0); vmwrite(0x4812, 0);       /* GDTR, IDTR */
    vmwrite(0x4824, 0); vmwrite(0x4826, 0); vmwrite(0x4828, 0);                           /* interruptibility, activity, SMBASE */
    vmwrite(0x6822, 0); vmwrite(0x482a, 0); vmwrite(0x6824, 0); vmwrite(0x6826, 0);       /* pending dbg, sysenter */
    vmwrite(0x2802, 0);                                                                     /* IA32_DEBUGCTL */
}

static const char *const op_names[] = { "r", "w", "x" };

void host_main(void) {
    puts_e9("HELLO ept-harness\n");
    puts_e9("CPU"); field("vmx_basic", rdmsr(0x480)); field("procbased2", rdmsr(0x48b));
    field("ept_vpid_cap", rdmsr(0x48c)); puts_e9("\n");
    if (PROBES[0] != PROBE_MAGIC) { puts_e9("ERROR no probe list\n"); return; }
    uint64_t count = PROBES[1], eptp = PROBES[2];
    uint64_t stamp_base = PROBES[3], stamp_size = PROBES[4];
    uint64_t tables_base = PROBES[5], tables_size = PROBES[6], table_words = PROBES[7];
    /* Bochs loads only the first 128 KiB of an optramimage file, so SLAT's
       image comes as its nonzero words, (physical address, value) pairs
       after the probes, and is written here; RAM starts zeroed. */
    volatile uint64_t *words = PROBES + 8 + 2 * count;
    for (uint64_t i = 0; i < table_words; i++) *(volatile uint64_t *)words[2 * i] = words[2 * i + 1];
    stamp(stamp_base, stamp_size);
    /* Guest paging: PML4[i] -> PDPT i, whose 1 GiB pages map guest-linear
       (i << 39 | j << 30), sign-extended, to the same guest-physical address. */
    volatile uint64_t *guest_pml4 = (volatile uint64_t *)GUEST_PAGE_TABLES;
    for (uint64_t i = 0; i < 512; i++) {
        volatile uint64_t *pdpt = (volatile uint64_t *)(GUEST_PAGE_TABLES + 0x1000 * (i + 1));
        guest_pml4[i] = (GUEST_PAGE_TABLES + 0x1000 * (i + 1)) | 0x7;
        for (uint64_t j = 0; j < 512; j++) pdpt[j] = (i << 39) | (j << 30) | 0x87;   /* P, RW, US, PS */
    }
    for (uint64_t i = 0; i < tables_size / 8; i++) SNAPSHOT[i] = ((volatile uint64_t *)tables_base)[i];

    write_cr0(read_cr0() | 0x20);
    write_cr4(read_cr4() | (1U << 13));
    *(uint32_t *)vmxon_region = (uint32_t)(rdmsr(0x480) & 0x7fffffff);
    uint64_t vmxon = (uint64_t)vmxon_region;
    uint8_t bad;
    __asm__ volatile("vmxon %1; setbe %0" : "=q"(bad) : "m"(vmxon) : "cc");
    if (bad) { puts_e9("ERROR vmxon\n"); return; }
    setup_vmcs(eptp);
    if (vmwrite_failed) return;
    puts_e9("CFG"); field("eptp", vmread(0x201a)); field("secondary", vmread(0x401e)); puts_e9("\n");

    int launched = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t address = PROBES[8 + 2 * i], op = PROBES[9 + 2 * i];
        puts_e9("P "); dec(i); putc_e9(' '); puts_e9(op <= OP_EXEC ? op_names[op] : "?"); putc_e9(' '); hex(address);
        vmwrite(0x681e, (uint64_t)guest_entry);
        vmwrite(0x681c, (uint64_t)guest_stack_top);
        vmwrite(0x6820, 0x2);
        vmwrite(0x4824, 0);
        uint32_t token = TOKEN_TAG | (uint32_t)i;
        uint64_t linear = (address & (1ULL << 47)) ? (address | 0xffff000000000000ULL) : address;
        if (vm_run(linear, op, token, launched)) {
            puts_e9(" entryfail"); field("error", vmread(0x4400)); puts_e9("\n"); break;
        }
        uint64_t full_reason = vmread(0x4402), reason = full_reason & 0xffff;
        if (!(full_reason & (1ULL << 31))) launched = 1;  /* entry failures leave the VMCS unlaunched */
        if (reason == 18) {
            puts_e9(" ok");
            if (op == OP_WRITE) {
                uint64_t where = find_token(stamp_base, stamp_size, token);
                if (where) field("wrote", where); else puts_e9(" wrote=none");
            } else {
                field("value", guest_gprs[3]);
            }
        } else if (reason == 48) {
            puts_e9(" violation"); field("qual", vmread(0x6400)); field("gpa", vmread(0x2400));
            field("linear", vmread(0x640a));
        } else if (reason == 49) {
            puts_e9(" misconfig"); field("gpa", vmread(0x2400));
        } else {
            puts_e9(" exit"); field("reason", vmread(0x4402)); field("qual", vmread(0x6400));
            field("rip", vmread(0x681e)); field("intinfo", vmread(0x4404));
        }
        puts_e9("\n");
    }
    for (uint64_t i = 0; i < tables_size / 8; i++) {
        uint64_t before = SNAPSHOT[i], after = ((volatile uint64_t *)tables_base)[i];
        if (before != after) { puts_e9("T"); field("pa", tables_base + 8 * i); field("old", before); field("new", after); puts_e9("\n"); }
    }
    puts_e9("END "); dec(count); puts_e9("\n");
}
