/*
 * End-to-end: the upstream side — TLS with verification, and every
 * upstream failure mapped to the status and code of SPEC 5.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(upstream, .fini = teardown);

static const char ONE_ROUTE[] = "contract: 1\n"
                                "provider: p\n"
                                "name: P\n"
                                "purposes: [orders]\n"
                                "upstream:\n"
                                "%s"
                                "routes:\n"
                                "  - method: POST\n"
                                "    path: /v1/x\n"
                                "    body:\n"
                                "      fields:\n"
                                "        a: keep\n";

static void contract_with(const char *upstream_yaml)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), ONE_ROUTE, upstream_yaml);
    e2e_contract(&E, "p", buf);
}

static void start(const char *extra)
{
    if (!e2e_start_gateway(&E, extra)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void post(struct e2e_resp *r)
{
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    e2e_curl(&E, "POST", "/p/v1/x", h, "{\"a\":1,\"b\":2}", NULL, r);
}

/* A TLS partner behind the contract's |upstream| lines: one request is
 * forwarded over verified TLS, filtered. */
static void tls_upstream_forwards(const char *upstream)
{
    e2e_init(&E);
    e2e_start_partner(&E, "tls", NULL);
    contract_with(upstream);
    start(NULL);
    struct e2e_resp r;
    post(&r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "scheme"), "https");
    cr_expect_str_eq(jstr(j, "body"), "{\"a\":1}");
    json_decref(j);
}

Test(upstream, tls_with_the_contracts_ca)
{
    tls_upstream_forwards("  url: @UPS@\n  ca: @CA@\n");
}

Test(upstream, tls_untrusted_certificate)
{
    e2e_init(&E);
    e2e_start_partner(&E, "tls", NULL);
    contract_with("  url: @UPS@\n"); /* system store: the self-signed cert is unknown */
    start(NULL);
    struct e2e_resp r;
    post(&r);
    expect_error(&r, 502, "upstream_tls");
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0);
}

Test(upstream, tls_wrong_host_name)
{
    e2e_init(&E);
    e2e_start_partner(&E, "tls", NULL);
    contract_with("  url: @UPS@\n  ca: @CA@\n  server_name: wrong.example\n");
    start(NULL);
    struct e2e_resp r;
    post(&r);
    expect_error(&r, 502, "upstream_tls");
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0);
}

Test(upstream, nothing_listening)
{
    e2e_init(&E);
    E.up_port = e2e_free_port(); /* nobody there */
    contract_with("  url: @UP@\n  insecure: true\n");
    start(NULL);
    struct e2e_resp r;
    post(&r);
    expect_error(&r, 502, "upstream_unavailable");
    e2e_resp_free(&r);
}

Test(upstream, response_slower_than_the_timeout)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", "5000", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start("limits:\n  upstream_timeout: 300ms\n");
    struct e2e_resp r;
    post(&r);
    expect_error(&r, 504, "upstream_timeout");
    e2e_resp_free(&r);
}

