// The C symbols the Embedded Swift runtime needs (allocator, memory
// functions, console) for the bare-metal hypervisor. The heap is a fixed
// physical region; blocks come in power-of-two classes with a free list
// each, under one spin lock (any CPU may allocate or free).
#include <stddef.h>
#include <stdint.h>

#define HEAP_START 0x42000000UL
#define HEAP_END 0x44000000UL
#define CLASSES 24

static uintptr_t heap_next = HEAP_START;
static void *free_lists[CLASSES];
static uint32_t heap_lock;

static void lock(void) {
    while (__atomic_exchange_n(&heap_lock, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&heap_lock, __ATOMIC_RELAXED)) {}
    }
}
static void unlock(void) { __atomic_store_n(&heap_lock, 0, __ATOMIC_RELEASE); }

// Header before each block: [class, original block].
static void *allocate_class(unsigned c) {
    void *p = free_lists[c];
    if (p) {
        free_lists[c] = *(void **)p;
        return p;
    }
    size_t size = (size_t)16 << c;
    uintptr_t block = heap_next + 16;
    if (block + size > HEAP_END) return NULL;
    heap_next = block + size;
    ((uint64_t *)block)[-2] = c;
    ((uint64_t *)block)[-1] = block;
    return (void *)block;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < 16) alignment = 16;
    size_t need = size + (alignment > 16 ? alignment : 0);
    unsigned c = 0;
    while (((size_t)16 << c) < need) {
        if (++c >= CLASSES) return 12;
    }
    lock();
    void *block = allocate_class(c);
    unlock();
    if (!block) return 12;
    uintptr_t user = ((uintptr_t)block + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (user != (uintptr_t)block) {
        ((uint64_t *)user)[-2] = c;
        ((uint64_t *)user)[-1] = (uintptr_t)block;
    }
    *out = (void *)user;
    return 0;
}

void free(void *p) {
    if (!p) return;
    unsigned c = (unsigned)((uint64_t *)p)[-2];
    void *block = (void *)((uint64_t *)p)[-1];
    lock();
    *(void **)block = free_lists[c];
    free_lists[c] = block;
    unlock();
}

uint64_t hyp_heap_used(void) { return heap_next - HEAP_START; }

void *memset(void *d, int v, size_t n) {
    uint8_t *p = d;
    while (n && ((uintptr_t)p & 7)) { *p++ = (uint8_t)v; n--; }
    uint64_t w = (uint8_t)v * 0x0101010101010101ULL;
    while (n >= 8) { *(volatile uint64_t *)p = w; p += 8; n -= 8; }
    while (n--) *p++ = (uint8_t)v;
    return d;
}

void *memcpy(void *d, const void *s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if ((((uintptr_t)dp | (uintptr_t)sp) & 7) == 0) {
        while (n >= 8) { *(volatile uint64_t *)dp = *(const uint64_t *)sp; dp += 8; sp += 8; n -= 8; }
    }
    while (n--) *(volatile uint8_t *)dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n) {
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp <= sp || dp >= sp + n) return memcpy(d, s, n);
    while (n--) ((volatile uint8_t *)dp)[n] = sp[n];
    return d;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++) if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

// Hashing seeds (Embedded Swift's Hasher): fixed, the image is deterministic.
void arc4random_buf(void *buf, size_t n) {
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(0x9E + i * 37);
}

uintptr_t __stack_chk_guard = 0x595e9fbd94fda766UL;
void __stack_chk_fail(void) { for (;;) __asm__ volatile("wfe"); }

// Embedded Swift's print and fatal errors write here: the PL011 data register.
int putchar(int c) {
    *(volatile uint32_t *)0x09000000UL = (uint32_t)c;
    return c;
}
