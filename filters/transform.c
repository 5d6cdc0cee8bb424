/*
 * Value transforms of SPEC 4.1: hash (HMAC-SHA-256), mask, truncate, year.
 * Each works on the unescaped value as a stream of bytes (valid UTF-8,
 * checked by the caller) and emits unescaped UTF-8 through |emit|.
 *
 * HMAC uses OpenSSL's low-level SHA-256 on purpose: its context is a plain
 * struct, so the precomputed inner/outer pad states are copied per value
 * with no allocation (EVP_MAC contexts allocate on every re-init).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

#include "filters/filters.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(((struct flt_hmac_key *)0)->ipad_state),
               "SHA256_CTX must fit the opaque state");

enum { SHA256_BLOCK = 64 };

void flt_hmac_key_init(struct flt_hmac_key *k, const uint8_t *key, size_t len)
{
    uint8_t block[SHA256_BLOCK] = {0};
    if (len > SHA256_BLOCK)
        SHA256(key, len, block);
    else if (len)
        memcpy(block, key, len);
    uint8_t pad[SHA256_BLOCK];
    SHA256_CTX c;
    for (int i = 0; i < SHA256_BLOCK; i++)
        pad[i] = block[i] ^ 0x36;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof pad);
    memcpy(k->ipad_state, &c, sizeof c);
    for (int i = 0; i < SHA256_BLOCK; i++)
        pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof pad);
    memcpy(k->opad_state, &c, sizeof c);
    k->set = true;
    /* key material must not linger on the stack */
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(&c, sizeof c);
}

static void hmac_finish(const struct flt_hmac_key *k, SHA256_CTX *inner, char hex[64])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256_CTX outer;
    SHA256_Final(md, inner);
    memcpy(&outer, k->opad_state, sizeof outer);
    SHA256_Update(&outer, md, sizeof md);
    SHA256_Final(md, &outer);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
}

void flt_hmac_hex(const struct flt_hmac_key *k, const char *in, size_t len, char hex[64])
{
    SHA256_CTX c;
    memcpy(&c, k->ipad_state, sizeof c);
    SHA256_Update(&c, in, len);
    hmac_finish(k, &c, hex);
}

/* ---------------------------------------------------------------- year */

enum year_state {
    Y_YEAR,
    Y_DASH1,
    Y_MONTH,
    Y_DASH2,
    Y_DAY,
    Y_AFTER_DATE,
    Y_HOUR,
    Y_COLON1,
    Y_MIN,
    Y_AFTER_MIN,
    Y_SEC,
    Y_AFTER_SEC,
    Y_FRAC_FIRST,
    Y_FRAC,
    Y_AFTER_Z,
    Y_OFF_HOUR,
    Y_OFF_COLON,
    Y_OFF_MIN,
    Y_DONE,
};

