/* privgate.yaml (SPEC 3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contracts/int.h"

void ctr_config_defaults(struct ctr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 0;
    cfg->audit_path = (char *)"-";
    cfg->caller_header = (char *)"privgate-caller";
    cfg->limits.max_body = (uint64_t)8 << 20;
    cfg->limits.max_depth = 64;
    cfg->limits.max_header_bytes = (uint64_t)64 << 10;
    cfg->limits.max_streams_per_connection = 128;
    cfg->limits.upstream_connect_timeout_ms = 5000;
    cfg->limits.upstream_timeout_ms = 30000;
    cfg->limits.idle_timeout_ms = 120000;
    cfg->limits.header_timeout_ms = 10000;
}

void ctr__config_free(struct ctr_config *cfg)
{
    ctr__arena_del(cfg->mem);
    memset(cfg, 0, sizeof *cfg);
}

/* "host:port" or "[v6]:port". Returns 0 or -1 (reported). */
static int parse_address(struct ctr__yaml *y, yaml_node_t *n, const char *what, char **addr,
                         char **host, uint16_t *port)
{
    char *s = ctr__str(y, n, what);
    if (!s) return -1;
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hl;
    if (!colon) goto bad;
    if (s[0] == '[') {
        if (colon == s || colon[-1] != ']' || colon - s < 3) goto bad;
        h = s + 1;
        hl = (size_t)(colon - s) - 2;
    } else {
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl)) goto bad; /* v6 without brackets */
    }
    if (hl == 0) goto bad;
    const char *ps = colon + 1;
    unsigned long v = 0;
    if (!*ps || strlen(ps) > 5) goto bad;
    for (const char *p = ps; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v == 0 || v > 65535) goto bad;
    *addr = s;
    *host = ctr__strndup(y->mem, h, hl);
    *port = (uint16_t)v;
    return *host ? 0 : -1;
bad:
    ctr__err(y, n, "%s: expected host:port, got '%s'", what, s);
    return -1;
}

/* A readable file path, resolved against the config file. */
static char *file_path(struct ctr__yaml *y, yaml_node_t *n, const char *what)
{
    char *s = ctr__str(y, n, what);
    if (!s) return NULL;
    char *p = ctr__resolve(y->mem, y->file, s);
    if (p && access(p, R_OK) != 0) {
        ctr__err(y, n, "%s: cannot read '%s': %s", what, p, strerror(errno));
        return NULL;
    }
    return p;
}

/* Sizes: N, NB, NKiB, NMiB (plain number = bytes). */
static int parse_size(struct ctr__yaml *y, yaml_node_t *n, const char *what, uint64_t *out)
{
    const char *s = ctr__scalar(y, n, what);
    if (!s) return -1;
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    uint64_t mul;
    if (!*p || !strcmp(p, "B"))
        mul = 1;
    else if (!strcmp(p, "KiB"))
        mul = (uint64_t)1 << 10;
    else if (!strcmp(p, "MiB"))
        mul = (uint64_t)1 << 20;
    else if (!strcmp(p, "GiB"))
        mul = (uint64_t)1 << 30;
    else
        goto bad;
    if (v > UINT64_MAX / mul) goto bad;
    v *= mul;
    if (v == 0) {
        ctr__err(y, n, "%s: must be greater than 0", what);
        return -1;
    }
    *out = v;
    return 0;
bad:
    ctr__err(y, n, "%s: expected a size (B, KiB, MiB), got '%s'", what, s);
    return -1;
}

/* Durations: Nms, Ns, Nm. */
static int parse_duration(struct ctr__yaml *y, yaml_node_t *n, const char *what, uint64_t *out)
{
    const char *s = ctr__scalar(y, n, what);
    if (!s) return -1;
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9') goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 1000000000ull) goto bad;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (!strcmp(p, "ms"))
        *out = v;
    else if (!strcmp(p, "s"))
        *out = v * 1000;
    else if (!strcmp(p, "m"))
        *out = v * 60000;
    else
        goto bad;
    if (*out == 0) {
        ctr__err(y, n, "%s: must be greater than 0", what);
        return -1;
    }
    return 0;
bad:
    ctr__err(y, n, "%s: expected a duration (ms, s, m), got '%s'", what, s);
    return -1;
}

