/* Contract tests (SPEC 6): parsing the `tests:` entries and running them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contracts/int.h"

struct ctr__kv {
    char *name; /* lower case for headers */
    char *value;
};

enum exp_outcome { EXP_FORWARDED, EXP_REFUSED };

struct ctr_test {
    char *name;
    int line;
    /* request */
    char *method;
    char *path;
    char *purpose; /* NULL: from the headers */
    char *caller;  /* NULL: from the headers */
    struct ctr__kv *headers;
    size_t nheaders;
    char *body; /* NULL: no body */
    size_t body_len;
    /* expect */
    enum exp_outcome outcome;
    int status; /* 0: not checked */
    char *error;
    char *exp_path;
    char *exp_body; /* NULL: not checked */
    size_t exp_body_len;
    char **removed;
    size_t nremoved;
    bool has_removed;
    char **transformed;
    size_t ntransformed;
    bool has_transformed;
    struct ctr__kv *exp_headers;
    size_t nexp_headers;
};

void ctr__tests_free(struct ctr_contract *c)
{
    /* everything lives in the contract's arena */
    c->tests = NULL;
    c->ntests = 0;
}

/* ------------------------------------------------------------ YAML -> JSON */

static bool is_json_number(const char *s)
{
    const char *p = s;
    if (*p == '-') p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

/* YAML 1.2 core schema resolution of a plain scalar, written as JSON. */
static void scalar_json(const yaml_node_t *n, struct ctr__buf *b)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (len == 0 || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
            !strcmp(s, "NULL")) {
            ctr__buf_adds(b, "null");
            return;
        }
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            ctr__buf_adds(b, "true");
            return;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            ctr__buf_adds(b, "false");
            return;
        }
        const char *num = s[0] == '+' ? s + 1 : s;
        if (is_json_number(num)) {
            ctr__buf_adds(b, num);
            return;
        }
    }
    ctr__buf_json_str(b, s, len);
}

static int to_json(struct ctr__yaml *y, yaml_node_t *n, struct ctr__buf *b, int depth)
{
    if (!n) return -1;
    if (depth > 256) {
        ctr__err(y, n, "body: nested too deeply");
        return -1;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: scalar_json(n, b); return 0;
    case YAML_SEQUENCE_NODE:
        ctr__buf_addc(b, '[');
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            if (it != n->data.sequence.items.start) ctr__buf_addc(b, ',');
            if (to_json(y, ctr__node(y, *it), b, depth + 1) != 0) return -1;
        }
        ctr__buf_addc(b, ']');
        return 0;
    case YAML_MAPPING_NODE:
        ctr__buf_addc(b, '{');
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
             pr++) {
            yaml_node_t *k = ctr__node(y, pr->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                ctr__err(y, k, "body: keys must be strings");
                return -1;
            }
            if (pr != n->data.mapping.pairs.start) ctr__buf_addc(b, ',');
            ctr__buf_json_str(b, (const char *)k->data.scalar.value, k->data.scalar.length);
            ctr__buf_addc(b, ':');
            if (to_json(y, ctr__node(y, pr->value), b, depth + 1) != 0) return -1;
        }
        ctr__buf_addc(b, '}');
        return 0;
    default: ctr__err(y, n, "body: unsupported YAML node"); return -1;
    }
}

/* A body: a scalar is taken as is; anything else becomes JSON text. */
static char *body_text(struct ctr__yaml *y, yaml_node_t *n, size_t *len)
{
    if (n->type == YAML_SCALAR_NODE) {
        *len = n->data.scalar.length;
        return ctr__strndup(y->mem, (const char *)n->data.scalar.value, *len);
    }
    struct ctr__buf b = {0};
    if (to_json(y, n, &b, 0) != 0 || b.oom) {
        ctr__buf_free(&b);
        return NULL;
    }
    char *p = ctr__strndup(y->mem, b.p, b.len);
    *len = b.len;
    ctr__buf_free(&b);
    return p;
}

