/*
 * The body pipeline (SPEC 4.2, 4.4): content decoding (identity, gzip,
 * deflate), the max_body limit on decoded bytes, and the carrier filter
 * (JSON, NDJSON or form).
 *
 * Everything is allocated by flt_body_new: the three carrier filters, the
 * inflate state, and the memory zlib asks for (served from a fixed arena,
 * so the inflate window that zlib allocates lazily on first use does not
 * cost a malloc per request either). flt_body_reset only resets.
 *
 * Limits: the raw (compressed) bytes are bounded by max_body as well;
 * decoded bytes are counted before they reach the carrier filter;
 * inflate is never asked for more than max_body + 1 - decoded bytes, so a
 * decompression bomb stops as soon as it passes the limit, using the fixed
 * output buffer only.
 */
#include "filters/filters.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DEFAULT_MAX_BODY ((uint64_t)8 << 20)
#define OUTBUF 16384
/* inflate_state (about 7 KiB in zlib 1.2/1.3) + 32 KiB window, with room. */
#define ZARENA (64 * 1024)

enum { Z_IDLE = 0, Z_HEADER, Z_RUNNING, Z_ENDED };

struct flt_body {
    struct flt_json *json;
    struct flt_ndjson *ndjson;
    struct flt_form *form;
    z_stream zs;
    bool zs_ready;
    struct flt_body_config cfg;
    uint64_t max_body;
    uint64_t decoded;
    uint64_t zbytes; /* compressed bytes received */
    int err;         /* sticky */
    bool finished;
    uint8_t zstate;  /* Z_*: gzip/deflate progress */
    uint8_t hdr_len; /* deflate: bytes kept to tell zlib from raw deflate */
    unsigned char hdr[2];
    /* zlib's memory: a bump arena; freeing the last block gives it back */
    size_t arena_used;
    size_t arena_last;
    _Alignas(16) unsigned char arena[ZARENA];
    char out[OUTBUF];
};

static voidpf arena_alloc(voidpf opaque, uInt items, uInt size)
{
    struct flt_body *b = opaque;
    size_t n = (size_t)items * size;
    size_t at = (b->arena_used + 15) & ~(size_t)15;
    if (size != 0 && n / size != items) return Z_NULL;
    if (n > ZARENA || at > ZARENA - n) return Z_NULL;
    b->arena_last = at;
    b->arena_used = at + n;
    return b->arena + at;
}

static void arena_free(voidpf opaque, voidpf p)
{
    struct flt_body *b = opaque;
    if (p == b->arena + b->arena_last && b->arena_used > 0) {
        b->arena_used = b->arena_last;
    }
}

struct flt_body *flt_body_new(uint32_t max_depth)
{
    struct flt_body *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    b->json = flt_json_new(max_depth);
    b->ndjson = flt_ndjson_new(max_depth);
    b->form = flt_form_new();
    if (b->json == NULL || b->ndjson == NULL || b->form == NULL) goto fail;
    b->zs.zalloc = arena_alloc;
    b->zs.zfree = arena_free;
    b->zs.opaque = b;
    /* 15 + 32: zlib or gzip; the mode is set per body with inflateReset2. */
    if (inflateInit2(&b->zs, 15 + 32) != Z_OK) goto fail;
    b->zs_ready = true;
    b->err = FLT_E_STATE; /* until reset */
    return b;
fail:
    flt_form_del(b->form);
    flt_ndjson_del(b->ndjson);
    if (b->json != NULL) flt_json_del(b->json);
    free(b);
    return NULL;
}

void flt_body_del(struct flt_body *b)
{
    if (b == NULL) return;
    if (b->zs_ready) inflateEnd(&b->zs);
    flt_form_del(b->form);
    flt_ndjson_del(b->ndjson);
    flt_json_del(b->json);
    free(b);
}

void flt_body_prefetch(const struct flt_body *b)
{
    __builtin_prefetch(b, 1);
    __builtin_prefetch((const char *)b + 64, 1);
    __builtin_prefetch(b->out, 1);
}

void flt_body_prefetch_json(const struct flt_body *b)
{
    flt_json_prefetch(b->json);
}