/* SPEC 4.4: a date alone, or a date-time with its zone (`Z` or `±HH:MM`). */
static bool year_end_ok(uint8_t s)
{
    return s == Y_AFTER_DATE || s == Y_AFTER_Z || s == Y_DONE;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

/* A digit of a fixed-width field: accumulates, and on the last digit checks
 * the range and moves to |next|. */
static bool year_field(struct flt_xform *x, unsigned char c, unsigned width, unsigned lo,
                       unsigned hi, uint8_t next)
{
    if (c < '0' || c > '9') return false;
    x->y_num = (uint16_t)(x->y_num * 10 + (c - '0'));
    if (++x->y_digits < width) return true;
    unsigned v = x->y_num;
    x->y_num = 0;
    x->y_digits = 0;
    if (v < lo || v > hi) return false;
    x->y_state = next;
    return true;
}

/* Zone designator or end-of-time character after minutes/seconds/fraction. */
static bool year_zone(struct flt_xform *x, unsigned char c)
{
    if (c == 'Z')
        x->y_state = Y_AFTER_Z;
    else if (c == '+' || c == '-')
        x->y_state = Y_OFF_HOUR;
    else
        return false;
    return true;
}

static bool year_step(struct flt_xform *x, unsigned char c)
{
    switch ((enum year_state)x->y_state) {
    case Y_YEAR:
        if (c < '0' || c > '9') return false;
        x->y_text[x->y_digits] = (char)c;
        x->y_num = (uint16_t)(x->y_num * 10 + (c - '0'));
        if (++x->y_digits == 4) {
            x->y_year = x->y_num;
            x->y_num = 0;
            x->y_digits = 0;
            x->y_state = Y_DASH1;
        }
        return true;
    case Y_DASH1: x->y_state = Y_MONTH; return c == '-';
    case Y_MONTH:
        if (x->y_digits == 1) x->y_month = (uint8_t)(x->y_num * 10 + (c - '0'));
        return year_field(x, c, 2, 1, 12, Y_DASH2);
    case Y_DASH2: x->y_state = Y_DAY; return c == '-';
    case Y_DAY: {
        if (c < '0' || c > '9') return false;
        x->y_num = (uint16_t)(x->y_num * 10 + (c - '0'));
        if (++x->y_digits < 2) return true;
        unsigned d = x->y_num;
        x->y_num = 0;
        x->y_digits = 0;
        if (d < 1 || d > days_in_month(x->y_year, x->y_month)) return false;
        x->y_state = Y_AFTER_DATE;
        return true;
    }
    case Y_AFTER_DATE: x->y_state = Y_HOUR; return c == 'T';
    case Y_HOUR: return year_field(x, c, 2, 0, 23, Y_COLON1);
    case Y_COLON1: x->y_state = Y_MIN; return c == ':';
    case Y_MIN: return year_field(x, c, 2, 0, 59, Y_AFTER_MIN);
    case Y_AFTER_MIN:
        if (c == ':') {
            x->y_state = Y_SEC;
            return true;
        }
        return year_zone(x, c);
    case Y_SEC: return year_field(x, c, 2, 0, 60, Y_AFTER_SEC);
    case Y_AFTER_SEC:
        if (c == '.') {
            x->y_state = Y_FRAC_FIRST;
            return true;
        }
        return year_zone(x, c);
    case Y_FRAC_FIRST: x->y_state = Y_FRAC; return c >= '0' && c <= '9';
    case Y_FRAC:
        if (c >= '0' && c <= '9') return true;
        return year_zone(x, c);
    case Y_AFTER_Z: return false;
    case Y_OFF_HOUR: return year_field(x, c, 2, 0, 23, Y_OFF_COLON);
    case Y_OFF_COLON: x->y_state = Y_OFF_MIN; return c == ':';
    case Y_OFF_MIN: return year_field(x, c, 2, 0, 59, Y_DONE);
    case Y_DONE: return false;
    }
    return false;
}

/* ------------------------------------------------------------ streaming */

void flt_xform_begin(struct flt_xform *x, const struct flt_action *act,
                     const struct flt_hmac_key *key)
{
    x->act = act;
    x->key = key;
    x->cps = 0;
    x->failed = false;
    x->ring_count = x->ring_head = 0;
    x->cp_len = x->cp_need = 0;
    x->y_state = Y_YEAR;
    x->y_digits = 0;
    x->y_num = 0;
    x->y_year = 0;
    x->y_month = 0;
    if (act->kind == FLT_ACT_HASH) {
        /* without a key a hash cannot be computed: the value is unreadable
         * (contracts refuse `hash` without hmac_key_file; this is defence) */
        if (!key || !key->set)
            x->failed = true;
        else
            memcpy(x->sha, key->ipad_state, sizeof(SHA256_CTX));
    }
}

static unsigned utf8_len(unsigned char lead)
{
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

static int emit_star(flt_sink_fn emit, void *ud)
{
    return emit(ud, "*", 1);
}

/* keep_last: a complete code point enters the window; the oldest one
 * leaves it as '*'. */
static int ring_push(struct flt_xform *x, const char *cp, unsigned len, flt_sink_fn emit, void *ud)
{
    uint32_t n = x->act->n;
    if (n == 0) return emit_star(emit, ud);
    uint32_t slot;
    if (x->ring_count == n) {
        int rc = emit_star(emit, ud);
        if (rc) return rc;
        slot = x->ring_head;
        x->ring_head = (x->ring_head + 1) % n;
    } else {
        slot = (x->ring_head + x->ring_count) % n;
        x->ring_count++;
    }
    memset(x->ring + 4 * slot, 0, 4);
    memcpy(x->ring + 4 * slot, cp, len);
    return 0;
}

static int feed_mask_last(struct flt_xform *x, const char *p, size_t n, flt_sink_fn emit, void *ud)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (x->cp_need == 0) {
            x->cp_len = 0;
            x->cp_need = (uint8_t)utf8_len(c);
        }
        x->cp_buf[x->cp_len++] = (char)c;
        if (--x->cp_need == 0) {
            int rc = ring_push(x, x->cp_buf, x->cp_len, emit, ud);
            if (rc) return rc;
        }
    }
    return 0;
}

