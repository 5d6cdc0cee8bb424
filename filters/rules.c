/*
 * Field paths (SPEC 4.1) parsed into a rule tree, then compiled: wildcard
 * subtrees merged into named siblings, ambiguities refused. The compiled
 * tree is immutable and shared between threads by reference count.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/int.h"

/* ------------------------------------------------------------ path parsing */

enum seg_kind { SEG_NAME, SEG_STAR, SEG_ELEM };

struct seg {
    enum seg_kind kind;
    char name[FLT_NAME_MAX];
    size_t len;
};

#define PATH_MAX_SEGS 128

struct parsed_path {
    struct seg *segs;
    size_t n;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_special(char c)
{
    return c == '.' || c == '[' || c == ']' || c == '*' || c == '"' || c == '$';
}

bool flt__name_needs_quotes(const char *name, size_t len)
{
    if (len == 0) return true;
    for (size_t i = 0; i < len; i++)
        if (is_special(name[i]) || name[i] == '\\') return true;
    return false;
}

/* Parses |path| into |out| (caller storage of PATH_MAX_SEGS). */
static int parse_path(const char *path, size_t len, struct seg *segs, size_t *nsegs, char *err,
                      size_t errlen)
{
    size_t i = 0, n = 0;
    if (len == 0) {
        set_err(err, errlen, "empty field path");
        return -1;
    }
    if (path[0] == '$') {
        i = 1;
        if (i < len && path[i] == '.') {
            i++;
            if (i == len) {
                set_err(err, errlen, "field path \"%.*s\" ends after '.'", (int)len, path);
                return -1;
            }
        } else if (i < len && path[i] != '[') {
            set_err(err, errlen, "field path \"%.*s\": '$' must be followed by '.' or '[]'",
                    (int)len, path);
            return -1;
        }
    }
    bool need_name = i < len && path[i] != '[';
    while (i < len) {
        if (n == PATH_MAX_SEGS) {
            set_err(err, errlen, "field path has more than %d segments", PATH_MAX_SEGS);
            return -1;
        }
        struct seg *s = &segs[n];
        if (need_name) {
            if (path[i] == '*') {
                s->kind = SEG_STAR;
                s->len = 0;
                i++;
            } else if (path[i] == '"') {
                s->kind = SEG_NAME;
                s->len = 0;
                i++;
                for (;;) {
                    if (i == len) {
                        set_err(err, errlen, "field path \"%.*s\": unterminated quoted name",
                                (int)len, path);
                        return -1;
                    }
                    char c = path[i++];
                    if (c == '"') break;
                    if (c == '\\') {
                        if (i == len || (path[i] != '"' && path[i] != '\\')) {
                            set_err(err, errlen,
                                    "field path \"%.*s\": only \\\" and \\\\ escapes are allowed "
                                    "in quoted names",
                                    (int)len, path);
                            return -1;
                        }
                        c = path[i++];
                    }
                    if (s->len == FLT_NAME_MAX) {
                        set_err(err, errlen, "field path: member name longer than %d bytes",
                                FLT_NAME_MAX);
                        return -1;
                    }
                    s->name[s->len++] = c;
                }
            } else {
                s->kind = SEG_NAME;
                s->len = 0;
                while (i < len && path[i] != '.' && path[i] != '[') {
                    char c = path[i];
                    if (is_special(c) || c == '\\' || (unsigned char)c < 0x20) {
                        set_err(err, errlen,
                                "field path \"%.*s\": '%c' in a name must be written inside "
                                "double quotes",
                                (int)len, path, (unsigned char)c < 0x20 ? '?' : c);
                        return -1;
                    }
                    if (s->len == FLT_NAME_MAX) {
                        set_err(err, errlen, "field path: member name longer than %d bytes",
                                FLT_NAME_MAX);
                        return -1;
                    }
                    s->name[s->len++] = c;
                    i++;
                }
                if (s->len == 0) {
                    set_err(err, errlen, "field path \"%.*s\": empty name", (int)len, path);
                    return -1;
                }
            }
            n++;
            need_name = false;
            continue;
        }
        if (path[i] == '[') {
            if (i + 1 >= len || path[i + 1] != ']') {
                set_err(err, errlen, "field path \"%.*s\": '[' must be followed by ']'", (int)len,
                        path);
                return -1;
            }
            s->kind = SEG_ELEM;
            s->len = 0;
            n++;
            i += 2;
            continue;
        }
        if (path[i] == '.') {
            i++;
            if (i == len) {
                set_err(err, errlen, "field path \"%.*s\" ends after '.'", (int)len, path);
                return -1;
            }
            need_name = true;
            continue;
        }
        set_err(err, errlen, "field path \"%.*s\": unexpected '%c'", (int)len, path, path[i]);
        return -1;
    }
    *nsegs = n;
    return 0;
}

/* Writes the canonical form of |segs| (for messages and registers). */
static size_t write_path(const struct seg *segs, size_t n, char *out, size_t cap)
{
    size_t w = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (w + 1 < cap) out[w] = (c);                                                             \
        w++;                                                                                       \
    } while (0)
    if (n == 0) PUT('$');
    for (size_t k = 0; k < n; k++) {
        const struct seg *s = &segs[k];
        if (s->kind == SEG_ELEM) {
            PUT('[');
            PUT(']');
            continue;
        }
        if (k > 0) PUT('.');
        if (s->kind == SEG_STAR) {
            PUT('*');
        } else if (flt__name_needs_quotes(s->name, s->len)) {
            PUT('"');
            for (size_t j = 0; j < s->len; j++) {
                if (s->name[j] == '"' || s->name[j] == '\\') PUT('\\');
                PUT(s->name[j]);
            }
            PUT('"');
        } else {
            for (size_t j = 0; j < s->len; j++)
                PUT(s->name[j]);
        }
    }
    if (cap) out[w < cap ? w : cap - 1] = '\0';
#undef PUT
    return w;
}

