/* Arena, buffers, YAML node access and file helpers for contracts/. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "contracts/int.h"

/* ------------------------------------------------------------------ arena */

struct ctr__block {
    struct ctr__block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

struct ctr__arena {
    struct ctr__block *head;
};

#define CTR__BLOCK 8192

struct ctr__arena *ctr__arena_new(void)
{
    return calloc(1, sizeof(struct ctr__arena));
}

void ctr__arena_del(struct ctr__arena *a)
{
    if (!a) return;
    struct ctr__block *b = a->head;
    while (b) {
        struct ctr__block *next = b->next;
        /* secrets (auth values) live here too: wipe before release */
        explicit_bzero(b->data, b->used);
        free(b);
        b = next;
    }
    free(a);
}

void *ctr__alloc(struct ctr__arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    struct ctr__block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > CTR__BLOCK ? n : CTR__BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->used = 0;
        if (a->head && n > CTR__BLOCK) {
            /* keep the current block as the bump target */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *ctr__strndup(struct ctr__arena *a, const char *s, size_t n)
{
    char *p = ctr__alloc(a, n + 1);
    if (p && n) memcpy(p, s, n);
    return p;
}

char *ctr__strdup(struct ctr__arena *a, const char *s)
{
    return ctr__strndup(a, s, strlen(s));
}

/* ---------------------------------------------------------- growing buffer */

void ctr__buf_add(struct ctr__buf *b, const char *p, size_t n)
{
    if (b->oom) return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void ctr__buf_adds(struct ctr__buf *b, const char *s)
{
    ctr__buf_add(b, s, strlen(s));
}

void ctr__buf_addc(struct ctr__buf *b, char c)
{
    ctr__buf_add(b, &c, 1);
}

void ctr__buf_free(struct ctr__buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void ctr__buf_json_str(struct ctr__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ctr__buf_addc(b, '"');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ctr__buf_add(b, s + start, i - start);
        start = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        ctr__buf_add(b, esc, elen);
    }
    ctr__buf_add(b, s + start, n - start);
    ctr__buf_addc(b, '"');
}

/* --------------------------------------------------------------- files */

/* Moves |*p| (|len| bytes used) to a new block of |cap| bytes, wiping the
 * old one: the file may be a secret, and realloc would free (or leave
 * behind) a copy without wiping it. */
static int grow_wiped(unsigned char **p, size_t len, size_t cap)
{
    unsigned char *q = malloc(cap);
    if (!q) return -1;
    if (*p) {
        if (len) memcpy(q, *p, len);
        OPENSSL_cleanse(*p, len);
        free(*p);
    }
    *p = q;
    return 0;
}

static void free_wiped(unsigned char *p, size_t len)
{
    if (!p) return;
    OPENSSL_cleanse(p, len);
    free(p);
}

int ctr__read_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return EISDIR;
    }
    /* size the buffer from the file's size when it has one (no growing in
     * the common case); every growth wipes the old block */
    size_t cap = 256;
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
        uint64_t want = (uint64_t)st.st_size + 1;
        if (want > (uint64_t)max + 1) want = (uint64_t)max + 1;
        if (want > cap) cap = (size_t)want;
    }
    unsigned char *buf = NULL;
    size_t used = 0;
    int e = 0;
    if (grow_wiped(&buf, 0, cap) != 0) {
        close(fd);
        return ENOMEM;
    }
    for (;;) {
        if (cap - used < 2) { /* room for one more byte and the NUL */
            size_t ncap = cap * 2;
            if (ncap > max + 2) ncap = max + 2;
            if (ncap <= cap || grow_wiped(&buf, used, ncap) != 0) {
                e = ENOMEM;
                break;
            }
            cap = ncap;
        }
        ssize_t r = read(fd, buf + used, cap - used - 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        if (r == 0) break;
        used += (size_t)r;
        if (used > max) {
            e = EFBIG;
            break;
        }
    }
    close(fd);
    if (e) {
        free_wiped(buf, cap);
        return e;
    }
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
}

char *ctr__resolve(struct ctr__arena *a, const char *base, const char *rel)
{
    if (rel[0] == '/' || !base) return ctr__strdup(a, rel);
    const char *slash = strrchr(base, '/');
    if (!slash) return ctr__strdup(a, rel);
    size_t dl = (size_t)(slash - base) + 1;
    size_t rl = strlen(rel);
    char *p = ctr__alloc(a, dl + rl + 1);
    if (!p) return NULL;
    memcpy(p, base, dl);
    memcpy(p + dl, rel, rl);
    return p;
}

bool ctr__token(const char *s, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (!strchr("!#$%&'*+-.^_`|~", c) || c == 0) return false;
    }
    return true;
}

bool ctr__hop_header(const char *name, size_t len)
{
    static const char *const hop[] = {"connection", "keep-alive",     "transfer-encoding",
                                      "te",         "upgrade",        "proxy-connection",
                                      "host",       "content-length", NULL};
    for (size_t i = 0; hop[i]; i++)
        if (strlen(hop[i]) == len && memcmp(hop[i], name, len) == 0) return true;
    return false;
}

/* ------------------------------------------------------------ YAML access */

int ctr__yaml_open(struct ctr__yaml *y, const char *file, struct ctr_diag *diag,
                   struct ctr__arena *mem)
{
    memset(y, 0, sizeof *y);
    y->file = file;
    y->diag = diag;
    y->mem = mem;
    int e = ctr__read_file(file, (size_t)64 << 20, &y->bytes, &y->nbytes);
    if (e) {
        ctr__diag(diag, file, 0, 0, "cannot read: %s", strerror(e));
        y->errors++;
        return -1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        ctr__diag(diag, file, 0, 0, "out of memory");
        y->errors++;
        return -1;
    }
    yaml_parser_set_input_string(&p, y->bytes, y->nbytes);
    if (!yaml_parser_load(&p, &y->doc)) {
        const char *problem = p.problem ? p.problem : "YAML error";
        int line = (int)p.problem_mark.line + 1, col = (int)p.problem_mark.column + 1;
        if (p.context)
            ctr__diag(diag, file, line, col, "YAML syntax error: %s %s", problem, p.context);
        else
            ctr__diag(diag, file, line, col, "YAML syntax error: %s", problem);
        y->errors++;
        yaml_parser_delete(&p);
        return -1;
    }
    y->loaded = true;
    ctr__check_duplicate_keys(y);
    /* a second document in the same file is an error too */
    yaml_document_t extra;
    if (yaml_parser_load(&p, &extra)) {
        yaml_node_t *r = yaml_document_get_root_node(&extra);
        if (r) ctr__err(y, r, "a file holds one YAML document");
        yaml_document_delete(&extra);
    } else {
        int line = (int)p.problem_mark.line + 1, col = (int)p.problem_mark.column + 1;
        ctr__diag(diag, file, line, col, "YAML syntax error: %s",
                  p.problem ? p.problem : "YAML error");
        y->errors++;
    }
    yaml_parser_delete(&p);
    return 0; /* a second document is reported; the first is still checked */
}

void ctr__yaml_close(struct ctr__yaml *y)
{
    if (y->loaded) yaml_document_delete(&y->doc);
    y->loaded = false;
    free(y->bytes);
    y->bytes = NULL;
}

yaml_node_t *ctr__node(struct ctr__yaml *y, int idx)
{
    return yaml_document_get_node(&y->doc, idx);
}

yaml_node_t *ctr__root(struct ctr__yaml *y)
{
    return yaml_document_get_root_node(&y->doc);
}

void ctr__err(struct ctr__yaml *y, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int line = n ? (int)n->start_mark.line + 1 : 0;
    int col = n ? (int)n->start_mark.column + 1 : 0;
    ctr__vdiag(y->diag, y->file, line, col, fmt, ap);
    va_end(ap);
    y->errors++;
}

bool ctr__is_plain(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

int ctr__map(struct ctr__yaml *y, yaml_node_t *n, const char *what, const char *const *keys,
             yaml_node_t **vals, yaml_node_t **knodes)
{
    size_t nk = 0;
    while (keys[nk])
        nk++;
    for (size_t i = 0; i < nk; i++) {
        vals[i] = NULL;
        if (knodes) knodes[i] = NULL;
    }
    if (!n || n->type != YAML_MAPPING_NODE) {
        ctr__err(y, n, "%s%sexpected a mapping", what, *what ? ": " : "");
        return -1;
    }
    for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ctr__node(y, pr->key);
        yaml_node_t *v = ctr__node(y, pr->value);
        if (!k || k->type != YAML_SCALAR_NODE) {
            ctr__err(y, k, "%s%skeys must be strings", what, *what ? ": " : "");
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        size_t i = 0;
        for (; i < nk; i++)
            if (strcmp(keys[i], ks) == 0) break;
        if (i == nk) {
            ctr__err(y, k, "%s%sunknown key '%s'", what, *what ? ": " : "", ks);
            continue;
        }
        if (vals[i]) continue; /* reported by ctr__check_duplicate_keys */
        vals[i] = v;
        if (knodes) knodes[i] = k;
    }
    return 0;
}

const char *ctr__scalar(struct ctr__yaml *y, yaml_node_t *n, const char *what)
{
    if (!n || n->type != YAML_SCALAR_NODE) {
        ctr__err(y, n, "%s: expected a string", what);
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

char *ctr__str(struct ctr__yaml *y, yaml_node_t *n, const char *what)
{
    const char *s = ctr__scalar(y, n, what);
    if (!s) return NULL;
    if (!*s || (ctr__is_plain(n) && strcmp(s, "~") == 0)) {
        ctr__err(y, n, "%s: must not be empty", what);
        return NULL;
    }
    char *p = ctr__strndup(y->mem, s, n->data.scalar.length);
    if (!p) ctr__err(y, n, "out of memory");
    return p;
}

int ctr__uint(struct ctr__yaml *y, yaml_node_t *n, const char *what, uint64_t max, uint64_t *out)
{
    if (!ctr__is_plain(n)) {
        ctr__err(y, n, "%s: expected a number", what);
        return -1;
    }
    const char *s = (const char *)n->data.scalar.value;
    uint64_t v = 0;
    if (!*s) goto bad;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        if (v > (UINT64_MAX - 9) / 10) goto range;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > max) goto range;
    *out = v;
    return 0;
bad:
    ctr__err(y, n, "%s: expected a number", what);
    return -1;
range:
    ctr__err(y, n, "%s: must be at most %llu", what, (unsigned long long)max);
    return -1;
}

int ctr__bool(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool *out)
{
    if (ctr__is_plain(n)) {
        const char *s = (const char *)n->data.scalar.value;
        if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
            *out = false;
            return 0;
        }
    }
    ctr__err(y, n, "%s: expected true or false", what);
    return -1;
}

int ctr__strlist(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool lower, char ***out,
                 size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        ctr__err(y, n, "%s: expected a list", what);
        return -1;
    }
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = ctr__alloc(y->mem, (cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        ctr__err(y, n, "out of memory");
        return -1;
    }
    size_t k = 0;
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ctr__node(y, *it);
        char *s = ctr__str(y, e, what);
        if (!s) {
            rc = -1;
            continue;
        }
        if (lower)
            for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        bool dup = false;
        for (size_t j = 0; j < k; j++)
            if (strcmp(v[j], s) == 0) dup = true;
        if (dup) {
            ctr__err(y, e, "%s: '%s' listed twice", what, s);
            rc = -1;
            continue;
        }
        v[k++] = s;
    }
    *out = v;
    *nout = k;
    return rc;
}

static bool header_name_ok(const char *s, size_t len)
{
    return ctr__token(s, len) && strncmp(s, "privgate-", 9) != 0 && !ctr__hop_header(s, len);
}

int ctr__namelist(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool header,
                  struct flt_namelist *out)
{
    out->v = NULL;
    out->n = 0;
    char **names;
    size_t cnt;
    int rc = ctr__strlist(y, n, what, header, &names, &cnt);
    if (!names) return -1;
    if (header) {
        /* report bad names at their own position */
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            yaml_node_t *e = ctr__node(y, *it);
            if (!e || e->type != YAML_SCALAR_NODE || e->data.scalar.length == 0) continue;
            char low[256];
            size_t len = e->data.scalar.length;
            if (len >= sizeof low) len = sizeof low - 1;
            for (size_t i = 0; i < len; i++) {
                char c = (char)e->data.scalar.value[i];
                low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            low[len] = 0;
            if (!ctr__token(low, len)) {
                ctr__err(y, e, "%s: '%s' is not a valid header name", what, low);
                rc = -1;
            } else if (!header_name_ok(low, len)) {
                ctr__err(y, e, "%s: header '%s' cannot be forwarded", what, low);
                rc = -1;
            }
        }
    }
    struct flt_str *v = ctr__alloc(y->mem, (cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        ctr__err(y, n, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < cnt; i++) {
        size_t len = strlen(names[i]);
        if (header && !header_name_ok(names[i], len)) continue;
        v[k].p = names[i];
        v[k].len = len;
        k++;
    }
    flt_namelist_sort(v, k);
    out->v = v;
    out->n = k;
    return rc;
}

int ctr__list_no_space(struct ctr__yaml *y, yaml_node_t *n, const char *what)
{
    int rc = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE) return 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *e = ctr__node(y, *it);
        if (!e || e->type != YAML_SCALAR_NODE || e->data.scalar.length == 0) continue;
        const unsigned char *v = e->data.scalar.value;
        size_t l = e->data.scalar.length;
        if (strchr(" \t\r\n\f\v", v[0]) || strchr(" \t\r\n\f\v", v[l - 1])) {
            ctr__err(y, e, "%s: '%s' has leading or trailing white space", what, (const char *)v);
            rc = -1;
        }
    }
    return rc;
}

/* --------------------------------------------------------- duplicate keys */

struct key_ref {
    const unsigned char *p;
    size_t len;
    size_t idx; /* position in the mapping */
};

static int key_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    int c = x->len ? memcmp(x->p, y->p, x->len) : 0;
    if (c) return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* YAML (1.2, 3.2.1.1) wants the keys of a mapping unique; libyaml does not
 * check. A loader that keeps the first or the last value of a duplicate
 * would silently read another contract than the one reviewed ("params:
 * {id: hash, id: keep}"), so every duplicate of every mapping is an error,
 * wherever it is. Every node of the document is visited once (aliases are
 * references to nodes already in the list, so no walk can loop). */
int ctr__check_duplicate_keys(struct ctr__yaml *y)
{
    int found = 0;
    for (yaml_node_t *n = y->doc.nodes.start; n < y->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE) continue;
        size_t m = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (m < 2) continue;
        struct key_ref *v = malloc(m * sizeof *v);
        bool *dup = calloc(m, sizeof *dup);
        if (!v || !dup) {
            free(v);
            free(dup);
            ctr__err(y, n, "out of memory");
            return found + 1;
        }
        size_t k = 0;
        for (size_t i = 0; i < m; i++) {
            yaml_node_t *kn = ctr__node(y, n->data.mapping.pairs.start[i].key);
            if (!kn || kn->type != YAML_SCALAR_NODE) continue; /* reported where read */
            v[k].p = kn->data.scalar.value;
            v[k].len = kn->data.scalar.length;
            v[k].idx = i;
            k++;
        }
        qsort(v, k, sizeof *v, key_cmp);
        for (size_t i = 1; i < k; i++)
            if (v[i].len == v[i - 1].len &&
                (v[i].len == 0 || memcmp(v[i].p, v[i - 1].p, v[i].len) == 0))
                dup[v[i].idx] = true;
        for (size_t i = 0; i < m; i++) {
            if (!dup[i]) continue;
            yaml_node_t *kn = ctr__node(y, n->data.mapping.pairs.start[i].key);
            int l = kn->data.scalar.length > 200 ? 200 : (int)kn->data.scalar.length;
            ctr__err(y, kn, "duplicate key '%.*s'", l, (const char *)kn->data.scalar.value);
            found++;
        }
        free(v);
        free(dup);
    }
    return found;
}
