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
 *   (SSE2, the x86-64 baseline; a scalar path elsewhere). Repeated report
 *   paths are counted without being rebuilt (report_again()).
 */
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "filters/int.h"

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

struct flt_json {
    struct flt_json_config cfg;
    flt_sink_fn sink;
    void *ud;
    struct flt_report *report;
    const char *prefix;
    uint64_t prefix_hash; /* FNV-1a state after |prefix| */
    int err;
    uint64_t consumed; /* bytes of previous chunks */
    uint64_t err_off;

    enum state state;
    enum role role;
    bool in_key; /* the current string is a member name */
    enum disp disp;
    const struct flt_node *disp_node;
    bool pfx_key;     /* the pending value's prefix includes the buffered key */
    bool pfx_pending; /* XFORM: prefix + opening quote not written yet */
    bool root_value;  /* the pending value is the document's root */

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

    struct flt_xform xf;

    /* member name of a FILTER object: |kraw| (with quotes, as sent) and
     * |kname| (unescaped) point into the input chunk when the name arrived
     * whole and plain, else into keyraw/keyname. */
    const char *kraw, *kname;
    size_t kraw_len, kname_len;
    bool key_ext;   /* kraw/kname point into the caller's chunk */
    bool kid_named; /* the member matched a named rule (not `*`) */
    size_t keyraw_len, keyname_len;
    bool key_overflow;
    uint64_t key_off; /* input offset of the current name's opening quote */
    char keyraw[KEYRAW_CAP];
    char keyname[KEYNAME_CAP];

    /* path_hash_name() results: (state, name) -> state, a pure function */
    struct path_memo {
        uint64_t ph, h;
        uint16_t plen, len, nlen;
        char name[PATH_MEMO_NAME];
    } memo[PATH_MEMO];

    /* names of `*`-matched FILTER containers on the current path */
    char names[PATH_CAP];
    size_t names_used;
    char unlisted[FLT_REPORT_PATH_MAX + 8];

    uint32_t depth, cap;
    struct frame *frames;
    struct frame *top; /* frames[depth - 1], NULL at the root */

    size_t out_len;
    bool sink_failed;
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
    }
    return true;
}

