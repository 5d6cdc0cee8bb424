/* contracts/util.c: secret files are read without leaving copies behind.
 * Linked with -Wl,--wrap=free,--wrap=realloc: the contracts library's
 * calls go through the wrappers below, which look for a marker in every
 * block handed back to the allocator while a test is recording. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contracts/int.h"
#include "helpers.h"

#define MARKER "S3CR3T-M4RK3R-"

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);

static volatile int recording;
static volatile int leaked; /* blocks holding the marker given back unwiped */

static bool holds_marker(void *p)
{
    size_t n = malloc_usable_size(p);
    return n >= sizeof MARKER - 1 && memmem(p, n, MARKER, sizeof MARKER - 1) != NULL;
}

void __wrap_free(void *p)
{
    if (p && recording && holds_marker(p)) leaked++;
    __real_free(p);
}

void *__wrap_realloc(void *p, size_t n)
{
    /* realloc may move the block and free the old one without wiping it */
    if (p && recording && holds_marker(p)) leaked++;
    return __real_realloc(p, n);
}

/* |n| bytes of secret: the marker repeated (built on the stack, written
 * with write(2): no stdio buffer on the heap holds it). */
static void fill(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = MARKER[i % (sizeof MARKER - 1)];
}

static void check_read(const char *path, size_t n)
{
    unsigned char *out = NULL;
    size_t len = 0;
    leaked = 0;
    recording = 1;
    int e = ctr__read_file(path, (size_t)1 << 20, &out, &len);
    recording = 0;
    cr_assert_eq(e, 0, "%s", strerror(e));
    cr_assert_eq(len, n);
    cr_assert_eq(out[len], 0);
    cr_expect_eq(leaked, 0, "%d block(s) with the secret freed or reallocated unwiped", leaked);
    explicit_bzero(out, len);
    free(out);
}

/* Review finding 7: growing the buffer must not leave the secret in freed
 * memory (realloc) — a regular file of 10 KB. */
Test(secrets, regular_file_read_leaves_no_copy)
{
    char dir[] = TMP_TEMPLATE("ctr-secret");
    cr_assert_not_null(mkdtemp(dir));
    char p[64];
    snprintf(p, sizeof p, "%s/s", dir);
    static char buf[10000];
    fill(buf, sizeof buf);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    explicit_bzero(buf, sizeof buf);
    check_read(p, 10000);
    unlink(p);
    rmdir(dir);
}

/* The same through a FIFO (no size known in advance: the buffer grows). */
Test(secrets, fifo_read_leaves_no_copy)
{
    char dir[] = TMP_TEMPLATE("ctr-secret");
    cr_assert_not_null(mkdtemp(dir));
    char p[64];
    snprintf(p, sizeof p, "%s/fifo", dir);
    cr_assert_eq(mkfifo(p, 0600), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char b[3000];
        fill(b, sizeof b);
        int fd = open(p, O_WRONLY);
        for (int i = 0; i < 4 && fd >= 0; i++)
            if (write(fd, b, sizeof b) != (ssize_t)sizeof b) _exit(1);
        _exit(fd >= 0 ? 0 : 1);
    }
    check_read(p, 12000);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unlink(p);
    rmdir(dir);
}

/* And too large: refused, nothing left behind either. */
Test(secrets, too_large_leaves_no_copy)
{
    char dir[] = TMP_TEMPLATE("ctr-secret");
    cr_assert_not_null(mkdtemp(dir));
    char p[64];
    snprintf(p, sizeof p, "%s/s", dir);
    static char buf[5000];
    fill(buf, sizeof buf);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, buf, sizeof buf), (ssize_t)sizeof buf);
    close(fd);
    explicit_bzero(buf, sizeof buf);
    unsigned char *out = NULL;
    size_t len = 0;
    leaked = 0;
    recording = 1;
    int e = ctr__read_file(p, 4096, &out, &len);
    recording = 0;
    cr_expect_eq(e, EFBIG);
    cr_expect_null(out);
    cr_expect_eq(leaked, 0);
    unlink(p);
    rmdir(dir);
}
