// Guest entry at EL1 (stage 1 off). vCPU 0 enters from the hypervisor
// with x0 = 0; vCPU 1 enters here through PSCI CPU_ON with x0 = 1.
        .section .text.boot, "ax"
        .global _start
_start:
        msr     daifset, #0xf
        ldr     x1, =0x40120000         // vCPU 0 stack top; vCPU 1 gets the next 128 KiB
        lsl     x2, x0, #17
        add     x1, x1, x2
        mov     sp, x1
        cbnz    x0, 2f
        ldr     x1, =__bss_start
        ldr     x2, =__bss_end
1:      cmp     x1, x2
        b.hs    2f
        str     xzr, [x1], #8
        b       1b
2:      bl      guest_main
3:      wfe
        b       3b
