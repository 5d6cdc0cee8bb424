/*
 * libFuzzer target for the gateway's HTTP/2 server side (proxy/down.c,
 * proxy/worker.c and everything a request reaches), black-box and
 * in-process (fuzz/gwfuzz.c).
 *
 * The input is a small program for an nghttp2 CLIENT session, whose frames
 * (nghttp2_session_mem_send) and raw bytes are sent on one cleartext
 * connection (prior knowledge), which is then half-closed and read until
 * the gateway closes it. Byte 0: bit 0 = initial SETTINGS entries from the
 * input, else an empty SETTINGS. Then ops, one byte each (op % 10):
 *
 *   0 request   flags byte (bit 0 END_STREAM, bit 1 priority, bit 2 the
 *               usual pseudo-headers first, bit 3 on the last stream:
 *               trailers), count byte (% 12), then per
 *               header a name selector and a value selector: a table entry
 *               or a string from the input (length byte % 64, then bytes)
 *   1 DATA      stream selector, flags (END_STREAM, PADDED), length (% 1024)
 *               and payload from the input, framed here (no flow control)
 *   2 RST_STREAM  stream selector, error code byte
 *   3 SETTINGS  count byte (% 4), each an id byte (% 10) and a 4-byte value
 *               (invalid values are framed raw)
 *   4 PING      8 bytes, flags byte (ACK)
 *   5 WINDOW_UPDATE  stream selector, 4-byte increment (raw: 0 allowed)
 *   6 PRIORITY  stream selector, dependency selector, weight, exclusive
 *   7 GOAWAY    last-stream selector, error code byte (raw frame)
 *   8 raw bytes length byte, then bytes
 *   9 raw frame type, flags, stream selector, length byte, payload
 *
 * The program's bytes end with a PING; the connection is half-closed once
 * its ACK and an answer (END_STREAM or RST_STREAM) to every stream opened
 * have arrived, or a GOAWAY, or nothing came for 100 ms.
 *
 * A stream selector byte s picks the last stream opened when s < 128,
 * stream 0 when s == 128, else the odd id s - 129 (or even, s & 1).
 *
 * Properties: as fuzz_h1 (no crash; every connection closed after the
 * client is done; no descriptor growth; the canary never reaches provider
 * `p`'s upstream outside safe-header values), and the gateway's output is
 * a sequence of whole HTTP/2 frames starting with a SETTINGS frame on
 * stream 0 (RFC 9113 3.4).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "fuzz/common.h"
#include "fuzz/gwfuzz.h"

struct prog {
    const uint8_t *p;
    size_t n, i;
};

static unsigned byte(struct prog *g)
{
    return g->i < g->n ? g->p[g->i++] : 0;
}

static uint32_t u32(struct prog *g)
{
    uint32_t v = 0;
    for (int k = 0; k < 4; k++)
        v = (v << 8) | byte(g);
    return v;
}

/* |len| bytes of the input (fewer at the end). */
static const uint8_t *take(struct prog *g, size_t *len)
{
    const uint8_t *s = g->p + g->i;
    if (*len > g->n - g->i) *len = g->n - g->i;
    g->i += *len;
    return s;
}

static struct fz_out OUT;

static void put(const void *p, size_t n)
{
    fz_sink(&OUT, p, n);
}

static void frame(uint8_t type, uint8_t flags, uint32_t sid, const void *payload, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16),
                    (uint8_t)(len >> 8),
                    (uint8_t)len,
                    type,
                    flags,
                    (uint8_t)((sid >> 24) & 0x7f),
                    (uint8_t)(sid >> 16),
                    (uint8_t)(sid >> 8),
                    (uint8_t)sid};
    put(h, 9);
    if (len) put(payload, len);
}

static int32_t last_sid;
/* streams the program opened, for knowing when the answers are in */
static int32_t opened[64];
static size_t nopened;

static uint32_t stream_sel(struct prog *g)
{
    unsigned s = byte(g);
    if (s < 128) return last_sid > 0 ? (uint32_t)last_sid : 1;
    if (s == 128) return 0;
    return s - 129;
}

