/*
 * privgate proxy: the admin listener (SPEC 8) — GET /healthz, /readyz,
 * /metrics (Prometheus text format) and /contracts — on the main thread's
 * loop, so it keeps answering while workers are busy. Speaks HTTP/1.1 (one
 * request per connection) and HTTP/2 with prior knowledge (h2c), told apart
 * by the client preface. Not a hot path: it allocates freely.
 */
#include "proxy/gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADMIN_HEAD_MAX 8192

static struct {
    struct px_gw *g;
    uv_tcp_t lst;
    bool on;
} AD;

struct abuf {
    char *p;
    size_t len, cap;
};

static void ab_add(struct abuf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ab_printf(struct abuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ab_printf(struct abuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) ab_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* JSON / label string (names and paths from contracts: escape " and \). */
static void ab_str(struct abuf *b, const char *s)
{
    ab_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') ab_add(b, "\\", 1);
        if ((unsigned char)*s >= 0x20) ab_add(b, s, 1);
    }
    ab_add(b, "\"", 1);
}

/* ------------------------------------------------------------- endpoints */

/* Prometheus label value (text format 0.0.4): \\, \" and \n escaped. */
static void ab_label(struct abuf *b, const char *s)
{
    ab_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            ab_add(b, "\\", 1);
        else if (*s == '\n') {
            ab_add(b, "\\n", 2);
            continue;
        }
        ab_add(b, s, 1);
    }
    ab_add(b, "\"", 1);
}

/* A scrape's snapshot of one provider, summed over the workers. */
struct met_sum {
    char name[64];
    struct {
        char outcome[12];
        char code[32];
        uint64_t n;
    } req[PX_MET_CODES];
    size_t nreq;
    uint64_t removed, transformed;
    uint64_t bucket[PX_MET_BUCKETS + 1]; /* per bucket, as the workers count */
    uint64_t sum_ns;
    uint64_t up_err[PX_UPE_N];
};

#define RLX(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void metrics_text(struct abuf *b)
{
    struct px_gw *g = AD.g;
    /* sum the workers' blocks: relaxed loads, no lock (each block has a
     * single writer; rows are published with a release store) */
    static struct met_sum all[PX_MET_PROVIDERS];
    size_t n = 0;
    uint64_t active = 0;
    for (unsigned w = 0; w < g->nworkers; w++) {
        const struct px_metrics *m = &g->workers[w].met;
        active += RLX(m->active_streams);
        size_t np = atomic_load_explicit(&m->np, memory_order_acquire);
        for (size_t i = 0; i < np; i++) {
            const struct px_met_provider *src = &m->p[i];
            size_t k;
            for (k = 0; k < n; k++)
                if (strcmp(all[k].name, src->name) == 0) break;
            if (k == n) {
                if (n == PX_MET_PROVIDERS) continue;
                memset(&all[n], 0, sizeof(all[n]));
                memcpy(all[n].name, src->name, sizeof(all[n].name));
                n++;
            }
            struct met_sum *d = &all[k];
            size_t nreq = atomic_load_explicit(&src->nreq, memory_order_acquire);
            for (size_t r = 0; r < nreq; r++) {
                size_t q;
                for (q = 0; q < d->nreq; q++)
                    if (strcmp(d->req[q].outcome, src->req[r].outcome) == 0 &&
                        strcmp(d->req[q].code, src->req[r].code) == 0)
                        break;
                if (q == d->nreq) {
                    if (d->nreq == PX_MET_CODES) continue;
                    memcpy(d->req[q].outcome, src->req[r].outcome, sizeof(d->req[q].outcome));
                    memcpy(d->req[q].code, src->req[r].code, sizeof(d->req[q].code));
                    d->req[q].n = 0;
                    d->nreq++;
                }
                d->req[q].n += RLX(src->req[r].n);
            }
            d->removed += RLX(src->removed);
            d->transformed += RLX(src->transformed);
            for (size_t k2 = 0; k2 <= PX_MET_BUCKETS; k2++)
                d->bucket[k2] += RLX(src->bucket[k2]);
            d->sum_ns += RLX(src->sum_ns);
            for (size_t e = 0; e < PX_UPE_N; e++)
                d->up_err[e] += RLX(src->up_err[e]);
        }
    }
    ab_printf(b, "# HELP privgate_requests_total Requests by provider, outcome and error code.\n"
                 "# TYPE privgate_requests_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < all[i].nreq; r++) {
            ab_printf(b, "privgate_requests_total{provider=");
            ab_label(b, all[i].name);
            ab_printf(b, ",outcome=");
            ab_label(b, all[i].req[r].outcome);
            ab_printf(b, ",code=");
            ab_label(b, all[i].req[r].code);
            ab_printf(b, "} %llu\n", (unsigned long long)all[i].req[r].n);
        }
    ab_printf(b, "# HELP privgate_fields_removed_total Fields, parameters and headers removed.\n"
                 "# TYPE privgate_fields_removed_total counter\n");
    for (size_t i = 0; i < n; i++) {
        ab_printf(b, "privgate_fields_removed_total{provider=");
        ab_label(b, all[i].name);
        ab_printf(b, "} %llu\n", (unsigned long long)all[i].removed);
    }
    ab_printf(b, "# HELP privgate_fields_transformed_total Values hashed, masked, truncated.\n"
                 "# TYPE privgate_fields_transformed_total counter\n");
    for (size_t i = 0; i < n; i++) {
        ab_printf(b, "privgate_fields_transformed_total{provider=");
        ab_label(b, all[i].name);
        ab_printf(b, "} %llu\n", (unsigned long long)all[i].transformed);
    }
    ab_printf(b,
              "# HELP privgate_request_duration_seconds Time from request head to stream close.\n"
              "# TYPE privgate_request_duration_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; k < PX_MET_BUCKETS; k++) {
            cum += all[i].bucket[k];
            ab_printf(b, "privgate_request_duration_seconds_bucket{provider=");
            ab_label(b, all[i].name);
            ab_printf(b, ",le=\"%g\"} %llu\n", px__met_bounds[k], (unsigned long long)cum);
        }
        cum += all[i].bucket[PX_MET_BUCKETS];
        ab_printf(b, "privgate_request_duration_seconds_bucket{provider=");
        ab_label(b, all[i].name);
        ab_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        ab_printf(b, "privgate_request_duration_seconds_sum{provider=");
        ab_label(b, all[i].name);
        ab_printf(b, "} %.9f\n", (double)all[i].sum_ns / 1e9);
        ab_printf(b, "privgate_request_duration_seconds_count{provider=");
        ab_label(b, all[i].name);
        ab_printf(b, "} %llu\n", (unsigned long long)cum);
    }
    static const char *const kinds[PX_UPE_N] = {"unavailable", "tls", "protocol", "timeout"};
    ab_printf(b, "# HELP privgate_upstream_errors_total Upstream failures by kind.\n"
                 "# TYPE privgate_upstream_errors_total counter\n");
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < PX_UPE_N; e++) {
            if (!all[i].up_err[e]) continue;
            ab_printf(b, "privgate_upstream_errors_total{provider=");
            ab_label(b, all[i].name);
            ab_printf(b, ",kind=\"%s\"} %llu\n", kinds[e], (unsigned long long)all[i].up_err[e]);
        }
    ab_printf(b,
              "# HELP privgate_contract_reloads_total SIGHUP reloads by result.\n"
              "# TYPE privgate_contract_reloads_total counter\n"
              "privgate_contract_reloads_total{result=\"ok\"} %llu\n"
              "privgate_contract_reloads_total{result=\"failed\"} %llu\n"
              "# HELP privgate_active_streams Requests in progress.\n"
              "# TYPE privgate_active_streams gauge\n"
              "privgate_active_streams %llu\n"
              "# HELP privgate_audit_dropped_total Audit records dropped (queue full).\n"
              "# TYPE privgate_audit_dropped_total counter\n"
              "privgate_audit_dropped_total %llu\n",
              (unsigned long long)g->reloads_ok, (unsigned long long)g->reloads_failed,
              (unsigned long long)active, (unsigned long long)px__audit_dropped());
    uint64_t lost_full, lost_write;
    px__audit_lost(&lost_full, &lost_write);
    ab_printf(b,
              "# HELP privgate_audit_records_lost_total Audit records lost, by reason.\n"
              "# TYPE privgate_audit_records_lost_total counter\n"
              "privgate_audit_records_lost_total{reason=\"queue_full\"} %llu\n"
              "privgate_audit_records_lost_total{reason=\"write_error\"} %llu\n"
              "# HELP privgate_audit_failing 1 while audit records are being lost.\n"
              "# TYPE privgate_audit_failing gauge\n"
              "privgate_audit_failing %d\n",
              (unsigned long long)lost_full, (unsigned long long)lost_write,
              px__audit_failing() ? 1 : 0);
}

