/*
 * JSONTestSuite (nst/JSONTestSuite test_parsing/, read from
 * $PRIVGATE_SHARED at run time) through flt_json:
 *   y_  accepted; with `$: keep` the output is the input without
 *       insignificant whitespace (byte-exact) and the same JSON value;
 *       with no rules the output is the empty value of the root's kind;
 *   n_  refused with an "invalid_body" error, with `$: keep`, with no rules
 *       and with an ancestor-only rule, whole and in 1-byte chunks;
 *   i_  no crash; the verdict is printed and checked against the policy
 *       documented in docs/JSONTESTSUITE.md.
 */
#include "jt.h"

#include <criterion/criterion.h>
#include <jansson.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH 64

struct names {
    char **v;
    size_t n;
};

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct names list(const char *prefix)
{
    struct names ns = {0};
    DIR *d = opendir(jt_suite_dir());
    cr_assert(d != NULL, "cannot open %s (PRIVGATE_SHARED unset?)", jt_suite_dir());
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        if (ns.n == cap) {
            cap = cap ? cap * 2 : 64;
            ns.v = realloc(ns.v, cap * sizeof *ns.v);
        }
        ns.v[ns.n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(ns.v, ns.n, sizeof *ns.v, cmpstr);
    return ns;
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    ns->v = NULL;
    ns->n = 0;
}

static void load(const char *name, struct jt_buf *b)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", jt_suite_dir(), name);
    cr_assert(jt_read_file(path, b), "cannot read %s", path);
}

static struct flt_rules *rules_keep_all(void)
{
    static const struct jt_rule rs[] = {JT_KEEP("$"), JT_END};
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    return r;
}

static struct flt_rules *rules_empty(void)
{
    static const struct jt_rule rs[] = {JT_END};
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    return r;
}

static struct flt_rules *rules_ancestor(void)
{
    static const struct jt_rule rs[] = {JT_KEEP("a.b"), JT_KEEP("[].x"), JT_END};
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    return r;
}

static struct flt_json_config cfg_of(const struct flt_rules *r)
{
    struct flt_json_config c = {.rules = r, .key = jt_key(), .max_depth = DEPTH};
    return c;
}

/* First non-whitespace byte of a valid document: its root's kind. */
static char root_kind(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return p[i];
    return 0;
}

