/*
 * libFuzzer target for the form filter (filters/form.c, SPEC 4.2/4.4:
 * application/x-www-form-urlencoded, top-level names after percent-decoding).
 *
 * Input: byte 0 picks a rule set (low 3 bits) and options, bytes 1-2 a split
 * point, the rest is the body.
 *
 * Properties checked:
 *  1. a body with a malformed percent-escape is refused; a body of plain
 *     characters with well-formed escapes decoding to valid UTF-8 is accepted;
 *  2. accepted output is the input's pairs that the rules allow, in order:
 *     kept pairs byte-identical, transformed pairs with the same name and the
 *     right (percent-decoded) value, no other name;
 *  3. whole / split / 1-byte chunks give the same result and output;
 *  4. reject_unlisted: accepted -> same output as without.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "fuzz/common.h"
#include "fuzz/oracle.h"
#include "fuzz/rulesets.h"

static struct rset sets[8] = {
    {"keep-all", {{"$", A_KEEP}}, NULL, NULL, false},
    {"empty", {{NULL, A_KEEP}}, NULL, NULL, false},
    {"mix",
     {{"a", A_KEEP},
      {"\"b c\"", A_KEEP},
      {"\"a.b\"", A_KEEP},
      {"x.y", A_KEEP},
      {"c", A_HASH},
      {"d", A_MASK_LAST(2)},
      {"e", A_TRUNC(3)},
      {"y", A_YEAR},
      {"\"\xc3\xa9\"", A_KEEP},
      {"f", A_MASK_FIRST(1)}},
     NULL,
     NULL,
     false},
    {"star-keep", {{"*", A_KEEP}}, NULL, NULL, false},
    {"star-hash", {{"*", A_HASH}}, NULL, NULL, false},
    {"star-year", {{"*", A_YEAR}}, NULL, NULL, false},
    {"brackets", {{"items[]", A_KEEP}, {"\"tags[]\"", A_KEEP}, {"$.z", A_KEEP}}, NULL, NULL, false},
    {"edge-n",
     {{"a", A_TRUNC(0)}, {"b", A_MASK_LAST(0)}, {"c", A_MASK_FIRST(64)}},
     NULL,
     NULL,
     false},
};
#define NSETS (sizeof sets / sizeof sets[0])

static struct flt_form *F;
static struct flt_hmac_key KEY;
static struct flt_report REP_A, REP_B;
static struct fz_out OUT_A, OUT_B;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    flt_hmac_key_init(&KEY, (const uint8_t *)FZ_HMAC_KEY, FZ_HMAC_KEYLEN);
    F = flt_form_new();
    if (!F) abort();
    for (size_t s = 0; s < NSETS; s++) {
        struct rset *rs = &sets[s];
        rs->fr = flt_rules_new();
        rs->trie = calloc(1, sizeof *rs->trie);
        if (!rs->fr || !rs->trie) abort();
        for (size_t i = 0; i < 16 && rs->rules[i].path; i++) {
            const struct orule *r = &rs->rules[i];
            if (flt_rules_add(rs->fr, r->path, strlen(r->path), &r->act, err, sizeof err) != 0) {
                fprintf(stderr, "fuzz_form: set %s: flt_rules_add(%s) refused: %s (skipped)\n",
                        rs->name, r->path, err);
                continue;
            }
            if (!otrie_add(rs->trie, r->path, &r->act))
                fz_fail("oracle cannot parse its own path %s", r->path);
        }
        if (flt_rules_compile(rs->fr, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_form: set %s: compile failed: %s (set unused)\n", rs->name, err);
            continue;
        }
        rs->usable = true;
    }
    return 0;
}

enum mode { WHOLE, SPLIT, BYTES };

static int run(const struct rset *rs, bool reject, const char *p, size_t n, enum mode m,
               size_t split, struct fz_out *o, struct flt_report *rep)
{
    o->len = 0;
    if (rep) flt_report_init(rep);
    if (!o->p) fz_sink(o, "", 0); /* never a NULL buffer for memcmp */
    o->len = 0;
    flt_form_reset(F, rs->fr, &KEY, reject, fz_sink, o, rep);
    int rc = 0;
    switch (m) {
    case WHOLE: rc = flt_form_feed(F, p, n); break;
    case SPLIT:
        rc = flt_form_feed(F, p, split);
        if (rc == 0) rc = flt_form_feed(F, p + split, 0);
        if (rc == 0) rc = flt_form_feed(F, p + split, n - split);
        break;
    case BYTES:
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = flt_form_feed(F, p + i, 1);
        break;
    }
    if (rc == 0) rc = flt_form_finish(F);
    if (rc > 0) fz_fail("flt_form_* returned %d (> 0)", rc);
    return rc;
}

