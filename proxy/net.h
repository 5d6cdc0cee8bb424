/*
 * privgate proxy: the transport layer shared by the gateway and the demo
 * partner. A px_conn is one TCP connection, optionally wrapped in TLS
 * (OpenSSL 3 with memory BIOs), that carries opaque plaintext both ways.
 * The HTTP/2 sessions on top of it do no I/O themselves: they are fed the
 * plaintext read here and their output is written here (STYLE 1).
 *
 * Ownership: the px_conn is storage of its owner (embedded in the owner's
 * struct); it must not move or be freed before ops->on_close has been
 * called. Every callback runs on the loop's thread.
 */
#ifndef PRIVGATE_PROXY_NET_H
#define PRIVGATE_PROXY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>
#include <openssl/buffer.h>
#include <openssl/ssl.h>
#include <uv.h>

/* Pending output per connection (plaintext for cleartext, records for TLS).
 * Taken from the thread's pool when output is queued and given back when
 * it has all been written: an idle connection holds no output buffer. */
#define PX_CONN_OUT_CAP (128u * 1024u)

struct px_conn;

struct px_conn_ops {
    /* Connection ready: connected (client) and TLS handshake done. |err| is
     * NULL on success, else one of "connect", "tls", "alpn" (short, static).
     * On failure the owner calls px_conn_close. */
    void (*on_ready)(struct px_conn *c, const char *err);
    /* Plaintext bytes read; |p| valid during the call only. */
    void (*on_read)(struct px_conn *c, const char *p, size_t n);
    /* Peer closed or a read/write error: the owner calls px_conn_close. */
    void (*on_eof)(struct px_conn *c, const char *err);
    /* A write completed: room for more output. */
    void (*on_writable)(struct px_conn *c);
    /* The handles are closed: the owner may free its storage. */
    void (*on_close)(struct px_conn *c);
};

struct px_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    const struct px_conn_ops *ops;
    void *ud;
    SSL *ssl;    /* NULL for cleartext */
    BIO *rbio;   /* ciphertext in (owned by ssl): a read-only view of |rbm| */
    BUF_MEM rbm; /* the socket read being decrypted (tls_in); empty between */
    BIO *wbio;   /* ciphertext out (owned by ssl) */
    bool ready;  /* connected and handshaken */
    bool closing;
    bool reading;
    bool eof_sent;
    /* out[0, fly) is being written by uv_write; out[fly, len) waits.
     * Invariant: fly <= len <= PX_CONN_OUT_CAP. NULL while len == 0 (a
     * pool block of PX_CONN_OUT_CAP bytes otherwise). */
    char *out;
    size_t len, fly;
    /* px_conn_write refused bytes: the next write completes through
     * uv_write and on_writable (the writer waits for it), not at once */
    bool blocked;
    /* TLS: plaintext staged until px_conn_kick seals it into one record
     * (one record per flush instead of one per HTTP/2 frame); a pool
     * block, NULL while ptlen == 0 */
    char *pt;
    size_t ptlen;
    /* px_h2_flush is inside nghttp2_session_send: a failure found by a
     * write (from the send callback) is reported after it returns, since
     * the owner's on_eof deletes the session */
    bool sending;
    bool fail_pending;
    const char *fail_err;
    /* (|wbio| writes the records straight into |out|, net.c.) TLS
     * records written while |out| had no room (handshake messages,
     * alerts: tls_seal leaves room for its own records), in order before
     * anything later; a pool block, NULL while ovflen == 0 */
    char *ovf;
    size_t ovflen, ovfcap;
    /* a write failed (the peer closed): output is dropped, and the
     * failure is reported after the bytes the peer sent before its close
     * have been read and delivered (see net.c write_failed) */
    const char *wfail;
};

/* Initialises |c| on |loop|. Returns 0 or a libuv error. */
int px_conn_init(uv_loop_t *loop, struct px_conn *c, const struct px_conn_ops *ops, void *ud);
/* Accepts a pending connection of |server| into |c| (after px_conn_init).
 * With |ctx| non-NULL a TLS server handshake follows; on_ready is called
 * when it is done. Returns 0 or a libuv error (then px_conn_close). */
int px_conn_accept(struct px_conn *c, uv_stream_t *server, SSL_CTX *ctx);
/* Connects to |addr|. With |ctx| non-NULL, TLS with SNI |sni| (may be
 * NULL for an address), host name verification against |verify_name|
 * when non-NULL, ALPN h2. on_ready reports the result. */
int px_conn_connect(struct px_conn *c, const struct sockaddr *addr, SSL_CTX *ctx, const char *sni,
                    const char *verify_name);
