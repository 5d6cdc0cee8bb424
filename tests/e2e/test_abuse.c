/*
 * End-to-end: HTTP/2 and HTTP/1.1 abuse on loopback (docs/GATEWAY.md,
 * "Protections"). Each test performs the attack with hand-built frames on
 * a raw socket to the gateway's listener, then checks that the abusive
 * connection was closed (GOAWAY(ENHANCE_YOUR_CALM) or the documented
 * answer), that a well-behaved request on another connection still
 * succeeds, that the gateway is alive with a bounded peak RSS, and where
 * it matters that the provider saw far fewer requests than were sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <nghttp2/nghttp2.h>

#include "common.h"

static struct e2e E;

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(abuse, .fini = teardown);

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#else
#define ASAN 0
#endif

/* Peak RSS bound of the gateway (generous: the point is "bounded", not a
 * benchmark; the measured numbers are printed). */
#define HWM_MAX_KB (ASAN ? 1024L * 1024L : 256L * 1024L)

#define GOOD_HDRS                                                                                  \
    {                                                                                              \
        H_PURPOSE, H_CALLER, NULL                                                                  \
    }

/* ------------------------------------------------------------ process */

static long fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static bool gw_alive(void)
{
    int st;
    return E.gw_pid > 0 && waitpid(E.gw_pid, &st, WNOHANG) == 0 && kill(E.gw_pid, 0) == 0;
}

static void good_request(const char *what)
{
    const char *h[] = GOOD_HDRS;
    struct e2e_resp r;
    e2e_curl(&E, "GET", "/shop/v1/ping", h, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "%s: a well-behaved request got %d (%s)", what, r.status, r.body);
    e2e_resp_free(&r);
}

/* What every attack must leave behind. */
static void after_attack_max(const char *what, long max_kb)
{
    cr_assert(gw_alive(), "%s: the gateway died", what);
    good_request(what);
    long hwm = e2e_proc_kb(E.gw_pid, "VmHWM");
    fprintf(stderr, "abuse %s: gateway VmHWM %ld kB, VmRSS %ld kB\n", what, hwm,
            e2e_proc_kb(E.gw_pid, "VmRSS"));
    cr_expect(hwm > 0 && hwm < max_kb, "%s: gateway peak RSS %ld kB", what, hwm);
}

static void after_attack(const char *what)
{
    after_attack_max(what, HWM_MAX_KB);
}

/* ------------------------------------------------------ HTTP/2 framing */

enum {
    F_DATA = 0,
    F_HEADERS = 1,
    F_RST = 3,
    F_SETTINGS = 4,
    F_PING = 6,
    F_GOAWAY = 7,
    F_WINDOW = 8,
    F_CONT = 9
};
enum { FL_END_STREAM = 1, FL_ACK = 1, FL_END_HEADERS = 4 };
#define ENHANCE_YOUR_CALM 0xb

static size_t frame(uint8_t *o, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
    o[0] = (uint8_t)(len >> 16);
    o[1] = (uint8_t)(len >> 8);
    o[2] = (uint8_t)len;
    o[3] = type;
    o[4] = flags;
    o[5] = (uint8_t)(sid >> 24 & 0x7f);
    o[6] = (uint8_t)(sid >> 16);
    o[7] = (uint8_t)(sid >> 8);
    o[8] = (uint8_t)sid;
    return 9;
}

static size_t u32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)(v >> 24);
    o[1] = (uint8_t)(v >> 16);
    o[2] = (uint8_t)(v >> 8);
    o[3] = (uint8_t)v;
    return 4;
}

/* HPACK by hand (RFC 7541): integers, literals without indexing. */
static size_t hp_int(uint8_t *o, uint8_t first, int prefix, size_t v)
{
    size_t max = (1u << prefix) - 1, n = 0;
    if (v < max) {
        o[n++] = (uint8_t)(first | v);
        return n;
    }
    o[n++] = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        o[n++] = (uint8_t)((v & 127) | 128);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    return n;
}

static size_t hp_str(uint8_t *o, const char *s, size_t l)
{
    size_t n = hp_int(o, 0, 7, l);
    memcpy(o + n, s, l);
    return n + l;
}

/* literal without indexing; |idx| > 0: name from the static table */
static size_t hp_lit(uint8_t *o, int idx, const char *name, const char *val, size_t vlen)
{
    size_t n = hp_int(o, 0, 4, (size_t)idx);
    if (!idx) n += hp_str(o + n, name, strlen(name));
    return n + hp_str(o + n, val, vlen);
}

/* A request header block: pseudo-headers, purpose, caller, and
 * |cl| as content-length when not NULL. */
static size_t req_block(uint8_t *o, const char *method, const char *path, const char *cl)
{
    size_t n = 0;
    n += hp_lit(o + n, 2, NULL, method, strlen(method));
    o[n++] = 0x86; /* :scheme http */
    n += hp_lit(o + n, 4, NULL, path, strlen(path));
    n += hp_lit(o + n, 1, NULL, "127.0.0.1", 9);
    n += hp_lit(o + n, 0, "privgate-purpose", "orders", 6);
    n += hp_lit(o + n, 0, "privgate-caller", "orders-service", 14);
    if (cl) n += hp_lit(o + n, 28, NULL, cl, strlen(cl)); /* content-length */
    return n;
}

/* HEADERS frame of a request on |sid|. */
static size_t headers(uint8_t *o, uint32_t sid, const char *method, const char *path,
                      const char *cl, uint8_t flags)
{
    size_t n = req_block(o + 9, method, path, cl);
    frame(o, n, F_HEADERS, flags, sid);
    return 9 + n;
}

/* --------------------------------------------------------- a raw client */

struct h2c {
    int fd;
    uint8_t *in;
    size_t ilen, icap;
    bool eof;    /* EOF or reset: the gateway closed */
    bool goaway; /* a GOAWAY came */
    uint32_t goaway_code;
    int rst; /* RST_STREAMs received */
    uint32_t rst_code;
    int settings; /* SETTINGS (not ACK) received */
    int pings;    /* PING ACKs */
    int conn_wu;  /* WINDOW_UPDATEs for the connection */
    /* the last response head */
    nghttp2_hd_inflater *inf;
    int status;
    char error[64];
    size_t data; /* DATA bytes received */
    int ends;    /* frames with END_STREAM received (complete responses) */
    /* a well-behaved reader: every DATA frame is acknowledged with a
     * WINDOW_UPDATE for its stream and one for the connection, queued
     * here and sent by h2c_flush_wu (between frames of ours) */
    bool ack_data;
    size_t ack_step; /* 0: one pair per DATA frame; else one pair per this many bytes */
    uint8_t *wu;
    size_t wulen, wucap;
    int wu_sent;
};

static int tcp_connect(int port, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int r = connect(fd, (struct sockaddr *)&a, sizeof(a));
    cr_assert(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    return fd;
}

static void h2c_open(struct h2c *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = tcp_connect(E.gw_port, false);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    cr_assert(nghttp2_hd_inflate_new(&c->inf) == 0);
}

static void h2c_close(struct h2c *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->in);
    c->in = NULL;
    free(c->wu);
    c->wu = NULL;
    if (c->inf) nghttp2_hd_inflate_del(c->inf);
    c->inf = NULL;
}

static void queue_wu(struct h2c *c, uint32_t sid, size_t inc)
{
    if (c->wucap - c->wulen < 13) {
        c->wucap = c->wucap ? c->wucap * 2 : 4096;
        c->wu = realloc(c->wu, c->wucap);
        cr_assert(c->wu);
    }
    c->wulen += frame(c->wu + c->wulen, 4, F_WINDOW, 0, sid);
    c->wulen += u32(c->wu + c->wulen, (uint32_t)inc);
}

