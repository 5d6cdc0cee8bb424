/*
 * The streaming JSON filter: one pass over the document, validating it
 * strictly (RFC 8259) while it removes, keeps or transforms members
 * according to compiled field rules (SPEC 4.1), writing compact output.
 *
 * Design:
 * - A resumable byte-level state machine; every piece of state lives in
 *   struct flt_json, so any chunking of the input gives the same output.
 * - Each open container is a frame in one of three modes: FILTER (members
 *   judged by a rule node), KEEP (copied whole, minus whitespace) and SKIP
 *   (validated, nothing emitted).
 * - In a FILTER object a member's name is buffered (raw for output,
 *   unescaped for matching) until the decision; the member's prefix
 *   (comma, name, colon) is written only once its value is known to be
 *   kept, so a removed member leaves no trace.
 * - Memory is fixed at flt_json_new: the frame stack (max_depth), the name
 *   buffers, an output buffer. Nothing is allocated per document.
 * - Speed: fast_loop() takes the regular case (compact or not, names and
 *   scalars whole in the chunk without escapes: ASCII or well-formed UTF-8)
 *   with its state in local variables and hands everything else back to the
 *   byte-level machine at a token boundary. Inside it, FILTER frames have
 *   their own code, and KEEP and SKIP containers their lanes (no
 *   dispositions; a kept container is one output span between whitespace).
 *   Strings, whitespace and numbers are classified 16 bytes at a time
 *   (SSE2, the x86-64 baseline; a scalar path elsewhere). fast_loop() lives
 *   in filters/json_fast.h, compiled here once per instruction set (the
 *   baseline, and x86-64-v3 where the CPU has it, chosen at flt_json_new)
 *   and per kind of document (without a report, with one, rejecting
 *   unlisted fields: constants in the first two). Repeated report paths
 *   are counted without being rebuilt (report_again(); a path found in a
 *   report's set stays there for the document, see path_memo.rm_epoch).
 */
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define JSON_HAVE_AVX2 1
#endif

#include "filters/int.h"
#include "filters/json_int.h"

#define OUT_CAP (16 * 1024)
#define KEYRAW_CAP (8 * 1024)
#define KEYNAME_CAP (FLT_NAME_MAX + 8)
#define PATH_CAP 512
#define PATH_MEMO 32
#define PATH_MEMO_NAME 30

enum mode { M_FILTER, M_KEEP, M_SKIP };

struct frame {
    char kind; /* '{' or '[' */
    uint8_t mode;
    bool emitted;                /* FILTER: a member/element was written */
    const struct flt_node *node; /* FILTER: rules for members / elements */
    /* FILTER frames: how this container is named in report paths, built only
     * when something is reported. NULL name: an array element ("[]"). */
    const char *pname;
    uint16_t pname_len;
    uint16_t names_used; /* f->names in use below this frame's name */
    /* FILTER frames, with a report: the FNV-1a state of the report path
     * ("body" + this frame's path, as report.c hashes it) and the length of
     * the frame's part of it, when the path is plain (no quoted name, not
     * cut at PATH_CAP): see report_again(). */
    bool ph_ok;
    uint16_t plen;
    uint64_t ph;
};

/* What to do with the value about to start. */
enum disp { D_SKIP, D_KEEP, D_FILTER, D_XFORM, D_ROOT };

enum state {
    S_VALUE,       /* a value must start */
    S_ARR_FIRST,   /* after '[': value or ']' */
    S_OBJ_FIRST,   /* after '{': key or '}' */
    S_OBJ_KEY,     /* after ',' in an object: key */
    S_COLON,       /* after a key */
    S_AFTER_VALUE, /* ',' or the container's closer */
    S_STRING,      /* inside a string (key or value) */
    S_NUMBER,
    S_LITERAL,
    S_END, /* root complete: whitespace only */
};

/* Who consumes the bytes of the current string or number. */
enum role {
    R_SKIP,
    R_EMIT,  /* copied verbatim */
    R_KEY,   /* FILTER member name: buffered */
    R_XFORM, /* value under a transform */
};

enum esc {
    E_NONE,
    E_BACKSLASH,
    E_HEX,       /* in \uXXXX */
    E_LOW_SLASH, /* after a high surrogate: expect '\' */
    E_LOW_U,     /* expect 'u' */
    E_LOW_HEX,   /* the low surrogate's digits */
};

enum num {
    N_MINUS, /* after '-' */
    N_ZERO,  /* leading 0 */
    N_INT,
    N_DOT,
    N_FRAC,
    N_E,
    N_ESIGN,
    N_EXP,
};

struct flt_json;
typedef const char *(*fast_fn)(struct flt_json *f, const char *p, const char *end);

/*
 * Field order: what every document touches comes first, in as few cache
 * lines as possible (the gateway keeps one filter per exchange in flight,
 * so a request usually finds its filter out of the cache): the
 * configuration, the parser's position and state, the top of the frame
 * stack and the output's length. The rest (the general path's string state,
 * the transform, the buffers) follows.
 */
struct flt_json {
    struct flt_json_config cfg;
    fast_fn fast; /* the fast_loop() for this document */
    flt_sink_fn sink;
    void *ud;
    struct flt_report *report;
    const char *prefix;
    size_t prefix_len;
    uint64_t prefix_hash; /* FNV-1a state after |prefix| */
    uint64_t consumed;    /* bytes of previous chunks */
    uint64_t err_off;
    uint64_t epoch; /* documents started (flt_json_reset), from 1 */
    int err;
    enum state state;
    enum role role;
    enum disp disp;
    const struct flt_node *disp_node;
    bool in_key;      /* the current string is a member name */
    bool pfx_key;     /* the pending value's prefix includes the buffered key */
    bool pfx_pending; /* XFORM: prefix + opening quote not written yet */
    bool root_value;  /* the pending value is the document's root */
    bool key_ext;     /* kraw/kname point into the caller's chunk */
    bool kid_named;   /* the member matched a named rule (not `*`) */
    bool sink_failed;

    /* member name of a FILTER object: |kraw| (with quotes, as sent) and
     * |kname| (unescaped) point into the input chunk when the name arrived
     * whole and plain, else into keyraw/keyname. */
    const char *kraw, *kname;
    size_t kraw_len, kname_len;

    uint32_t depth, cap;
    struct frame *frames;
    struct frame *top; /* frames[depth - 1], NULL at the root */
    size_t names_used;
    size_t out_len;

    fast_fn fast_tab[3]; /* fast_loop() for |simd|: no report, report, any */
    int simd;            /* enum flt__json_simd */

    /* string scanning */
    enum esc esc;
    uint8_t hex_n;
    uint32_t hex_v;
    uint32_t high; /* pending high surrogate */
    uint8_t u8_need;
    uint8_t u8_lo, u8_hi; /* allowed range of the next continuation byte */

    enum num num;
    const char *lit;
    uint8_t lit_i;

    size_t keyraw_len, keyname_len;
    bool key_overflow;
    uint64_t key_off; /* input offset of the current name's opening quote */

    struct flt_xform xf;

    /* path_hash_name() results: (state, name) -> state, a pure function */
    struct path_memo {
        uint64_t ph, h;
        /* |h| is in report->removed's set in document |rm_epoch| (a set only
         * grows during a document; 0: not known) */
        uint64_t rm_epoch;
        uint16_t plen, len, nlen;
        char name[PATH_MEMO_NAME];
    } memo[PATH_MEMO];

    /* names of `*`-matched FILTER containers on the current path */
    char names[PATH_CAP];
    /* the path flt_json_unlisted_path() gives, valid when err is
     * FLT_E_UNLISTED (written just before that error) */
    char unlisted[FLT_REPORT_PATH_MAX + 8];
    char keyraw[KEYRAW_CAP];
    char keyname[KEYNAME_CAP];
    char out[OUT_CAP];
};

/* ------------------------------------------------------------------ output */

static void out_flush(struct flt_json *f)
{
    if (f->out_len && !f->sink_failed && f->sink(f->ud, f->out, f->out_len) != 0)
        f->sink_failed = true;
    f->out_len = 0;
}

static void out_put(struct flt_json *f, const char *p, size_t n)
{
    if (n > OUT_CAP - f->out_len) {
        out_flush(f);
        if (n > OUT_CAP) {
            if (!f->sink_failed && f->sink(f->ud, p, n) != 0) f->sink_failed = true;
            return;
        }
    }
    memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
}

