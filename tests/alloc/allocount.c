/*
 * LD_PRELOAD allocation counter for tests/alloc (test_alloc.c).
 *
 * Counts malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc, pvalloc and free calls of every thread of the process into a
 * shared-memory file named by PRIVGATE_ALLOC_COUNTER (MAP_SHARED, atomic
 * counters), so the test process can read them while the gateway runs.
 * The real allocator is reached through glibc's __libc_* entry points:
 * no dlsym, hence no recursion while resolving symbols.
 *
 * With PRIVGATE_ALLOC_TRACE set, every allocation made while the shared
 * `armed` flag is set writes a backtrace to stderr (debugging aid to find
 * what allocates on the request path; never used by the test's asserts).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "allocount.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static struct pg_alloc_counts *C;
static int trace;
static _Thread_local int in_trace;

__attribute__((constructor)) static void pg_alloc_init(void)
{
    const char *path = getenv("PRIVGATE_ALLOC_COUNTER");
    if (!path || !*path) return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void *m = mmap(NULL, sizeof(*C), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return;
    trace = getenv("PRIVGATE_ALLOC_TRACE") != NULL;
    C = m;
    atomic_store(&C->attached, 1);
}

static void count(_Atomic uint64_t *c, size_t size)
{
    if (c == &C->free) {
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
        return; /* traces show allocations only */
    }
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    if (trace && !in_trace && atomic_load_explicit(&C->armed, memory_order_relaxed)) {
        in_trace = 1; /* backtrace() may allocate once (it loads libgcc_s) */
        void *bt[24];
        int n = backtrace(bt, 24);
        char sep[48] = "---- allocation ";
        size_t k = strlen(sep), d = 1;
        while (d * 10 <= size)
            d *= 10;
        for (; d > 0 && k < sizeof sep - 2; d /= 10)
            sep[k++] = (char)('0' + size / d % 10);
        sep[k++] = '\n';
        ssize_t w = write(2, sep, k);
        (void)w;
        backtrace_symbols_fd(bt, n, 2);
        in_trace = 0;
    }
}

#define COUNT(f)                                                                                   \
    do {                                                                                           \
        if (C) count(&C->f, size);                                                                 \
    } while (0)

void *malloc(size_t n)
{
    size_t size = n;
    COUNT(malloc);
    return __libc_malloc(n);
}

void *calloc(size_t k, size_t n)
{
    size_t size = k * n;
    COUNT(calloc);
    return __libc_calloc(k, n);
}

void *realloc(void *p, size_t n)
{
    size_t size = n;
    COUNT(realloc);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    size_t size = 0;
    if (p) COUNT(free);
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    size_t size = n;
    COUNT(memalign);
    if (align % sizeof(void *) != 0 || (align & (align - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    size_t size = n;
    COUNT(memalign);
    return __libc_memalign(align, n);
}

void *memalign(size_t align, size_t n)
{
    size_t size = n;
    COUNT(memalign);
    return __libc_memalign(align, n);
}

void *valloc(size_t n)
{
    size_t size = n;
    COUNT(memalign);
    return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n);
}

void *pvalloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = n;
    COUNT(memalign);
    return __libc_memalign(pg, (n + pg - 1) / pg * pg);
}
