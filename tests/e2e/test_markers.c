/*
 * End-to-end: no value ever reaches a log (issue 5 item 7). Every request
 * carries unique marker strings (MARKER-<n>-<random>) in every place a
 * value can be — body fields kept, hashed and removed, every header (kept,
 * removed, replaced by the injected credential, request id), query
 * parameters kept and removed, path parameters, the provider and route
 * segments, the method, the purpose and caller headers, content type and
 * encoding — through every outcome: forwarded, each kind of refusal, and
 * failed (provider down, timeout, connection cut mid-response), over HTTP/2 and HTTP/1.1. Then
 * none of the markers may appear in the audit log, the gateway's stderr,
 * the /metrics output, or an error body the gateway wrote.
 *
 * Positions SPEC 7 records as names (provider, route, purpose, caller,
 * method) get a marker that is not a configured name: the audit log must
 * write null rather than echo it.
 */
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E, SLOW, RESET;
static int admin_port;

#define MAXMK 16384
static char *marks[MAXMK];
static size_t nmarks;
static unsigned seed;

/* A fresh marker, remembered for the final check (static ring of texts). */
static const char *mk(void)
{
    cr_assert(nmarks < MAXMK);
    char b[48];
    seed = seed * 1103515245u + 12345u;
    snprintf(b, sizeof(b), "MARKER-%zu-%08x", nmarks, seed ^ (unsigned)getpid());
    marks[nmarks] = strdup(b);
    return marks[nmarks++];
}

static const char SLOW_CONTRACT[] = "contract: 1\n"
                                    "provider: slow\n"
                                    "purposes: [orders]\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:%d\n"
                                    "  insecure: true\n"
                                    "routes:\n"
                                    "  - method: POST\n"
                                    "    path: /v1/x\n"
                                    "    body:\n"
                                    "      fields:\n"
                                    "        a: keep\n";

static void contract_at(const char *name, int port)
{
    char yaml[1024], fn[128];
    snprintf(yaml, sizeof(yaml), SLOW_CONTRACT, port);
    char *p = strstr(yaml, "provider: slow");
    cr_assert(p);
    char out[1100];
    snprintf(out, sizeof(out), "%.*sprovider: %s%s", (int)(p - yaml), yaml, name,
             p + strlen("provider: slow"));
    snprintf(fn, sizeof(fn), "contracts/%s.yaml", name);
    e2e_write(e2e_path(&E, fn), "%s", out);
}

