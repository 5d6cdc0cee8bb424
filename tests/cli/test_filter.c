/* privgate filter: forwarded bodies, --explain JSON, refusals. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <zlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run.h"

#define CARRIER "examples/contracts/parcel-carrier.yaml"
#define SHIPMENT "examples/requests/shipment.json"
#define CUSTOMER_HASH "1b72459b6da42593ed78ca654ae72142fcd4014f2f9121fdf3e96fbaaf6389d3"

/* examples/requests/shipment.json through the parcel carrier's contract. */
static const char shipment_out[] =
    "{\"order_id\":7,\"customer_id\":\"" CUSTOMER_HASH "\","
    "\"recipient\":{\"name\":\"Ann Example\",\"phone\":\"************0958\","
    "\"address\":{\"street\":\"1 High Street\",\"city\":\"London\",\"postcode\":\"SW1A 1AA\"}},"
    "\"items\":[{\"sku\":\"BOOK-1\",\"quantity\":2}]}";

static char *slurp(const char *rel)
{
    FILE *f = fopen(src_path(rel), "rb");
    cr_assert(f != NULL, "%s", rel);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static json_t *parse_one_line(const struct run *r)
{
    cr_assert_eq(count_lines(r->out), 1, "one line expected: %s", r->out);
    json_error_t e;
    json_t *j = json_loads(r->out, JSON_PRESERVE_ORDER, &e);
    cr_assert(j != NULL, "invalid JSON (%s at %d): %s", e.text, e.position, r->out);
    cr_assert(json_is_object(j));
    return j;
}

static bool array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) return true;
    }
    return false;
}

Test(filter, prints_the_forwarded_body)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", CARRIER, "-p", "/v1/shipments?dry_run=1", "--purpose",
        "order-fulfillment", "--caller", "orders-service", SHIPMENT);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, shipment_out);
    cr_expect_str_empty(r.err);
    run_free(&r);
}

Test(filter, body_from_stdin)
{
    const char *body = slurp(SHIPMENT);
    struct run r;
    RUN(&r, NULL, body, "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose",
        "order-fulfillment", "--caller", "orders-service");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, shipment_out);
    run_free(&r);
    RUN(&r, NULL, body, "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose",
        "order-fulfillment", "--caller", "orders-service", "-");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, shipment_out);
    run_free(&r);
}

Test(filter, explain_forwarded)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", CARRIER, "-p", "/v1/shipments?dry_run=1&utm_source=x",
        "--purpose", "order-fulfillment", "--caller", "orders-service", "-H", "Cookie: sid=1", "-H",
        "idempotency-key: k-1", "-H", "authorization: Bearer caller", "--explain", SHIPMENT);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_one_line(&r);

    /* The keys of SPEC 2, in its order. */
    static const char *const keys[] = {"outcome", "method",  "path",       "headers",
                                       "body",    "removed", "transformed"};
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        cr_assert_lt(k, 7, "unexpected key %s", key);
        cr_expect_str_eq(key, keys[k]);
        k++;
    }
    cr_expect_eq(k, 7);

    cr_expect_str_eq(json_string_value(json_object_get(j, "outcome")), "forwarded");
    cr_expect_str_eq(json_string_value(json_object_get(j, "method")), "POST");
    cr_expect_str_eq(json_string_value(json_object_get(j, "path")), "/v1/shipments?dry_run=1");
    json_t *h = json_object_get(j, "headers");
    cr_assert(json_is_object(h));
    cr_expect_str_eq(json_string_value(json_object_get(h, "authorization")), "(injected)");
    cr_expect_str_eq(json_string_value(json_object_get(h, "content-type")), "application/json");
    cr_expect_str_eq(json_string_value(json_object_get(h, "idempotency-key")), "k-1");
    cr_expect_null(json_object_get(h, "cookie"));
    json_object_foreach(h, key, v)
    {
        for (const char *p = key; *p; p++)
            cr_expect(!(*p >= 'A' && *p <= 'Z'), "header name %s is not lower case", key);
    }
    cr_expect_str_eq(json_string_value(json_object_get(j, "body")), shipment_out);
    json_t *removed = json_object_get(j, "removed");
    cr_expect(array_has(removed, "query.utm_source"));
    cr_expect(array_has(removed, "header.cookie"));
    cr_expect(array_has(removed, "body.email"));
    cr_expect(array_has(removed, "body.items[].price"));
    cr_expect(array_has(removed, "body.marketing_opt_in"));
    cr_expect(!array_has(removed, "body.customer_id"));
    json_t *transformed = json_object_get(j, "transformed");
    cr_expect_eq(json_array_size(transformed), 2);
    cr_expect(array_has(transformed, "body.customer_id"));
    cr_expect(array_has(transformed, "body.recipient.phone"));
    /* Neither a removed value nor the injected secret appears anywhere. */
    cr_expect(strstr(r.out, "ann@example.com") == NULL);
    cr_expect(strstr(r.out, "NOT-A-SECRET") == NULL);
    cr_expect(strstr(r.out, "sid=1") == NULL);
    json_decref(j);
    run_free(&r);
}

