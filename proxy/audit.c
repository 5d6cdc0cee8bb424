/*
 * privgate proxy: the audit log of SPEC 7, one JSON line per request.
 *
 * Hand-over: each worker owns a single-producer / single-consumer byte ring
 * (created on its first record). The worker formats a record without
 * stdio straight into the free space at its ring's tail when 48 KiB (the
 * longest record) are free there without wrapping — nearly always — and
 * otherwise into its own line buffer, then copied into the ring; it
 * publishes it with one release store: no lock, no system call. The
 * writer thread is woken (eventfd) only when it sleeps — it announces that
 * with |sleeping| and checks the rings once more before blocking; a worker
 * that published records looks at |sleeping| once per loop iteration,
 * before it waits for I/O (px__audit_wake), so a record published at the
 * same moment is never left behind. Awake, it gathers everything in every
 * ring into one writev(2), gives the space back, and naps 1 ms before the
 * next look; only a look that finds nothing puts it to sleep. Under load
 * workers therefore make no system call for the audit log at all, and the
 * writer makes about two (writev, nanosleep) per millisecond.
 *
 * Faults: a full ring drops the record (a worker never waits for the disk);
 * a failed write (ENOSPC, EIO, EBADF, EPIPE...) loses the records of that
 * batch. Both are counted per reason, reported on stderr at most once per
 * AUDIT_WARN_NS (the errno text only, never a record), and make
 * px__audit_failing() true until records are written again, or 10 s
 * after the last loss — /readyz answers 503 then when `audit.require` is
 * set. A record cut by a write that
 * failed half-way is ended by a newline before the next write, so every
 * line stays one record or one marked-lost fragment.
 *
 * Rotation: SIGHUP (px__audit_reopen) asks the writer to reopen the
 * configured path — a regular file only; "-", a FIFO or a device stays as
 * it is. The writer does it between two batches: the new file is opened
 * first, the descriptors swapped, the old one closed. The writer is the
 * only thread that writes, so every record is written whole to exactly one
 * of the two files. A reopen that fails keeps the old descriptor and says
 * so on stderr (the path and errno text, never a record).
 *
 * What is written: names, paths, codes, sizes and times. Never the value
 * of a body field, query parameter or header: the caller and purpose are
 * control headers naming a service and a purpose, and are written only
 * when the contract knows them.
 */
#include "proxy/gw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_RING (1u << 20) /* per worker; a power of two */
#define AUDIT_MAXQ 1024u      /* rings (workers); config allows at most 1024 */
#define AUDIT_WARN_NS (10ull * 1000000000ull)
#define AUDIT_NAP_NS 1000000L /* 1 ms: how long records gather between writes under load */
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/*
 * Per-worker cache of rendered record fragments (worker-only, no lock).
 * Most requests on a route come from the same caller for the same purpose
 * and remove the same paths in the same order, so the JSON escaping of
 * those strings is done once and the bytes reused. Every hit is verified
 * against what it stands for, never against a hash alone:
 * - heads (`,"caller":...,"route":"..."` and `,"contract":"..."`): the
 *   contract, route and string pointers plus a copy of the contract's
 *   sha256 (a contract a reload places at a freed address comes from
 *   another file, with another digest, or from the same bytes, which render
 *   the same), and the caller and purpose bytes themselves.
 *   Only values that are written (listed, from a certificate) or absent are
 *   kept: a caller's free text is never stored here.
 * - path lists (`["body.a",...]`): the number of paths, each length and
 *   the stored text, byte for byte; flt_pathlist.list_hash only picks the
 *   slot. report.c stores path i at the sum of the lengths before it, so
 *   equal lengths and text are an equal list.
 * Bigger items than the slots hold are rendered every time. About 38 KiB
 * per worker, allocated with its ring.
 */
#define AC_HEADS 8        /* head slots (a power of two) */
#define AC_VAL_MAX 128    /* caller / purpose bytes a head keeps */
#define AC_MID_MAX 1024   /* a head's rendered caller..route part */
#define AC_TAIL_MAX 128   /* its rendered contract part */
#define AC_LISTS 8        /* path-list slots (a power of two) */
#define AC_LIST_TEXT 1024 /* stored path text a slot keeps */
#define AC_LIST_FRAG 2048 /* its rendering */

struct ac_head {
    const struct ctr_contract *c; /* NULL: empty slot */
    const struct ctr_route *route;
    const char *provider, *method, *path;
    char sha[sizeof(((struct ctr_contract *)0)->sha256)];
    uint8_t caller_src; /* AC_NONE, AC_CERT or AC_HDR */
    bool has_purpose;
    uint16_t caller_len, purpose_len, mid_len, tail_len;
    char caller[AC_VAL_MAX], purpose[AC_VAL_MAX];
    char mid[AC_MID_MAX];
    char tail[AC_TAIL_MAX];
};

enum { AC_NONE, AC_CERT, AC_HDR };

struct ac_list {
    uint64_t key;      /* flt_pathlist.list_hash */
    uint32_t frag_len; /* 0: empty slot */
    uint32_t n, text_len;
    uint16_t len[FLT_REPORT_MAX];
    char text[AC_LIST_TEXT];
    char frag[AC_LIST_FRAG];
};

