/*
 * The fast lanes of filters/json.c (fast_loop(): the FILTER loop, the keep
 * and skip lanes, the 16-byte string and whitespace scans) against its
 * byte-level general path. Fed in 1-byte chunks, every token goes through
 * the general path; fed whole, in strides or split in two, through the fast
 * lanes wherever the token lies whole in the chunk. Output, report and error
 * (code and offset) must not depend on that, and must be what the document
 * says.
 *
 * Every chunk is copied into its own heap block of exactly its size, so a
 * block scan that reads past the chunk's end is an ASan error here.
 *
 * Cases: a special byte sequence (quote, backslash escapes, control bytes,
 * DEL, valid and invalid UTF-8) at every offset of strings of 0 to 40
 * bytes (so at every offset of a 16-byte block, and straddling blocks and
 * chunk ends), as a kept value, a removed value, a member name in a
 * filtered, kept and removed object, and inside kept and removed
 * containers; whitespace runs of every length in kept and removed
 * containers.
 */
#include "jt.h"

#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- running */

struct lrun {
    int rc;
    uint64_t off;
    struct jt_buf out;
    struct jt_buf rep;
};

/* Feeds |doc| in chunks of the sizes |sizes| cycles through (0 ends the
 * list; a size of SIZE_MAX is "the rest"), each chunk copied to a block of
 * exactly its size. */
static void lrun(struct flt_json *f, const struct flt_json_config *cfg, const char *doc, size_t len,
                 const size_t *sizes, struct lrun *r)
{
    static struct flt_report rep;
    memset(r, 0, sizeof *r);
    flt_report_init(&rep);
    jt_buf_put(&r->out, "", 0);
    flt_json_reset(f, cfg, jt_buf_sink, &r->out, &rep);
    int rc = 0;
    size_t pos = 0, k = 0;
    while (pos < len && rc == 0) {
        size_t n = sizes[k];
        if (sizes[k + 1] != 0)
            k++;
        else
            k = 0;
        if (n > len - pos) n = len - pos;
        char *chunk = malloc(n);
        cr_assert(chunk != NULL);
        memcpy(chunk, doc + pos, n);
        rc = flt_json_feed(f, chunk, n);
        free(chunk);
        pos += n;
    }
    if (rc == 0) rc = flt_json_finish(f);
    r->rc = rc;
    r->off = rc ? flt_json_error_offset(f) : 0;
    jt_report_text(&rep, &r->rep);
}

static void lrun_free(struct lrun *r)
{
    jt_buf_free(&r->out);
    jt_buf_free(&r->rep);
}

static bool lsame(const struct lrun *a, const struct lrun *b)
{
    if (a->rc != b->rc || a->off != b->off) return false;
    if (a->rc == 0 && (a->out.len != b->out.len || memcmp(a->out.p, b->out.p, a->out.len) != 0))
        return false;
    return a->rep.len == b->rep.len && memcmp(a->rep.p, b->rep.p, a->rep.len) == 0;
}

static const size_t CH_WHOLE[] = {SIZE_MAX, 0};
static const size_t CH_BYTES[] = {1, 0};
static const size_t CH_3[] = {3, 0};
static const size_t CH_16[] = {16, 0};
static const size_t CH_17[] = {17, 0};
static const size_t CH_MIX[] = {5, 33, 2, 16, 64, 1, 0};

/* Runs |doc| whole (the reference for |want_rc| / |want_out|) and under the
 * other chunkings, and with |every_split| split in two at every point.
 * Returns the number of differences (logged). */
