/* filters/report.c: each path once, at most 64, the rest counted. */
#include "tests/filters/helpers.h"

Test(report, dedup_and_prefix)
{
    static struct flt_report r;
    flt_report_init(&r);
    flt_pathlist_add(&r.removed, "body", "email", 5);
    flt_pathlist_add(&r.removed, "body", "email", 5);
    flt_pathlist_add(&r.removed, "body", "[].ip", 5);
    flt_pathlist_add(&r.removed, "body", "", 0);
    flt_pathlist_add(&r.removed, "query", "utm_source", 10);
    char buf[512];
    join_paths(&r.removed, buf, sizeof buf);
    cr_assert_str_eq(buf, "body.email,body[].ip,body,query.utm_source");
    cr_assert_eq(r.removed.total, 5);
    cr_assert_eq(r.removed.more, 0);
}

Test(report, cap_and_more)
{
    static struct flt_report r;
    flt_report_init(&r);
    char name[16];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(name, sizeof name, "f%d", i);
        flt_pathlist_add(&r.removed, "body", name, (size_t)n);
        flt_pathlist_add(&r.removed, "body", name, (size_t)n);
    }
    cr_assert_eq(r.removed.n, FLT_REPORT_MAX);
    cr_assert_eq(r.removed.more, 100 - FLT_REPORT_MAX);
}

Test(report, long_path_cut)
{
    static struct flt_report r;
    flt_report_init(&r);
    char name[600];
    memset(name, 'x', sizeof name);
    flt_pathlist_add(&r.transformed, "body", name, sizeof name);
    struct flt_str s = flt_pathlist_get(&r.transformed, 0);
    cr_assert_eq(s.len, FLT_REPORT_PATH_MAX);
    cr_assert_eq(memcmp(s.p + s.len - 3, "...", 3), 0);
    cr_assert_null(flt_pathlist_get(&r.transformed, 1).p);
}

Test(report, error_names)
{
    cr_assert_str_eq(flt_errcode(FLT_E_TOO_LARGE), "body_too_large");
    cr_assert_str_eq(flt_errcode(FLT_E_DEPTH), "invalid_body");
    cr_assert_str_eq(flt_errcode(FLT_E_MEDIA_TYPE), "unsupported_media_type");
    cr_assert_str_eq(flt_strerror(12345), "unknown error");
    cr_assert_str_eq(flt_action_name(FLT_ACT_YEAR), "year");
}

Test(report, cut_keeps_utf8_whole)
{
    static struct flt_report r;
    flt_report_init(&r);
    char name[600];
    size_t w = 0;
    name[w++] = 'b';
    while (w + 2 <= sizeof name) {
        name[w++] = (char)0xC3;
        name[w++] = (char)0xA9;
    }
    flt_pathlist_add(&r.removed, "body", name, w);
    struct flt_str s = flt_pathlist_get(&r.removed, 0);
    cr_assert_leq(s.len, FLT_REPORT_PATH_MAX);
    cr_assert_eq(memcmp(s.p + s.len - 3, "...", 3), 0);
    /* the byte before "..." ends a whole code point */
    unsigned char last = (unsigned char)s.p[s.len - 4];
    cr_assert(last == 0xA9 || last < 0x80, "cut inside a code point");
}

/* Two long paths that differ only past the cut are one stored path (found
 * by fuzz_form: fuzz/repro/fuzz_form-report-dup-cut-paths). */
Test(report, cut_paths_listed_once)
{
    static struct flt_report r;
    flt_report_init(&r);
    char a[300], b[300];
    memset(a, 'x', sizeof a);
    memcpy(b, a, sizeof b);
    b[299] = 'y';
    flt_pathlist_add(&r.removed, "body", a, sizeof a);
    flt_pathlist_add(&r.removed, "body", b, sizeof b);
    cr_assert_eq(r.removed.n, 1);
    cr_assert_eq(r.removed.total, 2);
}

/* flt_report_init() is O(1): it leaves the seen-set's arrays as they are
 * (a sparse set, filters/int.h). Whatever they hold — fresh garbage, a
 * previous request's paths — the lists must come out as from zeroed
 * storage, including past the set's 3/4 fill, where every path counts. */
