/* tests for filters/query.c: flt_query_filter (SPEC 4.3, 4.4). */
#include "helpers.h"

static struct flt_str names_v[8];
static struct flt_namelist names;

static void set_names(const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        names_v[i].p = v[i];
        names_v[i].len = strlen(v[i]);
    }
    flt_namelist_sort(names_v, n);
    names.v = names_v;
    names.n = n;
}

static struct flt_report rep;
static char out[4096];

static long run(const char *q, bool reject)
{
    flt_report_init(&rep);
    memset(out, 0, sizeof out);
    return flt_query_filter(q, strlen(q), &names, reject, out, sizeof out, &rep);
}

#define EXPECT(q, want)                                                                            \
    do {                                                                                           \
        long r_ = run(q, false);                                                                   \
        cr_assert_eq(r_, (long)strlen(want), "%s: rc %ld out [%s]", q, r_, out);                   \
        cr_assert(memcmp(out, want, strlen(want)) == 0, "%s: got [%.*s] want [%s]", q, (int)r_,    \
                  out, want);                                                                      \
    } while (0)

Test(query, keeps_listed_removes_others)
{
    const char *n[] = {"dry_run", "page"};
    set_names(n, 2);
    EXPECT("dry_run=1&utm_source=x&page=2", "dry_run=1&page=2");
    cr_assert(list_has(&rep.removed, "query.utm_source"));
    cr_assert_eq(rep.removed.n, 1);
    EXPECT("utm_source=x", "");
    EXPECT("", "");
    EXPECT("page=2", "page=2");
}

Test(query, kept_byte_exact)
{
    const char *n[] = {"q"};
    set_names(n, 1);
    EXPECT("q=%41%2b+b%e2%82%ac", "q=%41%2b+b%e2%82%ac");
    EXPECT("q", "q");
    EXPECT("q=", "q=");
    EXPECT("q=a=b", "q=a=b");
}

Test(query, names_compared_decoded)
{
    const char *n[] = {"dry_run", "a b", "a+b"};
    set_names(n, 3);
    EXPECT("dry%5Frun=1", "dry%5Frun=1");
    EXPECT("dry%5frun=1", "dry%5frun=1");
    EXPECT("a+b=1", "a+b=1");
    EXPECT("a%20b=1", "a%20b=1");
    EXPECT("a%2Bb=1", "a%2Bb=1");
    EXPECT("DRY_RUN=1", "");
    cr_assert(list_has(&rep.removed, "query.DRY_RUN"));
}

Test(query, empty_pairs_dropped_duplicates_kept)
{
    const char *n[] = {"a", "b"};
    set_names(n, 2);
    EXPECT("a=1&&b=2", "a=1&b=2");
    EXPECT("&a=1&", "a=1");
    EXPECT("&&&", "");
    EXPECT("a=1&a=2&x=3&a=4", "a=1&a=2&a=4");
    cr_assert_eq(rep.removed.n, 1);
}

Test(query, nul_never_matches)
{
    static const char nul_name[] = {'a', '\0', 'b'};
    names_v[0].p = nul_name;
    names_v[0].len = 3;
    names.v = names_v;
    names.n = 1;
    EXPECT("a%00b=1", "");
    cr_assert_eq(rep.removed.n, 1);
}

Test(query, long_names_never_match)
{
    static char longname[FLT_NAME_MAX + 2];
    static char q[FLT_NAME_MAX + 16];
    memset(longname, 'n', FLT_NAME_MAX + 1);
    names_v[0].p = longname;
    names_v[0].len = FLT_NAME_MAX + 1;
    names_v[1].p = longname;
    names_v[1].len = FLT_NAME_MAX;
    flt_namelist_sort(names_v, 2);
    names.v = names_v;
    names.n = 2;
    snprintf(q, sizeof q, "%.*s=1", FLT_NAME_MAX + 1, longname);
    EXPECT(q, "");
    snprintf(q, sizeof q, "%.*s=1", FLT_NAME_MAX, longname);
    EXPECT(q, q);
}

