/*
 * privgate-demo-partner: a small HTTP/2 server on loopback that answers
 * each request with a JSON description of what it received (method, path,
 * headers, body), and can append each request as one JSON line to a file.
 * It plays the provider in the README's demo and the recording upstream in
 * the end-to-end tests. Not part of the gateway; allocates freely.
 *
 *   privgate-demo-partner [--listen HOST:PORT] [--h2c] [--cert F --key F]
 *                         [--cert-out F] [--record F] [--port-file F]
 *                         [--delay-ms N] [--status N] [--break-response]
 *                         [--max-echo N] [--goaway-after N] [--refuse-every N]
 *                         [--no-content-length] [--max-streams N] [--log-streams F]
 *                         [--take-no-body]
 *                         fault injection (tests/e2e/test_faults.c):
 *                         [--reset-request-after BYTES] [--close-request-after BYTES]
 *                         [--reset-response] [--stall-response] [--garbage-response]
 *                         [--garbage] [--goaway-on-connect] [--hold-file F]
 */
#include "proxy/net.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

struct opts {
    const char *host;
    unsigned port;
    bool h2c;
    const char *cert, *key, *cert_out, *record, *port_file;
    unsigned delay_ms;
    unsigned status;
    bool no_length; /* --no-content-length: responses without one (streamed) */
    size_t max_echo;
    unsigned goaway_after;
    unsigned refuse_every;
    /* fault injection: what a broken provider does, for the tests */
    size_t reset_request_after; /* RST_STREAM once this much body came, before its end */
    size_t close_request_after; /* the same, closing the connection instead */
    enum { MID_NONE, MID_BREAK, MID_RESET, MID_STALL, MID_GARBAGE } mid_response;
    bool garbage;            /* answer a new connection with bytes that are not HTTP/2 */
    bool goaway_on_connect;  /* GOAWAY(last stream 0) at once, process nothing */
    const char *hold_file;   /* answer paths with "hold=1" once this file exists */
    unsigned max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS (nghttp2 refuses above it) */
    bool take_no_body;       /* never opens a flow-control window: a provider that stops reading */
    const char *log_streams; /* one line per request HEADERS and RST_STREAM received */
};

static struct opts O = {
    .host = "127.0.0.1", .status = 200, .max_echo = 1u << 20, .max_streams = 1000};
static SSL_CTX *g_ctx;
static uv_loop_t *g_loop;
static int g_record_fd = -1;
static int g_log_fd = -1;
static unsigned g_conns; /* connections accepted: numbers them in --log-streams */

struct dbuf {
    char *p;
    size_t len, cap;
};

static void db_add(struct dbuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            fputs("privgate-demo-partner: out of memory\n", stderr);
            exit(1);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void db_str(struct dbuf *b, const char *s)
{
    db_add(b, s, strlen(s));
}

/* JSON string with minimal escaping; bytes >= 0x80 pass through. */
static void db_json(struct dbuf *b, const char *p, size_t n)
{
    db_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char e[8];
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            db_add(b, e, 2);
        } else if (ch < 0x20) {
            int k = snprintf(e, sizeof(e), "\\u%04x", ch);
            db_add(b, e, (size_t)k);
        } else {
            db_add(b, (const char *)&p[i], 1);
        }
    }
    db_add(b, "\"", 1);
}

struct dconn;

struct dstream {
    struct dconn *dc;
    int32_t id;
    struct dbuf method, path, authority, scheme;
    struct dbuf hdrs; /* JSON members */
    struct dbuf body;
    size_t body_len;
    EVP_MD_CTX *sha;
    struct dbuf resp;
    size_t resp_off;
    uv_timer_t timer;
    bool timer_on;
    bool gone;
    bool faulted;       /* the mid-request fault was injected */
    bool reset_pending; /* --reset-response: reset at the next flush */
    struct dstream *prev, *next;
};

struct dconn {
    struct px_conn conn; /* first: px_h2_send_cb */
    nghttp2_session *s;
    uv_idle_t idle;
    bool dead;
    unsigned requests; /* complete requests received */
    unsigned seen;     /* for --refuse-every */
    unsigned serial;   /* for --log-streams: 1 for the first connection accepted */
    struct dstream *streams;
    bool reset_pending;   /* --reset-response: some stream is to be reset */
    bool garbage_pending; /* --garbage-response: raw bytes to write at the next flush */
};

