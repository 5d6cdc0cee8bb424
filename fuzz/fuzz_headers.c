/*
 * libFuzzer target for request-header parsing in filters/ (SPEC 4.2-4.4):
 * filters/headers.c (safe set, value check, sorted name lists) and
 * filters/media.c (content-type and content-encoding values).
 *
 * Input: byte 0 selects what the rest is: bit 0 clear: one header value,
 * run through every check; bit 0 set: a list of names separated by '\n'
 * for flt_namelist_sort / flt_namelist_has.
 *
 * Properties, against independent code here:
 *  1. flt_header_value_ok(v) exactly when v has no CR, LF or NUL;
 *  2. flt_header_is_safe(v) exactly when v equals one of the six SPEC 4.3
 *     names ignoring ASCII case;
 *  3. flt_encoding_parse: accepted exactly when v, without the surrounding
 *     spaces and tabs, is identity/gzip/x-gzip/deflate ignoring case, with
 *     that result;
 *  4. flt_media_parse: a second RFC 9110 8.3.1 media-type parser gives the
 *     same verdict and class, charset (utf-8 only, ignoring case, token or
 *     quoted-string) enforced for the parsed types only; the verdict does
 *     not change when the value is upper-cased;
 *  5. namelists: the sorted list is ordered by length then bytes, a
 *     permutation of the input, and flt_namelist_has agrees with a linear
 *     search for every name and for near misses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "fuzz/common.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static bool ieq(const char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k) return false;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)p[i]) != lit[i]) return false;
    return true;
}

/* ------------------------------------------------------ media-type oracle */

static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct cur {
    const unsigned char *p;
    size_t n, i;
};

static size_t token(struct cur *c)
{
    size_t s = c->i;
    while (c->i < c->n && tchar(c->p[c->i]))
        c->i++;
    return c->i - s;
}

static void ows(struct cur *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t'))
        c->i++;
}

/* RFC 9110 5.6.4 quoted-string at c->i; the unescaped text in |u|. */
static bool qstring(struct cur *c, char *u, size_t *ul)
{
    *ul = 0;
    c->i++; /* '"' */
    while (c->i < c->n) {
        unsigned char ch = c->p[c->i++];
        if (ch == '"') return true;
        if (ch == '\\') {
            if (c->i >= c->n) return false;
            ch = c->p[c->i++];
            if (!(ch == '\t' || ch == ' ' || (ch >= 0x21 && ch <= 0x7e) || ch >= 0x80))
                return false;
        } else if (!(ch == '\t' || ch == ' ' || ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) ||
                     (ch >= 0x5d && ch <= 0x7e) || ch >= 0x80)) {
            return false;
        }
        u[(*ul)++] = (char)ch;
    }
    return false;
}

/* Returns 0 with |*m|, or -1 (FLT_E_MEDIA_TYPE expected). */
static int media_oracle(const char *v, size_t n, enum flt_media *m, char *scratch)
{
    struct cur c = {(const unsigned char *)v, n, 0};
    /* surrounding OWS is not part of the field value (RFC 9110 5.5) */
    while (c.n > 0 && (c.p[c.n - 1] == ' ' || c.p[c.n - 1] == '\t'))
        c.n--;
    ows(&c);
    const char *type = v + c.i;
    size_t tl = token(&c);
    if (!tl || c.i >= c.n || c.p[c.i] != '/') return -1;
    c.i++;
    const char *sub = v + c.i;
    size_t sl = token(&c);
    if (!sl) return -1;
    bool bad_cs = false;
    /* parameters = *( OWS ";" OWS [ parameter ] ) */
    for (;;) {
        ows(&c);
        if (c.i == c.n) break;
        if (c.p[c.i] != ';') return -1;
        c.i++;
        ows(&c);
        if (c.i == c.n || c.p[c.i] == ';') continue;
        const char *pn = v + c.i;
        size_t pl = token(&c);
        if (!pl || c.i >= c.n || c.p[c.i] != '=') return -1;
        c.i++;
        if (c.i >= c.n) return -1;
        const char *val;
        size_t vl;
        if (c.p[c.i] == '"') {
            if (!qstring(&c, scratch, &vl)) return -1;
            val = scratch;
        } else {
            val = v + c.i;
            vl = token(&c);
            if (!vl) return -1;
        }
        if (ieq(pn, pl, "charset") && !ieq(val, vl, "utf-8")) bad_cs = true;
    }
    enum flt_media r = FLT_MEDIA_OTHER;
    if (ieq(type, tl, "application")) {
        if (ieq(sub, sl, "json") || (sl > 5 && ieq(sub + sl - 5, 5, "+json")))
            r = FLT_MEDIA_JSON;
        else if (ieq(sub, sl, "x-ndjson") || ieq(sub, sl, "jsonl"))
            r = FLT_MEDIA_NDJSON;
        else if (ieq(sub, sl, "x-www-form-urlencoded"))
            r = FLT_MEDIA_FORM;
    }
    if (r != FLT_MEDIA_OTHER && bad_cs) return -1;
    *m = r;
    return 0;
}

/* ------------------------------------------------------------ name lists */

#define MAXNAMES 128

static int ncmp(const struct flt_str *a, const struct flt_str *b)
{
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->len ? memcmp(a->p, b->p, a->len) : 0;
}

static bool lin_has(const struct flt_str *v, size_t n, const char *p, size_t len)
{
    struct flt_str k = {p, len};
    for (size_t i = 0; i < n; i++)
        if (ncmp(&v[i], &k) == 0) return true;
    return false;
}

