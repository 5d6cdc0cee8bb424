/*
 * Route path templates (SPEC 4, 4.3) and request path checks (SPEC 4.4).
 *
 * A template is '/' followed by segments separated by '/': a literal
 * (matched byte for byte), "{name}" (exactly one non-empty segment), or a
 * final "*" (the rest of the path after the previous segment's '/', kept
 * as is). "/" is one empty segment.
 */
#include "filters/filters.h"
#include "filters/carriers_int.h"

#include <stdio.h>
#include <string.h>

/* Longest decoded path segment a hashed parameter may have. */
#define SEG_DECODED_MAX 8192

static int fail(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0) snprintf(err, errlen, "%s", msg);
    return -1;
}

int flt_template_compile(struct flt_template *t, const char *pattern, size_t len, char *err,
                         size_t errlen)
{
    size_t i = 1;

    memset(t, 0, sizeof *t);
    if (pattern == NULL || len == 0 || pattern[0] != '/')
        return fail(err, errlen, "route path must start with '/'");
    if (memchr(pattern, '?', len) || memchr(pattern, '#', len))
        return fail(err, errlen, "route path must not contain '?' or '#'");
    for (;;) {
        const char *s = pattern + i;
        const char *slash = memchr(s, '/', len - i);
        size_t n = slash ? (size_t)(slash - s) : len - i;
        bool last = slash == NULL;

        if (n == 1 && s[0] == '*') {
            if (!last) return fail(err, errlen, "'*' must be the last segment of a route path");
            t->rest = true;
            break;
        }
        if (memchr(s, '*', n))
            return fail(err, errlen, "'*' must be a whole segment at the end of a route path");
        if (t->nseg == FLT_TEMPLATE_MAX_SEGMENTS)
            return fail(err, errlen, "route path has too many segments");
        if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
            const char *name = s + 1;
            size_t nl = n - 2;
            if (nl == 0) return fail(err, errlen, "empty path parameter name");
            if (memchr(name, '{', nl) || memchr(name, '}', nl))
                return fail(err, errlen, "bad path parameter");
            for (uint32_t k = 0; k < t->nseg; k++)
                if (t->seg[k].param && t->seg[k].lit.len == nl &&
                    memcmp(t->seg[k].lit.p, name, nl) == 0)
                    return fail(err, errlen, "duplicate path parameter");
            t->seg[t->nseg].lit.p = name;
            t->seg[t->nseg].lit.len = nl;
            t->seg[t->nseg].param = true;
            t->seg[t->nseg].action = FLT_PARAM_KEEP;
        } else {
            if (memchr(s, '{', n) || memchr(s, '}', n))
                return fail(err, errlen, "a path parameter must be a whole segment: {name}");
            if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return fail(err, errlen, "route path must not contain '.' or '..' segments");
            t->seg[t->nseg].lit.p = s;
            t->seg[t->nseg].lit.len = n;
            t->seg[t->nseg].param = false;
            t->seg[t->nseg].action = FLT_PARAM_KEEP;
        }
        t->nseg++;
        if (last) break;
        i += n + 1;
    }
    return 0;
}

int flt_template_set_param(struct flt_template *t, const char *name, size_t len,
                           enum flt_param_action a)
{
    for (uint32_t k = 0; k < t->nseg; k++) {
        if (t->seg[k].param && t->seg[k].lit.len == len &&
            (len == 0 || memcmp(t->seg[k].lit.p, name, len) == 0)) {
            t->seg[k].action = a;
            return 0;
        }
    }
    return -1;
}

static bool is_hex(unsigned char c)
{
    return flt__hexval(c) >= 0;
}

/*
 * Checks one segment: valid escapes, no encoded '/' or NUL, and not "." or
 * ".." even when the dots are percent-encoded (RFC 3986 5.2.4 would remove
 * them upstream, so the provider would see another path than the one the
 * route matched). Servers that strip path parameters (Tomcat, Spring, Jetty:
 * "..;x" is "..") or that decode twice, or that take '\' for '/' (IIS, some
 * Java and Node stacks), or that decode overlong UTF-8 ("%c0%ae" is '.'),
 * would do the same; so also refused:
 *  - a segment whose part before the first ';' (raw or percent-encoded),
 *    percent-decoded, is "." or "..";
 *  - '\' raw or percent-encoded (%5C, %5c);
 *  - double encoding: the decoded segment holds '%' and two hex digits
 *    ("%252e", "%25%32%65");
 *  - a decoded segment that is not valid UTF-8 (overlongs, surrogates).
 */
static bool segment_ok(const char *s, size_t n)
{
    size_t dots = 0, decoded = 0;
    bool semi = false;            /* a ';' was seen: the rest are path parameters */
    unsigned char p1 = 0, p2 = 0; /* the two decoded bytes before this one */
    struct flt__utf8 u;

    flt__utf8_init(&u);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n) return false;
            hi = flt__hexval((unsigned char)s[i + 1]);
            lo = flt__hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return false;
            c = (unsigned char)(hi * 16 + lo);
            if (c == '/' || c == '\0') return false;
            i += 2;
        } else if (c <= 0x20 || c == 0x7f || c == '#') {
            return false;
        }
        if (c == '\\') return false;
        if (p2 == '%' && is_hex(p1) && is_hex(c)) return false; /* double encoding */
        if (!flt__utf8_step(&u, c)) return false;
        p2 = p1;
        p1 = c;
        if (c == ';') semi = true;
        if (semi) continue;
        decoded++;
        if (c == '.') dots++;
    }
    if (u.need) return false;
    return !(dots == decoded && (decoded == 1 || decoded == 2));
}

