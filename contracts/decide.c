/* ctr_decide: the verdict on a request's head (SPEC 5 processing order). */
#include <stdio.h>
#include <string.h>

#include "contracts/int.h"

int ctr_status_for(int flt_err)
{
    if (flt_err >= 0) return 0;
    const char *code = flt_errcode(flt_err);
    if (!strcmp(code, "invalid_body") || !strcmp(code, "invalid_request") ||
        !strcmp(code, "purpose_required"))
        return 400;
    if (!strcmp(code, "body_too_large")) return 413;
    if (!strcmp(code, "unsupported_media_type") || !strcmp(code, "unsupported_encoding"))
        return 415;
    if (!strcmp(code, "unlisted_field")) return 422;
    return 500;
}

/* Refusals are the exception: cold, so the compiler moves the code that
 * leads to them out of the forwarding path, which then fills fewer
 * instruction cache lines (the decision runs once per request between
 * the HTTP/2 and filter code, and finds its code evicted). */
#if defined(__GNUC__)
#define CTR__COLD __attribute__((cold))
#else
#define CTR__COLD
#endif

static int refuse(struct ctr_decision *d, int status, const char *error, const char *fmt, ...)
    CTR__PRINTF(4, 5) CTR__COLD;
static int refuse_flt(struct ctr_decision *d, int err, const char *what) CTR__COLD;

static int refuse(struct ctr_decision *d, int status, const char *error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    d->status = status;
    d->error = error;
    return status;
}

static int refuse_flt(struct ctr_decision *d, int err, const char *what)
{
    return refuse(d, ctr_status_for(err), flt_errcode(err), "%s: %s", what, flt_strerror(err));
}

static bool eq(struct flt_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && (n == 0 || memcmp(a.p, lit, n) == 0);
}

static bool in_list(char *const *v, size_t n, struct flt_str s)
{
    for (size_t i = 0; i < n; i++)
        if (eq(s, v[i])) return true;
    return false;
}

static bool ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

/* Like in_list, comparing case-insensitively (ASCII): forbidden purposes. */
static bool in_list_icase(char *const *v, size_t n, struct flt_str s)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == s.len && ieq_n(v[i], s.p, s.len)) return true;
    return false;
}

/* Whether |name| (lower case) is listed in a `connection` header of |req|
 * (RFC 9110 7.6.1: comma-separated tokens, case-insensitive): such a header
 * is hop-by-hop for that request and must not be forwarded. */
static bool named_in_connection(const struct ctr_request *req, struct flt_str name)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct ctr_header *h = &req->headers[i];
        if (h->name.len != 10 || !ieq_n(h->name.p, "connection", 10)) continue;
        const char *v = h->value.p;
        size_t len = h->value.len, k = 0;
        while (k < len) {
            while (k < len && (v[k] == ' ' || v[k] == '\t' || v[k] == ','))
                k++;
            size_t start = k;
            while (k < len && v[k] != ',')
                k++;
            size_t end = k;
            while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
                end--;
            if (end - start == name.len && name.len > 0 && ieq_n(v + start, name.p, name.len))
                return true;
        }
    }
    return false;
}

/* Lower-cases |n| into |buf| (cap 256); returns the view, .p NULL if longer.
 * A name already in lower case (every HTTP/2 name: nghttp2 refuses others)
 * is returned as it is, not copied. The view is not NUL-terminated. */
