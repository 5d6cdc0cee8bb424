/* contracts/run.c: whole in-memory requests through decide + the body filters. */
#include <stdlib.h>
#include <zlib.h>

#include "helpers.h"

static struct ctr_set *set;
static const struct ctr_contract *carrier, *survey;
static struct ctr_result r; /* large: not on the stack */

static void setup(void)
{
    struct diaglog l;
    const char *paths[] = {DATA("carrier.yaml"), DATA("gw/contracts")};
    set = ctr_set_load_contracts(paths, 2, diaglog_init(&l));
    cr_assert_not_null(set, "%s", l.text);
    carrier = set->contracts[0];
    survey = set->contracts[2];
    cr_assert_str_eq(carrier->provider, "parcel-carrier");
    cr_assert_str_eq(survey->provider, "survey");
}

static void teardown(void)
{
    ctr_result_free(&r);
    ctr_set_unref(set);
}

TestSuite(run, .init = setup, .fini = teardown);

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof lit - 1                                                                        \
    }
#define H(n, v)                                                                                    \
    {                                                                                              \
        S(n), S(v)                                                                                 \
    }

static int run_cfg(const struct ctr_config *cfg, const struct ctr_contract *c, const char *method,
                   const char *path, const struct ctr_header *h, size_t nh, const char *purpose,
                   const char *body, size_t len)
{
    struct ctr_request req = {
        .method = {method, strlen(method)},
        .path = {path, strlen(path)},
        .headers = h,
        .nheaders = nh,
        .caller = S("orders-service"),
        .purpose = {purpose, strlen(purpose)},
    };
    ctr_result_free(&r);
    return ctr_run(cfg, c, &req, body, len, &r);
}

static int run(const struct ctr_contract *c, const char *method, const char *path,
               const struct ctr_header *h, size_t nh, const char *purpose, const char *body)
{
    return run_cfg(&set->config, c, method, path, h, nh, purpose, body, strlen(body));
}

static bool reported(const struct flt_pathlist *l, const char *path)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str s = flt_pathlist_get(l, i);
        if (s.len == strlen(path) && memcmp(s.p, path, s.len) == 0) return true;
    }
    return false;
}

static const struct ctr_header json[] = {H("content-type", "application/json")};

Test(run, json_body)
{
    const char *in = "{\"order_id\": 7, \"email\": \"ann@example.com\", \"customer_id\": \"c-42\","
                     " \"recipient\": {\"name\": \"Ann\", \"phone\": \"+44 20 7946 0958\","
                     " \"address\": {\"city\": \"Leeds\"}},"
                     " \"items\": [{\"sku\": \"A\\u0031\", \"quantity\": 2, \"price\": 3}]}";
    cr_assert_eq(run(carrier, "POST", "/v1/shipments", json, 1, "order-fulfillment", in), 0, "%s",
                 r.d.message);
    struct flt_hmac_key k;
    flt_hmac_key_init(&k, (const uint8_t *)"k3y-for-tests", 13);
    char hex[64];
    flt_hmac_hex(&k, "c-42", 4, hex);
    char want[512];
    snprintf(want, sizeof want,
             "{\"order_id\":7,\"customer_id\":\"%.64s\",\"recipient\":{\"name\":\"Ann\","
             "\"phone\":\"************0958\",\"address\":{\"city\":\"Leeds\"}},"
             "\"items\":[{\"sku\":\"A\\u0031\",\"quantity\":2}]}",
             hex);
    cr_expect_str_eq(r.body, want);
    cr_expect_eq(r.body_len, strlen(want));
    cr_expect(reported(&r.d.report.removed, "body.email"));
    cr_expect(reported(&r.d.report.removed, "body.items[].price"));
    cr_expect(reported(&r.d.report.transformed, "body.customer_id"));
    cr_expect(reported(&r.d.report.transformed, "body.recipient.phone"));
    cr_expect(strstr(r.d.message, "ann@") == NULL);
}

Test(run, ndjson_body)
{
    const struct ctr_header h[] = {H("content-type", "application/x-ndjson")};
    cr_assert_eq(run(carrier, "POST", "/v1/shipments", h, 1, "returns",
                     "{\"order_id\":1,\"email\":\"a\"}\n\n{\"order_id\":2}\n"),
                 0, "%s", r.d.message);
    cr_expect_str_eq(r.body, "{\"order_id\":1}\n{\"order_id\":2}\n");
    cr_expect(reported(&r.d.report.removed, "body.email"));
}

Test(run, form_body)
{
    const struct ctr_header h[] = {H("content-type", "application/x-www-form-urlencoded")};
    cr_assert_eq(run(carrier, "POST", "/v1/shipments", h, 1, "returns",
                     "order_id=7&email=ann%40example.com&recipient=x"),
                 0, "%s", r.d.message);
    /* `recipient` is only an ancestor of allowed paths: a flat form value is removed */
    cr_expect_str_eq(r.body, "order_id=7");
    cr_expect(reported(&r.d.report.removed, "body.email"));
    cr_expect(reported(&r.d.report.removed, "body.recipient"));
}