Test(filter, explain_escapes_the_body)
{
    /* Kept byte-exact: quotes, backslashes, escapes, raw UTF-8 (2 and 4
     * bytes), an escaped control character. */
    const char *body = "{\"order_id\":\"a\\\"b\\\\c\\n\\u0001\\/\",\"recipient\":{\"name\":"
                       "\"\xc3\x89tienne \xf0\x9f\x93\xa6 \\ud83d\\udce6 \\t\"},\"x\":\"\\u0000\"}";
    const char *want = "{\"order_id\":\"a\\\"b\\\\c\\n\\u0001\\/\",\"recipient\":{\"name\":"
                       "\"\xc3\x89tienne \xf0\x9f\x93\xa6 \\ud83d\\udce6 \\t\"}}";
    struct run r;
    RUN(&r, NULL, body, "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose",
        "order-fulfillment", "--caller", "orders-service");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, want);
    run_free(&r);
    RUN(&r, NULL, body, "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose",
        "order-fulfillment", "--caller", "orders-service", "--explain");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_one_line(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "body")), want);
    cr_expect(strstr(r.out, "\xc3\x89tienne \xf0\x9f\x93\xa6") != NULL, "UTF-8 passed through");
    json_decref(j);
    run_free(&r);
}

Test(filter, explain_refused)
{
    struct run r;
    RUN(&r, NULL, "{}", "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose", "marketing",
        "--caller", "orders-service", "--explain");
    cr_expect_eq(r.status, 3);
    cr_expect_str_eq(
        r.out, "{\"outcome\":\"refused\",\"status\":403,\"error\":\"purpose_not_allowed\"}\n");
    cr_expect_str_eq(r.err, "privgate: refused: purpose_not_allowed\n");
    run_free(&r);
}

Test(filter, refused_without_explain)
{
    struct run r;
    RUN(&r, NULL, "{}", "filter", "-C", CARRIER, "-p", "/v1/shipments", "--purpose", "marketing",
        "--caller", "orders-service");
    cr_expect_eq(r.status, 3);
    cr_expect_str_empty(r.out);
    cr_expect_str_eq(r.err, "privgate: refused: purpose_not_allowed\n");
    run_free(&r);
}

struct refusal {
    char method[8];
    char path[48];
    char purpose[24];
    char caller[24];
    char ctype[24];
    char header[32];
    char body[24];
    int status;
    char error[32];
};

static void run_refusal(const struct refusal *c)
{
    const char *args[24];
    size_t n = 0;
    args[n++] = "filter";
    args[n++] = "-C";
    args[n++] = CARRIER;
    args[n++] = "-m";
    args[n++] = c->method;
    args[n++] = "-p";
    args[n++] = c->path;
    if (c->purpose[0]) {
        args[n++] = "--purpose";
        args[n++] = c->purpose;
    }
    if (c->caller[0]) {
        args[n++] = "--caller";
        args[n++] = c->caller;
    }
    if (c->ctype[0]) {
        args[n++] = "-T";
        args[n++] = c->ctype;
    }
    if (c->header[0]) {
        args[n++] = "-H";
        args[n++] = c->header;
    }
    args[n++] = "--explain";
    args[n] = NULL;
    struct run r;
    run_privgate(&r, NULL, c->body, strlen(c->body), args);
    char want[128];
    snprintf(want, sizeof want, "{\"outcome\":\"refused\",\"status\":%d,\"error\":\"%s\"}\n",
             c->status, c->error);
    cr_expect_eq(r.status, 3, "%s: exit %d, stderr %s", c->error, r.status, r.err);
    cr_expect_str_eq(r.out, want);
    snprintf(want, sizeof want, "privgate: refused: %s\n", c->error);
    cr_expect_str_eq(r.err, want);
    run_free(&r);
}

