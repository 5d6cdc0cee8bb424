/*
 * privgate proxy: the upstream side — a per-worker pool of HTTP/2 client
 * connections to the providers (TLS with verification and ALPN h2, or
 * cleartext h2c for `insecure: true` http:// upstreams), each carrying
 * many streams. A provider that answers ALPN with http/1.1 (or none), or a
 * contract with `protocol: http/1.1`, gets HTTP/1.1 connections instead:
 * the same px_up, driven by h1up.c.
 *
 * A connection is identified by scheme, host, port, SNI name and CA file:
 * contracts that point at the same upstream share it, and a reloaded
 * contract keeps using the connections of the one it replaces. A stream
 * waits in |pending| while its connection connects; a connection that has
 * received GOAWAY, or whose peer's MAX_CONCURRENT_STREAMS is reached, takes
 * no new streams and a new one is opened.
 */
#include "proxy/gw.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px__h2s_respond(struct px_h2s *h, bool end);
void px__h2s_resp_data(struct px_h2s *h, const uint8_t *p, size_t n);
void px__h2s_resp_end(struct px_h2s *h);

static void list_remove(struct px_h2s **head, struct px_h2s *h)
{
    if (h->uprev)
        h->uprev->unext = h->unext;
    else
        *head = h->unext;
    if (h->unext) h->unext->uprev = h->uprev;
    h->uprev = h->unext = NULL;
}

static void list_push(struct px_h2s **head, struct px_h2s *h)
{
    h->uprev = NULL;
    h->unext = *head;
    if (*head) (*head)->uprev = h;
    *head = h;
}

/* The last (oldest) element of a list, or NULL. */
static struct px_h2s *list_tail(struct px_h2s *head)
{
    while (head && head->unext)
        head = head->unext;
    return head;
}

static void idle_cb(uv_timer_t *t);

/* An upstream connection without streams for idle_timeout is closed. */
static void up_idle_check(struct px_up *u)
{
    if (u->base.dead || u->state == PX_UP_CONNECTING) return;
    if (u->pending || u->active) {
        uv_timer_stop(&u->ctimer);
        return;
    }
    uint64_t ms = u->base.w->set ? u->base.w->set->config.limits.idle_timeout_ms : 0;
    if (ms) uv_timer_start(&u->ctimer, idle_cb, ms, 0);
}

void px__up_detach(struct px_h2s *h)
{
    struct px_up *u = h->uc;
    if (!u) return;
    bool was_active = false;
    if (h->in_pending) {
        list_remove(&u->pending, h);
        h->in_pending = false;
        u->npending--;
    } else if (h->in_active) {
        list_remove(&u->active, h);
        h->in_active = false;
        u->nactive--;
        was_active = true;
    }
    h->uc = NULL;
    h->req_promised = 0; /* a DATA frame framed on |u|'s closed stream is dropped unsent */
    if (u->h1 && was_active) px__h1up_detached(u);
    up_idle_check(u);
}

/* HTTP/1.1 (h1up.c): |h| waiting in its connection's |pending| starts. */
void px__up_activate(struct px_h2s *h)
{
    struct px_up *u = h->uc;
    list_remove(&u->pending, h);
    h->in_pending = false;
    u->npending--;
    list_push(&u->active, h);
    h->in_active = true;
    u->nactive++;
    h->up_open = true;
    up_idle_check(u);
}

/* HTTP/1.1 (h1up.c): |h| waits on connection |to| instead. */
void px__up_move(struct px_h2s *h, struct px_up *to)
{
    px__up_detach(h);
    h->uc = to;
    list_push(&to->pending, h);
    h->in_pending = true;
    to->npending++;
    up_idle_check(to);
}

/* ------------------------------------------------------------- lifetime */

void px__up_unref(struct px_up *u)
{
    if (--u->handles > 0) return;
    if (u->h1) px__h1up_free(u->h1);
    free(u->key);
    free(u->host);
    free(u->sni);
    free(u->ca);
    free(u);
}

static void up_conn_closed(struct px_conn *c)
{
    px__up_unref(c->ud);
}

static void up_timer_closed(uv_handle_t *hd)
{
    px__up_unref(hd->data);
}

/* How often a stream that never left may move to another connection: a
 * provider that closes (or sends GOAWAY on) every new connection at once
 * must not make it reconnect forever. */
#define PX_UP_MOVES_MAX 3

/* Streams waiting on |u| whose request never left (no HEADERS submitted)
 * were not seen by the provider: they go to another connection of the pool
 * (a new one when none can take them; |u| itself takes none any more). */