struct ac_cache {
    struct ac_head head[AC_HEADS];
    struct ac_list list[AC_LISTS];
};

/* One worker's ring. |tail| is written by the worker only, |head| by the
 * writer only; each on its own cache line. */
struct px_audit_q {
    _Alignas(64) _Atomic uint64_t tail; /* bytes published */
    _Atomic uint64_t lost_full;         /* records dropped: ring full */
    time_t ts_sec;                      /* worker-only timestamp cache */
    char ts_text[20];                   /* "YYYY-MM-DDTHH:MM:SS" of ts_sec */
    _Alignas(64) _Atomic uint64_t head; /* bytes consumed */
    uint64_t take;                      /* writer-only: bytes in the current batch */
    char *ring;
    _Alignas(64) struct ac_cache cache; /* worker-only: rendered fragments */
};

static struct {
    pthread_t thread;
    bool running, close_fd;
    int fd, efd;
    atomic_bool stop;
    atomic_int sleeping;
    _Atomic(struct px_audit_q *) q[AUDIT_MAXQ];
    atomic_uint nq;
    pthread_mutex_t reg;            /* ring registration only: once per worker */
    char *path;                     /* the file reopened on SIGHUP; NULL: never reopened */
    atomic_bool reopen;             /* SIGHUP asked for a reopen, not done yet */
    _Atomic uint64_t reopen_failed; /* reopens that failed (the old file stays) */
    _Atomic uint64_t lost_write;    /* records lost: write errors */
    atomic_bool write_failing;      /* the last write failed */
    _Atomic uint64_t full_acked;    /* queue drops seen before the last good write */
    /* admin thread only (px__audit_failing): the loss counters it last saw
     * and when they last moved */
    uint64_t seen_full, seen_write, seen_at_ms;
    /* writer-only */
    bool torn;         /* the file ends inside a record */
    uint64_t warn_at;  /* no warning before this (monotonic ns) */
    uint64_t lost_rep; /* lost records already reported */
} A = {.fd = -1, .efd = -1, .reg = PTHREAD_MUTEX_INITIALIZER};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t lost_full_total(void)
{
    uint64_t n = 0;
    unsigned nq = atomic_load_explicit(&A.nq, memory_order_acquire);
    if (nq > AUDIT_MAXQ) nq = AUDIT_MAXQ;
    for (unsigned i = 0; i < nq; i++) {
        struct px_audit_q *q = atomic_load_explicit(&A.q[i], memory_order_acquire);
        if (q) n += atomic_load_explicit(&q->lost_full, memory_order_relaxed);
    }
    return n;
}

/* Messages carry the errno text and counts only (never record content). */
static void warn_fault(int err)
{
    uint64_t now = mono_ns();
    if (now < A.warn_at) return;
    A.warn_at = now + AUDIT_WARN_NS;
    char msg[256];
    uint64_t lost = atomic_load(&A.lost_write) + lost_full_total();
    int k = snprintf(msg, sizeof(msg),
                     "privgate: audit log: %s: records are being lost (%llu so far, "
                     "privgate_audit_records_lost_total)\n",
                     err ? strerror(err) : "queue full", (unsigned long long)lost);
    if (k > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg));
        (void)w;
    }
    A.lost_rep = lost;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t k = 0;
    const char *end = p + n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        k++;
        p++;
    }
    return k;
}

/* Writes iov[0..n) fully. Returns 0, or the errno of the failure with
 * *done = the bytes that did reach the file. */
static int write_all(struct iovec *iov, int n, size_t *done)
{
    *done = 0;
    int i = 0;
    while (i < n) {
        int cnt = n - i < IOV_MAX ? n - i : IOV_MAX;
        ssize_t w = writev(A.fd, iov + i, cnt);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* "-" on a non-blocking pipe: wait for room, at most 1 s once
             * stopping so a reader that is gone cannot hold the exit */
            struct pollfd pf = {A.fd, POLLOUT, 0};
            int r = poll(&pf, 1, atomic_load(&A.stop) ? 1000 : 60000);
            if (r > 0) continue;
            return EAGAIN;
        }
        if (w < 0) return errno;
        if (w == 0) return EIO;
        size_t k = (size_t)w;
        *done += k;
        while (i < n && k >= iov[i].iov_len) {
            k -= iov[i].iov_len;
            i++;
        }
        if (k) {
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
        }
    }
    return 0;
}

