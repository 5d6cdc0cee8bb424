/*
 * privgate proxy: gateway internals (not a public API). See docs/GATEWAY.md.
 *
 * Threads: the main thread loads the rule set, binds every listening
 * socket, then runs a small loop for signals. Each worker thread runs its
 * own libuv loop with its own SO_REUSEPORT listening sockets, downstream
 * connections, upstream pool and object pools: nothing is shared on the
 * request path except the immutable, reference-counted struct ctr_set and
 * the audit queue.
 *
 * Objects (all owned by one worker, used on its thread only):
 *   px_down  one downstream connection: px_conn + nghttp2 server session
 *   px_up    one upstream connection: px_conn + nghttp2 client session
 *   px_h2s   one request/response exchange, linked to its px_down and,
 *            once attached, to one px_up. Pooled per worker; freed when
 *            both its downstream and upstream streams are closed.
 */
#ifndef PRIVGATE_PROXY_GW_H
#define PRIVGATE_PROXY_GW_H

#include <pthread.h>
#include <stdatomic.h>

#include "contracts/contracts.h"
#include "proxy/net.h"

#define PX_MAX_HEADERS 128          /* request / response header fields kept per stream */
#define PX_CHUNK_SIZE (16u * 1024u) /* body buffer unit */
#define PX_PIPE_HIGH (256u * 1024u) /* stop giving back flow-control credit above this */
#define PX_DOWN_WINDOW (256u * 1024u)
#define PX_UP_WINDOW (256u * 1024u)
#define PX_CONN_WINDOW (8u * 1024u * 1024u)
#define PX_AUDIT_LINE_MAX (48u * 1024u)
#define PX_REPLAY_MAX (64u * 1024u)

struct px_worker;
struct px_gw;

/* ------------------------------------------------------------ body pipes */

struct px_chunk {
    struct px_chunk *next;
    uint32_t off, len; /* data[off, len) is unread; off <= len <= PX_CHUNK_SIZE */
    char data[PX_CHUNK_SIZE];
};

/* Bytes on their way from one session to the other. |unconsumed| counts
 * input bytes whose flow-control credit has not been given back to the
 * sending peer yet: credit is returned only while |bytes| < PX_PIPE_HIGH,
 * so a slow receiver bounds the memory a stream uses by window sizes. */
struct px_pipe {
    struct px_chunk *head, *tail;
    uint64_t bytes; /* buffered */
    uint64_t total; /* written since reset */
    uint64_t unconsumed;
    bool eof;
};

void px__pipe_write(struct px_worker *w, struct px_pipe *p, const char *d, size_t n);
size_t px__pipe_read(struct px_worker *w, struct px_pipe *p, uint8_t *buf, size_t cap);
void px__pipe_clear(struct px_worker *w, struct px_pipe *p);

/* -------------------------------------------------------------- sessions */

/* Common head of px_down and px_up; the px_conn comes first (px_h2_send_cb
 * receives the session's user data as a px_conn). */
struct px_sess {
    struct px_conn conn;
    nghttp2_session *s;
    struct px_worker *w;
    struct px_sess *dirty_next;
    bool dirty;
    bool dead;
    bool is_up;
};

struct px_h2s;

struct px_down {
    struct px_sess base;
    struct px_down *prev, *next; /* worker list */
    struct px_h2s *streams;      /* open downstream streams */
    uv_timer_t idle;             /* idle_timeout: closes a connection without streams */
    uint64_t last_active;        /* uv_now of the last read */
    int handles;                 /* tcp + idle; freed at 0 */
    bool goaway;
    char caller[256]; /* mTLS subject CN, "" when none */
};

enum px_up_state { PX_UP_CONNECTING = 0, PX_UP_READY, PX_UP_GOAWAY, PX_UP_DEAD };

