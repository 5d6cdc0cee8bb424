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
#define PX_CHUNK_STACK 256
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
/* px__pipe_read, and the chunks read to their end go to |keep| (when not
 * NULL) instead of back to the pool: bytes sent upstream kept for a
 * replay without a copy (px__up_retry puts them back in front). */
size_t px__pipe_read_keep(struct px_worker *w, struct px_pipe *p, uint8_t *buf, size_t cap,
                          struct px_pipe *keep);
/* Drops all but the first |n| unread bytes of |p|. */
void px__pipe_trim(struct px_worker *w, struct px_pipe *p, size_t n);
/* nghttp2 send_data_callback body for a DATA frame whose read callback
 * returned |len| bytes of |p| with NGHTTP2_DATA_FLAG_NO_COPY: the frame
 * header and those bytes go straight from the pipe's chunks into |c|'s
 * output (no copy into nghttp2's frame buffer); chunks read to their end
 * go to |keep| or back to the pool. Returns 0 or an nghttp2 error code
 * (NGHTTP2_ERR_WOULDBLOCK: |c| has no room for the whole frame yet). */
int px__send_data(struct px_worker *w, struct px_conn *c, const nghttp2_frame *f, const uint8_t *hd,
                  size_t len, struct px_pipe *p, struct px_pipe *keep);
/* nghttp2 read callback body for |p| sent that way: how many of |len|
 * bytes the next DATA frame takes (EOF flagged on the last, NO_COPY
 * always), or NGHTTP2_ERR_DEFERRED while |p| is empty and not ended. */
ssize_t px__pipe_frame(const struct px_pipe *p, size_t len, uint32_t *flags);

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
struct px_h1;
struct px_down_proto;

struct px_down {
    struct px_sess base;
    struct px_down *prev, *next; /* worker list */
    struct px_h2s *streams;      /* open downstream streams */
    uv_timer_t idle;             /* idle_timeout: closes a connection without streams */
    uint64_t last_active;        /* uv_now of the last read */
    int handles;                 /* tcp + idle; freed at 0 */
    bool goaway;
    uint64_t final_goaway_at; /* draining: shutdown notice sent, the final GOAWAY is due then */
    char caller[256];         /* mTLS subject CN or first DNS SAN, "" when none */
    bool mtls;                /* client_ca listener: the caller header is ignored */
    /* ---- downstream protocol (HTTP/1.1 downstream: h1down.c) ---- */
    const struct px_down_proto *proto; /* NULL until known (ALPN or the first bytes) */
    struct px_h1 *h1;                  /* HTTP/1.1 state; NULL for h2 */
    uint8_t nsniff;                    /* cleartext: bytes of a possible h2 preface */
    char sniff[24];
    /* ---- protections (down.c; docs/GATEWAY.md "Protections") ---- */
    uint64_t t_accept; /* uv_now at accept: the first request head is due header_timeout after */
    bool had_request;  /* handshake done: HTTP/2 SETTINGS, or an HTTP/1.1 head */
    bool calm;         /* told GOAWAY(ENHANCE_YOUR_CALM): closing, input ignored */
    uint64_t kill_at;  /* uv_now after which the connection is closed whatever the peer does */
    int32_t budget;    /* abuse budget (token bucket, PX_CALM_*) */
    uint64_t budget_t; /* uv_now of its last refill */
    int32_t ctl_free;  /* control frames still free before they cost budget (down.c PX_CTL_*) */
    /* down.c on_header: the stream whose header block is being decoded
     * (blocks do not interleave), instead of a stream look-up per field;
     * cleared when that exchange's downstream side closes */
    struct px_h2s *hdr_h;
    int32_t hdr_id;
};
/* Abuse budget of an HTTP/2 downstream connection: resets it caused (its
 * RST_STREAMs, and the ones its stream errors made the gateway send), empty
 * DATA frames, PINGs and SETTINGS each take one token; a completed request
 * gives one back, and PX_CALM_RATE come back per second, up to
 * PX_CALM_BURST. Out of tokens: GOAWAY(ENHANCE_YOUR_CALM) and close. */
