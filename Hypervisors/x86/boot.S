// Boot sector of the x86 hypervisor under Bochs: fast A20, flat 32-bit
// protected mode, jump to the hypervisor that Bochs loaded at 1 MiB
// (optramimage). Same as Tests/Conformance/ept/boot.S.
    .code16
    .globl _start
_start:
    cli
    xor     %ax, %ax
    mov     %ax, %ds
    mov     %ax, %ss
    mov     $0x7c00, %sp
    inb     $0x92, %al
    or      $2, %al
    and     $0xfe, %al
    outb    %al, $0x92
    lgdtl   gdt_descriptor
    mov     %cr0, %eax
    or      $1, %eax
    mov     %eax, %cr0
    ljmpl   $0x08, $0x100000

    .balign 8
gdt:
    .quad   0
    .quad   0x00cf9b000000ffff      // 0x08: 32-bit code, flat
    .quad   0x00cf93000000ffff      // 0x10: data, flat
gdt_descriptor:
    .word   gdt_descriptor - gdt - 1
    .long   gdt
    .org    510
    .word   0xaa55
