/* Shared helpers of the carrier tests: a growing sink, report lookups,
 * and drivers that feed an input at every split point. */
#ifndef PRIVGATE_TESTS_CARRIERS_HELPERS_H
#define PRIVGATE_TESTS_CARRIERS_HELPERS_H

#include "filters/filters.h"

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tbuf {
    char *p;
    size_t len, cap;
    long fail_after; /* refuse data once len would pass this (-1: never) */
};

static inline void tbuf_init(struct tbuf *b)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->fail_after = -1;
}

static inline void tbuf_free(struct tbuf *b)
{
    free(b->p);
    tbuf_init(b);
}

static inline int tbuf_sink(void *ud, const char *p, size_t n)
{
    struct tbuf *b = ud;
    if (b->fail_after >= 0 && b->len + n > (size_t)b->fail_after) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->len + n + 1) * 2;
        char *q = realloc(b->p, nc);
        cr_assert_not_null(q);
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static inline const char *tbuf_str(struct tbuf *b)
{
    return b->p ? b->p : "";
}

static inline bool list_has(const struct flt_pathlist *l, const char *path)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str s = flt_pathlist_get(l, i);
        if (s.len == strlen(path) && memcmp(s.p, path, s.len) == 0) return true;
    }
    return false;
}

/* Lower-case hex HMAC-SHA-256 of |in| under |key| (OpenSSL, independent of
 * the filters' own implementation). */
static inline void ref_hmac_hex(const char *key, const char *in, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)in, len, md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[64] = '\0';
}

/* A streaming filter under test: reset / feed / finish on an opaque object. */
struct tfilter {
    void *obj;
    void (*reset)(void *obj, void *arg, struct tbuf *out, struct flt_report *rep);
    int (*feed)(void *obj, const char *p, size_t n);
    int (*finish)(void *obj);
    void *arg;
};

/* Runs |in| in the given chunks (|cuts| sorted offsets, |ncuts| of them).
 * Returns the first error or 0; output in |out|. */
static inline int tfilter_run(const struct tfilter *f, const char *in, size_t len,
                              const size_t *cuts, size_t ncuts, struct tbuf *out,
                              struct flt_report *rep)
{
    size_t at = 0;
    int r;
    f->reset(f->obj, f->arg, out, rep);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        r = f->feed(f->obj, in + at, end - at);
        if (r < 0) return r;
        at = end;
    }
    return f->finish(f->obj);
}

/*
 * Feeds |in| whole, at every split point, and one byte at a time: every
 * run must give |want_rc|, and when it is 0, exactly |want| as output.
 */
static inline void check_chunked(const struct tfilter *f, const char *in, size_t len,
                                 const char *want, size_t want_len, int want_rc)
{
    struct tbuf out;
    struct flt_report *rep = malloc(sizeof *rep);
    size_t *cuts = malloc((len + 1) * sizeof *cuts);
    int r;

    cr_assert_not_null(rep);
    cr_assert_not_null(cuts);
    tbuf_init(&out);
    flt_report_init(rep);
    r = tfilter_run(f, in, len, NULL, 0, &out, rep);
    cr_assert_eq(r, want_rc, "whole input: rc %d, want %d (out: %s)", r, want_rc, tbuf_str(&out));
    if (want_rc == 0)
        cr_assert(out.len == want_len && memcmp(tbuf_str(&out), want, want_len) == 0,
                  "whole input: got [%s], want [%.*s]", tbuf_str(&out), (int)want_len, want);
    for (size_t k = 0; k <= len; k++) {
        tbuf_free(&out);
        flt_report_init(rep);
        cuts[0] = k;
        r = tfilter_run(f, in, len, cuts, 1, &out, rep);
        cr_assert_eq(r, want_rc, "split at %zu: rc %d, want %d", k, r, want_rc);
        if (want_rc == 0)
            cr_assert(out.len == want_len && memcmp(tbuf_str(&out), want, want_len) == 0,
                      "split at %zu: got [%s]", k, tbuf_str(&out));
    }
    for (size_t k = 0; k + 1 < len; k++)
        cuts[k] = k + 1;
    tbuf_free(&out);
    flt_report_init(rep);
    r = tfilter_run(f, in, len, cuts, len > 0 ? len - 1 : 0, &out, rep);
    cr_assert_eq(r, want_rc, "1-byte chunks (len %zu): rc %d, want %d", len, r, want_rc);
    if (want_rc == 0)
        cr_assert(out.len == want_len && memcmp(tbuf_str(&out), want, want_len) == 0,
                  "1-byte chunks: got [%s]", tbuf_str(&out));
    tbuf_free(&out);
    free(cuts);
    free(rep);
}