static void up_move_pending(struct px_up *u, const char *why)
{
    while (u->pending) {
        struct px_h2s *h = u->pending;
        px__up_detach(h);
        /* (HTTP/1.1: a queued request moves whenever the connection it
         * waits behind closes, which is normal with `connection: close`) */
        if (!u->h1 && h->moves >= PX_UP_MOVES_MAX) {
            px__h2s_up_gone(h, why);
            px__h2s_maybe_release(h);
            continue;
        }
        if (!u->h1) h->moves++;
        h->up_submitted = false;
        if (px__up_attach(h) != 0) px__h2s_maybe_release(h);
    }
}

void px__up_kill(struct px_up *u, const char *why)
{
    if (u->base.dead) return;
    /* a connection that was established (not one that failed to connect:
     * a new one would most likely fail the same way) hands its waiting
     * streams over */
    bool move =
        u->h1 || (u->settings_seen && (u->state == PX_UP_READY || u->state == PX_UP_GOAWAY));
    u->base.dead = true;
    u->state = PX_UP_DEAD;
    u->why = why;
    struct px_worker *w = u->base.w;
    px__sess_undirty(&u->base);
    if (u->prev)
        u->prev->next = u->next;
    else
        w->ups = u->next;
    if (u->next) u->next->prev = u->prev;
    u->prev = u->next = NULL;
    if (move) up_move_pending(u, why); /* HTTP/1.1: queued behind an exchange */
    while (u->pending) {
        struct px_h2s *h = u->pending;
        px__up_detach(h);
        px__h2s_up_gone(h, why);
        px__h2s_maybe_release(h);
    }
    while (u->active) {
        struct px_h2s *h = u->active;
        px__up_detach(h);
        h->up_open = false;
        px__h2s_up_gone(h, strcmp(why, "protocol") == 0 ? why : "reset");
        px__h2s_maybe_release(h);
    }
    if (u->base.s) {
        nghttp2_session_del(u->base.s);
        u->base.s = NULL;
    }
    if (u->h1) px__h1up_kill(u);
    if (u->gai_pending) uv_cancel((uv_req_t *)&u->gai);
    uv_timer_stop(&u->ctimer);
    uv_close((uv_handle_t *)&u->ctimer, up_timer_closed);
    px_conn_close(&u->base.conn);
}

/* -------------------------------------------------------- session callbacks */

static bool streq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

/* RFC 9110 7.6.1 / RFC 9113 8.2.2: connection-specific fields. */
static bool hop_by_hop(const char *p, size_t n)
{
    /* by length first: most names are none of these */
    if (n != 2 && n != 7 && n != 10 && n != 16 && n != 17 && n != 19) return false;
    return streq(p, n, "connection") || streq(p, n, "keep-alive") ||
           streq(p, n, "proxy-connection") || streq(p, n, "transfer-encoding") ||
           streq(p, n, "upgrade") || streq(p, n, "te") || streq(p, n, "privgate-request-id");
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    struct px_up *u = ud;
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    struct px_h2s *h;
    if (u->hdr_h && u->hdr_id == f->hd.stream_id) {
        h = u->hdr_h;
    } else {
        h = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        u->hdr_h = h;
        u->hdr_id = f->hd.stream_id;
    }
    if (!h || h->responded || h->finished) return 0; /* trailers and late heads are dropped */
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    const char *np = (const char *)n.base;
    if (n.len > 0 && np[0] == ':') {
        if (streq(np, n.len, ":status") && v.len == 3) {
            memcpy(h->rstatus, v.base, 3);
            h->rstatus[3] = '\0';
            if (h->rstatus[0] == '1') {
                /* interim response: forget what came with it */
                for (size_t i = 0; i < h->nrrc; i++)
                    nghttp2_rcbuf_decref(h->rrc[i]);
                h->nrrc = 0;
                h->nrnv = 0;
                return 0;
            }
            h->rnv[0].name = (uint8_t *)":status";
            h->rnv[0].namelen = 7;
            h->rnv[0].value = (uint8_t *)h->rstatus;
            h->rnv[0].valuelen = 3;
            h->rnv[0].flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
            if (h->nrnv == 0) h->nrnv = 1;
        }
        return 0;
    }
    /* the fields of an interim (1xx) response are not forwarded: its
     * :status came first (RFC 9113 8.3), the final response's resets it */
    if (h->rstatus[0] == '1') return 0;
    if (hop_by_hop(np, n.len)) return 0;
    if (h->nrnv == 0) h->nrnv = 1; /* slot 0 is :status */
    if (!px__h2s_rnv_room(h)) {
        h->rhead_bad = true;
        return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    h->rrc[h->nrrc++] = name;
    h->rrc[h->nrrc++] = value;
    nghttp2_nv *nv = &h->rnv[h->nrnv++];
    nv->name = n.base;
    nv->namelen = n.len;
    nv->value = v.base;
    nv->valuelen = v.len;
    /* the downstream session serialises the response head later, from
     * these rcbufs: they are kept (h->rrc) until |h| is released, which
     * is after its downstream stream closed (a HEADERS still queued for a
     * closed stream is dropped unread). Names are lower case (nghttp2
     * refuses others). A field the provider sent "never indexed" goes on
     * the same way (RFC 7541 6.2.3: intermediaries keep that encoding). */
    nv->flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE |
                (flags & NGHTTP2_NV_FLAG_NO_INDEX);
    return 0;
}

static void up_settings(struct px_up *u);

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct px_up *u = ud;
    if (f->hd.type == NGHTTP2_SETTINGS) {
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) && !u->settings_seen) up_settings(u);
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY) {
        if (u->state == PX_UP_READY) u->state = PX_UP_GOAWAY;
        /* |u| takes no new stream: the ones still waiting for their
         * first body byte (or for room) would never leave */
        if (u->state == PX_UP_GOAWAY) up_move_pending(u, "reset");
        return 0;
    }
    if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!h) return 0;
    bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (f->hd.type == NGHTTP2_HEADERS && !h->responded && !h->finished && h->rstatus[0] &&
        h->rstatus[0] != '1') {
        if (h->rhead_bad || h->nrnv == 0) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_CANCEL);
            px__h2s_up_gone(h, "protocol");
            return 0;
        }
        if (end) h->up_end_seen = true;
        px__h2s_respond(h, end);
        /* the head has been handed on; its rcbufs stay with |h| (released
         * by px__h2s_put): an HTTP/2 downstream reads them when it
         * serialises the head (NGHTTP2_NV_FLAG_NO_COPY_*, on_header). An
         * rcbuf keeps its own copy of the allocator, so releasing it after
         * this session is gone is safe. */
        h->nrnv = 0;
        return 0;
    }
    if (end) px__h2s_resp_end(h);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    struct px_up *u = ud;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, id);
    px__sess_dirty(&u->base);
    if (!h) {
        if (nghttp2_session_consume(s, id, len) != 0) nghttp2_session_consume_connection(s, len);
        return 0;
    }
    px__h2s_resp_data(h, data, len);
    return 0;
}

