/* ctr_run: one whole in-memory request (privgate filter, privgate test). */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "contracts/int.h"

static int sink_buf(void *ud, const char *p, size_t n)
{
    struct ctr__buf *b = ud;
    ctr__buf_add(b, p, n);
    return b->oom ? -1 : 0;
}

static int run_refuse(struct ctr_result *r, int err, const char *what)
{
    struct ctr_decision *d = &r->d;
    d->status = ctr_status_for(err);
    d->error = flt_errcode(err);
    snprintf(d->message, sizeof d->message, "%s: %s", what, flt_strerror(err));
    return d->status;
}

int ctr_run(const struct ctr_config *cfg, const struct ctr_contract *c,
            const struct ctr_request *req, const char *body, size_t body_len, struct ctr_result *r)
{
    r->body = NULL;
    r->body_len = 0;
    struct ctr_decision *d = &r->d;
    if (ctr_decide(cfg, c, req, d)) return d->status;
    struct ctr__buf out = {0};
    switch (d->body_kind) {
    case CTR_BODY_NONE:
        if (body_len) return run_refuse(r, FLT_E_BODY_NOT_ALLOWED, "body");
        break;
    case CTR_BODY_OPAQUE:
        if (body_len > cfg->limits.max_body) return run_refuse(r, FLT_E_TOO_LARGE, "body");
        ctr__buf_add(&out, body, body_len);
        break;
    case CTR_BODY_FIELDS: {
        if (!body_len) break; /* nothing to filter, nothing forwarded */
        if (d->body.media == FLT_MEDIA_NONE)
            return run_refuse(r, FLT_E_MEDIA_TYPE, "body without content-type");
        struct flt_body *fb = flt_body_new(cfg->limits.max_depth);
        if (!fb) return run_refuse(r, FLT_E_NOMEM, "body");
        flt_body_reset(fb, &d->body, sink_buf, &out, &d->report);
        int e = flt_body_feed(fb, body, body_len);
        if (e == 0) e = flt_body_finish(fb);
        if (e < 0) {
            if (e == FLT_E_UNLISTED) {
                const char *u = flt_body_unlisted_path(fb);
                d->status = 422;
                d->error = "unlisted_field";
                snprintf(d->message, sizeof d->message, "field not listed in the contract: %s",
                         u && *u ? u : "(unknown)");
            } else {
                run_refuse(r, e, "body");
            }
            flt_body_del(fb);
            ctr__buf_free(&out);
            return d->status;
        }
        flt_body_del(fb);
        break;
    }
    }
    ctr__buf_add(&out, "", 0); /* always a NUL-terminated buffer */
    if (out.oom) {
        ctr__buf_free(&out);
        return run_refuse(r, FLT_E_NOMEM, "body");
    }
    r->body = out.p;
    r->body_len = out.len;
    return 0;
}

void ctr_result_free(struct ctr_result *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}