/* Whether report.c's set of |l| holds the path hash |h| (its probing). */
static inline bool seen_has(const struct flt_pathlist *l, uint64_t h)
{
    return flt__seen_has(l, h ? h : 1);
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
 * flt_pathlist_add() would and returns true. False: add it the full way. */
static bool report_again(struct flt_json *f, struct flt_pathlist *l)
{
    const struct frame *t = top(f);
    /* report.c counts every path as new once its set is 3/4 full */
    if (!t || !t->ph_ok || l->nseen >= FLT__SEEN_LIMIT) return false;
    uint64_t h = t->ph;
    size_t len = t->plen;
    if (t->kind == '{' ? !path_hash_name_memo(f, &h, &len, f->kname, f->kname_len)
                       : !path_hash_elem(&h, &len))
        return false;
    if (!seen_has(l, h)) return false;
    l->total++;
    return true;
}

/* Records the removal of the pending value. Returns false when the contract
 * rejects unlisted fields (the filter is then in error). */
static bool report_removed(struct flt_json *f, bool unlisted)
{
    if (!f->report && !(unlisted && f->cfg.reject_unlisted)) return true;
    if (!(unlisted && f->cfg.reject_unlisted) && report_again(f, &f->report->removed)) return true;
    char tmp[PATH_CAP];
    size_t len = pending_path(f, tmp);
    if (unlisted && f->cfg.reject_unlisted) {
        size_t pl = strlen(f->prefix);
        size_t w = 0;
        for (size_t i = 0; i < pl && w < FLT_REPORT_PATH_MAX; i++)
            f->unlisted[w++] = f->prefix[i];
        if (len && tmp[0] != '[' && w < FLT_REPORT_PATH_MAX) f->unlisted[w++] = '.';
        for (size_t i = 0; i < len && w < FLT_REPORT_PATH_MAX; i++)
            f->unlisted[w++] = tmp[i];
        f->unlisted[w] = '\0';
        return false;
    }
    if (f->report) flt_pathlist_add(&f->report->removed, f->prefix, tmp, len);
    return true;
}

static void report_transformed(struct flt_json *f)
{
    if (!f->report || report_again(f, &f->report->transformed)) return;
    char tmp[PATH_CAP];
    size_t len = pending_path(f, tmp);
    flt_pathlist_add(&f->report->transformed, f->prefix, tmp, len);
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
    frame_path_hash(f, fr, parent);
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

static inline const char *fast_number(const char *p, const char *end)
{
#if defined(__SSE2__)
    /* the usual short number: one 16-byte load, its digits as a bit mask,
     * the grammar on the mask; all the bytes read lie in the chunk, so the
     * byte after the number is there too */
    if (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i dg = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                   _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
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
#endif
    return fast_number_long(p, end);
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

/* The first byte at or after |p| that is not whitespace, or |end|. */
static const char *skip_ws(const char *p, const char *end)
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
    if (n > 32 || n > OUT_CAP - f->out_len) {
        out_put(f, s, n);
        return;
    }
    char *d = f->out + f->out_len;
    f->out_len += n;
    if (n >= 16) {
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

/*
 * The regular case, with the parser's position, state, top frame, pending
 * disposition and member name in local variables: whitespace, structural
 * bytes, plain member names and scalars lying whole in the chunk, under
 * keep, skip and filter dispositions. Everything else (a string with an
 * escape or a non-ASCII byte, a token cut by the chunk's end, a transformed
 * value, the root value, anything invalid, a decision that rejects the
 * document) returns to the general path at the start of that token, with
 * |f| as the general path would have left it there; the general path then
 * handles the token as it always did. So this loop changes no output,
 * report or error, and any chunking still gives the same result.
 *
 * Every byte written here is a copy of an input byte (a comma or colon may
 * come from a static string), so output is gathered as one pending span of
 * the input [ss, se), extended while the kept bytes are contiguous and
 * copied out when they stop being so (and before returning: the span may
 * point into the caller's chunk).
 */
static const char *fast_loop(struct flt_json *f, const char *p, const char *end)
{
    struct frame *t = top(f);
    enum state st = f->state;
    const char *ss = NULL, *se = NULL;     /* pending output span */
    const char *comma = ",", *colon = ":"; /* the last ',' and ':' read */
    const bool reject = f->cfg.reject_unlisted;
    const bool report = f->report != NULL;
    /* the pending value: f->disp, f->disp_node, f->pfx_key, and the member
     * name (f->kraw...) when |key_here| (a name read by this loop) */
    enum disp d = f->disp;
    const struct flt_node *dnode = f->disp_node;
    bool pfx = f->pfx_key;
    const char *kraw = f->kraw;
    size_t kraw_len = f->kraw_len;
    bool kid_named = f->kid_named, key_here = false;
    const char *q;
    unsigned char c;

#define EMIT(ptr, n)                                                                               \
    do {                                                                                           \
        const char *e_ = (ptr);                                                                    \
        if (e_ != se) {                                                                            \
            if (se != ss) span_put(f, ss, (size_t)(se - ss));                                      \
            ss = e_;                                                                               \
        }                                                                                          \
        se = e_ + (n);                                                                             \
    } while (0)
#define LEAVE(s)                                                                                   \
    do {                                                                                           \
        st = (s);                                                                                  \
        goto out;                                                                                  \
    } while (0)
#define SKIP_WS(s)                                                                                 \
    do {                                                                                           \
        if (p == end) LEAVE(s);                                                                    \
        c = (unsigned char)*p;                                                                     \
        if (ws_tab[c]) {                                                                           \
            p = skip_ws(p + 1, end);                                                               \
            if (p == end) LEAVE(s);                                                                \
            c = (unsigned char)*p;                                                                 \
        }                                                                                          \
    } while (0)
    /* the member name as the general path keeps it, for the functions that
     * read it (pending_path(), frame_push()) */
#define SYNC_KEY()                                                                                 \
    do {                                                                                           \
        if (key_here) {                                                                            \
            f->kraw = kraw;                                                                        \
            f->kraw_len = kraw_len;                                                                \
            f->kname = kraw + 1;                                                                   \
            f->kname_len = kraw_len - 2;                                                           \
            f->key_ext = true;                                                                     \
            f->kid_named = kid_named;                                                              \
        }                                                                                          \
    } while (0)
    /* report_removed() of an unlisted value (the caller excluded reject) */
#define REPORT_REMOVED()                                                                           \
    do {                                                                                           \
        if (report) {                                                                              \
            SYNC_KEY();                                                                            \
            (void)report_removed(f, true);                                                         \
        }                                                                                          \
    } while (0)
    /* emit_prefix() */
#define PREFIX()                                                                                   \
    do {                                                                                           \
        if (t->emitted) EMIT(comma, 1);                                                            \
        t->emitted = true;                                                                         \
        if (pfx) {                                                                                 \
            EMIT(kraw, kraw_len);                                                                  \
            EMIT(colon, 1);                                                                        \
        }                                                                                          \
    } while (0)
    /* element_disp(), its rejection excluded by the caller */
#define ELEMENT_DISP()                                                                             \
    do {                                                                                           \
        pfx = false;                                                                               \
        if (t->node->elem) {                                                                       \
            dnode = t->node->elem;                                                                 \
            d = act_disp(dnode);                                                                   \
        } else {                                                                                   \
            d = D_SKIP;                                                                            \
            dnode = NULL;                                                                          \
            REPORT_REMOVED();                                                                      \
        }                                                                                          \
    } while (0)

    if (!t) return p; /* the root value */
    /* set by the first element_disp() or decide_member() of the root
     * container, and read only after one */
    f->root_value = false;
    if (t->mode == M_KEEP) {
        d = D_KEEP; /* what colon / ELEMENT_DISP() set in a KEEP frame */
        ss = se = p;
        switch (st) {
        case S_VALUE: goto keep_value;
        case S_ARR_FIRST: goto keep_arr_first;
        case S_OBJ_FIRST: goto keep_obj_first;
        case S_OBJ_KEY: goto keep_key;
        case S_COLON: goto keep_colon;
        case S_AFTER_VALUE: goto keep_after;
        default: return p;
        }
    }
    if (t->mode == M_SKIP) {
        d = D_SKIP; /* what colon / ELEMENT_DISP() set in a SKIP frame */
        switch (st) {
        case S_VALUE: goto skip_value;
        case S_ARR_FIRST: goto skip_arr_first;
        case S_OBJ_FIRST: goto skip_obj_first;
        case S_OBJ_KEY: goto skip_key;
        case S_COLON: goto skip_colon;
        case S_AFTER_VALUE: goto skip_after;
        default: return p;
        }
    }
    switch (st) {
    case S_VALUE: goto value;
    case S_ARR_FIRST: goto arr_first;
    case S_OBJ_FIRST: goto obj_first;
    case S_OBJ_KEY: goto obj_key;
    case S_COLON: goto colon;
    case S_AFTER_VALUE: goto after_value;
    default: return p;
    }

value:
    if (p == end) LEAVE(S_VALUE);
    c = (unsigned char)*p;
    if (d > D_FILTER) {
        if (d == D_XFORM) goto xform;
        LEAVE(S_VALUE);
    }
    switch (value_class[c]) {
    case VC_STR:
        q = str_end(p + 1, end);
        if (!q) LEAVE(S_VALUE);
        q++;
        break;
    case VC_NUM:
        q = fast_number(p, end);
        if (!q) LEAVE(S_VALUE);
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) LEAVE(S_VALUE);
        q = p + 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) LEAVE(S_VALUE);
        q = p + 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) LEAVE(S_VALUE);
        q = p + 4;
        break;
    case VC_OPEN: {
        enum mode m = d == D_KEEP ? M_KEEP : M_SKIP;
        if (f->depth == f->cfg.max_depth) LEAVE(S_VALUE);
        if (d == D_FILTER) {
            if (c == '{' ? dnode->has_members : dnode->elem != NULL) {
                m = M_FILTER;
            } else {
                if (reject) LEAVE(S_VALUE);
                REPORT_REMOVED();
            }
        }
        if (m == M_SKIP) {
            frame_push(f, (char)c, M_SKIP, NULL);
            t = top(f);
            d = D_SKIP;
            p++;
            if (c == '[') goto skip_arr_first;
            goto skip_obj_first;
        }
        PREFIX();
        EMIT(p, 1); /* the span now ends at p + 1, as the keep lane needs */
        if (m == M_KEEP) {
            frame_push(f, (char)c, M_KEEP, NULL);
            t = top(f);
            d = D_KEEP;
            p++;
            if (c == '[') goto keep_arr_first;
            goto keep_obj_first;
        }
        SYNC_KEY();
        frame_push(f, (char)c, M_FILTER, dnode);
        t = top(f);
        p++;
        if (c == '[') goto arr_first;
        goto obj_first;
    }
    case VC_WS: p = skip_ws(p + 1, end); goto value;
    default: LEAVE(S_VALUE);
    }
    if (d == D_KEEP) {
        PREFIX();
        EMIT(p, (size_t)(q - p));
    } else if (d == D_FILTER) { /* an ancestor met a scalar */
        if (reject) LEAVE(S_VALUE);
        REPORT_REMOVED();
    }
    p = q;
    goto after_value; /* t is not NULL: S_AFTER_VALUE */

xform:
    /* begin_value() to end_xform() for a plain string or a number whole in
     * the chunk: the same calls, in the same order, as the general path */
    if (c == '"') {
        q = str_end(p + 1, end);
        if (!q) LEAVE(S_VALUE);
    } else if (c == '-' || is_digit(c)) {
        if (dnode->act.kind == FLT_ACT_YEAR) LEAVE(S_VALUE); /* not readable */
        q = fast_number(p, end);
        if (!q) LEAVE(S_VALUE);
    } else {
        LEAVE(S_VALUE);
    }
    if (se != ss) span_put(f, ss, (size_t)(se - ss)); /* output stays in order */
    ss = se = NULL;
    SYNC_KEY();
    f->pfx_key = pfx;
    f->pfx_pending = true;
    flt_xform_begin(&f->xf, &dnode->act, f->cfg.key);
    if (c == '"') {
        if (q > p + 1) flt_xform_feed(&f->xf, p + 1, (size_t)(q - p - 1), xform_emit, f);
        q++;
    } else {
        flt_xform_feed(&f->xf, p, 1, xform_emit, f);
        if (q > p + 1) flt_xform_feed(&f->xf, p + 1, (size_t)(q - p - 1), xform_emit, f);
    }
    (void)end_xform(f, NULL, NULL);
    p = q;

after_value:
    if (p == end) LEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        if (t->kind == '{') {
            comma = p++;
            goto obj_key;
        }
        if (reject && !t->node->elem) LEAVE(S_AFTER_VALUE);
        comma = p++;
        ELEMENT_DISP();
        goto value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto close; /* '{' + 2 == '}' */
    if (!ws_tab[c]) LEAVE(S_AFTER_VALUE);
    p = skip_ws(p + 1, end);
    goto after_value;

close:
    /* pop() */
    f->depth--;
    EMIT(p, 1);
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    if (!t) LEAVE(S_END);
    goto after_value;

arr_first:
    SKIP_WS(S_ARR_FIRST);
    if (c == ']') goto close;
    if (reject && !t->node->elem) LEAVE(S_ARR_FIRST);
    ELEMENT_DISP();
    goto value;

obj_first:
    SKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto close;
    goto key;

obj_key:
    if (p == end) LEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
    if (ws_tab[c]) {
        p = skip_ws(p + 1, end);
        goto obj_key;
    }
key:
    if (c != '"') LEAVE(S_OBJ_KEY);
    q = str_end(p + 1, end);
    if (!q) LEAVE(S_OBJ_KEY);
    q++;
    {
        /* as the general path's whole-name case, then decide_member() */
        size_t len = (size_t)(q - p) - 2;
        const struct flt_node *kid = NULL;
        kid_named = false;
        if (len <= FLT_NAME_MAX) { /* else key_overflow: no rule is that long */
            kid = kid_lookup(t->node, p + 1, len);
            kid_named = kid != NULL;
            if (!kid) kid = t->node->star;
        }
        if (!kid && reject) LEAVE(S_OBJ_KEY);
        kraw = p;
        kraw_len = len + 2;
        key_here = true;
        pfx = true;
        dnode = kid;
        if (kid) {
            d = act_disp(kid);
        } else {
            d = D_SKIP;
            if (report) {
                /* report_removed(), its common case inline: the path is
                 * known to the memo and already in the list */
                struct flt_pathlist *l = &f->report->removed;
                uint64_t h = t->ph;
                size_t plen = t->plen;
                if (t->ph_ok && l->nseen < FLT__SEEN_LIMIT && memo_get(f, &h, &plen, p + 1, len) &&
                    seen_has(l, h)) {
                    l->total++;
                } else {
                    SYNC_KEY();
                    (void)report_removed(f, true);
                }
            }
        }
    }
    p = q;

colon:
    if (p == end) LEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) LEAVE(S_COLON);
        p = skip_ws(p + 1, end);
        goto colon;
    }
    colon = p++;
    goto value;

    /*
     * The skip lane: inside a removed (SKIP) container, whose content is
     * validated and dropped. Same grammar and the same exits to the general
     * path as above, without dispositions, prefixes or output: every
     * container below a SKIP one is SKIP too, so only closing the outermost
     * one leaves the lane. |d| stays D_SKIP, as colon and ELEMENT_DISP()
     * would set it in a SKIP frame.
     */
skip_arr_first:
    SKIP_WS(S_ARR_FIRST);
    if (c == ']') goto skip_close;
    goto skip_value_c;

skip_obj_first:
    SKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto skip_close;
    goto skip_key_c;

skip_value:
    if (p == end) LEAVE(S_VALUE);
    c = (unsigned char)*p;
skip_value_c:
    switch (value_class[c]) {
    case VC_STR:
        q = str_end(p + 1, end);
        if (!q) LEAVE(S_VALUE);
        p = q + 1;
        break;
    case VC_NUM:
        q = fast_number(p, end);
        if (!q) LEAVE(S_VALUE);
        p = q;
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) LEAVE(S_VALUE);
        p += 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) LEAVE(S_VALUE);
        p += 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) LEAVE(S_VALUE);
        p += 4;
        break;
    case VC_OPEN:
        if (f->depth == f->cfg.max_depth) LEAVE(S_VALUE);
        frame_push(f, (char)c, M_SKIP, NULL);
        t = top(f);
        p++;
        if (c == '[') goto skip_arr_first;
        goto skip_obj_first;
    case VC_WS: p = skip_ws(p + 1, end); goto skip_value;
    default: LEAVE(S_VALUE);
    }