static int kv_map(struct ctr__yaml *y, yaml_node_t *n, const char *what, struct ctr__kv **out,
                  size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!n || n->type != YAML_MAPPING_NODE) {
        ctr__err(y, n, "%s: expected a mapping of header: value", what);
        return -1;
    }
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct ctr__kv *v = ctr__alloc(y->mem, (cnt ? cnt : 1) * sizeof *v);
    if (!v) return -1;
    int rc = 0;
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ctr__node(y, pr->key), *val = ctr__node(y, pr->value);
        char *name = ctr__str(y, k, what);
        const char *value = ctr__scalar(y, val, what);
        if (!name || !value) {
            rc = -1;
            continue;
        }
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        /* header names are case-insensitive: "Cookie" and "cookie" are the
         * same key (byte-identical keys are reported as duplicate keys) */
        bool dup = false;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < pr && !dup; q++) {
            yaml_node_t *qk = ctr__node(y, q->key);
            if (qk && qk->type == YAML_SCALAR_NODE &&
                qk->data.scalar.length == k->data.scalar.length &&
                strcasecmp((const char *)qk->data.scalar.value, name) == 0 &&
                strcmp((const char *)qk->data.scalar.value, (const char *)k->data.scalar.value) !=
                    0)
                dup = true;
        }
        if (dup) {
            ctr__err(y, k, "%s: duplicate header '%s'", what, name);
            rc = -1;
            continue;
        }
        v[*nout].name = name;
        v[*nout].value = ctr__strndup(y->mem, value, val->data.scalar.length);
        (*nout)++;
    }
    *out = v;
    return rc;
}

static void parse_request(struct ctr__yaml *y, yaml_node_t *n, struct ctr_test *t)
{
    static const char *const keys[] = {"method",  "path", "purpose", "caller",
                                       "headers", "body", NULL};
    enum { K_METHOD, K_PATH, K_PURPOSE, K_CALLER, K_HEADERS, K_BODY };
    yaml_node_t *v[6];
    if (ctr__map(y, n, "request", keys, v, NULL) != 0) return;
    if (v[K_METHOD]) {
        t->method = ctr__str(y, v[K_METHOD], "request.method");
        if (t->method)
            for (char *p = t->method; *p; p++)
                if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    } else {
        t->method = ctr__strdup(y->mem, "POST");
    }
    if (!v[K_PATH])
        ctr__err(y, n, "request: 'path' is required");
    else
        t->path = ctr__str(y, v[K_PATH], "request.path");
    if (v[K_PURPOSE]) t->purpose = ctr__str(y, v[K_PURPOSE], "request.purpose");
    if (v[K_CALLER]) t->caller = ctr__str(y, v[K_CALLER], "request.caller");
    if (v[K_HEADERS]) kv_map(y, v[K_HEADERS], "request.headers", &t->headers, &t->nheaders);
    if (v[K_BODY]) t->body = body_text(y, v[K_BODY], &t->body_len);
}

static void parse_expect(struct ctr__yaml *y, yaml_node_t *n, struct ctr_test *t)
{
    static const char *const keys[] = {"outcome", "status",      "error",   "path", "body",
                                       "removed", "transformed", "headers", NULL};
    enum { K_OUTCOME, K_STATUS, K_ERROR, K_PATH, K_BODY, K_REMOVED, K_TRANSFORMED, K_HEADERS };
    yaml_node_t *v[8];
    if (ctr__map(y, n, "expect", keys, v, NULL) != 0) return;
    t->outcome = (v[K_STATUS] || v[K_ERROR]) ? EXP_REFUSED : EXP_FORWARDED;
    if (v[K_OUTCOME]) {
        const char *o = ctr__scalar(y, v[K_OUTCOME], "expect.outcome");
        if (o && !strcmp(o, "forwarded"))
            t->outcome = EXP_FORWARDED;
        else if (o && !strcmp(o, "refused"))
            t->outcome = EXP_REFUSED;
        else if (o)
            ctr__err(y, v[K_OUTCOME], "expect.outcome: must be forwarded or refused");
    }
    if (v[K_STATUS]) {
        uint64_t u;
        if (ctr__uint(y, v[K_STATUS], "expect.status", 599, &u) == 0) {
            if (u < 100) ctr__err(y, v[K_STATUS], "expect.status: not an HTTP status");
            t->status = (int)u;
        }
    }
    if (v[K_ERROR]) t->error = ctr__str(y, v[K_ERROR], "expect.error");
    if (v[K_PATH]) t->exp_path = ctr__str(y, v[K_PATH], "expect.path");
    if (v[K_BODY]) t->exp_body = body_text(y, v[K_BODY], &t->exp_body_len);
    if (v[K_REMOVED]) {
        t->has_removed = true;
        ctr__strlist(y, v[K_REMOVED], "expect.removed", false, &t->removed, &t->nremoved);
    }
    if (v[K_TRANSFORMED]) {
        t->has_transformed = true;
        ctr__strlist(y, v[K_TRANSFORMED], "expect.transformed", false, &t->transformed,
                     &t->ntransformed);
    }
    if (v[K_HEADERS]) kv_map(y, v[K_HEADERS], "expect.headers", &t->exp_headers, &t->nexp_headers);
}