static void on_frame(struct h2c *c, const uint8_t *f, size_t len)
{
    uint8_t type = f[3], flags = f[4];
    const uint8_t *p = f + 9;
    uint32_t sid = (uint32_t)(f[5] & 0x7f) << 24 | f[6] << 16 | f[7] << 8 | f[8];
    if ((type == F_DATA || type == F_HEADERS) && (flags & FL_END_STREAM)) c->ends++;
    if (type == F_DATA && len && c->ack_data) {
        size_t step = c->ack_step ? c->ack_step : len;
        for (size_t off = 0; off < len; off += step) {
            size_t k = len - off < step ? len - off : step;
            queue_wu(c, sid, k);
            queue_wu(c, 0, k);
        }
    }
    switch (type) {
    case F_GOAWAY:
        c->goaway = true;
        if (len >= 8) c->goaway_code = (uint32_t)p[4] << 24 | p[5] << 16 | p[6] << 8 | p[7];
        break;
    case F_RST:
        c->rst++;
        if (len >= 4) c->rst_code = (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
        break;
    case F_SETTINGS:
        if (!(flags & FL_ACK)) c->settings++;
        break;
    case F_PING:
        if (flags & FL_ACK) c->pings++;
        break;
    case F_DATA: c->data += len; break;
    case F_WINDOW:
        if (!(f[5] | f[6] | f[7] | f[8])) c->conn_wu++;
        break;
    case F_HEADERS: {
        /* the gateway sends neither padding nor priority */
        const uint8_t *in = p;
        size_t left = len;
        for (;;) {
            nghttp2_nv nv;
            int fl = 0;
            ssize_t k = nghttp2_hd_inflate_hd2(c->inf, &nv, &fl, in, left, 1);
            if (k < 0) break;
            in += k;
            left -= (size_t)k;
            if (fl & NGHTTP2_HD_INFLATE_EMIT) {
                if (nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0)
                    c->status =
                        nv.valuelen == 3 ? (int)strtol((const char *)nv.value, NULL, 10) : -1;
                if (nv.namelen == 14 && memcmp(nv.name, "privgate-error", 14) == 0)
                    snprintf(c->error, sizeof(c->error), "%.*s", (int)nv.valuelen, nv.value);
            }
            if (fl & NGHTTP2_HD_INFLATE_FINAL) {
                nghttp2_hd_inflate_end_headers(c->inf);
                break;
            }
            if (k == 0 && left == 0) break;
        }
        break;
    }
    default: break;
    }
}

/* Reads what is there (waiting up to |ms| for something); parses whole
 * frames. Returns false when nothing came. */
static bool pump(struct h2c *c, int ms)
{
    if (c->eof) return false;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, ms) <= 0) return false;
    bool got = false;
    for (;;) {
        if (c->icap - c->ilen < 65536) {
            c->icap = c->icap ? c->icap * 2 : 262144;
            c->in = realloc(c->in, c->icap);
            cr_assert(c->in);
        }
        ssize_t k = recv(c->fd, c->in + c->ilen, c->icap - c->ilen, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (k <= 0) {
            c->eof = true;
            break;
        }
        got = true;
        c->ilen += (size_t)k;
    }
    size_t off = 0;
    while (c->ilen - off >= 9) {
        const uint8_t *f = c->in + off;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (c->ilen - off < 9 + len) break;
        on_frame(c, f, len);
        off += 9 + len;
    }
    memmove(c->in, c->in + off, c->ilen - off);
    c->ilen -= off;
    return got || c->eof;
}

/* Sends all of |p|, reading meanwhile. Returns false when the gateway
 * closed, or stopped reading for 2 s (it has given up on us). */
static bool h2c_send(struct h2c *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        if (c->eof) return false;
        ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
        if (k > 0) {
            b += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            c->eof = true;
            return false;
        }
        pump(c, 0);
        struct pollfd pfd = {c->fd, POLLOUT | POLLIN, 0};
        if (poll(&pfd, 1, 2000) <= 0) return false;
        if (pfd.revents & POLLIN) pump(c, 0);
    }
    pump(c, 0);
    return true;
}

/* Sends the queued WINDOW_UPDATEs (a reader keeping up with its
 * responses). Only between frames of ours: h2c_send may stop mid-buffer.
 * Returns false when the gateway closed. */
static bool h2c_flush_wu(struct h2c *c)
{
    while (c->wulen > 0) {
        size_t n = c->wulen;
        uint8_t *b = malloc(n);
        cr_assert(b);
        memcpy(b, c->wu, n);
        c->wulen = 0; /* h2c_send reads, and may queue more */
        bool ok = h2c_send(c, b, n);
        free(b);
        if (!ok) return false;
        c->wu_sent += (int)(n / 13);
    }
    return true;
}

/* Preface and SETTINGS (|iv|: id/value pairs). */
static void h2c_start(struct h2c *c, const uint32_t *iv, size_t niv)
{
    uint8_t b[128];
    memcpy(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    size_t n = 24 + frame(b + 24, niv * 6, F_SETTINGS, 0, 0);
    for (size_t i = 0; i < niv; i++) {
        b[n++] = (uint8_t)(iv[2 * i] >> 8);
        b[n++] = (uint8_t)iv[2 * i];
        n += u32(b + n, iv[2 * i + 1]);
    }
    cr_assert(h2c_send(c, b, n));
}

/* Waits (reading) until the gateway closed the connection. */
static bool wait_closed(struct h2c *c, int ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!c->eof) {
        pump(c, 200);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 > ms) break;
    }
    return c->eof;
}

static void expect_calm(struct h2c *c, const char *what)
{
    cr_expect(wait_closed(c, 15000), "%s: the abusive connection stays open", what);
    cr_expect(c->goaway, "%s: no GOAWAY", what);
    cr_expect_eq(c->goaway_code, ENHANCE_YOUR_CALM, "%s: GOAWAY code %u", what, c->goaway_code);
}

static void start(const char *yaml)
{
    start_shop(&E, yaml);
    good_request("before");
}

/* ------------------------------------------------------------- attacks */

/* 1. CVE-2023-44487: HEADERS then RST_STREAM, thousands of times. */
Test(abuse, rapid_reset)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    enum { N = 5000, BATCH = 100 };
    static uint8_t buf[BATCH * 200];
    int sent = 0;
    for (int b = 0; b < N / BATCH && !c.goaway; b++) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++) {
            uint32_t sid = (uint32_t)(2 * (b * BATCH + i) + 1);
            n +=
                headers(buf + n, sid, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
            n += frame(buf + n, 4, F_RST, 0, sid);
            n += u32(buf + n, 8); /* CANCEL */
        }
        if (!h2c_send(&c, buf, n)) break;
        sent += BATCH;
    }
    good_request("during rapid reset"); /* the attacker's connection is still open */
    expect_calm(&c, "rapid reset");
    h2c_close(&c);
    size_t up = e2e_count_lines(E.record);
    fprintf(stderr, "abuse rapid reset: %d streams sent, %zu reached the provider\n", sent, up);
    cr_expect(up < N / 10, "%zu of %d reset streams reached the provider", up, N);
    after_attack("rapid reset");
}

/* 2. CVE-2024-28182: HEADERS without END_HEADERS, then CONTINUATIONs
 * for ever. */
Test(abuse, continuation_flood)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    static uint8_t buf[64 * 1024];
    size_t n = headers(buf, 1, "GET", "/shop/v1/ping", NULL, FL_END_STREAM);
    cr_assert(h2c_send(&c, buf, n));
    char v[100];
    memset(v, 'a', sizeof(v));
    int frames = 0;
    for (int b = 0; b < 1000 && !c.eof; b++) {
        n = 0;
        for (int i = 0; i < 100; i++) {
            size_t k = hp_lit(buf + n + 9, 0, "x-c", v, sizeof(v));
            n += frame(buf + n, k, F_CONT, 0, 1) + k;
        }
        if (!h2c_send(&c, buf, n)) break;
        frames += 100;
    }
    good_request("during continuation flood");
    expect_calm(&c, "continuation flood");
    h2c_close(&c);
    fprintf(stderr, "abuse continuation flood: %d CONTINUATION frames sent\n", frames);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the good requests only */
    after_attack("continuation flood");
}

/* Our own header-list count spans CONTINUATIONs: a list over
 * max_header_bytes spread over HEADERS + 5 CONTINUATIONs (within
 * nghttp2's 8) is answered 431, and the connection stays usable. */
