/* contracts/decide.c: every refusal of a request's head, and what is
 * forwarded (headers, query, path parameters). */
#include <unistd.h>

#include "helpers.h"

static struct ctr_set *set;
static const struct ctr_contract *carrier;
static struct ctr_decision d; /* large: not on the stack */

static void setup(void)
{
    struct diaglog l;
    const char *paths[] = {DATA("carrier.yaml"), DATA("gw/contracts")};
    set = ctr_set_load_contracts(paths, 2, diaglog_init(&l));
    cr_assert_not_null(set, "%s", l.text);
    carrier = set->contracts[0];
    cr_assert_str_eq(carrier->provider, "parcel-carrier");
}

static void teardown(void)
{
    ctr_set_unref(set);
}

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof lit - 1                                                                        \
    }
#define H(n, v)                                                                                    \
    {                                                                                              \
        S(n), S(v)                                                                                 \
    }
#define NONE                                                                                       \
    {                                                                                              \
        NULL, 0                                                                                    \
    }

static int decide(const struct ctr_contract *c, const char *method, const char *path,
                  const struct ctr_header *h, size_t nh, const char *caller, const char *purpose)
{
    struct ctr_request req = {
        .method = {method, strlen(method)},
        .path = {path, strlen(path)},
        .headers = h,
        .nheaders = nh,
        .caller = {caller, caller ? strlen(caller) : 0},
        .purpose = {purpose, purpose ? strlen(purpose) : 0},
    };
    return ctr_decide(&set->config, c, &req, &d);
}

static int simple(const char *method, const char *path)
{
    return decide(carrier, method, path, NULL, 0, "orders-service", "order-fulfillment");
}

static bool reported(const struct flt_pathlist *l, const char *path)
{
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str s = flt_pathlist_get(l, i);
        if (s.len == strlen(path) && memcmp(s.p, path, s.len) == 0) return true;
    }
    return false;
}

static const struct ctr_header *fwd(const char *name)
{
    for (size_t i = 0; i < d.nfwd; i++)
        if (d.fwd[i].name.len == strlen(name) &&
            memcmp(d.fwd[i].name.p, name, d.fwd[i].name.len) == 0)
            return &d.fwd[i];
    return NULL;
}

#define REFUSED(st, code)                                                                          \
    do {                                                                                           \
        cr_expect_eq(d.status, st, "status %d (%s: %s)", d.status, d.error, d.message);            \
        cr_expect_str_eq(d.error ? d.error : "(null)", code);                                      \
    } while (0)

TestSuite(decide, .init = setup, .fini = teardown);

Test(decide, forwarded_simple)
{
    cr_assert_eq(simple("POST", "/v1/shipments"), 0, "%s", d.message);
    cr_expect_eq(d.status, 0);
    cr_expect_null(d.error);
    cr_expect_eq(d.route, &carrier->routes[0]);
    cr_expect_eq(d.contract, carrier);
    cr_expect_str_eq(d.path, "/api/v1/shipments");
    cr_expect_eq(d.path_len, strlen("/api/v1/shipments"));
    cr_expect_eq(d.body_kind, CTR_BODY_FIELDS);
    cr_expect_eq(d.body.media, FLT_MEDIA_NONE); /* no content-type: the caller refuses a body */
    cr_expect_eq(d.body.rules, carrier->routes[0].rules);
    cr_expect_eq(d.body.key, &carrier->upstream.hmac);
    cr_expect_eq(d.body.max_body, 8388608);
    cr_expect(d.injected);
    cr_expect_eq(d.nfwd, 1);
    cr_expect_eq(d.report.removed.n, 0);
}

Test(decide, invalid_path_400)
{
    simple("POST", "/v1/../shipments");
    REFUSED(400, "invalid_request");
    simple("POST", "/v1/./shipments");
    REFUSED(400, "invalid_request");
    simple("PUT", "/v1/labels/a%2Fb");
    REFUSED(400, "invalid_request");
}

Test(decide, unknown_route_404)
{
    simple("POST", "/v2/shipments");
    REFUSED(404, "unknown_route");
    /* the path exists, the method does not */
    simple("GET", "/v1/shipments");
    REFUSED(404, "unknown_route");
    simple("post", "/v1/shipments");
    REFUSED(404, "unknown_route");
    simple("POST", "/v1/shipments/x");
    REFUSED(404, "unknown_route");
    simple("POST", "");
    REFUSED(404, "unknown_route");
    simple("POST", "?x=1");
    REFUSED(404, "unknown_route");
}