static const char *const NAMES[] = {
    ":method",
    ":path",
    ":scheme",
    ":authority",
    ":protocol",
    "privgate-purpose",
    "privgate-caller",
    "content-type",
    "content-encoding",
    "content-length",
    "accept",
    "cookie",
    "x-canary",
    "idempotency-key",
    "te",
    "connection",
    "host",
    "transfer-encoding",
    "traceparent",
    "user-agent",
    "authorization",
    "canary",
    ":status",
    "accept-encoding",
};
#define NNAMES (sizeof NAMES / sizeof NAMES[0])

static const char *const VALUES[] = {
    "POST",
    "GET",
    "PUT",
    "DELETE",
    "/p/v1/items/canary",
    "/p/v1/items/1?canary=1",
    "/p/v1/items/a/canary",
    "/k/v1/keep?q=1&canary=2",
    "/k/v1/raw/x/y",
    "/k/v1/c/7/x?q=canary",
    "/r/v1/r?q=1",
    "/k/v1/c/%2e%2e/x",
    "/nope/x",
    "*",
    "http",
    "https",
    "gw",
    "fuzz",
    "other",
    "svc",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/x-ndjson",
    "application/octet-stream",
    "gzip",
    "deflate",
    "trailers",
    "canary",
    "0",
    "11",
    "100000",
    "keep-alive",
    "chunked",
    "application/json; charset=utf-8",
    "OPTIONS",
    "CONNECT",
};
#define NVALUES (sizeof VALUES / sizeof VALUES[0])

/* A header name or value: a table entry, or a string from the input. */
static void pick(struct prog *g, const char *const *tab, size_t ntab, const uint8_t **s,
                 size_t *len)
{
    unsigned sel = byte(g);
    if (sel < 192) {
        *s = (const uint8_t *)tab[sel % ntab];
        *len = strlen(tab[sel % ntab]);
        return;
    }
    *len = byte(g) % 64;
    *s = take(g, len);
}

static void op_request(nghttp2_session *s, struct prog *g)
{
    unsigned flags = byte(g);
    unsigned count = byte(g) % 12;
    nghttp2_nv nv[16];
    size_t k = 0;
    if (flags & 4) {
        static const char *const pseudo[4][2] = {
            {":method", "POST"}, {":scheme", "http"}, {":authority", "gw"}, {":path", NULL}};
        for (int i = 0; i < 4; i++) {
            nv[k].name = (uint8_t *)(uintptr_t)pseudo[i][0];
            nv[k].namelen = strlen(pseudo[i][0]);
            if (pseudo[i][1]) {
                nv[k].value = (uint8_t *)(uintptr_t)pseudo[i][1];
                nv[k].valuelen = strlen(pseudo[i][1]);
            } else {
                const uint8_t *v;
                size_t vl;
                pick(g, VALUES + 4, 10, &v, &vl);
                nv[k].value = (uint8_t *)(uintptr_t)v;
                nv[k].valuelen = vl;
            }
            nv[k].flags = NGHTTP2_NV_FLAG_NONE;
            k++;
        }
    }
    for (unsigned i = 0; i < count && k < 16; i++, k++) {
        const uint8_t *a, *b;
        size_t al, bl;
        pick(g, NAMES, NNAMES, &a, &al);
        pick(g, VALUES, NVALUES, &b, &bl);
        nv[k].name = (uint8_t *)(uintptr_t)a;
        nv[k].namelen = al;
        nv[k].value = (uint8_t *)(uintptr_t)b;
        nv[k].valuelen = bl;
        nv[k].flags = NGHTTP2_NV_FLAG_NONE;
    }
    nghttp2_priority_spec ps;
    nghttp2_priority_spec_init(&ps, (int32_t)(byte(g) & 7), (int32_t)byte(g) + 1, 0);
    /* bit 3: on the last stream (trailers, or HEADERS twice) */
    int32_t on = (flags & 8) && last_sid > 0 ? last_sid : -1;
    int32_t id = nghttp2_submit_headers(s, (flags & 1) ? NGHTTP2_FLAG_END_STREAM : 0, on,
                                        (flags & 2) ? &ps : NULL, nv, k, NULL);
    if (on < 0 && id > 0) {
        last_sid = id;
        if (nopened < sizeof opened / sizeof opened[0]) opened[nopened++] = id;
    }
}

static void drain(nghttp2_session *s);

