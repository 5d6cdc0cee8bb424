/*
 * privgate proxy: the downstream side — the request path of SPEC 5, shared
 * by both downstream protocols (struct px_down_proto), and its HTTP/2
 * implementation: server sessions (cleartext prior knowledge or TLS with
 * ALPN h2). HTTP/1.1 is in h1down.c; a cleartext connection (or TLS without
 * ALPN) is HTTP/2 when it starts with the client preface. The path:
 * provider, decide (route, caller, purpose, headers, query, parameters),
 * body filtered as DATA arrives, then the upstream.
 *
 * Flow control is manual (NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE): the credit of
 * a DATA frame is given back (nghttp2_session_consume) only once its
 * filtered output has left for the upstream, or at once while the pipe is
 * below PX_PIPE_HIGH. Routes that must see the whole body before anything
 * leaves (`unlisted: reject`, routes without a body) buffer it, bounded by
 * max_body, and give credit back at once.
 */
#include "proxy/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

static bool streq(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static struct flt_str rcstr(nghttp2_rcbuf *rc)
{
    nghttp2_vec v = nghttp2_rcbuf_get_buf(rc);
    struct flt_str s = {(const char *)v.base, v.len};
    return s;
}

/* ------------------------------------------------------------ protections */

#define PX_LINGER_MS 1000u /* after GOAWAY: the peer's time to read it before we close */

static uint64_t now_ms(const struct px_down *dc)
{
    return uv_now(&dc->base.w->loop);
}

static void watch_arm(struct px_down *dc, bool busy);

/* Closes |dc| |ms| from now at the latest, whatever the peer does. */
static void kill_after(struct px_down *dc, uint64_t ms)
{
    uint64_t at = now_ms(dc) + ms;
    if (dc->kill_at && dc->kill_at <= at) return;
    dc->kill_at = at;
    watch_arm(dc, dc->streams != NULL);
}

/* An abusive HTTP/2 peer: GOAWAY(ENHANCE_YOUR_CALM), nothing more is read,
 * and the connection closes once the GOAWAY is out (or PX_LINGER_MS later). */
static void down_calm(struct px_down *dc)
{
    if (dc->calm || dc->base.dead) return;
    dc->calm = true;
    dc->goaway = true;
    if (dc->base.s) nghttp2_session_terminate_session(dc->base.s, NGHTTP2_ENHANCE_YOUR_CALM);
    px__sess_dirty(&dc->base);
    kill_after(dc, PX_LINGER_MS);
}

/* Takes one token of the abuse budget (refilled at PX_CALM_RATE a second
 * up to PX_CALM_BURST); none left: down_calm. */
static void budget_take(struct px_down *dc)
{
    uint64_t now = now_ms(dc);
    uint64_t el = now - dc->budget_t;
    uint64_t add = el >= 1000u * PX_CALM_BURST ? PX_CALM_BURST : el * PX_CALM_RATE / 1000u;
    if (add) {
        int64_t b = (int64_t)dc->budget + (int64_t)add;
        dc->budget = (int32_t)(b > PX_CALM_BURST ? PX_CALM_BURST : b);
        /* advance by the time those tokens took, not to |now|: the fraction
         * of a token earned is kept (jittered 7 ms / 13 ms gaps averaging
         * under PX_CALM_RATE must never run the budget dry) */
        dc->budget_t = add >= PX_CALM_BURST
                           ? now
                           : dc->budget_t + (add * 1000u + PX_CALM_RATE - 1) / PX_CALM_RATE;
    }
    if (--dc->budget < 0) down_calm(dc);
}

/* Control frames that do nothing for the gateway — PRIORITY (it announces
 * SETTINGS_NO_RFC7540_PRIORITIES and schedules none), frames of a type it
 * does not know (PRIORITY_UPDATE included), and WINDOW_UPDATEs beyond what
 * flow control needs (for a closed stream, or more than the data sent
 * calls for) — are free up to an allowance that the connection's traffic
 * earns, like Envoy's per-stream PRIORITY and per-DATA-frame WINDOW_UPDATE
 * limits (nghttp2 >= 1.67 counts every PRIORITY and unknown frame as a
 * "glitch"): PX_CTL_FREE_START at the start, PX_CTL_PER_STREAM per request
 * and PX_CTL_PER_DATA per DATA frame sent, at most PX_CTL_FREE_MAX banked.
 * Past it each one takes a token of the abuse budget. A legitimate client
 * sends at most a WINDOW_UPDATE for the stream and one for the connection
 * per DATA frame it reads (or per 4 KiB of it: 2 more per 4 KiB sent),
 * and a few priority frames per request. */
#define PX_CTL_FREE_START 32
#define PX_CTL_PER_STREAM 4
#define PX_CTL_PER_DATA 4
#define PX_CTL_FREE_MAX 1024

static void ctl_earn(struct px_down *dc, int32_t n)
{
    dc->ctl_free = dc->ctl_free > PX_CTL_FREE_MAX - n ? PX_CTL_FREE_MAX : dc->ctl_free + n;
}

static void ctl_take(struct px_down *dc)
{
    if (dc->ctl_free > 0)
        dc->ctl_free--;
    else
        budget_take(dc);
}

/* --------------------------------------------------------- error answers */

static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return o;
}

static ssize_t err_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct px_h2s *h = src->ptr;
    size_t n = h->errlen - h->erroff;
    if (n > len) n = len;
    if (n) memcpy(buf, h->errbody + h->erroff, n);
    h->erroff += n;
    if (h->erroff == h->errlen) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* upstream_timeout: the worker's streams waiting for their provider, in a
 * list ordered by deadline, and one timer for the earliest (gw.h). A
 * stream leaving the list does not re-arm the timer: it may fire early
 * once, and then looks at the new first deadline. */
void px__h2s_timer_stop(struct px_h2s *h)
{
    if (!h->timer_on) return;
    struct px_worker *w = h->w;
    if (h->tq_prev)
        h->tq_prev->tq_next = h->tq_next;
    else
        w->tq_head = h->tq_next;
    if (h->tq_next)
        h->tq_next->tq_prev = h->tq_prev;
    else
        w->tq_tail = h->tq_prev;
    h->tq_prev = h->tq_next = NULL;
    h->timer_on = false;
}

static void h2s_stop_timer(struct px_h2s *h)
{
    px__h2s_timer_stop(h);
}

/* Cancels whatever is under way upstream for |h|. */
static void h2s_cancel_up(struct px_h2s *h)
{
    if (h->uc && h->in_pending) {
        px__up_detach(h);
    } else if (h->uc && h->up_open && !h->up_rst && h->uc->base.s) {
        /* once only: |up_open| stays set until the stream's close (or
         * not-send) callback, and a refusal's downstream close often comes
         * before the upstream session flushes. When the first call
         * cancelled a request HEADERS still in nghttp2's send queue, a
         * second nghttp2_submit_rst_stream queues a real RST_STREAM for a
         * stream the provider never saw: one on an idle stream is a
         * connection error (RFC 9113 5.1, 6.4), and the provider's
         * GOAWAY(PROTOCOL_ERROR) fails every other stream of the
         * connection with 502 upstream_unavailable. */
        nghttp2_submit_rst_stream(h->uc->base.s, NGHTTP2_FLAG_NONE, h->up_id, NGHTTP2_CANCEL);
        h->up_rst = true;
        px__sess_dirty(&h->uc->base);
    }
}

