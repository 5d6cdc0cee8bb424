/*
 * privgate proxy: one worker thread — its loop, listeners, pools, the
 * deferred-flush list, rule-set hand-over and draining.
 *
 * Flushing: callbacks of one nghttp2 session often need the other session
 * to send (a DATA chunk read downstream resumes the upstream stream). A
 * session is never sent from inside another session's callback: it is
 * marked dirty and flushed from an idle handle on the next loop turn,
 * which also batches frames of many streams into one write.
 */
#include "proxy/gw.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ body pipes */

static struct px_chunk *chunk_get(struct px_worker *w)
{
    struct px_chunk *c;
    if (w->nchunk_stk) {
        c = w->chunk_stk[--w->nchunk_stk];
        w->nfree_chunks--;
    } else if ((c = w->free_chunks) != NULL) {
        w->free_chunks = c->next;
        w->nfree_chunks--;
    } else {
        c = malloc(sizeof(*c));
        if (!c) return NULL;
    }
    c->next = NULL;
    c->off = c->len = 0;
    return c;
}

static void chunk_put(struct px_worker *w, struct px_chunk *c)
{
    if (w->nfree_chunks >= 4096) { /* 64 MiB of idle chunks at most */
        free(c);
        return;
    }
    if (w->nchunk_stk < PX_CHUNK_STACK) {
        w->chunk_stk[w->nchunk_stk++] = c;
    } else {
        c->next = w->free_chunks;
        w->free_chunks = c;
    }
    w->nfree_chunks++;
}

void px__pipe_write(struct px_worker *w, struct px_pipe *p, const char *d, size_t n)
{
    p->total += n;
    while (n > 0) {
        struct px_chunk *t = p->tail;
        if (!t || t->len == PX_CHUNK_SIZE) {
            t = chunk_get(w);
            if (!t) {
                fputs("privgate: out of memory\n", stderr);
                abort();
            }
            if (p->tail)
                p->tail->next = t;
            else
                p->head = t;
            p->tail = t;
        }
        size_t k = PX_CHUNK_SIZE - t->len;
        if (k > n) k = n;
        memcpy(t->data + t->len, d, k);
        t->len += (uint32_t)k;
        p->bytes += k;
        d += k;
        n -= k;
    }
}

/* The head chunk of |p| was read to its end: to |keep| (whole: its bytes
 * may be sent again, px__up_retry) or back to the pool. */
static void chunk_done(struct px_worker *w, struct px_pipe *p, struct px_pipe *keep)
{
    struct px_chunk *c = p->head;
    p->head = c->next;
    if (!p->head) p->tail = NULL;
    if (!keep) {
        chunk_put(w, c);
        return;
    }
    c->next = NULL;
    if (keep->tail)
        keep->tail->next = c;
    else
        keep->head = c;
    keep->tail = c;
    keep->bytes += c->len;
    keep->total += c->len;
}

size_t px__pipe_read_keep(struct px_worker *w, struct px_pipe *p, uint8_t *buf, size_t cap,
                          struct px_pipe *keep)
{
    size_t done = 0;
    while (done < cap && p->head) {
        struct px_chunk *c = p->head;
        size_t k = c->len - c->off;
        if (k > cap - done) k = cap - done;
        memcpy(buf + done, c->data + c->off, k);
        c->off += (uint32_t)k;
        done += k;
        p->bytes -= k;
        if (c->off == c->len) chunk_done(w, p, keep);
    }
    return done;
}

size_t px__pipe_read(struct px_worker *w, struct px_pipe *p, uint8_t *buf, size_t cap)
{
    return px__pipe_read_keep(w, p, buf, cap, NULL);
}

void px__pipe_trim(struct px_worker *w, struct px_pipe *p, size_t n)
{
    if (n == 0 || !p->head) {
        px__pipe_clear(w, p);
        return;
    }
    struct px_chunk *c = p->head;
    size_t left = n;
    while (c->len - c->off < left && c->next) {
        left -= c->len - c->off;
        c = c->next;
    }
    if (c->len - c->off > left) c->len = c->off + (uint32_t)left;
    struct px_chunk *rest = c->next;
    c->next = NULL;
    p->tail = c;
    while (rest) {
        struct px_chunk *nx = rest->next;
        chunk_put(w, rest);
        rest = nx;
    }
    if (p->bytes > n) p->bytes = n;
}

