/*
 * End-to-end: flow-control credit and upstream connection hand-over on one
 * downstream HTTP/2 connection — what only shows after many requests on
 * the same connection, or with a request waiting while its upstream
 * connection goes away.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;
static int silent_fd = -1;

static void teardown(void)
{
    e2e_fini(&E);
    if (silent_fd >= 0) close(silent_fd);
    silent_fd = -1;
}

TestSuite(flow, .fini = teardown);

static const char CONTRACT[] = "contract: 1\n"
                               "provider: p\n"
                               "name: P\n"
                               "purposes: [orders]\n"
                               "upstream:\n"
                               "  url: %s\n"
                               "  insecure: true\n"
                               "routes:\n"
                               "  - method: POST\n"
                               "    path: /v1/x\n"
                               "    body:\n"
                               "      fields:\n"
                               "        a: keep\n"
                               "  - method: POST\n"
                               "    path: /v1/blob\n"
                               "    body: opaque\n";

static long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A provider that accepts connections (the kernel's backlog does) and never
 * reads or answers: what the gateway sends it stays in the request pipe. */
/* Waits (at most |timeout_ms|) until |path| has at least |want| lines:
 * the audit writer is a thread of its own, so the last records may land
 * after the last answer. Woken by the file's modifications (inotify on
 * its directory: the file may not exist yet); returns the line count. */
static size_t wait_lines(const char *path, size_t want, int timeout_ms)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    cr_assert(fd >= 0);
    cr_assert(inotify_add_watch(fd, slash ? dir : ".", IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE) >=
              0);
    long deadline = ms_now() + timeout_ms;
    size_t n = e2e_count_lines(path);
    while (n < want && ms_now() < deadline) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        long left = deadline - ms_now();
        if (left <= 0) break;
        if (poll(&pf, 1, (int)left) > 0) {
            char ev[4096];
            while (read(fd, ev, sizeof(ev)) > 0)
                ;
        }
        n = e2e_count_lines(path);
    }
    close(fd);
    return n;
}

static int silent_provider(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    cr_assert(listen(fd, 64) == 0);
    socklen_t al = sizeof(a);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    silent_fd = fd;
    return ntohs(a.sin_port);
}

/* h2load on ONE connection, one request at a time, with the body in
 * |data|: the status-code counts (2xx..5xx) into |x|; a stall ends it
 * after 3 s without activity. */
static void h2load_one_conn(const char *url, int n, const char *data, int x[4])
{
    char ns[16];
    snprintf(ns, sizeof(ns), "%d", n);
    char *argv[] = {"h2load", "-c", "1",          "-m", "1",       "-n",        ns,  "-N",
                    "3",      "-d", (char *)data, "-H", H_PURPOSE, (char *)url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    x[0] = x[1] = x[2] = x[3] = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx, %d 3xx, %d 4xx, %d 5xx", &x[0], &x[1], &x[2], &x[3]);
    if (x[3] != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
}

/* Regression: a gateway answer (here 504) given while the request pipe was
 * above PX_PIPE_HIGH dropped the pipe without giving back the credit of the
 * bytes received but not yet consumed: each such request lost up to
 * ~512 KiB of the connection window, and after ~33 of them every later
 * request on the connection stalled. */
Test(flow, answers_while_the_pipe_is_full_give_the_connection_window_back)
{
    e2e_init(&E);
    char up[64], c[1024];
    snprintf(up, sizeof(up), "http://127.0.0.1:%d", silent_provider());
    snprintf(c, sizeof(c), CONTRACT, up);
    e2e_contract(&E, "p", c);
    cr_assert(e2e_start_gateway(&E, "limits:\n  upstream_timeout: 200ms\n"));
    /* 1 MiB per request: far above what the provider's default windows
     * (64 KiB) and PX_PIPE_HIGH let in */
    char data[512];
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "big.bin"));
    FILE *f = fopen(data, "w");
    cr_assert(f);
    static char block[65536];
    memset(block, 'A', sizeof(block));
    for (int i = 0; i < 16; i++)
        cr_assert_eq(fwrite(block, 1, sizeof(block), f), sizeof(block));
    fclose(f);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/p/v1/blob", E.gw_port);
    int x[4];
    h2load_one_conn(url, 60, data, x);
    cr_expect_eq(x[3], 60, "5xx answers: %d of 60 (2xx %d, 4xx %d)", x[3], x[0], x[2]);
    size_t lines = wait_lines(E.audit, 60, 10000);
    cr_expect_geq(lines, 60, "audit records: %zu", lines);
    char *log = e2e_read(E.audit, NULL);
    size_t n504 = 0;
    for (const char *p = log; p && (p = strstr(p, "upstream_timeout")); p++)
        n504++;
    free(log);
    cr_expect_eq(n504, 60, "audit records with upstream_timeout: %zu", n504);
}

/* --------------------------------------------- a minimal HTTP/2 client */

static void put_frame(int fd, int type, int flags, uint32_t sid, const void *p, size_t n)
{
    unsigned char hd[9] = {
        (unsigned char)(n >> 16),   (unsigned char)(n >> 8),   (unsigned char)n,
        (unsigned char)type,        (unsigned char)flags,      (unsigned char)(sid >> 24),
        (unsigned char)(sid >> 16), (unsigned char)(sid >> 8), (unsigned char)sid};
    cr_assert_eq(write(fd, hd, 9), 9);
    if (n) cr_assert_eq(write(fd, p, n), (ssize_t)n);
}

