/*
 * End-to-end: start-up errors, SIGTERM drain, SIGHUP reload (also under
 * load), many streams on one connection and on several connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "common.h"

static struct e2e E;

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(lifecycle, .fini = teardown);

/* A socket connected to 127.0.0.1:|port|, or -1 with errno set. */
static int loopback_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Polls |path| until it contains |needle| (a log line). */
static bool wait_text(const char *path, const char *needle, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        char *p = e2e_read(path, NULL);
        bool ok = p && strstr(p, needle);
        free(p);
        if (ok) return true;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static bool wait_lines(const char *path, size_t n, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (e2e_count_lines(path) >= n) return true;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Waits until the peer of the connected socket |fd| (on this host) has
 * read everything sent to it: its socket's receive queue in
 * /proc/net/tcp is empty. */
static bool wait_consumed(int fd, int timeout_ms)
{
    struct sockaddr_in me, peer;
    socklen_t l1 = sizeof(me), l2 = sizeof(peer);
    if (getsockname(fd, (struct sockaddr *)&me, &l1) != 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &l2) != 0)
        return false;
    char want[64];
    /* the peer's row: local = its address, remote = ours (hex, host order
     * of the 32-bit word as the kernel prints it) */
    snprintf(want, sizeof(want), "%08X:%04X %08X:%04X", (unsigned)peer.sin_addr.s_addr,
             (unsigned)ntohs(peer.sin_port), (unsigned)me.sin_addr.s_addr,
             (unsigned)ntohs(me.sin_port));
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        char *t = e2e_read("/proc/net/tcp", NULL);
        char *row = t ? strstr(t, want) : NULL;
        unsigned long tx = 1, rx = 1;
        unsigned st = 0;
        if (row) sscanf(row + strlen(want), " %x %lx:%lx", &st, &tx, &rx);
        free(t);
        if (row && rx == 0) return true;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static const char ORDER[] =
    "{\"order_id\":7,\"customer_id\":\"C-1001\",\"email\":\"ann@example.com\","
    "\"items\":[{\"sku\":\"B-1\",\"price\":12.5}]}";

Test(lifecycle, invalid_contract_is_a_startup_error)
{
    e2e_init(&E);
    E.up_port = 1;
    e2e_contract(&E, "bad", "contract: 2\nprovider: bad\n");
    cr_assert_not(e2e_start_gateway(&E, NULL), "the gateway started with an invalid contract");
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(err && strstr(err, "privgate: cannot start"), "stderr: %s", err ? err : "");
    free(err);
    /* exit status 1 */
    char *argv[] = {E.privgate, "serve", "-c", (char *)e2e_path(&E, "privgate.yaml"), NULL};
    cr_expect_eq(e2e_run(argv, NULL, NULL, NULL), 1);
}

Test(lifecycle, port_in_use_is_a_startup_error)
{
    e2e_init(&E);
    E.up_port = 1;
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    listen(fd, 8);
    e2e_write(e2e_path(&E, "privgate.yaml"),
              "listen:\n  - address: 127.0.0.1:%d\ncontracts: contracts/\n", ntohs(a.sin_port));
    char *argv[] = {E.privgate, "serve", "-c", (char *)e2e_path(&E, "privgate.yaml"), NULL};
    char *out = NULL;
    pid_t pid = e2e_spawn(argv, NULL, E.gw_err);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(err && strstr(err, "cannot listen") && strchr(err, '\n') == err + strlen(err) - 1,
              "want one line, got: %s", err ? err : "");
    free(err);
    free(out);
    close(fd);
}

/* Waits up to |timeout_ms| for |pid| to exit; its exit status, or -1
 * (then it is killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    int st;
    while (now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* Exactly one line (ending in a newline) in |s|. */
static bool one_line(const char *s)
{
    return s && *s && strchr(s, '\n') == s + strlen(s) - 1;
}

/* The workers' sockets carry SO_REUSEPORT, with which Linux would let a
 * second privgate share the port: it must refuse to start instead. */
Test(lifecycle, second_gateway_on_the_same_port_is_a_startup_error)
{
    e2e_init(&E);
    E.up_port = 1;
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    const char *cfg = e2e_path(&E, "second.yaml");
    char cfgp[512], errp[512];
    snprintf(cfgp, sizeof(cfgp), "%s", cfg);
    snprintf(errp, sizeof(errp), "%s", e2e_path(&E, "second.err"));
    e2e_write(cfgp,
              "listen:\n  - address: 127.0.0.1:%d\ncontracts: contracts/\nworkers: 2\n"
              "audit:\n  path: audit2.log\n",
              E.gw_port);
    char *argv[] = {E.privgate, "serve", "-c", cfgp, NULL};
    pid_t pid = e2e_spawn(argv, NULL, errp);
    cr_expect_eq(wait_exit(pid, 10000), 1, "the second gateway did not exit 1");
    char *err = e2e_read(errp, NULL);
    cr_expect(one_line(err) && strstr(err, "Address already in use"), "want one line, got: %s",
              err ? err : "");
    free(err);
    /* the first one still runs and accepts */
    cr_expect_eq(kill(E.gw_pid, 0), 0);
    cr_expect(e2e_wait_port(E.gw_port, 2000));
}

/* A TLS listener whose certificate file is not PEM: one line, exit 1. */
Test(lifecycle, bad_certificate_is_a_startup_error)
{
    e2e_init(&E);
    E.up_port = 1;
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    char crt[512], key[512];
    snprintf(crt, sizeof(crt), "%s", e2e_path(&E, "bad.pem"));
    snprintf(key, sizeof(key), "%s", e2e_path(&E, "bad.key"));
    e2e_write(crt, "this is not a certificate\n");
    e2e_write(key, "nor a key\n");
    int port = e2e_free_port();
    e2e_write(e2e_path(&E, "privgate.yaml"),
              "listen:\n  - address: 127.0.0.1:%d\n    tls:\n      cert: %s\n      key: %s\n"
              "contracts: contracts/\nworkers: 1\naudit:\n  path: audit.log\n",
              port, crt, key);
    char *argv[] = {E.privgate, "serve", "-c", (char *)e2e_path(&E, "privgate.yaml"), NULL};
    pid_t pid = e2e_spawn(argv, NULL, E.gw_err);
    cr_expect_eq(wait_exit(pid, 10000), 1);
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(one_line(err) && strncmp(err, "privgate: cannot start: listener", 32) == 0 &&
                  strstr(err, "bad.pem") && strstr(err, "certificate"),
              "want one line about the certificate, got: %s", err ? err : "");
    free(err);
}

Test(lifecycle, sigterm_drains_in_flight_requests)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", "800", NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    e2e_write(e2e_path(&E, "order.json"), "%s", ORDER);
    char url[128], at[600];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/shop/v1/orders", E.gw_port);
    snprintf(at, sizeof(at), "@%s", e2e_path(&E, "order.json"));
    char *argv[] = {"curl",
                    "-sS",
                    "--http2-prior-knowledge",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    H_PURPOSE,
                    "-H",
                    H_CALLER,
                    "-H",
                    H_JSON,
                    "--data-binary",
                    at,
                    url,
                    NULL};
    const char *out = e2e_path(&E, "curl.out");
    char outp[512];
    snprintf(outp, sizeof(outp), "%s", out);
    pid_t curl = e2e_spawn(argv, outp, NULL);
    /* the request reached the provider, which answers 800 ms later */
    cr_assert(wait_lines(E.record, 1, 10000));
    kill(E.gw_pid, SIGTERM);
    int st;
    waitpid(curl, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "curl failed");
    char *code = e2e_read(outp, NULL);
    cr_expect(code && strcmp(code, "200") == 0, "in-flight request got %s", code ? code : "?");
    free(code);
    cr_expect_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0, "exit status after drain");
    E.gw_pid = 0;
}