static void setup(void)
{
    seed = (unsigned)time(NULL);
    e2e_init(&SLOW);
    const char *slow[] = {"--delay-ms", "3000", NULL};
    e2e_start_partner(&SLOW, "h2c", slow);
    e2e_init(&RESET);
    /* half the response body, then the connection drops */
    const char *reset[] = {"--break-response", NULL};
    e2e_start_partner(&RESET, "h2c", reset);
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    e2e_contract(&E, "strict", STRICT_CONTRACT);
    contract_at("slow", SLOW.up_port);
    contract_at("reset", RESET.up_port);
    contract_at("down", e2e_free_port()); /* nothing listens there */
    admin_port = e2e_free_port();
    char yaml[512];
    snprintf(yaml, sizeof(yaml),
             "admin:\n  address: 127.0.0.1:%d\n"
             "limits:\n  max_body: 64KiB\n  max_header_bytes: 4KiB\n"
             "  upstream_timeout: 1s\n  upstream_connect_timeout: 1s\n",
             admin_port);
    if (!e2e_start_gateway(&E, yaml)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void teardown(void)
{
    e2e_fini(&E);
    e2e_fini(&SLOW);
    e2e_fini(&RESET);
    for (size_t i = 0; i < nmarks; i++)
        free(marks[i]);
    nmarks = 0;
}

TestSuite(markers, .init = setup, .fini = teardown);

static size_t nsent;

/* Sends one request over HTTP/1.1 or h2c (curl); returns the status (0
 * when the connection was closed without an answer) and checks that an
 * answer the gateway wrote itself (privgate-error) echoes no marker. */
static int send(bool h1, const char *method, const char *path, const char *const *hdrs,
                const char *body, size_t body_len)
{
    char url[4096];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", E.gw_port, path);
    const char *hf = e2e_path(&E, "m.headers");
    const char *bf = e2e_path(&E, "m.body");
    const char *rq = e2e_path(&E, "m.req");
    char hfile[512], bfile[512], rfile[512], at[520];
    snprintf(hfile, sizeof(hfile), "%s", hf);
    snprintf(bfile, sizeof(bfile), "%s", bf);
    snprintf(rfile, sizeof(rfile), "%s", rq);
    unlink(hfile);
    unlink(bfile);
    char *argv[96];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = h1 ? "--http1.1" : "--http2-prior-knowledge";
    argv[n++] = "--max-time";
    argv[n++] = "30";
    argv[n++] = "--path-as-is";
    argv[n++] = "-X";
    argv[n++] = (char *)method;
    argv[n++] = "-D";
    argv[n++] = hfile;
    argv[n++] = "-o";
    argv[n++] = bfile;
    argv[n++] = "-w";
    argv[n++] = "%{http_code}";
    for (int i = 0; hdrs && hdrs[i] && n < 86; i++) {
        argv[n++] = "-H";
        argv[n++] = (char *)hdrs[i];
    }
    if (body) {
        FILE *f = fopen(rfile, "wb");
        cr_assert(f);
        fwrite(body, 1, body_len, f);
        fclose(f);
        snprintf(at, sizeof(at), "@%s", rfile);
        argv[n++] = "--data-binary";
        argv[n++] = at;
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int status = out ? (int)strtol(out, NULL, 10) : 0;
    free(out);
    nsent++;
    char *rh = e2e_read(hfile, NULL);
    char *rb = e2e_read(bfile, NULL);
    if (rh && strstr(rh, "privgate-error")) {
        cr_expect(strstr(rh, "MARKER") == NULL, "%s %s: error head echoes a value:\n%s", method,
                  path, rh);
        cr_expect(rb == NULL || strstr(rb, "MARKER") == NULL,
                  "%s %s: error body echoes a value:\n%s", method, path, rb);
    }
    free(rh);
    free(rb);
    return status;
}

/* Headers carrying markers everywhere, with |purpose| and |caller| lines
 * (NULL to leave one out) and |ctype| / |cenc| (NULL: none). */
struct hset {
    char v[16][320];
    const char *p[17];
};

static const char *const *hdrs(struct hset *s, const char *purpose, const char *caller,
                               const char *ctype, const char *cenc)
{
    int n = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        snprintf(s->v[n], sizeof(s->v[n]), __VA_ARGS__);                                           \
        s->p[n] = s->v[n];                                                                         \
        n++;                                                                                       \
    } while (0)
    if (purpose) ADD("privgate-purpose: %s", purpose);
    if (caller) ADD("privgate-caller: %s", caller);
    if (ctype) ADD("content-type: %s", ctype);
    if (cenc) ADD("content-encoding: %s", cenc);
    ADD("cookie: sid=%s", mk());
    ADD("idempotency-key: %s", mk());      /* listed: kept */
    ADD("x-custom: %s", mk());             /* unlisted: removed */
    ADD("authorization: Bearer %s", mk()); /* replaced by the injected credential */
    ADD("user-agent: %s", mk());           /* removed */
    ADD("x-request-id: %s", mk());         /* never taken as privgate's id */
    ADD("privgate-request-id: %s", mk());  /* privgate makes its own */
    ADD("x-forwarded-for: %s", mk());
    ADD("referer: https://example.com/%s", mk());
#undef ADD
    s->p[n] = NULL;
    return s->p;
}

/* A JSON body with markers in kept, hashed and removed fields. */
static char *order_body(size_t *len)
{
    char *b = malloc(1024);
    int k = snprintf(b, 1024,
                     "{\"order_id\":\"%s\",\"customer_id\":\"%s\",\"email\":\"%s\","
                     "\"items\":[{\"sku\":\"%s\",\"price\":\"%s\"}],\"note\":{\"x\":\"%s\"}}",
                     mk(), mk(), mk(), mk(), mk(), mk());
    *len = (size_t)k;
    return b;
}

/* Everything once over |h1| or h2c. Returns the number of requests. */
static void run_all(bool h1)
{
    struct hset hs;
    size_t bl;
    char *b;
    char path[2048];
    int st;
#define PURPOSE "orders"
#define CALLER "orders-service"
#define JSON "application/json"

    /* forwarded: filtered JSON body, query kept and removed */
    b = order_body(&bl);
    snprintf(path, sizeof(path), "/shop/v1/orders?dry_run=%s&utm_source=%s", mk(), mk());
    cr_expect_eq(send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), b, bl), 200);
    free(b);
    /* forwarded: opaque body, path parameters */
    snprintf(path, sizeof(path), "/shop/v1/blob/%s/%s.pdf?dry_run=%s", mk(), mk(), mk());
    char opaque[128];
    snprintf(opaque, sizeof(opaque), "%%PDF %s", mk());
    cr_expect_eq(send(h1, "PUT", path, hdrs(&hs, PURPOSE, CALLER, "application/pdf", NULL), opaque,
                      strlen(opaque)),
                 200);
    /* forwarded: no body */
    snprintf(path, sizeof(path), "/shop/v1/ping?%s=%s", "dry_run", mk());
    cr_expect_eq(send(h1, "GET", path, hdrs(&hs, PURPOSE, CALLER, NULL, NULL), NULL, 0), 200);

    /* refused: unknown provider (the marker is the provider segment) */
    b = order_body(&bl);
    snprintf(path, sizeof(path), "/%s/v1/orders?dry_run=%s", mk(), mk());
    cr_expect_eq(send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), b, bl), 404);
    /* refused: unknown route (marker in the route) and unknown method */
    snprintf(path, sizeof(path), "/shop/v1/%s?dry_run=%s", mk(), mk());
    cr_expect_eq(send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), b, bl), 404);
    char method[64];
    snprintf(method, sizeof(method), "%s", mk());
    st = send(h1, method, "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, JSON, NULL), b, bl);
    cr_expect(st == 404 || st == 400, "unknown method: %d", st);
    /* refused: purpose required / not allowed (marker as purpose) */
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, NULL, CALLER, JSON, NULL), b, bl),
                 400);
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, mk(), CALLER, JSON, NULL), b, bl),
                 403);
    /* refused: caller not allowed (marker as caller) */
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, mk(), JSON, NULL), b, bl),
                 403);
    /* refused: media type and encoding carrying markers */
    char ct[96];
    snprintf(ct, sizeof(ct), "application/x-%s", mk());
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, ct, NULL), b, bl),
                 415);
    snprintf(ct, sizeof(ct), "application/json; charset=%s", mk());
    st = send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, ct, NULL), b, bl);
    cr_expect(st == 415 || st == 200, "charset marker: %d", st);
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, JSON, mk()), b, bl),
                 415);
    free(b);
    /* refused: invalid body (cut inside a value) */
    char bad[256];
    snprintf(bad, sizeof(bad), "{\"order_id\":\"%s\",\"email\":\"%s", mk(), mk());
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad,
                      strlen(bad)),
                 400);
    snprintf(bad, sizeof(bad), "{\"order_id\":%s}", mk()); /* a bare word */
    cr_expect_eq(send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad,
                      strlen(bad)),
                 400);
    /* refused: body too large (max_body 64 KiB), markers all along */
    {
        size_t cap = 80 * 1024, o = 0;
        char *big = malloc(cap + 64);
        o += (size_t)snprintf(big + o, cap - o, "{\"order_id\":1,\"items\":[");
        while (o < cap - 128)
            o += (size_t)snprintf(big + o, cap - o, "{\"sku\":\"%s\"},", mk());
        o += (size_t)snprintf(big + o, cap + 64 - o, "{}]}");
        cr_expect_eq(
            send(h1, "POST", "/shop/v1/orders", hdrs(&hs, PURPOSE, CALLER, JSON, NULL), big, o),
            413);
        free(big);
    }
    /* refused: unlisted field (contract with unlisted: reject) */
    snprintf(bad, sizeof(bad), "{\"a\":\"%s\",\"b\":\"%s\"}", mk(), mk());
    cr_expect_eq(
        send(h1, "POST", "/strict/v1/x", hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad, strlen(bad)),
        422);
    /* refused: invalid request (dot segment) with markers in the query */
    snprintf(path, sizeof(path), "/shop/v1/%%2e%%2e/%s?dry_run=%s", mk(), mk());
    cr_expect_eq(send(h1, "GET", path, hdrs(&hs, PURPOSE, CALLER, NULL, NULL), NULL, 0), 400);
    /* refused: header list too large (4 KiB) made of markers */
    {
        struct hset big;
        const char *const *hb = hdrs(&big, PURPOSE, CALLER, NULL, NULL);
        static char line[6000];
        size_t o = (size_t)snprintf(line, sizeof(line), "x-big: ");
        while (o < 5000)
            o += (size_t)snprintf(line + o, sizeof(line) - o, "%s,", mk());
        const char *all[20];
        int k = 0;
        for (; hb[k]; k++)
            all[k] = hb[k];
        all[k++] = line;
        all[k] = NULL;
        cr_expect_eq(send(h1, "GET", "/shop/v1/ping", all, NULL, 0), 431);
    }

    /* failed: provider down, too slow, stream reset */
    snprintf(bad, sizeof(bad), "{\"a\":\"%s\",\"b\":\"%s\"}", mk(), mk());
    snprintf(path, sizeof(path), "/down/v1/x?q=%s", mk());
    cr_expect_eq(send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad, strlen(bad)),
                 502);
    snprintf(path, sizeof(path), "/slow/v1/x?q=%s", mk());
    cr_expect_eq(send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad, strlen(bad)),
                 504);
    snprintf(path, sizeof(path), "/reset/v1/x?q=%s", mk());
    st = send(h1, "POST", path, hdrs(&hs, PURPOSE, CALLER, JSON, NULL), bad, strlen(bad));
    /* the head may already have been relayed when the connection drops */
    cr_expect(st == 502 || st == 200 || st == 0, "connection cut: %d", st);
