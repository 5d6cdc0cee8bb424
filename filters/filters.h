/*
 * privgate filters: pure, allocation-free-per-request filtering of request
 * bodies, query strings, path parameters and headers against compiled field
 * rules.
 *
 * Nothing in this module performs I/O, keeps global state or knows about
 * YAML or HTTP/2. Every object is owned by its caller: functions named _new
 * and _del allocate and free, _init and _reset work on caller storage.
 * Errors are negative values of enum flt_err; bytes and counts are >= 0.
 */
#ifndef PRIVGATE_FILTERS_H
#define PRIVGATE_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors */

/* X(name, value, SPEC section 5 code, human message) */
#define FLT_ERRNO_MAP(X)                                                                           \
    X(OK, 0, "ok", "ok")                                                                           \
    X(SYNTAX, -1, "invalid_body", "malformed JSON")                                                \
    X(UTF8, -2, "invalid_body", "invalid UTF-8")                                                   \
    X(DEPTH, -3, "invalid_body", "nesting deeper than max_depth")                                  \
    X(INCOMPLETE, -4, "invalid_body", "document ends early")                                       \
    X(TRAILING, -5, "invalid_body", "data after the document")                                     \
    X(FORM, -6, "invalid_body", "malformed form body")                                             \
    X(TOO_LARGE, -7, "body_too_large", "body larger than max_body")                                \
    X(UNLISTED, -8, "unlisted_field", "request carries a field the contract does not list")        \
    X(MEDIA_TYPE, -9, "unsupported_media_type", "unsupported media type")                          \
    X(ENCODING, -10, "unsupported_encoding", "unsupported content encoding")                       \
    X(COMPRESSED, -11, "invalid_body", "corrupt compressed body")                                  \
    X(NOMEM, -12, "internal_error", "out of memory")                                               \
    X(SINK, -13, "internal_error", "output sink refused data")                                     \
    X(STATE, -14, "internal_error", "filter used after an error or after finish")                  \
    X(BODY_NOT_ALLOWED, -15, "unsupported_media_type", "route forwards no body")                   \
    X(HEADER_VALUE, -16, "invalid_request", "header value contains CR, LF or NUL")                 \
    X(PATH, -17, "invalid_request", "invalid request path")                                        \
    X(QUERY, -18, "invalid_request", "malformed query string")

enum flt_err {
#define FLT__ERR_ENUM(name, value, code, msg) FLT_E_##name = (value),
    FLT_ERRNO_MAP(FLT__ERR_ENUM)
#undef FLT__ERR_ENUM
};

/* Human message for |err| (static storage). */
const char *flt_strerror(int err);
/* The SPEC section 5 error code for |err| ("invalid_body", ...). */
const char *flt_errcode(int err);

/* A view: |p| is not NUL-terminated unless said otherwise. */
struct flt_str {
    const char *p;
    size_t len;
};

/* Output sink: receives |n| bytes at |p| (valid only during the call).
 * Returns 0, or a negative value to abort the filter (FLT_E_SINK). */
typedef int (*flt_sink_fn)(void *ud, const char *p, size_t n);

/* ----------------------------------------------------------------- actions */

enum flt_action_kind {
    FLT_ACT_NONE = 0, /* ancestor only: its content is filtered */
    FLT_ACT_KEEP,
    FLT_ACT_HASH,     /* HMAC-SHA-256, lowercase hex */
    FLT_ACT_MASK,     /* keep |n| code points (first or last), others become '*' */
    FLT_ACT_TRUNCATE, /* first |n| code points */
    FLT_ACT_YEAR,     /* ISO-8601 date/date-time -> "YYYY" */
};

struct flt_action {
    enum flt_action_kind kind;
    uint32_t n;          /* MASK: code points kept; TRUNCATE: length */
    bool mask_keep_last; /* MASK: true = keep_last, false = keep_first */
};

/* True for hash, mask, truncate, year. */
static inline bool flt_action_is_transform(enum flt_action_kind k)
{
    return k >= FLT_ACT_HASH;
}

const char *flt_action_name(enum flt_action_kind k);

/* ------------------------------------------------------------------- rules */

/*
 * Compiled field rules of one route (SPEC 4.1). Build with flt_rules_new,
 * flt_rules_add for each `fields:` entry, then flt_rules_compile. After
 * compile the object is immutable and may be shared between threads;
 * lifetime is managed with flt_rules_ref/unref (starts at 1).
 */