/* Bytes the segment rules below have nothing to say about: printable
 * ASCII but '%' (escapes), '#', '\\', ';' (path parameters) and '.'
 * (dot segments). Bit c & 63 of word c >> 6; bytes from 128 on have none
 * (UTF-8 sequences take the full check). */
static const uint64_t plain_bits[4] = {0xf7ffbfd600000000ull, 0x7fffffffefffffffull, 0, 0};

/* Whether |p| is made of plain bytes only: then every segment passes
 * segment_ok (no escape, no dot segment, no control character, ASCII hence
 * valid UTF-8; empty segments pass too), and its per-byte decoding (about
 * 400 instructions for "/v1/orders") is not needed. */
static bool path_plain(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((plain_bits[c >> 6] >> (c & 63)) & 1)) return false;
    }
    return true;
}

int flt_path_check(const char *path, size_t len)
{
    size_t i;
    if (len == 0) return 0; /* nothing after the provider prefix: no route will match */
    if (path == NULL || path[0] != '/') return FLT_E_PATH;
    if (path_plain(path, len)) return 0;
    i = 1;
    for (;;) {
        const char *s = path + i;
        const char *slash = memchr(s, '/', len - i);
        size_t n = slash ? (size_t)(slash - s) : len - i;
        if (!segment_ok(s, n)) return FLT_E_PATH;
        if (slash == NULL) return 0;
        i += n + 1;
    }
}

/*
 * Walks |path| along |t|. For each template segment calls back |seg_fn|
 * (may be NULL) with the path segment; a negative return from it stops the
 * walk and is returned. Returns the offset where the rest ('*') starts
 * (len when none), or -1 when |path| does not match.
 */
typedef int (*seg_fn)(void *ud, uint32_t k, const char *s, size_t n);

static long walk(const struct flt_template *t, const char *path, size_t len, seg_fn fn, void *ud)
{
    size_t pos = 1;
    if (path == NULL || len == 0 || path[0] != '/') return -1;
    for (uint32_t k = 0; k < t->nseg; k++) {
        const char *s = path + pos;
        const char *slash = memchr(s, '/', len - pos);
        size_t n = slash ? (size_t)(slash - s) : len - pos;
        bool last = k + 1 == t->nseg;

        if (t->seg[k].param) {
            if (n == 0) return -1;
        } else if (n != t->seg[k].lit.len || (n > 0 && memcmp(s, t->seg[k].lit.p, n) != 0)) {
            return -1;
        }
        if (fn != NULL) {
            int r = fn(ud, k, s, n);
            if (r < 0) return r;
        }
        if (last && !t->rest) {
            if (slash != NULL) return -1;
            return (long)len;
        }
        if (slash == NULL) return -1; /* more template segments, or '*', need a '/' */
        pos += n + 1;
    }
    /* t->rest: everything from |pos| on (possibly empty) */
    return (long)pos;
}

bool flt_template_match(const struct flt_template *t, const char *path, size_t len)
{
    if (t->nseg == 0 && !t->rest) return false;
    return walk(t, path, len, NULL, NULL) >= 0;
}

struct rewrite_ctx {
    const struct flt_template *t;
    const struct flt_hmac_key *key;
    char *out;
    size_t cap, o;
    struct flt_report *report;
};

static int put(struct rewrite_ctx *c, const char *p, size_t n)
{
    if (n > c->cap - c->o) return FLT_E_NOMEM;
    if (n > 0) memcpy(c->out + c->o, p, n);
    c->o += n;
    return 0;
}

static int rewrite_seg(void *ud, uint32_t k, const char *s, size_t n)
{
    struct rewrite_ctx *c = ud;
    int r = put(c, "/", 1);
    if (r < 0) return r;
    if (!c->t->seg[k].param || c->t->seg[k].action != FLT_PARAM_HASH) return put(c, s, n);

    /* hash: HMAC over the percent-decoded value ('+' is not special in a path) */
    {
        char dec[SEG_DECODED_MAX];
        char hex[64];
        size_t d = 0;
        if (c->key == NULL || !c->key->set) return FLT_E_STATE;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '%') {
                int hi, lo;
                if (i + 2 >= n) return FLT_E_PATH;
                hi = flt__hexval((unsigned char)s[i + 1]);
                lo = flt__hexval((unsigned char)s[i + 2]);
                if (hi < 0 || lo < 0) return FLT_E_PATH;
                ch = (unsigned char)(hi * 16 + lo);
                i += 2;
            }
            if (d == sizeof dec) return FLT_E_PATH;
            dec[d++] = (char)ch;
        }
        flt_hmac_hex(c->key, dec, d, hex);
        r = put(c, hex, sizeof hex);
        if (r < 0) return r;
        if (c->report != NULL)
            flt__report_name(&c->report->transformed, "param", c->t->seg[k].lit.p,
                             c->t->seg[k].lit.len);
    }
    return 0;
}

long flt_template_rewrite(const struct flt_template *t, const char *path, size_t len,
                          const struct flt_hmac_key *key, char *out, size_t cap,
                          struct flt_report *report)
{
    struct rewrite_ctx c = {t, key, out, cap, 0, report};
    long rest;
    int r;

    if (out == NULL) return FLT_E_NOMEM;
    if (t->nseg == 0 && !t->rest) return FLT_E_PATH;
    rest = walk(t, path, len, NULL, NULL);
    if (rest < 0) return FLT_E_PATH;
    {
        long w = walk(t, path, len, rewrite_seg, &c);
        if (w < 0) return w;
    }
    if (t->rest) {
        r = put(&c, "/", 1);
        if (r == 0) r = put(&c, path + rest, len - (size_t)rest);
        if (r < 0) return r;
    }
    return (long)c.o;
}