static struct flt_str lower_name(struct flt_str n, char buf[256])
{
    struct flt_str r = {NULL, 0};
    if (n.len >= 256) return r;
    size_t k = 0;
    while (k < n.len && !(n.p[k] >= 'A' && n.p[k] <= 'Z'))
        k++;
    if (k == n.len && n.p) return n;
    for (size_t i = 0; i < n.len; i++) {
        char c = n.p[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[n.len] = 0;
    r.p = buf;
    r.len = n.len;
    return r;
}

/* What ctr_decide needs from the request's headers, found in one pass
 * over them (each name is looked at once, by its length first: four
 * look-ups by name cost about 700 instructions per request). Names are
 * compared without case, as the look-ups did. */
struct hdr_scan {
    const struct ctr_header *caller, *purpose, *ctype, *cenc; /* the first of each */
    size_t nctype, ncenc;
    bool has_connection;
    bool bad_value; /* a value holds CR, LF or NUL */
};

/* ieq_n, with a byte comparison first: the names compared here are
 * nearly always in lower case already, like |lit|. */
static bool name_is(const char *p, const char *lit, size_t n)
{
    return memcmp(p, lit, n) == 0 || ieq_n(p, lit, n);
}

static void scan_headers(const struct ctr_request *req, const char *caller_hdr, size_t caller_len,
                         struct hdr_scan *sc)
{
    memset(sc, 0, sizeof *sc);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct ctr_header *h = &req->headers[i];
        const char *p = h->name.p;
        size_t n = h->name.len;
        if (!req->canonical && !sc->bad_value && !flt_header_value_ok(h->value.p, h->value.len))
            sc->bad_value = true;
        if (n == caller_len && !sc->caller && name_is(p, caller_hdr, n)) sc->caller = h;
        switch (n) {
        case 10:
            if (name_is(p, "connection", 10)) sc->has_connection = true;
            break;
        case 12:
            if (name_is(p, "content-type", 12)) {
                if (!sc->ctype) sc->ctype = h;
                sc->nctype++;
            }
            break;
        case 16:
            if (name_is(p, "privgate-purpose", 16)) {
                if (!sc->purpose) sc->purpose = h;
            } else if (name_is(p, "content-encoding", 16)) {
                if (!sc->cenc) sc->cenc = h;
                sc->ncenc++;
            }
            break;
        default: break;
        }
    }
}

/* ctr__hop_header (hop-by-hop fields, host, content-length) by length
 * first: most names have none of these lengths, and the list walk cost
 * about 200 instructions per header. |p| is lower case. */
static bool hop_name(const char *p, size_t n)
{
    switch (n) {
    case 2: return memcmp(p, "te", 2) == 0;
    case 4: return memcmp(p, "host", 4) == 0;
    case 7: return memcmp(p, "upgrade", 7) == 0;
    case 10: return memcmp(p, "connection", 10) == 0 || memcmp(p, "keep-alive", 10) == 0;
    case 14: return memcmp(p, "content-length", 14) == 0;
    case 16: return memcmp(p, "proxy-connection", 16) == 0;
    case 17: return memcmp(p, "transfer-encoding", 17) == 0;
    default: return false;
    }
}

/* Whether |t| is literal segments only (no parameter, no '*'): then a
 * path matches it exactly when it is the route's path as written, byte
 * for byte (the template is that string cut at each '/'), and one
 * comparison replaces the segment walk (about 190 instructions). */
static bool tmpl_literal(const struct flt_template *t)
{
    if (t->rest || t->nseg == 0) return false;
    for (uint32_t k = 0; k < t->nseg; k++)
        if (t->seg[k].param) return false;
    return true;
}

/* Whether flt_template_rewrite would change a path |t| matched: only a
 * hashed parameter does. Without one it writes back '/' + each segment
 * and '/' + the rest, i.e. the path itself: a copy does the same. */
static bool tmpl_rewrites(const struct flt_template *t)
{
    for (uint32_t k = 0; k < t->nseg; k++)
        if (t->seg[k].param && t->seg[k].action != FLT_PARAM_KEEP) return true;
    return false;
}

static int decide_headers(const struct ctr_contract *c, const struct ctr_route *r,
                          const struct ctr_request *req, const struct hdr_scan *sc,
                          const char *caller_hdr, size_t caller_len, struct ctr_decision *d)
{
    const char *auth =
        c->upstream.auth_header && c->upstream.auth_value ? c->upstream.auth_header : NULL;
    size_t auth_len = auth ? strlen(auth) : 0;
    if (sc->bad_value)
        return refuse(d, 400, "invalid_request", "a header value contains CR, LF or NUL");
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct ctr_header *h = &req->headers[i];
        char buf[256];
        struct flt_str n = h->name;
        if (n.len >= 256) {
            /* a name this long is never allowed */
            flt_pathlist_add(&d->report.removed, "header", h->name.p, h->name.len);
            continue;
        }
        if (!req->canonical) n = lower_name(h->name, buf);
        if (n.len == 0 || n.p[0] == ':') continue; /* pseudo-headers: the gateway writes its own */
        if (n.len >= 9 && memcmp(n.p, "privgate-", 9) == 0)
            continue; /* gateway control: consumed, never forwarded nor reported */
        if (n.len == caller_len && memcmp(n.p, caller_hdr, caller_len) == 0) continue;
        if (hop_name(n.p, n.len)) continue; /* hop-by-hop, host, content-length: recomputed */
        bool keep = false;
        if (n.len == 16 && memcmp(n.p, "content-encoding", 16) == 0) {
            if (r->body != CTR_BODY_OPAQUE) continue; /* the body is forwarded decoded */
            keep = true;                              /* an opaque body is forwarded as sent */
        }
        if (sc->has_connection && named_in_connection(req, n)) {
            /* hop-by-hop for this request (RFC 9110 7.6.1): never forwarded,
             * even when the contract allows it; reported, as it was removed */
            flt_pathlist_add(&d->report.removed, "header", n.p, n.len);
            continue;
        }
        if (auth && n.len == auth_len && memcmp(n.p, auth, auth_len) == 0) {
            /* replaced by the injected credential */
            flt_pathlist_add(&d->report.removed, "header", n.p, n.len);
            continue;
        }
        if (keep || flt_header_is_safe(n.p, n.len) || flt_namelist_has(&c->headers, n.p, n.len) ||
            flt_namelist_has(&r->headers, n.p, n.len)) {
            if (d->nfwd >= CTR_MAX_FWD_HEADERS - 1)
                return refuse(d, 400, "invalid_request", "too many request headers");
            d->fwd[d->nfwd++] = *h;
            continue;
        }
        flt_pathlist_add(&d->report.removed, "header", n.p, n.len);
    }
    if (auth) {
        struct ctr_header inj = {{auth, auth_len},
                                 {c->upstream.auth_value, strlen(c->upstream.auth_value)}};
        d->fwd[d->nfwd++] = inj;
        d->injected = true;
    }
    return 0;
}

