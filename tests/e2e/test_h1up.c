/*
 * End-to-end: HTTP/1.1 upstreams (proxy/h1up.c). The provider is nginx
 * from Debian (scripts/setup-debian installs it), started by the test on
 * free ports with a config in the test dir: a front server that keeps
 * every request body in a file (client_body_in_file_only) and logs each
 * request as one JSON line, and behind it (proxy_pass) a back server that
 * answers — a request the back server logs is one the provider processed.
 * TLS is nginx without http2, so ALPN selects http/1.1. Failure shapes
 * nginx cannot produce (garbage, silence, a cut response, a body delimited
 * by the close, a keep-alive connection closed under a request) come from
 * small raw servers forked by the test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static struct {
    pid_t pid;
    int port, tls_port, back_port;
    char dir[400];
    char front[450], back[450], cert[450];
} N;

static void teardown(void)
{
    if (N.pid > 0) e2e_stop(N.pid, SIGQUIT, 5000);
    N.pid = 0;
    e2e_fini(&E);
}

TestSuite(h1up, .fini = teardown);

static const char *nginx_bin(void)
{
    static const char *const c[] = {"/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"};
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        if (access(c[i], X_OK) == 0) return c[i];
    return NULL;
}

static void make_cert(void)
{
    char key[500];
    snprintf(N.cert, sizeof(N.cert), "%s/ngx.pem", E.dir);
    snprintf(key, sizeof(key), "%s/ngx.key", E.dir);
    e2e_self_signed(key, N.cert, "localhost");
}

/* nginx as an HTTP/1.1-only provider; |tls| adds a TLS listener. */
static void nginx_start(bool tls)
{
    const char *bin = nginx_bin();
    if (!bin) cr_skip_test("nginx is not installed (scripts/setup-debian installs it)");
    snprintf(N.dir, sizeof(N.dir), "%s/nginx", E.dir);
    mkdir(N.dir, 0700);
    char p[600];
    snprintf(p, sizeof(p), "%s/www", N.dir);
    mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/www/v1", N.dir);
    mkdir(p, 0700);
    /* a static file served chunked (sub_filter drops its length) */
    snprintf(p, sizeof(p), "%s/www/v1/big", N.dir);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "line %05d: abcdefghij\n", i);
    fclose(f);
    /* 8 MiB with a content-length, for a slow caller */
    snprintf(p, sizeof(p), "%s/www/v1/huge", N.dir);
    f = fopen(p, "w");
    cr_assert(f);
    for (unsigned i = 0; i < (8u << 20) / 16u; i++)
        fprintf(f, "%015u\n", i);
    fclose(f);
    snprintf(N.front, sizeof(N.front), "%s/front.log", N.dir);
    snprintf(N.back, sizeof(N.back), "%s/back.log", N.dir);
    N.port = e2e_free_port();
    N.back_port = e2e_free_port();
    char tls_listen[1400] = "";
    if (tls) {
        make_cert();
        N.tls_port = e2e_free_port();
        snprintf(tls_listen, sizeof(tls_listen),
                 "    listen 127.0.0.1:%d ssl;\n"
                 "    ssl_certificate %s;\n"
                 "    ssl_certificate_key %s/ngx.key;\n",
                 N.tls_port, N.cert, E.dir);
    }
    char conf[600];
    snprintf(conf, sizeof(conf), "%s/nginx.conf", N.dir);
    const char *d = N.dir;
    e2e_write(
        conf,
        "daemon off;\n"
        "master_process off;\n"
        "worker_processes 1;\n"
        "pid %s/nginx.pid;\n"
        "error_log %s/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "  access_log off;\n"
        "  client_max_body_size 64m;\n"
        "  client_body_temp_path %s/body;\n"
        "  proxy_temp_path %s/proxy;\n"
        "  fastcgi_temp_path %s/fastcgi;\n"
        "  uwsgi_temp_path %s/uwsgi;\n"
        "  scgi_temp_path %s/scgi;\n"
        "  log_format rec escape=json '{\"method\":\"$request_method\",\"uri\":\"$request_uri\","
        "\"proto\":\"$server_protocol\",\"host\":\"$http_host\",\"cl\":\"$http_content_length\","
        "\"te\":\"$http_transfer_encoding\",\"auth\":\"$http_authorization\","
        "\"ct\":\"$content_type\",\"cookie\":\"$http_cookie\",\"purpose\":\"$http_privgate_"
        "purpose\","
        "\"idem\":\"$http_idempotency_key\",\"conn_hdr\":\"$http_connection\","
        "\"file\":\"$request_body_file\",\"conn\":\"$connection\",\"reqs\":\"$connection_"
        "requests\","
        "\"tls\":\"$ssl_protocol\",\"alpn\":\"$ssl_alpn_protocol\",\"status\":\"$status\"}';\n"
        "  server {\n"
        "    listen 127.0.0.1:%d;\n"
        "%s"
        "    access_log %s/front.log rec;\n"
        "    client_body_in_file_only on;\n"
        "    keepalive_requests 10000;\n"
        "    location / {\n"
        "      proxy_pass http://127.0.0.1:%d;\n"
        "      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n"
        "    }\n"
        "    location = /v1/close {\n"
        "      keepalive_timeout 0;\n"
        "      proxy_pass http://127.0.0.1:%d;\n"
        "    }\n"
        "    location = /v1/huge {\n"
        "      root %s/www;\n"
        "    }\n"
        "    location = /v1/big {\n"
        "      root %s/www;\n"
        "      sub_filter 'abc' 'ABC';\n"
        "      sub_filter_once off;\n"
        "      sub_filter_types *;\n"
        "    }\n"
        "  }\n"
        "  server {\n"
        "    listen 127.0.0.1:%d;\n"
        "    access_log %s/back.log rec;\n"
        "    location / {\n"
        "      add_header x-test ok;\n"
        "      return 200 \"ok $request_method $uri\\n\";\n"
        "    }\n"
        "  }\n"
        "}\n",
        d, d, d, d, d, d, d, N.port, tls_listen, d, N.back_port, N.back_port, d, d, N.back_port, d);
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s/", N.dir);
    char *argv[] = {(char *)bin, "-p", prefix, "-c", conf, NULL};
    char err[600];
    snprintf(err, sizeof(err), "%s/nginx.err", N.dir);
    N.pid = e2e_spawn(argv, NULL, err);
    bool up = e2e_wait_port(N.port, 10000) && e2e_wait_port(N.back_port, 10000) &&
              (!tls || e2e_wait_port(N.tls_port, 10000));
    if (!up) {
        char *log = e2e_read(err, NULL);
        cr_assert_fail("nginx did not start: %s", log ? log : "");
    }
}