/* Builds rules from "path=action" specs: keep, hash, year, mask_last:N,
 * mask_first:N, truncate:N. */
static inline struct flt_rules *make_rules(const char *const *specs, size_t n)
{
    char err[256];
    struct flt_rules *r = flt_rules_new();
    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strrchr(specs[i], '=');
        struct flt_action a;
        cr_assert_not_null(eq, "bad spec %s", specs[i]);
        memset(&a, 0, sizeof a);
        if (strcmp(eq + 1, "keep") == 0)
            a.kind = FLT_ACT_KEEP;
        else if (strcmp(eq + 1, "hash") == 0)
            a.kind = FLT_ACT_HASH;
        else if (strcmp(eq + 1, "year") == 0)
            a.kind = FLT_ACT_YEAR;
        else if (strncmp(eq + 1, "mask_last:", 10) == 0) {
            a.kind = FLT_ACT_MASK;
            a.mask_keep_last = true;
            a.n = (uint32_t)strtoul(eq + 11, NULL, 10);
        } else if (strncmp(eq + 1, "mask_first:", 11) == 0) {
            a.kind = FLT_ACT_MASK;
            a.n = (uint32_t)strtoul(eq + 12, NULL, 10);
        } else if (strncmp(eq + 1, "truncate:", 9) == 0) {
            a.kind = FLT_ACT_TRUNCATE;
            a.n = (uint32_t)strtoul(eq + 10, NULL, 10);
        } else
            cr_assert_fail("bad action %s", eq + 1);
        cr_assert_eq(flt_rules_add(r, specs[i], (size_t)(eq - specs[i]), &a, err, sizeof err), 0,
                     "add %s: %s", specs[i], err);
    }
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0, "compile: %s", err);
    return r;
}

/* Tiny deterministic PRNG (xorshift32) for randomized chunking tests. */
static inline uint32_t trand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/*
 * |iters| random inputs over |alphabet|, each run whole, in 1-byte chunks
 * and at 3 random cuts: same result code, and same output when it is 0.
 */
static inline void check_random_chunking(const struct tfilter *f, const char *alphabet, int iters,
                                         uint32_t seed)
{
    char in[64];
    size_t alen = strlen(alphabet);
    size_t cuts[64];
    struct flt_report *rep = malloc(sizeof *rep);
    cr_assert_not_null(rep);
    for (int it = 0; it < iters; it++) {
        size_t len = trand(&seed) % sizeof in;
        struct tbuf a, b;
        int ra, rb;
        for (size_t i = 0; i < len; i++)
            in[i] = alphabet[trand(&seed) % alen];
        tbuf_init(&a);
        tbuf_init(&b);
        flt_report_init(rep);
        ra = tfilter_run(f, in, len, NULL, 0, &a, rep);
        for (size_t i = 0; i + 1 < len; i++)
            cuts[i] = i + 1;
        flt_report_init(rep);
        rb = tfilter_run(f, in, len, cuts, len > 0 ? len - 1 : 0, &b, rep);
        cr_assert_eq(ra, rb, "[%.*s]: whole %d, 1-byte %d", (int)len, in, ra, rb);
        if (ra == 0)
            cr_assert(a.len == b.len && memcmp(tbuf_str(&a), tbuf_str(&b), a.len) == 0,
                      "[%.*s]: [%s] vs [%s]", (int)len, in, tbuf_str(&a), tbuf_str(&b));
        if (len > 0) {
            size_t c[3];
            for (int k = 0; k < 3; k++)
                c[k] = trand(&seed) % (len + 1);
            /* sort the three cuts */
            for (int x = 0; x < 3; x++)
                for (int y = x + 1; y < 3; y++)
                    if (c[y] < c[x]) {
                        size_t t = c[x];
                        c[x] = c[y];
                        c[y] = t;
                    }
            tbuf_free(&b);
            flt_report_init(rep);
            rb = tfilter_run(f, in, len, c, 3, &b, rep);
            cr_assert_eq(ra, rb, "[%.*s]: whole %d, cuts %d", (int)len, in, ra, rb);
            if (ra == 0)
                cr_assert(a.len == b.len && memcmp(tbuf_str(&a), tbuf_str(&b), a.len) == 0);
        }
        tbuf_free(&a);
        tbuf_free(&b);
    }
    free(rep);
}

#define TEST_KEY "test-hmac-key"

static inline void test_key(struct flt_hmac_key *k)
{
    flt_hmac_key_init(k, (const uint8_t *)TEST_KEY, strlen(TEST_KEY));
}

#endif