skip_after:
    if (p == end) LEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        p++;
        if (t->kind == '{') goto skip_key;
        goto skip_value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto skip_close;
    if (!ws_tab[c]) LEAVE(S_AFTER_VALUE);
    p = skip_ws(p + 1, end);
    goto skip_after;

skip_close:
    f->depth--;
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    if (!t) LEAVE(S_END);
    if (t->mode == M_SKIP) goto skip_after;
    goto after_value;

skip_key:
    if (p == end) LEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
skip_key_c:
    if (c != '"') {
        if (!ws_tab[c]) LEAVE(S_OBJ_KEY);
        p = skip_ws(p + 1, end);
        goto skip_key;
    }
    q = str_end(p + 1, end);
    if (!q) LEAVE(S_OBJ_KEY);
    p = q + 1;

skip_colon:
    if (p == end) LEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) LEAVE(S_COLON);
        p = skip_ws(p + 1, end);
        goto skip_colon;
    }
    p++;
    goto skip_value;

    /*
     * The keep lane: inside a kept (KEEP) container, copied whole minus
     * whitespace. The same grammar as the skip lane, with the output span
     * [ss, se) extended over every byte read (se = p when leaving) and cut
     * around whitespace. |d| stays D_KEEP, as colon and ELEMENT_DISP() would
     * set it in a KEEP frame. Every container below a KEEP one is KEEP.
     */