static void parse_listen(struct ctr__yaml *y, yaml_node_t *n, struct ctr_config *cfg)
{
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ctr__err(y, n, "listen: expected a list");
        return;
    }
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (cnt == 0) {
        ctr__err(y, n, "listen: at least one listener is needed");
        return;
    }
    cfg->listen = ctr__alloc(cfg->mem, cnt * sizeof *cfg->listen);
    if (!cfg->listen) return;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        static const char *const keys[] = {"address", "tls", NULL};
        yaml_node_t *v[2];
        yaml_node_t *e = ctr__node(y, *it);
        if (ctr__map(y, e, "listen", keys, v, NULL) != 0) continue;
        struct ctr_listen *l = &cfg->listen[cfg->nlisten++];
        if (!v[0])
            ctr__err(y, e, "listen: 'address' is required");
        else
            parse_address(y, v[0], "listen.address", &l->address, &l->host, &l->port);
        if (v[1]) {
            static const char *const tk[] = {"cert", "key", "client_ca", NULL};
            yaml_node_t *tv[3], *tkn[3];
            if (ctr__map(y, v[1], "listen.tls", tk, tv, tkn) != 0) continue;
            l->tls = true;
            if (!tv[0])
                ctr__err(y, v[1], "listen.tls: 'cert' is required");
            else
                l->cert = file_path(y, tv[0], "listen.tls.cert");
            if (!tv[1])
                ctr__err(y, v[1], "listen.tls: 'key' is required");
            else
                l->key = file_path(y, tv[1], "listen.tls.key");
            if (tv[2]) l->client_ca = file_path(y, tv[2], "listen.tls.client_ca");
        }
    }
}

static void parse_limits(struct ctr__yaml *y, yaml_node_t *n, struct ctr_limits *lim)
{
    static const char *const keys[] = {"max_body",
                                       "max_depth",
                                       "max_header_bytes",
                                       "max_streams_per_connection",
                                       "upstream_connect_timeout",
                                       "upstream_timeout",
                                       "idle_timeout",
                                       "header_timeout",
                                       NULL};
    yaml_node_t *v[8];
    if (ctr__map(y, n, "limits", keys, v, NULL) != 0) return;
    uint64_t u;
    if (v[0]) parse_size(y, v[0], "limits.max_body", &lim->max_body);
    if (v[1] && ctr__uint(y, v[1], "limits.max_depth", 4096, &u) == 0) {
        if (u == 0)
            ctr__err(y, v[1], "limits.max_depth: must be greater than 0");
        else
            lim->max_depth = (uint32_t)u;
    }
    if (v[2]) parse_size(y, v[2], "limits.max_header_bytes", &lim->max_header_bytes);
    if (v[3] && ctr__uint(y, v[3], "limits.max_streams_per_connection", 1u << 20, &u) == 0) {
        if (u == 0)
            ctr__err(y, v[3], "limits.max_streams_per_connection: must be greater than 0");
        else
            lim->max_streams_per_connection = (uint32_t)u;
    }
    if (v[4])
        parse_duration(y, v[4], "limits.upstream_connect_timeout",
                       &lim->upstream_connect_timeout_ms);
    if (v[5]) parse_duration(y, v[5], "limits.upstream_timeout", &lim->upstream_timeout_ms);
    if (v[6]) parse_duration(y, v[6], "limits.idle_timeout", &lim->idle_timeout_ms);
    if (v[7]) parse_duration(y, v[7], "limits.header_timeout", &lim->header_timeout_ms);
}

