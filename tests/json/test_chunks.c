/*
 * Chunking invariance (STYLE 7: every vector at every split point): each
 * document x each rule set is fed whole, at every 2-chunk split point, in
 * 1-byte chunks and in 3-byte strides; output, report and error (code and
 * offset) must not depend on the chunking. A second table checks the
 * expected output and report of hand-written cases (SPEC 4.1, 4.4, 7).
 */
#include "jt.h"

#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

static const struct flt_str docs[] = {
    S("{}"),
    S("[]"),
    S("null"),
    S("  \"str\"  "),
    S("-12.5e+3"),
    S("0"),
    S("true"),
    S("{\"email\":\"ann@example.com\",\"name\":\"Ann\",\"phone\":\"+44 20 7946 0958\"}"),
    S("{\"\\u0065mail\":\"a\\u0040b.c\",\"n\\u0061me\":\"\\u00c9lodie\",\"x\":1}"),
    S("{\"a\":{\"b\":1,\"c\":[1,2,{\"d\":3}]},\"b\":{\"a\":{\"b\":2}},\"c\":null}"),
    S("{ \"items\" : [ {\"sku\":\"A1\",\"qty\":2,\"email\":\"x@y\"} , {\"sku\":\"B2\"}, 5, [1], "
      "{\"qty\":-0.0e-0} ] }"),
    S("[{\"ip\":\"10.0.0.1\",\"user_id\":7},{\"ip\":\"::1\",\"user_id\":\"u8\"},3,null,[]]"),
    S("{\"meta\":{\"x.y\":1,\"x\":{\"y\":2},\"q\\\"r\":3,\"*\":4,\"$\":5,\"[]\":6}}"),
    S("{\"a\":1,\"a\":{\"b\":2},\"a\":[3],\"b\":2,\"b\":\"s\"}"),
    S("{\"dob\":\"1984-07-12\",\"ts\":\"2024-03-05T10:11:12.345+01:00\",\"bad\":\"1984-13\",\"n\":"
      "1984}"),
    S("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u00e9\\ud83d\\ude00\\u20AC\"}"),
    S("{\"u\":\"h\xc3\xa9llo w\xe2\x82\xacrld \xf0\x9f\x98\x80!\",\"v\":\"\xf0\x9f\x98\x80\"}"),
    S("{\"n\":[0,-0,1.5,-1.5E-10,1e400,123456789012345678901234567890,2E+2,0.000001]}"),
    S("{\"deep\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":[[[[{\"z\":1}]]]]}}}}}}}}"),
    S("{\"\":1,\"e\":\"\",\"f\":{},\"g\":[],\"h\":[{}],\"i\":{\"\":{}}}"),
    S("{\"customer_id\":\"c-123\",\"card\":4111111111111111,\"card2\":\"4111 1111\",\"o\":{"
      "\"t\":true}}"),
    S("\t{\r\n\"a\"\n:\n[\n1\n,\n2\n]\n}\n"),
    S("[[[]],[[1]],{\"a\":[{\"b\":[{\"c\":1}]}]}]"),
    S("{\"long_name_long_name_long_name_long_name\":\"value value value value value\"}"),
    S("{\"tags\":[\"a\",\"b\",{\"k\":\"v\"},[\"c\"]],\"email\":[\"x\",\"y\"]}"),
    S("{\"phone\":\"12\",\"mask\":\"\",\"t\":\"\\u00e9\\u00e9\\u00e9\\u00e9\"}"),
    /* invalid: the error must be the same at every split */
    S("{\"a\":1,}"),
    S("{\"a\":1"),
    S("{\"a\" 1}"),
    S("[1,2]x"),
    S("[1,2] [3]"),
    S("{\"a\":\"\\ud800\"}"),
    S("{\"\\udc00\":1}"),
    S("{\"a\":\"\\ud83d\\u0041\"}"),
    S("{\"a\":\"\xc3\"}"),
    S("{\"a\":\"\xed\xa0\x80\"}"),
    S("{\"a\":\"\xf4\x90\x80\x80\"}"),
    S("{\"a\":\"\xc0\xaf\"}"),
    S("{\"a\":\"tab\there\"}"),
    S("{\"a\":01}"),
    S("{\"a\":1.}"),
    S("{\"a\":-}"),
    S("{\"a\":tru}"),
    S("{\"a\":\"\\x\"}"),
    S("{\"a\":\"\\u12G4\"}"),
    S("{\"\xe9\":1}"),
    S("\xef\xbb\xbf{}"),
    S(""),
    S("   "),
    S("{\"a\":[1,2,3,{\"b\":[nul]}]}"),
};
#define NDOCS (sizeof docs / sizeof docs[0])
#define FIRST_INVALID 26 /* docs[FIRST_INVALID..] must be refused under every rule set */

static const struct jt_rule rs_keep_all[] = {JT_KEEP("$"), JT_END};
static const struct jt_rule rs_none[] = {JT_END};
static const struct jt_rule rs_basic[] = {JT_KEEP("name"), JT_HASH("email"), JT_MASKL("phone", 4),
                                          JT_KEEP("a.c"), JT_END};
static const struct jt_rule rs_items[] = {JT_KEEP("items[].sku"), JT_HASH("items[].qty"),
                                          JT_KEEP("a[].b[].c"), JT_END};
static const struct jt_rule rs_root_array[] = {JT_KEEP("[].ip"), JT_HASH("$[].user_id"),
                                               JT_KEEP("[][]"), JT_END};
static const struct jt_rule rs_wild[] = {JT_KEEP("*.b"), JT_KEEP("meta.*"), JT_KEEP("*.c[].d"),
                                         JT_KEEP("[].*"), JT_END};
static const struct jt_rule rs_wild_xform[] = {JT_MASKF("meta.*", 1), JT_HASH("items[].*"),
                                               JT_TRUNC("tags[]", 2), JT_YEAR("email[]"), JT_END};
static const struct jt_rule rs_quoted[] = {JT_KEEP("meta.\"x.y\""), JT_KEEP("meta.\"q\\\"r\""),
                                           JT_KEEP("meta.\"*\""),   JT_KEEP("meta.\"$\""),
                                           JT_KEEP("meta.x.y"),     JT_END};
static const struct jt_rule rs_transforms[] = {
    JT_YEAR("dob"),       JT_YEAR("ts"),          JT_YEAR("bad"),
    JT_YEAR("n"),         JT_TRUNC("s", 3),       JT_TRUNC("u", 7),
    JT_MASKL("v", 1),     JT_HASH("customer_id"), JT_MASKL("card", 4),
    JT_MASKF("card2", 2), JT_MASKL("phone", 4),   JT_MASKL("mask", 2),
    JT_MASKF("t", 1),     JT_HASH("o"),           JT_END};
static const struct jt_rule rs_deep[] = {JT_KEEP("deep.a.a.a.a.a.a.a[][][][].z"),
                                         JT_KEEP("$.a"),
                                         JT_KEEP("e"),
                                         JT_KEEP("h[]"),
                                         JT_KEEP("i.\"\""),
                                         JT_END};
static const struct jt_rule rs_arrays[] = {JT_KEEP("tags[]"), JT_HASH("email[]"), JT_KEEP("n[]"),
                                           JT_KEEP("g"), JT_END};
static const struct jt_rule rs_escaped_names[] = {JT_KEEP("email"), JT_KEEP("name"), JT_KEEP("b"),
                                                  JT_END};

static const struct {
    const char *name;
    const struct jt_rule *rules;
    bool reject_unlisted;
} rulesets[] = {
    {"$: keep", rs_keep_all, false},
    {"fields: {}", rs_none, false},
    {"basic", rs_basic, false},
    {"items[]", rs_items, false},
    {"root array", rs_root_array, false},
    {"wildcards", rs_wild, false},
    {"quoted names", rs_quoted, false},
    {"transforms", rs_transforms, false},
    {"deep", rs_deep, false},
    {"arrays", rs_arrays, false},
    {"escaped names", rs_escaped_names, false},
    {"basic, unlisted: reject", rs_basic, true},
    {"wildcard transforms", rs_wild_xform, false},
};
#define NRULESETS (sizeof rulesets / sizeof rulesets[0])

static bool same(const struct jt_result *a, const struct jt_result *b)
{
    if (a->rc != b->rc) return false;
    if (a->rc != 0) return a->err_off == b->err_off; /* output before an error is not compared */
    return strcmp(a->report.p, b->report.p) == 0 && a->out.len == b->out.len &&
           memcmp(a->out.p, b->out.p, a->out.len) == 0;
}

static void describe(const char *what, const struct jt_result *r)
{
    cr_log_error("  %s: rc=%d (%s) off=%llu at_finish=%d\n    output: %s\n    report: %s", what,
                 r->rc, r->rc ? flt_strerror(r->rc) : "ok", (unsigned long long)r->err_off,
                 r->at_finish, jt_show(r->out.p, r->out.len), jt_show(r->report.p, r->report.len));
}

static size_t check_ruleset(size_t k)
{
    char err[256];
    struct flt_rules *r = jt_rules(rulesets[k].rules, err, sizeof err);
    cr_assert(r != NULL, "rule set %s: %s", rulesets[k].name, err);
    struct flt_json_config cfg = {.rules = r,
                                  .key = jt_key(),
                                  .max_depth = 64,
                                  .reject_unlisted = rulesets[k].reject_unlisted};
    struct flt_json *f = flt_json_new(64);
    cr_assert(f != NULL);
    size_t bad = 0;
    for (size_t d = 0; d < NDOCS && bad < 10; d++) {
        struct jt_result ref;
        jt_run(f, &cfg, docs[d].p, docs[d].len, JT_WHOLE, 0, &ref);
        /* a fresh filter gives the same result as a reused one */
        struct flt_json *g = flt_json_new(64);
        struct jt_result fresh;
        jt_run(g, &cfg, docs[d].p, docs[d].len, JT_WHOLE, 0, &fresh);
        flt_json_del(g);
        if (!same(&ref, &fresh)) {
            bad++;
            cr_log_error("[%s] doc %zu %s: reused filter differs from a fresh one",
                         rulesets[k].name, d, jt_show(docs[d].p, docs[d].len));
            describe("reused", &ref);
            describe("fresh", &fresh);
        }
        jt_result_free(&fresh);
        if (d >= FIRST_INVALID &&
            (ref.rc >= 0 ||
             (strcmp(flt_errcode(ref.rc), "invalid_body") != 0 && ref.rc != FLT_E_UNLISTED))) {
            bad++;
            cr_log_error("[%s] doc %zu %s: not refused: rc=%d, output %s", rulesets[k].name, d,
                         jt_show(docs[d].p, docs[d].len), ref.rc, jt_show(ref.out.p, ref.out.len));
        }
        if (d < FIRST_INVALID && ref.rc != 0 && !rulesets[k].reject_unlisted) {
            bad++;
            cr_log_error("[%s] doc %zu %s: refused: rc=%d (%s)", rulesets[k].name, d,
                         jt_show(docs[d].p, docs[d].len), ref.rc, flt_strerror(ref.rc));
        }
        if (ref.rc == 0 && ref.out.len > 0) {
            json_error_t je;
            json_t *j = json_loadb(ref.out.p, ref.out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            if (!j && strstr(docs[d].p, "1e400") == NULL && strstr(docs[d].p, "\\u0000") == NULL) {
                bad++;
                cr_log_error("[%s] doc %zu: output is not JSON (%s): %s", rulesets[k].name, d,
                             je.text, jt_show(ref.out.p, ref.out.len));
            }
            json_decref(j);
        }
        for (size_t split = 0; split <= docs[d].len + 2; split++) {
            struct jt_result res;
            if (split <= docs[d].len)
                jt_run(f, &cfg, docs[d].p, docs[d].len, JT_SPLIT, split, &res);
            else if (split == docs[d].len + 1)
                jt_run(f, &cfg, docs[d].p, docs[d].len, JT_BYTES, 0, &res);
            else
                jt_run(f, &cfg, docs[d].p, docs[d].len, JT_STRIDE, 3, &res);
            if (!same(&ref, &res)) {
                bad++;
                cr_log_error("[%s] doc %zu %s: differs at %s %zu", rulesets[k].name, d,
                             jt_show(docs[d].p, docs[d].len),
                             split <= docs[d].len ? "split" : "chunking", split);
                describe("whole", &ref);
                describe("chunked", &res);
                jt_result_free(&res);
                break;
            }
            jt_result_free(&res);
        }
        jt_result_free(&ref);
    }
    flt_json_del(f);
    flt_rules_unref(r);
    return bad;
}

#define RULESET_TEST(i)                                                                            \
    Test(chunking, ruleset_##i)                                                                    \
    {                                                                                              \
        size_t bad = check_ruleset(i);                                                             \
        cr_assert_eq(bad, 0, "rule set \"%s\": %zu chunking differences", rulesets[i].name, bad);  \
    }
RULESET_TEST(0)
RULESET_TEST(1)
RULESET_TEST(2)
RULESET_TEST(3)
RULESET_TEST(4)
RULESET_TEST(5)
RULESET_TEST(6)
RULESET_TEST(7)
RULESET_TEST(8)
RULESET_TEST(9)
RULESET_TEST(10)
RULESET_TEST(11)
RULESET_TEST(12)

Test(chunking, every_ruleset_is_tested)
{
    cr_assert_eq(NRULESETS, 13);
    cr_assert_str_eq(docs[FIRST_INVALID].p, "{\"a\":1,}");
}

/* ------------------------------------------------- expected results */

struct expect {
    const char *doc;
    const struct jt_rule *rules;
    const char *out;     /* NULL: refused */
    const char *removed; /* paths joined by ',' in report order; NULL: not checked */
    const char *transformed;
};

static const struct jt_rule rx_email[] = {JT_KEEP("email"), JT_END};
static const struct jt_rule rx_ab[] = {JT_KEEP("a.b"), JT_END};
static const struct jt_rule rx_items[] = {JT_KEEP("items[].sku"), JT_END};
static const struct jt_rule rx_rootarr[] = {JT_KEEP("[].ip"), JT_END};
static const struct jt_rule rx_star[] = {JT_KEEP("*.x"), JT_END};
static const struct jt_rule rx_quoted[] = {JT_KEEP("m.\"x.y\""), JT_KEEP("m.\"q\\\"r\""), JT_END};
static const struct jt_rule rx_mask[] = {JT_MASKL("p", 4), JT_MASKF("f", 2), JT_TRUNC("t", 3),
                                         JT_YEAR("y"), JT_END};
static const struct jt_rule rx_dollar_a[] = {JT_KEEP("$.a"), JT_END};
static const struct jt_rule rx_arr_arr[] = {JT_KEEP("a[][]"), JT_END};
static const struct jt_rule rx_keep_all[] = {JT_KEEP("$"), JT_END};
static const struct jt_rule rx_none[] = {JT_END};
static const struct jt_rule rx_root_hash[] = {JT_HASH("$"), JT_END};
static const struct jt_rule rx_root_mask[] = {JT_MASKL("$", 2), JT_END};
static const struct jt_rule rx_root_year[] = {JT_YEAR("$"), JT_END};

static const struct expect expects[] = {
    {"{\"\\u0065mail\":\"a@b\",\"x\":1}", rx_email, "{\"\\u0065mail\":\"a@b\"}", "body.x", ""},
    {"{\"email\":\"a\\u0040b\",\"email\":2}", rx_email, "{\"email\":\"a\\u0040b\",\"email\":2}", "",
     ""},
    {"{\"a\":{\"b\":[1],\"c\":2},\"d\":3}", rx_ab, "{\"a\":{\"b\":[1]}}", "body.a.c,body.d", ""},
    {"{\"a\":5}", rx_ab, "{}", "body.a", ""},
    {"{\"a\":[{\"b\":1}]}", rx_ab, "{}", "body.a", ""},
    {"{\"a\":{}}", rx_ab, "{\"a\":{}}", "", ""},
    {"{\"a\":{\"c\":1}}", rx_ab, "{\"a\":{}}", "body.a.c", ""},
    {"{\"items\":[{\"sku\":1,\"e\":2},3,{\"e\":4},[5]]}", rx_items, "{\"items\":[{\"sku\":1},{}]}",
     "body.items[].e,body.items[]", ""},
    {"{\"items\":{\"sku\":1}}", rx_items, "{}", "body.items", ""},
    {"{\"items\":[]}", rx_items, "{\"items\":[]}", "", ""},
    {"[{\"ip\":1,\"u\":2},7]", rx_rootarr, "[{\"ip\":1}]", "body[].u,body[]", ""},
    {"{\"ip\":1}", rx_rootarr, "{}", NULL, ""},
    {"\"x\"", rx_rootarr, "null", "body", ""},
    {"\"x\"", rx_keep_all, "\"x\"", "", ""},
    {" 1.50 ", rx_keep_all, "1.50", "", ""},
    {"{\"p\":{\"x\":1,\"y\":2},\"q\":3,\"r\":[{\"x\":1}]}", rx_star, "{\"p\":{\"x\":1}}",
     "body.p.y,body.q,body.r", ""},
    {"{\"m\":{\"x.y\":1,\"x\":{\"y\":2},\"q\\\"r\":3,\"q\":4}}", rx_quoted,
     "{\"m\":{\"x.y\":1,\"q\\\"r\":3}}", "body.m.x,body.m.q", ""},
    {"{\"p\":\"+44 20 7946 0958\",\"f\":\"h\\u00e9llo\",\"t\":\"\\u00e9t\\u00e9s\",\"y\":"
     "\"2024-02-29T23:59:59.5Z\"}",
     rx_mask,
     "{\"p\":\"************0958\",\"f\":\"h\xc3\xa9***\",\"t\":\"\xc3\xa9t\xc3\xa9\",\"y\":"
     "\"2024\"}",
     "", "body.p,body.f,body.t,body.y"},
    {"{\"p\":12345,\"f\":true,\"t\":{\"a\":1},\"y\":\"2024\"}", rx_mask, "{\"p\":\"*2345\"}",
     "body.f,body.t,body.y", "body.p"},
    {"{\"p\":\"ab\",\"f\":\"\",\"y\":\"1999-12-31\"}", rx_mask,
     "{\"p\":\"ab\",\"f\":\"\",\"y\":\"1999\"}", "", "body.p,body.f,body.y"},
    {"{\"y\":\"2024-03-05T10:11+02:00\",\"p\":null}", rx_mask, "{\"y\":\"2024\"}", "body.p",
     "body.y"},
    {"{\"y\":\"2024-03-05 10:11\"}", rx_mask, "{}", "body.y", ""},
    {"{\"t\":\"a\\\"bc\"}", rx_mask, "{\"t\":\"a\\\"b\"}", "", "body.t"},
    {"{\"a\":1,\"b\":2}", rx_dollar_a, "{\"a\":1}", "body.b", ""},
    {"{\"a\":[[1],2,{\"x\":3},[]]}", rx_arr_arr, "{\"a\":[[1],[]]}", "body.a[]", ""},
    {"{\"a\":1,\"b\":{\"c\":2}}", rx_none, "{}", "body.a,body.b", ""},
    {"[1,{\"a\":2}]", rx_none, "[]", NULL, ""},
    /* a transform on the root (`$: hash`) meeting a container or a literal
     * removes the root: empty value of its kind (SPEC 4.1) */
    {"{\"a\":1}", rx_root_hash, "{}", "body", ""},
    {"[1]", rx_root_hash, "[]", "body", ""},
    {"[]", rx_root_hash, "[]", "body", ""},
    {"true", rx_root_hash, "null", "body", ""},
    {"null", rx_root_hash, "null", "body", ""},
    {"\"abcdef\"", rx_root_mask, "\"****ef\"", "", "body"},
    {"12345", rx_root_mask, "\"***45\"", "", "body"},
    {"{}", rx_root_year, "{}", "body", ""},
    {"\"1999-01-01\"", rx_root_year, "\"1999\"", "", "body"},
    {"\"x\"", rx_root_year, "null", "body", ""},
    {"{\"a\":\"\\ud800\"}", rx_none, NULL, NULL, NULL},
    {"{\"\\ud800\":1}", rx_none, NULL, NULL, NULL},
    {"{\"a\":\"\\ud800\"}", rx_keep_all, NULL, NULL, NULL},
    {"{\"a\":[1,2}", rx_none, NULL, NULL, NULL},
};

static void joined(const struct flt_pathlist *l, struct jt_buf *out)
{
    jt_buf_put(out, "", 0);
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str s = flt_pathlist_get(l, i);
        if (i) jt_buf_putc(out, ',');
        jt_buf_put(out, s.p, s.len);
    }
}

Test(semantics, expected_outputs_and_reports)
{
    struct flt_json *f = flt_json_new(64);
    size_t bad = 0;
    for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++) {
        const struct expect *e = &expects[i];
        char err[256];
        struct flt_rules *r = jt_rules(e->rules, err, sizeof err);
        cr_assert(r != NULL, "case %zu: %s", i, err);
        struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 64};
        struct flt_report *rep = malloc(sizeof *rep);
        flt_report_init(rep);
        struct jt_buf out = {0}, rem = {0}, tr = {0};
        jt_buf_put(&out, "", 0);
        flt_json_reset(f, &cfg, jt_buf_sink, &out, rep);
        int rc = flt_json_feed(f, e->doc, strlen(e->doc));
        if (rc == 0) rc = flt_json_finish(f);
        joined(&rep->removed, &rem);
        joined(&rep->transformed, &tr);
        bool ok;
        if (e->out == NULL)
            ok = rc < 0 && strcmp(flt_errcode(rc), "invalid_body") == 0;
        else
            ok = rc == 0 && strcmp(out.p, e->out) == 0 &&
                 (e->removed == NULL || strcmp(rem.p, e->removed) == 0) &&
                 (e->transformed == NULL || strcmp(tr.p, e->transformed) == 0);
        if (!ok) {
            bad++;
            cr_log_error("case %zu: %s\n  got : rc=%d (%s) out=%s removed=[%s] transformed=[%s]\n"
                         "  want: out=%s removed=[%s] transformed=[%s]",
                         i, jt_show(e->doc, strlen(e->doc)), rc, rc ? flt_strerror(rc) : "ok",
                         jt_show(out.p, out.len), rem.p, tr.p, e->out ? e->out : "(refused)",
                         e->removed ? e->removed : "-", e->transformed ? e->transformed : "-");
        }
        jt_buf_free(&out);
        jt_buf_free(&rem);
        jt_buf_free(&tr);
        free(rep);
        flt_rules_unref(r);
    }
    flt_json_del(f);
    cr_assert_eq(bad, 0, "%zu semantic cases failed (see log)", bad);
}

Test(semantics, hash_matches_openssl_hmac)
{
    static const struct jt_rule rs[] = {JT_HASH("s"), JT_HASH("n"), JT_HASH("e"), JT_END};
    char err[256];
    struct flt_rules *r = jt_rules(rs, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 64};
    struct flt_json *f = flt_json_new(64);
    const char *doc = "{\"s\":\"a\\u0040b\\n\\ud83d\\ude00\",\"n\":-1.50E+3,\"e\":\"\"}";
    char hs[65], hn[65], he[65], want[512];
    jt_hmac_ref("a@b\n\xf0\x9f\x98\x80", 8, hs);
    jt_hmac_ref("-1.50E+3", 8, hn);
    jt_hmac_ref("", 0, he);
    snprintf(want, sizeof want, "{\"s\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", hs, hn, he);
    for (int ch = 0; ch < 2; ch++) {
        struct jt_result res;
        jt_run(f, &cfg, doc, strlen(doc), ch ? JT_BYTES : JT_WHOLE, 0, &res);
        cr_expect_eq(res.rc, 0, "rc=%d", res.rc);
        cr_expect_str_eq(res.out.p, want);
        jt_result_free(&res);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}
