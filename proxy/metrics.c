/*
 * privgate proxy: the counters behind GET /metrics (SPEC 8), one table per
 * worker. Labels are provider names, outcomes and SPEC 5 codes: never a
 * value of a request.
 */
#include "proxy/gw.h"

#include <stdio.h>
#include <string.h>

const double px__met_bounds[PX_MET_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

/* The provider's row (created on first use; the last row takes overflow). */
static struct px_met_provider *row(struct px_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->np; i++)
        if (strcmp(m->p[i].name, name) == 0) return &m->p[i];
    if (m->np == PX_MET_PROVIDERS) return &m->p[PX_MET_PROVIDERS - 1];
    struct px_met_provider *p = &m->p[m->np++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

void px__metrics_request(struct px_h2s *h)
{
    struct px_metrics *m = &h->w->met;
    const char *outcome = h->outcome ? h->outcome : "failed";
    const char *code = h->code ? h->code : "";
    double secs = (double)(uv_hrtime() - h->t0) / 1e9;
    pthread_mutex_lock(&m->mu);
    struct px_met_provider *p = row(m, h->contract ? h->contract->provider : "");
    size_t i;
    for (i = 0; i < p->nreq; i++)
        if (strcmp(p->req[i].outcome, outcome) == 0 && strcmp(p->req[i].code, code) == 0) break;
    if (i == p->nreq && p->nreq < PX_MET_CODES) {
        snprintf(p->req[i].outcome, sizeof(p->req[i].outcome), "%s", outcome);
        snprintf(p->req[i].code, sizeof(p->req[i].code), "%s", code);
        p->nreq++;
    }
    if (i < p->nreq) p->req[i].n++;
    if (h->contract) {
        p->removed += h->d->report.removed.total;
        p->transformed += h->d->report.transformed.total;
    }
    for (size_t b = 0; b < PX_MET_BUCKETS; b++)
        if (secs <= px__met_bounds[b]) p->bucket[b]++;
    p->count++;
    p->sum += secs;
    pthread_mutex_unlock(&m->mu);
}

void px__metrics_up_error(struct px_h2s *h, enum px_up_err kind)
{
    struct px_metrics *m = &h->w->met;
    pthread_mutex_lock(&m->mu);
    row(m, h->contract ? h->contract->provider : "")->up_err[kind]++;
    pthread_mutex_unlock(&m->mu);
}
