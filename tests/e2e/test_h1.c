/*
 * End-to-end: HTTP/1.1 on the gateway's listeners (docs/GATEWAY.md,
 * "HTTP/1.1 downstream"). curl --http1.1 (cleartext and TLS with ALPN
 * http/1.1) and raw bytes over sockets opened here, through the real
 * gateway to the recording demo partner: the same request path as HTTP/2,
 * keep-alive, chunked bodies, 100-continue, pipelining, and a table of
 * request smuggling shapes each refused 400 with nothing sent upstream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void setup(void)
{
    start_shop(&E, "limits:\n  max_body: 32MiB\n  max_header_bytes: 4KiB\n");
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(h1, .init = setup, .fini = teardown);

static const char ORDER[] =
    "{\"order_id\": 7, \"customer_id\": \"C-1001\", \"email\": \"ann@example.com\","
    " \"items\": [{\"sku\": \"B-1\", \"price\": 12.5}, {\"sku\": \"B-2\"}]}";

/* --------------------------------------------------------------- helpers */

/* curl over HTTP/1.1: -w output (|wfmt|) in |out| (malloc'd), the body of
 * the last response in curl.body, its headers in curl.headers. |extra|:
 * more arguments, NULL-terminated; the URLs come last among them. */
static int curl1(const char *wfmt, const char *const *hdrs, const char *const *extra, char **out)
{
    char *argv[80];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = "--http1.1";
    argv[n++] = "--max-time";
    argv[n++] = "60";
    argv[n++] = "-D";
    argv[n++] = (char *)e2e_path(&E, "curl.headers");
    argv[n++] = "-o";
    argv[n++] = (char *)e2e_path(&E, "curl.body");
    argv[n++] = "-w";
    argv[n++] = (char *)wfmt;
    for (int i = 0; hdrs && hdrs[i] && n < 60; i++) {
        argv[n++] = "-H";
        argv[n++] = (char *)hdrs[i];
    }
    for (int i = 0; extra && extra[i] && n < 78; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return e2e_run(argv, NULL, out, NULL);
}

static const char *url(const char *path)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ & 3];
    snprintf(p, 512, "http://127.0.0.1:%d%s", E.gw_port, path);
    return p;
}

/* A connected socket to the cleartext listener (reads time out after 30 s
 * so that a hang fails the test instead of blocking it). */
static int gw_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)E.gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        cr_assert(k > 0, "write: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

/* Reads until the peer closes (or, with |until| non-NULL, until |until|
 * was received). Returns a NUL-terminated malloc'd buffer; *closed tells
 * whether the peer closed. */
static char *recv_until(int fd, const char *until, bool *closed)
{
    size_t cap = 65536, n = 0;
    char *p = malloc(cap);
    bool eof = false;
    for (;;) {
        if (n + 4096 > cap) p = realloc(p, cap *= 2);
        ssize_t k = read(fd, p + n, cap - n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            eof = k == 0;
            break;
        }
        n += (size_t)k;
        p[n] = '\0';
        if (until && strstr(p, until)) break;
    }
    p[n] = '\0';
    if (closed) *closed = eof;
    return p;
}

/* Sends |req| on a new connection and reads the whole answer. */
static char *raw(const char *req, size_t len, bool *closed)
{
    int fd = gw_socket();
    send_all(fd, req, len);
    char *r = recv_until(fd, NULL, closed);
    close(fd);
    return r;
}

static int status_of(const char *resp)
{
    int st = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &st) != 1) return 0;
    return st;
}

/* The body of a raw response (after the first empty line). */
static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

#define HDRS                                                                                       \
    "privgate-purpose: orders\r\nprivgate-caller: orders-service\r\n"                              \
    "content-type: application/json\r\n"

/* ------------------------------------------------------------ forwarding */

