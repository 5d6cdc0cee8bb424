/*
 * Black-box in-process gateway for fuzz_h1 and fuzz_h2 (see gwfuzz.h).
 *
 * The proxy sources are linked unchanged; px_serve() runs once per process
 * in a background thread (it owns libuv's default loop and its signal
 * handles) with a configuration generated into a temporary directory:
 *
 *  - one cleartext listener on a free 127.0.0.1 port (h2 prior knowledge
 *    and HTTP/1.1), one worker, audit to /dev/null, small limits and short
 *    timeouts so that every connection ends quickly;
 *  - provider `p` ("strict"): every value the caller controls is
 *    transformed (path parameter and body fields hashed, masked or reduced
 *    to a year), no query parameter and no extra header allowed; its fake
 *    upstream checks the ORACLE property: the word "canary" (any case),
 *    which the seeds and the dictionary put in every unlisted place, never
 *    reaches it outside the values of the SPEC 4.3 safe headers;
 *  - providers `k` (kept fields, `*`, an opaque route, query parameters)
 *    and `r` (`unlisted: reject`), for coverage, on a second fake upstream.
 *
 * The fake upstreams (an accept thread, one thread per connection) speak
 * just enough HTTP/1.1: read a request head and its body (content-length
 * or chunked, bounded by 3 s of silence), answer 200 with a small JSON
 * body and "connection: close", close.
 *
 * The server thread is never stopped: px_serve() returns only on a signal,
 * and its state stays reachable from globals, so LeakSanitizer at exit
 * reports only memory that really leaked (the fuzz runs still pass
 * -detect_leaks=0: libFuzzer's per-input leak check counts the server
 * thread's allocations against the input and would be very slow).
 */
#include "fuzz/gwfuzz.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define GWFUZZ_LSAN 1
#endif
#elif defined(__SANITIZE_ADDRESS__)
#define GWFUZZ_LSAN 1
#endif
#if GWFUZZ_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz/common.h"
#include "proxy/serve.h"

static char dir[64];
static char cfg_path[128];
static int gw_port;
static int up_fd[2] = {-1, -1};
static int up_port[2];
static atomic_bool gw_exited;
static int fd_baseline;
static unsigned long exchanges;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void wfile(const char *rel, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    fz_write_file(p, text, strlen(text));
}

static void rm_rel(const char *rel)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    unlink(p);
}

static void cleanup(void)
{
    static const char *const files[] = {"contracts/p.yaml", "contracts/k.yaml", "contracts/r.yaml",
                                        "secrets/hmac",     "secrets/token",    "privgate.yaml"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        rm_rel(files[i]);
    char p[256];
    snprintf(p, sizeof p, "%s/contracts", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/secrets", dir);
    rmdir(p);
    rmdir(dir);
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) abort();
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("gwfuzz: listen");
        abort();
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* ------------------------------------------------------- fake upstreams */

static bool has_canary(const char *p, size_t n)
{
    static const char w[] = "canary";
    for (size_t i = 0; i + 6 <= n; i++) {
        size_t k = 0;
        while (k < 6 && (p[i + k] | 0x20) == w[k])
            k++;
        if (k == 6) return true;
    }
    return false;
}

static bool safe_header(const char *name, size_t len)
{
    static const char *const safe[] = {"content-type", "accept",      "accept-encoding",
                                       "user-agent",   "traceparent", "tracestate"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++) {
        size_t k = strlen(safe[i]);
        if (k != len) continue;
        size_t j = 0;
        while (j < k && (name[j] | 0x20) == safe[i][j])
            j++;
        if (j == k) return true;
    }
    return false;
}

/* The oracle on what provider `p` received: head and body. */
static void check_strict(const char *req, size_t n, size_t head_end)
{
    size_t st = 0;
    bool first = true;
    while (st < head_end) {
        const char *nl = memchr(req + st, '\n', head_end - st);
        size_t end = nl ? (size_t)(nl - req) : head_end;
        const char *line = req + st;
        size_t len = end - st;
        const char *colon = memchr(line, ':', len);
        bool skip = !first && colon && safe_header(line, (size_t)(colon - line));
        if (!skip && has_canary(line, len)) {
            fz_dump("upstream request", req, n);
            fz_fail("the canary reached the upstream in the request %s",
                    first ? "line" : "headers");
        }
        first = false;
        st = end + 1;
    }
    if (has_canary(req + head_end, n - head_end)) {
        fz_dump("upstream request", req, n);
        fz_fail("the canary reached the upstream in the request body");
    }
}

/* Reads more into |buf| with a poll bound. Returns bytes read, 0 on EOF,
 * -1 on error or time-out. */
static long read_some(int fd, char *buf, size_t cap, int ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, ms) <= 0) return -1;
    ssize_t k = recv(fd, buf, cap, 0);
    return k < 0 ? -1 : (long)k;
}

