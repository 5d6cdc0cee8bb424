/*
 * End-to-end: the admin listener of SPEC 8 (HTTP/1.1 and h2c) — health,
 * readiness (also while draining), metrics, loaded contracts; /metrics
 * checked by a strict parser of the Prometheus text format and its counters
 * compared with the requests sent.
 */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;
static int admin_port;

/* ------------------------------------------------------------------------
 * A strict checker of the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), stricter
 * than Prometheus itself where the format leaves room (one space between
 * tokens, no empty lines, no comments other than HELP and TYPE):
 *   - every line is `# HELP name text`, `# TYPE name type` or a sample
 *     `name{label="value",...} value [timestamp]`, and ends with \n;
 *   - names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 *     (not __reserved), label values are UTF-8 escaping only \\ \" \n,
 *     HELP text escapes only \\ and \n;
 *   - values parse as Go floats (decimal, Inf, +Inf, -Inf, NaN), timestamps
 *     as int64;
 *   - HELP and TYPE at most once per family, TYPE before its samples, the
 *     samples of a family contiguous, no duplicate series, no duplicate
 *     label in a sample;
 *   - counters >= 0; histograms: only _bucket (with le), _sum and _count,
 *     per label set le ascending, cumulative counts non-decreasing, a
 *     le="+Inf" bucket equal to _count, and a _sum.
 * ---------------------------------------------------------------------- */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>

#define PM_MAX_LABELS 16

struct pm_sample {
    char *name;
    char *family;
    size_t nl;
    char *lk[PM_MAX_LABELS], *lv[PM_MAX_LABELS]; /* sorted by key */
    double v;
    char *key; /* name{sorted labels}: identity of the series */
};

struct pm_family {
    char *name;
    char type[16]; /* "" = no TYPE line (untyped) */
    bool help, typed, seen, closed;
};

struct prom {
    struct pm_sample *s;
    size_t n, cap;
    struct pm_family *f;
    size_t nf, capf;
};

static void pm_free(struct prom *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->s[i].name);
        free(p->s[i].family);
        free(p->s[i].key);
        for (size_t k = 0; k < p->s[i].nl; k++) {
            free(p->s[i].lk[k]);
            free(p->s[i].lv[k]);
        }
    }
    for (size_t i = 0; i < p->nf; i++)
        free(p->f[i].name);
    free(p->s);
    free(p->f);
    memset(p, 0, sizeof(*p));
}

static bool pm_fail(char *err, size_t errlen, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool pm_fail(char *err, size_t errlen, int line, const char *fmt, ...)
{
    int k = snprintf(err, errlen, "line %d: ", line);
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < errlen) vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return false;
}

/* Length of a metric name (|label|: label name rules) at |s|, 0 if none. */
static size_t pm_name(const char *s, bool label)
{
    size_t i = 0;
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || (!label && s[0] == ':'))) return 0;
    for (i = 1; isalnum((unsigned char)s[i]) || s[i] == '_' || (!label && s[i] == ':'); i++)
        ;
    return i;
}

/* Go's strconv.ParseFloat on the whole of [s, s+n): decimal forms and the
 * special values (hex floats are not produced by Prometheus clients and
 * are refused). */
static bool pm_float(const char *s, size_t n, double *out)
{
    char b[64];
    if (n == 0 || n >= sizeof(b)) return false;
    memcpy(b, s, n);
    b[n] = '\0';
    const char *t = b;
    bool neg = false;
    if (*t == '+' || *t == '-') neg = *t++ == '-';
    if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (strcasecmp(b, "nan") == 0) {
        *out = NAN;
        return true;
    }
    /* digits [. digits] | . digits, then [eE [+-] digits] */
    size_t d = 0, i = 0;
    while (isdigit((unsigned char)t[i]))
        i++, d++;
    if (t[i] == '.') {
        i++;
        while (isdigit((unsigned char)t[i]))
            i++, d++;
    }
    if (d == 0) return false;
    if (t[i] == 'e' || t[i] == 'E') {
        i++;
        if (t[i] == '+' || t[i] == '-') i++;
        if (!isdigit((unsigned char)t[i])) return false;
        while (isdigit((unsigned char)t[i]))
            i++;
    }
    if (t[i] != '\0') return false;
    errno = 0;
    *out = strtod(b, NULL);
    return true;
}

static bool pm_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 9;
        if (k == 9 || (k == 1 && c < 0xc2) || i + k >= n + (k ? 0 : 1)) return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

static struct pm_family *pm_fam(struct prom *p, const char *name, size_t n, bool create)
{
    for (size_t i = 0; i < p->nf; i++)
        if (strlen(p->f[i].name) == n && memcmp(p->f[i].name, name, n) == 0) return &p->f[i];
    if (!create) return NULL;
    if (p->nf == p->capf) {
        p->capf = p->capf ? p->capf * 2 : 16;
        p->f = realloc(p->f, p->capf * sizeof(*p->f));
    }
    struct pm_family *f = &p->f[p->nf++];
    memset(f, 0, sizeof(*f));
    f->name = strndup(name, n);
    return f;
}

static bool pm_ends(const char *s, size_t n, const char *suf, size_t *base)
{
    size_t k = strlen(suf);
    if (n <= k || memcmp(s + n - k, suf, k) != 0) return false;
    *base = n - k;
    return true;
}

/* The family a sample named [name, name+n) belongs to. */
static struct pm_family *pm_family_of(struct prom *p, const char *name, size_t n)
{
    size_t b;
    struct pm_family *f;
    if (pm_ends(name, n, "_bucket", &b) && (f = pm_fam(p, name, b, false)) && f->typed &&
        strcmp(f->type, "histogram") == 0)
        return f;
    if ((pm_ends(name, n, "_sum", &b) || pm_ends(name, n, "_count", &b)) &&
        (f = pm_fam(p, name, b, false)) && f->typed &&
        (strcmp(f->type, "histogram") == 0 || strcmp(f->type, "summary") == 0))
        return f;
    return pm_fam(p, name, n, true);
}