static void contracts_json(struct abuf *b)
{
    const struct ctr_set *s = AD.g->set;
    ab_add(b, "{\"contracts\":[", 14);
    for (size_t i = 0; i < s->ncontracts; i++) {
        const struct ctr_contract *c = s->contracts[i];
        if (i) ab_add(b, ",", 1);
        ab_add(b, "{\"provider\":", 12);
        ab_str(b, c->provider);
        ab_add(b, ",\"file\":", 8);
        ab_str(b, c->file);
        ab_add(b, ",\"sha256\":", 10);
        ab_str(b, c->sha256);
        ab_add(b, ",\"routes\":[", 11);
        for (size_t r = 0; r < c->nroutes; r++) {
            if (r) ab_add(b, ",", 1);
            ab_add(b, "{\"method\":", 10);
            ab_str(b, c->routes[r].method);
            ab_add(b, ",\"path\":", 8);
            ab_str(b, c->routes[r].path);
            ab_add(b, "}", 1);
        }
        ab_add(b, "]}", 2);
    }
    ab_add(b, "]}\n", 3);
}

/* Fills |body| and returns the status for |path| (query ignored). */
static int route(const char *method, const char *path, size_t plen, struct abuf *body,
                 const char **type)
{
    size_t n = strcspn(path, "?");
    if (n > plen) n = plen;
    *type = "text/plain; charset=utf-8";
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(path, lit, n) == 0)
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        ab_printf(body, "method not allowed\n");
        return 405;
    }
    if (IS("/healthz")) {
        ab_printf(body, "ok\n");
        return 200;
    }
    if (IS("/readyz")) {
        if (AD.g->draining) {
            ab_printf(body, "draining\n");
            return 503;
        }
        /* audit.require: a gateway that cannot keep its audit log should
         * be taken out of rotation, not silently serve unaudited traffic */
        if (AD.g->set->config.audit_require && px__audit_failing()) {
            ab_printf(body, "audit log failing: records are being lost\n");
            return 503;
        }
        ab_printf(body, "ready\n");
        return 200;
    }
    if (IS("/metrics")) {
        *type = "text/plain; version=0.0.4; charset=utf-8";
        metrics_text(body);
        return 200;
    }
    if (IS("/contracts")) {
        *type = "application/json";
        contracts_json(body);
        return 200;
    }