Test(upstream, connection_reset_mid_response)
{
    e2e_init(&E);
    const char *extra[] = {"--break-response", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    start(NULL);
    struct e2e_resp r;
    post(&r);
    /* the head was already forwarded: the caller sees the stream reset */
    cr_expect_neq(r.curl_rc, 0, "curl should fail, got %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 1);
    /* the gateway keeps serving: the same provider, answering normally now
     * (restarted on its port without --break-response), gets the next
     * request on a new connection */
    int port = E.up_port;
    cr_assert_eq(e2e_stop(E.up_pid, SIGTERM, 5000), 0);
    E.up_pid = 0;
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *normal[] = {"--listen", listen, NULL};
    e2e_start_partner(&E, "h2c", normal);
    cr_assert_eq(E.up_port, port);
    struct e2e_resp r2;
    post(&r2);
    cr_expect_eq(r2.status, 200, "after a reset mid-response: %d %s", r2.status, r2.body);
    e2e_resp_free(&r2);
    cr_expect_eq(e2e_count_lines(E.record), 2);
}

/* server_name: the name sent (SNI) and verified against the certificate,
 * for an upstream given by address (the certificate names localhost). */
Test(upstream, tls_server_name_matching_the_certificate)
{
    tls_upstream_forwards("  url: @UPS@\n  ca: @CA@\n  server_name: localhost\n");
}

Test(upstream, not_http2)
{
    e2e_init(&E);
    /* a TCP server that answers HTTP/1.1 once */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    listen(fd, 8);
    E.up_port = ntohs(a.sin_port);
    contract_with("  url: @UP@\n  insecure: true\n");
    start(NULL);
    pid_t child = fork();
    if (child == 0) {
        int c = accept(fd, NULL, NULL);
        /* a retry on a new connection is refused, not left unanswered */
        close(fd);
        char buf[4096];
        ssize_t k = read(c, buf, sizeof(buf));
        (void)k;
        const char resp[] = "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        k = write(c, resp, sizeof(resp) - 1);
        close(c);
        _exit(0);
    }
    close(fd);
    struct e2e_resp r;
    post(&r);
    cr_expect(r.status == 502, "status %d", r.status);
    const char *code = e2e_header(&r, "privgate-error");
    cr_expect(code && (strcmp(code, "upstream_protocol") == 0 ||
                       strcmp(code, "upstream_unavailable") == 0),
              "code %s", code ? code : "(none)");
    e2e_resp_free(&r);
    e2e_stop(child, SIGKILL, 2000);
}

/* ------------------------------------------------- downstream TLS listener */

static void make_cert(const char *name, const char *cn, const char *signer)
{
    char key[512], crt[512], subj[128];
    snprintf(key, sizeof(key), "%s", e2e_path(&E, name));
    snprintf(key + strlen(key), sizeof(key) - strlen(key), ".key");
    snprintf(crt, sizeof(crt), "%s", e2e_path(&E, name));
    snprintf(crt + strlen(crt), sizeof(crt) - strlen(crt), ".pem");
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    if (!signer) {
        e2e_self_signed(key, crt, cn);
        return;
    }
    char csr[600], skey[1100], scrt[1100];
    snprintf(csr, sizeof(csr), "%s.csr", key);
    snprintf(skey, sizeof(skey), "%s/%s.key", E.dir, signer);
    snprintf(scrt, sizeof(scrt), "%s/%s.pem", E.dir, signer);
    char *a1[] = {
        "openssl", "req",     "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes",  "-keyout", key,    "-out",    csr,  "-subj",    subj,
        NULL};
    cr_assert_eq(e2e_run(a1, NULL, NULL, NULL), 0);
    char *a2[] = {"openssl",         "x509", "-req", "-in",   csr, "-CA", scrt, "-CAkey", skey,
                  "-CAcreateserial", "-out", crt,    "-days", "2", NULL};
    cr_assert_eq(e2e_run(a2, NULL, NULL, NULL), 0);
}

static int curl_tls(const char *extra1, const char *extra2, const char *extra3, const char *extra4,
                    char **body)
{
    char url[128], ca[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/p/v1/x", E.gw_tls_port);
    snprintf(ca, sizeof(ca), "%s", e2e_path(&E, "gw.pem"));
    char *argv[32];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = "--http2";
    argv[n++] = "--cacert";
    argv[n++] = ca;
    argv[n++] = "-w";
    argv[n++] = "\n%{http_code} %{http_version}";
    argv[n++] = "-H";
    argv[n++] = H_PURPOSE;
    argv[n++] = "-H";
    argv[n++] = H_JSON;
    argv[n++] = "-d";
    argv[n++] = "{\"a\":1,\"b\":2}";
    const char *ex[] = {extra1, extra2, extra3, extra4};
    for (int i = 0; i < 4; i++)
        if (ex[i]) argv[n++] = (char *)ex[i];
    argv[n++] = url;
    argv[n] = NULL;
    return e2e_run(argv, NULL, body, NULL);
}

Test(upstream, tls_listener_with_alpn_h2)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    contract_with("  url: @UP@\n  insecure: true\n");
    make_cert("gw", "localhost", NULL);
    char tls[1024];
    snprintf(tls, sizeof(tls), "      cert: %s/gw.pem\n      key: %s/gw.key\n", E.dir, E.dir);
    cr_assert(e2e_start_gateway_tls(&E, NULL, tls));
    char *out = NULL;
    cr_assert_eq(curl_tls(NULL, NULL, NULL, NULL, &out), 0);
    cr_expect(strstr(out, "\n200 2") != NULL, "curl said: %s", out);
    free(out);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "body"), "{\"a\":1}");
    json_decref(j);
}

