/* filters/json.c: SPEC 4.1 and 4.4 rule by rule, each case fed whole, at
 * every split point and in 1-byte chunks. */
#include "tests/filters/helpers.h"

#define HASH_42 "29a6eb6f6fbb448754e3d58fd69b4abf9dc0e7e82ede86a72cb5162a5aeaa648"
#define HASH_ANN "33a0ba430509b0761c9b5d405cc43d50a8be49efe0277aead8a240583b5601fa"
#define HASH_E_ACUTE "ea4791b9bb769335d344d3c091514b429d79586d3ec1bf31790e36d666495bb4"

struct jcase {
    const char *name;
    const char *rules[8];
    const char *in;
    const char *out; /* NULL: refused with |err| */
    const char *removed;
    const char *transformed;
    int err;
};

static const struct jcase cases[] = {
    {"keep one member", {"a=keep"}, "{\"a\":1,\"b\":2}", "{\"a\":1}", "body.b", "", 0},
    {"whitespace dropped",
     {"a=keep"},
     " { \"a\" : [ 1 , 2 ] ,\n\"b\":2 } ",
     "{\"a\":[1,2]}",
     "body.b",
     "",
     0},
    {"nested path",
     {"r.name=keep"},
     "{\"r\":{\"name\":\"Ann\",\"email\":\"x\"},\"z\":1}",
     "{\"r\":{\"name\":\"Ann\"}}",
     "body.r.email,body.z",
     "",
     0},
    {"kept container keeps subtree",
     {"r=keep"},
     "{\"r\":{\"a\":{\"b\":[1,{\"c\":null}]}},\"x\":0}",
     "{\"r\":{\"a\":{\"b\":[1,{\"c\":null}]}}}",
     "body.x",
     "",
     0},
    {"ancestor emptied", {"r.name=keep"}, "{\"r\":{\"x\":1}}", "{\"r\":{}}", "body.r.x", "", 0},
    {"array elements",
     {"items[].sku=keep"},
     "{\"items\":[{\"sku\":\"A\",\"p\":1},{\"sku\":\"B\"}]}",
     "{\"items\":[{\"sku\":\"A\"},{\"sku\":\"B\"}]}",
     "body.items[].p",
     "",
     0},
    {"scalar element dropped",
     {"items[].sku=keep"},
     "{\"items\":[5,{\"sku\":1},\"x\"]}",
     "{\"items\":[{\"sku\":1}]}",
     "body.items[]",
     "",
     0},
    {"ancestor meets scalar",
     {"r.name=keep"},
     "{\"r\":\"text\",\"k\":1}",
     "{}",
     "body.r,body.k",
     "",
     0},
    {"ancestor meets other container",
     {"items[].sku=keep"},
     "{\"items\":{\"sku\":1}}",
     "{}",
     "body.items",
     "",
     0},
    {"object ancestor meets array",
     {"r.name=keep"},
     "{\"r\":[{\"name\":1}]}",
     "{}",
     "body.r",
     "",
     0},
    {"wildcard",
     {"*.id=keep"},
     "{\"a\":{\"id\":1,\"x\":2},\"b\":{\"id\":3},\"c\":4}",
     "{\"a\":{\"id\":1},\"b\":{\"id\":3}}",
     "body.a.x,body.c",
     "",
     0},
    {"wildcard merged with named",
     {"*.id=keep", "a.name=keep"},
     "{\"a\":{\"id\":1,\"name\":2,\"z\":3}}",
     "{\"a\":{\"id\":1,\"name\":2}}",
     "body.a.z",
     "",
     0},
    {"root keep", {"$=keep"}, "[1, {\"a\" : \"b\"}]", "[1,{\"a\":\"b\"}]", "", "", 0},
    {"root array elements",
     {"[].user_id=keep"},
     "[{\"user_id\":1,\"ip\":\"x\"}]",
     "[{\"user_id\":1}]",
     "body[].ip",
     "",
     0},
    {"dollar prefix", {"$.a=keep"}, "{\"a\":1,\"b\":2}", "{\"a\":1}", "body.b", "", 0},
    {"empty rules object", {NULL}, "{\"a\":1,\"b\":{\"c\":2}}", "{}", "body.a,body.b", "", 0},
    {"empty rules array", {NULL}, "[1,2]", "[]", "body[]", "", 0},
    {"scalar root removed", {"a=keep"}, "\"text\"", "null", "body", "", 0},
    {"number root removed", {"a=keep"}, "12", "null", "body", "", 0},
    {"quoted name",
     {"meta.\"x.y\"=keep"},
     "{\"meta\":{\"x.y\":1,\"x\":{\"y\":2}}}",
     "{\"meta\":{\"x.y\":1}}",
     "body.meta.x",
     "",
     0},
    {"escaped name matches",
     {"email=keep"},
     "{\"\\u0065mail\":\"a\",\"e\\\"\":1}",
     "{\"\\u0065mail\":\"a\"}",
     "body.\"e\\\"\"",
     "",
     0},
    {"case sensitive", {"email=keep"}, "{\"Email\":1}", "{}", "body.Email", "", 0},
    {"duplicates judged alone",
     {"a=keep"},
     "{\"a\":1,\"b\":2,\"a\":3}",
     "{\"a\":1,\"a\":3}",
     "body.b",
     "",
     0},
    {"byte exact strings and numbers",
     {"a=keep", "b=keep"},
     "{\"a\":\"\\u00e9\\n\\/x\",\"b\":1.50E+03}",
     "{\"a\":\"\\u00e9\\n\\/x\",\"b\":1.50E+03}",
     "",
     "",
     0},
    {"hash string",
     {"e=hash"},
     "{\"e\":\"ann@example.com\"}",
     "{\"e\":\"" HASH_ANN "\"}",
     "",
     "body.e",
     0},
    {"hash escaped string",
     {"e=hash"},
     "{\"e\":\"ann\\u0040example.com\"}",
     "{\"e\":\"" HASH_ANN "\"}",
     "",
     "body.e",
     0},
    {"hash number text", {"e=hash"}, "{\"e\":42}", "{\"e\":\"" HASH_42 "\"}", "", "body.e", 0},
    {"hash utf8",
     {"e=hash"},
     "{\"e\":\"\\u00e9\"}",
     "{\"e\":\"" HASH_E_ACUTE "\"}",
     "",
     "body.e",
     0},
    {"hash object removed", {"e=hash"}, "{\"e\":{\"x\":1}}", "{}", "body.e", "", 0},
    {"hash null removed", {"e=hash"}, "{\"e\":null,\"f\":true}", "{}", "body.e,body.f", "", 0},
    {"mask keep_last",
     {"p=mask_last:4"},
     "{\"p\":\"+44 7700 900123\"}",
     "{\"p\":\"***********0123\"}",
     "",
     "body.p",
     0},
    {"mask keep_last short",
     {"p=mask_last:4"},
     "{\"p\":\"12\"}",
     "{\"p\":\"12\"}",
     "",
     "body.p",
     0},
    {"mask keep_first code points",
     {"p=mask_first:2"},
     "{\"p\":\"\\u00e9t\\u00e9s\"}",
     "{\"p\":\"\xc3\xa9t**\"}",
     "",
     "body.p",
     0},
    {"mask number", {"p=mask_last:2"}, "{\"p\":12345}", "{\"p\":\"***45\"}", "", "body.p", 0},
    {"truncate", {"z=truncate:3"}, "{\"z\":\"SW1A 1AA\"}", "{\"z\":\"SW1\"}", "", "body.z", 0},
    {"truncate utf8",
     {"z=truncate:2"},
     "{\"z\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}",
     "{\"z\":\"\xc3\xa9\xc3\xa9\"}",
     "",
     "body.z",
     0},
    {"transform escapes output",
     {"z=truncate:3"},
     "{\"z\":\"a\\\"\\n\\u0001\"}",
     "{\"z\":\"a\\\"\\n\"}",
     "",
     "body.z",
     0},
    {"transform empty string", {"z=truncate:3"}, "{\"z\":\"\"}", "{\"z\":\"\"}", "", "body.z", 0},
    {"year date", {"b=year"}, "{\"b\":\"1990-05-17\"}", "{\"b\":\"1990\"}", "", "body.b", 0},
    {"year datetime",
     {"b=year"},
     "{\"b\":\"1990-05-17T10:20:30.123+02:00\"}",
     "{\"b\":\"1990\"}",
     "",
     "body.b",
     0},
    {"year datetime Z",
     {"b=year"},
     "{\"b\":\"2000-02-29T10:20Z\"}",
     "{\"b\":\"2000\"}",
     "",
     "body.b",
     0},
    {"year not a date", {"b=year"}, "{\"b\":\"17/05/1990\",\"c\":1}", "{}", "body.b,body.c", "", 0},
    {"year bad day", {"b=year"}, "{\"b\":\"1990-02-30\"}", "{}", "body.b", "", 0},
    {"year of number removed", {"b=year"}, "{\"b\":1990}", "{}", "body.b", "", 0},
    {"year in array",
     {"d[]=year"},
     "{\"d\":[\"1990-01-01\",\"x\",\"2001-12-31\"]}",
     "{\"d\":[\"1990\",\"2001\"]}",
     "body.d[]",
     "body.d[]",
     0},
    {"array of hashed",
     {"ids[]=hash"},
     "{\"ids\":[42,\"ann@example.com\"]}",
     "{\"ids\":[\"" HASH_42 "\",\"" HASH_ANN "\"]}",
     "",
     "body.ids[]",
     0},
    {"nested arrays",
     {"m[][]=keep"},
     "{\"m\":[[1,2],[3],4]}",
     "{\"m\":[[1,2],[3]]}",
     "body.m[]",
     "",
     0},
    {"root hash", {"$=hash"}, "42", "\"" HASH_42 "\"", "", "body", 0},
    {"comma placement",
     {"b=keep", "d=keep"},
     "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}",
     "{\"b\":2,\"d\":4}",
     "body.a,body.c,body.e",
     "",
     0},
    {"removed first then ancestor",
     {"r.x=keep"},
     "{\"q\":1,\"r\":{\"x\":1},\"s\":2}",
     "{\"r\":{\"x\":1}}",
     "body.q,body.s",
     "",
     0},
    /* refusals */
    {"trailing garbage", {"a=keep"}, "{\"a\":1} x", NULL, NULL, NULL, FLT_E_TRAILING},
    {"two roots", {"a=keep"}, "{} {}", NULL, NULL, NULL, FLT_E_TRAILING},
    {"empty document", {"a=keep"}, "  ", NULL, NULL, NULL, FLT_E_INCOMPLETE},
    {"truncated", {"a=keep"}, "{\"a\":[1,2", NULL, NULL, NULL, FLT_E_INCOMPLETE},
    {"bad utf8 in removed part", {"a=keep"}, "{\"b\":\"\xff\"}", NULL, NULL, NULL, FLT_E_UTF8},
    {"overlong utf8", {"$=keep"}, "[\"\xc0\xaf\"]", NULL, NULL, NULL, FLT_E_UTF8},
    {"utf8 surrogate", {"$=keep"}, "[\"\xed\xa0\x80\"]", NULL, NULL, NULL, FLT_E_UTF8},
    {"lone high surrogate", {"a=keep"}, "{\"b\":\"\\ud800\"}", NULL, NULL, NULL, FLT_E_UTF8},
    {"lone low surrogate", {"a=keep"}, "{\"b\":\"\\udc00\"}", NULL, NULL, NULL, FLT_E_UTF8},
    {"surrogate pair ok",
     {"a=keep"},
     "{\"a\":\"\\ud83d\\ude00\"}",
     "{\"a\":\"\\ud83d\\ude00\"}",
     "",
     "",
     0},
    {"bad escape", {"a=keep"}, "{\"a\":\"\\x\"}", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"control char", {"a=keep"}, "{\"a\":\"\t\"}", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"leading zero", {"$=keep"}, "[01]", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"bare minus", {"$=keep"}, "[-]", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"trailing comma", {"$=keep"}, "[1,]", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"trailing comma object", {"a=keep"}, "{\"a\":1,}", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"single quotes", {"a=keep"}, "{'a':1}", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"bad literal", {"$=keep"}, "[tru]", NULL, NULL, NULL, FLT_E_SYNTAX},
    {"number then garbage", {"$=keep"}, "1x", NULL, NULL, NULL, FLT_E_TRAILING},
    {"root number ok", {"$=keep"}, "-0.5e-3", "-0.5e-3", "", "", 0},
    {"missing colon", {"a=keep"}, "{\"a\" 1}", NULL, NULL, NULL, FLT_E_SYNTAX},
};