static void h2s_credit_req(struct px_h2s *h);

/* Drops the request bytes |h| still holds (nothing more goes upstream) and
 * gives the caller the flow-control credit of every byte counted in
 * h->req.unconsumed: HTTP/2 consumes them (stream and connection window),
 * HTTP/1.1 resumes reading. Without it the credit of a request answered
 * while its pipe was above PX_PIPE_HIGH is lost for the whole connection. */
static void h2s_req_drop(struct px_h2s *h)
{
    uint64_t unconsumed = h->req.unconsumed;
    /* the bytes of a DATA frame nghttp2 framed but could not send yet
     * stay: it sends them (as it would have sent a copy) before our
     * RST_STREAM */
    if (h->req_promised)
        px__pipe_trim(h->w, &h->req, h->req_promised);
    else
        px__pipe_clear(h->w, &h->req);
    h->req.unconsumed = unconsumed;
    if (unconsumed && h->dc && !h->dc->base.dead) h2s_credit_req(h);
    h->req.unconsumed = 0;
}

static void h2s_answer(struct px_h2s *h, int status, const char *code, const char *msg)
{
    h2s_stop_timer(h);
    h->finished = true;
    h->code = code;
    /* the rest of the request body is read and dropped (credit is given
     * back), not reset: RST_STREAM(NO_ERROR) after a complete answer
     * (RFC 9113 8.1) makes some clients (curl 7.88) report an error */
    h2s_cancel_up(h);
    h2s_req_drop(h);
    if (!h->down_open || !h->dc) return;
    if (h->responded) {
        /* a response is already streaming: all we can do is reset it */
        h->dc->proto->reset(h);
        return;
    }
    h->status = status;
    char emsg[400], ecode[64];
    json_escape(emsg, sizeof(emsg), msg ? msg : "");
    json_escape(ecode, sizeof(ecode), code);
    /* out of memory: the status and privgate-error still tell, without a body */
    if (!h->errbody) h->errbody = px_pool_alloc(PX_ERRBODY_MAX);
    int n =
        h->errbody
            ? snprintf(h->errbody, PX_ERRBODY_MAX,
                       "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"request_id\":\"%s\"}}\n",
                       ecode, emsg, h->rid)
            : 0;
    h->errlen = n < 0 ? 0 : ((size_t)n >= PX_ERRBODY_MAX ? PX_ERRBODY_MAX - 1 : (size_t)n);
    h->erroff = 0;
    char st[8], clen[24];
    snprintf(st, sizeof(st), "%d", status);
    snprintf(clen, sizeof(clen), "%zu", h->errlen);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)st, 7, strlen(st), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"privgate-error", (uint8_t *)code, 14, strlen(code), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"privgate-request-id", (uint8_t *)h->rid, 19, 26, NGHTTP2_NV_FLAG_NO_INDEX},
    };
    h->responded = true;
    h->t_out = uv_now(&h->w->loop);
    h->dc->proto->respond(h, nv, sizeof(nv) / sizeof(nv[0]), PX_RESP_ERR);
}

void px__h2s_refuse(struct px_h2s *h, int status, const char *code, const char *msg)
{
    h->outcome = "refused";
    h2s_answer(h, status, code, msg);
}

void px__h2s_fail(struct px_h2s *h, int status, const char *code, const char *msg)
{
    if (h->finished) return;
    h->outcome = "failed";
    h2s_answer(h, status, code, msg);
}

static void h2s_body_fail(struct px_h2s *h, int err)
{
    /* same status, code and message as ctr_run (privgate filter / test) */
    char msg[256];
    if (err == FLT_E_UNLISTED) {
        const char *u = h->body ? flt_body_unlisted_path(h->body) : NULL;
        snprintf(msg, sizeof(msg), "field not listed in the contract: %s",
                 u && *u ? u : "(unknown)");
        px__h2s_refuse(h, 422, "unlisted_field", msg);
        return;
    }
    snprintf(msg, sizeof(msg), "body: %s", flt_strerror(err));
    int status = ctr_status_for(err);
    px__h2s_refuse(h, status ? status : 400, flt_errcode(err), msg);
}

/* ----------------------------------------------------------- releasing */

void px__h2s_maybe_release(struct px_h2s *h)
{
    if (h->down_open || h->up_open || h->in_pending || h->in_active) return;
    h2s_stop_timer(h);
    px__h2s_put(h);
}

static void down_unlink(struct px_h2s *h)
{
    struct px_down *dc = h->dc;
    if (!dc) return;
    if (h->dprev)
        h->dprev->dnext = h->dnext;
    else
        dc->streams = h->dnext;
    if (h->dnext) h->dnext->dprev = h->dprev;
    h->dprev = h->dnext = NULL;
}

/* The downstream stream is over (closed, reset, or its connection died). */
void px__h2s_down_closed(struct px_h2s *h)
{
    if (!h->down_open) return;
    h->down_open = false;
    h->t_end = px__clock_ns(h->w);
    if (h->dc && h->dc->hdr_h == h) h->dc->hdr_h = NULL;
    down_unlink(h);
    if (!h->outcome) {
        if (h->resp_done)
            h->outcome = "forwarded";
        else {
            h->outcome = "failed";
            if (!h->code) h->code = "client_closed";
        }
    }
    px__audit_record(h);
    px__metrics_request(h);
    /* a completed exchange gives back one token of the abuse budget: the
     * resets a busy, legitimate client causes scale with its traffic */
    if (h->resp_done && h->dc && h->dc->budget < PX_CALM_BURST) h->dc->budget++;
    if (!h->resp_done || h->up_open || h->in_pending) h2s_cancel_up(h);
    h->finished = true;
    h2s_req_drop(h); /* nothing more leaves upstream: the credit goes back */
    h->dc = NULL;
    px__pipe_clear(h->w, &h->resp);
    px__h2s_maybe_release(h);
}

/* ------------------------------------------------------------- timeouts */

static void tq_arm(struct px_worker *w, uint64_t now);

static void timeout_cb(uv_timer_t *t)
{
    struct px_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    w->tq_due = 0;
    /* in deadline order, as their own timers fired; answering one may
     * release others (they leave the list) */
    while (w->tq_head && w->tq_head->deadline <= now) {
        struct px_h2s *h = w->tq_head;
        px__h2s_timer_stop(h);
        if (h->finished) continue;
        px__metrics_up_error(h, PX_UPE_TIMEOUT);
        px__h2s_fail(h, 504, "upstream_timeout", "the provider did not answer in time");
    }
    tq_arm(w, now);
}

/* Arms the worker's timer for the first deadline, unless it fires earlier
 * already (at the latest: at that deadline). Never 0 ms: every deadline
 * at or before |now| was acted on (timeout_cb), or is one armed now. */
static void tq_arm(struct px_worker *w, uint64_t now)
{
    struct px_h2s *first = w->tq_head;
    if (!first || (w->tq_due && w->tq_due <= first->deadline)) return;
    uint64_t ms = first->deadline > now ? first->deadline - now : 1;
    if (uv_timer_start(&w->tq_timer, timeout_cb, ms, 0) == 0) w->tq_due = now + ms;
}

