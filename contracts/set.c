/* The loaded set: config + contracts, reference-counted. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "contracts/int.h"

struct ctr_set *ctr_set_ref(struct ctr_set *s)
{
    if (s) atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

static void set_free(struct ctr_set *s)
{
    for (size_t i = 0; i < s->ncontracts; i++)
        ctr__contract_free(s->contracts[i]);
    free(s->contracts);
    ctr__config_free(&s->config);
    free(s);
}

void ctr_set_unref(struct ctr_set *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) set_free(s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.yaml in |dir|, sorted by name (malloc'd full paths). */
static int list_dir(const char *dir, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return errno;
    size_t cap = 0;
    char **v = NULL;
    struct dirent *e;
    int rc = 0;
    size_t dl = strlen(dir);
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".yaml") != 0 || e->d_name[0] == '.') continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = ENOMEM;
                break;
            }
            v = nv;
        }
        char *p = malloc(dl + 1 + l + 1);
        if (!p) {
            rc = ENOMEM;
            break;
        }
        memcpy(p, dir, dl);
        size_t o = dl;
        if (dl && dir[dl - 1] != '/') p[o++] = '/';
        memcpy(p + o, e->d_name, l + 1);
        v[(*n)++] = p;
    }
    closedir(d);
    if (*n > 1) qsort(v, *n, sizeof *v, cmp_str);
    *out = v;
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int cmp_contract(const void *a, const void *b)
{
    const struct ctr_contract *x = *(const struct ctr_contract *const *)a;
    const struct ctr_contract *y = *(const struct ctr_contract *const *)b;
    return strcmp(x->provider, y->provider);
}

/* Loads one contract file into |s|; checks the provider id is new. */
static void add_file(struct ctr_set *s, const char *path, size_t *cap, struct ctr_diag *diag,
                     int *errors)
{
    int line, col;
    struct ctr_contract *c = ctr__contract_load(path, &s->config, diag, &line, &col);
    if (!c) {
        (*errors)++;
        return;
    }
    for (size_t i = 0; i < s->ncontracts; i++) {
        if (strcmp(s->contracts[i]->provider, c->provider) == 0) {
            ctr__diag(diag, path, line, col, "provider '%s' is already defined in %s", c->provider,
                      s->contracts[i]->file);
            (*errors)++;
            ctr__contract_free(c);
            return;
        }
    }
    if (s->ncontracts == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct ctr_contract **nv = realloc(s->contracts, nc * sizeof *nv);
        if (!nv) {
            ctr__diag(diag, path, 0, 0, "out of memory");
            (*errors)++;
            ctr__contract_free(c);
            return;
        }
        s->contracts = nv;
        *cap = nc;
    }
    s->contracts[s->ncontracts++] = c;
}

static void add_dir(struct ctr_set *s, const char *dir, size_t *cap, struct ctr_diag *diag,
                    int *errors)
{
    char **files;
    size_t n;
    int e = list_dir(dir, &files, &n);
    if (e) {
        ctr__diag(diag, dir, 0, 0, "cannot read the contracts folder: %s", strerror(e));
        (*errors)++;
    }
    for (size_t i = 0; i < n; i++)
        add_file(s, files[i], cap, diag, errors);
    free_list(files, n);
}

static struct ctr_set *finish(struct ctr_set *s, int errors)
{
    if (errors) {
        set_free(s);
        return NULL;
    }
    if (s->ncontracts > 1) qsort(s->contracts, s->ncontracts, sizeof *s->contracts, cmp_contract);
    atomic_init(&s->refs, 1);
    return s;
}

struct ctr_set *ctr_set_load(const char *path, struct ctr_diag *diag)
{
    struct ctr_set *s = calloc(1, sizeof *s);
    if (!s) {
        ctr__diag(diag, path, 0, 0, "out of memory");
        return NULL;
    }
    int errors = 0;
    size_t cap = 0;
    if (ctr__config_load(&s->config, path, diag) != 0) errors++;
    /* contracts are checked even when the config has errors, so that one run
     * reports everything; the policy used is what could be read */
    if (s->config.contracts_dir) add_dir(s, s->config.contracts_dir, &cap, diag, &errors);
    return finish(s, errors);
}

struct ctr_set *ctr_set_load_contracts(const char *const *paths, size_t n, struct ctr_diag *diag)
{
    return ctr_set_load_contracts_under(NULL, paths, n, diag);
}

struct ctr_set *ctr_set_load_contracts_under(const char *config_path, const char *const *paths,
                                             size_t n, struct ctr_diag *diag)
{
    struct ctr_set *s = calloc(1, sizeof *s);
    if (!s) {
        ctr__diag(diag, config_path ? config_path : "", 0, 0, "out of memory");
        return NULL;
    }
    int errors = 0;
    size_t cap = 0;
    /* the config's policy (forbidden purposes...) applies to the contracts
     * named here too; its own contracts folder is not loaded */
    if (!config_path)
        ctr_config_defaults(&s->config);
    else if (ctr__config_load(&s->config, config_path, diag) != 0)
        errors++;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode))
            add_dir(s, paths[i], &cap, diag, &errors);
        else
            add_file(s, paths[i], &cap, diag, &errors);
    }
    return finish(s, errors);
}

const struct ctr_contract *ctr_set_find_provider(const struct ctr_set *s, const char *path,
                                                 size_t len, struct flt_str *rest)
{
    if (!s || len < 2 || path[0] != '/') return NULL;
    size_t i = 1;
    while (i < len && path[i] != '/' && path[i] != '?')
        i++;
    const char *name = path + 1;
    size_t nl = i - 1;
    size_t lo = 0, hi = s->ncontracts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = s->contracts[mid]->provider;
        int c = strncmp(p, name, nl);
        if (c == 0 && p[nl] != '\0') c = 1;
        if (c == 0) {
            if (rest) {
                rest->p = path + i;
                rest->len = len - i;
            }
            return s->contracts[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