/* One batch: everything published in every ring. Returns the bytes taken. */
static size_t drain(void)
{
    static struct iovec iov[2 * AUDIT_MAXQ + 1];
    uint64_t full0 = lost_full_total();
    unsigned nq = atomic_load_explicit(&A.nq, memory_order_acquire);
    if (nq > AUDIT_MAXQ) nq = AUDIT_MAXQ;
    int n = 0;
    size_t total = 0;
    static uint64_t full_seen; /* writer-only */
    if (full0 != full_seen) {
        full_seen = full0;
        warn_fault(0); /* workers found their ring full: say so, rate-limited */
    }
    if (A.torn) iov[n++] = (struct iovec){(char *)"\n", 1};
    int first_rec = n;
    for (unsigned i = 0; i < nq; i++) {
        struct px_audit_q *q = atomic_load_explicit(&A.q[i], memory_order_acquire);
        if (!q) continue;
        uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
        uint64_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
        q->take = tail - head;
        if (!q->take) continue;
        size_t off = (size_t)(head & (AUDIT_RING - 1));
        size_t len = (size_t)q->take;
        size_t first = AUDIT_RING - off < len ? AUDIT_RING - off : len;
        iov[n++] = (struct iovec){q->ring + off, first};
        if (len > first) iov[n++] = (struct iovec){q->ring, len - first};
        total += len;
    }
    if (!total) {
        /* nothing waiting: whatever was dropped before was not for lack
         * of a working file */
        if (!atomic_load(&A.write_failing)) atomic_store(&A.full_acked, full0);
        return 0;
    }
    /* keep a copy of the record iovecs: write_all advances them */
    static struct iovec rec[2 * AUDIT_MAXQ];
    int nrec = n - first_rec;
    memcpy(rec, iov + first_rec, (size_t)nrec * sizeof(rec[0]));
    size_t done = 0;
    int err = write_all(iov, n, &done);
    if (err == 0) {
        A.torn = false;
        if (atomic_exchange(&A.write_failing, false)) {
            static const char msg[] = "privgate: audit log: writing again\n";
            ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
            (void)w;
            A.warn_at = 0;
        }
        atomic_store(&A.full_acked, full0);
    } else {
        /* bytes past |done| are lost: count the records they end */
        size_t skip = done;
        if (first_rec) {
            if (skip)
                skip--;
            else
                skip = 0;
        }
        if (skip || done) A.torn = false;
        size_t lost = 0;
        bool cut = false;
        for (int i = 0; i < nrec; i++) {
            const char *p = rec[i].iov_base;
            size_t len = rec[i].iov_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            if (skip) cut = true;
            lost += count_lines(p + skip, len - skip);
            skip = 0;
        }
        if (cut) A.torn = true;
        atomic_fetch_add(&A.lost_write, lost);
        atomic_store(&A.write_failing, true);
        warn_fault(err);
    }
    for (unsigned i = 0; i < nq; i++) {
        struct px_audit_q *q = atomic_load_explicit(&A.q[i], memory_order_acquire);
        if (!q || !q->take) continue;
        atomic_store_explicit(&q->head,
                              atomic_load_explicit(&q->head, memory_order_relaxed) + q->take,
                              memory_order_release);
        q->take = 0;
    }
    return total;
}

static bool pending(void)
{
    unsigned nq = atomic_load_explicit(&A.nq, memory_order_acquire);
    if (nq > AUDIT_MAXQ) nq = AUDIT_MAXQ;
    for (unsigned i = 0; i < nq; i++) {
        struct px_audit_q *q = atomic_load_explicit(&A.q[i], memory_order_acquire);
        if (q && atomic_load(&q->tail) != atomic_load_explicit(&q->head, memory_order_relaxed))
            return true;
    }
    return false;
}

/* Writer only, between two batches: open the new file first, then swap
 * and close the old one, so there is never a moment without a file and
 * no record is split between two. On failure the old descriptor stays.
 * The path must still name a regular file: O_NONBLOCK makes a FIFO put
 * there without a reader fail (ENXIO) instead of blocking the writer (and
 * shutdown) for good; one with a reader, or a device, is refused. */
static void reopen(void)
{
    int fd = open(A.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0640);
    const char *why = fd < 0 ? strerror(errno) : NULL;
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            why = "not a regular file";
            close(fd);
            fd = -1;
        } else {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        }
    }
    if (fd < 0) {
        uint64_t n = atomic_fetch_add(&A.reopen_failed, 1) + 1;
        /* the configured path and the errno text only: never a record */
        char msg[PATH_MAX + 256];
        int k = snprintf(msg, sizeof(msg),
                         "privgate: audit log: cannot reopen %s: %s; still writing to the "
                         "previous file (%llu failed reopen(s))\n",
                         A.path, why, (unsigned long long)n);
        if (k > 0) {
            ssize_t w =
                write(STDERR_FILENO, msg, (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg));
            (void)w;
        }
        return;
    }
    if (A.torn) {
        /* end the old file's cut record with its newline, as the next
         * batch would have: the new file starts clean either way */
        ssize_t w = write(A.fd, "\n", 1);
        (void)w;
        A.torn = false;
    }
    int old = A.fd;
    A.fd = fd;
    close(old);
}

