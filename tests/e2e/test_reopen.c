/*
 * End-to-end: SIGHUP reopens the audit log (rotation the nginx way:
 * `mv audit.log audit.log.1; kill -HUP`).
 *
 * - under load (h2load in the background): the file is renamed, SIGHUP
 *   sent; a new audit.log appears and gets the records of the requests
 *   sent after it appeared; every request is in exactly one of the two
 *   files, once, and every line of both is a whole JSON record.
 * - the reopen fails (as root chmod stops nothing: the audit file's
 *   directory is renamed away and a regular file put in its place, so the
 *   open fails with ENOTDIR): the gateway keeps writing to the old file and
 *   says so in one stderr line naming the path and the errno text; a later
 *   SIGHUP with the directory back reopens.
 * - a refused contract reload still reopens the audit log.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static const char ORDER[] =
    "{\"order_id\":7,\"customer_id\":\"C-1\",\"email\":\"REOPENMARK@x.example\"}";

static void nap(void)
{
    /* polling interval while waiting for a file or a line (not a sync sleep) */
    struct timespec ts = {0, 5L * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t count_in(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* Waits (up to |ms|) until |path| holds |needle| at least |n| times. */
static bool wait_text(const char *path, const char *needle, size_t n, int ms)
{
    long end = now_ms() + ms;
    for (;;) {
        char *p = e2e_read(path, NULL);
        size_t k = count_in(p, needle);
        free(p);
        if (k >= n) return true;
        if (now_ms() >= end) return false;
        nap();
    }
}

static bool wait_lines(const char *path, size_t n, int ms)
{
    long end = now_ms() + ms;
    while (e2e_count_lines(path) < n) {
        if (now_ms() >= end) return false;
        nap();
    }
    return true;
}

static void start(const char *partner_delay_ms)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", partner_delay_ms, NULL};
    e2e_start_partner(&E, "h2c", partner_delay_ms ? extra : NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    if (!e2e_start_gateway(&E, NULL)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void teardown(void)
{
    e2e_fini(&E);
}

/* Request ids, as the gateway answered them or the audit log has them. */
struct ids {
    char (*v)[64];
    size_t n, cap;
};

static void ids_add(struct ids *s, const char *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        cr_assert(s->v);
    }
    snprintf(s->v[s->n++], sizeof(s->v[0]), "%s", id);
}

static size_t ids_count(const struct ids *s, const char *id)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], id) == 0) k++;
    return k;
}

/* One forwarded request; its privgate-request-id goes to |out|. */
static void send_one(struct ids *out)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h, ORDER, NULL, &r);
    cr_assert_eq(r.status, 200, "status %d (%s)", r.status, r.body);
    const char *id = e2e_header(&r, "privgate-request-id");
    cr_assert(id && *id, "no privgate-request-id");
    ids_add(out, id);
    e2e_resp_free(&r);
}

/* Every line of |path| must be one whole JSON object with a request_id:
 * the ids, in file order. A missing file has none. */
static void load_ids(const char *path, struct ids *out)
{
    size_t len = 0;
    char *p = e2e_read(path, &len);
    if (!p) return;
    cr_assert(len == 0 || p[len - 1] == '\n', "%s ends inside a line", path);
    for (char *l = p; *l;) {
        char *eol = strchr(l, '\n');
        cr_assert(eol);
        *eol = '\0';
        json_error_t jerr;
        json_t *j = json_loads(l, 0, &jerr);
        cr_assert(j && json_is_object(j), "%s: not a whole JSON record: %s", path, l);
        const char *id = json_string_value(json_object_get(j, "request_id"));
        cr_assert(id && *id, "%s: record without request_id: %s", path, l);
        ids_add(out, id);
        json_decref(j);
        l = eol + 1;
    }
    free(p);
}

static int stop_gateway(void)
{
    int st = e2e_stop(E.gw_pid, SIGTERM, 20000);
    E.gw_pid = 0;
    return st;
}

