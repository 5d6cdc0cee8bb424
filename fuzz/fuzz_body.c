/*
 * libFuzzer target for the body pipeline (filters/body.c, filters/ndjson.c,
 * SPEC 4.2): content encodings, max_body, and the carrier dispatch.
 *
 * Input: byte 0 = media (bits 0-1: JSON, NDJSON, form, JSON), encoding mode
 * (bits 2-3: identity; gzip or deflate compressed here from the rest of the
 * input; the rest fed as compressed bytes as is), bit 4 a 200-byte max_body,
 * bit 5 the rule set, bit 6 raw deflate / deflate instead of gzip; bytes
 * 1-2: chunk size; the rest: the body.
 *
 * Properties:
 *  1. identity: a body over max_body is refused (body_too_large when fed
 *     whole); otherwise flt_body gives the result and output of the carrier
 *     filter used directly;
 *  2. compressed here (gzip, zlib deflate, raw deflate) and fed in chunks:
 *     the same result and output as the identity body;
 *  3. fuzz bytes fed as gzip/deflate: accepted only when zlib itself decodes
 *     them (gzip: a series of members; deflate: one zlib or raw stream), and
 *     then with the output of the decoded body; never more than max_body + 1
 *     bytes decoded; max_body bounds the compressed bytes too (SPEC 4.2);
 *  4. NDJSON accepted: the output is each line holding more than white
 *     space filtered by flt_json and followed by "\n".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "filters/filters.h"
#include "fuzz/common.h"

struct rset {
    const char *name;
    const char *paths[6];
    struct flt_action acts[6];
    struct flt_rules *fr;
};

static struct rset sets[2] = {
    {"mix",
     {"a", "b.c", "d[]", "e", NULL},
     {{FLT_ACT_KEEP, 0, false},
      {FLT_ACT_HASH, 0, false},
      {FLT_ACT_TRUNCATE, 2, false},
      {FLT_ACT_YEAR, 0, false}},
     NULL},
    {"keep-all", {"$", NULL}, {{FLT_ACT_KEEP, 0, false}}, NULL},
};

static struct flt_body *B;
static struct flt_json *J;
static struct flt_ndjson *ND;
static struct flt_form *FO;
static struct flt_hmac_key KEY;
static struct fz_out OUT_A, OUT_B, OUT_C;
static struct flt_report REP;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    flt_hmac_key_init(&KEY, (const uint8_t *)FZ_HMAC_KEY, sizeof FZ_HMAC_KEY - 1);
    B = flt_body_new(64);
    J = flt_json_new(64);
    ND = flt_ndjson_new(64);
    FO = flt_form_new();
    if (!B || !J || !ND || !FO) abort();
    for (size_t s = 0; s < 2; s++) {
        sets[s].fr = flt_rules_new();
        for (size_t i = 0; sets[s].paths[i]; i++)
            if (flt_rules_add(sets[s].fr, sets[s].paths[i], strlen(sets[s].paths[i]),
                              &sets[s].acts[i], err, sizeof err) != 0)
                fz_fail("rules %s: %s", sets[s].paths[i], err);
        if (flt_rules_compile(sets[s].fr, err, sizeof err) != 0) fz_fail("compile: %s", err);
    }
    return 0;
}

static void out_reset(struct fz_out *o)
{
    if (!o->p) fz_sink(o, "", 0);
    o->len = 0;
}

static bool same_out(const struct fz_out *a, const struct fz_out *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* flt_body over |p|/|n| fed in |chunk|-byte pieces. */
static int run_body(const struct flt_body_config *cfg, const char *p, size_t n, size_t chunk,
                    struct fz_out *o, uint64_t *decoded)
{
    out_reset(o);
    flt_report_init(&REP);
    flt_body_reset(B, cfg, fz_sink, o, &REP);
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k += chunk)
        rc = flt_body_feed(B, p + k, n - k < chunk ? n - k : chunk);
    if (rc == 0) rc = flt_body_finish(B);
    if (rc && flt_body_feed(B, "x", 1) == 0) fz_fail("body: error %d not sticky", rc);
    if (decoded) *decoded = flt_body_decoded_bytes(B);
    return rc;
}

/* The carrier filter used directly on the decoded body. */
static int run_direct(enum flt_media media, const struct flt_json_config *jc, const struct rset *rs,
                      const char *p, size_t n, struct fz_out *o)
{
    out_reset(o);
    int rc;
    if (media == FLT_MEDIA_NDJSON) {
        flt_ndjson_reset(ND, jc, fz_sink, o, NULL);
        rc = flt_ndjson_feed(ND, p, n);
        if (rc == 0) rc = flt_ndjson_finish(ND);
    } else if (media == FLT_MEDIA_FORM) {
        flt_form_reset(FO, rs->fr, &KEY, false, fz_sink, o, NULL);
        rc = flt_form_feed(FO, p, n);
        if (rc == 0) rc = flt_form_finish(FO);
    } else {
        flt_json_reset(J, jc, fz_sink, o, NULL);
        rc = flt_json_feed(J, p, n);
        if (rc == 0) rc = flt_json_finish(J);
    }
    return rc;
}