/* Frees the labels collected so far (error paths). */
static void pm_labels_free(struct pm_sample *s)
{
    for (size_t k = 0; k < s->nl; k++)
        free(s->lk[k]), free(s->lv[k]);
    s->nl = 0;
}

static bool pm_sample_line(struct prom *p, const char *l, size_t len, int ln, char *err,
                           size_t errlen)
{
    size_t nn = pm_name(l, false);
    if (!nn) return pm_fail(err, errlen, ln, "bad metric name: %.*s", (int)len, l);
    struct pm_sample s;
    memset(&s, 0, sizeof(s));
    size_t i = nn;
    char lbuf[4096];
    if (i < len && l[i] == '{') {
        i++;
        while (i < len && l[i] != '}') {
            size_t kn = pm_name(l + i, true);
            if (!kn) goto bad_label;
            if (kn >= 2 && l[i] == '_' && l[i + 1] == '_') goto bad_label;
            char *key = strndup(l + i, kn);
            i += kn;
            if (i + 1 >= len || l[i] != '=' || l[i + 1] != '"') {
                free(key);
                goto bad_label;
            }
            i += 2;
            size_t o = 0;
            while (i < len && l[i] != '"') {
                char c = l[i];
                if (c == '\\') {
                    if (i + 1 >= len) {
                        free(key);
                        goto bad_label;
                    }
                    char e = l[i + 1];
                    c = e == '\\' ? '\\' : e == '"' ? '"' : e == 'n' ? '\n' : 0;
                    if (!c) {
                        free(key);
                        return pm_labels_free(&s),
                               pm_fail(err, errlen, ln, "bad escape \\%c in a label value", e);
                    }
                    i++;
                }
                if (o + 1 < sizeof(lbuf)) lbuf[o++] = c;
                i++;
            }
            if (i >= len) {
                free(key);
                goto bad_label;
            }
            i++; /* closing quote */
            if (!pm_utf8((const unsigned char *)lbuf, o)) {
                free(key);
                return pm_labels_free(&s), pm_fail(err, errlen, ln, "label value is not UTF-8");
            }
            for (size_t k = 0; k < s.nl; k++)
                if (strcmp(s.lk[k], key) == 0) {
                    pm_fail(err, errlen, ln, "label %s twice", key);
                    free(key);
                    pm_labels_free(&s);
                    return false;
                }
            if (s.nl == PM_MAX_LABELS) {
                free(key);
                return pm_labels_free(&s), pm_fail(err, errlen, ln, "too many labels");
            }
            /* insert sorted */
            size_t at = s.nl;
            while (at > 0 && strcmp(s.lk[at - 1], key) > 0) {
                s.lk[at] = s.lk[at - 1];
                s.lv[at] = s.lv[at - 1];
                at--;
            }
            s.lk[at] = key;
            s.lv[at] = strndup(lbuf, o);
            s.nl++;
            if (i < len && l[i] == ',') {
                i++;
                if (i < len && l[i] == '}') goto bad_label; /* no trailing comma */
            } else if (i < len && l[i] != '}') {
                goto bad_label;
            }
        }
        if (i >= len) goto bad_label;
        i++; /* } */
    }
    if (i >= len || l[i] != ' ') {
        for (size_t k = 0; k < s.nl; k++)
            free(s.lk[k]), free(s.lv[k]);
        return pm_fail(err, errlen, ln, "no single space before the value: %.*s", (int)len, l);
    }
    i++;
    size_t vs = i;
    while (i < len && l[i] != ' ')
        i++;
    bool ok = pm_float(l + vs, i - vs, &s.v);
    if (ok && i < len) {
        /* timestamp: int64 milliseconds */
        i++;
        size_t ts = i;
        if (i < len && l[i] == '-') i++;
        if (i == len) ok = false;
        while (i < len && isdigit((unsigned char)l[i]))
            i++;
        if (i != len || i - ts > 20) ok = false;
    }
    if (!ok) {
        for (size_t k = 0; k < s.nl; k++)
            free(s.lk[k]), free(s.lv[k]);
        return pm_fail(err, errlen, ln, "bad value or timestamp: %.*s", (int)len, l);
    }
    s.name = strndup(l, nn);
    struct pm_family *f = pm_family_of(p, l, nn);
    s.family = strdup(f->name);
    /* contiguity: the previous sample's family is closed when another starts */
    if (f->closed) {
        pm_fail(err, errlen, ln, "samples of %s are not contiguous", f->name);
        goto drop;
    }
    for (size_t k = 0; k < p->nf; k++)
        if (&p->f[k] != f && p->f[k].seen) p->f[k].closed = true;
    f->seen = true;
    if (f->typed && strcmp(f->type, "histogram") == 0) {
        size_t b;
        bool le = false;
        for (size_t k = 0; k < s.nl; k++)
            le |= strcmp(s.lk[k], "le") == 0;
        if (pm_ends(s.name, nn, "_bucket", &b) && b == strlen(f->name)) {
            if (!le) {
                pm_fail(err, errlen, ln, "histogram bucket without le");
                goto drop;
            }
        } else if (le || strcmp(s.name, f->name) == 0) {
            pm_fail(err, errlen, ln, "unexpected histogram sample %s", s.name);
            goto drop;
        }
    }
    if (f->typed && strcmp(f->type, "counter") == 0 && !(s.v >= 0)) {
        pm_fail(err, errlen, ln, "counter %s is negative or NaN", s.name);
        goto drop;
    }
    /* identity */
    {
        size_t cap = strlen(s.name) + 3, o;
        for (size_t k = 0; k < s.nl; k++)
            cap += strlen(s.lk[k]) + 2 * strlen(s.lv[k]) + 4;
        s.key = malloc(cap);
        o = (size_t)snprintf(s.key, cap, "%s{", s.name);
        for (size_t k = 0; k < s.nl; k++) {
            o += (size_t)snprintf(s.key + o, cap - o, "%s%s=\"", k ? "," : "", s.lk[k]);
            for (const char *c = s.lv[k]; *c; c++) {
                if (*c == '"' || *c == '\\') s.key[o++] = '\\';
                s.key[o++] = *c == '\n' ? 'n' : *c;
            }
            s.key[o++] = '"';
        }
        s.key[o++] = '}';
        s.key[o] = '\0';
    }
    for (size_t k = 0; k < p->n; k++)
        if (strcmp(p->s[k].key, s.key) == 0) {
            pm_fail(err, errlen, ln, "duplicate series %s", s.key);
            goto drop;
        }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->s = realloc(p->s, p->cap * sizeof(*p->s));
    }
    p->s[p->n++] = s;
    return true;
