/*
 * The instruction sets of the fast lanes (filters/json.c fast_loop(): the
 * x86-64 baseline, SSE2, and x86-64-v3 code where the CPU has AVX2,
 * selected at flt_json_new()). Both must give the output, report and
 * error (code and offset) of the byte-level general path. The baseline is
 * forced with flt__json_set_simd(), so it stays tested on machines that
 * have AVX2.
 *
 * Cases: a special byte sequence (escapes, surrogate pairs, 2- and 4-byte
 * UTF-8, control bytes, DEL, invalid UTF-8) at every offset of strings of
 * 0 to 40 bytes and of some of 47 to 72 bytes, so on both sides of the
 * boundaries of 16-, 32- and 64-byte blocks, as a kept value, a removed
 * value, a member name in filtered, kept and removed objects, inside kept
 * and removed containers, and as members removed again and again from
 * records (the report's counts); numbers of every length around those
 * boundaries. Each with a report, without one and rejecting unlisted
 * fields, and each filter runs many documents in turn, as a pooled one
 * does. Chunks are heap blocks of exactly their size, so a scan past a
 * chunk's end is an ASan error here.
 */
#include "jt.h"

#include "filters/json_int.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct srun {
    int rc;
    uint64_t off;
    struct jt_buf out, rep;
};

/* Feeds |doc| in chunks of |chunk| bytes (0: whole), each a heap block of
 * exactly its size. */
static void srun(struct flt_json *f, const struct flt_json_config *cfg, bool report,
                 const char *doc, size_t len, size_t chunk, struct srun *r)
{
    static struct flt_report rep;
    memset(r, 0, sizeof *r);
    flt_report_init(&rep);
    jt_buf_put(&r->out, "", 0);
    flt_json_reset(f, cfg, jt_buf_sink, &r->out, report ? &rep : NULL);
    int rc = 0;
    for (size_t pos = 0; pos < len && rc == 0;) {
        size_t n = chunk && chunk < len - pos ? chunk : len - pos;
        char *c = malloc(n);
        cr_assert(c != NULL);
        memcpy(c, doc + pos, n);
        rc = flt_json_feed(f, c, n);
        free(c);
        pos += n;
    }
    if (rc == 0) rc = flt_json_finish(f);
    r->rc = rc;
    r->off = rc ? flt_json_error_offset(f) : 0;
    jt_report_text(&rep, &r->rep);
}

static void srun_free(struct srun *r)
{
    jt_buf_free(&r->out);
    jt_buf_free(&r->rep);
}

static bool ssame(const struct srun *a, const struct srun *b)
{
    if (a->rc != b->rc || a->off != b->off) return false;
    if (a->rc == 0 && (a->out.len != b->out.len || memcmp(a->out.p, b->out.p, a->out.len) != 0))
        return false;
    return a->rep.len == b->rep.len && memcmp(a->rep.p, b->rep.p, a->rep.len) == 0;
}

static struct flt_json *F[2]; /* [0] forced to the baseline, [1] the best there is */
static struct flt_rules *R;
static struct flt_json_config CFG;

static void setup(void)
{
    char err[256];
    static const struct jt_rule rules[] = {JT_KEEP("k"),   JT_KEEP("o.k"),   JT_KEEP("kept"),
                                           JT_KEEP("n[]"), JT_KEEP("a[].k"), JT_END};
    R = jt_rules(rules, err, sizeof err);
    cr_assert(R != NULL, "%s", err);
    for (int i = 0; i < 2; i++) {
        F[i] = flt_json_new(64);
        cr_assert(F[i] != NULL);
    }
    cr_assert_eq(flt__json_set_simd(F[0], FLT__SIMD_BASE), FLT__SIMD_BASE);
    CFG = (struct flt_json_config){.rules = R, .max_depth = 64};
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        flt_json_del(F[i]);
    flt_rules_unref(R);
}

/* Runs |doc| under both instruction sets and several chunkings, with a
 * report, without one and rejecting unlisted fields (each a fast_loop() of
 * its own); every run must equal the 1-byte run (the general path only) of
 * the baseline in the same mode. Returns the number of differences
 * (logged). */
static size_t check(const char *doc, size_t len)
{
    static const size_t chunks[] = {0, 33}; /* whole; a chunk end inside most tokens */
    size_t bad = 0;
    for (int mode = 0; mode < 3; mode++) {
        struct flt_json_config cfg = CFG;
        cfg.reject_unlisted = mode == 2;
        bool report = mode != 1;
        struct srun ref;
        srun(F[0], &cfg, report, doc, len, 1, &ref);
        for (int i = 0; i < 2; i++)
            for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
                struct srun r;
                srun(F[i], &cfg, report, doc, len, chunks[c], &r);
                if (!ssame(&ref, &r)) {
                    cr_log_error("doc %s: mode %d set %d chunk %zu: rc %d at %llu out %s, 1-byte "
                                 "rc %d at %llu out %s",
                                 jt_show(doc, len), mode, i, chunks[c], r.rc,
                                 (unsigned long long)r.off, jt_show(r.out.p, r.out.len), ref.rc,
                                 (unsigned long long)ref.off, jt_show(ref.out.p, ref.out.len));
                    bad++;
                }
                srun_free(&r);
            }
        srun_free(&ref);
    }
    return bad;
}