ssize_t px__pipe_frame(const struct px_pipe *p, size_t len, uint32_t *flags)
{
    size_t n = p->bytes < len ? (size_t)p->bytes : len;
    if (n == p->bytes && p->eof)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return (ssize_t)n;
}

int px__send_data(struct px_worker *w, struct px_conn *c, const nghttp2_frame *f, const uint8_t *hd,
                  size_t len, struct px_pipe *p, struct px_pipe *keep)
{
    /* frames are never padded: no select_padding callback is set */
    if (c->closing || f->data.padlen) return NGHTTP2_ERR_CALLBACK_FAILURE;
    /* the bytes promised by the read callback are still there (they are
     * kept when the rest of the pipe is dropped, px__pipe_trim) */
    if (len > p->bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (!px_conn_reserve(c, 9 + len)) return NGHTTP2_ERR_WOULDBLOCK;
    px_conn_write(c, (const char *)hd, 9);
    while (len > 0) {
        struct px_chunk *ch = p->head;
        size_t k = ch->len - ch->off;
        if (k > len) k = len;
        px_conn_write(c, ch->data + ch->off, k);
        ch->off += (uint32_t)k;
        p->bytes -= k;
        len -= k;
        if (ch->off == ch->len) chunk_done(w, p, keep);
    }
    return 0;
}

void px__pipe_clear(struct px_worker *w, struct px_pipe *p)
{
    while (p->head) {
        struct px_chunk *c = p->head;
        p->head = c->next;
        chunk_put(w, c);
    }
    uint64_t total = p->total; /* kept for the audit record */
    memset(p, 0, sizeof(*p));
    p->total = total;
}

/* --------------------------------------------------------------- streams */

/* Idle exchanges not taken once in a whole PX_H2S_TRIM_MS are freed: the
 * free list shrinks back after a burst (each exchange holds about 130 KiB:
 * decision, body filters, zlib state) while a steady load keeps all it
 * uses (freeing on every return above a fixed count cost 2.4x the
 * instructions per request at 320 streams in flight). */
#define PX_H2S_TRIM_MS 30000

static void h2s_free(struct px_h2s *h)
{
    if (h->body) flt_body_del(h->body);
    free(h->d);
    free(h);
}

/* The overflow blocks of the header arrays (PX_MAX_HEADERS fields): the
 * request's rcbufs then views, the response's fields then rcbufs. */
struct h2s_req_ovf {
    nghttp2_rcbuf *rc[2 * PX_MAX_HEADERS + 4];
    struct ctr_header hdr[PX_MAX_HEADERS];
};
struct h2s_resp_ovf {
    nghttp2_nv rnv[PX_MAX_HEADERS + 2];
    nghttp2_rcbuf *rrc[2 * PX_MAX_HEADERS];
};

bool px__h2s_hdr_grow(struct px_h2s *h)
{
    if (h->nhdr >= PX_MAX_HEADERS) return false;
    if (h->hdr != h->hdr_in || h->nhdr < PX_HDR_INLINE) return true;
    struct h2s_req_ovf *o = px_pool_alloc(sizeof(*o));
    if (!o) return false;
    memcpy(o->rc, h->rc, h->nrc * sizeof(h->rc[0]));
    memcpy(o->hdr, h->hdr, h->nhdr * sizeof(h->hdr[0]));
    h->rc = o->rc;
    h->hdr = o->hdr;
    return true;
}

bool px__h2s_rnv_grow(struct px_h2s *h)
{
    /* rnv[0] is :status; px__h2s_respond appends the request id */
    if (h->nrnv >= PX_MAX_HEADERS) return false;
    if (h->rnv != h->rnv_in || h->nrnv < PX_RHDR_INLINE + 1) return true;
    struct h2s_resp_ovf *o = px_pool_alloc(sizeof(*o));
    if (!o) return false;
    memcpy(o->rnv, h->rnv, h->nrnv * sizeof(h->rnv[0]));
    memcpy(o->rrc, h->rrc, h->nrrc * sizeof(h->rrc[0]));
    h->rnv = o->rnv;
    h->rrc = o->rrc;
    return true;
}

struct px_h2s *px__h2s_get(struct px_worker *w)
{
    struct px_h2s *h = w->free_h2s;
    if (h) {
        w->free_h2s = h->next_free;
        w->nfree_h2s--;
        if (w->nfree_h2s < w->nfree_min) w->nfree_min = w->nfree_h2s;
    } else {
        /* the inline header arrays need no zeroing: they are only read
         * below their counts */
        h = malloc(sizeof(*h));
        if (!h) return NULL;
        h->d = malloc(sizeof(*h->d));
        if (!h->d) {
            free(h);
            return NULL;
        }
        h->body = NULL;
        h->body_depth = 0;
    }
    /* reset the scalar state (the first cache lines), keeping the pooled
     * resources */
    struct ctr_decision *d = h->d;
    struct flt_body *body = h->body;
    uint32_t depth = h->body_depth;
    memset(h, 0, offsetof(struct px_h2s, hdr_in));
    h->w = w;
    h->d = d;
    h->body = body;
    h->body_depth = depth;
    h->rc = h->rc_in;
    h->hdr = h->hdr_in;
    h->rnv = h->rnv_in;
    h->rrc = h->rrc_in;
    h->t0 = px__clock_ns(w);
    h->replay_ok = true;
    px__met_add(&w->met.active_streams, 1);
    return h;
}

void px__h2s_put(struct px_h2s *h)
{
    struct px_worker *w = h->w;
    for (size_t i = 0; i < h->nrc; i++)
        nghttp2_rcbuf_decref(h->rc[i]);
    for (size_t i = 0; i < h->nrrc; i++)
        nghttp2_rcbuf_decref(h->rrc[i]);
    h->nrc = h->nrrc = 0;
    if (h->rc != h->rc_in) px_pool_free(h->rc);    /* struct h2s_req_ovf: rc first */
    if (h->rnv != h->rnv_in) px_pool_free(h->rnv); /* struct h2s_resp_ovf: rnv first */
    h->rc = h->rc_in;
    h->rnv = h->rnv_in;
    if (h->errbody) {
        px_pool_free(h->errbody);
        h->errbody = NULL;
    }
    px__pipe_clear(w, &h->req);
    px__pipe_clear(w, &h->resp);
    px__pipe_clear(w, &h->replay);
    px__h2s_timer_stop(h);
    if (h->set) px__set_drop(w, h->set);
    h->set = NULL;
    px__met_sub(&w->met.active_streams, 1);
    h->next_free = w->free_h2s;
    w->free_h2s = h;
    w->nfree_h2s++;
}

static void trim_cb(uv_timer_t *t)
{
    struct px_worker *w = t->data;
    for (unsigned n = w->nfree_min; n > 0 && w->free_h2s; n--) {
        struct px_h2s *h = w->free_h2s;
        w->free_h2s = h->next_free;
        w->nfree_h2s--;
        h2s_free(h);
    }
    w->nfree_min = w->nfree_h2s;
}

/* ULID-like request id: 48-bit milliseconds + 80 random bits, Crockford
 * base32 (sortable by time, no personal data). */
static uint64_t rng_next(struct px_worker *w)
{
    uint64_t s1 = w->rng[0];
    const uint64_t s0 = w->rng[1];
    w->rng[0] = s0;
    s1 ^= s1 << 23;
    w->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return w->rng[1] + s0;
}

uint64_t px__clock_ns(struct px_worker *w)
{
    uint64_t ms = uv_now(&w->loop);
    if (w->clk_ns == 0 || w->clk_ms != ms) {
        w->clk_ns = uv_hrtime();
        w->clk_ms = ms;
    }
    return w->clk_ns;
}

uint64_t px__wall_ms(struct px_worker *w)
{
    uint64_t now = uv_now(&w->loop);
    if (w->wall_ms == 0 || w->wall_at != now) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        w->wall_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        w->wall_at = now;
    }
    return w->wall_ms;
}