static void op_settings(nghttp2_session *s, struct prog *g, unsigned n)
{
    nghttp2_settings_entry e[4] = {{0, 0}};
    for (unsigned i = 0; i < n; i++) {
        e[i].settings_id = (int32_t)(byte(g) % 10);
        e[i].value = u32(g);
    }
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, e, n) != 0) {
        uint8_t raw[24];
        drain(s);
        for (unsigned i = 0; i < n; i++) {
            raw[i * 6] = 0;
            raw[i * 6 + 1] = (uint8_t)e[i].settings_id;
            raw[i * 6 + 2] = (uint8_t)(e[i].value >> 24);
            raw[i * 6 + 3] = (uint8_t)(e[i].value >> 16);
            raw[i * 6 + 4] = (uint8_t)(e[i].value >> 8);
            raw[i * 6 + 5] = (uint8_t)e[i].value;
        }
        frame(NGHTTP2_SETTINGS, 0, 0, raw, n * 6);
    }
}

static void drain(nghttp2_session *s)
{
    for (;;) {
        const uint8_t *d;
        ssize_t k = nghttp2_session_mem_send(s, &d);
        if (k <= 0) break;
        put(d, (size_t)k);
    }
}

static nghttp2_session_callbacks *CBS;
static nghttp2_option *OPT;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (nghttp2_session_callbacks_new(&CBS) != 0 || nghttp2_option_new(&OPT) != 0) abort();
    /* the client must not refuse what we want to send */
    nghttp2_option_set_no_http_messaging(OPT, 1);
    nghttp2_option_set_no_auto_window_update(OPT, 1);
    nghttp2_option_set_peer_max_concurrent_streams(OPT, 1000);
    gwf_start();
    return 0;
}

/* RFC 9113 3.4 / 4.1: the server's first frame is SETTINGS on stream 0,
 * and what it sends is whole frames. */
static void check_output(const uint8_t *r, size_t got, size_t cap, const uint8_t *in, size_t n)
{
    if (got == 0) return;
    const char *why = NULL;
    if (got < 9 || r[3] != NGHTTP2_SETTINGS || (r[5] & 0x7f) || r[6] || r[7] || r[8] || (r[4] & 1))
        why = "the gateway's first frame is not SETTINGS on stream 0";
    size_t off = 0;
    while (!why && got < cap && off < got) {
        if (got - off < 9) {
            why = "the gateway's output ends inside a frame header";
            break;
        }
        size_t len = ((size_t)r[off] << 16) | ((size_t)r[off + 1] << 8) | r[off + 2];
        if (len > got - off - 9) why = "the gateway's output ends inside a frame";
        off += 9 + len;
    }
    if (why) {
        fz_dump("sent", (const char *)in, n);
        fz_dump("received", (const char *)r, got);
        fz_fail("%s", why);
    }
}

/* A client does not half-close while it waits for answers (the gateway
 * drops open streams at EOF, as HTTP/2 servers do): the exchange waits for
 * the ACK of a final PING (every frame before it was processed) and for
 * END_STREAM or RST_STREAM on every stream opened, or a GOAWAY. */
static const uint8_t PING_DATA[8] = {'g', 'w', 'f', 'u', 'z', 'z', 'P', 'G'};

