/*
 * bench_filter: throughput of the JSON filter (filters/json.c) on generated
 * API-like corpora, one core, output to a counting sink.
 *
 *   bench_filter [--runs N] [--only NAME] [--write DIR] [--tsv]
 *
 * Corpora (generated in memory, deterministic):
 *   api-1k      16384 order documents of about 1 KiB each (one request each)
 *   doc-64k     256 list documents of about 64 KiB ({"data":[orders...]})
 *   doc-16m     one list document of about 16 MiB
 *   doc-16m-xf  doc-16m with hash/mask/year rules on some kept fields
 *   gw-1k       16384 times bench/gateway's request body, with the field
 *               rules of bench/gateway-contract.yaml and a report (the
 *               audit log's removed paths), a fresh report per document:
 *               the gateway's json1k request, filter only
 * Each rule set removes about half of the bytes (see the RULES tables).
 *
 * For every corpus the filter runs N times (default 7) fed whole documents,
 * then N times fed in 16 KiB chunks (an HTTP/2 DATA frame); the median is
 * reported as MB/s (10^6 bytes of input per second) and GB/s.
 *
 * --write DIR writes, per corpus, DIR/NAME.json (the documents, one per
 * line), DIR/NAME.out (privgate's output, one document per line) and
 * DIR/NAME.jq (a jq program doing the same removal; not for -xf), for
 * bench/run's comparison with jq. --tsv prints machine-readable lines
 * "NAME<TAB>bytes<TAB>docs<TAB>out_bytes<TAB>MB/s whole<TAB>MB/s chunked".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "filters/filters.h"

/* ------------------------------------------------------------ buffers */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fputs("bench_filter: out of memory\n", stderr);
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void put(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fputs("bench_filter: format overflow\n", stderr);
        exit(1);
    }
    put(b, tmp, (size_t)n);
}

/* ----------------------------------------------------------- generator */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)((rng >> 11) % n);
}

static const char *const first_names[] = {"Ann",    "Bob",  "Chloé", "Dmitri", "Eve",   "Farah",
                                          "Gustav", "Hana", "Ivan",  "Júlia",  "Kenji", "Lena"};
static const char *const last_names[] = {"Smith",  "Okafor",   "Müller",    "Nakamura",
                                         "García", "Kowalski", "Andersson", "Dubois"};
static const char *const cities[] = {"London",  "Manchester", "Leeds",   "Bristol",
                                     "Glasgow", "Cardiff",    "Belfast", "York"};
static const char *const products[] = {
    "Organic cotton T-shirt, navy, size M", "Stainless steel water bottle 750 ml",
    "Wireless noise-cancelling headphones", "Ceramic pour-over coffee dripper",
    "Merino wool hiking socks (3 pairs)",   "LED desk lamp with USB-C charging port",
    "Recycled paper notebook, dotted, A5",  "Cast iron skillet 26 cm, pre-seasoned"};
static const char *const statuses[] = {"paid", "pending", "shipped", "refunded"};
static const char *const tags[] = {"sale", "new", "eco", "bundle", "gift", "clearance"};

/* Cents without a trailing zero: jq prints 124.40 as 124.4, and bench/run
 * compares jq's output with privgate's byte for byte. */
static uint32_t cents(void)
{
    uint32_t c = rnd(100);
    return c % 10 ? c : c + 1;
}

/* Draws |n| random values, v[i] in [0, mod[i]), in order: the arguments of
 * one printf call are evaluated in an unspecified order, and the corpora
 * must be the same whichever compiler built this. */
static void draw(uint32_t *v, const uint32_t *mod, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = rnd(mod[i]);
}

static void gen_address(struct buf *b)
{
    static const uint32_t m[] = {200, 8, 8, 26, 26, 20, 10, 26, 26};
    uint32_t v[9];
    draw(v, m, 9);
    putf(b,
         "{\"line1\":\"%u %s Street\",\"line2\":null,\"city\":\"%s\",\"postal_code\":\"%c%c%u "
         "%u%c%c\","
         "\"country\":\"GB\"}",
         1 + v[0], last_names[v[1]], cities[v[2]], (int)('A' + v[3]), (int)('A' + v[4]), 1 + v[5],
         v[6], (int)('A' + v[7]), (int)('A' + v[8]));
}