/* The recorded request without what legitimately differs per request. */
static char *recorded_dump(size_t i)
{
    json_t *j = recorded(&E, i);
    cr_assert(j, "request %zu was not recorded upstream", i);
    json_t *hd = json_object_get(j, "headers");
    json_object_del(hd, "content-length"); /* h2 may stream without one */
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

Test(h1, forwards_the_same_request_as_h2)
{
    const char *h[] = {
        H_PURPOSE,       H_CALLER, H_JSON, "cookie: sid=secret-cookie", "idempotency-key: k-1",
        "x-trace-me: 1", NULL};
    const char *path = "/shop/v1/orders?dry_run=1&utm_source=mail";
    struct e2e_resp r;
    e2e_curl(&E, "POST", path, h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200, "h2: %d %s", r.status, r.body);
    e2e_resp_free(&r);

    e2e_write(e2e_path(&E, "order.json"), "%s", ORDER);
    char at[600];
    snprintf(at, sizeof(at), "@%s", e2e_path(&E, "order.json"));
    const char *ex[] = {"--data-binary", at, url(path), NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code} %{http_version}", h, ex, &out), 0);
    cr_expect_str_eq(out, "200 1.1");
    free(out);
    char *hdr = e2e_read(e2e_path(&E, "curl.headers"), NULL);
    cr_expect(strstr(hdr, "privgate-request-id: ") != NULL, "%s", hdr);
    cr_expect(strstr(hdr, "x-demo-partner: 1") != NULL, "%s", hdr);
    free(hdr);

    char *a = recorded_dump(0), *b = recorded_dump(1);
    cr_expect_str_eq(b, a, "HTTP/1.1 forwarded something else than h2");
    cr_expect(strstr(b, "ann@example.com") == NULL && strstr(b, "secret-cookie") == NULL);
    free(a);
    free(b);
}

Test(h1, chunked_request_body_is_filtered_as_it_streams)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    /* by curl, then split into many small chunks by hand */
    e2e_write(e2e_path(&E, "order.json"), "%s", ORDER);
    char at[600];
    snprintf(at, sizeof(at), "@%s", e2e_path(&E, "order.json"));
    const char *h2[] = {H_PURPOSE, H_CALLER, H_JSON, "transfer-encoding: chunked", NULL};
    const char *ex[] = {"--data-binary", at, url("/shop/v1/orders"), NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}", h2, ex, &out), 0);
    cr_expect_str_eq(out, "200");
    free(out);

    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof(req),
                                "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n" HDRS
                                "transfer-encoding: chunked\r\nconnection: close\r\n\r\n");
    for (size_t i = 0; i < sizeof(ORDER) - 1; i += 5) {
        size_t k = sizeof(ORDER) - 1 - i < 5 ? sizeof(ORDER) - 1 - i : 5;
        n += (size_t)snprintf(req + n, sizeof(req) - n, "%zx%s\r\n%.*s\r\n", k,
                              i == 10 ? ";ext=1" : "", (int)k, ORDER + i);
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "0\r\nx-trailer: t\r\n\r\n");
    bool closed;
    char *resp = raw(req, n, &closed);
    cr_expect_eq(status_of(resp), 200, "%s", resp);
    cr_expect(closed);
    free(resp);

    char *a = recorded_dump(0), *b = recorded_dump(1);
    cr_expect_str_eq(b, a, "chunked by curl");
    free(a);
    free(b);
    json_t *j0 = recorded(&E, 0), *j2 = recorded(&E, 2);
    cr_assert(j0 && j2);
    cr_expect_str_eq(jstr(j2, "body"), jstr(j0, "body"), "in small chunks");
    cr_expect_str_eq(jstr(j2, "path"), "/v1/orders");
    json_decref(j0);
    json_decref(j2);
}

Test(h1, keep_alive_reuses_the_connection)
{
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    const char *ex[] = {url("/shop/v1/ping"),     "-o", "/dev/null",
                        url("/shop/v1/ping?x=1"), "-o", "/dev/null",
                        url("/shop/v1/ping"),     NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}:%{num_connects} ", h, ex, &out), 0);
    /* one connection for the three requests */
    cr_expect_str_eq(out, "200:1 200:0 200:0 ");
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 3);
}

Test(h1, pipelined_requests_are_answered_in_order)
{
    char req[4096];
    size_t n = (size_t)snprintf(
        req, sizeof(req),
        "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n"
        "GET /nobody/v1/x HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n"
        "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n" HDRS "content-length: %zu\r\n\r\n%s"
        "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "connection: close\r\n\r\n",
        sizeof(ORDER) - 1, ORDER);
    bool closed;
    char *resp = raw(req, n, &closed);
    cr_expect(closed, "connection: close honoured");
    const char *p = resp;
    const int want_st[] = {200, 404, 200, 200};
    const char *want_path[] = {"\"path\":\"/v1/ping\"", "unknown_provider",
                               "\"path\":\"/v1/orders\"", "\"path\":\"/v1/ping\""};
    for (int i = 0; i < 4; i++) {
        const char *s = strstr(p, "HTTP/1.1 ");
        cr_assert(s, "response %d missing: %s", i, resp);
        cr_expect_eq(status_of(s), want_st[i], "response %d: %s", i, s);
        const char *next = strstr(s + 9, "HTTP/1.1 ");
        const char *w = strstr(s, want_path[i]);
        cr_expect(w && (!next || w < next), "response %d is not the answer to request %d: %s", i, i,
                  s);
        p = s + 9;
    }
    cr_expect(strstr(p, "HTTP/1.1 ") == NULL, "more responses than requests");
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 3);
}

