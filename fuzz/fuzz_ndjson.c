/*
 * libFuzzer target for NDJSON / JSON Lines bodies (filters/ndjson.c,
 * SPEC 4.2). fuzz_body compares flt_ndjson with flt_json line by line;
 * this target checks NDJSON against the independent oracle (oracle.c) and
 * shakes the line handling with chunk sizes.
 *
 * Input: byte 0 picks a rule set (bits 0-1), a reject_unlisted run (bit 2),
 * max_depth (bits 3-4: 64, 1, 3, 64), a NULL report for the chunked runs
 * (bit 5); bytes 1-2 the chunk size (1-256); the rest is the body.
 *
 * Properties:
 *  1. fail closed, exactly: accepted if and only if every line (split on
 *     '\n') holding more than space, tab and CR is one valid JSON text
 *     (strict RFC 8259 and UTF-8, nesting <= max_depth);
 *  2. accepted output is one line per such document, each valid JSON
 *     without whitespace and ended by '\n', nothing else;
 *  3. nothing not allowed ever appears: walking each output document along
 *     the rule trie, every member has a rule (named or `*`) or sits below a
 *     rule with an action, every array element a `[]` rule, a transformed
 *     value is a string, a scalar stands only where a rule is (or is the
 *     `null` of a removed scalar root);
 *  4. whole, fuzz-sized chunks and 1-byte chunks: same result and output;
 *  5. reject_unlisted: accepted means the same output; a body nothing is
 *     removed from is accepted;
 *  6. report paths start with "body", each once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "fuzz/common.h"
#include "fuzz/oracle.h"
#include "fuzz/rulesets.h"

static struct rset sets[4] = {
    {"mix",
     {{"a", A_KEEP},
      {"b.c", A_HASH},
      {"d[]", A_TRUNC(2)},
      {"e", A_YEAR},
      {"f.g[].h", A_KEEP},
      {"m", A_MASK_LAST(2)}},
     NULL,
     NULL,
     false},
    {"keep-all", {{"$", A_KEEP}}, NULL, NULL, false},
    {"empty", {{NULL, A_KEEP}}, NULL, NULL, false},
    {"star", {{"*.id", A_KEEP}, {"[].k", A_HASH}}, NULL, NULL, false},
};
#define NSETS (sizeof sets / sizeof sets[0])

static struct flt_ndjson *ND;
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
    ND = flt_ndjson_new(64);
    if (!ND) abort();
    for (size_t s = 0; s < NSETS; s++) {
        struct rset *rs = &sets[s];
        rs->fr = flt_rules_new();
        rs->trie = calloc(1, sizeof *rs->trie);
        if (!rs->fr || !rs->trie) abort();
        for (size_t i = 0; i < 16 && rs->rules[i].path; i++) {
            const struct orule *r = &rs->rules[i];
            if (flt_rules_add(rs->fr, r->path, strlen(r->path), &r->act, err, sizeof err) != 0)
                fz_fail("set %s: flt_rules_add(%s): %s", rs->name, r->path, err);
            if (!otrie_add(rs->trie, r->path, &r->act))
                fz_fail("oracle cannot parse its own path %s", r->path);
        }
        if (flt_rules_compile(rs->fr, err, sizeof err) != 0)
            fz_fail("set %s: compile: %s", rs->name, err);
        rs->usable = true;
    }
    return 0;
}

static int run(const struct flt_json_config *cfg, const char *p, size_t n, size_t chunk,
               struct fz_out *o, struct flt_report *rep)
{
    if (!o->p) fz_sink(o, "", 0);
    o->len = 0;
    if (rep) flt_report_init(rep);
    flt_ndjson_reset(ND, cfg, fz_sink, o, rep);
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k += chunk)
        rc = flt_ndjson_feed(ND, p + k, n - k < chunk ? n - k : chunk);
    if (rc == 0) rc = flt_ndjson_finish(ND);
    if (rc > 0) fz_fail("flt_ndjson_* returned %d (> 0)", rc);
    if (rc && flt_ndjson_feed(ND, "{}", 2) != rc) fz_fail("ndjson: error %d not sticky", rc);
    return rc;
}

static const char *why;

/* Property 3 for value |i| of |d| at trie node |r|. */
static bool allowed(const struct onode *r, const struct ojdoc *d, uint32_t i, bool root)
{
    const struct ojnode *v = oj_node(d, i);
    if (r->has_action) {
        if (r->act.kind != FLT_ACT_KEEP && v->kind != OJ_STR) {
            why = "a transformed value is not a string";
            return false;
        }
        return true;
    }
    if (v->kind == OJ_OBJ) {
        char *nb = NULL;
        for (uint32_t c = v->first; c; c = d->pool[c].next) {
            const struct ojnode *cv = &d->pool[c];
            char *t = realloc(nb, cv->namelen + 1);
            if (!t) abort();
            nb = t;
            size_t nl = oj_unescape(cv->name, cv->namelen, nb);
            const struct onode *cn = otrie_member(r, nb, nl);
            if (!cn) {
                free(nb);
                why = "a member no rule allows";
                return false;
            }
            if (!allowed(cn, d, c, false)) {
                free(nb);
                return false;
            }
        }
        free(nb);
        return true;
    }
    if (v->kind == OJ_ARR) {
        for (uint32_t c = v->first; c; c = d->pool[c].next) {
            if (!r->elem) {
                why = "an array element no rule allows";
                return false;
            }
            if (!allowed(r->elem, d, c, false)) return false;
        }
        return true;
    }
    if (root && v->kind == OJ_LIT && v->rawlen == 4 && memcmp(v->raw, "null", 4) == 0) return true;
    why = "a scalar where no rule is";
    return false;
}