Test(abuse, header_list_counted_across_continuations)
{
    start("limits:\n  max_header_bytes: 16KiB\n");
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    static uint8_t buf[64 * 1024];
    size_t n = headers(buf, 1, "GET", "/shop/v1/ping", NULL, FL_END_STREAM);
    char v[3000];
    memset(v, 'b', sizeof(v));
    for (int i = 0; i < 6; i++) {
        size_t k = hp_lit(buf + n + 9, 0, "x-c", v, sizeof(v));
        n += frame(buf + n, k, F_CONT, i == 5 ? FL_END_HEADERS : 0, 1) + k;
    }
    cr_assert(h2c_send(&c, buf, n));
    for (int i = 0; i < 100 && !c.status && !c.eof; i++)
        pump(&c, 200);
    cr_expect_eq(c.status, 431, "status %d", c.status);
    cr_expect_str_eq(c.error, "invalid_request");
    cr_expect_not(c.goaway, "a 431 is no attack");
    /* the same connection serves the next request */
    c.status = 0;
    n = headers(buf, 3, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
    cr_assert(h2c_send(&c, buf, n));
    for (int i = 0; i < 100 && !c.status && !c.eof; i++)
        pump(&c, 200);
    cr_expect_eq(c.status, 200, "status %d", c.status);
    h2c_close(&c);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the two good requests only */
}

/* 3. HPACK bomb: one 4 KB header inserted into the dynamic table, then
 * referenced by 1-byte indexed fields: 16 KB on the wire decode to 64 MB. */
Test(abuse, hpack_bomb)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    static uint8_t buf[16384 + 9];
    size_t n = 9 + req_block(buf + 9, "GET", "/shop/v1/ping", NULL);
    static char v[4000];
    memset(v, 'z', sizeof(v));
    buf[n++] = 0x40; /* literal with incremental indexing, new name */
    n += hp_str(buf + n, "x-bomb", 6);
    n += hp_str(buf + n, v, sizeof(v));
    size_t refs = 0;
    while (n < sizeof(buf)) {
        buf[n++] = 0x80 | 62; /* the first dynamic entry */
        refs++;
    }
    frame(buf, n - 9, F_HEADERS, FL_END_HEADERS | FL_END_STREAM, 1);
    h2c_send(&c, buf, n);
    fprintf(stderr, "abuse hpack bomb: %zu wire bytes decode to %zu bytes\n", n,
            refs * (6 + sizeof(v) + 32));
    good_request("during hpack bomb");
    expect_calm(&c, "hpack bomb");
    h2c_close(&c);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the good requests only */
    after_attack("hpack bomb");
}

/* 4. PING and SETTINGS floods, from a peer that does not read. */
static void flood(uint8_t type, const char *what)
{
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    enum { N = 20000, BATCH = 500 };
    static uint8_t buf[BATCH * 17];
    int sent = 0;
    for (int b = 0; b < N / BATCH; b++) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++) {
            n += frame(buf + n, type == F_PING ? 8 : 0, type, 0, 0);
            if (type == F_PING) {
                memset(buf + n, 0, 8);
                n += 8;
            }
        }
        /* not reading: plain send, stop once the gateway stops reading */
        const uint8_t *p = buf;
        while (n > 0) {
            struct pollfd pfd = {c.fd, POLLOUT, 0};
            if (poll(&pfd, 1, 2000) <= 0 || (pfd.revents & (POLLERR | POLLHUP))) break;
            ssize_t k = send(c.fd, p, n, MSG_NOSIGNAL);
            if (k <= 0 && errno != EAGAIN) break;
            if (k > 0) {
                p += k;
                n -= (size_t)k;
            }
        }
        if (n > 0) break;
        sent += BATCH;
    }
    good_request(what);
    expect_calm(&c, what);
    fprintf(stderr, "abuse %s: %d frames sent, %d ACKs came back\n", what, sent,
            type == F_PING ? c.pings : -1);
    h2c_close(&c);
    after_attack(what);
}

Test(abuse, ping_flood)
{
    start(NULL);
    flood(F_PING, "ping flood");
}

Test(abuse, settings_flood)
{
    start(NULL);
    flood(F_SETTINGS, "settings flood");
    /* and one SETTINGS frame with more entries than max_settings (32) */
    struct h2c c;
    h2c_open(&c);
    uint32_t iv[80];
    for (int i = 0; i < 40; i++) {
        iv[2 * i] = 0x4; /* INITIAL_WINDOW_SIZE, again and again */
        iv[2 * i + 1] = 65535;
    }
    uint8_t b[512];
    memcpy(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    size_t n = 24 + frame(b + 24, 40 * 6, F_SETTINGS, 0, 0);
    for (int i = 0; i < 40; i++) {
        b[n++] = 0;
        b[n++] = (uint8_t)iv[2 * i];
        n += u32(b + n, iv[2 * i + 1]);
    }
    cr_assert(h2c_send(&c, b, n));
    expect_calm(&c, "settings with 40 entries");
    h2c_close(&c);
    after_attack("settings with 40 entries");
}

/* 5. "MadeYouReset" (CVE-2025-8671): the client makes the SERVER reset its
 * streams — a WINDOW_UPDATE that overflows the stream window, DATA beyond
 * the content-length. */
Test(abuse, made_you_reset)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    enum { N = 4000, BATCH = 50 };
    static uint8_t buf[BATCH * 300];
    int sent = 0;
    for (int b = 0; b < N / BATCH && !c.goaway && !c.eof; b++) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++) {
            uint32_t sid = (uint32_t)(2 * (b * BATCH + i) + 1);
            if (i % 2) {
                n += headers(buf + n, sid, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
                n += frame(buf + n, 4, F_WINDOW, 0, sid);
                n += u32(buf + n, 0x7fffffff); /* 65535 + 2^31-1: overflow */
            } else {
                n += headers(buf + n, sid, "PUT", "/shop/v1/blob/x", "1", FL_END_HEADERS);
                n += frame(buf + n, 10, F_DATA, FL_END_STREAM, sid);
                memcpy(buf + n, "0123456789", 10); /* 10 bytes, 1 announced */
                n += 10;
            }
        }
        if (!h2c_send(&c, buf, n)) break;
        sent += BATCH;
    }
    good_request("during made-you-reset");
    expect_calm(&c, "made-you-reset");
    fprintf(stderr, "abuse made-you-reset: %d streams sent, %d RST_STREAM received\n", sent, c.rst);
    cr_expect(c.rst > 0, "the gateway reset no stream");
    h2c_close(&c);
    cr_expect(e2e_count_lines(E.record) < N / 10);
    after_attack("made-you-reset");
}

/* 6. Empty DATA frames without END_STREAM, for ever. */
Test(abuse, empty_data_flood)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    static uint8_t buf[1000 * 9 + 512];
    size_t n = headers(buf, 1, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
    cr_assert(h2c_send(&c, buf, n));
    int sent = 0;
    for (int b = 0; b < 50 && !c.goaway && !c.eof; b++) {
        n = 0;
        for (int i = 0; i < 1000; i++)
            n += frame(buf + n, 0, F_DATA, 0, 1);
        if (!h2c_send(&c, buf, n)) break;
        sent += 1000;
    }
    good_request("during empty data flood");
    expect_calm(&c, "empty data flood");
    fprintf(stderr, "abuse empty DATA flood: %d frames sent\n", sent);
    h2c_close(&c);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the good requests only */
    after_attack("empty data flood");
}

/* 7. A caller with a 1-byte window that never reads a large response:
 * memory stays bounded (response pipe + upstream window) and the stream
 * is reset after idle_timeout without progress. */
/* Preface, SETTINGS with INITIAL_WINDOW_SIZE |window|, the gateway's
 * SETTINGS and connection WINDOW_UPDATE awaited, its SETTINGS acknowledged. */
static void h2c_handshake(struct h2c *c, uint32_t window)
{
    const uint32_t iv[] = {0x4, window};
    h2c_start(c, iv, 1);
    for (int i = 0; i < 50 && !(c->settings && c->conn_wu); i++)
        pump(c, 100);
    cr_assert(c->settings && c->conn_wu);
    uint8_t ack[9];
    frame(ack, 0, F_SETTINGS, FL_ACK, 0);
    cr_assert(h2c_send(c, ack, 9));
}