#define PX_CALM_BURST 256
#define PX_CALM_RATE 128
#define PX_OBQ_MAX 4096 /* frames queued for a peer that does not read them */

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
    bool settings_seen;  /* the provider's first SETTINGS arrived: its stream limit is known */
    uint32_t room_guess; /* streams taken before SETTINGS (0: 100); a sibling's known limit */
    uv_timer_t ctimer;   /* connect + handshake timeout, then idle timeout */
    uv_getaddrinfo_t gai;
    bool gai_pending;
    int handles;            /* open uv handles; freed at 0 */
    struct px_h2s *pending; /* waiting for the connection */
    struct px_h2s *active;  /* submitted */
    uint32_t nactive;
    uint32_t npending;  /* length of |pending| */
    int proto;          /* enum ctr_up_proto of the contract(s) using it */
    struct px_h1up *h1; /* non-NULL: an HTTP/1.1 connection (h1up.c); base.s is NULL */
    bool proto_err;     /* nghttp2 ended the session for a peer's connection error */
    /* up.c on_header: the stream user data of stream |hdr_id| (the last
     * looked up), cleared when that stream closes */
    struct px_h2s *hdr_h;
    int32_t hdr_id;
};

/* --------------------------------------------------------------- streams */

/* Header fields kept inline in a px_h2s; a head with more takes a pool
 * block sized for PX_MAX_HEADERS (px__h2s_hdr_room, px__h2s_rnv_room). With
 * 320 exchanges in flight each request finds its exchange cold in the
 * cache: arrays sized for 128 fields made a 14.9 KiB object whose scalar
 * fields were spread over 15 cache lines and 4 pages. */
#define PX_HDR_INLINE 24  /* request fields */
#define PX_RHDR_INLINE 16 /* response fields */

struct px_h2s {
    /* ---- scalar state, zeroed per exchange (px__h2s_get), packed in the
     * first cache lines: every request touches most of it ---- */
    struct px_worker *w;
    struct px_h2s *next_free;
    /* downstream side */
    struct px_down *dc;
    struct px_h2s *dprev, *dnext;
    /* upstream side */
    struct px_up *uc;
    struct px_h2s *uprev, *unext; /* in uc->pending or uc->active */
    int32_t id;
    int32_t up_id;
    /* request head: header rcbufs are kept (incref) until release */
    struct ctr_set *set;
    const struct ctr_contract *contract;
    struct ctr_decision *d; /* allocated once with the pooled object */
    struct flt_body *body;
    uint32_t body_depth;
    int head_err; /* 0 or the status of a head refusal (431) */
    struct flt_str method, path;
    uint64_t header_bytes;
    /* header arrays: the inline ones below, or a pool block (overflow) */
    nghttp2_rcbuf **rc; /* request rcbufs: 2 per field, + :method, :path */
    struct ctr_header *hdr;
    nghttp2_nv *rnv; /* response head from upstream */
    nghttp2_rcbuf **rrc;
    uint16_t nrc, nhdr, nrnv, nrrc;
    char rstatus[4];
    bool in_pending, in_active;
    bool rhead_bad;
    bool down_open, up_open;
    bool decided, body_seen, req_end, req_done, buffer_all;
    bool up_submitted, up_end_seen;
    bool up_rst;     /* a RST_STREAM was submitted for up_id: never a second (down.c) */
    uint8_t retries; /* upstream attempts after a refused stream */
    uint8_t moves;   /* moved, never sent, off a connection that went away (up.c) */
    bool room_moved; /* moved once off a connection whose stream limit it did not fit */
    bool responded;  /* a response head was submitted downstream */
    bool finished;   /* the gateway answered or gave up: ignore further input */
    bool resp_done;
    bool timer_on;
    bool replay_ok;
    int status;
    /* verdict and body */
    struct px_pipe req, resp;
    /* the request body chunks already sent upstream (moved off |req|, not
     * copied: px__send_data, px__pipe_read_keep; the bytes sent from the
     * chunk |req| is reading are those before its |off|), kept while no
     * more than PX_REPLAY_MAX were sent and until the response head
     * arrives, so that a stream the provider refuses can be sent again
     * (px__up_retry) */
    struct px_pipe replay;
    uint64_t req_sent; /* request body bytes handed to the upstream session */
    /* request bytes of a DATA frame nghttp2 has framed (no-copy read
     * callback) and not sent yet: they stay in |req| until it is sent
     * (up.c req_read, up_send_data) */
    size_t req_promised;
    const char *outcome; /* "forwarded" | "refused" | "failed" */
    const char *code;    /* error code or NULL */
    /* gateway answer: a pool block of PX_ERRBODY_MAX bytes, taken when
     * the gateway answers (NULL otherwise) */
    char *errbody;
    size_t errlen, erroff;
    char rid[27];
    /* protections (down.c watchdog): uv_now of the head's start (0 once it
     * is complete), of the last request body progress, of the last
     * response bytes the caller took; decoded header bytes of every block
     * of the stream (trailers too) */
    uint64_t t_head, t_in, t_out;
    uint64_t block_bytes;
    uint64_t t0;        /* uv_hrtime at the exchange's start (px__clock_ns) */
    uint64_t t_end;     /* and at its end: set when its downstream side closes */
    uint64_t bytes_in;  /* request body bytes received */
    uint64_t bytes_out; /* response body bytes sent to the caller */
    /* upstream_timeout (down.c): while |timer_on|, in the worker's deadline
     * list (w->tq_*, ordered by |deadline|, uv_now ms) */
    struct px_h2s *tq_prev, *tq_next;
    uint64_t deadline;
    /* ---- inline header storage (not zeroed: read below the counts) ---- */
    struct ctr_header hdr_in[PX_HDR_INLINE];
    nghttp2_rcbuf *rc_in[2 * PX_HDR_INLINE + 4];
    nghttp2_nv rnv_in[PX_RHDR_INLINE + 2]; /* + :status, + privgate-request-id */
    nghttp2_rcbuf *rrc_in[2 * PX_RHDR_INLINE];
};
#define PX_ERRBODY_MAX 768u

