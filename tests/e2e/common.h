/* Shared fixtures of the end-to-end suites. */
#ifndef PRIVGATE_TESTS_E2E_COMMON_H
#define PRIVGATE_TESTS_E2E_COMMON_H

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "harness.h"

#include <time.h>

/* CLOCK_MONOTONIC in ms: deadlines of the tests' waits on files, lines
 * and states. */
static inline long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A provider with a filtered JSON route, a route without body, an opaque
 * route and a root-array route. */
static const char SHOP_CONTRACT[] = "contract: 1\n"
                                    "provider: shop\n"
                                    "name: Test Shop\n"
                                    "purposes: [orders]\n"
                                    "callers: [orders-service]\n"
                                    "upstream:\n"
                                    "  url: @UP@\n"
                                    "  insecure: true\n"
                                    "  hmac_key_file: ../hmac.key\n"
                                    "  auth:\n"
                                    "    header: authorization\n"
                                    "    value_file: ../token\n"
                                    "headers: [idempotency-key]\n"
                                    "routes:\n"
                                    "  - method: POST\n"
                                    "    path: /v1/orders\n"
                                    "    query: [dry_run]\n"
                                    "    body:\n"
                                    "      fields:\n"
                                    "        order_id: keep\n"
                                    "        customer_id: hash\n"
                                    "        items[].sku: keep\n"
                                    "  - method: GET\n"
                                    "    path: /v1/ping\n"
                                    "  - method: PUT\n"
                                    "    path: /v1/blob/*\n"
                                    "    body: opaque\n"
                                    "  - method: POST\n"
                                    "    path: /v1/bulk\n"
                                    "    body:\n"
                                    "      fields:\n"
                                    "        \"[]\": keep\n";

static const char STRICT_CONTRACT[] = "contract: 1\n"
                                      "provider: strict\n"
                                      "name: Strict\n"
                                      "purposes: [orders]\n"
                                      "upstream:\n"
                                      "  url: @UP@\n"
                                      "  insecure: true\n"
                                      "unlisted: reject\n"
                                      "routes:\n"
                                      "  - method: POST\n"
                                      "    path: /v1/x\n"
                                      "    body:\n"
                                      "      fields:\n"
                                      "        a: keep\n";

#define H_PURPOSE "privgate-purpose: orders"
#define H_CALLER "privgate-caller: orders-service"
#define H_JSON "content-type: application/json"

/* The i-th JSON line of the upstream's record file, or NULL. */
static inline json_t *recorded(struct e2e *e, size_t i)
{
    char *p = e2e_read(e->record, NULL);
    if (!p) return NULL;
    char *line = p;
    for (size_t k = 0; k < i && line; k++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    json_t *j = NULL;
    if (line && *line) {
        json_error_t err;
        j = json_loadb(line, strcspn(line, "\n"), 0, &err);
    }
    free(p);
    return j;
}

static inline const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v ? json_string_value(v) : NULL;
}

/* Checks a gateway answer of SPEC 5: status, privgate-error, JSON body. */
static inline void expect_error(struct e2e_resp *r, int status, const char *code)
{
    cr_expect_eq(r->status, status, "status %d, want %d (body %s)", r->status, status, r->body);
    const char *h = e2e_header(r, "privgate-error");
    cr_expect(h && strcmp(h, code) == 0, "privgate-error %s, want %s", h ? h : "(none)", code);
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);
    cr_assert(j, "error body is not JSON: %s", r->body);
    json_t *e = json_object_get(j, "error");
    cr_expect(e && json_is_object(e));
    cr_expect_str_eq(jstr(e, "code"), code);
    cr_expect(jstr(e, "message") != NULL);
    const char *rid = jstr(e, "request_id");
    cr_expect(rid && strlen(rid) == 26, "request_id");
    const char *hrid = e2e_header(r, "privgate-request-id");
    cr_expect(rid && hrid && strcmp(rid, hrid) == 0, "request id in header and body");
    json_decref(j);
}

static inline void start_shop(struct e2e *e, const char *extra_yaml)
{
    e2e_init(e);
    e2e_start_partner(e, "h2c", NULL);
    e2e_contract(e, "shop", SHOP_CONTRACT);
    e2e_contract(e, "strict", STRICT_CONTRACT);
    if (!e2e_start_gateway(e, extra_yaml)) {
        char *err = e2e_read(e->gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

#endif
