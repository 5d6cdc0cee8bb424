/* Runs the built privgate binary for the command-line tests. */
#ifndef PRIVGATE_TESTS_CLI_RUN_H
#define PRIVGATE_TESTS_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>

struct run {
    int status; /* exit status, or 128 + signal */
    char *out;  /* stdout, NUL-terminated (malloc'd) */
    size_t outlen;
    char *err; /* stderr, NUL-terminated (malloc'd) */
    size_t errlen;
};

/*
 * Runs $PRIVGATE_BUILD_ROOT/proxy/privgate with |args| (NULL-terminated,
 * without argv[0]) in directory |cwd| (NULL: $PRIVGATE_SOURCE_ROOT), with
 * |in| (|inlen| bytes) on stdin, or /dev/null when |in| is NULL. Aborts the
 * test on a spawn failure. Free with run_free.
 */
void run_privgate(struct run *r, const char *cwd, const char *in, size_t inlen,
                  const char *const *args);
/* The same with a NUL-terminated |in| (NULL: /dev/null). */
void run_privgate_str(struct run *r, const char *cwd, const char *in, const char *const *args);
void run_free(struct run *r);

/* $PRIVGATE_SOURCE_ROOT + "/" + |rel| in static storage (one at a time). */
const char *src_path(const char *rel);

/* Number of '\n'-terminated lines in |s|. */
size_t count_lines(const char *s);
/* The last line of |s| without its '\n' (static storage). */
const char *last_line(const char *s);
/* Whether a line of |s| contains "<file>:<digits>:<digits>: " (FILE:LINE:COL). */
bool has_diag_line(const char *s, const char *file);

#define RUN(r, cwd, in, ...)                                                                       \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        run_privgate_str((r), (cwd), (in), args_);                                                 \
    } while (0)

#endif
