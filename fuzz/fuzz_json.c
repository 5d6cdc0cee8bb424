/*
 * libFuzzer target for the JSON filter (filters/json.c, SPEC 4.1).
 *
 * Input: byte 0 picks a rule set (low 3 bits) and options (reject_unlisted
 * run, max_depth, null report; the top bit forces the baseline SSE2 lanes
 * instead of the x86-64-v3 ones where the CPU has them), bytes 1-2 a split
 * point, the rest is the document.
 *
 * Properties checked, against the independent code in oracle.c:
 *  1. the filter accepts the document exactly when it is valid JSON (strict
 *     RFC 8259, strict UTF-8, no escaped lone surrogate, depth <= max_depth);
 *  2. accepted output is valid JSON without any whitespace;
 *  3. the output is what the rules say: kept values byte-identical, only
 *     allowed members (names byte-identical, in order), transforms correct,
 *     removed array elements dropped, removed root -> {} [] or null;
 *  4. whole / split at a fuzz-chosen point / 1-byte chunks give the same
 *     result, error offset and output;
 *  5. with reject_unlisted: a document nothing is removed from gives the
 *     same output; an accepted one gives the same output as without;
 *  6. report invariants (prefix "body", each path once, <= 64 stored).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"
#include "filters/json_int.h"
#include "fuzz/common.h"
#include "fuzz/oracle.h"
#include "fuzz/rulesets.h"

/* No set mixes a named member and `*` at one level: the oracle does not
 * merge wildcard and named subtrees. */
static struct rset sets[8] = {
    {"keep-all", {{"$", A_KEEP}}, NULL, NULL, false},
    {"empty", {{NULL, A_KEEP}}, NULL, NULL, false},
    {"a+b.c", {{"a", A_KEEP}, {"b.c", A_KEEP}}, NULL, NULL, false},
    {"mix",
     {{"id", A_KEEP},
      {"user.name", A_KEEP},
      {"user.email", A_HASH},
      {"user.phone", A_MASK_LAST(4)},
      {"user.nick", A_MASK_FIRST(2)},
      {"items[].sku", A_KEEP},
      {"items[].note", A_TRUNC(5)},
      {"\"we.ird\\\"[]\"", A_KEEP},
      {"dob", A_YEAR},
      {"meta.*.v", A_KEEP},
      {"tags[]", A_TRUNC(3)},
      {"$.x.y.z", A_KEEP},
      {"m[][].n", A_KEEP}},
     NULL,
     NULL,
     false},
    {"root-array",
     {{"[].g", A_KEEP}, {"[].k.l", A_TRUNC(2)}, {"$[].m[].n", A_YEAR}, {"[].h", A_HASH}},
     NULL,
     NULL,
     false},
    {"star-mask", {{"*", A_MASK_FIRST(1)}}, NULL, NULL, false},
    {"star-nested",
     {{"*.id", A_KEEP}, {"*.sub.*", A_YEAR}, {"*.arr[]", A_MASK_LAST(2)}},
     NULL,
     NULL,
     false},
    {"quoted",
     {{"email", A_KEEP},
      {"\"a\\\"b\"", A_KEEP},
      {"\"x\\\\y\"", A_HASH},
      {"\"\xc3\xa9t\xc3\xa9\"", A_KEEP},
      {"\"$\".\"*\"", A_KEEP},
      {"\"[]\"[]", A_KEEP}},
     NULL,
     NULL,
     false},
};
#define NSETS (sizeof sets / sizeof sets[0])

static struct flt_json *F;
static struct flt_hmac_key KEY;
static struct flt_report REP_A, REP_B;
static struct fz_out OUT_A, OUT_B;

