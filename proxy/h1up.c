/*
 * privgate proxy: HTTP/1.1 upstream connections — for providers whose TLS
 * server answers ALPN with http/1.1 (or not at all), and for contracts with
 * `upstream.protocol: http/1.1`. See docs/GATEWAY.md, "HTTP/1.1 upstreams".
 *
 * Such a connection is a px_up (up.c: pool, connect, TLS, kill) without an
 * nghttp2 session. It carries one exchange at a time (RFC 9112 9.3: no
 * pipelining): u->active holds the one in flight, u->pending the requests
 * waiting for this connection. up.c opens up to PX_H1_MAX_CONNS connections
 * per upstream and worker; beyond, requests queue, and a connection that
 * becomes idle takes the next waiting request of its upstream.
 *
 * The exchange is driven from a uv_prepare handle (the "pump", active
 * while an exchange is in flight), that is before the loop polls and never
 * from inside another connection's callbacks: it writes the request head
 * and body, gives flow-control credit back to the caller, resumes reading
 * when the caller has taken the response, and notices when the gateway
 * gave up on the exchange (h->finished).
 *
 * Request: `METHOD path HTTP/1.1`, `Host` = the upstream's authority, the
 * forwarded headers of the decision (the injected credential included),
 * then `Content-Length` when the whole filtered body is known before the
 * head leaves — the gateway waits for it up to PX_H1_CL_MAX — else
 * `Transfer-Encoding: chunked` (RFC 9112 7.1). An exchange the gateway
 * abandons after the head left closes the connection without the last
 * chunk: the provider never sees a complete request.
 *
 * Response: parsed by http-parser (content-length, chunked, or delimited
 * by the connection's close; HEAD, 1xx, 204 and 304 without body), its head
 * forwarded without hop-by-hop fields (those of RFC 9110 7.6.1 and every
 * field `Connection` names), its body piped to the caller as the HTTP/2
 * upstream's is. Reading stops while the caller has PX_PIPE_HIGH bytes to
 * take. A connection is reused only after a complete response with
 * keep-alive to a completely sent request; anything odd (bytes after the
 * response, an unparsable response, an abandoned exchange) closes it.
 */
#include "proxy/gw.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px__h2s_respond(struct px_h2s *h, bool end);
void px__h2s_resp_data(struct px_h2s *h, const uint8_t *p, size_t n);
void px__h2s_resp_end(struct px_h2s *h);

#define OB_FRAME 16u /* room for a chunk's size line and CRLF */

struct px_h1up {
    struct px_up *u;
    uv_prepare_t pump;
    http_parser parser;
    unsigned exchanges; /* completed on this connection */
    /* the exchange in flight (u->active) */
    bool head_sent;    /* the request head is written */
    bool chunked;      /* the request body is sent chunked */
    bool req_complete; /* the whole request is written */
    bool resp_head;    /* the response head was parsed */
    bool exch_done;    /* the response is complete */
    bool keep_alive;   /* ... and the provider keeps the connection */
    bool odd;          /* something that forbids reuse */
    bool paused;       /* reading stopped: the caller has enough to take */
    bool is_head;      /* HEAD request: the response has no body */
    bool reused;       /* not the first exchange on this connection */
    uint64_t resp_bytes;
    /* output staged for px_conn_write: ob[oboff, oblen) */
    char *ob;
    size_t obcap, oblen, oboff;
    /* response head: names and values in hb, positions in hf */
    char *hb;
    size_t hblen;
    struct {
        uint32_t no, nl, vo, vl;
    } hf[PX_MAX_HEADERS];
    size_t nhf;
    bool in_value, head_bad;
};

static bool streq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static bool strcaseeq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && strncasecmp(p, lit, l) == 0;
}

/* RFC 9110 7.6.1: connection-specific fields; privgate-request-id is the
 * gateway's own */
static bool hop_by_hop(const char *p, size_t n)
{
    return strcaseeq(p, n, "connection") || strcaseeq(p, n, "keep-alive") ||
           strcaseeq(p, n, "proxy-connection") || strcaseeq(p, n, "transfer-encoding") ||
           strcaseeq(p, n, "upgrade") || strcaseeq(p, n, "te") || strcaseeq(p, n, "trailer") ||
           strcaseeq(p, n, "privgate-request-id");
}