struct px_up {
    struct px_sess base;
    struct px_up *prev, *next; /* worker list */
    enum px_up_state state;
    const char *why; /* why it died (static) */
    char *key;       /* scheme://host:port|sni|ca: identity in the pool */
    char *host, *sni, *ca;
    char authority[300];
    uint16_t port;
    bool tls;
    uv_timer_t ctimer; /* connect + handshake timeout, then idle timeout */
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int handles;            /* open uv handles; freed at 0 */
    struct px_h2s *pending; /* waiting for the connection */
    struct px_h2s *active;  /* submitted */
    uint32_t nactive;
};

/* --------------------------------------------------------------- streams */

struct px_h2s {
    struct px_worker *w;
    struct px_h2s *next_free;
    /* downstream side */
    struct px_down *dc;
    int32_t id;
    struct px_h2s *dprev, *dnext;
    /* upstream side */
    struct px_up *uc;
    int32_t up_id;
    struct px_h2s *uprev, *unext; /* in uc->pending or uc->active */
    bool in_pending, in_active;
    /* request head: header rcbufs are kept (incref) until release */
    struct ctr_set *set;
    const struct ctr_contract *contract;
    nghttp2_rcbuf *rc[2 * PX_MAX_HEADERS + 4];
    size_t nrc;
    struct ctr_header hdr[PX_MAX_HEADERS];
    size_t nhdr;
    struct flt_str method, path;
    uint64_t header_bytes;
    int head_err; /* 0 or the status of a head refusal (431) */
    /* verdict and body */
    struct ctr_decision *d; /* allocated once with the pooled object */
    struct flt_body *body;
    uint32_t body_depth;
    struct px_pipe req, resp;
    /* copy of the request body bytes already sent upstream, kept (up to
     * PX_REPLAY_MAX) until the response head arrives, so that a stream the
     * provider refuses can be sent again */
    struct px_pipe replay;
    bool replay_ok;
    /* response head from upstream */
    nghttp2_nv rnv[PX_MAX_HEADERS + 2];
    size_t nrnv;
    nghttp2_rcbuf *rrc[2 * PX_MAX_HEADERS];
    size_t nrrc;
    char rstatus[4];
    bool rhead_bad;
    /* state */
    bool down_open, up_open;
    bool decided, body_seen, req_end, req_done, buffer_all;
    bool up_submitted, up_end_seen;
    uint8_t retries;   /* upstream attempts after a refused stream */
    uint64_t req_sent; /* request body bytes handed to the upstream session */
    bool responded;    /* a response head was submitted downstream */
    bool finished;     /* the gateway answered or gave up: ignore further input */
    bool resp_done;
    bool timer_on;
    int status;
    const char *outcome; /* "forwarded" | "refused" | "failed" */
    const char *code;    /* error code or NULL */
    /* gateway answer */
    char errbody[768];
    size_t errlen, erroff;
    char rid[27];
    uv_timer_t timer; /* response timeout; initialised once per pooled object */
    uint64_t t0;
    uint64_t bytes_in;  /* request body bytes received */
    uint64_t bytes_out; /* response body bytes sent to the caller */
};

/* --------------------------------------------------------------- metrics */

/* Per-worker counters of SPEC 8, written on the worker's thread under an
 * uncontended mutex and read by the admin endpoint on the main thread. */
#define PX_MET_PROVIDERS 64
#define PX_MET_CODES 24
#define PX_MET_BUCKETS 12 /* + the +Inf bucket = count */
enum px_up_err { PX_UPE_UNAVAILABLE = 0, PX_UPE_TLS, PX_UPE_PROTOCOL, PX_UPE_TIMEOUT, PX_UPE_N };

struct px_met_provider {
    char name[64]; /* "" = requests for no known provider */
    struct {
        char outcome[12];
        char code[32];
        uint64_t n;
    } req[PX_MET_CODES];
    size_t nreq;
    uint64_t removed, transformed;
    uint64_t bucket[PX_MET_BUCKETS];
    uint64_t count;
    double sum;
    uint64_t up_err[PX_UPE_N];
};

struct px_metrics {
    pthread_mutex_t mu;
    struct px_met_provider p[PX_MET_PROVIDERS];
    size_t np;
};