/* ------------------------------------------------------------ the oracle */

struct pair {
    const char *p; /* whole pair */
    size_t len;
    size_t namelen; /* bytes before '=' (len when no '=') */
};

#define MAXPAIRS 4096

static size_t split_pairs(const char *p, size_t n, struct pair *v)
{
    size_t k = 0, st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '&') {
            if (i > st && k < MAXPAIRS) {
                const char *eq = memchr(p + st, '=', i - st);
                v[k].p = p + st;
                v[k].len = i - st;
                v[k].namelen = eq ? (size_t)(eq - (p + st)) : i - st;
                k++;
            }
            st = i + 1;
        }
    }
    return k;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes (+ = space) into |out|; returns the length or -1. */
static long pdecode(const char *p, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            if (i + 2 >= n) return -1;
            int h = hexv(p[i + 1]), l = hexv(p[i + 2]);
            if (h < 0 || l < 0) return -1;
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else if (p[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = p[i];
        }
    }
    return (long)o;
}

static bool plain_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("=&%+._~-*", c);
}

static struct pair IN[MAXPAIRS], OUTP[MAXPAIRS];

static void fail_io(const struct rset *rs, const char *doc, size_t n, const char *what)
{
    fz_dump("input", doc, n);
    fz_dump("output", OUT_A.p, OUT_A.len);
    fz_fail("rule set %s: %s", rs->name, what);
}

static void check_output(const struct rset *rs, const char *doc, size_t n)
{
    size_t ni = split_pairs(doc, n, IN), no = split_pairs(OUT_A.p, OUT_A.len, OUTP);
    if (ni >= MAXPAIRS) return;
    char *nb = malloc(n + 1), *vb = malloc(n + 1), *ob = malloc(OUT_A.len + 1);
    if (!nb || !vb || !ob) abort();
    size_t j = 0;
    for (size_t i = 0; i < ni; i++) {
        const struct pair *ip = &IN[i];
        long nl = pdecode(ip->p, ip->namelen, nb);
        bool has_eq = ip->namelen < ip->len;
        const char *rv = has_eq ? ip->p + ip->namelen + 1 : "";
        size_t rvl = has_eq ? ip->len - ip->namelen - 1 : 0;
        long vl = pdecode(rv, rvl, vb);
        if (nl < 0 || vl < 0) fail_io(rs, doc, n, "accepted a malformed percent-escape");
        const struct onode *r = rs->trie;
        const struct onode *m = NULL;
        if (r->has_action)
            m = r;
        else if (!memchr(nb, 0, (size_t)nl)) {
            m = otrie_member(r, nb, (size_t)nl);
            if (m && !m->has_action) m = NULL; /* an ancestor: forms have top-level names only */
        }
        bool maybe = memchr(nb, 0, (size_t)nl) && r->has_action;
        if (!m && !maybe) continue;
        bool same =
            j < no && OUTP[j].namelen == ip->namelen && memcmp(OUTP[j].p, ip->p, ip->namelen) == 0;
        if (maybe || !m) {
            if (same) j++;
            continue;
        }
        if (m->act.kind == FLT_ACT_KEEP) {
            if (!same || OUTP[j].len != ip->len || memcmp(OUTP[j].p, ip->p, ip->len) != 0)
                fail_io(rs, doc, n, "kept pair missing or not byte-identical");
            j++;
            continue;
        }
        /* a transform */
        bool vutf8 = ou_valid(vb, (size_t)vl);
        enum otri s = O_YES;
        if (!vutf8)
            s = O_MAYBE;
        else if (m->act.kind == FLT_ACT_YEAR) {
            s = o_year_readable(vb, (size_t)vl);
            if (s == O_MAYBE) s = fz_filter_year_readable(vb, (size_t)vl) ? O_YES : O_NO;
        }
        if (s == O_NO)
            continue; /* removed; an output pair of that name belongs to a later input pair */
        if (!same) {
            if (s == O_MAYBE) continue;
            fz_dump("pair", ip->p, ip->len);
            fail_io(rs, doc, n, "transformed pair missing");
        }
        if (!vutf8) {
            j++;
            continue;
        }
        const struct pair *op = &OUTP[j];
        bool oeq = op->namelen < op->len;
        long ol =
            pdecode(oeq ? op->p + op->namelen + 1 : "", oeq ? op->len - op->namelen - 1 : 0, ob);
        if (ol < 0) fail_io(rs, doc, n, "transformed value is not percent-encoded");
        const char *w = o_check_transform(&m->act, (const uint8_t *)FZ_HMAC_KEY, FZ_HMAC_KEYLEN, vb,
                                          (size_t)vl, ob, (size_t)ol);
        if (w) {
            if (s == O_MAYBE) continue;
            fz_dump("pair", ip->p, ip->len);
            fail_io(rs, doc, n, w);
        }
        j++;
    }
    if (j != no) fail_io(rs, doc, n, "output has a pair the rules do not allow");
    free(nb);
    free(vb);
    free(ob);
}