#define KLEAVE(s)                                                                                  \
    do {                                                                                           \
        se = p;                                                                                    \
        LEAVE(s);                                                                                  \
    } while (0)
    /* whitespace at p: the span ends before it, a new one starts after it */
#define KWS()                                                                                      \
    do {                                                                                           \
        se = p;                                                                                    \
        p = skip_ws(p + 1, end);                                                                   \
        if (se != ss) span_put(f, ss, (size_t)(se - ss));                                          \
        ss = se = p;                                                                               \
    } while (0)
#define KSKIP_WS(s)                                                                                \
    do {                                                                                           \
        if (p == end) KLEAVE(s);                                                                   \
        c = (unsigned char)*p;                                                                     \
        if (ws_tab[c]) {                                                                           \
            KWS();                                                                                 \
            if (p == end) KLEAVE(s);                                                               \
            c = (unsigned char)*p;                                                                 \
        }                                                                                          \
    } while (0)
keep_arr_first:
    KSKIP_WS(S_ARR_FIRST);
    if (c == ']') goto keep_close;
    goto keep_value_c;

keep_obj_first:
    KSKIP_WS(S_OBJ_FIRST);
    if (c == '}') goto keep_close;
    goto keep_key_c;

keep_value:
    if (p == end) KLEAVE(S_VALUE);
    c = (unsigned char)*p;