/* RFC 9113 8.7: a stream refused by the provider (REFUSED_STREAM, or above
 * the last stream id of its GOAWAY) was not processed, so it may be sent
 * again — once, and only while no body byte left for the provider (the
 * request pipe still holds the whole filtered body). */
static bool retry_refused(struct px_h2s *h, uint32_t code)
{
    return code == NGHTTP2_REFUSED_STREAM && px__up_retry(h);
}

/* Sends |h| (detached, not processed by the provider) again, once. Also
 * used by h1up.c for a reused keep-alive connection that the provider
 * closed before answering. */
bool px__up_retry(struct px_h2s *h)
{
    if (h->retries > 0 || (h->req_sent > 0 && !h->replay_ok) || h->finished || h->responded ||
        !h->down_open || !h->contract)
        return false;
    h->retries++;
    if (h->req_sent > 0) {
        /* the bytes already sent go back in front: the chunks read to
         * their end (kept in |replay|), and the start of the one being
         * read (its bytes before |off|) */
        for (struct px_chunk *c = h->replay.head; c; c = c->next)
            c->off = 0;
        if (h->req.head) h->req.head->off = 0;
        if (h->replay.head) {
            h->replay.tail->next = h->req.head;
            h->req.head = h->replay.head;
            if (!h->req.tail) h->req.tail = h->replay.tail;
        }
        h->req.bytes += h->req_sent;
        h->replay.head = h->replay.tail = NULL;
        h->replay.bytes = h->replay.total = 0;
    }
    h->req_sent = 0;
    h->up_submitted = false;
    px__h2s_timer_stop(h);
    return px__up_attach(h) == 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    struct px_up *u = ud;
    if (u->hdr_id == id) u->hdr_h = NULL;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, id);
    if (!h) return 0;
    /* (its user data needs no clearing: nghttp2 finds no closed stream) */
    if (!h->in_active || h->up_id != id || !h->uc || h->uc->base.s != s)
        return 0; /* already handled (on_not_send), or retried on another connection */
    h->up_open = false;
    px__up_detach(h);
    if (retry_refused(h, code)) return 0;
    px__h2s_up_gone(h, "reset");
    px__h2s_maybe_release(h);
    return 0;
}

/* A request HEADERS that could not be sent (the connection received GOAWAY
 * before it left) never opened a stream, so no stream-close callback
 * follows: the request was not processed and is handled as refused. */