/* NDJSON by hand: each line with more than space/tab/CR through flt_json. */
static void check_ndjson(const struct flt_json_config *jc, const char *p, size_t n,
                         const struct fz_out *got)
{
    out_reset(&OUT_C);
    struct fz_out one = {0};
    size_t st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '\n') continue;
        bool blank = true;
        for (size_t k = st; k < i; k++)
            if (p[k] != ' ' && p[k] != '\t' && p[k] != '\r') blank = false;
        if (!blank) {
            out_reset(&one);
            flt_json_reset(J, jc, fz_sink, &one, NULL);
            int rc = flt_json_feed(J, p + st, i - st);
            if (rc == 0) rc = flt_json_finish(J);
            if (rc != 0) {
                fz_dump("body", p, n);
                fz_fail("ndjson accepted a body whose line at %zu flt_json refuses (%s)", st,
                        flt_strerror(rc));
            }
            fz_sink(&OUT_C, one.p, one.len);
            fz_sink(&OUT_C, "\n", 1);
        }
        st = i + 1;
    }
    free(one.p);
    if (!same_out(&OUT_C, got)) {
        fz_dump("body", p, n);
        fz_dump("ndjson output", got->p, got->len);
        fz_dump("line by line", OUT_C.p, OUT_C.len);
        fz_fail("ndjson output differs from flt_json line by line");
    }
}

/* Compresses |p|/|n|: windowBits 31 gzip, 15 zlib, -15 raw deflate. */
static char *compress_buf(const char *p, size_t n, int wbits, int level, size_t *outlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    size_t cap = deflateBound(&zs, (uLong)n) + 64;
    char *out = malloc(cap);
    if (!out) abort();
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) abort();
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* zlib's own decoding of fuzz bytes: gzip members in series, or one
 * deflate stream (zlib-wrapped or raw). Returns the decoded bytes, or NULL
 * when zlib refuses them or they decode to more than |limit| bytes. */
