/*
 * NDJSON / JSON Lines bodies (SPEC 4.2): every line holding more than JSON
 * white space (space, tab, CR) is one document, filtered by flt_json with
 * the same configuration and written followed by "\n". A raw line feed
 * cannot occur inside a JSON document's tokens, so '\n' always ends one:
 * a document spanning lines is incomplete (FLT_E_INCOMPLETE).
 *
 * White space before a document is dropped here (it is insignificant, and
 * a line of white space alone must not start a document); everything else
 * is streamed to the one flt_json, reset per line: no allocation after new.
 */
#include "filters/filters.h"

#include <stdlib.h>
#include <string.h>

struct flt_ndjson {
    struct flt_json *json;
    struct flt_json_config cfg; /* copy; pointers borrowed */
    flt_sink_fn sink;
    void *ud;
    struct flt_report *report;
    int err; /* sticky */
    bool finished;
    bool in_doc;   /* a document has started on the current line */
    bool unlisted; /* err came from the JSON filter with FLT_E_UNLISTED */
};

struct flt_ndjson *flt_ndjson_new(uint32_t max_depth)
{
    struct flt_ndjson *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->json = flt_json_new(max_depth);
    if (f->json == NULL) {
        free(f);
        return NULL;
    }
    f->err = FLT_E_STATE; /* until reset */
    return f;
}

void flt_ndjson_del(struct flt_ndjson *f)
{
    if (f == NULL) return;
    flt_json_del(f->json);
    free(f);
}

void flt_ndjson_reset(struct flt_ndjson *f, const struct flt_json_config *cfg, flt_sink_fn sink,
                      void *ud, struct flt_report *report)
{
    f->cfg = *cfg;
    f->sink = sink;
    f->ud = ud;
    f->report = report;
    f->err = 0;
    f->finished = false;
    f->in_doc = false;
    f->unlisted = false;
}

const char *flt_ndjson_unlisted_path(const struct flt_ndjson *f)
{
    return f->unlisted ? flt_json_unlisted_path(f->json) : "";
}

static int fail(struct flt_ndjson *f, int r)
{
    f->err = r;
    f->unlisted = r == FLT_E_UNLISTED;
    return r;
}

/* Ends the current line's document. */
static int end_doc(struct flt_ndjson *f)
{
    int r = flt_json_finish(f->json);
    f->in_doc = false;
    if (r < 0) return r;
    if (f->sink(f->ud, "\n", 1) != 0) return FLT_E_SINK;
    return 0;
}

int flt_ndjson_feed(struct flt_ndjson *f, const char *p, size_t n)
{
    size_t i = 0;
    if (f->err) return f->err;
    if (f->finished) return FLT_E_STATE;
    while (i < n) {
        if (!f->in_doc) {
            /* skip white space and empty lines until a document starts */
            while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
                i++;
            if (i == n) break;
            flt_json_reset(f->json, &f->cfg, f->sink, f->ud, f->report);
            f->in_doc = true;
        }
        {
            const char *nl = memchr(p + i, '\n', n - i);
            size_t run = nl ? (size_t)(nl - (p + i)) : n - i;
            int r = flt_json_feed(f->json, p + i, run);
            if (r < 0) return fail(f, r);
            i += run;
            if (nl != NULL) {
                r = end_doc(f);
                if (r < 0) return fail(f, r);
                i++;
            }
        }
    }
    return 0;
}

int flt_ndjson_finish(struct flt_ndjson *f)
{
    if (f->err) return f->err;
    if (f->finished) return FLT_E_STATE;
    if (f->in_doc) {
        int r = end_doc(f);
        if (r < 0) return fail(f, r);
    }
    f->finished = true;
    return 0;
}
