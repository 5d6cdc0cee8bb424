/*
 * privgate proxy: `privgate serve` — start-up, signals, reload, shutdown.
 *
 * Start-up does everything that can fail before a worker starts: load the
 * set, create the TLS contexts of the listeners, bind every listening
 * socket (one per listener and worker, SO_REUSEPORT), open the audit log.
 * Any failure prints one line and returns 1.
 *
 * SIGHUP loads a new set; each worker gets its own reference through an
 * atomic hand-over slot and a uv_async, and swaps it in between two events.
 * Streams hold the set they started with. Listeners, workers and the audit
 * path are not changed by a reload (they need a restart).
 * SIGHUP also reopens the audit file (rotation: mv, then SIGHUP), whether
 * or not the new set is accepted: the two are independent.
 * SIGTERM/SIGINT: every worker stops accepting, sends GOAWAY, lets its
 * streams finish (deadline: upstream_timeout), then its loop ends.
 */
#include "proxy/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/gw.h"

static struct px_gw G;

struct diag_first {
    char line[1024];
    int n;
};

static void diag_emit(void *ud, const char *file, int line, int col, const char *msg)
{
    struct diag_first *df = ud;
    if (file && file[0])
        fprintf(stderr, "%s:%d:%d: %s\n", file, line, col, msg);
    else
        fprintf(stderr, "%s\n", msg);
    if (df->n++ == 0) snprintf(df->line, sizeof(df->line), "%s", msg);
}

static struct ctr_set *load(const char *path, struct diag_first *df)
{
    struct ctr_diag diag;
    memset(&diag, 0, sizeof(diag));
    diag.emit = diag_emit;
    diag.ud = df;
    return ctr_set_load(path, &diag);
}

static void hand_over(struct ctr_set *set)
{
    for (unsigned i = 0; i < G.nworkers; i++) {
        struct ctr_set *old = atomic_exchange(&G.workers[i].next_set, ctr_set_ref(set));
        if (old) ctr_set_unref(old); /* never taken by the worker */
        uv_async_send(&G.workers[i].async);
    }
}

static void on_hup(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    /* first, and even while draining: a rotated log must not keep
     * growing under its old name, whatever becomes of the reload */
    px__audit_reopen();
    if (G.draining) return; /* workers may be gone */
    struct diag_first df = {"", 0};
    struct ctr_set *set = load(G.config_path, &df);
    if (!set) {
        G.reloads_failed++;
        fprintf(stderr, "privgate: reload refused: %s is invalid; the previous contracts stay\n",
                G.config_path);
        return;
    }
    G.reloads_ok++;
    hand_over(set);
    ctr_set_unref(G.set);
    G.set = set;
    fprintf(stderr, "privgate: reloaded %zu contract(s)\n", set->ncontracts);
}

static void on_term(uv_signal_t *h, int sig)
{
    (void)h;
    (void)sig;
    if (G.draining) return;
    G.draining = true; /* /readyz says 503 from now on */
    fprintf(stderr, "privgate: draining\n");
    for (unsigned i = 0; i < G.nworkers; i++) {
        atomic_store(&G.workers[i].stop, true);
        uv_async_send(&G.workers[i].async);
    }
}

static void on_worker_done(uv_async_t *a)
{
    if (atomic_load(&G.workers_done) < G.nworkers) return;
    px__admin_stop();
    uv_stop(a->loop);
}

/* Each connection takes a file descriptor: the soft limit is raised to the
 * hard one (a process may do that itself). Returns the limit now. */
#define PX_NOFILE_WANT 8192u

static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return RLIM_INFINITY;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void close_fds(int **fds, unsigned nw, size_t nl)
{
    for (unsigned w = 0; w < nw; w++) {
        if (!fds[w]) continue;
        for (size_t l = 0; l < nl; l++)
            if (fds[w][l] >= 0) close(fds[w][l]);
    }
}