static size_t gzip(const char *in, size_t n, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

Test(run, gzip_body_forwarded_decoded)
{
    const char *in = "{\"order_id\":7,\"email\":\"x@y\"}";
    unsigned char gz[256];
    size_t n = gzip(in, strlen(in), gz, sizeof gz);
    const struct ctr_header h[] = {H("content-type", "application/json"),
                                   H("content-encoding", "gzip")};
    cr_assert_eq(run_cfg(&set->config, carrier, "POST", "/v1/shipments", h, 2, "returns",
                         (const char *)gz, n),
                 0, "%s", r.d.message);
    cr_expect_str_eq(r.body, "{\"order_id\":7}");
    for (size_t i = 0; i < r.d.nfwd; i++)
        cr_expect(r.d.fwd[i].name.len != 16 ||
                  memcmp(r.d.fwd[i].name.p, "content-encoding", 16) != 0);
}

Test(run, gzip_bomb_413)
{
    static char big[200000];
    memset(big, ' ', sizeof big);
    big[0] = '{';
    big[sizeof big - 1] = '}';
    static unsigned char gz[200000];
    size_t n = gzip(big, sizeof big, gz, sizeof gz);
    struct ctr_config cfg = set->config;
    cfg.limits.max_body = 100000;
    const struct ctr_header h[] = {H("content-type", "application/json"),
                                   H("content-encoding", "gzip")};
    cr_expect_gt(
        run_cfg(&cfg, carrier, "POST", "/v1/shipments", h, 2, "returns", (const char *)gz, n), 0);
    cr_expect_eq(r.d.status, 413);
    cr_expect_str_eq(r.d.error, "body_too_large");
    cr_expect_null(r.body);
}

Test(run, max_body_exact)
{
    struct ctr_config cfg = set->config;
    cfg.limits.max_body = 16;
    const char *ok = "{\"order_id\":123}"; /* 16 bytes */
    cr_expect_eq(run_cfg(&cfg, carrier, "POST", "/v1/shipments", json, 1, "returns", ok, 16), 0,
                 "%s", r.d.message);
    const char *big = "{\"order_id\":1234}";
    run_cfg(&cfg, carrier, "POST", "/v1/shipments", json, 1, "returns", big, 17);
    cr_expect_eq(r.d.status, 413);
}

Test(run, invalid_json_400)
{
    cr_expect_eq(run(carrier, "POST", "/v1/shipments", json, 1, "returns", "{\"order_id\": 7,"),
                 400);
    cr_expect_str_eq(r.d.error, "invalid_body");
    cr_expect_null(r.body);
    run(carrier, "POST", "/v1/shipments", json, 1, "returns", "{\"a\":\"\\ud800\"}");
    cr_expect_eq(r.d.status, 400);
}

Test(run, depth_limit)
{
    struct ctr_config cfg = set->config;
    cfg.limits.max_depth = 3;
    const char *ok = "{\"recipient\":{\"address\":{}}}";
    cr_expect_eq(
        run_cfg(&cfg, carrier, "POST", "/v1/shipments", json, 1, "returns", ok, strlen(ok)), 0,
        "%s", r.d.message);
    const char *deep = "{\"recipient\":{\"address\":{\"a\":[]}}}";
    run_cfg(&cfg, carrier, "POST", "/v1/shipments", json, 1, "returns", deep, strlen(deep));
    cr_expect_eq(r.d.status, 400);
    cr_expect_str_eq(r.d.error, "invalid_body");
}

Test(run, body_on_route_without_body_415)
{
    cr_expect_eq(run(carrier, "GET", "/v1/orders/1", json, 1, "returns", "{}"), 415);
    cr_expect_str_eq(r.d.error, "unsupported_media_type");
    cr_expect_eq(run(carrier, "GET", "/v1/orders/1", NULL, 0, "returns", ""), 0);
    cr_expect_str_eq(r.body, "");
}

Test(run, body_without_content_type_415)
{
    cr_expect_eq(run(carrier, "POST", "/v1/shipments", NULL, 0, "returns", "{}"), 415);
    cr_expect_str_eq(r.d.error, "unsupported_media_type");
    /* an empty body needs no content type */
    cr_expect_eq(run(carrier, "POST", "/v1/shipments", NULL, 0, "returns", ""), 0);
    cr_expect_eq(r.body_len, 0);
}

Test(run, opaque_copied)
{
    const struct ctr_header h[] = {H("content-type", "application/pdf")};
    const char in[] = "%PDF-1.7\0binary";
    cr_assert_eq(run_cfg(&set->config, carrier, "PUT", "/v1/labels/l.pdf", h, 1, "returns", in,
                         sizeof in - 1),
                 0);
    cr_expect_eq(r.body_len, sizeof in - 1);
    cr_expect(memcmp(r.body, in, sizeof in - 1) == 0);
    cr_expect_eq(r.d.report.removed.n, 0);
}

Test(run, empty_fields_remove_everything)
{
    cr_assert_eq(run(carrier, "POST", "/v1/empty", json, 1, "returns", "{\"a\":1,\"b\":[2]}"), 0);
    cr_expect_str_eq(r.body, "{}");
    cr_expect(reported(&r.d.report.removed, "body.a"));
    cr_expect(reported(&r.d.report.removed, "body.b"));
}

Test(run, unlisted_reject_422)
{
    cr_expect_eq(run(survey, "POST", "/responses", json, 1, "feedback",
                     "{\"score\":5,\"comment\":\"great service\",\"born\":\"1990-04-01\"}"),
                 0, "%s", r.d.message);
    cr_expect_str_eq(r.body, "{\"score\":5,\"comment\":\"great\",\"born\":\"1990\"}");
    cr_expect_eq(
        run(survey, "POST", "/responses", json, 1, "feedback", "{\"score\":5,\"email\":\"a@b\"}"),
        422);
    cr_expect_str_eq(r.d.error, "unlisted_field");
    cr_expect_null(r.body);
    cr_expect(strstr(r.d.message, "a@b") == NULL);
}

Test(run, refusal_from_decide)
{
    cr_expect_eq(run(carrier, "POST", "/v1/shipments", json, 1, "marketing", "{}"), 403);
    cr_expect_str_eq(r.d.error, "purpose_not_allowed");
    cr_expect_null(r.body);
}