Test(lifecycle, sighup_reloads_and_refuses_an_invalid_set)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;

    /* the new contract also keeps the email */
    char *c2 = malloc(sizeof(SHOP_CONTRACT) + 64);
    snprintf(c2, sizeof(SHOP_CONTRACT) + 64, "%s", SHOP_CONTRACT);
    char *at = strstr(c2, "        order_id: keep\n");
    cr_assert(at);
    char rest[2048];
    snprintf(rest, sizeof(rest), "%s", at);
    snprintf(at, sizeof(SHOP_CONTRACT) + 64 - (size_t)(at - c2), "        email: keep\n%s", rest);
    e2e_contract(&E, "shop", c2);
    free(c2);
    kill(E.gw_pid, SIGHUP);
    cr_assert(wait_text(E.gw_err, "reloaded", 10000));
    e2e_curl(&E, "POST", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect(strstr(jstr(j, "body"), "ann@example.com") != NULL, "reload not applied: %s",
              jstr(j, "body"));
    json_decref(j);

    /* an invalid set is refused whole; the previous one stays */
    e2e_contract(&E, "broken", "contract: 1\nprovider: Broken!\n");
    kill(E.gw_pid, SIGHUP);
    cr_assert(wait_text(E.gw_err, "reload refused", 10000));
    e2e_curl(&E, "POST", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    j = recorded(&E, 1);
    cr_assert(j);
    cr_expect(strstr(jstr(j, "body"), "ann@example.com") != NULL);
    json_decref(j);
}

/* h2load: returns the number of 2xx responses, |total| the requests done */
static int h2load(const char *data_file, int n, int c, int m, int *failed)
{
    char url[128], ns[16], cs[16], ms[16];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/shop/v1/orders", E.gw_port);
    snprintf(ns, sizeof(ns), "%d", n);
    snprintf(cs, sizeof(cs), "%d", c);
    snprintf(ms, sizeof(ms), "%d", m);
    char *argv[] = {"h2load", "-n",      ns,   "-c",     cs,   "-m",   ms,  "-d", (char *)data_file,
                    "-H",     H_PURPOSE, "-H", H_CALLER, "-H", H_JSON, url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int ok = -1;
    *failed = -1;
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx", &ok);
    const char *rq = out ? strstr(out, "requests: ") : NULL;
    if (rq) {
        int total, started, done, succ, fail;
        if (sscanf(rq, "requests: %d total, %d started, %d done, %d succeeded, %d failed", &total,
                   &started, &done, &succ, &fail) == 5)
            *failed = fail;
    }
    if (ok != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
    return ok;
}

Test(lifecycle, hundred_streams_on_one_connection_and_several_connections)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    const char *f = e2e_path(&E, "order.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    e2e_write(fp, "%s", ORDER);
    int failed;
    cr_expect_eq(h2load(fp, 100, 1, 100, &failed), 100);
    cr_expect_eq(failed, 0);
    cr_expect_eq(h2load(fp, 400, 4, 100, &failed), 400);
    cr_expect_eq(failed, 0);
    cr_assert(wait_lines(E.record, 500, 10000));
    char *rec = e2e_read(E.record, NULL);
    cr_expect(strstr(rec, "ann@example.com") == NULL, "an unfiltered body reached the provider");
    cr_expect(strstr(rec, "C-1001") == NULL);
    /* every recorded body is the filtered one */
    size_t n = 0;
    for (char *p = rec; (p = strstr(p, "\"body\":")) != NULL; p++)
        n++;
    cr_expect_eq(n, 500);
    free(rec);
}

/* SHOP_CONTRACT that also keeps the email. */
static char *shop_keeping_email(void)
{
    size_t cap = sizeof(SHOP_CONTRACT) + 64;
    char *c2 = malloc(cap);
    cr_assert(c2);
    snprintf(c2, cap, "%s", SHOP_CONTRACT);
    char *at = strstr(c2, "        order_id: keep\n");
    cr_assert(at);
    char rest[2048];
    snprintf(rest, sizeof(rest), "%s", at);
    snprintf(at, cap - (size_t)(at - c2), "        email: keep\n%s", rest);
    return c2;
}

static size_t count_text(const char *path, const char *needle)
{
    char *p = e2e_read(path, NULL);
    size_t n = 0;
    for (char *q = p; q && (q = strstr(q, needle)) != NULL; q++)
        n++;
    free(p);
    return n;
}

/* Reloads that really overlap the load: the provider answers after 20 ms
 * so that requests are in flight, each SIGHUP is sent while requests are
 * still to come (fewer recorded than sent) and after 100 more arrived
 * since the previous one, and the set alternates between two contracts
 * (without and with the email). Every request is answered 2xx, and every
 * forwarded body is one of the two filtered forms — both occur. */
Test(lifecycle, sighup_under_load_loses_no_request)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", "20", NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    char *keep_email = shop_keeping_email();
    const char *f = e2e_path(&E, "order.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    e2e_write(fp, "%s", ORDER);
    const int total = 3000;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int failed;
        int ok = h2load(fp, total, 4, 20, &failed);
        _exit(ok == total && failed == 0 ? 0 : 1);
    }
    size_t mark = 0;
    for (int i = 1; i <= 5; i++) {
        cr_assert(wait_lines(E.record, mark + 100, 60000), "the load stopped");
        mark = e2e_count_lines(E.record);
        cr_expect_lt(mark, (size_t)total, "reload %d came after the load", i);
        e2e_contract(&E, "shop", i % 2 ? keep_email : SHOP_CONTRACT);
        kill(E.gw_pid, SIGHUP);
        long end = now_ms() + 10000;
        while (count_text(E.gw_err, "reloaded") < (size_t)i && now_ms() < end) {
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
        }
        cr_expect_geq(count_text(E.gw_err, "reloaded"), (size_t)i);
    }
    free(keep_email);
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "requests were lost during reloads");
    cr_expect_eq(e2e_count_lines(E.record), (size_t)total);
    /* the forwarded bodies: exactly two forms, with and without the email */
    char *forms[3] = {NULL, NULL, NULL};
    size_t nforms = 0;
    for (size_t i = 0; i < (size_t)total; i++) {
        json_t *j = recorded(&E, i);
        if (!j) break;
        const char *b = jstr(j, "body");
        bool known = false;
        for (size_t k = 0; k < nforms; k++)
            known |= b && strcmp(forms[k], b) == 0;
        if (!known && b && nforms < 3) forms[nforms++] = strdup(b);
        json_decref(j);
    }
    cr_expect_eq(nforms, 2, "%zu distinct forwarded bodies", nforms);
    if (nforms == 2) {
        bool e0 = strstr(forms[0], "ann@example.com") != NULL;
        bool e1 = strstr(forms[1], "ann@example.com") != NULL;
        cr_expect(e0 != e1, "one form keeps the email, the other not: %s / %s", forms[0], forms[1]);
        for (size_t k = 0; k < 2; k++)
            cr_expect(strstr(forms[k], "C-1001") == NULL && strstr(forms[k], "\"order_id\":7"),
                      "%s", forms[k]);
    }
    for (size_t k = 0; k < nforms; k++)
        free(forms[k]);
}

Test(lifecycle, idle_connection_gets_goaway_and_is_closed)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, "limits:\n  idle_timeout: 300ms\n"));
    int fd = loopback_connect(E.gw_port);
    cr_assert(fd >= 0, "connect: %s", strerror(errno));
    /* client preface + empty SETTINGS (RFC 9113 3.4) */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    cr_assert_eq(write(fd, preface, sizeof(preface) - 1), (ssize_t)(sizeof(preface) - 1));
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long t0 = now_ms();
    unsigned char buf[4096];
    size_t have = 0;
    bool goaway = false, eof = false;
    while (!eof && now_ms() - t0 < 5000) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - have);
        if (k <= 0) {
            eof = true;
            break;
        }
        have += (size_t)k;
        /* walk complete frames */
        size_t off = 0;
        while (have - off >= 9) {
            size_t len = ((size_t)buf[off] << 16) | ((size_t)buf[off + 1] << 8) | buf[off + 2];
            if (have - off < 9 + len) break;
            if (buf[off + 3] == 0x7) goaway = true;
            off += 9 + len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
    }
    long waited = now_ms() - t0;
    close(fd);
    cr_expect(goaway, "no GOAWAY on an idle connection");
    cr_expect(eof, "the idle connection was not closed");
    cr_expect_geq(waited, 250, "closed after %ld ms, before idle_timeout", waited);
}