struct special {
    const char *b;
    size_t len;
};
#define SP(s)                                                                                      \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
static const struct special specials[] = {
    SP(""),
    SP("\\\""),
    SP("\\\\"),
    SP("\\n"),
    SP("\\u00e9"),
    SP("\\ud83d\\ude00"),
    SP("\xc3\xa9"),
    SP("\xf0\x9f\x98\x80"),
    SP("\xe2\x82\xac"),
    SP("\x7f"),
    SP("\x01"),
    SP("\x1f"),
    SP("\xc3"
       "a"),
    SP("\xed\xa0\x80"),
    SP("\xff"),
    SP("\\x"),
};

/* Documents with the string |s| in every kind of place. */
static size_t docs_with(const char *s, size_t n, char *buf, size_t cap, size_t *bad)
{
    static const char *const tpl[] = {
        "{\"k\":\"@\",\"r\":\"@\"}",
        "{\"@\":1,\"k\":2}",
        "{\"o\":{\"@\":[\"@\"],\"k\":\"@\"}}",
        "{\"kept\":{\"@\":\"@\",\"a\":[\"@\",1]},\"x\":{\"@\":[\"@\",{\"@\":\"@\"}]}}",
        "[\"@\",\"@\"]",
        /* the same members removed again and again: the report's counts */
        "{\"a\":[{\"r\":\"@\",\"k\":1,\"@\":2},{\"r\":\"@\",\"k\":1,\"@\":2},{\"k\":1,\"r\":0}]}",
    };
    size_t ndocs = 0;
    for (size_t t = 0; t < sizeof tpl / sizeof tpl[0]; t++) {
        size_t w = 0;
        for (const char *c = tpl[t]; *c; c++) {
            if (*c == '@') {
                cr_assert(w + n < cap);
                memcpy(buf + w, s, n);
                w += n;
            } else {
                cr_assert(w + 1 < cap);
                buf[w++] = *c;
            }
        }
        *bad += check(buf, w);
        ndocs++;
    }
    return ndocs;
}

Test(simd, special_bytes_at_every_offset_of_strings_to_72_bytes, .init = setup, .fini = teardown,
     .timeout = 600)
{
    char s[128], doc[2048];
    size_t bad = 0, ndocs = 0;
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++)
        for (size_t n = 0; n <= 72; n++) {
            /* every length to 40; past that, around the 48- and 64-byte
             * boundaries (the time this takes under ASan) */
            if (n > 40 && !(n >= 47 && n <= 49) && !(n >= 63 && n <= 65) && n < 71) continue;
            for (size_t pos = 0; pos <= n; pos++) {
                if (k == 0 && pos > 0) break; /* plain strings: once per length */
                memset(s, 'a', n);
                memcpy(s + pos, specials[k].b, specials[k].len);
                memset(s + pos + specials[k].len, 'b', n - pos);
                ndocs += docs_with(s, n + specials[k].len, doc, sizeof doc, &bad);
            }
        }
    cr_log_info("%zu documents", ndocs);
    cr_assert_eq(bad, 0, "%zu differences (see log)", bad);
}

Test(simd, numbers_of_every_length, .init = setup, .fini = teardown, .timeout = 300)
{
    static const char *const forms[] = {"1", "-0", "0.5", "-12e+3", "01", "1.", "-", "1e", "2E-9"};
    char doc[512];
    size_t bad = 0;
    for (size_t pad = 0; pad < 70; pad++)
        for (size_t d = 0; d < 40; d += 3)
            for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
                /* pad shifts the number across 16-, 32- and 64-byte boundaries */
                size_t w = (size_t)snprintf(doc, sizeof doc, "{\"r\":\"%.*s\",\"n\":[", (int)pad,
                                            "......................................................"
                                            "..................");
                for (size_t j = 0; j < d; j++)
                    doc[w++] = (char)('1' + j % 9);
                w += (size_t)snprintf(doc + w, sizeof doc - w, "%s,%s],\"k\":%s}", forms[i],
                                      forms[i], forms[i]);
                bad += check(doc, w);
            }
    cr_assert_eq(bad, 0, "%zu differences (see log)", bad);
}

Test(simd, selection, .init = setup, .fini = teardown)
{
    /* the default is the best level this build and CPU have, and a level
     * can be lowered and raised again */
    int best = flt__json_set_simd(F[1], FLT__SIMD_AVX2);
    cr_assert(best == FLT__SIMD_BASE || best == FLT__SIMD_AVX2);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    cr_assert_eq(best == FLT__SIMD_AVX2,
                 __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
                     __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"));
#endif
    cr_assert_eq(flt__json_set_simd(F[1], FLT__SIMD_BASE), FLT__SIMD_BASE);
    cr_assert_eq(flt__json_set_simd(F[1], 99), best);
    struct flt_json *g = flt_json_new(8);
    cr_assert(g != NULL);
    cr_assert_eq(flt__json_set_simd(g, 99), best);
    flt_json_del(g);
}