keep_value_c:
    switch (value_class[c]) {
    case VC_STR:
        q = str_end(p + 1, end);
        if (!q) KLEAVE(S_VALUE);
        p = q + 1;
        break;
    case VC_NUM:
        q = fast_number(p, end);
        if (!q) KLEAVE(S_VALUE);
        p = q;
        break;
    case VC_TRUE:
        if (end - p < 4 || memcmp(p, "true", 4) != 0) KLEAVE(S_VALUE);
        p += 4;
        break;
    case VC_FALSE:
        if (end - p < 5 || memcmp(p, "false", 5) != 0) KLEAVE(S_VALUE);
        p += 5;
        break;
    case VC_NULL:
        if (end - p < 4 || memcmp(p, "null", 4) != 0) KLEAVE(S_VALUE);
        p += 4;
        break;
    case VC_OPEN:
        if (f->depth == f->cfg.max_depth) KLEAVE(S_VALUE);
        frame_push(f, (char)c, M_KEEP, NULL);
        t = top(f);
        p++;
        if (c == '[') goto keep_arr_first;
        goto keep_obj_first;
    case VC_WS: KWS(); goto keep_value;
    default: KLEAVE(S_VALUE);
    }

keep_after:
    if (p == end) KLEAVE(S_AFTER_VALUE);
    c = (unsigned char)*p;
    if (c == ',') {
        p++;
        if (t->kind == '{') goto keep_key;
        goto keep_value;
    }
    if (c == (unsigned char)(t->kind + 2)) goto keep_close;
    if (!ws_tab[c]) KLEAVE(S_AFTER_VALUE);
    KWS();
    goto keep_after;