Test(decide, route_templates)
{
    cr_expect_eq(simple("PUT", "/v1/labels/a/b/c.pdf"), 0, "%s", d.message);
    cr_expect_eq(d.body_kind, CTR_BODY_OPAQUE);
    cr_expect_str_eq(d.path, "/api/v1/labels/a/b/c.pdf");
    cr_expect_eq(simple("GET", "/v1/orders/o-1?fields=a&secret=b"), 0);
    cr_expect_str_eq(d.path, "/api/v1/orders/o-1?fields=a");
    cr_expect_eq(d.body_kind, CTR_BODY_NONE);
    cr_expect(reported(&d.report.removed, "query.secret"));
}

Test(decide, caller_403)
{
    decide(carrier, "POST", "/v1/shipments", NULL, 0, NULL, "order-fulfillment");
    REFUSED(403, "caller_not_allowed");
    decide(carrier, "POST", "/v1/shipments", NULL, 0, "billing", "order-fulfillment");
    REFUSED(403, "caller_not_allowed");
    cr_expect(strstr(d.message, "billing") == NULL);
    /* the caller header is used when the server gives none */
    struct ctr_header h[] = {H("privgate-caller", "returns-service")};
    cr_expect_eq(decide(carrier, "POST", "/v1/shipments", h, 1, NULL, "returns"), 0);
    /* a contract without callers accepts any caller, or none */
    const struct ctr_contract *pay = set->contracts[1];
    cr_assert_str_eq(pay->provider, "pay");
    cr_expect_eq(decide(pay, "POST", "/charges", NULL, 0, NULL, "payment"), 0, "%s", d.message);
}

Test(decide, purpose_400_403)
{
    decide(carrier, "POST", "/v1/shipments", NULL, 0, "orders-service", NULL);
    REFUSED(400, "purpose_required");
    decide(carrier, "POST", "/v1/shipments", NULL, 0, "orders-service", "");
    REFUSED(400, "purpose_required");
    decide(carrier, "POST", "/v1/shipments", NULL, 0, "orders-service", "marketing");
    REFUSED(403, "purpose_not_allowed");
    cr_expect(strstr(d.message, "marketing") == NULL);
    struct ctr_header h[] = {H("privgate-purpose", "returns")};
    cr_expect_eq(decide(carrier, "POST", "/v1/shipments", h, 1, "orders-service", NULL), 0);
    /* a purpose the policy forbids is refused even when listed */
    struct ctr_config cfg = set->config;
    char *forbidden[] = {"returns"};
    cfg.forbidden_purposes = forbidden;
    cfg.nforbidden = 1;
    struct ctr_request req = {.method = S("POST"),
                              .path = S("/v1/shipments"),
                              .caller = S("orders-service"),
                              .purpose = S("returns")};
    ctr_decide(&cfg, carrier, &req, &d);
    REFUSED(403, "purpose_not_allowed");
}

Test(decide, order_route_before_caller_before_purpose)
{
    decide(carrier, "GET", "/nope", NULL, 0, NULL, NULL);
    REFUSED(404, "unknown_route");
    decide(carrier, "POST", "/v1/shipments", NULL, 0, NULL, NULL);
    REFUSED(403, "caller_not_allowed");
}

