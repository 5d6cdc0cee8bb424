/*
 * The hot path allocates nothing (STYLE 5, 7): this executable interposes
 * malloc/calloc/realloc/free (and the aligned variants), forwarding to
 * glibc's __libc_* entry points with a counter that is armed only around
 * the measured code. After flt_json_new and one warm-up document, filtering
 * further documents -- hash, mask, truncate, year, removals, megabyte
 * values and names fed in chunks -- must allocate nothing.
 *
 * Not built in sanitizer builds (the sanitizers own malloc).
 */
#include "jt.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile int armed;
static volatile unsigned long allocs;

static void count(void)
{
    if (armed) __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    count();
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

void *aligned_alloc(size_t al, size_t n)
{
    count();
    return __libc_memalign(al, n);
}

void *memalign(size_t al, size_t n)
{
    count();
    return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    count();
    void *p = __libc_memalign(al, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* A sink into fixed storage: never allocates. */
struct fixed {
    char *p;
    size_t len, cap;
    bool overflow;
};

static int fixed_sink(void *ud, const char *p, size_t n)
{
    struct fixed *b = ud;
    if (b->len + n > b->cap) {
        b->overflow = true;
        return 0;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static struct flt_rules *mk(const struct jt_rule *rs)
{
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    return r;
}

static const struct jt_rule rules[] = {JT_KEEP("order_id"),
                                       JT_HASH("customer_id"),
                                       JT_MASKL("recipient.phone", 4),
                                       JT_KEEP("recipient.name"),
                                       JT_TRUNC("recipient.city", 3),
                                       JT_YEAR("dob"),
                                       JT_KEEP("items[].sku"),
                                       JT_MASKF("items[].code", 2),
                                       JT_KEEP("x.*.tag"),
                                       JT_KEEP("meta.\"x.y\""),
                                       JT_END};

Test(alloc, hot_path_allocates_nothing)
{
    struct flt_rules *r = mk(rules);
    struct flt_json *f = flt_json_new(64);
    cr_assert(f != NULL);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 64};
    struct flt_report *rep = malloc(sizeof *rep);
    struct fixed out = {.p = malloc(1 << 16), .cap = 1 << 16};

    /* 100 documents prepared up front */
    enum { NDOC = 100 };
    char *docs[NDOC];
    for (int i = 0; i < NDOC; i++) {
        docs[i] = malloc(2048);
        snprintf(docs[i], 2048,
                 "{\"order_id\":%d,\"customer_id\":\"c-%d\",\"email\":\"u%d@example.com\","
                 "\"recipient\":{\"name\":\"N\\u00e9%d\",\"phone\":\"+44 20 7946 %04d\","
                 "\"city\":\"\\u00c9vry%d\",\"zip\":\"%05d\"},\"dob\":\"19%02d-0%d-1%dT10:00Z\","
                 "\"items\":[{\"sku\":\"S%d\",\"code\":\"\xf0\x9f\x98\x80%dxyz\",\"price\":%d.5},"
                 "3,[4],{\"sku\":%d}],\"x\":{\"p\":{\"tag\":\"t%d\",\"other\":[1,2,{\"a\":null}]}},"
                 "\"meta\":{\"x.y\":true,\"x\":{\"y\":false}},\"\\u0065xtra\":\"\\ud83d\\ude00\"}",
                 i, i * 7, i, i, i, i, i * 3, i % 100, i % 9 + 1, i % 10, i, i, i, i, i);
    }

    /* warm-up */
    flt_report_init(rep);
    flt_json_reset(f, &cfg, fixed_sink, &out, rep);
    cr_assert_eq(flt_json_feed(f, docs[0], strlen(docs[0])), 0);
    cr_assert_eq(flt_json_finish(f), 0);

    int fails = 0;
    size_t outbytes = 0;
    allocs = 0;
    armed = 1;
    for (int i = 0; i < NDOC; i++) {
        out.len = 0;
        flt_report_init(rep);
        flt_json_reset(f, &cfg, fixed_sink, &out, rep);
        size_t len = strlen(docs[i]);
        /* whole, then in 5-byte chunks */
        int rc = flt_json_feed(f, docs[i], len);
        if (rc == 0) rc = flt_json_finish(f);
        fails += rc != 0;
        outbytes += out.len;
        out.len = 0;
        flt_report_init(rep);
        flt_json_reset(f, &cfg, fixed_sink, &out, rep);
        rc = 0;
        for (size_t p = 0; p < len && rc == 0; p += 5)
            rc = flt_json_feed(f, docs[i] + p, len - p < 5 ? len - p : 5);
        if (rc == 0) rc = flt_json_finish(f);
        fails += rc != 0;
    }
    /* the last output shows the rules at work (checked after the window) */
#define HAS(lit) (memmem(out.p, out.len, lit, sizeof(lit) - 1) != NULL)
    bool looks_ok = HAS("\"phone\":\"************0099\"") && !HAS("\"email\"") &&
                    HAS("\"dob\":\"1999\"") && HAS("\"customer_id\":\"");
#undef HAS
    /* errors must not allocate either */
    static const char *bad[] = {"{\"a\":\"\\ud800\"}", "{\"a\":[1,}", "{\"a\":\"\xff\"}", "[1] 2"};
    for (size_t i = 0; i < 4; i++) {
        flt_report_init(rep);
        flt_json_reset(f, &cfg, fixed_sink, &out, rep);
        int rc = flt_json_feed(f, bad[i], strlen(bad[i]));
        if (rc == 0) rc = flt_json_finish(f);
        fails += rc == 0;
    }
    armed = 0;
    unsigned long n = allocs;
    cr_expect_eq(fails, 0, "%d documents were not filtered as expected", fails);
    cr_expect(outbytes > 0 && !out.overflow);
    cr_expect(looks_ok, "unexpected output for the last document: %.*s", (int)out.len, out.p);
    cr_assert_eq(n, 0, "%lu allocations while filtering 100 documents", n);
    for (int i = 0; i < NDOC; i++)
        free(docs[i]);
    free(out.p);
    free(rep);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(alloc, megabyte_values_and_names_allocate_nothing)
{
    static const struct jt_rule rs[] = {JT_KEEP("k"),     JT_HASH("h"),     JT_MASKL("m", 4),
                                        JT_TRUNC("t", 5), JT_KEEP("w.*.x"), JT_END};
    struct flt_rules *r = mk(rs);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 64};
    struct flt_report *rep = malloc(sizeof *rep);

    const size_t mb = 1u << 20;
    struct jt_buf doc = {0};
    const char *keys[] = {"k", "h", "m", "t", "gone"};
    jt_buf_puts(&doc, "{");
    for (int i = 0; i < 5; i++) {
        jt_buf_puts(&doc, i ? ",\"" : "\"");
        jt_buf_puts(&doc, keys[i]);
        jt_buf_puts(&doc, "\":\"");
        for (size_t j = 0; j < mb / 8; j++)
            jt_buf_puts(&doc, "ab\\u00e9\xe2\x82\xac");
        jt_buf_puts(&doc, "\"");
    }
    /* megabyte names: removed, kept by `*.x`, and a megabyte number */
    jt_buf_puts(&doc, ",\"");
    for (size_t j = 0; j < mb; j++)
        jt_buf_putc(&doc, 'n');
    jt_buf_puts(&doc, "\":1,\"w\":{\"");
    for (size_t j = 0; j < mb / 6; j++)
        jt_buf_puts(&doc, "\\u006e");
    jt_buf_puts(&doc, "\":{\"x\":[1],\"y\":2},\"a\":{\"x\":3}},\"num\":");
    for (size_t j = 0; j < mb; j++)
        jt_buf_putc(&doc, '7');
    jt_buf_puts(&doc, "}");

    struct fixed out = {.p = malloc(doc.len + 4096), .cap = doc.len + 4096};
    /* warm-up on a small document */
    flt_report_init(rep);
    flt_json_reset(f, &cfg, fixed_sink, &out, rep);
    const char *warm = "{\"k\":\"v\",\"h\":\"v\",\"m\":\"v\",\"t\":\"v\",\"w\":{\"z\":{\"x\":1}}}";
    cr_assert_eq(flt_json_feed(f, warm, strlen(warm)), 0);
    cr_assert_eq(flt_json_finish(f), 0);

    size_t strides[] = {4096, 1, 65536 + 3};
    int rcs[3];
    size_t lens[3];
    allocs = 0;
    armed = 1;
    for (int s = 0; s < 3; s++) {
        out.len = 0;
        flt_report_init(rep);
        flt_json_reset(f, &cfg, fixed_sink, &out, rep);
        int rc = 0;
        for (size_t p = 0; p < doc.len && rc == 0; p += strides[s]) {
            size_t n = doc.len - p < strides[s] ? doc.len - p : strides[s];
            rc = flt_json_feed(f, doc.p + p, n);
        }
        if (rc == 0) rc = flt_json_finish(f);
        rcs[s] = rc;
        lens[s] = out.len;
    }
    armed = 0;
    unsigned long n = allocs;
    for (int s = 0; s < 3; s++)
        cr_expect_eq(rcs[s], 0, "stride %zu: rc=%d (%s)", strides[s], rcs[s], flt_strerror(rcs[s]));
    cr_expect(lens[0] == lens[1] && lens[1] == lens[2], "output lengths %zu %zu %zu", lens[0],
              lens[1], lens[2]);
    cr_expect(!out.overflow);
    cr_assert_eq(n, 0, "%lu allocations while filtering megabyte values and names", n);
    jt_buf_free(&doc);
    free(out.p);
    free(rep);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(alloc, counter_works)
{
    allocs = 0;
    armed = 1;
    void *volatile p = malloc(16);
    armed = 0;
    free(p);
    cr_assert_eq(allocs, 1, "the malloc interposition is not active");
}
