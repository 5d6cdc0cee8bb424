/* Spawns the privgate binary with pipes on stdin, stdout and stderr. */
#include "run.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *env_or_die(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v != NULL && v[0] != '\0', "%s is not set (run the tests with meson test)", name);
    return v;
}

const char *src_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", env_or_die("PRIVGATE_SOURCE_ROOT"), rel);
    return buf;
}

static void append(char **buf, size_t *len, const char *p, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    cr_assert(nb != NULL);
    memcpy(nb + *len, p, n);
    *len += n;
    nb[*len] = '\0';
    *buf = nb;
}

void run_privgate(struct run *r, const char *cwd, const char *in, size_t inlen,
                  const char *const *args)
{
    char bin[4096];
    snprintf(bin, sizeof bin, "%s/proxy/privgate", env_or_die("PRIVGATE_BUILD_ROOT"));
    if (cwd == NULL) cwd = env_or_die("PRIVGATE_SOURCE_ROOT");

    size_t nargs = 0;
    while (args[nargs] != NULL)
        nargs++;
    char **argv = calloc(nargs + 2, sizeof *argv);
    cr_assert(argv != NULL);
    argv[0] = bin;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];

    int pin[2], pout[2], perr[2];
    cr_assert(pipe2(pin, O_CLOEXEC) == 0 && pipe2(pout, O_CLOEXEC) == 0 &&
              pipe2(perr, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in != NULL)
        posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    else
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, cwd);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, argv, environ);
    cr_assert(rc == 0, "cannot spawn %s: %s", bin, strerror(rc));
    posix_spawn_file_actions_destroy(&fa);
    free(argv);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);

    signal(SIGPIPE, SIG_IGN);
    memset(r, 0, sizeof *r);
    append(&r->out, &r->outlen, "", 0);
    append(&r->err, &r->errlen, "", 0);
    size_t off = 0;
    int infd = pin[1];
    if (in == NULL || inlen == 0) {
        close(infd);
        infd = -1;
    }
    bool out_open = true, err_open = true;
    while (out_open || err_open || infd >= 0) {
        struct pollfd p[3] = {
            {out_open ? pout[0] : -1, POLLIN, 0},
            {err_open ? perr[0] : -1, POLLIN, 0},
            {infd, POLLOUT, 0},
        };
        if (poll(p, 3, 30000) <= 0) cr_assert_fail("privgate did not finish within 30 s");
        char buf[65536];
        for (int i = 0; i < 2; i++) {
            if (p[i].revents == 0) continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n > 0) {
                if (i == 0)
                    append(&r->out, &r->outlen, buf, (size_t)n);
                else
                    append(&r->err, &r->errlen, buf, (size_t)n);
            } else if (n == 0 || errno != EINTR) {
                close(p[i].fd);
                if (i == 0)
                    out_open = false;
                else
                    err_open = false;
            }
        }
        if (infd >= 0 && p[2].revents != 0) {
            ssize_t n = write(infd, in + off, inlen - off);
            if (n > 0) off += (size_t)n;
            if (n < 0 || off == inlen) {
                close(infd); /* EPIPE: privgate stopped reading; fine */
                infd = -1;
            }
        }
    }
    int ws;
    while (waitpid(pid, &ws, 0) < 0)
        cr_assert(errno == EINTR);
    r->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

void run_privgate_str(struct run *r, const char *cwd, const char *in, const char *const *args)
{
    run_privgate(r, cwd, in, in != NULL ? strlen(in) : 0, args);
}

void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

const char *last_line(const char *s)
{
    static char buf[4096];
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '\n') len--;
    size_t start = len;
    while (start > 0 && s[start - 1] != '\n')
        start--;
    size_t n = len - start < sizeof buf - 1 ? len - start : sizeof buf - 1;
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    return buf;
}

static bool digits(const char **p)
{
    const char *s = *p;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return *p > s;
}

bool has_diag_line(const char *s, const char *file)
{
    size_t flen = strlen(file);
    for (const char *line = s; *line;) {
        const char *q = line;
        const char *hit = strstr(line, file);
        const char *eol = strchr(line, '\n');
        if (hit != NULL && (eol == NULL || hit < eol)) {
            q = hit + flen;
            if (*q == ':' && (q++, digits(&q)) && *q == ':' && (q++, digits(&q)) && q[0] == ':' &&
                q[1] == ' ')
                return true;
        }
        if (eol == NULL) break;
        line = eol + 1;
    }
    return false;
}