static void h2s_start_timer(struct px_h2s *h)
{
    uint64_t ms = h->set->config.limits.upstream_timeout_ms;
    if (ms == 0) return;
    struct px_worker *w = h->w;
    uint64_t now = uv_now(&w->loop);
    h->deadline = now + ms;
    /* after the last one with a deadline not later: new streams mostly go
     * at the end (the same timeout for every stream of a rule set) */
    struct px_h2s *p = w->tq_tail;
    while (p && p->deadline > h->deadline)
        p = p->tq_prev;
    h->tq_prev = p;
    h->tq_next = p ? p->tq_next : w->tq_head;
    if (h->tq_next)
        h->tq_next->tq_prev = h;
    else
        w->tq_tail = h;
    if (p)
        p->tq_next = h;
    else
        w->tq_head = h;
    h->timer_on = true;
    tq_arm(w, now);
}

/* ---------------------------------------------------------- body pipes */

/* Gives the downstream peer credit for request bytes already handled. */
static void h2s_credit_req(struct px_h2s *h)
{
    if (h->dc) h->dc->proto->credit(h);
}

static void h2_credit(struct px_h2s *h)
{
    if (!h->req.unconsumed) return;
    if (!h->buffer_all && h->req.bytes >= PX_PIPE_HIGH) return;
    nghttp2_session *s = h->dc->base.s;
    if (!s) return;
    /* a stream already closed gives back its connection credit only */
    if (nghttp2_session_consume(s, h->id, (size_t)h->req.unconsumed) != 0)
        nghttp2_session_consume_connection(s, (size_t)h->req.unconsumed);
    h->req.unconsumed = 0;
    h->t_in = uv_now(&h->w->loop); /* the caller may send again: its time starts now */
    px__sess_dirty(&h->dc->base);
}

static void h2s_req_ready(struct px_h2s *h)
{
    if (h->up_submitted) {
        if (h->up_open && h->uc && h->uc->base.s) {
            nghttp2_session_resume_data(h->uc->base.s, h->up_id);
            px__sess_dirty(&h->uc->base);
        }
    } else {
        px__h2s_try_submit(h);
    }
}

static int body_sink(void *ud, const char *p, size_t n)
{
    struct px_h2s *h = ud;
    if (h->finished) return 0;
    px__pipe_write(h->w, &h->req, p, n);
    return 0;
}

void px__h2s_try_submit(struct px_h2s *h)
{
    if (h->finished || h->up_submitted || !h->uc) return;
    if (h->buffer_all && !h->req_done) return;
    if (h->req.bytes == 0 && !h->req_done) return;
    /* the request is ready to leave: from now on upstream_timeout runs,
     * also while it waits for a connection (or moves to another one) */
    if (!h->timer_on) h2s_start_timer(h);
    if (h->uc->state != PX_UP_READY) return;
    px__up_submit(h);
}

/* Response body from upstream, read by the downstream session without a
 * copy: the read callback says how many bytes the DATA frame carries
 * (NGHTTP2_DATA_FLAG_NO_COPY), down_send_data writes them from the
 * response pipe's chunks straight into the connection's output. The pipe
 * is only cleared once the stream is closed (px__h2s_down_closed), when
 * nghttp2 drops a frame it has not sent. */
static ssize_t resp_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)buf;
    (void)ud;
    return px__pipe_frame(&((struct px_h2s *)src->ptr)->resp, len, flags);
}

static int down_send_data(nghttp2_session *s, nghttp2_frame *f, const uint8_t *hd, size_t len,
                          nghttp2_data_source *src, void *ud)
{
    (void)s;
    struct px_down *dc = ud;
    struct px_h2s *h = src->ptr;
    int rv = px__send_data(h->w, &dc->base.conn, f, hd, len, &h->resp, NULL);
    if (rv == 0) px__h2s_resp_taken(h, len);
    return rv;
}

bool px__h2s_resp_taken(struct px_h2s *h, size_t n)
{
    h->bytes_out += n;
    if (n) h->t_out = uv_now(&h->w->loop);
    if (h->resp.unconsumed && h->resp.bytes < PX_PIPE_HIGH && h->uc && h->uc->base.s) {
        nghttp2_session_consume(h->uc->base.s, h->up_id, (size_t)h->resp.unconsumed);
        h->resp.unconsumed = 0;
        px__sess_dirty(&h->uc->base);
    }
    if (h->resp.bytes == 0 && h->resp.eof) {
        h->resp_done = true;
        h2s_stop_timer(h);
        return true;
    }
    return false;
}

/* Called by up.c when the response head is complete. */
void px__h2s_respond(struct px_h2s *h, bool end);
void px__h2s_respond(struct px_h2s *h, bool end)
{
    if (h->finished || !h->dc || h->responded) return;
    nghttp2_nv *nv = h->rnv;
    /* rnv[0] is :status (set by up.c); append the request id */
    size_t n = h->nrnv;
    nv[n].name = (uint8_t *)"privgate-request-id";
    nv[n].namelen = 19;
    nv[n].value = (uint8_t *)h->rid;
    nv[n].valuelen = 26;
    /* |h| outlives the serialisation of its head (released once its
     * downstream stream closed); the other fields say themselves whether
     * they may be kept (up.c: rcbufs kept with |h|; h1up.c: copied).
     * NO_INDEX: a value never seen twice would only push the fields that
     * do repeat out of the caller's HPACK table (and cost an insertion and
     * an eviction per response) */
    nv[n].flags =
        NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE | NGHTTP2_NV_FLAG_NO_INDEX;
    n++;
    /* rstatus is three digits (nghttp2 validates :status; h1up formats it) */
    h->status = (h->rstatus[0] - '0') * 100 + (h->rstatus[1] - '0') * 10 + (h->rstatus[2] - '0');
    h->responded = true;
    h->t_out = uv_now(&h->w->loop);
    px__pipe_clear(h->w, &h->replay); /* answered: no retry any more */
    h->replay_ok = false;
    if (end) {
        h->resp_done = true;
        h2s_stop_timer(h);
    }
    h->dc->proto->respond(h, nv, n, end ? PX_RESP_NONE : PX_RESP_PIPE);
}

/* Called by up.c with response DATA. */
void px__h2s_resp_data(struct px_h2s *h, const uint8_t *p, size_t n);
void px__h2s_resp_data(struct px_h2s *h, const uint8_t *p, size_t n)
{
    if (h->finished || !h->dc || !h->responded) {
        if (h->uc && h->uc->base.s) nghttp2_session_consume(h->uc->base.s, h->up_id, n);
        return;
    }
    /* bytes for a caller that had nothing to take: its time starts now */
    if (h->resp.bytes == 0) h->t_out = uv_now(&h->w->loop);
    px__pipe_write(h->w, &h->resp, (const char *)p, n);
    h->resp.unconsumed += n;
    if (h->resp.bytes < PX_PIPE_HIGH && h->uc && h->uc->base.s) {
        nghttp2_session_consume(h->uc->base.s, h->up_id, (size_t)h->resp.unconsumed);
        h->resp.unconsumed = 0;
    }
    h->dc->proto->resume(h);
}

