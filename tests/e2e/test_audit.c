/*
 * End-to-end: the audit log when it cannot be written (issue 5 item 4) and
 * its exact line format.
 *
 * - audit.path on /dev/full (every write fails with ENOSPC): requests are
 *   still answered, privgate_audit_records_lost_total{reason="write_error"}
 *   counts exactly the requests sent, stderr says so at most once per 10 s
 *   and never with a value, /readyz is 503 with `audit.require: true` and
 *   200 without it.
 * - audit.path on a FIFO the test controls: lines arrive while a reader
 *   is there; with the reader gone writes fail (EPIPE), records are counted
 *   lost and /readyz is 503; with a reader again the next record is written
 *   and /readyz is 200 again.
 * - the same FIFO never read: the writer blocks, the workers' rings fill,
 *   records are dropped and counted (reason="queue_full") and no request
 *   waits for the disk; once read, lines + lost == requests sent, exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;
static int admin_port;

static void nap(void)
{
    /* polling interval while waiting for a counter or a state (not a sync sleep) */
    struct timespec ts = {0, 20L * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts partner and gateway; |audit_target|: NULL = the harness's file,
 * "fifo" = a FIFO at the audit path (the test must open |*rd| first, done
 * here), else a symlink to that path. */
static void start(const char *audit_target, bool require, int *rd)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    if (audit_target && strcmp(audit_target, "fifo") == 0) {
        cr_assert(mkfifo(E.audit, 0600) == 0, "mkfifo: %s", strerror(errno));
        /* a reader first, so the gateway's open for writing does not wait */
        *rd = open(E.audit, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        cr_assert(*rd >= 0);
    } else if (audit_target) {
        cr_assert(symlink(audit_target, E.audit) == 0, "symlink: %s", strerror(errno));
    }
    admin_port = e2e_free_port();
    char yaml[256];
    /* appended right after the harness's "audit:\n  path: audit.log\n" */
    snprintf(yaml, sizeof(yaml), "  require: %s\nadmin:\n  address: 127.0.0.1:%d\n",
             require ? "true" : "false", admin_port);
    if (!e2e_start_gateway(&E, yaml)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void teardown(void)
{
    e2e_fini(&E);
}

/* GET |path| on the admin listener (HTTP/1.1); the body in |*body|. */
static int admin_get(const char *path, char **body)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", admin_port, path);
    char *argv[] = {"curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    char *nl = out ? strrchr(out, '\n') : NULL;
    cr_assert(nl, "admin curl failed");
    int status = (int)strtol(nl + 1, NULL, 10);
    *nl = '\0';
    if (body)
        *body = out;
    else
        free(out);
    return status;
}

/* Value of the series written exactly |series| (name{labels}) or -1. */
static long long metric(const char *series)
{
    char *m = NULL;
    cr_assert_eq(admin_get("/metrics", &m), 200);
    long long v = -1;
    size_t sl = strlen(series);
    for (char *l = m; l && *l;) {
        char *eol = strchr(l, '\n');
        if (strncmp(l, series, sl) == 0 && l[sl] == ' ') v = strtoll(l + sl + 1, NULL, 10);
        l = eol ? eol + 1 : NULL;
    }
    free(m);
    return v;
}

#define LOST_WRITE "privgate_audit_records_lost_total{reason=\"write_error\"}"
#define LOST_FULL "privgate_audit_records_lost_total{reason=\"queue_full\"}"

/* Waits (up to 20 s) until metric |series| reaches |want|; returns it. */
static long long wait_metric(const char *series, long long want)
{
    long end = now_ms() + 20000;
    long long v;
    while ((v = metric(series)) != want && now_ms() < end)
        nap();
    return v;
}

/* Waits (up to 20 s) for /readyz to answer |want|; returns the status. */
static int wait_ready(int want, char **body)
{
    long end = now_ms() + 20000;
    int st;
    for (;;) {
        char *b = NULL;
        st = admin_get("/readyz", &b);
        if (st == want || now_ms() >= end) {
            if (body)
                *body = b;
            else
                free(b);
            return st;
        }
        free(b);
        nap();
    }
}

static size_t count_in(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Sends |n| requests mixing forwarded and refused ones, each carrying a
 * marker value; checks every answer. */
static void send_mixed(int n, const char *tag)
{
    for (int i = 0; i < n; i++) {
        char body[256], cookie[128], path[128];
        snprintf(body, sizeof(body), "{\"order_id\":%d,\"email\":\"AUDITMARK-%s-%d@example.com\"}",
                 i, tag, i);
        snprintf(cookie, sizeof(cookie), "cookie: sid=AUDITMARK-%s-%d", tag, i);
        snprintf(path, sizeof(path), "/shop/v1/orders?utm=AUDITMARK-%s-%d", tag, i);
        const char *h[] = {i % 3 == 2 ? "privgate-purpose: AUDITMARK-purpose" : H_PURPOSE, H_CALLER,
                           H_JSON, cookie, NULL};
        struct e2e_resp r;
        e2e_curl(&E, "POST", path, h, body, NULL, &r);
        cr_assert_eq(r.status, i % 3 == 2 ? 403 : 200, "request %d: status %d (%s)", i, r.status,
                     r.body);
        e2e_resp_free(&r);
    }
}

static void expect_no_marker(const char *what, const char *text)
{
    cr_expect(text == NULL || strstr(text, "AUDITMARK") == NULL, "%s shows a value: %s", what,
              text);
}

/* ------------------------------------------------------------ /dev/full */

static void dev_full(bool require)
{
    start("/dev/full", require, NULL);
    long t0 = now_ms();
    cr_expect_eq(admin_get("/readyz", NULL), 200, "ready before any record");
    const int n = 12;
    send_mixed(n, require ? "req" : "noreq");
    cr_expect_eq(wait_metric(LOST_WRITE, n), n, "write errors counted");
    cr_expect_eq(metric(LOST_FULL), 0);
    cr_expect_eq(metric("privgate_audit_dropped_total"), 0);
    cr_expect_eq(metric("privgate_audit_failing"), 1);
    char *body = NULL;
    int st = admin_get("/readyz", &body);
    if (require) {
        cr_expect_eq(st, 503, "readyz %d with audit.require and a failing log", st);
        cr_expect(strstr(body, "audit log"), "readyz body: %s", body);
    } else {
        cr_expect_eq(st, 200, "readyz %d without audit.require", st);
    }
    free(body);
    /* still serving */
    send_mixed(3, "after");
    cr_expect_eq(wait_metric(LOST_WRITE, n + 3), n + 3);
    if (require) {
        /* out of rotation, no traffic would ever prove the log works again:
         * ready once no record was lost for 10 s, and not ready again as
         * soon as the next record is lost */
        cr_expect_eq(wait_ready(200, NULL), 200, "ready again 10 s after the last loss");
        send_mixed(1, "probe");
        cr_expect_eq(wait_metric(LOST_WRITE, n + 4), n + 4);
        cr_expect_eq(admin_get("/readyz", NULL), 503, "not ready after a new loss");
    }
    long elapsed_s = (now_ms() - t0) / 1000;
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0, "clean exit with a failing audit log");
    E.gw_pid = 0;
    char *err = e2e_read(E.gw_err, NULL);
    cr_assert(err);
    size_t warns = count_in(err, "privgate: audit log:");
    /* rate limit: one line per 10 s at most (15 failed batches otherwise) */
    cr_expect(warns >= 1 && warns <= (size_t)(1 + elapsed_s / 10 + 1), "%zu warnings in %ld s:\n%s",
              warns, elapsed_s, err);
    cr_expect(strstr(err, "No space left on device"), "%s", err);
    expect_no_marker("stderr", err);
    free(err);
}

TestSuite(audit_faults, .fini = teardown);

Test(audit_faults, dev_full_with_require_keeps_serving_counts_and_is_not_ready)
{
    dev_full(true);
}

Test(audit_faults, dev_full_without_require_keeps_serving_counts_and_stays_ready)
{
    dev_full(false);
}

/* ------------------------------------------------------------ FIFO */

/* Reads from |fd| until |want| lines have arrived in total (|*got|
 * counts them, |acc| collects them) or 20 s pass. */
static void read_lines(int fd, size_t want, size_t *got, char **acc, size_t *acclen)
{
    long end = now_ms() + 20000;
    char buf[65536];
    while (*got < want && now_ms() < end) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 200) <= 0) continue;
        ssize_t k = read(fd, buf, sizeof(buf));
        if (k <= 0) continue;
        for (ssize_t i = 0; i < k; i++)
            *got += buf[i] == '\n';
        if (acc) {
            *acc = realloc(*acc, *acclen + (size_t)k + 1);
            memcpy(*acc + *acclen, buf, (size_t)k);
            *acclen += (size_t)k;
            (*acc)[*acclen] = '\0';
        }
    }
}

