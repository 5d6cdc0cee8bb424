/*
 * Allocations on the request path (issue 6): the gateway runs with
 * allocount.so preloaded, which counts every malloc/calloc/realloc/
 * memalign/free of the process in a shared-memory file. After a warm-up,
 * more requests over the same connection must allocate nothing, and a new
 * connection may allocate at most a small, fixed amount that does not grow
 * with the number of requests it carries.
 *
 * Requests: h2c downstream (a small nghttp2 client in this file, so that
 * the same connection can carry the warm-up and the measured requests),
 * TLS upstream (the demo partner), JSON bodies with kept, hashed and
 * removed fields.
 *
 * Skipped under AddressSanitizer (it replaces malloc, and the preload
 * would not see the gateway's allocations).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nghttp2/nghttp2.h>

#include "allocount.h"
#include "tests/e2e/harness.h"

#if defined(__SANITIZE_ADDRESS__)
#define PG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PG_ASAN 1
#endif
#endif
#ifndef PG_ASAN
#define PG_ASAN 0
#endif

/* Allocation calls a brand-new downstream connection may cost (its
 * connection object and session, when the worker's pools hold none). A
 * connection's requests must cost nothing more: this bound is per
 * connection, never per request: 4 connections x 200 requests must stay
 * within 4 x PER_CONN_BOUND, 800 requests. */
#define PER_CONN_BOUND 4
/* Allocation calls 700 requests on a warm connection may cost in all
 * (see the test): pool high-water marks, never one per request */
#define WARM_CONN_BOUND 32

static struct e2e E;
static struct pg_alloc_counts *CNT;

static void teardown(void)
{
    e2e_fini(&E);
    if (CNT) munmap(CNT, sizeof(*CNT));
    CNT = NULL;
}

TestSuite(alloc, .fini = teardown);

static const char CONTRACT[] = "contract: 1\n"
                               "provider: shop\n"
                               "name: Test Shop\n"
                               "purposes: [orders]\n"
                               "callers: [orders-service]\n"
                               "upstream:\n"
                               "  url: @UPS@\n"
                               "  ca: @CA@\n"
                               "  hmac_key_file: ../hmac.key\n"
                               "routes:\n"
                               "  - method: POST\n"
                               "    path: /v1/orders\n"
                               "    body:\n"
                               "      fields:\n"
                               "        order_id: keep\n"
                               "        customer_id: hash\n"
                               "        items[].sku: keep\n";

/* kept, hashed and removed (email, note, items[].price) fields */
static const char BODY[] =
    "{\"order_id\":\"o-1\",\"customer_id\":\"c-42\",\"email\":\"someone@example.com\","
    "\"note\":\"leave at the door\",\"items\":[{\"sku\":\"a-1\",\"price\":3},{\"sku\":\"b-2\","
    "\"price\":4}]}";

static uint64_t allocs(void)
{
    return atomic_load(&CNT->malloc) + atomic_load(&CNT->calloc) + atomic_load(&CNT->realloc) +
           atomic_load(&CNT->memalign);
}

/* ------------------------------------------------------ a small h2 client */

#define MAX_CONC 64

struct cli {
    int fd;
    nghttp2_session *s;
    size_t done, ok, submitted, want;
    struct slot {
        bool used;
        size_t off;
        int status;
    } slot[MAX_CONC];
};

static ssize_t cli_send(nghttp2_session *s, const uint8_t *d, size_t n, int flags, void *ud)
{
    (void)s;
    (void)flags;
    struct cli *c = ud;
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(c->fd, d + off, n - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
        off += (size_t)k;
    }
    return (ssize_t)n;
}

static int cli_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct slot *sl = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (sl && nl == 7 && memcmp(name, ":status", 7) == 0 && vl == 3)
        sl->status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
    return 0;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct slot *sl = src->ptr;
    size_t k = sizeof(BODY) - 1 - sl->off;
    if (k > len) k = len;
    memcpy(buf, BODY + sl->off, k);
    sl->off += k;
    if (sl->off == sizeof(BODY) - 1) *fl |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