static void dconn_flush(struct dconn *d);

static void stream_free(struct dstream *st)
{
    EVP_MD_CTX_free(st->sha);
    free(st->method.p);
    free(st->path.p);
    free(st->authority.p);
    free(st->scheme.p);
    free(st->hdrs.p);
    free(st->body.p);
    free(st->resp.p);
    free(st);
}

static void timer_closed(uv_handle_t *h)
{
    stream_free(h->data);
}

static void stream_release(struct dstream *st)
{
    st->gone = true;
    if (st->prev)
        st->prev->next = st->next;
    else
        st->dc->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    if (st->timer_on) {
        uv_timer_stop(&st->timer);
        uv_close((uv_handle_t *)&st->timer, timer_closed);
    } else {
        stream_free(st);
    }
}

static ssize_t resp_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct dstream *st = src->ptr;
    size_t n = st->resp.len - st->resp_off;
    if (O.mid_response != MID_NONE) {
        /* send half the body, then fail in the way asked for */
        size_t half = st->resp.len / 2;
        if (st->resp_off >= half) {
            if (O.mid_response == MID_BREAK) st->dc->dead = true;
            if (O.mid_response == MID_RESET) st->reset_pending = st->dc->reset_pending = true;
            if (O.mid_response == MID_GARBAGE) st->dc->garbage_pending = true;
            /* MID_STALL: deferred for ever, the connection stays open */
            if (O.mid_response != MID_STALL) dconn_flush(st->dc);
            return NGHTTP2_ERR_DEFERRED;
        }
        if (n > half - st->resp_off) n = half - st->resp_off;
    }
    if (n > len) n = len;
    memcpy(buf, st->resp.p + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp.len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static void respond(struct dstream *st)
{
    char status[8], clen[24];
    snprintf(status, sizeof(status), "%u", O.status);
    snprintf(clen, sizeof(clen), "%zu", st->resp.len);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)status, 7, strlen(status), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"x-demo-partner", (uint8_t *)"1", 14, 1, NGHTTP2_NV_FLAG_NONE},
    };
    if (O.no_length) nv[2] = nv[3];
    nghttp2_data_provider prd;
    prd.source.ptr = st;
    prd.read_callback = resp_read;
    nghttp2_submit_response(st->dc->s, st->id, nv, sizeof(nv) / sizeof(nv[0]) - O.no_length, &prd);
    dconn_flush(st->dc);
}

static void delay_cb(uv_timer_t *t)
{
    struct dstream *st = t->data;
    if (!st->gone) respond(st);
}

/* --hold-file: polled (the test creates the file to release the answers) */
static void hold_cb(uv_timer_t *t)
{
    struct dstream *st = t->data;
    if (st->gone || access(O.hold_file, F_OK) != 0) return;
    uv_timer_stop(t);
    respond(st);
}