TestSuite(reopen, .fini = teardown);

Test(reopen, rename_and_sighup_under_load_loses_and_duplicates_nothing)
{
    start("10"); /* each request in flight for 10 ms: the load lasts */
    char fp[512], old[512];
    snprintf(fp, sizeof(fp), "%s", e2e_path(&E, "order.json"));
    snprintf(old, sizeof(old), "%s.1", E.audit);
    e2e_write(fp, "%s", ORDER);
    const int total = 4000;
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/shop/v1/orders", E.gw_port);
        char *argv[] = {"h2load", "-n",      "4000", "-c",     "4",  "-m",   "10", "-d", fp,
                        "-H",     H_PURPOSE, "-H",   H_CALLER, "-H", H_JSON, url,  NULL};
        char *out = NULL;
        e2e_run(argv, NULL, &out, NULL);
        _exit(out && strstr(out, "status codes: 4000 2xx") ? 0 : 1);
    }
    struct ids before = {0}, between = {0}, after = {0};
    cr_assert(wait_lines(E.audit, 1, 20000), "no audit record");
    for (int i = 0; i < 3; i++)
        send_one(&before);
    cr_assert(rename(E.audit, old) == 0, "rename: %s", strerror(errno));
    size_t at_rename = e2e_count_lines(old);
    for (int i = 0; i < 3; i++)
        send_one(&between); /* still the old file's: no SIGHUP yet */
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(e2e_wait_file(E.audit, 20000), "SIGHUP did not create a new audit file");
    /* the writer swaps right after the open: anything written from now
     * on goes to the new file */
    for (int i = 0; i < 3; i++)
        send_one(&after);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "h2load: not every request answered 2xx");
    cr_assert_eq(stop_gateway(), 0, "the gateway did not exit cleanly");

    struct ids o = {0}, n = {0};
    load_ids(old, &o);
    load_ids(E.audit, &n);
    size_t sent = (size_t)total + before.n + between.n + after.n;
    cr_log_info("audit.log.1: %zu records (%zu at the rename), audit.log: %zu, sent %zu", o.n,
                at_rename, n.n, sent);
    cr_expect_eq(o.n + n.n, sent, "records %zu + %zu for %zu requests", o.n, n.n, sent);
    cr_expect_gt(o.n, 0);
    cr_expect_geq(n.n, after.n, "the new file got %zu records", n.n);
    /* no id twice anywhere: with the count above, each request once */
    for (size_t i = 0; i < o.n; i++) {
        cr_expect_eq(ids_count(&o, o.v[i]), 1, "%s twice in the old file", o.v[i]);
        cr_expect_eq(ids_count(&n, o.v[i]), 0, "%s in both files", o.v[i]);
    }
    for (size_t i = 0; i < n.n; i++)
        cr_expect_eq(ids_count(&n, n.v[i]), 1, "%s twice in the new file", n.v[i]);
    for (size_t i = 0; i < before.n; i++)
        cr_expect_eq(ids_count(&o, before.v[i]) + ids_count(&n, before.v[i]), 1);
    for (size_t i = 0; i < between.n; i++)
        cr_expect_eq(ids_count(&o, between.v[i]) + ids_count(&n, between.v[i]), 1);
    for (size_t i = 0; i < after.n; i++)
        cr_expect_eq(ids_count(&n, after.v[i]), 1, "%s not in the new file", after.v[i]);

    struct stat sb;
    cr_assert(stat(E.audit, &sb) == 0);
    cr_expect(S_ISREG(sb.st_mode));
    mode_t um = umask(0);
    umask(um);
    cr_expect_eq(sb.st_mode & 0777, 0640 & ~um, "mode %o", (unsigned)(sb.st_mode & 0777));
    char *err = e2e_read(E.gw_err, NULL);
    cr_expect(count_in(err, "cannot reopen") == 0, "%s", err);
    cr_expect(count_in(err, "REOPENMARK") == 0, "stderr shows a value: %s", err);
    free(err);
    free(o.v);
    free(n.v);
    free(before.v);
    free(between.v);
    free(after.v);
}

