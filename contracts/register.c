/* The sharing register (SPEC section 8): Markdown, CSV and JSON writers. */
#include "contracts/register.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ rows */

/* One thing a route lets through. Views into the contract. */
struct reg_row {
    const char *carrier; /* "param", "query", "header", "body" */
    struct flt_str field;
    char action[48];      /* "keep", "mask keep_last 4", ... */
    const char *category; /* NULL if none */
};

static struct flt_str cstr(const char *s)
{
    struct flt_str v = {s, s ? strlen(s) : 0};
    return v;
}

/* Byte order, then length: "a" < "ab" < "b". */
static int str_cmp(const void *a, const void *b)
{
    const struct flt_str *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->p, y->p, n) : 0;
    if (c != 0) return c;
    return (x->len > y->len) - (x->len < y->len);
}

static int contract_cmp(const void *a, const void *b)
{
    const struct ctr_contract *const *x = a, *const *y = b;
    return strcmp((*x)->provider, (*y)->provider);
}

static void action_text(const struct flt_action *a, char *buf, size_t n)
{
    switch (a->kind) {
    case FLT_ACT_MASK:
        snprintf(buf, n, "mask %s %u", a->mask_keep_last ? "keep_last" : "keep_first",
                 (unsigned)a->n);
        break;
    case FLT_ACT_TRUNCATE: snprintf(buf, n, "truncate %u", (unsigned)a->n); break;
    default: snprintf(buf, n, "%s", flt_action_name(a->kind)); break;
    }
}

/* Copies the names of |l| (and of |l2| when not NULL) into a new array,
 * sorted by str_cmp without duplicates. *out is NULL when there is none.
 * Returns the count, or -1 (ENOMEM). */
static long sorted_names(const struct flt_namelist *l, const struct flt_namelist *l2,
                         struct flt_str **out)
{
    size_t n = l->n + (l2 ? l2->n : 0);
    *out = NULL;
    if (n == 0) return 0;
    struct flt_str *v = malloc(n * sizeof *v);
    if (v == NULL) return -1;
    if (l->n) memcpy(v, l->v, l->n * sizeof *v);
    if (l2 && l2->n) memcpy(v + l->n, l2->v, l2->n * sizeof *v);
    qsort(v, n, sizeof *v, str_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || str_cmp(&v[k - 1], &v[i]) != 0) v[k++] = v[i];
    *out = v;
    return (long)k;
}

/* The rows of route |r| of |c| (see register.h for the order), in a new
 * array (*rows NULL when there is none). Returns the count, or -1. */
static long route_rows(const struct ctr_contract *c, const struct ctr_route *r,
                       struct reg_row **rows)
{
    struct flt_str *query = NULL, *headers = NULL;
    long nq = sorted_names(&r->query, NULL, &query);
    long nh = nq < 0 ? -1 : sorted_names(&c->headers, &r->headers, &headers);
    *rows = NULL;
    if (nq < 0 || nh < 0) {
        free(query);
        free(headers);
        return -1;
    }
    size_t cap = r->tmpl.nseg + (size_t)nq + (size_t)nh + r->nfields + 1;
    struct reg_row *v = calloc(cap, sizeof *v);
    if (v == NULL) {
        free(query);
        free(headers);
        return -1;
    }
    size_t n = 0;
    for (uint32_t i = 0; i < r->tmpl.nseg && i < FLT_TEMPLATE_MAX_SEGMENTS; i++) {
        if (!r->tmpl.seg[i].param) continue;
        v[n].carrier = "param";
        v[n].field = r->tmpl.seg[i].lit;
        snprintf(v[n].action, sizeof v[n].action, "%s",
                 r->tmpl.seg[i].action == FLT_PARAM_HASH ? "hash" : "keep");
        n++;
    }
    for (long i = 0; i < nq; i++, n++) {
        v[n].carrier = "query";
        v[n].field = query[i];
        snprintf(v[n].action, sizeof v[n].action, "keep");
    }
    for (long i = 0; i < nh; i++, n++) {
        v[n].carrier = "header";
        v[n].field = headers[i];
        snprintf(v[n].action, sizeof v[n].action, "keep");
    }
    if (r->body == CTR_BODY_FIELDS) {
        for (size_t i = 0; i < r->nfields; i++, n++) {
            v[n].carrier = "body";
            v[n].field = cstr(r->fields[i].path);
            action_text(&r->fields[i].action, v[n].action, sizeof v[n].action);
            v[n].category = r->fields[i].category;
        }
    } else if (r->body == CTR_BODY_OPAQUE) {
        v[n].carrier = "body";
        v[n].field = cstr("$");
        snprintf(v[n].action, sizeof v[n].action, "opaque");
        n++;
    }
    free(query);
    free(headers);
    if (n == 0) {
        free(v);
        v = NULL;
    }
    *rows = v;
    return (long)n;
}

