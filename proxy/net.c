/*
 * privgate proxy: TCP + TLS transport (see net.h).
 *
 * Reads land in a per-thread buffer and are handed on synchronously, so a
 * connection owns no read buffer. Its output buffers (|out|, and |pt| for
 * TLS) come from the thread's pool when there is something to send and go
 * back when it has been sent, so an idle connection holds neither.
 *
 * TLS runs over BIOs in memory: ciphertext read from the socket is read
 * by OpenSSL through rbio (a read-only view of the socket read), plaintext
 * comes out of SSL_read; SSL_write's records go through wbio straight into
 * |out| (a memory BIO cost a memset, a copy in and a copy out of every
 * record byte: about 1,300 instructions per filtered 1 KiB request with a
 * TLS upstream). err_reset() (ERR_clear_error) precedes every SSL_* I/O call and
 * SSL_get_error() is translated on the spot (STYLE 4).
 */
#include "proxy/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>

#define PX_READ_BUF (64u * 1024u)
/* TLS: room kept free per SSL_write for record overhead. */
#define PX_TLS_SLACK 1024u
#define PX_TLS_CHUNK 16384u

/* Empties this thread's OpenSSL error queue before an SSL_* I/O call, so
 * that SSL_get_error after it sees only that call's errors. The queue is
 * nearly always empty already: looking costs about 80 instructions,
 * ERR_clear_error about 800 (it clears all 16 slots), once or twice per
 * socket read or flush. */
static inline void err_reset(void)
{
    if (ERR_peek_error() != 0) ERR_clear_error();
}

static _Thread_local char rbuf[PX_READ_BUF];
static _Thread_local char pbuf[PX_READ_BUF];

static void conn_closed(uv_handle_t *h)
{
    struct px_conn *c = h->data;
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    px_pool_free(c->out);
    c->out = NULL;
    px_pool_free(c->pt);
    c->pt = NULL;
    px_pool_free(c->ovf);
    c->ovf = NULL;
    c->ovflen = c->ovfcap = 0;
    if (c->ops->on_close) c->ops->on_close(c);
}

int px_conn_init(uv_loop_t *loop, struct px_conn *c, const struct px_conn_ops *ops, void *ud)
{
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->ud = ud;
    int rv = uv_tcp_init(loop, &c->tcp);
    if (rv != 0) return rv;
    c->tcp.data = c;
    return 0;
}

/* The output buffer, taken from the pool on first use. */
static bool out_get(struct px_conn *c)
{
    if (!c->out) c->out = px_pool_alloc(PX_CONN_OUT_CAP);
    return c->out != NULL;
}

/* Gives the output buffers back once everything has left. */
static void out_put(struct px_conn *c)
{
    if (c->out && c->len == 0 && c->fly == 0) {
        px_pool_free(c->out);
        c->out = NULL;
    }
    if (c->pt && c->ptlen == 0) {
        px_pool_free(c->pt);
        c->pt = NULL;
    }
}