static int decide_body(const struct ctr_config *cfg, const struct ctr_contract *c,
                       const struct ctr_route *r, const struct hdr_scan *sc, struct ctr_decision *d)
{
    d->body_kind = r->body;
    if (r->body != CTR_BODY_FIELDS) return 0;
    d->body.rules = r->rules;
    d->body.key = c->upstream.hmac.set ? &c->upstream.hmac : NULL;
    d->body.max_body = cfg->limits.max_body;
    d->body.reject_unlisted = c->reject_unlisted;
    d->body.media = FLT_MEDIA_NONE;
    d->body.encoding = FLT_ENC_IDENTITY;
    const struct ctr_header *ct = sc->ctype;
    if (sc->nctype > 1)
        return refuse(d, 415, "unsupported_media_type", "more than one content-type");
    if (ct) {
        enum flt_media m = FLT_MEDIA_NONE;
        int e = flt_media_parse(ct->value.p, ct->value.len, &m);
        if (e < 0) return refuse(d, 415, "unsupported_media_type", "unsupported content-type");
        if (m == FLT_MEDIA_OTHER || m == FLT_MEDIA_NONE)
            return refuse(d, 415, "unsupported_media_type",
                          "content-type must be JSON, NDJSON or a form");
        d->body.media = m;
    }
    const struct ctr_header *ce = sc->cenc;
    if (sc->ncenc > 1)
        return refuse(d, 415, "unsupported_encoding", "more than one content-encoding");
    if (ce) {
        enum flt_encoding enc = FLT_ENC_IDENTITY;
        if (flt_encoding_parse(ce->value.p, ce->value.len, &enc) < 0)
            return refuse(d, 415, "unsupported_encoding", "unsupported content-encoding");
        d->body.encoding = enc;
    }
    return 0;
}

