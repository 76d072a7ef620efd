// Bare-metal EL2 harness for the stage-2 conformance suite (QEMU virt,
// virtualization=on). Entry at EL2 with the MMU off; see main.c.

    .section .text.start, "ax"
    .globl _start
_start:
    mrs     x0, CurrentEL
    lsr     x0, x0, #2
    cmp     x0, #2
    b.ne    wrong_el
    ldr     x0, =stack_top
    mov     sp, x0
    adr     x0, el2_vectors
    msr     vbar_el2, x0
    isb
    // clear .bss
    ldr     x0, =__bss_start
    ldr     x1, =__bss_end
1:  cmp     x0, x1
    b.hs    2f
    str     xzr, [x0], #8
    b       1b
2:  bl      el2_main
    b       power_off
wrong_el:
    b       wrong_el

// PSCI SYSTEM_OFF through SMC (QEMU's conduit when EL2 is enabled).
    .globl power_off
power_off:
    ldr     x0, =0x84000008
    smc     #0
3:  wfi
    b       3b

// uint64_t run_el1(uint64_t address, uint64_t op, uint64_t token)
// Saves the EL2 callee-saved state, enters el1_probe at EL1h with
// interrupts masked. Returns (through lower_sync) when EL1 traps to EL2:
// by HVC after the access, or by a stage-2 abort.
    .globl run_el1
run_el1:
    adr     x9, el2_context
    stp     x19, x20, [x9, #0]
    stp     x21, x22, [x9, #16]
    stp     x23, x24, [x9, #32]
    stp     x25, x26, [x9, #48]
    stp     x27, x28, [x9, #64]
    stp     x29, x30, [x9, #80]
    mov     x10, sp
    str     x10, [x9, #96]
    adr     x10, el1_probe
    msr     elr_el2, x10
    mov     x10, #0x3c5             // EL1h, DAIF masked
    msr     spsr_el2, x10
    isb
    eret

// Runs at EL1, stage 1 off (HCR_EL2.DC=1), stage 2 on. One access, then HVC.
    .balign 64
el1_probe:
    cmp     x1, #0
    b.eq    el1_read
    cmp     x1, #1
    b.eq    el1_write
    blr     x0                      // execute: the page's stub returns its frame in x0
    hvc     #0
el1_read:
    ldr     x0, [x0]
    hvc     #0
el1_write:
    str     x2, [x0]
    mov     x0, #0
    hvc     #0

// Lower-EL synchronous exception: record the syndrome and unwind to run_el1's caller.
lower_sync:
    adr     x9, el1_trap
    mrs     x10, esr_el2
    mrs     x11, far_el2
    mrs     x12, hpfar_el2
    stp     x10, x11, [x9, #0]
    stp     x12, x0, [x9, #16]
    mrs     x10, esr_el1
    mrs     x11, far_el1
    stp     x10, x11, [x9, #32]
    adr     x9, el2_context
    ldp     x19, x20, [x9, #0]
    ldp     x21, x22, [x9, #16]
    ldp     x23, x24, [x9, #32]
    ldp     x25, x26, [x9, #48]
    ldp     x27, x28, [x9, #64]
    ldp     x29, x30, [x9, #80]
    ldr     x10, [x9, #96]
    mov     sp, x10
    ret

el2_unexpected:
    mrs     x0, esr_el2
    mrs     x1, far_el2
    mrs     x2, elr_el2
    bl      el2_crash
    b       power_off

// EL1 vectors: anything reaching EL1 is reported to EL2 with HVC #0xbad.
    .balign 2048
el1_vectors:
    .rept 16
    hvc     #0xbad
    .balign 128
    .endr

    .balign 2048
el2_vectors:
    .rept 8                         // current EL (SP0, SPx)
    b       el2_unexpected
    .balign 128
    .endr
    b       lower_sync              // lower EL AArch64: synchronous
    .balign 128
    .rept 7
    b       el2_unexpected
    .balign 128
    .endr

    .globl el1_vectors_address
el1_vectors_address:
    .quad   el1_vectors

    .data
    .balign 16
    .globl el1_trap
el1_trap:   .space 48               // esr_el2, far_el2, hpfar_el2, x0, esr_el1, far_el1
el2_context: .space 112

    .bss
    .balign 16
    .space  65536
stack_top:

    .section .note.GNU-stack, "", %progbits