static void reset_exchange(struct px_h1up *x)
{
    x->head_sent = x->chunked = x->req_complete = x->resp_head = false;
    x->exch_done = x->keep_alive = x->is_head = false;
    x->resp_bytes = 0;
    x->oblen = x->oboff = 0;
    x->hblen = 0;
    x->nhf = 0;
    x->in_value = x->head_bad = false;
    http_parser_init(&x->parser, HTTP_RESPONSE);
    x->parser.data = x;
}

static bool ob_reserve(struct px_h1up *x, size_t need)
{
    if (x->obcap >= need) return true;
    size_t cap = x->obcap ? x->obcap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(x->ob, cap);
    if (!p) return false;
    x->ob = p;
    x->obcap = cap;
    return true;
}

static void ob_put(struct px_h1up *x, const char *p, size_t n)
{
    memcpy(x->ob + x->oblen, p, n);
    x->oblen += n;
}

static void ob_str(struct px_h1up *x, const char *s)
{
    ob_put(x, s, strlen(s));
}

/* ------------------------------------------------------------ lifetime */

static void pump_cb(uv_prepare_t *p);

static void pump_closed(uv_handle_t *hd)
{
    px__up_unref(hd->data);
}

int px__h1up_init(struct px_up *u)
{
    struct px_h1up *x = calloc(1, sizeof(*x));
    if (!x) return -1;
    x->hb = malloc(PX_H1_HEAD_MAX);
    if (!x->hb) {
        free(x);
        return -1;
    }
    x->u = u;
    uv_prepare_init(&u->base.w->loop, &x->pump);
    x->pump.data = u;
    u->handles++;
    u->h1 = x;
    reset_exchange(x);
    return 0;
}

void px__h1up_free(struct px_h1up *x)
{
    free(x->ob);
    free(x->hb);
    free(x);
}

void px__h1up_kill(struct px_up *u)
{
    struct px_h1up *x = u->h1;
    if (uv_is_closing((uv_handle_t *)&x->pump)) return;
    uv_prepare_stop(&x->pump);
    uv_close((uv_handle_t *)&x->pump, pump_closed);
}

/* --------------------------------------------------------------- the pool */

static size_t occupancy(const struct px_up *c)
{
    size_t n = c->active ? 1 : 0;
    for (const struct px_h2s *h = c->pending; h; h = h->unext)
        n++;
    return n;
}

struct px_up *px__h1up_pick(struct px_worker *w, const char *key, bool *open_new)
{
    struct px_up *best = NULL, *idle_connecting = NULL;
    size_t best_occ = SIZE_MAX;
    unsigned n = 0;
    for (struct px_up *c = w->ups; c; c = c->next) {
        if (c->base.dead || strcmp(c->key, key) != 0) continue;
        if (!c->h1 && c->state != PX_UP_CONNECTING) continue; /* an HTTP/2 one */
        n++;
        size_t occ = occupancy(c);
        if (occ == 0) {
            if (c->state == PX_UP_READY) return c;
            if (!idle_connecting) idle_connecting = c;
        }
        if (occ < best_occ) {
            best = c;
            best_occ = occ;
        }
    }
    if (idle_connecting) return idle_connecting;
    *open_new = n < PX_H1_MAX_CONNS;
    return *open_new ? NULL : best;
}

static void start(struct px_up *u, struct px_h2s *h)
{
    struct px_h1up *x = u->h1;
    reset_exchange(x);
    x->reused = x->exchanges > 0;
    x->is_head = streq(h->d->method.p, h->d->method.len, "HEAD");
    px__up_activate(h);
    h->up_submitted = true;
    uv_prepare_start(&x->pump, pump_cb);
}

/* |u| is idle: it takes the oldest request submitted on it, else one that
 * waits behind another connection of the same upstream. */
