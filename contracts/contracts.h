/*
 * privgate contracts: YAML (privgate.yaml and the provider contracts) in, an
 * immutable, reference-counted rule set out; and the one decide function
 * that every user of the rules (privgate filter, privgate test, the
 * gateway) goes through. Depends on filters/ and libyaml only.
 *
 * Errors are reported through struct ctr_diag as FILE:LINE:COL: message
 * (1-based line and column). Secret file contents are never printed.
 */
#ifndef PRIVGATE_CONTRACTS_H
#define PRIVGATE_CONTRACTS_H

#include <stdatomic.h>

#include "filters/filters.h"

/* ------------------------------------------------------------ diagnostics */

struct ctr_diag {
    /* Called once per error; |file| may be "" for errors without a file;
     * |line| and |col| are 1-based, 0 when the error has no position (a file
     * that cannot be read). */
    void (*emit)(void *ud, const char *file, int line, int col, const char *msg);
    void *ud;
    int errors; /* incremented per error */
};

/* A diag that prints "FILE:LINE:COL: message" lines to stderr
 * ("FILE: message" for errors without a position). */
void ctr_diag_stderr(struct ctr_diag *d);

struct ctr__arena; /* internal: owns every string and array of a config/contract */

/* ------------------------------------------------------------------ config */

struct ctr_listen {
    char *address; /* host:port as written */
    char *host;
    uint16_t port;
    bool tls;
    char *cert, *key, *client_ca; /* absolute or config-relative resolved paths; NULL if absent */
};

struct ctr_limits {
    uint64_t max_body;                    /* bytes, default 8 MiB */
    uint32_t max_depth;                   /* default 64 */
    uint64_t max_header_bytes;            /* default 64 KiB */
    uint32_t max_streams_per_connection;  /* default 128 */
    uint64_t upstream_connect_timeout_ms; /* default 5000 */
    uint64_t upstream_timeout_ms;         /* default 30000 */
    uint64_t idle_timeout_ms;             /* default 120000 */
    /* not in SPEC (README): a request head (HTTP/2 HEADERS+CONTINUATION,
     * HTTP/1.1 request line and headers) must be complete this long after
     * it started, and a request body must make progress at least this
     * often; otherwise the stream is answered 408 with code `invalid_request` (or
     * reset when no answer can be sent) and never forwarded (slowloris) */
    uint64_t header_timeout_ms; /* default 10000 */
};

struct ctr_config {
    char *file; /* path of privgate.yaml */
    struct ctr_listen *listen;
    size_t nlisten;
    char *admin_address; /* NULL if absent */
    char *admin_host;
    uint16_t admin_port;
    char *contracts_dir;
    uint32_t workers; /* 0 = auto */
    char *audit_path; /* "-" = stdout; NULL = no audit log */
    /* not in SPEC (README): `audit.require: true` makes /readyz answer 503
     * while audit records are being lost (write errors, full queue) */
    bool audit_require;
    char **forbidden_purposes;
    size_t nforbidden;
    char *caller_header; /* default "privgate-caller" */
    struct ctr_limits limits;
    struct ctr__arena *mem; /* internal */
};

/* Fills |cfg| with the SPEC 3 defaults (no listener, no contracts folder,
 * no forbidden purpose, audit to stdout "-"). Static strings: do not free. */
void ctr_config_defaults(struct ctr_config *cfg);

/* ---------------------------------------------------------------- contract */

enum ctr_body_kind {
    CTR_BODY_NONE = 0, /* no `body:` key: a non-empty body is refused 415 */
    CTR_BODY_FIELDS,   /* body: { fields: ... } */
    CTR_BODY_OPAQUE,   /* body: opaque */
};

/* One `fields:` entry, kept for the register and `--explain`. */
struct ctr_field {
    char *path; /* as written */
    struct flt_action action;
    char *category; /* NULL if none */
};

struct ctr_route {
    char *method; /* upper case */
    char *path;   /* as written */
    struct flt_template tmpl;
    struct flt_namelist query;   /* allowed query parameter names */
    struct flt_namelist headers; /* route's extra headers (lower case) */
    enum ctr_body_kind body;
    struct flt_rules *rules; /* CTR_BODY_FIELDS only */
    struct ctr_field *fields;
    size_t nfields;
    int line; /* where the route starts, for messages */
};

/* upstream.protocol: how the gateway talks to the provider. */
enum ctr_up_proto {
    CTR_UP_AUTO = 0, /* TLS: ALPN h2 preferred, http/1.1 accepted; cleartext: h2 prior knowledge */
    CTR_UP_H2,       /* HTTP/2 only (TLS: ALPN h2; cleartext: prior knowledge) */
    CTR_UP_HTTP1,    /* HTTP/1.1 only (TLS: ALPN http/1.1) */
};