/* "host", or "host:port" when the port is not the scheme's default
 * ("[v6]:port" for an IPv6 address). */
static void upstream_host(const struct ctr_upstream *u, char *buf, size_t n)
{
    bool https = u->scheme == NULL || strcmp(u->scheme, "http") != 0;
    const char *host = u->host ? u->host : "";
    if (u->port == 0 || u->port == (https ? 443 : 80))
        snprintf(buf, n, "%s", host);
    else if (strchr(host, ':'))
        snprintf(buf, n, "[%s]:%u", host, (unsigned)u->port);
    else
        snprintf(buf, n, "%s:%u", host, (unsigned)u->port);
}

/* ------------------------------------------------------------- markdown */

/* Text in a paragraph or a table cell: ASCII punctuation that Markdown
 * would read as markup is backslash-escaped, line breaks become spaces. */
static void md_text(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\n' || ch == '\r' || ch == '\t') {
            fputc(' ', f);
            continue;
        }
        if (strchr("\\`*_[]<>|#!~&", ch) != NULL && ch != '\0') fputc('\\', f);
        fputc(ch, f);
    }
}

static void md_cstr(FILE *f, const char *s)
{
    md_text(f, s ? s : "", s ? strlen(s) : 0);
}

/* A code span that survives in a GFM table cell: a fence one backtick
 * longer than the longest run inside, padded when the text starts or ends
 * with a backtick, '|' escaped (GFM reads it before the code span). */
static void md_code(FILE *f, const char *s, size_t n, bool table)
{
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        run = s[i] == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    bool pad = n > 0 && (s[0] == '`' || s[n - 1] == '`');
    for (size_t i = 0; i <= longest; i++)
        fputc('`', f);
    if (pad) fputc(' ', f);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
        if (table && ch == '|') fputc('\\', f);
        fputc(ch, f);
    }
    if (pad) fputc(' ', f);
    for (size_t i = 0; i <= longest; i++)
        fputc('`', f);
}

/* A paragraph: also escapes a first character that would start a block
 * (a heading, list, quote, or "1." list). */
static void md_para(FILE *f, const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (*s == ' ' || *s == '\t' || *s == '\n')) {
        s++;
        n--;
    }
    size_t d = 0;
    while (d < n && s[d] >= '0' && s[d] <= '9')
        d++;
    if (n > 0 && strchr("-+=>", s[0]) != NULL) fputc('\\', f);
    if (d > 0 && d < n && (s[d] == '.' || s[d] == ')')) {
        fwrite(s, 1, d, f);
        fputc('\\', f);
        s += d;
        n -= d;
    }
    md_text(f, s, n);
    fputs("\n\n", f);
}

static void md_list(FILE *f, char *const *v, size_t n, const char *none)
{
    if (n == 0) {
        fputs(none, f);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i) fputs(", ", f);
        md_cstr(f, v[i]);
    }
}

static const char md_intro[] =
    "# Sharing register\n"
    "\n"
    "This register lists the service providers that receive personal data\n"
    "through privgate, for which purposes, and exactly which data each of them\n"
    "receives on each of its API routes. It is generated by `privgate register`\n"
    "from the data contracts that the gateway enforces on every request: a\n"
    "field, query parameter or header that is not listed here for a route never\n"
    "reaches the provider.\n"
    "\n";