Test(decide, headers)
{
    struct ctr_header h[] = {
        H("content-type", "application/json"),
        H("accept", "application/json"),
        H("user-agent", "orders/1.0"),
        H("traceparent", "00-abc-def-01"),
        H("idempotency-key", "k-1"), /* contract headers: */
        H("x-request-tag", "t"),     /* route headers: */
        H("cookie", "sid=1"),
        H("cookie", "sid=2"),
        H("x-forwarded-for", "10.0.0.1"),
        H("authorization", "Basic caller-secret"),
        H("privgate-purpose", "order-fulfillment"),
        H("privgate-debug", "1"),
        H("content-length", "12"),
        H("host", "gw.internal"),
        H("connection", "keep-alive"),
        H("transfer-encoding", "chunked"),
        H(":authority", "gw.internal"),
    };
    cr_assert_eq(
        decide(carrier, "POST", "/v1/shipments", h, sizeof h / sizeof h[0], "orders-service", NULL),
        0, "%s", d.message);
    cr_expect_not_null(fwd("content-type"));
    cr_expect_not_null(fwd("accept"));
    cr_expect_not_null(fwd("user-agent"));
    cr_expect_not_null(fwd("traceparent"));
    cr_expect_not_null(fwd("idempotency-key"));
    cr_expect_not_null(fwd("x-request-tag"));
    cr_expect_null(fwd("cookie"));
    cr_expect_null(fwd("x-forwarded-for"));
    cr_expect_null(fwd("privgate-purpose"));
    cr_expect_null(fwd("privgate-debug"));
    cr_expect_null(fwd("content-length"));
    cr_expect_null(fwd("host"));
    cr_expect_null(fwd("connection"));
    cr_expect_null(fwd("transfer-encoding"));
    cr_expect_null(fwd(":authority"));
    /* the injected credential replaces the caller's */
    const struct ctr_header *a = fwd("authorization");
    cr_assert_not_null(a);
    cr_expect(a->value.len == strlen("Bearer t0ken-s3cret") &&
              memcmp(a->value.p, "Bearer t0ken-s3cret", a->value.len) == 0);
    cr_expect(d.injected);
    cr_expect_eq(d.nfwd, 7);
    cr_expect(reported(&d.report.removed, "header.cookie"));
    cr_expect(reported(&d.report.removed, "header.x-forwarded-for"));
    cr_expect(reported(&d.report.removed, "header.authorization"));
    cr_expect_eq(d.report.removed.n, 3, "cookie once, privgate-* and hop-by-hop never");
}