/* Called by up.c at the response's END_STREAM. */
void px__h2s_resp_end(struct px_h2s *h);
void px__h2s_resp_end(struct px_h2s *h)
{
    h->up_end_seen = true;
    h->resp.eof = true;
    if (h->dc && h->responded && !h->resp_done) h->dc->proto->resume(h);
}

/* The upstream stream or connection went away (|why|: "reset", "connect",
 * "tls", "alpn", "timeout"). */
void px__h2s_up_gone(struct px_h2s *h, const char *why)
{
    if (h->up_end_seen) return;
    if (h->finished) return;
    enum px_up_err kind = PX_UPE_UNAVAILABLE;
    if (strcmp(why, "tls") == 0)
        kind = PX_UPE_TLS;
    else if (strcmp(why, "alpn") == 0 || strcmp(why, "protocol") == 0)
        kind = PX_UPE_PROTOCOL;
    else if (strcmp(why, "timeout") == 0)
        kind = PX_UPE_TIMEOUT;
    px__metrics_up_error(h, kind);
    if (strcmp(why, "tls") == 0)
        px__h2s_fail(h, 502, "upstream_tls", "TLS with the provider failed");
    else if (strcmp(why, "alpn") == 0)
        px__h2s_fail(h, 502, "upstream_protocol", "the provider does not speak HTTP/2");
    else if (strcmp(why, "timeout") == 0)
        px__h2s_fail(h, 504, "upstream_timeout", "connecting to the provider timed out");
    else if (strcmp(why, "protocol") == 0)
        px__h2s_fail(h, 502, "upstream_protocol", "the provider's response is invalid");
    else
        px__h2s_fail(h, 502, "upstream_unavailable", "the provider is unavailable");
}

/* ----------------------------------------------------------- request path */

void px__h2s_head_done(struct px_h2s *h)
{
    const struct ctr_set *set = h->set;
    if (h->head_err) {
        px__h2s_refuse(h, h->head_err, "invalid_request",
                       "request header list larger than max_header_bytes");
        return;
    }
    if (!h->path.p || !h->method.p) {
        px__h2s_refuse(h, 400, "invalid_request", "missing :method or :path");
        return;
    }
    if (h->w->draining) {
        /* SPEC 5: a request whose head arrives during the drain (HTTP/2:
         * between the shutdown notice and the final GOAWAY; HTTP/1.1: on a
         * connection open before it) is not started */
        px__h2s_refuse(h, 503, "shutting_down", "the gateway is shutting down");
        return;
    }
    struct flt_str rest = {NULL, 0};
    const struct ctr_contract *c = ctr_set_find_provider(set, h->path.p, h->path.len, &rest);
    if (!c) {
        px__h2s_refuse(h, 404, "unknown_provider", "no contract for this provider");
        return;
    }
    h->contract = c;
    struct ctr_request req;
    memset(&req, 0, sizeof(req));
    req.method = h->method;
    req.path = rest;
    req.headers = h->hdr;
    req.nheaders = h->nhdr;
    /* names lower case, values without CR, LF or NUL: nghttp2 (HTTP
     * messaging) drops or refuses other fields, h1down.c lowers names and
     * refuses control characters */
    req.canonical = true;
    /* without a certificate's name the caller header names the caller
     * (ctr_decide finds it) */
    if (h->dc && (h->dc->mtls || h->dc->caller[0])) {
        req.caller.p = h->dc->caller;
        req.caller.len = strlen(h->dc->caller);
    }
    struct ctr_decision *d = h->d;
    if (h->body) flt_body_prefetch_json(h->body); /* fetched while ctr_decide runs */
    ctr_decide(&set->config, c, &req, d);
    if (d->status != 0) {
        px__h2s_refuse(h, d->status, d->error ? d->error : "invalid_request", d->message);
        return;
    }
    h->decided = true;
    if (d->body_kind == CTR_BODY_FIELDS) {
        uint32_t depth = set->config.limits.max_depth ? set->config.limits.max_depth : 64;
        if (!h->body || h->body_depth != depth) {
            if (h->body) flt_body_del(h->body);
            h->body = flt_body_new(depth);
            h->body_depth = depth;
            if (!h->body) {
                px__h2s_fail(h, 500, "internal_error", "out of memory");
                return;
            }
        }
        flt_body_reset(h->body, &d->body, body_sink, h, &d->report);
        h->buffer_all = d->body.reject_unlisted;
    } else if (d->body_kind == CTR_BODY_NONE) {
        h->buffer_all = true; /* nothing leaves before we know there is no body */
    }
    px__up_attach(h);
}

void px__h2s_req_end(struct px_h2s *h)
{
    h->req_end = true;
    if (h->finished || !h->decided) return;
    if (h->d->body_kind == CTR_BODY_FIELDS && h->body_seen) {
        int rv = flt_body_finish(h->body);
        if (rv < 0) {
            h2s_body_fail(h, rv);
            return;
        }
    }
    h->req.eof = true;
    h->req_done = true;
    h2s_credit_req(h);
    h2s_req_ready(h);
}

/* ----------------------------------------------------- session callbacks */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct px_down *dc = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    struct px_worker *w = dc->base.w;
    if (!w->set) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    struct px_h2s *h = px__h2s_open(dc, f->hd.stream_id);
    if (!h) {
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    nghttp2_session_set_stream_user_data(s, h->id, h);
    dc->hdr_h = h;
    dc->hdr_id = h->id;
    ctl_earn(dc, PX_CTL_PER_STREAM);
    /* header_timeout runs from here to the end of the header block */
    h->t_head = now_ms(dc);
    if (!h->t_head) h->t_head = 1; /* 0 means "complete" */
    px__down_watch_soon(dc);
    return 0;
}

struct px_h2s *px__h2s_open(struct px_down *dc, int32_t id)
{
    struct px_worker *w = dc->base.w;
    struct px_h2s *h = px__h2s_get(w);
    if (!h) return NULL;
    h->dc = dc;
    h->id = id;
    h->set = px__set_take(w);
    /* the pooled state this exchange writes first is cold (hundreds of
     * exchanges ran since it was last used): fetched while the header
     * block is decoded, not when ctr_decide and the body need it */
    __builtin_prefetch(h->d, 1);
    __builtin_prefetch((const char *)h->d + 64, 1);
    __builtin_prefetch(&h->d->report.removed, 1);
    __builtin_prefetch(&h->d->report.transformed, 1);
    if (h->body) flt_body_prefetch(h->body);
    h->down_open = true;
    h->dnext = dc->streams;
    if (dc->streams) dc->streams->dprev = h;
    dc->streams = h;
    px__request_id(w, h->rid);
    return h;
}

/* Decoded header bytes of one stream (all its blocks) past which the
 * peer is attacking (an HPACK bomb: a large entry of the dynamic table
 * referenced by many 1-byte fields): nghttp2 does not bound the decoded
 * size, max_header_bytes only answers 431, this closes the connection. */