/* Queues plaintext; returns how many bytes were accepted (0 when the
 * output buffer is full: wait for on_writable). Call px_conn_kick after:
 * with TLS, queued plaintext is sealed into records there. */
size_t px_conn_write(struct px_conn *c, const char *p, size_t n);
/* Whether px_conn_write takes |n| more bytes at once, whole: for writers
 * that cannot stop half-way (a DATA frame sent from a body pipe,
 * px__send_data). False also marks the connection blocked: on_writable
 * follows once a write completes. */
bool px_conn_reserve(struct px_conn *c, size_t n);
/* Starts writing what is queued if no write is in flight. */
void px_conn_kick(struct px_conn *c);
/* Whether output is queued or in flight. */
bool px_conn_busy(const struct px_conn *c);
/* Stops reading from the socket (|pause| true) or starts again (false),
 * for back-pressure. With TLS, records already read are still decrypted
 * and delivered (at most one socket read, 64 KiB). Returns 0 or a libuv
 * error. */
int px_conn_pause(struct px_conn *c, bool pause);
/* Closes (idempotent); on_close follows. */
void px_conn_close(struct px_conn *c);
/* TLS: sends close_notify now, best effort and without waiting (a peer
 * whose socket buffer is full does not get it), when nothing else is
 * queued. Nothing is queued after it. */
void px_conn_tls_close_notify(struct px_conn *c);
/* The negotiated ALPN protocol, "" when none. */
void px_conn_alpn(const struct px_conn *c, const char **p, unsigned *len);

/* ------------------------------------------------------------------ TLS */

/* Server context from PEM files, ALPN h2 (then http/1.1 when |h1|).
 * |client_ca| non-NULL requires client certificates. NULL with |err|. */
SSL_CTX *px_tls_server_ctx(const char *cert, const char *key, const char *client_ca, char *err,
                           size_t errlen);
/* Server context with a fresh self-signed certificate for localhost and
 * 127.0.0.1; the certificate is written as PEM to |cert_out| if non-NULL. */
SSL_CTX *px_tls_server_ctx_selfsigned(const char *cert_out, char *err, size_t errlen);
/* Client context: verification on, trust |ca| (PEM file) or the system
 * store when NULL; ALPN h2. */
SSL_CTX *px_tls_client_ctx(const char *ca, char *err, size_t errlen);

/* --------------------------------------------------------------- HTTP/2 */

/* nghttp2 send callback writing into the px_conn given as user data's
 * first member: every session owner struct starts with its px_conn. */
ssize_t px_h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud);
/* Runs nghttp2_session_send and starts the write. Returns 0, or -1 when
 * the session failed or has nothing more to do (want_read and want_write
 * both 0 and no output pending): the owner then closes. */
int px_h2_flush(nghttp2_session *s, struct px_conn *c);

/* ---------------------------------------------------------------- pools */

/*
 * Per-thread size-class allocator (pool.c). A worker is one thread, so
 * these are the worker's pools: no locks. Blocks carry a 16-byte header
 * (their class); idle blocks stay on the freeing thread's free lists,
 * bounded per class (4 MiB, at least 8 blocks). Used for nghttp2's memory
 * (px_pool_nghttp2_mem) and for connection buffers, so that after warm-up
 * the request path does not call malloc.
 */
void *px_pool_alloc(size_t n);
void *px_pool_calloc(size_t k, size_t n);
void *px_pool_realloc(void *p, size_t n);
void px_pool_free(void *p);
/* Usable size of a pool block (0 for one larger than every class). */
size_t px_pool_usable(const void *p);
/* Frees this thread's idle blocks; later frees of this thread bypass the
 * pool. Called when a worker thread ends. */
void px_pool_thread_release(void);
/* Bytes held idle by this thread's pool. */
size_t px_pool_idle_bytes(void);
/* nghttp2 allocator backed by the calling thread's pool (for
 * nghttp2_session_*_new3). Everything of a session must be used and freed
 * on the thread that created it. */
nghttp2_mem *px_pool_nghttp2_mem(void);

/* Listening socket with SO_REUSEADDR (and SO_REUSEPORT when |reuseport|:
 * one socket per worker), bound to |host|:|port| (numeric). Returns the
 * fd, or -1 with |err| set. */
int px_listen_socket(const char *host, uint16_t port, bool reuseport, char *err, size_t errlen);
/* -1 (and the start-up error in |err|) when another socket listens on
 * |host|:|port|, which SO_REUSEPORT would otherwise let us share. */
int px_port_taken(const char *host, uint16_t port, char *err, size_t errlen);
/* The port |fd| is bound to. */
uint16_t px_socket_port(int fd);

#endif
