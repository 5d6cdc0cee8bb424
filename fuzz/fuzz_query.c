/*
 * libFuzzer target for query strings (filters/query.c, SPEC 4.3/4.4).
 *
 * Input: byte 0 picks an allowed-name list (low 2 bits) and options
 * (bit 2: a reject_unlisted run, bit 3: a NULL report); the rest is the
 * query string (without '?').
 *
 * Properties, against an independent reading of the contract in carriers.h:
 *  1. fail closed, exactly: refused (FLT_E_QUERY) if and only if a byte is
 *     outside 0x21-0x7e, a raw ';' or '#', a '%' not followed by two hex
 *     digits, or a name that does not percent-decode to valid UTF-8;
 *  2. the output is exactly the non-empty parameters whose decoded name
 *     ('+' = space) is listed, has no NUL and at most FLT_NAME_MAX bytes,
 *     byte-exact, in order, joined by '&': nothing else ever appears;
 *  3. every other non-empty parameter is counted as removed; paths start
 *     "query", each once;
 *  4. reject_unlisted: FLT_E_UNLISTED exactly when something is removed,
 *     else the same output;
 *  5. |cap|: an output buffer of exactly the output length suffices, one
 *     byte less gives FLT_E_NOMEM, and nothing is written past |cap|.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "fuzz/common.h"
#include "fuzz/oracle.h"

#define NLISTS 4
#define LONGN FLT_NAME_MAX

static char long_ok[LONGN + 1], long_bad[LONGN + 2];
static struct flt_str lists[NLISTS][8];
static size_t nlist[NLISTS];
static struct flt_namelist NL[NLISTS];
static struct flt_report REP;

static void add(int l, const char *p, size_t n)
{
    lists[l][nlist[l]].p = p;
    lists[l][nlist[l]].len = n;
    nlist[l]++;
}
#define ADD(l, s) add(l, s, sizeof s - 1)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memset(long_ok, 'x', LONGN);
    memset(long_bad, 'x', LONGN + 1);
    /* 0: nothing allowed */
    /* 1: a route's usual list */
    ADD(1, "dry_run");
    ADD(1, "page");
    ADD(1, "a");
    ADD(1, "b c"); /* "b+c" and "b%20c" */
    ADD(1, "\xc3\xa9");
    ADD(1, "a&b"); /* only "a%26b" */
    /* 2: odd names: empty, '=' and '+' decoded, a NUL (never matches) */
    ADD(2, "");
    ADD(2, "=");
    ADD(2, "+");
    ADD(2, "n\0ul");
    ADD(2, "%");
    /* 3: names at and past FLT_NAME_MAX */
    add(3, long_ok, LONGN);
    add(3, long_bad, LONGN + 1);
    ADD(3, "x");
    for (int l = 0; l < NLISTS; l++) {
        flt_namelist_sort(lists[l], nlist[l]);
        NL[l].v = lists[l];
        NL[l].n = nlist[l];
    }
    return 0;
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes |p|/|n| ('+' = space); -1 on a malformed escape. */
static long pdecode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexv((unsigned char)p[i + 1]), l = hexv((unsigned char)p[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        out[o++] = (char)c;
    }
    return (long)o;
}

static bool listed(const struct flt_str *v, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].len == len && (len == 0 || memcmp(v[i].p, p, len) == 0)) return true;
    return false;
}