static void next(struct px_up *u)
{
    if (u->base.dead || u->active || u->state != PX_UP_READY) return;
    struct px_h2s *take = NULL;
    for (struct px_h2s *h = u->pending; h; h = h->unext)
        if (h->up_submitted) take = h; /* the list is newest first */
    if (!take) {
        for (struct px_up *c = u->base.w->ups; c && !take; c = c->next) {
            if (c == u || c->base.dead || !c->h1 || !c->active || strcmp(c->key, u->key) != 0)
                continue;
            for (struct px_h2s *h = c->pending; h; h = h->unext)
                if (h->up_submitted) take = h;
        }
        if (!take) return;
        px__up_move(take, u);
    }
    start(u, take);
}

int px__h1up_submit(struct px_h2s *h)
{
    struct px_up *u = h->uc;
    h->up_submitted = true; /* from now on this file starts it */
    if (!u->active) {
        start(u, h);
        return 0;
    }
    /* busy: an idle connection of the same upstream takes it, else it
     * waits for this one */
    for (struct px_up *c = u->base.w->ups; c; c = c->next) {
        if (c != u && !c->base.dead && c->h1 && c->state == PX_UP_READY && occupancy(c) == 0 &&
            strcmp(c->key, u->key) == 0) {
            px__up_move(h, c);
            start(c, h);
            return 0;
        }
    }
    return 0;
}

/* The exchange on |u| is over and its stream detached: reuse or close. */
static void finish(struct px_up *u)
{
    struct px_h1up *x = u->h1;
    struct px_h2s *h = u->active;
    bool reuse = x->keep_alive && x->req_complete && !x->odd;
    x->exch_done = true;
    px__h2s_resp_end(h);
    px__up_detach(h);
    h->up_open = false;
    px__h2s_maybe_release(h);
    x->exchanges++;
    uv_prepare_stop(&x->pump);
    if (!reuse) {
        px__up_kill(u, "connect"); /* no stream left to fail; queued ones move */
        return;
    }
    reset_exchange(x);
    if (x->paused) {
        x->paused = false;
        px_conn_pause(&u->base.conn, false);
    }
    next(u);
}

void px__h1up_detached(struct px_up *u)
{
    struct px_h1up *x = u->h1;
    if (!x->exch_done && !u->base.dead) px__up_kill(u, "reset");
}

/* The exchange on |u| ends before its request head left: the stream is
 * detached, the connection stays clean for the next one. */
static void drop_unsent(struct px_up *u)
{
    struct px_h1up *x = u->h1;
    struct px_h2s *h = u->active;
    x->exch_done = true; /* no abort in px__h1up_detached */
    px__up_detach(h);
    h->up_open = false;
    uv_prepare_stop(&x->pump);
    reset_exchange(x);
}

/* -------------------------------------------------------------- request */

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Writes the request head into ob. Returns 0, or -1 after answering. */
static int write_head(struct px_up *u, struct px_h2s *h)
{
    struct px_h1up *x = u->h1;
    const struct ctr_decision *d = h->d;
    bool ok = d->method.len > 0 && d->path_len > 0 && d->path[0] == '/';
    for (size_t i = 0; ok && i < d->method.len; i++)
        ok = tchar((unsigned char)d->method.p[i]);
    for (size_t i = 0; ok && i < d->path_len; i++)
        ok = (unsigned char)d->path[i] > 0x20 && (unsigned char)d->path[i] != 0x7f;
    if (!ok) {
        drop_unsent(u);
        px__h2s_fail(h, 400, "invalid_request", "request line not representable in HTTP/1.1");
        px__h2s_maybe_release(h);
        next(u);
        return -1;
    }
    size_t need = d->method.len + d->path_len + strlen(u->authority) + 128;
    for (size_t i = 0; i < d->nfwd; i++)
        need += d->fwd[i].name.len + d->fwd[i].value.len + 4;
    if (!ob_reserve(x, need)) {
        px__up_kill(u, "connect");
        return -1;
    }
    x->oblen = x->oboff = 0;
    ob_put(x, d->method.p, d->method.len);
    ob_put(x, " ", 1);
    ob_put(x, d->path, d->path_len);
    ob_str(x, " HTTP/1.1\r\nHost: ");
    ob_str(x, u->authority);
    ob_str(x, "\r\n");
    for (size_t i = 0; i < d->nfwd; i++) {
        const struct ctr_header *hd = &d->fwd[i];
        if (hd->name.len == 0 || hd->name.p[0] == ':' || hop_by_hop(hd->name.p, hd->name.len) ||
            strcaseeq(hd->name.p, hd->name.len, "host") ||
            strcaseeq(hd->name.p, hd->name.len, "content-length"))
            continue;
        ob_put(x, hd->name.p, hd->name.len);
        ob_put(x, ": ", 2);
        ob_put(x, hd->value.p, hd->value.len);
        ob_put(x, "\r\n", 2);
    }
    if (h->req_done) {
        /* the whole (filtered) body is known: SPEC 4.3 recomputes it */
        if (h->req.total > 0 || d->body_kind != CTR_BODY_NONE) {
            char clen[48];
            snprintf(clen, sizeof(clen), "Content-Length: %llu\r\n",
                     (unsigned long long)h->req.total);
            ob_str(x, clen);
        }
        x->chunked = false;
    } else {
        ob_str(x, "Transfer-Encoding: chunked\r\n");
        x->chunked = true;
    }
    ob_str(x, "\r\n");
    x->head_sent = true;
    return 0;
}