Test(filter, refusals)
{
    static const struct refusal cases[] = {
        {"POST", "/v1/shipments", "order-fulfillment", "newsletter", "", "", "{}", 403,
         "caller_not_allowed"},
        {"POST", "/v1/shipments", "", "orders-service", "", "", "{}", 400, "purpose_required"},
        {"DELETE", "/v1/shipments", "order-fulfillment", "orders-service", "", "", "", 404,
         "unknown_route"},
        {"POST", "/v1/shipments", "order-fulfillment", "orders-service", "text/plain", "", "hi",
         415, "unsupported_media_type"},
        {"POST", "/v1/shipments", "order-fulfillment", "orders-service", "", "", "{\"a\":", 400,
         "invalid_body"},
        {"POST", "/v1/shipments", "order-fulfillment", "orders-service", "",
         "idempotency-key: 1\r\nx: 2", "{}", 400, "invalid_request"},
        {"POST", "/v1/../shipments", "order-fulfillment", "orders-service", "", "", "{}", 400,
         "invalid_request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_refusal(&cases[i]);
}

Test(filter, unlisted_field_is_refused)
{
    struct run r;
    RUN(&r, NULL, "{\"amount\":1,\"email\":\"a@example.com\"}", "filter", "-C",
        "examples/contracts/payment-processor.yaml", "-p", "/v1/charges", "--purpose", "payments",
        "--caller", "checkout-service", "--explain");
    cr_expect_eq(r.status, 3);
    cr_expect_str_eq(r.out,
                     "{\"outcome\":\"refused\",\"status\":422,\"error\":\"unlisted_field\"}\n");
    cr_expect_str_eq(r.err, "privgate: refused: unlisted_field\n");
    run_free(&r);
}

Test(filter, purpose_and_caller_from_headers)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", CARRIER, "-p", "/v1/shipments", "-H",
        "privgate-purpose: order-fulfillment", "-H", "privgate-caller: orders-service", "--explain",
        SHIPMENT);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_one_line(&r);
    json_t *h = json_object_get(j, "headers");
    cr_expect_null(json_object_get(h, "privgate-purpose"), "control headers are consumed");
    cr_expect_null(json_object_get(h, "privgate-caller"));
    json_decref(j);
    run_free(&r);
}

Test(filter, get_without_body_hashes_the_path_parameter)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", CARRIER, "-m", "GET", "-p",
        "/v1/customers/C-1001/shipments?page=2&email=a", "--purpose", "order-fulfillment",
        "--caller", "orders-service", "--explain");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_one_line(&r);
    cr_expect_str_eq(json_string_value(json_object_get(j, "method")), "GET");
    cr_expect_str_eq(json_string_value(json_object_get(j, "path")),
                     "/v1/customers/" CUSTOMER_HASH "/shipments?page=2");
    cr_expect_str_eq(json_string_value(json_object_get(j, "body")), "");
    cr_expect_null(json_object_get(json_object_get(j, "headers"), "content-type"),
                   "no body, no default content type");
    cr_expect(array_has(json_object_get(j, "removed"), "query.email"));
    cr_expect(array_has(json_object_get(j, "transformed"), "param.customer_id"));
    json_decref(j);
    run_free(&r);
}

Test(filter, ndjson_events)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", "examples/contracts/analytics-vendor.yaml", "-p",
        "/v1/events", "--purpose", "product-analytics", "--caller", "events-pipeline", "-T",
        "application/x-ndjson", "examples/requests/events.ndjson");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "{\"event\":\"page_view\",\"user_id\":"
                            "\"8df91b85711053b77357908a089fb026d2e28b5e3ffc5ab9ff9c294452fc9005\","
                            "\"birth_date\":\"1990\"}\n"
                            "{\"event\":\"checkout\",\"user_id\":"
                            "\"998c3a3fb016313a601a8d65105f6016027f83ac6dfcf0679766950206513f0e\","
                            "\"birth_date\":\"1985\"}\n");
    run_free(&r);
}

Test(filter, removed_more_past_64_paths)
{
    /* 70 distinct unlisted members: 64 listed, 6 counted. */
    char body[4096];
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof body - n, "{\"first_name\":\"Ann\"");
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(body + n, sizeof body - n, ",\"f%d\":%d", i, i);
    snprintf(body + n, sizeof body - n, "}");
    struct run r;
    RUN(&r, NULL, body, "filter", "-C", "examples/contracts/survey-vendor.yaml", "-p",
        "/v2/invitations", "--purpose", "customer-research", "--caller", "crm-service",
        "--explain");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_t *j = parse_one_line(&r);
    cr_expect_eq(json_array_size(json_object_get(j, "removed")), 64);
    cr_expect_eq(json_integer_value(json_object_get(j, "removed_more")), 6);
    cr_expect_null(json_object_get(j, "transformed_more"));
    cr_expect_str_eq(json_string_value(json_object_get(j, "body")), "{\"first_name\":\"Ann\"}");
    json_decref(j);
    run_free(&r);
}