int ctr__tests_parse(struct ctr__yaml *y, yaml_node_t *n, struct ctr_contract *c)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ctr__err(y, n, "tests: expected a list");
        return -1;
    }
    int before = y->errors;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    c->tests = ctr__alloc(y->mem, (cnt ? cnt : 1) * sizeof *c->tests);
    if (!c->tests) return -1;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ctr__node(y, *it);
        static const char *const keys[] = {"name", "request", "expect", NULL};
        yaml_node_t *v[3];
        struct ctr_test *t = &c->tests[c->ntests];
        if (ctr__map(y, e, "test", keys, v, NULL) != 0) continue;
        c->ntests++;
        t->line = (int)e->start_mark.line + 1;
        if (v[0]) t->name = ctr__str(y, v[0], "test.name");
        if (!t->name) {
            char buf[32];
            snprintf(buf, sizeof buf, "line %d", t->line);
            t->name = ctr__strdup(y->mem, buf);
        }
        if (!v[1])
            ctr__err(y, e, "test: 'request' is required");
        else
            parse_request(y, v[1], t);
        if (!v[2])
            ctr__err(y, e, "test: 'expect' is required");
        else
            parse_expect(y, v[2], t);
    }
    return y->errors == before ? 0 : -1;
}

/* ------------------------------------------------------- JSON canonical form */

struct jp {
    const char *p, *end;
};

static void j_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void utf8_put(struct ctr__buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    ctr__buf_add(b, u, n);
}

/* A string literal, written to |out| in canonical escaping. */
static int j_string(struct jp *j, struct ctr__buf *out)
{
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    struct ctr__buf raw = {0};
    ctr__buf_add(&raw, "", 0);
    int rc = -1;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') {
            rc = 0;
            break;
        }
        if (c < 0x20) break;
        if (c != '\\') {
            ctr__buf_addc(&raw, (char)c);
            continue;
        }
        if (j->p >= j->end) break;
        char e = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            ctr__buf_addc(&raw, map[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (e != 'u' || j->end - j->p < 4) break;
        unsigned cp;
        if (hex4(j->p, &cp) != 0) break;
        j->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
            unsigned lo;
            if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                hex4(j->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                break;
            j->p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            break;
        }
        utf8_put(&raw, cp);
    }
    if (rc == 0) ctr__buf_json_str(out, raw.p, raw.len);
    ctr__buf_free(&raw);
    return rc;
}

static int j_number(struct jp *j, struct ctr__buf *out)
{
    const char *s = j->p;
    const char *p = s;
    if (p < j->end && *p == '-') p++;
    if (p < j->end && *p == '0')
        p++;
    else if (p < j->end && *p >= '1' && *p <= '9')
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    else
        return -1;
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9') return -1;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9') return -1;
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    ctr__buf_add(out, s, (size_t)(p - s));
    j->p = p;
    return 0;
}

struct member {
    struct ctr__buf k, v;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    int c = strcmp(x->k.p, y->k.p);
    return c ? c : strcmp(x->v.p, y->v.p);
}

static int j_value(struct jp *j, struct ctr__buf *out, int depth);

static int j_object(struct jp *j, struct ctr__buf *out, int depth)
{
    j->p++; /* '{' */
    struct member *m = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    j_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        rc = 0;
        goto emit;
    }
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            struct member *nm = realloc(m, cap * sizeof *m);
            if (!nm) goto done;
            m = nm;
        }
        memset(&m[n], 0, sizeof m[n]);
        n++;
        j_ws(j);
        if (j_string(j, &m[n - 1].k) != 0) goto done;
        j_ws(j);
        if (j->p >= j->end || *j->p != ':') goto done;
        j->p++;
        if (j_value(j, &m[n - 1].v, depth + 1) != 0) goto done;
        j_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            rc = 0;
            break;
        }
        goto done;
    }