static void *writer(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_exchange(&A.reopen, false)) reopen();
        if (drain()) {
            /* Records are arriving: let more gather before the next write
             * instead of sleeping on the eventfd. Workers see |sleeping| 0
             * and make no system call; one writev carries AUDIT_NAP_NS of
             * records. Only an empty drain leads to a real sleep. */
            if (!atomic_load(&A.stop)) {
                struct timespec nap = {0, AUDIT_NAP_NS};
                nanosleep(&nap, NULL);
            }
            continue;
        }
        if (atomic_load(&A.stop)) break;
        /* announce the sleep, then look once more: a worker publishes
         * before it reads |sleeping| (both sequentially consistent), so
         * either it sees us asleep and wakes us, or we see its record */
        atomic_store(&A.sleeping, 1);
        if (pending() || atomic_load(&A.stop) || atomic_load(&A.reopen)) {
            atomic_store(&A.sleeping, 0);
            continue;
        }
        uint64_t v;
        ssize_t r = read(A.efd, &v, sizeof(v));
        (void)r;
        atomic_store(&A.sleeping, 0);
    }
    return NULL;
}

int px__audit_open(const char *path, char *err, size_t errlen)
{
    if (!path) return 0;
    if (strcmp(path, "-") == 0) {
        A.fd = STDOUT_FILENO;
        A.close_fd = false;
    } else {
        A.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (A.fd < 0) {
            snprintf(err, errlen, "audit log %s: %s", path, strerror(errno));
            return -1;
        }
        A.close_fd = true;
        /* only a regular file is rotated: reopening a FIFO could block on
         * a missing reader, and a device has nothing to rotate */
        struct stat st;
        if (fstat(A.fd, &st) == 0 && S_ISREG(st.st_mode)) {
            A.path = strdup(path);
            if (!A.path) {
                snprintf(err, errlen, "audit log: out of memory");
                return -1;
            }
        }
    }
    A.efd = eventfd(0, EFD_CLOEXEC);
    if (A.efd < 0) {
        snprintf(err, errlen, "audit log: eventfd: %s", strerror(errno));
        return -1;
    }
    atomic_store(&A.stop, false);
    if (pthread_create(&A.thread, NULL, writer, NULL) != 0) {
        snprintf(err, errlen, "audit log: cannot start the writer thread");
        return -1;
    }
    A.running = true;
    return 0;
}

void px__audit_close(void)
{
    if (!A.running) return;
    atomic_store(&A.stop, true);
    uint64_t one = 1;
    ssize_t w = write(A.efd, &one, sizeof(one));
    (void)w;
    pthread_join(A.thread, NULL);
    A.running = false;
    if (A.close_fd) close(A.fd);
    A.fd = -1;
    close(A.efd);
    A.efd = -1;
    free(A.path);
    A.path = NULL;
    atomic_store(&A.reopen, false);
    unsigned nq = atomic_load(&A.nq);
    if (nq > AUDIT_MAXQ) nq = AUDIT_MAXQ;
    for (unsigned i = 0; i < nq; i++) {
        struct px_audit_q *q = atomic_exchange(&A.q[i], NULL);
        if (q) free(q->ring);
        free(q);
    }
    atomic_store(&A.nq, 0);
}

void px__audit_reopen(void)
{
    if (!A.running || !A.path) return;
    atomic_store(&A.reopen, true);
    /* wakes the writer if it sleeps; an extra count only costs one empty
     * look at the rings */
    uint64_t one = 1;
    ssize_t w = write(A.efd, &one, sizeof(one));
    (void)w;
}

/* The worker's ring, created and registered on its first record. */
static struct px_audit_q *worker_q(struct px_worker *w)
{
    if (w->audit_q) return w->audit_q;
    struct px_audit_q *q = aligned_alloc(64, sizeof(*q));
    if (!q) return NULL;
    memset(q, 0, sizeof(*q));
    q->ts_sec = -1;
    q->ring = malloc(AUDIT_RING);
    pthread_mutex_lock(&A.reg);
    unsigned i = atomic_load(&A.nq);
    if (!q->ring || i >= AUDIT_MAXQ) {
        pthread_mutex_unlock(&A.reg);
        free(q->ring);
        free(q);
        return NULL;
    }
    atomic_store_explicit(&A.q[i], q, memory_order_release);
    atomic_store_explicit(&A.nq, i + 1, memory_order_release);
    pthread_mutex_unlock(&A.reg);
    w->audit_q = q;
    return q;
}

static void publish(struct px_worker *w, struct px_audit_q *q, uint64_t tail, size_t len);