int flt_path_normalise(const char *path, size_t len, char *out, size_t outlen, char *err,
                       size_t errlen)
{
    struct seg *segs = malloc(sizeof *segs * PATH_MAX_SEGS);
    size_t n;
    if (!segs) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    int rc = parse_path(path, len, segs, &n, err, errlen);
    if (rc == 0) rc = (int)write_path(segs, n, out, outlen);
    free(segs);
    return rc;
}

/* ------------------------------------------------------------------- tree */

static struct flt_node *node_new(void)
{
    return calloc(1, sizeof(struct flt_node));
}

static void node_free(struct flt_node *n)
{
    if (!n) return;
    for (uint32_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    node_free(n->star);
    node_free(n->elem);
    free(n->name);
    free(n);
}

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return alen < blen ? -1 : 1;
    return memcmp(a, b, alen);
}

static const struct flt_node *kid_search(const struct flt_node *n, const char *name, size_t len)
{
    uint32_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct flt_node *k = n->kids[mid];
        int c = name_cmp(name, len, k->name, k->name_len);
        if (c == 0) return k;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct flt_node *flt__node_kid(const struct flt_node *n, const char *name, size_t len)
{
    uint8_t v = n->lut[flt__lut_slot(name, len)];
    if (v == 0) return NULL;
    if (v == FLT__LUT_MANY) return kid_search(n, name, len);
    const struct flt_node *k = n->kids[v - 1];
    if (k->name_len == len && memcmp(k->name, name, len) == 0) return k;
    return NULL;
}

/* Finds or inserts named child |name| (sorted). NULL on OOM. */
static struct flt_node *node_kid_get(struct flt_node *n, const char *name, size_t len)
{
    uint32_t lo = 0, hi = n->nkids;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(name, len, n->kids[mid]->name, n->kids[mid]->name_len);
        if (c == 0) return n->kids[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (n->nkids == n->kids_cap) {
        uint32_t cap = n->kids_cap ? n->kids_cap * 2 : 4;
        struct flt_node **k = realloc(n->kids, sizeof *k * cap);
        if (!k) return NULL;
        n->kids = k;
        n->kids_cap = cap;
    }
    struct flt_node *kid = node_new();
    if (!kid) return NULL;
    kid->name = malloc(len ? len : 1);
    if (!kid->name) {
        free(kid);
        return NULL;
    }
    memcpy(kid->name, name, len);
    kid->name_len = (uint32_t)len;
    memmove(n->kids + lo + 1, n->kids + lo, sizeof *n->kids * (n->nkids - lo));
    n->kids[lo] = kid;
    n->nkids++;
    n->has_members = true;
    return kid;
}

static bool subtree_has_transform(const struct flt_node *n)
{
    if (!n) return false;
    if (n->has_act && flt_action_is_transform(n->act.kind)) return true;
    for (uint32_t i = 0; i < n->nkids; i++)
        if (subtree_has_transform(n->kids[i])) return true;
    return subtree_has_transform(n->star) || subtree_has_transform(n->elem);
}

struct flt_rules *flt_rules_new(void)
{
    struct flt_rules *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->root = node_new();
    if (!r->root) {
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    return r;
}

int flt_rules_add(struct flt_rules *r, const char *path, size_t len, const struct flt_action *act,
                  char *err, size_t errlen)
{
    if (r->compiled) {
        set_err(err, errlen, "rules are already compiled");
        return -1;
    }
    if (act->kind == FLT_ACT_NONE || act->kind > FLT_ACT_YEAR) {
        set_err(err, errlen, "unknown action");
        return -1;
    }
    if (act->kind == FLT_ACT_MASK && act->n > FLT_MASK_MAX) {
        set_err(err, errlen, "mask keeps at most %d characters", FLT_MASK_MAX);
        return -1;
    }
    struct seg *segs = malloc(sizeof *segs * PATH_MAX_SEGS);
    size_t n;
    char shown[512];
    int rc = -1;
    if (!segs) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (parse_path(path, len, segs, &n, err, errlen) != 0) goto out;
    write_path(segs, n, shown, sizeof shown);
    struct flt_node *node = r->root;
    bool transform = flt_action_is_transform(act->kind);
    for (size_t k = 0; k <= n; k++) {
        if (node->has_act && node->act.kind == FLT_ACT_KEEP && transform && k < n) {
            char anc[512];
            write_path(segs, k, anc, sizeof anc);
            set_err(err, errlen, "\"%s\": %s below the kept container \"%s\"", shown,
                    flt_action_name(act->kind), anc);
            goto out;
        }
        if (node->has_act && flt_action_is_transform(node->act.kind) && k < n) {
            char anc[512];
            write_path(segs, k, anc, sizeof anc);
            set_err(err, errlen, "\"%s\": below \"%s\", which is transformed (%s)", shown, anc,
                    flt_action_name(node->act.kind));
            goto out;
        }
        if (k == n) break;
        const struct seg *s = &segs[k];
        struct flt_node *next;
        if (s->kind == SEG_NAME) {
            next = node_kid_get(node, s->name, s->len);
        } else if (s->kind == SEG_STAR) {
            if (!node->star) node->star = node_new();
            node->has_members = true;
            next = node->star;
        } else {
            if (!node->elem) node->elem = node_new();
            next = node->elem;
        }
        if (!next) {
            set_err(err, errlen, "out of memory");
            goto out;
        }
        node = next;
    }
    if (node->has_act) {
        set_err(err, errlen, "\"%s\" is listed twice", shown);
        goto out;
    }
    if (act->kind == FLT_ACT_KEEP && subtree_has_transform(node)) {
        set_err(err, errlen, "\"%s\": keep of a container with transformed members below it",
                shown);
        goto out;
    }
    if (transform && (node->nkids || node->star || node->elem)) {
        set_err(err, errlen, "\"%s\": %s of a container that has listed members", shown,
                flt_action_name(act->kind));
        goto out;
    }
    node->act = *act;
    node->has_act = true;
    rc = 0;
out:
    free(segs);
    return rc;
}

/* Copies |src|'s rules into |dst| (wildcard resolution). */
static int merge(struct flt_node *dst, const struct flt_node *src, char *err, size_t errlen)
{
    if (src->has_act) {
        if (dst->has_act) {
            if (dst->act.kind != src->act.kind || dst->act.n != src->act.n ||
                dst->act.mask_keep_last != src->act.mask_keep_last) {
                set_err(err, errlen,
                        "ambiguous paths: a member matches both a wildcard entry (%s) and a "
                        "named entry (%s)",
                        flt_action_name(src->act.kind), flt_action_name(dst->act.kind));
                return -1;
            }
        } else {
            if (src->act.kind == FLT_ACT_KEEP && subtree_has_transform(dst)) {
                set_err(err, errlen,
                        "ambiguous paths: a wildcard keeps a container whose member is "
                        "transformed by a named entry");
                return -1;
            }
            if (flt_action_is_transform(src->act.kind) && (dst->nkids || dst->star || dst->elem)) {
                set_err(err, errlen,
                        "ambiguous paths: a wildcard transforms a member that has listed "
                        "members");
                return -1;
            }
            dst->act = src->act;
            dst->has_act = true;
        }
    } else if (dst->has_act && dst->act.kind == FLT_ACT_KEEP && subtree_has_transform(src)) {
        set_err(err, errlen,
                "ambiguous paths: a named entry keeps a container whose member a wildcard "
                "transforms");
        return -1;
    } else if (dst->has_act && flt_action_is_transform(dst->act.kind) &&
               (src->nkids || src->star || src->elem)) {
        set_err(err, errlen,
                "ambiguous paths: a named entry transforms a member that a wildcard entry "
                "descends into");
        return -1;
    }
    for (uint32_t i = 0; i < src->nkids; i++) {
        struct flt_node *k = node_kid_get(dst, src->kids[i]->name, src->kids[i]->name_len);
        if (!k) goto oom;
        if (merge(k, src->kids[i], err, errlen)) return -1;
    }
    if (src->star) {
        if (!dst->star && !(dst->star = node_new())) goto oom;
        dst->has_members = true;
        if (merge(dst->star, src->star, err, errlen)) return -1;
    }
    if (src->elem) {
        if (!dst->elem && !(dst->elem = node_new())) goto oom;
        if (merge(dst->elem, src->elem, err, errlen)) return -1;
    }
    return 0;
oom:
    set_err(err, errlen, "out of memory");
    return -1;
}

static void build_lut(struct flt_node *n)
{
    memset(n->lut, 0, sizeof n->lut);
    for (uint32_t i = 0; i < n->nkids; i++) {
        uint8_t *slot = &n->lut[flt__lut_slot(n->kids[i]->name, n->kids[i]->name_len)];
        *slot = (*slot || i + 1 >= FLT__LUT_MANY) ? FLT__LUT_MANY : (uint8_t)(i + 1);
    }
}

static int compile_node(struct flt_rules *r, struct flt_node *n, char *err, size_t errlen)
{
    if (n->star)
        for (uint32_t i = 0; i < n->nkids; i++)
            if (merge(n->kids[i], n->star, err, errlen)) return -1;
    build_lut(n);
    for (uint32_t i = 0; i < n->nkids; i++) {
        if (n->kids[i]->name_len > r->max_name) r->max_name = n->kids[i]->name_len;
        if (compile_node(r, n->kids[i], err, errlen)) return -1;
    }
    if (n->star && compile_node(r, n->star, err, errlen)) return -1;
    if (n->elem && compile_node(r, n->elem, err, errlen)) return -1;
    if (n->has_act) {
        if (n->act.kind == FLT_ACT_HASH) r->need_key = true;
        if (n->act.kind == FLT_ACT_MASK && n->act.n > r->max_mask) r->max_mask = n->act.n;
    }
    return 0;
}

int flt_rules_compile(struct flt_rules *r, char *err, size_t errlen)
{
    if (r->compiled) return 0;
    if (compile_node(r, r->root, err, errlen)) return -1;
    r->compiled = true;
    return 0;
}

struct flt_rules *flt_rules_ref(struct flt_rules *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void flt_rules_unref(struct flt_rules *r)
{
    if (!r) return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1) return;
    node_free(r->root);
    free(r);
}

size_t flt_rules_max_name(const struct flt_rules *r)
{
    return r->max_name;
}

uint32_t flt_rules_max_mask(const struct flt_rules *r)
{
    return r->max_mask;
}

bool flt_rules_need_key(const struct flt_rules *r)
{
    return r->need_key;
}

const struct flt_action *flt_rules_lookup_top(const struct flt_rules *r, const char *name,
                                              size_t len)
{
    const struct flt_node *root = r->root;
    if (root->has_act) return &root->act;
    const struct flt_node *k = flt__node_kid(root, name, len);
    if (!k) k = root->star;
    if (k && k->has_act) return &k->act;
    return NULL;
}