static void cli_submit(struct cli *c)
{
    struct slot *sl = NULL;
    for (size_t i = 0; i < MAX_CONC && !sl; i++)
        if (!c->slot[i].used) sl = &c->slot[i];
    cr_assert(sl);
    memset(sl, 0, sizeof(*sl));
    sl->used = true;
#define NV(n, v)                                                                                   \
    {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nv[] = {NV(":method", "POST"),
                       NV(":scheme", "http"),
                       NV(":authority", "127.0.0.1"),
                       NV(":path", "/shop/v1/orders"),
                       NV("content-type", "application/json"),
                       NV("privgate-purpose", "orders"),
                       NV("privgate-caller", "orders-service")};
    nghttp2_data_provider prd = {.source = {.ptr = sl}, .read_callback = body_read};
    int32_t id = nghttp2_submit_request(c->s, NULL, nv, sizeof(nv) / sizeof(nv[0]), &prd, sl);
    cr_assert(id > 0, "submit: %d", id);
    c->submitted++;
}

static int cli_close(nghttp2_session *s, int32_t id, uint32_t err, void *ud)
{
    (void)err;
    struct cli *c = ud;
    struct slot *sl = nghttp2_session_get_stream_user_data(s, id);
    if (!sl) return 0;
    c->done++;
    if (sl->status == 200) c->ok++;
    sl->used = false;
    if (c->submitted < c->want) cli_submit(c);
    return 0;
}

static void cli_open(struct cli *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(c->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s",
              strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, cli_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, cli_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, cli_close);
    cr_assert(nghttp2_session_client_new(&c->s, cb, c) == 0);
    nghttp2_session_callbacks_del(cb);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
    nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, iv, 1);
}

/* |n| requests, |conc| at a time; returns how many were answered 200. */
static size_t cli_run(struct cli *c, size_t n, size_t conc)
{
    cr_assert(conc <= MAX_CONC);
    c->done = c->ok = c->submitted = 0;
    c->want = n;
    for (size_t i = 0; i < conc && i < n; i++)
        cli_submit(c);
    uint8_t buf[16384];
    while (c->done < n) {
        cr_assert(nghttp2_session_send(c->s) == 0);
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int r = poll(&p, 1, 20000);
        cr_assert(r > 0, "no answer from the gateway within 20 s (%zu of %zu done)", c->done, n);
        ssize_t k = read(c->fd, buf, sizeof(buf));
        cr_assert(k > 0, "the gateway closed the connection (%zu of %zu done)", c->done, n);
        cr_assert(nghttp2_session_mem_recv(c->s, buf, (size_t)k) == k);
    }
    nghttp2_session_send(c->s);
    return c->ok;
}

static void cli_free(struct cli *c)
{
    nghttp2_session_del(c->s);
    close(c->fd);
}

/* ------------------------------------------------------------------ setup */