Test(query, malformed_escapes)
{
    const char *bad[] = {"a=%4", "a=%", "a=%zz", "%=1", "x%g1=1", "a=1&b=%4g", "a=%%41"};
    const char *n[] = {"a"};
    set_names(n, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(run(bad[i], false), FLT_E_QUERY, "%s", bad[i]);
}

Test(query, reject_unlisted)
{
    const char *n[] = {"a"};
    set_names(n, 1);
    cr_assert_eq(run("a=1&b=2", true), FLT_E_UNLISTED);
    cr_assert(list_has(&rep.removed, "query.b"));
    cr_assert_eq(run("a=1&a=2", true), 7);
    cr_assert_eq(run("a=1&&", true), 3);
}

Test(query, report_quotes_special_names)
{
    const char *n[] = {"a"};
    set_names(n, 1);
    EXPECT("x.y=1&%22q%22=2&=3&x=1&x=2", "");
    cr_assert(list_has(&rep.removed, "query.\"x.y\""));
    cr_assert(list_has(&rep.removed, "query.\"\\\"q\\\"\""));
    cr_assert(list_has(&rep.removed, "query.\"\""));
    cr_assert(list_has(&rep.removed, "query.x"));
    cr_assert_eq(rep.removed.n, 4);
}

Test(query, output_capacity)
{
    const char *n[] = {"a", "b"};
    const char *q = "a=1&zz=2&b=3";
    char small[8];
    set_names(n, 2);
    cr_assert_eq(flt_query_filter(q, strlen(q), &names, false, small, 7, NULL), 7);
    cr_assert(memcmp(small, "a=1&b=3", 7) == 0);
    cr_assert_eq(flt_query_filter(q, strlen(q), &names, false, small, 6, NULL), FLT_E_NOMEM);
    cr_assert_eq(flt_query_filter(q, strlen(q), NULL, false, small, 6, NULL), 0);
}

/* Review finding 1: some provider parsers (old Go net/url, Python parse_qs
 * before 3.9.2, Rack 2) also split on ';': "dry_run=1;utm_source=x" would
 * smuggle an unlisted parameter inside a listed one. */
Test(query, raw_semicolon_refused)
{
    const char *n[] = {"dry_run", "a"};
    set_names(n, 2);
    cr_assert_eq(run("dry_run=1;utm_source=x", false), FLT_E_QUERY);
    cr_assert_eq(rep.removed.n, 0, "nothing reported for a refused query");
    cr_assert_eq(run("utm_source=x;dry_run=1", false), FLT_E_QUERY);
    cr_assert_eq(run("a=1&b;c=2", false), FLT_E_QUERY);
    cr_assert_eq(run(";", false), FLT_E_QUERY);
    cr_assert_eq(run("a=1;", true), FLT_E_QUERY);
    /* percent-encoded, it is data */
    EXPECT("dry_run=1%3Butm_source=x", "dry_run=1%3Butm_source=x");
    EXPECT("a%3Bb=1&a=2", "a=2");
}

/* Review finding 3 (query part): raw control bytes, DEL, space, '#' and
 * non-ASCII bytes are refused, not forwarded. */
Test(query, raw_bytes_refused)
{
    const char *bad[] = {"a=1\x01", "a=\x7f",        "a=b c",  "a b=1", "a=\t",
                         "a=\r\n",  "a=caf\xc3\xa9", "\xff=1", "a=1#x", "a=\x1f"};
    const char *n[] = {"a"};
    set_names(n, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(run(bad[i], false), FLT_E_QUERY, "[%s]", bad[i]);
    EXPECT("a=caf%C3%A9+x", "a=caf%C3%A9+x");
}

/* Review finding 5: a name that does not decode to valid UTF-8 is refused
 * (it would otherwise be reported, and the audit line would carry invalid
 * UTF-8). Values are forwarded byte-exact and not decoded. */
Test(query, names_must_be_utf8)
{
    const char *bad[] = {"%FF=1",     "a=1&%C3=2",       "%C0%AE=1",
                         "%ED%A0%80", "x%F4%90%80%80=1", "%E2%82=1&a=1"};
    const char *n[] = {"a"};
    set_names(n, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(run(bad[i], false), FLT_E_QUERY, "%s", bad[i]);
        cr_assert_eq(rep.removed.n, 0, "%s: nothing reported", bad[i]);
    }
    EXPECT("caf%C3%A9=1&a=2", "a=2");
    cr_assert(list_has(&rep.removed, "query.caf\xc3\xa9"));
    EXPECT("a=%FF", "a=%FF");
}
