/*
 * Media types and content codings of request bodies (SPEC 4.2, 4.4).
 *
 * Content-Type follows RFC 9110 8.3.1:
 *   media-type = type "/" subtype parameters
 *   parameters = *( OWS ";" OWS [ parameter ] )
 *   parameter  = parameter-name "=" ( token / quoted-string )
 * Type, subtype and parameter names are case-insensitive; so is the value
 * of charset (RFC 9110 8.3.2).
 */
#include "filters/filters.h"
#include "filters/carriers_int.h"

#include <string.h>

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* Length of the token starting at |p|. */
static size_t token_len(const char *p, size_t len)
{
    size_t i = 0;
    while (i < len && is_tchar((unsigned char)p[i]))
        i++;
    return i;
}

/*
 * Parses a quoted-string at |p| (starting with '"'). Returns its length
 * including both quotes, or 0 when malformed. Sets |*utf8| to whether its
 * unescaped content is "utf-8" (case-insensitive).
 */
static size_t quoted_len(const char *p, size_t len, bool *utf8)
{
    static const char want[] = "utf-8";
    size_t i = 1, k = 0;
    bool match = true;
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"') {
            *utf8 = match && k == sizeof want - 1;
            return i + 1;
        }
        if (c == '\\') {
            if (i + 1 >= len) return 0;
            c = (unsigned char)p[i + 1];
            if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) return 0;
            i += 2;
        } else {
            if (!(c == '\t' || (c >= 0x20 && c != 0x7f))) return 0;
            i++;
        }
        if (k < sizeof want - 1 && flt__lower(c) == (unsigned char)want[k])
            k++;
        else
            match = false;
    }
    return 0;
}

int flt_media_parse(const char *v, size_t len, enum flt_media *out)
{
    size_t i = 0, t, s;
    const char *type, *sub;
    bool bad_charset = false;
    enum flt_media m = FLT_MEDIA_OTHER;

    if (v == NULL) len = 0;
    if (len == 16 && memcmp(v, "application/json", 16) == 0) {
        /* what nearly every JSON client sends: the answer of the parse
         * below, without its tokenizing (about 370 instructions) */
        if (out != NULL) *out = FLT_MEDIA_JSON;
        return 0;
    }
    while (i < len && is_ows((unsigned char)v[i]))
        i++;
    while (len > i && is_ows((unsigned char)v[len - 1]))
        len--;
    if (i == len) return FLT_E_MEDIA_TYPE;

    type = v + i;
    t = token_len(type, len - i);
    if (t == 0 || i + t >= len || type[t] != '/') return FLT_E_MEDIA_TYPE;
    i += t + 1;
    sub = v + i;
    s = token_len(sub, len - i);
    if (s == 0) return FLT_E_MEDIA_TYPE;
    i += s;

    while (i < len) {
        size_t n;
        const char *name;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i == len) break;
        if (v[i] != ';') return FLT_E_MEDIA_TYPE;
        i++;
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i == len || v[i] == ';') continue; /* empty parameter */
        name = v + i;
        n = token_len(name, len - i);
        if (n == 0 || i + n >= len || name[n] != '=') return FLT_E_MEDIA_TYPE;
        i += n + 1;
        if (i == len) return FLT_E_MEDIA_TYPE;
        if (v[i] == '"') {
            bool utf8 = false;
            size_t q = quoted_len(v + i, len - i, &utf8);
            if (q == 0) return FLT_E_MEDIA_TYPE;
            if (flt__ieq(name, n, "charset") && !utf8) bad_charset = true;
            i += q;
        } else {
            size_t q = token_len(v + i, len - i);
            if (q == 0) return FLT_E_MEDIA_TYPE;
            if (flt__ieq(name, n, "charset") && !flt__ieq(v + i, q, "utf-8")) bad_charset = true;
            i += q;
        }
    }

    if (flt__ieq(type, t, "application")) {
        if (flt__ieq(sub, s, "json") || (s > 5 && flt__ieq(sub + s - 5, 5, "+json")))
            m = FLT_MEDIA_JSON;
        else if (flt__ieq(sub, s, "x-ndjson") || flt__ieq(sub, s, "jsonl"))
            m = FLT_MEDIA_NDJSON;
        else if (flt__ieq(sub, s, "x-www-form-urlencoded"))
            m = FLT_MEDIA_FORM;
    }
    /* The charset matters only for the bodies privgate parses; an opaque
     * route forwards whatever it is given. */
    if (m != FLT_MEDIA_OTHER && bad_charset) return FLT_E_MEDIA_TYPE;
    if (out != NULL) *out = m;
    return 0;
}

int flt_encoding_parse(const char *v, size_t len, enum flt_encoding *out)
{
    size_t i = 0;
    enum flt_encoding e;
    if (v == NULL) return FLT_E_ENCODING;
    while (i < len && is_ows((unsigned char)v[i]))
        i++;
    while (len > i && is_ows((unsigned char)v[len - 1]))
        len--;
    v += i;
    len -= i;
    if (flt__ieq(v, len, "identity"))
        e = FLT_ENC_IDENTITY;
    else if (flt__ieq(v, len, "gzip") || flt__ieq(v, len, "x-gzip"))
        e = FLT_ENC_GZIP;
    else if (flt__ieq(v, len, "deflate"))
        e = FLT_ENC_DEFLATE;
    else
        return FLT_E_ENCODING; /* unknown, empty, or a list ("gzip, br") */
    if (out != NULL) *out = e;
    return 0;
}