static size_t check_doc(struct flt_json *f, const struct flt_json_config *cfg, const char *doc,
                        size_t len, int want_rc, const char *want_out, bool every_split)
{
    size_t bad = 0;
    struct lrun ref;
    lrun(f, cfg, doc, len, CH_WHOLE, &ref);
    if (ref.rc != want_rc || (want_rc == 0 && want_out && strcmp(ref.out.p, want_out) != 0)) {
        cr_log_error("doc %s: rc %d (%s) output %s, want rc %d output %s", jt_show(doc, len),
                     ref.rc, flt_strerror(ref.rc), jt_show(ref.out.p, ref.out.len), want_rc,
                     want_out ? want_out : "(any)");
        bad++;
    }
    const size_t *chs[] = {CH_BYTES, CH_3, CH_16, CH_17, CH_MIX};
    for (size_t i = 0; i < sizeof chs / sizeof chs[0]; i++) {
        struct lrun r;
        lrun(f, cfg, doc, len, chs[i], &r);
        if (!lsame(&ref, &r)) {
            cr_log_error("doc %s: chunking %zu differs: rc %d at %llu vs whole rc %d at %llu",
                         jt_show(doc, len), i, r.rc, (unsigned long long)r.off, ref.rc,
                         (unsigned long long)ref.off);
            bad++;
        }
        lrun_free(&r);
    }
    for (size_t split = 1; every_split && split < len; split++) {
        size_t sizes[] = {split, SIZE_MAX, 0};
        struct lrun r;
        lrun(f, cfg, doc, len, sizes, &r);
        if (!lsame(&ref, &r)) {
            cr_log_error("doc %s: split at %zu differs: rc %d at %llu vs whole rc %d at %llu",
                         jt_show(doc, len), split, r.rc, (unsigned long long)r.off, ref.rc,
                         (unsigned long long)ref.off);
            bad++;
        }
        lrun_free(&r);
    }
    lrun_free(&ref);
    return bad;
}

/* ------------------------------------------------------ special strings */

struct special {
    const char *bytes;
    size_t len;
    int rc;           /* 0: valid inside a string; else the error */
    size_t bad_at;    /* offset of the offending byte in |bytes| */
    const char *name; /* for messages */
};

#define SP(lit, rc, at, name)                                                                      \
    {                                                                                              \
        lit, sizeof(lit) - 1, rc, at, name                                                         \
    }

static const struct special specials[] = {
    SP("", 0, 0, "nothing"),
    SP("\\\"", 0, 0, "escaped quote"),
    SP("\\\\", 0, 0, "escaped backslash"),
    SP("\\n", 0, 0, "escape n"),
    SP("\\u00e9", 0, 0, "escape u"),
    SP("\\ud83d\\ude00", 0, 0, "surrogate pair"),
    SP("\\x", FLT_E_SYNTAX, 1, "bad escape"),
    SP("\\ud800x", FLT_E_UTF8, 6, "lone high surrogate"),
    SP("\x01", FLT_E_SYNTAX, 0, "control 01"),
    SP("\x1f", FLT_E_SYNTAX, 0, "control 1f"),
    SP("\t", FLT_E_SYNTAX, 0, "raw tab"),
    SP("\x7f", 0, 0, "DEL"),
    SP(" ", 0, 0, "space"),
    SP("\xc3\xa9", 0, 0, "2-byte"),
    SP("\xe2\x82\xac", 0, 0, "3-byte"),
    SP("\xf0\x9f\x98\x80", 0, 0, "4-byte"),
    SP("\x80", FLT_E_UTF8, 0, "lone continuation"),
    SP("\xc3x", FLT_E_UTF8, 1, "cut 2-byte"),
    SP("\xc0\x80", FLT_E_UTF8, 0, "overlong"),
    SP("\xed\xa0\x80", FLT_E_UTF8, 1, "encoded surrogate"),
    SP("\xf4\x90\x80\x80", FLT_E_UTF8, 1, "above U+10FFFF"),
    SP("\xff", FLT_E_UTF8, 0, "ff"),
};
#define NSPECIALS (sizeof specials / sizeof specials[0])

/* A JSON string body: |len| bytes of letters with |sp| at |pos|. */
static size_t make_body(char *dst, size_t len, size_t pos, const struct special *sp)
{
    size_t w = 0;
    for (size_t i = 0; i < pos; i++)
        dst[w++] = (char)('a' + i % 26);
    memcpy(dst + w, sp->bytes, sp->len);
    w += sp->len;
    for (size_t i = pos; i < len; i++)
        dst[w++] = (char)('A' + i % 26);
    return w;
}