static inline void out_byte(struct flt_json *f, char c)
{
    if (f->out_len == OUT_CAP) out_flush(f);
    f->out[f->out_len++] = c;
}

/* ------------------------------------------------------------------- paths */

static size_t path_append_name(char *buf, size_t len, const char *name, size_t nlen)
{
    bool quote = flt__name_needs_quotes(name, nlen);
    if (!quote && len + 1 + nlen <= PATH_CAP) { /* the common case, same bytes */
        if (len) buf[len++] = '.';
        memcpy(buf + len, name, nlen);
        return len + nlen;
    }
    if (len && len < PATH_CAP) buf[len++] = '.';
    if (quote && len < PATH_CAP) buf[len++] = '"';
    for (size_t i = 0; i < nlen && len < PATH_CAP; i++) {
        if (quote && (name[i] == '"' || name[i] == '\\')) {
            buf[len++] = '\\';
            if (len == PATH_CAP) break;
        }
        buf[len++] = name[i];
    }
    if (quote && len < PATH_CAP) buf[len++] = '"';
    return len;
}

static size_t path_append_elem(char *buf, size_t len)
{
    if (len + 2 <= PATH_CAP) {
        buf[len++] = '[';
        buf[len++] = ']';
    }
    return len;
}

static inline struct frame *top(struct flt_json *f)
{
    return f->top;
}

/* Path of the pending value (member or element of the top frame), written
 * into |tmp| (PATH_CAP bytes). Returns its length. Every frame on the way
 * is a FILTER frame: reports happen only there. */
static size_t pending_path(struct flt_json *f, char *tmp)
{
    size_t len = 0;
    struct frame *t = top(f);
    if (!t) return 0;
    for (uint32_t i = 1; i < f->depth; i++) {
        const struct frame *fr = &f->frames[i];
        if (fr->pname)
            len = path_append_name(tmp, len, fr->pname, fr->pname_len);
        else
            len = path_append_elem(tmp, len);
    }
    if (t->kind == '{') return path_append_name(tmp, len, f->kname, f->kname_len);
    return path_append_elem(tmp, len);
}

static void fail(struct flt_json *f, int err, const char *p, const char *base)
{
    if (f->err) return;
    f->err = err;
    f->err_off = f->consumed + (uint64_t)(p - base);
}

/*
 * Reported paths repeat: an array of records removes the same members from
 * every record. flt_pathlist_add() identifies a path by a 64-bit FNV-1a hash
 * of prefix, separator and path and, once it holds that hash, only counts the
 * path again. Each FILTER frame keeps the hash state of its own path (pushed
 * frames extend their parent's), so the hash of a pending path costs one pass
 * over the member's name; when the list already holds it, the count is all
 * there is to do. Must hash exactly as filters/report.c path_hash() does and
 * build names as pending_path() does; a path it cannot hash that way (a
 * quoted name, a path cut at PATH_CAP) takes the full way.
 */
#define FNV_BASIS 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static inline uint64_t fnv_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

/* The FNV-1a state after "body", the usual report prefix. */
#define BODY_HASH                                                                                  \
    ((((((((FNV_BASIS ^ 'b') * FNV_PRIME) ^ 'o') * FNV_PRIME) ^ 'd') * FNV_PRIME) ^ 'y') *         \
     FNV_PRIME)

/* memcmp() for the short names of rules, without a call. */
static inline bool name_eq(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v) return false;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* Bytes that make flt__name_needs_quotes() quote a name (filters/rules.c). */
static const bool path_special[256] = {
    ['.'] = true, ['['] = true, [']'] = true,  ['*'] = true,
    ['"'] = true, ['$'] = true, ['\\'] = true,
};

/* Extends |*h| and |*len| by the name component |name| as path_append_name()
 * writes it unquoted. False when the name would be quoted or the path cut. */
static inline bool path_hash_name(uint64_t *h, size_t *len, const char *name, size_t nlen)
{
    if (nlen == 0 || nlen > PATH_CAP) return false;
    uint64_t x = fnv_byte(*h, '.'); /* pending_path or the list's separator */
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (path_special[c]) return false;
        x = fnv_byte(x, c);
    }
    size_t l = *len + (*len ? 1 : 0) + nlen;
    if (l > PATH_CAP) return false;
    *h = x;
    *len = l;
    return true;
}

static inline bool path_hash_elem(uint64_t *h, size_t *len)
{
    if (*len + 2 > PATH_CAP) return false;
    *h = fnv_byte(fnv_byte(*h, '['), ']');
    *len += 2;
    return true;
}

/* path_hash_name(), remembered: a report path repeats the same few names
 * below the same few parents. Exact: the result is a function of the hash
 * state, the length so far and the name, all compared. */
static inline size_t memo_slot(uint64_t ph, const char *name, size_t nlen)
{
    return (size_t)(ph ^ (ph >> 29) ^ nlen ^ ((size_t)(unsigned char)name[0] << 3)) % PATH_MEMO;
}

/* The memo entry of (|ph|, |plen|, |name|), or NULL. */
static inline __attribute__((always_inline)) struct path_memo *
memo_find(struct flt_json *f, uint64_t ph, size_t plen, const char *name, size_t nlen)
{
    if (nlen == 0 || nlen > PATH_MEMO_NAME) return NULL;
    struct path_memo *m = &f->memo[memo_slot(ph, name, nlen)];
    if (m->ph != ph || m->plen != plen || m->nlen != nlen || !name_eq(m->name, name, nlen))
        return NULL;
    return m;
}

static inline bool memo_get(const struct flt_json *f, uint64_t *h, size_t *len, const char *name,
                            size_t nlen)
{
    if (nlen == 0 || nlen > PATH_MEMO_NAME) return false;
    const struct path_memo *m = &f->memo[memo_slot(*h, name, nlen)];
    if (m->ph != *h || m->plen != *len || m->nlen != nlen || !name_eq(m->name, name, nlen))
        return false;
    *h = m->h;
    *len = m->len;
    return true;
}

static bool path_hash_name_memo(struct flt_json *f, uint64_t *h, size_t *len, const char *name,
                                size_t nlen)
{
    if (memo_get(f, h, len, name, nlen)) return true;
    uint64_t h0 = *h;
    size_t len0 = *len;
    if (!path_hash_name(h, len, name, nlen)) return false;
    if (nlen <= PATH_MEMO_NAME) {
        struct path_memo *m = &f->memo[memo_slot(h0, name, nlen)];
        m->ph = h0;
        m->plen = (uint16_t)len0;
        m->nlen = (uint16_t)nlen;
        memcpy(m->name, name, nlen);
        m->h = *h;
        m->len = (uint16_t)*len;
        m->rm_epoch = 0;
    }
    return true;
}

/* Whether report.c's set of |l| holds the path hash |h| (its probing). */
static inline bool seen_has(const struct flt_pathlist *l, uint64_t h)
{
    return flt__seen_has(l, h ? h : 1);
}