void px__audit_push(struct px_worker *w, const char *line, size_t len)
{
    struct px_audit_q *q = worker_q(w);
    if (!q) {
        atomic_fetch_add(&A.lost_write, 1); /* no memory for a ring: never written */
        atomic_store(&A.write_failing, true);
        return;
    }
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (AUDIT_RING - (tail - head) < len) {
        /* single writer: a plain load + store, no locked instruction */
        atomic_store_explicit(&q->lost_full,
                              atomic_load_explicit(&q->lost_full, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    size_t off = (size_t)(tail & (AUDIT_RING - 1));
    size_t first = AUDIT_RING - off < len ? AUDIT_RING - off : len;
    memcpy(q->ring + off, line, first);
    memcpy(q->ring, line + first, len - first);
    publish(w, q, tail, len);
}

/* Where a record of up to |cap| bytes can be formatted in place: the free
 * space at the ring's tail, when that much of it is contiguous (the
 * writer reads only up to |tail|, so the bytes past it are the worker's
 * until published). NULL: format elsewhere and px__audit_push. Saves the
 * copy and the separate line buffer's cache lines. */
static char *ring_slot(struct px_audit_q *q, size_t cap)
{
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t off = (size_t)(tail & (AUDIT_RING - 1));
    if (AUDIT_RING - (tail - head) < cap || AUDIT_RING - off < cap) return NULL;
    return q->ring + off;
}

/* Publishes the |len| bytes written at the ring's |tail|. Whether the
 * writer sleeps is looked at once per loop iteration of the worker
 * (px__audit_wake, before the loop waits for I/O), not per record: that
 * look needs a full fence, which waits until every store before it (the
 * record's lines, cold in a 1 MiB ring) has reached the cache. */
static void publish(struct px_worker *w, struct px_audit_q *q, uint64_t tail, size_t len)
{
    atomic_store_explicit(&q->tail, tail + len, memory_order_release);
    px__worker_audit_wake_later(w);
}

void px__audit_wake(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&A.sleeping, memory_order_relaxed) &&
        atomic_exchange(&A.sleeping, 0)) {
        uint64_t one = 1;
        ssize_t r = write(A.efd, &one, sizeof(one));
        (void)r;
    }
}

uint64_t px__audit_dropped(void)
{
    return lost_full_total();
}

void px__audit_lost(uint64_t *queue_full, uint64_t *write_error)
{
    *queue_full = lost_full_total();
    *write_error = atomic_load(&A.lost_write);
}

/* Losing records, and the last loss is recent. The hold matters with
 * `audit.require`: a load balancer that acts on /readyz sends no more
 * traffic, so no record would ever be written to clear the state; after
 * AUDIT_FAILING_HOLD_MS without a new loss the instance is ready again and
 * the next records tell (503 again if the log still fails). */
#define AUDIT_FAILING_HOLD_MS 10000u

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool px__audit_failing(void)
{
    if (!A.running) return false;
    uint64_t full = lost_full_total(), wr = atomic_load(&A.lost_write);
    if (!atomic_load(&A.write_failing) && full == atomic_load(&A.full_acked)) return false;
    uint64_t now = mono_ms();
    if (full != A.seen_full || wr != A.seen_write || A.seen_at_ms == 0) {
        A.seen_full = full;
        A.seen_write = wr;
        A.seen_at_ms = now;
    }
    return now - A.seen_at_ms < AUDIT_FAILING_HOLD_MS;
}

/* ------------------------------------------------------------ formatting */

/* Hand-written formatting (no stdio): the output is byte for byte what
 * the printf formats of earlier versions produced. */

struct line {
    char *p;
    size_t len, cap;
    bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (l->full || l->len + n + 2 > l->cap) {
        l->full = true;
        return;
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

#define PUTL(l, lit) put((l), (lit), sizeof(lit) - 1)

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Decimal digits of |v| into the end of buf[0..24); returns the start.
 * Two digits a division. */
static char *u64_digits(char *end, uint64_t v)
{
    static const char d2[201] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, d2 + 2 * r, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, d2 + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

static void putu(struct line *l, uint64_t v)
{
    char b[24];
    char *s = u64_digits(b + sizeof(b), v);
    put(l, s, (size_t)(b + sizeof(b) - s));
}

static void puti(struct line *l, int v)
{
    if (v < 0) {
        PUTL(l, "-");
        putu(l, (uint64_t)0 - (uint64_t)(int64_t)v);
    } else {
        putu(l, (uint64_t)v);
    }
}

__extension__ typedef unsigned __int128 u128;

/* printf("%.1f", ns / 1e6): tenths of a millisecond, rounded the way printf
 * rounds the double ns / 1e6 — half-way cases depend on whether that double
 * lies above or below the decimal tie, and exact ties go to even. */
static size_t fmt_ms1(char *out, uint64_t ns)
{
    uint64_t t = ns / 100000, r = ns % 100000;
    if (r > 50000) {
        t++;
    } else if (r == 50000) {
        /* d = fl(ns / 1e6) = M * 2^E; tie v = (2t + 1) / 20. Compare
         * 20 * M * 2^E with (2t + 1) exactly. */
        double d = (double)ns / 1e6;
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        int ex = (int)((bits >> 52) & 0x7ff);
        uint64_t m = (bits & ((1ull << 52) - 1)) | (1ull << 52);
        int e = ex - 1075;
        uint64_t odd = 2 * t + 1;
        int nb = 64 - __builtin_clzll(odd);
        int cmp = 1; /* outside any real duration: round half up */
        if (e < 0 && nb - e <= 127) {
            u128 lhs = (u128)m * 20u, rhs = (u128)odd << -e;
            cmp = lhs > rhs ? 1 : lhs < rhs ? -1 : 0;
        }
        if (cmp > 0 || (cmp == 0 && (t & 1))) t++;
    }
    char b[32];
    char *end = b + sizeof(b);
    *--end = (char)('0' + t % 10);
    *--end = '.';
    char *s = u64_digits(end, t / 10);
    size_t n = (size_t)(b + sizeof(b) - s);
    memcpy(out, s, n);
    return n;
}

/* Eight bytes at a time: does any byte need escaping in a JSON string
 * (below 0x20, '"', '\\' or DEL)? The "has a zero byte" test of Hacker's
 * Delight (exact for "is there any"); most names and paths have none. */
#define B8(c) (0x0101010101010101ull * (uint64_t)(c))
static inline uint64_t has_zero8(uint64_t v)
{
    return (v - B8(1)) & ~v & B8(0x80);
}
static inline bool needs_escape8(uint64_t v)
{
    return (((v - B8(0x20)) & ~v & B8(0x80)) | has_zero8(v ^ B8('"')) | has_zero8(v ^ B8('\\')) |
            has_zero8(v ^ B8(0x7f))) != 0;
}

/* Whether no byte of s[0..n) needs escaping: eight bytes at a time, the
 * last eight overlapping when n is not a multiple of 8. */
static inline bool js_clean(const char *s, size_t n)
{
    uint64_t v;
    if (n < 8) {
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch == '"' || ch == '\\' || ch < 0x20 || ch == 0x7f) return false;
        }
        return true;
    }
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, s + i, 8);
        if (needs_escape8(v)) return false;
    }
    if (i < n) {
        memcpy(&v, s + n - 8, 8);
        if (needs_escape8(v)) return false;
    }
    return true;
}