/* One order, about 1 KiB. */
static void gen_order(struct buf *b, uint32_t id)
{
    static const uint32_t m1[] = {12, 8, 12, 28, 24, 60, 60, 4, 900, 2, 4};
    static const uint32_t m2[] = {0xffffffffu, 0xffffffffu, 100, 100000, 60, 12, 28, 2};
    uint32_t v[11];
    draw(v, m1, 11);
    const char *fn = first_names[v[0]], *ln = last_names[v[1]];
    uint32_t c = cents();
    putf(b,
         "{\"id\":%u,\"object\":\"order\",\"created_at\":\"2026-%02u-%02uT%02u:%02u:%02uZ\","
         "\"status\":\"%s\",\"currency\":\"GBP\",\"total\":%u.%02u,\"paid\":%s,\"gift\":%s,",
         id, 1 + v[2], 1 + v[3], v[4], v[5], v[6], statuses[v[7]], 1 + v[8], c,
         v[9] ? "true" : "false", v[10] ? "false" : "true");
    draw(v, m2, 8);
    putf(b,
         "\"customer\":{\"id\":\"cus_%08x%08x\",\"email\":\"%s.%s%u@example.com\","
         "\"name\":\"%s %s\",\"phone\":\"+44 7700 9%05u\",\"birth_date\":\"19%02u-%02u-%02u\","
         "\"marketing_opt_in\":%s,\"address\":",
         v[0], v[1], fn, ln, v[2], fn, ln, v[3], 40 + v[4], 1 + v[5], 1 + v[6],
         v[7] ? "true" : "false");
    gen_address(b);
    puts_(b, "},\"shipping\":{\"method\":\"express\",\"address\":");
    gen_address(b);
    putf(b, ",\"instructions\":\"Leave with neighbour at number %u if nobody is home\"},",
         1 + rnd(99));
    puts_(b, "\"items\":[");
    uint32_t nitems = 1 + rnd(3);
    for (uint32_t i = 0; i < nitems; i++) {
        static const uint32_t m3[] = {1000000, 8, 5, 200};
        draw(v, m3, 4);
        uint32_t ic = cents(), t1 = rnd(6), t2 = rnd(6);
        putf(b,
             "%s{\"sku\":\"SKU-%06u\",\"name\":\"%s\",\"quantity\":%u,\"unit_price\":%u.%02u,"
             "\"tags\":[\"%s\",\"%s\"],\"gift_message\":null}",
             i ? "," : "", v[0], products[v[1]], 1 + v[2], 1 + v[3], ic, tags[t1], tags[t2]);
    }
    static const uint32_t m4[] = {256, 0xffffffffu, 0xffffffffu};
    draw(v, m4, 3);
    putf(
        b,
        "],\"metadata\":{\"source\":\"web\",\"ip\":\"203.0.113.%u\","
        "\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\","
        "\"session\":\"%08x%08x\"},\"notes\":\"Customer asked about delivery window\"}",
        v[0], v[1], v[2]);
}

/* A list page of orders: {"object":"list",...,"data":[...]}, about |size| bytes. */
static void gen_list(struct buf *b, size_t size, uint32_t *id)
{
    static const uint32_t m[] = {50, 0xffffffffu, 0xffffffffu};
    uint32_t v[3];
    draw(v, m, 3);
    size_t st = b->len;
    putf(b,
         "{\"object\":\"list\",\"page\":%u,\"per_page\":100,\"has_more\":true,"
         "\"request_id\":\"req_%08x%08x\",\"data\":[",
         1 + v[0], v[1], v[2]);
    bool first = true;
    while (b->len - st + 1100 < size) {
        if (!first) put(b, ",", 1);
        first = false;
        gen_order(b, (*id)++);
    }
    puts_(b, "]}");
}

/* --------------------------------------------------------------- rules */

struct rule {
    const char *path;
    struct flt_action act;
};

#define KEEP                                                                                       \
    {                                                                                              \
        FLT_ACT_KEEP, 0, false                                                                     \
    }