static void check_case(const struct jcase *c, size_t chunk)
{
    struct flt_rules *r = make_rules(c->rules);
    struct run_result res;
    run_json(r, c->in, strlen(c->in), chunk, false, &res);
    if (c->out) {
        cr_assert_eq(res.rc, 0, "%s (chunk %zu): rc %d (%s)", c->name, chunk, res.rc,
                     flt_strerror(res.rc));
        cr_assert_str_eq(res.out, c->out, "%s (chunk %zu)", c->name, chunk);
        char buf[2048];
        join_paths(&res.report.removed, buf, sizeof buf);
        cr_assert_str_eq(buf, c->removed, "%s: removed", c->name);
        join_paths(&res.report.transformed, buf, sizeof buf);
        cr_assert_str_eq(buf, c->transformed, "%s: transformed", c->name);
    } else {
        cr_assert_eq(res.rc, c->err, "%s (chunk %zu): rc %d, expected %d", c->name, chunk, res.rc,
                     c->err);
        cr_assert_str_eq(flt_errcode(res.rc), "invalid_body");
    }
    free(res.out);
    flt_rules_unref(r);
}

Test(json, cases_whole)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], 0);
}

Test(json, cases_one_byte_chunks)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], 1);
}

/* Every split point into two chunks. */
Test(json, cases_every_split)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct jcase *c = &cases[i];
        struct flt_rules *r = make_rules(c->rules);
        struct run_result whole;
        size_t len = strlen(c->in);
        run_json(r, c->in, len, 0, false, &whole);
        for (size_t cut = 1; cut < len; cut++) {
            static struct flt_hmac_key key;
            flt_hmac_key_init(&key, (const uint8_t *)test_hmac_key, strlen(test_hmac_key));
            struct flt_json *f = flt_json_new(64);
            struct outbuf o = {0};
            outbuf_sink(&o, "", 0);
            struct flt_json_config cfg = {r, &key, 64, false, "body"};
            flt_json_reset(f, &cfg, outbuf_sink, &o, NULL);
            int rc = flt_json_feed(f, c->in, cut);
            if (rc == 0) rc = flt_json_feed(f, c->in + cut, len - cut);
            if (rc == 0) rc = flt_json_finish(f);
            cr_assert_eq(rc, whole.rc, "%s split %zu", c->name, cut);
            if (rc == 0) cr_assert_str_eq(o.p, whole.out, "%s split %zu", c->name, cut);
            free(o.p);
            flt_json_del(f);
        }
        free(whole.out);
        flt_rules_unref(r);
    }
}