/* memcpy() of the short names paths are made of, without a call. */
static inline void copy_name(char *d, const char *s, size_t n)
{
    uint64_t a, b;
    uint32_t u, v;
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&u, s, 4);
        memcpy(&v, s + n - 4, 4);
        memcpy(d, &u, 4);
        memcpy(d + n - 4, &v, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/*
 * report_removed() of an unlisted member |name| of the top (object) frame
 * whose path is plain and new to the list: |m| is its memo entry (so every
 * name on the path is plain, and m->h is the path's hash) and |slot| the
 * free slot of the list's set for it (flt__seen_probe()). Does what
 * report_again(), pending_path_plain() and flt__pathlist_add_hashed() do,
 * writing the path straight into the list. False, having changed nothing,
 * when the list would cut the path: report_removed() then adds it.
 */
static __attribute__((noinline)) bool report_first(struct flt_json *f, struct flt_pathlist *l,
                                                   struct path_memo *m, size_t slot,
                                                   const char *name, size_t nlen)
{
    /* "body" '.' path: the separator is there, the path starting with a name */
    if (f->prefix_len + 1 + m->len > FLT_REPORT_PATH_MAX) return false;
    uint64_t h = m->h ? m->h : 1; /* as report.c */
    l->total++;
    flt__seen_put(l, slot, h);
    m->rm_epoch = f->epoch;
    if (l->n == FLT_REPORT_MAX) {
        l->more++;
        return true;
    }
    char *dst = l->text + l->text_used;
    size_t w = f->prefix_len;
    copy_name(dst, f->prefix, w);
    for (uint32_t i = 1; i < f->depth; i++) {
        const struct frame *fr = &f->frames[i];
        if (fr->pname) {
            dst[w++] = '.';
            copy_name(dst + w, fr->pname, fr->pname_len);
            w += fr->pname_len;
        } else {
            dst[w++] = '[';
            dst[w++] = ']';
        }
    }
    dst[w++] = '.';
    copy_name(dst + w, name, nlen);
    flt__pathlist_store(l, w + nlen, h);
    return true;
}

/* Sets the path hash of |fr|, just pushed below |parent| (NULL: the root). */
static void frame_path_hash(struct flt_json *f, struct frame *fr, const struct frame *parent)
{
    fr->ph_ok = false;
    if (!f->report || fr->mode != M_FILTER) return;
    uint64_t h = f->prefix_hash;
    size_t len = 0;
    if (parent) {
        if (!parent->ph_ok) return;
        h = parent->ph;
        len = parent->plen;
        if (fr->pname ? !path_hash_name_memo(f, &h, &len, fr->pname, fr->pname_len)
                      : !path_hash_elem(&h, &len))
            return;
    }
    fr->ph = h;
    fr->plen = (uint16_t)len;
    fr->ph_ok = true;
}

/* When |l| already holds the pending value's path, counts it as
 * flt_pathlist_add() would and returns 1. Else 0 when the path is plain (no
 * quoted name, not cut: pending_path_plain() builds it), -1 when not known
 * to be: add it the full way. */
static int report_again(struct flt_json *f, struct flt_pathlist *l, uint64_t *hash)
{
    const struct frame *t = top(f);
    if (!t || !t->ph_ok) return -1;
    uint64_t h = t->ph;
    size_t len = t->plen;
    if (t->kind == '{' ? !path_hash_name_memo(f, &h, &len, f->kname, f->kname_len)
                       : !path_hash_elem(&h, &len))
        return -1;
    *hash = h;
    /* report.c counts every path as new once its set is 3/4 full */
    if (l->nseen >= FLT__SEEN_LIMIT || !seen_has(l, h)) return 0;
    l->total++;
    return 1;
}

/* Adds a path report_again() found plain and new, with the hash it made
 * (report.c would make it again), unless the list must cut it. */
static void report_add(struct flt_json *f, struct flt_pathlist *l, int again, uint64_t h,
                       const char *path, size_t len)
{
    bool sep = len && path[0] != '[';
    if (again == 0 && f->prefix_len + sep + len <= FLT_REPORT_PATH_MAX)
        flt__pathlist_add_hashed(l, f->prefix, f->prefix_len, path, len, h);
    else
        flt_pathlist_add(l, f->prefix, path, len);
}

/* pending_path() for a path report_again() found plain: every name on it
 * is written as it is (flt__name_needs_quotes() is false for each: their
 * hashes were made by path_hash_name()), and nothing is cut. */
static size_t pending_path_plain(struct flt_json *f, char *tmp)
{
    size_t len = 0;
    struct frame *t = top(f);
    for (uint32_t i = 1; i < f->depth; i++) {
        const struct frame *fr = &f->frames[i];
        if (fr->pname) {
            if (len) tmp[len++] = '.';
            memcpy(tmp + len, fr->pname, fr->pname_len);
            len += fr->pname_len;
        } else {
            tmp[len++] = '[';
            tmp[len++] = ']';
        }
    }
    if (t->kind == '{') {
        if (len) tmp[len++] = '.';
        memcpy(tmp + len, f->kname, f->kname_len);
        return len + f->kname_len;
    }
    tmp[len++] = '[';
    tmp[len++] = ']';
    return len;
}

/* Records the removal of the pending value. Returns false when the contract
 * rejects unlisted fields (the filter is then in error). */
static bool report_removed(struct flt_json *f, bool unlisted)
{
    if (!f->report && !(unlisted && f->cfg.reject_unlisted)) return true;
    int again = -1;
    uint64_t h = 0;
    if (!(unlisted && f->cfg.reject_unlisted)) {
        again = report_again(f, &f->report->removed, &h);
        if (again == 1) return true;
    }
    char tmp[PATH_CAP];
    size_t len = again == 0 ? pending_path_plain(f, tmp) : pending_path(f, tmp);
    if (unlisted && f->cfg.reject_unlisted) {
        size_t pl = f->prefix_len;
        size_t w = 0;
        for (size_t i = 0; i < pl && w < FLT_REPORT_PATH_MAX; i++)
            f->unlisted[w++] = f->prefix[i];
        if (len && tmp[0] != '[' && w < FLT_REPORT_PATH_MAX) f->unlisted[w++] = '.';
        for (size_t i = 0; i < len && w < FLT_REPORT_PATH_MAX; i++)
            f->unlisted[w++] = tmp[i];
        f->unlisted[w] = '\0';
        return false;
    }
    if (f->report) report_add(f, &f->report->removed, again, h, tmp, len);
    return true;
}

static void report_transformed(struct flt_json *f)
{
    if (!f->report) return;
    uint64_t h = 0;
    int again = report_again(f, &f->report->transformed, &h);
    if (again == 1) return;
    char tmp[PATH_CAP];
    size_t len = again == 0 ? pending_path_plain(f, tmp) : pending_path(f, tmp);
    report_add(f, &f->report->transformed, again, h, tmp, len);
}

/* Writes the pending value's prefix: comma, and for members the name. */
static void emit_prefix(struct flt_json *f)
{
    struct frame *t = top(f);
    if (!t || t->mode != M_FILTER) return; /* KEEP frames copy their own commas */
    if (t->emitted) out_byte(f, ',');
    t->emitted = true;
    if (f->pfx_key) {
        out_put(f, f->kraw, f->kraw_len);
        out_byte(f, ':');
    }
}

/* ----------------------------------------------------------- xform output */

/* The first byte at or after |p| that a JSON string must escape (a control
 * character, '"' or '\\'), or |end|. */
static inline const char *esc_end(const char *s, const char *end)
{
#if defined(__SSE2__)
    if (end - s >= 16) {
        const char *last = end - 16;
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i bslash = _mm_set1_epi8('\\');
        const __m128i ctl = _mm_set1_epi8(0x1F);
        do {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
            __m128i bad =
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)); /* unsigned v <= 0x1F */
            unsigned mask = (unsigned)_mm_movemask_epi8(bad);
            if (mask) return s + __builtin_ctz(mask);
            s += 16;
        } while (s <= last);
    }
#endif
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == '"' || c == '\\') break;
        s++;
    }
    return s;
}

static int xform_emit(void *ud, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    struct flt_json *f = ud;
    if (f->pfx_pending) {
        emit_prefix(f);
        out_byte(f, '"');
        f->pfx_pending = false;
    }
    const char *end = p + n;
    while (p < end) {
        const char *q = esc_end(p, end);
        if (q > p) out_put(f, p, (size_t)(q - p));
        if (q == end) break;
        unsigned char c = (unsigned char)*q;
        p = q + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            elen = 6;
        }
        out_put(f, e, elen);
    }
    return f->sink_failed ? -1 : 0;
}

/* ----------------------------------------------------------------- frames */

/* Opens a container (the caller checked max_depth). */
static inline __attribute__((always_inline)) void
frame_push(struct flt_json *f, char kind, enum mode mode, const struct flt_node *node)
{
    struct frame *parent = top(f);
    struct frame *fr = &f->frames[f->depth];
    fr->kind = kind;
    fr->mode = (uint8_t)mode;
    fr->emitted = false;
    fr->node = node;
    fr->pname = NULL;
    fr->pname_len = 0;
    fr->names_used = (uint16_t)f->names_used;
    if (mode == M_FILTER && parent && parent->kind == '{') {
        if (f->kid_named) {
            /* the member's name equals the rule's, which outlives the document */
            fr->pname = node->name;
            fr->pname_len = (uint16_t)node->name_len;
        } else {
            size_t n = f->kname_len;
            if (n > PATH_CAP - f->names_used) n = PATH_CAP - f->names_used;
            memcpy(f->names + f->names_used, f->kname, n);
            fr->pname = f->names + f->names_used;
            fr->pname_len = (uint16_t)n;
            f->names_used += n;
        }
    }
    if (!f->report || mode != M_FILTER) {
        fr->ph_ok = false;
    } else if (!fr->pname && parent && parent->ph_ok && parent->plen + 2 <= PATH_CAP) {
        /* an array element: frame_path_hash() without a call (and the
         * vector registers saved around one) */
        fr->ph = fnv_byte(fnv_byte(parent->ph, '['), ']');
        fr->plen = (uint16_t)(parent->plen + 2);
        fr->ph_ok = true;
    } else {
        frame_path_hash(f, fr, parent);
    }
    f->depth++;
    f->top = fr;
}