static size_t find_head_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') return i + 4;
    return 0;
}

static bool ieq_prefix(const char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n < k) return false;
    for (size_t i = 0; i < k; i++)
        if ((p[i] | 0x20) != lit[i]) return false;
    return true;
}

static void serve_upstream(int fd, bool strict)
{
    enum { CAP = 256 * 1024 };
    char *req =
        calloc(1, CAP); /* (calloc: gcc warns on handing malloc'd bytes to the call below) */
    if (!req) abort();
#if GWFUZZ_LSAN
    /* a connection still being served when the process exits (the run's
     * time is up) holds it: not a leak of the code under test */
    __lsan_ignore_object(req);
#endif
    size_t n = 0, head_end = 0;
    long clen = -1;
    bool chunked = false;
    for (;;) {
        if (n == CAP) break;
        long k = read_some(fd, req + n, CAP - n, 3000);
        if (k <= 0) break;
        n += (size_t)k;
        if (!head_end) {
            head_end = find_head_end(req, n);
            if (!head_end) continue;
            for (size_t st = 0; st < head_end;) {
                const char *nl = memchr(req + st, '\n', head_end - st);
                size_t end = nl ? (size_t)(nl - req) : head_end;
                if (ieq_prefix(req + st, end - st, "content-length:"))
                    clen = strtol(req + st + 15, NULL, 10);
                if (ieq_prefix(req + st, end - st, "transfer-encoding:")) chunked = true;
                st = end + 1;
            }
        }
        if (chunked) {
            if (n >= head_end + 5 && memcmp(req + n - 5, "0\r\n\r\n", 5) == 0) break;
        } else if (clen < 0 || n - head_end >= (size_t)clen) {
            break;
        }
    }
    if (strict && n > 0) check_strict(req, n, head_end ? head_end : n);
    if (getenv("FUZZ_VERBOSE"))
        fz_dump(strict ? "gwfuzz: upstream p got" : "gwfuzz: upstream k/r got", req, n);
    if (head_end) {
        static const char resp[] = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                   "content-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";
        ssize_t w = send(fd, resp, sizeof resp - 1, MSG_NOSIGNAL);
        (void)w;
    }
    close(fd);
    free(req);
}

struct upconn {
    int fd;
    bool strict;
};

/* One thread per upstream connection: a connection the gateway opens and
 * leaves waiting (a body cut short, a stream reset) must not delay the
 * next input's upstream requests. */
static void *upconn_thread(void *arg)
{
    struct upconn c = *(struct upconn *)arg;
    free(arg);
    serve_upstream(c.fd, c.strict);
    return NULL;
}

static void *upstream_thread(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = up_fd[0], .events = POLLIN},
                               {.fd = up_fd[1], .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) continue;
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & POLLIN)) continue;
            int c = accept4(up_fd[i], NULL, NULL, SOCK_CLOEXEC);
            /* GWFUZZ_CHECK_ALL=1: the oracle on every upstream, a negative
             * control (k's seeds forward a kept "canary": must fail) */
            if (c < 0) continue;
            struct upconn *uc = malloc(sizeof *uc);
            pthread_t t;
            if (!uc) abort();
            uc->fd = c;
            uc->strict = i == 0 || getenv("GWFUZZ_CHECK_ALL");
            if (pthread_create(&t, NULL, upconn_thread, uc) != 0) {
                free(uc);
                serve_upstream(c, i == 0 || getenv("GWFUZZ_CHECK_ALL"));
                continue;
            }
            pthread_detach(t);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- gateway */