drop:
    free(s.name);
    free(s.family);
    free(s.key);
    for (size_t k = 0; k < s.nl; k++)
        free(s.lk[k]), free(s.lv[k]);
    return false;
bad_label:
    for (size_t k = 0; k < s.nl; k++)
        free(s.lk[k]), free(s.lv[k]);
    return pm_fail(err, errlen, ln, "bad label set: %.*s", (int)len, l);
}

static const char *pm_label(const struct pm_sample *s, const char *k)
{
    for (size_t i = 0; i < s->nl; i++)
        if (strcmp(s->lk[i], k) == 0) return s->lv[i];
    return NULL;
}

/* Same labels, |except| ignored. */
static bool pm_same_labels(const struct pm_sample *a, const struct pm_sample *b, const char *except)
{
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < a->nl; i++) {
        if (except && strcmp(a->lk[i], except) == 0) continue;
        na++;
        const char *v = pm_label(b, a->lk[i]);
        if (!v || strcmp(v, a->lv[i]) != 0) return false;
    }
    for (size_t i = 0; i < b->nl; i++)
        if (!except || strcmp(b->lk[i], except) != 0) nb++;
    return na == nb;
}

static bool pm_check_histograms(struct prom *p, char *err, size_t errlen)
{
    for (size_t fi = 0; fi < p->nf; fi++) {
        const struct pm_family *f = &p->f[fi];
        if (strcmp(f->type, "histogram") != 0) continue;
        char bn[256], sn[256], cn[256];
        snprintf(bn, sizeof(bn), "%s_bucket", f->name);
        snprintf(sn, sizeof(sn), "%s_sum", f->name);
        snprintf(cn, sizeof(cn), "%s_count", f->name);
        /* every label set seen on any sample of the family */
        for (size_t i = 0; i < p->n; i++) {
            const struct pm_sample *g = &p->s[i];
            if (strcmp(g->family, f->name) != 0) continue;
            double prev_le = -INFINITY, prev_n = -INFINITY, inf_n = NAN;
            bool has_inf = false, has_sum = false, has_count = false;
            double count = NAN;
            size_t nb = 0;
            for (size_t j = 0; j < p->n; j++) {
                const struct pm_sample *s = &p->s[j];
                if (strcmp(s->family, f->name) != 0 || !pm_same_labels(g, s, "le")) continue;
                if (strcmp(s->name, bn) == 0) {
                    double le;
                    if (!pm_float(pm_label(s, "le"), strlen(pm_label(s, "le")), &le) || isnan(le))
                        return pm_fail(err, errlen, 0, "%s: bad le", s->key);
                    if (!(le > prev_le))
                        return pm_fail(err, errlen, 0, "%s: le not ascending", s->key);
                    if (!(s->v >= prev_n) || !(s->v >= 0))
                        return pm_fail(err, errlen, 0, "%s: buckets not cumulative", s->key);
                    prev_le = le;
                    prev_n = s->v;
                    nb++;
                    if (isinf(le) && le > 0) {
                        has_inf = true;
                        inf_n = s->v;
                    }
                } else if (strcmp(s->name, sn) == 0) {
                    has_sum = true;
                } else if (strcmp(s->name, cn) == 0) {
                    has_count = true;
                    count = s->v;
                }
            }
            if (!has_inf) return pm_fail(err, errlen, 0, "%s: no le=\"+Inf\" bucket", g->key);
            if (!has_count || !has_sum)
                return pm_fail(err, errlen, 0, "%s: _sum or _count missing", g->key);
            if (inf_n != count)
                return pm_fail(err, errlen, 0, "%s: +Inf bucket %g != _count %g", g->key, inf_n,
                               count);
            (void)nb;
        }
    }
    return true;
}