void flt_body_reset(struct flt_body *b, const struct flt_body_config *cfg, flt_sink_fn sink,
                    void *ud, struct flt_report *report)
{
    struct flt_json_config jc;

    b->cfg = *cfg;
    b->max_body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
    b->decoded = 0;
    b->zbytes = 0;
    b->err = 0;
    b->finished = false;
    b->zstate = Z_IDLE;
    b->hdr_len = 0;

    memset(&jc, 0, sizeof jc);
    jc.rules = cfg->rules;
    jc.key = cfg->key;
    jc.max_depth = 0;
    jc.reject_unlisted = cfg->reject_unlisted;
    jc.report_prefix = "body";
    switch (cfg->media) {
    case FLT_MEDIA_JSON: flt_json_reset(b->json, &jc, sink, ud, report); break;
    case FLT_MEDIA_NDJSON: flt_ndjson_reset(b->ndjson, &jc, sink, ud, report); break;
    case FLT_MEDIA_FORM:
        flt_form_reset(b->form, cfg->rules, cfg->key, cfg->reject_unlisted, sink, ud, report);
        break;
    default:
        b->err = FLT_E_MEDIA_TYPE; /* only parsed bodies come here */
        break;
    }
    switch (cfg->encoding) {
    case FLT_ENC_IDENTITY: break;
    case FLT_ENC_GZIP:
        b->zstate = Z_RUNNING;
        if (inflateReset2(&b->zs, 15 + 16) != Z_OK && b->err == 0) b->err = FLT_E_NOMEM;
        break;
    case FLT_ENC_DEFLATE:
        b->zstate = Z_HEADER; /* zlib or raw: decided on the first two bytes */
        break;
    default:
        if (b->err == 0) b->err = FLT_E_ENCODING;
        break;
    }
}

/* Passes decoded bytes to the carrier filter. */
static int inner_feed(struct flt_body *b, const char *p, size_t n)
{
    switch (b->cfg.media) {
    case FLT_MEDIA_JSON: return flt_json_feed(b->json, p, n);
    case FLT_MEDIA_NDJSON: return flt_ndjson_feed(b->ndjson, p, n);
    case FLT_MEDIA_FORM: return flt_form_feed(b->form, p, n);
    default: return FLT_E_MEDIA_TYPE;
    }
}

static int inner_finish(struct flt_body *b)
{
    switch (b->cfg.media) {
    case FLT_MEDIA_JSON: return flt_json_finish(b->json);
    case FLT_MEDIA_NDJSON: return flt_ndjson_finish(b->ndjson);
    case FLT_MEDIA_FORM: return flt_form_finish(b->form);
    default: return FLT_E_MEDIA_TYPE;
    }
}

static int fail(struct flt_body *b, int r)
{
    b->err = r;
    return r;
}

/* RFC 1950 2.2: CM = 8, CINFO <= 7, FCHECK makes CMF*256 + FLG a multiple of 31. */
static bool is_zlib_header(const unsigned char h[2])
{
    return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((unsigned)h[0] * 256 + h[1]) % 31 == 0;
}

/* Runs inflate over |p|/|n|. zlib keeps no pointer into the input after
 * this returns (next_in/avail_in are cleared by the caller). */