Test(h1, expect_100_continue)
{
    char head[1024];
    size_t n = (size_t)snprintf(head, sizeof(head),
                                "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n" HDRS
                                "expect: 100-continue\r\ncontent-length: %zu\r\n"
                                "connection: close\r\n\r\n",
                                sizeof(ORDER) - 1);
    int fd = gw_socket();
    send_all(fd, head, n);
    char *first = recv_until(fd, "\r\n\r\n", NULL);
    cr_expect(strncmp(first, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0, "%s", first);
    free(first);
    send_all(fd, ORDER, sizeof(ORDER) - 1);
    bool closed;
    char *resp = recv_until(fd, NULL, &closed);
    close(fd);
    cr_expect_eq(status_of(resp), 200, "%s", resp);
    cr_expect(strstr(resp, "\"path\":\"/v1/orders\"") != NULL);
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 1);

    /* refused: the final status at once, no 100, and the connection closes */
    n = (size_t)snprintf(head, sizeof(head),
                         "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n"
                         "privgate-purpose: marketing\r\nprivgate-caller: orders-service\r\n"
                         "content-type: application/json\r\n"
                         "expect: 100-continue\r\ncontent-length: 1000\r\n\r\n");
    resp = raw(head, n, &closed);
    cr_expect_eq(status_of(resp), 403, "%s", resp);
    cr_expect(strstr(resp, "100 Continue") == NULL);
    cr_expect(strstr(resp, "privgate-error: purpose_not_allowed\r\n") != NULL, "%s", resp);
    cr_expect(strstr(resp, "connection: close\r\n") != NULL, "%s", resp);
    cr_expect(closed);
    free(resp);

    /* with curl */
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "expect: 100-continue", NULL};
    const char *ex[] = {"--data-binary", ORDER, url("/shop/v1/orders"), NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}", h, ex, &out), 0);
    cr_expect_str_eq(out, "200");
    free(out);
    cr_expect_eq(e2e_count_lines(E.record), 2);
}

Test(h1, http10)
{
    bool closed;
    const char req[] = "GET /shop/v1/ping HTTP/1.0\r\n" HDRS "\r\n";
    char *resp = raw(req, sizeof(req) - 1, &closed);
    cr_expect(strncmp(resp, "HTTP/1.1 200 ", 13) == 0, "%s", resp);
    cr_expect(closed, "HTTP/1.0 without keep-alive closes");
    free(resp);
    /* with keep-alive: two requests on one connection */
    const char ka[] = "GET /shop/v1/ping HTTP/1.0\r\nconnection: keep-alive\r\n" HDRS "\r\n"
                      "GET /shop/v1/ping HTTP/1.0\r\n" HDRS "\r\n";
    resp = raw(ka, sizeof(ka) - 1, &closed);
    const char *second = strstr(resp + 1, "HTTP/1.1 200 ");
    cr_expect(second != NULL, "%s", resp);
    cr_expect(strstr(resp, "connection: keep-alive\r\n") != NULL, "%s", resp);
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 3);
}

/* ---------------------------------------------------- smuggling / malformed */

struct bad {
    const char *name;
    const char *req;
    int status;
};