/* Parses and checks |body|; false with a reason in |err|. */
static bool prom_parse(const char *body, size_t len, struct prom *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (len == 0 || body[len - 1] != '\n')
        return pm_fail(err, errlen, 0, "the body does not end with a newline");
    if (memchr(body, '\0', len)) return pm_fail(err, errlen, 0, "NUL byte in the body");
    int ln = 0;
    for (size_t off = 0; off < len;) {
        const char *l = body + off;
        size_t n = (size_t)((const char *)memchr(l, '\n', len - off) - l);
        off += n + 1;
        ln++;
        if (n == 0) return pm_fail(err, errlen, ln, "empty line");
        if (memchr(l, '\r', n)) return pm_fail(err, errlen, ln, "CR in a line");
        if (l[0] == '#') {
            bool help = n > 7 && memcmp(l, "# HELP ", 7) == 0;
            bool type = n > 7 && memcmp(l, "# TYPE ", 7) == 0;
            if (!help && !type)
                return pm_fail(err, errlen, ln, "not HELP or TYPE: %.*s", (int)n, l);
            size_t nn = pm_name(l + 7, false);
            if (!nn) return pm_fail(err, errlen, ln, "bad metric name");
            const char *rest = l + 7 + nn;
            size_t rn = n - 7 - nn;
            struct pm_family *f = pm_fam(p, l + 7, nn, true);
            if (help) {
                if (f->help) return pm_fail(err, errlen, ln, "second HELP for %s", f->name);
                f->help = true;
                if (rn > 0 && rest[0] != ' ') return pm_fail(err, errlen, ln, "bad HELP line");
                for (size_t i = 1; i < rn; i++)
                    if (rest[i] == '\\' &&
                        (i + 1 == rn || (rest[i + 1] != '\\' && rest[i + 1] != 'n')))
                        return pm_fail(err, errlen, ln, "bad escape in HELP");
                    else if (rest[i] == '\\')
                        i++;
                if (!pm_utf8((const unsigned char *)rest, rn))
                    return pm_fail(err, errlen, ln, "HELP is not UTF-8");
            } else {
                if (f->typed) return pm_fail(err, errlen, ln, "second TYPE for %s", f->name);
                if (f->seen)
                    return pm_fail(err, errlen, ln, "TYPE of %s after its samples", f->name);
                static const char *const types[] = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
                bool ok = false;
                for (size_t t = 0; t < 5; t++)
                    if (rn == strlen(types[t]) + 1 && rest[0] == ' ' &&
                        memcmp(rest + 1, types[t], rn - 1) == 0) {
                        snprintf(f->type, sizeof(f->type), "%s", types[t]);
                        ok = true;
                    }
                if (!ok) return pm_fail(err, errlen, ln, "bad TYPE: %.*s", (int)n, l);
                f->typed = true;
            }
            continue;
        }
        if (!pm_sample_line(p, l, n, ln, err, errlen)) return false;
    }
    return pm_check_histograms(p, err, errlen);
}

/* Value of the series |name| with exactly the labels given as NULL-ended
 * key, value pairs; NAN when absent. */
static double prom_get(const struct prom *p, const char *name, ...)
{
    const char *k[PM_MAX_LABELS], *v[PM_MAX_LABELS];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *key; n < PM_MAX_LABELS && (key = va_arg(ap, const char *));) {
        k[n] = key;
        v[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    for (size_t i = 0; i < p->n; i++) {
        const struct pm_sample *s = &p->s[i];
        if (strcmp(s->name, name) != 0 || s->nl != n) continue;
        bool eq = true;
        for (size_t j = 0; j < n && eq; j++) {
            const char *x = pm_label(s, k[j]);
            eq = x && strcmp(x, v[j]) == 0;
        }
        if (eq) return s->v;
    }
    return NAN;
}

/* Number of series named |name|. */
static size_t prom_count(const struct prom *p, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < p->n; i++)
        c += strcmp(p->s[i].name, name) == 0;
    return c;
}

static void scrape(int port, bool h2c, struct prom *p);

/* Sum of the series named |name|. */
static double prom_sum(const struct prom *p, const char *name)
{
    double c = 0;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->s[i].name, name) == 0) c += p->s[i].v;
    return c;
}

static void setup(void)
{
    e2e_init(&E);
    const char *extra[] = {"--delay-ms", "300", NULL};
    e2e_start_partner(&E, "h2c", extra);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    admin_port = e2e_free_port();
    char yaml[128];
    snprintf(yaml, sizeof(yaml), "admin:\n  address: 127.0.0.1:%d\n", admin_port);
    cr_assert(e2e_start_gateway(&E, yaml));
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(admin, .init = setup, .fini = teardown);

/* GET |path| on the admin port; |h2c| uses prior knowledge. Returns the
 * status; the body in |*body|. */
static int admin_get(const char *path, bool h2c, char **body)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", admin_port, path);
    char *argv[] = {"curl",
                    "-sS",
                    "-w",
                    "\n%{http_code} %{http_version}",
                    h2c ? "--http2-prior-knowledge" : "--http1.1",
                    url,
                    NULL};
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    char *nl = strrchr(out, '\n');
    cr_assert(nl, "curl said %s", out);
    int status = (int)strtol(nl + 1, NULL, 10);
    const char *ver = strchr(nl + 1, ' ');
    cr_expect(ver && strcmp(ver + 1, h2c ? "2" : "1.1") == 0, "HTTP version %s", ver ? ver : "");
    *nl = '\0';
    *body = out;
    return status;
}