static int inflate_step(struct flt_body *b, const unsigned char *p, size_t n)
{
    b->zs.next_in = (Bytef *)(uintptr_t)p;
    b->zs.avail_in = 0;
    while (n > 0 || b->zs.avail_in > 0) {
        uInt chunk = n > (uInt)-1 ? (uInt)-1 : (uInt)n;
        int zr;
        if (b->zs.avail_in == 0) {
            b->zs.avail_in = chunk;
            n -= chunk;
        }
        if (b->zstate == Z_ENDED) {
            /* RFC 1952 2.2: a gzip file is a series of members; deflate has
             * one stream only: anything after it is corrupt. */
            if (b->cfg.encoding != FLT_ENC_GZIP) return FLT_E_COMPRESSED;
            if (inflateReset(&b->zs) != Z_OK) return FLT_E_COMPRESSED;
            b->zstate = Z_RUNNING;
        }
        do {
            uint64_t room = b->max_body - b->decoded; /* + 1: to see one byte too many */
            size_t produced;
            b->zs.next_out = (Bytef *)b->out;
            b->zs.avail_out = room < OUTBUF ? (uInt)room + 1 : OUTBUF;
            produced = b->zs.avail_out;
            zr = inflate(&b->zs, Z_NO_FLUSH);
            produced -= b->zs.avail_out;
            if (zr == Z_MEM_ERROR) return FLT_E_NOMEM;
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                return FLT_E_COMPRESSED; /* Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR */
            if (produced > 0) {
                int r;
                b->decoded += produced;
                if (b->decoded > b->max_body) return FLT_E_TOO_LARGE;
                r = inner_feed(b, b->out, produced);
                if (r < 0) return r;
            }
            if (zr == Z_STREAM_END) {
                b->zstate = Z_ENDED;
                break;
            }
            if (zr == Z_BUF_ERROR) {
                if (b->zs.avail_in > 0 && b->zs.avail_out > 0)
                    return FLT_E_COMPRESSED; /* cannot happen; never spin */
                break;                       /* no progress possible: needs more input */
            }
        } while (b->zs.avail_in > 0 || b->zs.avail_out == 0);
    }
    return 0;
}

static int inflate_run(struct flt_body *b, const unsigned char *p, size_t n)
{
    int r = inflate_step(b, p, n);
    b->zs.next_in = Z_NULL;
    b->zs.avail_in = 0;
    return r;
}

int flt_body_feed(struct flt_body *b, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    int r;

    if (b->err) return b->err;
    if (b->finished) return FLT_E_STATE;
    if (n == 0) return 0;
    if (b->cfg.encoding == FLT_ENC_IDENTITY) {
        if (n > b->max_body - b->decoded) return fail(b, FLT_E_TOO_LARGE);
        b->decoded += n;
        r = inner_feed(b, p, n);
        return r < 0 ? fail(b, r) : 0;
    }
    /* max_body bounds the raw (compressed) bytes too: a body can be all
     * framing (100,000 empty gzip members, say) and decode to almost
     * nothing, yet cost that much to receive and inflate. */
    if (n > b->max_body - b->zbytes) return fail(b, FLT_E_TOO_LARGE);
    b->zbytes += n;
    if (b->zstate == Z_HEADER) {
        /* deflate: zlib-wrapped (RFC 9110 8.4.1.2), or raw deflate as some
         * clients send it; tell them apart by the RFC 1950 header. */
        while (b->hdr_len < 2 && n > 0) {
            b->hdr[b->hdr_len++] = *u++;
            n--;
        }
        if (b->hdr_len < 2) return 0;
        if (inflateReset2(&b->zs, is_zlib_header(b->hdr) ? 15 : -15) != Z_OK)
            return fail(b, FLT_E_NOMEM);
        b->zstate = Z_RUNNING;
        r = inflate_run(b, b->hdr, 2);
        if (r < 0) return fail(b, r);
    }
    r = inflate_run(b, u, n);
    return r < 0 ? fail(b, r) : 0;
}

int flt_body_finish(struct flt_body *b)
{
    int r;
    if (b->err) return b->err;
    if (b->finished) return FLT_E_STATE;
    if (b->zstate == Z_HEADER && b->hdr_len > 0) {
        /* one byte of deflate data cannot be a complete stream */
        return fail(b, FLT_E_COMPRESSED);
    }
    if (b->zstate == Z_RUNNING) {
        /* An empty body (no bytes at all) has nothing to decode; otherwise
         * the stream must have ended. */
        if (b->zbytes > 0) return fail(b, FLT_E_COMPRESSED);
    }
    r = inner_finish(b);
    if (r < 0) return fail(b, r);
    b->finished = true;
    return 0;
}

uint64_t flt_body_decoded_bytes(const struct flt_body *b)
{
    return b->decoded;
}

const char *flt_body_unlisted_path(const struct flt_body *b)
{
    if (b->err != FLT_E_UNLISTED) return "";
    switch (b->cfg.media) {
    case FLT_MEDIA_JSON: return flt_json_unlisted_path(b->json);
    case FLT_MEDIA_NDJSON: return flt_ndjson_unlisted_path(b->ndjson);
    case FLT_MEDIA_FORM: return flt_form_unlisted_path(b->form);
    default: return "";
    }
}
