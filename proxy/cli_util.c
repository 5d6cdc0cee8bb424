/* Helpers shared by the privgate commands: usage errors, buffers, JSON. */
#include "proxy/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int px_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "privgate %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see 'privgate ", stderr);
    fputs(cmd, stderr);
    fputs(" --help')\n", stderr);
    return PX_EXIT_USAGE;
}

int px_cli_bad_option(const char *cmd, int c, char **argv)
{
    /* getopt_long leaves the offending word at argv[optind - 1]; for a
     * cluster of short options ("-xv") optopt names the character. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    bool is_long = word[0] == '-' && word[1] == '-';
    bool cluster = !is_long && optopt > 0 && optopt < 128 &&
                   !(word[0] == '-' && word[1] == optopt && word[2] == '\0');
    if (c == ':') {
        if (cluster) return px_cli_usage_error(cmd, "option '-%c' needs a value", optopt);
        return px_cli_usage_error(cmd, "option '%s' needs a value", word);
    }
    const char *eq = is_long ? strchr(word, '=') : NULL;
    if (eq != NULL && optopt != 0)
        return px_cli_usage_error(cmd, "option '%.*s' takes no value", (int)(eq - word), word);
    if (cluster) return px_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return px_cli_usage_error(cmd, "unknown option '%s'", word);
}

/* ------------------------------------------------------------- buffers */

void px_buf_free(struct px_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int px_buf_reserve(struct px_buf *b, size_t n)
{
    if (b->failed) return -1;
    if (b->cap - b->len >= n) return 0;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return -1;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void px_buf_put(struct px_buf *b, const char *p, size_t n)
{
    if (n == 0 || px_buf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void px_buf_puts(struct px_buf *b, const char *s)
{
    px_buf_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at |s| (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when it is not valid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

void px_buf_json_str(struct px_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    px_buf_put(b, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied as is */
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[6];
        size_t seq = 1;
        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c < 0x20) {
            switch (c) {
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                ubuf[0] = '\\';
                ubuf[1] = 'u';
                ubuf[2] = '0';
                ubuf[3] = '0';
                ubuf[4] = hex[c >> 4];
                ubuf[5] = hex[c & 0xf];
                break;
            }
        } else if (c >= 0x80) {
            seq = utf8_seq(u + i, n - i);
            if (seq == 0) {
                esc = "\\ufffd";
                seq = 1;
            }
        }
        if (esc == NULL && c >= 0x20) {
            i += seq; /* part of the run */
            continue;
        }
        px_buf_put(b, s + run, i - run);
        if (esc)
            px_buf_puts(b, esc);
        else
            px_buf_put(b, ubuf, sizeof ubuf);
        i += seq;
        run = i;
    }
    px_buf_put(b, s + run, n - run);
    px_buf_put(b, "\"", 1);
}

int px_read_fd(int fd, struct px_buf *b)
{
    for (;;) {
        if (px_buf_reserve(b, 65536) != 0) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t r = read(fd, b->p + b->len, b->cap - b->len);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return 0;
        b->len += (size_t)r;
    }
}

/* ------------------------------------------------------------- loading */

struct ctr_set *px_cli_load(const char *config, const char *const *paths, size_t npaths)
{
    struct ctr_diag diag;
    memset(&diag, 0, sizeof diag);
    ctr_diag_stderr(&diag);
    struct ctr_set *s = npaths > 0 ? ctr_set_load_contracts_under(config, paths, npaths, &diag)
                                   : ctr_set_load(config, &diag);
    if (s != NULL && diag.errors > 0) {
        /* Defensive: a loader that reported errors must not be trusted. */
        ctr_set_unref(s);
        s = NULL;
    }
    return s;
}