void px__request_id(struct px_worker *w, char out[27])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    /* the loop iteration's millisecond: the ids stay sortable by time */
    uint64_t ms = px__wall_ms(w);
    uint64_t r1 = rng_next(w), r2 = rng_next(w);
    /* 10 chars of time (50 bits, top 2 zero), encoded once per millisecond,
     * 16 chars of randomness */
    if (ms != w->rid_ms || ms == 0) {
        w->rid_ms = ms;
        for (int i = 9; i >= 0; i--) {
            w->rid_time[i] = b32[ms & 31];
            ms >>= 5;
        }
    }
    memcpy(out, w->rid_time, 10);
    for (int i = 0; i < 8; i++) {
        out[10 + i] = b32[r1 & 31];
        out[18 + i] = b32[r2 & 31];
        r1 >>= 5;
        r2 >>= 5;
    }
    out[26] = '\0';
}

SSL_CTX *px__client_ctx(struct px_worker *w, const char *ca, char *err, size_t errlen)
{
    for (size_t i = 0; i < w->nctxs; i++) {
        const char *c = w->ctxs[i].ca;
        if ((!c && !ca) || (c && ca && strcmp(c, ca) == 0)) return w->ctxs[i].ctx;
    }
    SSL_CTX *ctx = px_tls_client_ctx(ca, err, errlen);
    if (!ctx) return NULL;
    if (w->nctxs < sizeof(w->ctxs) / sizeof(w->ctxs[0])) {
        w->ctxs[w->nctxs].ca = ca ? strdup(ca) : NULL;
        w->ctxs[w->nctxs].ctx = ctx;
        w->nctxs++;
    } else {
        /* cache full: replace the last entry (rare: > 16 distinct CAs) */
        struct px_ctx_cache *e = &w->ctxs[w->nctxs - 1];
        SSL_CTX_free(e->ctx);
        free(e->ca);
        e->ca = ca ? strdup(ca) : NULL;
        e->ctx = ctx;
    }
    return ctx;
}