static void build_and_respond(struct dstream *st)
{
    struct dbuf *r = &st->resp;
    db_str(r, "{\"method\":");
    db_json(r, st->method.p ? st->method.p : "", st->method.len);
    db_str(r, ",\"path\":");
    db_json(r, st->path.p ? st->path.p : "", st->path.len);
    db_str(r, ",\"authority\":");
    db_json(r, st->authority.p ? st->authority.p : "", st->authority.len);
    db_str(r, ",\"scheme\":");
    db_json(r, st->scheme.p ? st->scheme.p : "", st->scheme.len);
    db_str(r, ",\"headers\":{");
    if (st->hdrs.p) db_add(r, st->hdrs.p, st->hdrs.len);
    db_str(r, "},\"body_len\":");
    char num[32];
    snprintf(num, sizeof(num), "%zu", st->body_len);
    db_str(r, num);
    unsigned char md[32];
    EVP_DigestFinal_ex(st->sha, md, NULL);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    db_str(r, ",\"body_sha256\":\"");
    db_str(r, hex);
    db_str(r, "\"");
    if (st->body_len <= O.max_echo) {
        db_str(r, ",\"body\":");
        db_json(r, st->body.p ? st->body.p : "", st->body.len);
    }
    db_str(r, "}");
    if (g_record_fd >= 0) {
        db_add(r, "\n", 1);
        ssize_t w = write(g_record_fd, r->p, r->len);
        (void)w;
        r->len--;
        r->p[r->len] = '\0';
    }
    if (O.hold_file && st->path.p && strstr(st->path.p, "hold=1")) {
        uv_timer_init(g_loop, &st->timer);
        st->timer.data = st;
        st->timer_on = true;
        uv_timer_start(&st->timer, hold_cb, 10, 10);
        return;
    }
    if (O.delay_ms > 0) {
        uv_timer_init(g_loop, &st->timer);
        st->timer.data = st;
        st->timer_on = true;
        uv_timer_start(&st->timer, delay_cb, O.delay_ms, 0);
        return;
    }
    respond(st);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct dconn *d = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    struct dstream *st = calloc(1, sizeof(*st));
    if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->dc = d;
    st->id = f->hd.stream_id;
    st->next = d->streams;
    if (d->streams) d->streams->prev = st;
    d->streams = st;
    st->sha = EVP_MD_CTX_new();
    EVP_DigestInit_ex(st->sha, EVP_sha256(), NULL);
    nghttp2_session_set_stream_user_data(s, st->id, st);
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct dstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st) return 0;
    const char *n = (const char *)name, *v = (const char *)value;
    if (nl == 7 && memcmp(n, ":method", 7) == 0)
        db_add(&st->method, v, vl);
    else if (nl == 5 && memcmp(n, ":path", 5) == 0)
        db_add(&st->path, v, vl);
    else if (nl == 10 && memcmp(n, ":authority", 10) == 0)
        db_add(&st->authority, v, vl);
    else if (nl == 7 && memcmp(n, ":scheme", 7) == 0)
        db_add(&st->scheme, v, vl);
    else if (nl > 0 && n[0] != ':') {
        if (st->hdrs.len) db_add(&st->hdrs, ",", 1);
        db_json(&st->hdrs, n, nl);
        db_add(&st->hdrs, ":", 1);
        db_json(&st->hdrs, v, vl);
    }
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    (void)ud;
    struct dstream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->faulted) return 0;
    st->body_len += len;
    EVP_DigestUpdate(st->sha, data, len);
    if (st->body.len + len <= O.max_echo) db_add(&st->body, (const char *)data, len);
    /* a provider that gives up while the request body is still coming:
     * the request is never complete here, so it is never recorded */
    if (O.reset_request_after && st->body_len >= O.reset_request_after) {
        st->faulted = true;
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        dconn_flush(st->dc);
    } else if (O.close_request_after && st->body_len >= O.close_request_after) {
        st->faulted = true;
        st->dc->dead = true;
        dconn_flush(st->dc);
    }
    return 0;
}

/* --log-streams: what the gateway opened, as it arrives (a stream whose
 * body never completes is never recorded by --record, but is here):
 *   headers conn=C stream=S end=0|1 path=P
 *   rst conn=C stream=S code=N */
static void log_stream(const struct dconn *d, const nghttp2_frame *f, const char *path)
{
    if (g_log_fd < 0) return;
    char line[512];
    int n;
    if (f->hd.type == NGHTTP2_HEADERS)
        n = snprintf(line, sizeof(line), "headers conn=%u stream=%d end=%d path=%.300s\n",
                     d->serial, f->hd.stream_id, (f->hd.flags & NGHTTP2_FLAG_END_STREAM) ? 1 : 0,
                     path ? path : "");
    else
        n = snprintf(line, sizeof(line), "rst conn=%u stream=%d code=%u\n", d->serial,
                     f->hd.stream_id, f->rst_stream.error_code);
    if (n > 0) {
        ssize_t w = write(g_log_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
        (void)w;
    }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    struct dconn *dc = ud;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
        struct dstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        log_stream(dc, f, st ? st->path.p : NULL);
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
        log_stream(dc, f, NULL);
    }
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        struct dstream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st || st->faulted) return 0;
        struct dconn *d = st->dc;
        /* after GOAWAY(0) nothing is processed (RFC 9113 6.8), nor on a
         * connection the fault options are closing (--break-response
         * keeps answering what completes until the connection is gone) */
        if (O.goaway_on_connect || (d->dead && O.mid_response != MID_BREAK)) return 0;
        /* --refuse-every N: every Nth request is reset with REFUSED_STREAM
         * (not processed, not recorded) */
        if (O.refuse_every && ++d->seen % O.refuse_every == 0) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                      NGHTTP2_REFUSED_STREAM);
            dconn_flush(d);
            return 0;
        }
        build_and_respond(st);
        /* --goaway-after N: a graceful shutdown after N requests; streams
         * above this one are refused (RFC 9113 6.8) */
        if (O.goaway_after && ++d->requests == O.goaway_after) {
            nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR, NULL, 0);
            dconn_flush(d);
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    struct dstream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        stream_release(st);
    }
    return 0;
}

