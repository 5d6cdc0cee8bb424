/*
 * End-to-end: the request path of SPEC 5 through the real gateway — what
 * reaches the provider, the refusals answered before anything goes
 * upstream, and the audit log of SPEC 7.
 */
#include "common.h"

static struct e2e E;

static void setup(void)
{
    start_shop(&E, "limits:\n  max_body: 1MiB\n  max_header_bytes: 4KiB\n");
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(gateway, .init = setup, .fini = teardown);

static const char ORDER[] =
    "{\"order_id\": 7, \"customer_id\": \"C-1001\", \"email\": \"ann@example.com\","
    " \"items\": [{\"sku\": \"B-1\", \"price\": 12.5}, {\"sku\": \"B-2\"}]}";

Test(gateway, forwards_the_filtered_request)
{
    const char *h[] = {
        H_PURPOSE,       H_CALLER, H_JSON, "cookie: sid=secret-cookie", "idempotency-key: k-1",
        "x-trace-me: 1", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders?dry_run=1&utm_source=mail", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    cr_expect(e2e_header(&r, "privgate-request-id") != NULL);
    cr_expect_str_eq(e2e_header(&r, "x-demo-partner"), "1");
    e2e_resp_free(&r);

    json_t *j = recorded(&E, 0);
    cr_assert(j, "the upstream recorded nothing");
    cr_expect_str_eq(jstr(j, "method"), "POST");
    cr_expect_str_eq(jstr(j, "path"), "/v1/orders?dry_run=1");
    char auth[64];
    snprintf(auth, sizeof(auth), "127.0.0.1:%d", E.up_port);
    cr_expect_str_eq(jstr(j, "authority"), auth);
    json_t *hd = json_object_get(j, "headers");
    cr_expect_str_eq(jstr(hd, "authorization"), "Bearer test-token-NOT-A-SECRET");
    cr_expect_str_eq(jstr(hd, "idempotency-key"), "k-1");
    cr_expect_str_eq(jstr(hd, "content-type"), "application/json");
    cr_expect_null(json_object_get(hd, "cookie"));
    cr_expect_null(json_object_get(hd, "x-trace-me"));
    cr_expect_null(json_object_get(hd, "privgate-purpose"));
    cr_expect_null(json_object_get(hd, "privgate-caller"));

    /* byte for byte what `privgate filter` predicts */
    e2e_write(e2e_path(&E, "order.json"), "%s", ORDER);
    char *argv[] = {E.privgate,
                    "filter",
                    "-C",
                    (char *)e2e_path(&E, "contracts/shop.yaml"),
                    "-p",
                    "/v1/orders?dry_run=1&utm_source=mail",
                    "--purpose",
                    "orders",
                    "--caller",
                    "orders-service",
                    "-H",
                    "cookie: sid=secret-cookie",
                    (char *)e2e_path(&E, "order.json"),
                    NULL};
    char *want = NULL;
    size_t wlen = 0;
    cr_assert_eq(e2e_run(argv, NULL, &want, &wlen), 0);
    const char *got = jstr(j, "body");
    cr_assert(got);
    cr_expect_str_eq(got, want);
    cr_expect(strstr(got, "ann@example.com") == NULL);
    cr_expect(strstr(got, "C-1001") == NULL);
    free(want);
    json_decref(j);
}

Test(gateway, forwards_a_request_without_body)
{
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "GET", "/shop/v1/ping?x=1", h, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "path"), "/v1/ping");
    cr_expect_eq(json_integer_value(json_object_get(j, "body_len")), 0);
    json_decref(j);
}

Test(gateway, forwards_an_opaque_body_unchanged)
{
    const char *h[] = {H_PURPOSE, H_CALLER, "content-type: application/pdf", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "PUT", "/shop/v1/blob/7/label.pdf", h, "%PDF-1.4 \x01 label", NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "path"), "/v1/blob/7/label.pdf");
    cr_expect_str_eq(jstr(j, "body"), "%PDF-1.4 \x01 label");
    json_decref(j);
}