static bool push(struct flt_json *f, char kind, enum mode mode, const struct flt_node *node,
                 const char *p, const char *base)
{
    if (f->depth == f->cfg.max_depth) {
        fail(f, FLT_E_DEPTH, p, base);
        return false;
    }
    frame_push(f, kind, mode, node);
    f->state = kind == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
    return true;
}

/* A value (scalar or container) just ended. */
static void value_done(struct flt_json *f)
{
    f->state = f->depth ? S_AFTER_VALUE : S_END;
}

static void pop(struct flt_json *f)
{
    struct frame *fr = &f->frames[--f->depth];
    f->top = f->depth ? fr - 1 : NULL;
    if (fr->mode != M_SKIP) out_byte(f, fr->kind == '{' ? '}' : ']');
    f->names_used = fr->names_used;
    value_done(f);
}

/* Sets the disposition of the next element of the top (array) frame.
 * Returns false when an unlisted element is rejected. */
static bool element_disp(struct flt_json *f)
{
    struct frame *t = top(f);
    f->pfx_key = false;
    f->root_value = false;
    if (t->mode == M_SKIP) {
        f->disp = D_SKIP;
        return true;
    }
    if (t->mode == M_KEEP) {
        f->disp = D_KEEP;
        return true;
    }
    const struct flt_node *e = t->node->elem;
    if (!e) {
        f->disp = D_SKIP;
        f->disp_node = NULL;
        return report_removed(f, true);
    }
    f->disp_node = e;
    if (e->has_act)
        f->disp = e->act.kind == FLT_ACT_KEEP ? D_KEEP : D_XFORM;
    else
        f->disp = D_FILTER;
    return true;
}

/* ------------------------------------------------------------ value start */

/* The value being started is removed. Returns false on reject. */
static bool remove_value(struct flt_json *f, char first, bool unlisted)
{
    if (f->root_value) {
        if (first == '{')
            out_put(f, "{}", 2);
        else if (first == '[')
            out_put(f, "[]", 2);
        else
            out_put(f, "null", 4);
    }
    return report_removed(f, unlisted);
}

enum vclass { V_OBJ, V_ARR, V_STR, V_NUM, V_LIT };

static enum vclass classify(char c)
{
    switch (c) {
    case '{': return V_OBJ;
    case '[': return V_ARR;
    case '"': return V_STR;
    case 't':
    case 'f':
    case 'n': return V_LIT;
    default: return V_NUM;
    }
}

static void start_string(struct flt_json *f, enum role role)
{
    f->state = S_STRING;
    f->role = role;
    f->in_key = false;
    f->esc = E_NONE;
    f->u8_need = 0;
}

/* Begins a value whose first byte is |c| (already known to start a value).
 * Returns false when the filter failed. */
static bool begin_value(struct flt_json *f, char c, const char *p, const char *base)
{
    enum vclass vc = classify(c);
    enum disp d = f->disp;
    const struct flt_node *node = f->disp_node;

    if (d == D_ROOT) {
        /* the root object or array is always filtered member by member;
         * a scalar root only passes under `$` */
        node = f->cfg.rules->root;
        if (node->has_act)
            d = node->act.kind == FLT_ACT_KEEP ? D_KEEP : D_XFORM;
        else if (vc == V_OBJ || vc == V_ARR)
            d = D_FILTER;
        else {
            if (!remove_value(f, c, true)) goto rejected;
            d = D_SKIP;
        }
    } else if (d == D_FILTER) {
        bool match = (vc == V_OBJ && node->has_members) || (vc == V_ARR && node->elem);
        if (!match) {
            if (!remove_value(f, c, true)) goto rejected;
            d = D_SKIP;
        }
    }
    if (d == D_XFORM) {
        bool readable = vc == V_STR || (vc == V_NUM && node->act.kind != FLT_ACT_YEAR);
        if (!readable) {
            if (!remove_value(f, c, false)) goto rejected;
            d = D_SKIP;
        }
    }

    switch (d) {
    case D_SKIP:
        if (vc == V_OBJ || vc == V_ARR) return push(f, c, M_SKIP, NULL, p, base);
        break;
    case D_KEEP:
        emit_prefix(f);
        if (vc == V_OBJ || vc == V_ARR) {
            out_byte(f, c);
            return push(f, c, M_KEEP, NULL, p, base);
        }
        break;
    case D_FILTER:
        emit_prefix(f);
        out_byte(f, c);
        return push(f, c, M_FILTER, node, p, base);
    case D_XFORM:
        f->pfx_pending = true;
        flt_xform_begin(&f->xf, &node->act, f->cfg.key);
        break;
    case D_ROOT: break;
    }

    enum role role = d == D_KEEP ? R_EMIT : d == D_XFORM ? R_XFORM : R_SKIP;
    if (vc == V_STR) {
        start_string(f, role);
        if (role == R_EMIT) out_byte(f, '"');
        return true;
    }
    if (vc == V_LIT) {
        f->state = S_LITERAL;
        f->role = role;
        f->lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
        f->lit_i = 1;
        if (role == R_EMIT) out_byte(f, c);
        return true;
    }
    f->state = S_NUMBER;
    f->role = role;
    f->num = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
    if (role == R_EMIT)
        out_byte(f, c);
    else if (role == R_XFORM)
        flt_xform_feed(&f->xf, &c, 1, xform_emit, f);
    return true;
rejected:
    fail(f, FLT_E_UNLISTED, p, base);
    return false;
}

/* End of a transformed value. */
static bool end_xform(struct flt_json *f, const char *p, const char *base)
{
    int rc = flt_xform_end(&f->xf, xform_emit, f);
    if (rc == 1) {
        bool root = f->root_value;
        if (root) out_put(f, "null", 4);
        (void)report_removed(f, false);
        f->pfx_pending = false;
        return true;
    }
    if (f->pfx_pending) { /* empty result: still a string */
        emit_prefix(f);
        out_byte(f, '"');
        f->pfx_pending = false;
    }
    out_byte(f, '"');
    report_transformed(f);
    (void)p;
    (void)base;
    return true;
}

/* The name of a FILTER member is complete: decide its value. */
static bool decide_member(struct flt_json *f, const char *p, const char *base)
{
    struct frame *t = top(f);
    f->pfx_key = true;
    f->root_value = false;
    const struct flt_node *kid = NULL;
    f->kid_named = false;
    if (!f->key_overflow) {
        kid = flt__node_kid(t->node, f->kname, f->kname_len);
        f->kid_named = kid != NULL;
        if (!kid) kid = t->node->star;
    }
    f->disp_node = kid;
    if (!kid) {
        f->disp = D_SKIP;
        if (!report_removed(f, true)) {
            /* the error points at the name's opening quote, however the
             * name arrived (whole, split, escaped) */
            fail(f, FLT_E_UNLISTED, p, base);
            f->err_off = f->key_off;
            return false;
        }
        return true;
    }
    if (kid->has_act)
        f->disp = kid->act.kind == FLT_ACT_KEEP ? D_KEEP : D_XFORM;
    else
        f->disp = D_FILTER;
    return true;
}

/* ----------------------------------------------------------- string bytes */

static inline void key_raw(struct flt_json *f, const char *p, size_t n)
{
    if (f->key_overflow) return;
    if (n > KEYRAW_CAP - f->keyraw_len) {
        f->key_overflow = true;
        return;
    }
    memcpy(f->keyraw + f->keyraw_len, p, n);
    f->keyraw_len += n;
}

