/* tests for filters/headers.c: safe set, values, name lists (SPEC 4.3, 4.4). */
#include "helpers.h"

#define S(lit) lit, (sizeof(lit) - 1)

Test(headers, safe_set)
{
    const char *safe[] = {"content-type", "accept",     "accept-encoding", "user-agent",
                          "traceparent",  "tracestate", "Content-Type",    "ACCEPT"};
    const char *unsafe[] = {"cookie",          "authorization",   "privgate-purpose",
                            "privgate-caller", "content-length",  "host",
                            "x-forwarded-for", "accept-language", "",
                            "content-typ",     "content-type2",   "te"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        cr_assert(flt_header_is_safe(safe[i], strlen(safe[i])), "%s", safe[i]);
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
        cr_assert(!flt_header_is_safe(unsafe[i], strlen(unsafe[i])), "%s", unsafe[i]);
}

Test(headers, values)
{
    cr_assert(flt_header_value_ok(S("application/json")));
    cr_assert(flt_header_value_ok(S("")));
    cr_assert(flt_header_value_ok(S("a\tb \x80\xff")));
    cr_assert(!flt_header_value_ok(S("a\rb")));
    cr_assert(!flt_header_value_ok(S("a\nb")));
    cr_assert(!flt_header_value_ok(S("a\0b")));
    cr_assert(!flt_header_value_ok(S("\r\n")));
}

Test(namelist, sort_and_lookup)
{
    struct flt_str v[] = {{S("zeta")}, {S("a")}, {S("beta")}, {S("alpha")}, {S("b")}, {S("")}};
    struct flt_namelist l = {v, sizeof v / sizeof v[0]};
    flt_namelist_sort(v, l.n);
    for (size_t i = 1; i < l.n; i++)
        cr_assert(v[i - 1].len < v[i].len ||
                  (v[i - 1].len == v[i].len && memcmp(v[i - 1].p, v[i].p, v[i].len) < 0));
    cr_assert(flt_namelist_has(&l, S("zeta")));
    cr_assert(flt_namelist_has(&l, S("a")));
    cr_assert(flt_namelist_has(&l, S("beta")));
    cr_assert(flt_namelist_has(&l, S("alpha")));
    cr_assert(flt_namelist_has(&l, S("b")));
    cr_assert(flt_namelist_has(&l, S("")));
    cr_assert(!flt_namelist_has(&l, S("c")));
    cr_assert(!flt_namelist_has(&l, S("Zeta")));
    cr_assert(!flt_namelist_has(&l, S("alph")));
    cr_assert(!flt_namelist_has(&l, S("alphas")));
    cr_assert(!flt_namelist_has(NULL, S("a")));
    {
        struct flt_namelist empty = {NULL, 0};
        cr_assert(!flt_namelist_has(&empty, S("a")));
    }
}
