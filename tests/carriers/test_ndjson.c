/* tests for filters/ndjson.c: one JSON document per line (SPEC 4.2). */
#include "helpers.h"

static void nd_reset(void *o, void *arg, struct tbuf *out, struct flt_report *rep)
{
    flt_ndjson_reset(o, arg, tbuf_sink, out, rep);
}
static int nd_feed(void *o, const char *p, size_t n)
{
    return flt_ndjson_feed(o, p, n);
}
static int nd_finish(void *o)
{
    return flt_ndjson_finish(o);
}

static struct flt_rules *rules;
static struct flt_hmac_key key;
static struct flt_json_config cfg;
static struct tfilter tf;

static void setup(void)
{
    static const char *const specs[] = {"a=keep", "b.c=keep", "h=hash"};
    rules = make_rules(specs, sizeof specs / sizeof specs[0]);
    test_key(&key);
    memset(&cfg, 0, sizeof cfg);
    cfg.rules = rules;
    cfg.key = &key;
    tf.obj = flt_ndjson_new(8);
    cr_assert_not_null(tf.obj);
    tf.reset = nd_reset;
    tf.feed = nd_feed;
    tf.finish = nd_finish;
    tf.arg = &cfg;
}

static void teardown(void)
{
    flt_ndjson_del(tf.obj);
    flt_rules_unref(rules);
}

TestSuite(ndjson, .init = setup, .fini = teardown);

#define CHECK(in, want) check_chunked(&tf, in, strlen(in), want, strlen(want), 0)
#define CHECK_RC(in, rc) check_chunked(&tf, in, strlen(in), NULL, 0, rc)

static int once(const char *in, struct tbuf *out, struct flt_report *rep)
{
    tbuf_init(out);
    flt_report_init(rep);
    return tfilter_run(&tf, in, strlen(in), NULL, 0, out, rep);
}

Test(ndjson, lines)
{
    CHECK("{\"a\":1,\"x\":2}\n{\"a\":2}\n", "{\"a\":1}\n{\"a\":2}\n");
    CHECK("{\"a\":1}", "{\"a\":1}\n");
    CHECK("{\"a\":1}\n{\"b\":{\"c\":\"s\",\"d\":1},\"a\":[1, 2]}",
          "{\"a\":1}\n{\"b\":{\"c\":\"s\"},\"a\":[1,2]}\n");
    CHECK("{\"x\":1}\n", "{}\n");
    CHECK("", "");
}

Test(ndjson, blank_lines_skipped)
{
    CHECK("\n  \n\t\r\n{\"a\":1}\r\n\n", "{\"a\":1}\n");
    CHECK("\n\n\n", "");
    CHECK("   ", "");
    CHECK(" {\"a\" : 1} \r\n\t{ \"a\":2 }\t", "{\"a\":1}\n{\"a\":2}\n");
}

Test(ndjson, roots)
{
    CHECK("[1,2]\n\"s\"\n5\nnull\n{}\n", "[]\nnull\nnull\nnull\n{}\n");
}

Test(ndjson, report)
{
    struct tbuf out;
    struct flt_report rep;
    char hex[65], want[256];
    cr_assert_eq(once("{\"x\":1,\"h\":\"v\"}\n{\"x\":2,\"y\":3}\n", &out, &rep), 0);
    ref_hmac_hex(TEST_KEY, "v", 1, hex);
    snprintf(want, sizeof want, "{\"h\":\"%s\"}\n{}\n", hex);
    cr_assert_str_eq(tbuf_str(&out), want);
    cr_assert(list_has(&rep.removed, "body.x"));
    cr_assert(list_has(&rep.removed, "body.y"));
    cr_assert_eq(rep.removed.n, 2);
    cr_assert(list_has(&rep.transformed, "body.h"));
    tbuf_free(&out);
}

Test(ndjson, documents_cannot_span_lines)
{
    CHECK_RC("{\"a\":\n1}\n", FLT_E_INCOMPLETE);
    CHECK_RC("[1,\n2]", FLT_E_INCOMPLETE);
    CHECK_RC("\"ab\ncd\"", FLT_E_INCOMPLETE);
}

Test(ndjson, errors)
{
    CHECK_RC("{} {}\n", FLT_E_TRAILING);
    CHECK_RC("{\"a\":1}\n{\"a\":}\n", FLT_E_SYNTAX);
    CHECK_RC("{\"a\":1}\n{\"a\":", FLT_E_INCOMPLETE);
    CHECK_RC("{\"a\":\"\xff\"}", FLT_E_UTF8);
    CHECK_RC("[[[[[[[[[]]]]]]]]]\n", FLT_E_DEPTH);
    CHECK("[[[[[[[[]]]]]]]]\n", "[]\n");
}

Test(ndjson, reject_unlisted)
{
    struct tbuf out;
    struct flt_report rep;
    cfg.reject_unlisted = true;
    CHECK("{\"a\":1}\n{\"a\":2}\n", "{\"a\":1}\n{\"a\":2}\n");
    CHECK_RC("{\"a\":1}\n{\"a\":2,\"x\":1}\n", FLT_E_UNLISTED);
    cr_assert_eq(once("{\"a\":1}\n{\"a\":2,\"x\":1}\n", &out, &rep), FLT_E_UNLISTED);
    cr_assert_str_eq(flt_ndjson_unlisted_path(tf.obj), "body.x");
    cr_assert_eq(flt_ndjson_feed(tf.obj, "{}", 2), FLT_E_UNLISTED);
    cr_assert_eq(flt_ndjson_finish(tf.obj), FLT_E_UNLISTED);
    tbuf_free(&out);
    cr_assert_eq(once("{\"a\":1}\n", &out, &rep), 0);
    cr_assert_str_eq(flt_ndjson_unlisted_path(tf.obj), "");
    tbuf_free(&out);
}

Test(ndjson, state_and_sink)
{
    struct tbuf out;
    struct flt_ndjson *f = flt_ndjson_new(0);
    tbuf_init(&out);
    cr_assert_eq(flt_ndjson_feed(f, "{}", 2), FLT_E_STATE);
    flt_ndjson_reset(f, &cfg, tbuf_sink, &out, NULL);
    cr_assert_eq(flt_ndjson_feed(f, "{}\n{}", 5), 0);
    cr_assert_eq(flt_ndjson_finish(f), 0);
    cr_assert_str_eq(tbuf_str(&out), "{}\n{}\n");
    cr_assert_eq(flt_ndjson_feed(f, "{}", 2), FLT_E_STATE);
    cr_assert_eq(flt_ndjson_finish(f), FLT_E_STATE);
    tbuf_free(&out);
    out.fail_after = 2;
    flt_ndjson_reset(f, &cfg, tbuf_sink, &out, NULL);
    {
        int r = flt_ndjson_feed(f, "{}\n", 3);
        if (r == 0) r = flt_ndjson_finish(f);
        cr_assert_eq(r, FLT_E_SINK);
    }
    tbuf_free(&out);
    flt_ndjson_del(f);
    flt_ndjson_del(NULL);
}

Test(ndjson, random_chunking)
{
    check_random_chunking(&tf, "{}[]\":,1 \n\r\taxh", 3000, 4242);
    check_random_chunking(&tf, "{\"a\":1}\n {\"x\":2}\n", 1000, 99);
}