static void putjs_escaped(struct line *l, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    PUTL(l, "\"");
    size_t run = 0; /* bytes copied as they are, flushed in one put */
    size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!needs_escape8(v)) {
                run += 8;
                i += 8;
                continue;
            }
        }
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch < 0x20 || ch == 0x7f) {
            put(l, s + i - run, run);
            run = 0;
            if (ch == '"' || ch == '\\') {
                char e[2] = {'\\', (char)ch};
                put(l, e, 2);
            } else {
                char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
                put(l, e, 6);
            }
        } else {
            run++;
        }
        i++;
    }
    put(l, s + n - run, run);
    PUTL(l, "\"");
}

/* A JSON string. The usual string has nothing to escape: one bounds check
 * and one copy. A line is full exactly when its whole text does not fit,
 * however it was cut into put()s, so this gives the same lines. */
static void putjs(struct line *l, const char *s, size_t n)
{
    if (!js_clean(s, n)) {
        putjs_escaped(l, s, n);
        return;
    }
    if (l->full || l->len + n + 4 > l->cap) {
        l->full = true;
        return;
    }
    char *d = l->p + l->len;
    d[0] = '"';
    memcpy(d + 1, s, n);
    d[n + 1] = '"';
    l->len += n + 2;
}

/* The list part of a removed/transformed key, `[...]`, from the cache when
 * the same list was rendered before (compared byte for byte). */
static void putlist(struct line *l, struct ac_cache *ac, const struct flt_pathlist *pl)
{
    if (pl->n == 0) {
        PUTL(l, "[]");
        return;
    }
    struct ac_list *e = NULL;
    bool fits = ac && pl->text_used <= AC_LIST_TEXT;
    if (fits) {
        e = &ac->list[(pl->list_hash ^ (pl->list_hash >> 32)) & (AC_LISTS - 1)];
        if (e->frag_len && e->key == pl->list_hash && e->n == pl->n &&
            e->text_len == pl->text_used &&
            memcmp(e->len, pl->len, pl->n * sizeof(pl->len[0])) == 0 &&
            memcmp(e->text, pl->text, pl->text_used) == 0) {
            put(l, e->frag, e->frag_len);
            return;
        }
    }
    size_t start = l->len;
    PUTL(l, "[");
    for (uint32_t i = 0; i < pl->n; i++) {
        if (i) PUTL(l, ",");
        struct flt_str s = flt_pathlist_get(pl, i);
        putjs(l, s.p, s.len);
    }
    PUTL(l, "]");
    size_t flen = l->len - start;
    if (fits && !l->full && flen <= AC_LIST_FRAG) {
        e->key = pl->list_hash;
        e->n = pl->n;
        e->text_len = (uint32_t)pl->text_used;
        memcpy(e->len, pl->len, pl->n * sizeof(pl->len[0]));
        memcpy(e->text, pl->text, pl->text_used);
        memcpy(e->frag, l->p + start, flen);
        e->frag_len = (uint32_t)flen;
    }
}

/* ,"removed":[...] and, when some did not fit, ,"removed_more":N. The keys
 * come whole (|key| is `,"removed":`, |more| is `,"removed_more":`). */
static void putpaths(struct line *l, struct ac_cache *ac, const char *key, size_t klen,
                     const char *more, size_t mlen, const struct flt_pathlist *pl)
{
    put(l, key, klen);
    putlist(l, ac, pl);
    if (pl->more) {
        put(l, more, mlen);
        putu(l, pl->more);
    }
}

#define PUTPATHS(l, ac, name, pl)                                                                  \
    putpaths((l), (ac), ",\"" name "\":", sizeof(name) + 3,                                        \
             ",\"" name "_more\":", sizeof(name) + 8, (pl))