Test(upstream, mtls_caller_is_the_client_certificate)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    char buf[2048];
    snprintf(buf, sizeof(buf), ONE_ROUTE, "  url: @UP@\n  insecure: true\n");
    /* only the orders service may call */
    char *at = strstr(buf, "upstream:");
    char c2[2300];
    snprintf(c2, sizeof(c2), "%.*scallers: [orders-service]\n%s", (int)(at - buf), buf, at);
    e2e_contract(&E, "p", c2);
    make_cert("gw", "localhost", NULL);
    make_cert("ca", "callers-ca", NULL);
    make_cert("orders", "orders-service", "ca");
    make_cert("other", "newsletter", "ca");
    char tls[1024];
    snprintf(tls, sizeof(tls),
             "      cert: %s/gw.pem\n      key: %s/gw.key\n      client_ca: %s/ca.pem\n", E.dir,
             E.dir, E.dir);
    cr_assert(e2e_start_gateway_tls(&E, NULL, tls));
    char cert[512], key[512];
    snprintf(cert, sizeof(cert), "%s/orders.pem", E.dir);
    snprintf(key, sizeof(key), "%s/orders.key", E.dir);
    char *out = NULL;
    cr_assert_eq(curl_tls("--cert", cert, "--key", key, &out), 0);
    cr_expect(strstr(out, "\n200 2") != NULL, "orders-service: %s", out);
    free(out);
    snprintf(cert, sizeof(cert), "%s/other.pem", E.dir);
    snprintf(key, sizeof(key), "%s/other.key", E.dir);
    cr_assert_eq(curl_tls("--cert", cert, "--key", key, &out), 0);
    cr_expect(strstr(out, "caller_not_allowed") && strstr(out, "\n403 2"), "newsletter: %s", out);
    free(out);
    /* no client certificate: the handshake fails */
    cr_expect_neq(curl_tls(NULL, NULL, NULL, NULL, &out), 0);
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 1);
}

/* h2load: the number of 2xx among |n| requests */
static int h2load_ok(const char *url, int n, int c, int m, const char *data)
{
    char ns[16], cs[16], ms[16];
    snprintf(ns, sizeof(ns), "%d", n);
    snprintf(cs, sizeof(cs), "%d", c);
    snprintf(ms, sizeof(ms), "%d", m);
    char *argv[] = {"h2load", "-N",         "10", "-n",      ns,   "-c",   cs,          "-m", ms,
                    "-d",     (char *)data, "-H", H_PURPOSE, "-H", H_JSON, (char *)url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int ok = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx", &ok);
    if (ok != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
    return ok;
}

/* Regression: a TLS peer that sends one small record per frame can put
 * hundreds of records in one socket read; all must be read at once. */
Test(upstream, tls_upstream_and_listener_with_many_concurrent_streams)
{
    e2e_init(&E);
    e2e_start_partner(&E, "tls", NULL);
    contract_with("  url: @UPS@\n  ca: @CA@\n");
    make_cert("gw", "localhost", NULL);
    char tls[1024];
    snprintf(tls, sizeof(tls), "      cert: %s/gw.pem\n      key: %s/gw.key\n", E.dir, E.dir);
    cr_assert(e2e_start_gateway_tls(&E, NULL, tls));
    char data[512];
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "req.json"));
    e2e_write(data, "{\"a\":1,\"b\":2}");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x", E.gw_port);
    cr_expect_eq(h2load_ok(url, 3000, 2, 150, data), 3000);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/p/v1/x", E.gw_tls_port);
    cr_expect_eq(h2load_ok(url, 3000, 2, 150, data), 3000);
}

/* RFC 9113 8.7: a stream the provider refused (REFUSED_STREAM) was not
 * processed; the gateway sends it again, once. */
Test(upstream, refused_streams_are_retried_once)
{
    e2e_init(&E);
    const char *extra[] = {"--refuse-every", "4", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    cr_assert(e2e_start_gateway(&E, NULL));
    char data[512];
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "req.json"));
    e2e_write(data, "{\"a\":1,\"b\":2}");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x", E.gw_port);
    /* one at a time: the retry of the 4th request is the 5th the provider
     * sees, which it answers */
    cr_expect_eq(h2load_ok(url, 100, 1, 1, data), 100);
    cr_expect_eq(e2e_count_lines(E.record), 100);
}

/* A graceful GOAWAY from the provider: the pool opens a new connection. */
Test(upstream, provider_goaway_moves_to_a_new_connection)
{
    e2e_init(&E);
    const char *extra[] = {"--goaway-after", "100", NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    cr_assert(e2e_start_gateway(&E, NULL));
    char data[512];
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "req.json"));
    e2e_write(data, "{\"a\":1,\"b\":2}");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x", E.gw_port);
    /* at most 20 in flight: what a GOAWAY refuses is retried among the
     * first 100 streams of the next connection */
    cr_expect_eq(h2load_ok(url, 1000, 1, 20, data), 1000);
}