Test(reopen, failed_reopen_keeps_the_old_file_and_says_so_once)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    char logs[512], moved[512], in_old[600], in_new[600];
    snprintf(logs, sizeof(logs), "%s", e2e_path(&E, "logs"));
    snprintf(moved, sizeof(moved), "%s", e2e_path(&E, "logs.moved"));
    snprintf(in_old, sizeof(in_old), "%s/audit.log", moved);
    snprintf(in_new, sizeof(in_new), "%s/audit.log", logs);
    /* audit.log -> logs/audit.log: the configured path goes through a
     * directory the test can take away (root ignores permissions) */
    cr_assert(mkdir(logs, 0700) == 0);
    cr_assert(symlink("logs/audit.log", E.audit) == 0, "symlink: %s", strerror(errno));
    if (!e2e_start_gateway(&E, NULL)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
    struct ids sent1 = {0}, sent2 = {0}, sent3 = {0};
    for (int i = 0; i < 2; i++)
        send_one(&sent1);
    cr_assert(wait_lines(in_new, 2, 20000));
    /* the directory goes, a regular file takes its name: open() of
     * logs/audit.log now fails with ENOTDIR, whoever we are */
    cr_assert(rename(logs, moved) == 0, "rename: %s", strerror(errno));
    e2e_write(logs, "not a directory\n");
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(wait_text(E.gw_err, "cannot reopen", 1, 20000), "no stderr line for the failure");
    for (int i = 0; i < 3; i++)
        send_one(&sent2);
    cr_assert(wait_lines(in_old, 5, 20000), "the old file stopped getting records");

    /* the directory is back: the next SIGHUP reopens */
    cr_assert(unlink(logs) == 0);
    cr_assert(mkdir(logs, 0700) == 0);
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(e2e_wait_file(in_new, 20000), "no reopen once the directory is back");
    for (int i = 0; i < 2; i++)
        send_one(&sent3);
    cr_assert_eq(stop_gateway(), 0);

    struct ids o = {0}, n = {0};
    load_ids(in_old, &o);
    load_ids(in_new, &n);
    cr_expect_eq(o.n, sent1.n + sent2.n, "old file: %zu records", o.n);
    for (size_t i = 0; i < sent1.n; i++)
        cr_expect_eq(ids_count(&o, sent1.v[i]), 1);
    for (size_t i = 0; i < sent2.n; i++)
        cr_expect_eq(ids_count(&o, sent2.v[i]), 1, "%s not in the old file", sent2.v[i]);
    cr_expect_eq(n.n, sent3.n, "new file: %zu records", n.n);
    for (size_t i = 0; i < sent3.n; i++)
        cr_expect_eq(ids_count(&n, sent3.v[i]), 1, "%s not in the new file", sent3.v[i]);

    char *err = e2e_read(E.gw_err, NULL);
    cr_assert(err);
    cr_expect_eq(count_in(err, "cannot reopen"), 1, "%s", err);
    char want[800];
    snprintf(want, sizeof(want), "cannot reopen %s: %s;", E.audit, strerror(ENOTDIR));
    cr_expect(strstr(err, want), "want \"%s\" in: %s", want, err);
    cr_expect(count_in(err, "records are being lost") == 0, "%s", err);
    cr_expect(count_in(err, "REOPENMARK") == 0, "stderr shows a value: %s", err);
    free(err);
    free(o.v);
    free(n.v);
    free(sent1.v);
    free(sent2.v);
    free(sent3.v);
}

/* A gateway that wrote two records, its audit file then renamed to
 * |old| (audit.log.1), as logrotate does before the SIGHUP. */