Test(decide, header_names_any_case)
{
    struct ctr_header h[] = {H("Accept", "a"), H("Cookie", "c")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", h, 2, "orders-service", "returns"), 0);
    cr_expect_not_null(fwd("Accept"));
    cr_expect(reported(&d.report.removed, "header.cookie"));
}

Test(decide, header_value_crlf_400)
{
    struct ctr_header h1[] = {H("x-other", "a\r\nb")};
    decide(carrier, "POST", "/v1/shipments", h1, 1, "orders-service", "returns");
    REFUSED(400, "invalid_request");
    struct ctr_header h2[] = {{S("accept"), {"a\0b", 3}}};
    decide(carrier, "POST", "/v1/shipments", h2, 1, "orders-service", "returns");
    REFUSED(400, "invalid_request");
}

Test(decide, query)
{
    cr_assert_eq(simple("POST", "/v1/shipments?utm_source=x&dry_run=1&b=2"), 0);
    cr_expect_str_eq(d.path, "/api/v1/shipments?dry_run=1");
    cr_expect(reported(&d.report.removed, "query.utm_source"));
    cr_expect(reported(&d.report.removed, "query.b"));
    /* nothing left: no '?' */
    cr_assert_eq(simple("POST", "/v1/shipments?utm_source=x"), 0);
    cr_expect_str_eq(d.path, "/api/v1/shipments");
    /* kept byte-exact; names compared after decoding */
    cr_assert_eq(simple("GET", "/v1/orders/7?a%20b=%41+1&fields=x%2Cy"), 0);
    cr_expect_str_eq(d.path, "/api/v1/orders/7?a%20b=%41+1&fields=x%2Cy");
    cr_assert_eq(simple("POST", "/v1/shipments?"), 0);
    cr_expect_str_eq(d.path, "/api/v1/shipments");
}

Test(decide, unlisted_query_reject_422)
{
    const struct ctr_contract *survey = set->contracts[2];
    cr_assert_str_eq(survey->provider, "survey");
    struct ctr_header ct[] = {H("content-type", "application/json")};
    cr_expect_eq(decide(survey, "POST", "/responses?lang=en", ct, 1, NULL, "feedback"), 0);
    cr_expect_str_eq(d.path, "/hooks/responses?lang=en");
    cr_expect(d.body.reject_unlisted);
    decide(survey, "POST", "/responses?lang=en&email=x", ct, 1, NULL, "feedback");
    REFUSED(422, "unlisted_field");
}

Test(decide, path_params_hashed)
{
    cr_assert_eq(simple("GET", "/v1/customers/c-42/shipments"), 0, "%s", d.message);
    struct flt_hmac_key k;
    const char *key = "k3y-for-tests"; /* the file's CRLF trimmed */
    flt_hmac_key_init(&k, (const uint8_t *)key, strlen(key));
    char hex[64];
    flt_hmac_hex(&k, "c-42", 4, hex);
    char want[128];
    snprintf(want, sizeof want, "/api/v1/customers/%.64s/shipments", hex);
    cr_expect_str_eq(d.path, want);
    cr_expect(reported(&d.report.transformed, "param.customer_id"));
    cr_expect_eq(d.report.removed.n, 0);
}

Test(decide, media_type_and_encoding_415)
{
    struct ctr_header h1[] = {H("content-type", "text/plain")};
    decide(carrier, "POST", "/v1/shipments", h1, 1, "orders-service", "returns");
    REFUSED(415, "unsupported_media_type");
    struct ctr_header h2[] = {H("content-type", "application/json; charset=latin1")};
    decide(carrier, "POST", "/v1/shipments", h2, 1, "orders-service", "returns");
    REFUSED(415, "unsupported_media_type");
    struct ctr_header h3[] = {H("content-type", "application/json"), H("content-encoding", "br")};
    decide(carrier, "POST", "/v1/shipments", h3, 2, "orders-service", "returns");
    REFUSED(415, "unsupported_encoding");
    struct ctr_header h4[] = {H("content-type", "Application/JSON ; charset=UTF-8"),
                              H("content-encoding", "gzip")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", h4, 2, "orders-service", "returns"), 0);
    cr_expect_eq(d.body.media, FLT_MEDIA_JSON);
    cr_expect_eq(d.body.encoding, FLT_ENC_GZIP);
    cr_expect_null(fwd("content-encoding")); /* forwarded decoded */
    struct ctr_header h5[] = {H("content-type", "application/x-ndjson")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", h5, 1, "orders-service", "returns"), 0);
    cr_expect_eq(d.body.media, FLT_MEDIA_NDJSON);
    struct ctr_header h6[] = {H("content-type", "application/x-www-form-urlencoded")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", h6, 1, "orders-service", "returns"), 0);
    cr_expect_eq(d.body.media, FLT_MEDIA_FORM);
    struct ctr_header h7[] = {H("content-type", "application/json"),
                              H("content-type", "text/plain")};
    decide(carrier, "POST", "/v1/shipments", h7, 2, "orders-service", "returns");
    REFUSED(415, "unsupported_media_type");
}

Test(decide, opaque_keeps_encoding)
{
    struct ctr_header h[] = {H("content-type", "application/pdf"), H("content-encoding", "gzip")};
    cr_assert_eq(decide(carrier, "PUT", "/v1/labels/x", h, 2, "orders-service", "returns"), 0);
    cr_expect_eq(d.body_kind, CTR_BODY_OPAQUE);
    cr_expect_not_null(fwd("content-encoding"));
    cr_expect_not_null(fwd("content-type"));
}

Test(decide, status_for)
{
    cr_expect_eq(ctr_status_for(FLT_E_SYNTAX), 400);
    cr_expect_eq(ctr_status_for(FLT_E_DEPTH), 400);
    cr_expect_eq(ctr_status_for(FLT_E_PATH), 400);
    cr_expect_eq(ctr_status_for(FLT_E_HEADER_VALUE), 400);
    cr_expect_eq(ctr_status_for(FLT_E_TOO_LARGE), 413);
    cr_expect_eq(ctr_status_for(FLT_E_MEDIA_TYPE), 415);
    cr_expect_eq(ctr_status_for(FLT_E_BODY_NOT_ALLOWED), 415);
    cr_expect_eq(ctr_status_for(FLT_E_ENCODING), 415);
    cr_expect_eq(ctr_status_for(FLT_E_UNLISTED), 422);
    cr_expect_eq(ctr_status_for(FLT_E_NOMEM), 500);
    cr_expect_eq(ctr_status_for(FLT_E_SINK), 500);
    cr_expect_eq(ctr_status_for(0), 0);
}

/* Review finding 1: ';' splits parameters for some provider parsers. */
Test(decide, raw_semicolon_in_query_400)
{
    simple("POST", "/v1/shipments?dry_run=1;utm_source=x");
    REFUSED(400, "invalid_request");
    cr_expect_eq(d.report.removed.n, 0);
    cr_assert_eq(simple("POST", "/v1/shipments?dry_run=1%3Butm_source=x"), 0, "%s", d.message);
    cr_expect_str_eq(d.path, "/api/v1/shipments?dry_run=1%3Butm_source=x");
}

/* Review finding 3: raw control bytes, DEL, space and non-ASCII bytes in
 * the query are refused, not forwarded. */
Test(decide, raw_bytes_in_query_400)
{
    const char *bad[] = {"/v1/shipments?dry_run=1\x01",    "/v1/shipments?dry_run=\x7f",
                         "/v1/shipments?dry_run=a b",      "/v1/shipments?dry_run=\xc3\xa9",
                         "/v1/shipments?x=\r\n&dry_run=1", "/v1/shipments?%FF=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        simple("POST", bad[i]);
        REFUSED(400, "invalid_request");
    }
}

/* Review finding 3: "..;" reaches another route on Tomcat/Spring; '\',
 * double encoding and overlong UTF-8 likewise. */
Test(decide, path_tricks_on_opaque_route_400)
{
    const char *bad[] = {"/v1/labels/..;/shipments",        "/v1/labels/..%3B/shipments",
                         "/v1/labels/..\\shipments",        "/v1/labels/..%5Cshipments",
                         "/v1/labels/%252e%252e/shipments", "/v1/labels/%c0%ae%c0%ae/shipments"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        simple("PUT", bad[i]);
        REFUSED(400, "invalid_request");
    }
    cr_assert_eq(simple("PUT", "/v1/labels/a;b/x"), 0, "%s", d.message);
}

/* Review finding 7: a hashed parameter is 64 hex characters, longer than
 * the value it replaces: a rewritten path past CTR_PATH_MAX is the
 * caller's too-long request (400), not an internal error (500). */
Test(decide, hashed_path_too_long_400)
{
    char dir[] = TMP_TEMPLATE("ctr-hashlong");
    cr_assert_not_null(mkdtemp(dir));
    char p[96];
    snprintf(p, sizeof p, "%s/c.yaml", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "contract: 1\nprovider: long\npurposes: [p]\n"
            "upstream: { url: \"https://x.example\", hmac_key_file: \"%s\" }\n"
            "routes:\n  - { method: GET, path: \"/{id}/*\", params: { id: hash } }\n",
            DATA("secrets/carrier-hmac"));
    fclose(f);
    struct diaglog l;
    struct ctr_set *s = load_one(p, &l);
    cr_assert_not_null(s, "%s", l.text);
    static char path[CTR_PATH_MAX];
    size_t n = CTR_PATH_MAX - 40;
    memset(path, 'a', n);
    path[0] = '/';
    path[1] = 'x';
    path[2] = '/';
    path[n] = 0;
    struct ctr_request req = {.method = S("GET"), .caller = S("c"), .purpose = S("p")};
    req.path.p = path;
    req.path.len = n;
    ctr_decide(&s->config, s->contracts[0], &req, &d);
    REFUSED(400, "invalid_request");
    cr_expect_str_eq(d.message, "request path too long");
    /* a short one is fine */
    req.path.p = "/x/y";
    req.path.len = 4;
    cr_expect_eq(ctr_decide(&s->config, s->contracts[0], &req, &d), 0, "%s", d.message);
    ctr_set_unref(s);
    remove(p);
    rmdir(dir);
}

/* Review finding 7: headers named in the caller's Connection header are
 * hop-by-hop (RFC 9110 7.6.1): never forwarded, even when allowed. */
Test(decide, connection_named_headers_not_forwarded)
{
    struct ctr_header h[] = {H("Connection", "keep-alive, Idempotency-Key"),
                             H("connection", " x-request-tag ,close"),
                             H("idempotency-key", "k1"),
                             H("X-Request-Tag", "t"),
                             H("accept", "application/json"),
                             H("content-type", "application/json")};
    cr_assert_eq(
        decide(carrier, "POST", "/v1/shipments", h, 6, "orders-service", "order-fulfillment"), 0,
        "%s", d.message);
    cr_expect_null(fwd("idempotency-key"));
    cr_expect_null(fwd("X-Request-Tag"));
    cr_expect_null(fwd("x-request-tag"));
    cr_expect_not_null(fwd("accept"));
    cr_expect_not_null(fwd("content-type"));
    cr_expect(reported(&d.report.removed, "header.idempotency-key"));
    cr_expect(reported(&d.report.removed, "header.x-request-tag"));
    /* without Connection they are forwarded */
    cr_assert_eq(
        decide(carrier, "POST", "/v1/shipments", h + 2, 4, "orders-service", "order-fulfillment"),
        0, "%s", d.message);
    cr_expect_not_null(fwd("idempotency-key"));
    cr_expect_not_null(fwd("X-Request-Tag"));
}

/* Review finding 7: forbidden purposes compare case-insensitively. */
Test(decide, forbidden_purpose_any_case)
{
    struct ctr_config cfg = set->config;
    char *forbidden[] = {"RETURNS"};
    cfg.forbidden_purposes = forbidden;
    cfg.nforbidden = 1;
    struct ctr_request req = {.method = S("POST"),
                              .path = S("/v1/shipments"),
                              .caller = S("orders-service"),
                              .purpose = S("returns")};
    ctr_decide(&cfg, carrier, &req, &d);
    REFUSED(403, "purpose_not_allowed");
}

/* ctr_decide accepts paths of "plain" bytes without flt_path_check: for
 * every byte, in a segment and as a whole segment (alone and doubled:
 * dot segments), the verdict and the forwarded path must be the check's. */
static void path_agrees(const char *path, size_t len)
{
    char p[64];
    cr_assert_lt(len, sizeof p);
    memcpy(p, path, len);
    p[len] = 0;
    struct ctr_request req = {
        .method = S("PUT"),
        .path = {p, len},
        .caller = S("orders-service"),
        .purpose = S("order-fulfillment"),
    };
    int rc = ctr_decide(&set->config, carrier, &req, &d);
    bool ok = flt_path_check(p, len) == 0;
    if (ok) {
        cr_expect_eq(rc, 0, "byte 0x%02x: %s", (unsigned char)p[len - 1], d.message);
        cr_expect_eq(d.path_len, 4 + len);
        cr_expect(memcmp(d.path, "/api", 4) == 0 && memcmp(d.path + 4, p, len) == 0);
    } else {
        cr_expect_eq(rc, 400, "byte 0x%02x: %d", (unsigned char)p[len - 1], rc);
        cr_expect_str_eq(d.message, "invalid request path");
    }
}

Test(decide, plain_path_bytes_agree_with_path_check)
{
    for (int c = 1; c < 256; c++) {
        if (c == '?' || c == '#' || c == '/') continue; /* the query's, refused, a separator */
        char seg[3] = {(char)c, (char)c, 0};
        char p[40];
        int n = snprintf(p, sizeof p, "/v1/labels/x%cy", c);
        path_agrees(p, (size_t)n);
        n = snprintf(p, sizeof p, "/v1/labels/%c", c);
        path_agrees(p, (size_t)n);
        n = snprintf(p, sizeof p, "/v1/labels/%s/z", seg);
        path_agrees(p, (size_t)n);
    }
    /* paths shorter than 8 bytes (checked a byte at a time): no route
     * matches them, so a path that passes is 404, one that does not 400 */
    for (int c = 1; c < 256; c++) {
        if (c == '?' || c == '#') continue;
        char p[8];
        int n = snprintf(p, sizeof p, "/a%c", c);
        int rc = simple("PUT", p);
        cr_expect_eq(rc, flt_path_check(p, (size_t)n) == 0 ? 404 : 400, "byte 0x%02x: %d", c, rc);
        n = snprintf(p, sizeof p, "/%c%c", c, c);
        rc = simple("PUT", p);
        cr_expect_eq(rc, flt_path_check(p, (size_t)n) == 0 ? 404 : 400, "byte 0x%02x: %d", c, rc);
    }
    /* and the usual shapes */
    const char *const paths[] = {"/v1/labels/a/b/c.pdf", "/v1/labels/a%2Fb", "/v1/labels/%2e%2e",
                                 "/v1/labels/..;x",      "/v1/labels/a;b/x", "/v1/labels/~user_1-2",
                                 "/v1/labels//x",        "/v1/labels/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        path_agrees(paths[i], strlen(paths[i]));
}

/* Routes without a hashed parameter forward the path as sent (copied, not
 * rewritten): the same bytes flt_template_rewrite writes. */
Test(decide, unhashed_template_path_as_rewrite_writes)
{
    const char *const paths[] = {"/v1/orders/o-1",       "/v1/orders/a%20b", "/v1/orders/%C3%A9",
                                 "/v1/labels/a/b/c.pdf", "/v1/shipments",    "/v1/labels/"};
    const char *const methods[] = {"GET", "GET", "GET", "PUT", "POST", "PUT"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *p = paths[i];
        int rc = decide(carrier, methods[i], p, NULL, 0, "orders-service", "order-fulfillment");
        cr_assert_eq(rc, 0, "%s: %s", p, d.message);
        char want[128] = "/api";
        long n = flt_template_rewrite(&d.route->tmpl, p, strlen(p), NULL, want + 4, sizeof want - 5,
                                      NULL);
        cr_assert_geq(n, 0, "%s", p);
        want[4 + n] = 0;
        cr_expect_str_eq(d.path, want);
        cr_expect_eq(d.path_len, strlen(want));
        cr_expect_eq(d.report.transformed.n, 0);
    }
}

/* "application/json" is recognised without flt_media_parse: the same
 * answer as the parser's, and its neighbours still go through it. */
Test(decide, content_type_json_fast_path_agrees)
{
    const char *const types[] = {"application/json",
                                 "Application/JSON",
                                 "application/json; charset=utf-8",
                                 "application/json;charset=latin1",
                                 "application/jsonx",
                                 "application/jso",
                                 "application/json\t",
                                 "application/x-ndjson",
                                 "text/json"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct ctr_header h[1] = {{S("content-type"), {types[i], strlen(types[i])}}};
        int rc =
            decide(carrier, "POST", "/v1/shipments", h, 1, "orders-service", "order-fulfillment");
        enum flt_media m = FLT_MEDIA_NONE;
        int e = flt_media_parse(types[i], strlen(types[i]), &m);
        if (e < 0 || m == FLT_MEDIA_OTHER || m == FLT_MEDIA_NONE) {
            cr_expect_eq(rc, 415, "%s", types[i]);
        } else {
            cr_expect_eq(rc, 0, "%s: %s", types[i], d.message);
            cr_expect_eq(d.body.media, m, "%s", types[i]);
        }
    }
}

/* The caller and purpose headers ctr_decide found are handed on (the
 * audit log uses them); before the route matched none were looked at. */
Test(decide, scanned_caller_and_purpose_headers)
{
    struct ctr_header h[] = {H("accept", "*/*"), H("privgate-purpose", "returns"),
                             H("privgate-caller", "returns-service"),
                             H("privgate-purpose", "order-fulfillment")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", h, 4, NULL, NULL), 0, "%s", d.message);
    cr_expect(d.scanned);
    cr_expect_eq(d.purpose_hdr, &h[1]); /* the first of the name */
    cr_expect_eq(d.caller_hdr, &h[2]);
    struct ctr_header none[] = {H("accept", "*/*")};
    cr_assert_eq(decide(carrier, "POST", "/v1/shipments", none, 1, "orders-service", "returns"), 0);
    cr_expect(d.scanned);
    cr_expect_null(d.caller_hdr);
    cr_expect_null(d.purpose_hdr);
    decide(carrier, "POST", "/v1/nowhere", h, 4, NULL, NULL);
    REFUSED(404, "unknown_route");
    cr_expect(!d.scanned);
    cr_expect_null(d.caller_hdr);
    cr_expect_null(d.purpose_hdr);
}

/* A route of literal segments is matched by comparing the path with the
 * route's path as written: the same answer as the template walk. */
Test(decide, literal_route_match_agrees_with_template)
{
    const struct ctr_route *ship = NULL;
    for (size_t i = 0; i < carrier->nroutes; i++)
        if (strcmp(carrier->routes[i].path, "/v1/shipments") == 0) ship = &carrier->routes[i];
    cr_assert_not_null(ship);
    const char *const paths[] = {"/v1/shipments",
                                 "/v1/shipments/",
                                 "/v1//shipments",
                                 "/v1/shipment",
                                 "/v1/shipmentsx",
                                 "/V1/shipments",
                                 "/v1/shipments?",
                                 "/v1",
                                 "/"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        const char *p = paths[i];
        const char *qm = strchr(p, '?');
        size_t plen = qm ? (size_t)(qm - p) : strlen(p);
        bool match = flt_template_match(&ship->tmpl, p, plen);
        int rc = simple("POST", p);
        if (match) {
            cr_expect_eq(rc, 0, "%s: %s", p, d.message);
            cr_expect_eq(d.route, ship, "%s", p);
        } else {
            cr_expect_eq(rc, 404, "%s: %d", p, rc);
        }
    }
}
