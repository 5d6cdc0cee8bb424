/* End-to-end test harness (see harness.h). */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

static void nap_ms(int ms)
{
    /* polling interval while waiting on a port or a file (not a sync sleep) */
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void e2e_init(struct e2e *e)
{
    memset(e, 0, sizeof(*e));
    signal(SIGPIPE, SIG_IGN);
    const char *b = getenv("PRIVGATE_BUILD_ROOT");
    const char *s = getenv("PRIVGATE_SOURCE_ROOT");
    cr_assert(b && s, "PRIVGATE_BUILD_ROOT and PRIVGATE_SOURCE_ROOT must be set (meson test)");
    snprintf(e->privgate, sizeof(e->privgate), "%s/proxy/privgate", b);
    snprintf(e->partner, sizeof(e->partner), "%s/proxy/privgate-demo-partner", b);
    snprintf(e->source, sizeof(e->source), "%s", s);
    snprintf(e->dir, sizeof(e->dir), "/tmp/privgate-e2e-XXXXXX");
    cr_assert(mkdtemp(e->dir), "mkdtemp: %s", strerror(errno));
    char p[400];
    snprintf(p, sizeof(p), "%s/contracts", e->dir);
    mkdir(p, 0700);
    snprintf(e->record, sizeof(e->record), "%s/upstream.jsonl", e->dir);
    snprintf(e->gw_err, sizeof(e->gw_err), "%s/gateway.err", e->dir);
    snprintf(e->audit, sizeof(e->audit), "%s/audit.log", e->dir);
    snprintf(e->up_ca, sizeof(e->up_ca), "%s/upstream-ca.pem", e->dir);
    e2e_write(e2e_path(e, "hmac.key"), "test-hmac-key-0123456789");
    e2e_write(e2e_path(e, "token"), "Bearer test-token-NOT-A-SECRET");
}

void e2e_fini(struct e2e *e)
{
    if (e->gw_pid > 0) e2e_stop(e->gw_pid, SIGTERM, 10000);
    if (e->up_pid > 0) e2e_stop(e->up_pid, SIGTERM, 5000);
    e->gw_pid = e->up_pid = 0;
    if (!getenv("PRIVGATE_E2E_KEEP")) {
        char *argv[] = {"rm", "-rf", e->dir, NULL};
        e2e_run(argv, NULL, NULL, NULL);
    }
}

const char *e2e_path(struct e2e *e, const char *name)
{
    static char ring[8][512];
    static int i;
    char *p = ring[i++ & 7];
    snprintf(p, 512, "%s/%s", e->dir, name);
    return p;
}

void e2e_write(const char *path, const char *fmt, ...)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

char *e2e_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) {
            cap *= 2;
            p = realloc(p, cap);
        }
        size_t k = fread(p + n, 1, cap - n - 1, f);
        if (k == 0) break;
        n += k;
    }
    fclose(f);
    p[n] = '\0';
    if (len) *len = n;
    return p;
}

size_t e2e_count_lines(const char *path)
{
    size_t n = 0, len;
    char *p = e2e_read(path, &len);
    if (!p) return 0;
    for (size_t i = 0; i < len; i++)
        n += p[i] == '\n';
    free(p);
    return n;
}

pid_t e2e_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* a test that dies (crash, timeout) takes its servers with it:
         * orphans would hold the test runner's output pipes open and hang
         * it, and keep their ports */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        if (out_path) {
            int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            dup2(fd, 1);
        }
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            dup2(fd, 2);
        }
        /* servers a test opened (a fake provider's listening socket) must
         * not live on in the process under test */
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execv(argv[0], argv);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

bool e2e_wait_file(const char *path, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (access(path, F_OK) == 0) return true;
        nap_ms(5);
    }
    return false;
}

bool e2e_wait_port(int port, int timeout_ms)
{
    long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rv = connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        if (rv == 0) return true;
        nap_ms(5);
    }
    return false;
}

int e2e_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);
    close(fd);
    return ntohs(a.sin_port);
}