static const char CONTRACT[] = "contract: 1\n"
                               "provider: %s\n"
                               "name: HTTP/1.1 provider\n"
                               "purposes: [orders]\n"
                               "upstream:\n"
                               "  url: %s\n"
                               "%s"
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
                               "  - method: PUT\n"
                               "    path: /v1/blob/*\n"
                               "    body: opaque\n"
                               "  - method: GET\n"
                               "    path: /v1/ping\n"
                               "  - method: HEAD\n"
                               "    path: /v1/ping\n"
                               "  - method: GET\n"
                               "    path: /v1/big\n"
                               "  - method: GET\n"
                               "    path: /v1/close\n"
                               "  - method: GET\n"
                               "    path: /v1/huge\n";

/* contracts/<provider>.yaml for the cleartext (protocol: http/1.1) or the
 * TLS listener; |extra| more `upstream:` lines */
static void contract(const char *provider, bool tls, int port, const char *extra)
{
    char url[128], up[1024], buf[4096];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d", tls ? "https" : "http", port);
    if (tls)
        snprintf(up, sizeof(up), "  ca: %s\n%s", N.cert, extra ? extra : "");
    else
        snprintf(up, sizeof(up), "  insecure: true\n%s", extra ? extra : "  protocol: http/1.1\n");
    snprintf(buf, sizeof(buf), CONTRACT, provider, url, up);
    e2e_contract(&E, provider, buf);
}