emit:
    for (size_t i = 0; i < n; i++)
        if (!m[i].k.p || !m[i].v.p) rc = -1;
    if (rc == 0) {
        if (n > 1) qsort(m, n, sizeof *m, cmp_member);
        ctr__buf_addc(out, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) ctr__buf_addc(out, ',');
            ctr__buf_add(out, m[i].k.p, m[i].k.len);
            ctr__buf_addc(out, ':');
            ctr__buf_add(out, m[i].v.p, m[i].v.len);
        }
        ctr__buf_addc(out, '}');
    }
done:
    for (size_t i = 0; i < n; i++) {
        ctr__buf_free(&m[i].k);
        ctr__buf_free(&m[i].v);
    }
    free(m);
    return rc;
}

static int j_value(struct jp *j, struct ctr__buf *out, int depth)
{
    if (depth > 512) return -1;
    j_ws(j);
    if (j->p >= j->end) return -1;
    char c = *j->p;
    if (c == '{') return j_object(j, out, depth);
    if (c == '[') {
        j->p++;
        ctr__buf_addc(out, '[');
        j_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            ctr__buf_addc(out, ']');
            return 0;
        }
        for (bool first = true;; first = false) {
            if (!first) ctr__buf_addc(out, ',');
            if (j_value(j, out, depth + 1) != 0) return -1;
            j_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == ']') {
                j->p++;
                ctr__buf_addc(out, ']');
                return 0;
            }
            return -1;
        }
    }
    if (c == '"') return j_string(j, out);
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(j->end - j->p) >= l && memcmp(j->p, lits[i], l) == 0) {
            ctr__buf_add(out, lits[i], l);
            j->p += l;
            return 0;
        }
    }
    return j_number(j, out);
}

int ctr__json_canon(const char *p, size_t n, struct ctr__buf *out)
{
    struct jp j = {p, p + n};
    ctr__buf_add(out, "", 0);
    for (bool first = true;; first = false) {
        j_ws(&j);
        if (j.p >= j.end) break;
        if (!first) ctr__buf_addc(out, '\n');
        if (j_value(&j, out, 0) != 0) return -1;
        /* values of a sequence are separated by white space ("01" is not 0, 1) */
        if (j.p < j.end && *j.p != ' ' && *j.p != '\t' && *j.p != '\n' && *j.p != '\r') return -1;
    }
    return out->oom ? -1 : 0;
}

/* ------------------------------------------------------------------ run */

struct reason {
    char *p;
    size_t cap, len;
};

static void say(struct reason *r, const char *fmt, ...) CTR__PRINTF(2, 3);

static void say(struct reason *r, const char *fmt, ...)
{
    if (r->len >= r->cap - 1) return;
    if (r->len) {
        int w = snprintf(r->p + r->len, r->cap - r->len, "; ");
        r->len += (size_t)w;
        if (r->len >= r->cap) r->len = r->cap - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->p + r->len, r->cap - r->len, fmt, ap);
    va_end(ap);
    if (w > 0) r->len += (size_t)w;
    if (r->len >= r->cap) r->len = r->cap - 1;
}

static bool list_has(const struct flt_pathlist *l, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str v = flt_pathlist_get(l, i);
        if (v.len == n && memcmp(v.p, s, n) == 0) return true;
    }
    return false;
}

static bool names_have(char *const *v, size_t n, struct flt_str s)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == s.len && memcmp(v[i], s.p, s.len) == 0) return true;
    return false;
}

static void compare_list(struct reason *rs, const char *what, const struct flt_pathlist *got,
                         char *const *exp, size_t nexp)
{
    for (size_t i = 0; i < nexp; i++)
        if (!list_has(got, exp[i])) say(rs, "%s: %s expected, not reported", what, exp[i]);
    for (uint32_t i = 0; i < got->n; i++) {
        struct flt_str v = flt_pathlist_get(got, i);
        if (!names_have(exp, nexp, v))
            say(rs, "%s: %.*s reported, not expected", what, (int)v.len, v.p);
    }
    if (got->more) say(rs, "%s: %u more paths than the report holds", what, (unsigned)got->more);
}

static bool body_equal(const char *a, size_t al, const char *b, size_t bl)
{
    struct ctr__buf ca = {0}, cb = {0};
    bool eq;
    if (ctr__json_canon(a, al, &ca) == 0 && ctr__json_canon(b, bl, &cb) == 0)
        eq = ca.len == cb.len && memcmp(ca.p, cb.p, ca.len) == 0;
    else
        eq = al == bl && (al == 0 || memcmp(a, b, al) == 0);
    ctr__buf_free(&ca);
    ctr__buf_free(&cb);
    return eq;
}