struct flt_rules;

struct flt_rules *flt_rules_new(void);
/* Adds |path| (as written in a contract, SPEC 4.1) with |act|.
 * Returns 0, or -1 with a one-line reason in |err| (NUL-terminated, never
 * longer than |errlen|): bad path syntax, duplicate path, transform below a
 * kept container, keep above a transform. */
int flt_rules_add(struct flt_rules *r, const char *path, size_t len, const struct flt_action *act,
                  char *err, size_t errlen);
/* Resolves wildcards and checks ambiguity. Returns 0 or -1 with |err|. */
int flt_rules_compile(struct flt_rules *r, char *err, size_t errlen);
struct flt_rules *flt_rules_ref(struct flt_rules *r);
void flt_rules_unref(struct flt_rules *r);
/* Longest member name (unescaped bytes) named by any rule. */
size_t flt_rules_max_name(const struct flt_rules *r);
/* Largest mask keep count of any rule (sizes the mask window). */
uint32_t flt_rules_max_mask(const struct flt_rules *r);
/* Whether any rule needs an HMAC key. */
bool flt_rules_need_key(const struct flt_rules *r);
/* Top-level lookup for flat carriers (form bodies): the action for member
 * |name| at the root, or NULL when it is not allowed. A root `$: keep`
 * or `*` entry applies. Container-only entries (ancestors) return NULL. */
const struct flt_action *flt_rules_lookup_top(const struct flt_rules *r, const char *name,
                                              size_t len);

/* Parse one contract path into a normalised display form (for registers
 * and error messages). Returns length written or -1 with |err|. */
int flt_path_normalise(const char *path, size_t len, char *out, size_t outlen, char *err,
                       size_t errlen);

/* ------------------------------------------------------------------ report */

/*
 * Removed / transformed paths of one request (SPEC 7): each path once, at
 * most FLT_REPORT_MAX kept, the rest counted in |more|. Fixed storage: no
 * allocation. Paths longer than FLT_REPORT_PATH_MAX are cut and end "...".
 */
#define FLT_REPORT_MAX 64
#define FLT_REPORT_PATH_MAX 256
#define FLT_REPORT_SEEN 512

struct flt_pathlist {
    /* the fields flt_report_init resets, on one cache line: a pooled
     * exchange resets two lists per request, and touching five lines (and
     * pages) of a 45 KiB report for it showed in misses and in RSS */
    uint32_t n;     /* paths stored */
    uint32_t more;  /* further distinct paths (approximate past FLT_REPORT_SEEN) */
    uint32_t total; /* every add, duplicates included (for metrics) */
    uint32_t nseen; /* slots in use in the seen set below */
    size_t text_used;
    /* Order-dependent hash of the stored paths' hashes (0 when none): a
     * cache key for whoever renders the list (the audit log), who must
     * still compare the text itself — never trusted alone. */
    uint64_t list_hash;
    uint16_t off[FLT_REPORT_MAX];
    uint16_t len[FLT_REPORT_MAX];
    /* Open-addressing set of path hashes. Slot i is in use when
     * seen_slot[seen_pos[i]] == i and seen_pos[i] < nseen (a sparse set):
     * flt_report_init() only sets nseen = 0, whatever the arrays hold, so a
     * request pays nothing for the slots it did not use. */
    uint64_t seen[FLT_REPORT_SEEN];              /* hash of slot i, when in use */
    uint16_t seen_pos[FLT_REPORT_SEEN];          /* slot -> its index in seen_slot */
    uint16_t seen_slot[FLT_REPORT_SEEN * 3 / 4]; /* slots in use, in insertion order */
    char text[FLT_REPORT_MAX * FLT_REPORT_PATH_MAX];
};

struct flt_report {
    struct flt_pathlist removed;
    struct flt_pathlist transformed;
    /* first unlisted path seen (for unlisted: reject error messages) */
};

void flt_report_init(struct flt_report *r);
/* Adds a path made of |prefix| (e.g. "body", "query") + |path|. |path| may be
 * empty (then the path is |prefix| alone); it is joined with '.' unless it
 * starts with '['. */
void flt_pathlist_add(struct flt_pathlist *l, const char *prefix, const char *path, size_t len);
/* The |i|-th stored path. */
struct flt_str flt_pathlist_get(const struct flt_pathlist *l, uint32_t i);

