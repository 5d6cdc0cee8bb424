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

/* Named child |name| of |n|, or NULL. */
const struct flt_node *flt__node_kid(const struct flt_node *n, const char *name, size_t len);

/* Whether an unescaped member name must be written quoted in a path. */
bool flt__name_needs_quotes(const char *name, size_t len);

#endif