void px_conn_close(struct px_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_fail(struct px_conn *c, const char *err)
{
    if (c->closing || c->eof_sent) return;
    if (!err) err = c->wfail; /* the peer's EOF after a failed write */
    if (c->sending) {
        if (!c->fail_pending) c->fail_err = err;
        c->fail_pending = true;
        return;
    }
    c->eof_sent = true;
    c->ops->on_eof(c, err);
}

/* Moves TLS records that did not fit (|ovf|) into |out|. */
static void tls_drain(struct px_conn *c)
{
    if (c->ovflen == 0) return;
    if (!out_get(c)) {
        conn_fail(c, "out of memory");
        return;
    }
    size_t k = PX_CONN_OUT_CAP - c->len;
    if (k > c->ovflen) k = c->ovflen;
    memcpy(c->out + c->len, c->ovf, k);
    c->len += k;
    memmove(c->ovf, c->ovf + k, c->ovflen - k);
    c->ovflen -= k;
    if (c->ovflen == 0) {
        px_pool_free(c->ovf);
        c->ovf = NULL;
        c->ovfcap = 0;
    }
}

/* ------------------------------------------------------- the write BIO */

/* OpenSSL's record layer writes each record (from its own write buffer)
 * here: appended to |out| when it fits, else to |ovf| (unbounded, like the
 * memory BIO it replaces: OpenSSL never sees a write refused, so no record
 * is left half-written inside it), which tls_drain empties into |out| in
 * order. Nothing is queued once the connection is closing or a write
 * failed: that output would be dropped anyway. */
static int outbio_write(BIO *b, const char *p, int n)
{
    struct px_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (n <= 0) return 0;
    size_t k = (size_t)n;
    if (c->closing || c->wfail) return n;
    if (c->ovflen == 0 && out_get(c) && PX_CONN_OUT_CAP - c->len >= k) {
        memcpy(c->out + c->len, p, k);
        c->len += k;
        return n;
    }
    if (c->ovflen + k > c->ovfcap) {
        size_t cap = c->ovfcap ? c->ovfcap : 4096;
        while (cap < c->ovflen + k)
            cap *= 2;
        char *q = px_pool_realloc(c->ovf, cap);
        if (!q) return -1; /* OpenSSL reports a fatal error: the connection fails */
        c->ovf = q;
        c->ovfcap = cap;
    }
    memcpy(c->ovf + c->ovflen, p, k);
    c->ovflen += k;
    return n;
}

static long outbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)ptr;
    (void)num;
    struct px_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1; /* the handshake flushes each flight */
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING: return c ? (long)(c->len + c->ovflen) : 0;
    default: return 0;
    }
}

static int outbio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *outbio_method;
static void outbio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "privgate out");
    if (!m || !BIO_meth_set_write(m, outbio_write) || !BIO_meth_set_ctrl(m, outbio_ctrl) ||
        !BIO_meth_set_create(m, outbio_create)) {
        BIO_meth_free(m);
        return;
    }
    outbio_method = m;
}

/* The write BIO of |c| (owned by its SSL once set), or NULL. */
static BIO *outbio_new(struct px_conn *c)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, outbio_method_init);
    if (!outbio_method) return NULL;
    BIO *b = BIO_new(outbio_method);
    if (b) BIO_set_data(b, c);
    return b;
}

/* A write failed: the peer closed or reset the connection. The bytes it
 * sent before may still wait in the socket (a provider that answers bytes
 * that are not HTTP/2 and closes at once must be told apart from one that
 * cannot be reached), so while reading, the output is dropped and the
 * failure is reported by the read that finds the end of the connection
 * (which the close or reset makes readable). */
static void write_failed(struct px_conn *c, const char *err)
{
    if (!c->reading || c->sending || !c->ready) {
        conn_fail(c, err);
        return;
    }
    c->wfail = err ? err : "write";
    c->len = c->fly = 0;
    c->ptlen = 0;
    c->ovflen = 0;
    out_put(c);
}

static void write_done(uv_write_t *req, int status)
{
    struct px_conn *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        write_failed(c, uv_strerror(status));
        return;
    }
    memmove(c->out, c->out + c->fly, c->len - c->fly);
    c->len -= c->fly;
    c->fly = 0;
    c->blocked = false;
    if (c->ssl) tls_drain(c);
    if (c->ops->on_writable) c->ops->on_writable(c);
    px_conn_kick(c);
}

/* Seals the staged plaintext into TLS records in |out|. False when |out|
 * has no room for them yet (wait for the write in flight). */
static bool tls_seal(struct px_conn *c)
{
    if (c->ptlen == 0) return true;
    tls_drain(c);
    if (c->ovflen > 0 || PX_CONN_OUT_CAP - c->len < c->ptlen + PX_TLS_SLACK) return false;
    size_t off = 0;
    while (off < c->ptlen) {
        err_reset();
        int w = SSL_write(c->ssl, c->pt + off, (int)(c->ptlen - off));
        if (w <= 0) {
            conn_fail(c, "tls");
            c->ptlen = 0;
            return false;
        }
        off += (size_t)w;
    }
    c->ptlen = 0;
    tls_drain(c);
    return true;
}

