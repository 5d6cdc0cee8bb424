/*
 * privgate proxy: the audit log of SPEC 7, one JSON line per request.
 *
 * Workers format a record into their own buffer and copy it into a bounded
 * byte ring under a mutex (a memcpy, never an I/O call); a writer thread
 * moves the ring to the file. When the ring is full the record is dropped
 * and counted: a worker never waits for the disk.
 *
 * What is written: names, paths, codes, sizes and times. Never the value
 * of a body field, query parameter or header: the caller and purpose are
 * control headers naming a service and a purpose, and are written only
 * when the contract knows them.
 */
#include "proxy/gw.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_RING (4u * 1024u * 1024u)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
    int fd;
    bool close_fd;
    char *ring;
    size_t head, len; /* ring[head .. head+len) modulo AUDIT_RING */
    uint64_t dropped;
} A = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false, -1, false, NULL, 0, 0, 0};

static void *writer(void *arg)
{
    (void)arg;
    static char out[256 * 1024];
    pthread_mutex_lock(&A.mu);
    for (;;) {
        while (A.len == 0 && !A.stop)
            pthread_cond_wait(&A.cv, &A.mu);
        if (A.len == 0 && A.stop) break;
        size_t n = A.len < sizeof(out) ? A.len : sizeof(out);
        size_t first = AUDIT_RING - A.head;
        if (first > n) first = n;
        memcpy(out, A.ring + A.head, first);
        memcpy(out + first, A.ring, n - first);
        A.head = (A.head + n) % AUDIT_RING;
        A.len -= n;
        pthread_mutex_unlock(&A.mu);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(A.fd, out + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break; /* disk full or closed: the records are lost, not retried */
            off += (size_t)w;
        }
        pthread_mutex_lock(&A.mu);
    }
    pthread_mutex_unlock(&A.mu);
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
    }
    A.ring = malloc(AUDIT_RING);
    if (!A.ring) {
        snprintf(err, errlen, "audit log: out of memory");
        return -1;
    }
    if (pthread_create(&A.thread, NULL, writer, NULL) != 0) {
        snprintf(err, errlen, "audit log: cannot start the writer thread");
        return -1;
    }
    A.running = true;
    return 0;
}

void px__audit_push(const char *line, size_t len)
{
    if (!A.running) return;
    pthread_mutex_lock(&A.mu);
    if (AUDIT_RING - A.len < len) {
        A.dropped++;
    } else {
        size_t tail = (A.head + A.len) % AUDIT_RING;
        size_t first = AUDIT_RING - tail;
        if (first > len) first = len;
        memcpy(A.ring + tail, line, first);
        memcpy(A.ring, line + first, len - first);
        bool was_empty = A.len == 0;
        A.len += len;
        /* the writer only sleeps on an empty ring: wake it on that edge */
        if (was_empty) pthread_cond_signal(&A.cv);
    }
    pthread_mutex_unlock(&A.mu);
}

void px__audit_close(void)
{
    if (!A.running) return;
    pthread_mutex_lock(&A.mu);
    A.stop = true;
    pthread_cond_signal(&A.cv);
    pthread_mutex_unlock(&A.mu);
    pthread_join(A.thread, NULL);
    A.running = false;
    if (A.close_fd) close(A.fd);
    free(A.ring);
    A.ring = NULL;
}

uint64_t px__audit_dropped(void)
{
    pthread_mutex_lock(&A.mu);
    uint64_t d = A.dropped;
    pthread_mutex_unlock(&A.mu);
    return d;
}

/* ------------------------------------------------------------ formatting */

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

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putjs(struct line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e[8];
        if (ch == '"' || ch == '\\') {
            e[0] = '\\';
            e[1] = (char)ch;
            put(l, e, 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            int k = snprintf(e, sizeof(e), "\\u%04x", ch);
            put(l, e, (size_t)k);
        } else {
            put(l, (const char *)&s[i], 1);
        }
    }
    put(l, "\"", 1);
}

