// The C symbols Embedded Swift's runtime needs on bare metal: a bump
// allocator over the heap region (free does nothing: the hypervisor runs
// once and stops Bochs) and the memory functions. No SSE, no red zone.
#include <stddef.h>
#include <stdint.h>

#define HEAP_BASE 0x1000000UL   /* 16 MiB */
#define HEAP_SIZE 0x2000000UL   /* 32 MiB */

static uint64_t heap_used;

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment < 16) alignment = 16;
    uint64_t old = __atomic_load_n(&heap_used, __ATOMIC_RELAXED), start, end;
    do {
        start = (HEAP_BASE + old + alignment - 1) & ~(uint64_t)(alignment - 1);
        end = start + size - HEAP_BASE;
        if (end > HEAP_SIZE) return 12; /* ENOMEM */
    } while (!__atomic_compare_exchange_n(&heap_used, &old, end, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    *result = (void *)start;
    return 0;
}

void free(void *pointer) { (void)pointer; }

uint64_t hv_heap_used(void) { return __atomic_load_n(&heap_used, __ATOMIC_RELAXED); }

void *memset(void *d, int c, size_t n) {
    volatile unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n) {
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
    return d;
}
void *memmove(void *d, const void *s, size_t n) {
    volatile unsigned char *p = d;
    const unsigned char *q = s;
    if (p < q) { while (n--) *p++ = *q++; }
    else { p += n; q += n; while (n--) *--p = *--q; }
    return d;
}
int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *p = a, *q = b;
    for (; n; n--, p++, q++) if (*p != *q) return *p < *q ? -1 : 1;
    return 0;
}