/* Where the string sits in the document, and what comes out. */
enum ctx {
    C_KEPT_VALUE,    /* {"k":"S","r":1}                  -> {"k":"S"} */
    C_REMOVED_VALUE, /* {"r":"S","k":1}                  -> {"k":1} */
    C_FILTER_NAME,   /* {"S":1,"k":2}                    -> {"k":2} */
    C_KEEP_CONT,     /* {"k":{"S":["S",1]},"r":0}        -> {"k":{"S":["S",1]}} */
    C_SKIP_CONT,     /* {"r":{"S":["S",1]},"k":0}        -> {"k":0} */
    C_ELEMENTS,      /* {"a":["S","S"],"k":["S"]}        -> {"k":["S"]} */
    NCTX
};

static const struct jt_rule lane_rules[] = {JT_KEEP("k"), JT_END};

static size_t make_doc(char *dst, enum ctx c, const char *s, size_t slen, char *want, int pad)
{
    size_t w = 0;
    size_t v = 0;
#define PUT(lit)                                                                                   \
    do {                                                                                           \
        memcpy(dst + w, lit, sizeof(lit) - 1);                                                     \
        w += sizeof(lit) - 1;                                                                      \
    } while (0)
#define PUTS()                                                                                     \
    do {                                                                                           \
        dst[w++] = '"';                                                                            \
        memcpy(dst + w, s, slen);                                                                  \
        w += slen;                                                                                 \
        dst[w++] = '"';                                                                            \
    } while (0)
#define WANT(lit)                                                                                  \
    do {                                                                                           \
        memcpy(want + v, lit, sizeof(lit) - 1);                                                    \
        v += sizeof(lit) - 1;                                                                      \
    } while (0)
#define WANTS()                                                                                    \
    do {                                                                                           \
        want[v++] = '"';                                                                           \
        memcpy(want + v, s, slen);                                                                 \
        v += slen;                                                                                 \
        want[v++] = '"';                                                                           \
    } while (0)
    /* a little padding in front moves the string against the chunk grid */
    for (int i = 0; i < pad; i++)
        dst[w++] = ' ';
    switch (c) {
    case C_KEPT_VALUE:
        PUT("{\"k\":");
        PUTS();
        PUT(",\"r\":1}");
        WANT("{\"k\":");
        WANTS();
        WANT("}");
        break;
    case C_REMOVED_VALUE:
        PUT("{\"r\":");
        PUTS();
        PUT(",\"k\":1}");
        WANT("{\"k\":1}");
        break;
    case C_FILTER_NAME:
        PUT("{");
        PUTS();
        PUT(":1,\"k\":2}");
        WANT("{\"k\":2}");
        break;
    case C_KEEP_CONT:
        PUT("{\"k\":{");
        PUTS();
        PUT(":[");
        PUTS();
        PUT(",1]},\"r\":0}");
        WANT("{\"k\":{");
        WANTS();
        WANT(":[");
        WANTS();
        WANT(",1]}}");
        break;
    case C_SKIP_CONT:
        PUT("{\"r\":{");
        PUTS();
        PUT(":[");
        PUTS();
        PUT(",1]},\"k\":0}");
        WANT("{\"k\":0}");
        break;
    case C_ELEMENTS:
        PUT("{\"a\":[");
        PUTS();
        PUT(",");
        PUTS();
        PUT("],\"k\":[");
        PUTS();
        PUT("]}");
        WANT("{\"k\":[");
        WANTS();
        WANT("]}");
        break;
    case NCTX: break;
    }
    want[v] = '\0';
    return w;
#undef PUT
#undef PUTS
#undef WANT
#undef WANTS
}