/* ------------------------------------------------------------ flushing */

static void idle_cb(uv_idle_t *h);
static void check_drained(struct px_worker *w);

void px__sess_dirty(struct px_sess *s)
{
    if (s->dirty || s->dead) return;
    s->dirty = true;
    s->dirty_next = s->w->dirty;
    s->w->dirty = s;
    uv_idle_start(&s->w->idle, idle_cb);
}

static void idle_cb(uv_idle_t *h)
{
    struct px_worker *w = h->data;
    px__clock_tick(w); /* the exchanges this flush ends share one end time */
    /* bounded: sessions marked dirty while flushing wait for the next turn */
    struct px_sess *list = w->dirty;
    w->dirty = NULL;
    while (list) {
        struct px_sess *s = list;
        list = s->dirty_next;
        s->dirty = false;
        s->dirty_next = NULL;
        if (s->dead) continue;
        if (!s->is_up && ((struct px_down *)s)->h1) { /* HTTP/1.1 downstream */
            if (px__h1_flush((struct px_down *)s) != 0) px__down_kill((struct px_down *)s);
            continue;
        }
        if (!s->s) continue;
        int rv = px_h2_flush(s->s, &s->conn);
        /* an upstream session nghttp2 ended for the provider's connection
         * error (up.c on_frame_send) goes now, even if its GOAWAY is still
         * queued: the provider broke the protocol */
        if (s->is_up && ((struct px_up *)s)->proto_err)
            px__up_kill((struct px_up *)s, "protocol");
        else if (rv != 0 && s->is_up)
            px__up_kill((struct px_up *)s, "connect");
        else if (rv != 0)
            px__down_kill((struct px_down *)s);
    }
    if (!w->dirty) uv_idle_stop(&w->idle);
    if (w->draining) check_drained(w);
}

/* -------------------------------------------------------------- lifecycle */

