/*
 * application/x-www-form-urlencoded bodies (SPEC 4.2, 4.4): top-level names
 * only, matched after percent-decoding ('+' is a space) against the route's
 * rules with flt_rules_lookup_top().
 *
 * A resumable byte-at-a-time state machine: any split of the input gives
 * the same output. Memory is fixed at flt_form_new: the raw bytes of the
 * current name are buffered (up to 3 * FLT_NAME_MAX: a name longer than
 * FLT_NAME_MAX decoded bytes cannot match, so it is removed); values are
 * streamed.
 *
 * Output: kept pairs byte-exact; transformed pairs as the name byte-exact,
 * '=', and the transform's result percent-encoded (RFC 3986 unreserved
 * characters left as is); pairs joined by '&' in input order. Empty pairs
 * ("a=1&&b=2") are dropped. Every escape in the body, kept or not, must be
 * well-formed, and every name and value, kept or not, must decode to valid
 * UTF-8 (fail closed: FLT_E_FORM; FLT_E_UTF8 for a value being
 * transformed). A raw ';' anywhere is refused (FLT_E_FORM): some provider
 * parsers split pairs on ';' as well as '&', so "a=1;b=2" would smuggle a
 * pair "b" past a filter that sees one pair "a" (serialisers percent-encode
 * ';', so legitimate bodies never carry one raw).
 */
#include "filters/filters.h"
#include "filters/carriers_int.h"

#include <stdlib.h>
#include <string.h>

enum { ST_NAME = 0, ST_VALUE };
enum { V_SKIP = 0, V_KEEP, V_XFORM };

struct flt_form {
    const struct flt_rules *rules;  /* borrowed */
    const struct flt_hmac_key *key; /* borrowed */
    bool reject_unlisted;
    flt_sink_fn sink;
    void *ud;
    struct flt_report *report;
    int err; /* sticky */
    bool finished;

    /* current pair */
    uint8_t st;    /* ST_NAME / ST_VALUE */
    uint8_t vmode; /* V_*: what happens to the value */
    uint8_t pct;   /* 0; 1 after '%'; 2 after '%X' */
    uint8_t pct_hi;
    bool has_eq;
    bool name_over;       /* decoded name longer than FLT_NAME_MAX: cannot match */
    bool name_nul;        /* decoded name contains NUL: never matches */
    bool hdr_pending;     /* V_XFORM: "[&]name=" not written yet */
    bool any_out;         /* a pair was written: the next one starts with '&' */
    size_t raw_len;       /* raw[0..raw_len) = name as received (valid unless name_over) */
    size_t dec_len;       /* dec[0..dec_len) = decoded name (first FLT_NAME_MAX bytes) */
    struct flt__utf8 nu8; /* decoded name must be UTF-8 */
    struct flt__utf8 u8;  /* decoded value must be UTF-8 */
    struct flt_xform xf;

    char unlisted[FLT_REPORT_PATH_MAX + 1];
    char dec[FLT_NAME_MAX];
    char raw[3 * FLT_NAME_MAX];
};

struct flt_form *flt_form_new(void)
{
    struct flt_form *f = calloc(1, sizeof *f);
    if (f != NULL) f->err = FLT_E_STATE; /* until reset */
    return f;
}

void flt_form_del(struct flt_form *f)
{
    free(f);
}

static void pair_clear(struct flt_form *f)
{
    f->st = ST_NAME;
    f->vmode = V_SKIP;
    f->pct = 0;
    f->has_eq = false;
    f->name_over = false;
    f->name_nul = false;
    f->hdr_pending = false;
    f->raw_len = 0;
    f->dec_len = 0;
    flt__utf8_init(&f->nu8);
    flt__utf8_init(&f->u8);
}

void flt_form_reset(struct flt_form *f, const struct flt_rules *rules,
                    const struct flt_hmac_key *key, bool reject_unlisted, flt_sink_fn sink,
                    void *ud, struct flt_report *report)
{
    f->rules = rules;
    f->key = key;
    f->reject_unlisted = reject_unlisted;
    f->sink = sink;
    f->ud = ud;
    f->report = report;
    f->err = 0;
    f->finished = false;
    f->any_out = false;
    f->unlisted[0] = '\0';
    pair_clear(f);
}