static void fill_paths(struct flt_report *r)
{
    char name[32];
    /* 500 distinct paths (more than the set holds), each added twice, plus
     * repeats of the first ones after the set is full */
    for (int i = 0; i < 500; i++) {
        int n = snprintf(name, sizeof name, "f%d", i);
        flt_pathlist_add(&r->removed, "body", name, (size_t)n);
        flt_pathlist_add(&r->removed, "body", name, (size_t)n);
        flt_pathlist_add(&r->transformed, "query", name, (size_t)(n > 2 ? n - 1 : n));
    }
    for (int i = 0; i < 10; i++) {
        int n = snprintf(name, sizeof name, "f%d", i);
        flt_pathlist_add(&r->removed, "body", name, (size_t)n);
    }
}

static void assert_same_list(const struct flt_pathlist *a, const struct flt_pathlist *b)
{
    cr_assert_eq(a->n, b->n);
    cr_assert_eq(a->more, b->more);
    cr_assert_eq(a->total, b->total);
    cr_assert_eq(a->nseen, b->nseen);
    for (uint32_t i = 0; i < a->n; i++) {
        struct flt_str x = flt_pathlist_get(a, i), y = flt_pathlist_get(b, i);
        cr_assert_eq(x.len, y.len);
        cr_assert_eq(memcmp(x.p, y.p, x.len), 0);
    }
}

Test(report, init_ignores_previous_contents)
{
    static struct flt_report ref, r;
    memset(&ref, 0, sizeof ref);
    flt_report_init(&ref);
    fill_paths(&ref);
    cr_assert_eq(ref.removed.n, FLT_REPORT_MAX);
    cr_assert_gt(ref.removed.more, 0);
    uint32_t seed = 12345;
    for (int pattern = 0; pattern < 6; pattern++) {
        unsigned char *b = (unsigned char *)&r;
        for (size_t i = 0; i < sizeof r; i++) {
            switch (pattern) {
            case 0: b[i] = 0xFF; break;
            case 1: b[i] = 0x00; break;
            case 2: b[i] = 0x01; break; /* every seen_pos points at entry 257 */
            case 3:
                seed = seed * 1103515245u + 12345u;
                b[i] = (unsigned char)(seed >> 16);
                break;
            default: break; /* 4, 5: what the previous request left */
            }
        }
        if (pattern == 2) {
            /* every slot claims position 0..3, every position names slot 0..3 */
            for (size_t i = 0; i < FLT_REPORT_SEEN; i++) {
                r.removed.seen_pos[i] = (uint16_t)(i % 4);
                r.transformed.seen_pos[i] = 0;
            }
            for (size_t i = 0; i < FLT_REPORT_SEEN * 3 / 4; i++)
                r.removed.seen_slot[i] = r.transformed.seen_slot[i] = (uint16_t)(i % 4);
        }
        flt_report_init(&r);
        fill_paths(&r);
        assert_same_list(&r.removed, &ref.removed);
        assert_same_list(&r.transformed, &ref.transformed);
    }
}

/* The JSON filter probes the same set for repeated paths (report_again()):
 * a report reused across documents, or on garbage storage, lists and counts
 * as a fresh one. */
Test(report, json_reuse_and_garbage)
{
    static const char *const specs[] = {"items[].sku=keep", NULL};
    struct flt_rules *rules = make_rules(specs);
    const char *doc = "{\"a\":1,\"items\":[{\"sku\":\"x\",\"p\":1,\"q\":{\"r\":2}},"
                      "{\"sku\":\"y\",\"p\":2,\"q\":null}],\"b\":[1]}";
    static struct run_result ref, res;
    memset(&ref, 0, sizeof ref);
    run_json(rules, doc, strlen(doc), 0, false, &ref);
    cr_assert_eq(ref.rc, 0);
    char want[512], got[512];
    join_paths(&ref.report.removed, want, sizeof want);
    cr_assert_str_eq(want, "body.a,body.items[].p,body.items[].q,body.b");
    cr_assert_eq(ref.report.removed.total, 6);
    free(ref.out);
    for (int pattern = 0; pattern < 3; pattern++) {
        if (pattern == 0) memset(&res, 0xA5, sizeof res);
        if (pattern == 1) { /* the set as full as it gets, with other hashes */
            flt_report_init(&res.report);
            fill_paths(&res.report);
        }
        /* pattern 2: the previous document's report */
        for (size_t chunk = 0; chunk < 4; chunk++) {
            run_json(rules, doc, strlen(doc), chunk, false, &res);
            cr_assert_eq(res.rc, 0);
            join_paths(&res.report.removed, got, sizeof got);
            cr_assert_str_eq(got, want, "pattern %d chunk %zu", pattern, chunk);
            cr_assert_eq(res.report.removed.total, 6);
            cr_assert_eq(res.report.removed.nseen, ref.report.removed.nseen);
            free(res.out);
        }
    }
    flt_rules_unref(rules);
}
