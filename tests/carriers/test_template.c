/* tests for filters/template.c: route templates, path checks, rewriting
 * (SPEC 4, 4.3, 4.4). */
#include "helpers.h"

static struct flt_template t;
static char err[256];

static void compile(const char *p)
{
    cr_assert_eq(flt_template_compile(&t, p, strlen(p), err, sizeof err), 0, "%s: %s", p, err);
}

static bool match(const char *p)
{
    return flt_template_match(&t, p, strlen(p));
}

Test(template, compile_errors)
{
    const char *bad[] = {"",           "v1/x",     "/v1/*/x",     "/v1/x*", "/v1/{}",
                         "/v1/{a}{b}", "/v1/a{b}", "/v1/{a}/{a}", "/v1/{a", "/v1/a}",
                         "/v1/./x",    "/v1/../x", "/v1?x=1",     "/v1#f",  "/*/*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        cr_assert_eq(flt_template_compile(&t, bad[i], strlen(bad[i]), err, sizeof err), -1, "%s",
                     bad[i]);
        cr_assert(err[0] != '\0', "%s: no message", bad[i]);
    }
    /* too many segments */
    {
        char p[200] = "";
        size_t o = 0;
        for (int i = 0; i <= FLT_TEMPLATE_MAX_SEGMENTS; i++)
            o += (size_t)snprintf(p + o, sizeof p - o, "/a");
        cr_assert_eq(flt_template_compile(&t, p, o, err, sizeof err), -1);
        cr_assert_eq(flt_template_compile(&t, p, o - 2, err, sizeof err), 0);
        cr_assert_eq(t.nseg, FLT_TEMPLATE_MAX_SEGMENTS);
    }
}

Test(template, literal)
{
    compile("/v1/shipments");
    cr_assert_eq(t.nseg, 2);
    cr_assert(!t.rest);
    cr_assert(match("/v1/shipments"));
    cr_assert(!match("/v1/shipments/"));
    cr_assert(!match("/v1/Shipments"));
    cr_assert(!match("/v1/%73hipments"));
    cr_assert(!match("/v1/shipment"));
    cr_assert(!match("/v1/shipmentsx"));
    cr_assert(!match("/v1"));
    cr_assert(!match("v1/shipments"));
    cr_assert(!match(""));
    cr_assert(!match("/v1//shipments"));
    compile("/");
    cr_assert(match("/"));
    cr_assert(!match("/x"));
    cr_assert(!match(""));
    compile("/v1/x/");
    cr_assert(match("/v1/x/"));
    cr_assert(!match("/v1/x"));
}

Test(template, params)
{
    compile("/v1/customers/{customer_id}/shipments");
    cr_assert_eq(t.nseg, 4);
    cr_assert(t.seg[2].param);
    cr_assert_eq(t.seg[2].lit.len, strlen("customer_id"));
    cr_assert(match("/v1/customers/42/shipments"));
    cr_assert(match("/v1/customers/a%20b/shipments"));
    cr_assert(!match("/v1/customers//shipments"));
    cr_assert(!match("/v1/customers/4/2/shipments"));
    cr_assert(!match("/v1/customers/42"));
    cr_assert(!match("/v1/customers/42/shipments/x"));
    compile("/{a}");
    cr_assert(match("/x"));
    cr_assert(!match("/"));
    cr_assert(!match("/x/"));
    cr_assert_eq(flt_template_set_param(&t, "a", 1, FLT_PARAM_HASH), 0);
    cr_assert_eq(t.seg[0].action, FLT_PARAM_HASH);
    cr_assert_eq(flt_template_set_param(&t, "b", 1, FLT_PARAM_HASH), -1);
}

