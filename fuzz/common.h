/* Small helpers shared by the fuzz targets. */
#ifndef PRIVGATE_FUZZ_COMMON_H
#define PRIVGATE_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"

/* The HMAC key of every fuzz target's hash rules. */
#define FZ_HMAC_KEY "privgate-fuzz-hmac-key"
#define FZ_HMAC_KEYLEN (sizeof FZ_HMAC_KEY - 1)

/* Growing output buffer used as a flt_sink_fn. */
struct fz_out {
    char *p;
    size_t len, cap;
    unsigned calls;
};

static inline int fz_sink(void *ud, const char *p, size_t n)
{
    struct fz_out *o = ud;
    o->calls++;
    if (!o->p || o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + n)
            cap *= 2;
        char *q = realloc(o->p, cap);
        if (!q) abort();
        o->p = q;
        o->cap = cap;
    }
    if (n) memcpy(o->p + o->len, p, n);
    o->len += n;
    return 0;
}

/* Writes |n| bytes to |path| (a fuzz target's scratch file) or aborts. */
static inline void fz_write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Reports a broken property and aborts, so libFuzzer saves the input. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static inline void
fz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\n*** privgate fuzz property violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    abort();
}

/* Prints |n| bytes escaped, for failure messages. */
static inline void fz_dump(const char *label, const char *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < n && i < 2000; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputs(n > 2000 ? "\"...\n" : "\"\n", stderr);
}

/* The filter's own verdict on whether `year` can read |v| (valid UTF-8):
 * used only where SPEC 4.4 leaves the answer open (o_year_readable says
 * O_MAYBE), so that duplicate names align deterministically. */
static inline bool fz_filter_year_readable(const char *v, size_t n)
{
    static const struct flt_action year = {FLT_ACT_YEAR, 0, false};
    struct flt_xform x;
    struct fz_out o = {0};
    flt_xform_begin(&x, &year, NULL);
    int rc = flt_xform_feed(&x, v, n, fz_sink, &o);
    if (rc == 0) rc = flt_xform_end(&x, fz_sink, &o);
    free(o.p);
    return rc == 0;
}

static inline void fz_check_report(const struct flt_report *r, const char *prefix)
{
    const struct flt_pathlist *ls[2] = {&r->removed, &r->transformed};
    size_t pl = strlen(prefix);
    for (int k = 0; k < 2; k++) {
        const struct flt_pathlist *l = ls[k];
        if (l->n > FLT_REPORT_MAX) fz_fail("report: %u paths stored, max %d", l->n, FLT_REPORT_MAX);
        for (uint32_t i = 0; i < l->n; i++) {
            struct flt_str s = flt_pathlist_get(l, i);
            if (s.len < pl || memcmp(s.p, prefix, pl) != 0) {
                fz_dump("path", s.p, s.len);
                fz_fail("report: path does not start with \"%s\"", prefix);
            }
            /* cut paths too: deduplication is on the stored, cut form
             * (finding 1 of docs/FUZZING.md, fixed in d5a5486) */
            for (uint32_t j = 0; j < i; j++) {
                struct flt_str t = flt_pathlist_get(l, j);
                if (t.len == s.len && memcmp(t.p, s.p, s.len) == 0) {
                    fz_dump("path", s.p, s.len);
                    fz_fail("report: path listed twice");
                }
            }
        }
    }
}

#endif