int e2e_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0) return -1;
    kill(pid, sig);
    long end = now_ms() + timeout_ms;
    int st;
    while (now_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        nap_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

int e2e_run(char *const argv[], const char *stdin_path, char **out, size_t *outlen)
{
    int pfd[2];
    cr_assert(pipe(pfd) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(pfd[1], 1);
        close(pfd[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (n + 4096 > cap) {
            cap *= 2;
            p = realloc(p, cap);
        }
        ssize_t k = read(pfd[0], p + n, cap - n - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(pfd[0]);
    p[n] = '\0';
    int st;
    waitpid(pid, &st, 0);
    if (out) {
        *out = p;
        if (outlen) *outlen = n;
    } else {
        free(p);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void e2e_start_partner(struct e2e *e, const char *mode, const char *const *extra)
{
    const char *pf = e2e_path(e, "upstream.port");
    unlink(pf);
    char *argv[32];
    int n = 0;
    argv[n++] = e->partner;
    if (strcmp(mode, "h2c") == 0)
        argv[n++] = "--h2c";
    else {
        argv[n++] = "--cert-out";
        argv[n++] = e->up_ca;
    }
    argv[n++] = "--record";
    argv[n++] = e->record;
    argv[n++] = "--port-file";
    argv[n++] = (char *)pf;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    e->up_pid = e2e_spawn(argv, NULL, e2e_path(e, "upstream.err"));
    cr_assert(e2e_wait_file(pf, 10000), "demo partner did not start");
    char *p = e2e_read(pf, NULL);
    e->up_port = (int)strtol(p, NULL, 10);
    free(p);
    cr_assert(e->up_port > 0);
}

void e2e_contract(struct e2e *e, const char *name, const char *yaml)
{
    char url[128], urls[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", e->up_port);
    snprintf(urls, sizeof(urls), "https://127.0.0.1:%d", e->up_port);
    size_t cap = strlen(yaml) * 2 + 1024, o = 0;
    char *out = malloc(cap);
    for (const char *p = yaml; *p;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "@UP@", 4) == 0) {
            rep = url;
            skip = 4;
        } else if (strncmp(p, "@UPS@", 5) == 0) {
            rep = urls;
            skip = 5;
        } else if (strncmp(p, "@CA@", 4) == 0) {
            rep = e->up_ca;
            skip = 4;
        } else if (strncmp(p, "@DIR@", 5) == 0) {
            rep = e->dir;
            skip = 5;
        }
        if (rep) {
            size_t l = strlen(rep);
            memcpy(out + o, rep, l);
            o += l;
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    char fn[128];
    snprintf(fn, sizeof(fn), "contracts/%s.yaml", name);
    e2e_write(e2e_path(e, fn), "%s", out);
    free(out);
}

bool e2e_start_gateway(struct e2e *e, const char *extra_yaml)
{
    return e2e_start_gateway_tls(e, extra_yaml, NULL);
}

static bool start_gateway_once(struct e2e *e, const char *extra_yaml, const char *tls_yaml);

bool e2e_start_gateway_tls(struct e2e *e, const char *extra_yaml, const char *tls_yaml)
{
    /* a free port can be taken by someone else before we bind it: retry */
    for (int attempt = 0; attempt < 3; attempt++) {
        if (start_gateway_once(e, extra_yaml, tls_yaml)) return true;
        char *log = e2e_read(e->gw_err, NULL);
        bool in_use = log && strstr(log, "Address already in use");
        free(log);
        if (!in_use) return false;
        unlink(e->gw_err);
    }
    return false;
}

static bool start_gateway_once(struct e2e *e, const char *extra_yaml, const char *tls_yaml)
{
    e->gw_port = e2e_free_port();
    if (tls_yaml) e->gw_tls_port = e2e_free_port();
    char tls[1024] = "";
    if (tls_yaml)
        snprintf(tls, sizeof(tls), "  - address: 127.0.0.1:%d\n    tls:\n%s", e->gw_tls_port,
                 tls_yaml);
    e2e_write(e2e_path(e, "privgate.yaml"),
              "listen:\n  - address: 127.0.0.1:%d\n%s"
              "contracts: contracts/\n"
              "workers: 2\n"
              "audit:\n  path: audit.log\n"
              "%s",
              e->gw_port, tls, extra_yaml ? extra_yaml : "");
    char *argv[] = {e->privgate, "serve", "-c", (char *)e2e_path(e, "privgate.yaml"), NULL};
    e->gw_pid = e2e_spawn(argv, NULL, e->gw_err);
    long end = now_ms() + 10000;
    while (now_ms() < end) {
        /* up once it says so (workers started), and the port accepts */
        char *log = e2e_read(e->gw_err, NULL);
        bool said = log && strstr(log, "privgate: listening on");
        free(log);
        if (said && e2e_wait_port(e->gw_port, 20)) return true;
        if (!said) nap_ms(5);
        int st;
        if (waitpid(e->gw_pid, &st, WNOHANG) == e->gw_pid) {
            e->gw_pid = 0;
            return false;
        }
    }
    return false;
}

void e2e_curl(struct e2e *e, const char *method, const char *path, const char *const *hdrs,
              const char *body, const char *body_file, struct e2e_resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->gw_port, path);
    const char *hf = e2e_path(e, "curl.headers");
    const char *bf = e2e_path(e, "curl.body");
    char hfile[512], bfile[512];
    snprintf(hfile, sizeof(hfile), "%s", hf);
    snprintf(bfile, sizeof(bfile), "%s", bf);
    unlink(hfile);
    unlink(bfile);
    char *argv[64];
    int n = 0;
    argv[n++] = "curl";
    argv[n++] = "-sS";
    argv[n++] = "--http2-prior-knowledge";
    argv[n++] = "--max-time";
    argv[n++] = "60";
    argv[n++] = "-X";
    argv[n++] = (char *)method;
    argv[n++] = "-D";
    argv[n++] = hfile;
    argv[n++] = "-o";
    argv[n++] = bfile;
    argv[n++] = "-w";
    argv[n++] = "%{http_code}";
    for (int i = 0; hdrs && hdrs[i] && n < 56; i++) {
        argv[n++] = "-H";
        argv[n++] = (char *)hdrs[i];
    }
    char at[600];
    if (body_file) {
        snprintf(at, sizeof(at), "@%s", body_file);
        argv[n++] = "--data-binary";
        argv[n++] = at;
    } else if (body) {
        const char *tmp = e2e_path(e, "curl.req");
        e2e_write(tmp, "%s", body);
        snprintf(at, sizeof(at), "@%s", tmp);
        argv[n++] = "--data-binary";
        argv[n++] = at;
    }
    argv[n++] = url;
    argv[n] = NULL;
    char *out = NULL;
    r->curl_rc = e2e_run(argv, NULL, &out, NULL);
    r->status = out ? (int)strtol(out, NULL, 10) : 0;
    free(out);
    r->body = e2e_read(bfile, &r->len);
    if (!r->body) {
        r->body = calloc(1, 1);
        r->len = 0;
    }
    r->headers = e2e_read(hfile, NULL);
    if (!r->headers) r->headers = calloc(1, 1);
}

void e2e_resp_free(struct e2e_resp *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

const char *e2e_header(const struct e2e_resp *r, const char *name)
{
    static char v[1024];
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *s = p + nl + 1;
            while (*s == ' ')
                s++;
            size_t k = (size_t)(p + ll - s);
            while (k > 0 && (s[k - 1] == '\r' || s[k - 1] == ' '))
                k--;
            if (k >= sizeof(v)) k = sizeof(v) - 1;
            memcpy(v, s, k);
            v[k] = '\0';
            return v;
        }
        p = eol ? eol + 1 : p + ll;
    }
    return NULL;
}

long e2e_proc_kb(pid_t pid, const char *key)
{
    char path[64], k[32];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    snprintf(k, sizeof(k), "\n%s:", key);
    char *s = e2e_read(path, NULL);
    const char *p = s ? strstr(s, k) : NULL;
    long v = p ? strtol(p + strlen(k), NULL, 10) : -1;
    free(s);
    return v;
}

void e2e_self_signed(const char *key_path, const char *crt_path, const char *cn)
{
    char subj[160];
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    char *argv[] = {"openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    (char *)key_path,
                    "-out",
                    (char *)crt_path,
                    "-days",
                    "2",
                    "-subj",
                    subj,
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    NULL};
    cr_assert_eq(e2e_run(argv, NULL, NULL, NULL), 0, "openssl req");
}