#define POST_ORDERS "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n" HDRS
static const struct bad BAD[] = {
    {"content-length and transfer-encoding",
     POST_ORDERS "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     400},
    {"transfer-encoding and content-length",
     POST_ORDERS "transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     400},
    {"duplicate content-length", POST_ORDERS "content-length: 2\r\ncontent-length: 2\r\n\r\n{}",
     400},
    {"content-length 1,1", POST_ORDERS "content-length: 2,2\r\n\r\n{}", 400},
    {"content-length +2", POST_ORDERS "content-length: +2\r\n\r\n{}", 400},
    {"content-length with a space inside", POST_ORDERS "content-length: 1 2\r\n\r\n{}", 400},
    {"content-length not a number", POST_ORDERS "content-length: 0x2\r\n\r\n{}", 400},
    {"transfer-encoding chunked, identity",
     POST_ORDERS "transfer-encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400},
    {"transfer-encoding xchunked",
     POST_ORDERS "transfer-encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400},
    {"transfer-encoding identity", POST_ORDERS "transfer-encoding: identity\r\n\r\n{}", 400},
    {"duplicate transfer-encoding",
     POST_ORDERS
     "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     400},
    {"transfer-encoding in HTTP/1.0",
     "POST /shop/v1/orders HTTP/1.0\r\n" HDRS
     "transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
     400},
    {"bare LF in the request line", "GET /shop/v1/ping HTTP/1.1\nhost: gw\r\n" HDRS "\r\n", 400},
    {"bare LF in a field", "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\n" HDRS "\r\n", 400},
    {"bare LF ending the head", "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\n", 400},
    {"bare CR", "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\rx: y\r\n" HDRS "\r\n", 400},
    {"obs-fold", "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nx-a: b\r\n c\r\n" HDRS "\r\n", 400},
    {"obs-fold of transfer-encoding",
     POST_ORDERS "transfer-encoding:\r\n chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400},
    {"space before the colon", POST_ORDERS "content-length : 2\r\n\r\n{}", 400},
    {"space before the colon of transfer-encoding",
     POST_ORDERS "transfer-encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400},
    {"NUL in a value", "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nx-a: b\0c\r\n" HDRS "\r\n", 400},
    {"control character in a value",
     "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nx-a: \x01\r\n" HDRS "\r\n", 400},
    {"missing host", "GET /shop/v1/ping HTTP/1.1\r\n" HDRS "\r\n", 400},
    {"duplicate host", "GET /shop/v1/ping HTTP/1.1\r\nhost: a\r\nhost: b\r\n" HDRS "\r\n", 400},
    {"two spaces in the request line", "GET  /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n",
     400},
    {"unknown version", "GET /shop/v1/ping HTTP/1.2\r\nhost: gw\r\n" HDRS "\r\n", 400},
    {"absolute-form for another host",
     "GET http://evil.example/shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n", 400},
    {"absolute-form https on cleartext",
     "GET https://gw/shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n", 400},
    {"authority-form", "CONNECT gw:443 HTTP/1.1\r\nhost: gw:443\r\n" HDRS "\r\n", 400},
    {"asterisk-form", "OPTIONS * HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n", 400},
    {"chunk size with a sign",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n", 400},
    {"chunk size with a space",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n2 \r\n{}\r\n0\r\n\r\n", 400},
    {"chunk size not hex", POST_ORDERS "transfer-encoding: chunked\r\n\r\n2g\r\n{}\r\n0\r\n\r\n",
     400},
    {"chunk size overflow",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n10000000000000002\r\n{}\r\n0\r\n\r\n", 400},
    {"chunk size with bare LF", POST_ORDERS "transfer-encoding: chunked\r\n\r\n2\n{}\r\n0\r\n\r\n",
     400},
    {"chunk data longer than its size",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n", 400},
    {"chunk data not followed by CRLF",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400},
    {"chunk extension with a bare LF",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n2;a\nb\r\n{}\r\n0\r\n\r\n", 400},
    {"chunk extension too long",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n2;"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "\r\n{}\r\n0\r\n\r\n",
     400},
    {"obs-fold in a trailer",
     POST_ORDERS "transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nx-t: a\r\n b\r\n\r\n", 400},
    {"unsupported expectation", POST_ORDERS "expect: 200-ok\r\ncontent-length: 2\r\n\r\n{}", 417},
    /* http-parser ends a CONNECT or an upgrade at its head: a body would be
     * read as a second request */
    {"CONNECT with a request in its body",
     "CONNECT /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "content-length: 60\r\n\r\n"
     "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n\r\n",
     400},
    {"upgrade with a request in its body",
     POST_ORDERS "connection: upgrade\r\nupgrade: h2c\r\ncontent-length: 45\r\n\r\n"
                 "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n\r\n",
     400},
};

Test(h1, smuggling_shapes_are_refused_and_never_reach_the_provider)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        /* the table's strings hold a NUL in one case: send up to the end
         * of the literal, found as the last "\r\n\r\n" or body */
        const char *req = BAD[i].req;
        size_t len = strlen(req);
        if (strstr(BAD[i].name, "NUL")) {
            static const char nul[] =
                "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nx-a: b\0c\r\n" HDRS "\r\n";
            req = nul;
            len = sizeof(nul) - 1;
        }
        bool closed;
        char *resp = raw(req, len, &closed);
        cr_expect_eq(status_of(resp), BAD[i].status, "%s: %s", BAD[i].name, resp);
        cr_expect(strstr(resp, "privgate-error: invalid_request\r\n") != NULL, "%s: %s",
                  BAD[i].name, resp);
        cr_expect(strstr(resp, "privgate-request-id: ") != NULL, "%s", BAD[i].name);
        cr_expect(strstr(body_of(resp), "\"code\":\"invalid_request\"") != NULL, "%s: %s",
                  BAD[i].name, resp);
        cr_expect(closed, "%s: the connection stays open after a 400", BAD[i].name);
        cr_expect(strstr(body_of(resp), "}HTTP/1.1 ") == NULL, "%s: a second response: %s",
                  BAD[i].name, resp);
        free(resp);
    }
    /* a good request after them: the only one the provider saw (its
     * response comes after the provider recorded it) */
    const char ok[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n" HDRS "\r\n";
    bool closed;
    char *resp = raw(ok, sizeof(ok) - 1, &closed);
    cr_expect_eq(status_of(resp), 200, "%s", resp);
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 1, "a malformed request reached the provider");
}

Test(h1, request_head_too_large)
{
    static char req[8192];
    int n = snprintf(req, sizeof(req), "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "x-big: ");
    memset(req + n, 'x', 5000);
    memcpy(req + n + 5000, "\r\n\r\n", 4);
    bool closed;
    char *resp = raw(req, (size_t)n + 5004, &closed);
    cr_expect_eq(status_of(resp), 431, "%s", resp);
    cr_expect(strstr(resp, "privgate-error: invalid_request\r\n") != NULL);
    cr_expect(closed);
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 0);
}

Test(h1, idle_timeout_closes_idle_and_unfinished_connections)
{
    e2e_fini(&E);
    start_shop(&E, "limits:\n  idle_timeout: 300ms\n");
    /* a head that never completes */
    int fd = gw_socket();
    const char part[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n";
    send_all(fd, part, sizeof(part) - 1);
    bool closed;
    char *r = recv_until(fd, NULL, &closed);
    cr_expect(closed, "an unfinished head is not closed: %s", r);
    free(r);
    close(fd);
    /* a kept-alive connection after its response */
    fd = gw_socket();
    const char req[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n";
    send_all(fd, req, sizeof(req) - 1);
    r = recv_until(fd, NULL, &closed);
    cr_expect_eq(status_of(r), 200, "%s", r);
    cr_expect(strstr(r, "connection: close") == NULL, "%s", r);
    cr_expect(closed, "an idle connection is not closed");
    free(r);
    close(fd);
}

/* -------------------------------------------------------------- refusals */

static void refused1(const char *method, const char *path, const char *const *h, const char *body,
                     int status, const char *code)
{
    const char *ex[] = {"-X",
                        method,
                        body ? "--data-binary" : url(path),
                        body ? body : NULL,
                        body ? url(path) : NULL,
                        NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}", h, ex, &out), 0);
    struct e2e_resp r;
    memset(&r, 0, sizeof(r));
    r.status = (int)strtol(out, NULL, 10);
    free(out);
    r.body = e2e_read(e2e_path(&E, "curl.body"), &r.len);
    r.headers = e2e_read(e2e_path(&E, "curl.headers"), NULL);
    cr_assert(r.body && r.headers);
    expect_error(&r, status, code);
    e2e_resp_free(&r);
    cr_expect_eq(e2e_count_lines(E.record), 0, "%s reached the upstream", code);
}

Test(h1, refusals)
{
    const char *h[] = {H_CALLER, H_JSON, "privgate-purpose: marketing", NULL};
    refused1("POST", "/shop/v1/orders", h, "{}", 403, "purpose_not_allowed");
    const char *h2[] = {H_PURPOSE, H_CALLER, NULL};
    refused1("GET", "/nobody/v1/ping", h2, NULL, 404, "unknown_provider");
    refused1("DELETE", "/shop/v1/orders", h2, NULL, 404, "unknown_route");
    const char *h3[] = {H_CALLER, H_JSON, NULL};
    refused1("POST", "/shop/v1/orders", h3, "{}", 400, "purpose_required");
    const char *h4[] = {H_PURPOSE, H_CALLER, "content-type: text/plain", NULL};
    refused1("POST", "/shop/v1/orders", h4, "Ann", 415, "unsupported_media_type");
    const char *h5[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    refused1("POST", "/shop/v1/orders", h5, "{\"order_id\": 7, \"items\": [", 400, "invalid_body");
    refused1("GET", "/shop/v1/%2e%2e/ping", h2, NULL, 400, "invalid_request");
}

Test(h1, refusal_then_keep_alive)
{
    /* a refused request's body is read and dropped: the next request on
     * the connection is served */
    char req[2048];
    size_t n = (size_t)snprintf(
        req, sizeof(req),
        "POST /shop/v1/orders HTTP/1.1\r\nhost: gw\r\n"
        "privgate-purpose: marketing\r\nprivgate-caller: orders-service\r\n"
        "content-type: application/json\r\ncontent-length: %zu\r\n\r\n%s"
        "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n" HDRS "\r\n",
        sizeof(ORDER) - 1, ORDER);
    bool closed;
    char *resp = raw(req, n, &closed);
    cr_expect_eq(status_of(resp), 403, "%s", resp);
    const char *second = strstr(resp + 1, "HTTP/1.1 ");
    cr_assert(second, "%s", resp);
    cr_expect_eq(status_of(second), 200, "%s", second);
    free(resp);
    cr_expect_eq(e2e_count_lines(E.record), 1);
}

/* Peak resident set of |pid| in KiB (VmHWM). */
static long peak_rss_kib(pid_t pid)
{
    long kib = e2e_proc_kb(pid, "VmHWM");
    cr_assert(kib > 0);
    return kib;
}

Test(h1, large_chunked_body_streams_through_the_filter_with_bounded_memory)
{
    /* a 24 MiB JSON array, sent chunked by curl: filtered as it arrives,
     * the parser pausing while the upstream side catches up */
    size_t n = 24u * 1024u * 1024u;
    char *big = malloc(n + 64);
    size_t o = 0;
    big[o++] = '[';
    while (o < n)
        o += (size_t)snprintf(big + o, n + 64 - o, "%s{\"sku\":\"A-%08zu\"}", o > 1 ? "," : "", o);
    big[o++] = ']';
    big[o] = '\0';
    const char *f = e2e_path(&E, "big.json");
    e2e_write(f, "%s", big);
    free(big);
    char at[600];
    snprintf(at, sizeof(at), "@%s", f);
    long before = peak_rss_kib(E.gw_pid);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "transfer-encoding: chunked", NULL};
    const char *ex[] = {"--data-binary", at, url("/shop/v1/bulk"), NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}", h, ex, &out), 0);
    cr_expect_str_eq(out, "200");
    free(out);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_eq((size_t)json_integer_value(json_object_get(j, "body_len")), o, "body_len");
    json_decref(j);
    long after = peak_rss_kib(E.gw_pid);
    cr_expect_lt(after - before, 16 * 1024, "RSS grew by %ld KiB", after - before);
}

/* ------------------------------------------------------------- responses */

static void restart_with_partner(const char *opt, const char *arg)
{
    e2e_fini(&E);
    e2e_init(&E);
    const char *extra[] = {opt, arg, NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
}

Test(h1, response_without_length_is_sent_chunked)
{
    restart_with_partner("--no-content-length", NULL);
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    const char *ex[] = {url("/shop/v1/ping"), NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code}", h, ex, &out), 0);
    cr_expect_str_eq(out, "200");
    free(out);
    char *hd = e2e_read(e2e_path(&E, "curl.headers"), NULL);
    cr_expect(strstr(hd, "transfer-encoding: chunked\r\n") != NULL, "%s", hd);
    cr_expect(strstr(hd, "content-length") == NULL, "%s", hd);
    free(hd);
    char *body = e2e_read(e2e_path(&E, "curl.body"), NULL);
    json_t *j = json_loads(body, 0, NULL);
    cr_expect(j && strcmp(jstr(j, "path"), "/v1/ping") == 0, "%s", body);
    json_decref(j);
    free(body);
    /* HTTP/1.0 has no chunked encoding: the body ends with the connection */
    bool closed;
    const char req[] = "GET /shop/v1/ping HTTP/1.0\r\nconnection: keep-alive\r\n" HDRS "\r\n";
    char *r = raw(req, sizeof(req) - 1, &closed);
    cr_expect_eq(status_of(r), 200, "%s", r);
    cr_expect(strstr(r, "transfer-encoding") == NULL && strstr(r, "connection: close\r\n"), "%s",
              r);
    cr_expect(closed);
    j = json_loads(body_of(r), 0, NULL);
    cr_expect(j != NULL, "%s", r);
    json_decref(j);
    free(r);
}

Test(h1, provider_reset_mid_response_cuts_the_connection)
{
    restart_with_partner("--break-response", NULL);
    const char *h[] = {H_PURPOSE, H_CALLER, NULL};
    const char *ex[] = {url("/shop/v1/ping"), NULL};
    char *out = NULL;
    int rc = curl1("%{http_code}", h, ex, &out);
    /* the head went out with a content-length the body never reaches */
    cr_expect_neq(rc, 0, "curl saw a complete response");
    cr_expect_str_eq(out, "200");
    free(out);
}

Test(h1, drain_finishes_the_response_then_closes)
{
    restart_with_partner("--delay-ms", "300");
    int fd = gw_socket();
    const char req[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" HDRS "\r\n";
    send_all(fd, req, sizeof(req) - 1);
    /* the provider has the request (it records it before its delay) */
    for (int i = 0; i < 2000 && e2e_count_lines(E.record) < 1; i++) {
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(e2e_count_lines(E.record), 1);
    kill(E.gw_pid, SIGTERM);
    bool closed;
    char *r = recv_until(fd, NULL, &closed);
    close(fd);
    cr_expect_eq(status_of(r), 200, "%s", r);
    cr_expect(strstr(r, "connection: close\r\n") != NULL, "%s", r);
    cr_expect(closed);
    free(r);
    cr_expect_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0, "exit status after the drain");
    E.gw_pid = 0;
}

/* ------------------------------------------------------------------- TLS */

Test(h1, tls_with_alpn_http11)
{
    e2e_fini(&E);
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    const char *key = e2e_path(&E, "gw.key");
    const char *crt = e2e_path(&E, "gw.pem");
    char k[512], c[512];
    snprintf(k, sizeof(k), "%s", key);
    snprintf(c, sizeof(c), "%s", crt);
    e2e_self_signed(k, c, "localhost");
    char *pem = e2e_read(c, NULL);
    cr_assert(pem && strstr(pem, "BEGIN CERTIFICATE"), "openssl wrote no certificate to %s", c);
    free(pem);
    char tls[1200];
    snprintf(tls, sizeof(tls), "      cert: %s\n      key: %s\n", c, k);
    cr_assert(e2e_start_gateway_tls(&E, NULL, tls));
    char u1[128], u2[128];
    snprintf(u1, sizeof(u1), "https://127.0.0.1:%d/shop/v1/orders", E.gw_tls_port);
    snprintf(u2, sizeof(u2), "https://127.0.0.1:%d/shop/v1/bulk", E.gw_tls_port);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    const char *ex[] = {"--cacert", c, "--data-binary", ORDER, u1, "-o", "/dev/null", u2, NULL};
    char *out = NULL;
    cr_assert_eq(curl1("%{http_code} %{http_version} %{num_connects};", h, ex, &out), 0);
    cr_expect_str_eq(out, "200 1.1 1;200 1.1 0;");
    free(out);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "path"), "/v1/orders");
    cr_expect(strstr(jstr(j, "body"), "ann@example.com") == NULL);
    json_decref(j);
    /* h2 is still preferred when offered */
    const char *ex2[] = {"--http2", "--cacert", c, u1, NULL};
    char *argv2[16];
    int n = 0;
    argv2[n++] = "curl";
    argv2[n++] = "-sS";
    argv2[n++] = "-o";
    argv2[n++] = "/dev/null";
    argv2[n++] = "-w";
    argv2[n++] = "%{http_version}";
    argv2[n++] = "-H";
    argv2[n++] = H_PURPOSE;
    for (int i = 0; ex2[i]; i++)
        argv2[n++] = (char *)ex2[i];
    argv2[n] = NULL;
    cr_assert_eq(e2e_run(argv2, NULL, &out, NULL), 0);
    cr_expect_str_eq(out, "2");
    free(out);
}