static void fail_doc(const struct rset *rs, const char *p, size_t n, const char *w)
{
    fz_dump("body", p, n);
    fz_dump("output", OUT_A.p, OUT_A.len);
    fz_fail("rule set %s: %s", rs->name, w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned sel = data[0];
    const struct rset *rs = &sets[sel % NSETS];
    bool try_reject = (sel >> 2) & 1;
    static const uint32_t depths[4] = {0, 1, 3, 64};
    uint32_t max_depth = depths[(sel >> 3) & 3];
    bool null_report = (sel >> 5) & 1;
    size_t chunk = ((((size_t)data[1] << 8) | data[2]) % 256) + 1;
    const char *p = (const char *)data + 3;
    size_t n = size - 3;

    struct flt_json_config cfg = {.rules = rs->fr,
                                  .key = &KEY,
                                  .max_depth = max_depth,
                                  .reject_unlisted = false,
                                  .report_prefix = "body"};
    int rc = run(&cfg, p, n, n ? n : 1, &OUT_A, &REP_A);

    /* 1. the oracle's verdict, line by line */
    bool valid = true;
    size_t ndocs = 0;
    for (size_t st = 0; st <= n && valid;) {
        const char *nl = memchr(p + st, '\n', n - st);
        size_t end = nl ? (size_t)(nl - p) : n;
        bool blank = true;
        for (size_t k = st; k < end; k++)
            if (p[k] != ' ' && p[k] != '\t' && p[k] != '\r') blank = false;
        if (!blank) {
            struct ojdoc d;
            valid = oj_parse(&d, p + st, end - st, max_depth ? max_depth : 64, false);
            ojdoc_free(&d);
            ndocs++;
        }
        if (!nl) break;
        st = end + 1;
    }
    if (valid != (rc == 0)) {
        fz_dump("body", p, n);
        fz_fail("rule set %s: max_depth %u: filter %s, oracle says %s (%s)", rs->name, max_depth,
                rc ? "refused" : "accepted", valid ? "valid" : "invalid", flt_strerror(rc));
    }

    /* 2-3. the output, line by line */
    if (rc == 0) {
        size_t lines = 0;
        if (OUT_A.len && OUT_A.p[OUT_A.len - 1] != '\n') fail_doc(rs, p, n, "output not ended");
        for (size_t st = 0; st < OUT_A.len;) {
            const char *nl = memchr(OUT_A.p + st, '\n', OUT_A.len - st);
            size_t end = (size_t)(nl - OUT_A.p);
            struct ojdoc d;
            if (!oj_parse(&d, OUT_A.p + st, end - st, 64, true)) {
                ojdoc_free(&d);
                fail_doc(rs, p, n, "an output line is not JSON without whitespace");
            }
            why = NULL;
            bool ok = allowed(rs->trie, &d, d.root, true);
            ojdoc_free(&d);
            if (!ok) fail_doc(rs, p, n, why);
            lines++;
            st = end + 1;
        }
        if (lines != ndocs) fail_doc(rs, p, n, "output lines != input documents");
        fz_check_report(&REP_A, "body");
    }

    /* 4. chunking invariance */
    for (int k = 0; k < 2; k++) {
        size_t c = k == 0 ? chunk : 1;
        if (c == 1 && k == 0) continue;
        int rc2 = run(&cfg, p, n, c, &OUT_B, null_report ? NULL : &REP_B);
        if (rc2 != rc ||
            (rc == 0 && (OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len) != 0))) {
            fz_dump("chunked output", OUT_B.p, OUT_B.len);
            fz_dump("body", p, n);
            fz_fail("rule set %s: %zu-byte chunks give %d, whole %d", rs->name, c, rc2, rc);
        }
        if (rc == 0 && !null_report && REP_B.removed.total != REP_A.removed.total)
            fz_fail("rule set %s: report totals depend on chunking", rs->name);
    }

    /* 5. reject_unlisted */
    if (try_reject) {
        cfg.reject_unlisted = true;
        int rc3 = run(&cfg, p, n, chunk, &OUT_B, &REP_B);
        if (rc3 == 0 &&
            (rc != 0 || OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len) != 0))
            fail_doc(rs, p, n, "reject_unlisted accepted with another result");
        if (rc == 0 && REP_A.removed.total == 0 && rc3 != 0)
            fail_doc(rs, p, n, "reject_unlisted refused a body nothing is removed from");
        if (rc3 == FLT_E_UNLISTED && strncmp(flt_ndjson_unlisted_path(ND), "body", 4) != 0)
            fail_doc(rs, p, n, "unlisted path lacks the body prefix");
    }
    return 0;
}