/* worker.c: room for one more request field in h->hdr (and its two rcbufs
 * in h->rc), growing the arrays past PX_HDR_INLINE; false at PX_MAX_HEADERS
 * or out of memory. Same for one more response field in h->rnv (two
 * rcbufs in h->rrc, and the request id px__h2s_respond appends). */
bool px__h2s_hdr_grow(struct px_h2s *h);
bool px__h2s_rnv_grow(struct px_h2s *h);
static inline bool px__h2s_hdr_room(struct px_h2s *h)
{
    return h->nhdr < PX_HDR_INLINE || px__h2s_hdr_grow(h);
}
static inline bool px__h2s_rnv_room(struct px_h2s *h)
{
    return h->nrnv < PX_RHDR_INLINE + 1 || px__h2s_rnv_grow(h);
}

/* --------------------------------------------------------------- metrics */

/* Per-worker counters of SPEC 8. Each worker owns one cache-line-aligned
 * block and is its only writer: increments are relaxed load + store (no
 * lock, no locked instruction, no cache line shared with another worker).
 * The admin endpoint on the main thread reads the blocks with relaxed loads
 * and sums them. Rows (a provider, an outcome/code pair) are filled before
 * their count is published with a release store, and never change after. */
#define PX_MET_PROVIDERS 64
#define PX_MET_CODES 24
#define PX_MET_BUCKETS 14 /* finite bounds of the duration histogram */
enum px_up_err { PX_UPE_UNAVAILABLE = 0, PX_UPE_TLS, PX_UPE_PROTOCOL, PX_UPE_TIMEOUT, PX_UPE_N };

