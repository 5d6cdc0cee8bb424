/*
 * privgate filters: private helpers shared by the carrier modules
 * (form.c, query.c, template.c, media.c, headers.c, body.c).
 * Everything here is static inline: no symbols, no state.
 */
#ifndef PRIVGATE_FILTERS_CARRIERS_INT_H
#define PRIVGATE_FILTERS_CARRIERS_INT_H

#include "filters/filters.h"
#include "filters/int.h" /* flt__name_needs_quotes */

#include <string.h>

/* Value of hex digit |c|, or -1. */
static inline int flt__hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static inline unsigned char flt__lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive (ASCII) equality of |p|/|len| with NUL-terminated |lit|. */
static inline bool flt__ieq(const char *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    if (n != len) return false;
    for (size_t i = 0; i < n; i++)
        if (flt__lower((unsigned char)p[i]) != flt__lower((unsigned char)lit[i])) return false;
    return true;
}

/*
 * Streaming UTF-8 validator (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF). Invariant: |need| continuation bytes are still expected,
 * the next one within [lo, hi].
 */
struct flt__utf8 {
    uint8_t need, lo, hi;
};

static inline void flt__utf8_init(struct flt__utf8 *u)
{
    u->need = 0;
    u->lo = 0x80;
    u->hi = 0xBF;
}

/* Feeds one byte; false when the sequence is invalid. */
static inline bool flt__utf8_step(struct flt__utf8 *u, unsigned char c)
{
    if (u->need) {
        if (c < u->lo || c > u->hi) return false;
        u->lo = 0x80;
        u->hi = 0xBF;
        u->need--;
        return true;
    }
    if (c < 0x80) return true;
    u->lo = 0x80;
    u->hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        u->need = 1;
    } else if (c == 0xE0) {
        u->need = 2;
        u->lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        u->need = 2;
    } else if (c == 0xED) {
        u->need = 2;
        u->hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c == 0xF0) {
        u->need = 3;
        u->lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        u->need = 3;
    } else if (c == 0xF4) {
        u->need = 3;
        u->hi = 0x8F;
    } else {
        return false;
    }
    return true;
}

/* Room for a formatted path: longer than a report path so that the report
 * list sees (and marks) every cut. */
#define FLT__PATHBUF (FLT_REPORT_PATH_MAX * 2)

/*
 * Writes member |name| as a contract path component into |out| (quoted with
 * \" and \\ escapes when needed), cut at |cap|. Returns the length written.
 */
static inline size_t flt__format_name(char *out, size_t cap, const char *name, size_t len)
{
    size_t o = 0;
    if (!flt__name_needs_quotes(name, len)) {
        o = len < cap ? len : cap;
        memcpy(out, name, o);
        return o;
    }
    if (o < cap) out[o++] = '"';
    for (size_t i = 0; i < len && o < cap; i++) {
        if (name[i] == '"' || name[i] == '\\') {
            out[o++] = '\\';
            if (o == cap) break;
        }
        out[o++] = name[i];
    }
    if (o < cap) out[o++] = '"';
    return o;
}

/* Adds "<prefix>.<name>" (name formatted as above) to |l| (NULL: no-op). */
static inline void flt__report_name(struct flt_pathlist *l, const char *prefix, const char *name,
                                    size_t len)
{
    char buf[FLT__PATHBUF];
    size_t n;
    if (l == NULL) return;
    n = flt__format_name(buf, sizeof buf, name, len);
    flt_pathlist_add(l, prefix, buf, n);
}

/* Writes "<prefix>.<name>" NUL-terminated into |out| (|cap| >= 8), cut
 * with "..." when it does not fit. */
static inline void flt__path_string(char *out, size_t cap, const char *prefix, const char *name,
                                    size_t len)
{
    char buf[FLT__PATHBUF];
    size_t n = flt__format_name(buf, sizeof buf, name, len);
    size_t pl = strlen(prefix);
    size_t o = 0;
    if (pl > cap - 1) pl = cap - 1;
    memcpy(out, prefix, pl);
    o = pl;
    if (o < cap - 1) out[o++] = '.';
    if (n <= cap - 1 - o && n < sizeof buf) {
        memcpy(out + o, buf, n);
        o += n;
    } else {
        size_t room = cap - 1 - o;
        size_t keep = room > 3 ? room - 3 : 0;
        if (keep > n) keep = n;
        memcpy(out + o, buf, keep);
        o += keep;
        for (int i = 0; i < 3 && o < cap - 1; i++)
            out[o++] = '.';
    }
    out[o] = '\0';
}

#endif