static const struct rule rules_order[] = {
    {"id", KEEP},           {"object", KEEP},           {"created_at", KEEP},
    {"status", KEEP},       {"currency", KEEP},         {"total", KEEP},
    {"paid", KEEP},         {"shipping.method", KEEP},  {"shipping.address", KEEP},
    {"items[].sku", KEEP},  {"items[].quantity", KEEP}, {"items[].unit_price", KEEP},
    {"items[].name", KEEP}, {"customer.address", KEEP}, {NULL, KEEP},
};
static const struct rule rules_list[] = {
    {"object", KEEP},
    {"page", KEEP},
    {"per_page", KEEP},
    {"has_more", KEEP},
    {"data[].id", KEEP},
    {"data[].object", KEEP},
    {"data[].created_at", KEEP},
    {"data[].status", KEEP},
    {"data[].currency", KEEP},
    {"data[].total", KEEP},
    {"data[].paid", KEEP},
    {"data[].shipping.method", KEEP},
    {"data[].shipping.address", KEEP},
    {"data[].items[].sku", KEEP},
    {"data[].items[].quantity", KEEP},
    {"data[].items[].unit_price", KEEP},
    {"data[].items[].name", KEEP},
    {"data[].customer.address", KEEP},
    {NULL, KEEP},
};
static const struct rule rules_list_xf[] = {
    {"object", KEEP},
    {"page", KEEP},
    {"has_more", KEEP},
    {"data[].id", KEEP},
    {"data[].created_at", {FLT_ACT_YEAR, 0, false}},
    {"data[].status", KEEP},
    {"data[].total", KEEP},
    {"data[].customer.id", {FLT_ACT_HASH, 0, false}},
    {"data[].customer.phone", {FLT_ACT_MASK, 4, true}},
    {"data[].customer.address.city", KEEP},
    {"data[].shipping.method", KEEP},
    {"data[].shipping.address", KEEP},
    {"data[].items[].sku", KEEP},
    {"data[].items[].name", {FLT_ACT_TRUNCATE, 12, false}},
    {"data[].items[].quantity", KEEP},
    {NULL, KEEP},
};

/* bench/gateway-contract.yaml's body fields (POST /v1/orders). */
static const struct rule rules_gateway[] = {
    {"order_id", KEEP},    {"created_at", KEEP},   {"status", KEEP},
    {"currency", KEEP},    {"total", KEEP},        {"shipping", KEEP},
    {"items[].sku", KEEP}, {"items[].name", KEEP}, {"items[].quantity", KEEP},
    {NULL, KEEP},
};

/* bench/gateway-body.json, byte for byte (1024 bytes, no newline). */
static const char gateway_body[] =
    "{\"order_id\":\"ord_7Hq2LmX9Kp\",\"created_at\":\"2026-11-29T08:00:00Z\",\"status"
    "\":\"paid\",\"currency\":\"EUR\",\"total\":129.95,\"customer\":{\"id\":\"cus_41b9e2\",\""
    "name\":\"Ann Example\",\"email\":\"ann.example@example.com\",\"phone\":\"+44 20 79"
    "46 0958\",\"birth_date\":\"1985-04-12\"},\"shipping\":{\"method\":\"express\",\"addr"
    "ess\":{\"street\":\"1 High Street\",\"city\":\"London\",\"postcode\":\"SW1A 1AA\",\"co"
    "untry\":\"GB\"}},\"items\":[{\"sku\":\"BOOK-1\",\"name\":\"A Field Guide to Birds\",\""
    "quantity\":2,\"price\":12.5,\"tags\":[\"gift\",\"paper\"]},{\"sku\":\"MUG-7\",\"name\":"
    "\"Blue mug\",\"quantity\":1,\"price\":9.95,\"tags\":[\"kitchen\"]},{\"sku\":\"LAMP-3\""
    ",\"name\":\"Desk lamp\",\"quantity\":1,\"price\":95.0,\"tags\":[\"home\",\"light\"]}],"
    "\"payment\":{\"method\":\"card\",\"brand\":\"visa\",\"last4\":\"4242\",\"billing_postco"
    "de\":\"SW1A 1AA\"},\"metadata\":{\"ip\":\"203.0.113.7\",\"user_agent\":\"Mozilla/5.0"
    " (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\",\"session_id"
    "\":\"sess_9f8e7d6c5b4a\",\"referrer\":\"https://news.example/deals\"},\"note\":\"L"
    "eave it with the neighbour at no. 3, ta\",\"marketing_opt_in\":true,\"loyalt"
    "y_id\":\"L-99881\"}";

/* What jq deletes to get the same result (bench/run). */
static const char jq_order[] =
    "del(.gift, .customer.id, .customer.email, .customer.name, .customer.phone, "
    ".customer.birth_date, .customer.marketing_opt_in, .shipping.instructions, .items[].tags, "
    ".items[].gift_message, .metadata, .notes)\n";