static uint64_t bomb_limit(const struct px_h2s *h)
{
    uint64_t max = h->set->config.limits.max_header_bytes;
    if (!max) max = 65536;
    return max * 4 > 256u * 1024u ? max * 4 : 256u * 1024u;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *ud)
{
    (void)flags;
    struct px_down *dc = ud;
    if (f->hd.type != NGHTTP2_HEADERS) return 0;
    struct px_h2s *h = dc->hdr_h && dc->hdr_id == f->hd.stream_id
                           ? dc->hdr_h
                           : nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!h) return 0;
    struct flt_str n = rcstr(name), v = rcstr(value);
    /* RFC 9113 6.5.2: entry size = name + value + 32; counted on every
     * field of every block (CONTINUATIONs, trailers), kept or not */
    h->block_bytes += n.len + v.len + 32;
    if (h->block_bytes > bomb_limit(h)) {
        down_calm(dc);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the rest of the block is not delivered */
    }
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST || h->head_err)
        return 0; /* trailers are not forwarded */
    h->header_bytes += n.len + v.len + 32;
    uint64_t max = h->set->config.limits.max_header_bytes;
    if (max && h->header_bytes > max) {
        h->head_err = 431;
        return 0;
    }
    if (n.len > 0 && n.p[0] == ':') {
        struct flt_str *dst = NULL;
        if (streq(n.p, n.len, ":method"))
            dst = &h->method;
        else if (streq(n.p, n.len, ":path"))
            dst = &h->path;
        if (dst) {
            nghttp2_rcbuf_incref(value);
            h->rc[h->nrc++] = value;
            *dst = v;
        }
        return 0;
    }
    if (!px__h2s_hdr_room(h)) {
        h->head_err = 431;
        return 0;
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    h->rc[h->nrc++] = name;
    h->rc[h->nrc++] = value;
    h->hdr[h->nhdr].name = n;
    h->hdr[h->nhdr].value = v;
    h->nhdr++;
    return 0;
}

static void discard(nghttp2_session *s, int32_t id, size_t len)
{
    if (nghttp2_session_consume(s, id, len) != 0) nghttp2_session_consume_connection(s, len);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    struct px_down *dc = ud;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, id);
    px__sess_dirty(&dc->base);
    if (h && len) h->t_in = now_ms(dc);
    if (!h || px__h2s_req_body(h, (const char *)data, len) != 0) {
        discard(s, id, len);
        return 0;
    }
    return 0;
}

int px__h2s_req_body(struct px_h2s *h, const char *data, size_t len)
{
    if (h->finished || !h->decided) return -1;
    h->bytes_in += len;
    if (len == 0) return 0;
    h->body_seen = true;
    switch (h->d->body_kind) {
    case CTR_BODY_FIELDS: {
        if (h->d->body.media == FLT_MEDIA_NONE) {
            char msg[128];
            snprintf(msg, sizeof(msg), "body without content-type: %s",
                     flt_strerror(FLT_E_MEDIA_TYPE));
            px__h2s_refuse(h, ctr_status_for(FLT_E_MEDIA_TYPE), flt_errcode(FLT_E_MEDIA_TYPE), msg);
            return -1;
        }
        int rv = flt_body_feed(h->body, data, len);
        if (rv < 0) {
            h2s_body_fail(h, rv);
            return -1;
        }
        break;
    }
    case CTR_BODY_OPAQUE: {
        uint64_t max = h->set->config.limits.max_body;
        if (max && h->req.total + len > max) {
            h2s_body_fail(h, FLT_E_TOO_LARGE);
            return -1;
        }
        px__pipe_write(h->w, &h->req, data, len);
        break;
    }
    default: h2s_body_fail(h, FLT_E_BODY_NOT_ALLOWED); return -1;
    }
    h->req.unconsumed += len;
    h2s_credit_req(h);
    if (h->req.bytes > 0) h2s_req_ready(h);
    return 0;
}

static void h2_final_goaway(struct px_down *dc);
/* The opaque data of the drain's PING: only its ACK (not a SETTINGS ACK,
 * nor the ACK of a PING the peer made up) ends the round trip. */
#define PX_DRAIN_PING "pgdrain1"

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct px_down *dc = ud;
    /* activity for idle_timeout: whole frames, not bytes (a frame that
     * trickles in byte by byte does not keep a connection alive) */
    dc->last_active = now_ms(dc);
    switch (f->hd.type) {
    case NGHTTP2_RST_STREAM: budget_take(dc); return 0; /* rapid reset (CVE-2023-44487) */
    case NGHTTP2_SETTINGS:
        /* the handshake is done (TLS, preface, SETTINGS): from now on the
         * connection may wait for its first request as long as
         * idle_timeout allows — pools open connections ahead of use */
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK)) {
            dc->had_request = true;
            budget_take(dc); /* floods: each costs an ACK */
        }
        return 0;
    case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK))
            budget_take(dc); /* floods: each costs an ACK */
        else if (dc->final_goaway_at &&
                 memcmp(f->ping.opaque_data, PX_DRAIN_PING, sizeof(f->ping.opaque_data)) == 0)
            h2_final_goaway(dc); /* a round trip after the notice: our PING's ACK only */
        return 0;
    case NGHTTP2_DATA:
        /* an empty DATA frame that does not end the stream does nothing but
         * cost us a wake-up: a flood of them is an attack */
        if (f->hd.length <= f->data.padlen && !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
            budget_take(dc);
        break;
    case NGHTTP2_HEADERS: break;
    default: return 0;
    }
    if (dc->calm) return 0;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!h) return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        h->t_head = 0;
        h->t_in = dc->last_active;
        dc->had_request = true;
        px__h2s_head_done(h);
    }
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) px__h2s_req_end(h);
    return 0;
}

/* Every frame header (docs/GATEWAY.md "Protections"): the control frames
 * that cost the allowance of ctl_take. nghttp2 calls this for frames of
 * an unknown type only because serve.c registers every such type as an
 * extension (on_unpack_ext then drops them); it does not call it for
 * frames it ignores otherwise, nor after down_calm (nothing is read). */
static int on_begin_frame(nghttp2_session *s, const nghttp2_frame_hd *hd, void *ud)
{
    struct px_down *dc = ud;
    switch (hd->type) {
    case NGHTTP2_WINDOW_UPDATE:
        /* one that opens a window we exhausted is flow control at work:
         * free (a closed stream's window reads -1) */
        if (hd->stream_id ? nghttp2_session_get_stream_remote_window_size(s, hd->stream_id) == 0
                          : nghttp2_session_get_remote_window_size(s) <= 0)
            return 0;
        ctl_take(dc);
        return 0;
    case NGHTTP2_PRIORITY: ctl_take(dc); return 0;
    default:
        if (hd->type > NGHTTP2_CONTINUATION) ctl_take(dc);
        return 0;
    }
}

/* Frames of an unknown type (registered in serve.c only to be counted by
 * on_begin_frame): ignored, as RFC 9113 5.5 says. */
static int on_unpack_ext(nghttp2_session *s, void **payload, const nghttp2_frame_hd *hd, void *ud)
{
    (void)s;
    (void)payload;
    (void)hd;
    (void)ud;
    return NGHTTP2_ERR_CANCEL;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    struct px_h2s *h = nghttp2_session_get_stream_user_data(s, id);
    if (!h) return 0;
    /* (no need to clear the stream's user data: nghttp2 finds no closed
     * stream any more, nghttp2_session_get_stream) */
    px__h2s_down_closed(h);
    return 0;
}