static int on_not_send(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    (void)s;
    (void)err;
    struct px_up *u = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    struct px_h2s *h = u->active;
    while (h && h->up_id != f->hd.stream_id)
        h = h->unext;
    if (!h) return 0;
    h->up_open = false;
    px__up_detach(h);
    if (u->proto_err) {
        /* not sent because the provider broke the protocol (the GOAWAY
         * that ended the session went first): that is the answer */
        px__h2s_up_gone(h, "protocol");
        px__h2s_maybe_release(h);
        return 0;
    }
    if (!retry_refused(h, NGHTTP2_REFUSED_STREAM)) {
        px__h2s_up_gone(h, "reset");
        px__h2s_maybe_release(h);
    }
    return 0;
}

/* Request body for the upstream, from the request pipe without a copy:
 * the read callback only says how many bytes the DATA frame carries
 * (NGHTTP2_DATA_FLAG_NO_COPY), up_send_data writes them from the pipe's
 * chunks straight into the connection's output. */
static ssize_t req_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)buf;
    (void)ud;
    struct px_h2s *h = src->ptr;
    ssize_t n = px__pipe_frame(&h->req, len, flags);
    if (n >= 0) h->req_promised = (size_t)n;
    return n;
}

static int up_send_data(nghttp2_session *s, nghttp2_frame *f, const uint8_t *hd, size_t len,
                        nghttp2_data_source *src, void *ud)
{
    (void)s;
    struct px_up *u = ud;
    struct px_h2s *h = src->ptr;
    /* the chunks sent stay with |h| while it may be sent again */
    int rv =
        px__send_data(h->w, &u->base.conn, f, hd, len, &h->req, h->replay_ok ? &h->replay : NULL);
    if (rv != 0) return rv;
    h->req_promised = 0;
    h->req_sent += len;
    if (h->replay_ok && h->req_sent > PX_REPLAY_MAX) {
        px__pipe_clear(h->w, &h->replay);
        h->replay_ok = false;
    }
    if (h->req.unconsumed && h->req.bytes < PX_PIPE_HIGH && h->dc && h->down_open)
        h->dc->proto->credit(h); /* HTTP/2 or HTTP/1.1 downstream */
    return 0;
}

/* nghttp2 handles a connection error of the provider (a first frame that
 * is not SETTINGS, an oversized frame, bytes that are not HTTP/2) itself:
 * mem_recv queues a GOAWAY with the error code and succeeds. Sending that
 * GOAWAY is where the gateway learns the provider broke the protocol; the
 * flush that sent it kills |u| as "protocol" (worker.c idle_cb), not as
 * an unreachable provider. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    struct px_up *u = ud;
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR)
        u->proto_err = true;
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *ud)
{
    (void)s;
    (void)ud;
    /* only the code: nghttp2's message can quote a header's value */
    (void)msg;
    (void)len;
    if (getenv("PRIVGATE_DEBUG_H2"))
        fprintf(stderr, "privgate: upstream h2 error %d: %s\n", code, nghttp2_strerror(code));
    return 0;
}

static int on_invalid(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud)
{
    (void)s;
    (void)ud;
    if (getenv("PRIVGATE_DEBUG_H2"))
        fprintf(stderr, "privgate: upstream invalid frame type %d stream %d: %s\n", f->hd.type,
                f->hd.stream_id, nghttp2_strerror(err));
    return 0;
}

nghttp2_session_callbacks *px__up_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return NULL;
    nghttp2_session_callbacks_set_send_callback(cb, px_h2_send_cb);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_error);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cb, on_not_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, up_send_data);
    return cb;
}

/* ------------------------------------------------------------ submitting */

/* Decimal digits of |v| at |o| (no terminator); returns their count. */
static size_t put_u64(char *o, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        o[i] = t[n - 1 - i];
    return n;
}

static size_t put_str(char *o, size_t at, size_t cap, const char *s)
{
    size_t l = strlen(s);
    if (at < cap) {
        if (l > cap - at) l = cap - at;
        memcpy(o + at, s, l);
    }
    return at + l;
}

/* A connection's identity in the pool: "scheme://host:port|sni|ca|proto".
 * Built once per request, by hand: snprintf cost about 2,000
 * instructions, 3 % of a filtered 1 KiB request. Truncated to |cap| - 1
 * (like snprintf; a 1 KiB key is far above any real host and CA path). */