/* HPACK literal field without indexing, new name, no Huffman. */
static size_t hp(unsigned char *o, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), k = 0;
    o[k++] = 0;
    o[k++] = (unsigned char)nl;
    memcpy(o + k, name, nl);
    k += nl;
    o[k++] = (unsigned char)vl;
    memcpy(o + k, value, vl);
    return k + vl;
}

static void request_head(int fd, uint32_t sid)
{
    unsigned char b[512];
    size_t k = 0;
    k += hp(b + k, ":method", "POST");
    k += hp(b + k, ":scheme", "http");
    k += hp(b + k, ":authority", "gw");
    k += hp(b + k, ":path", "/p/v1/x");
    k += hp(b + k, "privgate-purpose", "orders");
    k += hp(b + k, "content-type", "application/json");
    put_frame(fd, 1, 0x4 /* END_HEADERS */, sid, b, k);
}

struct h2rd {
    int fd;
    unsigned char buf[1 << 16];
    size_t have;
    /* per stream 1 and 3: first byte of the response head, END_STREAM seen,
     * RST_STREAM seen */
    int head[4];
    bool end[4], rst[4];
};

/* Reads frames until |until| (stream 1 or 3) ended or was reset, or the
 * deadline passes. */
static void h2_read_until(struct h2rd *r, uint32_t until, long deadline)
{
    while (!r->end[until] && !r->rst[until] && ms_now() < deadline) {
        struct pollfd pf = {r->fd, POLLIN, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        ssize_t k = read(r->fd, r->buf + r->have, sizeof(r->buf) - r->have);
        if (k <= 0) return;
        r->have += (size_t)k;
        size_t off = 0;
        while (r->have - off >= 9) {
            const unsigned char *f = r->buf + off;
            size_t len = ((size_t)f[0] << 16) | ((size_t)f[1] << 8) | f[2];
            if (r->have - off < 9 + len) break;
            uint32_t sid = (((uint32_t)f[5] & 0x7f) << 24) | ((uint32_t)f[6] << 16) |
                           ((uint32_t)f[7] << 8) | f[8];
            int type = f[3], flags = f[4];
            if (type == 4 && !(flags & 1)) put_frame(r->fd, 4, 1, 0, NULL, 0); /* SETTINGS ACK */
            if (sid == 1 || sid == 3) {
                /* the gateway's :status is the first field of the block
                 * (no padding or priority from nghttp2's server) */
                if (type == 1 && r->head[sid] < 0 && len > 0) r->head[sid] = f[9];
                if ((type == 0 || type == 1) && (flags & 1)) r->end[sid] = true;
                if (type == 3) r->rst[sid] = true;
            }
            off += 9 + len;
        }
        memmove(r->buf, r->buf + off, r->have - off);
        r->have -= off;
    }
}

/* Regression: a request parked on an upstream connection (its first body
 * byte had not arrived yet) when that connection received GOAWAY stayed
 * parked: only PX_UP_READY connections submit, so it got 502 when the
 * provider closed, or hung if it kept the connection open. It must move to
 * another connection and be answered by the provider. */
Test(flow, request_waiting_for_its_body_survives_a_provider_goaway)
{
    e2e_init(&E);
    const char *extra[] = {"--goaway-after", "1", NULL};
    e2e_start_partner(&E, "h2c", extra);
    char c[1024];
    snprintf(c, sizeof(c), CONTRACT, "@UP@");
    e2e_contract(&E, "p", c);
    cr_assert(e2e_start_gateway(&E, "limits:\n  upstream_timeout: 5s\n"));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)E.gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    cr_assert_eq(write(fd, preface, sizeof(preface) - 1), (ssize_t)(sizeof(preface) - 1));
    put_frame(fd, 4, 0, 0, NULL, 0);
    /* both heads first: stream 3 is attached to the same upstream
     * connection as stream 1, and waits there for its body */
    request_head(fd, 1);
    request_head(fd, 3);
    static const char b1[] = "{\"a\":1,\"b\":2}", b3[] = "{\"a\":3,\"b\":4}";
    put_frame(fd, 0, 1, 1, b1, sizeof(b1) - 1);
    struct h2rd *r = calloc(1, sizeof(*r));
    cr_assert(r);
    r->fd = fd;
    for (int i = 0; i < 4; i++)
        r->head[i] = -1;
    h2_read_until(r, 1, ms_now() + 5000);
    cr_assert(r->end[1], "no complete response on stream 1");
    cr_expect_eq(r->head[1], 0x88, "stream 1: not 200 (first head byte 0x%02x)", r->head[1]);
    /* the provider has answered stream 1 and sent GOAWAY: stream 3's body
     * arrives only now */
    put_frame(fd, 0, 1, 3, b3, sizeof(b3) - 1);
    h2_read_until(r, 3, ms_now() + 3000);
    cr_expect(r->end[3] && !r->rst[3], "no complete response on stream 3");
    cr_expect_eq(r->head[3], 0x88, "stream 3: not 200 (first head byte 0x%02x)", r->head[3]);
    free(r);
    close(fd);
    cr_expect_eq(e2e_count_lines(E.record), 2);
    json_t *j = recorded(&E, 1);
    cr_assert(j, "stream 3 was not recorded by the provider");
    cr_expect_str_eq(jstr(j, "body"), "{\"a\":3}");
    json_decref(j);
}