void px_conn_kick(struct px_conn *c)
{
    if (c->closing || c->wfail) return;
    if (c->ssl) tls_drain(c); /* records that did not fit (|ovf|) go first */
    if (c->ssl && c->ready) tls_seal(c);
    /* Most flushes fit in the socket buffer: written at once, the output
     * buffer goes back to the pool now instead of after a loop turn (a
     * burst of new connections then shares a few buffers instead of
     * holding one each). Not for a writer that was refused bytes: it waits
     * for on_writable, which only a completed uv_write calls. */
    while (!c->closing && c->fly == 0 && c->len > 0 && !c->blocked) {
        uv_buf_t tb = uv_buf_init(c->out, (unsigned)c->len);
        int k = uv_try_write((uv_stream_t *)&c->tcp, &tb, 1);
        if (k < 0) {
            if (k != UV_EAGAIN) write_failed(c, uv_strerror(k));
            break;
        }
        memmove(c->out, c->out + k, c->len - (size_t)k);
        c->len -= (size_t)k;
        if (c->len > 0) break; /* the socket is full: uv_write the rest */
        if (c->ssl) tls_drain(c);
        if (c->ssl && c->ready) tls_seal(c); /* records or plaintext still waiting */
    }
    if (c->closing || c->fly > 0) return;
    if (c->len == 0) {
        out_put(c);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out, (unsigned)c->len);
    c->fly = c->len;
    c->wreq.data = c;
    int rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done);
    if (rv != 0) {
        c->fly = 0;
        conn_fail(c, uv_strerror(rv));
    }
}

bool px_conn_busy(const struct px_conn *c)
{
    return c->len > 0 || c->ptlen > 0 || c->ovflen > 0;
}

bool px_conn_reserve(struct px_conn *c, size_t n)
{
    bool ok;
    if (c->closing || c->wfail) {
        ok = false;
    } else if (!c->ssl) {
        ok = (c->out ? PX_CONN_OUT_CAP - c->len : PX_CONN_OUT_CAP) >= n;
    } else {
        /* TLS: what fits in the staging buffer, and beyond, one seal of a
         * full staging buffer per PX_TLS_CHUNK bytes, each needing room in
         * |out| (tls_seal) */
        size_t room = PX_TLS_CHUNK - c->ptlen;
        if (n <= room) {
            ok = true;
        } else {
            size_t seals = 1 + (n - room - 1) / PX_TLS_CHUNK;
            ok =
                c->ovflen == 0 && PX_CONN_OUT_CAP - c->len >= seals * (PX_TLS_CHUNK + PX_TLS_SLACK);
        }
    }
    if (!ok) c->blocked = true;
    return ok;
}

