#include "jt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jt_buf_put(struct jt_buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jt_buf_putc(struct jt_buf *b, char c)
{
    jt_buf_put(b, &c, 1);
}

void jt_buf_puts(struct jt_buf *b, const char *s)
{
    jt_buf_put(b, s, strlen(s));
}

void jt_buf_free(struct jt_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int jt_buf_sink(void *ud, const char *p, size_t n)
{
    jt_buf_put(ud, p, n);
    return 0;
}

struct flt_rules *jt_rules(const struct jt_rule *rs, char *err, size_t errlen)
{
    struct flt_rules *r = flt_rules_new();
    if (!r) {
        snprintf(err, errlen, "flt_rules_new: NULL");
        return NULL;
    }
    for (; rs->path; rs++) {
        struct flt_action a = {.kind = rs->kind, .n = rs->n, .mask_keep_last = rs->last};
        char e[256] = "";
        if (flt_rules_add(r, rs->path, strlen(rs->path), &a, e, sizeof e) != 0) {
            snprintf(err, errlen, "add %s: %s", rs->path, e);
            flt_rules_unref(r);
            return NULL;
        }
    }
    char e[256] = "";
    if (flt_rules_compile(r, e, sizeof e) != 0) {
        snprintf(err, errlen, "compile: %s", e);
        flt_rules_unref(r);
        return NULL;
    }
    return r;
}

const char jt_key_bytes[] = "privgate-json-suite-key";
const size_t jt_key_len = sizeof jt_key_bytes - 1;

const struct flt_hmac_key *jt_key(void)
{
    static struct flt_hmac_key k;
    static bool done;
    if (!done) {
        flt_hmac_key_init(&k, (const uint8_t *)jt_key_bytes, jt_key_len);
        done = true;
    }
    return &k;
}

void jt_hmac_ref(const char *p, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), jt_key_bytes, (int)jt_key_len, (const unsigned char *)p, n, md, &mdlen);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

void jt_report_text(const struct flt_report *r, struct jt_buf *out)
{
    const struct flt_pathlist *ls[2] = {&r->removed, &r->transformed};
    const char *names[2] = {"removed", "transformed"};
    for (int k = 0; k < 2; k++) {
        char line[64];
        snprintf(line, sizeof line, "%s n=%u more=%u total=%u\n", names[k], ls[k]->n, ls[k]->more,
                 ls[k]->total);
        jt_buf_puts(out, line);
        for (uint32_t i = 0; i < ls[k]->n; i++) {
            struct flt_str s = flt_pathlist_get(ls[k], i);
            jt_buf_puts(out, "  ");
            jt_buf_put(out, s.p, s.len);
            jt_buf_putc(out, '\n');
        }
    }
}

static struct flt_report *report_storage(void)
{
    static struct flt_report *r;
    if (!r) {
        r = malloc(sizeof *r);
        if (!r) abort();
    }
    return r;
}

void jt_run(struct flt_json *f, const struct flt_json_config *cfg, const char *doc, size_t len,
            enum jt_chunking ch, size_t split, struct jt_result *res)
{
    struct flt_report *rep = report_storage();
    memset(res, 0, sizeof *res);
    flt_report_init(rep);
    flt_json_reset(f, cfg, jt_buf_sink, &res->out, rep);
    int rc = 0;
    size_t pos = 0;
    switch (ch) {
    case JT_WHOLE:
        rc = flt_json_feed(f, doc, len);
        pos = len;
        break;
    case JT_SPLIT:
        rc = flt_json_feed(f, doc, split);
        if (rc == 0) rc = flt_json_feed(f, doc + split, len - split);
        pos = len;
        break;
    case JT_BYTES:
        for (pos = 0; pos < len && rc == 0; pos++)
            rc = flt_json_feed(f, doc + pos, 1);
        break;
    case JT_STRIDE:
        for (pos = 0; pos < len && rc == 0; pos += split) {
            size_t n = len - pos < split ? len - pos : split;
            rc = flt_json_feed(f, doc + pos, n);
        }
        break;
    }
    if (rc > 0) /* not allowed by the header: make it visible */
        rc = 1000 + rc;
    if (rc == 0) {
        rc = flt_json_finish(f);
        res->at_finish = rc != 0;
    }
    res->rc = rc;
    if (rc < 0) res->err_off = flt_json_error_offset(f);
    if (res->out.p == NULL) jt_buf_put(&res->out, "", 0);
    jt_report_text(rep, &res->report);
}

void jt_result_free(struct jt_result *r)
{
    jt_buf_free(&r->out);
    jt_buf_free(&r->report);
}

void jt_strip_ws(const char *in, size_t len, struct jt_buf *out)
{
    bool str = false, esc = false;
    jt_buf_put(out, "", 0);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
            jt_buf_putc(out, c);
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
        if (c == '"') str = true;
        jt_buf_putc(out, c);
    }
}

bool jt_read_file(const char *path, struct jt_buf *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    char tmp[65536];
    size_t n;
    jt_buf_put(out, "", 0);
    while ((n = fread(tmp, 1, sizeof tmp, fp)) > 0)
        jt_buf_put(out, tmp, n);
    bool ok = !ferror(fp);
    fclose(fp);
    return ok;
}

const char *jt_suite_dir(void)
{
    static char dir[4096];
    const char *shared = getenv("PRIVGATE_SHARED");
    if (!shared) shared = "../shared";
    snprintf(dir, sizeof dir, "%s/corpora/jsontestsuite/test_parsing", shared);
    return dir;
}

const char *jt_show(const char *p, size_t n)
{
    static char ring[4][2048];
    static int next;
    char *o = ring[next];
    next = (next + 1) % 4;
    size_t w = 0;
    for (size_t i = 0; i < n && w + 8 < sizeof ring[0]; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f) {
            o[w++] = (char)c;
        } else {
            w += (size_t)snprintf(o + w, sizeof ring[0] - w, "\\x%02x", c);
        }
    }
    if (w + 8 >= sizeof ring[0]) w += (size_t)snprintf(o + w, sizeof ring[0] - w, "...");
    o[w] = '\0';
    return o;
}