/* Whether the body is made of plain characters, with every escape
 * well-formed and every decoded name and value valid UTF-8. */
static bool surely_valid(const char *doc, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!plain_char((unsigned char)doc[i])) return false;
    size_t ni = split_pairs(doc, n, IN);
    if (ni >= MAXPAIRS) return false;
    char *b = malloc(n + 1);
    if (!b) abort();
    bool ok = true;
    for (size_t i = 0; i < ni && ok; i++) {
        const struct pair *ip = &IN[i];
        long nl = pdecode(ip->p, ip->namelen, b);
        ok = nl >= 0 && ou_valid(b, (size_t)nl);
        if (ok && ip->namelen < ip->len) {
            long vl = pdecode(ip->p + ip->namelen + 1, ip->len - ip->namelen - 1, b);
            ok = vl >= 0 && ou_valid(b, (size_t)vl);
        }
    }
    free(b);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned sel = data[0];
    const struct rset *rs = &sets[sel % NSETS];
    if (!rs->usable) return 0;
    bool try_reject = (sel >> 3) & 1;
    bool null_report = (sel >> 4) & 1;
    const char *doc = (const char *)data + 3;
    size_t n = size - 3;
    size_t split = (((size_t)data[1] << 8) | data[2]) % (n + 1);

    int rc = run(rs, false, doc, n, WHOLE, 0, &OUT_A, &REP_A);
    if (rc == 0) {
        check_output(rs, doc, n);
        fz_check_report(&REP_A, "body");
    } else if (surely_valid(doc, n)) {
        fz_dump("input", doc, n);
        fz_fail("rule set %s: refused a well-formed body: %d %s", rs->name, rc, flt_strerror(rc));
    }

    for (int m = SPLIT; m <= BYTES; m++) {
        if (m == BYTES && n > 4096) break;
        int rc2 = run(rs, false, doc, n, (enum mode)m, split, &OUT_B, null_report ? NULL : &REP_B);
        if (rc2 != rc ||
            (rc == 0 && (OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len)))) {
            fz_dump("input", doc, n);
            fz_dump("whole output", OUT_A.p, OUT_A.len);
            fz_dump("chunked output", OUT_B.p, OUT_B.len);
            fz_fail("rule set %s: %s (split %zu) gives %d, whole gives %d", rs->name,
                    m == SPLIT ? "split" : "1-byte chunks", split, rc2, rc);
        }
    }

    if (try_reject) {
        uint32_t removed = REP_A.removed.total;
        int rc3 = run(rs, true, doc, n, WHOLE, 0, &OUT_B, &REP_B);
        if (rc3 == 0 && (rc != 0 || OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len)))
            fail_io(rs, doc, n, "reject_unlisted accepted with another result");
        if (rc == 0 && removed == 0 && rc3 != 0)
            fail_io(rs, doc, n, "reject_unlisted refused a body nothing is removed from");
        if (rc3 == FLT_E_UNLISTED) {
            const char *up = flt_form_unlisted_path(F);
            if (!up) fz_fail("rule set %s: no unlisted path", rs->name);
        }
    }
    return 0;
}
