/*
 * End-to-end: the audit log's per-worker fragment cache (proxy/audit.c)
 * never puts a wrong path, caller or contract in a record.
 *
 * One HTTP/1.1 keep-alive connection (curl --next) sends bodies whose removed/transformed
 * lists alternate, repeat in another order, differ only in the last byte a
 * path keeps (256) or only past the cut (same logged text), cut inside a
 * UTF-8 code point, and overflow FLT_REPORT_MAX (the same 64 paths with a
 * different `removed_more`). A SIGHUP reload then changes the contract (a
 * field kept, a caller added): every later record must follow the new
 * contract and carry its digest. Each record is checked against the list
 * the test computes itself, byte for byte after JSON decoding, including
 * order, dedupe and the cut with "...".
 */
#include <errno.h>
#include <openssl/evp.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

#define CONTRACT_V1                                                                                \
    "contract: 1\n"                                                                                \
    "provider: cachetest\n"                                                                        \
    "name: Audit cache test\n"                                                                     \
    "purposes: [orders]\n"                                                                         \
    "callers: [orders-service]\n"                                                                  \
    "upstream:\n"                                                                                  \
    "  url: @UP@\n"                                                                                \
    "  insecure: true\n"                                                                           \
    "routes:\n"                                                                                    \
    "  - method: POST\n"                                                                           \
    "    path: /v1/orders\n"                                                                       \
    "    body:\n"                                                                                  \
    "      fields:\n"                                                                              \
    "        order_id: keep\n"                                                                     \
    "        created_at: year\n"                                                                   \
    "        items[].sku: keep\n"

/* v2: email is kept now, and billing-service may call */
#define CONTRACT_V2                                                                                \
    "contract: 1\n"                                                                                \
    "provider: cachetest\n"                                                                        \
    "name: Audit cache test\n"                                                                     \
    "purposes: [orders]\n"                                                                         \
    "callers: [orders-service, billing-service]\n"                                                 \
    "upstream:\n"                                                                                  \
    "  url: @UP@\n"                                                                                \
    "  insecure: true\n"                                                                           \
    "routes:\n"                                                                                    \
    "  - method: POST\n"                                                                           \
    "    path: /v1/orders\n"                                                                       \
    "    body:\n"                                                                                  \
    "      fields:\n"                                                                              \
    "        order_id: keep\n"                                                                     \
    "        email: keep\n"                                                                        \
    "        created_at: year\n"                                                                   \
    "        items[].sku: keep\n"

/* One request: its body, caller, and what its record must say. */
struct req {
    char *body;
    const char *caller;   /* privgate-caller value */
    int version;          /* contract version it must be filtered by */
    const char *want[80]; /* removed paths, in order (NULL-terminated) */
    int want_more;        /* removed_more (0: key absent) */
    const char *want_tr[4];
    const char *want_caller; /* NULL: null */
    int want_status;
    bool own_want; /* want[] entries were allocated */
    /* filled from curl */
    char rid[64];
    int status, connects;
    char resp[320];
};

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    cr_assert(p);
    return p;
}

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    int n = vasprintf(&p, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && p);
    return p;
}