struct ctr_upstream {
    char *url;
    char *scheme; /* "https" or "http" */
    char *host;
    uint16_t port;
    char *base_path; /* path part of url without trailing '/', "" if none */
    bool insecure;
    char *ca;                   /* resolved path or NULL */
    char *server_name;          /* NULL = host */
    char *auth_header;          /* lower case, NULL if none */
    char *auth_value;           /* secret: never print */
    struct flt_hmac_key hmac;   /* .set false when no key file */
    enum ctr_up_proto protocol; /* `protocol:` h2 | http/1.1 | auto (default) */
};

struct ctr_test; /* opaque: a `tests:` entry */

struct ctr_contract {
    char *file;
    char sha256[72]; /* "sha256:<hex>" of the file's bytes */
    char *provider;
    char *name;
    char *description;
    char **purposes;
    size_t npurposes;
    char **callers; /* NULL/0 = any caller */
    size_t ncallers;
    char *retention;
    struct ctr_upstream upstream;
    struct flt_namelist headers; /* contract-wide extra headers (lower case) */
    bool reject_unlisted;
    struct ctr_route *routes;
    size_t nroutes;
    struct ctr_test *tests;
    size_t ntests;
    struct ctr__arena *mem; /* internal */
};

/* The loaded, immutable set: config (may be a default one when contracts
 * were loaded alone) and every contract. Reference-counted; a reload builds
 * a new set and swaps one pointer. */
struct ctr_set {
    struct ctr_config config;
    struct ctr_contract **contracts;
    size_t ncontracts;
    _Atomic int refs; /* use ctr_set_ref/unref */
};

/* Loads privgate.yaml at |path| and every *.yaml in its contracts folder
 * (sorted by file name; contracts[] ends up sorted by provider id).
 * Returns NULL after reporting every error found to |diag|; the result has
 * one reference. */
struct ctr_set *ctr_set_load(const char *path, struct ctr_diag *diag);
/* Loads the given contract files (or every *.yaml of a directory given) with
 * a default config. NULL on error. */
struct ctr_set *ctr_set_load_contracts(const char *const *paths, size_t n, struct ctr_diag *diag);
/* The same under the policy of the gateway config at |config_path| (NULL:
 * the defaults); that config's own contracts folder is not loaded. */
struct ctr_set *ctr_set_load_contracts_under(const char *config_path, const char *const *paths,
                                             size_t n, struct ctr_diag *diag);
struct ctr_set *ctr_set_ref(struct ctr_set *s);
void ctr_set_unref(struct ctr_set *s);

/* Finds the contract whose provider is the first segment of |path|
 * ("/parcel-carrier/v1/x?y" -> parcel-carrier, rest "/v1/x?y"; rest may be
 * empty or start with '?': ctr_decide answers 404 unknown_route for it).
 * NULL if none. |rest| (may be NULL) is a view into |path|. */
const struct ctr_contract *ctr_set_find_provider(const struct ctr_set *s, const char *path,
                                                 size_t len, struct flt_str *rest);

/* ------------------------------------------------------------------ decide */

struct ctr_header {
    struct flt_str name; /* lower case (other cases are compared lower-cased) */
    struct flt_str value;
};

struct ctr_request {
    struct flt_str method;
    struct flt_str path; /* the provider's path with query: "/v1/shipments?dry_run=1" */
    const struct ctr_header *headers;
    size_t nheaders;
    struct flt_str caller;  /* from mTLS; .p NULL = take config.callers.header from headers */
    struct flt_str purpose; /* .p NULL = take privgate-purpose from headers */
    /* true: the caller guarantees every header name is lower case and no
     * value holds CR, LF or NUL (the gateway: nghttp2 and the HTTP/1.1
     * parser checked them), so ctr_decide does not check again */
    bool canonical;
};

#define CTR_MAX_FWD_HEADERS 64
#define CTR_PATH_MAX 8192

/* The verdict on a request's head, and how to filter its body.
 *
 * Layout: the gateway keeps one decision per exchange in flight (hundreds),
 * so a request finds its decision cold in the cache and pays a miss per
 * cache line it touches. The fields every request reads or writes come
 * first, together (128 bytes); then the refusal message (only its first
 * byte is written when the request is forwarded), the forwarded headers
 * (only the first nfwd entries are touched), the path (only its first
 * path_len + 1 bytes) and the report (flt_report_init touches only its
 * counters). */