static void up_key(const struct ctr_upstream *up, char *key, size_t cap)
{
    char num[24];
    size_t k = 0, m = cap - 1;
    k = put_str(key, k, m, up->scheme ? up->scheme : "https");
    k = put_str(key, k, m, "://");
    k = put_str(key, k, m, up->host);
    k = put_str(key, k, m, ":");
    num[put_u64(num, up->port)] = '\0';
    k = put_str(key, k, m, num);
    k = put_str(key, k, m, "|");
    k = put_str(key, k, m, up->server_name ? up->server_name : "");
    k = put_str(key, k, m, "|");
    k = put_str(key, k, m, up->ca ? up->ca : "");
    k = put_str(key, k, m, "|");
    num[put_u64(num, (uint64_t)up->protocol)] = '\0';
    k = put_str(key, k, m, num);
    key[k < m ? k : m] = '\0';
}

static bool hdr_is(const struct ctr_header *hd, const char *lit)
{
    return streq(hd->name.p, hd->name.len, lit);
}

int px__up_submit(struct px_h2s *h)
{
    struct px_up *u = h->uc;
    if (u->h1) return px__h1up_submit(h);
    /* one stream only before the provider's SETTINGS: its stream limit is
     * not known yet (up_settings submits the streams that fit). One, not
     * none: a server may wait for a request before it sends its SETTINGS,
     * and any limit but 0 takes one stream. */
    if (!u->settings_seen && u->nactive > 0) return 0;
    struct ctr_decision *d = h->d;
    nghttp2_nv nv[CTR_MAX_FWD_HEADERS + 5];
    size_t n = 0;
    /* nghttp2 keeps the pointers of NO_COPY fields and reads them when it
     * serialises the HEADERS (the next flush). Until then they stay valid:
     * the names and values are literals, |u|'s authority, the decision's
     * path, and views into the request head — rcbufs (HTTP/2) or the
     * head's buffer (HTTP/1.1, not reused before this exchange is
     * answered) — all released only with |h|, which is not released while
     * |up_open| (until the stream's close or not-send callback). A HEADERS
     * cancelled by our RST_STREAM in the queue is dropped unread. Every
     * name is lower case (nghttp2 then does not lower-case a copy):
     * literals, HTTP/2 names (nghttp2 refuses others), HTTP/1.1 names
     * (lowered by h1down.c), the contract's auth header (lowered when the
     * contract is loaded). Saves copying every name and value per request. */
    const uint8_t nc = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
#define NV(nm, nl, vp, vl, fl)                                                                     \
    do {                                                                                           \
        nv[n].name = (uint8_t *)(nm);                                                              \
        nv[n].namelen = (nl);                                                                      \
        nv[n].value = (uint8_t *)(vp);                                                             \
        nv[n].valuelen = (vl);                                                                     \
        nv[n].flags = (fl);                                                                        \
        n++;                                                                                       \
    } while (0)
    NV(":method", 7, d->method.p, d->method.len, nc);
    NV(":scheme", 7, u->tls ? "https" : "http", u->tls ? 5u : 4u, nc);
    NV(":authority", 10, u->authority, strlen(u->authority), nc);
    NV(":path", 5, d->path, d->path_len, nc);
    for (size_t i = 0; i < d->nfwd && n < CTR_MAX_FWD_HEADERS + 4; i++) {
        const struct ctr_header *hd = &d->fwd[i];
        if (hdr_is(hd, "content-length") || hdr_is(hd, "host") ||
            (hd->name.len > 0 && hd->name.p[0] == ':'))
            continue;
        /* a trace id is new on every request: indexed, it would only push
         * the fields that do repeat out of the provider's HPACK table (and
         * cost an insertion and an eviction each) */
        bool once = hd->name.len == 11 && memcmp(hd->name.p, "traceparent", 11) == 0;
        NV(hd->name.p, hd->name.len, hd->value.p, hd->value.len,
           once ? nc | NGHTTP2_NV_FLAG_NO_INDEX : nc);
    }
    char clen[24];
    if (h->req_done) {
        /* the whole (filtered) body is known: SPEC 4.3 recomputes it */
        size_t k = put_u64(clen, h->req.total);
        if (h->req.total > 0 || d->body_kind != CTR_BODY_NONE)
            NV("content-length", 14, clen, k, NGHTTP2_NV_FLAG_NO_COPY_NAME); /* |clen| is ours */
    }
#undef NV
    nghttp2_data_provider prd;
    prd.source.ptr = h;
    prd.read_callback = req_read;
    bool nobody = h->req_done && h->req.total == 0;
    int32_t id = nghttp2_submit_request(u->base.s, NULL, nv, n, nobody ? NULL : &prd, h);
    if (id < 0) {
        px__up_detach(h);
        px__h2s_fail(h, 502, "upstream_unavailable", "cannot open a stream to the provider");
        return -1;
    }
    list_remove(&u->pending, h);
    h->in_pending = false;
    u->npending--;
    list_push(&u->active, h);
    h->in_active = true;
    u->nactive++;
    h->up_id = id;
    h->up_open = true;
    h->up_submitted = true;
    px__sess_dirty(&u->base);
    return 0;
}

