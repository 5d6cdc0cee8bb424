/*
 * Independent reference code for the fuzz targets: a strict RFC 8259 JSON
 * parser building a small DOM over the input bytes, UTF-8 helpers, a parser
 * for contract field paths (SPEC 4.1) into a rule trie, and the expected
 * results of the value transforms. Nothing here calls filters/: it is the
 * second implementation the filter is checked against.
 */
#ifndef PRIVGATE_FUZZ_ORACLE_H
#define PRIVGATE_FUZZ_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filters/filters.h"

/* ------------------------------------------------------------------ JSON DOM */

enum ojk { OJ_OBJ = 'o', OJ_ARR = 'a', OJ_STR = 's', OJ_NUM = 'n', OJ_LIT = 'l' };

/* One value. Scalars: |raw| is the token (strings with their quotes).
 * Members of an object carry their name token in |name| (with quotes).
 * Children are linked: |first| .. |next| (indices into the pool, 0 = none;
 * index 0 is never a value). Views point into the parsed text. */
struct ojnode {
    char kind;
    uint32_t first, next, count;
    const char *raw;
    size_t rawlen;
    const char *name;
    size_t namelen;
};

struct ojdoc {
    struct ojnode *pool; /* pool[0] unused */
    uint32_t used, cap;
    uint32_t root;
    uint32_t max_depth; /* containers allowed (>= 1) */
    bool no_ws;         /* refuse any whitespace (filter output) */
};

/* Parses |p|/|n| as exactly one JSON text. Returns true when valid: RFC 8259
 * grammar, strict UTF-8, no escaped lone surrogate, nesting <= max_depth.
 * The DOM is valid while |p| is. Free with ojdoc_free. */
bool oj_parse(struct ojdoc *d, const char *p, size_t n, uint32_t max_depth, bool no_ws);
void ojdoc_free(struct ojdoc *d);
static inline const struct ojnode *oj_node(const struct ojdoc *d, uint32_t i)
{
    return i ? &d->pool[i] : NULL;
}

/* Unescapes a valid string token (with quotes) into |out| (cap >= len).
 * Returns the byte length. */
size_t oj_unescape(const char *tok, size_t len, char *out);
/* Whether the escapes of a string token are minimal: only '"', '\\' and
 * control characters escaped. */
bool oj_escapes_minimal(const char *tok, size_t len);
/* Whether two values of two documents are byte-identical (minified). */
bool oj_equal_raw(const struct ojdoc *a, uint32_t ia, const struct ojdoc *b, uint32_t ib);

/* ------------------------------------------------------------------ UTF-8 */

bool ou_valid(const char *p, size_t n);
/* Code points of valid UTF-8. */
size_t ou_count(const char *p, size_t n);
/* Byte offset of code point |k| (n if past the end). */
size_t ou_offset(const char *p, size_t n, size_t k);

/* ------------------------------------------------------------------ rules */

struct orule {
    const char *path;
    struct flt_action act;
};

struct onode {
    bool has_action;
    struct flt_action act;
    struct onode *kids; /* named children (linked by |sib|) */
    struct onode *sib;
    char *name;
    size_t namelen;
    struct onode *any;  /* `*` child */
    struct onode *elem; /* `[]` child */
};

/* Adds |path| (contract syntax) with |act| to the trie rooted at |root|.
 * Returns false on a syntax error of the path. */
bool otrie_add(struct onode *root, const char *path, const struct flt_action *act);
void otrie_free(struct onode *root);
/* The child for member |name| (unescaped): named, else `*`, else NULL;
 * NULL for a name longer than FLT_NAME_MAX (it matches no rule). */
const struct onode *otrie_member(const struct onode *n, const char *name, size_t len);

/* ------------------------------------------------------------- transforms */

enum otri { O_NO = 0, O_YES = 1, O_MAYBE = 2 };

/* Whether `year` can read |v|: O_YES certainly, O_NO certainly not,
 * O_MAYBE where SPEC 4.4 leaves room (range checks, lower-case 't'...). */
enum otri o_year_readable(const char *v, size_t n);

/* Checks that |out| is what |act| makes of |in| (both unescaped bytes).
 * |key|/|keylen| is the raw HMAC key. Returns NULL or a reason. */
const char *o_check_transform(const struct flt_action *act, const uint8_t *key, size_t keylen,
                              const char *in, size_t inlen, const char *out, size_t outlen);

#endif
