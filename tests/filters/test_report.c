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