static void two(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ" — the date part is cached per second.
 * |wall_ms|: the worker's CLOCK_REALTIME, read once per loop iteration. */
static void put_ts(struct line *l, struct px_audit_q *q, uint64_t wall_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(wall_ms / 1000u),
                          .tv_nsec = (long)(wall_ms % 1000u) * 1000000L};
    char local[20];
    char *text = q ? q->ts_text : local;
    if (!q || q->ts_sec != ts.tv_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int y = tm.tm_year + 1900;
        if (y < 0 || y > 9999) y = y < 0 ? 0 : 9999; /* %04d of a sane clock */
        text[0] = (char)('0' + y / 1000);
        text[1] = (char)('0' + y / 100 % 10);
        two(text + 2, y % 100);
        text[4] = '-';
        two(text + 5, tm.tm_mon + 1);
        text[7] = '-';
        two(text + 8, tm.tm_mday);
        text[10] = 'T';
        two(text + 11, tm.tm_hour);
        text[13] = ':';
        two(text + 14, tm.tm_min);
        text[16] = ':';
        two(text + 17, tm.tm_sec);
        if (q) q->ts_sec = ts.tv_sec;
    }
    char b[32] = "{\"ts\":\"";
    memcpy(b + 7, text, 19);
    long ms = ts.tv_nsec / 1000000;
    b[26] = '.';
    b[27] = (char)('0' + ms / 100);
    two(b + 28, (int)(ms % 100));
    b[30] = 'Z';
    b[31] = '"';
    put(l, b, 32);
}

static const struct ctr_header *find_hdr(const struct px_h2s *h, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < h->nhdr; i++)
        if (h->hdr[i].name.len == nl && memcmp(h->hdr[i].name.p, name, nl) == 0) return &h->hdr[i];
    return NULL;
}

static bool is_standard_method(const char *m, size_t len)
{
    static const char *const std[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                      "DELETE", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
        if (strlen(std[i]) == len && memcmp(std[i], m, len) == 0) return true;
    return false;
}

static bool in_list(char **v, size_t n, const char *p, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && memcmp(v[i], p, len) == 0) return true;
    return false;
}

static inline bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Whether head slot |e| stands for this contract, route, caller and
 * purpose (see struct ac_head). */
static bool head_hit(const struct ac_head *e, const struct ctr_contract *c,
                     const struct ctr_route *r, int src, struct flt_str caller,
                     const struct ctr_header *ph)
{
    if (e->c != c || e->route != r || e->provider != c->provider || e->method != r->method ||
        e->path != r->path || e->caller_src != src || e->has_purpose != (ph != NULL))
        return false;
    if (src != AC_NONE && !same_bytes(e->caller, e->caller_len, caller.p, caller.len)) return false;
    if (ph && !same_bytes(e->purpose, e->purpose_len, ph->value.p, ph->value.len)) return false;
    return memcmp(e->sha, c->sha256, sizeof(e->sha)) == 0;
}