static char *EXP, *OUT, *DEC;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned sel = data[0];
    int l = sel % NLISTS;
    bool try_reject = (sel >> 2) & 1;
    bool null_report = (sel >> 3) & 1;
    const char *q = (const char *)data + 1;
    size_t n = size - 1;

    free(EXP);
    free(OUT);
    free(DEC);
    EXP = malloc(n + 1);
    OUT = malloc(n + 16);
    DEC = malloc(n + 1);
    if (!EXP || !OUT || !DEC) abort();

    /* the oracle: validity, then the expected output and removals */
    bool valid = true;
    for (size_t i = 0; i < n && valid; i++) {
        unsigned char c = (unsigned char)q[i];
        if (c <= 0x20 || c >= 0x7f || c == ';' || c == '#') valid = false;
    }
    size_t elen = 0;
    uint32_t removed = 0;
    for (size_t st = 0; valid && st <= n;) {
        const char *amp = memchr(q + st, '&', n - st);
        size_t end = amp ? (size_t)(amp - q) : n;
        size_t plen = end - st;
        const char *eq = memchr(q + st, '=', plen);
        size_t nlen = eq ? (size_t)(eq - (q + st)) : plen;
        long dl = pdecode(q + st, nlen, DEC);
        if (dl < 0 || (eq && pdecode(eq + 1, plen - nlen - 1, EXP + elen) < 0) ||
            !ou_valid(DEC, (size_t)dl)) {
            valid = false;
            break;
        }
        if (plen > 0) {
            bool keep = (size_t)dl <= FLT_NAME_MAX && !memchr(DEC, 0, (size_t)dl) &&
                        listed(lists[l], nlist[l], DEC, (size_t)dl);
            if (keep) {
                if (elen) EXP[elen++] = '&';
                memcpy(EXP + elen, q + st, plen);
                elen += plen;
            } else {
                removed++;
            }
        }
        if (!amp) break;
        st = end + 1;
    }

    /* 1-3: the normal call, with an exact buffer plus a guard */
    memset(OUT, 0xAA, n + 16);
    flt_report_init(&REP);
    long r = flt_query_filter(q, n, &NL[l], false, OUT, n, null_report ? NULL : &REP);
    if (!valid) {
        if (r != FLT_E_QUERY) {
            fz_dump("query", q, n);
            fz_fail("list %d: malformed query gives %ld, not FLT_E_QUERY", l, r);
        }
        if (!null_report && REP.removed.total != 0)
            fz_fail("list %d: a refused query reported removals", l);
        return 0;
    }
    if (r < 0) {
        fz_dump("query", q, n);
        fz_fail("list %d: well-formed query refused: %ld %s", l, r, flt_strerror((int)r));
    }
    if ((size_t)r != elen || memcmp(OUT, EXP, elen) != 0) {
        fz_dump("query", q, n);
        fz_dump("output", OUT, r > 0 ? (size_t)r : 0);
        fz_dump("expected", EXP, elen);
        fz_fail("list %d: output is not the listed parameters", l);
    }
    for (size_t i = n; i < n + 16; i++)
        if ((unsigned char)OUT[i] != 0xAA) fz_fail("list %d: wrote past cap", l);
    if (!null_report) {
        if (REP.removed.total != removed)
            fz_fail("list %d: %u removals reported, %u expected", l, REP.removed.total, removed);
        fz_check_report(&REP, "query");
    }

    /* 5. the buffer bound */
    r = flt_query_filter(q, n, &NL[l], false, OUT, elen, NULL);
    if ((size_t)r != elen) fz_fail("list %d: cap == output length gives %ld", l, r);
    if (elen > 0) {
        memset(OUT, 0xAA, n + 16);
        r = flt_query_filter(q, n, &NL[l], false, OUT, elen - 1, NULL);
        if (r != FLT_E_NOMEM) fz_fail("list %d: cap one short gives %ld", l, r);
        if ((unsigned char)OUT[elen - 1] != 0xAA) fz_fail("list %d: wrote past a short cap", l);
    }

    /* 4. reject_unlisted */
    if (try_reject) {
        flt_report_init(&REP);
        r = flt_query_filter(q, n, &NL[l], true, OUT, n, &REP);
        if (removed ? r != FLT_E_UNLISTED : ((size_t)r != elen || memcmp(OUT, EXP, elen) != 0)) {
            fz_dump("query", q, n);
            fz_fail("list %d: reject_unlisted gives %ld with %u removal(s)", l, r, removed);
        }
        if (removed && (REP.removed.total != 1 || REP.removed.n != 1))
            fz_fail("list %d: reject_unlisted: the refused name is not the one reported", l);
        if (removed) {
            struct flt_str s = flt_pathlist_get(&REP.removed, 0);
            if (s.len < 5 || memcmp(s.p, "query", 5) != 0) fz_fail("unlisted path lacks query");
        }
    }
    return 0;
}