/* Distinct "conn=N" values in the partner's --log-streams file. */
static int logged_connections(const char *path)
{
    char *p = e2e_read(path, NULL);
    bool seen[1024] = {false};
    int n = 0;
    for (char *q = p; q && (q = strstr(q, "conn=")) != NULL; q++) {
        unsigned c = (unsigned)strtoul(q + 5, NULL, 10);
        if (c < 1024 && !seen[c]) {
            seen[c] = true;
            n++;
        }
    }
    free(p);
    return n;
}

/* A provider allowing fewer concurrent streams than the first burst: the
 * gateway sends nothing before the provider's SETTINGS, so the streams
 * that do not fit go to more connections instead of being refused (a
 * refused stream is retried only once: it used to end as a 502). */
Test(upstream, provider_with_10_streams_gets_new_connections)
{
    e2e_init(&E);
    char log[512];
    snprintf(log, sizeof(log), "%s", e2e_path(&E, "streams.log"));
    /* answers take a while: streams stay open, as at a real provider */
    const char *extra[] = {"--max-streams", "10", "--delay-ms", "20", "--log-streams", log, NULL};
    e2e_start_partner(&E, "h2c", extra);
    contract_with("  url: @UP@\n  insecure: true\n");
    cr_assert(e2e_start_gateway(&E, NULL));
    char data[512];
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "req.json"));
    e2e_write(data, "{\"a\":1,\"b\":2}");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/x", E.gw_port);
    cr_expect_eq(h2load_ok(url, 1000, 1, 100, data), 1000);
    cr_expect_eq(e2e_count_lines(E.record), 1000);
    /* each request opened exactly one stream (nothing was refused and
     * sent again), on more than one connection */
    cr_expect_eq(e2e_count_lines(log), 1000);
    int conns = logged_connections(log);
    cr_expect_gt(conns, 1, "%d upstream connection(s) for 100 streams at a time", conns);
}

/* A certificate signed by |signer| whose subject is |subj| (possibly
 * without CN) and whose extensions are |ext| (an openssl extfile line). */
static void make_cert_ext(const char *name, const char *subj, const char *ext, const char *signer)
{
    char key[512], crt[512], csr[600], extf[600], skey[1100], scrt[1100];
    snprintf(key, sizeof(key), "%s/%s.key", E.dir, name);
    snprintf(crt, sizeof(crt), "%s/%s.pem", E.dir, name);
    snprintf(csr, sizeof(csr), "%s.csr", key);
    snprintf(extf, sizeof(extf), "%s.ext", key);
    snprintf(skey, sizeof(skey), "%s/%s.key", E.dir, signer);
    snprintf(scrt, sizeof(scrt), "%s/%s.pem", E.dir, signer);
    e2e_write(extf, "%s\n", ext);
    char *a1[] = {
        "openssl", "req",     "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes",  "-keyout", key,    "-out",    csr,  "-subj",    (char *)subj,
        NULL};
    cr_assert_eq(e2e_run(a1, NULL, NULL, NULL), 0, "openssl req %s", subj);
    char *a2[] = {"openssl",         "x509", "-req", "-in",   csr, "-CA",      scrt, "-CAkey", skey,
                  "-CAcreateserial", "-out", crt,    "-days", "2", "-extfile", extf, NULL};
    cr_assert_eq(e2e_run(a2, NULL, NULL, NULL), 0, "openssl x509 %s", subj);
}