extern const double px__met_bounds[PX_MET_BUCKETS];
void px__metrics_request(struct px_h2s *h);
void px__metrics_up_error(struct px_h2s *h, enum px_up_err kind);

/* ---------------------------------------------------------------- worker */

struct px_listener {
    SSL_CTX *ctx; /* NULL: cleartext */
    char name[300];
};

struct px_ctx_cache {
    char *ca; /* NULL = system store */
    SSL_CTX *ctx;
};

struct px_worker {
    struct px_gw *gw;
    unsigned idx;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    uv_idle_t idle;
    uv_timer_t drain_timer;
    struct ctr_set *set;                /* loop thread only */
    _Atomic(struct ctr_set *) next_set; /* handed over by the main thread */
    atomic_bool stop;
    bool draining;
    int *fds;      /* one per listener, owned until opened */
    uv_tcp_t *lst; /* one per listener */
    size_t nlst;
    struct px_down *downs;
    struct px_up *ups;
    struct px_sess *dirty;
    struct px_h2s *free_h2s;
    struct px_chunk *free_chunks;
    size_t nfree_chunks;
    struct px_ctx_cache ctxs[16];
    size_t nctxs;
    uint64_t rng[2];
    _Atomic uint64_t active_streams;
    struct px_metrics met;
    char audit_line[PX_AUDIT_LINE_MAX];
};

struct px_gw {
    const char *config_path;
    struct ctr_set *set; /* main thread's reference to the current set */
    struct px_listener *listeners;
    size_t nlisteners;
    struct px_worker *workers;
    unsigned nworkers;
    nghttp2_session_callbacks *down_cbs, *up_cbs;
    nghttp2_option *down_opt, *up_opt;
    uint64_t reloads_ok, reloads_failed; /* main thread */
    bool draining;                       /* main thread */
    uv_async_t done_async;               /* a worker has finished */
    atomic_uint workers_done;
};

/* admin.c: /healthz /readyz /metrics /contracts on the main thread's loop,
 * HTTP/1.1 and h2c prior knowledge. */
int px__admin_start(uv_loop_t *loop, struct px_gw *g, char *err, size_t errlen);
void px__admin_stop(void);

/* worker.c */
int px__worker_start(struct px_worker *w);
void px__sess_dirty(struct px_sess *s);
void px__worker_poke(struct px_worker *w);
void px__sess_undirty(struct px_sess *s);
struct px_h2s *px__h2s_get(struct px_worker *w);
void px__h2s_put(struct px_h2s *h);
void px__request_id(struct px_worker *w, char out[27]);
SSL_CTX *px__client_ctx(struct px_worker *w, const char *ca, char *err, size_t errlen);

/* down.c */
void px__down_accept(struct px_worker *w, uv_stream_t *server, SSL_CTX *ctx);
void px__down_kill(struct px_down *dc);
void px__down_goaway(struct px_down *dc);
nghttp2_session_callbacks *px__down_callbacks(void);
/* Called by up.c */
void px__h2s_fail(struct px_h2s *h, int status, const char *code, const char *msg);
void px__h2s_try_submit(struct px_h2s *h);
void px__h2s_up_gone(struct px_h2s *h, const char *why);
void px__h2s_maybe_release(struct px_h2s *h);

/* up.c */
nghttp2_session_callbacks *px__up_callbacks(void);
/* Attaches |h| to a pooled connection to its contract's upstream (creating
 * one when none can take another stream). Returns 0, or -1 after
 * answering |h| with a 502. */
int px__up_attach(struct px_h2s *h);
void px__up_detach(struct px_h2s *h);
int px__up_submit(struct px_h2s *h);
void px__up_kill(struct px_up *u, const char *why);

/* audit.c */
int px__audit_open(const char *path, char *err, size_t errlen);
void px__audit_push(const char *line, size_t len);
void px__audit_close(void);
uint64_t px__audit_dropped(void);
void px__audit_record(struct px_h2s *h);

#endif