struct px_met_provider {
    char name[64]; /* "" = requests for no known provider */
    struct {
        char outcome[12];
        char code[32];
        _Atomic uint64_t n;
    } req[PX_MET_CODES];
    _Atomic size_t nreq;
    _Atomic uint64_t removed, transformed;
    /* per bucket, not cumulative: [b] counts durations in (bound[b-1],
     * bound[b]], [PX_MET_BUCKETS] the ones above the last bound; the scrape
     * accumulates them, so +Inf always equals _count */
    _Atomic uint64_t bucket[PX_MET_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t up_err[PX_UPE_N];
};

struct px_metrics {
    _Alignas(64) _Atomic uint64_t active_streams;
    _Atomic size_t np;
    struct px_met_provider p[PX_MET_PROVIDERS];
};

extern const double px__met_bounds[PX_MET_BUCKETS];
void px__metrics_request(struct px_h2s *h);
void px__metrics_up_error(struct px_h2s *h, enum px_up_err kind);
/* Owner-thread-only counter updates (relaxed load + store). */
static inline void px__met_add(_Atomic uint64_t *c, uint64_t k)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + k,
                          memory_order_relaxed);
}
static inline void px__met_sub(_Atomic uint64_t *c, uint64_t k)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - k,
                          memory_order_relaxed);
}

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
    uv_prepare_t audit_wake; /* px__worker_audit_wake_later */
    bool audit_wake_on;
    uv_timer_t drain_timer;
    struct ctr_set *set;                /* loop thread only */
    _Atomic(struct ctr_set *) next_set; /* handed over by the main thread */
    /* Exchanges using |set|, counted without atomics: the worker's one
     * reference stands for all of them (an atomic increment and decrement
     * per exchange cost a locked instruction each, which waits for every
     * store before it). Sets replaced by a reload while exchanges still use
     * them wait in |retired| (worker.c px__set_take / px__set_drop). */
    uint32_t set_users;
    struct px_set_retired *retired;
    atomic_bool stop;
    bool draining;
    int *fds;      /* one per listener, owned until opened */
    uv_tcp_t *lst; /* one per listener */
    size_t nlst;
    struct px_down *downs;
    struct px_up *ups;
    struct px_sess *dirty;
    struct px_h2s *free_h2s;
    unsigned nfree_h2s, nfree_min; /* length, and its low mark since the last trim */
    uv_timer_t trim_timer;
    struct px_chunk *free_chunks;
    /* the last idle chunks, on an array: taking one reads nothing from it
     * (as in pool.c: a chunk freed long ago is cold) */
    struct px_chunk *chunk_stk[PX_CHUNK_STACK];
    unsigned nchunk_stk;
    size_t nfree_chunks;
    struct px_ctx_cache ctxs[16];
    size_t nctxs;
    uint64_t rng[2];
    struct px_metrics met; /* 64-byte aligned: workers are allocated aligned */
    char audit_line[PX_AUDIT_LINE_MAX];
    struct px_audit_q *audit_q; /* audit.c: this worker's record ring (worker thread only) */
    /* upstream_timeout of every stream (down.c): one timer for the
     * earliest deadline instead of a libuv timer started and stopped per
     * request (about 430 instructions); |tq_due| is when tq_timer fires
     * (0: not armed) */
    struct px_h2s *tq_head, *tq_tail;
    uv_timer_t tq_timer;
    uint64_t tq_due;
    /* up.c: the pool key of the last upstream a request used (|key_up| of
     * rule set |key_set|, referenced so that neither can be freed and
     * their addresses reused while cached): built once, not per request */
    struct ctr_set *key_set;
    const struct ctr_upstream *key_up;
    char key[1024];
    /* worker.c px__clock_ns / px__wall_ms: one clock read per batch of
     * exchanges instead of one per exchange and use */
    uint64_t clk_ms, clk_ns;   /* uv_now when |clk_ns| was read; 0: read again */
    uint64_t wall_at, wall_ms; /* uv_now when |wall_ms| (CLOCK_REALTIME) was read */
    uint64_t rid_ms;           /* px__request_id: the time part of |rid_ms| */
    char rid_time[10];
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
/* The worker's current set for a new exchange, and its release. */
struct ctr_set *px__set_take(struct px_worker *w);
void px__set_drop(struct px_worker *w, struct ctr_set *set);
void px__h2s_put(struct px_h2s *h);
void px__request_id(struct px_worker *w, char out[27]);
/* uv_hrtime, read at most once per batch: the value is shared by the
 * exchanges of one socket read or one flush (px__clock_tick starts a
 * batch: reads and the flush handle call it) and never outlives the loop
 * iteration (uv_now) it was read in. For exchange start and end times. */
uint64_t px__clock_ns(struct px_worker *w);
static inline void px__clock_tick(struct px_worker *w)
{
    w->clk_ns = 0;
}
/* Time from the exchange's start to the end of its downstream side (or
 * to now, before that end): audit duration_ms and the metrics histogram. */
static inline uint64_t px__h2s_elapsed_ns(const struct px_h2s *h)
{
    return (h->t_end ? h->t_end : uv_hrtime()) - h->t0;
}
/* CLOCK_REALTIME in ms, read once per loop iteration (uv_now). */
uint64_t px__wall_ms(struct px_worker *w);
SSL_CTX *px__client_ctx(struct px_worker *w, const char *ca, char *err, size_t errlen);

