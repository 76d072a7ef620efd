// The C symbols Embedded Swift may reference in the test guest. The guest
// never allocates: an allocation fails.
#include <stddef.h>
#include <stdint.h>

int posix_memalign(void **out, size_t alignment, size_t size) { (void)out; (void)alignment; (void)size; return 12; }
void free(void *p) { (void)p; }
void *memset(void *d, int v, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)v; return d; }
void *memcpy(void *d, const void *s, size_t n) { uint8_t *a = d; const uint8_t *b = s; while (n--) *a++ = *b++; return d; }
void *memmove(void *d, const void *s, size_t n) {
    uint8_t *a = d; const uint8_t *b = s;
    if (a <= b || a >= b + n) return memcpy(d, s, n);
    while (n--) a[n] = b[n];
    return d;
}
int putchar(int c) { return c; }
void arc4random_buf(void *buf, size_t n) { uint8_t *p = buf; while (n--) *p++ = 0x5a; }
uintptr_t __stack_chk_guard = 0x2d9e5f61a4c3b817UL;
void __stack_chk_fail(void) { for (;;) __asm__ volatile("wfe"); }