static void idle_closed(uv_handle_t *h)
{
    free(h->data);
}

static void dconn_closed(struct px_conn *c)
{
    struct dconn *d = c->ud;
    uv_close((uv_handle_t *)&d->idle, idle_closed);
}

static void dconn_kill(struct dconn *d)
{
    if (d->conn.closing) return;
    uv_idle_stop(&d->idle);
    if (d->s) {
        nghttp2_session *s = d->s;
        d->s = NULL;
        nghttp2_session_del(s); /* calls no stream-close callbacks */
    }
    while (d->streams)
        stream_release(d->streams);
    px_conn_close(&d->conn);
}

static void idle_cb(uv_idle_t *h)
{
    struct dconn *d = h->data;
    uv_idle_stop(h);
    if (!d->s || d->conn.closing) return;
    if (d->reset_pending) {
        /* not from inside the data callback: nghttp2 is sending then */
        d->reset_pending = false;
        for (struct dstream *st = d->streams; st; st = st->next)
            if (st->reset_pending) {
                st->reset_pending = false;
                nghttp2_submit_rst_stream(d->s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
            }
    }
    int rv = px_h2_flush(d->s, &d->conn);
    if (rv == 0 && d->garbage_pending) {
        /* between two whole frames: the peer's framing breaks here */
        static const char junk[] = "\xff\xff\xff\x09garbage, not a frame\r\n";
        px_conn_write(&d->conn, junk, sizeof(junk) - 1);
        px_conn_kick(&d->conn);
        d->garbage_pending = false;
        d->dead = true;
        return;
    }
    if (rv != 0 || (d->dead && !px_conn_busy(&d->conn))) dconn_kill(d);
}

static void dconn_flush(struct dconn *d)
{
    if (!d->conn.closing) uv_idle_start(&d->idle, idle_cb);
}

static void dc_on_ready(struct px_conn *c, const char *err)
{
    struct dconn *d = c->ud;
    if (err) {
        dconn_kill(d);
        return;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, O.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
    };
    if (O.garbage) {
        /* not an HTTP/2 server: no SETTINGS, bytes that are no frame */
        static const char junk[] = "HTTP/1.1 200 OK\r\n\r\n\x00\x01garbage\xff\xfe";
        px_conn_write(&d->conn, junk, sizeof(junk) - 1);
        px_conn_kick(&d->conn);
        d->dead = true;
        dconn_flush(d);
        return;
    }
    nghttp2_submit_settings(d->s, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(d->s, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    if (O.goaway_on_connect) {
        nghttp2_submit_goaway(d->s, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
        d->dead = true;
    }
    dconn_flush(d);
}

static void dc_on_read(struct px_conn *c, const char *p, size_t n)
{
    struct dconn *d = c->ud;
    if (!d->s) return;
    ssize_t r = nghttp2_session_mem_recv(d->s, (const uint8_t *)p, n);
    if (r < 0) {
        dconn_kill(d);
        return;
    }
    dconn_flush(d);
}

static void dc_on_eof(struct px_conn *c, const char *err)
{
    (void)err;
    dconn_kill(c->ud);
}

static void dc_on_writable(struct px_conn *c)
{
    dconn_flush(c->ud);
}

static const struct px_conn_ops dc_ops = {dc_on_ready, dc_on_read, dc_on_eof, dc_on_writable,
                                          dconn_closed};

static nghttp2_session_callbacks *g_cbs;

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0) return;
    struct dconn *d = calloc(1, sizeof(*d));
    if (!d) return;
    if (px_conn_init(g_loop, &d->conn, &dc_ops, d) != 0) {
        free(d);
        return;
    }
    uv_idle_init(g_loop, &d->idle);
    d->idle.data = d;
    d->serial = ++g_conns;
    if (O.take_no_body) {
        /* no WINDOW_UPDATE ever: the client may send the initial windows
         * (64 KiB), then nothing more */
        nghttp2_option *opt = NULL;
        if (nghttp2_option_new(&opt) == 0) {
            nghttp2_option_set_no_auto_window_update(opt, 1);
            nghttp2_session_server_new2(&d->s, g_cbs, d, opt);
            nghttp2_option_del(opt);
        }
    } else {
        nghttp2_session_server_new(&d->s, g_cbs, d);
    }
    if (px_conn_accept(&d->conn, server, O.h2c ? NULL : g_ctx) != 0) dconn_kill(d);
}

static void on_signal(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_stop(h->loop);
}

/* Exit: every connection is closed (its output buffers go back to the
 * pool, its streams' timers are closed) before the pool's idle blocks are
 * freed, so that a leak checker sees nothing left. */
static void kill_walk(uv_handle_t *h, void *arg)
{
    if (h == arg || h->type != UV_TCP || uv_is_closing(h)) return;
    struct px_conn *c = h->data; /* every other TCP handle is a connection's */
    dconn_kill(c->ud);
}

static void usage(void)
{
    fputs("usage: privgate-demo-partner [--listen HOST:PORT] [--h2c] [--cert FILE --key FILE]\n"
          "       [--cert-out FILE] [--record FILE] [--port-file FILE] [--delay-ms N]\n"
          "       [--status N] [--break-response] [--max-echo BYTES] [--goaway-after N]\n"
          "       [--refuse-every N] [--no-content-length] [--reset-request-after BYTES]\n"
          "       [--close-request-after BYTES] [--reset-response] [--stall-response]\n"
          "       [--garbage-response] [--garbage] [--goaway-on-connect] [--hold-file FILE]\n"
          "       [--max-streams N] [--log-streams FILE] [--take-no-body]\n",
          stderr);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long u;
        if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else if (strcmp(a, "--h2c") == 0) {
            O.h2c = true;
        } else if (strcmp(a, "--break-response") == 0) {
            O.mid_response = MID_BREAK;
        } else if (strcmp(a, "--reset-response") == 0) {
            O.mid_response = MID_RESET;
        } else if (strcmp(a, "--stall-response") == 0) {
            O.mid_response = MID_STALL;
        } else if (strcmp(a, "--garbage-response") == 0) {
            O.mid_response = MID_GARBAGE;
        } else if (strcmp(a, "--garbage") == 0) {
            O.garbage = true;
        } else if (strcmp(a, "--goaway-on-connect") == 0) {
            O.goaway_on_connect = true;
        } else if (strcmp(a, "--no-content-length") == 0) {
            O.no_length = true;
        } else if (strcmp(a, "--take-no-body") == 0) {
            O.take_no_body = true;
        } else if (!v) {
            usage();
            return 2;
        } else if (strcmp(a, "--listen") == 0) {
            static char host[256];
            const char *colon = strrchr(v, ':');
            if (!colon || (size_t)(colon - v) >= sizeof(host) ||
                !parse_uint(colon + 1, 65535, &u)) {
                fprintf(stderr, "privgate-demo-partner: bad --listen %s\n", v);
                return 2;
            }
            memcpy(host, v, (size_t)(colon - v));
            host[colon - v] = '\0';
            O.host = host;
            O.port = (unsigned)u;
            i++;
        } else if (strcmp(a, "--cert") == 0) {
            O.cert = v;
            i++;
        } else if (strcmp(a, "--key") == 0) {
            O.key = v;
            i++;
        } else if (strcmp(a, "--cert-out") == 0) {
            O.cert_out = v;
            i++;
        } else if (strcmp(a, "--record") == 0) {
            O.record = v;
            i++;
        } else if (strcmp(a, "--port-file") == 0) {
            O.port_file = v;
            i++;
        } else if (strcmp(a, "--delay-ms") == 0 && parse_uint(v, 3600000, &u)) {
            O.delay_ms = (unsigned)u;
            i++;
        } else if (strcmp(a, "--status") == 0 && parse_uint(v, 599, &u) && u >= 200) {
            O.status = (unsigned)u;
            i++;
        } else if (strcmp(a, "--refuse-every") == 0 && parse_uint(v, 1u << 30, &u)) {
            O.refuse_every = (unsigned)u;
            i++;
        } else if (strcmp(a, "--goaway-after") == 0 && parse_uint(v, 1u << 30, &u)) {
            O.goaway_after = (unsigned)u;
            i++;
        } else if (strcmp(a, "--reset-request-after") == 0 && parse_uint(v, 1ul << 40, &u) && u) {
            O.reset_request_after = u;
            i++;
        } else if (strcmp(a, "--close-request-after") == 0 && parse_uint(v, 1ul << 40, &u) && u) {
            O.close_request_after = u;
            i++;
        } else if (strcmp(a, "--hold-file") == 0) {
            O.hold_file = v;
            i++;
        } else if (strcmp(a, "--max-streams") == 0 && parse_uint(v, 1u << 30, &u)) {
            O.max_streams = (unsigned)u;
            i++;
        } else if (strcmp(a, "--log-streams") == 0) {
            O.log_streams = v;
            i++;
        } else if (strcmp(a, "--max-echo") == 0 && parse_uint(v, 1ul << 30, &u)) {
            O.max_echo = u;
            i++;
        } else {
            usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    if (!O.h2c) {
        g_ctx = (O.cert && O.key) ? px_tls_server_ctx(O.cert, O.key, NULL, err, sizeof(err))
                                  : px_tls_server_ctx_selfsigned(O.cert_out, err, sizeof(err));
        if (!g_ctx) {
            fprintf(stderr, "privgate-demo-partner: %s\n", err);
            return 1;
        }
    }
    if (O.record) {
        g_record_fd = open(O.record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (g_record_fd < 0) {
            fprintf(stderr, "privgate-demo-partner: %s: %s\n", O.record, strerror(errno));
            return 1;
        }
    }
    if (O.log_streams) {
        g_log_fd = open(O.log_streams, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (g_log_fd < 0) {
            fprintf(stderr, "privgate-demo-partner: %s: %s\n", O.log_streams, strerror(errno));
            return 1;
        }
    }
    int fd = px_listen_socket(O.host, (uint16_t)O.port, false, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "privgate-demo-partner: %s\n", err);
        return 1;
    }
    g_loop = uv_default_loop();
    uv_tcp_t lst;
    uv_tcp_init(g_loop, &lst);
    lst.data = NULL;
    if (uv_tcp_open(&lst, fd) != 0 || uv_listen((uv_stream_t *)&lst, 511, on_connection) != 0) {
        fprintf(stderr, "privgate-demo-partner: cannot listen\n");
        return 1;
    }
    nghttp2_session_callbacks_new(&g_cbs);
    nghttp2_session_callbacks_set_send_callback(g_cbs, px_h2_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(g_cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(g_cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(g_cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(g_cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(g_cbs, on_stream_close);

    unsigned port = px_socket_port(fd);
    if (O.port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", O.port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, O.port_file) != 0) {
            fprintf(stderr, "privgate-demo-partner: %s: %s\n", O.port_file, strerror(errno));
            return 1;
        }
    }
    fprintf(stderr, "privgate-demo-partner: listening on %s:%u (%s)\n", O.host, port,
            O.h2c ? "h2c" : "h2 over TLS");
    uv_signal_t sigs[2];
    uv_signal_init(g_loop, &sigs[0]);
    uv_signal_start(&sigs[0], on_signal, SIGTERM);
    uv_signal_init(g_loop, &sigs[1]);
    uv_signal_start(&sigs[1], on_signal, SIGINT);
    uv_run(g_loop, UV_RUN_DEFAULT);
    uv_walk(g_loop, kill_walk, &lst);
    uv_close((uv_handle_t *)&lst, NULL);
    uv_close((uv_handle_t *)&sigs[0], NULL);
    uv_close((uv_handle_t *)&sigs[1], NULL);
    uv_run(g_loop, UV_RUN_DEFAULT);
    uv_loop_close(g_loop);
    px_pool_thread_release();
    nghttp2_session_callbacks_del(g_cbs);
    if (g_ctx) SSL_CTX_free(g_ctx);
    if (g_record_fd >= 0) close(g_record_fd);
    if (g_log_fd >= 0) close(g_log_fd);
    return 0;
}