Test(audit_faults, fifo_reader_gone_then_back_recovers)
{
    int rd = -1;
    start("fifo", true, &rd);
    size_t got = 0, alen = 0;
    char *acc = NULL;
    send_mixed(3, "fifo1");
    read_lines(rd, 3, &got, &acc, &alen);
    cr_assert_eq(got, 3, "lines through the FIFO");
    expect_no_marker("audit log", acc);
    cr_expect_eq(wait_ready(200, NULL), 200);
    /* the reader goes away: writes fail with EPIPE */
    close(rd);
    send_mixed(4, "fifo2");
    cr_expect_eq(wait_metric(LOST_WRITE, 4), 4);
    char *body = NULL;
    cr_expect_eq(admin_get("/readyz", &body), 503);
    cr_expect(strstr(body, "audit log"), "%s", body);
    free(body);
    /* a reader again: the next record is written, readiness comes back */
    rd = open(E.audit, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    cr_assert(rd >= 0);
    send_mixed(2, "fifo3");
    read_lines(rd, 5, &got, &acc, &alen);
    cr_expect_eq(got, 5, "lines after recovery");
    cr_expect_eq(wait_ready(200, NULL), 200, "ready again once records are written");
    cr_expect_eq(metric(LOST_WRITE), 4, "nothing else lost");
    cr_expect_eq(metric("privgate_audit_failing"), 0);
    expect_no_marker("audit log", acc);
    /* every line is a whole JSON record */
    for (char *l = acc; l && *l;) {
        char *eol = strchr(l, '\n');
        cr_assert(eol);
        json_error_t je;
        json_t *j = json_loadb(l, (size_t)(eol - l), 0, &je);
        cr_expect(j, "not JSON: %.*s", (int)(eol - l), l);
        json_decref(j);
        l = eol + 1;
    }
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(strstr(err, "Broken pipe"), "%s", err);
    cr_expect(strstr(err, "privgate: audit log: writing again"), "%s", err);
    expect_no_marker("stderr", err);
    free(err);
    free(acc);
    close(rd);
}

/* h2load: the number of 4xx answers (the requests are refused by design:
 * the cheapest record for filling the rings). */
static int h2load_unknown(int n, int c)
{
    char url[128], ns[16], cs[16];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope/v1/x", E.gw_port);
    snprintf(ns, sizeof(ns), "%d", n);
    snprintf(cs, sizeof(cs), "%d", c);
    char *argv[] = {"h2load", "-n", ns, "-c", cs, "-m", "16", "-H", H_PURPOSE, url, NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int x[4] = {-1, -1, -1, -1};
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx, %d 3xx, %d 4xx, %d 5xx", &x[0], &x[1], &x[2], &x[3]);
    if (x[2] != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
    return x[2];
}

/* Two rings of 1 MiB and a 64 KiB pipe hold fewer than 8,000 records of
 * at least 250 bytes: 16,000 requests must overflow them. */
Test(audit_faults, full_queue_drops_and_counts_never_blocks)
{
    int rd = -1;
    start("fifo", true, &rd);
    const int n = 16000;
    cr_assert_eq(h2load_unknown(n, 8), n, "every request answered while the log is stuck");
    long long full = metric(LOST_FULL);
    for (long end = now_ms() + 20000; full <= 0 && now_ms() < end; full = metric(LOST_FULL))
        nap();
    cr_expect(full > 0, "queue_full drops: %lld", full);
    cr_expect_eq(metric("privgate_audit_dropped_total"), metric(LOST_FULL),
                 "the older metric is the same count");
    char *body = NULL;
    cr_expect_eq(admin_get("/readyz", &body), 503);
    cr_expect(strstr(body, "audit log"), "%s", body);
    free(body);
    /* read everything: lines written + records lost == requests sent */
    size_t got = 0;
    long end = now_ms() + 30000;
    long long lost = 0;
    while (now_ms() < end) {
        read_lines(rd, got + 1, &got, NULL, NULL);
        lost = metric(LOST_FULL) + metric(LOST_WRITE);
        if ((long long)got + lost == n) break;
    }
    cr_expect_eq((long long)got + lost, n, "%zu lines + %lld lost != %d requests", got, lost, n);
    cr_expect_eq(metric(LOST_WRITE), 0);
    /* the writer drained the rings successfully: ready again */
    cr_expect_eq(wait_ready(200, NULL), 200);
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(strstr(err, "queue full"), "%s", err);
    free(err);
    close(rd);
}

/* ------------------------------------------------------------ format */

TestSuite(audit_format, .fini = teardown);

/* The exact bytes of a record: key order, timestamp, integers and the
 * one-decimal duration as SPEC 7 shows them (and as earlier versions, which
 * formatted with printf, wrote them). */
Test(audit_format, records_are_byte_exact)
{
    start(NULL, false, NULL);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "cookie: a=1", NULL};
    struct e2e_resp r;
    static const char body[] = "{\"order_id\":7,\"customer_id\":\"c\",\"email\":\"e\"}";
    e2e_curl(&E, "POST", "/shop/v1/orders?dry_run=1&x=2", h, body, NULL, &r);
    cr_assert_eq(r.status, 200);
    char rid[64];
    snprintf(rid, sizeof(rid), "%s", e2e_header(&r, "privgate-request-id"));
    e2e_resp_free(&r);
    e2e_curl(&E, "GET", "/nope/x", h, NULL, NULL, &r);
    cr_assert_eq(r.status, 404);
    e2e_resp_free(&r);
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log);
    char *sha = NULL;
    {
        char *c = strstr(log, "\"contract\":\"sha256:");
        cr_assert(c);
        sha = strndup(c + 12, 71);
    }
    char re1[1024], re2[1024];
    snprintf(
        re1, sizeof(re1),
        "^\\{\"ts\":\"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}"
        "Z\",\"request_id\":\"%s\",\"caller\":\"orders-service\",\"provider\":\"shop\","
        "\"purpose\":\"orders\",\"method\":\"POST\",\"route\":\"/v1/orders\",\"status\":200,"
        "\"outcome\":\"forwarded\",\"removed\":\\[\"header\\.cookie\",\"query\\.x\","
        "\"body\\.email\"\\],\"transformed\":\\[\"body\\.customer_id\"\\],\"bytes_in\":%zu,"
        "\"bytes_out\":[1-9][0-9]*,\"duration_ms\":(0|[1-9][0-9]*)\\.[0-9],\"contract\":\"%s\"}$",
        rid, sizeof(body) - 1, sha);
    snprintf(re2, sizeof(re2),
             "^\\{\"ts\":\"[-0-9T:.]{23}Z\",\"request_id\":\"[0-9A-Z]{26}\",\"caller\":null,"
             "\"provider\":null,\"purpose\":null,\"method\":\"GET\",\"route\":null,\"status\":404,"
             "\"outcome\":\"refused\",\"error\":\"unknown_provider\",\"removed\":\\[\\],"
             "\"transformed\":\\[\\],\"bytes_in\":0,\"bytes_out\":0,\"duration_ms\":(0|[1-9][0-9]*)"
             "\\.[0-9],\"contract\":null}$");
    char *l1 = log, *e1 = strchr(l1, '\n');
    cr_assert(e1);
    *e1 = '\0';
    char *l2 = e1 + 1, *e2 = strchr(l2, '\n');
    cr_assert(e2);
    *e2 = '\0';
    cr_expect_eq(e2[1], '\0', "two records only");
    regex_t rx;
    cr_assert_eq(regcomp(&rx, re1, REG_EXTENDED | REG_NOSUB), 0);
    cr_expect_eq(regexec(&rx, l1, 0, NULL, 0), 0, "forwarded record:\n%s\npattern:\n%s", l1, re1);
    regfree(&rx);
    cr_assert_eq(regcomp(&rx, re2, REG_EXTENDED | REG_NOSUB), 0);
    cr_expect_eq(regexec(&rx, l2, 0, NULL, 0), 0, "refused record:\n%s", l2);
    regfree(&rx);
    free(sha);
    free(log);
}

/* The audit record of request |rid| in the log, parsed (NULL if absent). */
static json_t *record_of(const char *log, const char *rid)
{
    char key[64];
    snprintf(key, sizeof(key), "\"request_id\":\"%s\"", rid);
    const char *at = strstr(log, key);
    if (!at) return NULL;
    while (at > log && at[-1] != '\n')
        at--;
    json_error_t err;
    return json_loadb(at, strcspn(at, "\n"), 0, &err);
}

static const char PARAM_CONTRACT[] = "contract: 1\n"
                                     "provider: par\n"
                                     "name: Par\n"
                                     "purposes: [orders]\n"
                                     "upstream:\n"
                                     "  url: @UP@\n"
                                     "  insecure: true\n"
                                     "  hmac_key_file: ../hmac.key\n"
                                     "routes:\n"
                                     "  - method: GET\n"
                                     "    path: /v1/customers/{id}/x\n"
                                     "    params:\n"
                                     "      id: hash\n"
                                     "  - method: POST\n"
                                     "    path: /v1/many\n"
                                     "    body:\n"
                                     "      fields:\n"
                                     "        a: keep\n";

/* SPEC 7 in the gateway's own records: `bytes_out` is what was handed to
 * the provider (0 for a buffered request refused before anything left, the
 * filtered length when forwarded), `removed` stops at 64 paths and
 * `removed_more` counts the rest, a hashed path parameter is
 * `transformed:["param.id"]` with the route's template, never its value. */
Test(audit_format, bytes_out_removed_more_and_path_parameters)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "strict", STRICT_CONTRACT);
    e2e_contract(&E, "par", PARAM_CONTRACT);
    cr_assert(e2e_start_gateway(&E, NULL));
    const char *h[] = {H_PURPOSE, H_JSON, NULL};
    struct e2e_resp r;
    char rid1[64], rid2[64], rid3[64];

    /* buffered (unlisted: reject): 100 KB of the kept member are produced
     * before the unlisted one refuses the whole request */
    static char strict_body[100 * 1024 + 32];
    size_t sn = (size_t)snprintf(strict_body, sizeof(strict_body), "{\"a\":\"");
    memset(strict_body + sn, 'x', 100 * 1024);
    snprintf(strict_body + sn + 100 * 1024, sizeof(strict_body) - sn - 100 * 1024, "\",\"zz\":2}");
    e2e_curl(&E, "POST", "/strict/v1/x", h, strict_body, NULL, &r);
    expect_error(&r, 422, "unlisted_field");
    snprintf(rid1, sizeof(rid1), "%s", e2e_header(&r, "privgate-request-id"));
    e2e_resp_free(&r);

    char many[2048];
    size_t n = (size_t)snprintf(many, sizeof(many), "{\"a\":1");
    for (int i = 0; i < 70; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, ",\"m%02d\":%d", i, i);
    snprintf(many + n, sizeof(many) - n, "}");
    e2e_curl(&E, "POST", "/par/v1/many", h, many, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(rid2, sizeof(rid2), "%s", e2e_header(&r, "privgate-request-id"));
    e2e_resp_free(&r);

    e2e_curl(&E, "GET", "/par/v1/customers/C-7731/x", h, NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(rid3, sizeof(rid3), "%s", e2e_header(&r, "privgate-request-id"));
    e2e_resp_free(&r);
    /* (the refused request was never recorded: it did not leave) */
    cr_expect_eq(e2e_count_lines(E.record), 2);
    json_t *up = recorded(&E, 0);
    cr_assert(up);
    cr_expect_str_eq(jstr(up, "body"), "{\"a\":1}");
    json_decref(up);
    up = recorded(&E, 1);
    cr_assert(up);
    cr_expect(strstr(jstr(up, "path"), "C-7731") == NULL, "the parameter was not hashed");
    json_decref(up);

    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log);
    cr_expect(strstr(log, "C-7731") == NULL, "a path parameter value in the audit log");

    json_t *j = record_of(log, rid1);
    cr_assert(j, "no record for the refused request");
    cr_expect_str_eq(jstr(j, "outcome"), "refused");
    cr_expect_eq(json_integer_value(json_object_get(j, "bytes_in")),
                 (json_int_t)strlen(strict_body));
    cr_expect_eq(json_integer_value(json_object_get(j, "bytes_out")), 0,
                 "bytes_out of a request refused before anything left");
    json_decref(j);

    j = record_of(log, rid2);
    cr_assert(j, "no record for the 70-member request");
    json_t *rm = json_object_get(j, "removed");
    cr_expect_eq(json_array_size(rm), 64);
    cr_expect_str_eq(json_string_value(json_array_get(rm, 0)), "body.m00");
    cr_expect_eq(json_integer_value(json_object_get(j, "removed_more")), 6);
    cr_expect_eq(json_integer_value(json_object_get(j, "bytes_out")), 7, "the filtered {\"a\":1}");
    json_decref(j);

    j = record_of(log, rid3);
    cr_assert(j, "no record for the path parameter request");
    cr_expect_str_eq(jstr(j, "route"), "/v1/customers/{id}/x");
    json_t *tr = json_object_get(j, "transformed");
    cr_expect_eq(json_array_size(tr), 1);
    cr_expect_str_eq(json_string_value(json_array_get(tr, 0)), "param.id");
    json_decref(j);
    free(log);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Records are formatted in place in the worker's 1 MiB ring when 48 KiB
 * (the longest record) fit before its end, else in the line buffer and
 * copied in two parts: 12,000 records of some 250 bytes, over 2 workers,
 * go round each ring at least once. Every record must reach the file whole
 * (one line, one record), once, and none may be lost to a full ring
 * without being counted. */
Test(audit_format, records_whole_across_ring_wrap)
{
    start(NULL, false, NULL);
    const int n = 12000;
    cr_assert_eq(h2load_unknown(n, 4), n);
    char *log = NULL;
    size_t lines = 0;
    long long lost = 0;
    for (long end = now_ms() + 30000; now_ms() < end; nap()) {
        free(log);
        size_t len = 0;
        log = e2e_read(E.audit, &len);
        lines = log ? count_in(log, "\n") : 0;
        lost = metric(LOST_FULL) + metric(LOST_WRITE);
        if ((long long)lines + lost >= n) break;
    }
    cr_assert_eq((long long)lines + lost, n, "%zu lines + %lld lost != %d", lines, lost, n);
    cr_expect(lines > (size_t)n / 2, "%zu lines written", lines);
    char **ids = calloc(lines, sizeof(*ids));
    cr_assert(ids);
    size_t k = 0;
    for (char *l = log; *l;) {
        char *eol = strchr(l, '\n');
        cr_assert(eol, "last line not ended");
        *eol = '\0';
        cr_assert(strncmp(l, "{\"ts\":\"", 7) == 0 && eol[-1] == '}', "not a whole record: %s", l);
        cr_expect_eq(count_in(l, "{\"ts\":"), 1, "%s", l);
        cr_expect(strstr(l, ",\"status\":404,\"outcome\":\"refused\""), "%s", l);
        char *rid = strstr(l, "\"request_id\":\"");
        cr_assert(rid, "%s", l);
        char *q = strchr(rid + 14, '"');
        cr_assert(q, "%s", l);
        *q = '\0'; /* compare the ids alone */
        ids[k++] = rid + 14;
        l = eol + 1;
    }
    cr_assert_eq(k, lines);
    qsort(ids, k, sizeof(*ids), cmp_str);
    for (size_t i = 1; i < k; i++)
        cr_assert(strcmp(ids[i - 1], ids[i]) != 0, "request id twice: %s", ids[i]);
    free(ids);
    free(log);
}