static void start_gateway(const char *extra)
{
    if (!e2e_start_gateway(&E, extra)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

/* Waits (bounded) until |path| has |n| lines: nginx logs a request after
 * its response left. */
static size_t wait_lines(const char *path, size_t n)
{
    size_t k = 0;
    for (int i = 0; i < 1000; i++) {
        k = e2e_count_lines(path);
        if (k >= n) return k;
        usleep(5000);
    }
    return k;
}

/* The i-th JSON line of an nginx log. */
static json_t *logline(const char *path, size_t i)
{
    char *p = e2e_read(path, NULL);
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

/* What `privgate filter` forwards for the orders route. */
static char *filter_output(const char *provider, const char *path, const char *body_file)
{
    char c[600];
    snprintf(c, sizeof(c), "%s/contracts/%s.yaml", E.dir, provider);
    char *argv[] = {E.privgate,        "filter",    "-C",     c,    "-p",
                    (char *)path,      "--purpose", "orders", "-T", "application/json",
                    (char *)body_file, NULL};
    char *out = NULL;
    cr_assert_eq(e2e_run(argv, NULL, &out, NULL), 0, "privgate filter");
    return out;
}

/* The body nginx kept for the request of log line |j|. */
static char *kept_body(json_t *j, size_t *len)
{
    const char *f = jstr(j, "file");
    cr_assert(f && *f, "no request body file in the log line");
    char *b = e2e_read(f, len);
    cr_assert(b, "cannot read %s", f);
    return b;
}

#define H_IDEM "idempotency-key: k-1"

Test(h1up, cleartext_request_filtered_as_privgate_filter_says)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    const char *body = "{\"order_id\":7,\"customer_id\":\"C-1001\",\"email\":\"ann@example.com\","
                       "\"items\":[{\"sku\":\"A-1\",\"price\":3}]}";
    const char *h[] = {H_PURPOSE, H_JSON, H_IDEM, "cookie: sid=1", "x-secret: s", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/p/v1/orders?dry_run=1&utm_source=x", h, body, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    cr_expect_str_eq(r.body, "ok POST /v1/orders\n");
    /* response head: the provider's fields, hop-by-hop ones removed */
    cr_expect(e2e_header(&r, "x-test") && strcmp(e2e_header(&r, "x-test"), "ok") == 0);
    const char *rid = e2e_header(&r, "privgate-request-id");
    cr_expect(rid && strlen(rid) == 26);
    cr_expect_null(e2e_header(&r, "connection"));
    cr_expect_null(e2e_header(&r, "keep-alive"));
    e2e_resp_free(&r);

    cr_assert_eq(wait_lines(N.front, 1), 1);
    json_t *j = logline(N.front, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "method"), "POST");
    cr_expect_str_eq(jstr(j, "uri"), "/v1/orders?dry_run=1");
    cr_expect_str_eq(jstr(j, "proto"), "HTTP/1.1");
    char host[64];
    snprintf(host, sizeof(host), "127.0.0.1:%d", N.port);
    cr_expect_str_eq(jstr(j, "host"), host);
    cr_expect_str_eq(jstr(j, "auth"), "Bearer test-token-NOT-A-SECRET");
    cr_expect_str_eq(jstr(j, "ct"), "application/json");
    cr_expect_str_eq(jstr(j, "idem"), "k-1");
    cr_expect_str_eq(jstr(j, "cookie"), "");
    cr_expect_str_eq(jstr(j, "purpose"), "");
    cr_expect_str_eq(jstr(j, "te"), "");
    const char *in = e2e_path(&E, "req.json");
    e2e_write(in, "%s", body);
    char *want = filter_output("p", "/v1/orders?dry_run=1&utm_source=x", in);
    size_t len;
    char *got = kept_body(j, &len);
    cr_expect_str_eq(got, want);
    char cl[24];
    snprintf(cl, sizeof(cl), "%zu", strlen(want));
    cr_expect_str_eq(jstr(j, "cl"), cl, "a small body is sent with its length");
    cr_expect(strstr(got, "ann@example.com") == NULL && strstr(got, "C-1001") == NULL);
    free(got);
    free(want);
    json_decref(j);
    /* the back server processed it */
    cr_expect_eq(wait_lines(N.back, 1), 1);
}

/* |n| requests one after the other on one HTTP/2 connection (so to one
 * worker), POST of |data| or GET; returns how many got a 2xx. (h2load:
 * curl 7.88 cannot reuse a prior-knowledge connection for a second URL.) */
static int seq(const char *path, int n, const char *data)
{
    char url[256], ns[16], dpath[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", E.gw_port, path);
    snprintf(ns, sizeof(ns), "%d", n);
    char *argv[32];
    int k = 0;
    argv[k++] = "h2load";
    argv[k++] = "-n";
    argv[k++] = ns;
    argv[k++] = "-c";
    argv[k++] = "1";
    argv[k++] = "-m";
    argv[k++] = "1";
    argv[k++] = "-H";
    argv[k++] = H_PURPOSE;
    argv[k++] = "-H";
    argv[k++] = H_JSON;
    if (data) {
        snprintf(dpath, sizeof(dpath), "%s", e2e_path(&E, "seq.json"));
        e2e_write(dpath, "%s", data);
        argv[k++] = "-d";
        argv[k++] = dpath;
    }
    argv[k++] = url;
    argv[k] = NULL;
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int ok = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx", &ok);
    if (ok != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
    return ok;
}

Test(h1up, keep_alive_connection_reused)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    cr_expect_eq(seq("/p/v1/orders", 6, "{\"order_id\":1,\"x\":2}"), 6);
    cr_expect_eq(seq("/p/v1/ping", 2, NULL), 2);
    cr_assert_eq(wait_lines(N.front, 8), 8);
    /* each batch is one downstream connection, so one worker and one
     * upstream connection: its requests are that connection's 1st, 2nd... */
    json_t *first = logline(N.front, 0), *second = logline(N.front, 6);
    long base2 = strtol(jstr(second, "reqs"), NULL, 10);
    for (size_t i = 0; i < 8; i++) {
        json_t *j = logline(N.front, i);
        cr_assert(j);
        json_t *ref = i < 6 ? first : second;
        cr_expect_str_eq(jstr(j, "conn"), jstr(ref, "conn"), "request %zu", i);
        long want = i < 6 ? (long)i + 1 : base2 + (long)i - 6;
        cr_expect_eq(strtol(jstr(j, "reqs"), NULL, 10), want, "request %zu", i);
        if (i < 6) {
            size_t len;
            char *b = kept_body(j, &len);
            cr_expect_str_eq(b, "{\"order_id\":1}");
            free(b);
        } else {
            cr_expect_str_eq(jstr(j, "method"), "GET");
            cr_expect_str_eq(jstr(j, "cl"), "", "no body, no length");
        }
        json_decref(j);
    }
    json_decref(first);
    json_decref(second);
}

Test(h1up, connection_close_is_not_reused)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    cr_expect_eq(seq("/p/v1/close", 3, NULL), 3);
    cr_assert_eq(wait_lines(N.front, 3), 3);
    json_t *a = logline(N.front, 0), *b = logline(N.front, 1), *c = logline(N.front, 2);
    cr_expect_str_neq(jstr(a, "conn"), jstr(b, "conn"));
    cr_expect_str_neq(jstr(b, "conn"), jstr(c, "conn"));
    cr_expect_str_eq(jstr(c, "reqs"), "1");
    json_decref(a);
    json_decref(b);
    json_decref(c);
}

/* A body larger than PX_H1_CL_MAX streams chunked; what nginx keeps is
 * what `privgate filter` says, and opaque bodies arrive byte for byte. */
Test(h1up, large_bodies_stream_chunked)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    const char *in = e2e_path(&E, "big.json");
    char inpath[512];
    snprintf(inpath, sizeof(inpath), "%s", in);
    FILE *f = fopen(inpath, "w");
    cr_assert(f);
    fputs("{\"order_id\":7,\"customer_id\":42,\"items\":[", f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%s{\"sku\":\"SKU-%06d\",\"email\":\"user%d@example.com\"}", i ? "," : "", i, i);
    fputs("],\"email\":\"ann@example.com\"}", f);
    fclose(f);
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/p/v1/orders", h, NULL, inpath, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    /* 1 MiB opaque */
    const char *bin = e2e_path(&E, "blob.bin");
    char binpath[512];
    snprintf(binpath, sizeof(binpath), "%s", bin);
    f = fopen(binpath, "w");
    cr_assert(f);
    for (unsigned i = 0; i < (1u << 20); i++)
        fputc((int)((i * 7919u) & 0xffu), f);
    fclose(f);
    const char *h2[] = {H_PURPOSE, "content-type: application/octet-stream", NULL};
    e2e_curl(&E, "PUT", "/p/v1/blob/a/b", h2, NULL, binpath, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);

    cr_assert_eq(wait_lines(N.front, 2), 2);
    json_t *j = logline(N.front, 0);
    cr_expect_str_eq(jstr(j, "te"), "chunked");
    cr_expect_str_eq(jstr(j, "cl"), "");
    char *want = filter_output("p", "/v1/orders", inpath);
    size_t len;
    char *got = kept_body(j, &len);
    cr_expect(len == strlen(want) && memcmp(got, want, len) == 0, "kept %zu bytes, want %zu", len,
              strlen(want));
    cr_expect(len > 200000);
    free(got);
    free(want);
    json_decref(j);
    j = logline(N.front, 1);
    cr_expect_str_eq(jstr(j, "uri"), "/v1/blob/a/b");
    cr_expect_str_eq(jstr(j, "te"), "chunked");
    size_t blen, wlen;
    got = kept_body(j, &blen);
    want = e2e_read(binpath, &wlen);
    cr_expect(blen == wlen && memcmp(got, want, wlen) == 0, "opaque body differs");
    free(got);
    free(want);
    json_decref(j);
}

/* HTTP/1.1 both ways: a chunked upload from an HTTP/1.1 caller streams
 * to the HTTP/1.1 provider (credit flows back through the caller's
 * protocol), and a large response comes back. */
Test(h1up, http11_caller_to_http11_provider)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    char bin[512], url[128];
    snprintf(bin, sizeof(bin), "%s", e2e_path(&E, "blob.bin"));
    FILE *f = fopen(bin, "w");
    cr_assert(f);
    for (unsigned i = 0; i < (2u << 20); i++)
        fputc((int)((i * 31u) & 0xffu), f);
    fclose(f);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/blob/up", E.gw_port);
    char *argv[] = {"curl",
                    "-sS",
                    "--http1.1",
                    "-H",
                    H_PURPOSE,
                    "-H",
                    "content-type: application/octet-stream",
                    "-H",
                    "transfer-encoding: chunked",
                    "-T",
                    bin,
                    "-w",
                    " %{http_code}",
                    url,
                    NULL};
    char *out = NULL;
    cr_expect_eq(e2e_run(argv, NULL, &out, NULL), 0);
    cr_expect_str_eq(out, "ok PUT /v1/blob/up\n 200");
    free(out);
    cr_assert_eq(wait_lines(N.front, 1), 1);
    json_t *j = logline(N.front, 0);
    size_t a, b;
    char *got = kept_body(j, &a), *want = e2e_read(bin, &b);
    cr_expect(a == b && memcmp(got, want, b) == 0, "kept %zu bytes, want %zu", a, b);
    free(got);
    free(want);
    json_decref(j);
    char res[512];
    snprintf(res, sizeof(res), "%s", e2e_path(&E, "huge.out"));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/huge", E.gw_port);
    char *argv2[] = {"curl", "-sS", "--http1.1",    "-H", H_PURPOSE, "-o",
                     res,    "-w",  "%{http_code}", url,  NULL};
    cr_expect_eq(e2e_run(argv2, NULL, &out, NULL), 0);
    cr_expect_str_eq(out, "200");
    free(out);
    char exp[600];
    snprintf(exp, sizeof(exp), "%s/www/v1/huge", N.dir);
    got = e2e_read(res, &a);
    want = e2e_read(exp, &b);
    cr_expect(got && want && a == b && memcmp(got, want, b) == 0, "got %zu bytes, want %zu", a, b);
    free(got);
    free(want);
}

/* SPEC 5: a body invalid at its end, after filtered bytes left, never
 * reaches the provider complete: nginx sees a cut chunked body and never
 * passes it to the back server. */
Test(h1up, body_invalid_at_its_end_is_never_complete_upstream)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    const char *in = e2e_path(&E, "bad.json");
    char inpath[512];
    snprintf(inpath, sizeof(inpath), "%s", in);
    FILE *f = fopen(inpath, "w");
    cr_assert(f);
    fputs("{\"order_id\":7,\"items\":[", f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%s{\"sku\":\"SKU-%06d\"}", i ? "," : "", i);
    fputs("]} trailing garbage", f);
    fclose(f);
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/p/v1/orders", h, NULL, inpath, &r);
    expect_error(&r, 400, "invalid_body");
    e2e_resp_free(&r);
    /* then a valid one: the only request the back server ever sees */
    e2e_curl(&E, "POST", "/p/v1/orders", h, "{\"order_id\":8}", NULL, &r);
    cr_expect_eq(r.status, 200);
    e2e_resp_free(&r);
    cr_assert_eq(wait_lines(N.back, 1), 1);
    cr_expect_eq(e2e_count_lines(N.back), 1);
    json_t *j = logline(N.back, 0);
    cr_expect_str_eq(jstr(j, "cl"), "14");
    json_decref(j);
}

Test(h1up, chunked_and_head_responses)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    const char *h[] = {H_PURPOSE, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "GET", "/p/v1/big", h, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d", r.status);
    cr_expect_eq(r.len, 20000u * 23u);
    cr_expect(strncmp(r.body, "line 00000: ABCdefghij\nline 00001: ABCdefghij\n", 46) == 0);
    cr_expect(r.len >= 23 && strncmp(r.body + r.len - 23, "line 19999: ABCdefghij\n", 23) == 0);
    cr_expect_null(e2e_header(&r, "transfer-encoding"));
    e2e_resp_free(&r);
    /* HEAD: a content-length and no body */
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/ping", E.gw_port);
    char *argv[] = {"curl", "-sS", "--http2-prior-knowledge", "-I", "-H", H_PURPOSE, url, NULL};
    char *out = NULL;
    cr_expect_eq(e2e_run(argv, NULL, &out, NULL), 0);
    cr_expect(strstr(out, "HTTP/2 200") != NULL, "%s", out);
    cr_expect(strstr(out, "content-length: 17") != NULL, "%s", out);
    free(out);
    /* and the connection is still good */
    e2e_curl(&E, "GET", "/p/v1/ping", h, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "ok GET /v1/ping\n");
    e2e_resp_free(&r);
}

/* A caller slower than the provider: the gateway stops reading the
 * provider while the caller has PX_PIPE_HIGH bytes to take, and resumes;
 * every byte arrives, in order. */
Test(h1up, slow_caller_backpressure)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    char url[128], out[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/huge", E.gw_port);
    snprintf(out, sizeof(out), "%s", e2e_path(&E, "huge.out"));
    char *argv[] = {"curl",
                    "-sS",
                    "--http2-prior-knowledge",
                    "--limit-rate",
                    "8M",
                    "-H",
                    H_PURPOSE,
                    "-o",
                    out,
                    "-w",
                    "%{http_code}",
                    url,
                    NULL};
    char *code = NULL;
    cr_expect_eq(e2e_run(argv, NULL, &code, NULL), 0);
    cr_expect_str_eq(code, "200");
    free(code);
    char want[600];
    snprintf(want, sizeof(want), "%s/www/v1/huge", N.dir);
    size_t a, b;
    char *got = e2e_read(out, &a), *exp = e2e_read(want, &b);
    cr_assert(got && exp);
    cr_expect(a == b && memcmp(got, exp, a) == 0, "got %zu bytes, want %zu", a, b);
    free(got);
    free(exp);
}

/* More concurrent requests than connections: the pool opens up to
 * PX_H1_MAX_CONNS per worker and queues the rest. */
Test(h1up, concurrent_requests_queue_on_a_bounded_pool)
{
    e2e_init(&E);
    nginx_start(false);
    contract("p", false, N.port, NULL);
    start_gateway(NULL);
    const char *data = e2e_path(&E, "req.json");
    char dpath[512];
    snprintf(dpath, sizeof(dpath), "%s", data);
    e2e_write(dpath, "{\"order_id\":1,\"email\":\"x@example.com\"}");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/orders", E.gw_port);
    char *argv[] = {"h2load", "-n", "400",     "-c", "2",    "-m", "60", "-d",
                    dpath,    "-H", H_PURPOSE, "-H", H_JSON, url,  NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int ok = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx", &ok);
    cr_expect_eq(ok, 400, "h2load: %s", out ? out : "");
    free(out);
    cr_assert_eq(wait_lines(N.front, 400), 400);
    /* distinct connections: at most 2 workers x PX_H1_MAX_CONNS (32) */
    char *log = e2e_read(N.front, NULL);
    char seen[400][16];
    size_t nseen = 0;
    for (char *line = log; line && *line;) {
        json_error_t err;
        json_t *j = json_loadb(line, strcspn(line, "\n"), 0, &err);
        cr_assert(j);
        const char *c = jstr(j, "conn");
        bool dup = false;
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = strcmp(seen[i], c) == 0;
        if (!dup && nseen < 400) snprintf(seen[nseen++], 16, "%s", c);
        json_decref(j);
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(log);
    cr_expect(nseen >= 1 && nseen <= 64, "%zu connections", nseen);
}

Test(h1up, tls_provider_selects_http11_by_alpn)
{
    e2e_init(&E);
    nginx_start(true);
    contract("p", true, N.tls_port, NULL);                     /* auto */
    contract("q", true, N.tls_port, "  protocol: http/1.1\n"); /* forced */
    contract("h", true, N.tls_port, "  protocol: h2\n");       /* refused */
    start_gateway(NULL);
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    const char *body = "{\"order_id\":7,\"customer_id\":\"C-1\",\"email\":\"a@b.c\"}";
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/p/v1/orders", h, body, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    cr_expect_str_eq(r.body, "ok POST /v1/orders\n");
    e2e_resp_free(&r);
    e2e_curl(&E, "POST", "/q/v1/orders", h, body, NULL, &r);
    cr_expect_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    e2e_curl(&E, "POST", "/h/v1/orders", h, body, NULL, &r);
    expect_error(&r, 502, "upstream_protocol");
    e2e_resp_free(&r);
    cr_assert_eq(wait_lines(N.front, 2), 2);
    /* then many at once on a fresh gateway: requests that wait for the
     * first handshake spread over new connections once it says http/1.1 */
    e2e_stop(E.gw_pid, SIGTERM, 10000);
    E.gw_pid = 0;
    start_gateway(NULL);
    const char *data = e2e_path(&E, "conc.json");
    char dpath[512];
    snprintf(dpath, sizeof(dpath), "%s", data);
    e2e_write(dpath, "%s", body);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/orders", E.gw_port);
    char *argv[] = {"h2load", "-n", "300",     "-c", "2",    "-m", "50", "-d",
                    dpath,    "-H", H_PURPOSE, "-H", H_JSON, url,  NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int ok = -1;
    const char *st = out ? strstr(out, "status codes: ") : NULL;
    if (st) sscanf(st, "status codes: %d 2xx", &ok);
    cr_expect_eq(ok, 300, "h2load: %s", out ? out : "");
    free(out);
    cr_expect_eq(wait_lines(N.front, 302), 302);
    for (size_t i = 0; i < 2; i++) {
        json_t *j = logline(N.front, i);
        cr_expect_str_eq(jstr(j, "alpn"), "http/1.1");
        cr_expect(jstr(j, "tls") && strncmp(jstr(j, "tls"), "TLSv1.", 6) == 0);
        char host[64];
        snprintf(host, sizeof(host), "127.0.0.1:%d", N.tls_port);
        cr_expect_str_eq(jstr(j, "host"), host);
        const char *in = e2e_path(&E, "req.json");
        e2e_write(in, "%s", body);
        char *want = filter_output(i == 0 ? "p" : "q", "/v1/orders", in);
        size_t len;
        char *got = kept_body(j, &len);
        cr_expect_str_eq(got, want);
        free(got);
        free(want);
        json_decref(j);
    }
}

/* ------------------------------------------------------- raw servers */

/* Reads one request (head, then a content-length or chunked body).
 * Returns 1, or 0 at EOF. */
static int read_request(int fd)
{
    static char buf[1 << 16];
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (k <= 0) return 0;
        n += (size_t)k;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t head = (size_t)(end - buf) + 4;
    size_t want = 0;
    for (char *p = buf; p < end; p++) {
        if (strncasecmp(p, "\r\ncontent-length:", 17) == 0) want = strtoul(p + 17, NULL, 10);
        if (strncasecmp(p, "\r\ntransfer-encoding:", 20) == 0) want = SIZE_MAX;
    }
    if (want == SIZE_MAX) {
        while (!strstr(buf + head - 2, "\r\n0\r\n\r\n") && n < sizeof(buf) - 1) {
            ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
            if (k <= 0) return 0;
            n += (size_t)k;
            buf[n] = '\0';
        }
        return 1;
    }
    while (n < head + want) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (k <= 0) return 0;
        n += (size_t)k;
    }
    return 1;
}

static void say(int fd, const char *s)
{
    ssize_t k = write(fd, s, strlen(s));
    (void)k;
}

enum raw { RAW_GARBAGE, RAW_SILENT, RAW_CUT, RAW_CLOSE_DELIMITED, RAW_STALE };

/* A provider behaving as |how|, on E.up_port; counts the requests it
 * reads in <dir>/raw.count (one line each). */
static pid_t raw_server(enum raw how)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    cr_assert(listen(fd, 64) == 0);
    E.up_port = ntohs(a.sin_port);
    char count[512];
    snprintf(count, sizeof(count), "%s/raw.count", E.dir);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child > 0) {
        close(fd);
        return child;
    }
    for (int conn = 0;; conn++) {
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        for (int req = 0;; req++) {
            if (!read_request(c)) break;
            FILE *f = fopen(count, "a");
            if (f) {
                fputs("r\n", f);
                fclose(f);
            }
            if (how == RAW_GARBAGE) {
                say(c, "HELLO WORLD\r\n\r\n");
                break;
            }
            if (how == RAW_SILENT) {
                pause();
                break;
            }
            if (how == RAW_CUT) {
                say(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                break;
            }
            if (how == RAW_CLOSE_DELIMITED) {
                say(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close, "
                       "X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\nhello, until the close");
                break;
            }
            /* RAW_STALE: the first connection answers one request, then
             * closes under the next; later ones answer everything */
            if (conn == 0 && req == 1) break;
            say(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nKeep-Alive: timeout=60\r\n\r\nok\n");
        }
        close(c);
    }
}

static void raw_contract(void)
{
    char buf[4096];
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", E.up_port);
    snprintf(buf, sizeof(buf), CONTRACT, "p", url, "  insecure: true\n  protocol: http/1.1\n");
    e2e_contract(&E, "p", buf);
}

static void post_small(struct e2e_resp *r)
{
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    e2e_curl(&E, "POST", "/p/v1/orders", h, "{\"order_id\":1}", NULL, r);
}

Test(h1up, nothing_listening)
{
    e2e_init(&E);
    E.up_port = e2e_free_port();
    raw_contract();
    start_gateway(NULL);
    struct e2e_resp r;
    post_small(&r);
    expect_error(&r, 502, "upstream_unavailable");
    e2e_resp_free(&r);
}

Test(h1up, garbage_is_a_protocol_error)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_GARBAGE);
    raw_contract();
    start_gateway(NULL);
    struct e2e_resp r;
    post_small(&r);
    expect_error(&r, 502, "upstream_protocol");
    e2e_resp_free(&r);
    e2e_stop(s, SIGKILL, 2000);
}

Test(h1up, silence_times_out)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_SILENT);
    raw_contract();
    start_gateway("limits:\n  upstream_timeout: 300ms\n");
    struct e2e_resp r;
    post_small(&r);
    expect_error(&r, 504, "upstream_timeout");
    e2e_resp_free(&r);
    e2e_stop(s, SIGKILL, 2000);
}