/* keep_first / truncate: bytes of the first |n| code points pass; for mask
 * every later code point becomes one '*'. */
static int feed_prefix(struct flt_xform *x, const char *p, size_t n, bool star, flt_sink_fn emit,
                       void *ud)
{
    uint32_t keep = x->act->n;
    size_t run = 0, i = 0;
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        bool lead = (c & 0xC0) != 0x80;
        if (lead) x->cps++;
        if (x->cps <= keep) {
            run++;
            continue;
        }
        if (run) {
            int rc = emit(ud, p + i - run, run);
            if (rc) return rc;
            run = 0;
        }
        if (lead && star) {
            int rc = emit_star(emit, ud);
            if (rc) return rc;
        }
    }
    return run ? emit(ud, p + i - run, run) : 0;
}

int flt_xform_feed(struct flt_xform *x, const char *p, size_t n, flt_sink_fn emit, void *ud)
{
    switch (x->act->kind) {
    case FLT_ACT_HASH:
        if (!x->failed) SHA256_Update((SHA256_CTX *)(void *)x->sha, p, n);
        return 0;
    case FLT_ACT_MASK:
        if (x->act->mask_keep_last) return feed_mask_last(x, p, n, emit, ud);
        return feed_prefix(x, p, n, true, emit, ud);
    case FLT_ACT_TRUNCATE: return feed_prefix(x, p, n, false, emit, ud);
    case FLT_ACT_YEAR:
        for (size_t i = 0; i < n && !x->failed; i++)
            if (!year_step(x, (unsigned char)p[i])) x->failed = true;
        return 0;
    case FLT_ACT_NONE:
    case FLT_ACT_KEEP: break;
    }
    return 0;
}

int flt_xform_end(struct flt_xform *x, flt_sink_fn emit, void *ud)
{
    switch (x->act->kind) {
    case FLT_ACT_HASH: {
        if (x->failed) return 1;
        char hex[64];
        hmac_finish(x->key, (SHA256_CTX *)(void *)x->sha, hex);
        return emit(ud, hex, sizeof hex);
    }
    case FLT_ACT_MASK:
        if (x->act->mask_keep_last) {
            for (uint32_t i = 0; i < x->ring_count; i++) {
                const char *cp = x->ring + 4 * ((x->ring_head + i) % x->act->n);
                int rc = emit(ud, cp, utf8_len((unsigned char)cp[0]));
                if (rc) return rc;
            }
        }
        return 0;
    case FLT_ACT_YEAR:
        if (x->failed || !year_end_ok(x->y_state)) return 1;
        return emit(ud, x->y_text, 4);
    case FLT_ACT_TRUNCATE:
    case FLT_ACT_NONE:
    case FLT_ACT_KEEP: break;
    }
    return 0;
}