/* "sha256:<hex>" of a file's bytes, as the gateway logs a contract. */
static void file_sha(const char *path, char out[80])
{
    size_t len = 0;
    char *b = e2e_read(path, &len);
    cr_assert(b, "cannot read %s", path);
    unsigned char md[32];
    unsigned mdlen = 0;
    cr_assert(EVP_Digest(b, len, md, &mdlen, EVP_sha256(), NULL) && mdlen == 32);
    memcpy(out, "sha256:", 8);
    for (int i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
    free(b);
}

/* What report.c stores for "body." + |name| (ASCII or whole UTF-8): cut to
 * 256 bytes on a code point boundary, ended "...". */
static char *cut_path(const char *name)
{
    char *p = xprintf("body.%s", name);
    size_t n = strlen(p);
    if (n <= 256) return p;
    size_t keep = 253;
    while (keep > 0 && ((unsigned char)p[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(p + keep, "...", 4);
    return p;
}

static char *rep(char c, size_t n, const char *tail)
{
    size_t tl = strlen(tail);
    char *p = malloc(n + tl + 1);
    cr_assert(p);
    memset(p, c, n);
    memcpy(p + n, tail, tl + 1);
    return p;
}

/* ------------------------------------------------------------ body shapes */

static void shape_a(struct req *r, int v)
{
    r->body = xstrdup("{\"order_id\":1,\"email\":\"ann@example.com\",\"phone\":\"+44 1\","
                      "\"created_at\":\"2026-01-02\"}");
    int k = 0;
    if (v == 1) r->want[k++] = "body.email";
    r->want[k++] = "body.phone";
    r->want_tr[0] = "body.created_at";
}

static void shape_b(struct req *r, int v)
{
    (void)v;
    r->body = xstrdup("{\"order_id\":2,\"name\":\"Ann\",\"ip\":\"203.0.113.7\",\"items\":"
                      "[{\"sku\":\"s\",\"price\":1},{\"sku\":\"t\",\"price\":2,\"tags\":[]}]}");
    r->want[0] = "body.name";
    r->want[1] = "body.ip";
    r->want[2] = "body.items[].price"; /* once, though removed twice */
    r->want[3] = "body.items[].tags";
}

/* the same removed set as A (v1), in the other order */
static void shape_c(struct req *r, int v)
{
    r->body = xstrdup("{\"phone\":\"+44 1\",\"email\":\"ann@example.com\",\"order_id\":3}");
    int k = 0;
    r->want[k++] = "body.phone";
    if (v == 1) r->want[k++] = "body.email";
}

/* one removed member called |name| (owned by the request's want[0]) */
static void shape_name(struct req *r, const char *name)
{
    r->body = xprintf("{\"order_id\":4,\"%s\":true}", name);
    r->want[0] = cut_path(name);
    r->own_want = true;
}

/* one removed member written |json| in the body, logged as |path| */
static void shape_raw(struct req *r, const char *json, const char *path)
{
    r->body = xprintf("{\"order_id\":6,\"%s\":0}", json);
    r->want[0] = xstrdup(path);
    r->own_want = true;
}

/* |n| removed members f0..f(n-1): FLT_REPORT_MAX listed, the rest counted */
static void shape_many(struct req *r, int n)
{
    size_t cap = (size_t)n * 16 + 32, o = 0;
    r->body = malloc(cap);
    cr_assert(r->body);
    o += (size_t)snprintf(r->body + o, cap - o, "{\"order_id\":5");
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(r->body + o, cap - o, ",\"f%d\":%d", i, i);
        if (i < 64) r->want[i] = xprintf("body.f%d", i);
    }
    snprintf(r->body + o, cap - o, "}");
    r->want_more = n > 64 ? n - 64 : 0;
    r->own_want = true;
}

static void req_init(struct req *r, int v, const char *caller)
{
    memset(r, 0, sizeof(*r));
    r->version = v;
    r->caller = caller ? caller : "orders-service";
    r->want_status = 200;
    bool listed = strcmp(r->caller, "orders-service") == 0 ||
                  (v == 2 && strcmp(r->caller, "billing-service") == 0);
    r->want_caller = listed ? r->caller : NULL;
}

static void req_free(struct req *r)
{
    free(r->body);
    for (int i = 0; r->own_want && i < 80 && r->want[i]; i++)
        free((char *)r->want[i]);
}

/* ------------------------------------------------------------ driving */

struct argv {
    char **v;
    size_t n, cap;
};

static void arg(struct argv *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof(char *));
        cr_assert(a->v);
    }
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

/* Sends |n| requests in one curl run; fills status, connects and request
 * id of each. |h1|: HTTP/1.1 keep-alive, one connection for all (curl
 * 7.88's --next cannot reuse an h2c prior-knowledge connection: it fails
 * with "Error in the HTTP2 framing layer", against nghttpd too); else h2
 * prior knowledge (use n == 1). */
static void send_all(struct req *rq, size_t n, const char *tag, bool h1)
{
    struct argv a = {0};
    arg(&a, "curl");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/cachetest/v1/orders", E.gw_port);
    for (size_t i = 0; i < n; i++) {
        if (i) arg(&a, "--next");
        char bf[64], rf[64];
        snprintf(bf, sizeof(bf), "%s-body-%zu.json", tag, i);
        snprintf(rf, sizeof(rf), "%s-resp-%zu.json", tag, i);
        e2e_write(e2e_path(&E, bf), "%s", rq[i].body);
        snprintf(rq[i].resp, sizeof(rq[i].resp), "%s", e2e_path(&E, rf));
        char *data = xprintf("@%s", e2e_path(&E, bf));
        char *caller = xprintf("privgate-caller: %s", rq[i].caller);
        const char *per[] = {h1 ? "--http1.1" : "--http2-prior-knowledge",
                             "-sS",
                             "--max-time",
                             "30",
                             "-o",
                             rq[i].resp,
                             "-w",
                             "%{http_code} %{num_connects} %header{privgate-request-id}\\n",
                             "-H",
                             H_PURPOSE,
                             "-H",
                             caller,
                             "-H",
                             H_JSON,
                             "--data-binary",
                             data,
                             url};
        for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++)
            arg(&a, per[k]);
        free(data);
        free(caller);
    }
    char *out = NULL;
    e2e_run(a.v, NULL, &out, NULL);
    cr_assert(out, "curl gave no output");
    char *line = out;
    for (size_t i = 0; i < n; i++) {
        cr_assert(line && *line, "curl said nothing for request %zu:\n%s", i, out);
        cr_assert_eq(sscanf(line, "%d %d %63s", &rq[i].status, &rq[i].connects, rq[i].rid), 3,
                     "curl line %zu: %s", i, line);
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(out);
    for (size_t i = 0; i < a.n; i++)
        free(a.v[i]);
    free(a.v);
}

/* The request's echoed (forwarded) body, as the partner saw it. */
static char *forwarded(const struct req *r)
{
    char *p = e2e_read(r->resp, NULL);
    cr_assert(p, "no response file %s", r->resp);
    json_error_t je;
    json_t *j = json_loads(p, 0, &je);
    free(p);
    cr_assert(j, "response is not JSON");
    const char *b = jstr(j, "body");
    char *s = xstrdup(b ? b : "");
    json_decref(j);
    return s;
}

static json_t *record_of(json_t *lines, const char *rid)
{
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l)
    {
        const char *x = jstr(l, "request_id");
        if (x && strcmp(x, rid) == 0) return l;
    }
    return NULL;
}

static json_t *load_audit(void)
{
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log, "no audit log");
    json_t *arr = json_array();
    for (char *l = log; *l;) {
        char *eol = strchr(l, '\n');
        cr_assert(eol, "audit log ends inside a line");
        json_error_t je;
        json_t *j = json_loadb(l, (size_t)(eol - l), 0, &je);
        cr_assert(j, "not JSON: %.*s", (int)(eol - l), l);
        json_array_append_new(arr, j);
        l = eol + 1;
    }
    free(log);
    return arr;
}