#undef IS
    ab_printf(body, "not found\n");
    return 404;
}

/* ------------------------------------------------------------ connections */

struct aconn;

struct astream {
    struct abuf method, path, body;
    size_t off;
};

struct aconn {
    struct px_conn conn; /* first: px_h2_send_cb */
    nghttp2_session *s;
    char head[ADMIN_HEAD_MAX];
    size_t hlen;
    bool h2, responded;
    struct abuf out; /* HTTP/1.1 response */
    size_t out_off;
};

static nghttp2_session_callbacks *admin_cbs;

static void aconn_closed(struct px_conn *c)
{
    struct aconn *a = c->ud;
    if (a->s) nghttp2_session_del(a->s);
    free(a->out.p);
    free(a);
}

static void aconn_close(struct aconn *a)
{
    px_conn_close(&a->conn);
}

static void h1_pump(struct aconn *a)
{
    while (a->out_off < a->out.len) {
        size_t k = px_conn_write(&a->conn, a->out.p + a->out_off, a->out.len - a->out_off);
        if (k == 0) break;
        a->out_off += k;
    }
    px_conn_kick(&a->conn);
    if (a->out_off == a->out.len && !px_conn_busy(&a->conn)) aconn_close(a);
}

static void h1_request(struct aconn *a)
{
    /* request line: METHOD SP PATH SP HTTP/1.x */
    char method[16] = "", path[1024] = "";
    const char *sp1 = memchr(a->head, ' ', a->hlen);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', a->hlen - (size_t)(sp1 + 1 - a->head)) : NULL;
    struct abuf body = {0};
    const char *type = "text/plain; charset=utf-8";
    int status = 400;
    if (sp1 && sp2 && (size_t)(sp1 - a->head) < sizeof(method) &&
        (size_t)(sp2 - sp1 - 1) < sizeof(path)) {
        memcpy(method, a->head, (size_t)(sp1 - a->head));
        memcpy(path, sp1 + 1, (size_t)(sp2 - sp1 - 1));
        status = route(method, path, strlen(path), &body, &type);
    } else {
        ab_printf(&body, "bad request\n");
    }
    ab_printf(
        &a->out,
        "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\nconnection: close\r\n\r\n",
        status,
        status == 200   ? "OK"
        : status == 503 ? "Service Unavailable"
                        : "Error",
        type, body.len);
    if (strcmp(method, "HEAD") != 0 && body.len) ab_add(&a->out, body.p, body.len);
    free(body.p);
    a->responded = true;
    h1_pump(a);
}

