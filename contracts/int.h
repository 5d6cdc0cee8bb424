/*
 * privgate contracts: internal helpers shared by the files of contracts/.
 * Not part of the public API; tests may include it.
 */
#ifndef PRIVGATE_CONTRACTS_INT_H
#define PRIVGATE_CONTRACTS_INT_H

#include <stdarg.h>
#include <yaml.h>

#include "contracts/contracts.h"

/* ------------------------------------------------------------------ arena */

/* Bump allocator: everything a config or a contract owns is freed at once. */
struct ctr__arena *ctr__arena_new(void);
void ctr__arena_del(struct ctr__arena *a);
/* Zeroed, 16-byte aligned. NULL on OOM. */
void *ctr__alloc(struct ctr__arena *a, size_t n);
char *ctr__strndup(struct ctr__arena *a, const char *s, size_t n);
char *ctr__strdup(struct ctr__arena *a, const char *s);

/* ------------------------------------------------------------ diagnostics */

#if defined(__GNUC__)
#define CTR__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CTR__PRINTF(f, a)
#endif

/* Reports one error (|line|, |col| 1-based, 0 = no position). */
void ctr__diag(struct ctr_diag *d, const char *file, int line, int col, const char *fmt, ...)
    CTR__PRINTF(5, 6);
void ctr__vdiag(struct ctr_diag *d, const char *file, int line, int col, const char *fmt,
                va_list ap);

/* ---------------------------------------------------------- growing buffer */

struct ctr__buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void ctr__buf_add(struct ctr__buf *b, const char *p, size_t n);
void ctr__buf_adds(struct ctr__buf *b, const char *s);
void ctr__buf_addc(struct ctr__buf *b, char c);
void ctr__buf_free(struct ctr__buf *b);
/* Appends |s| as a JSON string literal (quotes, minimal escaping). */
void ctr__buf_json_str(struct ctr__buf *b, const char *s, size_t n);

/* ------------------------------------------------------------ YAML access */

/* One YAML file being read: the document, where errors go, what owns the
 * copies. */
struct ctr__yaml {
    yaml_document_t doc;
    bool loaded;
    const char *file;
    struct ctr_diag *diag;
    struct ctr__arena *mem;
    int errors;           /* errors reported for this file */
    unsigned char *bytes; /* the file's bytes (malloc'd) */
    size_t nbytes;
};

/* Reads and parses |file|. Returns 0, or -1 after reporting the read or
 * syntax error. On success y->doc is loaded (free with ctr__yaml_close);
 * y->errors may already count errors (a second document, duplicate keys in
 * any mapping: see ctr__check_duplicate_keys). */
int ctr__yaml_open(struct ctr__yaml *y, const char *file, struct ctr_diag *diag,
                   struct ctr__arena *mem);
void ctr__yaml_close(struct ctr__yaml *y);
yaml_node_t *ctr__node(struct ctr__yaml *y, int idx);
yaml_node_t *ctr__root(struct ctr__yaml *y);
/* Reports an error at |n|'s start (|n| may be NULL: no position). */
void ctr__err(struct ctr__yaml *y, const yaml_node_t *n, const char *fmt, ...) CTR__PRINTF(3, 4);

/* Checks |n| is a mapping whose keys are among |keys| (NULL-terminated);
 * stores each value in |vals[i]| and its key in |knodes[i]| (may be NULL),
 * reports unknown keys ("|what|: unknown key 'k'"; |what| "" for a file's
 * root). A duplicate key keeps its first value here: every duplicate of
 * every mapping was already reported by ctr__yaml_open. Returns 0, or -1 if |n| is not a mapping
 * (reported as
 * "|what|: expected a mapping"). */
int ctr__map(struct ctr__yaml *y, yaml_node_t *n, const char *what, const char *const *keys,
             yaml_node_t **vals, yaml_node_t **knodes);
/* The text of scalar |n|, or NULL after reporting "|what|: expected a string". */
const char *ctr__scalar(struct ctr__yaml *y, yaml_node_t *n, const char *what);
/* Arena copy of scalar |n| (NULL after an error). Empty strings are errors. */
char *ctr__str(struct ctr__yaml *y, yaml_node_t *n, const char *what);
int ctr__uint(struct ctr__yaml *y, yaml_node_t *n, const char *what, uint64_t max, uint64_t *out);
int ctr__bool(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool *out);
/* Sequence of non-empty strings, arena-copied; |lower| lower-cases them. */
int ctr__strlist(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool lower, char ***out,
                 size_t *nout);
/* Like ctr__strlist, as a sorted flt_namelist. |header| validates header
 * field names (RFC 9110 token) and lower-cases them. */
int ctr__namelist(struct ctr__yaml *y, yaml_node_t *n, const char *what, bool header,
                  struct flt_namelist *out);
bool ctr__is_plain(const yaml_node_t *n);
/* Reports each scalar item of sequence |n| that has leading or trailing
 * white space ("|what|: 'x' has leading or trailing white space").
 * Returns 0 or -1. */
int ctr__list_no_space(struct ctr__yaml *y, yaml_node_t *n, const char *what);
/* Reports every duplicate scalar key of every mapping of the document, at
 * the second occurrence ("duplicate key 'k'"). Called by ctr__yaml_open.
 * Returns the number of duplicates. */
int ctr__check_duplicate_keys(struct ctr__yaml *y);

/* --------------------------------------------------------------- files */

/* |rel| resolved against the directory of |base| (absolute stays). */
char *ctr__resolve(struct ctr__arena *a, const char *base, const char *rel);
/* Reads a whole file (malloc'd, NUL-appended). Returns 0 or an errno value. */
int ctr__read_file(const char *path, size_t max, unsigned char **out, size_t *len);
bool ctr__token(const char *s, size_t n); /* RFC 9110 token */
bool ctr__hop_header(const char *name, size_t len);

/* ------------------------------------------------------------ contracts */

void ctr__config_free(struct ctr_config *cfg);
int ctr__config_load(struct ctr_config *cfg, const char *path, struct ctr_diag *diag);
struct ctr_contract *ctr__contract_load(const char *path, const struct ctr_config *cfg,
                                        struct ctr_diag *diag, int *pline, int *pcol);
void ctr__contract_free(struct ctr_contract *c);

/* tests.c */
int ctr__tests_parse(struct ctr__yaml *y, yaml_node_t *n, struct ctr_contract *c);
void ctr__tests_free(struct ctr_contract *c);
/* Canonical form of a sequence of JSON values (object members sorted, strings
 * minimally escaped, no whitespace, values joined by '\n'). Returns 0 or -1
 * when |p| is not JSON. */
int ctr__json_canon(const char *p, size_t n, struct ctr__buf *out);

#endif