/* curl_tls with any number of extra arguments (NULL-terminated). */
static int curl_tls_v(const char *const *extra, char **body)
{
    char url[128], ca[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/p/v1/x", E.gw_tls_port);
    snprintf(ca, sizeof(ca), "%s", e2e_path(&E, "gw.pem"));
    char *argv[40];
    int n = 0;
    const char *fixed[] = {"curl",
                           "-sS",
                           "--http2",
                           "--cacert",
                           ca,
                           "-w",
                           "\n%{http_code} %{http_version}",
                           "-H",
                           H_PURPOSE,
                           "-H",
                           H_JSON,
                           "-d",
                           "{\"a\":1,\"b\":2}"};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        argv[n++] = (char *)fixed[i];
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = (char *)extra[i];
    argv[n++] = url;
    argv[n] = NULL;
    return e2e_run(argv, NULL, body, NULL);
}

/* mTLS (issue 4): a certificate from another CA is refused in the
 * handshake; without a subject CN the caller is the first DNS SAN; a
 * privgate-caller header never stands in for the certificate, not even
 * when the certificate names nobody. */
Test(upstream, mtls_other_ca_and_dns_san_caller)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    char buf[2048];
    snprintf(buf, sizeof(buf), ONE_ROUTE, "  url: @UP@\n  insecure: true\n");
    char *at = strstr(buf, "upstream:");
    char c2[2300];
    snprintf(c2, sizeof(c2), "%.*scallers: [orders-service]\n%s", (int)(at - buf), buf, at);
    e2e_contract(&E, "p", c2);
    make_cert("gw", "localhost", NULL);
    make_cert("ca", "callers-ca", NULL);
    make_cert("ca2", "callers-ca", NULL); /* same name, another key: another CA */
    /* the right CN, the wrong CA */
    make_cert("stranger", "orders-service", "ca2");
    /* no CN; DNS SANs, the first one decides */
    make_cert_ext("san-orders", "/O=Example/OU=orders",
                  "subjectAltName=DNS:orders-service,DNS:newsletter", "ca");
    make_cert_ext("san-news", "/O=Example/OU=news",
                  "subjectAltName=IP:127.0.0.1,DNS:newsletter,DNS:orders-service", "ca");
    /* neither CN nor DNS SAN: names nobody (the header must not stand in) */
    make_cert_ext("anon", "/O=Example/OU=anon", "subjectAltName=IP:127.0.0.1", "ca");
    char tls[1024];
    snprintf(tls, sizeof(tls),
             "      cert: %s/gw.pem\n      key: %s/gw.key\n      client_ca: %s/ca.pem\n", E.dir,
             E.dir, E.dir);
    cr_assert(e2e_start_gateway_tls(&E, NULL, tls));
    char cert[512], key[512];
    char *out = NULL;

    /* another CA: the handshake fails, nothing reaches the provider */
    snprintf(cert, sizeof(cert), "%s/stranger.pem", E.dir);
    snprintf(key, sizeof(key), "%s/stranger.key", E.dir);
    const char *x1[] = {"--cert", cert, "--key", key, "-H", H_CALLER, NULL};
    cr_expect_neq(curl_tls_v(x1, &out), 0, "a certificate from another CA: %s", out);
    cr_expect(strstr(out, "\n200") == NULL && strstr(out, "\n403") == NULL, "%s", out);
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 0);

    /* no CN, first DNS SAN orders-service: allowed */
    snprintf(cert, sizeof(cert), "%s/san-orders.pem", E.dir);
    snprintf(key, sizeof(key), "%s/san-orders.key", E.dir);
    const char *x2[] = {"--cert", cert, "--key", key, NULL};
    cr_assert_eq(curl_tls_v(x2, &out), 0);
    cr_expect(strstr(out, "\n200 2") != NULL, "DNS SAN orders-service: %s", out);
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 1);

    /* first DNS SAN newsletter (orders-service second, an IP SAN before
     * them): refused, also with a privgate-caller header claiming otherwise */
    snprintf(cert, sizeof(cert), "%s/san-news.pem", E.dir);
    snprintf(key, sizeof(key), "%s/san-news.key", E.dir);
    const char *x3[] = {"--cert", cert, "--key", key, "-H", H_CALLER, NULL};
    cr_assert_eq(curl_tls_v(x3, &out), 0);
    cr_expect(strstr(out, "caller_not_allowed") && strstr(out, "\n403 2"), "DNS SAN newsletter: %s",
              out);
    free(out);
    /* the same over HTTP/1.1 (ALPN http/1.1) */
    const char *x4[] = {"--cert", cert, "--key", key, "-H", H_CALLER, "--http1.1", NULL};
    cr_assert_eq(curl_tls_v(x4, &out), 0);
    cr_expect(strstr(out, "caller_not_allowed") && strstr(out, "\n403 1.1"),
              "DNS SAN newsletter over HTTP/1.1: %s", out);
    free(out);
    /* no name in the certificate: the caller header is still ignored */
    snprintf(cert, sizeof(cert), "%s/anon.pem", E.dir);
    snprintf(key, sizeof(key), "%s/anon.key", E.dir);
    const char *x5[] = {"--cert", cert, "--key", key, "-H", H_CALLER, NULL};
    cr_assert_eq(curl_tls_v(x5, &out), 0);
    cr_expect(strstr(out, "caller_not_allowed") && strstr(out, "\n403 2"),
              "certificate without a name: %s", out);
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 1);
}
