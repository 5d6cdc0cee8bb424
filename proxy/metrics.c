/*
 * privgate proxy: the counters behind GET /metrics (SPEC 8), one table per
 * worker. Labels are provider names, outcomes and SPEC 5 codes: never a
 * value of a request.
 */
#include "proxy/gw.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* up to 30 s: the default upstream_timeout, so timeouts get a bucket of
 * their own instead of +Inf */
const double px__met_bounds[PX_MET_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,    1.0,   2.5,  5.0,   10.0, 30.0};

/* The provider's row (created on first use; the last row takes overflow).
 * Only the owning worker writes; a new row is filled, then published. */
static struct px_met_provider *row(struct px_metrics *m, const char *name)
{
    size_t np = atomic_load_explicit(&m->np, memory_order_relaxed);
    for (size_t i = 0; i < np; i++)
        if (strcmp(m->p[i].name, name) == 0) return &m->p[i];
    if (np == PX_MET_PROVIDERS) return &m->p[PX_MET_PROVIDERS - 1];
    struct px_met_provider *p = &m->p[np]; /* zeroed, not yet visible */
    snprintf(p->name, sizeof(p->name), "%s", name);
    atomic_store_explicit(&m->np, np + 1, memory_order_release);
    return p;
}

/*
 * The duration buckets as integer nanosecond thresholds, per thread (each
 * worker computes its own once, no lock): ns_min[b] is the smallest ns
 * with (double)ns / 1e9 > px__met_bounds[b]. That expression never
 * decreases as ns grows (a conversion and a division by a positive
 * constant, each rounded to nearest), so ns >= ns_min[b] picks exactly the
 * bucket the double comparison picked, without the conversion and the
 * division.
 */
static _Thread_local struct {
    bool ready;
    uint64_t ns_min[PX_MET_BUCKETS];
} T;

static bool secs_above(uint64_t ns, double bound)
{
    return (double)ns / 1e9 > bound;
}

static void buckets_init(void)
{
    for (size_t b = 0; b < PX_MET_BUCKETS; b++) {
        /* the first ns above the bound: above lo is false, at hi true */
        uint64_t lo = 0, hi = (uint64_t)(px__met_bounds[b] * 1e9) + 1000;
        while (!secs_above(hi, px__met_bounds[b]))
            hi *= 2;
        while (hi - lo > 1) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (secs_above(mid, px__met_bounds[b]))
                hi = mid;
            else
                lo = mid;
        }
        T.ns_min[b] = hi;
    }
    T.ready = true;
}

/* The request counter of (outcome, code) in |p|, or NULL when the
 * provider's table is full (the request is then not counted by code, as
 * before). */
static _Atomic uint64_t *req_counter(struct px_met_provider *p, const char *outcome,
                                     const char *code)
{
    size_t nreq = atomic_load_explicit(&p->nreq, memory_order_relaxed);
    size_t i;
    for (i = 0; i < nreq; i++)
        if (strcmp(p->req[i].outcome, outcome) == 0 && strcmp(p->req[i].code, code) == 0) break;
    if (i == nreq && nreq < PX_MET_CODES) {
        snprintf(p->req[i].outcome, sizeof(p->req[i].outcome), "%s", outcome);
        snprintf(p->req[i].code, sizeof(p->req[i].code), "%s", code);
        atomic_store_explicit(&p->nreq, ++nreq, memory_order_release);
    }
    return i < nreq ? &p->req[i].n : NULL;
}

void px__metrics_request(struct px_h2s *h)
{
    struct px_metrics *m = &h->w->met;
    const char *outcome = h->outcome ? h->outcome : "failed";
    const char *code = h->code ? h->code : "";
    uint64_t ns = px__h2s_elapsed_ns(h);
    if (!T.ready) buckets_init();
    struct px_met_provider *p = row(m, h->contract ? h->contract->provider : "");
    _Atomic uint64_t *n = req_counter(p, outcome, code);
    if (n) px__met_add(n, 1);
    if (h->contract) {
        px__met_add(&p->removed, h->d->report.removed.total);
        px__met_add(&p->transformed, h->d->report.transformed.total);
    }
    size_t b = 0;
    while (b < PX_MET_BUCKETS && ns >= T.ns_min[b])
        b++;
    px__met_add(&p->bucket[b], 1);
    px__met_add(&p->sum_ns, ns);
}

void px__metrics_up_error(struct px_h2s *h, enum px_up_err kind)
{
    struct px_metrics *m = &h->w->met;
    px__met_add(&row(m, h->contract ? h->contract->provider : "")->up_err[kind], 1);
}