const char *flt_form_unlisted_path(const struct flt_form *f)
{
    return f->unlisted;
}

static int out(struct flt_form *f, const char *p, size_t n)
{
    if (n == 0) return 0;
    if (f->sink(f->ud, p, n) != 0) return FLT_E_SINK;
    return 0;
}

/* Writes "[&]name" and, if |eq|, "=". */
static int out_header(struct flt_form *f, bool eq)
{
    int r = 0;
    if (f->any_out) r = out(f, "&", 1);
    if (r == 0) r = out(f, f->raw, f->raw_len);
    if (r == 0 && eq) r = out(f, "=", 1);
    f->any_out = true;
    return r;
}

/* Emit callback of the transform: percent-encodes its output. */
static int xform_emit(void *ud, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    struct flt_form *f = ud;
    char buf[3 * 128];
    size_t o = 0;
    int r;

    if (f->hdr_pending) {
        f->hdr_pending = false;
        r = out_header(f, true);
        if (r < 0) return r;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '%';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
        if (o > sizeof buf - 3) {
            r = out(f, buf, o);
            if (r < 0) return r;
            o = 0;
        }
    }
    return out(f, buf, o);
}

/* As flt_json: with reject_unlisted, an unlisted pair is not reported as
 * removed (the request is refused); its path is kept for the message. */
static int remove_pair(struct flt_form *f, bool unlisted)
{
    if (unlisted && f->reject_unlisted) {
        flt__path_string(f->unlisted, sizeof f->unlisted, "body", f->dec, f->dec_len);
        return FLT_E_UNLISTED;
    }
    if (f->report != NULL) flt__report_name(&f->report->removed, "body", f->dec, f->dec_len);
    return 0;
}

/* The name is complete: decide what happens to the pair. */
static int decide(struct flt_form *f)
{
    const struct flt_action *act = NULL;

    if (f->nu8.need) return FLT_E_FORM; /* name ends inside a UTF-8 sequence */

    if (!f->name_over && !f->name_nul && f->rules != NULL)
        act = flt_rules_lookup_top(f->rules, f->dec, f->dec_len);
    if (act == NULL || act->kind == FLT_ACT_NONE) {
        f->vmode = V_SKIP;
        return remove_pair(f, true);
    }
    if (act->kind == FLT_ACT_KEEP) {
        f->vmode = V_KEEP;
        return out_header(f, f->has_eq);
    }
    if (act->kind == FLT_ACT_HASH && (f->key == NULL || !f->key->set))
        return FLT_E_STATE; /* contracts refuse hash without hmac_key_file */
    f->vmode = V_XFORM;
    f->hdr_pending = true;
    flt__utf8_init(&f->u8);
    flt_xform_begin(&f->xf, act, f->key);
    return 0;
}

/* The pair is complete (its value ended). */
static int end_pair(struct flt_form *f)
{
    int r = 0;
    if (f->u8.need) return f->vmode == V_XFORM ? FLT_E_UTF8 : FLT_E_FORM;
    if (f->vmode == V_XFORM) {
        r = flt_xform_end(&f->xf, xform_emit, f);
        if (r < 0) return r;
        if (r == 1) {
            /* `year` of a non-date: the member is removed (SPEC 4.1); the
             * field is listed, so this is not an unlisted field. */
            r = remove_pair(f, false);
        } else {
            if (f->hdr_pending) {
                f->hdr_pending = false;
                r = out_header(f, true);
            }
            if (r == 0 && f->report != NULL)
                flt__report_name(&f->report->transformed, "body", f->dec, f->dec_len);
        }
    }
    pair_clear(f);
    return r;
}

static void name_add_raw(struct flt_form *f, char c)
{
    if (f->raw_len < sizeof f->raw)
        f->raw[f->raw_len++] = c;
    else
        f->name_over = true;
}

/* Adds a decoded name byte; false when the name is not valid UTF-8. */
static bool name_add_dec(struct flt_form *f, unsigned char c)
{
    if (!flt__utf8_step(&f->nu8, c)) return false;
    if (c == '\0') f->name_nul = true;
    if (f->dec_len < sizeof f->dec)
        f->dec[f->dec_len++] = (char)c;
    else
        f->name_over = true;
    return true;
}

