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
    r->transformed.n = r->transformed.more = r->transformed.total = 0;
    r->transformed.nseen = 0;
    r->transformed.text_used = 0;
}

/* FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t path_hash(const char *a, size_t alen, const char *b, size_t blen, char sep)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < alen; i++)
        h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    if (sep) h = (h ^ (unsigned char)sep) * 1099511628211ull;
    for (size_t i = 0; i < blen; i++)
        h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
    return h ? h : 1;
}

/* Returns true when |h| was not seen before (and records it). When the set
 * is full every path counts as new: |more| becomes approximate. */
static bool seen_insert(struct flt_pathlist *l, uint64_t h)
{
    if (l->nseen >= FLT__SEEN_LIMIT) return true;
    size_t i = (size_t)(h % FLT_REPORT_SEEN);
    while (flt__seen_used(l, i)) {
        if (l->seen[i] == h) return false;
        i = (i + 1) % FLT_REPORT_SEEN;
    }
    l->seen[i] = h;
    l->seen_pos[i] = (uint16_t)l->nseen;
    l->seen_slot[l->nseen] = (uint16_t)i;
    l->nseen++;
    return true;
}

/* Writes the path as stored: |prefix| [sep] |path|, cut to
 * FLT_REPORT_PATH_MAX on a code point boundary and ended "..." when longer
 * (so it stays valid UTF-8). Returns its length. */
static size_t render(char *dst, const char *prefix, size_t plen, char sep, const char *path,
                     size_t len)
{
    size_t full = plen + (sep ? 1 : 0) + len;
    size_t cut = full > FLT_REPORT_PATH_MAX ? FLT_REPORT_PATH_MAX : full;
    size_t w = 0;
    for (size_t i = 0; i < plen && w < cut; i++)
        dst[w++] = prefix[i];
    if (sep && w < cut) dst[w++] = sep;
    for (size_t i = 0; i < len && w < cut; i++)
        dst[w++] = path[i];
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
    size_t plen = strlen(prefix);
    char sep = (len && path[0] != '[') ? '.' : 0;
    l->total++;
    /* Each path once, as stored: long paths that differ only past the cut
     * are one entry. Short paths hash as prefix, sep, path — the form the
     * JSON filter's per-container hash state continues (json.c). */
    uint64_t h;
    char cut[FLT_REPORT_PATH_MAX];
    size_t clen = 0;
    bool is_cut = plen + (sep ? 1 : 0) + len > FLT_REPORT_PATH_MAX;
    if (is_cut) {
        clen = render(cut, prefix, plen, sep, path, len);
        h = path_hash(cut, clen, "", 0, 0);
    } else {
        h = path_hash(prefix, plen, path, len, sep);
    }
    if (!seen_insert(l, h)) return;
    if (l->n == FLT_REPORT_MAX) {
        l->more++;
        return;
    }
    char *dst = l->text + l->text_used;
    size_t w;
    if (is_cut) {
        memcpy(dst, cut, clen);
        w = clen;
    } else {
        w = render(dst, prefix, plen, sep, path, len);
    }
    l->off[l->n] = (uint16_t)l->text_used;
    l->len[l->n] = (uint16_t)w;
    l->text_used += w;
    l->n++;
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
