/*
 * privgate proxy: per-thread size-class allocator (see net.h, "Pools").
 *
 * Every block has a 16-byte header naming its class; idle blocks wait on
 * the free list of the thread that freed them, so after warm-up the
 * request path gets its memory from free lists, not from malloc. A worker
 * is one thread, so these are per-worker pools without any locking; a
 * block freed on another thread simply joins that thread's lists.
 *
 * Idle blocks are bounded per class (PX_POOL_IDLE_BYTES, at least 8
 * blocks) and in total (PX_POOL_IDLE_TOTAL); beyond, they go back to
 * malloc. Blocks larger than the largest
 * class are plain malloc'd (class PX_POOL_LARGE).
 *
 * OpenSSL's memory goes through the pools too (CRYPTO_set_mem_functions,
 * from a constructor, before OpenSSL allocates anything): OpenSSL 3.0
 * allocates the sub-packet state of every WPACKET, i.e. two or three
 * small blocks per TLS record written or read.
 *
 * Under AddressSanitizer the bodies of idle blocks are poisoned, so a use
 * after free of pooled memory is still reported (their headers are not:
 * LeakSanitizer must follow the free lists); OpenSSL keeps the sanitizer's malloc.
 */
#include "proxy/net.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#if defined(__SANITIZE_ADDRESS__)
#define PX_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PX_POOL_ASAN 1
#endif
#endif
#ifdef PX_POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* usable sizes; 16456 fits nghttp2's 16 KiB frame buffer chunk (16384 +
 * frame header + its buffer chain head) without taking 24 KiB */
static const uint32_t class_size[] = {
    32,   64,   96,   128,  192,   256,   384,   512,   768,   1024,  1536,   2048,
    3072, 4096, 6144, 8192, 12288, 16384, 16456, 24576, 32768, 65536, 131072,
};
#define NCLASS (sizeof(class_size) / sizeof(class_size[0]))
#define PX_POOL_LARGE 0xffffu
#define PX_POOL_IDLE_BYTES (4u * 1024u * 1024u)
/* and all classes together: after a burst a worker keeps at most this much
 * idle memory (23 classes x 4 MiB would be 92 MiB) */
#define PX_POOL_IDLE_TOTAL (24u * 1024u * 1024u)

struct blk {
    struct blk *next; /* while idle */
    uint32_t cls;
    uint32_t magic;
};
_Static_assert(sizeof(struct blk) == 16, "16-byte header keeps 16-byte alignment");
#define MAGIC 0x706f6f6cu

/* Idle blocks of a class: the last PX_POOL_STACK freed on an array of
 * pointers, older ones on a list through their headers. Taking a block
 * off the array reads nothing from the block: the block a request gets
 * back was often freed long before (320 exchanges in flight), and reading
 * its |next| link was a cache miss on the allocation's critical path.
 * 256 entries: with 32, a burst of frees overflowed to the list and
 * px_pool_alloc still took 2.7 % of the gateway's time (perf, json1k),
 * 1.0 % with 256; 47 KiB of thread-local pointers per thread. */
#define PX_POOL_STACK 256

struct pool {
    struct blk *stk[NCLASS][PX_POOL_STACK];
    uint16_t nstk[NCLASS];
    struct blk *free[NCLASS];
    uint32_t nfree[NCLASS]; /* idle blocks, on the array and the list */
    size_t idle;            /* bytes on the free lists (headers included) */
    bool closed;            /* px_pool_thread_release ran: frees go straight to free() */
};
static _Thread_local struct pool P;

/* class of sizes up to 4096, by (n + 31) / 32: most blocks are small, and
 * a binary search cost about as much as the rest of an allocation. A
 * constant (no constructor: OpenSSL may allocate before it would run),
 * small_class[i] = first class >= i * 32; tests/alloc/test_pool.c checks
 * it against class_size. */
#define SMALL_MAX 4096u
static const uint8_t small_class[SMALL_MAX / 32 + 1] = {
    0,  0,  1,  2,  3,  4,  4,  5,  5,  6,  6,  6,  6,  7,  7,  7,  7,  8,  8,  8,  8,  8,
    8,  8,  8,  9,  9,  9,  9,  9,  9,  9,  9,  10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,
    10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13,
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13};