/* Gives the caller credit for request bytes that left (as up.c's
 * req_read does for HTTP/2 upstreams). */
static void credit(struct px_h2s *h)
{
    if (h->req.unconsumed && h->req.bytes < PX_PIPE_HIGH && h->dc && h->down_open)
        h->dc->proto->credit(h);
}

/* Moves staged output and request body bytes to the connection until it
 * is full or nothing is left. */
static void send_body(struct px_up *u, struct px_h2s *h)
{
    struct px_h1up *x = u->h1;
    struct px_conn *c = &u->base.conn;
    for (;;) {
        while (x->oboff < x->oblen) {
            size_t k = px_conn_write(c, x->ob + x->oboff, x->oblen - x->oboff);
            if (k == 0) return;
            x->oboff += k;
        }
        x->oblen = x->oboff = 0;
        if (x->req_complete) return;
        if (h->req.bytes == 0) {
            if (!h->req.eof || h->finished) return;
            if (x->chunked) ob_str(x, "0\r\n\r\n"); /* no trailers */
            x->req_complete = true;
            continue;
        }
        if (!ob_reserve(x, PX_CHUNK_SIZE + 2 * OB_FRAME)) {
            px__up_kill(u, "connect");
            return;
        }
        /* the chunks read stay with |h| while it may be sent again */
        size_t n = px__pipe_read_keep(h->w, &h->req, (uint8_t *)x->ob + OB_FRAME, PX_CHUNK_SIZE,
                                      h->replay_ok ? &h->replay : NULL);
        h->req_sent += n;
        if (h->replay_ok && h->req_sent > PX_REPLAY_MAX) {
            px__pipe_clear(h->w, &h->replay);
            h->replay_ok = false;
        }
        x->oboff = OB_FRAME;
        x->oblen = OB_FRAME + n;
        if (x->chunked) {
            char sz[OB_FRAME];
            int k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
            x->oboff = OB_FRAME - (size_t)k;
            memcpy(x->ob + x->oboff, sz, (size_t)k);
            ob_put(x, "\r\n", 2);
        }
        credit(h);
    }
}

/* The gateway gave up on the exchange (answered the caller, or the caller
 * went away). Before the head left, the connection stays clean. */
static void abandon(struct px_up *u)
{
    struct px_h1up *x = u->h1;
    if (x->head_sent) {
        px__up_kill(u, "reset");
        return;
    }
    struct px_h2s *h = u->active;
    drop_unsent(u);
    px__h2s_maybe_release(h);
    next(u);
}

static void pump_cb(uv_prepare_t *p)
{
    struct px_up *u = p->data;
    struct px_h1up *x = u->h1;
    struct px_h2s *h = u->active;
    if (u->base.dead || !h || x->exch_done) {
        uv_prepare_stop(p);
        return;
    }
    if (h->finished) {
        abandon(u);
        return;
    }
    if (!x->head_sent) {
        if (!h->req_done && h->req.bytes < PX_H1_CL_MAX) return; /* wait: content-length? */
        if (write_head(u, h) != 0) return;
    }
    send_body(u, h);
    if (u->base.dead) return;
    if (x->paused && h->resp.bytes < PX_PIPE_HIGH) {
        x->paused = false;
        px_conn_pause(&u->base.conn, false);
    }
    px_conn_kick(&u->base.conn);
}

