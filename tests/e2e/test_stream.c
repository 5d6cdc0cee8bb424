/*
 * End-to-end: bodies are streamed — a 64 MiB JSON array passes with the
 * gateway's memory bounded, and a body made invalid at its very end never
 * reaches the provider complete. Heads with more fields than an exchange
 * keeps inline (gw.h PX_HDR_INLINE, PX_RHDR_INLINE) pass whole.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void setup(void)
{
    start_shop(&E, "limits:\n  max_body: 128MiB\n");
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(stream, .init = setup, .fini = teardown);

/* Writes a compact JSON array of about |target| bytes (kept whole by the
 * "[]": keep route, so the filtered body is the same bytes) and returns
 * its SHA-256 in hex. |tail| is appended after the array (to break it). */
static size_t write_array(const char *path, size_t target, const char *tail, char hex[65])
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    size_t n = 0;
    char buf[256];
    fputc('[', f);
    EVP_DigestUpdate(md, "[", 1);
    n++;
    for (unsigned long i = 0; n < target; i++) {
        int k = snprintf(
            buf, sizeof(buf),
            "%s{\"id\":%lu,\"name\":\"item %lu\",\"tags\":[\"a\",\"b\\u00e9\"],\"n\":-1.5e3}",
            i ? "," : "", i, i);
        fwrite(buf, 1, (size_t)k, f);
        EVP_DigestUpdate(md, buf, (size_t)k);
        n += (size_t)k;
    }
    fputc(']', f);
    EVP_DigestUpdate(md, "]", 1);
    n++;
    if (tail) {
        fputs(tail, f);
        n += strlen(tail);
    }
    fclose(f);
    unsigned char d[32];
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return n;
}

/* Peak resident set of |pid| in KiB (VmHWM). */
static long peak_rss_kib(pid_t pid)
{
    long kib = e2e_proc_kb(pid, "VmHWM");
    cr_assert(kib > 0);
    return kib;
}

Test(stream, a_64_MiB_array_passes_with_bounded_memory)
{
    char hex[65];
    const char *f = e2e_path(&E, "big.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    size_t n = write_array(fp, 64u << 20, NULL, hex);
    long before = peak_rss_kib(E.gw_pid);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_eq((size_t)json_integer_value(json_object_get(j, "body_len")), n);
    cr_expect_str_eq(jstr(j, "body_sha256"), hex);
    json_decref(j);
    long after = peak_rss_kib(E.gw_pid);
    fprintf(stderr, "gateway peak RSS: %ld KiB before, %ld KiB after a %zu-byte body\n", before,
            after, n);
    /* bounded by windows and pipes, not by the body: far below 64 MiB */
    cr_expect_lt(after - before, 16 * 1024, "RSS grew by %ld KiB", after - before);
}

Test(stream, a_body_invalid_at_its_end_never_reaches_the_provider_complete)
{
    char hex[65];
    const char *f = e2e_path(&E, "bad.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    write_array(fp, 8u << 20, "x", hex);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    expect_error(&r, 400, "invalid_body");
    e2e_resp_free(&r);
    /* the demo partner records a request only once its END_STREAM came */
    struct e2e_resp r2;
    const char *h2[] = {H_PURPOSE, H_CALLER, NULL};
    e2e_curl(&E, "GET", "/shop/v1/ping", h2, NULL, NULL, &r2); /* orders the record file */
    cr_expect_eq(r2.status, 200);
    e2e_resp_free(&r2);
    cr_expect_eq(e2e_count_lines(E.record), 1, "the broken body was recorded upstream");
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "path"), "/v1/ping");
    json_decref(j);
}

/* ------------------------------------------------------ back-pressure */

static struct e2e S;