static void check_list(json_t *rec, const char *key, const char *const *want, size_t idx)
{
    json_t *a = json_object_get(rec, key);
    cr_assert(json_is_array(a), "request %zu: %s is not an array", idx, key);
    size_t n = 0;
    while (want[n])
        n++;
    cr_expect_eq(json_array_size(a), n, "request %zu: %zu %s paths, want %zu", idx,
                 json_array_size(a), key, n);
    for (size_t i = 0; i < n && i < json_array_size(a); i++) {
        const char *got = json_string_value(json_array_get(a, i));
        cr_expect(got && strcmp(got, want[i]) == 0, "request %zu: %s[%zu] is %s, want %s", idx, key,
                  i, got ? got : "(not a string)", want[i]);
    }
}

static void check_record(json_t *lines, const struct req *r, size_t idx, const char *sha)
{
    json_t *rec = record_of(lines, r->rid);
    cr_assert(rec, "request %zu (%s): no audit record", idx, r->rid);
    cr_expect_eq(json_integer_value(json_object_get(rec, "status")), r->want_status,
                 "request %zu: status", idx);
    const char *c = jstr(rec, "contract");
    cr_expect(c && strcmp(c, sha) == 0, "request %zu: contract %s, want %s (v%d)", idx,
              c ? c : "null", sha, r->version);
    const char *caller = jstr(rec, "caller");
    if (r->want_caller)
        cr_expect(caller && strcmp(caller, r->want_caller) == 0, "request %zu: caller %s", idx,
                  caller ? caller : "null");
    else
        cr_expect(json_is_null(json_object_get(rec, "caller")), "request %zu: caller %s", idx,
                  caller ? caller : "(not a string)");
    cr_expect_str_eq(jstr(rec, "provider"), "cachetest");
    cr_expect_str_eq(jstr(rec, "purpose"), "orders");
    cr_expect_str_eq(jstr(rec, "method"), "POST");
    cr_expect_str_eq(jstr(rec, "route"), "/v1/orders");
    check_list(rec, "removed", r->want, idx);
    check_list(rec, "transformed", r->want_tr, idx);
    json_t *more = json_object_get(rec, "removed_more");
    if (r->want_more)
        cr_expect_eq(json_integer_value(more), r->want_more, "request %zu: removed_more", idx);
    else
        cr_expect_null(more, "request %zu: removed_more present", idx);
    cr_expect_null(json_object_get(rec, "transformed_more"));
}

