/* proxy/pool.c: the per-thread size-class allocator. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy/net.h"

/* the classes of pool.c, in order */
static const size_t CLASSES[] = {32,    64,    96,    128,   192,   256,   384,   512,
                                 768,   1024,  1536,  2048,  3072,  4096,  6144,  8192,
                                 12288, 16384, 16456, 24576, 32768, 65536, 131072};
#define NCL (sizeof(CLASSES) / sizeof(CLASSES[0]))

static size_t expect_class(size_t n)
{
    for (size_t i = 0; i < NCL; i++)
        if (CLASSES[i] >= n) return CLASSES[i];
    return 0;
}

Test(pool, every_size_gets_the_smallest_class_that_fits)
{
    for (size_t n = 0; n <= 140000; n += n < 5000 ? 1 : 97) {
        unsigned char *p = px_pool_alloc(n);
        cr_assert(p);
        cr_assert_eq(px_pool_usable(p), expect_class(n), "size %zu: usable %zu, want %zu", n,
                     px_pool_usable(p), expect_class(n));
        memset(p, 0xab, n);
        px_pool_free(p);
    }
}

Test(pool, freed_blocks_are_reused_and_realloc_keeps_the_bytes)
{
    void *a = px_pool_alloc(100);
    px_pool_free(a);
    void *b = px_pool_alloc(120); /* same class (128) */
    cr_expect_eq(a, b, "a freed block of the class is reused");
    memset(b, 7, 120);
    unsigned char *c = px_pool_realloc(b, 128); /* fits: same block */
    cr_expect_eq((void *)c, b);
    c = px_pool_realloc(c, 5000);
    for (int i = 0; i < 120; i++)
        cr_assert_eq(c[i], 7);
    c = px_pool_realloc(c, 300000); /* larger than every class */
    cr_assert(c);
    for (int i = 0; i < 120; i++)
        cr_assert_eq(c[i], 7);
    c = px_pool_realloc(c, 10); /* back into a class */
    for (int i = 0; i < 10; i++)
        cr_assert_eq(c[i], 7);
    px_pool_free(c);
    unsigned char *z = px_pool_calloc(10, 30);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(z[i], 0);
    px_pool_free(z);
    cr_expect_gt(px_pool_idle_bytes(), 0);
}

static void *other_thread(void *arg)
{
    px_pool_free(arg); /* joins this thread's lists */
    void *p = px_pool_alloc(64);
    px_pool_free(p);
    px_pool_thread_release();
    cr_assert_eq(px_pool_idle_bytes(), 0);
    px_pool_free(px_pool_alloc(64)); /* after release: straight to free() */
    cr_assert_eq(px_pool_idle_bytes(), 0);
    return NULL;
}

Test(pool, a_block_may_be_freed_on_another_thread)
{
    void *p = px_pool_alloc(64);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, other_thread, p), 0);
    pthread_join(t, NULL);
}

Test(pool, idle_blocks_are_bounded)
{
    enum { N = 100 };
    void *v[N];
    for (int i = 0; i < N; i++)
        v[i] = px_pool_alloc(131072);
    for (int i = 0; i < N; i++)
        px_pool_free(v[i]);
    /* 4 MiB of idle blocks per class, at least 8: 32 blocks of 128 KiB */
    cr_expect_leq(px_pool_idle_bytes(), 4u * 1024u * 1024u + 32u * 16u + 64u * 1024u);
    px_pool_thread_release(); /* idle blocks are poisoned: LeakSanitizer would not see them */
}

Test(pool, idle_blocks_are_bounded_over_all_classes)
{
    /* 4 MiB in each of 10 classes would be 40 MiB idle: the total bound
     * (24 MiB) keeps less, and the blocks beyond it went back to malloc */
    static const size_t sizes[] = {4096,  6144,  8192,  12288, 16384,
                                   16456, 24576, 32768, 65536, 131072};
    enum { PER = (4 * 1024 * 1024) / 4096 };
    static void *v[PER];
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = (4u * 1024u * 1024u) / sizes[s];
        for (size_t i = 0; i < n; i++)
            v[i] = px_pool_alloc(sizes[s]);
        for (size_t i = 0; i < n; i++)
            px_pool_free(v[i]);
    }
    size_t idle = px_pool_idle_bytes();
    cr_expect_leq(idle, 24u * 1024u * 1024u, "%zu bytes idle", idle);
    cr_expect_geq(idle, 20u * 1024u * 1024u, "%zu bytes idle: the pool keeps too little", idle);
    /* the size used last is kept: older, bigger piles gave way to it */
    void *small[64];
    for (int i = 0; i < 64; i++)
        small[i] = px_pool_alloc(4096);
    for (int i = 0; i < 64; i++)
        px_pool_free(small[i]);
    size_t before = px_pool_idle_bytes();
    cr_expect_leq(before, 24u * 1024u * 1024u);
    for (int i = 0; i < 64; i++)
        small[i] = px_pool_alloc(4096);
    cr_expect_eq(px_pool_idle_bytes(), before - 64u * (4096u + 16u),
                 "the 4 KiB blocks were not kept (idle %zu -> %zu)", before, px_pool_idle_bytes());
    for (int i = 0; i < 64; i++)
        px_pool_free(small[i]);
    px_pool_thread_release();
}