/* Resets the gateway sends because of the peer's stream errors ("MadeYouReset",
 * CVE-2025-8671: window overflow by WINDOW_UPDATE, DATA beyond
 * content-length, streams above the concurrency limit, malformed
 * headers...) cost the peer like its own RST_STREAMs. Our own resets
 * (INTERNAL_ERROR: the provider failed; CANCEL; NO_ERROR after an
 * answer) do not. A DATA frame sent earns the allowance of ctl_take; a
 * GOAWAY with an error makes the close linger. */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)s;
    struct px_down *dc = ud;
    if (f->hd.type == NGHTTP2_DATA) {
        /* the caller may acknowledge it, and a client that reads in small
         * pieces sends a stream and a connection WINDOW_UPDATE per 4 KiB
         * (Go's net/http) */
        ctl_earn(dc, PX_CTL_PER_DATA + (int32_t)(f->hd.length / 2048));
        return 0;
    }
    if (f->hd.type == NGHTTP2_GOAWAY && f->goaway.error_code != NGHTTP2_NO_ERROR && !dc->calm) {
        /* a connection error (ours, or one nghttp2 found itself: a
         * WINDOW_UPDATE of 0, a frame on an idle stream...): nothing more
         * is decoded, and the close lingers as for down_calm, so that the
         * peer's unread input does not turn the GOAWAY into a TCP reset */
        dc->calm = true;
        dc->goaway = true;
        kill_after(dc, PX_LINGER_MS);
        return 0;
    }
    if (f->hd.type != NGHTTP2_RST_STREAM) return 0;
    uint32_t ec = f->rst_stream.error_code;
    if (ec != NGHTTP2_NO_ERROR && ec != NGHTTP2_INTERNAL_ERROR && ec != NGHTTP2_CANCEL)
        budget_take(dc);
    return 0;
}

nghttp2_session_callbacks *px__down_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return NULL;
    nghttp2_session_callbacks_set_send_callback(cb, px_h2_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_unpack_extension_callback(cb, on_unpack_ext);
    nghttp2_session_callbacks_set_send_data_callback(cb, down_send_data);
    return cb;
}

/* ------------------------------------------------------------ connection */

void px__down_unref(struct px_down *dc)
{
    if (--dc->handles > 0) return;
    if (dc->h1) px__h1_free(dc->h1);
    free(dc);
}

static void down_free(struct px_conn *c)
{
    px__down_unref(c->ud);
}

static void idle_closed(uv_handle_t *h)
{
    px__down_unref(h->data);
}

/* ------------------------------------------------------------- watchdog */
/*
 * One timer per connection (dc->idle) enforces, docs/GATEWAY.md
 * "Protections":
 * - idle_timeout (SPEC 3): a connection without open streams and without
 *   frames (HTTP/1.1: without requests) for that long is sent GOAWAY and
 *   closed;
 * - header_timeout: the handshake (TLS, HTTP/2 preface and SETTINGS;
 *   HTTP/1.1: the first request head) must be complete that long after
 *   accept; every request head
 *   that long after its start; a request body must make progress at least
 *   that often while the caller has flow-control credit;
 * - idle_timeout again per stream: a response whose bytes wait for a
 *   caller that takes none for that long is reset (a 1-byte window, or a
 *   reader that stopped);
 * - kill_at: the end of the grace given after a GOAWAY.
 * Without streams it fires at the next deadline only (an idle connection
 * costs no wake-ups); with streams every watch_period.
 */

static uint64_t watch_period(uint64_t ht, uint64_t idle)
{
    uint64_t p = 1000;
    if (ht && ht / 4 < p) p = ht / 4;
    if (idle && idle / 4 < p) p = idle / 4;
    return p < 20 ? 20 : p;
}

static void watch_cb(uv_timer_t *t);

static void watch_arm(struct px_down *dc, bool busy)
{
    if (dc->base.dead) return;
    const struct ctr_limits *lim = &dc->base.w->set->config.limits;
    uint64_t ht = lim->header_timeout_ms, idle = lim->idle_timeout_ms;
    uint64_t now = now_ms(dc), next = UINT64_MAX, period = watch_period(ht, idle);
    /* a deadline already past was acted on (the connection is closing):
     * look again a period later. Never 0: libuv 1.44 runs a timer re-armed
     * with 0 from its own callback again at once, for ever. */
#define PX_SOONER(at)                                                                              \
    next = (at) <= now ? (period < next ? period : next) : ((at)-now < next ? (at)-now : next)
    if (dc->kill_at) PX_SOONER(dc->kill_at);
    if (dc->final_goaway_at) PX_SOONER(dc->final_goaway_at);
    if (busy || dc->streams) PX_SOONER(now + period);
    if (ht && !dc->had_request && !dc->goaway) PX_SOONER(dc->t_accept + ht);
    if (idle && !dc->streams) PX_SOONER(dc->last_active + idle);
#undef PX_SOONER
    if (next == UINT64_MAX)
        uv_timer_stop(&dc->idle);
    else
        uv_timer_start(&dc->idle, watch_cb, next, 0);
}

void px__down_watch_soon(struct px_down *dc)
{
    if (dc->base.dead) return;
    const struct ctr_limits *lim = &dc->base.w->set->config.limits;
    uint64_t p = watch_period(lim->header_timeout_ms, lim->idle_timeout_ms);
    if (!uv_is_active((uv_handle_t *)&dc->idle) || uv_timer_get_due_in(&dc->idle) > p)
        uv_timer_start(&dc->idle, watch_cb, p, 0);
}

/* The HTTP/2 streams of |dc|. Returns true while one needs watching. */
static bool h2_watch(struct px_down *dc, uint64_t now, uint64_t ht, uint64_t idle)
{
    /* a stream held back by our own back-pressure keeps its credit, and
     * may hold the connection window: no body is late on such a
     * connection */
    bool held = false;
    for (struct px_h2s *h = dc->streams; h; h = h->dnext)
        held |= h->req.unconsumed != 0;
    for (struct px_h2s *h = dc->streams, *next; h; h = next) {
        next = h->dnext;
        if (ht && h->t_head && now - h->t_head >= ht) {
            /* a header block not complete in time: the peer can send
             * nothing else on the connection until it ends, and its HPACK
             * state is mid-block, so the connection goes */
            down_calm(dc);
            return false;
        }
        if (ht && !h->t_head && !h->req_end && !held && now - h->t_in >= ht) {
            h->t_in = now; /* one step per header_timeout */
            if (!h->responded && !h->up_submitted) {
                px__h2s_refuse(h, 408, "invalid_request",
                               "request body did not progress within header_timeout");
            } else if (!h->finished) {
                /* part of the request left (cancelled now: the provider
                 * never sees it complete): `failed`, not `refused`, since
                 * the audit must not suggest nothing was shared */
                px__h2s_fail(h, 408, "invalid_request",
                             "request body did not progress within header_timeout");
            } else if (dc->base.s) {
                /* answered already: stop the body for good (RFC 9113 8.1) */
                nghttp2_submit_rst_stream(dc->base.s, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_NO_ERROR);
                px__sess_dirty(&dc->base);
            }
            continue;
        }
        if (idle && h->responded && !h->finished && !h->resp_done && h->resp.bytes > 0 &&
            now - h->t_out >= idle) {
            /* response bytes wait and the caller takes none (a window of
             * 0 or 1 byte, or it stopped reading): free the stream */
            px__h2s_fail(h, 408, "invalid_request", "the caller did not read the response");
        }
    }
    return dc->streams != NULL;
}