/* ------------------------------------------------ differences, no values */

/*
 * A failure reason names what differs, never a value (SPEC 1.3: a test's
 * request may carry real-looking personal data, and `privgate test` output
 * ends up in CI logs): JSON paths for bodies, parameter names and segment
 * indices for paths. At most DIFF_MAX items are listed, then a count.
 */
#define DIFF_MAX 8

struct diff {
    char text[384];
    size_t len;
    unsigned n; /* items found */
};

static void diff_add(struct diff *df, const char *fmt, ...) CTR__PRINTF(2, 3);

static void diff_add(struct diff *df, const char *fmt, ...)
{
    df->n++;
    if (df->n > DIFF_MAX || df->len >= sizeof df->text - 1) return;
    if (df->len) {
        int w = snprintf(df->text + df->len, sizeof df->text - df->len, ", ");
        if (w > 0) df->len += (size_t)w;
        if (df->len >= sizeof df->text) df->len = sizeof df->text - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(df->text + df->len, sizeof df->text - df->len, fmt, ap);
    va_end(ap);
    if (w > 0) df->len += (size_t)w;
    if (df->len >= sizeof df->text) df->len = sizeof df->text - 1;
}

/* "; and N more" for the items past DIFF_MAX. */
static const char *diff_more(const struct diff *df, char *buf, size_t cap)
{
    buf[0] = 0;
    if (df->n > DIFF_MAX) snprintf(buf, cap, ", and %u more", df->n - DIFF_MAX);
    return buf;
}

/* Appends |p|/|n| to a path as printable ASCII (anything else as '?'),
 * at most |cap| - 1 bytes in all. */
static void path_put(char *path, size_t cap, size_t *len, const char *p, size_t n)
{
    for (size_t i = 0; i < n && *len + 1 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        path[(*len)++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    path[*len] = 0;
}

/* End of the canonical JSON value starting at |p| (no white space; valid:
 * it came out of ctr__json_canon). */
static const char *cj_skip(const char *p, const char *end)
{
    int depth = 0;
    bool str = false;
    for (; p < end; p++) {
        char c = *p;
        if (str) {
            if (c == '\\')
                p++;
            else if (c == '"') {
                str = false;
                if (depth == 0) return p + 1;
            }
            continue;
        }
        if (c == '"')
            str = true;
        else if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']') {
            if (--depth == 0) return p + 1;
        } else if (depth == 0 && (c == ',' || c == ':')) {
            return p;
        }
    }
    return end;
}

/* Compares two key literals (quotes included) as strcmp would. */
static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Path component for member |k| (a JSON string literal). */
static size_t path_member(char *path, size_t cap, size_t len, const char *k, size_t kl)
{
    const char *s = k + 1;
    size_t n = kl >= 2 ? kl - 2 : 0;
    bool bare = n > 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            bare = false;
    }
    path_put(path, cap, &len, ".", 1);
    if (bare) {
        path_put(path, cap, &len, s, n);
    } else {
        path_put(path, cap, &len, "\"", 1);
        path_put(path, cap, &len, s, n);
        path_put(path, cap, &len, "\"", 1);
    }
    return len;
}

static void cj_diff(struct diff *df, const char *e, const char *ee, const char *g, const char *ge,
                    char *path, size_t cap, size_t plen, const char *where, int depth)
{
    if ((size_t)(ee - e) == (size_t)(ge - g) && memcmp(e, g, (size_t)(ee - e)) == 0) return;
    if (depth < 128 && ee - e >= 2 && ge - g >= 2 && *e == '{' && *g == '{') {
        const char *a = e + 1, *b = g + 1;
        ee--; /* '}' */
        ge--;
        while (a < ee || b < ge) {
            const char *ak = a, *ake = a < ee ? cj_skip(a, ee) : a;
            const char *bk = b, *bke = b < ge ? cj_skip(b, ge) : b;
            int c = a >= ee   ? 1
                    : b >= ge ? -1
                              : key_cmp(ak, (size_t)(ake - ak), bk, (size_t)(bke - bk));
            const char *av = ake + 1, *ave = a < ee ? cj_skip(av, ee) : a;
            const char *bv = bke + 1, *bve = b < ge ? cj_skip(bv, ge) : b;
            if (c < 0) {
                size_t l = path_member(path, cap, plen, ak, (size_t)(ake - ak));
                diff_add(df, "missing %s%s", path, where);
                path[plen] = 0;
                (void)l;
            } else if (c > 0) {
                path_member(path, cap, plen, bk, (size_t)(bke - bk));
                diff_add(df, "unexpected %s%s", path, where);
                path[plen] = 0;
            } else {
                size_t l = path_member(path, cap, plen, ak, (size_t)(ake - ak));
                cj_diff(df, av, ave, bv, bve, path, cap, l, where, depth + 1);
                path[plen] = 0;
            }
            if (c <= 0) a = ave < ee ? ave + 1 : ee;
            if (c >= 0) b = bve < ge ? bve + 1 : ge;
        }
        return;
    }
    if (depth < 128 && ee - e >= 2 && ge - g >= 2 && *e == '[' && *g == '[') {
        const char *a = e + 1, *b = g + 1;
        ee--;
        ge--;
        for (size_t i = 0; a < ee || b < ge; i++) {
            const char *ae = a < ee ? cj_skip(a, ee) : a;
            const char *be = b < ge ? cj_skip(b, ge) : b;
            char idx[32];
            int w = snprintf(idx, sizeof idx, "[%zu]", i);
            size_t l = plen;
            path_put(path, cap, &l, idx, (size_t)w);
            if (a >= ee)
                diff_add(df, "unexpected %s%s", path, where);
            else if (b >= ge)
                diff_add(df, "missing %s%s", path, where);
            else
                cj_diff(df, a, ae, b, be, path, cap, l, where, depth + 1);
            path[plen] = 0;
            a = a < ee ? (ae < ee ? ae + 1 : ee) : a;
            b = b < ge ? (be < ge ? be + 1 : ge) : b;
        }
        return;
    }
    diff_add(df, "different value at %s%s", path, where);
}

/* Splits canonical text into documents (joined by '\n'). */
static size_t docs_count(const char *p, size_t n)
{
    size_t c = n ? 1 : 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n') c++;
    return c;
}

static void body_diff(struct reason *rs, const char *exp, size_t el, const char *got, size_t gl)
{
    struct ctr__buf ca = {0}, cb = {0};
    if (ctr__json_canon(exp, el, &ca) != 0 || ctr__json_canon(got, gl, &cb) != 0) {
        /* not JSON on one side (a form body, say): name no byte of it */
        ctr__buf_free(&ca);
        ctr__buf_free(&cb);
        say(rs, "body differs (not comparable as JSON)");
        return;
    }
    struct diff df = {{0}, 0, 0};
    size_t nd_e = docs_count(ca.p, ca.len), nd_g = docs_count(cb.p, cb.len);
    bool multi = nd_e != 1 || nd_g != 1;
    if (nd_e != nd_g) diff_add(&df, "%zu documents expected, %zu forwarded", nd_e, nd_g);
    const char *a = ca.p, *ae = ca.p + ca.len, *b = cb.p, *be = cb.p + cb.len;
    for (size_t k = 1; a < ae && b < be; k++) {
        const char *an = memchr(a, '\n', (size_t)(ae - a));
        const char *bn = memchr(b, '\n', (size_t)(be - b));
        if (!an) an = ae;
        if (!bn) bn = be;
        char path[256] = "body";
        char where[32] = "";
        if (multi) snprintf(where, sizeof where, " (line %zu)", k);
        cj_diff(&df, a, an, b, bn, path, sizeof path, 4, where, 0);
        a = an < ae ? an + 1 : ae;
        b = bn < be ? bn + 1 : be;
    }
    char more[48];
    if (df.n == 0)
        say(rs, "body differs");
    else
        say(rs, "body: %s%s", df.text, diff_more(&df, more, sizeof more));
    ctr__buf_free(&ca);
    ctr__buf_free(&cb);
}

/* One '&'-separated parameter of a query string. */
struct qparam {
    const char *name, *value;
    size_t nl, vl;
    bool eq;
};

static size_t parse_params(const char *q, size_t len, struct qparam *v, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len && n < cap) {
        const char *p = q + i;
        const char *amp = memchr(p, '&', len - i);
        size_t pl = amp ? (size_t)(amp - p) : len - i;
        i += pl + 1;
        if (pl == 0) continue;
        const char *eq = memchr(p, '=', pl);
        v[n].name = p;
        v[n].nl = eq ? (size_t)(eq - p) : pl;
        v[n].eq = eq != NULL;
        v[n].value = eq ? eq + 1 : p + pl;
        v[n].vl = eq ? pl - v[n].nl - 1 : 0;
        n++;
    }
    return n;
}