Test(filter, contracts_directory_selects_by_provider)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", "examples/contracts", "-p", "/parcel-carrier/v1/shipments",
        "--purpose", "order-fulfillment", "--caller", "orders-service", SHIPMENT);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, shipment_out);
    run_free(&r);
    RUN(&r, NULL, "{}", "filter", "-C", "examples/contracts", "-p", "/nobody/v1/x", "--purpose",
        "order-fulfillment", "--explain");
    cr_expect_eq(r.status, 3);
    cr_expect_str_eq(r.out,
                     "{\"outcome\":\"refused\",\"status\":404,\"error\":\"unknown_provider\"}\n");
    cr_expect_str_eq(r.err, "privgate: refused: unknown_provider\n");
    run_free(&r);
    /* A directory holding a single contract still selects by provider. */
    RUN(&r, NULL, NULL, "filter", "-C", "tests/cli/data/no-tests", "-m", "GET", "-p",
        "/quiet/v1/ping?x=1", "--purpose", "order-fulfillment", "--explain");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect(strstr(r.out, "\"path\":\"/v1/ping\"") != NULL, "%s", r.out);
    run_free(&r);
}

Test(filter, invalid_contract_exits_1)
{
    struct run r;
    RUN(&r, NULL, "{}", "filter", "-C", "tests/cli/data/invalid/http-upstream.yaml", "-m", "GET",
        "-p", "/v1/ping", "--purpose", "order-fulfillment");
    cr_expect_eq(r.status, 1);
    cr_expect(has_diag_line(r.err, "http-upstream.yaml"), "%s", r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
}

Test(filter, gzip_body_is_decoded)
{
    const char *plain = slurp(SHIPMENT);
    unsigned char gz[4096];
    z_stream zs = {0};
    cr_assert(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = (unsigned char *)plain;
    zs.avail_in = (uInt)strlen(plain);
    zs.next_out = gz;
    zs.avail_out = sizeof gz;
    cr_assert(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t gzlen = sizeof gz - zs.avail_out;
    deflateEnd(&zs);

    static const char *const args[] = {"filter",
                                       "-C",
                                       CARRIER,
                                       "-p",
                                       "/v1/shipments",
                                       "--purpose",
                                       "order-fulfillment",
                                       "--caller",
                                       "orders-service",
                                       "-H",
                                       "content-encoding: gzip",
                                       NULL};
    struct run r;
    run_privgate(&r, NULL, (const char *)gz, gzlen, args);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, shipment_out);
    run_free(&r);
}

Test(filter, opaque_body_is_forwarded_byte_for_byte)
{
    static const char pdf[] = "%PDF-1.4\n\xff\xfe\x00\x01 label\r\n";
    static const char *const args[] = {"filter",
                                       "-C",
                                       CARRIER,
                                       "-m",
                                       "PUT",
                                       "-p",
                                       "/v1/labels/7/label.pdf",
                                       "--purpose",
                                       "order-fulfillment",
                                       "--caller",
                                       "orders-service",
                                       "-T",
                                       "application/pdf",
                                       NULL};
    struct run r;
    run_privgate(&r, NULL, pdf, sizeof pdf - 1, args);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_eq(r.outlen, sizeof pdf - 1);
    cr_expect(r.outlen == sizeof pdf - 1 && memcmp(r.out, pdf, r.outlen) == 0);
    run_free(&r);

    static const char *const explain[] = {"filter",
                                          "-C",
                                          CARRIER,
                                          "-m",
                                          "PUT",
                                          "-p",
                                          "/v1/labels/7/label.pdf",
                                          "--purpose",
                                          "order-fulfillment",
                                          "--caller",
                                          "orders-service",
                                          "-T",
                                          "application/pdf",
                                          "--explain",
                                          NULL};
    run_privgate(&r, NULL, pdf, sizeof pdf - 1, explain);
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    json_error_t e;
    json_t *j = json_loads(r.out, JSON_ALLOW_NUL, &e);
    cr_assert(j != NULL, "invalid JSON (%s): %s", e.text, r.out);
    /* Bytes that are not UTF-8 become U+FFFD; NUL and controls are escaped. */
    cr_expect(strstr(r.out, "\"body\":\"%PDF-1.4\\n\\ufffd\\ufffd\\u0000\\u0001 label\\r\\n\"") !=
                  NULL,
              "%s", r.out);
    json_decref(j);
    run_free(&r);
}
