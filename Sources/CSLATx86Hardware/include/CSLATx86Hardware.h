// The INVEPT instruction for SLATx86Hardware (Intel SDM Vol. 3C, "INVEPT —
// Invalidate Translations Derived from EPT"), one static inline function.
// The invalidation sequences that use it are composed in Swift (see
// Docs/bare-metal.md, the x86 part).
//
// Defined only when compiling for x86-64; on other targets this header
// declares nothing and the Swift module leaves out the hardware issuer.
#ifndef CSLATX86HARDWARE_H
#define CSLATX86HARDWARE_H

#if defined(__x86_64__)

// INVEPT type (1 single-context, 2 all-context) with the 128-bit descriptor
// {EPTP, 0}. Returns 0 on success, 1 on VMfailInvalid or VMfailValid
// (CF or ZF set). The "memory" clobber orders the table stores before it.
static inline int slat_invept(unsigned long long type, unsigned long long eptp) {
    struct { unsigned long long eptp, reserved; } descriptor = { eptp, 0 };
    unsigned char failed;
    __asm__ volatile("invept %1, %2\n\tsetbe %0"
                     : "=q"(failed)
                     : "m"(descriptor), "r"(type)
                     : "cc", "memory");
    return failed;
}

#endif // __x86_64__

#endif // CSLATX86HARDWARE_H