/* ------------------------------------------------------ a raw h2c client */

enum { RF_DATA = 0, RF_HEADERS = 1, RF_RST = 3, RF_SETTINGS = 4, RF_PING = 6, RF_GOAWAY = 7 };
#define RAW_MAX_SID 16

struct rawh2 {
    int fd;
    uint8_t *in;
    size_t ilen, icap;
    bool eof;
    nghttp2_hd_inflater *inf;
    int ngoaway; /* GOAWAY frames received, in order */
    uint32_t goaway_last[4], goaway_code[4];
    int pings; /* PINGs (not ACKs) received */
    uint8_t ping_data[8];
    bool settings; /* the server's SETTINGS (not ACK) came */
    bool set_has[16];
    uint32_t set_val[16];
    /* per stream id (odd, below RAW_MAX_SID): the response */
    int status[RAW_MAX_SID];
    char error[RAW_MAX_SID][40];
    bool ended[RAW_MAX_SID];
    uint32_t rst[RAW_MAX_SID]; /* RST_STREAM code + 1, 0 when none */
};

static size_t rframe(uint8_t *o, size_t len, uint8_t type, uint8_t flags, uint32_t sid)
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

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* HPACK literal without indexing (RFC 7541 6.2.2), short strings only;
 * |idx| > 0: the name from the static table */
