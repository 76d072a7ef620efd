// The assembly of the x86 hypervisor (everything else is Embedded Swift):
//   _start          BSP: 32-bit protected mode -> long mode (first 4 GiB
//                   identity-mapped by 1 GiB pages), TSS, hypervisor_main
//   ap_trampoline   APs (INIT-SIPI-SIPI, vector 0x08): real mode -> the same
//                   long mode on their own stack, hypervisor_ap_main(index)
//   vmx_run         VMLAUNCH/VMRESUME with the guest's GPRs, and the VM-exit
//                   entry point that saves them
//   guest_code      the guest: 32-bit protected mode, paging off, copied to
//                   its own frame; it asks for commands with VMCALL
// The long-mode setup is the one of Tests/Conformance/ept/start.S.
#define AP_STACK_SIZE 65536
#define MAX_APS 7

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
    call    enter_long_mode_32
    ljmp    $0x18, $bsp_long_mode

// PAE, CR3 = host_pml4, EFER.LME, PG|NE|PE, the 64-bit GDT; returns in
// 32-bit compatibility of the new GDT (the caller far-jumps to 64-bit code).
enter_long_mode_32:
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
    or      $0x80000021, %eax       // PG, NE, PE
    mov     %eax, %cr0
    lgdt    gdt_descriptor
    ret

    .code64
bsp_long_mode:
    call    load_data_segments
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
    call    hypervisor_main
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

load_data_segments:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     %ax, %fs
    mov     %ax, %gs
    ret

// APs: the trampoline is copied to 0x8000 (SIPI vector 0x08) and runs in
// real mode with CS = 0x800; it uses only CS-relative data, then jumps to
// ap_start32 in the image. The hypervisor runs on the BSP's host page
// tables; TR is never loaded on an AP (only VM exits load it, from the
// host-state area).
    .code16
    .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
    cli
    mov     %cs, %ax
    mov     %ax, %ds
    lgdtl   ap_gdt_pointer - ap_trampoline_start
    mov     %cr0, %eax
    or      $1, %eax
    mov     %eax, %cr0
    ljmpl   $0x08, $ap_start32
    .balign 8
ap_gdt_pointer:
    .word   gdt_end - gdt - 1
    .long   gdt
ap_trampoline_end:

    .code32
ap_start32:
    mov     $0x10, %ax
    mov     %ax, %ds
    mov     %ax, %es
    mov     %ax, %ss
    mov     $1, %eax
    lock xaddl %eax, ap_next_index  // this AP's index: 1, 2, ...
    mov     %eax, %edi
    cmp     $MAX_APS, %eax
    ja      5f
    imul    $AP_STACK_SIZE, %eax
    add     $ap_stacks, %eax
    mov     %eax, %esp
    push    %edi
    call    enter_long_mode_32
    pop     %edi
    ljmp    $0x18, $ap_long_mode
5:  cli
    hlt
    jmp     5b

    .code64
ap_long_mode:
    call    load_data_segments
    mov     %edi, %edi
    call    hypervisor_ap_main
6:  cli
    hlt
    jmp     6b

// int vmx_run(struct hv_guest_registers *regs, int launched)
// Loads the guest's GPRs, VMLAUNCH (launched == 0) or VMRESUME. Returns 0
// after a VM exit (the guest's GPRs saved in *regs), 1 when the entry
// instruction itself failed (VMfailInvalid/VMfailValid).
    .globl vmx_run
vmx_run:
    push    %rbx
    push    %rbp
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    push    %rdi                    // regs, found again at the exit
    mov     $0x6c14, %rax           // HOST_RSP
    vmwrite %rsp, %rax
    mov     $0x6c16, %rax           // HOST_RIP
    lea     vmx_exit(%rip), %rdx
    vmwrite %rdx, %rax
    test    %esi, %esi              // flags survive the loads below
    mov     8(%rdi), %rbx
    mov     16(%rdi), %rcx
    mov     24(%rdi), %rdx
    mov     32(%rdi), %rsi
    mov     48(%rdi), %rbp
    mov     56(%rdi), %r8
    mov     64(%rdi), %r9
    mov     72(%rdi), %r10
    mov     80(%rdi), %r11
    mov     88(%rdi), %r12
    mov     96(%rdi), %r13
    mov     104(%rdi), %r14
    mov     112(%rdi), %r15
    mov     0(%rdi), %rax
    mov     40(%rdi), %rdi
    jnz     7f
    vmlaunch
    jmp     8f
7:  vmresume
8:  add     $8, %rsp
    mov     $1, %eax
    jmp     9f
vmx_exit:
    push    %rdi
    mov     8(%rsp), %rdi
    mov     %rax, 0(%rdi)
    mov     %rbx, 8(%rdi)
    mov     %rcx, 16(%rdi)
    mov     %rdx, 24(%rdi)
    mov     %rsi, 32(%rdi)
    mov     %rbp, 48(%rdi)
    mov     %r8, 56(%rdi)
    mov     %r9, 64(%rdi)
    mov     %r10, 72(%rdi)
    mov     %r11, 80(%rdi)
    mov     %r12, 88(%rdi)
    mov     %r13, 96(%rdi)
    mov     %r14, 104(%rdi)
    mov     %r15, 112(%rdi)
    pop     %rax
    mov     %rax, 40(%rdi)
    add     $8, %rsp
    xor     %eax, %eax