/* --------------------------------------------------------------- connect */

/* The provider speaks HTTP/1.1 on |u|: one exchange at a time. The
 * oldest request waiting on it stays; the others (attached while the
 * protocol was unknown) are spread over other connections. */
static void up_ready_h1(struct px_up *u)
{
    nghttp2_session_del(u->base.s);
    u->base.s = NULL;
    u->base.conn.ptlen = 0; /* nothing of HTTP/2 may leave (none is staged: up_writable) */
    if (px__h1up_init(u) != 0) {
        px__up_kill(u, "connect");
        return;
    }
    u->state = PX_UP_READY;
    struct px_h2s *keep = u->pending;
    size_t m = 0;
    while (keep && keep->unext) {
        keep = keep->unext;
        m++;
    }
    /* re-attached requests may land on |u| again, in front: take the
     * originals from just before |keep|, oldest first */
    for (size_t i = 0; i < m && keep && keep->uprev; i++) {
        struct px_h2s *h = keep->uprev;
        px__up_detach(h);
        if (px__up_attach(h) != 0) px__h2s_maybe_release(h);
    }
    up_idle_check(u);
    if (keep) px__h2s_try_submit(keep);
}

static void up_ready(struct px_conn *c, const char *err)
{
    struct px_up *u = c->ud;
    if (u->base.dead) return;
    uv_timer_stop(&u->ctimer);
    bool h1 = false;
    if (!err && c->ssl) {
        const char *p;
        unsigned n;
        px_conn_alpn(c, &p, &n);
        bool is_h2 = n == 2 && memcmp(p, "h2", 2) == 0;
        /* no ALPN answer (RFC 7301 3.2): the server's default, HTTP/1.1 */
        bool is_h1 = n == 0 || (n == 8 && memcmp(p, "http/1.1", 8) == 0);
        if (u->proto == CTR_UP_H2 ? !is_h2 : u->proto == CTR_UP_HTTP1 ? !is_h1 : !is_h1 && !is_h2)
            err = "alpn";
        h1 = is_h1;
    } else if (!err) {
        h1 = u->proto == CTR_UP_HTTP1;
    }
    if (err) {
        px__up_kill(u, err);
        return;
    }
    if (h1) {
        up_ready_h1(u);
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_UP_WINDOW},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(u->base.s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(u->base.s, NGHTTP2_FLAG_NONE, 0, PX_CONN_WINDOW);
    u->state = PX_UP_READY;
    up_idle_check(u);
    /* one waiting stream leaves now (px__up_submit), the oldest, the
     * others with the provider's SETTINGS (up_settings) */
    struct px_h2s *h = list_tail(u->pending);
    while (h && u->state == PX_UP_READY && u->nactive == 0) {
        struct px_h2s *older = h->uprev;
        px__h2s_try_submit(h);
        h = older;
    }
    px__sess_dirty(&u->base);
}

/* The provider's first SETTINGS: its MAX_CONCURRENT_STREAMS is known.
 * Streams sent before it would count against nghttp2's default of 100 and
 * the ones above a smaller limit would come back REFUSED_STREAM. The
 * waiting streams that fit are submitted; the others move (once each) to
 * another connection of the pool, a new one when none has room: they were
 * never sent. A limit of 0 keeps them here (nghttp2 queues them until the
 * provider allows streams or upstream_timeout fires). */
static void up_settings(struct px_up *u)
{
    u->settings_seen = true;
    if (u->state != PX_UP_READY) return;
    uint32_t max =
        nghttp2_session_get_remote_settings(u->base.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    /* oldest first (the list is newest first): the streams that waited
     * longest stay, the newest move */
    uint32_t kept = u->nactive;
    struct px_h2s *h = list_tail(u->pending);
    while (h && u->state == PX_UP_READY) {
        struct px_h2s *older = h->uprev;
        if (kept >= max && max > 0 && !h->room_moved) {
            px__up_detach(h);
            h->room_moved = true;
            if (px__up_attach(h) != 0) px__h2s_maybe_release(h);
        } else {
            kept++;
        }
        h = older;
    }
    h = list_tail(u->pending);
    while (h && u->state == PX_UP_READY) {
        struct px_h2s *older = h->uprev;
        px__h2s_try_submit(h);
        h = older;
    }
    px__sess_dirty(&u->base);
}

static void up_read(struct px_conn *c, const char *p, size_t n)
{
    struct px_up *u = c->ud;
    if (u->base.dead) return;
    px__clock_tick(u->base.w); /* the exchanges these bytes end share one end time */
    if (u->h1) {
        px__h1up_read(u, p, n);
        return;
    }
    if (!u->base.s) return;
    ssize_t r = nghttp2_session_mem_recv(u->base.s, (const uint8_t *)p, n);
    if (r < 0) {
        px__up_kill(u, "protocol");
        return;
    }
    px__sess_dirty(&u->base);
}

static void up_eof(struct px_conn *c, const char *err)
{
    struct px_up *u = c->ud;
    if (u->h1 && !u->base.dead) {
        px__h1up_eof(u, err);
        return;
    }
    if (!u->base.dead && u->base.s && u->state != PX_UP_CONNECTING && !u->proto_err) {
        /* the provider's last bytes may have broken the protocol (nghttp2
         * then queued a GOAWAY with an error code, see on_frame_send) and
         * it closed before the flush: serialise what is queued to know.
         * Nothing is written: the connection is closing. (on_eof never
         * runs inside a send: net.c reports a write failure after it) */
        c->sending = true;
        nghttp2_session_send(u->base.s);
        c->sending = false;
        c->fail_pending = false;
    }
    px__up_kill(u, u->proto_err ? "protocol" : "connect");
}

static void up_writable(struct px_conn *c)
{
    struct px_up *u = c->ud;
    /* not while connecting: the session's preface would be staged before
     * ALPN says whether the provider speaks HTTP/2 at all; HTTP/1.1
     * connections are driven by their pump (h1up.c) */
    if (u->state == PX_UP_CONNECTING || u->h1) return;
    px__sess_dirty(&u->base);
}

static const struct px_conn_ops up_ops = {up_ready, up_read, up_eof, up_writable, up_conn_closed};

static void ctimer_cb(uv_timer_t *t)
{
    struct px_up *u = t->data;
    px__up_kill(u, "timeout");
}

static void idle_cb(uv_timer_t *t)
{
    struct px_up *u = t->data;
    if (u->pending || u->active) return;
    px__up_kill(u, "connect"); /* no stream to fail */
}

static void up_connect_addr(struct px_up *u, const struct sockaddr *sa)
{
    char err[256];
    SSL_CTX *ctx = NULL;
    if (u->tls) {
        ctx = px__client_ctx(u->base.w, u->ca, err, sizeof(err));
        if (!ctx) {
            fprintf(stderr, "privgate: upstream %s: %s\n", u->host, err);
            px__up_kill(u, "tls");
            return;
        }
    }
    const char *name = u->sni ? u->sni : u->host;
    if (px_conn_connect(&u->base.conn, sa, ctx, name, name) != 0) {
        px__up_kill(u, "connect");
        return;
    }
    if (u->base.conn.ssl && u->proto != CTR_UP_H2) {
        /* the context offers h2 only; this connection offers HTTP/1.1 too
         * (auto) or only (protocol: http/1.1) */
        static const unsigned char both[] = "\x02h2\x08http/1.1";
        const unsigned char *alpn = u->proto == CTR_UP_HTTP1 ? both + 3 : both;
        unsigned len = u->proto == CTR_UP_HTTP1 ? 9u : 12u;
        if (SSL_set_alpn_protos(u->base.conn.ssl, alpn, len) != 0) px__up_kill(u, "tls");
    }
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct px_up *u = req->data;
    u->gai_pending = false;
    if (status == UV_ECANCELED || u->base.dead) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        px__up_kill(u, "connect");
        return;
    }
    up_connect_addr(u, res->ai_addr);
    uv_freeaddrinfo(res);
}

static struct px_up *up_new(struct px_worker *w, const struct ctr_upstream *up, const char *key)
{
    struct px_up *u = calloc(1, sizeof(*u));
    if (!u) return NULL;
    u->base.w = w;
    u->base.is_up = true;
    u->key = strdup(key);
    u->host = strdup(up->host);
    u->sni = up->server_name ? strdup(up->server_name) : NULL;
    u->ca = up->ca ? strdup(up->ca) : NULL;
    u->tls = !(up->scheme && strcmp(up->scheme, "http") == 0);
    u->proto = (int)up->protocol;
    u->port = up->port ? up->port : (u->tls ? 443 : 80);
    bool v6 = strchr(up->host, ':') != NULL;
    if ((u->tls && u->port == 443) || (!u->tls && u->port == 80))
        snprintf(u->authority, sizeof(u->authority), v6 ? "[%s]" : "%s", up->host);
    else
        snprintf(u->authority, sizeof(u->authority), v6 ? "[%s]:%u" : "%s:%u", up->host,
                 (unsigned)u->port);
    if (!u->key || !u->host || px_conn_init(&w->loop, &u->base.conn, &up_ops, u) != 0) {
        free(u->key);
        free(u->host);
        free(u->sni);
        free(u->ca);
        free(u);
        return NULL;
    }
    u->handles = 2; /* tcp + ctimer */
    uv_timer_init(&w->loop, &u->ctimer);
    u->ctimer.data = u;
    /* the worker's pools: streams, frames, header buffers of nghttp2 */
    if (nghttp2_session_client_new3(&u->base.s, w->gw->up_cbs, u, w->gw->up_opt,
                                    px_pool_nghttp2_mem()) != 0) {
        u->base.dead = true;
        uv_close((uv_handle_t *)&u->ctimer, up_timer_closed);
        px_conn_close(&u->base.conn);
        return NULL;
    }
    u->next = w->ups;
    if (w->ups) w->ups->prev = u;
    w->ups = u;
    uint64_t cto = w->set->config.limits.upstream_connect_timeout_ms;
    if (cto) uv_timer_start(&u->ctimer, ctimer_cb, cto, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, u->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(u->port);
        up_connect_addr(u, (struct sockaddr *)&ss);
    } else if (inet_pton(AF_INET6, u->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(u->port);
        up_connect_addr(u, (struct sockaddr *)&ss);
    } else {
        char port[8];
        snprintf(port, sizeof(port), "%u", (unsigned)u->port);
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_socktype = SOCK_STREAM;
        u->gai.data = u;
        u->gai_pending = true;
        if (uv_getaddrinfo(&w->loop, &u->gai, gai_cb, u->host, port, &hints) != 0) {
            u->gai_pending = false;
            px__up_kill(u, "connect");
        }
    }
    return u;
}

static bool up_has_room(struct px_up *u)
{
    /* streams waiting for this connection count too: a burst arriving
     * while it connects must spread over new connections, not queue inside
     * nghttp2 past the provider's stream limit */
    uint32_t load = u->nactive + u->npending;
    if (u->state == PX_UP_CONNECTING || (u->state == PX_UP_READY && !u->settings_seen))
        /* until SETTINGS tell: what another connection to the provider was
         * told, else 100 (RFC 9113 6.5.2 suggests >= 100) */
        return load < (u->room_guess ? u->room_guess : 100);
    if (u->state != PX_UP_READY || u->proto_err) return false;
    uint32_t max =
        nghttp2_session_get_remote_settings(u->base.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return load < max;
}

/* The pool key of |h|'s upstream (w->key, valid until the next call). */
static const char *h2s_key(struct px_worker *w, struct px_h2s *h)
{
    const struct ctr_upstream *up = &h->contract->upstream;
    if (w->key_set != h->set || w->key_up != up) {
        if (w->key_set) ctr_set_unref(w->key_set);
        w->key_set = ctr_set_ref(h->set);
        w->key_up = up;
        up_key(up, w->key, sizeof(w->key));
    }
    return w->key;
}

int px__up_attach(struct px_h2s *h)
{
    struct px_worker *w = h->w;
    const struct ctr_upstream *up = &h->contract->upstream;
    const char *key = h2s_key(w, h);
    struct px_up *u = NULL;
    uint32_t guess = 0; /* the stream limit a connection to the provider was told */
    /* HTTP/1.1 when the contract says so, or when the provider already
     * chose it on a connection of this pool */
    bool h1 = up->protocol == CTR_UP_HTTP1;
    for (struct px_up *c = w->ups; c && !h1; c = c->next)
        h1 = !c->base.dead && c->h1 && strcmp(c->key, key) == 0;
    if (h1) {
        bool open_new = false;
        u = px__h1up_pick(w, key, &open_new);
    } else {
        /* the room first: the keys of full connections (the same key,
         * compared whole) are compared only when a new one is needed */
        for (struct px_up *c = w->ups; c && !u; c = c->next)
            if (!c->base.dead && !c->h1 && up_has_room(c) && strcmp(c->key, key) == 0) u = c;
        for (struct px_up *c = w->ups; c && !u; c = c->next)
            if (!c->base.dead && !c->h1 && c->settings_seen && c->state == PX_UP_READY &&
                strcmp(c->key, key) == 0)
                guess = nghttp2_session_get_remote_settings(
                    c->base.s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    }
    if (!u) {
        u = up_new(w, up, key);
        if (u && guess) u->room_guess = guess;
    }
    if (!u) {
        px__h2s_fail(h, 502, "upstream_unavailable", "cannot connect to the provider");
        return -1;
    }
    if (u->base.dead) {
        /* failed synchronously (bad CA file, socket error) */
        px__h2s_up_gone(h, u->why ? u->why : "connect");
        return -1;
    }
    h->uc = u;
    list_push(&u->pending, h);
    h->in_pending = true;
    u->npending++;
    up_idle_check(u);
    px__h2s_try_submit(h); /* submits on a ready connection; starts the timer */
    return 0;
}