/* ------------------------------------------------------------- refusals */

static void refused(const char *method, const char *path, const char *const *h, const char *body,
                    int status, const char *code)
{
    struct e2e_resp r;
    e2e_curl(&E, method, path, h, body, NULL, &r);
    expect_error(&r, status, code);
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0, "%s reached the upstream", code);
}

Test(gateway, unknown_provider)
{
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    refused("GET", "/nobody/v1/ping", h, NULL, 404, "unknown_provider");
}

Test(gateway, unknown_route)
{
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    refused("DELETE", "/shop/v1/orders", h, NULL, 404, "unknown_route");
}

Test(gateway, purpose_required)
{
    const char *h[] = {H_CALLER, H_JSON, NULL};
    refused("POST", "/shop/v1/orders", h, "{}", 400, "purpose_required");
}

Test(gateway, purpose_not_allowed)
{
    const char *h[] = {"privgate-purpose: marketing", H_CALLER, H_JSON, NULL};
    refused("POST", "/shop/v1/orders", h, "{}", 403, "purpose_not_allowed");
}

Test(gateway, caller_not_allowed)
{
    const char *h[] = {H_PURPOSE, "privgate-caller: newsletter", H_JSON, NULL};
    refused("POST", "/shop/v1/orders", h, "{}", 403, "caller_not_allowed");
}

Test(gateway, unsupported_media_type)
{
    const char *h[] = {H_PURPOSE, H_CALLER, "content-type: text/plain", NULL};
    refused("POST", "/shop/v1/orders", h, "Ann, 1 High Street", 415, "unsupported_media_type");
}

Test(gateway, unsupported_encoding)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "content-encoding: br", NULL};
    refused("POST", "/shop/v1/orders", h, "{}", 415, "unsupported_encoding");
}

Test(gateway, body_on_a_route_without_body)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    refused("GET", "/shop/v1/ping", h, "{\"a\":1}", 415, "unsupported_media_type");
}

Test(gateway, invalid_body)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    refused("POST", "/shop/v1/orders", h, "{\"order_id\": 7, \"items\": [", 400, "invalid_body");
}

Test(gateway, invalid_request_path)
{
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    refused("GET", "/shop/v1/%2e%2e/ping", h, NULL, 400, "invalid_request");
}

Test(gateway, body_too_large)
{
    /* 1 MiB + 1 byte of a valid JSON string */
    size_t n = 1024 * 1024 + 1;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[0] = '"';
    big[n - 1] = '"';
    big[n] = '\0';
    const char *f = e2e_path(&E, "big.json");
    e2e_write(f, "%s", big);
    free(big);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h, NULL, f, &r);
    expect_error(&r, 413, "body_too_large");
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0);
}

Test(gateway, max_body_exactly_is_accepted)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[0] = '"';
    big[n - 1] = '"';
    big[n] = '\0';
    const char *f = e2e_path(&E, "big.json");
    e2e_write(f, "%s", big);
    free(big);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/bulk", h, NULL, f, &r);
    /* a string root is not an array: removed, forwarded as null */
    cr_expect_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 1);
}

Test(gateway, unlisted_field_is_refused_before_anything_leaves)
{
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    refused("POST", "/strict/v1/x", h, "{\"a\":1,\"b\":2}", 422, "unlisted_field");
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/strict/v1/x", h, "{\"a\":1}", NULL, &r);
    cr_expect_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "body"), "{\"a\":1}");
    cr_expect_str_eq(jstr(json_object_get(j, "headers"), "content-length"), "7");
    json_decref(j);
}

Test(gateway, header_list_too_large)
{
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "x-big: ", 7);
    const char *h[] = {H_PURPOSE, H_CALLER, big, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "GET", "/shop/v1/ping", h, NULL, NULL, &r);
    expect_error(&r, 431, "invalid_request");
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0);
}

/* ---------------------------------------------------------------- audit */