/* Advances the escape state with |c| (pct != 0). Returns the decoded byte
 * (0..255) when an escape completes, -1 when more is needed, FLT_E_FORM on a
 * malformed escape. */
static int escape_step(struct flt_form *f, unsigned char c)
{
    int v = flt__hexval(c);
    if (v < 0) return FLT_E_FORM;
    if (f->pct == 1) {
        f->pct_hi = (uint8_t)v;
        f->pct = 2;
        return -1;
    }
    f->pct = 0;
    return f->pct_hi * 16 + v;
}

static int feed_name(struct flt_form *f, const char *p, size_t n, size_t *used)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (f->pct) {
            int d = escape_step(f, c);
            if (d == FLT_E_FORM) return FLT_E_FORM;
            name_add_raw(f, (char)c);
            if (d >= 0 && !name_add_dec(f, (unsigned char)d)) return FLT_E_FORM;
        } else if (c == ';') {
            return FLT_E_FORM;
        } else if (c == '&') {
            int r = 0;
            if (f->raw_len > 0 || f->name_over) {
                r = decide(f);
                if (r == 0) r = end_pair(f);
            }
            pair_clear(f);
            if (r < 0) return r;
        } else if (c == '=') {
            int r;
            f->has_eq = true;
            r = decide(f);
            if (r < 0) return r;
            f->st = ST_VALUE;
            i++;
            break;
        } else if (c == '%') {
            f->pct = 1;
            name_add_raw(f, (char)c);
        } else {
            name_add_raw(f, (char)c);
            if (!name_add_dec(f, c == '+' ? ' ' : c)) return FLT_E_FORM;
        }
    }
    *used = i;
    return 0;
}

static int feed_value(struct flt_form *f, const char *p, size_t n, size_t *used)
{
    char dbuf[256];
    size_t d = 0, i;
    int r;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int dv = -1;
        if (f->pct) {
            dv = escape_step(f, c);
            if (dv == FLT_E_FORM) return FLT_E_FORM;
        } else if (c == '&') {
            break;
        } else if (c == ';') {
            return FLT_E_FORM;
        } else if (c == '%') {
            f->pct = 1;
        } else {
            dv = c == '+' ? ' ' : c;
        }
        if (dv >= 0 && !flt__utf8_step(&f->u8, (unsigned char)dv))
            return f->vmode == V_XFORM ? FLT_E_UTF8 : FLT_E_FORM;
        if (f->vmode == V_XFORM && dv >= 0) {
            dbuf[d++] = (char)dv;
            if (d == sizeof dbuf) {
                r = flt_xform_feed(&f->xf, dbuf, d, xform_emit, f);
                if (r < 0) return r;
                d = 0;
            }
        }
    }
    if (f->vmode == V_KEEP)
        r = out(f, p, i);
    else if (f->vmode == V_XFORM)
        r = flt_xform_feed(&f->xf, dbuf, d, xform_emit, f);
    else
        r = 0;
    if (r < 0) return r;
    if (i < n) { /* '&' */
        r = end_pair(f);
        if (r < 0) return r;
        i++;
    }
    *used = i;
    return 0;
}

int flt_form_feed(struct flt_form *f, const char *p, size_t n)
{
    size_t i = 0;
    if (f->err) return f->err;
    if (f->finished) return FLT_E_STATE;
    while (i < n) {
        size_t used = 0;
        int r = f->st == ST_NAME ? feed_name(f, p + i, n - i, &used)
                                 : feed_value(f, p + i, n - i, &used);
        if (r < 0) {
            f->err = r;
            return r;
        }
        i += used;
    }
    return 0;
}

int flt_form_finish(struct flt_form *f)
{
    int r = 0;
    if (f->err) return f->err;
    if (f->finished) return FLT_E_STATE;
    if (f->pct)
        r = FLT_E_FORM;
    else if (f->st == ST_NAME && (f->raw_len > 0 || f->name_over)) {
        r = decide(f);
        if (r == 0) r = end_pair(f);
    } else if (f->st == ST_VALUE) {
        r = end_pair(f);
    }
    if (r < 0) {
        f->err = r;
        return r;
    }
    f->finished = true;
    return 0;
}