static void stall_setup(void)
{
    e2e_init(&S);
    /* a provider that stops reading: it never opens a flow-control window */
    const char *const extra[] = {"--take-no-body", NULL};
    e2e_start_partner(&S, "h2c", extra);
    e2e_contract(&S, "shop", SHOP_CONTRACT);
    if (!e2e_start_gateway(&S, "limits:\n  max_body: 128MiB\n  upstream_timeout: 2s\n")) {
        char *err = e2e_read(S.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void stall_teardown(void)
{
    e2e_fini(&S);
}

/* HTTP/2 flow control end to end: while the provider takes nothing, the
 * gateway reads the caller's body only as far as its windows and pipes
 * allow (a few hundred KiB), not the whole 64 MiB, and answers 504
 * upstream_timeout when upstream_timeout passes. */
Test(stream_stall, a_provider_that_takes_nothing_stops_the_callers_upload, .init = stall_setup,
     .fini = stall_teardown)
{
    char hex[65];
    const char *f = e2e_path(&S, "big.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    size_t n = write_array(fp, 64u << 20, NULL, hex);
    long before = peak_rss_kib(S.gw_pid);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&S, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    expect_error(&r, 504, "upstream_timeout");
    e2e_resp_free(&r);
    long after = peak_rss_kib(S.gw_pid);
    /* the audit record says how much of the body the gateway read */
    cr_assert(e2e_wait_file(S.audit, 10000));
    size_t len = 0;
    char *log = NULL;
    for (int i = 0; i < 100 && (!log || !strchr(log, '\n')); i++) {
        free(log);
        e2e_wait_file(S.audit, 100);
        log = e2e_read(S.audit, &len);
    }
    cr_assert(log && strchr(log, '\n'), "no audit record");
    json_t *j = json_loads(log, JSON_DISABLE_EOF_CHECK, NULL);
    free(log);
    cr_assert(j);
    json_int_t bytes_in = json_integer_value(json_object_get(j, "bytes_in"));
    json_int_t bytes_out = json_integer_value(json_object_get(j, "bytes_out"));
    json_decref(j);
    fprintf(stderr, "body %zu bytes: gateway read %lld, sent %lld; peak RSS %ld -> %ld KiB\n", n,
            (long long)bytes_in, (long long)bytes_out, before, after);
    cr_expect_gt(bytes_in, 0);
    cr_expect_lt(bytes_in, 8 << 20, "read %lld bytes of a body nobody takes", (long long)bytes_in);
    /* the provider's initial stream window (the partner's SETTINGS: 1 MiB),
     * no more */
    cr_expect_leq(bytes_out, 1 << 20, "%lld bytes sent past the provider's window",
                  (long long)bytes_out);
    cr_expect_lt(after - before, 16 * 1024, "RSS grew by %ld KiB", after - before);
    cr_expect_eq(e2e_count_lines(S.record), 0);
}

/* ------------------------------------------------------- large heads */

/* A request head with more fields than an exchange holds inline: the
 * arrays move to a larger block mid-head, and the fields the decision
 * needs (purpose, caller, the forwarded idempotency-key) all come after
 * that move. */
Test(stream, a_request_head_past_the_inline_fields_is_decided_and_forwarded)
{
    /* curl reads the fields from a file (-H @file): e2e_curl passes at
     * most 22 -H arguments */
    char hf[512];
    snprintf(hf, sizeof(hf), "%s", e2e_path(&E, "many.headers"));
    FILE *f = fopen(hf, "w");
    cr_assert(f);
    for (int i = 0; i < 60; i++)
        fprintf(f, "x-fill-%02d: v%02d\r\n", i, i);
    fprintf(f, "%s\r\n%s\r\n%s\r\nidempotency-key: k-4711\r\n", H_PURPOSE, H_CALLER, H_JSON);
    fclose(f);
    char at[520];
    snprintf(at, sizeof(at), "@%s", hf);
    const char *h[] = {at, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h, "{\"order_id\":7,\"email\":\"a@b\"}", NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    json_t *hd = json_object_get(j, "headers");
    cr_expect_str_eq(jstr(hd, "idempotency-key"), "k-4711");
    cr_expect_str_eq(jstr(j, "body"), "{\"order_id\":7}");
    cr_expect_null(json_object_get(hd, "x-fill-00"), "an unlisted header was forwarded");
    cr_expect_null(json_object_get(hd, "x-fill-59"), "an unlisted header was forwarded");
    json_decref(j);
}

/* An HTTP/1.1 provider answering every request with NRESP extra fields
 * (more than an exchange holds inline), "ok" as body, then closing. A
 * child process; returns its pid, the port in |*port|. */
#define NRESP 40
static pid_t raw_h1_upstream(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t al = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid > 0) {
        close(fd);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    static char resp[8192];
    size_t o = (size_t)snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n");
    for (int i = 0; i < NRESP; i++)
        o += (size_t)snprintf(resp + o, sizeof(resp) - o, "x-r-%02d: value-%02d\r\n", i, i);
    o += (size_t)snprintf(resp + o, sizeof(resp) - o, "connection: close\r\n\r\nok");
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        char buf[16384];
        size_t got = 0;
        while (got < sizeof(buf) - 1) { /* the head (GET: no body) */
            ssize_t k = read(c, buf + got, sizeof(buf) - 1 - got);
            if (k <= 0) break;
            got += (size_t)k;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n")) break;
        }
        for (size_t w = 0; w < o;) {
            ssize_t k = write(c, resp + w, o - w);
            if (k <= 0) break;
            w += (size_t)k;
        }
        close(c);
    }
}

static struct e2e R;

static void rawup_teardown(void)
{
    e2e_fini(&R); /* stops the raw upstream too (up_pid) */
}

/* A response head with more fields than an exchange holds inline reaches
 * the caller whole, with the gateway's request id after them. */
Test(stream_rawup, a_response_head_past_the_inline_fields_reaches_the_caller_whole,
     .fini = rawup_teardown)
{
    e2e_init(&R);
    R.up_pid = raw_h1_upstream(&R.up_port);
    e2e_contract(&R, "raw",
                 "contract: 1\n"
                 "provider: raw\n"
                 "name: Raw\n"
                 "purposes: [orders]\n"
                 "upstream:\n"
                 "  url: @UP@\n"
                 "  insecure: true\n"
                 "  protocol: http/1.1\n"
                 "routes:\n"
                 "  - method: GET\n"
                 "    path: /v1/ping\n");
    if (!e2e_start_gateway(&R, NULL)) {
        char *err = e2e_read(R.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    for (int round = 0; round < 2; round++) { /* the second on a reused exchange */
        struct e2e_resp r;
        e2e_curl(&R, "GET", "/raw/v1/ping", h, NULL, NULL, &r);
        cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
        cr_expect_str_eq(r.body, "ok");
        for (int i = 0; i < NRESP; i++) {
            char name[16], want[16];
            snprintf(name, sizeof(name), "x-r-%02d", i);
            snprintf(want, sizeof(want), "value-%02d", i);
            const char *v = e2e_header(&r, name);
            cr_expect(v && strcmp(v, want) == 0, "%s: %s", name, v ? v : "(missing)");
        }
        const char *rid = e2e_header(&r, "privgate-request-id");
        cr_expect(rid && strlen(rid) == 26, "request id %s", rid ? rid : "(missing)");
        e2e_resp_free(&r);
    }
}

/* ------------------------------------------------ refused, sent again */

static struct e2e F;

static void refuse_setup(void)
{
    e2e_init(&F);
    /* every 2nd stream the provider sees is refused (REFUSED_STREAM, after
     * the whole request came): the gateway sends it again, once */
    const char *const extra[] = {"--refuse-every", "2", NULL};
    e2e_start_partner(&F, "h2c", extra);
    e2e_contract(&F, "shop", SHOP_CONTRACT);
    if (!e2e_start_gateway(&F, NULL)) {
        char *err = e2e_read(F.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void refuse_teardown(void)
{
    e2e_fini(&F);
}

/* A body of several pipe chunks (16 KiB each) sent, refused, and sent
 * again: the chunks already sent were kept (not copied) for the replay,
 * and the provider gets the very same bytes the second time. */
Test(stream_refused, a_refused_body_of_several_chunks_is_sent_again_whole, .init = refuse_setup,
     .fini = refuse_teardown)
{
    char hex[65];
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", e2e_path(&F, "mid.json"));
    size_t n = write_array(fp, 40000, NULL, hex);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    for (int i = 0; i < 3; i++) { /* the 2nd and 3rd are refused once each */
        struct e2e_resp r;
        e2e_curl(&F, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
        cr_assert_eq(r.status, 200, "request %d: status %d: %s", i, r.status, r.body);
        e2e_resp_free(&r);
    }
    cr_assert_eq(e2e_count_lines(F.record), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *j = recorded(&F, i);
        cr_assert(j);
        cr_expect_eq((size_t)json_integer_value(json_object_get(j, "body_len")), n);
        cr_expect_str_eq(jstr(j, "body_sha256"), hex, "record %zu", i);
        json_decref(j);
    }
}

/* ------------------------------------------------ TLS on both sides */

static struct e2e T;

static void tls_teardown(void)
{
    e2e_fini(&T);
}

/* A body of about 900 KB through TLS on both sides, echoed back by the
 * provider: many full DATA frames each way go from the pipes' chunks
 * straight into the TLS staging buffers (no-copy DATA), and the bytes
 * arrive unchanged in both directions. */
Test(stream_tls, a_large_body_and_its_echo_cross_tls_on_both_sides_unchanged, .fini = tls_teardown)
{
    e2e_init(&T);
    e2e_start_partner(&T, "tls", NULL);
    e2e_contract(&T, "shop", SHOP_CONTRACT);
    char *p = e2e_read(e2e_path(&T, "contracts/shop.yaml"), NULL);
    cr_assert(p);
    /* the shop contract's cleartext upstream, made TLS (the partner's CA) */
    char *u = strstr(p, "  insecure: true\n");
    cr_assert(u);
    char ups[128];
    snprintf(ups, sizeof(ups), "http://127.0.0.1:%d", T.up_port);
    char *url = strstr(p, ups);
    cr_assert(url);
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%.*shttps://127.0.0.1:%d%.*s  ca: %s\n%s", (int)(url - p), p,
             T.up_port, (int)(u - url - strlen(ups)), url + strlen(ups), T.up_ca,
             u + strlen("  insecure: true\n"));
    free(p);
    e2e_write(e2e_path(&T, "contracts/shop.yaml"), "%s", yaml);
    char key[512], crt[512];
    snprintf(key, sizeof(key), "%s", e2e_path(&T, "gw.key"));
    snprintf(crt, sizeof(crt), "%s", e2e_path(&T, "gw.pem"));
    e2e_self_signed(key, crt, "localhost");
    char tls[1200];
    snprintf(tls, sizeof(tls), "      cert: %s\n      key: %s\n", crt, key);
    if (!e2e_start_gateway_tls(&T, NULL, tls)) {
        char *err = e2e_read(T.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
    char hex[65], fp[512], out[512], url2[128], data[520];
    snprintf(fp, sizeof(fp), "%s", e2e_path(&T, "big.json"));
    snprintf(out, sizeof(out), "%s", e2e_path(&T, "echo.json"));
    size_t n = write_array(fp, 900000, NULL, hex);
    snprintf(url2, sizeof(url2), "https://127.0.0.1:%d/shop/v1/bulk", T.gw_tls_port);
    snprintf(data, sizeof(data), "@%s", fp);
    char *argv[] = {"curl",         "-sS", "--http2", "--cacert",      crt,  "-H", H_PURPOSE, "-H",
                    H_CALLER,       "-H",  H_JSON,    "--data-binary", data, "-o", out,       "-w",
                    "%{http_code}", url2,  NULL};
    char *code = NULL;
    cr_assert_eq(e2e_run(argv, NULL, &code, NULL), 0);
    cr_expect_str_eq(code, "200");
    free(code);
    size_t elen = 0;
    char *echo = e2e_read(out, &elen);
    cr_assert(echo);
    json_t *j = json_loadb(echo, elen, 0, NULL);
    free(echo);
    cr_assert(j, "the echo is not JSON (%zu bytes)", elen);
    cr_expect_str_eq(jstr(j, "body_sha256"), hex, "the provider got other bytes");
    size_t blen = 0;
    char *sent = e2e_read(fp, &blen);
    cr_assert(sent && blen == n);
    const char *back = jstr(j, "body");
    cr_expect(back && strlen(back) == n && memcmp(back, sent, n) == 0,
              "the echo is not the body sent");
    free(sent);
    json_decref(j);
}
