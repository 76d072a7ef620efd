// Host side entry at 1 MiB: 32-bit protected mode -> long mode with the
// first 4 GiB identity-mapped by 1 GiB pages, then host_main (main.c).
    .section .text.start, "ax"
    .code32
    .globl _start
_start:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     $boot_stack_top, %esp
    // PML4[0] -> PDPT; PDPT[0..3] = 1 GiB pages (present, writable, large)
    mov     $host_pdpt, %eax
    or      $3, %eax
    mov     %eax, host_pml4
    xor     %ecx, %ecx
1:  mov     %ecx, %eax
    shl     $30, %eax
    or      $0x83, %eax
    mov     %eax, host_pdpt(,%ecx,8)
    inc     %ecx
    cmp     $4, %ecx
    jb      1b
    mov     %cr4, %eax
    or      $0x20, %eax             // PAE
    mov     %eax, %cr4
    mov     $host_pml4, %eax
    mov     %eax, %cr3
    mov     $0xc0000080, %ecx       // EFER.LME
    rdmsr
    or      $0x100, %eax
    wrmsr
    mov     %cr0, %eax
    or      $0x80000020, %eax       // PG, NE
    mov     %eax, %cr0
    lgdt    gdt_descriptor
    ljmp    $0x18, $long_mode

    .code64
long_mode:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     %ax, %fs
    mov     %ax, %gs
    // TSS descriptor (16 bytes at 0x20): base = host_tss, limit 0x67, type 9
    mov     $host_tss, %rax
    mov     %rax, %rbx
    and     $0xffff, %rbx
    shl     $16, %rbx
    or      $0x67, %rbx
    mov     %rax, %rcx
    shr     $16, %rcx
    and     $0xff, %rcx
    shl     $32, %rcx
    or      %rcx, %rbx
    mov     $0x89, %rcx
    shl     $40, %rcx
    or      %rcx, %rbx
    mov     %rax, %rcx
    shr     $24, %rcx
    and     $0xff, %rcx
    shl     $56, %rcx
    or      %rcx, %rbx
    mov     %rbx, gdt + 0x20
    shr     $32, %rax
    mov     %rax, gdt + 0x28
    mov     $0x20, %ax
    ltr     %ax
    mov     $stack_top, %rsp
    call    host_main
    .globl  shutdown
shutdown:
    mov     $0x8900, %dx
    mov     $shutdown_string, %rsi
2:  lodsb
    test    %al, %al
    jz      3f
    outb    %al, %dx
    jmp     2b
3:  cli
    hlt
    jmp     3b

// int vm_run(uint64_t address, uint64_t op, uint64_t token, int launched)
// Enters the guest at guest_entry with eax/ebx/ecx = address/op/token.
// Returns 0 after a VM exit (guest registers in guest_gprs), 1 if the
// VM entry instruction itself failed.
    .globl vm_run
vm_run:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    mov     $0x6c14, %r8            // HOST_RSP
    vmwrite %rsp, %r8
    mov     $0x6c16, %r8            // HOST_RIP
    mov     $vm_exit, %r9
    vmwrite %r9, %r8
    mov     %rdi, %rax
    mov     %rsi, %rbx
    mov     %rdx, %r8
    test    %ecx, %ecx
    mov     %r8, %rcx
    jnz     4f
    vmlaunch
    jmp     5f
4:  vmresume
5:  mov     $1, %eax
    jmp     6f
vm_exit:
    mov     %rax, guest_gprs
    mov     %rbx, guest_gprs + 8
    mov     %rcx, guest_gprs + 16
    mov     %rdx, guest_gprs + 24
    xor     %eax, %eax
6:  pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

// Guest code: 64-bit mode, guest paging identity-maps all 256 TiB with
// 1 GiB pages (tables at GUEST_PAGE_TABLES, identity-mapped by EPT), so
// guest-linear = guest-physical (sign-extended above 128 TiB). One access
// with rax = address, rbx = op, ecx = token, then VMCALL; the result in rdx.
    .balign 16
    .globl guest_entry
guest_entry:
    cmp     $0, %rbx
    je      7f
    cmp     $1, %rbx
    je      8f
    call    *%rax                   // execute: the page's stub returns its frame in eax
    mov     %rax, %rdx
    vmcall
7:  mov     (%rax), %rdx
    vmcall
8:  mov     %ecx, (%rax)
    xor     %edx, %edx
    vmcall

    .data
    .balign 16
gdt:
    .quad   0
    .quad   0x00cf9b000000ffff      // 0x08: 32-bit code
    .quad   0x00cf93000000ffff      // 0x10: data
    .quad   0x00af9b000000ffff      // 0x18: 64-bit code
    .quad   0, 0                    // 0x20: TSS (filled in)
gdt_end:
    .globl gdt_descriptor
gdt_descriptor:
    .word   gdt_end - gdt - 1
    .quad   gdt
shutdown_string:
    .asciz  "Shutdown"
    .globl guest_gprs
    .balign 8
guest_gprs: .quad 0, 0, 0, 0

    .bss
    .balign 4096
    .globl host_pml4
host_pml4: .space 4096
host_pdpt: .space 4096
    .globl host_tss
host_tss:  .space 4096
    .space  4096
boot_stack_top:
    .space  65536
    .globl stack_top
stack_top:
    .space  65536
    .globl guest_stack_top
guest_stack_top:

    .section .note.GNU-stack, "", @progbits
