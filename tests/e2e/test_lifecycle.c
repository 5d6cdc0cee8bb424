/*
 * End-to-end: start-up errors, SIGTERM drain, SIGHUP reload (also under
 * load), many streams on one connection and on several connections.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(lifecycle, .fini = teardown);

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
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

Test(lifecycle, sighup_under_load_loses_no_request)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    const char *f = e2e_path(&E, "order.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    e2e_write(fp, "%s", ORDER);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int failed;
        int ok = h2load(fp, 3000, 4, 20, &failed);
        _exit(ok == 3000 && failed == 0 ? 0 : 1);
    }
    /* reload while the load runs: each reload waits for the previous */
    for (int i = 1; i <= 5; i++) {
        kill(E.gw_pid, SIGHUP);
        char want[64];
        snprintf(want, sizeof(want), "reloaded");
        long end = now_ms() + 10000;
        size_t seen = 0;
        while (now_ms() < end) {
            char *p = e2e_read(E.gw_err, NULL);
            seen = 0;
            for (char *q = p; q && (q = strstr(q, want)) != NULL; q++)
                seen++;
            free(p);
            if (seen >= (size_t)i) break;
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
        }
        cr_expect_geq(seen, (size_t)i);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "requests were lost during reloads");
}

Test(lifecycle, idle_connection_gets_goaway_and_is_closed)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    cr_assert(e2e_start_gateway(&E, "limits:\n  idle_timeout: 300ms\n"));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)E.gw_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
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