static const char jq_list[] =
    "del(.request_id, .data[].gift, .data[].customer.id, .data[].customer.email, "
    ".data[].customer.name, .data[].customer.phone, .data[].customer.birth_date, "
    ".data[].customer.marketing_opt_in, .data[].shipping.instructions, .data[].items[].tags, "
    ".data[].items[].gift_message, .data[].metadata, .data[].notes)\n";

static struct flt_rules *compile(const struct rule *rs)
{
    char err[256];
    struct flt_rules *r = flt_rules_new();
    if (!r) {
        fputs("bench_filter: out of memory\n", stderr);
        exit(1);
    }
    for (const struct rule *x = rs; x->path; x++) {
        if (flt_rules_add(r, x->path, strlen(x->path), &x->act, err, sizeof err) != 0) {
            fprintf(stderr, "bench_filter: rule %s: %s\n", x->path, err);
            exit(1);
        }
    }
    if (flt_rules_compile(r, err, sizeof err) != 0) {
        fprintf(stderr, "bench_filter: compile: %s\n", err);
        exit(1);
    }
    return r;
}

/* ------------------------------------------------------------- corpora */

struct corpus {
    const char *name;
    const char *jq; /* NULL: no jq equivalent */
    const struct rule *rules;
    struct buf data; /* documents, each followed by '\n' */
    size_t *off;     /* document i is data.p[off[i] .. off[i+1]-1) (without '\n') */
    size_t ndocs;
    bool report; /* filter with a report, reset per document (the gateway's audit) */
};

static void corpus_add_end(struct corpus *c, size_t start)
{
    c->off = realloc(c->off, (c->ndocs + 2) * sizeof *c->off);
    if (!c->off) exit(1);
    c->off[c->ndocs] = start;
    c->ndocs++;
    put(&c->data, "\n", 1);
    c->off[c->ndocs] = c->data.len;
}

static void build(struct corpus *c)
{
    uint32_t id = 1000000;
    rng = 0x9e3779b97f4a7c15ull; /* every corpus is reproducible on its own */
    if (strcmp(c->name, "api-1k") == 0) {
        for (int i = 0; i < 16384; i++) {
            size_t st = c->data.len;
            gen_order(&c->data, id++);
            corpus_add_end(c, st);
        }
    } else if (strcmp(c->name, "gw-1k") == 0) {
        for (int i = 0; i < 16384; i++) {
            size_t st = c->data.len;
            put(&c->data, gateway_body, sizeof gateway_body - 1);
            corpus_add_end(c, st);
        }
    } else if (strcmp(c->name, "doc-64k") == 0) {
        for (int i = 0; i < 256; i++) {
            size_t st = c->data.len;
            gen_list(&c->data, 64 * 1024, &id);
            corpus_add_end(c, st);
        }
    } else {
        size_t st = c->data.len;
        gen_list(&c->data, 16 * 1024 * 1024, &id);
        corpus_add_end(c, st);
    }
}

static size_t doc_len(const struct corpus *c, size_t i)
{
    return c->off[i + 1] - c->off[i] - 1;
}

/* ----------------------------------------------------------- measuring */

static int count_sink(void *ud, const char *p, size_t n)
{
    (void)p;
    *(uint64_t *)ud += n;
    return 0;
}