/* The |occ|-th parameter named like |p| in |v|, or NULL. */
static const struct qparam *nth_named(const struct qparam *v, size_t n, const struct qparam *p,
                                      size_t occ)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].nl == p->nl && memcmp(v[i].name, p->name, p->nl) == 0 && occ-- == 0) return &v[i];
    return NULL;
}

static size_t occurrence(const struct qparam *v, size_t i)
{
    size_t occ = 0;
    for (size_t j = 0; j < i; j++)
        if (v[j].nl == v[i].nl && memcmp(v[j].name, v[i].name, v[i].nl) == 0) occ++;
    return occ;
}

#define QPARAMS_MAX 64

static void query_diff(struct diff *df, const char *e, size_t el, const char *g, size_t gl)
{
    struct qparam *ev = calloc(2 * QPARAMS_MAX, sizeof *ev);
    if (!ev) {
        diff_add(df, "query");
        return;
    }
    struct qparam *gv = ev + QPARAMS_MAX;
    size_t ne = parse_params(e, el, ev, QPARAMS_MAX), ng = parse_params(g, gl, gv, QPARAMS_MAX);
    unsigned before = df->n;
    for (size_t i = 0; i < ne; i++) {
        const struct qparam *o = nth_named(gv, ng, &ev[i], occurrence(ev, i));
        char name[80];
        size_t l = 0;
        path_put(name, sizeof name, &l, ev[i].name, ev[i].nl);
        if (!o)
            diff_add(df, "query parameter '%s' missing", name);
        else if (o->eq != ev[i].eq || o->vl != ev[i].vl ||
                 (o->vl && memcmp(o->value, ev[i].value, o->vl) != 0))
            diff_add(df, "query parameter '%s' has another value", name);
    }
    for (size_t i = 0; i < ng; i++) {
        if (nth_named(ev, ne, &gv[i], occurrence(gv, i))) continue;
        char name[80];
        size_t l = 0;
        path_put(name, sizeof name, &l, gv[i].name, gv[i].nl);
        diff_add(df, "query parameter '%s' unexpected", name);
    }
    if (df->n == before) diff_add(df, "query parameters in another order");
    free(ev);
}