static inline void key_name(struct flt_json *f, const char *p, size_t n)
{
    /* longer than FLT_NAME_MAX: it matches no rule, not even `*` (README);
     * the buffer keeps a little more, for report paths only */
    if (f->keyname_len + n > FLT_NAME_MAX) f->key_overflow = true;
    if (n > KEYNAME_CAP - f->keyname_len) n = KEYNAME_CAP - f->keyname_len;
    memcpy(f->keyname + f->keyname_len, p, n);
    f->keyname_len += n;
}

/* Raw bytes of the string that are output as they are (role EMIT/KEY). */
static inline void str_raw(struct flt_json *f, const char *p, size_t n)
{
    if (f->role == R_EMIT)
        out_put(f, p, n);
    else if (f->role == R_KEY)
        key_raw(f, p, n);
}

/* Unescaped bytes of the string (for matching and transforms). */
static inline void str_plain(struct flt_json *f, const char *p, size_t n)
{
    if (f->role == R_KEY)
        key_name(f, p, n);
    else if (f->role == R_XFORM)
        flt_xform_feed(&f->xf, p, n, xform_emit, f);
}

static void str_codepoint(struct flt_json *f, uint32_t cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    str_plain(f, b, n);
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The end of the run of plain ASCII string bytes at |s| (no '"', '\\',
 * control characters or bytes >= 0x80): the first other byte, or |end|. */
static inline const char *plain_end(const char *s, const char *end)
{
#if defined(__SSE2__)
    while (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        /* signed compare: bytes >= 0x80 are negative, so < 0x20 too */
        __m128i bad = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                   _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
        unsigned mask = (unsigned)_mm_movemask_epi8(bad);
        if (mask) return s + __builtin_ctz(mask);
        s += 16;
    }
#endif
    while (s < end) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        s++;
    }
    return s;
}

/* Length of the well-formed UTF-8 sequence of 2 to 4 bytes at |s| when it
 * lies whole before |end| (RFC 3629 table 4, as scan_string() checks it),
 * else 0. */
static size_t utf8_seq(const char *s, const char *end)
{
    unsigned char c = (unsigned char)s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c == 0xE0) {
        need = 2;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        need = 2;
    } else if (c == 0xED) {
        need = 2;
        hi = 0x9F;
    } else if (c == 0xF0) {
        need = 3;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        need = 3;
    } else if (c == 0xF4) {
        need = 3;
        hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - s) <= need) return 0;
    unsigned char c1 = (unsigned char)s[1];
    if (c1 < lo || c1 > hi) return 0;
    for (size_t i = 2; i <= need; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) return 0;
    return need + 1;
}

/* str_end() past the first non-ASCII byte. */
static __attribute__((noinline)) const char *str_end_utf8(const char *s, const char *end)
{
    for (;;) {
        size_t n = utf8_seq(s, end);
        if (n == 0) return NULL;
        s = plain_end(s + n, end);
        if (s == end) return NULL;
        unsigned char c = (unsigned char)*s;
        if (c == '"') return s;
        if (c < 0x80) return NULL;
    }
}

/* The closing quote of a string whose content starts at |s|, when the
 * content needs no work byte by byte (no escape; ASCII or well-formed UTF-8:
 * its raw bytes are its value) and the quote lies before |end|; else NULL,
 * and the general path (scan_string()) takes the string, errors included. */
static inline const char *str_end(const char *s, const char *end)
{
    s = plain_end(s, end);
    if (s == end) return NULL;
    unsigned char c = (unsigned char)*s;
    if (c == '"') return s;
    if (c < 0x80) return NULL; /* '\\' or a control character */
    return str_end_utf8(s, end);
}

#if defined(JSON_HAVE_AVX2)
/*
 * The x86-64-v3 fast_loop(): the same code compiled for AVX2 CPUs, so with
 * three-operand (VEX) vector instructions, BMI shifts and tzcnt, and with
 * its vector constants made once per call. Its scans stay 16 bytes wide:
 * 32-byte (ymm) scans ran 10-15 % fewer instructions but 20-30 % slower on
 * this project's machines (bench_filter, 2026-11-29), so they were dropped.
 */
#define V3_TARGET __attribute__((target("avx2,bmi,bmi2,popcnt")))

/* The byte classes of the string and number scans, made once per
 * fast_loop() call: the compiler would otherwise rebuild them at every
 * token (or wherever it hoisted them to, which is worse). */
struct v3_k {
    __m128i quote, bslash, space; /* string scan */
    __m128i d_lo, d_hi;           /* fast_number_k() */
};

V3_TARGET static inline struct v3_k v3_k_make(void)
{
    struct v3_k k = {_mm_set1_epi8('"'), _mm_set1_epi8('\\'), _mm_set1_epi8(0x20),
                     _mm_set1_epi8('0' - 1), _mm_set1_epi8('9' + 1)};
    /* opaque to the optimiser, so that it keeps rather than rematerialises them */
    __asm__("" : "+x"(k.quote), "+x"(k.bslash), "+x"(k.space), "+x"(k.d_lo), "+x"(k.d_hi));
    return k;
}

/* Bit i set: byte i of the 16 at |s| stops a plain string ('"', '\\', a
 * control character or a byte >= 0x80: signed, those are below 0x20). */
V3_TARGET static inline unsigned v3_stops(const struct v3_k *k, const char *s)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
    __m128i bad =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, k->quote), _mm_cmpeq_epi8(v, k->bslash)),
                     _mm_cmplt_epi8(v, k->space));
    return (unsigned)_mm_movemask_epi8(bad);
}

/* str_end() of the chunk's last bytes, fewer than a block. */
static __attribute__((noinline)) const char *str_end_short(const char *s, const char *end)
{
    return str_end(s, end);
}

/* str_end(), a block at a time, inline: a string of 16 to 47 bytes costs
 * one or two more blocks here, not a call that would make the constants
 * again. */
V3_TARGET static inline const char *str_end_v3(const struct v3_k *k, const char *s, const char *end)
{
    while (end - s >= 16) {
        unsigned mask = v3_stops(k, s);
        if (mask) {
            s += __builtin_ctz(mask);
            unsigned char c = (unsigned char)*s;
            if (c == '"') return s;
            if (c < 0x80) return NULL; /* '\\' or a control character */
            return str_end_utf8(s, end);
        }
        s += 16;
    }
    return str_end_short(s, end);
}
#endif

/* Length of that run. */
static inline size_t plain_run(const char *p, const char *end)
{
    return (size_t)(plain_end(p, end) - p);
}

/* The string's closing quote was consumed. */
static bool end_string(struct flt_json *f, const char *p, const char *base)
{
    if (f->in_key) {
        if (f->role == R_EMIT) {
            out_byte(f, '"');
        } else if (f->role == R_KEY) {
            key_raw(f, "\"", 1);
            f->kraw = f->keyraw;
            f->kraw_len = f->keyraw_len;
            f->kname = f->keyname;
            f->kname_len = f->keyname_len;
            if (!decide_member(f, p, base)) return false;
        }
        f->state = S_COLON;
        return true;
    }
    if (f->role == R_EMIT)
        out_byte(f, '"');
    else if (f->role == R_XFORM && !end_xform(f, p, base))
        return false;
    value_done(f);
    return true;
}

/* Consumes string bytes from |p|. Returns the new position, or NULL on
 * error. */