static void h2_flush(struct aconn *a)
{
    if (px_h2_flush(a->s, &a->conn) != 0) aconn_close(a);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct astream *st = src->ptr;
    size_t n = st->body.len - st->off;
    if (n > len) n = len;
    if (n) memcpy(buf, st->body.p + st->off, n);
    st->off += n;
    if (st->off == st->body.len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int h2_begin(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    struct astream *st = calloc(1, sizeof(*st));
    if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

static int h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                     const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct astream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st) return 0;
    if (nl == 7 && memcmp(name, ":method", 7) == 0)
        ab_add(&st->method, (const char *)value, vl);
    else if (nl == 5 && memcmp(name, ":path", 5) == 0)
        ab_add(&st->path, (const char *)value, vl);
    return 0;
}

static int h2_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    (void)ud;
    if (f->hd.type != NGHTTP2_HEADERS || !(f->hd.flags & NGHTTP2_FLAG_END_STREAM)) return 0;
    struct astream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st || !st->method.p || !st->path.p) return 0;
    const char *type;
    int status = route(st->method.p, st->path.p, st->path.len, &st->body, &type);
    char sts[8], clen[24];
    snprintf(sts, sizeof(sts), "%d", status);
    snprintf(clen, sizeof(clen), "%zu", st->body.len);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)sts, 7, strlen(sts), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)type, 12, strlen(type), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-length", (uint8_t *)clen, 14, strlen(clen), NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd;
    prd.source.ptr = st;
    prd.read_callback = body_read;
    bool head = strcmp(st->method.p, "HEAD") == 0;
    nghttp2_submit_response(s, f->hd.stream_id, nv, 3, head ? NULL : &prd);
    return 0;
}

static int h2_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)code;
    (void)ud;
    struct astream *st = nghttp2_session_get_stream_user_data(s, id);
    if (st) {
        free(st->method.p);
        free(st->path.p);
        free(st->body.p);
        free(st);
    }
    return 0;
}

static void a_ready(struct px_conn *c, const char *err)
{
    if (err) aconn_close(c->ud);
}

static void a_read(struct px_conn *c, const char *p, size_t n)
{
    struct aconn *a = c->ud;
    if (a->responded) return;
    if (a->h2) {
        if (nghttp2_session_mem_recv(a->s, (const uint8_t *)p, n) < 0) {
            aconn_close(a);
            return;
        }
        h2_flush(a);
        return;
    }
    size_t room = sizeof(a->head) - a->hlen - 1;
    if (n > room) n = room;
    memcpy(a->head + a->hlen, p, n);
    a->hlen += n;
    a->head[a->hlen] = '\0';
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t pl = sizeof(preface) - 1;
    size_t cmp = a->hlen < pl ? a->hlen : pl;
    if (memcmp(a->head, preface, cmp) == 0) {
        if (a->hlen < pl) return;
        a->h2 = true;
        nghttp2_session_server_new(&a->s, admin_cbs, a);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 16}};
        nghttp2_submit_settings(a->s, NGHTTP2_FLAG_NONE, iv, 1);
        if (nghttp2_session_mem_recv(a->s, (const uint8_t *)a->head, a->hlen) < 0) {
            aconn_close(a);
            return;
        }
        h2_flush(a);
        return;
    }
    if (strstr(a->head, "\r\n\r\n") || strstr(a->head, "\n\n"))
        h1_request(a);
    else if (a->hlen >= sizeof(a->head) - 1)
        aconn_close(a);
}

static void a_eof(struct px_conn *c, const char *err)
{
    (void)err;
    aconn_close(c->ud);
}

static void a_writable(struct px_conn *c)
{
    struct aconn *a = c->ud;
    if (a->h2)
        h2_flush(a);
    else if (a->responded)
        h1_pump(a);
}

static const struct px_conn_ops admin_ops = {a_ready, a_read, a_eof, a_writable, aconn_closed};

static void on_admin(uv_stream_t *server, int status)
{
    if (status < 0) return;
    struct aconn *a = calloc(1, sizeof(*a));
    if (!a) return;
    if (px_conn_init(server->loop, &a->conn, &admin_ops, a) != 0) {
        free(a);
        return;
    }
    if (px_conn_accept(&a->conn, server, NULL) != 0) aconn_close(a);
}

int px__admin_start(uv_loop_t *loop, struct px_gw *g, char *err, size_t errlen)
{
    const struct ctr_config *cfg = &g->set->config;
    AD.g = g;
    if (!cfg->admin_host) return 0;
    int fd = px_listen_socket(cfg->admin_host, cfg->admin_port, false, err, errlen);
    if (fd < 0) return -1;
    if (nghttp2_session_callbacks_new(&admin_cbs) != 0) {
        close(fd);
        snprintf(err, errlen, "admin: out of memory");
        return -1;
    }
    nghttp2_session_callbacks_set_send_callback(admin_cbs, px_h2_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(admin_cbs, h2_begin);
    nghttp2_session_callbacks_set_on_header_callback(admin_cbs, h2_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(admin_cbs, h2_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(admin_cbs, h2_close);
    uv_tcp_init(loop, &AD.lst);
    if (uv_tcp_open(&AD.lst, fd) != 0 || uv_listen((uv_stream_t *)&AD.lst, 128, on_admin) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s", cfg->admin_address);
        return -1;
    }
    AD.on = true;
    return 0;
}

void px__admin_stop(void)
{
    if (AD.on) uv_close((uv_handle_t *)&AD.lst, NULL);
    AD.on = false;
}
