/* filters/ internals shared between its .c files (and white-box tests). */
#ifndef PRIVGATE_FILTERS_INT_H
#define PRIVGATE_FILTERS_INT_H

#include <stdatomic.h>

#include "filters/filters.h"

/*
 * One node of the compiled rule tree. The root stands for the document
 * (`$`). Named children are sorted by (length, bytes) for lookup; `star`
 * is `*` (after compile, its subtree is also merged into every named
 * sibling, so a name that has a named child never needs the wildcard);
 * `elem` is `[]`. act.kind == FLT_ACT_NONE means "ancestor only".
 */
struct flt_node {
    char *name; /* unescaped member name (named children only) */
    uint32_t name_len;
    struct flt_node **kids;
    uint32_t nkids, kids_cap;
    struct flt_node *star;
    struct flt_node *elem;
    struct flt_action act;
    bool has_act;
    bool has_members; /* any named kid or star: an object may match */
    /* lookup table over (length, first, last byte) of the named kids:
     * 0 = no kid, FLT__LUT_MANY = several (scan), else index + 1 */
    uint8_t lut[64];
};

#define FLT__LUT_MANY 0xFF

static inline uint32_t flt__lut_slot(const char *name, size_t len)
{
    if (len == 0) return 0;
    return (uint32_t)(len * 7 + (unsigned char)name[0] * 3 + (unsigned char)name[len - 1]) & 63;
}

struct flt_rules {
    struct flt_node *root;
    atomic_int refs;
    bool compiled;
    size_t max_name;
    uint32_t max_mask;
    bool need_key;
};

/* The report's set of path hashes (struct flt_pathlist): report.c inserts,
 * json.c probes it too (report_again()), both through these. The set holds
 * at most FLT__SEEN_LIMIT hashes, so a probe always meets a free slot. */
#define FLT__SEEN_LIMIT (FLT_REPORT_SEEN * 3 / 4)

/* Whether slot |i| is in use. Any bytes in seen_pos/seen_slot give the right
 * answer (a slot counts only when the used-slot list points back at it), so
 * flt_report_init() need not clear them: on fresh storage this reads
 * indeterminate uint16_t values, which have no trap representation. */
static inline bool flt__seen_used(const struct flt_pathlist *l, size_t i)
{
    uint32_t w = l->seen_pos[i];
    return w < l->nseen && l->seen_slot[w] == i;
}

/* The slot of |h| (never 0) in the set: where it is when flt__seen_used()
 * says the slot is in use, else the free slot where it would go. */
static inline size_t flt__seen_probe(const struct flt_pathlist *l, uint64_t h)
{
    size_t i = (size_t)(h % FLT_REPORT_SEEN);
    while (flt__seen_used(l, i) && l->seen[i] != h)
        i = (i + 1) % FLT_REPORT_SEEN;
    return i;
}

/* Whether the set holds |h| (never 0). */
static inline bool flt__seen_has(const struct flt_pathlist *l, uint64_t h)
{
    return flt__seen_used(l, flt__seen_probe(l, h));
}

/* Puts |h| in the free slot |i| that flt__seen_probe() gave (the set is
 * below FLT__SEEN_LIMIT). */
static inline void flt__seen_put(struct flt_pathlist *l, size_t i, uint64_t h)
{
    l->seen[i] = h;
    l->seen_pos[i] = (uint16_t)l->nseen;
    l->seen_slot[l->nseen] = (uint16_t)i;
    l->nseen++;
}

/* Files the |w| bytes just written at l->text + l->text_used as path n
 * (l->n < FLT_REPORT_MAX), whose hash is |h|. */
static inline void flt__pathlist_store(struct flt_pathlist *l, size_t w, uint64_t h)
{
    /* order matters: the same paths in another order are another line */
    l->list_hash = (((l->list_hash << 23) | (l->list_hash >> 41)) ^ h) * 0x9E3779B97F4A7C15ull;
    l->off[l->n] = (uint16_t)l->text_used;
    l->len[l->n] = (uint16_t)w;
    l->text_used += w;
    l->n++;
}

/* flt_pathlist_add() of a path whose hash the caller has already made (the
 * FNV-1a state over prefix, separator and path, as report.c hashes it) and
 * that needs no cut (|plen| + 1 + |len| <= FLT_REPORT_PATH_MAX). */
void flt__pathlist_add_hashed(struct flt_pathlist *l, const char *prefix, size_t plen,
                              const char *path, size_t len, uint64_t h);

/* Named child |name| of |n|, or NULL. */
const struct flt_node *flt__node_kid(const struct flt_node *n, const char *name, size_t len);

/* Whether an unescaped member name must be written quoted in a path. */
bool flt__name_needs_quotes(const char *name, size_t len);

#endif