Test(admin, health_and_readiness_over_http1_and_h2c)
{
    char *b;
    cr_expect_eq(admin_get("/healthz", false, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/healthz", true, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/readyz", false, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/readyz", true, &b), 200);
    free(b);
    cr_expect_eq(admin_get("/nope", false, &b), 404);
    free(b);
}

Test(admin, contracts_lists_what_is_loaded)
{
    char *b;
    cr_assert_eq(admin_get("/contracts", true, &b), 200);
    json_error_t err;
    json_t *j = json_loads(b, 0, &err);
    cr_assert(j, "not JSON: %s", b);
    json_t *c = json_array_get(json_object_get(j, "contracts"), 0);
    cr_expect_str_eq(jstr(c, "provider"), "shop");
    cr_expect(strncmp(jstr(c, "sha256"), "sha256:", 7) == 0);
    cr_expect_eq(json_array_size(json_object_get(c, "routes")), 4);
    json_decref(j);
    free(b);
}

Test(admin, metrics_count_requests_and_fields)
{
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, "cookie: a=1", NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/orders", h,
             "{\"order_id\":1,\"customer_id\":\"c\",\"email\":\"e@example.com\"}", NULL, &r);
    cr_assert_eq(r.status, 200);
    e2e_resp_free(&r);
    const char *h2[] = {"privgate-purpose: marketing", H_CALLER, NULL};
    e2e_curl(&E, "GET", "/shop/v1/ping", h2, NULL, NULL, &r);
    cr_assert_eq(r.status, 403);
    e2e_resp_free(&r);
    char *b;
    cr_assert_eq(admin_get("/metrics", false, &b), 200);
    cr_expect(
        strstr(b, "privgate_requests_total{provider=\"shop\",outcome=\"forwarded\",code=\"\"} 1"),
        "%s", b);
    cr_expect(strstr(b, "privgate_requests_total{provider=\"shop\",outcome=\"refused\","
                        "code=\"purpose_not_allowed\"} 1"),
              "%s", b);
    /* body.email and header.cookie */
    cr_expect(strstr(b, "privgate_fields_removed_total{provider=\"shop\"} 2"), "%s", b);
    cr_expect(strstr(b, "privgate_fields_transformed_total{provider=\"shop\"} 1"), "%s", b);
    cr_expect(strstr(b, "privgate_request_duration_seconds_count{provider=\"shop\"} 2"), "%s", b);
    cr_expect(strstr(b, "privgate_active_streams 0"), "%s", b);
    cr_expect(strstr(b, "e@example.com") == NULL);
    free(b);
    /* the same text is valid exposition format, over HTTP/1.1 and h2c */
    struct prom p;
    scrape(admin_port, false, &p);
    cr_expect_eq(prom_sum(&p, "privgate_requests_total"), 2);
    pm_free(&p);
    scrape(admin_port, true, &p);
    cr_expect_eq(prom_sum(&p, "privgate_requests_total"), 2);
    pm_free(&p);
}

Test(admin, reloads_are_counted)
{
    kill(E.gw_pid, SIGHUP);
    char *b = NULL;
    /* poll the counter until the reload went through */
    for (int i = 0; i < 2000; i++) {
        free(b);
        admin_get("/metrics", false, &b);
        if (strstr(b, "privgate_contract_reloads_total{result=\"ok\"} 1")) break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect(strstr(b, "privgate_contract_reloads_total{result=\"ok\"} 1"), "%s", b);
    e2e_contract(&E, "broken", "contract: 1\n");
    kill(E.gw_pid, SIGHUP);
    for (int i = 0; i < 2000; i++) {
        free(b);
        admin_get("/metrics", false, &b);
        if (strstr(b, "privgate_contract_reloads_total{result=\"failed\"} 1")) break;
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect(strstr(b, "privgate_contract_reloads_total{result=\"failed\"} 1"), "%s", b);
    free(b);
}

Test(admin, readyz_is_503_while_draining)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/shop/v1/ping", E.gw_port);
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
                    url,
                    NULL};
    char outp[512];
    snprintf(outp, sizeof(outp), "%s", e2e_path(&E, "curl.out"));
    pid_t curl = e2e_spawn(argv, outp, NULL);
    /* wait until the provider has the request (it answers 300 ms later) */
    for (int i = 0; i < 2000 && e2e_count_lines(E.record) < 1; i++) {
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(e2e_count_lines(E.record), 1);
    kill(E.gw_pid, SIGTERM);
    char *b = NULL;
    int st = 0;
    for (int i = 0; i < 2000; i++) {
        free(b);
        st = admin_get("/readyz", false, &b);
        if (st == 503) break;
        struct timespec ts = {0, 2000000L};
        nanosleep(&ts, NULL);
    }
    cr_expect_eq(st, 503, "readyz while draining: %d %s", st, b);
    free(b);
    int cst;
    waitpid(curl, &cst, 0);
    char *code = e2e_read(outp, NULL);
    cr_expect(code && strcmp(code, "200") == 0, "in-flight request: %s", code ? code : "?");
    free(code);
    cr_expect_eq(e2e_stop(E.gw_pid, SIGTERM, 10000), 0);
    E.gw_pid = 0;
}

/* GET /metrics: the body checked by prom_parse, and the content type. */
static void scrape(int port, bool h2c, struct prom *p)
{
    char url[128], bodyf[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
    snprintf(bodyf, sizeof(bodyf), "%s", e2e_path(&E, "metrics.txt"));
    char *argv[] = {"curl",
                    "-sS",
                    "-o",
                    bodyf,
                    "-w",
                    "%{http_code} %{content_type}",
                    h2c ? "--http2-prior-knowledge" : "--http1.1",
                    url,
                    NULL};
    char *out = NULL;
    cr_assert_eq(e2e_run(argv, NULL, &out, NULL), 0);
    cr_assert(strncmp(out, "200 ", 4) == 0, "scrape: %s", out);
    cr_expect(strncmp(out + 4, "text/plain; version=0.0.4", 25) == 0 &&
                  (out[29] == '\0' || out[29] == ';'),
              "content-type: %s", out + 4);
    free(out);
    size_t len;
    char *body = e2e_read(bodyf, &len);
    cr_assert(body);
    char err[512];
    bool ok = prom_parse(body, len, p, err, sizeof(err));
    cr_assert(ok, "/metrics is not valid exposition text: %s\n%s", err, body);
    /* the series of SPEC 8 are declared */
    static const char *const fam[][2] = {{"privgate_requests_total", "counter"},
                                         {"privgate_fields_removed_total", "counter"},
                                         {"privgate_fields_transformed_total", "counter"},
                                         {"privgate_request_duration_seconds", "histogram"},
                                         {"privgate_upstream_errors_total", "counter"},
                                         {"privgate_contract_reloads_total", "counter"},
                                         {"privgate_active_streams", "gauge"}};
    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        struct pm_family *f = pm_fam(p, fam[i][0], strlen(fam[i][0]), false);
        cr_expect(f && f->help && strcmp(f->type, fam[i][1]) == 0, "%s: HELP and TYPE %s",
                  fam[i][0], fam[i][1]);
    }
    /* labels as SPEC 8 names them */
    for (size_t i = 0; i < p->n; i++) {
        const struct pm_sample *s = &p->s[i];
        const char *want = NULL;
        if (strcmp(s->family, "privgate_requests_total") == 0)
            want = "code,outcome,provider";
        else if (strcmp(s->family, "privgate_fields_removed_total") == 0 ||
                 strcmp(s->family, "privgate_fields_transformed_total") == 0 ||
                 strcmp(s->name, "privgate_request_duration_seconds_sum") == 0 ||
                 strcmp(s->name, "privgate_request_duration_seconds_count") == 0)
            want = "provider";
        else if (strcmp(s->name, "privgate_request_duration_seconds_bucket") == 0)
            want = "le,provider";
        else if (strcmp(s->family, "privgate_upstream_errors_total") == 0)
            want = "kind,provider";
        else if (strcmp(s->family, "privgate_contract_reloads_total") == 0)
            want = "result";
        else if (strcmp(s->family, "privgate_active_streams") == 0)
            want = "";
        if (!want) continue;
        char got[128] = "";
        for (size_t k = 0; k < s->nl; k++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", k ? "," : "", s->lk[k]);
        cr_expect_str_eq(got, want, "labels of %s", s->key);
    }
    free(body);
}

/* The checker itself: what it must accept and what it must refuse. */
Test(promcheck, accepts_and_refuses)
{
    static const char *const good[] = {
        "# HELP a_total A thing \\\\ with \\n escapes.\n# TYPE a_total counter\n"
        "a_total{x=\"q\\\"\\\\\\n\",y=\"\"} 1\na_total 2 1712345678000\n",
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 3\nh_sum 4.5\nh_count 3\n",
        "g NaN\ng2 +Inf\ng3 -Inf\ng4 -1.5e-3\ng5 .5\ng6 1e9\nu:x_y 0\n",
        "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 2\n",
    };
    static const char *const bad[] = {
        "",                                             /* empty */
        "a 1",                                          /* no final newline */
        "a 1\n\nb 2\n",                                 /* empty line */
        "# a comment\na 1\n",                           /* not HELP or TYPE */
        "a 1\r\n",                                      /* CR */
        "1a 1\n",                                       /* name */
        "a-b 1\n",                                      /* name */
        "a{1x=\"v\"} 1\n",                              /* label name */
        "a{x:y=\"v\"} 1\n",                             /* label name */
        "a{__x=\"v\"} 1\n",                             /* reserved */
        "a{x=\"\\t\"} 1\n",                             /* escape */
        "a{x=\"v} 1\n",                                 /* quote */
        "a{x=\"v\",x=\"w\"} 1\n",                       /* label twice */
        "a{x=\"v\",} 1\n",                              /* trailing comma */
        "a{x=v} 1\n",                                   /* unquoted */
        "a{x=\"\xff\"} 1\n",                            /* UTF-8 */
        "a  1\n",                                       /* two spaces */
        "a 1.2.3\n",                                    /* value */
        "a 0x10\n",                                     /* value */
        "a Infinite\n",                                 /* value */
        "a 1 2.5\n",                                    /* timestamp */
        "a{x=\"1\"} 1\na{x=\"1\"} 2\n",                 /* duplicate series */
        "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n", /* same set, other order */
        "a 1\nb 1\na{x=\"2\"} 1\n",                     /* not contiguous */
        "a 1\n# TYPE a counter\n",                      /* TYPE after samples */
        "# TYPE a counter\n# TYPE a counter\na 1\n",    /* TYPE twice */
        "# HELP a x\n# HELP a y\na 1\n",                /* HELP twice */
        "# TYPE a countr\na 1\n",                       /* type */
        "# HELP a bad \\t\na 1\n",                      /* HELP escape */
        "# TYPE a counter\na -1\n",                     /* negative counter */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",                     /* le order */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",    /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n", /* != count */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",          /* no _sum */
        "# TYPE h histogram\nh_bucket{p=\"a\",le=\"+Inf\"} 1\nh_sum{p=\"a\"} 1\n"
        "h_count{p=\"a\"} 1\nh_bucket{p=\"b\",le=\"+Inf\"} 1\nh_sum{p=\"b\"} 1\n", /* b: no _count
                                                                                    */
        "# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",           /* bucket without le */
        "# TYPE h histogram\nh 1\n",                                      /* bare sample */
        "# TYPE h histogram\nh_bucket{le=\"x\"} 1\nh_sum 1\nh_count 1\n", /* le value */
    };
    char err[512];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct prom p;
        cr_expect(prom_parse(good[i], strlen(good[i]), &p, err, sizeof(err)), "good[%zu]: %s", i,
                  err);
        pm_free(&p);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct prom p;
        err[0] = '\0';
        cr_expect(!prom_parse(bad[i], strlen(bad[i]), &p, err, sizeof(err)),
                  "bad[%zu] accepted: %s", i, bad[i]);
        pm_free(&p);
    }
    /* the parsed values */
    struct prom p;
    cr_assert(prom_parse(good[0], strlen(good[0]), &p, err, sizeof(err)));
    cr_expect_eq(prom_get(&p, "a_total", "x", "q\"\\\n", "y", "", NULL), 1);
    cr_expect_eq(prom_get(&p, "a_total", NULL), 2);
    cr_expect(isnan(prom_get(&p, "a_total", "x", "q", NULL)));
    pm_free(&p);
}

/* ------------------------------------- counters against what was sent */

static int mport;

static const char DOWN_CONTRACT[] = "contract: 1\n"
                                    "provider: down\n"
                                    "name: Down\n"
                                    "purposes: [orders]\n"
                                    "upstream:\n"
                                    "  url: http://127.0.0.1:%d\n"
                                    "  insecure: true\n"
                                    "routes:\n"
                                    "  - method: GET\n"
                                    "    path: /v1/ping\n";

static void msetup(void)
{
    e2e_init(&E);
    e2e_start_partner(&E, "h2c", NULL);
    e2e_contract(&E, "shop", SHOP_CONTRACT);
    char buf[512];
    snprintf(buf, sizeof(buf), DOWN_CONTRACT, e2e_free_port()); /* nobody listens there */
    e2e_contract(&E, "down", buf);
    mport = admin_port = e2e_free_port();
    char yaml[128];
    snprintf(yaml, sizeof(yaml), "admin:\n  address: 127.0.0.1:%d\n", admin_port);
    if (!e2e_start_gateway(&E, yaml)) {
        char *err = e2e_read(E.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

TestSuite(metrics, .init = msetup, .fini = teardown);

/* One request with curl; returns the status. |h1|: HTTP/1.1 instead of h2c. */
static int send1(bool h1, const char *method, const char *path, const char *purpose,
                 const char *body)
{
    char url[256], ph[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", E.gw_port, path);
    snprintf(ph, sizeof(ph), "privgate-purpose: %s", purpose);
    char *argv[32];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = "-o";
    argv[n++] = "/dev/null";
    argv[n++] = "-w";
    argv[n++] = "%{http_code} %{http_version}";
    argv[n++] = h1 ? "--http1.1" : "--http2-prior-knowledge";
    argv[n++] = "-X";
    argv[n++] = (char *)method;
    argv[n++] = "-H";
    argv[n++] = ph;
    argv[n++] = "-H";
    argv[n++] = H_CALLER;
    argv[n++] = "-H";
    argv[n++] = "cookie: a=1";
    if (body) {
        argv[n++] = "-H";
        argv[n++] = H_JSON;
        argv[n++] = "--data-binary";
        argv[n++] = (char *)body;
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int st = 0;
    char ver[8] = "";
    sscanf(out, "%d %7s", &st, ver);
    cr_expect_str_eq(ver, h1 ? "1.1" : "2", "HTTP version of %s", path);
    free(out);
    return st;
}

/* Scrapes until the requests counted reach |total| (a request is counted
 * when its stream closes, which can follow the response by a moment). */
static void scrape_settled(double total, struct prom *p)
{
    for (int i = 0; i < 500; i++) {
        scrape(mport, i % 2 == 1, p);
        if (prom_sum(p, "privgate_requests_total") >= total &&
            prom_get(p, "privgate_active_streams", NULL) == 0)
            return;
        pm_free(p);
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    scrape(mport, false, p);
}

static const char ORDER[] = "{\"order_id\":1,\"customer_id\":\"c\",\"email\":\"e@example.com\"}";

Test(metrics, counters_equal_the_requests_sent)
{
    /* forwarded: 3 over h2c, 2 over HTTP/1.1 (each: body.email and
     * header.cookie removed, customer_id hashed) */
    for (int i = 0; i < 5; i++)
        cr_expect_eq(send1(i >= 3, "POST", "/shop/v1/orders", "orders", ORDER), 200);
    /* refused, purpose_not_allowed: 2 h2c, 1 HTTP/1.1 */
    for (int i = 0; i < 3; i++)
        cr_expect_eq(send1(i >= 2, "POST", "/shop/v1/orders", "marketing", ORDER), 403);
    /* refused, unknown_provider (provider=""): 1 h2c, 1 HTTP/1.1 */
    cr_expect_eq(send1(false, "GET", "/nobody/v1/x", "orders", NULL), 404);
    cr_expect_eq(send1(true, "GET", "/nobody/v1/x", "orders", NULL), 404);
    /* failed, upstream_unavailable: 1 h2c, 1 HTTP/1.1 */
    cr_expect_eq(send1(false, "GET", "/down/v1/ping", "orders", NULL), 502);
    cr_expect_eq(send1(true, "GET", "/down/v1/ping", "orders", NULL), 502);

    struct prom p;
    scrape_settled(12, &p);
    const char *R = "privgate_requests_total";
    cr_expect_eq(prom_get(&p, R, "provider", "shop", "outcome", "forwarded", "code", "", NULL), 5);
    cr_expect_eq(prom_get(&p, R, "provider", "shop", "outcome", "refused", "code",
                          "purpose_not_allowed", NULL),
                 3);
    cr_expect_eq(
        prom_get(&p, R, "provider", "", "outcome", "refused", "code", "unknown_provider", NULL), 2);
    cr_expect_eq(prom_get(&p, R, "provider", "down", "outcome", "failed", "code",
                          "upstream_unavailable", NULL),
                 2);
    cr_expect_eq(prom_count(&p, R), 4, "no other request series");
    cr_expect_eq(prom_sum(&p, R), 12);
    cr_expect_eq(prom_get(&p, "privgate_fields_removed_total", "provider", "shop", NULL), 10);
    cr_expect_eq(prom_get(&p, "privgate_fields_transformed_total", "provider", "shop", NULL), 5);
    /* the upstream failures' cookie header was removed before sending */
    cr_expect_eq(prom_get(&p, "privgate_fields_removed_total", "provider", "down", NULL), 2);
    cr_expect_eq(prom_get(&p, "privgate_fields_removed_total", "provider", "", NULL), 0);
    cr_expect_eq(prom_sum(&p, "privgate_fields_removed_total"), 12);
    cr_expect_eq(prom_sum(&p, "privgate_fields_transformed_total"), 5);
    const char *C = "privgate_request_duration_seconds_count";
    cr_expect_eq(prom_get(&p, C, "provider", "shop", NULL), 8);
    cr_expect_eq(prom_get(&p, C, "provider", "", NULL), 2);
    cr_expect_eq(prom_get(&p, C, "provider", "down", NULL), 2);
    cr_expect_eq(prom_get(&p, "privgate_request_duration_seconds_bucket", "provider", "shop", "le",
                          "+Inf", NULL),
                 8);
    cr_expect(prom_get(&p, "privgate_request_duration_seconds_sum", "provider", "shop", NULL) > 0);
    cr_expect_eq(prom_get(&p, "privgate_upstream_errors_total", "provider", "down", "kind",
                          "unavailable", NULL),
                 2);
    cr_expect_eq(prom_sum(&p, "privgate_upstream_errors_total"), 2);
    cr_expect_eq(prom_get(&p, "privgate_contract_reloads_total", "result", "ok", NULL), 0);
    cr_expect_eq(prom_get(&p, "privgate_contract_reloads_total", "result", "failed", NULL), 0);
    cr_expect_eq(prom_get(&p, "privgate_active_streams", NULL), 0);
    pm_free(&p);
    /* the scrape over h2c is the same text */
    scrape(mport, true, &p);
    cr_expect_eq(prom_sum(&p, R), 12);
    pm_free(&p);
}

/* h2load: the number of responses with status class |cls| (2 = 2xx...). */
static int h2load(bool h1, const char *path, const char *purpose, bool body, int n, int c, int cls)
{
    char url[256], ph[128], ns[16], cs[16], data[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", E.gw_port, path);
    snprintf(ph, sizeof(ph), "privgate-purpose: %s", purpose);
    snprintf(ns, sizeof(ns), "%d", n);
    snprintf(cs, sizeof(cs), "%d", c);
    snprintf(data, sizeof(data), "%s", e2e_path(&E, "order.json"));
    e2e_write(data, "%s", ORDER);
    char *argv[32];
    int k = 0;
    argv[k++] = "h2load";
    argv[k++] = "-n";
    argv[k++] = ns;
    argv[k++] = "-c";
    argv[k++] = cs;
    argv[k++] = "-m";
    argv[k++] = "2";
    if (h1) argv[k++] = "--h1";
    argv[k++] = "-H";
    argv[k++] = ph;
    argv[k++] = "-H";
    argv[k++] = H_CALLER;
    argv[k++] = "-H";
    argv[k++] = "cookie: a=1";
    if (body) {
        argv[k++] = "-H";
        argv[k++] = H_JSON;
        argv[k++] = "-d";
        argv[k++] = data;
    }
    argv[k++] = url;
    argv[k] = NULL;
    char *out = NULL;
    e2e_run(argv, NULL, &out, NULL);
    int x[4] = {-1, -1, -1, -1};
    const char *s = out ? strstr(out, "status codes: ") : NULL;
    if (s) sscanf(s, "status codes: %d 2xx, %d 3xx, %d 4xx, %d 5xx", &x[0], &x[1], &x[2], &x[3]);
    int got = cls >= 2 && cls <= 5 ? x[cls - 2] : -1;
    if (got != n) fprintf(stderr, "h2load output:\n%s\n", out ? out : "");
    free(out);
    return got;
}

/* With workers: 2 (the harness's setting) and many connections, which
 * SO_REUSEPORT spreads over both workers (all 46 connections on one worker:
 * probability 2^-45), the summed counters are exact. */
Test(metrics, two_workers_sum_exactly)
{
    char *cfg = e2e_read(e2e_path(&E, "privgate.yaml"), NULL);
    cr_assert(cfg && strstr(cfg, "workers: 2\n"), "config: %s", cfg ? cfg : "");
    free(cfg);
    cr_expect_eq(h2load(false, "/shop/v1/orders", "orders", true, 400, 16, 2), 400);
    cr_expect_eq(h2load(true, "/shop/v1/orders", "orders", true, 200, 10, 2), 200);
    cr_expect_eq(h2load(false, "/shop/v1/orders", "marketing", true, 120, 8, 4), 120);
    cr_expect_eq(h2load(true, "/nobody/v1/x", "orders", false, 60, 6, 4), 60);
    cr_expect_eq(h2load(false, "/down/v1/ping", "orders", false, 30, 6, 5), 30);
    struct prom p;
    scrape_settled(810, &p);
    const char *R = "privgate_requests_total";
    cr_expect_eq(prom_get(&p, R, "provider", "shop", "outcome", "forwarded", "code", "", NULL),
                 600);
    cr_expect_eq(prom_get(&p, R, "provider", "shop", "outcome", "refused", "code",
                          "purpose_not_allowed", NULL),
                 120);
    cr_expect_eq(
        prom_get(&p, R, "provider", "", "outcome", "refused", "code", "unknown_provider", NULL),
        60);
    cr_expect_eq(prom_get(&p, R, "provider", "down", "outcome", "failed", "code",
                          "upstream_unavailable", NULL),
                 30);
    cr_expect_eq(prom_count(&p, R), 4);
    cr_expect_eq(prom_get(&p, "privgate_fields_removed_total", "provider", "shop", NULL), 1200);
    cr_expect_eq(prom_get(&p, "privgate_fields_removed_total", "provider", "down", NULL), 30);
    cr_expect_eq(prom_get(&p, "privgate_fields_transformed_total", "provider", "shop", NULL), 600);
    cr_expect_eq(prom_get(&p, "privgate_request_duration_seconds_count", "provider", "shop", NULL),
                 720);
    cr_expect_eq(prom_get(&p, "privgate_upstream_errors_total", "provider", "down", "kind",
                          "unavailable", NULL),
                 30);
    cr_expect_eq(prom_get(&p, "privgate_active_streams", NULL), 0);
    pm_free(&p);
}