static int buf_sink(void *ud, const char *p, size_t n)
{
    put(ud, p, n);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    /* CPU time of this thread: the machine may be shared while we measure */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct flt_hmac_key key;
/* The removed / transformed paths of the document being filtered, for
 * corpora with a report: the gateway's per-request report. */
static struct flt_report report;

/* Filters every document once; returns seconds. */
static double pass(struct flt_json *f, const struct flt_json_config *cfg, const struct corpus *c,
                   size_t chunk, uint64_t *out)
{
    double t0 = now();
    for (size_t i = 0; i < c->ndocs; i++) {
        const char *p = c->data.p + c->off[i];
        size_t n = doc_len(c, i);
        if (c->report) flt_report_init(&report);
        flt_json_reset(f, cfg, count_sink, out, c->report ? &report : NULL);
        int rc = 0;
        if (!chunk) {
            rc = flt_json_feed(f, p, n);
        } else {
            for (size_t k = 0; k < n && rc == 0; k += chunk)
                rc = flt_json_feed(f, p + k, n - k < chunk ? n - k : chunk);
        }
        if (rc == 0) rc = flt_json_finish(f);
        if (rc != 0) {
            fprintf(stderr, "bench_filter: %s document %zu refused: %s at %llu\n", c->name, i,
                    flt_strerror(rc), (unsigned long long)flt_json_error_offset(f));
            exit(1);
        }
    }
    return now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_mbps(struct flt_json *f, const struct flt_json_config *cfg,
                          const struct corpus *c, size_t chunk, int runs, uint64_t *out)
{
    double t[64];
    for (int r = 0; r < runs; r++) {
        *out = 0;
        t[r] = pass(f, cfg, c, chunk, out);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    return (double)(c->data.len - c->ndocs) / t[runs / 2] / 1e6;
}

static void write_file(const char *dir, const char *name, const char *ext, const char *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        fprintf(stderr, "bench_filter: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void usage(void)
{
    fputs("usage: bench_filter [--runs N] [--only NAME] [--write DIR] [--tsv]\n"
          "corpora: api-1k doc-64k doc-16m doc-16m-xf gw-1k\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    int runs = 7;
    const char *only = NULL, *wdir = NULL;
    bool tsv = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 63) usage();
            runs = (int)v;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc) {
            wdir = argv[++i];
        } else if (strcmp(argv[i], "--tsv") == 0) {
            tsv = true;
        } else {
            usage();
        }
    }
    if (wdir && mkdir(wdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "bench_filter: mkdir %s: %s\n", wdir, strerror(errno));
        return 1;
    }
    static const uint8_t k[] = "bench-hmac-key-0123456789abcdef";
    flt_hmac_key_init(&key, k, sizeof k - 1);

    struct corpus cs[] = {
        {"api-1k", jq_order, rules_order, {0}, NULL, 0, false},
        {"doc-64k", jq_list, rules_list, {0}, NULL, 0, false},
        {"doc-16m", jq_list, rules_list, {0}, NULL, 0, false},
        {"doc-16m-xf", NULL, rules_list_xf, {0}, NULL, 0, false},
        /* no jq equivalent: jq prints 95.0 as 95 */
        {"gw-1k", NULL, rules_gateway, {0}, NULL, 0, true},
    };
    struct flt_json *f = flt_json_new(64);
    if (!f) {
        fputs("bench_filter: out of memory\n", stderr);
        return 1;
    }
    if (!tsv)
        printf("%-11s %10s %6s %7s %12s %9s %12s %9s\n", "corpus", "bytes", "docs", "kept",
               "MB/s whole", "GB/s", "MB/s 16KiB", "GB/s");
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        struct corpus *c = &cs[i];
        if (only && strcmp(only, c->name) != 0) continue;
        build(c);
        struct flt_rules *r = compile(c->rules);
        struct flt_json_config cfg = {.rules = r,
                                      .key = &key,
                                      .max_depth = 64,
                                      .reject_unlisted = false,
                                      .report_prefix = NULL};
        uint64_t out = 0;
        pass(f, &cfg, c, 0, &out); /* warm-up */
        double whole = median_mbps(f, &cfg, c, 0, runs, &out);
        double chunked = median_mbps(f, &cfg, c, 16384, runs, &out);
        size_t in = c->data.len - c->ndocs;
        if (tsv)
            printf("%s\t%zu\t%zu\t%llu\t%.1f\t%.1f\n", c->name, in, c->ndocs,
                   (unsigned long long)out, whole, chunked);
        else
            printf("%-11s %10zu %6zu %6.1f%% %12.1f %9.3f %12.1f %9.3f\n", c->name, in, c->ndocs,
                   100.0 * (double)out / (double)in, whole, whole / 1000, chunked, chunked / 1000);
        fflush(stdout);
        if (wdir && c->jq) {
            struct buf o = {0};
            for (size_t d = 0; d < c->ndocs; d++) {
                flt_json_reset(f, &cfg, buf_sink, &o, NULL);
                if (flt_json_feed(f, c->data.p + c->off[d], doc_len(c, d)) != 0 ||
                    flt_json_finish(f) != 0)
                    exit(1);
                put(&o, "\n", 1);
            }
            write_file(wdir, c->name, "json", c->data.p, c->data.len);
            write_file(wdir, c->name, "out", o.p, o.len);
            write_file(wdir, c->name, "jq", c->jq, strlen(c->jq));
            free(o.p);
        }
        flt_rules_unref(r);
        free(c->data.p);
        free(c->off);
        c->data = (struct buf){0};
        c->off = NULL;
        c->ndocs = 0;
    }
    flt_json_del(f);
    return 0;
}