/* ------------------------------------------------------------- response */

static int on_message_begin(http_parser *p)
{
    struct px_h1up *x = p->data;
    x->hblen = 0;
    x->nhf = 0;
    x->in_value = false;
    x->head_bad = false;
    return 0;
}

static bool hb_add(struct px_h1up *x, const char *at, size_t n)
{
    if (x->hblen + n > PX_H1_HEAD_MAX) {
        x->head_bad = true;
        return false;
    }
    memcpy(x->hb + x->hblen, at, n);
    x->hblen += n;
    return true;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    struct px_h1up *x = p->data;
    if (x->resp_head || x->head_bad) return 0; /* trailers are dropped */
    if (x->in_value || x->nhf == 0) {
        if (x->nhf >= PX_MAX_HEADERS) {
            x->head_bad = true;
            return 0;
        }
        x->hf[x->nhf].no = (uint32_t)x->hblen;
        x->hf[x->nhf].nl = 0;
        x->hf[x->nhf].vo = (uint32_t)x->hblen;
        x->hf[x->nhf].vl = 0;
        x->nhf++;
        x->in_value = false;
    }
    if (hb_add(x, at, n)) x->hf[x->nhf - 1].nl += (uint32_t)n;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    struct px_h1up *x = p->data;
    if (x->resp_head || x->head_bad || x->nhf == 0) return 0;
    if (!x->in_value) {
        x->hf[x->nhf - 1].vo = (uint32_t)x->hblen;
        x->in_value = true;
    }
    if (hb_add(x, at, n)) x->hf[x->nhf - 1].vl += (uint32_t)n;
    return 0;
}

/* Whether token |t| is in the comma-separated list |v| (case-insensitive). */
static bool list_has(const char *v, size_t vl, const char *t, size_t tl)
{
    size_t i = 0;
    while (i < vl) {
        while (i < vl && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < vl && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, t, tl) == 0) return true;
    }
    return false;
}

/* The response head, forwarded as the HTTP/2 upstream's is. Returns 0,
 * 1 (no body follows: HEAD), or -1 (a head that cannot be forwarded). */