static void start(void)
{
    e2e_init(&E);
    e2e_start_partner(&E, "tls", NULL);
    e2e_contract(&E, "shop", CONTRACT);
    const char *cf = e2e_path(&E, "alloc.counts");
    int fd = open(cf, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0);
    cr_assert(ftruncate(fd, sizeof(*CNT)) == 0);
    CNT = mmap(NULL, sizeof(*CNT), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    cr_assert(CNT != MAP_FAILED);
    const char *b = getenv("PRIVGATE_BUILD_ROOT");
    char lib[600];
    snprintf(lib, sizeof(lib), "%s/tests/alloc/libpgallocount.so", b);
    cr_assert(access(lib, R_OK) == 0, "%s missing", lib);
    /* only the gateway gets the preload: set for its spawn, unset after */
    setenv("LD_PRELOAD", lib, 1);
    setenv("PRIVGATE_ALLOC_COUNTER", cf, 1);
    bool up = e2e_start_gateway(&E, NULL); /* two workers */
    unsetenv("LD_PRELOAD");
    unsetenv("PRIVGATE_ALLOC_COUNTER");
    if (!up) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
    cr_assert_eq(atomic_load(&CNT->attached), 1, "the counter was not preloaded");
}

/* Waits until the audit log has |n| records: every exchange is over. */
static void settle(size_t n)
{
    for (int i = 0; i < 2000 && e2e_count_lines(E.audit) < n; i++) {
        struct pollfd none;
        poll(&none, 0, 5); /* polling interval while waiting on a file */
    }
    cr_assert_eq(e2e_count_lines(E.audit), n, "audit records");
}

Test(alloc, no_allocation_per_request_after_warm_up)
{
    if (PG_ASAN) {
        cr_skip_test("AddressSanitizer replaces malloc: run in the plain build");
        return;
    }
    start();
    size_t total = 0;
    /* warm-up: pools grow to the concurrency used below, and to what a
     * connection holds while it lives (its HPACK tables fill up over its
     * first ~60 responses). The kernel spreads connections over the two
     * workers: 8 of each shape warm both, each worker's upstream
     * connection opens */
    for (int i = 0; i < 16; i++) {
        struct cli b; /* opened and closed: its pooled objects come back */
        cli_open(&b, E.gw_port);
        /* not alternating: the kernel's choice of worker may alternate */
        size_t n = i < 8 ? 200 : 40;
        cr_assert_eq(cli_run(&b, n, i < 8 ? 8 : 16), n);
        cli_free(&b);
        total += n;
        settle(total);
    }
    struct cli a;
    cli_open(&a, E.gw_port);
    cr_assert_eq(cli_run(&a, 200, 16), 200);
    cr_assert_eq(cli_run(&a, 50, 1), 50);
    total += 250;
    settle(total);

    /* same connection, new streams: one at a time, then 16 at a time */
    uint64_t before = allocs();
    /* PRIVGATE_ALLOC_TRACE=1 (with PRIVGATE_E2E_KEEP=1): the gateway's
     * stderr gets a backtrace per allocation of this phase */
    if (getenv("PRIVGATE_ALLOC_TRACE")) atomic_store(&CNT->armed, 1);
    cr_assert_eq(cli_run(&a, 300, 1), 300);
    cr_assert_eq(cli_run(&a, 400, 16), 400);
    total += 700;
    settle(total);
    uint64_t same = allocs() - before;
    fprintf(stderr, "alloc: %llu allocation calls for 700 requests on a warm connection\n",
            (unsigned long long)same);
    /* none per request: one allocation per request would show 700, one
     * every 20 requests 35. A few are not per request: a pool class whose
     * free list runs dry because more of its blocks are alive at one
     * moment than during warm-up (how many frames one read carries, how
     * many responses wait to be written, depends on scheduling). Traced
     * (PRIVGATE_ALLOC_TRACE) in a run next to the soak suite: OpenSSL's
     * 80-byte WPACKET block in SSL_write on the provider connection; CI
     * saw 8 such calls once */
    cr_expect_leq(same, WARM_CONN_BOUND,
                  "%llu allocation calls for 700 requests on a warm connection",
                  (unsigned long long)same);

    /* new connections: a fixed cost per connection, none per request. The
     * first two rounds are warm-up too (which worker takes a connection is
     * the kernel's choice: both must have served this shape) */
    uint64_t per[2];
    size_t nreq[2] = {1, 200};
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 2; k++) {
            before = allocs();
            for (int i = 0; i < 4; i++) {
                struct cli b;
                cli_open(&b, E.gw_port);
                cr_assert_eq(cli_run(&b, nreq[k], 8), nreq[k]);
                cli_free(&b);
                total += nreq[k];
                settle(total);
            }
            per[k] = allocs() - before;
            if (round == 2)
                fprintf(stderr,
                        "alloc: %llu allocation calls for 4 new connections x %zu requests\n",
                        (unsigned long long)per[k], nreq[k]);
        }
    }
    atomic_store(&CNT->armed, 0);
    cr_expect_leq(per[0], 4 * PER_CONN_BOUND, "%llu allocation calls for 4 new connections",
                  (unsigned long long)per[0]);
    cr_expect_leq(per[1], 4 * PER_CONN_BOUND,
                  "4 connections with 200 requests each cost %llu allocation calls, with one "
                  "request each %llu: something allocates per request",
                  (unsigned long long)per[1], (unsigned long long)per[0]);
    cli_free(&a);
}

