/*
 * privgate filters: the carriers other than a bare JSON document — NDJSON,
 * form bodies, query strings, path parameters, headers, content encodings —
 * and the body pipeline that ties them together (SPEC 4.2, 4.3, 4.4).
 * Included by filters.h; same conventions.
 */
#ifndef PRIVGATE_FILTERS_CARRIERS_H
#define PRIVGATE_FILTERS_CARRIERS_H

#ifndef PRIVGATE_FILTERS_H
#error "include filters/filters.h"
#endif

/* A sorted list of names (lower-case for headers), compared byte for byte. */
struct flt_namelist {
    const struct flt_str *v;
    size_t n;
};
/* Whether |name| is in |l| (binary search; |l| must be sorted by
 * length-then-bytes as flt_namelist_sort leaves it). */
bool flt_namelist_has(const struct flt_namelist *l, const char *name, size_t len);
/* Sorts |v| in place for flt_namelist_has. */
void flt_namelist_sort(struct flt_str *v, size_t n);

/* ------------------------------------------------------------ media types */

enum flt_media {
    FLT_MEDIA_NONE = 0, /* no content-type header */
    FLT_MEDIA_JSON,     /* application/json, application/x+json */
    FLT_MEDIA_NDJSON,   /* application/x-ndjson, application/jsonl */
    FLT_MEDIA_FORM,     /* application/x-www-form-urlencoded */
    FLT_MEDIA_OTHER,    /* anything else (only for opaque routes) */
};

/* Classifies a content-type value (RFC 9110 media type, case-insensitive,
 * optional whitespace before ';', parameters). Returns 0, or FLT_E_MEDIA_TYPE
 * when a charset other than utf-8 is given or the value is malformed. The
 * charset is only checked for the types privgate parses (JSON, NDJSON,
 * form): FLT_MEDIA_OTHER accepts any charset (opaque routes). */
int flt_media_parse(const char *v, size_t len, enum flt_media *out);

enum flt_encoding {
    FLT_ENC_IDENTITY = 0,
    FLT_ENC_GZIP,
    FLT_ENC_DEFLATE,
};
/* Parses a content-encoding value ("identity", "gzip", "x-gzip", "deflate",
 * case-insensitive). Returns 0 or FLT_E_ENCODING. */
int flt_encoding_parse(const char *v, size_t len, enum flt_encoding *out);

/* --------------------------------------------------------------- headers */

/* Whether request header |name| (lower case) is in the SPEC 4.3 safe set. */
bool flt_header_is_safe(const char *name, size_t len);
/* Whether a header value is acceptable (no CR, LF, NUL). */
bool flt_header_value_ok(const char *v, size_t len);

/* ------------------------------------------------------------------ query */

/*
 * Filters query string |q| (without '?') keeping parameters whose decoded
 * name is in |allowed|; kept parameters are copied byte-exact, in order,
 * joined by '&'. Removed names go to |report| as "query.<name>". With
 * |reject_unlisted| the first removal returns FLT_E_UNLISTED; its path is
 * then the last one in |report|->removed (for the error message).
 * Writes at most |cap| bytes to |out| (len(q) always suffices).
 * Returns the output length or a negative enum flt_err (FLT_E_QUERY for
 * a malformed percent-escape anywhere in |q|, names and values alike;
 * FLT_E_NOMEM when |cap| is too small).
 * Also FLT_E_QUERY, for the whole string, before anything is kept: a raw
 * ';' (some provider parsers split on it too), a raw control byte, DEL,
 * space, '#' or non-ASCII byte, or a name that does not percent-decode to
 * valid UTF-8 (so reported names always are valid UTF-8).
 */
long flt_query_filter(const char *q, size_t len, const struct flt_namelist *allowed,
                      bool reject_unlisted, char *out, size_t cap, struct flt_report *report);

/* ---------------------------------------------------------- path template */

enum flt_param_action { FLT_PARAM_KEEP = 0, FLT_PARAM_HASH };

#define FLT_TEMPLATE_MAX_SEGMENTS 32

/* A compiled route path: "/v1/customers/{customer_id}/shipments", or one ending
 * in a "*" segment ("/v1/labels/" then "*"). */
struct flt_template {
    uint32_t nseg;
    bool rest; /* ends in '*' */
    struct {
        struct flt_str lit; /* literal segment text, or the parameter name */
        bool param;
        enum flt_param_action action;
    } seg[FLT_TEMPLATE_MAX_SEGMENTS];
};

/* Compiles |pattern| (borrowed: must outlive |t|). Returns 0 or -1 with |err|. */
int flt_template_compile(struct flt_template *t, const char *pattern, size_t len, char *err,
                         size_t errlen);
/* Sets the action of parameter |name|. Returns 0, or -1 if no such parameter. */
int flt_template_set_param(struct flt_template *t, const char *name, size_t len,
                           enum flt_param_action a);