/* A PUT of |len| bytes of 0x01 on stream |sid| to the echoing blob route,
 * in DATA frames of 16 KiB; returns the bytes written to |buf|. */
static size_t put_blob(uint8_t *buf, uint32_t sid, size_t len)
{
    size_t n = headers(buf, sid, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
    for (size_t off = 0; off < len; off += 16384) {
        size_t k = len - off < 16384 ? len - off : 16384;
        n += frame(buf + n, k, F_DATA, off + k == len ? FL_END_STREAM : 0, sid);
        memset(buf + n, 1, k);
        n += k;
    }
    return n;
}

Test(abuse, one_byte_window_dribble)
{
    /* upstream_timeout far away: the reset must come from the stall rule */
    start("limits:\n  idle_timeout: 700ms\n  upstream_timeout: 60s\n");
    long rss0 = e2e_proc_kb(E.gw_pid, "VmRSS");
    struct h2c c;
    h2c_open(&c);
    h2c_handshake(&c, 1); /* SETTINGS_INITIAL_WINDOW_SIZE 1 */
    /* 200 KB of control bytes: the provider's JSON echo is 6 times that */
    enum { BODY = 200000 };
    static uint8_t buf[BODY + 64 * 9 + 512];
    size_t n = put_blob(buf, 1, BODY);
    cr_assert(h2c_send(&c, buf, n));
    good_request("during a dribble");
    for (int i = 0; i < 100 && !c.rst && !c.eof; i++)
        pump(&c, 200);
    cr_expect_eq(c.status, 200, "the response head did not come (%d)", c.status);
    cr_expect_eq(c.rst, 1, "the stalled stream was not reset");
    cr_expect(c.data <= 9 + 1, "%zu DATA bytes through a 1-byte window", c.data);
    long rss1 = e2e_proc_kb(E.gw_pid, "VmRSS");
    fprintf(stderr, "abuse dribble: VmRSS %ld -> %ld kB while stalled\n", rss0, rss1);
    /* the connection, idle now, goes too */
    cr_expect(wait_closed(&c, 15000), "the idle connection stays open");
    h2c_close(&c);
    cr_expect_eq(e2e_count_lines(E.record), 3); /* the good requests and the PUT */
    after_attack("dribble");
    cr_expect(e2e_proc_kb(E.gw_pid, "VmHWM") - rss0 < (ASAN ? 64 : 16) * 1024,
              "a stalled 1.2 MB response raised the peak RSS by %ld kB",
              e2e_proc_kb(E.gw_pid, "VmHWM") - rss0);
}

/* 8. Slowloris, HTTP/2: a head that never ends, a body that stops, a
 * connection without a request. */
#define SLOW_YAML "limits:\n  header_timeout: 300ms\n"

Test(abuse, slow_h2_head)
{
    start(SLOW_YAML);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    uint8_t buf[512];
    size_t n = headers(buf, 1, "GET", "/shop/v1/ping", NULL, FL_END_STREAM); /* no END_HEADERS */
    cr_assert(h2c_send(&c, buf, n));
    good_request("during a slow h2 head");
    expect_calm(&c, "slow h2 head");
    h2c_close(&c);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the good requests only */
    after_attack("slow h2 head");
}

static bool wait_text(const char *path, const char *text, int ms);

Test(abuse, slow_h2_body)
{
    start(SLOW_YAML);
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    uint8_t buf[512];
    size_t n = headers(buf, 1, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
    n += frame(buf + n, 10, F_DATA, 0, 1);
    memcpy(buf + n, "0123456789", 10);
    n += 10;
    cr_assert(h2c_send(&c, buf, n));
    good_request("during a slow h2 body");
    for (int i = 0; i < 100 && !c.status && !c.eof; i++)
        pump(&c, 200);
    cr_expect_eq(c.status, 408, "status %d", c.status);
    cr_expect_str_eq(c.error, "invalid_request");
    /* the stream still open from the caller's side is then reset */
    for (int i = 0; i < 100 && !c.rst && !c.eof; i++)
        pump(&c, 200);
    cr_expect_eq(c.rst, 1);
    cr_expect_eq(c.rst_code, 0, "RST_STREAM code %u", c.rst_code);
    h2c_close(&c);
    /* the 10 bytes may have left, the request never completed upstream */
    cr_expect_eq(e2e_count_lines(E.record), 2);
    /* and since they may have, the audit says failed, not refused */
    cr_expect(wait_text(E.audit, "\"status\":408,\"outcome\":\"failed\"", 15000),
              "no failed 408 in the audit log");
    after_attack("slow h2 body");
}

static void read_until(struct h2c *c, int want);

/* A GET on an established connection; true when its 200 came. */
static bool late_request(struct h2c *c, uint32_t sid)
{
    uint8_t buf[512];
    size_t n = headers(buf, sid, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
    int want = c->ends + 1; /* before sending: h2c_send reads too */
    if (!h2c_send(c, buf, n)) return false;
    read_until(c, want);
    return c->ends == want && c->status == 200 && !c->goaway;
}

Test(abuse, h2_connection_without_request)
{
    start(SLOW_YAML);
    /* a preface and SETTINGS, then nothing: a pooled connection opened
     * ahead of use, governed by idle_timeout, not header_timeout */
    struct h2c b;
    h2c_open(&b);
    h2c_start(&b, NULL, 0);
    /* half a preface, opened after |b| */
    struct h2c a;
    h2c_open(&a);
    cr_assert(h2c_send(&a, "PRI * HTTP/2.0\r\n", 16));
    good_request("during idle h2 connections");
    cr_expect(wait_closed(&a, 15000), "a half preface keeps its connection");
    /* header_timeout has passed for |b| too: it still serves */
    cr_expect(late_request(&b, 1), "an established connection was closed before its request");
    h2c_close(&a);
    h2c_close(&b);
    after_attack("h2 without request");
}

/* Slowloris, HTTP/1.1. */
static char *h1_exchange(const char *req, size_t len, bool *closed)
{
    struct h2c c;
    h2c_open(&c);
    cr_assert(h2c_send(&c, req, len));
    good_request("during a slow HTTP/1.1 request");
    *closed = wait_closed(&c, 15000);
    char *out = malloc(c.ilen + 1);
    memcpy(out, c.in ? (char *)c.in : "", c.ilen);
    out[c.ilen] = '\0';
    h2c_close(&c);
    return out;
}

Test(abuse, slow_h1_head)
{
    start(SLOW_YAML);
    const char req[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" H_PURPOSE "\r\n";
    bool closed;
    char *r = h1_exchange(req, sizeof(req) - 1, &closed);
    cr_expect(strncmp(r, "HTTP/1.1 408 ", 13) == 0, "%s", r);
    cr_expect(strstr(r, "privgate-error: invalid_request\r\n") != NULL, "%s", r);
    cr_expect(closed, "the connection stays open");
    free(r);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* the good requests only */
    after_attack("slow h1 head");
}

Test(abuse, slow_h1_body)
{
    start(SLOW_YAML);
    const char req[] = "PUT /shop/v1/blob/x HTTP/1.1\r\nhost: gw\r\n" H_PURPOSE "\r\n" H_CALLER
                       "\r\ncontent-length: 100\r\n\r\n0123456789";
    bool closed;
    char *r = h1_exchange(req, sizeof(req) - 1, &closed);
    cr_expect(strncmp(r, "HTTP/1.1 408 ", 13) == 0, "%s", r);
    cr_expect(strstr(r, "privgate-error: invalid_request\r\n") != NULL, "%s", r);
    cr_expect(strstr(r, "connection: close\r\n") != NULL, "%s", r);
    cr_expect(closed, "the connection stays open");
    free(r);
    cr_expect_eq(e2e_count_lines(E.record), 2); /* never forwarded as complete */
    cr_expect(wait_text(E.audit, "\"status\":408,\"outcome\":\"failed\"", 15000),
              "no failed 408 in the audit log");
    after_attack("slow h1 body");
}

/* A refused request whose body then stalls: the body that is read and
 * dropped must progress too, or the connection closes. */
Test(abuse, slow_h1_body_after_refusal)
{
    start(SLOW_YAML);
    /* no purpose: refused at once, before the body */
    const char req[] = "PUT /shop/v1/blob/x HTTP/1.1\r\nhost: gw\r\n" H_CALLER
                       "\r\ncontent-length: 100\r\n\r\n0123456789";
    bool closed;
    char *r = h1_exchange(req, sizeof(req) - 1, &closed);
    cr_expect(strncmp(r, "HTTP/1.1 400 ", 13) == 0, "%s", r);
    cr_expect(strstr(r, "privgate-error: purpose_required\r\n") != NULL, "%s", r);
    cr_expect(closed, "the connection stays open");
    free(r);
    after_attack("slow h1 body after a refusal");
}

/* Polls |path| (a condition, not a delay) until it holds |needle|. */
static bool wait_text(const char *path, const char *needle, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        char *p = e2e_read(path, NULL);
        bool ok = p && strstr(p, needle);
        free(p);
        if (ok) return true;
        poll(NULL, 0, 10);
    }
    return false;
}

/* HTTP/1.1 caller that does not read a large response: the exchange is
 * given up after idle_timeout without progress and the connection closed;
 * the gateway's memory stays bounded meanwhile. */
Test(abuse, h1_reader_that_stops)
{
    start("limits:\n  idle_timeout: 700ms\n  upstream_timeout: 60s\n");
    long rss0 = e2e_proc_kb(E.gw_pid, "VmRSS");
    /* a small receive buffer, set before connecting (it sets the window
     * scale): the response does not vanish into the kernel's buffers */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)E.gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    /* 1 MB of control bytes: a 6 MB JSON echo, more than the kernel's
     * socket buffers (tcp_wmem) and the gateway's own hold */
    enum { BODY = 1000000 };
    static char req[BODY + 512];
    int n = snprintf(req, 512,
                     "PUT /shop/v1/blob/x HTTP/1.1\r\nhost: gw\r\n" H_PURPOSE "\r\n" H_CALLER
                     "\r\ncontent-length: %d\r\n\r\n",
                     BODY);
    memset(req + n, 1, BODY);
    for (size_t off = 0; off < (size_t)n + BODY;) {
        ssize_t k = send(fd, req + off, (size_t)n + BODY - off, MSG_NOSIGNAL);
        cr_assert(k > 0, "send: %s", strerror(errno));
        off += (size_t)k;
    }
    good_request("during a stopped HTTP/1.1 reader");
    /* the audit record of the exchange is written when it is given up */
    cr_expect(wait_text(E.audit, "\"outcome\":\"failed\",\"error\":\"invalid_request\"", 15000),
              "the stalled exchange was not given up");
    long rss1 = e2e_proc_kb(E.gw_pid, "VmRSS");
    fprintf(stderr, "abuse h1 reader that stops: VmRSS %ld -> %ld kB\n", rss0, rss1);
    /* what was sent, then the end (a large buffer again: with a tiny one
     * the transfer would crawl at the pace of TCP's zero-window probes) */
    int big = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    struct h2c c;
    memset(&c, 0, sizeof(c));
    c.fd = fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    cr_assert(nghttp2_hd_inflate_new(&c.inf) == 0);
    cr_expect(wait_closed(&c, 15000), "the connection stays open");
    h2c_close(&c);
    after_attack("h1 reader that stops");
    cr_expect(e2e_proc_kb(E.gw_pid, "VmHWM") - rss0 < (ASAN ? 64 : 16) * 1024,
              "a stalled 6 MB response raised the peak RSS by %ld kB",
              e2e_proc_kb(E.gw_pid, "VmHWM") - rss0);
}

/* 9. Many idle HTTP/2 connections. */
static void raise_nofile(void)
{
    struct rlimit rl;
    cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* Opens |n| connections with a preface + SETTINGS each, waiting for the
 * gateway's SETTINGS on every one (so each is accepted and has a
 * session). Returns how many were opened. */
static int open_idle(int *fds, int n)
{
    static const uint8_t hello[24 + 9] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    int done = 0;
    enum { BATCH = 500 };
    while (done < n) {
        int k = n - done < BATCH ? n - done : BATCH;
        static struct pollfd pf[BATCH];
        for (int i = 0; i < k; i++) {
            fds[done + i] = tcp_connect(E.gw_port, true);
            pf[i].fd = fds[done + i];
            pf[i].events = POLLOUT;
        }
        int left = k;
        bool sent[BATCH] = {0}, got[BATCH] = {0};
        while (left > 0) {
            int r = poll(pf, (nfds_t)k, 10000);
            cr_assert(r > 0, "connections not accepted (%d of %d left)", left, k);
            for (int i = 0; i < k; i++) {
                if (!pf[i].revents) continue;
                cr_assert(!(pf[i].revents & (POLLERR | POLLHUP)), "connection %d failed", done + i);
                if (!sent[i] && (pf[i].revents & POLLOUT)) {
                    cr_assert(send(pf[i].fd, hello, sizeof(hello), MSG_NOSIGNAL) ==
                              (ssize_t)sizeof(hello));
                    sent[i] = true;
                    pf[i].events = POLLIN;
                } else if (!got[i] && (pf[i].revents & POLLIN)) {
                    uint8_t b[256];
                    cr_assert(recv(pf[i].fd, b, sizeof(b), 0) > 0, "connection %d closed",
                              done + i);
                    got[i] = true;
                    pf[i].events = 0;
                    left--;
                }
            }
        }
        done += k;
    }
    return done;
}

Test(abuse, many_idle_connections)
{
    raise_nofile();
    /* header_timeout and idle_timeout far away: this measures idle cost */
    start("limits:\n  header_timeout: 600s\n  idle_timeout: 600s\n");
    enum { N = ASAN ? 2000 : 10000 };
    static int fds[N];
    long fd0 = fd_count(E.gw_pid), rss0 = e2e_proc_kb(E.gw_pid, "VmRSS");
    int n = open_idle(fds, N);
    long fd1 = fd_count(E.gw_pid), rss1 = e2e_proc_kb(E.gw_pid, "VmRSS");
    fprintf(stderr,
            "abuse idle connections: %d open; gateway fds %ld -> %ld, VmRSS %ld -> %ld kB "
            "(%.0f bytes per idle connection)\n",
            n, fd0, fd1, rss0, rss1, (double)(rss1 - rss0) * 1024.0 / n);
    /* the baseline may still count the connections of the start-up probe
     * and the first request, which the gateway closes when it sees their
     * EOF: up to 2 fewer */
    cr_expect(fd1 - fd0 >= n - 2, "the gateway holds %ld new fds for %d connections", fd1 - fd0, n);
    cr_expect((rss1 - rss0) * 1024 / n < (ASAN ? 256 : 64) * 1024, "%ld bytes per idle connection",
              (rss1 - rss0) * 1024 / n);
    good_request("with many idle connections");
    for (int i = 0; i < n; i++)
        close(fds[i]);
    /* the gateway sees every EOF and closes its side */
    long fd2 = 0;
    for (int i = 0; i < 3000; i++) {
        fd2 = fd_count(E.gw_pid);
        if (fd2 <= fd0 + 16) break;
        poll(NULL, 0, 10);
    }
    fprintf(stderr, "abuse idle connections: closed; gateway fds %ld\n", fd2);
    cr_expect(fd2 <= fd0 + 16, "gateway fds %ld after closing, %ld before", fd2, fd0);
    /* meson test sets MALLOC_PERTURB_, which touches every allocated
     * byte: about twice the RSS per connection */
    after_attack_max("many idle connections", HWM_MAX_KB + (long)n * (ASAN ? 256 : 64));
}

Test(abuse, idle_timeout_closes_idle_connections)
{
    raise_nofile();
    /* 1 s: far more than opening 100 connections takes, so that each one
     * is closed by the idle timeout, not while it is being opened */
    start("limits:\n  idle_timeout: 1s\n  header_timeout: 600s\n");
    enum { N = 100 };
    static int fds[N];
    int n = open_idle(fds, N);
    int closed = 0;
    for (int i = 0; i < n; i++) {
        struct h2c c;
        memset(&c, 0, sizeof(c));
        c.fd = fds[i];
        cr_assert(nghttp2_hd_inflate_new(&c.inf) == 0);
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        if (wait_closed(&c, 15000) && c.goaway) closed++;
        h2c_close(&c);
    }
    cr_expect_eq(closed, n, "%d of %d idle connections closed with GOAWAY", closed, n);
    after_attack("idle timeout");
}

/* 10. Control frames that do nothing for the gateway: PRIORITY, frames of
 * unknown types (PRIORITY_UPDATE among them), WINDOW_UPDATEs for closed
 * streams or beyond what flow control needs. Each is free within an
 * allowance earned by the connection's requests and DATA frames, then
 * costs the abuse budget. */
enum { F_PRIORITY = 2, F_PRIORITY_UPDATE = 0x10, F_UNKNOWN = 0xfa };

/* Sends |unit| (whole frames) again and again, up to |n| times, until the
 * gateway says GOAWAY or closes. Returns how many were sent. */
static int repeat(struct h2c *c, const uint8_t *unit, size_t ulen, int n)
{
    enum { BATCH = 256, UMAX = 64 };
    static uint8_t buf[BATCH * UMAX];
    cr_assert(ulen <= UMAX);
    int sent = 0;
    while (sent < n && !c->goaway && !c->eof) {
        size_t k = 0;
        for (int i = 0; i < BATCH; i++) {
            memcpy(buf + k, unit, ulen);
            k += ulen;
        }
        if (!h2c_send(c, buf, k)) break;
        sent += BATCH;
    }
    return sent;
}

static size_t priority(uint8_t *o, uint32_t sid)
{
    size_t n = frame(o, 5, F_PRIORITY, 0, sid);
    n += u32(o + n, 0); /* depends on nothing, not exclusive */
    o[n++] = 15;        /* weight 16 */
    return n;
}

static size_t priority_update(uint8_t *o, uint32_t sid)
{
    size_t n = frame(o, 7, F_PRIORITY_UPDATE, 0, 0);
    n += u32(o + n, sid);
    memcpy(o + n, "u=2", 3);
    return n + 3;
}

static size_t window_update(uint8_t *o, uint32_t sid, uint32_t inc)
{
    size_t n = frame(o, 4, F_WINDOW, 0, sid);
    return n + u32(o + n, inc);
}

/* One GET on |sid| of |c|, answered and closed. */
static void one_request(struct h2c *c, uint32_t sid)
{
    uint8_t buf[512];
    size_t n = headers(buf, sid, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
    int ends = c->ends;
    cr_assert(h2c_send(c, buf, n));
    for (int i = 0; i < 100 && c->ends == ends && !c->eof; i++)
        pump(c, 200);
    cr_assert_eq(c->status, 200, "status %d", c->status);
    cr_assert_gt(c->ends, ends, "the response did not end");
}

static void control_flood(const uint8_t *unit, size_t ulen, bool after_request, const char *what)
{
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    if (after_request) one_request(&c, 1);
    int sent = repeat(&c, unit, ulen, 20000);
    good_request(what);
    expect_calm(&c, what);
    fprintf(stderr, "abuse %s: %d frames sent\n", what, sent);
    h2c_close(&c);
    after_attack(what);
}

Test(abuse, priority_flood)
{
    start(NULL);
    uint8_t f[32];
    size_t n = priority(f, 1); /* an idle stream: RFC 7540 allowed it */
    control_flood(f, n, false, "priority flood");
    n = priority(f, 1); /* the stream just closed */
    control_flood(f, n, true, "priority flood on a closed stream");
    cr_expect_eq(e2e_count_lines(E.record), 6); /* 5 good requests and one GET */
}

Test(abuse, unknown_frame_flood)
{
    start(NULL);
    uint8_t f[64];
    size_t n = frame(f, 8, F_UNKNOWN, 0, 0);
    memset(f + n, 0, 8);
    n += 8;
    control_flood(f, n, false, "unknown frame flood");
    n = priority_update(f, 1);
    control_flood(f, n, false, "PRIORITY_UPDATE flood");
    cr_expect_eq(e2e_count_lines(E.record), 5); /* the good requests only */
}

Test(abuse, window_update_flood)
{
    start(NULL);
    uint8_t f[16];
    size_t n = window_update(f, 1, 1); /* a stream that is closed */
    control_flood(f, n, true, "WINDOW_UPDATE flood on a closed stream");
    n = window_update(f, 0, 1); /* the connection, 1 byte at a time */
    control_flood(f, n, false, "WINDOW_UPDATE flood on the connection");
    n = window_update(f, 3, 1); /* an open stream whose answer waits */
    struct h2c c;
    h2c_open(&c);
    h2c_start(&c, NULL, 0);
    uint8_t buf[512];
    size_t k = headers(buf, 3, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
    cr_assert(h2c_send(&c, buf, k));
    int sent = repeat(&c, f, n, 20000);
    good_request("WINDOW_UPDATE flood on an open stream");
    expect_calm(&c, "WINDOW_UPDATE flood on an open stream");
    fprintf(stderr, "abuse WINDOW_UPDATE flood on an open stream: %d sent\n", sent);
    h2c_close(&c);
    after_attack("WINDOW_UPDATE flood on an open stream");
    /* 7 good requests and one GET; the PUT never ended */
    cr_expect_eq(e2e_count_lines(E.record), 8);
}

/* A WINDOW_UPDATE of 0 is a protocol error (RFC 9113 6.9); nghttp2 1.52
 * makes it a connection error for a stream too: GOAWAY(PROTOCOL_ERROR),
 * delivered although the peer keeps sending. */
Test(abuse, window_update_zero_increment)
{
    start(NULL);
    for (uint32_t sid = 0; sid <= 1; sid++) {
        struct h2c c;
        h2c_open(&c);
        h2c_start(&c, NULL, 0);
        uint8_t buf[512];
        size_t n = 0;
        if (sid) n = headers(buf, sid, "PUT", "/shop/v1/blob/x", NULL, FL_END_HEADERS);
        n += window_update(buf + n, sid, 0);
        cr_assert(h2c_send(&c, buf, n));
        /* and the peer goes on sending: its unread bytes must not turn
         * the GOAWAY into a reset before it is read */
        uint8_t ping[17];
        frame(ping, 8, F_PING, 0, 0);
        memset(ping + 9, 0, 8);
        repeat(&c, ping, sizeof(ping), 20000);
        cr_expect(wait_closed(&c, 15000), "stream %u: the connection stays open", sid);
        cr_expect(c.goaway && c.goaway_code == 1, "stream %u: GOAWAY %d code %u", sid, c.goaway,
                  c.goaway_code);
        h2c_close(&c);
    }
    cr_expect_eq(e2e_count_lines(E.record), 1); /* the good request only */
    after_attack("zero WINDOW_UPDATE");
}

/* What a legitimate client does costs nothing: a reader that acknowledges
 * every DATA frame of a 600 KB response through a 1 KiB stream window
 * (over a thousand WINDOW_UPDATEs, stream and connection), and 300
 * requests each followed by a PRIORITY and a PRIORITY_UPDATE frame. */

/* Reads and acknowledges until |want| responses ended (or 60 s: a bound
 * for a broken gateway, not a pace). */
static void read_until(struct h2c *c, int want)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (c->ends < want && !c->eof) {
        pump(c, 100);
        cr_assert(h2c_flush_wu(c), "the gateway closed");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 60) break;
    }
}

Test(abuse, legitimate_control_frames_are_free)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    c.ack_data = true;
    h2c_handshake(&c, 1024); /* SETTINGS_INITIAL_WINDOW_SIZE */
    /* 100 KB of control bytes: a 600 KB JSON echo */
    enum { BODY = 100000 };
    static uint8_t buf[BODY + 64 * 9 + 512];
    size_t n = put_blob(buf, 1, BODY);
    cr_assert(h2c_send(&c, buf, n));
    uint32_t sid = 3;
    int want = 1;
    for (int round = 0; round < 3; round++) {
        n = 0;
        for (int i = 0; i < 100; i++, sid += 2) {
            n +=
                headers(buf + n, sid, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
            n += priority(buf + n, sid);
            n += priority_update(buf + n, sid);
        }
        cr_assert(h2c_flush_wu(&c));
        cr_assert(h2c_send(&c, buf, n), "round %d: the gateway closed", round);
        want += 100;
        read_until(&c, want - 1); /* the round's; the download may still run */
    }
    read_until(&c, want);
    fprintf(stderr,
            "abuse legitimate control frames: %d responses, %zu DATA bytes, %d WINDOW_UPDATEs, "
            "600 priority frames\n",
            c.ends, c.data, c.wu_sent);
    cr_expect_eq(c.ends, want, "%d of %d responses complete", c.ends, want);
    cr_expect_not(c.goaway, "GOAWAY code %u", c.goaway_code);
    cr_expect_not(c.eof, "the connection was closed");
    cr_expect_gt(c.wu_sent, 1000, "only %d WINDOW_UPDATEs: the test proves nothing", c.wu_sent);
    h2c_close(&c);
    after_attack("legitimate control frames");
}

/* A client that reads responses in 4 KiB pieces through large windows (Go's
 * net/http: 4 MiB stream window, a stream and a connection WINDOW_UPDATE per
 * 4 KiB read) never lets the gateway's send window reach 0, so none of its
 * WINDOW_UPDATEs reopens a used-up window: they must still be free. */
Test(abuse, small_reads_through_large_windows_are_free)
{
    start(NULL);
    struct h2c c;
    h2c_open(&c);
    c.ack_data = true;
    c.ack_step = 4096;
    const uint32_t iv[] = {0x4, 4u << 20}; /* SETTINGS_INITIAL_WINDOW_SIZE 4 MiB */
    h2c_start(&c, iv, 1);
    for (int i = 0; i < 50 && !(c.settings && c.conn_wu); i++)
        pump(&c, 100);
    cr_assert(c.settings && c.conn_wu);
    uint8_t ctl[9 + 13];
    size_t n = frame(ctl, 0, F_SETTINGS, FL_ACK, 0);
    /* the connection window too: 1 GiB */
    queue_wu(&c, 0, (1u << 30) - 65535);
    cr_assert(h2c_send(&c, ctl, n));
    cr_assert(h2c_flush_wu(&c));
    enum { BODY = 100000, ROUNDS = 12 };
    static uint8_t buf[BODY + 64 * 9 + 512];
    uint32_t sid = 1;
    for (int round = 0; round < ROUNDS; round++, sid += 2) {
        n = put_blob(buf, sid, BODY);
        cr_assert(h2c_send(&c, buf, n), "round %d: the gateway closed", round);
        read_until(&c, round + 1);
        if (c.eof || c.goaway) break;
    }
    fprintf(stderr, "abuse small reads: %d responses, %zu DATA bytes, %d WINDOW_UPDATEs\n", c.ends,
            c.data, c.wu_sent);
    cr_expect_eq(c.ends, ROUNDS, "%d of %d responses complete", c.ends, ROUNDS);
    cr_expect_not(c.goaway, "GOAWAY code %u", c.goaway_code);
    cr_expect_not(c.eof, "the connection was closed");
    cr_expect_gt(c.wu_sent, 2000, "only %d WINDOW_UPDATEs: the test proves nothing", c.wu_sent);
    h2c_close(&c);
    after_attack("small reads");
}

/* 11. The same attacks over the TLS listener (ALPN h2): the budget and
 * the watchdog are the same, and the GOAWAY must reach the peer through
 * TLS before the connection closes. */

static void tls_cert(void)
{
    char key[512], crt[512];
    snprintf(key, sizeof(key), "%s", e2e_path(&E, "gw.key"));
    snprintf(crt, sizeof(crt), "%s", e2e_path(&E, "gw.pem"));
    e2e_self_signed(key, crt, "localhost");
}

static void start_tls(const char *yaml)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    tls_cert();
    char tls[1024];
    snprintf(tls, sizeof(tls), "      cert: %s/gw.pem\n      key: %s/gw.key\n", E.dir, E.dir);
    if (!e2e_start_gateway_tls(&E, yaml, tls)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

/* A well-behaved request over TLS (curl, ALPN h2, the gateway's
 * certificate trusted). */
static void good_tls_request(const char *what)
{
    char url[128], ca[512];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/shop/v1/ping", E.gw_tls_port);
    snprintf(ca, sizeof(ca), "%s", e2e_path(&E, "gw.pem"));
    char *argv[] = {
        "curl", "-sS",     "--http2", "--cacert", ca,  "-w", "\n%{http_code} %{http_version}",
        "-H",   H_PURPOSE, "-H",      H_CALLER,   url, NULL};
    char *out = NULL;
    int rc = e2e_run(argv, NULL, &out, NULL);
    cr_expect(rc == 0 && out && strstr(out, "\n200 2"), "%s: a TLS request got rc %d: %s", what, rc,
              out ? out : "");
    free(out);
}

/* An HTTP/2 connection through TLS for the raw client: openssl s_client
 * (ALPN h2, -quiet: nothing but the decrypted bytes on its stdout) relays
 * between one end of a socketpair and the gateway's TLS listener; it
 * exits when the gateway closes, so the socketpair says EOF then.
 * Returns its pid. */
static pid_t tls_open_alpn(struct h2c *c, const char *alpn);

static pid_t tls_open(struct h2c *c)
{
    return tls_open_alpn(c, "h2");
}

static pid_t tls_open_alpn(struct h2c *c, const char *alpn)
{
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    char addr[64], err[512];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", E.gw_tls_port);
    snprintf(err, sizeof(err), "%s", e2e_path(&E, "s_client.err"));
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(sv[1], 0);
        dup2(sv[1], 1);
        int fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) dup2(fd, 2);
        for (fd = 3; fd < 1024; fd++)
            close(fd);
        execlp("openssl", "openssl", "s_client", "-quiet", "-verify_quiet", "-alpn", alpn,
               "-connect", addr, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    memset(c, 0, sizeof(*c));
    c->fd = sv[0];
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    cr_assert(nghttp2_hd_inflate_new(&c->inf) == 0);
    return pid;
}

static void tls_close(struct h2c *c, pid_t pid)
{
    h2c_close(c);
    e2e_stop(pid, SIGTERM, 5000);
}

Test(abuse, tls_rapid_reset)
{
    start_tls(NULL);
    good_tls_request("before");
    struct h2c c;
    pid_t pid = tls_open(&c);
    h2c_start(&c, NULL, 0);
    enum { N = 5000, BATCH = 100 };
    static uint8_t buf[BATCH * 200];
    int sent = 0;
    for (int b = 0; b < N / BATCH && !c.goaway && !c.eof; b++) {
        size_t n = 0;
        for (int i = 0; i < BATCH; i++) {
            uint32_t sid = (uint32_t)(2 * (b * BATCH + i) + 1);
            n +=
                headers(buf + n, sid, "GET", "/shop/v1/ping", NULL, FL_END_HEADERS | FL_END_STREAM);
            n += frame(buf + n, 4, F_RST, 0, sid);
            n += u32(buf + n, 8); /* CANCEL */
        }
        if (!h2c_send(&c, buf, n)) break;
        sent += BATCH;
    }
    good_tls_request("during rapid reset over TLS");
    expect_calm(&c, "rapid reset over TLS");
    tls_close(&c, pid);
    size_t up = e2e_count_lines(E.record);
    fprintf(stderr, "abuse rapid reset over TLS: %d streams sent, %zu reached the provider\n", sent,
            up);
    cr_expect(up < N / 10, "%zu of %d reset streams reached the provider", up, N);
    good_tls_request("after rapid reset over TLS");
    after_attack("rapid reset over TLS");
}

Test(abuse, tls_slow_head)
{
    start_tls(SLOW_YAML);
    /* a head that never ends */
    struct h2c c;
    pid_t pid = tls_open(&c);
    h2c_start(&c, NULL, 0);
    uint8_t buf[512];
    size_t n = headers(buf, 1, "GET", "/shop/v1/ping", NULL, FL_END_STREAM); /* no END_HEADERS */
    cr_assert(h2c_send(&c, buf, n));
    good_tls_request("during a slow head over TLS");
    expect_calm(&c, "slow head over TLS");
    tls_close(&c, pid);
    /* a handshake, the preface and SETTINGS, then nothing (a pooled
     * connection opened ahead of use) */
    pid = tls_open(&c);
    h2c_start(&c, NULL, 0);
    /* a TCP connection that never starts its TLS handshake, opened after */
    struct h2c t;
    memset(&t, 0, sizeof(t));
    t.fd = tcp_connect(E.gw_tls_port, true);
    cr_assert(nghttp2_hd_inflate_new(&t.inf) == 0);
    good_tls_request("during a silent TLS connection");
    cr_expect(wait_closed(&t, 15000), "a connection without a TLS handshake stays open");
    h2c_close(&t);
    /* header_timeout has passed for the established one too: it serves */
    cr_expect(late_request(&c, 1), "an established TLS connection was closed before its request");
    tls_close(&c, pid);
    cr_expect_eq(e2e_count_lines(E.record), 3); /* the good and late requests only */
    good_tls_request("after slow heads over TLS");
    after_attack("slow head over TLS");
}

/* A connection error over TLS (a WINDOW_UPDATE of 0) while the peer keeps
 * sending: the GOAWAY(PROTOCOL_ERROR) still reaches it (the close lingers
 * as for ENHANCE_YOUR_CALM; without it a reset can destroy the GOAWAY). */
Test(abuse, tls_protocol_error_goaway)
{
    start_tls(NULL);
    struct h2c c;
    pid_t pid = tls_open(&c);
    h2c_start(&c, NULL, 0);
    uint8_t buf[32];
    size_t n = window_update(buf, 0, 0);
    cr_assert(h2c_send(&c, buf, n));
    uint8_t ping[17];
    frame(ping, 8, F_PING, 0, 0);
    memset(ping + 9, 0, 8);
    repeat(&c, ping, sizeof(ping), 20000);
    cr_expect(wait_closed(&c, 15000), "the connection stays open");
    cr_expect(c.goaway && c.goaway_code == 1, "GOAWAY %d code %u", c.goaway, c.goaway_code);
    tls_close(&c, pid);
    good_tls_request("after a protocol error over TLS");
    after_attack("protocol error over TLS");
}

/* The gateway ends its TLS connections with close_notify (RFC 8446 6.1),
 * so that a caller can tell the end of a response delimited by the close
 * from a truncation: HTTP/1.1 `connection: close`, and HTTP/2 after the
 * idle timeout's GOAWAY. openssl s_client reports an EOF without it. */
Test(abuse, tls_close_notify)
{
    start_tls("limits:\n  idle_timeout: 300ms\n");
    struct h2c c;
    pid_t pid = tls_open_alpn(&c, "http/1.1");
    const char req[] = "GET /shop/v1/ping HTTP/1.1\r\nhost: gw\r\n" H_PURPOSE "\r\n" H_CALLER
                       "\r\nconnection: close\r\n\r\n";
    cr_assert(h2c_send(&c, req, sizeof(req) - 1));
    cr_expect(wait_closed(&c, 15000), "HTTP/1.1: the connection stays open");
    cr_expect(c.ilen > 13 && memcmp(c.in, "HTTP/1.1 200 ", 13) == 0, "HTTP/1.1: %.*s", (int)c.ilen,
              c.in ? (char *)c.in : "");
    tls_close(&c, pid);
    pid = tls_open(&c);
    h2c_start(&c, NULL, 0);
    cr_expect(wait_closed(&c, 15000), "HTTP/2: the idle connection stays open");
    cr_expect(c.goaway && c.goaway_code == 0, "GOAWAY %d code %u", c.goaway, c.goaway_code);
    tls_close(&c, pid);
    char *err = e2e_read(e2e_path(&E, "s_client.err"), NULL);
    cr_expect(err && !strstr(err, "unexpected eof"), "s_client said: %s", err ? err : "");
    free(err);
}

/* 12. An HTTP/2 provider's interim response (103 Early Hints, with a
 * `link` field) before the final one: the caller gets the final status,
 * with the final response's fields and none of the interim one's (the
 * interim response is not forwarded: the gateway sends no 1xx). */

/* A fake h2c provider in a child process: answers the first request of
 * the first connection with 103 + fields, then 200 + fields + "ok". */
static void fake_interim_provider(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) _exit(1);
    uint8_t in[65536];
    size_t ilen = 0, off = 24; /* the client preface */
    uint32_t sid = 0;
    while (!sid) {
        ssize_t k = recv(fd, in + ilen, sizeof(in) - ilen, 0);
        if (k <= 0) _exit(2);
        ilen += (size_t)k;
        while (ilen >= off + 9) {
            size_t len = (size_t)in[off] << 16 | (size_t)in[off + 1] << 8 | in[off + 2];
            if (ilen < off + 9 + len) break;
            if (in[off + 3] == F_HEADERS)
                sid = (uint32_t)(in[off + 5] & 0x7f) << 24 | in[off + 6] << 16 | in[off + 7] << 8 |
                      in[off + 8];
            off += 9 + len;
        }
    }
    uint8_t o[1024];
    size_t n = frame(o, 0, F_SETTINGS, 0, 0);
    n += frame(o + n, 0, F_SETTINGS, FL_ACK, 0);
    size_t h = n;
    n += 9;
    n += hp_lit(o + n, 8, NULL, "103", 3);                     /* :status */
    n += hp_lit(o + n, 45, NULL, "</a.css>; rel=preload", 21); /* link */
    n += hp_lit(o + n, 0, "x-interim", "1", 1);
    frame(o + h, n - h - 9, F_HEADERS, FL_END_HEADERS, sid);
    h = n;
    n += 9;
    n += hp_lit(o + n, 8, NULL, "200", 3);
    n += hp_lit(o + n, 28, NULL, "2", 1); /* content-length */
    n += hp_lit(o + n, 0, "x-final", "1", 1);
    frame(o + h, n - h - 9, F_HEADERS, FL_END_HEADERS, sid);
    n += frame(o + n, 2, F_DATA, FL_END_STREAM, sid);
    memcpy(o + n, "ok", 2);
    n += 2;
    if (send(fd, o, n, MSG_NOSIGNAL) != (ssize_t)n) _exit(3);
    /* until the gateway closes (or the parent kills us) */
    while (recv(fd, in, sizeof(in), 0) > 0) {
    }
    _exit(0);
}

/* A provider's 103 (with `link` and `x-interim`) before its 200: the
 * caller gets the 200 without the interim response's fields. */
Test(abuse, upstream_interim_response_fields_not_forwarded)
{
    e2e_init(&E);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(lfd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    cr_assert(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 4) == 0);
    cr_assert(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    E.up_port = ntohs(a.sin_port);
    pid_t fake = fork();
    cr_assert(fake >= 0);
    if (fake == 0) fake_interim_provider(lfd);
    close(lfd);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    if (!e2e_start_gateway(&E, NULL)) {
        kill(fake, SIGKILL);
        waitpid(fake, NULL, 0);
        cr_assert_fail("gateway did not start");
    }
    const char *hd[] = GOOD_HDRS;
    struct e2e_resp r;
    e2e_curl(&E, "GET", "/shop/v1/ping", hd, NULL, NULL, &r);
    kill(fake, SIGKILL);
    waitpid(fake, NULL, 0);
    cr_expect_eq(r.status, 200, "status %d (%s)", r.status, r.body);
    cr_expect_str_eq(r.body ? r.body : "", "ok");
    cr_expect(e2e_header(&r, "x-final") != NULL, "the final response's field is missing");
    cr_expect(e2e_header(&r, "x-interim") == NULL, "the 103's field was forwarded");
    cr_expect(e2e_header(&r, "link") == NULL, "the 103's link field was forwarded");
    e2e_resp_free(&r);
}