/* down.c */
void px__down_accept(struct px_worker *w, uv_stream_t *server, SSL_CTX *ctx);
void px__down_kill(struct px_down *dc);
void px__down_goaway(struct px_down *dc);
/* TLS close_notify now, when nothing else is waiting to be written (down.c). */
void px__down_close_notify(struct px_conn *c);
nghttp2_session_callbacks *px__down_callbacks(void);
/* Called by up.c */
void px__h2s_fail(struct px_h2s *h, int status, const char *code, const char *msg);
void px__h2s_try_submit(struct px_h2s *h);
void px__h2s_up_gone(struct px_h2s *h, const char *why);
void px__h2s_maybe_release(struct px_h2s *h);
/* Stops the upstream_timeout of |h| (no-op when not running). */
void px__h2s_timer_stop(struct px_h2s *h);

/* up.c */
nghttp2_session_callbacks *px__up_callbacks(void);
/* Attaches |h| to a pooled connection to its contract's upstream (creating
 * one when none can take another stream). Returns 0, or -1 after
 * answering |h| with a 502. */
int px__up_attach(struct px_h2s *h);
void px__up_detach(struct px_h2s *h);
int px__up_submit(struct px_h2s *h);
void px__up_kill(struct px_up *u, const char *why);

/* ------------------------------------ downstream protocols (h2 and h1) */

/* What the exchange code of down.c needs from a downstream protocol. The
 * HTTP/2 implementation is in down.c, the HTTP/1.1 one in h1down.c. None
 * of these sends anything at once: they queue, and the connection is
 * flushed from the worker's idle handle (px__sess_dirty). */
enum px_resp_body {
    PX_RESP_NONE = 0, /* the head ends the response */
    PX_RESP_ERR,      /* the gateway's answer: h->errbody[0, errlen) */
    PX_RESP_PIPE,     /* the provider's body, streamed from h->resp */
};
struct px_down_proto {
    /* Response head of |h|: nv[0] is :status; nv[1, n) the fields (the
     * request id included). Returns 0, or -1 when it cannot be sent. */
    int (*respond)(struct px_h2s *h, const nghttp2_nv *nv, size_t n, enum px_resp_body body);
    /* h->resp has more bytes or reached its end. */
    void (*resume)(struct px_h2s *h);
    /* The response under way cannot be completed: abort it. */
    void (*reset)(struct px_h2s *h);
    /* Request bytes counted in h->req.unconsumed were handled: more may come
     * (while h->req holds less than PX_PIPE_HIGH, or h->buffer_all). */
    void (*credit)(struct px_h2s *h);
    /* Stop taking requests; close once what is under way is answered. */
    void (*goaway)(struct px_down *dc);
};
extern const struct px_down_proto px__down_h2;

/* down.c: the protocol-independent request path, used by both protocols */
void px__h2s_head_done(struct px_h2s *h);
/* Request body bytes; returns 0, or -1 when the exchange was refused
 * (the bytes are dropped). */
int px__h2s_req_body(struct px_h2s *h, const char *p, size_t n);
void px__h2s_req_end(struct px_h2s *h);
void px__h2s_refuse(struct px_h2s *h, int status, const char *code, const char *msg);
/* The downstream side took |n| response body bytes from h->resp; true
 * when the response body is complete (h->resp_done set). */
bool px__h2s_resp_taken(struct px_h2s *h, size_t n);
/* The downstream exchange is over (answered, or its connection died). */
void px__h2s_down_closed(struct px_h2s *h);
/* A new exchange on |dc| (linked, with a request id), or NULL. */
struct px_h2s *px__h2s_open(struct px_down *dc, int32_t id);

/* h1down.c: HTTP/1.1 downstream */
extern const struct px_down_proto px__down_h1;
/* Switches |dc| to HTTP/1.1 and processes |p|[0, n) already read. */
void px__h1_start(struct px_down *dc, const char *p, size_t n);
void px__h1_read(struct px_down *dc, const char *p, size_t n);
void px__h1_eof(struct px_down *dc);
/* Flushes queued output (worker idle handle); -1: close the connection. */
int px__h1_flush(struct px_down *dc);
/* From px__down_kill: closes the HTTP/1.1 handles. */
void px__h1_kill(struct px_down *dc);
/* down.c: one handle of |dc| is closed (the last one frees it). */
void px__down_unref(struct px_down *dc);
/* Frees the HTTP/1.1 state (with its connection). */
void px__h1_free(struct px_h1 *h1);
/* Listener TLS contexts: ALPN h2, then http/1.1. Start-up: parser limits. */
void px__h1_tls_ctx(SSL_CTX *ctx);
void px__h1_init(void);
/* down.c watchdog, every tick of an HTTP/1.1 connection: header_timeout
 * (|ht| ms, 0 = off) on the head and the body, |idle| ms without the
 * caller taking response bytes. True while a request is under way. */