/* Segments of |p| (after its leading '/', split on '/'), at most |cap|. */
static size_t split_segments(const char *p, size_t len, struct flt_str *v, size_t cap)
{
    size_t n = 0, i = (len && p[0] == '/') ? 1 : 0;
    if (len == 0) return 0;
    for (;;) {
        const char *s = p + i;
        const char *slash = memchr(s, '/', len - i);
        size_t l = slash ? (size_t)(slash - s) : len - i;
        if (n < cap) {
            v[n].p = s;
            v[n].len = l;
            n++;
        }
        if (!slash) break;
        i += l + 1;
    }
    return n;
}

static void path_diff(struct reason *rs, const char *exp, const char *got)
{
    struct diff df = {{0}, 0, 0};
    size_t el = strlen(exp), gl = strlen(got);
    const char *eq = memchr(exp, '?', el), *gq = memchr(got, '?', gl);
    size_t epl = eq ? (size_t)(eq - exp) : el, gpl = gq ? (size_t)(gq - got) : gl;
    if (epl != gpl || memcmp(exp, got, epl) != 0) {
        /* segments, numbered from 1 after the leading '/' */
        struct flt_str sa[64], sb[64];
        size_t na = split_segments(exp, epl, sa, 64), nb = split_segments(got, gpl, sb, 64);
        for (size_t k = 0; k < na && k < nb; k++)
            if (sa[k].len != sb[k].len || memcmp(sa[k].p, sb[k].p, sa[k].len) != 0)
                diff_add(&df, "segment %zu", k + 1);
        if (na != nb) diff_add(&df, "%zu segments expected, %zu forwarded", na, nb);
    }
    const char *qe = eq ? eq + 1 : "", *qg = gq ? gq + 1 : "";
    size_t qel = eq ? el - epl - 1 : 0, qgl = gq ? gl - gpl - 1 : 0;
    if (qel != qgl || memcmp(qe, qg, qel) != 0 || (eq == NULL) != (gq == NULL)) {
        if (qel == qgl && memcmp(qe, qg, qel) == 0)
            diff_add(&df, "'?' expected %s", eq ? "and not forwarded" : "only when not empty");
        else
            query_diff(&df, qe, qel, qg, qgl);
    }
    char more[48];
    say(rs, "path differs (%s%s)", df.n ? df.text : "", diff_more(&df, more, sizeof more));
}