Test(gateway, audit_log_names_paths_never_values)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "cookie: sid=secret-cookie", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders?dry_run=1&utm_source=mail-campaign", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200);
    char rid[32];
    snprintf(rid, sizeof(rid), "%s", e2e_header(&r, "privgate-request-id"));
    e2e_resp_free(&r);
    const char *h2[] = {"privgate-purpose: marketing", H_CALLER, H_JSON, NULL};
    e2e_curl(&E, "POST", "/shop/v1/orders", h2, ORDER, NULL, &r);
    cr_assert_eq(r.status, 403);
    e2e_resp_free(&r);
    /* the writer thread flushes on shutdown: stop the gateway first */
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log, "no audit log");
    cr_expect(strstr(log, "ann@example.com") == NULL);
    cr_expect(strstr(log, "C-1001") == NULL);
    cr_expect(strstr(log, "secret-cookie") == NULL);
    cr_expect(strstr(log, "mail-campaign") == NULL);
    cr_expect(strstr(log, "B-1") == NULL);
    json_error_t err;
    char *line = log;
    int n = 0;
    bool seen_fwd = false, seen_refused = false;
    while (line && *line) {
        char *eol = strchr(line, '\n');
        cr_assert(eol, "audit record not ended by a newline");
        json_t *j = json_loadb(line, (size_t)(eol - line), 0, &err);
        cr_assert(j, "audit line is not JSON: %.*s", (int)(eol - line), line);
        n++;
        const char *outcome = jstr(j, "outcome");
        if (strcmp(jstr(j, "request_id"), rid) == 0) {
            seen_fwd = true;
            cr_expect_str_eq(outcome, "forwarded");
            cr_expect_str_eq(jstr(j, "provider"), "shop");
            cr_expect_str_eq(jstr(j, "purpose"), "orders");
            cr_expect_str_eq(jstr(j, "caller"), "orders-service");
            cr_expect_str_eq(jstr(j, "route"), "/v1/orders");
            cr_expect_eq(json_integer_value(json_object_get(j, "status")), 200);
            char *removed = json_dumps(json_object_get(j, "removed"), JSON_COMPACT);
            cr_expect(strstr(removed, "\"body.email\""), "%s", removed);
            cr_expect(strstr(removed, "\"body.items[].price\""), "%s", removed);
            cr_expect(strstr(removed, "\"query.utm_source\""), "%s", removed);
            cr_expect(strstr(removed, "\"header.cookie\""), "%s", removed);
            free(removed);
            char *tr = json_dumps(json_object_get(j, "transformed"), JSON_COMPACT);
            cr_expect_str_eq(tr, "[\"body.customer_id\"]");
            free(tr);
            cr_expect(strncmp(jstr(j, "contract"), "sha256:", 7) == 0);
        } else if (strcmp(outcome, "refused") == 0) {
            seen_refused = true;
            cr_expect_eq(json_integer_value(json_object_get(j, "status")), 403);
            cr_expect_str_eq(jstr(j, "error"), "purpose_not_allowed");
            cr_expect(json_is_null(json_object_get(j, "purpose")), "unknown purpose logged");
        }
        json_decref(j);
        line = eol + 1;
    }
    cr_expect_eq(n, 2);
    cr_expect(seen_fwd && seen_refused);
    free(log);
}

/* The caller header and the method are the caller's free text: where the
 * contract does not list callers, or no route matched, they are not logged
 * (they could carry anything, personal data included). */
Test(gateway, audit_log_never_writes_free_text_caller_or_method)
{
    const char *h[] = {H_PURPOSE, "privgate-caller: ann.example@gmail.com", H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/strict/v1/x", h, "{\"a\":1}", NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    e2e_curl(&E, "ANNEXAMPLEGMAILCOM", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 404);
    e2e_resp_free(&r);
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log, "no audit log");
    cr_expect(strstr(log, "ann.example") == NULL, "%s", log);
    cr_expect(strstr(log, "ANNEXAMPLE") == NULL, "%s", log);
    cr_expect(strstr(log, "\"method\":\"POST\"") != NULL, "%s", log);
    free(log);
}