static void on_connection(uv_stream_t *server, int status)
{
    struct px_worker *w = server->loop->data;
    if (status < 0 || w->draining) return;
    size_t i = (size_t)((uv_tcp_t *)server - w->lst);
    px__down_accept(w, server, w->gw->listeners[i].ctx);
}

void px__sess_undirty(struct px_sess *s)
{
    /* a dead session is freed by its close callbacks, before the next idle
     * turn: it must not stay on the list. (Sessions on the list idle_cb is
     * walking are not on w->dirty, and stay valid until idle_cb returns.) */
    if (!s->dirty) return;
    for (struct px_sess **pp = &s->w->dirty; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == s) {
            *pp = s->dirty_next;
            s->dirty = false;
            s->dirty_next = NULL;
            return;
        }
    }
    /* not found: it is on idle_cb's list, which skips dead sessions */
}

static void audit_wake_cb(uv_prepare_t *p)
{
    struct px_worker *w = p->data;
    w->audit_wake_on = false;
    uv_prepare_stop(p);
    px__audit_wake();
}

/* Before this iteration's wait for I/O, the audit writer is woken if it
 * sleeps: records published in this iteration never wait for the next. */
void px__worker_audit_wake_later(struct px_worker *w)
{
    if (w->audit_wake_on || uv_is_closing((uv_handle_t *)&w->audit_wake)) return;
    w->audit_wake_on = true;
    uv_prepare_start(&w->audit_wake, audit_wake_cb);
}