static const char *scan_string(struct flt_json *f, const char *p, const char *end, const char *base)
{
    while (p < end) {
        if (f->u8_need) {
            unsigned char c = (unsigned char)*p;
            if (c < f->u8_lo || c > f->u8_hi) {
                fail(f, FLT_E_UTF8, p, base);
                return NULL;
            }
            f->u8_lo = 0x80;
            f->u8_hi = 0xBF;
            f->u8_need--;
            str_raw(f, p, 1);
            str_plain(f, p, 1);
            p++;
            continue;
        }
        if (f->esc != E_NONE) {
            unsigned char c = (unsigned char)*p;
            switch (f->esc) {
            case E_BACKSLASH: {
                char plain;
                switch (c) {
                case '"': plain = '"'; break;
                case '\\': plain = '\\'; break;
                case '/': plain = '/'; break;
                case 'b': plain = '\b'; break;
                case 'f': plain = '\f'; break;
                case 'n': plain = '\n'; break;
                case 'r': plain = '\r'; break;
                case 't': plain = '\t'; break;
                case 'u':
                    f->esc = E_HEX;
                    f->hex_n = 0;
                    f->hex_v = 0;
                    str_raw(f, p, 1);
                    p++;
                    continue;
                default: fail(f, FLT_E_SYNTAX, p, base); return NULL;
                }
                str_raw(f, p, 1);
                str_plain(f, &plain, 1);
                f->esc = E_NONE;
                p++;
                continue;
            }
            case E_HEX:
            case E_LOW_HEX: {
                int h = hexval(c);
                if (h < 0) {
                    fail(f, FLT_E_SYNTAX, p, base);
                    return NULL;
                }
                str_raw(f, p, 1);
                p++;
                f->hex_v = f->hex_v * 16 + (uint32_t)h;
                if (++f->hex_n < 4) continue;
                uint32_t u = f->hex_v;
                if (f->esc == E_HEX) {
                    if (u >= 0xD800 && u <= 0xDBFF) {
                        f->high = u;
                        f->esc = E_LOW_SLASH;
                        continue;
                    }
                    if (u >= 0xDC00 && u <= 0xDFFF) {
                        fail(f, FLT_E_UTF8, p - 1, base);
                        return NULL;
                    }
                    str_codepoint(f, u);
                } else {
                    if (u < 0xDC00 || u > 0xDFFF) {
                        fail(f, FLT_E_UTF8, p - 1, base);
                        return NULL;
                    }
                    str_codepoint(f, 0x10000 + ((f->high - 0xD800) << 10) + (u - 0xDC00));
                }
                f->esc = E_NONE;
                continue;
            }
            case E_LOW_SLASH:
                if (c != '\\') {
                    fail(f, FLT_E_UTF8, p, base);
                    return NULL;
                }
                str_raw(f, p, 1);
                f->esc = E_LOW_U;
                p++;
                continue;
            case E_LOW_U:
                if (c != 'u') {
                    fail(f, FLT_E_UTF8, p, base);
                    return NULL;
                }
                str_raw(f, p, 1);
                f->esc = E_LOW_HEX;
                f->hex_n = 0;
                f->hex_v = 0;
                p++;
                continue;
            case E_NONE: break;
            }
        }
        size_t run = plain_run(p, end);
        if (run) {
            str_raw(f, p, run);
            str_plain(f, p, run);
            p += run;
            if (p == end) break;
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            p++;
            if (!end_string(f, p - 1, base)) return NULL;
            return p;
        }
        if (c == '\\') {
            str_raw(f, p, 1);
            f->esc = E_BACKSLASH;
            p++;
            continue;
        }
        if (c < 0x20) {
            fail(f, FLT_E_SYNTAX, p, base);
            return NULL;
        }
        /* UTF-8 lead byte (RFC 3629 table 4) */
        if (c >= 0xC2 && c <= 0xDF) {
            f->u8_need = 1;
            f->u8_lo = 0x80;
            f->u8_hi = 0xBF;
        } else if (c == 0xE0) {
            f->u8_need = 2;
            f->u8_lo = 0xA0;
            f->u8_hi = 0xBF;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            f->u8_need = 2;
            f->u8_lo = 0x80;
            f->u8_hi = 0xBF;
        } else if (c == 0xED) {
            f->u8_need = 2;
            f->u8_lo = 0x80;
            f->u8_hi = 0x9F;
        } else if (c == 0xF0) {
            f->u8_need = 3;
            f->u8_lo = 0x90;
            f->u8_hi = 0xBF;
        } else if (c >= 0xF1 && c <= 0xF3) {
            f->u8_need = 3;
            f->u8_lo = 0x80;
            f->u8_hi = 0xBF;
        } else if (c == 0xF4) {
            f->u8_need = 3;
            f->u8_lo = 0x80;
            f->u8_hi = 0x8F;
        } else {
            fail(f, FLT_E_UTF8, p, base);
            return NULL;
        }
        str_raw(f, p, 1);
        str_plain(f, p, 1);
        p++;
    }
    return p;
}

/* ----------------------------------------------------------- numbers etc. */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Consumes number bytes; returns the position of the first byte that is not
 * part of the number (the number is then complete), or |end|. NULL on error. */
static const char *scan_number(struct flt_json *f, const char *p, const char *end, const char *base)
{
    const char *s = p;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        switch (f->num) {
        case N_MINUS:
            if (c == '0')
                f->num = N_ZERO;
            else if (is_digit(c))
                f->num = N_INT;
            else
                goto bad;
            break;
        case N_ZERO:
        case N_INT:
            if (is_digit(c)) {
                if (f->num == N_ZERO) goto bad;
            } else if (c == '.') {
                f->num = N_DOT;
            } else if (c == 'e' || c == 'E') {
                f->num = N_E;
            } else {
                goto done;
            }
            break;
        case N_DOT:
            if (!is_digit(c)) goto bad;
            f->num = N_FRAC;
            break;
        case N_FRAC:
            if (is_digit(c)) break;
            if (c == 'e' || c == 'E')
                f->num = N_E;
            else
                goto done;
            break;
        case N_E:
            if (c == '+' || c == '-')
                f->num = N_ESIGN;
            else if (is_digit(c))
                f->num = N_EXP;
            else
                goto bad;
            break;
        case N_ESIGN:
            if (!is_digit(c)) goto bad;
            f->num = N_EXP;
            break;
        case N_EXP:
            if (!is_digit(c)) goto done;
            break;
        }
        p++;
    }
done:
    if (p > s) {
        if (f->role == R_EMIT)
            out_put(f, s, (size_t)(p - s));
        else if (f->role == R_XFORM)
            flt_xform_feed(&f->xf, s, (size_t)(p - s), xform_emit, f);
    }
    if (p < end) { /* terminated by *p */
        if (f->role == R_XFORM && !end_xform(f, p, base)) return NULL;
        value_done(f);
    }
    return p;
bad:
    fail(f, FLT_E_SYNTAX, p, base);
    return NULL;
}

static bool number_complete(enum num n)
{
    return n == N_ZERO || n == N_INT || n == N_FRAC || n == N_EXP;
}

/* ------------------------------------------------------------- fast lane */

/* Length of the run of ASCII digits at |p|. */
static inline size_t digit_run(const char *p, const char *end)
{
    const char *s = p;
#if defined(__SSE2__)
    if (end - s >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i d = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        unsigned mask = ~(unsigned)_mm_movemask_epi8(d) & 0xFFFF;
        if (mask) return (size_t)__builtin_ctz(mask);
        s += 16;
    }
#endif
    while (s < end && is_digit((unsigned char)*s))
        s++;
    return (size_t)(s - p);
}

/* End of a valid number starting at |p| when it lies whole in the chunk
 * (a terminator follows), else NULL: the general path then decides. */
static const char *fast_number_long(const char *p, const char *end);

#if defined(__SSE2__)
/* fast_number() with its constants ('0' - 1 and '9' + 1 in every byte)
 * given: the x86-64-v3 fast_loop() makes them once per call. */
static inline const char *fast_number_k(const char *p, const char *end, __m128i d_lo, __m128i d_hi)
{
    /* the usual short number: one 16-byte load, its digits as a bit mask,
     * the grammar on the mask; all the bytes read lie in the chunk, so the
     * byte after the number is there too */
    if (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(v, d_lo), _mm_cmplt_epi8(v, d_hi));
        /* bit i clear: p[i] is a digit; bit 16 set ends every run */
        uint32_t nd = ~(uint32_t)_mm_movemask_epi8(dg);
        uint32_t i = p[0] == '-';
        uint32_t n = (uint32_t)__builtin_ctz(nd >> i); /* integer digits */
        if (n == 0 || (n > 1 && p[i] == '0')) return NULL;
        i += n;
        if (i >= 16) goto long_way; /* p[i] is past the block */
        if (p[i] == '.') {
            n = (uint32_t)__builtin_ctz(nd >> ++i); /* i <= 16 */
            i += n;
            if (i >= 16) goto long_way;
            if (n == 0) return NULL;
        }
        if (p[i] == 'e' || p[i] == 'E') {
            i++;
            if (i < 16 && (p[i] == '+' || p[i] == '-')) i++;
            n = (uint32_t)__builtin_ctz(nd >> i); /* i <= 16 */
            i += n;
            if (i >= 16) goto long_way;
            if (n == 0) return NULL;
        }
        return p + i; /* p[i], in the block, is no digit: the terminator */
    }