static void putpaths(struct line *l, const char *key, const struct flt_pathlist *pl)
{
    put(l, ",\"", 2);
    puts_(l, key);
    put(l, "\":[", 3);
    for (uint32_t i = 0; i < pl->n; i++) {
        if (i) put(l, ",", 1);
        struct flt_str s = flt_pathlist_get(pl, i);
        putjs(l, s.p, s.len);
    }
    put(l, "]", 1);
    if (pl->more) {
        char num[48];
        int k = snprintf(num, sizeof(num), ",\"%s_more\":%u", key, pl->more);
        put(l, num, (size_t)k);
    }
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

void px__audit_record(struct px_h2s *h)
{
    if (!A.running) return;
    struct line l = {h->w->audit_line, 0, sizeof(h->w->audit_line), false};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char buf[128];
    int k = snprintf(buf, sizeof(buf), "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000);
    put(&l, buf, (size_t)k);
    puts_(&l, ",\"request_id\":\"");
    puts_(&l, h->rid);
    puts_(&l, "\"");
    const struct ctr_contract *c = h->contract;
    const struct ctr_decision *d = c ? h->d : NULL;
    /* caller: the mTLS certificate's name, or a caller header value that
     * the contract lists. Any other header value is the caller's free text
     * (it could be anything, personal data included): never logged. */
    puts_(&l, ",\"caller\":");
    struct flt_str caller = {NULL, 0};
    bool from_cert = false;
    if (h->dc && h->dc->caller[0]) {
        caller.p = h->dc->caller;
        caller.len = strlen(h->dc->caller);
        from_cert = true;
    } else if (h->set) {
        const struct ctr_header *ch = find_hdr(
            h, h->set->config.caller_header ? h->set->config.caller_header : "privgate-caller");
        if (ch) caller = ch->value;
    }
    if (caller.p && caller.len <= 128 &&
        (from_cert || (c && in_list(c->callers, c->ncallers, caller.p, caller.len))))
        putjs(&l, caller.p, caller.len);
    else
        puts_(&l, "null");
    puts_(&l, ",\"provider\":");
    if (c)
        putjs(&l, c->provider, strlen(c->provider));
    else
        puts_(&l, "null");
    puts_(&l, ",\"purpose\":");
    const struct ctr_header *ph = find_hdr(h, "privgate-purpose");
    if (ph && c && in_list(c->purposes, c->npurposes, ph->value.p, ph->value.len))
        putjs(&l, ph->value.p, ph->value.len);
    else
        puts_(&l, "null");
    /* method: the matched route's, or a standard method; any other token
     * is the caller's free text */
    puts_(&l, ",\"method\":");
    if (d && d->route)
        putjs(&l, d->route->method, strlen(d->route->method));
    else if (h->method.p && is_standard_method(h->method.p, h->method.len))
        putjs(&l, h->method.p, h->method.len);
    else
        puts_(&l, "null");
    puts_(&l, ",\"route\":");
    if (d && d->route)
        putjs(&l, d->route->path, strlen(d->route->path));
    else
        puts_(&l, "null");
    k = snprintf(buf, sizeof(buf), ",\"status\":%d,\"outcome\":\"%s\"", h->status,
                 h->outcome ? h->outcome : "failed");
    put(&l, buf, (size_t)k);
    if (h->code) {
        puts_(&l, ",\"error\":");
        putjs(&l, h->code, strlen(h->code));
    }
    if (d) {
        putpaths(&l, "removed", &d->report.removed);
        putpaths(&l, "transformed", &d->report.transformed);
    } else {
        puts_(&l, ",\"removed\":[],\"transformed\":[]");
    }
    double ms = (double)(uv_hrtime() - h->t0) / 1e6;
    k = snprintf(buf, sizeof(buf), ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.1f",
                 (unsigned long long)h->bytes_in, (unsigned long long)h->req.total, ms);
    put(&l, buf, (size_t)k);
    puts_(&l, ",\"contract\":");
    if (c)
        putjs(&l, c->sha256, strlen(c->sha256));
    else
        puts_(&l, "null");
    if (l.full) {
        /* cannot happen with FLT_REPORT limits; never write half a record */
        l.full = false;
        l.len = 0;
        k = snprintf(buf, sizeof(buf),
                     "{\"request_id\":\"%s\",\"outcome\":\"%s\",\"truncated\":true", h->rid,
                     h->outcome ? h->outcome : "failed");
        put(&l, buf, (size_t)k);
    }
    l.p[l.len++] = '}';
    l.p[l.len++] = '\n';
    px__audit_push(l.p, l.len);
}