static size_t strings_at_every_offset(bool every_split)
{
    char err[256];
    struct flt_rules *r = jt_rules(lane_rules, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 16};
    struct flt_json *f = flt_json_new(16);
    cr_assert(f != NULL);
    size_t bad = 0, docs = 0;
    char body[64], doc[512], want[512];
    for (size_t len = 0; len <= 40 && bad < 10; len++) {
        /* with every split: the lengths around one and two 16-byte blocks */
        if (every_split && !(len <= 1 || (len >= 14 && len <= 18) || (len >= 30 && len <= 34)))
            continue;
        for (size_t pos = 0; pos <= len && bad < 10; pos++) {
            for (size_t k = 0; k < NSPECIALS && bad < 10; k++) {
                const struct special *sp = &specials[k];
                if (sp->len == 0 && pos > 0) continue;
                size_t blen = make_body(body, len, pos, sp);
                for (int c = 0; c < NCTX && bad < 10; c++) {
                    int pad = (int)((len + pos + (size_t)c) % 3);
                    size_t n = make_doc(doc, (enum ctx)c, body, blen, want, pad);
                    size_t b = check_doc(f, &cfg, doc, n, sp->rc, want, every_split);
                    if (b == 0 && sp->rc != 0) {
                        /* the error points at the offending byte of the
                         * first copy of the string */
                        static const size_t quote_at[NCTX] = {5, 5, 1, 6, 6, 6};
                        size_t want_off = (size_t)pad + quote_at[c] + 1 + pos + sp->bad_at;
                        struct lrun r1;
                        lrun(f, &cfg, doc, n, CH_WHOLE, &r1);
                        if (r1.off != want_off) {
                            cr_log_error("doc %s: error at %llu, want %zu", jt_show(doc, n),
                                         (unsigned long long)r1.off, want_off);
                            b++;
                        }
                        lrun_free(&r1);
                    }
                    if (b) cr_log_error("  (%s at %zu of %zu, context %d)", sp->name, pos, len, c);
                    bad += b;
                    docs++;
                }
            }
        }
    }
    cr_assert_gt(docs, 1000);
    flt_json_del(f);
    flt_rules_unref(r);
    return bad;
}

Test(lanes, special_bytes_at_every_string_offset)
{
    size_t bad = strings_at_every_offset(false);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}

Test(lanes, special_bytes_around_blocks_every_split)
{
    size_t bad = strings_at_every_offset(true);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}

/* --------------------------------------------------------- whitespace */

/* Whitespace runs of 0 to 40 bytes (all four kinds) around every token of
 * kept and removed containers: the kept one comes out without them. */
Test(lanes, whitespace_runs_in_kept_and_removed_containers)
{
    static const char *const toks[] = {"{", "\"a\"", ":", "[",    "1",      ",", "\"x\"",
                                       ",", "true",  ",", "null", ",",      "{", "}",
                                       ",", "[",     "]", ",",    "-2.5e3", "]", "}"};
    const size_t ntok = sizeof toks / sizeof toks[0];
    char err[256];
    struct flt_rules *r = jt_rules(lane_rules, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 16};
    struct flt_json *f = flt_json_new(16);
    size_t bad = 0;
    static const char wsch[] = " \t\r\n";
    for (size_t wl = 0; wl <= 40 && bad < 10; wl++) {
        for (size_t at = 0; at <= ntok && bad < 10; at++) {
            /* the container with |wl| whitespace bytes before token |at|
             * (at == ntok: after the last) and one space elsewhere when
             * wl is odd */
            struct jt_buf cont = {0}, doc = {0}, want = {0};
            for (size_t i = 0; i <= ntok; i++) {
                if (i == at)
                    for (size_t j = 0; j < wl; j++)
                        jt_buf_putc(&cont, wsch[(j + at) % 4]);
                else if (wl % 2)
                    jt_buf_putc(&cont, ' ');
                if (i < ntok) jt_buf_puts(&cont, toks[i]);
            }
            for (int kept_first = 0; kept_first < 2; kept_first++) {
                doc.len = want.len = 0;
                jt_buf_puts(&doc, "{");
                jt_buf_puts(&doc, kept_first ? "\"k\":" : "\"r\":");
                jt_buf_put(&doc, cont.p, cont.len);
                jt_buf_puts(&doc, ",");
                jt_buf_puts(&doc, kept_first ? "\"r\":" : "\"k\":");
                jt_buf_put(&doc, cont.p, cont.len);
                jt_buf_puts(&doc, "}");
                jt_buf_puts(&want, "{\"k\":");
                jt_strip_ws(cont.p, cont.len, &want);
                jt_buf_puts(&want, "}");
                jt_buf_put(&want, "", 0);
                want.p[want.len] = '\0';
                bad += check_doc(f, &cfg, doc.p, doc.len, 0, want.p, wl == 17 || wl == 1);
            }
            jt_buf_free(&cont);
            jt_buf_free(&doc);
            jt_buf_free(&want);
        }
    }
    flt_json_del(f);
    flt_rules_unref(r);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}