static int on_headers_complete(http_parser *p)
{
    struct px_h1up *x = p->data;
    struct px_up *u = x->u;
    struct px_h2s *h = u->active;
    unsigned st = p->status_code;
    if (st >= 100 && st < 200) {
        if (st == 101) return -1; /* never asked for */
        return 0;                 /* interim: forget it, the final one follows */
    }
    if (st < 200 || st > 999 || x->head_bad || !h) return -1;
    x->resp_head = true;
    char *hb = x->hb;
    /* fields named by Connection are connection-specific (RFC 9110 7.6.1) */
    const char *conn[8];
    size_t connl[8], nconn = 0;
    for (size_t i = 0; i < x->nhf; i++)
        if (strcaseeq(hb + x->hf[i].no, x->hf[i].nl, "connection") && nconn < 8) {
            conn[nconn] = hb + x->hf[i].vo;
            connl[nconn++] = x->hf[i].vl;
        }
    snprintf(h->rstatus, sizeof(h->rstatus), "%03u", st);
    h->rnv[0].name = (uint8_t *)":status";
    h->rnv[0].namelen = 7;
    h->rnv[0].value = (uint8_t *)h->rstatus;
    h->rnv[0].valuelen = 3;
    h->rnv[0].flags = NGHTTP2_NV_FLAG_NONE;
    h->nrnv = 1;
    for (size_t i = 0; i < x->nhf; i++) {
        char *n = hb + x->hf[i].no, *v = hb + x->hf[i].vo;
        size_t nl = x->hf[i].nl, vl = x->hf[i].vl;
        if (nl == 0) return -1;
        bool drop = hop_by_hop(n, nl);
        for (size_t k = 0; k < nconn && !drop; k++)
            drop = list_has(conn[k], connl[k], n, nl);
        if (drop) continue;
        for (size_t k = 0; k < nl; k++) {
            if (!tchar((unsigned char)n[k])) return -1;
            if (n[k] >= 'A' && n[k] <= 'Z') n[k] = (char)(n[k] - 'A' + 'a'); /* RFC 9113 8.2.1 */
        }
        while (vl && (v[0] == ' ' || v[0] == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        for (size_t k = 0; k < vl; k++)
            if (v[k] == '\r' || v[k] == '\n' || v[k] == '\0') return -1; /* obs-fold, ... */
        if (!px__h2s_rnv_room(h)) return -1;
        nghttp2_nv *nv = &h->rnv[h->nrnv++];
        nv->name = (uint8_t *)n;
        nv->namelen = nl;
        nv->value = (uint8_t *)v;
        nv->valuelen = vl;
        nv->flags = NGHTTP2_NV_FLAG_NONE;
    }
    bool no_body =
        x->is_head || st == 204 || st == 304 ||
        ((p->flags & F_CONTENTLENGTH) && !(p->flags & F_CHUNKED) && p->content_length == 0);
    if (no_body) h->up_end_seen = true;
    px__h2s_respond(h, no_body);
    return x->is_head ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct px_h1up *x = p->data;
    struct px_h2s *h = x->u->active;
    if (h) px__h2s_resp_data(h, (const uint8_t *)at, n);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct px_h1up *x = p->data;
    if (!x->resp_head) return 0; /* an interim (1xx) response */
    x->exch_done = true;
    x->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1); /* one response per request: stop here */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The provider spoke (or closed) before the request head left — say a
 * 408 on an idle connection: the request was not sent, it waits for
 * another connection and this one goes. */
static bool idempotent(const struct px_h2s *h)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (h->method.len == strlen(ok[i]) && memcmp(h->method.p, ok[i], h->method.len) == 0)
            return true;
    return false;
}

static void relocate(struct px_up *u)
{
    struct px_h2s *h = u->active;
    drop_unsent(u);
    h->up_submitted = false;
    px__up_kill(u, "connect");
    if (px__up_attach(h) != 0) px__h2s_maybe_release(h);
}

void px__h1up_read(struct px_up *u, const char *p, size_t n)
{
    struct px_h1up *x = u->h1;
    struct px_h2s *h = u->active;
    if (!h || x->exch_done) {
        px__up_kill(u, "protocol"); /* nobody asked: nothing fails, the connection goes */
        return;
    }
    if (!x->head_sent) {
        relocate(u);
        return;
    }
    x->resp_bytes += n;
    size_t k = http_parser_execute(&x->parser, &parser_settings, p, n);
    if (x->exch_done) {
        if (k < n) x->odd = true; /* bytes after the response */
        finish(u);
        return;
    }
    if (HTTP_PARSER_ERRNO(&x->parser) != HPE_OK || k != n) {
        px__up_kill(u, "protocol");
        return;
    }
    if (!x->paused && h->resp.bytes >= PX_PIPE_HIGH) {
        x->paused = true;
        px_conn_pause(&u->base.conn, true);
    }
}

void px__h1up_eof(struct px_up *u, const char *err)
{
    struct px_h1up *x = u->h1;
    struct px_h2s *h = u->active;
    if (!h || x->exch_done) {
        px__up_kill(u, "connect"); /* an idle connection the provider closed */
        return;
    }
    if (!x->head_sent) {
        relocate(u);
        return;
    }
    if (!err && x->resp_head) {
        /* a body delimited by the connection's close (RFC 9112 6.3 item 8) */
        http_parser_execute(&x->parser, &parser_settings, NULL, 0);
        if (x->exch_done) {
            x->keep_alive = false;
            finish(u);
            return;
        }
    }
    if (x->reused && x->resp_bytes == 0 && idempotent(h)) {
        /* a keep-alive connection the provider closed while the request
         * was on its way: send it again on a new connection (once, and only
         * if its body bytes were kept). Only idempotent methods (RFC 9110
         * 9.2.2): the provider may have processed a POST before closing,
         * and a second shipment or charge is worse than a 502. */
        x->exch_done = true; /* no abort: the connection is already gone */
        px__up_detach(h);
        h->up_open = false;
        px__up_kill(u, "reset");
        if (!px__up_retry(h)) {
            px__h2s_up_gone(h, "reset");
            px__h2s_maybe_release(h);
        }
        return;
    }
    px__up_kill(u, "reset");
}