static void watch_cb(uv_timer_t *t)
{
    struct px_down *dc = t->data;
    if (dc->base.dead) return;
    uint64_t now = now_ms(dc);
    if (dc->kill_at && now >= dc->kill_at) {
        dc->kill_at = 0;
        dc->calm = false; /* no more grace: close now */
        px__down_kill(dc);
        return;
    }
    if (dc->final_goaway_at && now >= dc->final_goaway_at) h2_final_goaway(dc);
    const struct ctr_limits *lim = &dc->base.w->set->config.limits;
    uint64_t ht = lim->header_timeout_ms, idle = lim->idle_timeout_ms;
    bool busy = false;
    if (dc->h1)
        busy = px__h1_watch(dc, now, ht, idle);
    else if (dc->base.s && !dc->calm)
        busy = h2_watch(dc, now, ht, idle);
    if (dc->base.dead) return;
    if (ht && !dc->had_request && !dc->goaway && !busy && !dc->streams &&
        now - dc->t_accept >= ht) {
        /* no handshake in time (TLS, preface and SETTINGS; HTTP/1.1: the
         * first head): close */
        if (dc->base.s) {
            nghttp2_session_terminate_session(dc->base.s, NGHTTP2_NO_ERROR);
            dc->goaway = true;
            px__sess_dirty(&dc->base);
            kill_after(dc, PX_LINGER_MS);
        } else {
            px__down_kill(dc);
            return;
        }
    }
    /* (an HTTP/1.1 head that trickles in is no activity: it counts) */
    if (idle && !dc->streams && now - dc->last_active >= idle) {
        if (dc->goaway) {
            px__down_kill(dc);
            return;
        }
        px__down_goaway(dc);
        if (dc->base.dead) return;
        kill_after(dc, PX_LINGER_MS); /* then close even if the peer stays */
        dc->last_active = now;
    }
    watch_arm(dc, busy);
}

/* Sends TLS close_notify on a connection with no output pending (so that
 * it cannot interleave): the end of our side is then not taken for a
 * truncation (RFC 8446 6.1). Best effort: a peer whose socket buffer is
 * full does not get it. Not after a TLS error or the peer's EOF. */
void px__down_close_notify(struct px_conn *c)
{
    px_conn_tls_close_notify(c);
}

void px__down_kill(struct px_down *dc)
{
    if (dc->base.dead) return;
    struct px_conn *c = &dc->base.conn;
    if (dc->calm && dc->base.s && !c->closing && !px_conn_busy(c)) {
        /* told to calm down, and the GOAWAY is out: shut our side and drop
         * the peer's bytes until it closes (or kill_at), so that its unread
         * input does not turn our GOAWAY into a TCP reset. With TLS its
         * records are still decrypted (px_conn has no raw drain), for at
         * most PX_LINGER_MS. */
        px__sess_undirty(&dc->base);
        while (dc->streams)
            px__h2s_down_closed(dc->streams);
        nghttp2_session_del(dc->base.s);
        dc->base.s = NULL;
        px__down_close_notify(c);
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) shutdown(fd, SHUT_WR);
        return;
    }
    dc->base.dead = true;
    struct px_worker *w = dc->base.w;
    px__sess_undirty(&dc->base);
    while (dc->streams)
        px__h2s_down_closed(dc->streams);
    if (dc->base.s) {
        nghttp2_session_del(dc->base.s);
        dc->base.s = NULL;
    }
    if (dc->h1) px__h1_kill(dc);
    if (dc->prev)
        dc->prev->next = dc->next;
    else
        w->downs = dc->next;
    if (dc->next) dc->next->prev = dc->prev;
    dc->prev = dc->next = NULL;
    uv_timer_stop(&dc->idle);
    uv_close((uv_handle_t *)&dc->idle, idle_closed);
    px__down_close_notify(c);
    px_conn_close(&dc->base.conn);
    if (w->draining) px__worker_poke(w); /* the last connection may be gone */
}

void px__down_goaway(struct px_down *dc)
{
    if (dc->base.dead) return;
    if (!dc->proto) {
        px__down_kill(dc); /* no request yet: the protocol is not even known */
        return;
    }
    dc->proto->goaway(dc);
}

/* --------------------------------------------------- HTTP/2 implementation */

static int h2_respond(struct px_h2s *h, const nghttp2_nv *nv, size_t n, enum px_resp_body body)
{
    nghttp2_session *s = h->dc->base.s;
    nghttp2_data_provider prd;
    prd.source.ptr = h;
    prd.read_callback = body == PX_RESP_ERR ? err_read : resp_read;
    int rv = nghttp2_submit_response(s, h->id, nv, n, body == PX_RESP_NONE ? NULL : &prd);
    if (rv != 0) nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_INTERNAL_ERROR);
    px__sess_dirty(&h->dc->base);
    return rv != 0 ? -1 : 0;
}

static void h2_resume(struct px_h2s *h)
{
    nghttp2_session_resume_data(h->dc->base.s, h->id);
    px__sess_dirty(&h->dc->base);
}

static void h2_reset(struct px_h2s *h)
{
    nghttp2_submit_rst_stream(h->dc->base.s, NGHTTP2_FLAG_NONE, h->id, NGHTTP2_INTERNAL_ERROR);
    px__sess_dirty(&h->dc->base);
}

static void h2_goaway(struct px_down *dc)
{
    if (dc->goaway || !dc->base.s) return;
    dc->goaway = true;
    if (dc->base.w->draining && !dc->calm && nghttp2_submit_shutdown_notice(dc->base.s) == 0) {
        /* RFC 9113 6.8: GOAWAY(2^31-1) first, so that a request the peer
         * sends before it reads the notice is still processed (answered
         * 503 shutting_down, px__h2s_head_done) instead of being dropped;
         * the final GOAWAY follows a round trip later (the PING's ACK), or
         * after PX_LINGER_MS from a peer that does not answer PINGs */
        nghttp2_submit_ping(dc->base.s, NGHTTP2_FLAG_NONE, (const uint8_t *)PX_DRAIN_PING);
        dc->final_goaway_at = now_ms(dc) + PX_LINGER_MS;
        watch_arm(dc, dc->streams != NULL);
        px__sess_dirty(&dc->base);
        return;
    }
    nghttp2_submit_goaway(dc->base.s, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(dc->base.s), NGHTTP2_NO_ERROR,
                          NULL, 0);
    px__sess_dirty(&dc->base);
}

static void h2_final_goaway(struct px_down *dc)
{
    dc->final_goaway_at = 0;
    if (dc->base.dead || !dc->base.s) return;
    nghttp2_submit_goaway(dc->base.s, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(dc->base.s), NGHTTP2_NO_ERROR,
                          NULL, 0);
    px__sess_dirty(&dc->base);
}

const struct px_down_proto px__down_h2 = {h2_respond, h2_resume, h2_reset, h2_credit, h2_goaway};