/* -------------------------------------------------------------- transforms */

/*
 * Streaming transform of one value (SPEC 4.1). Feed the unescaped value's
 * bytes (valid UTF-8), then end. Output (unescaped UTF-8) goes to |emit|;
 * the caller encodes it for its carrier (JSON string, percent-encoding).
 * Only `year` can fail (flt_xform_end returns 1: the member is removed);
 * `year` emits nothing before end.
 */
#define FLT_HMAC_KEY_MAX 256
#define FLT_MASK_MAX 64 /* largest keep_first/keep_last accepted in contracts */

struct flt_hmac_key {
    uint8_t ipad_state[128]; /* opaque precomputed SHA-256 states */
    uint8_t opad_state[128];
    bool set;
};

/* Precomputes the HMAC-SHA-256 states for |key|. */
void flt_hmac_key_init(struct flt_hmac_key *k, const uint8_t *key, size_t len);
/* One-shot HMAC-SHA-256 of |in| as 64 lowercase hex chars into |hex| (no NUL). */
void flt_hmac_hex(const struct flt_hmac_key *k, const char *in, size_t len, char hex[64]);

struct flt_xform {
    const struct flt_action *act;
    const struct flt_hmac_key *key;
    uint8_t sha[128]; /* running inner hash state */
    uint64_t cps;     /* code points started */
    bool failed;      /* year: not a date */
    /* mask keep_last: ring of the last |act->n| code points, 4 bytes a slot */
    uint32_t ring_count, ring_head;
    char ring[FLT_MASK_MAX * 4];
    char cp_buf[4]; /* code point being assembled (keep_last) */
    uint8_t cp_len, cp_need;
    /* year: position in the ISO-8601 grammar and the fields read so far */
    uint8_t y_state, y_digits;
    uint16_t y_num;
    uint16_t y_year;
    uint8_t y_month;
    char y_text[4];
};

void flt_xform_begin(struct flt_xform *x, const struct flt_action *act,
                     const struct flt_hmac_key *key);
/* Returns 0 or the sink's error. */
int flt_xform_feed(struct flt_xform *x, const char *p, size_t n, flt_sink_fn emit, void *ud);
/* Returns 0 (done), 1 (value unreadable: remove the member; nothing was
 * emitted), or the sink's error. */
int flt_xform_end(struct flt_xform *x, flt_sink_fn emit, void *ud);

/* -------------------------------------------------------------------- JSON */

/* Longest member name (unescaped) a contract path may name. */
#define FLT_NAME_MAX 1024

struct flt_json_config {
    const struct flt_rules *rules;  /* borrowed; must outlive the document */
    const struct flt_hmac_key *key; /* borrowed; NULL if no rule hashes */
    uint32_t max_depth;             /* containers; 0 = the filter's capacity */
    bool reject_unlisted;           /* unlisted: reject -> FLT_E_UNLISTED on first removal */
    const char *report_prefix;      /* "body" if NULL */
};

struct flt_json;

/* Allocates a filter able to nest |max_depth| containers (0 = 64): all the
 * memory it will ever use. NULL on OOM. */
struct flt_json *flt_json_new(uint32_t max_depth);
void flt_json_del(struct flt_json *f);
/* flt_body_prefetch for a JSON filter: its per-document fields. */
void flt_json_prefetch(const struct flt_json *f);
/* Starts a new document with |cfg| (copied; its pointers borrowed). Output
 * goes to |sink|, paths to |report| (may be NULL). Reuses all memory. */
void flt_json_reset(struct flt_json *f, const struct flt_json_config *cfg, flt_sink_fn sink,
                    void *ud, struct flt_report *report);
/* Feeds |n| bytes. Returns 0 or a negative enum flt_err; after an error
 * every call returns it again. Output is delivered to the sink before the
 * call returns (the filter keeps no output of its own across calls). */
int flt_json_feed(struct flt_json *f, const char *p, size_t n);
/* Ends the document: checks it was complete. Returns 0 or an error. */
int flt_json_finish(struct flt_json *f);
/* Byte offset in the input where the error was found. */
uint64_t flt_json_error_offset(const struct flt_json *f);
/* For FLT_E_UNLISTED: the path that was not listed (NUL-terminated). */
const char *flt_json_unlisted_path(const struct flt_json *f);

#include "filters/carriers.h"

#endif