static bool answered(const uint8_t *r, size_t got, void *ud)
{
    (void)ud;
    bool acked = false;
    uint64_t closed = 0;
    for (size_t off = 0; got - off >= 9;) {
        size_t len = ((size_t)r[off] << 16) | ((size_t)r[off + 1] << 8) | r[off + 2];
        if (len > got - off - 9) break;
        uint8_t type = r[off + 3], fl = r[off + 4];
        int32_t sid =
            (int32_t)((((uint32_t)r[off + 5] & 0x7f) << 24) | ((uint32_t)r[off + 6] << 16) |
                      ((uint32_t)r[off + 7] << 8) | r[off + 8]);
        if (type == NGHTTP2_GOAWAY) return true;
        if (type == NGHTTP2_PING && (fl & NGHTTP2_FLAG_ACK) && len == 8 &&
            memcmp(r + off + 9, PING_DATA, 8) == 0)
            acked = true;
        if ((type == NGHTTP2_RST_STREAM ||
             ((type == NGHTTP2_HEADERS || type == NGHTTP2_DATA) && (fl & NGHTTP2_FLAG_END_STREAM))))
            for (size_t i = 0; i < nopened; i++)
                if (opened[i] == sid) closed |= 1ull << i;
        off += 9 + len;
    }
    if (!acked) return false;
    for (size_t i = 0; i < nopened; i++)
        if (!(closed & (1ull << i))) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[65536];
    struct prog g = {data, size, 0};
    nghttp2_session *s;
    if (nghttp2_session_client_new2(&s, CBS, NULL, OPT) != 0) abort();
    OUT.len = 0;
    last_sid = 0;
    nopened = 0;
    unsigned mode = byte(&g);
    drain(s); /* the client magic comes first, whatever follows */
    op_settings(s, &g, (mode & 1) ? byte(&g) % 4 : 0);
    drain(s);
    while (g.i < g.n) {
        unsigned op = byte(&g) % 10;
        switch (op) {
        case 0: op_request(s, &g); break;
        case 1: {
            uint32_t sid = stream_sel(&g);
            uint8_t fl = (uint8_t)(byte(&g) & (NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_PADDED));
            size_t hi = byte(&g);
            size_t len = ((hi << 8) | byte(&g)) % 1024;
            const uint8_t *d = take(&g, &len);
            drain(s); /* the HEADERS before their DATA */
            frame(NGHTTP2_DATA, fl, sid, d, len);
            break;
        }
        case 2: {
            uint32_t sid = stream_sel(&g);
            uint32_t code = byte(&g) % 16;
            if (nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, (int32_t)sid, code) != 0) {
                uint8_t p[4] = {0, 0, 0, (uint8_t)code};
                drain(s);
                frame(NGHTTP2_RST_STREAM, 0, sid, p, 4);
            }
            break;
        }
        case 3: op_settings(s, &g, byte(&g) % 4); break;
        case 4: {
            size_t len = 8;
            uint8_t p[8] = {0};
            const uint8_t *d = take(&g, &len);
            memcpy(p, d, len);
            drain(s);
            frame(NGHTTP2_PING, (uint8_t)(byte(&g) & 1), 0, p, 8);
            break;
        }
        case 5: {
            uint32_t sid = stream_sel(&g);
            uint32_t inc = u32(&g);
            uint8_t p[4] = {(uint8_t)(inc >> 24), (uint8_t)(inc >> 16), (uint8_t)(inc >> 8),
                            (uint8_t)inc};
            drain(s);
            frame(NGHTTP2_WINDOW_UPDATE, 0, sid, p, 4);
            break;
        }
        case 6: {
            uint32_t sid = stream_sel(&g);
            nghttp2_priority_spec ps;
            nghttp2_priority_spec_init(&ps, (int32_t)stream_sel(&g), (int32_t)byte(&g) + 1,
                                       (int)(byte(&g) & 1));
            if (nghttp2_submit_priority(s, NGHTTP2_FLAG_NONE, (int32_t)sid, &ps) != 0) {
                uint8_t p[5] = {0, 0, 0, 1, 16};
                drain(s);
                frame(NGHTTP2_PRIORITY, 0, sid, p, 5);
            }
            break;
        }
        case 7: {
            uint32_t sid = stream_sel(&g);
            uint8_t p[8] = {(uint8_t)((sid >> 24) & 0x7f),
                            (uint8_t)(sid >> 16),
                            (uint8_t)(sid >> 8),
                            (uint8_t)sid,
                            0,
                            0,
                            0,
                            (uint8_t)(byte(&g) % 16)};
            drain(s);
            frame(NGHTTP2_GOAWAY, 0, 0, p, 8);
            break;
        }
        case 8: {
            size_t len = byte(&g);
            const uint8_t *d = take(&g, &len);
            drain(s);
            put(d, len);
            break;
        }
        case 9: {
            uint8_t type = (uint8_t)byte(&g), fl = (uint8_t)byte(&g);
            uint32_t sid = stream_sel(&g);
            size_t len = byte(&g);
            const uint8_t *d = take(&g, &len);
            drain(s);
            frame(type, fl, sid, d, len);
            break;
        }
        }
        drain(s);
    }
    drain(s);
    nghttp2_session_del(s);
    frame(NGHTTP2_PING, 0, 0, PING_DATA, 8);
    size_t got = gwf_exchange((const uint8_t *)OUT.p, OUT.len, resp, sizeof resp, answered, NULL);
    check_output(resp, got, sizeof resp, (const uint8_t *)OUT.p, OUT.len);
    gwf_check_fds();
    return 0;
}