static size_t hlit(uint8_t *o, int idx, const char *name, const char *val)
{
    size_t n = 0, vl = strlen(val);
    o[n++] = (uint8_t)idx; /* < 15 */
    if (!idx) {
        size_t nl = strlen(name);
        o[n++] = (uint8_t)nl;
        memcpy(o + n, name, nl);
        n += nl;
    }
    o[n++] = (uint8_t)vl;
    memcpy(o + n, val, vl);
    return n + vl;
}

static void raw_send(struct rawh2 *c, const void *p, size_t n)
{
    cr_assert_eq(send(c->fd, p, n, MSG_NOSIGNAL), (ssize_t)n, "send: %s", strerror(errno));
}

/* |pre| (frames, may be empty), then a GET of |path| with purpose and
 * caller on stream |sid|, ending it, in one write. */
static void raw_send_with_get(struct rawh2 *c, const void *pre, size_t prelen, uint32_t sid,
                              const char *path)
{
    uint8_t b[512];
    cr_assert_leq(prelen, 128);
    if (prelen) memcpy(b, pre, prelen);
    uint8_t *h = b + prelen;
    size_t n = 9;
    n += hlit(h + n, 2, NULL, "GET");
    h[n++] = 0x86; /* :scheme http */
    n += hlit(h + n, 4, NULL, path);
    n += hlit(h + n, 1, NULL, "127.0.0.1");
    n += hlit(h + n, 0, "privgate-purpose", "orders");
    n += hlit(h + n, 0, "privgate-caller", "orders-service");
    rframe(h, n - 9, RF_HEADERS, 0x4 | 0x1, sid); /* END_HEADERS | END_STREAM */
    raw_send(c, b, prelen + n);
}

static void raw_get(struct rawh2 *c, uint32_t sid, const char *path)
{
    raw_send_with_get(c, NULL, 0, sid, path);
}

