/*
 * privgate proxy: HTTP/1.1 on the gateway's listeners (downstream), the
 * second implementation of struct px_down_proto (the first, HTTP/2, is in
 * down.c). The request path is the one of down.c: an HTTP/1.1 request
 * becomes one px_h2s exchange, decided by px__h2s_head_done, its body fed
 * to px__h2s_req_body as it arrives, and sent upstream over the HTTP/2
 * pool.
 *
 * Parsing: the request head is read whole (bounded by max_header_bytes),
 * checked strictly on its raw bytes — request smuggling shapes are
 * refused 400 before anything is decided (RFC 9112 2.2, 3, 5, 6.1, 6.3) —
 * then parsed by http-parser, which also decodes the body. A chunked body
 * is checked by a strict framing automaton (ck_run, RFC 9112 7.1) on the
 * same bytes before http-parser sees them. After a 400 (or 431) the
 * connection is closed: no attempt to find the next request.
 *
 * One request at a time: the next request of a pipeline is parsed only
 * once the previous response was handed to the connection. Unparsed input
 * is bounded (max_header_bytes + H1_IN_EXTRA): reading stops above it.
 *
 * Back-pressure: the request body goes to h->req; above PX_PIPE_HIGH the
 * parser pauses, and a uv_check handle (active only then) resumes it once
 * the upstream side has drained the pipe, so a slow provider stops the
 * caller. The response is framed with its content-length when the
 * provider gave one, else chunked (HTTP/1.0: until close).
 */
#include "proxy/gw.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H1_IN_EXTRA (96u * 1024u)      /* unparsed input kept beyond one head */
#define H1_DISCARD_MAX (1024u * 1024u) /* body bytes read and dropped after an early answer */
#define H1_EXT_MAX 256u                /* chunk-extension bytes of one chunk line */
#define H1_OUT_CHUNK (16u * 1024u)     /* response body bytes framed at a time */

enum h1_state {
    H1_HEAD,    /* no request: waiting for a head */
    H1_BODY,    /* the current request's body is being read */
    H1_DONE,    /* the request is read; its response may still be under way */
    H1_CLOSING, /* no more requests: close once the output is out */
};

enum h1_out { OUT_NONE, OUT_LENGTH, OUT_CHUNKED, OUT_CLOSE };

/* Strict chunked framing (RFC 9112 7.1): chunk-size without sign or
 * spaces, chunk-ext only after ';' and bounded, CRLF everywhere, trailer
 * fields without obs-fold. */
enum ck_state {
    CK_SIZE0,
    CK_SIZE,
    CK_BWS,
    CK_EXT,
    CK_SIZE_LF,
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TSTART,
    CK_TNAME,
    CK_TVALUE,
    CK_TLF,
    CK_END_LF,
    CK_DONE,
};

struct ck {
    enum ck_state st;
    uint64_t size; /* CK_SIZE: the size so far; CK_DATA: bytes left */
    unsigned digits, ext;
    uint64_t trailer;
};

struct px_h1 {
    struct px_down *dc;
    http_parser parser;
    enum h1_state state;
    /* input not processed yet: in[ioff, ilen); hscan: how far a head was
     * searched for its end */
    char *in;
    size_t ioff, ilen, icap, hscan;
    /* the current request head (names lower-cased): the exchange's
     * method, path and headers are views into it */
    char *head;
    size_t headcap;
    /* output for the connection: out[ooff, olen) */
    char *out;
    size_t ooff, olen, ocap;
    struct px_h2s *cur; /* the exchange of the current request */
    int32_t seq;
    struct ck ck;
    uint64_t discarded;
    /* the current request */
    bool chunked, msg_done, keep_alive, http10, head_method, expect;
    /* its response */
    bool resp_head, resp_complete;
    enum h1_out out_mode;
    uint64_t out_left; /* OUT_LENGTH: body bytes still to send */
    /* the connection */
    bool close_after; /* no request after the current one */
    bool bp;          /* parsing paused: h->req is above PX_PIPE_HIGH */
    bool eof;         /* the peer closed its side */
    bool kill;        /* close at the next flush */
    bool shut;        /* shutdown(SHUT_WR) sent */
    bool paused;      /* socket reading stopped */
    /* header_timeout (px__h1_watch): uv_now of the first byte of the head
     * being read (0: none), of the last body progress */
    uint64_t t_head, t_in;
    uv_check_t check;
    uv_shutdown_t shutreq;
};

static _Thread_local char scratch[H1_OUT_CHUNK];

/* ---------------------------------------------------------------- helpers */

