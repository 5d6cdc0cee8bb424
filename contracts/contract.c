/* One provider's contract (SPEC 4). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "contracts/int.h"

#define ERRLEN 256
#define SECRET_MAX (64u << 10)

void ctr__contract_free(struct ctr_contract *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nroutes; i++)
        if (c->routes[i].rules) flt_rules_unref(c->routes[i].rules);
    ctr__tests_free(c);
    explicit_bzero(&c->upstream.hmac, sizeof c->upstream.hmac);
    struct ctr__arena *mem = c->mem;
    free(c);
    ctr__arena_del(mem); /* wipes the auth value too */
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

/* Reads a secret file: its content is never printed, only its name and the
 * errno text. One trailing newline ("\n" or "\r\n") is trimmed. */
static int read_secret(struct ctr__yaml *y, yaml_node_t *n, const char *what, unsigned char **out,
                       size_t *len)
{
    *out = NULL;
    char *rel = ctr__str(y, n, what);
    if (!rel) return -1;
    char *path = ctr__resolve(y->mem, y->file, rel);
    if (!path) return -1;
    int e = ctr__read_file(path, SECRET_MAX, out, len);
    if (e) {
        ctr__err(y, n, "%s: cannot read '%s': %s", what, path, strerror(e));
        return -1;
    }
    if (*len && (*out)[*len - 1] == '\n') {
        (*len)--;
        if (*len && (*out)[*len - 1] == '\r') (*len)--;
    }
    (*out)[*len] = 0;
    if (*len == 0) {
        ctr__err(y, n, "%s: '%s' is empty", what, path);
        free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static void free_secret(unsigned char *p, size_t len)
{
    if (p) {
        explicit_bzero(p, len);
        free(p);
    }
}

static int parse_url(struct ctr__yaml *y, yaml_node_t *n, struct ctr_upstream *u)
{
    char *s = ctr__str(y, n, "upstream.url");
    if (!s) return -1;
    u->url = s;
    const char *p;
    if (strncmp(s, "https://", 8) == 0) {
        u->scheme = "https";
        u->port = 443;
        p = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        u->scheme = "http";
        u->port = 80;
        p = s + 7;
    } else {
        ctr__err(y, n, "upstream.url: must start with https:// (or http:// with insecure: true)");
        return -1;
    }
    size_t auth_len = strcspn(p, "/?#");
    if (p[auth_len] == '?' || p[auth_len] == '#' || strchr(p, '?') || strchr(p, '#')) {
        ctr__err(y, n, "upstream.url: must not carry a query or a fragment");
        return -1;
    }
    if (memchr(p, '@', auth_len)) {
        ctr__err(y, n, "upstream.url: must not carry user information");
        return -1;
    }
    const char *hp = p, *portp = NULL;
    size_t hl;
    if (*p == '[') {
        const char *close = memchr(p, ']', auth_len);
        if (!close) goto bad;
        hp = p + 1;
        hl = (size_t)(close - p) - 1;
        if (close + 1 < p + auth_len) {
            if (close[1] != ':') goto bad;
            portp = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', auth_len);
        hl = colon ? (size_t)(colon - p) : auth_len;
        if (colon) portp = colon + 1;
    }
    if (hl == 0) goto bad;
    for (size_t i = 0; i < hl; i++) {
        char c = hp[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || (*p == '[' && c == ':')))
            goto bad;
    }
    if (portp) {
        unsigned long v = 0;
        const char *end = p + auth_len;
        if (portp == end || end - portp > 5) goto bad;
        for (const char *q = portp; q < end; q++) {
            if (*q < '0' || *q > '9') goto bad;
            v = v * 10 + (unsigned long)(*q - '0');
        }
        if (v == 0 || v > 65535) goto bad;
        u->port = (uint16_t)v;
    }
    u->host = ctr__strndup(y->mem, hp, hl);
    lower(u->host);
    const char *bp = p + auth_len;
    size_t bl = strlen(bp);
    while (bl && bp[bl - 1] == '/')
        bl--;
    u->base_path = ctr__strndup(y->mem, bp, bl);
    return u->host && u->base_path ? 0 : -1;
bad:
    ctr__err(y, n, "upstream.url: invalid host or port in '%s'", s);
    return -1;
}

static void parse_upstream(struct ctr__yaml *y, yaml_node_t *n, struct ctr_upstream *u)
{
    static const char *const keys[] = {"url",           "ca",       "server_name", "auth",
                                       "hmac_key_file", "insecure", "protocol",    NULL};
    enum { K_URL, K_CA, K_SNI, K_AUTH, K_HMAC, K_INSECURE, K_PROTO };
    yaml_node_t *v[7];
    if (ctr__map(y, n, "upstream", keys, v, NULL) != 0) return;
    if (v[K_PROTO]) {
        /* not in SPEC 4: chooses HTTP/1.1 or HTTP/2 where ALPN cannot (cleartext) */
        char *s = ctr__str(y, v[K_PROTO], "upstream.protocol");
        if (s && strcmp(s, "auto") == 0)
            u->protocol = CTR_UP_AUTO;
        else if (s && strcmp(s, "h2") == 0)
            u->protocol = CTR_UP_H2;
        else if (s && strcmp(s, "http/1.1") == 0)
            u->protocol = CTR_UP_HTTP1;
        else if (s)
            ctr__err(y, v[K_PROTO], "upstream.protocol: expected h2, http/1.1 or auto");
    }
    if (v[K_INSECURE]) ctr__bool(y, v[K_INSECURE], "upstream.insecure", &u->insecure);
    if (!v[K_URL])
        ctr__err(y, n, "upstream: 'url' is required");
    else if (parse_url(y, v[K_URL], u) == 0 && strcmp(u->scheme, "http") == 0 && !u->insecure)
        ctr__err(y, v[K_URL], "upstream.url: http:// needs 'insecure: true'");
    if (v[K_CA]) {
        char *s = ctr__str(y, v[K_CA], "upstream.ca");
        if (s) {
            u->ca = ctr__resolve(y->mem, y->file, s);
            unsigned char *tmp;
            size_t tl;
            int e = u->ca ? ctr__read_file(u->ca, 16u << 20, &tmp, &tl) : ENOMEM;
            if (e)
                ctr__err(y, v[K_CA], "upstream.ca: cannot read '%s': %s", u->ca ? u->ca : s,
                         strerror(e));
            else
                free(tmp);
        }
    }
    if (v[K_SNI]) u->server_name = ctr__str(y, v[K_SNI], "upstream.server_name");
    if (v[K_AUTH]) {
        static const char *const ak[] = {"header", "value_file", NULL};
        yaml_node_t *av[2];
        if (ctr__map(y, v[K_AUTH], "upstream.auth", ak, av, NULL) == 0) {
            if (!av[0] || !av[1]) {
                ctr__err(y, v[K_AUTH], "upstream.auth: 'header' and 'value_file' are required");
            } else {
                char *h = ctr__str(y, av[0], "upstream.auth.header");
                if (h) {
                    lower(h);
                    if (!ctr__token(h, strlen(h)) || strncmp(h, "privgate-", 9) == 0 ||
                        ctr__hop_header(h, strlen(h)))
                        ctr__err(y, av[0], "upstream.auth.header: '%s' cannot be injected", h);
                    else
                        u->auth_header = h;
                }
                unsigned char *sec;
                size_t sl;
                if (read_secret(y, av[1], "upstream.auth.value_file", &sec, &sl) == 0) {
                    if (!flt_header_value_ok((const char *)sec, sl))
                        ctr__err(y, av[1],
                                 "upstream.auth.value_file: the value contains CR, LF or NUL");
                    else
                        u->auth_value = ctr__strndup(y->mem, (const char *)sec, sl);
                    free_secret(sec, sl);
                }
            }
        }
    }
    if (v[K_HMAC]) {
        unsigned char *sec;
        size_t sl;
        if (read_secret(y, v[K_HMAC], "upstream.hmac_key_file", &sec, &sl) == 0) {
            flt_hmac_key_init(&u->hmac, sec, sl);
            u->hmac.set = true;
            free_secret(sec, sl);
        }
    }
}

static const char *const methods[] = {"GET",    "HEAD",    "POST",  "PUT", "PATCH",
                                      "DELETE", "OPTIONS", "TRACE", NULL};

struct ctx {
    struct ctr__yaml *y;
    struct ctr_contract *c;
};

/* A hash action needs the provider's key. */
static void need_key(struct ctx *x, yaml_node_t *n)
{
    if (!x->c->upstream.hmac.set) ctr__err(x->y, n, "hash needs upstream.hmac_key_file");
}

static int parse_action(struct ctx *x, yaml_node_t *n, struct flt_action *act, char **category)
{
    struct ctr__yaml *y = x->y;
    memset(act, 0, sizeof *act);
    *category = NULL;
    yaml_node_t *an = n;
    const char *name;
    yaml_node_t *v[5] = {0}, *kn[5] = {0};
    enum { K_ACTION, K_FIRST, K_LAST, K_LENGTH, K_CATEGORY };
    if (n && n->type == YAML_MAPPING_NODE) {
        static const char *const keys[] = {"action", "keep_first", "keep_last",
                                           "length", "category",   NULL};
        int before = y->errors;
        ctr__map(y, n, "field", keys, v, kn);
        if (!v[K_ACTION]) {
            ctr__err(y, n, "field: 'action' is required");
            return -1;
        }
        an = v[K_ACTION];
        if (y->errors != before) return -1;
    }
    name = ctr__scalar(y, an, "action");
    if (!name) return -1;
    if (!strcmp(name, "keep"))
        act->kind = FLT_ACT_KEEP;
    else if (!strcmp(name, "hash"))
        act->kind = FLT_ACT_HASH;
    else if (!strcmp(name, "mask"))
        act->kind = FLT_ACT_MASK;
    else if (!strcmp(name, "truncate"))
        act->kind = FLT_ACT_TRUNCATE;
    else if (!strcmp(name, "year"))
        act->kind = FLT_ACT_YEAR;
    else {
        ctr__err(y, an, "unknown action '%s' (keep, hash, mask, truncate, year)", name);
        return -1;
    }
    if (act->kind == FLT_ACT_HASH) need_key(x, an);
    uint64_t u;
    int rc = 0;
    if (act->kind == FLT_ACT_MASK) {
        if ((v[K_FIRST] != NULL) == (v[K_LAST] != NULL)) {
            ctr__err(y, an, "mask needs exactly one of keep_first, keep_last");
            rc = -1;
        } else {
            yaml_node_t *kv = v[K_FIRST] ? v[K_FIRST] : v[K_LAST];
            if (ctr__uint(y, kv, v[K_FIRST] ? "keep_first" : "keep_last", FLT_MASK_MAX, &u) == 0) {
                act->n = (uint32_t)u;
                act->mask_keep_last = v[K_LAST] != NULL;
            } else {
                rc = -1;
            }
        }
    } else {
        for (int k = K_FIRST; k <= K_LAST; k++)
            if (v[k]) {
                ctr__err(y, kn[k], "%s applies to mask only",
                         k == K_FIRST ? "keep_first" : "keep_last");
                rc = -1;
            }
    }
    if (act->kind == FLT_ACT_TRUNCATE) {
        if (!v[K_LENGTH]) {
            ctr__err(y, an, "truncate needs 'length'");
            rc = -1;
        } else if (ctr__uint(y, v[K_LENGTH], "length", UINT32_MAX, &u) == 0) {
            if (u == 0) {
                ctr__err(y, v[K_LENGTH], "length: must be greater than 0");
                rc = -1;
            }
            act->n = (uint32_t)u;
        } else {
            rc = -1;
        }
    } else if (v[K_LENGTH]) {
        ctr__err(y, kn[K_LENGTH], "length applies to truncate only");
        rc = -1;
    }
    if (v[K_CATEGORY]) {
        *category = ctr__str(y, v[K_CATEGORY], "category");
        if (!*category) rc = -1;
    }
    return rc;
}

static void parse_body(struct ctx *x, yaml_node_t *n, struct ctr_route *r)
{
    struct ctr__yaml *y = x->y;
    if (n && n->type == YAML_SCALAR_NODE) {
        if (strcmp((const char *)n->data.scalar.value, "opaque") == 0)
            r->body = CTR_BODY_OPAQUE;
        else
            ctr__err(y, n, "body: expected 'opaque' or a mapping with 'fields'");
        return;
    }
    static const char *const keys[] = {"fields", NULL};
    yaml_node_t *v[1], *kn[1];
    if (ctr__map(y, n, "body", keys, v, kn) != 0) return;
    if (!v[0]) {
        ctr__err(y, n, "body: 'fields' is required (or write 'body: opaque')");
        return;
    }
    yaml_node_t *f = v[0];
    if (f->type != YAML_MAPPING_NODE) {
        ctr__err(y, f, "body.fields: expected a mapping of path: action");
        return;
    }
    r->body = CTR_BODY_FIELDS;
    r->rules = flt_rules_new();
    if (!r->rules) {
        ctr__err(y, f, "out of memory");
        return;
    }
    size_t cnt = (size_t)(f->data.mapping.pairs.top - f->data.mapping.pairs.start);
    r->fields = ctr__alloc(y->mem, (cnt ? cnt : 1) * sizeof *r->fields);
    if (!r->fields) return;
    int before = y->errors;
    for (yaml_node_pair_t *pr = f->data.mapping.pairs.start; pr < f->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ctr__node(y, pr->key), *val = ctr__node(y, pr->value);
        const char *path = ctr__scalar(y, k, "field path");
        if (!path) continue;
        struct ctr_field fld;
        if (parse_action(x, val, &fld.action, &fld.category) != 0) continue;
        char err[ERRLEN];
        err[0] = 0;
        if (flt_rules_add(r->rules, path, k->data.scalar.length, &fld.action, err, sizeof err) !=
            0) {
            ctr__err(y, k, "body.fields: %s", err[0] ? err : "invalid path");
            continue;
        }
        fld.path = ctr__strndup(y->mem, path, k->data.scalar.length);
        r->fields[r->nfields++] = fld;
    }
    if (y->errors == before) {
        char err[ERRLEN];
        err[0] = 0;
        if (flt_rules_compile(r->rules, err, sizeof err) != 0)
            ctr__err(y, kn[0], "body.fields: %s", err[0] ? err : "invalid fields");
    }
}

static void parse_route(struct ctx *x, yaml_node_t *n, struct ctr_route *r)
{
    struct ctr__yaml *y = x->y;
    static const char *const keys[] = {"method", "path", "query", "headers",
                                       "params", "body", NULL};
    enum { K_METHOD, K_PATH, K_QUERY, K_HEADERS, K_PARAMS, K_BODY };
    yaml_node_t *v[6];
    r->line = n ? (int)n->start_mark.line + 1 : 0;
    if (ctr__map(y, n, "route", keys, v, NULL) != 0) return;
    if (!v[K_METHOD]) {
        ctr__err(y, n, "route: 'method' is required");
    } else {
        char *m = ctr__str(y, v[K_METHOD], "method");
        if (m) {
            for (char *p = m; *p; p++)
                if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
            size_t i = 0;
            while (methods[i] && strcmp(methods[i], m) != 0)
                i++;
            if (!methods[i])
                ctr__err(y, v[K_METHOD], "method: invalid method '%s'", m);
            else
                r->method = m;
        }
    }
    bool tmpl_ok = false;
    if (!v[K_PATH]) {
        ctr__err(y, n, "route: 'path' is required");
    } else {
        char *p = ctr__str(y, v[K_PATH], "path");
        if (p) {
            char err[ERRLEN];
            err[0] = 0;
            if (p[0] != '/')
                ctr__err(y, v[K_PATH], "path: must start with '/'");
            else if (strpbrk(p, "?#"))
                ctr__err(y, v[K_PATH], "path: must not contain '?' or '#' (list query: instead)");
            else if (flt_template_compile(&r->tmpl, p, strlen(p), err, sizeof err) != 0)
                ctr__err(y, v[K_PATH], "path: %s", err[0] ? err : "invalid path template");
            else
                tmpl_ok = true;
            r->path = p;
        }
    }
    if (v[K_QUERY]) ctr__namelist(y, v[K_QUERY], "query", false, &r->query);
    if (v[K_HEADERS]) ctr__namelist(y, v[K_HEADERS], "headers", true, &r->headers);
    if (v[K_PARAMS]) {
        yaml_node_t *pm = v[K_PARAMS];
        if (pm->type != YAML_MAPPING_NODE) {
            ctr__err(y, pm, "params: expected a mapping of name: keep|hash");
        } else {
            for (yaml_node_pair_t *pr = pm->data.mapping.pairs.start;
                 pr < pm->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = ctr__node(y, pr->key), *val = ctr__node(y, pr->value);
                const char *name = ctr__scalar(y, k, "params");
                const char *a = ctr__scalar(y, val, "params");
                if (!name || !a) continue;
                enum flt_param_action pa;
                if (!strcmp(a, "keep"))
                    pa = FLT_PARAM_KEEP;
                else if (!strcmp(a, "hash"))
                    pa = FLT_PARAM_HASH;
                else {
                    ctr__err(y, val, "params: '%s' must be keep or hash", name);
                    continue;
                }
                if (pa == FLT_PARAM_HASH) need_key(x, val);
                if (tmpl_ok &&
                    flt_template_set_param(&r->tmpl, name, k->data.scalar.length, pa) != 0)
                    ctr__err(y, k, "params: the path has no parameter '{%s}'", name);
            }
        }
    }
    if (v[K_BODY]) parse_body(x, v[K_BODY], r);
}

static void parse_routes(struct ctx *x, yaml_node_t *n)
{
    struct ctr__yaml *y = x->y;
    struct ctr_contract *c = x->c;
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ctr__err(y, n, "routes: expected a list");
        return;
    }
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0) {
        ctr__err(y, n, "routes: at least one route is needed");
        return;
    }
    c->routes = ctr__alloc(y->mem, cnt * sizeof *c->routes);
    if (!c->routes) return;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ctr__node(y, *it);
        struct ctr_route *r = &c->routes[c->nroutes++];
        parse_route(x, e, r);
        if (!r->method || !r->path) continue;
        for (size_t j = 0; j + 1 < c->nroutes; j++) {
            const struct ctr_route *o = &c->routes[j];
            if (o->method && o->path && !strcmp(o->method, r->method) && !strcmp(o->path, r->path))
                ctr__err(y, e, "route %s %s is defined twice (first at line %d)", r->method,
                         r->path, o->line);
        }
    }
}