void px__worker_poke(struct px_worker *w)
{
    /* runs idle_cb on the next turn: it checks whether a drain is done */
    if (!uv_is_closing((uv_handle_t *)&w->idle)) uv_idle_start(&w->idle, idle_cb);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void finish(struct px_worker *w)
{
    /* every connection is gone: close what is left and let the loop end */
    struct px_up *u = w->ups;
    while (u) {
        struct px_up *n = u->next;
        px__up_kill(u, "connect");
        u = n;
    }
    if (w->ups) return; /* wait for their close callbacks */
    uv_walk(&w->loop, close_walk, NULL);
}

static void check_drained(struct px_worker *w)
{
    if (w->downs == NULL) finish(w);
}

static void drain_deadline(uv_timer_t *t)
{
    struct px_worker *w = t->data;
    struct px_down *d = w->downs;
    while (d) {
        struct px_down *n = d->next;
        px__down_kill(d);
        d = n;
    }
    check_drained(w);
}

static void start_drain(struct px_worker *w)
{
    if (w->draining) return;
    w->draining = true;
    for (size_t i = 0; i < w->nlst; i++)
        uv_close((uv_handle_t *)&w->lst[i], NULL);
    for (struct px_down *d = w->downs, *n; d; d = n) {
        n = d->next; /* a connection whose protocol is not known yet is closed */
        px__down_goaway(d);
    }
    uint64_t deadline = w->set ? w->set->config.limits.upstream_timeout_ms : 30000;
    if (deadline < 1000) deadline = 1000;
    uv_timer_start(&w->drain_timer, drain_deadline, deadline, 0);
    uv_unref((uv_handle_t *)&w->drain_timer);
    uv_unref((uv_handle_t *)&w->async);
    check_drained(w);
}

/* A set a reload replaced, still used by |users| exchanges of the worker. */
struct px_set_retired {
    struct px_set_retired *next;
    struct ctr_set *set;
    uint32_t users;
};

struct ctr_set *px__set_take(struct px_worker *w)
{
    w->set_users++;
    return w->set;
}

void px__set_drop(struct px_worker *w, struct ctr_set *set)
{
    if (set == w->set) {
        w->set_users--;
        return;
    }
    for (struct px_set_retired **pp = &w->retired; *pp; pp = &(*pp)->next) {
        struct px_set_retired *r = *pp;
        if (r->set != set) continue;
        if (--r->users == 0) {
            *pp = r->next;
            ctr_set_unref(r->set);
            free(r);
        }
        return;
    }
}

/* Gives up the worker's reference to |old| now if no exchange uses it,
 * else when the last one is released. */
static void set_retire(struct px_worker *w, struct ctr_set *old, uint32_t users)
{
    if (!old) return;
    if (users == 0) {
        ctr_set_unref(old);
        return;
    }
    struct px_set_retired *r = malloc(sizeof(*r));
    if (!r) {
        /* out of memory on a reload: keep the set for the worker's life
         * (an atomic reference the exchanges no longer count down) */
        return;
    }
    r->set = old;
    r->users = users;
    r->next = w->retired;
    w->retired = r;
}

static void async_cb(uv_async_t *a)
{
    struct px_worker *w = a->data;
    struct ctr_set *n = atomic_exchange(&w->next_set, NULL);
    if (n) {
        struct ctr_set *old = w->set;
        w->set = n;
        set_retire(w, old, w->set_users);
        w->set_users = 0;
        /* up.c's cached pool key holds the old set (its secrets, keys)
         * alive: let it go with the set, not at the next request */
        if (w->key_set) ctr_set_unref(w->key_set);
        w->key_set = NULL;
        w->key_up = NULL;
    }
    if (atomic_load(&w->stop)) start_drain(w);
}

static void worker_main(void *arg)
{
    struct px_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        fprintf(stderr, "privgate: worker %u: loop not closed cleanly\n", w->idx);
    while (w->free_h2s) {
        struct px_h2s *h = w->free_h2s;
        w->free_h2s = h->next_free;
        h2s_free(h);
    }
    while (w->nchunk_stk)
        free(w->chunk_stk[--w->nchunk_stk]);
    while (w->free_chunks) {
        struct px_chunk *c = w->free_chunks;
        w->free_chunks = c->next;
        free(c);
    }
    for (size_t i = 0; i < w->nctxs; i++) {
        SSL_CTX_free(w->ctxs[i].ctx);
        free(w->ctxs[i].ca);
    }
    if (w->set) ctr_set_unref(w->set);
    w->set = NULL;
    while (w->retired) { /* none once every exchange is released; never leak one */
        struct px_set_retired *r = w->retired;
        w->retired = r->next;
        ctr_set_unref(r->set);
        free(r);
    }
    if (w->key_set) ctr_set_unref(w->key_set); /* up.c's cached pool key */
    w->key_set = NULL;
    px_pool_thread_release(); /* every session and connection of the worker is gone */
    atomic_fetch_add(&w->gw->workers_done, 1);
    uv_async_send(&w->gw->done_async);
}

int px__worker_start(struct px_worker *w)
{
    int rv = uv_loop_init(&w->loop);
    if (rv != 0) return rv;
    w->loop.data = w;
    uint64_t seed[2] = {0, 0};
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        seed[0] = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        seed[1] = (uint64_t)w->idx * 0x9e3779b97f4a7c15u + 1;
    }
    w->rng[0] = seed[0] | 1;
    w->rng[1] = seed[1] | 2;
    uv_async_init(&w->loop, &w->async, async_cb);
    w->async.data = w;
    uv_idle_init(&w->loop, &w->idle);
    w->idle.data = w;
    uv_prepare_init(&w->loop, &w->audit_wake);
    w->audit_wake.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_init(&w->loop, &w->tq_timer);
    w->tq_timer.data = w;
    /* never what keeps the loop running: the connections are */
    uv_unref((uv_handle_t *)&w->tq_timer);
    uv_timer_start(&w->trim_timer, trim_cb, PX_H2S_TRIM_MS, PX_H2S_TRIM_MS);
    uv_unref((uv_handle_t *)&w->trim_timer); /* never what keeps the loop running */
    w->lst = calloc(w->nlst ? w->nlst : 1, sizeof(*w->lst));
    if (!w->lst) return UV_ENOMEM;
    for (size_t i = 0; i < w->nlst; i++) {
        uv_tcp_init(&w->loop, &w->lst[i]);
        rv = uv_tcp_open(&w->lst[i], w->fds[i]);
        if (rv == 0) rv = uv_listen((uv_stream_t *)&w->lst[i], 511, on_connection);
        if (rv != 0) return rv;
    }
    return uv_thread_create(&w->thread, worker_main, w);
}
