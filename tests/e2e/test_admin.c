/*
 * End-to-end: the admin listener of SPEC 8 (HTTP/1.1 and h2c) — health,
 * readiness (also while draining), metrics, loaded contracts.
 */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;
static int admin_port;

static void setup(void)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", "300", NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    admin_port = e2e_free_port();
    char yaml[128];
    snprintf(yaml, sizeof(yaml), "admin:\n  address: 127.0.0.1:%d\n", admin_port);
    cr_assert(e2e_start_gateway(&E, yaml));
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(admin, .init = setup, .fini = teardown, .timeout = 120);

/* GET |path| on the admin port; |h2c| uses prior knowledge. Returns the
 * status; the body in |*body|. */
static int admin_get(const char *path, bool h2c, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", admin_port, path);
    char *argv[] = {"curl",
                    "-sS",
                    "-w",
                    "\n%{http_code} %{http_version}",
                    h2c ? "--http2-prior-knowledge" : "--http1.1",
                    url,
                    NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    char *nl = strrchr(out, '\n');
    cr_assert(nl, "curl said %s", out);
    int status = atoi(nl + 1);
    const char *ver = strchr(nl + 1, ' ');
    cr_expect(ver && strcmp(ver + 1, h2c ? "2" : "1.1") == 0, "HTTP version %s", ver ? ver : "");
    *nl = '\0';
    *body = out;
    return status;
}

Test(admin, health_and_readiness_over_http1_and_h2c)
{
    char *b;
    cr_expect_eq(admin_get("/healthz", false, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/healthz", true, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/readyz", false, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/readyz", true, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/nope", false, &b), 404);
    free(b);
}

Test(admin, contracts_lists_what_is_loaded)
{
    char *b;
    cr_assert_eq(admin_get("/contracts", true, &b), 200);
    json_error_t err;
    json_t *j = json_loads(b, 0, &err);
    cr_assert(j, "not JSON: %s", b);
    json_t *c = json_array_get(json_object_get(j, "contracts"), 0);
    cr_expect_str_eq(jstr(c, "provider"), "shop");
    cr_expect(strncmp(jstr(c, "sha256"), "sha256:", 7) == 0);
    cr_expect_eq(json_array_size(json_object_get(c, "routes")), 4);
    json_decref(j);
    free(b);
}

Test(admin, metrics_count_requests_and_fields)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "cookie: a=1", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h,
             "{\"order_id\":1,\"customer_id\":\"c\",\"email\":\"e@example.com\"}", NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    const char *h2[] = {"privgate-purpose: marketing", H_CALLER, NULL};
    e2e_curl(&E, "GET", "/shop/v1/ping", h2, NULL, NULL, &r);
    cr_assert_eq(r.status, 403);
    e2e_resp_free(&r);
    char *b;
    cr_assert_eq(admin_get("/metrics", false, &b), 200);
    cr_expect(
        strstr(b, "privgate_requests_total{provider=\"shop\",outcome=\"forwarded\",code=\"\"} 1"),
        "%s", b);
    cr_expect(strstr(b, "privgate_requests_total{provider=\"shop\",outcome=\"refused\","
                        "code=\"purpose_not_allowed\"} 1"),
              "%s", b);
    /* body.email and header.cookie */
    cr_expect(strstr(b, "privgate_fields_removed_total{provider=\"shop\"} 2"), "%s", b);
    cr_expect(strstr(b, "privgate_fields_transformed_total{provider=\"shop\"} 1"), "%s", b);
    cr_expect(strstr(b, "privgate_request_duration_seconds_count{provider=\"shop\"} 2"), "%s", b);
    cr_expect(strstr(b, "privgate_active_streams 0"), "%s", b);
    cr_expect(strstr(b, "e@example.com") == NULL);
    free(b);
}

Test(admin, reloads_are_counted)
{
    kill(E.gw_pid, SIGHUP);
    char *b = NULL;
    /* poll the counter until the reload went through */
    for (int i = 0; i < 2000; i++) {
        free(b);
        admin_get("/metrics", false, &b);
        if (strstr(b, "privgate_contract_reloads_total{result=\"ok\"} 1")) break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect(strstr(b, "privgate_contract_reloads_total{result=\"ok\"} 1"), "%s", b);
    e2e_contract(&E, "broken", "contract: 1\n");
    kill(E.gw_pid, SIGHUP);
    for (int i = 0; i < 2000; i++) {
        free(b);
        admin_get("/metrics", false, &b);
        if (strstr(b, "privgate_contract_reloads_total{result=\"failed\"} 1")) break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect(strstr(b, "privgate_contract_reloads_total{result=\"failed\"} 1"), "%s", b);
    free(b);
}

Test(admin, readyz_is_503_while_draining)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/shop/v1/ping", E.gw_port);
    char *argv[] = {"curl",
                    "-sS",
                    "--http2-prior-knowledge",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    H_PURPOSE,
                    "-H",
                    H_CALLER,
                    url,
                    NULL};
    char outp[512];
    snprintf(outp, sizeof(outp), "%s", e2e_path(&E, "curl.out"));
    pid_t curl = e2e_spawn(argv, outp, NULL);
    /* wait until the provider has the request (it answers 300 ms later) */
    for (int i = 0; i < 2000 && e2e_count_lines(E.record) < 1; i++) {
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(e2e_count_lines(E.record), 1);
    kill(E.gw_pid, SIGTERM);
    char *b = NULL;
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        free(b);
        st = admin_get("/readyz", false, &b);
        if (st == 503) break;
        struct timespec ts = {0, 2000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect_eq(st, 503, "readyz while draining: %d %s", st, b);
    free(b);
    int cst;
    waitpid(curl, &cst, 0);
    char *code = e2e_read(outp, NULL);
    cr_expect(code && strcmp(code, "200") == 0, "in-flight request: %s", code ? code : "?");
    free(code);
    cr_expect_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
}