long_way: /* a digit run reaches the end of the block, or the block the chunk */
    return fast_number_long(p, end);
}
#endif

static inline const char *fast_number(const char *p, const char *end)
{
#if defined(__SSE2__)
    return fast_number_k(p, end, _mm_set1_epi8('0' - 1), _mm_set1_epi8('9' + 1));
#else
    return fast_number_long(p, end);
#endif
}

static const char *fast_number_long(const char *p, const char *end)
{
    const char *q = p;
    if (*q == '-') q++;
    if (q == end) return NULL;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        q += digit_run(q, end);
    } else {
        return NULL;
    }
    if (q == end) return NULL;
    if (*q == '.') {
        size_t n = digit_run(++q, end);
        if (n == 0) return NULL;
        q += n;
        if (q == end) return NULL;
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        size_t n = digit_run(q, end);
        if (n == 0) return NULL;
        q += n;
        if (q == end) return NULL;
    }
    if (is_digit((unsigned char)*q)) return NULL; /* a leading zero */
    return q;
}

/* -------------------------------------------------------------- main loop */

static inline bool is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static bool value_start_char(unsigned char c)
{
    return c == '{' || c == '[' || c == '"' || c == '-' || is_digit(c) || c == 't' || c == 'f' ||
           c == 'n';
}

/* Starts a member name in the top (object) frame. */
static void begin_key(struct flt_json *f)
{
    struct frame *t = top(f);
    f->key_ext = false;
    if (t->mode == M_FILTER) {
        start_string(f, R_KEY);
        f->keyraw_len = 0;
        f->keyname_len = 0;
        f->key_overflow = false;
        key_raw(f, "\"", 1);
    } else if (t->mode == M_KEEP) {
        start_string(f, R_EMIT);
        out_byte(f, '"');
    } else {
        start_string(f, R_SKIP);
    }
    f->in_key = true;
}

/* ------------------------------------------------------------- fast loop */

static const bool ws_tab[256] = {[' '] = true, ['\t'] = true, ['\n'] = true, ['\r'] = true};

/* The first byte at or after |p| that is not whitespace, or |end|. Not
 * inlined: compact JSON has no whitespace, and inlined, the compiler builds
 * its constants wherever fast_loop() may reach it, i.e. at every token. */
static __attribute__((noinline)) const char *skip_ws(const char *p, const char *end)
{
#if defined(__SSE2__)
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i sp = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
        __m128i tr = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\t')),
                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
        __m128i w = _mm_or_si128(sp, tr);
        unsigned mask = ~(unsigned)_mm_movemask_epi8(w) & 0xFFFF;
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < end && ws_tab[(unsigned char)*p])
        p++;
    return p;
}

/* What the first byte of a value starts. */
enum { VC_BAD, VC_WS, VC_STR, VC_NUM, VC_TRUE, VC_FALSE, VC_NULL, VC_OPEN };
static const uint8_t value_class[256] = {
    [' '] = VC_WS,   ['\t'] = VC_WS,  ['\n'] = VC_WS,   ['\r'] = VC_WS,  ['"'] = VC_STR,
    ['-'] = VC_NUM,  ['0'] = VC_NUM,  ['1'] = VC_NUM,   ['2'] = VC_NUM,  ['3'] = VC_NUM,
    ['4'] = VC_NUM,  ['5'] = VC_NUM,  ['6'] = VC_NUM,   ['7'] = VC_NUM,  ['8'] = VC_NUM,
    ['9'] = VC_NUM,  ['t'] = VC_TRUE, ['f'] = VC_FALSE, ['n'] = VC_NULL, ['{'] = VC_OPEN,
    ['['] = VC_OPEN,
};

/* flt__node_kid() with its common cases inlined. */
static inline const struct flt_node *kid_lookup(const struct flt_node *n, const char *name,
                                                size_t len)
{
    uint8_t v = n->lut[flt__lut_slot(name, len)];
    if (v == 0) return NULL;
    if (v == FLT__LUT_MANY) {
        /* a shared slot: few kids are scanned faster here than searched
         * with memcmp() calls */
        if (n->nkids > 16) return flt__node_kid(n, name, len);
        for (uint32_t i = 0; i < n->nkids; i++) {
            const struct flt_node *k = n->kids[i];
            if (k->name_len == len && name_eq(k->name, name, len)) return k;
        }
        return NULL;
    }
    const struct flt_node *k = n->kids[v - 1];
    if (k->name_len == len && name_eq(k->name, name, len)) return k;
    return NULL;
}

static inline enum disp act_disp(const struct flt_node *n)
{
    if (!n->has_act) return D_FILTER;
    return n->act.kind == FLT_ACT_KEEP ? D_KEEP : D_XFORM;
}