/*
 * Checks request path |path| (no query) against SPEC 4.4: refuses "." and
 * ".." segments (dots percent-encoded or not) and percent-encoded '/'; also
 * a path not starting with '/', malformed escapes, %00, and raw control
 * characters, space or '#'. An empty path passes (no route matches it).
 * Also refused: a segment whose part before the first ';' decodes to "."
 * or ".." ("..;x"), '\' raw or as %5C, double encoding (the decoded
 * segment holds '%' and two hex digits: "%252e"), and a decoded path that
 * is not valid UTF-8 (overlongs such as "%c0%ae").
 * Returns 0 or FLT_E_PATH.
 */
int flt_path_check(const char *path, size_t len);
/* Whether |path| (no query, already checked) matches |t|. */
bool flt_template_match(const struct flt_template *t, const char *path, size_t len);
/*
 * Writes |path| with hashed parameters replaced by their HMAC (hex) over the
 * percent-decoded segment into |out|; hashed parameters are reported as
 * "param.<name>" transformed. Returns the output length or a negative enum
 * flt_err: FLT_E_PATH (no match, bad escape), FLT_E_NOMEM (|cap| too
 * small), FLT_E_STATE (hash without a key).
 */
long flt_template_rewrite(const struct flt_template *t, const char *path, size_t len,
                          const struct flt_hmac_key *key, char *out, size_t cap,
                          struct flt_report *report);

/* ------------------------------------------------------------ body pipeline */

struct flt_body_config {
    enum flt_media media; /* JSON, NDJSON or FORM */
    enum flt_encoding encoding;
    const struct flt_rules *rules;
    const struct flt_hmac_key *key;
    uint64_t max_body; /* decoded bytes; 0 = 8 MiB */
    bool reject_unlisted;
};

struct flt_body;

/* Allocates everything a body filter will use (JSON state for |max_depth|,
 * inflate state, buffers). NULL on OOM. */
struct flt_body *flt_body_new(uint32_t max_depth);
void flt_body_del(struct flt_body *b);
/* Ask the CPU to start fetching the lines flt_body_reset and the first
 * bytes of a JSON body write: a pooled body filter is cold when its
 * exchange is reused (the gateway keeps hundreds in flight). Hints only,
 * nothing changes. flt_body_prefetch reads nothing from |b|; the JSON
 * filter's lines are behind a pointer in |b|: flt_body_prefetch_json
 * reads it, best once |b|'s first line has arrived. */
void flt_body_prefetch(const struct flt_body *b);
void flt_body_prefetch_json(const struct flt_body *b);
/* Starts a body. Output (filtered, decoded) goes to |sink|. */
void flt_body_reset(struct flt_body *b, const struct flt_body_config *cfg, flt_sink_fn sink,
                    void *ud, struct flt_report *report);
/* Feeds |n| raw (possibly compressed) bytes. Returns 0 or an error:
 * FLT_E_TOO_LARGE past max_body (decoded; the raw, compressed bytes are
 * bounded by max_body too), FLT_E_COMPRESSED, syntax errors,
 * FLT_E_UNLISTED. Errors are sticky. gzip may hold several members (RFC
 * 1952); deflate is zlib-wrapped or raw. A compressed body of zero bytes is
 * an empty body. */
int flt_body_feed(struct flt_body *b, const char *p, size_t n);
/* Ends the body. Returns 0 or an error. */
int flt_body_finish(struct flt_body *b);
/* Decoded bytes seen so far. */
uint64_t flt_body_decoded_bytes(const struct flt_body *b);
/* For FLT_E_UNLISTED: the offending path (NUL-terminated), or "". */
const char *flt_body_unlisted_path(const struct flt_body *b);

/* --------------------------------------------------------- form and NDJSON */

/* Used by flt_body; exposed for tests and fuzzing. Same feed/finish contract. */
struct flt_form;
struct flt_form *flt_form_new(void);
void flt_form_del(struct flt_form *f);
void flt_form_reset(struct flt_form *f, const struct flt_rules *rules,
                    const struct flt_hmac_key *key, bool reject_unlisted, flt_sink_fn sink,
                    void *ud, struct flt_report *report);
int flt_form_feed(struct flt_form *f, const char *p, size_t n);
int flt_form_finish(struct flt_form *f);
const char *flt_form_unlisted_path(const struct flt_form *f);

struct flt_ndjson;
struct flt_ndjson *flt_ndjson_new(uint32_t max_depth);
void flt_ndjson_del(struct flt_ndjson *f);
void flt_ndjson_reset(struct flt_ndjson *f, const struct flt_json_config *cfg, flt_sink_fn sink,
                      void *ud, struct flt_report *report);
int flt_ndjson_feed(struct flt_ndjson *f, const char *p, size_t n);
int flt_ndjson_finish(struct flt_ndjson *f);
const char *flt_ndjson_unlisted_path(const struct flt_ndjson *f);

#endif