static unsigned class_search(size_t n)
{
    unsigned lo = 0, hi = NCLASS;
    while (lo < hi) { /* first class >= n */
        unsigned mid = (lo + hi) / 2;
        if (class_size[mid] < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo; /* NCLASS: larger than every class */
}

static inline unsigned class_of(size_t n)
{
    /* every class up to SMALL_MAX is a multiple of 32 */
    return n <= SMALL_MAX ? small_class[(n + 31) / 32] : class_search(n);
}

static uint32_t idle_max(unsigned c)
{
    uint32_t k = PX_POOL_IDLE_BYTES / class_size[c];
    return k < 8 ? 8 : k;
}

/* idle_max of each class, as constants (px_pool_free's fast path) */
#define IDLE_MAX(s) (PX_POOL_IDLE_BYTES / (s) < 8 ? 8 : PX_POOL_IDLE_BYTES / (s))
static const uint32_t class_idle_max[] = {
    IDLE_MAX(32),    IDLE_MAX(64),    IDLE_MAX(96),     IDLE_MAX(128),   IDLE_MAX(192),
    IDLE_MAX(256),   IDLE_MAX(384),   IDLE_MAX(512),    IDLE_MAX(768),   IDLE_MAX(1024),
    IDLE_MAX(1536),  IDLE_MAX(2048),  IDLE_MAX(3072),   IDLE_MAX(4096),  IDLE_MAX(6144),
    IDLE_MAX(8192),  IDLE_MAX(12288), IDLE_MAX(16384),  IDLE_MAX(16456), IDLE_MAX(24576),
    IDLE_MAX(32768), IDLE_MAX(65536), IDLE_MAX(131072),
};
#undef IDLE_MAX
_Static_assert(sizeof class_idle_max == sizeof class_size, "one idle_max per class");

/* An idle block of class |c| (NULL when none), its body unpoisoned. */
static inline struct blk *idle_pop(unsigned c)
{
    struct blk *b;
    if (P.nstk[c])
        b = P.stk[c][--P.nstk[c]];
    else if ((b = P.free[c]) != NULL)
        P.free[c] = b->next;
    else
        return NULL;
    UNPOISON(b + 1, class_size[c]);
    P.nfree[c]--;
    P.idle -= sizeof(*b) + class_size[c];
    return b;
}

static inline void idle_push(struct blk *b, unsigned c)
{
    if (P.nstk[c] < PX_POOL_STACK) {
        P.stk[c][P.nstk[c]++] = b;
    } else {
        b->next = P.free[c];
        P.free[c] = b;
    }
    P.nfree[c]++;
    P.idle += sizeof(*b) + class_size[c];
    POISON(b + 1, class_size[c]); /* the header stays readable: LeakSanitizer follows |next| */
}

void *px_pool_alloc(size_t n)
{
    unsigned c = class_of(n);
    struct blk *b;
    if (c == NCLASS) {
        if (n > SIZE_MAX - sizeof(*b)) return NULL;
        b = malloc(sizeof(*b) + n);
        if (!b) return NULL;
        b->cls = PX_POOL_LARGE;
    } else if ((b = idle_pop(c)) != NULL) {
        return b + 1; /* an idle block keeps its class and magic */
    } else {
        b = malloc(sizeof(*b) + class_size[c]);
        if (!b) return NULL;
        b->cls = c;
    }
    b->next = NULL;
    b->magic = MAGIC;
    return b + 1;
}

static struct blk *head(void *p)
{
    struct blk *b = (struct blk *)p - 1;
    if (b->magic != MAGIC) abort(); /* not a pool block: memory corruption */
    return b;
}

/* Frees one idle block of the class with the most idle bytes; false when
 * nothing is idle. */
static bool trim_largest(void)
{
    unsigned best = NCLASS;
    size_t most = 0;
    for (unsigned c = 0; c < NCLASS; c++) {
        size_t bytes = (size_t)P.nfree[c] * class_size[c];
        if (bytes > most) {
            most = bytes;
            best = c;
        }
    }
    if (best == NCLASS) return false;
    struct blk *v = idle_pop(best);
    v->magic = 0;
    free(v);
    return true;
}

/* px_pool_free when the block does not simply join its free list: large,
 * after px_pool_thread_release, its class full, or the total over
 * PX_POOL_IDLE_TOTAL. Out of line: the common path then needs no stack
 * frame (about 15 instructions less per free, 30 frees per request). */
static __attribute__((noinline)) void pool_free_slow(struct blk *b, unsigned c)
{
    if (c == PX_POOL_LARGE || P.closed || P.nfree[c] >= idle_max(c)) {
        b->magic = 0;
        free(b);
        return;
    }
    /* over the total: the class holding most idle memory gives some back,
     * not this one — a burst of one size must not starve the sizes the
     * steady state needs (they would go back to malloc every time) */
    while (P.idle + sizeof(*b) + class_size[c] > PX_POOL_IDLE_TOTAL && trim_largest())
        ;
    idle_push(b, c);
}

void px_pool_free(void *p)
{
    if (!p) return;
    struct blk *b = head(p);
    unsigned c = b->cls;
    if (c != PX_POOL_LARGE && !P.closed && P.nfree[c] < class_idle_max[c] &&
        P.idle + sizeof(*b) + class_size[c] <= PX_POOL_IDLE_TOTAL) {
        idle_push(b, c);
        return;
    }
    pool_free_slow(b, c);
}

size_t px_pool_usable(const void *p)
{
    const struct blk *b = (const struct blk *)p - 1;
    return b->cls == PX_POOL_LARGE ? 0 : class_size[b->cls];
}

void *px_pool_calloc(size_t k, size_t n)
{
    if (n && k > SIZE_MAX / n) return NULL;
    void *p = px_pool_alloc(k * n);
    if (p) memset(p, 0, k * n);
    return p;
}

void *px_pool_realloc(void *p, size_t n)
{
    if (!p) return px_pool_alloc(n);
    struct blk *b = head(p);
    if (b->cls == PX_POOL_LARGE) {
        if (class_of(n) == NCLASS) {
            struct blk *nb = realloc(b, sizeof(*b) + n);
            return nb ? nb + 1 : NULL;
        }
        /* shrinking into a class: the old size is unknown, but n is smaller
         * than every large block */
        void *q = px_pool_alloc(n);
        if (!q) return NULL;
        memcpy(q, p, n);
        px_pool_free(p);
        return q;
    }
    size_t have = class_size[b->cls];
    if (n <= have) return p;
    void *q = px_pool_alloc(n);
    if (!q) return NULL;
    memcpy(q, p, have);
    px_pool_free(p);
    return q;
}

void px_pool_thread_release(void)
{
    for (unsigned c = 0; c < NCLASS; c++) {
        struct blk *b;
        while ((b = idle_pop(c)) != NULL)
            free(b);
    }
    P.idle = 0;
    P.closed = true;
}

size_t px_pool_idle_bytes(void)
{
    size_t t = 0;
    for (unsigned c = 0; c < NCLASS; c++)
        t += (size_t)P.nfree[c] * (class_size[c] + sizeof(struct blk));
    return t;
}

/* ------------------------------------------------------------- nghttp2 */

static void *ng_malloc(size_t n, void *ud)
{
    (void)ud;
    return px_pool_alloc(n);
}
static void ng_free(void *p, void *ud)
{
    (void)ud;
    px_pool_free(p);
}
static void *ng_calloc(size_t k, size_t n, void *ud)
{
    (void)ud;
    return px_pool_calloc(k, n);
}
static void *ng_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return px_pool_realloc(p, n);
}

nghttp2_mem *px_pool_nghttp2_mem(void)
{
    /* one table for every session: nghttp2 copies it into each session */
    static nghttp2_mem mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};
    return &mem;
}

/* -------------------------------------------------------------- OpenSSL */

#ifndef PX_POOL_ASAN
static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return px_pool_alloc(n);
}
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n == 0) { /* CRYPTO_realloc(p, 0) frees */
        px_pool_free(p);
        return NULL;
    }
    return px_pool_realloc(p, n);
}
static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    px_pool_free(p);
}

/* Runs before main, hence before OpenSSL's first allocation; if OpenSSL
 * has allocated already, the call fails and OpenSSL keeps malloc. */
__attribute__((constructor)) static void px_pool_openssl(void)
{
    CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free);
}
#endif
