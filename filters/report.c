/* Removed / transformed path lists of one request (SPEC 7). Fixed storage. */
#include <string.h>

#include "filters/int.h"

/* O(1): the path lists' seen-sets are sparse sets (filters/int.h), emptied
 * by their count alone; the rest is only read below n / text_used. */
void flt_report_init(struct flt_report *r)
{
    r->removed.n = r->removed.more = r->removed.total = 0;
    r->removed.nseen = 0;
    r->removed.text_used = 0;
    r->removed.list_hash = 0;
    r->transformed.n = r->transformed.more = r->transformed.total = 0;
    r->transformed.nseen = 0;
    r->transformed.text_used = 0;
    r->transformed.list_hash = 0;
}

#define FNV_BASIS 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

/* FNV-1a over p[0..n), continuing |h|; four bytes a round (the multiply
 * chain stays serial, the loop's own instructions do not). */
static inline uint64_t fnv_bytes(uint64_t h, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        h = (h ^ s[i]) * FNV_PRIME;
        h = (h ^ s[i + 1]) * FNV_PRIME;
        h = (h ^ s[i + 2]) * FNV_PRIME;
        h = (h ^ s[i + 3]) * FNV_PRIME;
    }
    for (; i < n; i++)
        h = (h ^ s[i]) * FNV_PRIME;
    return h;
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t path_hash(const char *a, size_t alen, const char *b, size_t blen, char sep)
{
    uint64_t h = fnv_bytes(FNV_BASIS, a, alen);
    if (sep) h = (h ^ (unsigned char)sep) * FNV_PRIME;
    h = fnv_bytes(h, b, blen);
    return h ? h : 1;
}

/* memcpy() of the short pieces paths are made of, without a call: two
 * overlapping moves cover 4..16 bytes. */
static inline void copy_short(char *d, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else if (n) {
        memcpy(d, s, n);
    }
}

/* Returns true when |h| was not seen before (and records it). When the set
 * is full every path counts as new: |more| becomes approximate. */
static bool seen_insert(struct flt_pathlist *l, uint64_t h)
{
    if (l->nseen >= FLT__SEEN_LIMIT) return true;
    size_t i = flt__seen_probe(l, h);
    if (flt__seen_used(l, i)) return false;
    flt__seen_put(l, i, h);
    return true;
}

/* Writes the path as stored: |prefix| [sep] |path|, cut to
 * FLT_REPORT_PATH_MAX on a code point boundary and ended "..." when longer
 * (so it stays valid UTF-8). Returns its length. Whole pieces are copied
 * with memcpy: a byte loop here cost more than the hash. */
static size_t render(char *dst, const char *prefix, size_t plen, char sep, const char *path,
                     size_t len)
{
    size_t full = plen + (sep ? 1 : 0) + len;
    size_t cut = full > FLT_REPORT_PATH_MAX ? FLT_REPORT_PATH_MAX : full;
    size_t w = plen < cut ? plen : cut;
    copy_short(dst, prefix, w);
    if (sep && w < cut) dst[w++] = sep;
    size_t k = len < cut - w ? len : cut - w;
    copy_short(dst + w, path, k); /* |path| may be NULL when empty: k is 0 then */
    w += k;
    if (cut < full) {
        size_t keep = cut - 3;
        while (keep > 0 && ((unsigned char)dst[keep] & 0xC0) == 0x80)
            keep--;
        memcpy(dst + keep, "...", 3);
        w = keep + 3;
    }
    return w;
}

void flt_pathlist_add(struct flt_pathlist *l, const char *prefix, const char *path, size_t len)
{
    /* one pass over the prefix for its length and its hash state */
    uint64_t h = FNV_BASIS;
    size_t plen = 0;
    for (; prefix[plen]; plen++)
        h = (h ^ (unsigned char)prefix[plen]) * FNV_PRIME;
    char sep = (len && path[0] != '[') ? '.' : 0;
    /* Each path once, as stored: long paths that differ only past the cut
     * are one entry. Short paths hash as prefix, sep, path — the form the
     * JSON filter's per-container hash state continues (json.c). */
    if (plen + (sep ? 1 : 0) + len <= FLT_REPORT_PATH_MAX) {
        if (sep) h = (h ^ (unsigned char)sep) * FNV_PRIME;
        flt__pathlist_add_hashed(l, prefix, plen, path, len, fnv_bytes(h, path, len));
        return;
    }
    l->total++;
    char cut[FLT_REPORT_PATH_MAX];
    size_t clen = render(cut, prefix, plen, sep, path, len);
    h = path_hash(cut, clen, "", 0, 0);
    if (!seen_insert(l, h)) return;
    if (l->n == FLT_REPORT_MAX) {
        l->more++;
        return;
    }
    memcpy(l->text + l->text_used, cut, clen);
    flt__pathlist_store(l, clen, h);
}

void flt__pathlist_add_hashed(struct flt_pathlist *l, const char *prefix, size_t plen,
                              const char *path, size_t len, uint64_t h)
{
    l->total++;
    h = h ? h : 1; /* as path_hash() */
    if (!seen_insert(l, h)) return;
    if (l->n == FLT_REPORT_MAX) {
        l->more++;
        return;
    }
    /* render() of a path that needs no cut, without the call */
    char *dst = l->text + l->text_used;
    char sep = (len && path[0] != '[') ? '.' : 0;
    copy_short(dst, prefix, plen);
    size_t w = plen;
    if (sep) dst[w++] = sep;
    copy_short(dst + w, path, len);
    flt__pathlist_store(l, w + len, h);
}

struct flt_str flt_pathlist_get(const struct flt_pathlist *l, uint32_t i)
{
    struct flt_str s = {NULL, 0};
    if (i < l->n) {
        s.p = l->text + l->off[i];
        s.len = l->len[i];
    }
    return s;
}
