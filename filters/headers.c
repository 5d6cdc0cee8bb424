/*
 * Request headers (SPEC 4.3, 4.4) and sorted name lists.
 */
#include "filters/filters.h"
#include "filters/carriers_int.h"

#include <stdlib.h>
#include <string.h>

/* Order used by flt_namelist: length first, then bytes. */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return alen < blen ? -1 : 1;
    if (alen == 0) return 0;
    return memcmp(a, b, alen);
}

static int str_qcmp(const void *x, const void *y)
{
    const struct flt_str *a = x, *b = y;
    return name_cmp(a->p, a->len, b->p, b->len);
}

void flt_namelist_sort(struct flt_str *v, size_t n)
{
    if (v != NULL && n > 1) qsort(v, n, sizeof *v, str_qcmp);
}

bool flt_namelist_has(const struct flt_namelist *l, const char *name, size_t len)
{
    size_t lo = 0, hi;
    if (l == NULL || l->v == NULL) return false;
    hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(l->v[mid].p, l->v[mid].len, name, len);
        if (c == 0) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* SPEC 4.3: the headers every route may forward: content-type, accept,
 * accept-encoding, user-agent, traceparent, tracestate. */
/* flt__ieq for a name of |lit|'s length, with a byte comparison first
 * (names nearly always come in lower case) */
static bool name_is(const char *name, size_t len, const char *lit)
{
    return memcmp(name, lit, len) == 0 || flt__ieq(name, len, lit);
}

bool flt_header_is_safe(const char *name, size_t len)
{
    /* Header names are case-insensitive (RFC 9110 5.1); callers pass lower
     * case, but comparing without case costs little and fails safe. By
     * length first: most names have none of these lengths, and a walk
     * over the list (a strlen each) cost about 200 instructions a name. */
    switch (len) {
    case 6: return name_is(name, len, "accept");
    case 10: return name_is(name, len, "user-agent") || name_is(name, len, "tracestate");
    case 11: return name_is(name, len, "traceparent");
    case 12: return name_is(name, len, "content-type");
    case 15: return name_is(name, len, "accept-encoding");
    default: return false;
    }
}

bool flt_header_value_ok(const char *v, size_t len)
{
    /* RFC 9110 5.5 / RFC 9113 8.2.1: CR, LF and NUL are never valid in a
     * field value; a value carrying them could split headers upstream. */
    for (size_t i = 0; i < len; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0') return false;
    return true;
}