static void start_and_rotate(char *old, size_t cap, struct ids *sent)
{
    start(NULL);
    snprintf(old, cap, "%s.1", E.audit);
    for (int i = 0; i < 2; i++)
        send_one(sent);
    cr_assert(wait_lines(E.audit, 2, 20000));
    cr_assert(rename(E.audit, old) == 0);
}

Test(reopen, refused_reload_still_reopens)
{
    char old[512];
    struct ids sent1 = {0}, sent2 = {0};
    start_and_rotate(old, sizeof(old), &sent1);
    e2e_contract(&E, "broken", "contract: 1\nprovider: Broken!\n");
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(wait_text(E.gw_err, "reload refused", 1, 20000));
    cr_assert(e2e_wait_file(E.audit, 20000), "a refused reload did not reopen the audit log");
    for (int i = 0; i < 2; i++)
        send_one(&sent2); /* the old contracts still serve */
    cr_assert_eq(stop_gateway(), 0);
    struct ids o = {0}, n = {0};
    load_ids(old, &o);
    load_ids(E.audit, &n);
    cr_expect_eq(o.n, sent1.n);
    cr_expect_eq(n.n, sent2.n);
    for (size_t i = 0; i < sent1.n; i++)
        cr_expect_eq(ids_count(&o, sent1.v[i]), 1);
    for (size_t i = 0; i < sent2.n; i++)
        cr_expect_eq(ids_count(&n, sent2.v[i]), 1);
    free(o.v);
    free(n.v);
    free(sent1.v);
    free(sent2.v);
}

/* A FIFO put at the path: without a reader the reopen must not block the
 * writer (which would stop every record and hang shutdown); with one it
 * must not write into it. Both are refused like any failed reopen: the
 * old file goes on. */
Test(reopen, fifo_at_the_path_is_refused_and_shutdown_does_not_hang)
{
    char old[512];
    struct ids sent1 = {0}, sent2 = {0};
    start_and_rotate(old, sizeof(old), &sent1);
    cr_assert(mkfifo(E.audit, 0600) == 0, "mkfifo: %s", strerror(errno));
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(wait_text(E.gw_err, "cannot reopen", 1, 20000), "no stderr line for the FIFO");
    /* now with a reader: the open succeeds, the file type refuses it */
    int rd = open(E.audit, O_RDONLY | O_NONBLOCK);
    cr_assert(rd >= 0, "open fifo: %s", strerror(errno));
    cr_assert(kill(E.gw_pid, SIGHUP) == 0);
    cr_assert(wait_text(E.gw_err, "cannot reopen", 2, 20000), "no stderr line for the FIFO");
    for (int i = 0; i < 2; i++)
        send_one(&sent2);
    cr_assert(wait_lines(old, 4, 20000), "records stopped: the writer is stuck on the FIFO");
    /* exits (e2e_stop gives up after 20 s): the writer is not blocked */
    cr_assert_eq(stop_gateway(), 0);
    char buf[64];
    cr_expect(read(rd, buf, sizeof(buf)) <= 0, "records went into the FIFO");
    close(rd);
    struct ids o = {0};
    load_ids(old, &o);
    cr_expect_eq(o.n, sent1.n + sent2.n, "old file: %zu records", o.n);
    for (size_t i = 0; i < sent2.n; i++)
        cr_expect_eq(ids_count(&o, sent2.v[i]), 1, "%s not in the old file", sent2.v[i]);
    char *err = e2e_read(E.gw_err, NULL);
    cr_assert(err);
    char want[800];
    snprintf(want, sizeof(want), "cannot reopen %s: %s;", E.audit, strerror(ENXIO));
    cr_expect(strstr(err, want), "want \"%s\" in: %s", want, err);
    snprintf(want, sizeof(want), "cannot reopen %s: not a regular file;", E.audit);
    cr_expect(strstr(err, want), "want \"%s\" in: %s", want, err);
    free(err);
    free(o.v);
    free(sent1.v);
    free(sent2.v);
}