Test(json, depth_limit)
{
    const char *rules[] = {"$=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    char doc[200];
    struct run_result res;
    for (int depth = 64; depth <= 65; depth++) {
        size_t w = 0;
        for (int i = 0; i < depth; i++)
            doc[w++] = '[';
        for (int i = 0; i < depth; i++)
            doc[w++] = ']';
        run_json(r, doc, w, 0, false, &res);
        if (depth == 64)
            cr_assert_eq(res.rc, 0);
        else
            cr_assert_eq(res.rc, FLT_E_DEPTH);
        free(res.out);
    }
    /* in a removed part too */
    const char *rules2[] = {"a=keep", NULL};
    struct flt_rules *r2 = make_rules(rules2);
    size_t w = 0;
    w += (size_t)snprintf(doc, sizeof doc, "{\"b\":");
    for (int i = 0; i < 64; i++)
        doc[w++] = '[';
    for (int i = 0; i < 64; i++)
        doc[w++] = ']';
    doc[w++] = '}';
    run_json(r2, doc, w, 0, false, &res);
    cr_assert_eq(res.rc, FLT_E_DEPTH);
    free(res.out);
    flt_rules_unref(r);
    flt_rules_unref(r2);
}

Test(json, reject_unlisted)
{
    const char *rules[] = {"a=keep", "r.x=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    struct run_result res;
    const char *ok = "{\"a\":1,\"r\":{\"x\":2}}";
    run_json(r, ok, strlen(ok), 0, true, &res);
    cr_assert_eq(res.rc, 0);
    free(res.out);
    const char *bad = "{\"a\":1,\"r\":{\"x\":2,\"y\":3}}";
    run_json(r, bad, strlen(bad), 0, true, &res);
    cr_assert_eq(res.rc, FLT_E_UNLISTED);
    cr_assert_str_eq(flt_errcode(res.rc), "unlisted_field");
    cr_assert_str_eq(res.unlisted, "body.r.y");
    free(res.out);
    flt_rules_unref(r);
}

Test(json, long_names_and_strings_bounded)
{
    const char *rules[] = {"a=keep", "*.k=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    size_t big = 3u << 20;
    char *doc = malloc(2 * big + 64);
    size_t w = 0;
    w += (size_t)snprintf(doc, 64, "{\"a\":\"");
    memset(doc + w, 'v', big);
    w += big;
    memcpy(doc + w, "\",\"", 3);
    w += 3;
    memset(doc + w, 'n', big); /* a 3 MiB member name: removed */
    w += big;
    memcpy(doc + w, "\":{\"k\":1}}", 10);
    w += 10;
    struct run_result res;
    run_json(r, doc, w, 4096, false, &res);
    cr_assert_eq(res.rc, 0);
    cr_assert_eq(strlen(res.out), big + 8);
    cr_assert_eq(res.report.removed.n, 1);
    free(res.out);
    free(doc);
    flt_rules_unref(r);
}

static int failing_sink(void *ud, const char *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
    return -1;
}

Test(json, sink_error)
{
    const char *rules[] = {"$=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    struct flt_json *f = flt_json_new(8);
    struct flt_json_config cfg = {r, NULL, 0, false, NULL};
    flt_json_reset(f, &cfg, failing_sink, NULL, NULL);
    cr_assert_eq(flt_json_feed(f, "[1]", 3), FLT_E_SINK);
    cr_assert_eq(flt_json_feed(f, "[1]", 3), FLT_E_SINK, "errors are sticky");
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(json, error_offset)
{
    const char *rules[] = {"$=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    struct flt_json *f = flt_json_new(8);
    struct outbuf o = {0};
    struct flt_json_config cfg = {r, NULL, 0, false, NULL};
    flt_json_reset(f, &cfg, outbuf_sink, &o, NULL);
    cr_assert_eq(flt_json_feed(f, "[1,", 3), 0);
    cr_assert_eq(flt_json_feed(f, " x]", 3), FLT_E_SYNTAX);
    cr_assert_eq(flt_json_error_offset(f), 4);
    free(o.p);
    flt_json_del(f);
    flt_rules_unref(r);
}

Test(json, reset_reuses_filter)
{
    const char *rules[] = {"a=keep", NULL};
    struct flt_rules *r = make_rules(rules);
    struct flt_json *f = flt_json_new(8);
    struct flt_json_config cfg = {r, NULL, 0, false, NULL};
    for (int i = 0; i < 3; i++) {
        struct outbuf o = {0};
        flt_json_reset(f, &cfg, outbuf_sink, &o, NULL);
        cr_assert_eq(flt_json_feed(f, i == 1 ? "{\"a\":[" : "{\"a\":1}", i == 1 ? 6 : 7), 0);
        if (i != 1) {
            cr_assert_eq(flt_json_finish(f), 0);
            cr_assert_str_eq(o.p, "{\"a\":1}");
        }
        free(o.p);
    }
    flt_json_del(f);
    flt_rules_unref(r);
}
