// EL2 entry, exception vectors and the guest entry/exit of the hypervisor.
// Everything else is Swift (hyp/*.swift). References: Arm ARM D1
// ("Exception entry", "Vector tables"), D8 (VMSAv8-64 translation).

        .equ STACK_SIZE, 0x10000
        .equ CPUS, 2

        .section .text.boot, "ax"
        .global _start
_start:
        mov     x19, #0                 // the boot CPU is CPU 0
        b       common_entry

        // PSCI CPU_ON entry: x0 is the context id, the CPU number.
        .global hyp_secondary_entry
hyp_secondary_entry:
        mov     x19, x0
common_entry:
        msr     daifset, #0xf
        ldr     x1, =__stack_top
        mov     x2, #STACK_SIZE
        mul     x2, x2, x19
        sub     sp, x1, x2
        cbnz    x19, 2f
        ldr     x1, =__bss_start        // CPU 0 clears .bss
        ldr     x2, =__bss_end
1:      cmp     x1, x2
        b.hs    2f
        str     xzr, [x1], #8
        b       1b
2:      ldr     x1, =hyp_vectors
        msr     vbar_el2, x1
        // CPTR_EL2: RES1 bits only, so FP/SIMD is not trapped (TFP clear).
        ldr     x1, =0x33ff
        msr     cptr_el2, x1
        // The EL2 identity map: 1 GiB blocks, [0, 1G) Device-nGnRnE,
        // [1G, 2G) Normal write-back (RAM), from a static level-1 table.
        ldr     x1, =0xff00             // MAIR: attr0 device, attr1 normal WB
        msr     mair_el2, x1
        ldr     x1, =0x80823520         // T0SZ 32, WB WA, inner shareable, 4K, PS 40 bits
        msr     tcr_el2, x1
        ldr     x1, =hyp_el2_table
        msr     ttbr0_el2, x1
        dsb     ish
        tlbi    alle2
        dsb     ish
        isb
        ldr     x1, =0x30c51835         // RES1 | M | C | I
        msr     sctlr_el2, x1
        isb
        mov     x0, x19
        bl      hyp_main
3:      wfe
        b       3b

// uint64_t hyp_run_vcpu(HypVCPUFrame *frame)
        .text
        .global hyp_run_vcpu
hyp_run_vcpu:
        stp     x29, x30, [sp, #-96]!
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        mov     x1, sp
        str     x1, [x0, #272]
        msr     tpidr_el2, x0
        ldr     x1, [x0, #248]
        msr     elr_el2, x1
        ldr     x1, [x0, #256]
        msr     spsr_el2, x1
        ldr     x1, [x0, #264]
        msr     sp_el1, x1
        ldp     x2, x3, [x0, #16]
        ldp     x4, x5, [x0, #32]
        ldp     x6, x7, [x0, #48]
        ldp     x8, x9, [x0, #64]
        ldp     x10, x11, [x0, #80]
        ldp     x12, x13, [x0, #96]
        ldp     x14, x15, [x0, #112]
        ldp     x16, x17, [x0, #128]
        ldp     x18, x19, [x0, #144]
        ldp     x20, x21, [x0, #160]
        ldp     x22, x23, [x0, #176]
        ldp     x24, x25, [x0, #192]
        ldp     x26, x27, [x0, #208]
        ldp     x28, x29, [x0, #224]
        ldr     x30, [x0, #240]
        ldp     x0, x1, [x0]
        eret

// Exit from the guest: x0/x1 are on the stack, x1 holds the exit kind.
guest_exit:
        mrs     x0, tpidr_el2
        stp     x2, x3, [x0, #16]
        stp     x4, x5, [x0, #32]
        stp     x6, x7, [x0, #48]
        stp     x8, x9, [x0, #64]
        stp     x10, x11, [x0, #80]
        stp     x12, x13, [x0, #96]
        stp     x14, x15, [x0, #112]
        stp     x16, x17, [x0, #128]
        stp     x18, x19, [x0, #144]
        stp     x20, x21, [x0, #160]
        stp     x22, x23, [x0, #176]
        stp     x24, x25, [x0, #192]
        stp     x26, x27, [x0, #208]
        stp     x28, x29, [x0, #224]
        str     x30, [x0, #240]
        ldp     x2, x3, [sp], #16
        stp     x2, x3, [x0]
        mrs     x2, elr_el2
        str     x2, [x0, #248]
        mrs     x2, spsr_el2
        str     x2, [x0, #256]
        mrs     x2, sp_el1
        str     x2, [x0, #264]
        ldr     x2, [x0, #272]
        mov     sp, x2
        mov     x0, x1
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp], #96
        ret

        .macro  exit_vector kind
        .balign 0x80
        stp     x0, x1, [sp, #-16]!
        mov     x1, #\kind
        b       guest_exit
        .endm

        .macro  hyp_fault_vector kind
        .balign 0x80
        mov     x0, #\kind
        b       hyp_exception
        .endm

        .balign 0x800
        .global hyp_vectors
hyp_vectors:
        hyp_fault_vector 0      // current EL, SP_EL0
        hyp_fault_vector 1
        hyp_fault_vector 2
        hyp_fault_vector 3
        hyp_fault_vector 0      // current EL, SP_ELx
        hyp_fault_vector 1
        hyp_fault_vector 2
        hyp_fault_vector 3
        exit_vector 0           // lower EL, AArch64
        exit_vector 1
        exit_vector 2
        exit_vector 3
        hyp_fault_vector 4      // lower EL, AArch32
        hyp_fault_vector 4
        hyp_fault_vector 4
        hyp_fault_vector 4

        .section .data
        .balign 4096
hyp_el2_table:
        .quad   0x0040000000000401      // [0, 1G): device, XN
        .quad   0x0000000040000705      // [1G, 2G): normal WB, inner shareable
        .quad   0
        .quad   0
        .space  4096 - 32

        .section .rodata
        .balign 4096
        .global hyp_guest_image_start
        .global hyp_guest_image_end
hyp_guest_image_start:
        .incbin "guest.bin"
hyp_guest_image_end:
