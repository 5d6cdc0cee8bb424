/*
 * Limits (SPEC 4.4, filters.h): max_depth 64 accepted / 65 refused, member
 * names around FLT_NAME_MAX, report paths around FLT_REPORT_PATH_MAX,
 * megabyte values and names fed in chunks (output checked here; the
 * no-allocation side is in test_alloc.c).
 */
#include "jt.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct flt_rules *mk(const struct jt_rule *rs)
{
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    return r;
}

/* |depth| nested containers: pattern 0 arrays, 1 objects, 2 alternating. */
static void nested(struct jt_buf *b, unsigned depth, int pattern)
{
    jt_buf_put(b, "", 0);
    for (unsigned i = 0; i < depth; i++) {
        bool obj = pattern == 1 || (pattern == 2 && i % 2);
        jt_buf_puts(b, obj ? "{\"a\":" : "[");
    }
    jt_buf_puts(b, "1");
    for (unsigned i = depth; i-- > 0;) {
        bool obj = pattern == 1 || (pattern == 2 && i % 2);
        jt_buf_puts(b, obj ? "}" : "]");
    }
}

static int run_depth(uint32_t cap, uint32_t max_depth, const struct flt_rules *r, unsigned depth,
                     int pattern, enum jt_chunking ch)
{
    struct flt_json *f = flt_json_new(cap);
    cr_assert(f != NULL);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = max_depth};
    struct jt_buf doc = {0};
    nested(&doc, depth, pattern);
    struct jt_result res;
    jt_run(f, &cfg, doc.p, doc.len, ch, 0, &res);
    int rc = res.rc;
    jt_result_free(&res);
    jt_buf_free(&doc);
    flt_json_del(f);
    return rc;
}

Test(limits, depth_64_accepted_65_refused)
{
    static const struct jt_rule keep_all[] = {JT_KEEP("$"), JT_END};
    static const struct jt_rule none[] = {JT_END};
    static const struct jt_rule anc[] = {JT_KEEP("a.a.a.a.a.b"), JT_KEEP("[][][][].x"), JT_END};
    static const struct jt_rule star[] = {JT_KEEP("*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*"),
                                          JT_END};
    const struct jt_rule *sets[] = {keep_all, none, anc, star};
    const char *names[] = {"$: keep", "fields: {}", "ancestors", "stars"};
    for (size_t s = 0; s < 4; s++) {
        struct flt_rules *r = mk(sets[s]);
        for (int pat = 0; pat < 3; pat++) {
            for (int ch = 0; ch < 2; ch++) {
                enum jt_chunking c = ch ? JT_BYTES : JT_WHOLE;
                int rc64 = run_depth(64, 64, r, 64, pat, c);
                int rc65 = run_depth(64, 64, r, 65, pat, c);
                cr_expect_eq(rc64, 0, "[%s] pattern %d: depth 64 refused: %s", names[s], pat,
                             flt_strerror(rc64));
                cr_expect_eq(rc65, FLT_E_DEPTH, "[%s] pattern %d: depth 65: rc=%d (%s)", names[s],
                             pat, rc65, flt_strerror(rc65));
                /* capacity 0 means 64 */
                cr_expect_eq(run_depth(0, 0, r, 64, pat, c), 0, "[%s] new(0): depth 64", names[s]);
                cr_expect_eq(run_depth(0, 0, r, 65, pat, c), FLT_E_DEPTH, "[%s] new(0): depth 65",
                             names[s]);
            }
        }
        flt_rules_unref(r);
    }
}

Test(limits, config_depth_below_capacity)
{
    static const struct jt_rule keep_all[] = {JT_KEEP("$"), JT_END};
    struct flt_rules *r = mk(keep_all);
    cr_expect_eq(run_depth(128, 10, r, 10, 2, JT_WHOLE), 0);
    cr_expect_eq(run_depth(128, 10, r, 11, 2, JT_WHOLE), FLT_E_DEPTH);
    cr_expect_eq(run_depth(128, 0, r, 128, 0, JT_WHOLE), 0, "max_depth 0 = capacity 128");
    cr_expect_eq(run_depth(128, 0, r, 129, 0, JT_WHOLE), FLT_E_DEPTH);
    cr_expect_eq(run_depth(1000, 1000, r, 1000, 1, JT_WHOLE), 0);
    cr_expect_eq(run_depth(1000, 1000, r, 1001, 1, JT_WHOLE), FLT_E_DEPTH);
    /* a config asking for more than the capacity must not overrun */
    int rc = run_depth(16, 64, r, 64, 0, JT_WHOLE);
    cr_expect(rc == 0 || rc == FLT_E_DEPTH, "rc=%d", rc);
    rc = run_depth(16, 64, r, 17, 1, JT_BYTES);
    cr_expect(rc == 0 || rc == FLT_E_DEPTH, "rc=%d", rc);
    flt_rules_unref(r);
}

static char *repeat(char c, size_t n)
{
    char *p = malloc(n + 1);
    memset(p, c, n);
    p[n] = '\0';
    return p;
}

static void run_str(const struct flt_rules *r, const char *doc, enum jt_chunking ch, size_t stride,
                    struct jt_result *res)
{
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 64};
    jt_run(f, &cfg, doc, strlen(doc), ch, stride, res);
    flt_json_del(f);
}

Test(limits, names_around_FLT_NAME_MAX)
{
    char *n1024 = repeat('k', FLT_NAME_MAX);
    char *n1025 = repeat('k', FLT_NAME_MAX + 1);
    char err[256];
    struct flt_action keep = {.kind = FLT_ACT_KEEP};

    /* a contract may name FLT_NAME_MAX bytes, not more */
    struct flt_rules *big = flt_rules_new();
    cr_assert_eq(flt_rules_add(big, n1025, strlen(n1025), &keep, err, sizeof err), -1,
                 "a %d-byte name was accepted", FLT_NAME_MAX + 1);
    flt_rules_unref(big);

    struct flt_rules *r = flt_rules_new();
    cr_assert_eq(flt_rules_add(r, n1024, strlen(n1024), &keep, err, sizeof err), 0, "%s", err);
    cr_assert_eq(flt_rules_add(r, "a", 1, &keep, err, sizeof err), 0, "%s", err);
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0, "%s", err);
    cr_expect_eq(flt_rules_max_name(r), FLT_NAME_MAX);

    struct jt_buf doc = {0}, want = {0};
    /* exact name kept; one byte longer (same prefix) removed; longer
     * ones removed; the escaped spelling of the exact name kept */
    jt_buf_puts(&doc, "{\"");
    jt_buf_puts(&doc, n1024);
    jt_buf_puts(&doc, "\":1,\"");
    jt_buf_puts(&doc, n1025);
    jt_buf_puts(&doc, "\":2,\"");
    for (size_t i = 0; i < FLT_NAME_MAX; i++)
        jt_buf_puts(&doc, "\\u006b");
    jt_buf_puts(&doc, "\":3,\"");
    for (size_t i = 0; i < 5000; i++)
        jt_buf_puts(&doc, "j");
    jt_buf_puts(&doc, "\":{\"a\":4},\"a\":5}");

    jt_buf_puts(&want, "{\"");
    jt_buf_puts(&want, n1024);
    jt_buf_puts(&want, "\":1,\"");
    for (size_t i = 0; i < FLT_NAME_MAX; i++)
        jt_buf_puts(&want, "\\u006b");
    jt_buf_puts(&want, "\":3,\"a\":5}");

    for (int ch = 0; ch < 3; ch++) {
        struct jt_result res;
        run_str(r, doc.p, ch == 0 ? JT_WHOLE : ch == 1 ? JT_BYTES : JT_STRIDE, 97, &res);
        cr_expect_eq(res.rc, 0, "chunking %d: rc=%d (%s)", ch, res.rc, flt_strerror(res.rc));
        cr_expect(res.out.len == want.len && memcmp(res.out.p, want.p, want.len) == 0,
                  "chunking %d: output %s", ch, jt_show(res.out.p, res.out.len));
        jt_result_free(&res);
    }

    /* report: the long removed paths are cut to FLT_REPORT_PATH_MAX and end "..." */
    struct flt_report *rep = malloc(sizeof *rep);
    flt_report_init(rep);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .max_depth = 64};
    struct jt_buf out = {0};
    flt_json_reset(f, &cfg, jt_buf_sink, &out, rep);
    cr_assert_eq(flt_json_feed(f, doc.p, doc.len), 0);
    cr_assert_eq(flt_json_finish(f), 0);
    cr_expect_eq(rep->removed.n, 2, "removed n=%u (1025-byte name and 5000-byte name)",
                 rep->removed.n);
    for (uint32_t i = 0; i < rep->removed.n; i++) {
        struct flt_str p = flt_pathlist_get(&rep->removed, i);
        cr_expect(p.len <= FLT_REPORT_PATH_MAX, "path %u has %zu bytes", i, p.len);
        cr_expect(p.len >= 3 && memcmp(p.p + p.len - 3, "...", 3) == 0, "path %u: %s", i,
                  jt_show(p.p, p.len > 80 ? 80 : p.len));
        cr_expect(p.len >= 6 && memcmp(p.p, i ? "body.j" : "body.k", 6) == 0, "path %u: %s", i,
                  jt_show(p.p, p.len > 80 ? 80 : p.len));
    }
    free(rep);
    jt_buf_free(&out);
    flt_json_del(f);
    flt_rules_unref(r);
    jt_buf_free(&doc);
    jt_buf_free(&want);
    free(n1024);
    free(n1025);
}

/* Documented limit (README): a member name longer than FLT_NAME_MAX bytes
 * never matches a rule, not even `*`: it is removed (fail closed), with
 * memory bounded however the name is chunked. */
Test(limits, names_longer_than_FLT_NAME_MAX_match_no_rule)
{
    static const struct jt_rule rs[] = {JT_KEEP("*.x"), JT_KEEP("s.*"), JT_END};
    struct flt_rules *r = mk(rs);
    char *name = repeat('n', 100000);
    struct jt_buf doc = {0};
    jt_buf_puts(&doc, "{\"");
    jt_buf_puts(&doc, name);
    jt_buf_puts(&doc, "\":{\"x\":1,\"y\":2},\"s\":{\"");
    jt_buf_puts(&doc, name);
    jt_buf_puts(&doc, "\":[3]},\"k\":{\"x\":4}}");
    const char *want = "{\"s\":{},\"k\":{\"x\":4}}";
    for (int ch = 0; ch < 2; ch++) {
        struct jt_result res;
        run_str(r, doc.p, ch ? JT_STRIDE : JT_WHOLE, 4096, &res);
        cr_expect_eq(res.rc, 0, "rc=%d (%s)", res.rc, flt_strerror(res.rc));
        cr_expect(res.out.len == strlen(want) && memcmp(res.out.p, want, strlen(want)) == 0,
                  "output %s", jt_show(res.out.p, res.out.len > 200 ? 200 : res.out.len));
        jt_result_free(&res);
    }
    free(name);
    jt_buf_free(&doc);
    flt_rules_unref(r);
}

/* Just past FLT_NAME_MAX (the filter's name buffer is a few bytes larger,
 * for report paths): still no rule, whole, in 1-byte and in 7-byte feeds,
 * on the hot path (plain names) and the general path (an escape). */
Test(limits, names_just_past_FLT_NAME_MAX_match_no_rule)
{
    static const struct jt_rule rs[] = {JT_KEEP("*"), JT_END};
    struct flt_rules *r = mk(rs);
    for (size_t len = FLT_NAME_MAX - 1; len <= FLT_NAME_MAX + 16; len++) {
        for (int esc = 0; esc < 2; esc++) {
            char *name = repeat('k', len);
            if (esc) name[0] = 'A'; /* written below as \u0041: same name */
            struct jt_buf doc = {0};
            jt_buf_puts(&doc, "{\"a\":1,\"");
            jt_buf_puts(&doc, esc ? "\\u0041" : "");
            jt_buf_puts(&doc, name + (esc ? 1 : 0));
            jt_buf_puts(&doc, "\":2,\"z\":3}");
            bool kept = len <= FLT_NAME_MAX;
            struct jt_buf want = {0};
            jt_buf_puts(&want, "{\"a\":1,");
            if (kept) {
                jt_buf_puts(&want, "\"");
                jt_buf_puts(&want, esc ? "\\u0041" : "");
                jt_buf_puts(&want, name + (esc ? 1 : 0));
                jt_buf_puts(&want, "\":2,");
            }
            jt_buf_puts(&want, "\"z\":3}");
            for (int ch = 0; ch < 3; ch++) {
                struct jt_result res;
                run_str(r, doc.p, ch == 0 ? JT_WHOLE : ch == 1 ? JT_BYTES : JT_STRIDE, 7, &res);
                cr_expect_eq(res.rc, 0, "len %zu: rc=%d", len, res.rc);
                cr_expect(res.out.len == want.len && memcmp(res.out.p, want.p, want.len) == 0,
                          "len %zu esc %d chunking %d: %s", len, esc, ch,
                          jt_show(res.out.p, res.out.len > 80 ? 80 : res.out.len));
                jt_result_free(&res);
            }
            jt_buf_free(&want);
            jt_buf_free(&doc);
            free(name);
        }
    }
    flt_rules_unref(r);
}

Test(limits, megabyte_values_in_chunks)
{
    static const struct jt_rule rs[] = {JT_KEEP("k"),     JT_HASH("h"),     JT_MASKL("m", 4),
                                        JT_TRUNC("t", 5), JT_MASKF("f", 2), JT_END};
    struct flt_rules *r = mk(rs);
    const size_t mb = 1u << 20;
    /* value: "ab\u00e9" repeated: 3 code points, 8 raw bytes, 4 unescaped */
    struct jt_buf val = {0}, plain = {0};
    while (val.len < 2 * mb) {
        jt_buf_puts(&val, "ab\\u00e9");
        jt_buf_puts(&plain, "ab\xc3\xa9");
    }
    size_t cps = plain.len / 4 * 3;
    struct jt_buf doc = {0};
    const char *keys[] = {"k", "h", "m", "t", "f", "gone"};
    jt_buf_puts(&doc, "{");
    for (int i = 0; i < 6; i++) {
        jt_buf_puts(&doc, i ? ",\"" : "\"");
        jt_buf_puts(&doc, keys[i]);
        jt_buf_puts(&doc, "\":\"");
        jt_buf_put(&doc, val.p, val.len);
        jt_buf_puts(&doc, "\"");
    }
    jt_buf_puts(&doc, ",\"num\":");
    for (size_t i = 0; i < mb; i++)
        jt_buf_putc(&doc, (char)('0' + (i % 9) + 1));
    jt_buf_puts(&doc, "}");

    char hex[65];
    jt_hmac_ref(plain.p, plain.len, hex);
    struct jt_buf want = {0};
    jt_buf_puts(&want, "{\"k\":\"");
    jt_buf_put(&want, val.p, val.len);
    jt_buf_puts(&want, "\",\"h\":\"");
    jt_buf_puts(&want, hex);
    jt_buf_puts(&want, "\",\"m\":\"");
    for (size_t i = 0; i < cps - 4; i++)
        jt_buf_putc(&want, '*');
    jt_buf_puts(&want, "\xc3\xa9"
                       "ab\xc3\xa9\",\"t\":\"ab\xc3\xa9"
                       "ab\",\"f\":\"ab");
    for (size_t i = 0; i < cps - 2; i++)
        jt_buf_putc(&want, '*');
    jt_buf_puts(&want, "\"}");

    size_t strides[] = {4096, 65536 + 7};
    for (size_t s = 0; s < 2; s++) {
        struct jt_result res;
        run_str(r, doc.p, JT_STRIDE, strides[s], &res);
        cr_expect_eq(res.rc, 0, "stride %zu: rc=%d (%s)", strides[s], res.rc, flt_strerror(res.rc));
        cr_expect_eq(res.out.len, want.len, "stride %zu: %zu output bytes, want %zu", strides[s],
                     res.out.len, want.len);
        if (res.out.len == want.len && memcmp(res.out.p, want.p, want.len) != 0) {
            size_t i = 0;
            while (res.out.p[i] == want.p[i])
                i++;
            cr_expect(false, "stride %zu: output differs at byte %zu: %s", strides[s], i,
                      jt_show(res.out.p + i, res.out.len - i > 60 ? 60 : res.out.len - i));
        }
        jt_result_free(&res);
    }
    jt_buf_free(&val);
    jt_buf_free(&plain);
    jt_buf_free(&doc);
    jt_buf_free(&want);
    flt_rules_unref(r);
}

/* ------------------------------------------------ call contract (filters.h) */

static int failing_sink(void *ud, const char *p, size_t n)
{
    (void)p;
    size_t *budget = ud;
    if (n > *budget) return -1;
    *budget -= n;
    return 0;
}

Test(api, errors_are_sticky_and_reset_recovers)
{
    static const struct jt_rule rs[] = {JT_KEEP("$"), JT_END};
    struct flt_rules *r = mk(rs);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .max_depth = 64};
    struct jt_buf out = {0};
    flt_json_reset(f, &cfg, jt_buf_sink, &out, NULL);
    int rc = flt_json_feed(f, "[1,]", 4);
    if (rc == 0) rc = flt_json_finish(f);
    cr_assert_eq(rc, FLT_E_SYNTAX, "rc=%d", rc);
    cr_expect_eq(flt_json_feed(f, "1", 1), FLT_E_SYNTAX, "feed after an error");
    cr_expect_eq(flt_json_feed(f, "", 0), FLT_E_SYNTAX, "empty feed after an error");
    cr_expect_eq(flt_json_finish(f), FLT_E_SYNTAX, "finish after an error");
    cr_expect_eq(flt_json_error_offset(f), 3, "offset %llu",
                 (unsigned long long)flt_json_error_offset(f));

    out.len = 0;
    flt_json_reset(f, &cfg, jt_buf_sink, &out, NULL);
    cr_expect_eq(flt_json_feed(f, "", 0), 0, "empty feed");
    cr_expect_eq(flt_json_feed(f, "[1]", 3), 0);
    cr_expect_eq(flt_json_finish(f), 0);
    cr_expect_str_eq(out.p, "[1]");
    /* used after finish: a value is an error and nothing more is output
     * (trailing whitespace and a second finish are tolerated: they return 0) */
    rc = flt_json_feed(f, "1", 1);
    cr_expect(rc < 0, "feed after finish returned %d", rc);
    cr_expect_str_eq(out.p, "[1]");
    jt_buf_free(&out);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(api, sink_error_stops_the_filter)
{
    static const struct jt_rule rs[] = {JT_KEEP("$"), JT_END};
    struct flt_rules *r = mk(rs);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .max_depth = 64};
    const char *doc = "{\"a\":\"0123456789\",\"b\":[1,2,3]}";
    for (size_t budget0 = 0; budget0 < strlen(doc); budget0++) {
        size_t budget = budget0;
        flt_json_reset(f, &cfg, failing_sink, &budget, NULL);
        int rc = 0;
        for (size_t i = 0; doc[i] && rc == 0; i++)
            rc = flt_json_feed(f, doc + i, 1);
        if (rc == 0) rc = flt_json_finish(f);
        cr_expect_eq(rc, FLT_E_SINK, "budget %zu: rc=%d", budget0, rc);
        cr_expect_eq(flt_json_finish(f), FLT_E_SINK, "budget %zu: sticky", budget0);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(api, empty_and_whitespace_documents)
{
    static const struct jt_rule rs[] = {JT_KEEP("$"), JT_END};
    struct flt_rules *r = mk(rs);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .max_depth = 64};
    static const char *docs[] = {"", " ", "\n\t\r ", "\f{}", "{}\f", "\v1", "\xc2\xa0{}", "{}\0"};
    static const size_t lens[] = {0, 1, 4, 3, 3, 2, 4, 3};
    for (size_t i = 0; i < 8; i++) {
        struct jt_result res;
        jt_run(f, &cfg, docs[i], lens[i], JT_WHOLE, 0, &res);
        cr_expect(res.rc < 0 && strcmp(flt_errcode(res.rc), "invalid_body") == 0,
                  "doc %zu %s: rc=%d", i, jt_show(docs[i], lens[i]), res.rc);
        jt_result_free(&res);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(report, more_than_64_removed_paths)
{
    static const struct jt_rule rs[] = {JT_KEEP("keep"), JT_END};
    struct flt_rules *r = mk(rs);
    struct flt_json *f = flt_json_new(64);
    struct flt_json_config cfg = {.rules = r, .max_depth = 64};
    struct jt_buf doc = {0};
    jt_buf_puts(&doc, "{\"keep\":1");
    for (int i = 0; i < 100; i++) {
        char m[64];
        snprintf(m, sizeof m, ",\"m%03d\":%d,\"m%03d\":0", i, i, i); /* each twice */
        jt_buf_puts(&doc, m);
    }
    jt_buf_puts(&doc, "}");
    struct flt_report *rep = malloc(sizeof *rep);
    flt_report_init(rep);
    struct jt_buf out = {0};
    flt_json_reset(f, &cfg, jt_buf_sink, &out, rep);
    cr_assert_eq(flt_json_feed(f, doc.p, doc.len), 0);
    cr_assert_eq(flt_json_finish(f), 0);
    cr_expect_str_eq(out.p, "{\"keep\":1}");
    cr_expect_eq(rep->removed.n, FLT_REPORT_MAX);
    cr_expect_eq(rep->removed.more, 100 - FLT_REPORT_MAX, "more=%u", rep->removed.more);
    cr_expect_eq(rep->removed.total, 200, "total=%u", rep->removed.total);
    for (uint32_t i = 0; i < rep->removed.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "body.m%03u", i);
        struct flt_str p = flt_pathlist_get(&rep->removed, i);
        cr_expect(p.len == strlen(want) && memcmp(p.p, want, p.len) == 0, "path %u: %.*s", i,
                  (int)p.len, p.p);
    }
    free(rep);
    jt_buf_free(&out);
    jt_buf_free(&doc);
    flt_json_del(f);
    flt_rules_unref(r);
}