size_t px_conn_write(struct px_conn *c, const char *p, size_t n)
{
    if (c->closing || n == 0) return 0;
    if (c->wfail) { /* dropped: the failure is reported after the peer's last bytes */
        c->blocked = true;
        return 0;
    }
    if (!c->ssl) {
        if (!out_get(c)) {
            conn_fail(c, "out of memory");
            return 0;
        }
        size_t room = PX_CONN_OUT_CAP - c->len;
        if (n > room) {
            n = room;
            c->blocked = true;
        }
        memcpy(c->out + c->len, p, n);
        c->len += n;
        return n;
    }
    if (!c->pt && !(c->pt = px_pool_alloc(PX_TLS_CHUNK))) {
        conn_fail(c, "out of memory");
        return 0;
    }
    size_t done = 0;
    while (done < n) {
        if (c->ptlen == PX_TLS_CHUNK && !tls_seal(c)) break;
        size_t k = n - done;
        if (k > PX_TLS_CHUNK - c->ptlen) k = PX_TLS_CHUNK - c->ptlen;
        memcpy(c->pt + c->ptlen, p + done, k);
        c->ptlen += k;
        done += k;
    }
    if (done < n) c->blocked = true;
    return done;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void tls_ready_check(struct px_conn *c)
{
    c->ready = true;
    c->ops->on_ready(c, NULL);
}

/* Points the read BIO at |n| bytes at |p| (read-only, no copy). */
static void rbio_set(struct px_conn *c, const char *p, size_t n)
{
    c->rbm.data = (char *)p;
    c->rbm.length = n;
    c->rbm.max = n;
    BIO_set_mem_buf(c->rbio, &c->rbm, BIO_NOCLOSE);
}

static void tls_in_read(struct px_conn *c);

/* The ciphertext is read by OpenSSL where the socket read put it: the
 * read BIO is a read-only view of it (copying it into a memory BIO first
 * cost about 1,000 instructions per filtered request). The loop below
 * drains the view (OpenSSL keeps a partial record in its own buffer), and
 * the view is emptied before returning: |p| is not valid after. */
static void tls_in(struct px_conn *c, const char *p, size_t n)
{
    rbio_set(c, p, n);
    tls_in_read(c);
    if (c->ssl) rbio_set(c, "", 0);
}

static void tls_in_read(struct px_conn *c)
{
    if (!c->ready) {
        err_reset();
        int r = SSL_do_handshake(c->ssl);
        tls_drain(c);
        px_conn_kick(c);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            /* the peer refused every protocol we offered (RFC 7301 3.2) */
            bool alpn =
                ERR_GET_REASON(ERR_peek_error()) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL;
            c->ready = false;
            c->eof_sent = true;
            c->ops->on_ready(c, alpn ? "alpn" : "tls");
            return;
        }
        tls_ready_check(c);
        if (c->closing) return;
    }
    /* read every record the BIO holds: ciphertext comes in at most one
     * socket read (64 KiB) at a time, so this is bounded; stopping early
     * would leave records no new socket event will wake up (a peer that
     * sends one small record per frame can put hundreds in one read) */
    while (!c->closing) {
        err_reset();
        int r = SSL_read(c->ssl, pbuf, (int)sizeof(pbuf));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_ZERO_RETURN)
                conn_fail(c, NULL);
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                conn_fail(c, "tls");
            break;
        }
        c->ops->on_read(c, pbuf, (size_t)r);
    }
    if (!c->closing) {
        tls_drain(c);
        px_conn_kick(c);
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct px_conn *c = s->data;
    if (c->closing) return;
    if (nread < 0) {
        if (!c->ready && c->ssl) {
            c->eof_sent = true;
            c->ops->on_ready(c, "tls");
            return;
        }
        conn_fail(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
        return;
    }
    if (nread == 0) return;
    if (c->ssl)
        tls_in(c, buf->base, (size_t)nread);
    else
        c->ops->on_read(c, buf->base, (size_t)nread);
}

static int start_reading(struct px_conn *c)
{
    c->reading = true;
    return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int px_conn_pause(struct px_conn *c, bool pause)
{
    if (c->closing) return 0;
    if (pause) {
        /* after a failed write, reading goes on: it reports the failure */
        if (!c->reading || c->wfail) return 0;
        c->reading = false;
        return uv_read_stop((uv_stream_t *)&c->tcp);
    }
    if (c->reading || !c->ready) return 0;
    return start_reading(c);
}

static int tls_setup(struct px_conn *c, SSL_CTX *ctx)
{
    c->ssl = SSL_new(ctx);
    if (!c->ssl) return UV_ENOMEM;
    c->rbio = BIO_new_mem_buf("", 0); /* read-only: see tls_in */
    c->wbio = outbio_new(c);
    if (!c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return UV_ENOMEM;
    }
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    /* RELEASE_BUFFERS: OpenSSL's read and write buffers (about 17 KiB
     * each) go back to the pool whenever they are empty, so an idle TLS
     * connection holds neither (bench/memory, 2,000 idle connections:
     * 43,005 -> 32,024 bytes each); taking them from the pool again costs
     * about 260 instructions per filtered 1 KiB request over TLS */
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

int px_conn_accept(struct px_conn *c, uv_stream_t *server, SSL_CTX *ctx)
{
    int rv = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rv != 0) return rv;
    uv_tcp_nodelay(&c->tcp, 1);
    if (ctx) {
        rv = tls_setup(c, ctx);
        if (rv != 0) return rv;
        SSL_set_accept_state(c->ssl);
    }
    rv = start_reading(c);
    if (rv != 0) return rv;
    if (!ctx) {
        c->ready = true;
        c->ops->on_ready(c, NULL);
    }
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct px_conn *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        c->eof_sent = true;
        c->ops->on_ready(c, "connect");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (start_reading(c) != 0) {
        c->eof_sent = true;
        c->ops->on_ready(c, "connect");
        return;
    }
    if (!c->ssl) {
        c->ready = true;
        c->ops->on_ready(c, NULL);
        return;
    }
    err_reset();
    int r = SSL_do_handshake(c->ssl);
    (void)r;
    tls_drain(c);
    px_conn_kick(c);
}

int px_conn_connect(struct px_conn *c, const struct sockaddr *addr, SSL_CTX *ctx, const char *sni,
                    const char *verify_name)
{
    if (ctx) {
        int rv = tls_setup(c, ctx);
        if (rv != 0) return rv;
        SSL_set_connect_state(c->ssl);
        unsigned char ip[16];
        bool is_ip = sni && (inet_pton(AF_INET, sni, ip) == 1 || inet_pton(AF_INET6, sni, ip) == 1);
        if (sni && !is_ip) SSL_set_tlsext_host_name(c->ssl, sni);
        if (verify_name) {
            bool vip = inet_pton(AF_INET, verify_name, ip) == 1 ||
                       inet_pton(AF_INET6, verify_name, ip) == 1;
            if (vip) {
                X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
                X509_VERIFY_PARAM_set1_ip_asc(vp, verify_name);
            } else {
                SSL_set1_host(c->ssl, verify_name);
            }
        }
    }
    c->creq.data = c;
    return uv_tcp_connect(&c->creq, &c->tcp, addr, connect_cb);
}

void px_conn_tls_close_notify(struct px_conn *c)
{
    if (!c->ssl || !c->ready || c->closing || c->eof_sent || c->wfail || px_conn_busy(c)) return;
    err_reset();
    if (SSL_shutdown(c->ssl) < 0) {
        c->len = c->ovflen = 0; /* nothing is sent after a failure */
        out_put(c);
        return;
    }
    /* the record is in |out| (from the write BIO), nothing else is: write
     * what the socket takes now, drop the rest */
    if (c->len > 0) {
        uv_buf_t b = uv_buf_init(c->out, (unsigned)c->len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    c->len = c->ovflen = 0;
    out_put(c);
}

void px_conn_alpn(const struct px_conn *c, const char **p, unsigned *len)
{
    const unsigned char *d = NULL;
    unsigned n = 0;
    if (c->ssl) SSL_get0_alpn_selected(c->ssl, &d, &n);
    *p = d ? (const char *)d : "";
    *len = d ? n : 0;
}

/* ------------------------------------------------------------------ TLS */

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
    ERR_clear_error();
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen;) {
        unsigned l = in[i];
        if (i + 1 + l > inlen) break;
        if (l == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + l;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *server_ctx_base(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

SSL_CTX *px_tls_server_ctx(const char *cert, const char *key, const char *client_ca, char *err,
                           size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = server_ctx_base();
    if (!ctx) {
        ssl_err(err, errlen, "cannot create TLS context");
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "%s: cannot load certificate", cert);
        ssl_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[512];
        snprintf(what, sizeof(what), "%s: cannot load private key", key);
        ssl_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (client_ca) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            char what[512];
            snprintf(what, sizeof(what), "%s: cannot load client CA", client_ca);
            ssl_err(err, errlen, what);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
}

SSL_CTX *px_tls_server_ctx_selfsigned(const char *cert_out, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = server_ctx_base();
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!ctx || !pkey || !x) goto fail;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(time(NULL) & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {
        {"subjectAltName", "DNS:localhost,IP:127.0.0.1"},
        {"basicConstraints", "critical,CA:TRUE"},
        {"keyUsage", "critical,digitalSignature,keyCertSign"},
        {"extendedKeyUsage", "serverAuth"},
    };
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        if (!e) goto fail;
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    if (!X509_sign(x, pkey, EVP_sha256())) goto fail;
    if (SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, pkey) != 1) goto fail;
    if (cert_out) {
        FILE *f = fopen(cert_out, "w");
        if (!f) {
            snprintf(err, errlen, "%s: %s", cert_out, strerror(errno));
            X509_free(x);
            EVP_PKEY_free(pkey);
            SSL_CTX_free(ctx);
            return NULL;
        }
        PEM_write_X509(f, x);
        fclose(f);
    }
    X509_free(x);
    EVP_PKEY_free(pkey);
    return ctx;
fail:
    ssl_err(err, errlen, "cannot create a self-signed certificate");
    X509_free(x);
    EVP_PKEY_free(pkey);
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *px_tls_client_ctx(const char *ca, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_err(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok =
        ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char what[512];
        snprintf(what, sizeof(what), "%s: cannot load CA certificates", ca ? ca : "system store");
        ssl_err(err, errlen, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
    return ctx;
}

/* --------------------------------------------------------------- HTTP/2 */

ssize_t px_h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    struct px_conn *c = ud; /* owner structs start with their px_conn */
    if (c->closing) return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t n = px_conn_write(c, (const char *)data, len);
    if (n == 0) return NGHTTP2_ERR_WOULDBLOCK;
    return (ssize_t)n;
}

int px_h2_flush(nghttp2_session *s, struct px_conn *c)
{
    if (c->closing) return -1;
    c->sending = true;
    int rv = nghttp2_session_send(s);
    c->sending = false;
    if (c->fail_pending) {
        c->fail_pending = false;
        conn_fail(c, c->fail_err);
        return -1; /* |s| may be gone */
    }
    if (rv != 0) return -1;
    px_conn_kick(c);
    /* a failed write was reported to the owner, who may have deleted |s| */
    if (c->closing || c->eof_sent) return -1;
    if (!nghttp2_session_want_read(s) && !nghttp2_session_want_write(s) && !px_conn_busy(c))
        return -1;
    return 0;
}

/* The socket address of a listener's numeric |host| (or "localhost").
 * False when it is neither. */
static bool listen_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *sl = sizeof(*a4);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *sl = sizeof(*a6);
    } else if (strcmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        *sl = sizeof(*a4);
    } else {
        return false;
    }
    return true;
}

/* Is the port of a listener free? The workers' sockets all carry
 * SO_REUSEPORT, and Linux lets any SO_REUSEPORT socket of the same user
 * join a port held by SO_REUSEPORT sockets: a second privgate (or any such
 * server) on the port would start and share the connections. A bind with
 * SO_REUSEADDR alone (not listening, closed at once) fails with EADDRINUSE
 * while anything listens on the port, and still succeeds over connections
 * in TIME_WAIT (a restart). Two instances started in the same instant can
 * both pass before either listens: the check is for the common mistake,
 * not a lock. Port 0 is not checked: the kernel never picks a port in use
 * for it. Returns 0 when free (or when
 * px_listen_socket will say what is wrong), else -1 with the error in |err|. */
int px_port_taken(const char *host, uint16_t port, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (port == 0 || !listen_addr(host, port, &ss, &sl)) return 0;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0; /* the real bind reports it */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = 0;
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 && errno == EADDRINUSE) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port, strerror(errno));
        rc = -1;
    }
    close(fd);
    return rc;
}

int px_listen_socket(const char *host, uint16_t port, bool reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!listen_addr(host, port, &ss, &sl)) {
        snprintf(err, errlen, "%s: not a numeric address", host);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 511) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, (unsigned)port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

uint16_t px_socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}
