/*
 * privgate command line (SPEC section 2): one function per command, and the
 * small helpers they share (option errors, whole-file reads, JSON output).
 *
 * Every px_cli_* command takes the argument vector starting at the command
 * name (argv[0] == "check", ...) and returns the process exit status.
 * Usage goes to stdout on --help (exit 0); bad usage prints one line on
 * stderr and returns PX_EXIT_USAGE.
 */
#ifndef PRIVGATE_PROXY_CLI_H
#define PRIVGATE_PROXY_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "contracts/contracts.h"

#ifndef PRIVGATE_VERSION
#define PRIVGATE_VERSION "0.1.0"
#endif

/* Exit statuses of SPEC section 2. */
enum px_exit {
    PX_EXIT_OK = 0,
    PX_EXIT_FAIL = 1,    /* invalid config/contract, failed test, start-up error */
    PX_EXIT_USAGE = 2,   /* bad usage */
    PX_EXIT_REFUSED = 3, /* privgate filter: the gateway would refuse the request */
};

int px_cli_serve(int argc, char **argv);
int px_cli_check(int argc, char **argv);
int px_cli_test(int argc, char **argv);
int px_cli_filter(int argc, char **argv);
int px_cli_register(int argc, char **argv);
int px_cli_version(int argc, char **argv);

/* ------------------------------------------------------------- helpers */

/* Prints "privgate CMD: <reason>" on stderr and returns PX_EXIT_USAGE. */
int px_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Reports the getopt_long() result |c| ('?' unknown option, ':' missing
 * value) as a usage error of |cmd|; |argv| is the vector getopt scanned.
 * Returns PX_EXIT_USAGE.
 */
int px_cli_bad_option(const char *cmd, int c, char **argv);

/* A growable byte buffer. Invariant: len <= cap; p is NULL when cap == 0.
 * After an allocation failure |failed| is set and every later write is
 * dropped, so callers check once at the end. */
struct px_buf {
    char *p;
    size_t len, cap;
    bool failed;
};

void px_buf_free(struct px_buf *b);
/* Ensures room for |n| more bytes. Returns 0 or -1 (and sets |failed|). */
int px_buf_reserve(struct px_buf *b, size_t n);
void px_buf_put(struct px_buf *b, const char *p, size_t n);
void px_buf_puts(struct px_buf *b, const char *s);
/* Appends |s| as a JSON string (quotes included): '"', '\\' and control
 * characters are escaped, valid UTF-8 is copied as is, and each byte that
 * is not part of a valid UTF-8 sequence becomes \ufffd, so the output is
 * always valid JSON. */
void px_buf_json_str(struct px_buf *b, const char *s, size_t n);

/* Reads all of |fd| into |b|. Returns 0, or -1 with errno set. */
int px_read_fd(int fd, struct px_buf *b);

/* Loads |paths| (contract files or directories) under the policy of the
 * gateway config |config| (the defaults when NULL), or that config and its
 * contracts folder when |npaths| is 0. Errors are printed to
 * stderr as FILE:LINE:COL: message. Returns NULL when anything is invalid. */
struct ctr_set *px_cli_load(const char *config, const char *const *paths, size_t npaths);

#endif