static const char md_legend[] =
    "## How to read this register\n"
    "\n"
    "- **Carrier**: where the data travels in the request: `body` (a field of\n"
    "  the JSON, NDJSON or form-encoded body), `query` (a query string\n"
    "  parameter), `param` (a segment of the request path), `header` (an HTTP\n"
    "  header).\n"
    "- **Action**: what the provider receives:\n"
    "  - `keep`: the value as sent by our service (for an object or a list,\n"
    "    everything inside it; `items[].sku` is the `sku` of every element of\n"
    "    the list `items`);\n"
    "  - `hash`: a pseudonym in place of the value (HMAC-SHA-256 under a key\n"
    "    kept by us, one key per provider): the same value always gives the\n"
    "    same pseudonym, which the provider cannot reverse;\n"
    "  - `mask keep_last N` (`keep_first N`): every character but the last\n"
    "    (first) N replaced by `*`;\n"
    "  - `truncate N`: the first N characters only;\n"
    "  - `year`: a date reduced to its year;\n"
    "  - `opaque`: the body is forwarded as it is, unfiltered (documents such\n"
    "    as shipping labels).\n"
    "- **Category**: the category of personal data the contract assigns to the\n"
    "  field, when it names one.\n"
    "- **Callers**: our services allowed to send data to the provider.\n"
    "- **Retention**: how long the provider keeps the data, as agreed with it.\n"
    "- **Unlisted fields**: `removed` means a body field that is not listed is\n"
    "  deleted before the request leaves; `request refused` means a request\n"
    "  carrying any field that is not listed is refused as a whole.\n"
    "- Besides the headers listed, only technical headers reach a provider:\n"
    "  `content-type`, `accept`, `accept-encoding`, `user-agent`,\n"
    "  `traceparent` and `tracestate`.\n"
    "\n";

static int md_route(FILE *f, const struct ctr_contract *c, const struct ctr_route *r)
{
    fputs("### ", f);
    char head[CTR_PATH_MAX + 32];
    int hl =
        snprintf(head, sizeof head, "%s %s", r->method ? r->method : "", r->path ? r->path : "");
    md_code(f, head, hl < 0 ? 0 : (size_t)hl < sizeof head ? (size_t)hl : sizeof head - 1, false);
    fputs("\n\n", f);
    switch (r->body) {
    case CTR_BODY_FIELDS:
        fputs(c->reject_unlisted
                  ? "Body: the fields listed below (JSON, NDJSON or form-encoded); a request "
                    "carrying any other field is refused.\n\n"
                  : "Body: the fields listed below (JSON, NDJSON or form-encoded); any other "
                    "field is removed.\n\n",
              f);
        break;
    case CTR_BODY_OPAQUE: fputs("Body: forwarded unfiltered (opaque).\n\n", f); break;
    case CTR_BODY_NONE: fputs("Body: none (a request with a body is refused).\n\n", f); break;
    }
    struct reg_row *rows;
    long n = route_rows(c, r, &rows);
    if (n < 0) return -1;
    if (n == 0) {
        fputs("No field, query parameter or extra header: the provider receives the request "
              "alone.\n\n",
              f);
        return 0;
    }
    fputs("| Carrier | Field | Action | Category |\n|---|---|---|---|\n", f);
    for (long i = 0; i < n; i++) {
        fprintf(f, "| %s | ", rows[i].carrier);
        md_code(f, rows[i].field.p, rows[i].field.len, true);
        fprintf(f, " | %s |", rows[i].action);
        if (rows[i].category) {
            fputc(' ', f);
            md_cstr(f, rows[i].category);
        }
        fputs(" |\n", f);
    }
    fputc('\n', f);
    free(rows);
    return 0;
}

