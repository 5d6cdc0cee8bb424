/*
 * Shared helpers of the heavy JSON filter suites (tests/json/): building
 * rule sets, running flt_json over a document under a chosen chunking,
 * canonical report strings, whitespace stripping, corpus file reading.
 */
#ifndef PRIVGATE_TESTS_JSON_JT_H
#define PRIVGATE_TESTS_JSON_JT_H

#include "filters/filters.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer (heap). */
struct jt_buf {
    char *p;
    size_t len, cap;
};
void jt_buf_put(struct jt_buf *b, const void *p, size_t n);
void jt_buf_putc(struct jt_buf *b, char c);
void jt_buf_puts(struct jt_buf *b, const char *s);
void jt_buf_free(struct jt_buf *b);
/* flt_sink_fn appending to a struct jt_buf. */
int jt_buf_sink(void *ud, const char *p, size_t n);

/* One `fields:` entry of a hand-written rule set. */
struct jt_rule {
    const char *path; /* NULL ends a list */
    enum flt_action_kind kind;
    uint32_t n;
    bool last;
};
#define JT_KEEP(p)                                                                                 \
    {                                                                                              \
        (p), FLT_ACT_KEEP, 0, false                                                                \
    }
#define JT_HASH(p)                                                                                 \
    {                                                                                              \
        (p), FLT_ACT_HASH, 0, false                                                                \
    }
#define JT_MASKL(p, n)                                                                             \
    {                                                                                              \
        (p), FLT_ACT_MASK, (n), true                                                               \
    }
#define JT_MASKF(p, n)                                                                             \
    {                                                                                              \
        (p), FLT_ACT_MASK, (n), false                                                              \
    }
#define JT_TRUNC(p, n)                                                                             \
    {                                                                                              \
        (p), FLT_ACT_TRUNCATE, (n), false                                                          \
    }
#define JT_YEAR(p)                                                                                 \
    {                                                                                              \
        (p), FLT_ACT_YEAR, 0, false                                                                \
    }
#define JT_END                                                                                     \
    {                                                                                              \
        NULL, FLT_ACT_NONE, 0, false                                                               \
    }

/* Builds and compiles |rs|. Returns NULL (with |err| filled) when an add or
 * the compile fails. */
struct flt_rules *jt_rules(const struct jt_rule *rs, char *err, size_t errlen);

/* The test HMAC key (also available as raw bytes for OpenSSL). */
extern const char jt_key_bytes[];
extern const size_t jt_key_len;
const struct flt_hmac_key *jt_key(void);
/* Independent HMAC-SHA-256 (OpenSSL) of |p|, 64 lowercase hex + NUL. */
void jt_hmac_ref(const char *p, size_t n, char out[65]);

/* Chunking of one run. */
enum jt_chunking {
    JT_WHOLE,  /* one feed */
    JT_SPLIT,  /* two feeds: [0, split) and [split, len) */
    JT_BYTES,  /* 1-byte feeds */
    JT_STRIDE, /* feeds of |split| bytes */
};

struct jt_result {
    int rc;         /* 0, or the first negative value from feed/finish */
    bool at_finish; /* the error came from flt_json_finish */
    uint64_t err_off;
    struct jt_buf out;
    struct jt_buf report; /* canonical text of the report */
};

/* Runs |doc| through |f| with |cfg| (report collected). */
void jt_run(struct flt_json *f, const struct flt_json_config *cfg, const char *doc, size_t len,
            enum jt_chunking ch, size_t split, struct jt_result *res);
void jt_result_free(struct jt_result *r);
/* Canonical text of |r|: "removed:" paths, "more", "total", same for
 * transformed; one per line. */
void jt_report_text(const struct flt_report *r, struct jt_buf *out);
/* Removed paths of |r| as one NUL-separated, sorted list (set compare). */

/* Copies |in| without JSON insignificant whitespace outside strings. */
void jt_strip_ws(const char *in, size_t len, struct jt_buf *out);
/* Reads a whole file (binary). Returns false if unreadable. */
bool jt_read_file(const char *path, struct jt_buf *out);
/* Directory of the JSONTestSuite test_parsing files (static buffer). */
const char *jt_suite_dir(void);

/* Printable rendering of bytes for failure messages (static ring buffer,
 * valid until the 4th next call). */
const char *jt_show(const char *p, size_t n);

#endif