int ctr_decide(const struct ctr_config *cfg, const struct ctr_contract *c,
               const struct ctr_request *req, struct ctr_decision *d)
{
    /* in field order: the first two cache lines of |d| (see contracts.h) */
    d->status = 0;
    d->body_kind = CTR_BODY_NONE;
    d->error = NULL;
    d->contract = c;
    d->route = NULL;
    d->method = req->method;
    d->path_len = 0;
    d->nfwd = 0;
    d->injected = false;
    d->scanned = false;
    d->caller_hdr = d->purpose_hdr = NULL;
    memset(&d->body, 0, sizeof d->body);
    d->message[0] = 0;
    d->path[0] = 0;
    flt_report_init(&d->report);

    /* route: the path the provider will see, then method + template */
    const char *p = req->path.p ? req->path.p : "";
    size_t plen = req->path.len;
    const char *qm = memchr(p, '?', plen);
    size_t path_len = qm ? (size_t)(qm - p) : plen;
    const char *q = qm ? qm + 1 : NULL;
    size_t qlen = qm ? plen - path_len - 1 : 0;
    if (path_len == 0) return refuse(d, 404, "unknown_route", "no route of the contract matches");
    if (p[0] != '/' || memchr(p, '#', plen) || flt_path_check(p, path_len) < 0)
        return refuse(d, 400, "invalid_request", "invalid request path");
    const struct ctr_route *r = NULL;
    for (size_t i = 0; i < c->nroutes && !r; i++) {
        const struct ctr_route *cand = &c->routes[i];
        if (!eq(req->method, cand->method)) continue;
        if (tmpl_literal(&cand->tmpl) ? eq((struct flt_str){p, path_len}, cand->path)
                                      : flt_template_match(&cand->tmpl, p, path_len))
            r = cand;
    }
    if (!r) return refuse(d, 404, "unknown_route", "no route of the contract matches");
    d->route = r;

    const char *caller_hdr = cfg->caller_header ? cfg->caller_header : "privgate-caller";
    size_t caller_len = strlen(caller_hdr);
    struct hdr_scan sc;
    scan_headers(req, caller_hdr, caller_len, &sc);
    d->scanned = true;
    d->caller_hdr = sc.caller;
    d->purpose_hdr = sc.purpose;

    /* caller */
    struct flt_str caller = req->caller;
    if (!caller.p && sc.caller) caller = sc.caller->value;
    if (c->ncallers) {
        if (!caller.p || caller.len == 0)
            return refuse(d, 403, "caller_not_allowed", "the contract requires a known caller");
        if (!in_list(c->callers, c->ncallers, caller))
            return refuse(d, 403, "caller_not_allowed", "caller not allowed by the contract");
    }

    /* purpose */
    struct flt_str purpose = req->purpose;
    if (!purpose.p && sc.purpose) purpose = sc.purpose->value;
    if (!purpose.p || purpose.len == 0)
        return refuse(d, 400, "purpose_required", "privgate-purpose is required");
    if (!in_list(c->purposes, c->npurposes, purpose) ||
        in_list_icase(cfg->forbidden_purposes, cfg->nforbidden, purpose))
        return refuse(d, 403, "purpose_not_allowed", "purpose not allowed by the contract");

    /* headers */
    if (decide_headers(c, r, req, &sc, caller_hdr, caller_len, d)) return d->status;

    /* path parameters and query: base path + rewritten path + '?' + query */
    const char *base = c->upstream.base_path ? c->upstream.base_path : "";
    size_t bl = strlen(base);
    if (bl + path_len + qlen + 2 > CTR_PATH_MAX)
        return refuse(d, 400, "invalid_request", "request path too long");
    memcpy(d->path, base, bl);
    size_t len = bl;
    long n;
    if (!tmpl_rewrites(&r->tmpl)) {
        /* fits: bl + path_len + 2 <= CTR_PATH_MAX was checked above */
        memcpy(d->path + len, p, path_len);
        n = (long)path_len;
    } else {
        n = flt_template_rewrite(&r->tmpl, p, path_len,
                                 c->upstream.hmac.set ? &c->upstream.hmac : NULL, d->path + len,
                                 CTR_PATH_MAX - len - 1, &d->report);
    }
    /* hashed parameters (64 hex characters each) can make the rewritten
     * path longer than the request's: the caller's request is too long */
    if (n == FLT_E_NOMEM) return refuse(d, 400, "invalid_request", "request path too long");
    if (n < 0) return refuse_flt(d, (int)n, "path");
    len += (size_t)n;
    if (qlen) {
        if (len + 1 + qlen + 1 > CTR_PATH_MAX)
            return refuse(d, 400, "invalid_request", "request path too long");
        d->path[len] = '?';
        n = flt_query_filter(q, qlen, &r->query, c->reject_unlisted, d->path + len + 1,
                             CTR_PATH_MAX - len - 2, &d->report);
        if (n == FLT_E_UNLISTED)
            return refuse(d, 422, "unlisted_field", "a query parameter is not listed");
        if (n < 0) return refuse_flt(d, (int)n, "query");
        if (n > 0) len += 1 + (size_t)n;
    }
    d->path[len] = 0;
    d->path_len = len;

    /* body: media type and encoding */
    if (decide_body(cfg, c, r, &sc, d)) return d->status;
    return 0;
}