static void check_namelist(const char *p, size_t n)
{
    static struct flt_str orig[MAXNAMES], v[MAXNAMES];
    size_t k = 0;
    for (size_t st = 0; st <= n && k < MAXNAMES;) {
        const char *nl = memchr(p + st, '\n', n - st);
        size_t end = nl ? (size_t)(nl - p) : n;
        orig[k].p = p + st;
        orig[k].len = end - st;
        k++;
        if (!nl) break;
        st = end + 1;
    }
    memcpy(v, orig, k * sizeof *v);
    flt_namelist_sort(v, k);
    for (size_t i = 1; i < k; i++)
        if (ncmp(&v[i - 1], &v[i]) > 0) fz_fail("namelist: not sorted at %zu", i);
    /* a permutation: every original name occurs as often in v */
    for (size_t i = 0; i < k; i++) {
        size_t a = 0, b = 0;
        for (size_t j = 0; j < k; j++) {
            a += ncmp(&orig[j], &orig[i]) == 0;
            b += ncmp(&v[j], &orig[i]) == 0;
        }
        if (a != b) fz_fail("namelist: sort lost or duplicated a name");
    }
    struct flt_namelist l = {v, k};
    char probe[512];
    for (size_t i = 0; i < k; i++) {
        if (!flt_namelist_has(&l, orig[i].p, orig[i].len)) fz_fail("namelist: listed name missed");
        if (orig[i].len == 0 || orig[i].len > sizeof probe - 1) continue;
        /* near misses: last byte changed, one byte shorter, one longer */
        memcpy(probe, orig[i].p, orig[i].len);
        probe[orig[i].len - 1] ^= 1;
        if (flt_namelist_has(&l, probe, orig[i].len) != lin_has(v, k, probe, orig[i].len))
            fz_fail("namelist: changed byte judged differently");
        if (flt_namelist_has(&l, orig[i].p, orig[i].len - 1) !=
            lin_has(v, k, orig[i].p, orig[i].len - 1))
            fz_fail("namelist: prefix judged differently");
        memcpy(probe, orig[i].p, orig[i].len);
        probe[orig[i].len] = 'z';
        if (flt_namelist_has(&l, probe, orig[i].len + 1) != lin_has(v, k, probe, orig[i].len + 1))
            fz_fail("namelist: extension judged differently");
    }
    struct flt_namelist empty = {NULL, 0};
    if (flt_namelist_has(&empty, p, n)) fz_fail("namelist: empty list has a name");
}

/* ------------------------------------------------------------------ main */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *v = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        check_namelist(v, n);
        return 0;
    }

    /* 1. value check */
    bool ok = !memchr(v, '\r', n) && !memchr(v, '\n', n) && !memchr(v, 0, n);
    if (flt_header_value_ok(v, n) != ok) {
        fz_dump("value", v, n);
        fz_fail("flt_header_value_ok says %d", !ok);
    }

    /* 2. safe set */
    static const char *const safe[] = {"content-type", "accept",      "accept-encoding",
                                       "user-agent",   "traceparent", "tracestate"};
    bool is_safe = false;
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        is_safe |= ieq(v, n, safe[i]);
    if (flt_header_is_safe(v, n) != is_safe) {
        fz_dump("name", v, n);
        fz_fail("flt_header_is_safe says %d", !is_safe);
    }

    /* 3. content-encoding */
    size_t a = 0, b = n;
    while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
        b--;
    int ee = -1;
    if (ieq(v + a, b - a, "identity"))
        ee = FLT_ENC_IDENTITY;
    else if (ieq(v + a, b - a, "gzip") || ieq(v + a, b - a, "x-gzip"))
        ee = FLT_ENC_GZIP;
    else if (ieq(v + a, b - a, "deflate"))
        ee = FLT_ENC_DEFLATE;
    enum flt_encoding enc = (enum flt_encoding)99;
    int er = flt_encoding_parse(v, n, &enc);
    if (ee < 0 ? er != FLT_E_ENCODING : (er != 0 || (int)enc != ee)) {
        fz_dump("content-encoding", v, n);
        fz_fail("flt_encoding_parse gives %d/%d, expected %d", er, (int)enc, ee);
    }
    if (flt_encoding_parse(v, n, NULL) != er) fz_fail("flt_encoding_parse: NULL out differs");

    /* 4. content-type */
    char *scratch = malloc(n + 1), *up = malloc(n + 1);
    if (!scratch || !up) abort();
    enum flt_media em = FLT_MEDIA_NONE, m = FLT_MEDIA_NONE, mu = FLT_MEDIA_NONE;
    int orc = media_oracle(v, n, &em, scratch);
    int mr = flt_media_parse(v, n, &m);
    if (orc < 0 ? mr != FLT_E_MEDIA_TYPE : (mr != 0 || m != em)) {
        fz_dump("content-type", v, n);
        fz_fail("flt_media_parse gives %d (class %d), the oracle %d (class %d)", mr, (int)m, orc,
                (int)em);
    }
    for (size_t i = 0; i < n; i++)
        up[i] = (char)(v[i] >= 'a' && v[i] <= 'z' ? v[i] - 32 : v[i]);
    int ur = flt_media_parse(up, n, &mu);
    if (ur != mr || (mr == 0 && mu != m)) {
        fz_dump("content-type", v, n);
        fz_fail("flt_media_parse depends on case: %d/%d vs %d/%d", mr, (int)m, ur, (int)mu);
    }
    free(scratch);
    free(up);
    return 0;
}