struct ctr_decision {
    int status; /* 0 = forward; else the HTTP status of the refusal */
    enum ctr_body_kind body_kind;
    const char *error; /* SPEC 5 code, NULL when forwarded */
    const struct ctr_contract *contract;
    const struct ctr_route *route;
    struct flt_str method;
    size_t path_len;
    size_t nfwd;
    bool injected; /* an upstream.auth credential was added: it is fwd[nfwd - 1] */
    /* The request's caller and privgate-purpose headers as ctr_decide
     * found them (the first of each name, compared without case; views
     * into the request), valid when |scanned| — ctr_decide looks at the
     * headers only once the route matched. Lets the audit log skip its
     * own look-up. */
    bool scanned;
    const struct ctr_header *caller_hdr, *purpose_hdr;
    struct flt_body_config body; /* for flt_body when route->body == CTR_BODY_FIELDS */
    /* for the error body; names paths, never values ("" when forwarded:
     * only its first byte is written then, next to the fields above) */
    char message[256];
    struct ctr_header fwd[CTR_MAX_FWD_HEADERS]; /* forwarded headers (views into the request, or
                                                 the contract's injected credential) */
    char path[CTR_PATH_MAX]; /* forwarded :path (base path + rewritten path + filtered query) */
    struct flt_report report;
};

/*
 * Decides |req| against contract |c| under |cfg| (limits, forbidden
 * purposes), in the order of SPEC 5: path check and route (method +
 * template), caller, purpose, headers, path parameters and query, media
 * type and encoding of the body. Fills |d| (no allocation; |d| holds views
 * into |req| and |c|, which must outlive it). Returns 0 when the request may
 * proceed to the body stage (d->status == 0), else the refusal's status
 * (d->status, d->error, d->message set).
 *
 * Headers: forwarded are the SPEC 4.3 safe set, the contract's and the
 * route's `headers:`, and for opaque routes content-encoding; `privgate-*`,
 * the caller header, pseudo-headers, host, content-length, hop-by-hop
 * headers and (non-opaque routes) content-encoding are dropped without being
 * reported; every other header is removed and reported "header.<name>". The
 * upstream.auth credential is appended last (the caller's header of that
 * name is removed and reported).
 *
 * The body stage is the caller's (ctr_run does it for whole bodies):
 * - d->body_kind CTR_BODY_NONE: the first body byte is refused 415
 *   unsupported_media_type (FLT_E_BODY_NOT_ALLOWED); an empty body is fine;
 * - CTR_BODY_OPAQUE: forwarded as is (still bounded by limits.max_body);
 * - CTR_BODY_FIELDS: d->body.media == FLT_MEDIA_NONE means the request had no
 *   content-type: the first body byte is refused 415 unsupported_media_type;
 *   otherwise feed flt_body with d->body (output decoded: content-encoding
 *   is not forwarded, content-length is recomputed). An empty body is
 *   forwarded empty without running the filter.
 */
int ctr_decide(const struct ctr_config *cfg, const struct ctr_contract *c,
               const struct ctr_request *req, struct ctr_decision *d);

/* Maps an enum flt_err to the HTTP status of SPEC 5 (400, 413, 415, 422;
 * 500 for internal errors; 0 for 0). The code is flt_errcode(err). */
int ctr_status_for(int flt_err);

/* ---------------------------------------------------------- whole request */

/* Result of running one complete in-memory request (privgate filter/test). */
struct ctr_result {
    struct ctr_decision d;
    char *body; /* filtered body (malloc'd, NUL-terminated), NULL if refused */
    size_t body_len;
};

/* Decide + filter the whole |body|; fills |r| (free with ctr_result_free).
 * Returns 0 when forwarded (r->body is malloc'd, NUL-terminated, possibly
 * empty), else the refusal's status (r->body NULL, r->d.status/error/message
 * set). r->d.report lists removed/transformed paths either way. */
int ctr_run(const struct ctr_config *cfg, const struct ctr_contract *c,
            const struct ctr_request *req, const char *body, size_t body_len, struct ctr_result *r);
void ctr_result_free(struct ctr_result *r);

/* --------------------------------------------------------------- tests */

struct ctr_test_outcome {
    const char *name; /* the test's name (owned by |c|), "line N" when unnamed */
    bool passed;
    char reason[512]; /* why it failed: names paths and codes, never header values */
};
/* Runs test |i| of |c| (SPEC 6) through ctr_run, without network. A request
 * with a body and no content-type header gets "application/json". */
void ctr_test_run(const struct ctr_config *cfg, const struct ctr_contract *c, size_t i,
                  struct ctr_test_outcome *out);

#endif