static bool tchar(unsigned char c)
{
    /* RFC 9110 5.6.2 */
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool ieq(const char *a, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    if (n != l) return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

static bool ieq2(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint64_t max_header(const struct px_h1 *x)
{
    uint64_t m = x->dc->base.w->set->config.limits.max_header_bytes;
    return m ? m : 65536;
}

static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (!p) return false;
    *buf = p;
    *cap = n;
    return true;
}

static void out_put(struct px_h1 *x, const char *p, size_t n)
{
    if (x->ooff > 0 && x->ooff == x->olen) x->ooff = x->olen = 0;
    if (!grow(&x->out, &x->ocap, x->olen + n)) {
        x->kill = true;
        return;
    }
    memcpy(x->out + x->olen, p, n);
    x->olen += n;
}

static void out_str(struct px_h1 *x, const char *s)
{
    out_put(x, s, strlen(s));
}

static void dirty(struct px_h1 *x)
{
    px__sess_dirty(&x->dc->base);
}

/* ------------------------------------------------------- chunked framing */

/* Runs |k| over |p|[0, n). Returns the bytes that belong to the body (up
 * to the end of the message, or all of them), or -1 on a framing error. */
static long ck_run(struct ck *k, const char *p, size_t n, uint64_t max_trailer)
{
    size_t i = 0;
    while (i < n && k->st != CK_DONE) {
        unsigned char c = (unsigned char)p[i];
        int v;
        switch (k->st) {
        case CK_SIZE0:
            if ((v = hexval(c)) < 0) return -1;
            k->size = (uint64_t)v;
            k->digits = 1;
            k->st = CK_SIZE;
            break;
        case CK_SIZE:
            if ((v = hexval(c)) >= 0) {
                if (++k->digits > 15) return -1;
                k->size = k->size * 16 + (uint64_t)v;
            } else if (c == ';') {
                k->ext = 0;
                k->st = CK_EXT;
            } else if (c == ' ' || c == '\t') {
                k->ext = 1;
                k->st = CK_BWS; /* BWS is allowed before ';' only */
            } else if (c == '\r') {
                k->st = CK_SIZE_LF;
            } else {
                return -1;
            }
            break;
        case CK_BWS:
            if (++k->ext > H1_EXT_MAX) return -1;
            if (c == ';')
                k->st = CK_EXT;
            else if (c != ' ' && c != '\t')
                return -1;
            break;
        case CK_EXT:
            if (++k->ext > H1_EXT_MAX) return -1;
            if (c == '\r')
                k->st = CK_SIZE_LF;
            else if (c != '\t' && (c < 0x20 || c >= 0x7f))
                return -1;
            break;
        case CK_SIZE_LF:
            if (c != '\n') return -1;
            k->st = k->size ? CK_DATA : CK_TSTART;
            break;
        case CK_DATA: {
            uint64_t m = n - i;
            if (m > k->size) m = k->size;
            k->size -= m;
            i += (size_t)m;
            if (k->size == 0) k->st = CK_DATA_CR;
            continue;
        }
        case CK_DATA_CR:
            if (c != '\r') return -1;
            k->st = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n') return -1;
            k->st = CK_SIZE0;
            break;
        case CK_TSTART:
            if (c == '\r') {
                k->st = CK_END_LF;
                break;
            }
            if (!tchar(c)) return -1; /* obs-fold, or not a field */
            k->st = CK_TNAME;
            /* fall through */
        case CK_TNAME:
            if (++k->trailer > max_trailer) return -1;
            if (c == ':')
                k->st = CK_TVALUE;
            else if (!tchar(c))
                return -1;
            break;
        case CK_TVALUE:
            if (++k->trailer > max_trailer) return -1;
            if (c == '\r')
                k->st = CK_TLF;
            else if (c != '\t' && (c < 0x20 || c == 0x7f))
                return -1;
            break;
        case CK_TLF:
            if (c != '\n') return -1;
            k->st = CK_TSTART;
            break;
        case CK_END_LF:
            if (c != '\n') return -1;
            k->st = CK_DONE;
            break;
        case CK_DONE: break;
        }
        i++;
    }
    return (long)i;
}

/* ----------------------------------------------------------- http-parser */

static int on_headers_complete(http_parser *p)
{
    struct px_h1 *x = p->data;
    x->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct px_h1 *x = p->data;
    struct px_h2s *h = x->cur;
    if (!h || h->finished) {
        x->discarded += len; /* answered already: read and dropped */
        return 0;
    }
    px__h2s_req_body(h, at, len);
    if (x->bp) http_parser_pause(p, 1);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct px_h1 *x = p->data;
    x->msg_done = true;
    http_parser_pause(p, 1); /* stop at the end of this request (pipelining) */
    return 0;
}

static http_parser_settings settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------ request head */

struct head_info {
    int status; /* 0, or the refusal */
    const char *msg;
    int ncl, nte, nhost;
    uint64_t cl;
    const char *host;
    size_t hostlen;
    bool expect_other;
};

static int head_err(struct head_info *hi, int status, const char *msg)
{
    hi->status = status;
    hi->msg = msg;
    return -1;
}

/* Checks the raw head b[0, len) (ending with CRLF CRLF) and fills the
 * exchange's method, path and header views. Lower-cases the field names
 * in place. Returns 0 or -1 with hi->status / hi->msg. */
static int parse_head(struct px_h1 *x, struct px_h2s *h, char *b, size_t len, struct head_info *hi)
{
    for (size_t i = 0; i < len; i++) {
        char c = b[i];
        if (c == '\n' && (i == 0 || b[i - 1] != '\r'))
            return head_err(hi, 400, "bare LF in the request head");
        if (c == '\r' && (i + 1 >= len || b[i + 1] != '\n'))
            return head_err(hi, 400, "bare CR in the request head");
        if (c == '\0') return head_err(hi, 400, "NUL in the request head");
    }
    /* request-line = method SP request-target SP HTTP-version (RFC 9112 3) */
    const char *eol = memmem(b, len, "\r\n", 2);
    size_t le = (size_t)(eol - b);
    size_t i = 0;
    while (i < le && tchar((unsigned char)b[i]))
        i++;
    if (i == 0 || i >= le || b[i] != ' ') return head_err(hi, 400, "malformed request line");
    size_t t0 = i + 1, j = t0;
    while (j < le && (unsigned char)b[j] > 0x20 && (unsigned char)b[j] < 0x7f)
        j++;
    if (j == t0 || j >= le || b[j] != ' ') return head_err(hi, 400, "malformed request line");
    const char *ver = b + j + 1;
    size_t vl = le - (j + 1);
    if (vl == 8 && memcmp(ver, "HTTP/1.1", 8) == 0)
        x->http10 = false;
    else if (vl == 8 && memcmp(ver, "HTTP/1.0", 8) == 0)
        x->http10 = true;
    else
        return head_err(hi, 400, "unsupported HTTP version");
    x->head_method = i == 4 && memcmp(b, "HEAD", 4) == 0;
    /* CONNECT makes http-parser end the message at its head (a tunnel),
     * so a body would be read as the next request: a reverse proxy has
     * no use for it (RFC 9110 9.3.6), refuse it */
    if (i == 7 && memcmp(b, "CONNECT", 7) == 0) return head_err(hi, 400, "CONNECT not supported");
    h->method.p = b;
    h->method.len = i;

    /* field lines */
    uint64_t max = max_header(x);
    size_t pos = le + 2;
    while (pos < len - 2) {
        const char *e = memmem(b + pos, len - pos, "\r\n", 2);
        size_t end = (size_t)(e - b);
        if (b[pos] == ' ' || b[pos] == '\t')
            return head_err(hi, 400, "obs-fold in the request head");
        size_t k = pos;
        while (k < end && tchar((unsigned char)b[k]))
            k++;
        if (k == pos || k >= end || b[k] != ':')
            return head_err(hi, 400, "malformed header field (a space before the colon?)");
        size_t v = k + 1, ve = end;
        while (v < ve && (b[v] == ' ' || b[v] == '\t'))
            v++;
        while (ve > v && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        for (size_t q = v; q < ve; q++) {
            unsigned char c = (unsigned char)b[q];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return head_err(hi, 400, "control character in a header value");
        }
        for (size_t q = pos; q < k; q++)
            if (b[q] >= 'A' && b[q] <= 'Z') b[q] = (char)(b[q] - 'A' + 'a');
        const char *name = b + pos, *val = b + v;
        size_t nl = k - pos, vlen = ve - v;
        h->header_bytes += nl + vlen + 32;
        bool keep = true;
        if (nl == 14 && memcmp(name, "content-length", 14) == 0) {
            hi->ncl++;
            if (vlen == 0 || vlen > 18) return head_err(hi, 400, "invalid content-length");
            uint64_t n = 0;
            for (size_t q = 0; q < vlen; q++) {
                if (val[q] < '0' || val[q] > '9')
                    return head_err(hi, 400, "invalid content-length");
                n = n * 10 + (uint64_t)(val[q] - '0');
            }
            hi->cl = n;
        } else if (nl == 17 && memcmp(name, "transfer-encoding", 17) == 0) {
            hi->nte++;
            if (!ieq(val, vlen, "chunked"))
                return head_err(hi, 400, "transfer-encoding other than chunked");
            x->chunked = true;
        } else if (nl == 4 && memcmp(name, "host", 4) == 0) {
            hi->nhost++;
            hi->host = val;
            hi->hostlen = vlen;
        } else if (nl == 6 && memcmp(name, "expect", 6) == 0) {
            keep = false; /* answered here, never forwarded */
            if (ieq(val, vlen, "100-continue"))
                x->expect = !x->http10; /* RFC 9110 10.1.1: ignored in HTTP/1.0 */
            else
                hi->expect_other = true;
        }
        if (keep) {
            if (!px__h2s_hdr_room(h)) return head_err(hi, 431, "too many header fields");
            h->hdr[h->nhdr].name.p = name;
            h->hdr[h->nhdr].name.len = nl;
            h->hdr[h->nhdr].value.p = val;
            h->hdr[h->nhdr].value.len = vlen;
            h->nhdr++;
        }
        pos = end + 2;
    }
    if (h->header_bytes > max)
        return head_err(hi, 431, "request header list larger than max_header_bytes");
    /* RFC 9112 6.1, 6.3: the shapes that let two parsers disagree */
    if (hi->ncl > 1) return head_err(hi, 400, "duplicate content-length");
    if (hi->nte > 1) return head_err(hi, 400, "duplicate transfer-encoding");
    if (hi->ncl && hi->nte) return head_err(hi, 400, "content-length with transfer-encoding");
    if (hi->nte && x->http10) return head_err(hi, 400, "transfer-encoding in an HTTP/1.0 request");
    if (hi->nhost > 1 || (!x->http10 && hi->nhost != 1))
        return head_err(hi, 400, "an HTTP/1.1 request needs exactly one host");
    if (hi->expect_other) return head_err(hi, 417, "unsupported expectation");
    if (!x->chunked && hi->cl == 0) x->expect = false; /* no body: nothing to wait for */

    /* request-target: origin-form, or absolute-form naming this gateway
     * (the host the caller addressed); RFC 9112 3.2 */
    const char *t = b + t0;
    size_t tl = j - t0;
    if (memchr(t, '#', tl)) return head_err(hi, 400, "fragment in the request target");
    if (t[0] == '/') {
        h->path.p = t;
        h->path.len = tl;
        return 0;
    }
    bool tls = x->dc->base.conn.ssl != NULL;
    size_t sl = tl >= 7 && ieq2(t, "http://", 7) ? 7 : (tl >= 8 && ieq2(t, "https://", 8) ? 8 : 0);
    if (sl == 0) return head_err(hi, 400, "unsupported request-target form");
    if ((sl == 8) != tls) return head_err(hi, 400, "absolute-form target with another scheme");
    size_t a = sl;
    while (a < tl && t[a] != '/' && t[a] != '?')
        a++;
    if (hi->nhost != 1 || a - sl != hi->hostlen || !ieq2(t + sl, hi->host, hi->hostlen))
        return head_err(hi, 400, "absolute-form target for another host");
    if (a == tl) {
        h->path.p = "/";
        h->path.len = 1;
    } else if (t[a] == '/') {
        h->path.p = t + a;
        h->path.len = tl - a;
    } else {
        return head_err(hi, 400, "absolute-form target without a path");
    }
    return 0;
}

/* --------------------------------------------------------------- requests */

static void reset_request(struct px_h1 *x)
{
    x->chunked = x->msg_done = x->keep_alive = x->http10 = x->head_method = x->expect = false;
    x->resp_head = x->resp_complete = false;
    x->out_mode = OUT_NONE;
    x->out_left = 0;
    x->discarded = 0;
    memset(&x->ck, 0, sizeof(x->ck));
}

/* An exchange that only carries the gateway's refusal of a request that
 * could not be read; the connection closes after it. */
static void refuse_unread(struct px_h1 *x, int status, const char *msg)
{
    struct px_h2s *h = x->cur;
    if (!h) {
        h = px__h2s_open(x->dc, ++x->seq);
        if (!h) {
            x->kill = true;
            return;
        }
        x->cur = h;
    }
    x->state = H1_CLOSING;
    x->close_after = true;
    x->ioff = x->ilen = 0;
    px__h2s_refuse(h, status, "invalid_request", msg);
    dirty(x);
}

/* A complete head is in x->head[0, len): start its exchange. */
static void start_request(struct px_h1 *x, size_t len)
{
    struct px_down *dc = x->dc;
    reset_request(x);
    struct px_h2s *h = px__h2s_open(dc, ++x->seq);
    if (!h) {
        x->kill = true;
        return;
    }
    x->cur = h;
    dc->had_request = true;
    x->t_in = uv_now(&dc->base.w->loop);
    px__down_watch_soon(dc);
    struct head_info hi;
    memset(&hi, 0, sizeof(hi));
    if (parse_head(x, h, x->head, len, &hi) != 0) {
        refuse_unread(x, hi.status, hi.msg);
        return;
    }
    /* http-parser reads the same head: it must agree */
    http_parser_init(&x->parser, HTTP_REQUEST);
    x->parser.data = x;
    size_t k = http_parser_execute(&x->parser, &settings, x->head, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&x->parser);
    if (e == HPE_PAUSED) http_parser_pause(&x->parser, 0);
    /* an upgrade (Upgrade: h2c, served as plain HTTP/1.1) ends
     * http-parser's message at the head: agree only when there is no body
     * that would otherwise be read as the next request */
    bool body = (hi.ncl && hi.cl > 0) || x->chunked;
    bool agree = (e == HPE_OK || e == HPE_PAUSED) && k == len && !(x->parser.upgrade && body) &&
                 x->chunked == ((x->parser.flags & F_CHUNKED) != 0) &&
                 (!hi.ncl || x->parser.content_length == hi.cl ||
                  (x->msg_done && hi.cl == 0 && !x->chunked));
    if (!agree) {
        refuse_unread(x, 400, "malformed request head");
        return;
    }
    if (x->http10 && !x->keep_alive) x->close_after = true;
    x->state = x->msg_done ? H1_DONE : H1_BODY;
    px__h2s_head_done(h);
    if (h->finished && x->expect && !x->msg_done) {
        /* refused while the client waits for 100 Continue: it may send
         * the body or not, so the connection cannot go on (h1_respond
         * said connection: close) */
        x->state = H1_CLOSING;
        x->close_after = true;
        x->ioff = x->ilen = 0;
    } else if (!h->finished && x->expect && !x->msg_done) {
        out_str(x, "HTTP/1.1 100 Continue\r\n\r\n"); /* RFC 9110 10.1.1 */
    }
    x->expect = false;
    if (x->msg_done) px__h2s_req_end(h);
    dirty(x);
}

/* Looks for a complete head in the input. Returns true when a request was
 * started (or refused). */
static bool read_head(struct px_h1 *x)
{
    /* RFC 9112 2.2: empty lines before a request-line are ignored */
    while (x->ilen - x->ioff >= 2 && x->in[x->ioff] == '\r' && x->in[x->ioff + 1] == '\n') {
        x->ioff += 2;
        x->hscan = 0;
    }
    const char *b = x->in + x->ioff;
    size_t avail = x->ilen - x->ioff;
    if (avail == 0) return false;
    uint64_t max = max_header(x);
    size_t end = 0, i = x->hscan;
    for (; i < avail; i++) {
        if (b[i] != '\n') continue;
        if (i == 0 || b[i - 1] != '\r') {
            refuse_unread(x, 400, "bare LF in the request head");
            return true;
        }
        if (i >= 3 && b[i - 2] == '\n' && b[i - 3] == '\r') {
            end = i + 1;
            break;
        }
    }
    x->hscan = i;
    if (!end) {
        if (avail > max) {
            x->t_head = 0;
            refuse_unread(x, 431, "request head larger than max_header_bytes");
            return true;
        }
        if (!x->t_head) {
            /* header_timeout runs from the head's first byte */
            x->t_head = uv_now(&x->dc->base.w->loop) | 1;
            px__down_watch_soon(x->dc);
        }
        return false;
    }
    x->t_head = 0;
    if (end > max) {
        refuse_unread(x, 431, "request head larger than max_header_bytes");
        return true;
    }
    if (!grow(&x->head, &x->headcap, end)) {
        x->kill = true;
        return true;
    }
    memcpy(x->head, b, end);
    x->ioff += end;
    x->hscan = 0;
    x->dc->last_active = uv_now(&x->dc->base.w->loop);
    start_request(x, end);
    return true;
}

static void body_error(struct px_h1 *x, const char *msg)
{
    struct px_h2s *h = x->cur;
    x->state = H1_CLOSING;
    x->close_after = true;
    x->ioff = x->ilen = 0;
    if (h && !h->finished) px__h2s_refuse(h, 400, "invalid_request", msg);
    dirty(x);
}

/* Feeds body bytes of the input to http-parser. Returns the bytes used. */
static size_t read_body(struct px_h1 *x)
{
    const char *p = x->in + x->ioff;
    size_t n = x->ilen - x->ioff;
    if (n == 0) return 0;
    struct ck saved = x->ck;
    uint64_t maxt = max_header(x);
    if (x->chunked) {
        long r = ck_run(&x->ck, p, n, maxt);
        if (r < 0) {
            body_error(x, "malformed chunked body");
            return 0;
        }
        n = (size_t)r;
    }
    size_t k = http_parser_execute(&x->parser, &settings, p, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&x->parser);
    if (e == HPE_PAUSED) {
        http_parser_pause(&x->parser, 0);
    } else if (e != HPE_OK) {
        body_error(x, "malformed request body framing");
        return 0;
    }
    if (x->chunked && k < n) {
        x->ck = saved; /* paused early: the automaton follows the parser */
        ck_run(&x->ck, p, k, maxt);
    }
    x->ioff += k;
    if (x->chunked && x->msg_done != (x->ck.st == CK_DONE)) {
        body_error(x, "malformed chunked body");
        return 0;
    }
    if (x->discarded > H1_DISCARD_MAX) {
        /* too much to drop after an answer: stop here and close */
        x->state = H1_CLOSING;
        x->close_after = true;
        x->ioff = x->ilen = 0;
    }
    return k;
}

/* The request is read and its exchange is over: the next one, or close. */
static void next_request(struct px_h1 *x)
{
    if (x->cur || x->state != H1_DONE) return;
    if (x->close_after || !x->keep_alive || x->dc->goaway) {
        x->state = H1_CLOSING;
        return;
    }
    reset_request(x);
    x->state = H1_HEAD;
}

/* Processes the input as far as the current state allows. */
static void process(struct px_h1 *x)
{
    for (int round = 0; round < 1000; round++) {
        if (x->dc->base.dead || x->kill) return;
        if (x->state == H1_HEAD) {
            if (x->cur) return;
            if (!read_head(x)) {
                if (x->eof) {
                    /* the peer is gone: nothing more will complete a head */
                    x->state = H1_CLOSING;
                    x->ioff = x->ilen = 0;
                    dirty(x);
                }
                return;
            }
        } else if (x->state == H1_BODY) {
            if (x->bp) return;
            size_t k = read_body(x);
            if (x->state != H1_BODY) return;
            if (x->msg_done) {
                x->state = H1_DONE;
                if (x->cur) px__h2s_req_end(x->cur);
                next_request(x);
                dirty(x);
                continue;
            }
            if (k == 0) {
                if (x->eof && !x->bp) x->kill = true; /* the request will never be complete */
                if (x->kill) dirty(x);
                return;
            }
        } else {
            return;
        }
    }
    dirty(x); /* more next turn */
}

/* Stops reading while too much input waits; starts again below. */
static void update_reading(struct px_h1 *x)
{
    struct px_conn *c = &x->dc->base.conn;
    size_t pending = x->ilen - x->ioff;
    bool stop = x->state != H1_CLOSING && pending > max_header(x) + H1_IN_EXTRA / 2;
    if (stop != x->paused) {
        x->paused = stop;
        px_conn_pause(c, stop);
        /* reading again: the body's time starts now */
        if (!stop) x->t_in = uv_now(&x->dc->base.w->loop);
    }
}

/* --------------------------------------------------------- protocol ops */

static int h1_respond(struct px_h2s *h, const nghttp2_nv *nv, size_t n, enum px_resp_body body)
{
    struct px_h1 *x = h->dc->h1;
    int status = 0;
    for (size_t i = 0; i < nv[0].valuelen && i < 3; i++)
        status = status * 10 + (nv[0].value[i] - '0');
    bool nobody = x->head_method || status == 204 || status == 304 || status < 200;
    bool have_len = false;
    uint64_t len = 0;
    for (size_t i = 1; i < n; i++) {
        if (nv[i].namelen == 14 && memcmp(nv[i].name, "content-length", 14) == 0) {
            have_len = nv[i].valuelen > 0 && nv[i].valuelen <= 18;
            len = 0;
            for (size_t q = 0; q < nv[i].valuelen && have_len; q++) {
                char c = (char)nv[i].value[q];
                if (c < '0' || c > '9') have_len = false;
                len = len * 10 + (uint64_t)(c - '0');
            }
        }
    }
    if (body == PX_RESP_ERR) {
        x->out_mode = x->head_method ? OUT_NONE : OUT_LENGTH;
    } else if (nobody || body == PX_RESP_NONE) {
        x->out_mode = OUT_NONE;
    } else if (have_len) {
        x->out_mode = OUT_LENGTH;
        x->out_left = len;
    } else if (x->http10) {
        x->out_mode = OUT_CLOSE;
        x->close_after = true;
    } else {
        x->out_mode = OUT_CHUNKED;
    }
    /* answered before the body was read while the client waits for 100
     * Continue: it may send the body or not, so nothing can follow */
    if (x->state == H1_BODY && x->expect) x->close_after = true;
    if (x->dc->goaway || x->state == H1_CLOSING) x->close_after = true;
    bool close = x->close_after || !x->keep_alive;
    const char *reason =
        status >= 100 && status <= 599 ? http_status_str((enum http_status)status) : "";
    if (!reason || strcmp(reason, "<unknown>") == 0) reason = "Status";
    char line[96];
    snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n", status, reason);
    out_str(x, line);
    for (size_t i = 1; i < n; i++) {
        if (nv[i].namelen > 0 && nv[i].name[0] == ':') continue;
        out_put(x, (const char *)nv[i].name, nv[i].namelen);
        out_put(x, ": ", 2);
        out_put(x, (const char *)nv[i].value, nv[i].valuelen);
        out_put(x, "\r\n", 2);
    }
    if (body == PX_RESP_NONE && !nobody && !have_len) out_str(x, "content-length: 0\r\n");
    if (x->out_mode == OUT_CHUNKED) out_str(x, "transfer-encoding: chunked\r\n");
    if (close)
        out_str(x, "connection: close\r\n");
    else if (x->http10)
        out_str(x, "connection: keep-alive\r\n");
    out_put(x, "\r\n", 2);
    x->resp_head = true;
    if (body == PX_RESP_ERR) {
        if (!x->head_method && h->errlen) out_put(x, h->errbody, h->errlen);
        x->resp_complete = true;
    } else if (body == PX_RESP_NONE) {
        x->resp_complete = true;
    }
    dirty(x);
    return 0;
}

static void h1_resume(struct px_h2s *h)
{
    dirty(h->dc->h1);
}

static void h1_reset(struct px_h2s *h)
{
    /* HTTP/1.1 has no stream reset: the response is cut short by closing */
    struct px_h1 *x = h->dc->h1;
    x->kill = true;
    dirty(x);
}

/* Whether the current request's body must wait: h->req is above
 * PX_PIPE_HIGH (HTTP/1.1 has no flow-control window: the parser pauses). */
static bool must_wait(const struct px_h2s *h)
{
    return h && !h->finished && !h->buffer_all && h->req.bytes >= PX_PIPE_HIGH;
}

static void resume_body(struct px_h1 *x)
{
    x->bp = false;
    x->t_in = uv_now(&x->dc->base.w->loop); /* the caller may send again: its time starts now */
    uv_check_stop(&x->check);
    dirty(x);
}

/* A fallback: the upstream side calls credit() when it drains h->req
 * (while h->req.unconsumed is not 0); this check, active only while
 * paused, also sees an exchange that ended. */
static void check_cb(uv_check_t *c)
{
    struct px_h1 *x = c->data;
    if (x->dc->base.dead || must_wait(x->cur)) return;
    if (x->cur) x->cur->req.unconsumed = 0;
    resume_body(x);
}

static void h1_credit(struct px_h2s *h)
{
    struct px_h1 *x = h->dc->h1;
    if (must_wait(h)) {
        /* h->req.unconsumed stays: the upstream side calls again */
        if (!x->bp) {
            x->bp = true;
            uv_check_start(&x->check, check_cb);
        }
        return;
    }
    h->req.unconsumed = 0;
    if (x->bp) resume_body(x);
}

static void h1_goaway(struct px_down *dc)
{
    struct px_h1 *x = dc->h1;
    dc->goaway = true;
    x->close_after = true;
    /* draining, with part of a request head already read on a keep-alive
     * connection: the head is read and answered 503 shutting_down
     * (px__h2s_head_done) with connection: close, not dropped unanswered
     * (empty lines before a head, RFC 9112 2.2, are no request) */
    size_t k = x->ioff;
    while (k < x->ilen && (x->in[k] == '\r' || x->in[k] == '\n'))
        k++;
    if (!x->cur && x->state == H1_HEAD && dc->base.w->draining && k < x->ilen) {
        dirty(x);
        return;
    }
    if (!x->cur && (x->state == H1_HEAD || x->state == H1_DONE)) {
        x->state = H1_CLOSING;
        x->ioff = x->ilen = 0;
    }
    dirty(x);
}

const struct px_down_proto px__down_h1 = {h1_respond, h1_resume, h1_reset, h1_credit, h1_goaway};

/* ------------------------------------------------------------- flushing */

/* Frames response body bytes of the current exchange into the output. */
static bool take_body(struct px_h1 *x, struct px_h2s *h)
{
    size_t k = px__pipe_read(h->w, &h->resp, (uint8_t *)scratch, sizeof(scratch));
    if (k > 0) {
        switch (x->out_mode) {
        case OUT_CHUNKED: {
            char sz[24];
            snprintf(sz, sizeof(sz), "%zx\r\n", k);
            out_str(x, sz);
            out_put(x, scratch, k);
            out_put(x, "\r\n", 2);
            break;
        }
        case OUT_LENGTH:
            if (k > x->out_left) {
                x->kill = true; /* more than announced: the framing is lost */
                return false;
            }
            x->out_left -= k;
            out_put(x, scratch, k);
            break;
        case OUT_CLOSE: out_put(x, scratch, k); break;
        case OUT_NONE: break; /* a HEAD response: dropped */
        }
    }
    bool done = px__h2s_resp_taken(h, k);
    if (done) {
        if (x->out_mode == OUT_CHUNKED) out_str(x, "0\r\n\r\n"); /* trailers are not forwarded */
        if (x->out_mode == OUT_LENGTH && x->out_left != 0) {
            x->kill = true; /* shorter than announced */
            return false;
        }
        x->resp_complete = true;
    }
    return k > 0 || done;
}

static void shut_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

int px__h1_flush(struct px_down *dc)
{
    struct px_h1 *x = dc->h1;
    struct px_conn *c = &dc->base.conn;
    if (c->closing) return -1;
    if (x->kill) {
        /* what was produced still leaves before the close (a response cut
         * short keeps its head and the body so far: the caller sees the
         * status, then the short body); kick writes at once when it can */
        if (x->olen > x->ooff) px_conn_write(c, x->out + x->ooff, x->olen - x->ooff);
        px_conn_kick(c);
        return -1;
    }
    if (x->bp && !must_wait(x->cur)) resume_body(x);
    for (int round = 0; round < 64; round++) {
        bool progress = false;
        struct px_h2s *h = x->cur;
        if (h && x->resp_head && !x->resp_complete && x->olen - x->ooff < H1_OUT_CHUNK)
            progress |= take_body(x, h);
        if (x->kill) return -1;
        if (x->olen > x->ooff) {
            size_t k = px_conn_write(c, x->out + x->ooff, x->olen - x->ooff);
            x->ooff += k;
            if (x->ooff == x->olen) x->ooff = x->olen = 0;
            progress |= k > 0;
        }
        if (h && x->resp_complete) {
            /* the response is handed over: the exchange is over downstream */
            x->cur = NULL;
            if (x->bp) resume_body(x);
            dc->last_active = uv_now(&dc->base.w->loop);
            px__h2s_down_closed(h);
            next_request(x);
            progress = true;
        }
        if (!x->cur && (x->state == H1_HEAD || (x->state == H1_BODY && !x->bp))) {
            size_t before = x->ilen - x->ioff;
            enum h1_state st = x->state;
            process(x);
            if (x->kill) return -1;
            progress |= x->cur != NULL || x->state != st || x->ilen - x->ioff != before;
        } else if (x->state == H1_BODY && !x->bp && x->ilen > x->ioff) {
            size_t before = x->ilen - x->ioff;
            process(x);
            if (x->kill) return -1;
            progress |= x->ilen - x->ioff != before;
        }
        if (!progress || x->olen > x->ooff) break;
    }
    px_conn_kick(c);
    if (x->state == H1_CLOSING && !x->cur && x->olen == x->ooff && !px_conn_busy(c)) {
        /* answered: close our side, then wait for the peer's (so that its
         * unread request bytes do not turn our answer into a reset) */
        if (x->eof) return -1;
        if (!x->shut) {
            x->shut = true;
            px__down_close_notify(c); /* TLS: our end is not a truncation */
            x->shutreq.data = x;
            if (uv_shutdown(&x->shutreq, (uv_stream_t *)&c->tcp, shut_cb) != 0) return -1;
            dc->goaway = true; /* the idle timer closes it if the peer stays */
        }
    }
    update_reading(x);
    return 0;
}

/* ----------------------------------------------------------- connection */

static void check_closed(uv_handle_t *hd)
{
    struct px_h1 *x = hd->data;
    px__down_unref(x->dc);
}

void px__h1_start(struct px_down *dc, const char *p, size_t n)
{
    struct px_h1 *x = calloc(1, sizeof(*x));
    if (!x) {
        px__down_kill(dc);
        return;
    }
    x->dc = dc;
    dc->h1 = x;
    dc->proto = &px__down_h1;
    uv_check_init(&dc->base.w->loop, &x->check);
    x->check.data = x;
    dc->handles++;
    x->state = H1_HEAD;
    if (dc->base.w->draining) h1_goaway(dc);
    if (n) px__h1_read(dc, p, n);
}

void px__h1_read(struct px_down *dc, const char *p, size_t n)
{
    struct px_h1 *x = dc->h1;
    if (dc->base.dead || x->kill) return;
    if (x->state == H1_CLOSING) {
        /* no more requests: read and dropped until the peer closes */
        x->discarded += n;
        if (x->discarded > H1_DISCARD_MAX) {
            x->kill = true;
            dirty(x);
        }
        return;
    }
    if (x->state == H1_BODY) dc->last_active = x->t_in = uv_now(&dc->base.w->loop);
    if (x->ioff > 0 && (x->ioff == x->ilen || x->ilen + n > x->icap)) {
        memmove(x->in, x->in + x->ioff, x->ilen - x->ioff);
        x->ilen -= x->ioff;
        x->ioff = 0;
    }
    if (!grow(&x->in, &x->icap, x->ilen + n)) {
        x->kill = true;
        dirty(x);
        return;
    }
    memcpy(x->in + x->ilen, p, n);
    x->ilen += n;
    if (!x->cur || x->state == H1_BODY) process(x);
    update_reading(x);
}

void px__h1_eof(struct px_down *dc)
{
    struct px_h1 *x = dc->h1;
    x->eof = true;
    if (x->state == H1_HEAD || x->state == H1_BODY) process(x);
    dirty(x);
}

void px__h1_kill(struct px_down *dc)
{
    struct px_h1 *x = dc->h1;
    x->cur = NULL;
    uv_check_stop(&x->check);
    uv_close((uv_handle_t *)&x->check, check_closed);
}

void px__h1_free(struct px_h1 *x)
{
    free(x->in);
    free(x->head);
    free(x->out);
    free(x);
}

/* ------------------------------------------------------------- watchdog */

bool px__h1_watch(struct px_down *dc, uint64_t now, uint64_t ht, uint64_t idle)
{
    struct px_h1 *x = dc->h1;
    if (x->kill) return false;
    if (x->state == H1_HEAD && !x->cur && x->t_head) {
        /* the first head is also due header_timeout after accept */
        if (ht && (now - x->t_head >= ht || (!dc->had_request && now - dc->t_accept >= ht))) {
            /* slowloris: answered 408, nothing was decided or sent */
            x->t_head = 0;
            refuse_unread(x, 408, "request head not complete within header_timeout");
        }
        return true;
    }
    struct px_h2s *h = x->cur;
    if (x->state == H1_BODY && ht && !x->bp && !x->paused && now - x->t_in >= ht) {
        /* the body stalled while we were reading it (or dropping it after
         * an early answer): 408 when nothing was answered yet (the
         * upstream request, if it left, is reset), then close — HTTP/1.1
         * cannot skip the rest of a body it did not get */
        x->t_in = now;
        x->state = H1_CLOSING;
        x->close_after = true;
        x->ioff = x->ilen = 0;
        if (h && !h->responded && !h->up_submitted)
            px__h2s_refuse(h, 408, "invalid_request",
                           "request body did not progress within header_timeout");
        else if (h && !h->finished) /* part of it left: `failed` */
            px__h2s_fail(h, 408, "invalid_request",
                         "request body did not progress within header_timeout");
        dirty(x);
        return true;
    }
    if (h && idle && x->resp_head && !x->resp_complete && !h->finished && x->olen > x->ooff &&
        now - h->t_out >= idle) {
        /* the caller takes no response bytes: the connection goes */
        px__h2s_fail(h, 408, "invalid_request", "the caller did not read the response");
        return true;
    }
    /* an answer still going out before our side shuts down (then
     * dc->goaway; idle_timeout ends the wait for the peer's close) */
    return h != NULL || x->state == H1_BODY || (x->state == H1_CLOSING && !dc->goaway);
}

/* ---------------------------------------------------------------- set-up */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* h2 wherever it is in the client's list, then http/1.1 */
    static const char *const prefs[] = {"h2", "http/1.1"};
    for (size_t p = 0; p < 2; p++) {
        size_t pl = strlen(prefs[p]);
        for (unsigned i = 0; i < inlen;) {
            unsigned l = in[i];
            if (i + 1 + l > inlen) break;
            if (l == pl && memcmp(in + i + 1, prefs[p], pl) == 0) {
                *out = in + i + 1;
                *outlen = (unsigned char)l;
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + l;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void px__h1_tls_ctx(SSL_CTX *ctx)
{
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
}

void px__h1_init(void)
{
    /* the limits are ours (max_header_bytes for heads, trailers and chunk
     * lines, checked before http-parser sees the bytes), and stay right
     * across reloads: http-parser's own, process-wide, must never bite */
    http_parser_set_max_header_size(UINT32_MAX);
}