static void *gateway_thread(void *arg)
{
    (void)arg;
    int rc = px_serve(cfg_path);
    fprintf(stderr, "gwfuzz: px_serve returned %d\n", rc);
    atomic_store(&gw_exited, true);
    return NULL;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int connect_gw(void)
{
    for (int attempt = 0;; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) abort();
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        int e = errno;
        close(fd);
        /* EINTR: libFuzzer's SIGALRM (the -timeout watchdog) */
        if (attempt >= 200 ||
            (e != EADDRNOTAVAIL && e != ECONNREFUSED && e != EAGAIN && e != EINTR))
            return -1;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL); /* back-off before a retry, not synchronisation */
    }
}

void gwf_start(void)
{
    static bool started;
    if (started) return;
    started = true;
    snprintf(dir, sizeof dir, "/tmp/privgate-fuzz-gw-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    char p[256];
    snprintf(p, sizeof p, "%s/contracts", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/secrets", dir);
    mkdir(p, 0700);
    atexit(cleanup);
    wfile("secrets/hmac", "privgate-fuzz-gateway-hmac-key");
    wfile("secrets/token", "Bearer fuzz-upstream-token");

    up_fd[0] = listen_any(&up_port[0]);
    up_fd[1] = listen_any(&up_port[1]);
    /* the gateway's port: a free one, released just before px_serve binds it */
    int tmp = listen_any(&gw_port);
    close(tmp);

    char text[4096];
    snprintf(text, sizeof text,
             "contract: 1\n"
             "provider: p\n"
             "purposes: [fuzz]\n"
             "upstream:\n"
             "  url: http://127.0.0.1:%d\n"
             "  insecure: true\n"
             "  protocol: http/1.1\n"
             "  auth: {header: authorization, value_file: ../secrets/token}\n"
             "  hmac_key_file: ../secrets/hmac\n"
             "routes:\n"
             "  - method: POST\n"
             "    path: /v1/items/{id}\n"
             "    params: {id: hash}\n"
             "    body:\n"
             "      fields:\n"
             "        a: hash\n"
             "        b: {action: mask, keep_first: 0}\n"
             "        c.d: year\n"
             "        e[]: hash\n"
             "        f[].g: {action: mask, keep_last: 0}\n"
             "  - method: GET\n"
             "    path: /v1/items/{id}\n"
             "    params: {id: hash}\n"
             "  - method: PUT\n"
             "    path: /v1/items/{id}/{sub}\n"
             "    params: {id: hash, sub: hash}\n"
             "    body:\n"
             "      fields:\n"
             "        x: hash\n",
             up_port[0]);
    wfile("contracts/p.yaml", text);
    snprintf(text, sizeof text,
             "contract: 1\n"
             "provider: k\n"
             "purposes: [fuzz, other]\n"
             "callers: [svc]\n"
             "upstream:\n"
             "  url: http://127.0.0.1:%d\n"
             "  insecure: true\n"
             "  protocol: http/1.1\n"
             "  hmac_key_file: ../secrets/hmac\n"
             "headers: [idempotency-key]\n"
             "routes:\n"
             "  - method: POST\n"
             "    path: /v1/keep\n"
             "    query: [q, page]\n"
             "    body:\n"
             "      fields:\n"
             "        a: keep\n"
             "        b.c: keep\n"
             "        d[].e: {action: truncate, length: 3}\n"
             "        n: {action: truncate, length: 3}\n"
             "  - method: GET\n"
             "    path: /v1/c/{id}/x\n"
             "    query: [q]\n"
             "  - method: PUT\n"
             "    path: /v1/raw/*\n"
             "    body: opaque\n"
             "  - method: DELETE\n"
             "    path: /v1/c/{id}\n"
             "  - method: PATCH\n"
             "    path: /v1/star\n"
             "    body:\n"
             "      fields:\n"
             "        '*': hash\n",
             up_port[1]);
    wfile("contracts/k.yaml", text);
    snprintf(text, sizeof text,
             "contract: 1\n"
             "provider: r\n"
             "purposes: [fuzz]\n"
             "unlisted: reject\n"
             "upstream:\n"
             "  url: http://127.0.0.1:%d\n"
             "  insecure: true\n"
             "  protocol: http/1.1\n"
             "routes:\n"
             "  - method: POST\n"
             "    path: /v1/r\n"
             "    query: [q]\n"
             "    body:\n"
             "      fields:\n"
             "        a: keep\n"
             "        b[]: keep\n",
             up_port[1]);
    wfile("contracts/r.yaml", text);
    snprintf(text, sizeof text,
             "listen:\n"
             "  - address: 127.0.0.1:%d\n"
             "contracts: contracts/\n"
             "workers: 1\n"
             "audit:\n"
             "  path: /dev/null\n"
             "limits:\n"
             "  max_body: 4KiB\n"
             "  max_depth: 8\n"
             "  max_header_bytes: 4KiB\n"
             "  max_streams_per_connection: 8\n"
             "  upstream_connect_timeout: 1s\n"
             "  upstream_timeout: 2s\n"
             "  idle_timeout: 2s\n"
             "  header_timeout: 1s\n",
             gw_port);
    wfile("privgate.yaml", text);
    snprintf(cfg_path, sizeof cfg_path, "%s/privgate.yaml", dir);

    pthread_t t;
    if (pthread_create(&t, NULL, upstream_thread, NULL) != 0) abort();
    pthread_detach(t);
    if (pthread_create(&t, NULL, gateway_thread, NULL) != 0) abort();
    pthread_detach(t);
    /* up when the port accepts (start-up failures end px_serve) */
    long end = now_ms() + 30000;
    for (;;) {
        if (atomic_load(&gw_exited)) {
            fprintf(stderr, "gwfuzz: the gateway did not start (config %s)\n", cfg_path);
            abort();
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) break;
        if (now_ms() > end) {
            fputs("gwfuzz: the gateway's port never accepted\n", stderr);
            abort();
        }
        struct timespec ts = {0, 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fd_baseline = count_fds();
}

size_t gwf_exchange(const uint8_t *p, size_t n, uint8_t *resp, size_t cap, gwf_done_fn done,
                    void *ud)
{
    static uint8_t sink[65536];
    int fd = connect_gw();
    if (fd < 0) {
        perror("gwfuzz: connect");
        abort();
    }
    exchanges++;
    size_t off = 0, got = 0;
    bool wr_open = true;
    long t0 = now_ms(), last_rx = t0, deadline = t0 + 20000;
    for (;;) {
        /* everything sent: half-close when the client is done, or the
         * gateway went quiet, or the wait bound passed */
        if (wr_open && off == n &&
            (!done || (got < cap && done(resp, got, ud)) || got >= cap ||
             now_ms() - last_rx >= 100 || now_ms() - t0 >= 3000)) {
            shutdown(fd, SHUT_WR);
            wr_open = false;
            deadline = now_ms() + 20000;
        }
        struct pollfd pf = {.fd = fd,
                            .events = (short)(POLLIN | (wr_open && off < n ? POLLOUT : 0))};
        long left = deadline - now_ms();
        int wait = (int)left;
        if (wr_open && off == n && wait > 20) wait = 20; /* re-check the quiet period */
        int pr = left <= 0 ? 0 : poll(&pf, 1, wait);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) {
            if (wr_open && left > 0) continue;
            fz_dump("sent", (const char *)p, n);
            fz_fail("the gateway kept the connection open 20 s after the request ended");
        }
        if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
            uint8_t *dst = got < cap ? resp + got : sink;
            size_t room = got < cap ? cap - got : sizeof sink;
            ssize_t k = recv(fd, dst, room, 0);
            if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) break;
            if (k > 0) {
                got += (size_t)k;
                last_rx = now_ms();
            }
            continue;
        }
        if (wr_open && off < n && (pf.revents & POLLOUT)) {
            ssize_t k = send(fd, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                off += (size_t)k;
                last_rx = now_ms(); /* the quiet period starts after the last byte sent */
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                /* the gateway closed early: read what it said */
                shutdown(fd, SHUT_WR);
                wr_open = false;
                off = n;
            }
        }
    }
    close(fd);
    if (getenv("FUZZ_VERBOSE")) {
        fz_dump("gwfuzz: sent", (const char *)p, n);
        fz_dump("gwfuzz: received", (const char *)resp, got < cap ? got : cap);
    }
    return got < cap ? got : cap;
}

void gwf_check_fds(void)
{
    if (exchanges % 256 != 0) return;
    int n = count_fds();
    long end = now_ms() + 5000;
    /* the gateway closes its side after we saw EOF: give it a moment */
    while (n > fd_baseline + 32 && now_ms() < end) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
        n = count_fds();
    }
    if (n > fd_baseline + 32)
        fz_fail("open file descriptors grew from %d to %d: connections not closed", fd_baseline, n);
}