int px_serve(const char *config_path)
{
    memset(&G, 0, sizeof(G));
    G.config_path = config_path;
    signal(SIGPIPE, SIG_IGN);
    /* handlers first: a signal that arrives while we start is acted on
     * once the main loop runs, it does not kill a half-started process */
    uv_loop_t *loop = uv_default_loop();
    /* static: the handles stay registered until the process exits (see
     * below), so they must outlive this frame — a late SIGTERM otherwise
     * lands on a dead stack */
    static uv_signal_t sig_hup, sig_term, sig_int;
    uv_signal_init(loop, &sig_hup);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_hup, on_hup, SIGHUP);
    uv_signal_start(&sig_term, on_term, SIGTERM);
    uv_signal_start(&sig_int, on_term, SIGINT);
    rlim_t nofile = raise_nofile();
    struct diag_first df = {"", 0};
    G.set = load(config_path, &df);
    if (!G.set) {
        fprintf(stderr, "privgate: cannot start: %s is invalid%s%s\n", config_path,
                df.n ? ": " : "", df.line);
        return 1;
    }
    const struct ctr_config *cfg = &G.set->config;
    if (cfg->nlisten == 0) {
        fprintf(stderr, "privgate: cannot start: %s: no listener\n", config_path);
        ctr_set_unref(G.set);
        return 1;
    }
    char err[1024];
    int rc = 1;
    G.nlisteners = cfg->nlisten;
    G.listeners = calloc(G.nlisteners, sizeof(*G.listeners));
    G.nworkers = cfg->workers ? cfg->workers : cpu_count();
    /* aligned: each worker's metrics block is on cache lines of its own */
    G.workers = aligned_alloc(_Alignof(struct px_worker), G.nworkers * sizeof(*G.workers));
    if (G.workers) memset(G.workers, 0, G.nworkers * sizeof(*G.workers));
    int **fds = calloc(G.nworkers, sizeof(*fds));
    if (!G.listeners || !G.workers || !fds) {
        fputs("privgate: cannot start: out of memory\n", stderr);
        goto out;
    }
    for (size_t l = 0; l < G.nlisteners; l++) {
        const struct ctr_listen *ls = &cfg->listen[l];
        if (ls->tls) {
            G.listeners[l].ctx =
                px_tls_server_ctx(ls->cert, ls->key, ls->client_ca, err, sizeof(err));
            if (!G.listeners[l].ctx) {
                fprintf(stderr, "privgate: cannot start: listener %s: %s\n", ls->address, err);
                goto out;
            }
            px__h1_tls_ctx(G.listeners[l].ctx); /* ALPN h2, then http/1.1 */
        }
    }
    px__h1_init();
    for (unsigned w = 0; w < G.nworkers; w++) {
        fds[w] = malloc(G.nlisteners * sizeof(int));
        if (!fds[w]) {
            fputs("privgate: cannot start: out of memory\n", stderr);
            goto out;
        }
        for (size_t l = 0; l < G.nlisteners; l++)
            fds[w][l] = -1;
    }
    /* every port before any socket of ours listens: two listeners of this
     * config on one port (127.0.0.1 and 0.0.0.0, say) share it as the
     * workers do, and only another process's socket is refused */
    for (size_t l = 0; l < G.nlisteners; l++) {
        const struct ctr_listen *ls = &cfg->listen[l];
        if (px_port_taken(ls->host, ls->port, err, sizeof(err)) != 0) {
            fprintf(stderr, "privgate: cannot start: %s\n", err);
            goto out;
        }
    }
    for (size_t l = 0; l < G.nlisteners; l++) {
        const struct ctr_listen *ls = &cfg->listen[l];
        uint16_t port = ls->port;
        for (unsigned w = 0; w < G.nworkers; w++) {
            int fd = px_listen_socket(ls->host, port, true, err, sizeof(err));
            if (fd < 0) {
                fprintf(stderr, "privgate: cannot start: %s\n", err);
                goto out;
            }
            fds[w][l] = fd;
            if (port == 0) port = px_socket_port(fd); /* the other workers share the port chosen */
        }
        snprintf(G.listeners[l].name, sizeof(G.listeners[l].name), "%s:%u", ls->host,
                 (unsigned)port);
    }
    if (px__audit_open(cfg->audit_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "privgate: cannot start: %s\n", err);
        goto out;
    }
    if (px__admin_start(loop, &G, err, sizeof(err)) != 0) {
        fprintf(stderr, "privgate: cannot start: %s\n", err);
        goto out_audit;
    }
    atomic_init(&G.workers_done, 0);
    uv_async_init(loop, &G.done_async, on_worker_done);
    G.down_cbs = px__down_callbacks();
    G.up_cbs = px__up_callbacks();
    nghttp2_option_new(&G.down_opt);
    nghttp2_option_new(&G.up_opt);
    if (!G.down_cbs || !G.up_cbs || !G.down_opt || !G.up_opt) {
        fputs("privgate: cannot start: out of memory\n", stderr);
        goto out_audit;
    }
    nghttp2_option_set_no_auto_window_update(G.down_opt, 1);
    nghttp2_option_set_no_auto_window_update(G.up_opt, 1);
    nghttp2_option_set_no_recv_client_magic(G.down_opt, 0);
    /* HTTP/2 abuse limits of nghttp2 (their defaults, made explicit; the
     * gateway's own budget is in down.c, docs/GATEWAY.md "Protections"):
     * PING/SETTINGS ACKs queued for a peer that does not read them,
     * entries of one SETTINGS frame, CONTINUATION frames of one header
     * block (CVE-2024-28182), and RST_STREAMs received (CVE-2023-44487:
     * a backstop, down.c's budget is tighter) */
    nghttp2_option_set_max_outbound_ack(G.down_opt, 1000);
    nghttp2_option_set_max_settings(G.down_opt, 32);
    nghttp2_option_set_max_continuations(G.down_opt, 8);
    nghttp2_option_set_stream_reset_rate_limit(G.down_opt, 1000, 33);
    /* frames of every type nghttp2 does not handle itself (10-255:
     * ALTSVC, ORIGIN, PRIORITY_UPDATE and unknown ones) are "extensions"
     * for down.c: without this nghttp2 skips them without a callback, and
     * a flood of them could not be counted in the abuse budget */
    for (unsigned t = 10; t < 256; t++)
        nghttp2_option_set_user_recv_extension_type(G.down_opt, (uint8_t)t);

    unsigned started = 0;
    for (unsigned w = 0; w < G.nworkers; w++) {
        struct px_worker *wk = &G.workers[w];
        wk->gw = &G;
        wk->idx = w;
        wk->set = ctr_set_ref(G.set);
        atomic_init(&wk->next_set, NULL);
        atomic_init(&wk->stop, false);
        wk->fds = fds[w];
        wk->nlst = G.nlisteners;
        int r = px__worker_start(wk);
        if (r != 0) {
            fprintf(stderr, "privgate: cannot start: worker %u: %s\n", w, uv_strerror(r));
            for (unsigned i = 0; i < started; i++) {
                atomic_store(&G.workers[i].stop, true);
                uv_async_send(&G.workers[i].async);
            }
            for (unsigned i = 0; i < started; i++)
                uv_thread_join(&G.workers[i].thread);
            goto out_audit;
        }
        free(fds[w]); /* the sockets are owned by the worker's handles now */
        fds[w] = NULL;
        wk->fds = NULL;
        started++;
    }
    for (size_t l = 0; l < G.nlisteners; l++)
        fprintf(stderr, "privgate: listening on %s (%s)\n", G.listeners[l].name,
                G.listeners[l].ctx ? "TLS, h2 and http/1.1"
                                   : "cleartext, h2 prior knowledge and HTTP/1.1");
    if (G.set->config.admin_address)
        fprintf(stderr, "privgate: admin on %s\n", G.set->config.admin_address);
    fprintf(stderr, "privgate: %zu contract(s), %u worker(s)\n", G.set->ncontracts, G.nworkers);
    /* said once at start-up rather than found as refused connections later */
    if (nofile != RLIM_INFINITY && nofile < PX_NOFILE_WANT)
        fprintf(stderr,
                "privgate: note: at most %llu open files (hard limit of RLIMIT_NOFILE); each "
                "connection takes one: raise it (ulimit -Hn, LimitNOFILE=) for more\n",
                (unsigned long long)nofile);

    uv_run(loop, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < G.nworkers; i++)
        uv_thread_join(&G.workers[i].thread);
    for (unsigned i = 0; i < G.nworkers; i++) {
        struct ctr_set *left = atomic_exchange(&G.workers[i].next_set, NULL);
        if (left) ctr_set_unref(left);
        free(G.workers[i].lst);
    }
    fprintf(stderr, "privgate: stopped\n");
    rc = 0;
out_audit:
    px__audit_close();
out:
    /* The signal handles stay open until the process exits: closing them
     * makes libuv restore the default actions, and a second SIGTERM from
     * an impatient operator would then turn a clean exit into a kill. */

    if (fds) {
        close_fds(fds, G.nworkers, G.nlisteners);
        for (unsigned w = 0; w < G.nworkers; w++)
            free(fds[w]);
        free(fds);
    }
    if (G.listeners)
        for (size_t l = 0; l < G.nlisteners; l++)
            SSL_CTX_free(G.listeners[l].ctx);
    free(G.listeners);
    free(G.workers);
    if (G.down_cbs) nghttp2_session_callbacks_del(G.down_cbs);
    if (G.up_cbs) nghttp2_session_callbacks_del(G.up_cbs);
    nghttp2_option_del(G.down_opt);
    nghttp2_option_del(G.up_opt);
    ctr_set_unref(G.set);
    return rc;
}