#undef PURPOSE
#undef CALLER
#undef JSON
}

static char *admin_metrics(void)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", admin_port);
    char *argv[] = {"curl", "-sS", "--max-time", "20", url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    cr_assert(out && strstr(out, "privgate_requests_total"), "no metrics");
    return out;
}

/* Which marker, if any, |text| contains; NULL if none. */
static const char *leak(const char *text)
{
    if (!text) return NULL;
    if (!strstr(text, "MARKER")) return NULL;
    for (size_t i = 0; i < nmarks; i++)
        if (strstr(text, marks[i])) return marks[i];
    return "MARKER (partial)";
}

Test(markers, no_value_reaches_audit_stderr_or_metrics)
{
    nsent = 0;
    run_all(false);
    run_all(true);
    cr_assert_gt(nmarks, 100);
    /* every request has its record: wait for the writer (a read, bounded) */
    for (int i = 0; i < 1000 && e2e_count_lines(E.audit) < nsent; i++) {
        struct timespec ts = {0, 20L * 1000000L};
        nanosleep(&ts, NULL);
    }
    char *metrics = admin_metrics();
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 15000), 0);
    E.gw_pid = 0;
    char *audit = e2e_read(E.audit, NULL);
    char *err = e2e_read(E.gw_err, NULL);
    cr_assert(audit && err);
    cr_expect_eq(e2e_count_lines(E.audit), nsent, "one audit line per request");
    const char *m;
    cr_expect((m = leak(audit)) == NULL, "audit log shows %s", m);
    cr_expect((m = leak(err)) == NULL, "stderr shows %s:\n%s", m, err);
    cr_expect((m = leak(metrics)) == NULL, "metrics show %s", m);
    /* the records name what the contracts know, and write null for the rest */
    cr_expect(strstr(audit, "\"outcome\":\"forwarded\""));
    cr_expect(strstr(audit, "\"error\":\"upstream_unavailable\""));
    cr_expect(strstr(audit, "\"error\":\"upstream_timeout\""));
    cr_expect(strstr(audit, "\"error\":\"unknown_provider\""));
    cr_expect(strstr(audit, "\"error\":\"caller_not_allowed\""));
    cr_expect(strstr(audit, "\"error\":\"body_too_large\""));
    cr_expect(strstr(audit, "\"error\":\"unlisted_field\""));
    /* the upstream did receive values (the markers are real values) */
    char *rec = e2e_read(E.record, NULL);
    cr_expect(rec && strstr(rec, "MARKER-"), "forwarded markers reached the provider");
    free(rec);
    free(metrics);
    free(audit);
    free(err);
}