Test(h1up, response_cut_short_resets_the_stream)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_CUT);
    raw_contract();
    start_gateway(NULL);
    struct e2e_resp r;
    post_small(&r);
    /* the head was forwarded: the caller sees its stream reset */
    cr_expect_neq(r.curl_rc, 0, "curl should fail, got %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    post_small(&r); /* the gateway keeps serving */
    cr_expect(r.curl_rc != 0 || r.status == 200);
    e2e_resp_free(&r);
    e2e_stop(s, SIGKILL, 2000);
}

Test(h1up, body_delimited_by_the_close)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_CLOSE_DELIMITED);
    raw_contract();
    start_gateway(NULL);
    struct e2e_resp r;
    post_small(&r);
    cr_expect_eq(r.status, 200, "status %d: %s", r.status, r.body);
    cr_expect_str_eq(r.body, "hello, until the close");
    cr_expect(e2e_header(&r, "x-kept") != NULL);
    cr_expect_null(e2e_header(&r, "x-hop"), "a field named by Connection is hop-by-hop");
    e2e_resp_free(&r);
    e2e_stop(s, SIGKILL, 2000);
}

/* A reused keep-alive connection that the provider closes while the
 * request is on its way: an idempotent request is sent again on a new
 * connection (RFC 9110 9.2.2); a POST is not — the provider may have
 * processed it — and is answered 502. */
Test(h1up, stale_keep_alive_connection_retried)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_STALE);
    raw_contract();
    start_gateway(NULL);
    cr_expect_eq(seq("/p/v1/ping", 2, NULL), 2);
    char count[512];
    snprintf(count, sizeof(count), "%s/raw.count", E.dir);
    cr_expect_eq(e2e_count_lines(count), 3, "the second request is read twice");
    e2e_stop(s, SIGKILL, 2000);
}

Test(h1up, stale_keep_alive_connection_post_not_retried)
{
    e2e_init(&E);
    pid_t s = raw_server(RAW_STALE);
    raw_contract();
    start_gateway(NULL);
    cr_expect_eq(seq("/p/v1/orders", 2, "{\"order_id\":1}"), 1, "the second POST fails");
    char count[512];
    snprintf(count, sizeof(count), "%s/raw.count", E.dir);
    cr_expect_eq(e2e_count_lines(count), 2, "each POST reaches the provider once");
    e2e_stop(s, SIGKILL, 2000);
}