static void setup(void)
{
    char err[256];
    flt_hmac_key_init(&KEY, (const uint8_t *)FZ_HMAC_KEY, FZ_HMAC_KEYLEN);
    F = flt_json_new(64);
    if (!F) abort();
    for (size_t s = 0; s < NSETS; s++) {
        struct rset *rs = &sets[s];
        rs->fr = flt_rules_new();
        rs->trie = calloc(1, sizeof *rs->trie);
        if (!rs->fr || !rs->trie) abort();
        for (size_t i = 0; i < 16 && rs->rules[i].path; i++) {
            const struct orule *r = &rs->rules[i];
            if (flt_rules_add(rs->fr, r->path, strlen(r->path), &r->act, err, sizeof err) != 0) {
                fprintf(stderr, "fuzz_json: set %s: flt_rules_add(%s) refused: %s (skipped)\n",
                        rs->name, r->path, err);
                continue;
            }
            if (!otrie_add(rs->trie, r->path, &r->act))
                fz_fail("oracle cannot parse its own path %s", r->path);
        }
        if (flt_rules_compile(rs->fr, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_json: set %s: compile failed: %s (set unused)\n", rs->name, err);
            continue;
        }
        rs->usable = true;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

enum mode { WHOLE, SPLIT, BYTES };

static int run(const struct flt_json_config *cfg, const char *p, size_t n, enum mode m,
               size_t split, struct fz_out *o, struct flt_report *rep, uint64_t *erroff)
{
    o->len = 0;
    o->calls = 0;
    if (rep) flt_report_init(rep);
    if (!o->p) fz_sink(o, "", 0); /* never a NULL buffer for memcmp */
    o->len = 0;
    flt_json_reset(F, cfg, fz_sink, o, rep);
    int rc = 0;
    switch (m) {
    case WHOLE: rc = flt_json_feed(F, p, n); break;
    case SPLIT:
        rc = flt_json_feed(F, p, split);
        if (rc == 0) rc = flt_json_feed(F, p + split, 0);
        if (rc == 0) rc = flt_json_feed(F, p + split, n - split);
        break;
    case BYTES:
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = flt_json_feed(F, p + i, 1);
        break;
    }
    if (rc == 0) rc = flt_json_finish(F);
    if (rc > 0) fz_fail("flt_json_* returned %d (> 0)", rc);
    *erroff = rc ? flt_json_error_offset(F) : 0;
    if (rc && *erroff > n)
        fz_fail("error offset %llu past the input (%zu bytes)", (unsigned long long)*erroff, n);
    if (rc && flt_json_feed(F, "x", 1) != rc) fz_fail("error %d not sticky", rc);
    return rc;
}

/* ------------------------------------------------------- semantic oracle */

static const char *why;
static const struct rset *cur_set;

static char *unesc(const struct ojnode *v, size_t *len)
{
    char *b = malloc(v->rawlen + 1);
    if (!b) abort();
    if (v->kind == OJ_STR) {
        *len = oj_unescape(v->raw, v->rawlen, b);
    } else {
        memcpy(b, v->raw, v->rawlen);
        *len = v->rawlen;
    }
    return b;
}

static enum otri survives(const struct onode *r, const struct ojdoc *d, uint32_t i)
{
    const struct ojnode *v = oj_node(d, i);
    if (r->has_action) {
        if (r->act.kind == FLT_ACT_KEEP) return O_YES;
        if (v->kind != OJ_STR && v->kind != OJ_NUM) return O_NO;
        if (r->act.kind != FLT_ACT_YEAR) return O_YES;
        size_t len;
        char *b = unesc(v, &len);
        enum otri t = v->kind == OJ_NUM ? O_NO : o_year_readable(b, len);
        if (t == O_MAYBE) t = fz_filter_year_readable(b, len) ? O_YES : O_NO;
        free(b);
        return t;
    }
    if (v->kind == OJ_OBJ && (r->kids || r->any)) return O_YES;
    if (v->kind == OJ_ARR && r->elem) return O_YES;
    return O_NO;
}

static bool check(const struct onode *r, const struct ojdoc *in, uint32_t ii,
                  const struct ojdoc *out, uint32_t oi);

static bool check_transform(const struct onode *r, const struct ojnode *iv, const struct ojnode *ov)
{
    if (ov->kind != OJ_STR) {
        why = "transformed value is not a string";
        return false;
    }
    if (!oj_escapes_minimal(ov->raw, ov->rawlen)) {
        why = "transformed string not minimally escaped";
        return false;
    }
    size_t il, ol;
    char *ib = unesc(iv, &il), *ob = unesc(ov, &ol);
    why = o_check_transform(&r->act, (const uint8_t *)FZ_HMAC_KEY, FZ_HMAC_KEYLEN, ib, il, ob, ol);
    free(ib);
    free(ob);
    return why == NULL;
}

static bool same_name(const struct ojnode *a, const struct ojnode *b)
{
    return a->namelen == b->namelen && memcmp(a->name, b->name, a->namelen) == 0;
}

static bool check(const struct onode *r, const struct ojdoc *in, uint32_t ii,
                  const struct ojdoc *out, uint32_t oi)
{
    const struct ojnode *iv = oj_node(in, ii), *ov = oj_node(out, oi);
    if (r->has_action) {
        if (r->act.kind == FLT_ACT_KEEP) {
            if (!oj_equal_raw(in, ii, out, oi)) {
                why = "kept value not byte-identical";
                return false;
            }
            return true;
        }
        return check_transform(r, iv, ov);
    }
    if (iv->kind != ov->kind) {
        why = "container changed kind";
        return false;
    }
    uint32_t j = ov->first;
    for (uint32_t c = iv->first; c; c = in->pool[c].next) {
        const struct ojnode *cv = &in->pool[c];
        const struct onode *cn;
        bool nul_name = false;
        if (iv->kind == OJ_OBJ) {
            size_t nl;
            char *nb = malloc(cv->namelen + 1);
            if (!nb) abort();
            nl = oj_unescape(cv->name, cv->namelen, nb);
            cn = otrie_member(r, nb, nl);
            nul_name = memchr(nb, 0, nl) != NULL;
            free(nb);
        } else {
            cn = r->elem;
        }
        if (!cn) continue;
        enum otri s = survives(cn, in, c);
        if (s == O_YES && nul_name)
            s = O_MAYBE; /* SPEC 4.4 says NUL never matches for forms; JSON left open */
        if (s == O_NO) continue;
        if (s == O_MAYBE) {
            const char *saved = why;
            if (j && (iv->kind == OJ_ARR || same_name(cv, &out->pool[j])) &&
                check(cn, in, c, out, j))
                j = out->pool[j].next;
            why = saved;
            continue;
        }
        if (!j) {
            why = "allowed member/element missing from the output";
            return false;
        }
        if (iv->kind == OJ_OBJ && !same_name(cv, &out->pool[j])) {
            why = "output member name differs (order, escapes or an unallowed member)";
            return false;
        }
        if (!check(cn, in, c, out, j)) return false;
        j = out->pool[j].next;
    }
    if (j) {
        why = "output has a member/element the rules do not allow";
        return false;
    }
    return true;
}

static void check_root(const struct ojdoc *in, const struct ojdoc *out, const char *doc, size_t n,
                       const struct fz_out *o)
{
    const struct onode *r = cur_set->trie;
    const struct ojnode *iv = oj_node(in, in->root), *ov = oj_node(out, out->root);
    enum otri s = survives(r, in, in->root);
    why = NULL;
    bool ok;
    if (s == O_YES) {
        ok = check(r, in, in->root, out, out->root);
    } else {
        const char *empty = iv->kind == OJ_OBJ ? "{}" : iv->kind == OJ_ARR ? "[]" : "null";
        ok = ov->rawlen == strlen(empty) && memcmp(ov->raw, empty, ov->rawlen) == 0;
        if (!ok && s == O_MAYBE) ok = check(r, in, in->root, out, out->root);
        if (!ok && !why) why = "removed root is not {} [] or null";
    }
    if (!ok) {
        fz_dump("input", doc, n);
        fz_dump("output", o->p, o->len);
        fz_fail("rule set %s: %s", cur_set->name, why);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned sel = data[0];
    struct rset *rs = &sets[sel % NSETS];
    if (!rs->usable) return 0;
    cur_set = rs;
    bool try_reject = (sel >> 3) & 1;
    static const uint32_t depths[4] = {0, 1, 4, 64};
    uint32_t max_depth = depths[(sel >> 4) & 3];
    bool null_report = (sel >> 6) & 1;
    flt__json_set_simd(F, (sel >> 7) & 1 ? FLT__SIMD_BASE : FLT__SIMD_AVX2);
    const char *doc = (const char *)data + 3;
    size_t n = size - 3;
    size_t split = (((size_t)data[1] << 8) | data[2]) % (n + 1);

    struct flt_json_config cfg = {
        .rules = rs->fr,
        .key = &KEY,
        .max_depth = max_depth,
        .reject_unlisted = false,
        .report_prefix = NULL,
    };
    uint64_t off_a, off_b;
    int rc = run(&cfg, doc, n, WHOLE, 0, &OUT_A, &REP_A, &off_a);

    /* 1. accept <=> valid */
    struct ojdoc in;
    bool valid = oj_parse(&in, doc, n, max_depth ? max_depth : 64, false);
    if (valid != (rc == 0)) {
        fz_dump("input", doc, n);
        if (rc == 0)
            fz_fail("rule set %s: filter accepted invalid JSON (max_depth %u)", rs->name,
                    max_depth);
        fz_fail("rule set %s: filter refused valid JSON (max_depth %u): %d %s at %llu", rs->name,
                max_depth, rc, flt_strerror(rc), (unsigned long long)off_a);
    }
    if (rc == 0) {
        /* 2. output is JSON without whitespace; 3. it is what the rules say */
        struct ojdoc out;
        if (!oj_parse(&out, OUT_A.p, OUT_A.len, 64, true)) {
            fz_dump("input", doc, n);
            fz_dump("output", OUT_A.p, OUT_A.len);
            fz_fail("rule set %s: output is not JSON without whitespace", rs->name);
        }
        check_root(&in, &out, doc, n, &OUT_A);
        ojdoc_free(&out);
        fz_check_report(&REP_A, "body");
    }
    ojdoc_free(&in);

    /* 4. chunking invariance */
    for (int m = SPLIT; m <= BYTES; m++) {
        if (m == BYTES && n > 4096) break;
        int rc2 =
            run(&cfg, doc, n, (enum mode)m, split, &OUT_B, null_report ? NULL : &REP_B, &off_b);
        if (rc2 != rc || off_b != off_a ||
            (rc == 0 && (OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len)))) {
            fz_dump("input", doc, n);
            fz_dump("whole output", OUT_A.p, OUT_A.len);
            fz_dump("chunked output", OUT_B.p, OUT_B.len);
            fz_fail("rule set %s: %s (split %zu) gives %d at %llu, whole gives %d at %llu",
                    rs->name, m == SPLIT ? "split" : "1-byte chunks", split, rc2,
                    (unsigned long long)off_b, rc, (unsigned long long)off_a);
        }
        if (rc == 0 && !null_report &&
            (REP_B.removed.total != REP_A.removed.total ||
             REP_B.transformed.total != REP_A.transformed.total))
            fz_fail("rule set %s: report totals depend on chunking", rs->name);
    }

    /* 5. reject_unlisted */
    if (try_reject) {
        uint32_t removed = REP_A.removed.total;
        cfg.reject_unlisted = true;
        int rc3 = run(&cfg, doc, n, WHOLE, 0, &OUT_B, &REP_B, &off_b);
        if (rc == 0 && removed == 0 &&
            (rc3 != 0 || OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len))) {
            fz_dump("input", doc, n);
            fz_fail("rule set %s: reject_unlisted refused (%d) a document nothing is removed from",
                    rs->name, rc3);
        }
        if (rc3 == 0 &&
            (rc != 0 || OUT_B.len != OUT_A.len || memcmp(OUT_A.p, OUT_B.p, OUT_A.len))) {
            fz_dump("input", doc, n);
            fz_fail("rule set %s: reject_unlisted accepted with another result", rs->name);
        }
        if (rc3 == FLT_E_UNLISTED && rc == 0) {
            const char *up = flt_json_unlisted_path(F);
            if (!up || strncmp(up, "body", 4) != 0)
                fz_fail("rule set %s: unlisted path \"%s\" lacks the body prefix", rs->name,
                        up ? up : "(null)");
        }
    }
    return 0;
}