void px__audit_record(struct px_h2s *h)
{
    if (!A.running) return;
    struct px_audit_q *q = worker_q(h->w);
    struct ac_cache *ac = q ? &q->cache : NULL;
    struct line l = {h->w->audit_line, 0, sizeof(h->w->audit_line), false};
    char *slot = q ? ring_slot(q, l.cap) : NULL;
    if (slot) l.p = slot; /* same capacity: the same lines */
    put_ts(&l, q, px__wall_ms(h->w));
    PUTL(&l, ",\"request_id\":\"");
    puts_(&l, h->rid);
    PUTL(&l, "\"");
    const struct ctr_contract *c = h->contract;
    const struct ctr_decision *d = c ? h->d : NULL;
    const struct ctr_route *route = d ? d->route : NULL;
    /* caller: the mTLS certificate's name, or a caller header value that
     * the contract lists. Any other header value is the caller's free text
     * (it could be anything, personal data included): never logged. */
    struct flt_str caller = {NULL, 0};
    bool from_cert = false;
    if (h->dc && h->dc->caller[0]) {
        caller.p = h->dc->caller;
        caller.len = strlen(h->dc->caller);
        from_cert = true;
    } else if (d && d->scanned) {
        /* ctr_decide found it (first of the name without case: the same
         * header as find_hdr's, the gateway's names being lower case) */
        if (d->caller_hdr) caller = d->caller_hdr->value;
    } else if (h->set) {
        const struct ctr_header *ch = find_hdr(
            h, h->set->config.caller_header ? h->set->config.caller_header : "privgate-caller");
        if (ch) caller = ch->value;
    }
    const struct ctr_header *ph =
        d && d->scanned ? d->purpose_hdr : find_hdr(h, "privgate-purpose");
    int src = from_cert ? AC_CERT : caller.p ? AC_HDR : AC_NONE;
    /* the head slot this record uses or refills (NULL: render only) */
    struct ac_head *e = NULL;
    bool hit = false;
    if (ac && route) {
        /* callers and purposes of different lengths on one route get
         * different slots */
        size_t k = ((uintptr_t)route >> 6) ^ caller.len ^ ((ph ? ph->value.len : 0) << 2);
        e = &ac->head[k & (AC_HEADS - 1)];
        hit = head_hit(e, c, route, src, caller, ph);
    }
    size_t mid0 = l.len, mid1;
    if (hit) {
        put(&l, e->mid, e->mid_len);
    } else {
        PUTL(&l, ",\"caller\":");
        bool caller_logged =
            caller.p && caller.len <= 128 &&
            (from_cert || (c && in_list(c->callers, c->ncallers, caller.p, caller.len)));
        if (caller_logged)
            putjs(&l, caller.p, caller.len);
        else
            PUTL(&l, "null");
        PUTL(&l, ",\"provider\":");
        if (c)
            putjs(&l, c->provider, strlen(c->provider));
        else
            PUTL(&l, "null");
        PUTL(&l, ",\"purpose\":");
        bool purpose_logged =
            ph && c && in_list(c->purposes, c->npurposes, ph->value.p, ph->value.len);
        if (purpose_logged)
            putjs(&l, ph->value.p, ph->value.len);
        else
            PUTL(&l, "null");
        /* method: the matched route's, or a standard method; any other token
         * is the caller's free text */
        PUTL(&l, ",\"method\":");
        if (route)
            putjs(&l, route->method, strlen(route->method));
        else if (h->method.p && is_standard_method(h->method.p, h->method.len))
            putjs(&l, h->method.p, h->method.len);
        else
            PUTL(&l, "null");
        PUTL(&l, ",\"route\":");
        if (route)
            putjs(&l, route->path, strlen(route->path));
        else
            PUTL(&l, "null");
        /* keep only what is written or absent, never a caller's free text */
        if (e && (src == AC_NONE || caller_logged) && (!ph || purpose_logged) &&
            caller.len <= AC_VAL_MAX && (!ph || ph->value.len <= AC_VAL_MAX))
            e->c = NULL; /* refilled below once the whole line is known good */
        else
            e = NULL;
    }
    mid1 = l.len;
    const char *outcome = h->outcome ? h->outcome : "failed";
    PUTL(&l, ",\"status\":");
    puti(&l, h->status);
    PUTL(&l, ",\"outcome\":\"");
    puts_(&l, outcome);
    PUTL(&l, "\"");
    if (h->code) {
        PUTL(&l, ",\"error\":");
        putjs(&l, h->code, strlen(h->code));
    }
    if (d) {
        PUTPATHS(&l, ac, "removed", &d->report.removed);
        PUTPATHS(&l, ac, "transformed", &d->report.transformed);
    } else {
        PUTL(&l, ",\"removed\":[],\"transformed\":[]");
    }
    PUTL(&l, ",\"bytes_in\":");
    putu(&l, h->bytes_in);
    PUTL(&l, ",\"bytes_out\":");
    /* handed to the provider (0 when nothing left), counting a DATA frame
     * nghttp2 has framed but not yet written: it still leaves, before any
     * RST_STREAM; the audit must not under-report what a provider got */
    putu(&l, h->req_sent + h->req_promised);
    PUTL(&l, ",\"duration_ms\":");
    char ms[32];
    put(&l, ms, fmt_ms1(ms, px__h2s_elapsed_ns(h)));
    size_t tail0 = l.len;
    if (hit) {
        put(&l, e->tail, e->tail_len);
    } else {
        PUTL(&l, ",\"contract\":");
        if (c)
            putjs(&l, c->sha256, strlen(c->sha256));
        else
            PUTL(&l, "null");
        /* refill the slot from the line's own bytes: nothing is rendered
         * twice, and a slot never holds what a line did not say */
        if (e && !l.full && mid1 - mid0 <= AC_MID_MAX && l.len - tail0 <= AC_TAIL_MAX) {
            e->route = route;
            e->provider = c->provider;
            e->method = route->method;
            e->path = route->path;
            memcpy(e->sha, c->sha256, sizeof(e->sha));
            e->caller_src = (uint8_t)src;
            e->caller_len = (uint16_t)(src == AC_NONE ? 0 : caller.len);
            if (e->caller_len) memcpy(e->caller, caller.p, caller.len);
            e->has_purpose = ph != NULL;
            e->purpose_len = (uint16_t)(ph ? ph->value.len : 0);
            if (e->purpose_len) memcpy(e->purpose, ph->value.p, ph->value.len);
            e->mid_len = (uint16_t)(mid1 - mid0);
            memcpy(e->mid, l.p + mid0, e->mid_len);
            e->tail_len = (uint16_t)(l.len - tail0);
            memcpy(e->tail, l.p + tail0, e->tail_len);
            e->c = c;
        }
    }
    if (l.full) {
        /* cannot happen with FLT_REPORT limits; never write half a record */
        l.full = false;
        l.len = 0;
        PUTL(&l, "{\"request_id\":\"");
        puts_(&l, h->rid);
        PUTL(&l, "\",\"outcome\":\"");
        puts_(&l, outcome);
        PUTL(&l, "\",\"truncated\":true");
    }
    l.p[l.len++] = '}';
    l.p[l.len++] = '\n';
    if (slot)
        publish(h->w, q, atomic_load_explicit(&q->tail, memory_order_relaxed), l.len);
    else
        px__audit_push(h->w, l.p, l.len);
}