static int write_md(FILE *f, const struct ctr_contract *const *cs, size_t n)
{
    char host[300];
    fputs(md_intro, f);
    fprintf(f, "%zu provider%s.\n\n", n, n == 1 ? "" : "s");
    fputs("## Summary\n\n"
          "| Provider | Name | Purposes | Callers | Retention | Upstream host |\n"
          "|---|---|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const struct ctr_contract *c = cs[i];
        upstream_host(&c->upstream, host, sizeof host);
        fputs("| ", f);
        md_code(f, c->provider, strlen(c->provider), true);
        fputs(" | ", f);
        md_cstr(f, c->name);
        fputs(" | ", f);
        md_list(f, c->purposes, c->npurposes, "");
        fputs(" | ", f);
        md_list(f, c->callers, c->ncallers, "any");
        fputs(" | ", f);
        md_cstr(f, c->retention ? c->retention : "not stated");
        fputs(" | ", f);
        md_cstr(f, host);
        fputs(" |\n", f);
    }
    fputc('\n', f);
    fputs(md_legend, f);
    for (size_t i = 0; i < n; i++) {
        const struct ctr_contract *c = cs[i];
        upstream_host(&c->upstream, host, sizeof host);
        fputs("## ", f);
        if (c->name) {
            md_cstr(f, c->name);
            fputs(" (", f);
            md_code(f, c->provider, strlen(c->provider), false);
            fputs(")\n\n", f);
        } else {
            md_code(f, c->provider, strlen(c->provider), false);
            fputs("\n\n", f);
        }
        if (c->description && c->description[0]) md_para(f, c->description);
        fputs("| Property | Value |\n|---|---|\n| Provider id | ", f);
        md_code(f, c->provider, strlen(c->provider), true);
        fputs(" |\n| Purposes | ", f);
        md_list(f, c->purposes, c->npurposes, "");
        fputs(" |\n| Callers | ", f);
        md_list(f, c->callers, c->ncallers, "any");
        fputs(" |\n| Retention | ", f);
        md_cstr(f, c->retention ? c->retention : "not stated");
        fputs(" |\n| Upstream host | ", f);
        md_cstr(f, host);
        fprintf(f, " |\n| Unlisted fields | %s |\n| Routes | %zu |\n\n",
                c->reject_unlisted ? "request refused" : "removed", c->nroutes);
        for (size_t k = 0; k < c->nroutes; k++)
            if (md_route(f, c, &c->routes[k]) != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ csv */

/* One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF. */
static void csv_field(FILE *f, const char *s, size_t n)
{
    bool quote = false;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

static void csv_cstr(FILE *f, const char *s)
{
    csv_field(f, s ? s : "", s ? strlen(s) : 0);
}

/* The strings of |v| joined with ';' in a new string, or |none| (copied)
 * when there is none. NULL on ENOMEM. */
static char *csv_join(char *const *v, size_t n, const char *none)
{
    if (n == 0) return strdup(none);
    size_t len = 0;
    for (size_t k = 0; k < n; k++)
        len += strlen(v[k]) + 1;
    char *s = malloc(len);
    if (s == NULL) return NULL;
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        if (k) s[off++] = ';';
        size_t l = strlen(v[k]);
        memcpy(s + off, v[k], l);
        off += l;
    }
    s[off] = '\0';
    return s;
}

static int write_csv(FILE *f, const struct ctr_contract *const *cs, size_t n)
{
    fputs("provider,purposes,callers,method,path,carrier,field,action,category,retention,"
          "upstream_host\r\n",
          f);
    char host[300];
    for (size_t i = 0; i < n; i++) {
        const struct ctr_contract *c = cs[i];
        upstream_host(&c->upstream, host, sizeof host);
        /* "any" when the contract has no callers:, as in the Markdown (the
         * loader refuses an empty list, so "any" never means "nobody") */
        char *purposes = csv_join(c->purposes, c->npurposes, "");
        char *callers = csv_join(c->callers, c->ncallers, "any");
        if (purposes == NULL || callers == NULL) {
            free(purposes);
            free(callers);
            return -1;
        }
        for (size_t k = 0; k < c->nroutes; k++) {
            const struct ctr_route *r = &c->routes[k];
            struct reg_row *rows;
            long nr = route_rows(c, r, &rows);
            if (nr < 0) {
                free(purposes);
                free(callers);
                return -1;
            }
            struct reg_row empty = {.carrier = "", .field = {"", 0}, .action = ""};
            for (long j = 0; j < (nr > 0 ? nr : 1); j++) {
                const struct reg_row *w = nr > 0 ? &rows[j] : &empty;
                csv_cstr(f, c->provider);
                fputc(',', f);
                csv_cstr(f, purposes);
                fputc(',', f);
                csv_cstr(f, callers);
                fputc(',', f);
                csv_cstr(f, r->method);
                fputc(',', f);
                csv_cstr(f, r->path);
                fputc(',', f);
                csv_cstr(f, w->carrier);
                fputc(',', f);
                csv_field(f, w->field.p, w->field.len);
                fputc(',', f);
                csv_cstr(f, w->action);
                fputc(',', f);
                csv_cstr(f, w->category);
                fputc(',', f);
                csv_cstr(f, c->retention);
                fputc(',', f);
                csv_cstr(f, host);
                fputs("\r\n", f);
            }
            free(rows);
        }
        free(purposes);
        free(callers);
    }
    return 0;
}

/* ----------------------------------------------------------------- json */

#define JW_MAX_DEPTH 16

/* A JSON writer that lays out its output as `jq .` does. Invariant:
 * depth < JW_MAX_DEPTH; empty[d] is true while level d has no member. */
struct jw {
    FILE *f;
    int depth;
    bool empty[JW_MAX_DEPTH];
};

static void jw_str(struct jw *w, const char *s, size_t n)
{
    FILE *f = w->f;
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            /* libyaml hands over valid UTF-8 only: copied as is */
            if (ch < 0x20 || ch == 0x7f)
                fprintf(f, "\\u%04x", ch);
            else
                fputc(ch, f);
        }
    }
    fputc('"', f);
}

/* Starts a member (|key| non-NULL, inside an object) or an element. */
static void jw_prefix(struct jw *w, const char *key)
{
    if (w->depth > 0) {
        if (!w->empty[w->depth]) fputc(',', w->f);
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
        w->empty[w->depth] = false;
    }
    if (key) {
        jw_str(w, key, strlen(key));
        fputs(": ", w->f);
    }
}

static void jw_begin(struct jw *w, const char *key, char open)
{
    jw_prefix(w, key);
    fputc(open, w->f);
    if (w->depth + 1 < JW_MAX_DEPTH) w->depth++;
    w->empty[w->depth] = true;
}

static void jw_end(struct jw *w, char close)
{
    bool was_empty = w->empty[w->depth];
    if (w->depth > 0) w->depth--;
    if (!was_empty) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
            fputs("  ", w->f);
    }
    fputc(close, w->f);
}