bool px__h1_watch(struct px_down *dc, uint64_t now, uint64_t ht, uint64_t idle);
/* down.c: the watchdog of |dc| should look again soon (a head started). */
void px__down_watch_soon(struct px_down *dc);

/* ------------------------------------------ HTTP/1.1 upstreams (h1up.c) */
/*
 * A px_up whose provider chose HTTP/1.1 (TLS: ALPN http/1.1 or no ALPN;
 * cleartext: `upstream.protocol: http/1.1`) drops its nghttp2 session
 * (base.s NULL) and gets u->h1. It carries one exchange at a time:
 * u->active holds at most the one in flight, u->pending the requests
 * waiting for it. Per upstream and worker at most PX_H1_MAX_CONNS
 * connections are opened; beyond, requests queue. docs/GATEWAY.md,
 * "HTTP/1.1 upstreams".
 *
 * For such a stream, h->rnv names and values point into the connection's
 * buffer: they are valid until px__h2s_respond returns (a downstream that
 * writes the head later must copy it).
 */
#define PX_H1_MAX_CONNS 32           /* connections per upstream and worker */
#define PX_H1_CL_MAX (64u * 1024u)   /* bodies complete within this get a content-length */
#define PX_H1_HEAD_MAX (64u * 1024u) /* response head bytes */

struct px_h1up;
/* Turns |u| (connected, handshake done) into an HTTP/1.1 connection.
 * Returns 0, or -1 (out of memory). */
int px__h1up_init(struct px_up *u);
/* Frees what px__h1up_init allocated (from up.c's last unref). */
void px__h1up_free(struct px_h1up *x);
/* Stops the connection's handles (from px__up_kill). */
void px__h1up_kill(struct px_up *u);
/* The connection of |key| a new request should wait on: an idle one, or
 * NULL with |*open_new| true when another may be opened, else the least
 * loaded one. */
struct px_up *px__h1up_pick(struct px_worker *w, const char *key, bool *open_new);
/* px__up_submit for an HTTP/1.1 connection: starts the exchange or queues
 * it. Returns 0, or -1 after answering |h|. */
int px__h1up_submit(struct px_h2s *h);
void px__h1up_read(struct px_up *u, const char *p, size_t n);
void px__h1up_eof(struct px_up *u, const char *err);
/* |h| left u->active: unless its exchange completed, the connection is
 * closed (the provider must not see a complete request). */
void px__h1up_detached(struct px_up *u);
/* up.c helpers for h1up.c */
void px__up_unref(struct px_up *u);
bool px__up_retry(struct px_h2s *h);
void px__up_activate(struct px_h2s *h);
void px__up_move(struct px_h2s *h, struct px_up *to);
/* -------------------------------------- end of HTTP/1.1 upstreams block */

/* audit.c */
int px__audit_open(const char *path, char *err, size_t errlen);
struct px_audit_q;
/* Copies one whole record into |w|'s ring (worker thread only; never blocks). */
void px__audit_push(struct px_worker *w, const char *line, size_t len);
void px__audit_close(void);
uint64_t px__audit_dropped(void);
void px__audit_record(struct px_h2s *h);
/* Records lost since start: ring full (a worker found no room) and write
 * errors (disk full, I/O error...). Any thread. */
void px__audit_lost(uint64_t *queue_full, uint64_t *write_error);
/* True while records are being lost: the last write failed, or records
 * were dropped since the last successful write. Any thread. */
bool px__audit_failing(void);
/* SIGHUP: the writer reopens the configured audit file (regular files
 * only) between two batches; a failure keeps the old one. Main thread. */
void px__audit_reopen(void);
/* Wakes the audit writer if it sleeps (a full fence, then a look). The
 * worker calls it once per loop iteration in which it published records:
 * px__worker_audit_wake_later arms it (worker.c). */
void px__audit_wake(void);
void px__worker_audit_wake_later(struct px_worker *w);

#endif