/* out_put() for the fast loop: short copies without a call. */
static inline __attribute__((always_inline)) void span_put(struct flt_json *f, const char *s,
                                                           size_t n)
{
    if (n > 64 || n > OUT_CAP - f->out_len) {
        out_put(f, s, n);
        return;
    }
    char *d = f->out + f->out_len;
    f->out_len += n;
    if (n > 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else {
        d[0] = s[0];
        if (n > 1) {
            d[1] = s[1];
            if (n > 2) d[2] = s[2];
        }
    }
}

/* fast_loop(): the regular case (see filters/json_fast.h), compiled for the
 * x86-64 baseline (SSE2) and, where the compiler can, for x86-64-v3 CPUs
 * (AVX2: see V3_TARGET), chosen per filter at flt_json_new() by what the
 * CPU has; each without and with a report, and for any
 * document (a contract that rejects unlisted fields), chosen per document
 * at flt_json_reset(): constants there free registers and a test per
 * member. */
#define FAST_ATTR
#define FAST_STR_END str_end
#define FAST_NUMBER fast_number
#define FAST_SETUP
#define FAST_NAME fast_loop_base
#define FAST_REPORT false
#define FAST_REJECT false
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#define FAST_NAME fast_loop_base_rep
#define FAST_REPORT true
#define FAST_REJECT false
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#define FAST_NAME fast_loop_base_any
#define FAST_REPORT f->report != NULL
#define FAST_REJECT f->cfg.reject_unlisted
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#undef FAST_ATTR
#undef FAST_STR_END
#undef FAST_SETUP
#undef FAST_NUMBER

#if defined(JSON_HAVE_AVX2)
#define FAST_ATTR V3_TARGET
#define FAST_STR_END(s, end) str_end_v3(&v3k, (s), (end))
#define FAST_NUMBER(p, end) fast_number_k((p), (end), v3k.d_lo, v3k.d_hi)
#define FAST_SETUP const struct v3_k v3k = v3_k_make()
#define FAST_NAME fast_loop_avx2
#define FAST_REPORT false
#define FAST_REJECT false
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#define FAST_NAME fast_loop_avx2_rep
#define FAST_REPORT true
#define FAST_REJECT false
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#define FAST_NAME fast_loop_avx2_any
#define FAST_REPORT f->report != NULL
#define FAST_REJECT f->cfg.reject_unlisted
#include "filters/json_fast.h"
#undef FAST_NAME
#undef FAST_REPORT
#undef FAST_REJECT
#undef FAST_ATTR
#undef FAST_STR_END
#undef FAST_SETUP
#undef FAST_NUMBER
#endif

/* The fast_loop() for the document |f| starts. */
static fast_fn fast_pick(const struct flt_json *f)
{
    if (f->cfg.reject_unlisted) return f->fast_tab[2];
    return f->fast_tab[f->report != NULL];
}

/* The start of the document, when it is an object under rules without a
 * root action (what APIs send): begin_value() of its '{' without the general
 * path, so that fast_loop() takes the document from its first member. */
static const char *root_object(struct flt_json *f, const char *p, const char *end)
{
    while (p < end && ws_tab[(unsigned char)*p])
        p++;
    if (p == end || *p != '{' || f->cfg.rules->root->has_act || f->cfg.max_depth == 0) return p;
    out_byte(f, '{');
    frame_push(f, '{', M_FILTER, f->cfg.rules->root);
    f->state = S_OBJ_FIRST;
    return p + 1;
}

int flt_json_feed(struct flt_json *f, const char *p, size_t n)
{
    if (f->err) return f->err;
    const char *base = p, *end = p + n;
    if (f->disp == D_ROOT && f->state == S_VALUE) p = root_object(f, p, end);
    while (p < end) {
        if (f->state <= S_AFTER_VALUE) {
            p = f->fast(f, p, end);
            if (p == end) break;
        }
        unsigned char c = (unsigned char)*p;
        switch (f->state) {
        case S_STRING:
            p = scan_string(f, p, end, base);
            if (!p) goto out;
            continue;
        case S_NUMBER:
            p = scan_number(f, p, end, base);
            if (!p) goto out;
            continue;
        case S_LITERAL:
            if (c != (unsigned char)f->lit[f->lit_i]) {
                fail(f, FLT_E_SYNTAX, p, base);
                goto out;
            }
            if (f->role == R_EMIT) out_byte(f, (char)c);
            p++;
            if (f->lit[++f->lit_i] == '\0') value_done(f);
            continue;
        default: break;
        }
        if (is_ws(c)) {
            p++;
            continue;
        }
        switch (f->state) {
        case S_VALUE:
            if (!value_start_char(c)) {
                fail(f, FLT_E_SYNTAX, p, base);
                goto out;
            }
            if (!begin_value(f, (char)c, p, base)) goto out;
            p++;
            break;
        case S_ARR_FIRST:
            if (c == ']') {
                pop(f);
                p++;
                break;
            }
            if (!element_disp(f)) {
                fail(f, FLT_E_UNLISTED, p, base);
                goto out;
            }
            f->state = S_VALUE;
            break;
        case S_OBJ_FIRST:
            if (c == '}') {
                pop(f);
                p++;
                break;
            }
            /* fall through */
        case S_OBJ_KEY:
            if (c != '"') {
                fail(f, FLT_E_SYNTAX, p, base);
                goto out;
            }
            f->key_off = f->consumed + (uint64_t)(p - base);
            begin_key(f);
            p++;
            break;
        case S_COLON:
            if (c != ':') {
                fail(f, FLT_E_SYNTAX, p, base);
                goto out;
            }
            if (top(f)->mode == M_KEEP) {
                out_byte(f, ':');
                f->disp = D_KEEP;
            } else if (top(f)->mode == M_SKIP) {
                f->disp = D_SKIP;
            }
            f->state = S_VALUE;
            p++;
            break;
        case S_AFTER_VALUE: {
            struct frame *t = top(f);
            char closer = t->kind == '{' ? '}' : ']';
            if (c == (unsigned char)closer) {
                pop(f);
                p++;
                break;
            }
            if (c != ',') {
                fail(f, FLT_E_SYNTAX, p, base);
                goto out;
            }
            if (t->mode == M_KEEP) out_byte(f, ',');
            p++;
            if (t->kind == '{') {
                f->state = S_OBJ_KEY;
            } else {
                if (!element_disp(f)) {
                    fail(f, FLT_E_UNLISTED, p, base);
                    goto out;
                }
                f->state = S_VALUE;
            }
            break;
        }
        case S_END: fail(f, FLT_E_TRAILING, p, base); goto out;
        case S_STRING:
        case S_NUMBER:
        case S_LITERAL: break;
        }
        if (f->err) goto out;
    }
out:
    if (f->key_ext && f->state != S_END) {
        /* the name may still be needed after this chunk is gone; an
         * overflowing one is never emitted, only cut in reports */
        if (f->kraw_len > KEYRAW_CAP) f->kraw_len = KEYRAW_CAP;
        if (f->kname_len > KEYNAME_CAP) f->kname_len = KEYNAME_CAP;
        memcpy(f->keyraw, f->kraw, f->kraw_len);
        memcpy(f->keyname, f->kname, f->kname_len);
        f->kraw = f->keyraw;
        f->kname = f->keyname;
        f->keyraw_len = f->kraw_len;
        f->keyname_len = f->kname_len;
        f->key_ext = false;
    }
    f->consumed += (uint64_t)(p ? p - base : 0);
    if (f->err) {
        f->out_len = 0; /* nothing more of an invalid document */
        return f->err;
    }
    out_flush(f);
    if (f->sink_failed) {
        f->err = FLT_E_SINK;
        return f->err;
    }
    return 0;
}

int flt_json_finish(struct flt_json *f)
{
    if (f->err) return f->err;
    if (f->state == S_NUMBER && number_complete(f->num) && f->depth == 0) {
        if (f->role == R_XFORM) end_xform(f, NULL, NULL);
        f->state = S_END;
    }
    if (f->state != S_END) {
        f->err = FLT_E_INCOMPLETE;
        f->err_off = f->consumed;
        return f->err;
    }
    out_flush(f);
    if (f->sink_failed) f->err = FLT_E_SINK;
    return f->err;
}

/* ------------------------------------------------------------- lifecycle */

struct flt_json *flt_json_new(uint32_t max_depth)
{
    if (max_depth == 0) max_depth = 64;
    struct flt_json *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->frames = calloc(max_depth, sizeof *f->frames);
    if (!f->frames) {
        free(f);
        return NULL;
    }
    f->cap = max_depth;
    /* never 0, the rm_epoch of a memo entry that knows nothing, even for a
     * filter fed without flt_json_reset() first */
    f->epoch = 1;
    (void)flt__json_set_simd(f, FLT__SIMD_AVX2);
    return f;
}

int flt__json_set_simd(struct flt_json *f, int level)
{
#if defined(JSON_HAVE_AVX2)
    if (level >= FLT__SIMD_AVX2 && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
        __builtin_cpu_supports("popcnt")) {
        f->fast_tab[0] = fast_loop_avx2;
        f->fast_tab[1] = fast_loop_avx2_rep;
        f->fast_tab[2] = fast_loop_avx2_any;
        f->fast = fast_pick(f);
        f->simd = FLT__SIMD_AVX2;
        return f->simd;
    }
#endif
    (void)level;
    f->fast_tab[0] = fast_loop_base;
    f->fast_tab[1] = fast_loop_base_rep;
    f->fast_tab[2] = fast_loop_base_any;
    f->fast = fast_pick(f);
    f->simd = FLT__SIMD_BASE;
    return f->simd;
}

void flt_json_del(struct flt_json *f)
{
    if (!f) return;
    free(f->frames);
    free(f);
}

void flt_json_prefetch(const struct flt_json *f)
{
    /* the per-document fields (the first four lines); not through a
     * pointer read from |f|: that read would wait for the cold line */
    for (unsigned i = 0; i < 4; i++)
        __builtin_prefetch((const char *)f + 64 * i, 1);
}

void flt_json_reset(struct flt_json *f, const struct flt_json_config *cfg, flt_sink_fn sink,
                    void *ud, struct flt_report *report)
{
    f->cfg = *cfg;
    if (f->cfg.max_depth == 0 || f->cfg.max_depth > f->cap) f->cfg.max_depth = f->cap;
    const char *pf = cfg->report_prefix;
    if (!pf || (pf[0] == 'b' && pf[1] == 'o' && pf[2] == 'd' && pf[3] == 'y' && pf[4] == '\0')) {
        /* the usual prefix (body.c's): its length and hash made once */
        f->prefix = "body";
        f->prefix_len = 4;
        f->prefix_hash = BODY_HASH;
    } else {
        f->prefix = pf;
        f->prefix_len = strlen(pf);
        f->prefix_hash = FNV_BASIS;
        for (const char *c = pf; *c; c++)
            f->prefix_hash = fnv_byte(f->prefix_hash, (unsigned char)*c);
    }
    f->sink = sink;
    f->ud = ud;
    f->report = report;
    f->epoch++;
    f->err = 0;
    f->consumed = 0;
    f->err_off = 0;
    f->state = S_VALUE;
    f->disp = D_ROOT;
    f->disp_node = NULL;
    f->pfx_key = false;
    f->pfx_pending = false;
    f->root_value = true;
    f->depth = 0;
    f->top = NULL;
    f->names_used = 0;
    f->key_ext = false;
    f->kraw = f->keyraw;
    f->kname = f->keyname;
    f->kraw_len = f->kname_len = 0;
    f->out_len = 0;
    f->sink_failed = false;
    f->in_key = false;
    f->fast = fast_pick(f);
}

uint64_t flt_json_error_offset(const struct flt_json *f)
{
    return f->err_off;
}

const char *flt_json_unlisted_path(const struct flt_json *f)
{
    return f->err == FLT_E_UNLISTED ? f->unlisted : "";
}