static void raw_frame(struct rawh2 *c, const uint8_t *f, size_t len)
{
    uint8_t type = f[3], flags = f[4];
    const uint8_t *p = f + 9;
    uint32_t sid = get32(f + 5) & 0x7fffffffu;
    bool mine = sid < RAW_MAX_SID;
    if (mine && (type == RF_DATA || type == RF_HEADERS) && (flags & 0x1)) c->ended[sid] = true;
    switch (type) {
    case RF_GOAWAY:
        if (c->ngoaway < 4 && len >= 8) {
            c->goaway_last[c->ngoaway] = get32(p) & 0x7fffffffu;
            c->goaway_code[c->ngoaway] = get32(p + 4);
        }
        c->ngoaway++;
        break;
    case RF_PING:
        if (!(flags & 0x1) && len == 8) {
            c->pings++;
            memcpy(c->ping_data, p, 8);
        }
        break;
    case RF_SETTINGS:
        if (flags & 0x1) break;
        c->settings = true;
        for (size_t i = 0; i + 6 <= len; i += 6) {
            unsigned id = (unsigned)p[i] << 8 | p[i + 1];
            if (id < 16) {
                c->set_has[id] = true;
                c->set_val[id] = get32(p + i + 2);
            }
        }
        break;
    case RF_RST:
        if (mine && len >= 4) c->rst[sid] = get32(p) + 1;
        break;
    case RF_HEADERS: {
        const uint8_t *in = p;
        size_t left = len;
        for (;;) {
            nghttp2_nv nv;
            int fl = 0;
            ssize_t k = nghttp2_hd_inflate_hd2(c->inf, &nv, &fl, in, left, 1);
            if (k < 0) break;
            in += k;
            left -= (size_t)k;
            if ((fl & NGHTTP2_HD_INFLATE_EMIT) && mine) {
                if (nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0)
                    c->status[sid] = (int)strtol((const char *)nv.value, NULL, 10);
                if (nv.namelen == 14 && memcmp(nv.name, "privgate-error", 14) == 0)
                    snprintf(c->error[sid], sizeof(c->error[sid]), "%.*s", (int)nv.valuelen,
                             nv.value);
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

/* Reads what comes within |ms| and parses the whole frames. */
static void raw_pump(struct rawh2 *c, int ms)
{
    if (c->eof) return;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    if (poll(&pfd, 1, ms) <= 0) return;
    if (c->icap - c->ilen < 65536) {
        c->icap = c->icap ? c->icap * 2 : 262144;
        c->in = realloc(c->in, c->icap);
        cr_assert(c->in);
    }
    ssize_t k = recv(c->fd, c->in + c->ilen, c->icap - c->ilen, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (k <= 0) {
        c->eof = true;
        return;
    }
    c->ilen += (size_t)k;
    size_t off = 0;
    while (c->ilen - off >= 9) {
        const uint8_t *f = c->in + off;
        size_t len = (size_t)f[0] << 16 | (size_t)f[1] << 8 | f[2];
        if (c->ilen - off < 9 + len) break;
        raw_frame(c, f, len);
        off += 9 + len;
    }
    memmove(c->in, c->in + off, c->ilen - off);
    c->ilen -= off;
}

/* Reads until |*flag| differs from |was| (or EOF, or |ms|). */
static bool raw_until_int(struct rawh2 *c, const int *flag, int was, int ms)
{
    long end = now_ms() + ms;
    while (*flag == was && !c->eof && now_ms() < end)
        raw_pump(c, 50);
    return *flag != was;
}

static bool raw_until_bool(struct rawh2 *c, const bool *flag, int ms)
{
    long end = now_ms() + ms;
    while (!*flag && !c->eof && now_ms() < end)
        raw_pump(c, 50);
    return *flag;
}

static bool raw_until_eof(struct rawh2 *c, int ms)
{
    long end = now_ms() + ms;
    while (!c->eof && now_ms() < end)
        raw_pump(c, 50);
    return c->eof;
}

/* Connects to |port|: preface, empty SETTINGS, then the server's SETTINGS
 * (acknowledged). */
static void raw_open(struct rawh2 *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = loopback_connect(port);
    cr_assert(c->fd >= 0, "connect: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    cr_assert(nghttp2_hd_inflate_new(&c->inf) == 0);
    uint8_t b[64];
    memcpy(b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    size_t n = 24 + rframe(b + 24, 0, RF_SETTINGS, 0, 0);
    raw_send(c, b, n);
    cr_assert(raw_until_bool(c, &c->settings, 10000), "no SETTINGS from the gateway");
    n = rframe(b, 0, RF_SETTINGS, 0x1, 0);
    raw_send(c, b, n);
}

static void raw_close(struct rawh2 *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->in);
    c->in = NULL;
    if (c->inf) nghttp2_hd_inflate_del(c->inf);
    c->inf = NULL;
}

/* A provider whose GET /v1/ping?hold=1 the partner holds (--hold-file). */
static const char HOLD_CONTRACT[] = "contract: 1\n"
                                    "provider: hold\n"
                                    "name: Hold\n"
                                    "purposes: [orders]\n"
                                    "upstream:\n"
                                    "  url: @UP@\n"
                                    "  insecure: true\n"
                                    "routes:\n"
                                    "  - method: GET\n"
                                    "    path: /v1/ping\n"
                                    "    query: [hold]\n";

/* Starts the partner (holding) and the gateway, and a held request by
 * curl: the gateway keeps draining while it is in flight. Returns curl's
 * pid; its status code goes to |out|. */
static pid_t start_held(char *release, char *out, size_t outcap)
{
    e2e_init(&E);
    snprintf(release, 512, "%s", e2e_path(&E, "release"));
    const char *extra[] = {"--hold-file", release, NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "hold", HOLD_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hold/v1/ping?hold=1", E.gw_port);
    snprintf(out, outcap, "%s", e2e_path(&E, "held.out"));
    char *argv[] = {"curl",       "-sS",     "--http2-prior-knowledge",
                    "--max-time", "60",      "-o",
                    "/dev/null",  "-w",      "%{http_code}",
                    "-H",         H_PURPOSE, url,
                    NULL};
    pid_t curl = e2e_spawn(argv, out, NULL);
    /* the provider has it (recorded on arrival, answered on release) */
    cr_assert(wait_lines(E.record, 1, 10000), "the held request did not reach the provider");
    return curl;
}

static void finish_held(pid_t curl, const char *release, const char *out)
{
    e2e_write(release, "go\n");
    int st;
    waitpid(curl, &st, 0);
    char *code = e2e_read(out, NULL);
    cr_expect(code && strcmp(code, "200") == 0, "the in-flight request got %s", code ? code : "?");
    free(code);
}

/* A held request in flight (it keeps the gateway draining), a raw h2c
 * connection, then |sig|: returns the held curl once the connection got
 * the first GOAWAY. */
static pid_t drain_start(int sig, struct rawh2 *c, char *release, char *out, size_t outcap)
{
    pid_t curl = start_held(release, out, outcap);
    raw_open(c, E.gw_port);
    kill(E.gw_pid, sig);
    cr_assert(raw_until_int(c, &c->ngoaway, 0, 10000), "no GOAWAY after signal %d", sig);
    return curl;
}

/* Lets the held request finish and expects the gateway to exit 0. */
static void drain_finish(pid_t curl, const char *release, const char *out, int sig)
{
    finish_held(curl, release, out);
    cr_expect_eq(e2e_stop(E.gw_pid, sig, 10000), 0, "exit status after the drain");
    E.gw_pid = 0;
}

/* Connection attempts to the gateway's port are refused (polled: each
 * worker closes its own listener when it sees the signal). */
static bool connections_refused(int port, int ms)
{
    long end = now_ms() + ms;
    while (now_ms() < end) {
        int fd = loopback_connect(port);
        if (fd < 0 && errno == ECONNREFUSED) return true;
        if (fd >= 0) close(fd);
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* SPEC 5 503 shutting_down over HTTP/2, RFC 9113 6.8: on SIGTERM an open
 * connection gets GOAWAY(2^31-1, NO_ERROR) and a PING; a request sent after
 * that notice is answered 503 shutting_down; the final GOAWAY (last stream
 * id = the last processed) follows the PING's ACK, which this client sends
 * after its request. The gateway falls back to the final GOAWAY 1 s after
 * the notice when no ACK comes: if this client's request arrived after
 * that (a machine stalled for a second), it must be refused cleanly
 * instead: above the final GOAWAY's last stream id and never answered.
 * Both are correct HTTP/2; the first is what happens here. */
Test(lifecycle, sigterm_sends_shutdown_notice_then_503_shutting_down_then_goaway)
{
    char release[512], out[512];
    struct rawh2 c;
    pid_t curl = drain_start(SIGTERM, &c, release, out, sizeof(out));
    cr_expect_eq(c.goaway_last[0], 0x7fffffffu, "first GOAWAY last-stream-id %u, want 2^31-1",
                 c.goaway_last[0]);
    cr_expect_eq(c.goaway_code[0], 0u, "GOAWAY code %u", c.goaway_code[0]);
    /* a request after the notice, then the ACK of the gateway's PING */
    raw_get(&c, 1, "/hold/v1/ping");
    cr_assert(raw_until_int(&c, &c.pings, 0, 10000), "no PING with the shutdown notice");
    uint8_t ack[17];
    rframe(ack, 8, RF_PING, 0x1, 0);
    memcpy(ack + 9, c.ping_data, 8);
    raw_send(&c, ack, sizeof(ack));
    cr_assert(raw_until_int(&c, &c.ngoaway, 1, 10000), "no final GOAWAY");
    uint32_t last = c.goaway_last[1];
    cr_expect_eq(c.goaway_code[1], 0u);
    if (last >= 1) {
        cr_expect(raw_until_bool(&c, &c.ended[1], 10000), "stream 1 was processed, not answered");
        cr_expect_eq(c.status[1], 503);
        cr_expect_str_eq(c.error[1], "shutting_down");
    } else {
        fprintf(stderr, "note: the request came after the final GOAWAY\n");
        raw_pump(&c, 200);
        cr_expect_eq(c.status[1], 0, "a stream above the final GOAWAY was answered");
    }
    /* nothing of it reached the provider (only the held request did) */
    cr_expect_eq(e2e_count_lines(E.record), 1);
    /* the listeners are closed: new connections are refused, while the
     * held request keeps the gateway draining */
    cr_expect(connections_refused(E.gw_port, 10000), "new connections still accepted");
    cr_expect_eq(kill(E.gw_pid, 0), 0, "the gateway did not wait for its in-flight request");
    /* the raw connection, without streams now, is closed */
    cr_expect(raw_until_eof(&c, 10000), "the drained connection stays open");
    raw_close(&c);
    drain_finish(curl, release, out, SIGTERM);
}

/* Only the ACK of the gateway's own drain PING ends the round trip: a PING
 * ACK the caller makes up (or a SETTINGS ACK) right after the notice must
 * not bring the final GOAWAY forward and drop the request that follows it
 * unanswered. Before the fix the final GOAWAY (last-stream-id 0) came at
 * once; now it comes only with the 1 s fallback, so one that arrives sooner
 * than half of that is the bug, whatever the machine's speed. */
Test(lifecycle, a_made_up_ping_ack_does_not_end_the_drain_round_trip)
{
    char release[512], out[512];
    struct rawh2 c;
    pid_t curl = drain_start(SIGTERM, &c, release, out, sizeof(out));
    long t_notice = now_ms();
    cr_expect_eq(c.goaway_last[0], 0x7fffffffu);
    /* a PING ACK with data of our own, then a request, in one write: the
     * gateway reads both together */
    uint8_t ack[17];
    rframe(ack, 8, RF_PING, 0x1, 0);
    memcpy(ack + 9, "madeup!!", 8);
    raw_send_with_get(&c, ack, sizeof(ack), 1, "/hold/v1/ping");
    cr_assert(raw_until_int(&c, &c.ngoaway, 1, 10000), "no final GOAWAY");
    long dt = now_ms() - t_notice;
    if (c.goaway_last[1] < 1) {
        /* only the 1 s fallback may end the round trip without our ACK
         * (a machine stalled that long before reading the request) */
        cr_expect_geq(dt, 500,
                      "final GOAWAY (last 0) %ld ms after the notice: the made-up "
                      "ACK ended the round trip and the request was dropped",
                      dt);
    } else {
        cr_expect(raw_until_bool(&c, &c.ended[1], 10000), "stream 1 processed, not answered");
        cr_expect_eq(c.status[1], 503);
        cr_expect_str_eq(c.error[1], "shutting_down");
    }
    cr_expect_eq(e2e_count_lines(E.record), 1); /* only the held request */
    raw_close(&c);
    drain_finish(curl, release, out, SIGTERM);
}

/* HTTP/1.1: a keep-alive connection that had an exchange, with the start
 * of the next request head read when SIGTERM comes: the head is finished
 * and answered 503 shutting_down with connection: close, then closed. */
Test(lifecycle, sigterm_answers_503_to_a_request_on_a_keep_alive_http1_connection)
{
    char release[512], out[512];
    pid_t curl = start_held(release, out, sizeof(out));
    int fd = loopback_connect(E.gw_port);
    cr_assert(fd >= 0, "connect: %s", strerror(errno));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char req[] = "GET /hold/v1/ping HTTP/1.1\r\nhost: gw\r\n"
                              "privgate-purpose: orders\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
    char buf[8192];
    size_t have = 0;
    /* the first answer, complete (its body is the partner's JSON echo) */
    while (have < sizeof(buf) - 1) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
        cr_assert(k > 0, "the first exchange did not complete");
        have += (size_t)k;
        buf[have] = '\0';
        char *eoh = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "content-length: ");
        if (eoh && cl && have >= (size_t)(eoh + 4 - buf) + strtoul(cl + 16, NULL, 10)) break;
    }
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "first answer: %.80s", buf);
    cr_assert(strstr(buf, "connection: close") == NULL, "not kept alive");
    /* the start of the next head, read by the gateway before the signal */
    static const char part1[] = "GET /hold/v1/ping HTTP/1.1\r\nhost: gw\r\n";
    cr_assert_eq(write(fd, part1, sizeof(part1) - 1), (ssize_t)(sizeof(part1) - 1));
    cr_assert(wait_consumed(fd, 10000), "the gateway did not read the partial head");
    kill(E.gw_pid, SIGTERM);
    cr_assert(wait_text(E.gw_err, "draining", 10000));
    static const char part2[] = "privgate-purpose: orders\r\n\r\n";
    /* (the worker may see the signal a moment after the main thread
     * said "draining": it is checked on the answer, which it decides) */
    cr_assert_eq(write(fd, part2, sizeof(part2) - 1), (ssize_t)(sizeof(part2) - 1));
    have = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (k <= 0) break;
        have += (size_t)k;
        if (have == sizeof(buf) - 1) break;
    }
    buf[have] = '\0';
    close(fd);
    cr_expect(strncmp(buf, "HTTP/1.1 503", 12) == 0, "answer during the drain: %.200s", buf);
    cr_expect(strstr(buf, "privgate-error: shutting_down\r\n") != NULL, "%.300s", buf);
    cr_expect(strstr(buf, "connection: close\r\n") != NULL, "%.300s", buf);
    cr_expect(strstr(buf, "\"code\":\"shutting_down\"") != NULL, "%.400s", buf);
    cr_expect_eq(e2e_count_lines(E.record), 2, "the refused request reached the provider");
    drain_finish(curl, release, out, SIGTERM);
}

Test(lifecycle, sigint_drains_and_exits_0)
{
    char release[512], out[512];
    struct rawh2 c;
    pid_t curl = drain_start(SIGINT, &c, release, out, sizeof(out));
    cr_expect(connections_refused(E.gw_port, 10000), "new connections still accepted");
    raw_close(&c);
    drain_finish(curl, release, out, SIGINT);
}

/* The downstream SETTINGS on the wire: MAX_CONCURRENT_STREAMS from
 * limits.max_streams_per_connection, NO_RFC7540_PRIORITIES = 1, and a
 * stream over the acknowledged limit refused — nghttp2 makes that a
 * connection error, GOAWAY(PROTOCOL_ERROR); RST_STREAM(REFUSED_STREAM) is
 * accepted too (RFC 9113 5.1.2 allows either as a stream error). */
Test(lifecycle, settings_on_the_wire)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "hold", HOLD_CONTRACT);
    cr_assert(e2e_start_gateway(&E, "limits:\n  max_streams_per_connection: 7\n"
                                    "  max_header_bytes: 3KiB\n"));
    struct rawh2 c;
    raw_open(&c, E.gw_port);
    cr_expect(c.set_has[3] && c.set_val[3] == 7, "MAX_CONCURRENT_STREAMS %u", c.set_val[3]);
    cr_expect(c.set_has[9] && c.set_val[9] == 1, "NO_RFC7540_PRIORITIES %u", c.set_val[9]);
    cr_expect(c.set_has[6] && c.set_val[6] == 3072, "MAX_HEADER_LIST_SIZE %u", c.set_val[6]);
    /* 8 streams kept open (bodies to come) at once: the 8th is refused */
    uint8_t b[8 * 160];
    size_t n = 0;
    for (uint32_t sid = 1; sid <= 15; sid += 2) {
        size_t at = n;
        n += 9;
        n += hlit(b + n, 3, NULL, "POST");
        b[n++] = 0x86;
        n += hlit(b + n, 4, NULL, "/hold/v1/ping");
        n += hlit(b + n, 1, NULL, "127.0.0.1");
        n += hlit(b + n, 0, "privgate-purpose", "orders");
        rframe(b + at, n - at - 9, RF_HEADERS, 0x4, sid);
    }
    raw_send(&c, b, n);
    long end = now_ms() + 10000;
    while (!c.rst[15] && !c.ngoaway && !c.eof && now_ms() < end)
        raw_pump(&c, 50);
    fprintf(stderr,
            "8th stream over max_streams_per_connection 7: RST_STREAM code %d, GOAWAY %d "
            "(code %u)\n",
            (int)c.rst[15] - 1, c.ngoaway, c.goaway_code[0]);
    cr_expect(c.rst[15] == 7 + 1 || (c.ngoaway && c.goaway_code[0] != 0),
              "the 8th stream was not refused");
    for (uint32_t sid = 1; sid < 15; sid += 2)
        cr_expect_eq(c.rst[sid], 0u, "stream %u was refused", sid);
    raw_close(&c);
}

/* A POST of JSON to |path| on stream |sid|, its body to follow. */
static void raw_post(struct rawh2 *c, uint32_t sid, const char *path)
{
    uint8_t b[512];
    size_t n = 9;
    n += hlit(b + n, 3, NULL, "POST");
    b[n++] = 0x86; /* :scheme http */
    n += hlit(b + n, 4, NULL, path);
    n += hlit(b + n, 1, NULL, "127.0.0.1");
    n += hlit(b + n, 0, "privgate-purpose", "orders");
    n += hlit(b + n, 0, "privgate-caller", "orders-service");
    n += hlit(b + n, 0, "content-type", "application/json");
    rframe(b, n - 9, RF_HEADERS, 0x4, sid); /* END_HEADERS */
    raw_send(c, b, n);
}

static void raw_data(struct rawh2 *c, uint32_t sid, const char *p, bool end)
{
    uint8_t b[1024];
    size_t l = strlen(p);
    cr_assert(l + 9 <= sizeof(b));
    rframe(b, l, RF_DATA, end ? 0x1 : 0, sid);
    memcpy(b + 9, p, l);
    raw_send(c, b, 9 + l);
}

/* Starts partner (--log-streams) and gateway with the shop contracts. */
static void start_logged(char *log, size_t cap)
{
    e2e_init(&E);
    snprintf(log, cap, "%s", e2e_path(&E, "streams.log"));
    const char *extra[] = {"--log-streams", log, NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    e2e_contract(&E, "strict", STRICT_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
}

/* A valid reload while a request is in flight: the request finishes on the
 * rule set it started with (its email removed, though the email arrives
 * after the reload), the next one gets the new set (email kept). */
Test(lifecycle, valid_reload_keeps_the_old_set_for_a_request_in_flight)
{
    char log[512];
    start_logged(log, sizeof(log));
    struct rawh2 c;
    raw_open(&c, E.gw_port);
    raw_post(&c, 1, "/shop/v1/orders");
    raw_data(&c, 1, "{\"order_id\":7,\"customer_id\":\"C-1001\",", false);
    /* the request has started upstream: it holds its rule set */
    cr_assert(wait_text(log, "headers conn=", 10000), "the request did not start upstream");
    char *keep_email = shop_keeping_email();
    e2e_contract(&E, "shop", keep_email);
    free(keep_email);
    kill(E.gw_pid, SIGHUP);
    cr_assert(wait_text(E.gw_err, "reloaded", 10000));
    raw_data(&c, 1, "\"email\":\"ann@example.com\",\"items\":[{\"sku\":\"B-1\"}]}", true);
    cr_assert(raw_until_bool(&c, &c.ended[1], 10000), "no answer");
    cr_expect_eq(c.status[1], 200);
    raw_close(&c);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect(strstr(jstr(j, "body"), "ann@example.com") == NULL,
              "the in-flight request used the new set: %s", jstr(j, "body"));
    cr_expect(strstr(jstr(j, "body"), "\"order_id\":7") != NULL, "%s", jstr(j, "body"));
    json_decref(j);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    j = recorded(&E, 1);
    cr_assert(j);
    cr_expect(strstr(jstr(j, "body"), "ann@example.com") != NULL, "the new set is not used: %s",
              jstr(j, "body"));
    json_decref(j);
}

/* unlisted: reject, seen from the provider's side: a refused request opens
 * no stream at all (not merely "never completed"). The valid request sent
 * after it on the same connection — same worker, same upstream connection —
 * is the first and only stream the provider sees. */
Test(lifecycle, unlisted_reject_opens_no_upstream_stream)
{
    char log[512];
    start_logged(log, sizeof(log));
    struct rawh2 c;
    raw_open(&c, E.gw_port);
    raw_post(&c, 1, "/strict/v1/x");
    raw_data(&c, 1, "{\"a\":1,", false);
    raw_data(&c, 1, "\"zz\":2}", true);
    cr_assert(raw_until_bool(&c, &c.ended[1], 10000));
    cr_expect_eq(c.status[1], 422);
    cr_expect_str_eq(c.error[1], "unlisted_field");
    raw_post(&c, 3, "/strict/v1/x");
    raw_data(&c, 3, "{\"a\":2}", true);
    cr_assert(raw_until_bool(&c, &c.ended[3], 10000));
    cr_expect_eq(c.status[3], 200);
    raw_close(&c);
    cr_expect_eq(e2e_count_lines(log), 1, "streams opened upstream:\n%s", e2e_read(log, NULL));
    cr_expect_eq(count_text(log, "headers conn=1 stream=1 "), 1);
    cr_expect_eq(e2e_count_lines(E.record), 1);
}

/* A body found invalid after filtered bytes left: the provider saw the
 * stream open (HEADERS, part of the body) and then reset, never complete;
 * the caller gets 400 invalid_body. */
Test(lifecycle, invalid_at_the_end_resets_the_upstream_stream)
{
    char log[512];
    start_logged(log, sizeof(log));
    struct rawh2 c;
    raw_open(&c, E.gw_port);
    raw_post(&c, 1, "/shop/v1/bulk");
    raw_data(&c, 1, "[{\"a\":1},{\"b\":2},", false);
    cr_assert(wait_text(log, "headers conn=1 stream=1 end=0", 10000),
              "the request did not start upstream");
    raw_data(&c, 1, "x]", true);
    cr_assert(raw_until_bool(&c, &c.ended[1], 10000), "no answer");
    cr_expect_eq(c.status[1], 400);
    cr_expect_str_eq(c.error[1], "invalid_body");
    raw_close(&c);
    cr_expect(wait_text(log, "rst conn=1 stream=1 ", 10000), "the upstream stream was not reset");
    cr_expect_eq(e2e_count_lines(E.record), 0, "the provider saw the request complete");
}
