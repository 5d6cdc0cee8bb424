/*
 * Query strings (SPEC 4.3, 4.4): parameters whose percent-decoded name is
 * listed are kept byte-exact, the others removed and reported.
 */
#include "filters/filters.h"
#include "filters/carriers_int.h"

#include <string.h>

/*
 * Checks the whole query string before anything is kept (fail closed):
 * every '%' starts a valid escape; no raw ';' (some provider parsers split
 * parameters on ';' as well as '&', so "a=1;b=2" would smuggle an unlisted
 * "b" past a filter that sees one parameter "a"; serialisers percent-encode
 * ';'); no raw control byte, DEL, space, '#' or non-ASCII byte (RFC 3986).
 */
static bool query_chars_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= len) return false;
            if (flt__hexval((unsigned char)p[i + 1]) < 0 ||
                flt__hexval((unsigned char)p[i + 2]) < 0)
                return false;
            i += 2;
            continue;
        }
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == '#') return false;
    }
    return true;
}

/* Whether name |p| percent-decodes ('+' is a space; escapes already
 * checked) to valid UTF-8, so that a reported name always is. */
static bool name_utf8_ok(const char *p, size_t len)
{
    struct flt__utf8 u;
    flt__utf8_init(&u);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            c = (unsigned char)(flt__hexval((unsigned char)p[i + 1]) * 16 +
                                flt__hexval((unsigned char)p[i + 2]));
            i += 2;
        }
        if (!flt__utf8_step(&u, c)) return false;
    }
    return u.need == 0;
}

/*
 * Decodes name |p| ('+' is a space, %XX a byte; escapes already checked)
 * into |dec| (FLT_NAME_MAX bytes). Sets |*matchable| false when the name is
 * too long or contains NUL. Returns the decoded length kept in |dec|.
 */
static size_t decode_name(const char *p, size_t len, char *dec, bool *matchable)
{
    size_t o = 0;
    *matchable = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            c = (unsigned char)(flt__hexval((unsigned char)p[i + 1]) * 16 +
                                flt__hexval((unsigned char)p[i + 2]));
            i += 2;
        }
        if (c == '\0') *matchable = false;
        if (o == FLT_NAME_MAX) {
            *matchable = false;
            break;
        }
        dec[o++] = (char)c;
    }
    return o;
}

long flt_query_filter(const char *q, size_t len, const struct flt_namelist *allowed,
                      bool reject_unlisted, char *out, size_t cap, struct flt_report *report)
{
    char dec[FLT_NAME_MAX];
    size_t o = 0, i = 0;

    if (len > 0 && q == NULL) return FLT_E_QUERY;
    if (!query_chars_ok(q, len)) return FLT_E_QUERY;
    /* every name must decode to valid UTF-8, kept or removed: checked
     * before anything is written or reported */
    for (size_t k = 0; k < len;) {
        const char *param = q + k;
        const char *amp = memchr(param, '&', len - k);
        size_t plen = amp ? (size_t)(amp - param) : len - k;
        const char *eq = memchr(param, '=', plen);
        if (!name_utf8_ok(param, eq ? (size_t)(eq - param) : plen)) return FLT_E_QUERY;
        k += plen + 1;
    }
    while (i < len) {
        const char *param = q + i;
        const char *amp = memchr(param, '&', len - i);
        size_t plen = amp ? (size_t)(amp - param) : len - i;
        const char *eq;
        size_t nlen, dlen;
        bool matchable;

        i += plen + (amp ? 1 : 0);
        if (plen == 0) continue; /* "a=1&&b=2": empty parameters are dropped */
        eq = memchr(param, '=', plen);
        nlen = eq ? (size_t)(eq - param) : plen;
        dlen = decode_name(param, nlen, dec, &matchable);
        if (matchable && flt_namelist_has(allowed, dec, dlen)) {
            size_t need = plen + (o > 0 ? 1 : 0);
            if (out == NULL || need > cap - o) return FLT_E_NOMEM;
            if (o > 0) out[o++] = '&';
            memcpy(out + o, param, plen);
            o += plen;
            continue;
        }
        if (report != NULL) flt__report_name(&report->removed, "query", dec, dlen);
        if (reject_unlisted) return FLT_E_UNLISTED;
    }
    return (long)o;
}