static bool wait_text(const char *path, const char *needle, int timeout_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        char *s = e2e_read(path, NULL);
        bool ok = s && strstr(s, needle);
        free(s);
        if (ok) return true;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
            return false;
        /* polling a file the gateway appends to (not a synchronisation sleep) */
        struct timespec ts = {0, 10L * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(auditcache, .fini = teardown, .timeout = 300);

Test(auditcache, records_name_exactly_the_right_paths_across_shapes_cuts_and_reload)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "cachetest", CONTRACT_V1);
    char sha1[80], sha2[80];
    file_sha(e2e_path(&E, "contracts/cachetest.yaml"), sha1);
    if (!e2e_start_gateway(&E, NULL)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }

    /* names around the cut: "body." + 251 bytes is 256, kept whole */
    char *n256a = rep('k', 250, "a"), *n256b = rep('k', 250, "b");
    /* 257 bytes and more: cut to 253 + "...": these two log the same text */
    char *n257a = rep('k', 250, "aX"), *n257b = rep('k', 250, "bX");
    /* the cut falls inside a 2-byte code point: it keeps 252 bytes */
    char *nutf = rep('k', 247, "\xc3\xa9\xc3\xa9X");

    static struct req p1[40];
    size_t n1 = 0;
    /* alternate two shapes, then A's set in the other order */
    for (int i = 0; i < 3; i++) {
        req_init(&p1[n1], 1, NULL);
        shape_a(&p1[n1++], 1);
        req_init(&p1[n1], 1, NULL);
        shape_b(&p1[n1++], 1);
    }
    req_init(&p1[n1], 1, NULL);
    shape_c(&p1[n1++], 1);
    req_init(&p1[n1], 1, NULL);
    shape_a(&p1[n1++], 1);
    const char *names[] = {n256a, n256b, n256a, n257a, n257b, n257a, nutf, n256b};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        req_init(&p1[n1], 1, NULL);
        shape_name(&p1[n1++], names[i]);
    }
    /* UTF-8 kept as it is; a control character and a quoted name (the
     * escaped renderings are cached too) */
    for (int i = 0; i < 2; i++) {
        req_init(&p1[n1], 1, NULL);
        shape_raw(&p1[n1++], "pr\xc3\xa9nom", "body.pr\xc3\xa9nom");
        req_init(&p1[n1], 1, NULL);
        shape_raw(&p1[n1++], "tab\\u0009x", "body.tab\tx");
        req_init(&p1[n1], 1, NULL);
        shape_raw(&p1[n1++], "a\\\"b", "body.\"a\\\"b\"");
    }
    /* the same 64 listed paths with different counts past them */
    int many[] = {70, 70, 65, 64, 70};
    for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++) {
        req_init(&p1[n1], 1, NULL);
        shape_many(&p1[n1++], many[i]);
    }
    /* a caller v1 does not list: refused, logged as null */
    req_init(&p1[n1], 1, "billing-service");
    shape_a(&p1[n1], 1);
    p1[n1].want_status = 403;
    p1[n1].want[0] = NULL; /* refused before the body is filtered */
    p1[n1++].want_tr[0] = NULL;
    req_init(&p1[n1], 1, NULL);
    shape_a(&p1[n1++], 1);
    cr_assert(n1 <= sizeof(p1) / sizeof(p1[0]));
    send_all(p1, n1, "p1", true);
    int connects = 0;
    for (size_t i = 0; i < n1; i++) {
        cr_expect_eq(p1[i].status, p1[i].want_status, "phase 1 request %zu: status %d", i,
                     p1[i].status);
        connects += p1[i].connects;
    }
    cr_expect_eq(connects, 1, "phase 1 used %d connections", connects);

    /* reload: email is kept now, billing-service may call */
    e2e_contract(&E, "cachetest", CONTRACT_V2);
    file_sha(e2e_path(&E, "contracts/cachetest.yaml"), sha2);
    cr_assert(strcmp(sha1, sha2) != 0);
    kill(E.gw_pid, SIGHUP);
    cr_assert(wait_text(E.gw_err, "privgate: reloaded", 20000), "no reload");
    /* the workers take the new set on their next turn: probe until a
     * forwarded body keeps email (each probe's record is checked too) */
    static struct req probe[64];
    size_t np = 0;
    for (; np < sizeof(probe) / sizeof(probe[0]); np++) {
        req_init(&probe[np], 2, NULL);
        shape_a(&probe[np], 2);
        char tag[16];
        snprintf(tag, sizeof(tag), "pr%zu", np);
        send_all(&probe[np], 1, tag, false);
        char *fw = forwarded(&probe[np]);
        bool v2 = strstr(fw, "ann@example.com") != NULL;
        free(fw);
        if (!v2) { /* still v1: what its record must say */
            req_free(&probe[np]);
            req_init(&probe[np], 1, NULL);
            shape_a(&probe[np], 1);
            continue;
        }
        np++;
        break;
    }
    cr_assert(np < sizeof(probe) / sizeof(probe[0]), "the reload never took effect");

    static struct req p2[12];
    size_t n2 = 0;
    for (int i = 0; i < 2; i++) {
        req_init(&p2[n2], 2, NULL);
        shape_a(&p2[n2++], 2);
        req_init(&p2[n2], 2, NULL);
        shape_b(&p2[n2++], 2);
    }
    req_init(&p2[n2], 2, "billing-service");
    shape_a(&p2[n2++], 2);
    req_init(&p2[n2], 2, NULL);
    shape_c(&p2[n2++], 2);
    req_init(&p2[n2], 2, NULL);
    shape_name(&p2[n2++], n257b);
    req_init(&p2[n2], 2, NULL);
    shape_many(&p2[n2++], 70);
    req_init(&p2[n2], 2, NULL);
    shape_a(&p2[n2++], 2);
    send_all(p2, n2, "p2", true);
    connects = 0;
    for (size_t i = 0; i < n2; i++) {
        cr_expect_eq(p2[i].status, p2[i].want_status, "phase 2 request %zu: status %d", i,
                     p2[i].status);
        connects += p2[i].connects;
        char *fw = forwarded(&p2[i]);
        if (strstr(p2[i].body, "email"))
            cr_expect(strstr(fw, "ann@example.com"), "phase 2 request %zu filtered by v1", i);
        free(fw);
    }
    cr_expect_eq(connects, 1, "phase 2 used %d connections", connects);

    long hwm = e2e_proc_kb(E.gw_pid, "VmHWM");
    cr_log_info("gateway VmHWM %ld KiB", hwm);
    cr_expect(hwm > 0 && hwm < 256 * 1024, "VmHWM %ld KiB", hwm);
    /* stop: the writer flushes every record */
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;

    json_t *lines = load_audit();
    cr_expect_eq(json_array_size(lines), n1 + np + n2, "%zu records for %zu requests",
                 json_array_size(lines), n1 + np + n2);
    for (size_t i = 0; i < n1; i++)
        check_record(lines, &p1[i], i, sha1);
    for (size_t i = 0; i < np; i++)
        check_record(lines, &probe[i], 100 + i, probe[i].version == 2 ? sha2 : sha1);
    for (size_t i = 0; i < n2; i++)
        check_record(lines, &p2[i], 200 + i, sha2);
    json_decref(lines);

    for (size_t i = 0; i < n1; i++)
        req_free(&p1[i]);
    for (size_t i = 0; i < np; i++)
        req_free(&probe[i]);
    for (size_t i = 0; i < n2; i++)
        req_free(&p2[i]);
    free(n256a);
    free(n256b);
    free(n257a);
    free(n257b);
    free(nutf);
}