static bool provider_id_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) return false;
    return true;
}

struct ctr_contract *ctr__contract_load(const char *path, const struct ctr_config *cfg,
                                        struct ctr_diag *diag, int *pline, int *pcol)
{
    struct ctr_contract *c = calloc(1, sizeof *c);
    struct ctr__arena *mem = ctr__arena_new();
    if (!c || !mem) {
        free(c);
        ctr__arena_del(mem);
        ctr__diag(diag, path, 0, 0, "out of memory");
        return NULL;
    }
    c->mem = mem;
    c->file = ctr__strdup(mem, path);
    *pline = *pcol = 0;
    struct ctr__yaml y;
    if (ctr__yaml_open(&y, path, diag, mem) != 0) {
        ctr__yaml_close(&y);
        ctr__contract_free(c);
        return NULL;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(y.bytes, y.nbytes, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        ctr__diag(diag, path, 0, 0, "cannot compute sha256");
        y.errors++;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(c->sha256, "sha256:", 7);
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        c->sha256[7 + 2 * i] = hex[md[i] >> 4];
        c->sha256[8 + 2 * i] = hex[md[i] & 15];
    }
    c->sha256[7 + 64] = 0;

    struct ctx x = {&y, c};
    static const char *const keys[] = {
        "contract", "provider", "name",     "description", "purposes", "callers", "retention",
        "upstream", "headers",  "unlisted", "routes",      "tests",    NULL};
    enum {
        K_CONTRACT,
        K_PROVIDER,
        K_NAME,
        K_DESC,
        K_PURPOSES,
        K_CALLERS,
        K_RETENTION,
        K_UPSTREAM,
        K_HEADERS,
        K_UNLISTED,
        K_ROUTES,
        K_TESTS
    };
    yaml_node_t *v[12];
    yaml_node_t *root = ctr__root(&y);
    if (!root) {
        ctr__diag(diag, path, 0, 0, "empty file: not a contract");
        y.errors++;
        goto out;
    }
    if (ctr__map(&y, root, "", keys, v, NULL) != 0) goto out;
    if (!v[K_CONTRACT])
        ctr__err(&y, root, "'contract: 1' is required");
    else if (!ctr__is_plain(v[K_CONTRACT]))
        ctr__err(&y, v[K_CONTRACT], "contract: expected the number 1");
    else if (strcmp((const char *)v[K_CONTRACT]->data.scalar.value, "1") != 0)
        ctr__err(&y, v[K_CONTRACT], "contract: unsupported format version (must be 1)");
    if (!v[K_PROVIDER]) {
        ctr__err(&y, root, "'provider' is required");
    } else {
        char *p = ctr__str(&y, v[K_PROVIDER], "provider");
        if (p && !provider_id_ok(p))
            ctr__err(&y, v[K_PROVIDER], "provider: '%s' must match [a-z0-9-]+", p);
        else
            c->provider = p;
        *pline = (int)v[K_PROVIDER]->start_mark.line + 1;
        *pcol = (int)v[K_PROVIDER]->start_mark.column + 1;
    }
    if (v[K_NAME]) c->name = ctr__str(&y, v[K_NAME], "name");
    if (v[K_DESC]) c->description = ctr__str(&y, v[K_DESC], "description");
    if (!v[K_PURPOSES]) {
        ctr__err(&y, root, "'purposes' is required");
    } else if (ctr__strlist(&y, v[K_PURPOSES], "purposes", false, &c->purposes, &c->npurposes) ==
                   0 &&
               c->npurposes == 0) {
        ctr__err(&y, v[K_PURPOSES], "purposes: at least one purpose is needed");
    } else if (v[K_PURPOSES]->type == YAML_SEQUENCE_NODE) {
        ctr__list_no_space(&y, v[K_PURPOSES], "purposes");
        for (yaml_node_item_t *it = v[K_PURPOSES]->data.sequence.items.start;
             it < v[K_PURPOSES]->data.sequence.items.top; it++) {
            yaml_node_t *e = ctr__node(&y, *it);
            if (!e || e->type != YAML_SCALAR_NODE) continue;
            /* purposes are compared byte for byte with the request's; a
             * forbidden one is refused in any letter case */
            for (size_t i = 0; i < cfg->nforbidden; i++)
                if (!strcasecmp(cfg->forbidden_purposes[i], (const char *)e->data.scalar.value))
                    ctr__err(&y, e, "purposes: '%s' is forbidden by policy.forbidden_purposes",
                             (const char *)e->data.scalar.value);
        }
    }
    if (v[K_CALLERS] &&
        ctr__strlist(&y, v[K_CALLERS], "callers", false, &c->callers, &c->ncallers) == 0 &&
        c->ncallers == 0)
        ctr__err(&y, v[K_CALLERS],
                 "callers: an empty list allows no caller (remove the key to allow any caller)");
    if (v[K_RETENTION]) c->retention = ctr__str(&y, v[K_RETENTION], "retention");
    if (!v[K_UPSTREAM])
        ctr__err(&y, root, "'upstream' is required");
    else
        parse_upstream(&y, v[K_UPSTREAM], &c->upstream);
    if (v[K_HEADERS]) ctr__namelist(&y, v[K_HEADERS], "headers", true, &c->headers);
    if (v[K_UNLISTED]) {
        const char *u = ctr__scalar(&y, v[K_UNLISTED], "unlisted");
        if (u && !strcmp(u, "reject"))
            c->reject_unlisted = true;
        else if (u && strcmp(u, "remove") != 0)
            ctr__err(&y, v[K_UNLISTED], "unlisted: must be remove or reject");
    }
    if (!v[K_ROUTES])
        ctr__err(&y, root, "'routes' is required");
    else
        parse_routes(&x, v[K_ROUTES]);
    if (v[K_TESTS]) ctr__tests_parse(&y, v[K_TESTS], c);
out:;
    int errors = y.errors;
    ctr__yaml_close(&y);
    if (errors) {
        ctr__contract_free(c);
        return NULL;
    }
    return c;
}