/* ------------------------------------------------ idle connection memory */

static long vm_rss_kib(pid_t pid)
{
    long kib = e2e_proc_kb(pid, "VmRSS");
    cr_assert(kib > 0, "no VmRSS for %d", (int)pid);
    return kib;
}

/* Opens |n| h2c connections (client preface + empty SETTINGS) and waits
 * for the gateway's SETTINGS on each: then each has its session. */
static void open_idle(int *fds, size_t n)
{
    static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    struct pollfd *p = calloc(n, sizeof(*p));
    size_t *got = calloc(n, sizeof(*got));
    cr_assert(p && got);
    for (size_t i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fds[i] >= 0, "socket: %s", strerror(errno));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)E.gw_port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(connect(fds[i], (struct sockaddr *)&a, sizeof(a)) == 0, "connect %zu: %s", i,
                  strerror(errno));
        cr_assert_eq(write(fds[i], pre, sizeof(pre) - 1), (ssize_t)(sizeof(pre) - 1));
        p[i].fd = fds[i];
        p[i].events = POLLIN;
    }
    size_t left = n;
    while (left > 0) {
        int r = poll(p, n, 20000);
        cr_assert(r > 0, "%zu connections got no SETTINGS within 20 s", left);
        for (size_t i = 0; i < n; i++) {
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[256];
            ssize_t k = read(p[i].fd, buf, sizeof(buf));
            cr_assert(k > 0, "the gateway closed idle connection %zu", i);
            got[i] += (size_t)k;
            if (got[i] >= 9) { /* a frame header: the gateway's SETTINGS */
                p[i].fd = -1;
                left--;
            }
        }
    }
    free(p);
    free(got);
}

/* Resident memory of an idle HTTP/2 connection (issue 6: at most 32 KiB):
 * nothing but the connection object, its nghttp2 session (HPACK tables,
 * stream map, the 16 KiB frame buffer) and, while output is pending, a
 * pooled output buffer that goes back once written. */
#define IDLE_CONN_BOUND (32 * 1024)

Test(alloc, idle_http2_connections_hold_at_most_32_kib_each)
{
    if (PG_ASAN) {
        cr_skip_test("AddressSanitizer's redzones and shadow memory change RSS");
        return;
    }
    size_t n = 2000;
    struct rlimit rl;
    cr_assert(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < n + 200 && rl.rlim_max > rl.rlim_cur) {
        rl.rlim_cur = rl.rlim_max < n + 200 ? rl.rlim_max : n + 200;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < n + 200) n = rl.rlim_cur > 600 ? (size_t)rl.rlim_cur - 200 : 400;
    e2e_init(&E);
    e2e_contract(&E, "p",
                 "contract: 1\nprovider: p\nname: P\npurposes: [orders]\nupstream:\n"
                 "  url: http://127.0.0.1:9\n  insecure: true\nroutes:\n"
                 "  - method: GET\n    path: /v1/x\n");
    cr_assert(e2e_start_gateway(&E, "limits:\n  idle_timeout: 600s\n  header_timeout: 600s\n"));
    int *fds = calloc(n, sizeof(int));
    cr_assert(fds);
    /* first connections: loop and pool start-up, page faults of code */
    open_idle(fds, 100);
    for (size_t i = 0; i < 100; i++)
        close(fds[i]);
    long before = vm_rss_kib(E.gw_pid);
    open_idle(fds, n);
    long after = vm_rss_kib(E.gw_pid);
    long per = (after - before) * 1024 / (long)n;
    fprintf(stderr, "alloc: %zu idle h2c connections: VmRSS %ld -> %ld KiB, %ld bytes each\n", n,
            before, after, per);
    cr_expect_leq(per, IDLE_CONN_BOUND, "%ld bytes of RSS per idle HTTP/2 connection", per);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    free(fds);
}