keep_close:
    f->depth--;
    f->names_used = t->names_used;
    t = f->depth ? t - 1 : NULL;
    f->top = t;
    p++;
    se = p;
    if (!t) LEAVE(S_END);
    if (t->mode == M_KEEP) goto keep_after;
    goto after_value;

keep_key:
    if (p == end) KLEAVE(S_OBJ_KEY);
    c = (unsigned char)*p;
keep_key_c:
    if (c != '"') {
        if (!ws_tab[c]) KLEAVE(S_OBJ_KEY);
        KWS();
        goto keep_key;
    }
    q = str_end(p + 1, end);
    if (!q) KLEAVE(S_OBJ_KEY);
    p = q + 1;

keep_colon:
    if (p == end) KLEAVE(S_COLON);
    c = (unsigned char)*p;
    if (c != ':') {
        if (!ws_tab[c]) KLEAVE(S_COLON);
        KWS();
        goto keep_colon;
    }
    p++;
    goto keep_value;
#undef KLEAVE
#undef KWS
#undef KSKIP_WS

out:
    if (se != ss) span_put(f, ss, (size_t)(se - ss));
    SYNC_KEY();
    f->disp = d;
    f->disp_node = dnode;
    f->pfx_key = pfx;
    f->state = st;
    return p;
#undef EMIT
#undef LEAVE
#undef SKIP_WS
#undef SYNC_KEY
#undef REPORT_REMOVED
#undef PREFIX
#undef ELEMENT_DISP
}

int flt_json_feed(struct flt_json *f, const char *p, size_t n)
{
    if (f->err) return f->err;
    const char *base = p, *end = p + n;
    while (p < end) {
        if (f->state <= S_AFTER_VALUE) {
            p = fast_loop(f, p, end);
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
    if (f->key_ext) {
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
    return f;
}

void flt_json_del(struct flt_json *f)
{
    if (!f) return;
    free(f->frames);
    free(f);
}

void flt_json_reset(struct flt_json *f, const struct flt_json_config *cfg, flt_sink_fn sink,
                    void *ud, struct flt_report *report)
{
    f->cfg = *cfg;
    if (f->cfg.max_depth == 0 || f->cfg.max_depth > f->cap) f->cfg.max_depth = f->cap;
    f->prefix = cfg->report_prefix ? cfg->report_prefix : "body";
    f->prefix_hash = FNV_BASIS;
    for (const char *c = f->prefix; *c; c++)
        f->prefix_hash = fnv_byte(f->prefix_hash, (unsigned char)*c);
    f->sink = sink;
    f->ud = ud;
    f->report = report;
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
    f->unlisted[0] = '\0';
    f->in_key = false;
}

uint64_t flt_json_error_offset(const struct flt_json *f)
{
    return f->err_off;
}

const char *flt_json_unlisted_path(const struct flt_json *f)
{
    return f->unlisted;
}