/* Invalid bytes at every position of a removed and a kept container whose
 * tokens are whole in the chunk: the lanes hand them to the general path,
 * which must refuse them at the same offset as when fed byte by byte. */
Test(lanes, invalid_token_at_every_position)
{
    static const char base[] = "{\"k\":{\"a\":[1,-2.5e+3,true,false,null,\"s\",{},[]],\"b\":{}},"
                               "\"r\":{\"a\":[1,-2.5e+3,true,false,null,\"s\",{},[]],\"b\":{}}}";
    static const char subst[] = {'x', ',', ':', ']', '}', '"', '0', '\x01', ' ', '\x80', 'e', '.'};
    char err[256];
    struct flt_rules *r = jt_rules(lane_rules, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 16};
    struct flt_json *f = flt_json_new(16);
    size_t bad = 0;
    char doc[sizeof base];
    for (size_t i = 0; i < sizeof base - 1 && bad < 10; i++) {
        for (size_t k = 0; k < sizeof subst && bad < 10; k++) {
            memcpy(doc, base, sizeof base);
            doc[i] = subst[k];
            struct lrun whole;
            lrun(f, &cfg, doc, sizeof base - 1, CH_WHOLE, &whole);
            /* whatever it is, every chunking agrees */
            bad += check_doc(f, &cfg, doc, sizeof base - 1, whole.rc, NULL, false);
            lrun_free(&whole);
        }
    }
    flt_json_del(f);
    flt_rules_unref(r);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}

/* Transformed strings (mask, truncate, hash, year) with multi-byte code
 * points at every offset: the fast lane feeds the transform whole runs, the
 * general path one byte at a time; the output must be the same. */
Test(lanes, transformed_utf8_at_every_offset)
{
    static const struct jt_rule rules[] = {JT_MASKL("m", 3),
                                           JT_MASKF("f", 2),
                                           JT_TRUNC("t", 5),
                                           JT_HASH("h"),
                                           JT_YEAR("y"),
                                           JT_KEEP("k"),
                                           JT_END};
    static const char *const cps[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\\u00e9",
                                      "\xed\x9f\xbf"};
    char err[256];
    struct flt_rules *r = jt_rules(rules, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 16};
    struct flt_json *f = flt_json_new(16);
    size_t bad = 0;
    for (size_t len = 0; len <= 34 && bad < 10; len++) {
        for (size_t pos = 0; pos <= len && bad < 10; pos++) {
            for (size_t k = 0; k < sizeof cps / sizeof cps[0] && bad < 10; k++) {
                struct jt_buf s = {0}, doc = {0};
                for (size_t i = 0; i < len; i++) {
                    if (i == pos) jt_buf_puts(&s, cps[k]);
                    jt_buf_putc(&s, (char)('a' + i % 26));
                }
                if (pos == len) jt_buf_puts(&s, cps[k]);
                jt_buf_puts(&doc, "{");
                static const char *const names[] = {"m", "f", "t", "h", "y", "k"};
                for (size_t n = 0; n < 6; n++) {
                    jt_buf_puts(&doc, n ? ",\"" : "\"");
                    jt_buf_puts(&doc, names[n]);
                    jt_buf_puts(&doc, "\":\"");
                    jt_buf_put(&doc, s.p, s.len);
                    jt_buf_puts(&doc, "\"");
                }
                jt_buf_puts(&doc, ",\"y2\":\"2024-01-02\"}");
                struct lrun whole;
                lrun(f, &cfg, doc.p, doc.len, CH_WHOLE, &whole);
                if (whole.rc != 0) {
                    cr_log_error("doc %s: rc %d", jt_show(doc.p, doc.len), whole.rc);
                    bad++;
                }
                lrun_free(&whole);
                bad += check_doc(f, &cfg, doc.p, doc.len, 0, NULL, len == 15 || len == 16);
                jt_buf_free(&s);
                jt_buf_free(&doc);
            }
        }
    }
    flt_json_del(f);
    flt_rules_unref(r);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}