Test(template, rest)
{
    compile("/v1/labels/*");
    cr_assert_eq(t.nseg, 2);
    cr_assert(t.rest);
    cr_assert(match("/v1/labels/x"));
    cr_assert(match("/v1/labels/x/y/z"));
    cr_assert(match("/v1/labels/"));
    cr_assert(!match("/v1/labels"));
    cr_assert(!match("/v1/labelsx/y"));
    compile("/*");
    cr_assert_eq(t.nseg, 0);
    cr_assert(match("/"));
    cr_assert(match("/anything/at/all"));
    cr_assert(!match(""));
    compile("/v1/{id}/*");
    cr_assert(match("/v1/7/a"));
    cr_assert(!match("/v1//a"));
    cr_assert(!match("/v1/7"));
}

Test(path_check, refusals)
{
    const char *ok[] = {"",        "/",        "/v1/x",         "/v1/.x",      "/v1/x.",
                        "/v1/...", "/v1/a..b", "/v1/%2e%2e%2e", "/v1/%41",     "/v1//x",
                        "/v1/x/",  "/a%20b",   "/%2ex",         "/~user/a-b_c"};
    const char *bad[] = {"/.",       "/..",       "/v1/./x",   "/v1/../x",   "/v1/.",
                         "/v1/..",   "/v1/%2e/x", "/v1/%2E",   "/v1/%2e%2e", "/v1/.%2E/x",
                         "/v1/%2E.", "/v1/a%2Fb", "/v1/a%2fb", "/v1/%",      "/v1/%4",
                         "/v1/%zz",  "/v1/a%00",  "x/v1",      "/v1/a b",    "/v1/a\tb",
                         "/v1/#x",   "/v1/\x7f",  "*"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_eq(flt_path_check(ok[i], strlen(ok[i])), 0, "[%s]", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(flt_path_check(bad[i], strlen(bad[i])), FLT_E_PATH, "[%s]", bad[i]);
    cr_assert_eq(flt_path_check("/a\0b", 4), FLT_E_PATH);
}

Test(template, rewrite)
{
    struct flt_hmac_key key;
    struct flt_report rep;
    char out[512], want[512], hex[65];
    const char *p = "/v1/customers/ann%40example.com/shipments/9";
    long n;

    test_key(&key);
    compile("/v1/customers/{customer_id}/shipments/{n}");
    cr_assert_eq(flt_template_set_param(&t, "customer_id", 11, FLT_PARAM_HASH), 0);
    flt_report_init(&rep);
    n = flt_template_rewrite(&t, p, strlen(p), &key, out, sizeof out, &rep);
    ref_hmac_hex(TEST_KEY, "ann@example.com", 15, hex);
    snprintf(want, sizeof want, "/v1/customers/%s/shipments/9", hex);
    cr_assert_eq(n, (long)strlen(want), "rc %ld", n);
    cr_assert(memcmp(out, want, (size_t)n) == 0, "got %.*s", (int)n, out);
    cr_assert_eq(rep.transformed.n, 1);
    cr_assert(list_has(&rep.transformed, "param.customer_id"));
    cr_assert_eq(rep.removed.n, 0);

    /* '+' is not a space in a path */
    p = "/v1/customers/a+b/shipments/9";
    n = flt_template_rewrite(&t, p, strlen(p), &key, out, sizeof out, NULL);
    ref_hmac_hex(TEST_KEY, "a+b", 3, hex);
    snprintf(want, sizeof want, "/v1/customers/%s/shipments/9", hex);
    cr_assert(n > 0 && memcmp(out, want, (size_t)n) == 0);

    /* errors */
    cr_assert_eq(flt_template_rewrite(&t, "/v1/x", 5, &key, out, sizeof out, NULL), FLT_E_PATH);
    p = "/v1/customers/a%zz/shipments/9";
    cr_assert_eq(flt_template_rewrite(&t, p, strlen(p), &key, out, sizeof out, NULL), FLT_E_PATH);
    p = "/v1/customers/a/shipments/9";
    cr_assert_eq(flt_template_rewrite(&t, p, strlen(p), &key, out, 40, NULL), FLT_E_NOMEM);
    cr_assert_eq(flt_template_rewrite(&t, p, strlen(p), NULL, out, sizeof out, NULL), FLT_E_STATE);
}

Test(template, rewrite_keep_and_rest)
{
    char out[256];
    long n;
    const char *p = "/v1/labels/a%2Eb/c?";
    compile("/v1/labels/*");
    n = flt_template_rewrite(&t, p, strlen(p) - 1, NULL, out, sizeof out, NULL);
    cr_assert_eq(n, (long)strlen(p) - 1);
    cr_assert(memcmp(out, p, (size_t)n) == 0);
    compile("/*");
    n = flt_template_rewrite(&t, "/", 1, NULL, out, sizeof out, NULL);
    cr_assert_eq(n, 1);
    cr_assert_eq(out[0], '/');
    compile("/v1/{id}/x");
    p = "/v1/%41%20b/x";
    n = flt_template_rewrite(&t, p, strlen(p), NULL, out, sizeof out, NULL);
    cr_assert_eq(n, (long)strlen(p));
    cr_assert(memcmp(out, p, (size_t)n) == 0);
}

#define PATH_OK(p) cr_expect_eq(flt_path_check(p, strlen(p)), 0, "should pass: %s", p)
#define PATH_BAD(p) cr_expect_eq(flt_path_check(p, strlen(p)), FLT_E_PATH, "should fail: %s", p)

/* Review finding 3: Tomcat/Spring/Jetty strip ";params" from a segment
 * before resolving dot segments: "/v1/labels/..;/shipments" matches
 * "PUT /v1/labels/{*}" here and reaches /v1/shipments there. */
Test(path_check, dot_segments_with_path_parameters)
{
    PATH_BAD("/v1/labels/..;/shipments");
    PATH_BAD("/v1/labels/..;jsessionid=1/shipments");
    PATH_BAD("/v1/labels/.;/x");
    PATH_BAD("/v1/labels/%2e%2e;/x");
    PATH_BAD("/v1/labels/.%2E;x=1");
    PATH_BAD("/v1/labels/..%3B/x"); /* servers that decode before stripping */
    PATH_BAD("/..;");
    PATH_OK("/v1/labels/a;b/x");
    PATH_OK("/v1/labels/..a;/x");
    PATH_OK("/v1/labels/;../x");
    PATH_OK("/v1/labels/...;/x");
    PATH_OK("/v1/labels/a..;/x");
}

/* '\' is a separator to IIS and several Java and Node stacks. */
Test(path_check, backslash)
{
    PATH_BAD("/v1/labels/..\\shipments");
    PATH_BAD("/v1/a\\b");
    PATH_BAD("/v1/a%5Cb");
    PATH_BAD("/v1/a%5cb");
    PATH_BAD("/%5C");
}

/* Double encoding: a server that decodes twice would see "%2e" as '.'. */
Test(path_check, double_encoding)
{
    PATH_BAD("/v1/labels/%252e%252e/x");
    PATH_BAD("/v1/%2541");
    PATH_BAD("/v1/%252F");
    PATH_BAD("/v1/%25%32%65"); /* decodes to "%2e" too */
    PATH_BAD("/v1/a%25ff");
    PATH_OK("/v1/100%25");
    PATH_OK("/v1/100%25off");
    PATH_OK("/v1/%25zz");
    PATH_OK("/v1/%25/x");
}

/* Overlong UTF-8 ("%c0%ae" is '.' to lax decoders) and anything else that
 * is not UTF-8 once decoded. */
Test(path_check, decoded_path_must_be_utf8)
{
    PATH_BAD("/v1/labels/%c0%ae%c0%ae/x");
    PATH_BAD("/v1/%C0%AE");
    PATH_BAD("/v1/%e0%80%ae");
    PATH_BAD("/v1/%ff");
    PATH_BAD("/v1/%ed%a0%80"); /* surrogate */
    PATH_BAD("/v1/%c3");       /* cut sequence */
    PATH_BAD("/v1/%c3/%a9");   /* a sequence cannot span segments */
    PATH_BAD("/v1/\xc0\xae");
    PATH_BAD("/v1/\xff");
    PATH_OK("/v1/caf%C3%A9");
    PATH_OK("/v1/caf\xc3\xa9");
    PATH_OK("/v1/%F0%9F%98%80");
}