/* The connection is HTTP/2: the session, then our SETTINGS. */
static void h2_start(struct px_down *dc)
{
    struct px_worker *w = dc->base.w;
    dc->proto = &px__down_h2;
    if (nghttp2_session_server_new3(&dc->base.s, w->gw->down_cbs, dc, w->gw->down_opt,
                                    px_pool_nghttp2_mem()) != 0) {
        dc->base.s = NULL;
        px__down_kill(dc);
        return;
    }
    const struct ctr_limits *lim = &w->set->config.limits;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         lim->max_streams_per_connection ? lim->max_streams_per_connection : 128},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_DOWN_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         (uint32_t)(lim->max_header_bytes ? lim->max_header_bytes : 65536)},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(dc->base.s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(dc->base.s, NGHTTP2_FLAG_NONE, 0, PX_CONN_WINDOW);
    if (w->draining) px__down_goaway(dc);
    px__sess_dirty(&dc->base);
}

/* The caller named by a verified client certificate: its subject CN, or
 * without one its first DNS subjectAltName (SPEC 3). On a listener with
 * client_ca, only the certificate names the caller: dc->mtls makes the
 * decision ignore the caller header, even when no usable name was found. */
static void peer_cn(struct px_down *dc)
{
    SSL *ssl = dc->base.conn.ssl;
    dc->caller[0] = '\0';
    if (!ssl) return;
    dc->mtls = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK) return;
    const ASN1_STRING *name = NULL;
    X509_NAME *nm = X509_get_subject_name(x);
    int at = X509_NAME_get_index_by_NID(nm, NID_commonName, -1);
    if (at >= 0) name = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, at));
    GENERAL_NAMES *sans = NULL;
    if (!name) {
        sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type == GEN_DNS) {
                name = gn->d.dNSName;
                break;
            }
        }
    }
    unsigned char *u = NULL;
    int len = name ? ASN1_STRING_to_UTF8(&u, name) : -1;
    /* a name that does not fit or holds a NUL names nobody */
    if (len > 0 && (size_t)len < sizeof(dc->caller) && !memchr(u, 0, (size_t)len)) {
        memcpy(dc->caller, u, (size_t)len);
        dc->caller[len] = '\0';
    }
    OPENSSL_free(u);
    GENERAL_NAMES_free(sans);
}

static void dc_on_ready(struct px_conn *c, const char *err)
{
    struct px_down *dc = c->ud;
    if (err) {
        px__down_kill(dc);
        return;
    }
    if (c->ssl) {
        peer_cn(dc);
        const char *p;
        unsigned n;
        px_conn_alpn(c, &p, &n);
        if (n == 2 && memcmp(p, "h2", 2) == 0) {
            h2_start(dc);
        } else if (n == 8 && memcmp(p, "http/1.1", 8) == 0) {
            px__h1_start(dc, NULL, 0);
        } else if (n != 0) {
            px__down_kill(dc);
        }
        /* no ALPN: told apart by the first bytes, as in cleartext */
        return;
    }
    /* cleartext: HTTP/2 prior knowledge or HTTP/1.1, told apart by the
     * first bytes (dc_on_read) */
}

static const char h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static void h2_read(struct px_down *dc, const char *p, size_t n)
{
    if (dc->calm) return; /* closing: its bytes cost us nothing more */
    ssize_t r = nghttp2_session_mem_recv(dc->base.s, (const uint8_t *)p, n);
    if (r == NGHTTP2_ERR_FLOODED || r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        /* nghttp2's own limits: more PING/SETTINGS ACKs queued than
         * max_outbound_ack, or a header block in more CONTINUATIONs than
         * max_continuations (CVE-2024-28182) */
        down_calm(dc);
    } else if (r < 0) {
        /* protocol error: send GOAWAY, then close (px_h2_flush reports it) */
        nghttp2_session_terminate_session(dc->base.s, NGHTTP2_PROTOCOL_ERROR);
    } else if (!dc->calm && nghttp2_session_get_outbound_queue_size(dc->base.s) > PX_OBQ_MAX) {
        /* the peer makes us queue frames (resets, ACKs, WINDOW_UPDATEs) it
         * does not read: memory it could grow without bound */
        down_calm(dc);
    }
    px__sess_dirty(&dc->base);
}

/* Before the protocol is known: the bytes read so far are kept in
 * dc->sniff while they are a prefix of the HTTP/2 client preface. */
static void sniff(struct px_down *dc, const char *p, size_t n)
{
    size_t k = 0;
    while (k < n && dc->nsniff + k < sizeof(h2_preface) && p[k] == h2_preface[dc->nsniff + k])
        k++;
    if (k == n && dc->nsniff + k < sizeof(h2_preface)) {
        memcpy(dc->sniff + dc->nsniff, p, n); /* a prefix so far: wait for more */
        dc->nsniff = (uint8_t)(dc->nsniff + n);
        return;
    }
    uint8_t had = dc->nsniff;
    dc->nsniff = 0;
    if (had + k == sizeof(h2_preface)) {
        h2_start(dc);
        if (dc->base.dead) return;
        h2_read(dc, h2_preface, had);
        if (!dc->base.dead && dc->base.s) h2_read(dc, p, n);
        return;
    }
    /* HTTP/1.1: the kept bytes first, then these */
    char keep[sizeof(dc->sniff)];
    memcpy(keep, dc->sniff, had);
    px__h1_start(dc, keep, had);
    if (!dc->base.dead) px__h1_read(dc, p, n);
}

static void dc_on_read(struct px_conn *c, const char *p, size_t n)
{
    struct px_down *dc = c->ud;
    if (dc->base.dead) return;
    px__clock_tick(dc->base.w); /* the exchanges these bytes open share one start time */
    if (dc->h1) {
        px__h1_read(dc, p, n);
        return;
    }
    if (dc->calm) return;
    if (!dc->proto) {
        dc->last_active = uv_now(&dc->base.w->loop);
        sniff(dc, p, n);
        return;
    }
    if (!dc->base.s) return;
    h2_read(dc, p, n);
}

static void dc_on_eof(struct px_conn *c, const char *err)
{
    (void)err;
    struct px_down *dc = c->ud;
    if (dc->h1 && !dc->base.dead) {
        px__h1_eof(dc); /* the answers to requests already read may still go out */
        return;
    }
    px__down_kill(dc);
}

static void dc_on_writable(struct px_conn *c)
{
    struct px_down *dc = c->ud;
    px__sess_dirty(&dc->base);
}

static const struct px_conn_ops down_ops = {dc_on_ready, dc_on_read, dc_on_eof, dc_on_writable,
                                            down_free};

void px__down_accept(struct px_worker *w, uv_stream_t *server, SSL_CTX *ctx)
{
    struct px_down *dc = calloc(1, sizeof(*dc));
    if (!dc) return;
    dc->base.w = w;
    if (px_conn_init(&w->loop, &dc->base.conn, &down_ops, dc) != 0) {
        free(dc);
        return;
    }
    dc->handles = 2;
    uv_timer_init(&w->loop, &dc->idle);
    dc->idle.data = dc;
    dc->last_active = dc->t_accept = dc->budget_t = uv_now(&w->loop);
    dc->budget = PX_CALM_BURST;
    dc->ctl_free = PX_CTL_FREE_START;
    watch_arm(dc, false);
    dc->next = w->downs;
    if (w->downs) w->downs->prev = dc;
    w->downs = dc;
    if (px_conn_accept(&dc->base.conn, server, ctx) != 0) px__down_kill(dc);
}