#define CONTRACT_HEADS                                                                             \
    "contract: 1\n"                                                                                \
    "provider: headtest\n"                                                                         \
    "name: Audit head cache test\n"                                                                \
    "purposes: [orders, ordera]\n"                                                                 \
    "callers: [orders-service, ordersxservice]\n"                                                  \
    "upstream:\n"                                                                                  \
    "  url: @UP@\n"                                                                                \
    "  insecure: true\n"                                                                           \
    "routes:\n"                                                                                    \
    "  - method: POST\n"                                                                           \
    "    path: /v1/orders\n"                                                                       \
    "    body:\n"                                                                                  \
    "      fields:\n"                                                                              \
    "        order_id: keep\n"

/* The head fragments (caller .. route, contract) are cached per caller and
 * purpose with their bytes packed in one buffer: callers and purposes of
 * the same length (the same slot) that differ in one byte, listed or not,
 * must each get their own words, repeated (cache hits) or alternating. */
Test(auditcache, heads_follow_caller_and_purpose_bytes)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "headtest", CONTRACT_HEADS);
    if (!e2e_start_gateway(&E, NULL)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
    static const struct {
        const char *caller, *purpose;
        bool caller_listed, purpose_listed;
    } cases[] = {
        {"orders-service", "orders", true, true},  {"ordersxservice", "orders", true, true},
        {"ordersyservice", "orders", false, true}, {"orders-service", "ordera", true, true},
        {"orders-service", "orderb", true, false}, {"ordersxservice", "ordera", true, true},
    };
    enum { NC = sizeof(cases) / sizeof(cases[0]), ROUNDS = 3 };
    char rid[ROUNDS * 2 * NC][64];
    int idx[ROUNDS * 2 * NC];
    int n = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < NC; i++) {
            for (int rep = 0; rep < 2; rep++) { /* the second one hits */
                int c = round == 1 ? NC - 1 - i : i;
                char hc[64], hp[64];
                snprintf(hc, sizeof hc, "privgate-caller: %s", cases[c].caller);
                snprintf(hp, sizeof hp, "privgate-purpose: %s", cases[c].purpose);
                const char *h[] = {hc, hp, H_JSON, NULL};
                struct e2e_resp r;
                e2e_curl(&E, "POST", "/headtest/v1/orders", h, "{\"order_id\":1}", NULL, &r);
                int want = !cases[c].caller_listed || !cases[c].purpose_listed ? 403 : 200;
                cr_assert_eq(r.status, want, "%s %s: %d", cases[c].caller, cases[c].purpose,
                             r.status);
                const char *x = e2e_header(&r, "privgate-request-id");
                cr_assert(x);
                snprintf(rid[n], sizeof rid[n], "%s", x);
                idx[n++] = c;
                e2e_resp_free(&r);
            }
        }
    }
    cr_assert_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
    char *log = e2e_read(E.audit, NULL);
    cr_assert(log);
    for (int k = 0; k < n; k++) {
        char key[96];
        snprintf(key, sizeof key, "\"request_id\":\"%s\"", rid[k]);
        char *rec = strstr(log, key);
        cr_assert(rec, "no record for %s", rid[k]);
        char *eol = strchr(rec, '\n');
        cr_assert(eol);
        char line[2048];
        size_t len = (size_t)(eol - rec);
        cr_assert_lt(len, sizeof line);
        memcpy(line, rec, len);
        line[len] = '\0';
        int c = idx[k];
        char want[128];
        if (cases[c].caller_listed)
            snprintf(want, sizeof want, ",\"caller\":\"%s\",", cases[c].caller);
        else
            snprintf(want, sizeof want, ",\"caller\":null,");
        cr_expect(strstr(line, want), "request %d: want %s in %s", k, want, line);
        if (cases[c].purpose_listed)
            snprintf(want, sizeof want, ",\"purpose\":\"%s\",", cases[c].purpose);
        else
            snprintf(want, sizeof want, ",\"purpose\":null,");
        cr_expect(strstr(line, want), "request %d: want %s in %s", k, want, line);
        cr_expect(strstr(line, ",\"provider\":\"headtest\",\"purpose\":"), "%s", line);
        cr_expect(strstr(line, ",\"route\":\"/v1/orders\","), "%s", line);
        cr_expect(strstr(line, ",\"contract\":\"sha256:"), "%s", line);
    }
    free(log);
}