static void jw_string(struct jw *w, const char *key, const char *s)
{
    jw_prefix(w, key);
    if (s == NULL)
        fputs("null", w->f);
    else
        jw_str(w, s, strlen(s));
}

static void jw_uint(struct jw *w, const char *key, unsigned v)
{
    jw_prefix(w, key);
    fprintf(w->f, "%u", v);
}

static void jw_strlist(struct jw *w, const char *key, char *const *v, size_t n)
{
    jw_begin(w, key, '[');
    for (size_t i = 0; i < n; i++)
        jw_string(w, NULL, v[i]);
    jw_end(w, ']');
}

static void jw_names(struct jw *w, const char *key, const struct flt_str *v, size_t n)
{
    jw_begin(w, key, '[');
    for (size_t i = 0; i < n; i++) {
        jw_prefix(w, NULL);
        jw_str(w, v[i].p, v[i].len);
    }
    jw_end(w, ']');
}

static int json_route(struct jw *w, const struct ctr_contract *c, const struct ctr_route *r)
{
    struct flt_str *query = NULL, *headers = NULL;
    long nq = sorted_names(&r->query, NULL, &query);
    long nh = nq < 0 ? -1 : sorted_names(&c->headers, &r->headers, &headers);
    if (nq < 0 || nh < 0) {
        free(query);
        free(headers);
        return -1;
    }
    jw_begin(w, NULL, '{');
    jw_string(w, "method", r->method);
    jw_string(w, "path", r->path);
    jw_begin(w, "params", '[');
    for (uint32_t i = 0; i < r->tmpl.nseg && i < FLT_TEMPLATE_MAX_SEGMENTS; i++) {
        if (!r->tmpl.seg[i].param) continue;
        jw_begin(w, NULL, '{');
        jw_prefix(w, "name");
        jw_str(w, r->tmpl.seg[i].lit.p, r->tmpl.seg[i].lit.len);
        jw_string(w, "action", r->tmpl.seg[i].action == FLT_PARAM_HASH ? "hash" : "keep");
        jw_end(w, '}');
    }
    jw_end(w, ']');
    jw_names(w, "query", query, (size_t)nq);
    jw_names(w, "headers", headers, (size_t)nh);
    free(query);
    free(headers);
    jw_string(w, "body",
              r->body == CTR_BODY_FIELDS   ? "fields"
              : r->body == CTR_BODY_OPAQUE ? "opaque"
                                           : "none");
    jw_begin(w, "fields", '[');
    for (size_t i = 0; i < r->nfields; i++) {
        const struct ctr_field *fl = &r->fields[i];
        jw_begin(w, NULL, '{');
        jw_string(w, "path", fl->path);
        jw_string(w, "action", flt_action_name(fl->action.kind));
        if (fl->action.kind == FLT_ACT_MASK)
            jw_uint(w, fl->action.mask_keep_last ? "keep_last" : "keep_first", fl->action.n);
        else if (fl->action.kind == FLT_ACT_TRUNCATE)
            jw_uint(w, "length", fl->action.n);
        jw_string(w, "category", fl->category);
        jw_end(w, '}');
    }
    jw_end(w, ']');
    jw_end(w, '}');
    return 0;
}