9:  pop     %r15
    pop     %r14
    pop     %r13
    pop     %r12
    pop     %rbp
    pop     %rbx
    ret

// The guest: 32-bit protected mode, paging off (unrestricted guest), so
// guest-linear = guest-physical. Position-independent (relative jumps
// only); the hypervisor copies it to the guest's code frame. It asks for a
// command with VMCALL; the hypervisor answers in the registers:
//   eax = op, ebx = base, ecx = count, edx = stride, esi = seed
//   op 1 stamp:  dword (address ^ seed) at +0 and +0xffc of each page
//   op 2 verify: the same, read back; eax = mismatches, ebx = first bad page
//   op 3 touch:  read +0 of each page
//   op 4 mmio:   mov %esi,(%ebx) then mov (%ebx),%eax (fixed encodings the
//                hypervisor emulates: 89 33, 8b 03)
//   op 6 watch:  verify +0 of ecx pages from ebx over and over, counting
//                mismatches, bumping the heartbeat at 4(%edi), until the
//                dword at (%edi) is nonzero; eax = mismatches (esp serves as
//                a register: the guest has no stack and takes no interrupts)
//   op 7 write:  write the heartbeat at +8 of ecx pages from ebx over and
//                over, bumping the heartbeat at 4(%edi), until (%edi) != 0
//   other: hlt
    .code32
    .globl guest_code_start, guest_code_end, guest_mmio_store, guest_mmio_load
guest_code_start:
guest_loop:
    vmcall
    cmp     $1, %eax
    je      g_stamp
    cmp     $2, %eax
    je      g_verify
    cmp     $3, %eax
    je      g_touch
    cmp     $4, %eax
    je      g_mmio
    cmp     $6, %eax
    je      g_watch
    cmp     $7, %eax
    je      g_write
    hlt
    jmp     guest_loop
g_stamp:
    mov     %ebx, %edi
1:  test    %ecx, %ecx
    jz      2f
    mov     %edi, %eax
    xor     %esi, %eax
    mov     %eax, (%edi)
    mov     %eax, 0xffc(%edi)
    add     %edx, %edi
    dec     %ecx
    jmp     1b
2:  xor     %eax, %eax
    jmp     guest_loop
g_verify:
    mov     %ebx, %edi
    xor     %ebp, %ebp
1:  test    %ecx, %ecx
    jz      4f
    mov     %edi, %eax
    xor     %esi, %eax
    cmp     (%edi), %eax
    jne     2f
    cmp     0xffc(%edi), %eax
    je      3f
2:  inc     %ebp
    cmp     $1, %ebp
    jne     3f
    mov     %edi, %ebx
3:  add     %edx, %edi
    dec     %ecx
    jmp     1b
4:  mov     %ebp, %eax
    jmp     guest_loop
g_touch:
    mov     %ebx, %edi
1:  test    %ecx, %ecx
    jz      2f
    mov     (%edi), %eax
    add     %edx, %edi
    dec     %ecx
    jmp     1b
2:  xor     %eax, %eax
    jmp     guest_loop
g_watch:
    xor     %ebp, %ebp
1:  incl    4(%edi)
    mov     %ecx, %edx
    mov     %ebx, %esp
2:  mov     %esp, %eax
    xor     %esi, %eax
    cmp     (%esp), %eax
    je      3f
    inc     %ebp
3:  add     $4096, %esp
    dec     %edx
    jnz     2b
    cmpl    $0, (%edi)
    je      1b
    mov     %ebp, %eax
    jmp     guest_loop
g_write:
1:  incl    4(%edi)
    mov     %ecx, %edx
    mov     %ebx, %esp
2:  mov     4(%edi), %eax
    mov     %eax, 8(%esp)
    add     $4096, %esp
    dec     %edx
    jnz     2b
    cmpl    $0, (%edi)
    je      1b
    xor     %eax, %eax
    jmp     guest_loop
g_mmio:
guest_mmio_store:
    .byte   0x89, 0x33              // mov %esi, (%ebx)
guest_mmio_load:
    .byte   0x8b, 0x03              // mov (%ebx), %eax
    jmp     guest_loop
guest_code_end:

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
    .balign 4
ap_next_index:
    .long   1

    .bss
    .balign 4096
    .globl host_pml4
host_pml4: .space 4096
host_pdpt: .space 4096
    .globl host_tss
host_tss:  .space 4096
    .space  4096
boot_stack_top:
    .space  262144
    .globl stack_top
stack_top:
    .balign 16
ap_stacks:
    .space  AP_STACK_SIZE * (MAX_APS + 1)

    .section .note.GNU-stack, "", @progbits