int ctr__config_load(struct ctr_config *cfg, const char *path, struct ctr_diag *diag)
{
    ctr_config_defaults(cfg);
    cfg->mem = ctr__arena_new();
    if (!cfg->mem) {
        ctr__diag(diag, path, 0, 0, "out of memory");
        return -1;
    }
    cfg->file = ctr__strdup(cfg->mem, path);
    struct ctr__yaml y;
    if (ctr__yaml_open(&y, path, diag, cfg->mem) != 0) {
        ctr__yaml_close(&y);
        return -1;
    }
    static const char *const keys[] = {"listen", "admin",   "contracts", "workers", "audit",
                                       "policy", "callers", "limits",    NULL};
    enum { K_LISTEN, K_ADMIN, K_CONTRACTS, K_WORKERS, K_AUDIT, K_POLICY, K_CALLERS, K_LIMITS };
    yaml_node_t *v[8], *kn[8];
    yaml_node_t *root = ctr__root(&y);
    if (!root) {
        ctr__diag(diag, path, 0, 0, "empty file: 'contracts' is required");
        ctr__yaml_close(&y);
        return -1;
    }
    if (ctr__map(&y, root, "", keys, v, kn) != 0) goto out;

    if (v[K_LISTEN]) {
        parse_listen(&y, v[K_LISTEN], cfg);
    } else {
        cfg->listen = ctr__alloc(cfg->mem, sizeof *cfg->listen);
        if (cfg->listen) {
            cfg->nlisten = 1;
            cfg->listen[0].address = ctr__strdup(cfg->mem, "127.0.0.1:8080");
            cfg->listen[0].host = ctr__strdup(cfg->mem, "127.0.0.1");
            cfg->listen[0].port = 8080;
        }
    }
    if (v[K_ADMIN]) {
        static const char *const ak[] = {"address", NULL};
        yaml_node_t *av[1];
        if (ctr__map(&y, v[K_ADMIN], "admin", ak, av, NULL) == 0) {
            if (!av[0])
                ctr__err(&y, v[K_ADMIN], "admin: 'address' is required");
            else
                parse_address(&y, av[0], "admin.address", &cfg->admin_address, &cfg->admin_host,
                              &cfg->admin_port);
        }
    }
    if (!v[K_CONTRACTS]) {
        ctr__err(&y, root, "'contracts' is required (the folder of the contracts)");
    } else {
        char *s = ctr__str(&y, v[K_CONTRACTS], "contracts");
        if (s) cfg->contracts_dir = ctr__resolve(cfg->mem, path, s);
    }
    if (v[K_WORKERS]) {
        uint64_t u;
        if (v[K_WORKERS]->type == YAML_SCALAR_NODE &&
            strcmp((const char *)v[K_WORKERS]->data.scalar.value, "auto") == 0)
            cfg->workers = 0;
        else if (!ctr__is_plain(v[K_WORKERS]) ||
                 ((const char *)v[K_WORKERS]->data.scalar.value)[0] < '0' ||
                 ((const char *)v[K_WORKERS]->data.scalar.value)[0] > '9')
            ctr__err(&y, v[K_WORKERS], "workers: expected 'auto' or a number");
        else if (ctr__uint(&y, v[K_WORKERS], "workers", 1024, &u) == 0) {
            if (u == 0)
                ctr__err(&y, v[K_WORKERS], "workers: must be 'auto' or at least 1");
            else
                cfg->workers = (uint32_t)u;
        }
    }
    if (v[K_AUDIT]) {
        static const char *const ak[] = {"path", "require", NULL};
        yaml_node_t *av[2];
        if (ctr__map(&y, v[K_AUDIT], "audit", ak, av, NULL) == 0) {
            if (av[0]) {
                char *s = ctr__str(&y, av[0], "audit.path");
                if (s) cfg->audit_path = strcmp(s, "-") == 0 ? s : ctr__resolve(cfg->mem, path, s);
            }
            if (av[1]) ctr__bool(&y, av[1], "audit.require", &cfg->audit_require);
        }
    }
    if (v[K_POLICY]) {
        static const char *const pk[] = {"forbidden_purposes", NULL};
        yaml_node_t *pv[1];
        if (ctr__map(&y, v[K_POLICY], "policy", pk, pv, NULL) == 0 && pv[0] &&
            ctr__strlist(&y, pv[0], "policy.forbidden_purposes", false, &cfg->forbidden_purposes,
                         &cfg->nforbidden) == 0)
            ctr__list_no_space(&y, pv[0], "policy.forbidden_purposes");
    }
    if (v[K_CALLERS]) {
        static const char *const ck[] = {"header", NULL};
        yaml_node_t *cv[1];
        if (ctr__map(&y, v[K_CALLERS], "callers", ck, cv, NULL) == 0 && cv[0]) {
            char *s = ctr__str(&y, cv[0], "callers.header");
            if (s) {
                for (char *p = s; *p; p++)
                    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
                if (!ctr__token(s, strlen(s)))
                    ctr__err(&y, cv[0], "callers.header: '%s' is not a valid header name", s);
                else
                    cfg->caller_header = s;
            }
        }
    }
    if (v[K_LIMITS]) parse_limits(&y, v[K_LIMITS], &cfg->limits);
out:;
    int errors = y.errors;
    ctr__yaml_close(&y);
    return errors ? -1 : 0;
}