static char *decode_ref(const char *p, size_t n, bool gzip, size_t limit, size_t *outlen,
                        bool *too_large)
{
    *too_large = false;
    if (n == 0) {
        /* body.c: an empty body has nothing to decode (a deliberate choice) */
        *outlen = 0;
        char *e = malloc(1);
        if (!e) abort();
        return e;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int wbits = 15 + 16;
    if (!gzip) {
        const unsigned char *u = (const unsigned char *)p;
        bool zlib_hdr = n >= 2 && (u[0] & 0x0f) == 8 && (u[0] >> 4) <= 7 &&
                        ((unsigned)u[0] * 256 + u[1]) % 31 == 0;
        wbits = zlib_hdr ? 15 : -15;
    }
    if (inflateInit2(&zs, wbits) != Z_OK) abort();
    size_t cap = limit + 1, len = 0;
    char *out = malloc(cap + 1);
    if (!out) abort();
    zs.next_in = (Bytef *)(uintptr_t)p;
    zs.avail_in = (uInt)n;
    bool ok = false;
    for (;;) {
        zs.next_out = (Bytef *)out + len;
        zs.avail_out = (uInt)(cap - len);
        int zr = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (len > limit) {
            *too_large = true;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (zs.avail_in == 0) {
                ok = true;
                break;
            }
            if (!gzip || inflateReset(&zs) != Z_OK) break;
            continue;
        }
        if (zr != Z_OK) break; /* data error, or truncated (Z_BUF_ERROR with no input left) */
        if (zs.avail_in == 0 && zs.avail_out > 0) {
            /* all input consumed, stream not ended: truncated */
            zr = inflate(&zs, Z_FINISH);
            (void)zr;
            break;
        }
    }
    inflateEnd(&zs);
    if (!ok) {
        free(out);
        return NULL;
    }
    *outlen = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    unsigned sel = data[0];
    static const enum flt_media medias[4] = {FLT_MEDIA_JSON, FLT_MEDIA_NDJSON, FLT_MEDIA_FORM,
                                             FLT_MEDIA_JSON};
    enum flt_media media = medias[sel & 3];
    unsigned enc = (sel >> 2) & 3;
    uint64_t max_body = (sel >> 4) & 1 ? 200 : 0;
    const struct rset *rs = &sets[(sel >> 5) & 1];
    bool alt = (sel >> 6) & 1;
    size_t chunk = ((((size_t)data[1] << 8) | data[2]) % 4096) + 1;
    const char *doc = (const char *)data + 3;
    size_t n = size - 3;
    uint64_t limit = max_body ? max_body : 8u << 20;

    struct flt_body_config cfg = {
        .media = media,
        .encoding = FLT_ENC_IDENTITY,
        .rules = rs->fr,
        .key = &KEY,
        .max_body = max_body,
        .reject_unlisted = false,
    };
    struct flt_json_config jc = {.rules = rs->fr,
                                 .key = &KEY,
                                 .max_depth = 0,
                                 .reject_unlisted = false,
                                 .report_prefix = "body"};

    if (enc == 3) {
        /* 3. fuzz bytes as compressed input */
        cfg.encoding = alt ? FLT_ENC_DEFLATE : FLT_ENC_GZIP;
        uint64_t decoded;
        int rc = run_body(&cfg, doc, n, chunk, &OUT_A, &decoded);
        if (decoded > limit + 1)
            fz_fail("decoded %llu bytes with max_body %llu", (unsigned long long)decoded,
                    (unsigned long long)limit);
        size_t dl;
        bool too_large;
        char *dec = decode_ref(doc, n, !alt, (size_t)limit, &dl, &too_large);
        if (rc == 0 && n > limit)
            fz_fail("compressed body of %zu bytes over max_body %llu accepted", n,
                    (unsigned long long)limit);
        if (rc == 0 && !dec) {
            fz_dump("compressed input", doc, n);
            fz_fail("%s body accepted although zlib %s it", alt ? "deflate" : "gzip",
                    too_large ? "decodes it to more than max_body" : "refuses");
        }
        if (n > limit) {
            /* refused whatever zlib says */
        } else if (dec && rc != FLT_E_COMPRESSED) {
            cfg.encoding = FLT_ENC_IDENTITY;
            int rc2 = run_body(&cfg, dec, dl, dl ? dl : 1, &OUT_B, NULL);
            if (rc2 != rc || (rc == 0 && !same_out(&OUT_A, &OUT_B))) {
                fz_dump("decoded", dec, dl);
                fz_fail("compressed body gives %d, decoded identity body %d", rc, rc2);
            }
        } else if (dec && rc == FLT_E_COMPRESSED) {
            fz_dump("compressed input", doc, n);
            fz_fail("zlib decodes the %s body, flt_body says corrupt", alt ? "deflate" : "gzip");
        }
        free(dec);
        return 0;
    }

    /* 1. identity, whole and chunked, against the direct filter */
    int rc = run_body(&cfg, doc, n, n ? n : 1, &OUT_A, NULL);
    if (n > limit) {
        if (rc != FLT_E_TOO_LARGE)
            fz_fail("identity body of %zu bytes over max_body %llu: got %d", n,
                    (unsigned long long)limit, rc);
    } else {
        int rd = run_direct(media, &jc, rs, doc, n, &OUT_B);
        if (rd != rc || (rc == 0 && !same_out(&OUT_A, &OUT_B))) {
            fz_dump("body", doc, n);
            fz_fail("flt_body gives %d, the carrier filter directly %d", rc, rd);
        }
        if (rc == 0 && media == FLT_MEDIA_NDJSON) check_ndjson(&jc, doc, n, &OUT_A);
    }
    int rcc = run_body(&cfg, doc, n, chunk, &OUT_B, NULL);
    if ((n > limit && rcc == 0) ||
        (n <= limit && (rcc != rc || (rc == 0 && !same_out(&OUT_A, &OUT_B))))) {
        fz_dump("body", doc, n);
        fz_fail("identity body in %zu-byte chunks gives %d, whole %d", chunk, rcc, rc);
    }

    /* 2. compressed here */
    if (enc == 1 || enc == 2) {
        int wbits = enc == 1 ? 31 : alt ? -15 : 15;
        cfg.encoding = enc == 1 ? FLT_ENC_GZIP : FLT_ENC_DEFLATE;
        size_t cl;
        char *c = compress_buf(doc, n, wbits, (int)(chunk % 10), &cl);
        int rz = run_body(&cfg, c, cl, chunk, &OUT_B, NULL);
        /* SPEC 4.2: max_body bounds the raw (compressed) bytes and the decoded ones */
        bool over = n > limit || cl > limit;
        if (over ? rz == 0 : (rz != rc || (rc == 0 && !same_out(&OUT_A, &OUT_B)))) {
            fz_dump("body", doc, n);
            fz_fail("%s-compressed body (%zu-byte chunks) gives %d, identity %d",
                    enc == 1 ? "gzip"
                    : alt    ? "raw deflate"
                             : "zlib deflate",
                    chunk, rz, rc);
        }
        free(c);
    }
    return 0;
}