static int write_json(FILE *f, const struct ctr_contract *const *cs, size_t n)
{
    struct jw w = {.f = f};
    char host[300];
    jw_begin(&w, NULL, '{');
    jw_begin(&w, "providers", '[');
    for (size_t i = 0; i < n; i++) {
        const struct ctr_contract *c = cs[i];
        upstream_host(&c->upstream, host, sizeof host);
        jw_begin(&w, NULL, '{');
        jw_string(&w, "id", c->provider);
        jw_string(&w, "name", c->name);
        jw_string(&w, "description", c->description);
        jw_strlist(&w, "purposes", c->purposes, c->npurposes);
        if (c->ncallers == 0)
            jw_string(&w, "callers", NULL);
        else
            jw_strlist(&w, "callers", c->callers, c->ncallers);
        jw_string(&w, "retention", c->retention);
        jw_string(&w, "upstream_host", host);
        jw_string(&w, "unlisted", c->reject_unlisted ? "reject" : "remove");
        jw_begin(&w, "routes", '[');
        for (size_t k = 0; k < c->nroutes; k++)
            if (json_route(&w, c, &c->routes[k]) != 0) return -1;
        jw_end(&w, ']');
        jw_end(&w, '}');
    }
    jw_end(&w, ']');
    jw_end(&w, '}');
    fputc('\n', f);
    return 0;
}

/* ------------------------------------------------------------------ api */

int ctr_register_format_parse(const char *name, enum ctr_register_format *fmt)
{
    if (name == NULL) return -1;
    if (strcmp(name, "md") == 0 || strcmp(name, "markdown") == 0)
        *fmt = CTR_REGISTER_MD;
    else if (strcmp(name, "csv") == 0)
        *fmt = CTR_REGISTER_CSV;
    else if (strcmp(name, "json") == 0)
        *fmt = CTR_REGISTER_JSON;
    else
        return -1;
    return 0;
}

int ctr_register_write(const struct ctr_set *s, enum ctr_register_format fmt, FILE *out)
{
    size_t n = s->ncontracts;
    const struct ctr_contract **cs = malloc((n ? n : 1) * sizeof *cs);
    if (cs == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (n) memcpy(cs, s->contracts, n * sizeof *cs);
    qsort(cs, n, sizeof *cs, contract_cmp);
    int rc;
    switch (fmt) {
    case CTR_REGISTER_CSV: rc = write_csv(out, cs, n); break;
    case CTR_REGISTER_JSON: rc = write_json(out, cs, n); break;
    default: rc = write_md(out, cs, n); break;
    }
    free(cs);
    if (rc != 0) {
        errno = ENOMEM;
        return -1;
    }
    if (fflush(out) != 0 || ferror(out)) {
        if (errno == 0) errno = EIO;
        return -1;
    }
    return 0;
}