/* Numbers of every shape, valid and not, at every offset against the
 * 16-byte block the fast lane classifies them in and against chunk ends. */
Test(lanes, numbers_at_every_offset)
{
    static const struct {
        const char *num;
        bool valid;
    } nums[] = {
        {"0", true},
        {"-0", true},
        {"7", true},
        {"-12", true},
        {"1.5", true},
        {"-0.0e-0", true},
        {"1E-7", true},
        {"2e+22", true},
        {"123456789012345", true},
        {"1234567890123456", true},
        {"12345678901234567890", true},
        {"123456789012345.5", true},
        {"1.234567890123456e10", true},
        {"1.5e123456789012345", true},
        {"0.00000000000000000001", true},
        {"01", false},
        {"-01", false},
        {"00", false},
        {"-", false},
        {"1.", false},
        {"1.e5", false},
        {".5", false},
        {"1e", false},
        {"1e+", false},
        {"1E-x", false},
        {"-a", false},
        {"1.5.5", false},
        {"1e5e5", false},
        {"+1", false},
        {"0x10", false},
        {"1234567890123456.", false},
        {"123456789012345e", false},
    };
    char err[256];
    struct flt_rules *r = jt_rules(lane_rules, err, sizeof err);
    cr_assert(r != NULL, "%s", err);
    struct flt_json_config cfg = {.rules = r, .key = jt_key(), .max_depth = 16};
    struct flt_json *f = flt_json_new(16);
    size_t bad = 0;
    char doc[256], want[256];
    for (size_t k = 0; k < sizeof nums / sizeof nums[0] && bad < 10; k++) {
        for (size_t pad = 0; pad <= 20 && bad < 10; pad++) {
            for (int ctx = 0; ctx < 3 && bad < 10; ctx++) {
                /* ctx 0: a kept member; 1: a removed member; 2: in a kept
                 * and a removed array, last before the closer */
                static const char *const pre[] = {"{\"k\":", "{\"r\":", "{\"r\":[0,"};
                static const char *const mid[] = {",\"r\":1}", ",\"k\":1}", "],\"k\":[1,"};
                static const char *const post[] = {"", "", "]}"};
                int n;
                if (ctx < 2)
                    n = snprintf(doc, sizeof doc, "%*s%s%s%s", (int)pad, "", pre[ctx], nums[k].num,
                                 mid[ctx]);
                else
                    n = snprintf(doc, sizeof doc, "%*s%s%s%s%s%s", (int)pad, "", pre[ctx],
                                 nums[k].num, mid[ctx], nums[k].num, post[ctx]);
                if (ctx == 0)
                    snprintf(want, sizeof want, "{\"k\":%s}", nums[k].num);
                else if (ctx == 1)
                    snprintf(want, sizeof want, "{\"k\":1}");
                else
                    snprintf(want, sizeof want, "{\"k\":[1,%s]}", nums[k].num);
                struct lrun whole;
                lrun(f, &cfg, doc, (size_t)n, CH_WHOLE, &whole);
                int want_rc = nums[k].valid ? 0 : whole.rc;
                if (!nums[k].valid && whole.rc != FLT_E_SYNTAX) {
                    cr_log_error("doc %s: rc %d, want a syntax error", doc, whole.rc);
                    bad++;
                }
                lrun_free(&whole);
                bad += check_doc(f, &cfg, doc, (size_t)n, want_rc, want, pad < 2);
            }
        }
    }
    flt_json_del(f);
    flt_rules_unref(r);
    cr_assert_eq(bad, 0, "%zu differences", bad);
}