Test(jsontestsuite, y_files_kept_byte_exact)
{
    struct names ns = list("y_");
    cr_assert(ns.n >= 90, "only %zu y_ files found", ns.n);
    struct flt_rules *r = rules_keep_all();
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    cr_assert(f != NULL);
    size_t failures = 0, jansson_skipped = 0;
    for (size_t i = 0; i < ns.n; i++) {
        struct jt_buf in = {0}, want = {0};
        load(ns.v[i], &in);
        jt_strip_ws(in.p, in.len, &want);
        for (int ch = 0; ch < 2; ch++) {
            struct jt_result res;
            jt_run(f, &cfg, in.p, in.len, ch ? JT_BYTES : JT_WHOLE, 0, &res);
            bool ok =
                res.rc == 0 && res.out.len == want.len && memcmp(res.out.p, want.p, want.len) == 0;
            if (!ok) {
                failures++;
                cr_log_error(
                    "%s (%s): rc=%d (%s) off=%llu\n  input : %s\n  output: %s\n  want  : %s",
                    ns.v[i], ch ? "1-byte" : "whole", res.rc, res.rc ? flt_strerror(res.rc) : "",
                    (unsigned long long)res.err_off, jt_show(in.p, in.len),
                    jt_show(res.out.p, res.out.len), jt_show(want.p, want.len));
            } else if (ch == 0) {
                json_error_t je;
                json_t *a = json_loadb(in.p, in.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                json_t *b =
                    json_loadb(res.out.p, res.out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
                if (!a) {
                    jansson_skipped++; /* jansson's own limits (NUL in keys...) */
                } else if (!b || !json_equal(a, b)) {
                    failures++;
                    cr_log_error("%s: output not the same JSON value: %s", ns.v[i],
                                 jt_show(res.out.p, res.out.len));
                }
                json_decref(a);
                json_decref(b);
            }
            jt_result_free(&res);
        }
        jt_buf_free(&in);
        jt_buf_free(&want);
    }
    cr_log_info("y_: %zu files, %zu failures, %zu not comparable with jansson", ns.n, failures,
                jansson_skipped);
    cr_expect(jansson_skipped <= 2, "jansson could not read %zu y_ inputs", jansson_skipped);
    names_free(&ns);
    cr_assert_eq(failures, 0, "%zu y_ runs failed (see log)", failures);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(jsontestsuite, y_files_with_no_rules_become_empty)
{
    struct names ns = list("y_");
    struct flt_rules *r = rules_empty();
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    size_t failures = 0;
    for (size_t i = 0; i < ns.n; i++) {
        struct jt_buf in = {0};
        load(ns.v[i], &in);
        char k = root_kind(in.p, in.len);
        const char *want = k == '{' ? "{}" : k == '[' ? "[]" : "null";
        struct jt_result res;
        jt_run(f, &cfg, in.p, in.len, JT_WHOLE, 0, &res);
        if (res.rc != 0 || strcmp(res.out.p, want) != 0) {
            failures++;
            cr_log_error("%s with no rules: rc=%d (%s), output %s, want %s", ns.v[i], res.rc,
                         res.rc ? flt_strerror(res.rc) : "", jt_show(res.out.p, res.out.len), want);
        }
        jt_result_free(&res);
        jt_buf_free(&in);
    }
    names_free(&ns);
    cr_assert_eq(failures, 0, "%zu y_ files failed with empty rules", failures);
    flt_json_del(f);
    flt_rules_unref(r);
}

static void n_files(struct flt_rules *r, const char *label)
{
    struct names ns = list("n_");
    cr_assert(ns.n >= 180, "only %zu n_ files found", ns.n);
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    size_t failures = 0;
    for (size_t i = 0; i < ns.n; i++) {
        struct jt_buf in = {0};
        load(ns.v[i], &in);
        int first_rc = 0;
        for (int ch = 0; ch < 2; ch++) {
            struct jt_result res;
            jt_run(f, &cfg, in.p, in.len, ch ? JT_BYTES : JT_WHOLE, 0, &res);
            bool ok = res.rc < 0 && strcmp(flt_errcode(res.rc), "invalid_body") == 0;
            if (!ok) {
                failures++;
                cr_log_error("%s [%s, %s]: not refused: rc=%d (%s)\n  input : %s\n  output: %s",
                             ns.v[i], label, ch ? "1-byte" : "whole", res.rc,
                             res.rc ? flt_errcode(res.rc) : "accepted", jt_show(in.p, in.len),
                             jt_show(res.out.p, res.out.len));
            }
            if (ch == 0)
                first_rc = res.rc;
            else if (ok && res.rc != first_rc)
                cr_log_warn("%s [%s]: error differs by chunking: whole %s, 1-byte %s", ns.v[i],
                            label, flt_strerror(first_rc), flt_strerror(res.rc));
            jt_result_free(&res);
        }
        jt_buf_free(&in);
    }
    names_free(&ns);
    cr_assert_eq(failures, 0, "%zu n_ runs accepted or wrong error [%s]", failures, label);
    flt_json_del(f);
}

Test(jsontestsuite, n_files_refused_keep_all)
{
    struct flt_rules *r = rules_keep_all();
    n_files(r, "$: keep");
    flt_rules_unref(r);
}

Test(jsontestsuite, n_files_refused_no_rules)
{
    struct flt_rules *r = rules_empty();
    n_files(r, "fields: {}");
    flt_rules_unref(r);
}

Test(jsontestsuite, n_files_refused_ancestor_rules)
{
    struct flt_rules *r = rules_ancestor();
    n_files(r, "a.b, [].x");
    flt_rules_unref(r);
}

/*
 * i_ policy (docs/JSONTESTSUITE.md): numbers are forwarded byte-exact
 * (the filter never converts a number); every invalid or non-UTF-8 input
 * and every escaped lone surrogate is refused invalid_body (SPEC 1.2,
 * 4.4); 500 nested arrays exceed max_depth 64. The UTF-8 BOM is recorded
 * only.
 */
static int i_policy(const char *name)
{
    if (strncmp(name, "i_number_", 9) == 0) return 1;                           /* accepted */
    if (strcmp(name, "i_structure_UTF-8_BOM_empty_object.json") == 0) return 0; /* either */
    return -1;                                                                  /* refused */
}

Test(jsontestsuite, i_files_recorded)
{
    struct names ns = list("i_");
    cr_assert(ns.n >= 30, "only %zu i_ files found", ns.n);
    struct flt_rules *r = rules_keep_all();
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    size_t failures = 0;
    fprintf(stderr, "JSONTestSuite i_ verdicts ($: keep, max_depth %d):\n", DEPTH);
    for (size_t i = 0; i < ns.n; i++) {
        struct jt_buf in = {0}, want = {0};
        load(ns.v[i], &in);
        jt_strip_ws(in.p, in.len, &want);
        struct jt_result res, res1;
        jt_run(f, &cfg, in.p, in.len, JT_WHOLE, 0, &res);
        jt_run(f, &cfg, in.p, in.len, JT_BYTES, 0, &res1);
        fprintf(stderr, "  %-52s %s%s%s\n", ns.v[i], res.rc == 0 ? "accepted" : "refused ",
                res.rc == 0 ? "" : " ", res.rc == 0 ? "" : flt_strerror(res.rc));
        if (res.rc != res1.rc || (res.rc == 0 && strcmp(res.out.p, res1.out.p) != 0)) {
            failures++;
            cr_log_error("%s: verdict differs by chunking: whole rc=%d, 1-byte rc=%d", ns.v[i],
                         res.rc, res1.rc);
        }
        int pol = i_policy(ns.v[i]);
        if (pol > 0 && (res.rc != 0 || strcmp(res.out.p, want.p) != 0)) {
            failures++;
            cr_log_error("%s: expected forwarded byte-exact, got rc=%d output %s", ns.v[i], res.rc,
                         jt_show(res.out.p, res.out.len));
        }
        if (pol < 0 && (res.rc >= 0 || strcmp(flt_errcode(res.rc), "invalid_body") != 0)) {
            failures++;
            cr_log_error("%s: expected refused invalid_body, got rc=%d output %s", ns.v[i], res.rc,
                         jt_show(res.out.p, res.out.len));
        }
        if (pol == 0 && res.rc == 0 && strcmp(res.out.p, "{}") != 0) {
            failures++;
            cr_log_error("%s: accepted but forwarded %s (want {} without the BOM)", ns.v[i],
                         jt_show(res.out.p, res.out.len));
        }
        jt_result_free(&res);
        jt_result_free(&res1);
        jt_buf_free(&in);
        jt_buf_free(&want);
    }
    names_free(&ns);
    cr_assert_eq(failures, 0, "%zu i_ files off policy", failures);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(jsontestsuite, deep_structures_refused_cleanly)
{
    static const char *names[] = {"n_structure_100000_opening_arrays.json",
                                  "n_structure_open_array_object.json",
                                  "i_structure_500_nested_arrays.json"};
    struct flt_rules *r = rules_keep_all();
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        struct jt_buf in = {0};
        load(names[i], &in);
        struct jt_result res;
        jt_run(f, &cfg, in.p, in.len, JT_WHOLE, 0, &res);
        cr_expect_eq(res.rc, FLT_E_DEPTH, "%s: rc=%d (%s), want FLT_E_DEPTH", names[i], res.rc,
                     flt_strerror(res.rc));
        /* the 65th opening bracket (offset 64) is where the error is */
        if (res.rc == FLT_E_DEPTH && strstr(names[i], "object") == NULL)
            cr_expect(res.err_off == 64 || res.err_off == 65,
                      "%s: error offset %llu, want 64 (the 65th '[')", names[i],
                      (unsigned long long)res.err_off);
        jt_result_free(&res);
        jt_buf_free(&in);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}

/*
 * test_transform/: inputs parsers interpret differently. privgate never
 * interprets: numbers and duplicate keys are forwarded byte-exact, member
 * names are compared byte for byte (no Unicode normalisation), and invalid
 * code points (raw or escaped surrogates) are refused.
 */
static void transform_dir(char *out, size_t len)
{
    const char *shared = getenv("PRIVGATE_SHARED");
    snprintf(out, len, "%s/corpora/jsontestsuite/test_transform", shared ? shared : "../shared");
}

Test(jsontestsuite, test_transform_files)
{
    char dir[4096];
    transform_dir(dir, sizeof dir);
    DIR *d = opendir(dir);
    cr_assert(d != NULL, "cannot open %s", dir);
    struct flt_rules *r = rules_keep_all();
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    struct dirent *e;
    size_t n = 0, failures = 0;
    fprintf(stderr, "JSONTestSuite test_transform verdicts ($: keep):\n");
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct jt_buf in = {0}, want = {0};
        cr_assert(jt_read_file(path, &in));
        jt_strip_ws(in.p, in.len, &want);
        struct jt_result res;
        jt_run(f, &cfg, in.p, in.len, JT_BYTES, 0, &res);
        bool refuse = strstr(e->d_name, "invalid_codepoint") != NULL;
        fprintf(stderr, "  %-45s %s\n", e->d_name,
                res.rc == 0 ? "forwarded" : flt_strerror(res.rc));
        bool ok = refuse ? res.rc < 0 && strcmp(flt_errcode(res.rc), "invalid_body") == 0
                         : res.rc == 0 && strcmp(res.out.p, want.p) == 0;
        if (!ok) {
            failures++;
            cr_log_error("%s: rc=%d output %s (want %s)", e->d_name, res.rc,
                         jt_show(res.out.p, res.out.len), refuse ? "refused" : want.p);
        }
        n++;
        jt_result_free(&res);
        jt_buf_free(&in);
        jt_buf_free(&want);
    }
    closedir(d);
    cr_expect_eq(n, 22, "%zu test_transform files", n);
    cr_assert_eq(failures, 0, "%zu test_transform files off policy", failures);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(jsontestsuite, names_compared_byte_for_byte)
{
    static const struct jt_rule rs[] = {JT_KEEP("\xc3\xa9"), JT_KEEP("a"), JT_END};
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = cfg_of(r);
    struct flt_json *f = flt_json_new(DEPTH);
    static const struct {
        const char *in, *out;
    } cases[] = {
        /* NFC rule name: the NFD key (e + U+0301) is another name */
        {"{\"\xc3\xa9\":\"NFC\",\"e\xcc\x81\":\"NFD\"}", "{\"\xc3\xa9\":\"NFC\"}"},
        {"{\"e\xcc\x81\":\"NFD\",\"\\u00e9\":\"NFC\"}", "{\"\\u00e9\":\"NFC\"}"},
        /* duplicates: each judged on its own, forwarded as sent */
        {"{\"a\":0,\"a\":-0,\"b\":1,\"a\":2}", "{\"a\":0,\"a\":-0,\"a\":2}"},
        {"{\"A\":1,\"a\\u0000\":2,\"a \":3}", "{}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct jt_result res;
        jt_run(f, &cfg, cases[i].in, strlen(cases[i].in), JT_BYTES, 0, &res);
        cr_expect_eq(res.rc, 0, "case %zu: rc=%d", i, res.rc);
        cr_expect_str_eq(res.out.p, cases[i].out, "case %zu", i);
        jt_result_free(&res);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}