void ctr_test_run(const struct ctr_config *cfg, const struct ctr_contract *c, size_t i,
                  struct ctr_test_outcome *out)
{
    struct reason rs = {out->reason, sizeof out->reason, 0};
    out->reason[0] = 0;
    out->passed = false;
    out->name = "";
    if (i >= c->ntests) {
        say(&rs, "no such test");
        return;
    }
    const struct ctr_test *t = &c->tests[i];
    out->name = t->name;

    struct ctr_header *hs = calloc(t->nheaders + 1, sizeof *hs);
    struct ctr_result *r = malloc(sizeof *r);
    if (!hs || !r) {
        free(hs);
        free(r);
        say(&rs, "out of memory");
        return;
    }
    size_t nh = 0;
    bool has_ct = false;
    for (size_t k = 0; k < t->nheaders; k++) {
        hs[nh].name.p = t->headers[k].name;
        hs[nh].name.len = strlen(t->headers[k].name);
        hs[nh].value.p = t->headers[k].value;
        hs[nh].value.len = strlen(t->headers[k].value);
        if (!strcmp(t->headers[k].name, "content-type")) has_ct = true;
        nh++;
    }
    if (t->body && t->body_len && !has_ct) {
        hs[nh].name.p = "content-type";
        hs[nh].name.len = 12;
        hs[nh].value.p = "application/json";
        hs[nh].value.len = 16;
        nh++;
    }
    struct ctr_request req = {
        .method = {t->method, strlen(t->method)},
        .path = {t->path, strlen(t->path)},
        .headers = hs,
        .nheaders = nh,
        .caller = {t->caller, t->caller ? strlen(t->caller) : 0},
        .purpose = {t->purpose, t->purpose ? strlen(t->purpose) : 0},
    };
    ctr_run(cfg, c, &req, t->body ? t->body : "", t->body ? t->body_len : 0, r);
    const struct ctr_decision *d = &r->d;

    if (t->outcome == EXP_REFUSED) {
        if (d->status == 0)
            say(&rs, "expected refused, got forwarded");
        else {
            if (t->status && t->status != d->status)
                say(&rs, "expected status %d, got %d %s", t->status, d->status, d->error);
            if (t->error && strcmp(t->error, d->error ? d->error : "") != 0)
                say(&rs, "expected error %s, got %s (%s)", t->error, d->error, d->message);
        }
    } else if (d->status != 0) {
        say(&rs, "expected forwarded, got refused %d %s (%s)", d->status, d->error, d->message);
    } else {
        /* never a value: name what differs (paths, parameter names) */
        if (t->exp_path && strcmp(t->exp_path, d->path) != 0) path_diff(&rs, t->exp_path, d->path);
        if (t->exp_body &&
            !body_equal(t->exp_body, t->exp_body_len, r->body ? r->body : "", r->body_len))
            body_diff(&rs, t->exp_body, t->exp_body_len, r->body ? r->body : "", r->body_len);
        if (t->has_removed)
            compare_list(&rs, "removed", &d->report.removed, t->removed, t->nremoved);
        if (t->has_transformed)
            compare_list(&rs, "transformed", &d->report.transformed, t->transformed,
                         t->ntransformed);
        for (size_t k = 0; k < t->nexp_headers; k++) {
            const struct ctr__kv *e = &t->exp_headers[k];
            bool found = false, name_found = false;
            size_t nl = strlen(e->name), vl = strlen(e->value);
            for (size_t f = 0; f < d->nfwd; f++) {
                const struct ctr_header *h = &d->fwd[f];
                if (h->name.len != nl || strncasecmp(h->name.p, e->name, nl) != 0) continue;
                name_found = true;
                if (h->value.len == vl && memcmp(h->value.p, e->value, vl) == 0) found = true;
            }
            /* never print a header value: it may be a credential */
            if (!name_found)
                say(&rs, "header %s: not forwarded", e->name);
            else if (!found)
                say(&rs, "header %s: forwarded with another value", e->name);
        }
    }
    out->passed = rs.len == 0;
    ctr_result_free(r);
    free(r);
    free(hs);
}
