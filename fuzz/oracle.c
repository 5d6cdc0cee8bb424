/* Reference implementations for the fuzz targets; see oracle.h. */
#include "fuzz/oracle.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the valid UTF-8 sequence at |p| (RFC 3629), 0 if invalid. */
static size_t ou_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return (n >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
        if (c == 0xe0 && p[1] < 0xa0) return 0;  /* overlong */
        if (c == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90) return 0;
        if (c == 0xf4 && p[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

bool ou_valid(const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t k = ou_seq(u + i, n - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

size_t ou_count(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)p[i] & 0xc0) != 0x80) c++;
    return c;
}

size_t ou_offset(const char *p, size_t n, size_t k)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)p[i] & 0xc0) != 0x80) {
            if (c == k) return i;
            c++;
        }
    }
    return n;
}

/* --------------------------------------------------------------- JSON DOM */

struct ojp {
    struct ojdoc *d;
    const char *p;
    size_t n, i;
    uint32_t depth;
};

static void oj_ws(struct ojp *s)
{
    if (s->d->no_ws) return;
    while (s->i < s->n &&
           (s->p[s->i] == ' ' || s->p[s->i] == '\t' || s->p[s->i] == '\n' || s->p[s->i] == '\r'))
        s->i++;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(const char *p, size_t n, size_t i, unsigned *out)
{
    if (i + 4 > n) return false;
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexv(p[i + k]);
        if (h < 0) return false;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

static bool oj_string(struct ojp *s)
{
    const unsigned char *u = (const unsigned char *)s->p;
    if (s->i >= s->n || s->p[s->i] != '"') return false;
    s->i++;
    while (s->i < s->n) {
        unsigned c = u[s->i];
        if (c == '"') {
            s->i++;
            return true;
        }
        if (c < 0x20) return false;
        if (c == '\\') {
            if (s->i + 1 >= s->n) return false;
            char e = s->p[s->i + 1];
            if (e == 'u') {
                unsigned v;
                if (!hex4(s->p, s->n, s->i + 2, &v)) return false;
                s->i += 6;
                if (v >= 0xdc00 && v <= 0xdfff) return false;
                if (v >= 0xd800 && v <= 0xdbff) {
                    unsigned w;
                    if (s->i + 1 >= s->n || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u' ||
                        !hex4(s->p, s->n, s->i + 2, &w) || w < 0xdc00 || w > 0xdfff)
                        return false;
                    s->i += 6;
                }
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return false;
            s->i += 2;
            continue;
        }
        size_t k = ou_seq(u + s->i, s->n - s->i);
        if (!k) return false;
        s->i += k;
    }
    return false;
}

static bool isdig(char c)
{
    return c >= '0' && c <= '9';
}

static bool oj_number(struct ojp *s)
{
    size_t i = s->i;
    if (i < s->n && s->p[i] == '-') i++;
    if (i >= s->n) return false;
    if (s->p[i] == '0') {
        i++;
    } else if (s->p[i] >= '1' && s->p[i] <= '9') {
        while (i < s->n && isdig(s->p[i]))
            i++;
    } else {
        return false;
    }
    if (i < s->n && s->p[i] == '.') {
        i++;
        if (i >= s->n || !isdig(s->p[i])) return false;
        while (i < s->n && isdig(s->p[i]))
            i++;
    }
    if (i < s->n && (s->p[i] == 'e' || s->p[i] == 'E')) {
        i++;
        if (i < s->n && (s->p[i] == '+' || s->p[i] == '-')) i++;
        if (i >= s->n || !isdig(s->p[i])) return false;
        while (i < s->n && isdig(s->p[i]))
            i++;
    }
    s->i = i;
    return true;
}

static uint32_t oj_alloc(struct ojdoc *d)
{
    if (d->used >= d->cap) return 0; /* cannot happen: cap is input length + 2 */
    uint32_t k = d->used++;
    memset(&d->pool[k], 0, sizeof d->pool[k]);
    return k;
}

static uint32_t oj_value(struct ojp *s);

static uint32_t oj_container(struct ojp *s, char kind)
{
    struct ojdoc *d = s->d;
    if (++s->depth > d->max_depth) return 0;
    uint32_t me = oj_alloc(d);
    if (!me) return 0;
    d->pool[me].kind = kind;
    d->pool[me].raw = s->p + s->i;
    s->i++; /* '{' or '[' */
    oj_ws(s);
    char close = kind == OJ_OBJ ? '}' : ']';
    uint32_t last = 0;
    if (s->i < s->n && s->p[s->i] == close) {
        s->i++;
        goto done;
    }
    for (;;) {
        const char *name = NULL;
        size_t namelen = 0;
        if (kind == OJ_OBJ) {
            size_t st = s->i;
            if (!oj_string(s)) return 0;
            name = s->p + st;
            namelen = s->i - st;
            oj_ws(s);
            if (s->i >= s->n || s->p[s->i] != ':') return 0;
            s->i++;
            oj_ws(s);
        }
        uint32_t v = oj_value(s);
        if (!v) return 0;
        d->pool[v].name = name;
        d->pool[v].namelen = namelen;
        if (last)
            d->pool[last].next = v;
        else
            d->pool[me].first = v;
        last = v;
        d->pool[me].count++;
        oj_ws(s);
        if (s->i >= s->n) return 0;
        if (s->p[s->i] == ',') {
            s->i++;
            oj_ws(s);
            continue;
        }
        if (s->p[s->i] == close) {
            s->i++;
            break;
        }
        return 0;
    }
done:
    d->pool[me].rawlen = (size_t)(s->p + s->i - d->pool[me].raw);
    s->depth--;
    return me;
}

static uint32_t oj_value(struct ojp *s)
{
    if (s->i >= s->n) return 0;
    char c = s->p[s->i];
    if (c == '{') return oj_container(s, OJ_OBJ);
    if (c == '[') return oj_container(s, OJ_ARR);
    size_t st = s->i;
    char kind;
    if (c == '"') {
        if (!oj_string(s)) return 0;
        kind = OJ_STR;
    } else if (c == '-' || isdig(c)) {
        if (!oj_number(s)) return 0;
        kind = OJ_NUM;
    } else {
        static const char *const lits[] = {"true", "false", "null"};
        kind = 0;
        for (size_t k = 0; k < 3; k++) {
            size_t l = strlen(lits[k]);
            if (s->n - s->i >= l && memcmp(s->p + s->i, lits[k], l) == 0) {
                s->i += l;
                kind = OJ_LIT;
                break;
            }
        }
        if (!kind) return 0;
    }
    uint32_t me = oj_alloc(s->d);
    if (!me) return 0;
    s->d->pool[me].kind = kind;
    s->d->pool[me].raw = s->p + st;
    s->d->pool[me].rawlen = s->i - st;
    return me;
}

bool oj_parse(struct ojdoc *d, const char *p, size_t n, uint32_t max_depth, bool no_ws)
{
    memset(d, 0, sizeof *d);
    d->cap = (uint32_t)n + 2;
    d->pool = calloc(d->cap, sizeof *d->pool);
    if (!d->pool) abort();
    d->used = 1;
    d->max_depth = max_depth;
    d->no_ws = no_ws;
    struct ojp s = {.d = d, .p = p, .n = n};
    oj_ws(&s);
    d->root = oj_value(&s);
    if (!d->root) return false;
    oj_ws(&s);
    return s.i == n;
}

void ojdoc_free(struct ojdoc *d)
{
    free(d->pool);
    d->pool = NULL;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t oj_unescape(const char *tok, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 1; i + 1 < len;) {
        if (tok[i] != '\\') {
            out[o++] = tok[i++];
            continue;
        }
        char e = tok[i + 1];
        unsigned v;
        switch (e) {
        case 'b':
            out[o++] = '\b';
            i += 2;
            break;
        case 'f':
            out[o++] = '\f';
            i += 2;
            break;
        case 'n':
            out[o++] = '\n';
            i += 2;
            break;
        case 'r':
            out[o++] = '\r';
            i += 2;
            break;
        case 't':
            out[o++] = '\t';
            i += 2;
            break;
        case 'u':
            hex4(tok, len, i + 2, &v);
            i += 6;
            if (v >= 0xd800 && v <= 0xdbff) {
                unsigned w = 0xdc00;
                hex4(tok, len, i + 2, &w);
                i += 6;
                v = 0x10000 + ((v - 0xd800) << 10) + (w - 0xdc00);
            }
            o += put_utf8(out + o, v);
            break;
        default:
            out[o++] = e;
            i += 2;
            break;
        }
    }
    return o;
}

bool oj_escapes_minimal(const char *tok, size_t len)
{
    for (size_t i = 1; i + 1 < len; i++) {
        if (tok[i] != '\\') continue;
        char e = tok[i + 1];
        if (e == '/') return false;
        if (e == 'u') {
            unsigned v = 0;
            hex4(tok, len, i + 2, &v);
            if (v >= 0x20) return false;
            i += 5;
        } else {
            i++;
        }
    }
    return true;
}

bool oj_equal_raw(const struct ojdoc *a, uint32_t ia, const struct ojdoc *b, uint32_t ib)
{
    const struct ojnode *x = oj_node(a, ia), *y = oj_node(b, ib);
    if (x->kind != y->kind) return false;
    if (x->kind != OJ_OBJ && x->kind != OJ_ARR)
        return x->rawlen == y->rawlen && memcmp(x->raw, y->raw, x->rawlen) == 0;
    if (x->count != y->count) return false;
    for (uint32_t i = x->first, j = y->first; i; i = a->pool[i].next, j = b->pool[j].next) {
        if (x->kind == OJ_OBJ &&
            (a->pool[i].namelen != b->pool[j].namelen ||
             memcmp(a->pool[i].name, b->pool[j].name, a->pool[i].namelen) != 0))
            return false;
        if (!oj_equal_raw(a, i, b, j)) return false;
    }
    return true;
}

/* ------------------------------------------------------------------ rules */

static struct onode *onode_new(void)
{
    struct onode *n = calloc(1, sizeof *n);
    if (!n) abort();
    return n;
}

static struct onode *otrie_named(struct onode *n, const char *name, size_t len)
{
    for (struct onode *k = n->kids; k; k = k->sib)
        if (k->namelen == len && memcmp(k->name, name, len) == 0) return k;
    struct onode *k = onode_new();
    k->name = malloc(len + 1);
    if (!k->name) abort();
    memcpy(k->name, name, len);
    k->name[len] = 0;
    k->namelen = len;
    k->sib = n->kids;
    n->kids = k;
    return k;
}

bool otrie_add(struct onode *root, const char *path, const struct flt_action *act)
{
    size_t n = strlen(path), i = 0;
    struct onode *cur = root;
    char name[256];
    if (i < n && path[i] == '$') {
        i++;
        if (i < n && path[i] == '.') i++;
    }
    bool first = true;
    while (i < n) {
        if (path[i] == '[') {
            if (i + 1 >= n || path[i + 1] != ']') return false;
            if (!cur->elem) cur->elem = onode_new();
            cur = cur->elem;
            i += 2;
            first = false;
            continue;
        }
        if (!first) {
            if (path[i] != '.') return false;
            i++;
        }
        first = false;
        size_t nl = 0;
        if (i < n && path[i] == '"') {
            i++;
            while (i < n && path[i] != '"') {
                if (path[i] == '\\' && i + 1 < n) i++;
                if (nl >= sizeof name) return false;
                name[nl++] = path[i++];
            }
            if (i >= n) return false;
            i++;
            cur = otrie_named(cur, name, nl);
        } else if (i < n && path[i] == '*') {
            i++;
            if (!cur->any) cur->any = onode_new();
            cur = cur->any;
        } else {
            while (i < n && !strchr(".[]*\"$", path[i])) {
                if (nl >= sizeof name) return false;
                name[nl++] = path[i++];
            }
            if (!nl) return false;
            cur = otrie_named(cur, name, nl);
        }
    }
    cur->has_action = true;
    cur->act = *act;
    return true;
}

void otrie_free(struct onode *root)
{
    if (!root) return;
    struct onode *k = root->kids;
    while (k) {
        struct onode *s = k->sib;
        otrie_free(k);
        k = s;
    }
    otrie_free(root->any);
    otrie_free(root->elem);
    free(root->name);
    free(root);
}

const struct onode *otrie_member(const struct onode *n, const char *name, size_t len)
{
    /* README "Filtering behaviour beyond SPEC": a name longer than
     * FLT_NAME_MAX bytes (unescaped / decoded) matches no rule, not even
     * `*` (json.c since ecbaa72; form.c) */
    if (len > FLT_NAME_MAX) return NULL;
    for (const struct onode *k = n->kids; k; k = k->sib)
        if (k->namelen == len && memcmp(k->name, name, len) == 0) return k;
    return n->any;
}

/* ------------------------------------------------------------- transforms */

static bool dig_at(const char *v, size_t n, size_t i, size_t k)
{
    for (size_t j = i; j < i + k; j++)
        if (j >= n || !isdig(v[j])) return false;
    return true;
}

static unsigned num2(const char *v, size_t i)
{
    return (unsigned)(v[i] - '0') * 10u + (unsigned)(v[i + 1] - '0');
}

enum otri o_year_readable(const char *v, size_t n)
{
    if (n < 10 || !dig_at(v, n, 0, 4) || v[4] != '-' || !dig_at(v, n, 5, 2) || v[7] != '-' ||
        !dig_at(v, n, 8, 2))
        return O_NO;
    unsigned mo = num2(v, 5), d = num2(v, 8);
    bool date_ok = mo >= 1 && mo <= 12 && d >= 1 && d <= 28;
    if (n == 10) return date_ok ? O_YES : O_MAYBE;
    if (v[10] != 'T' && v[10] != 't' && v[10] != ' ') return O_NO;
    /* a time follows: exact rules (zone optional? ranges?) are left open */
    if (n < 16 || !dig_at(v, n, 11, 2) || v[13] != ':' || !dig_at(v, n, 14, 2)) return O_NO;
    for (size_t i = 16; i < n; i++)
        if (!isdig(v[i]) && !strchr(":.Zz+-", v[i])) return O_NO;
    return O_MAYBE;
}

const char *o_check_transform(const struct flt_action *act, const uint8_t *key, size_t keylen,
                              const char *in, size_t inlen, const char *out, size_t outlen)
{
    size_t L = ou_count(in, inlen);
    switch (act->kind) {
    case FLT_ACT_HASH: {
        unsigned char md[32];
        unsigned mdlen = 0;
        HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)in, inlen, md, &mdlen);
        char hex[64];
        for (size_t i = 0; i < 32; i++) {
            hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
            hex[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
        }
        if (outlen != 64 || memcmp(out, hex, 64) != 0)
            return "hash: not the HMAC-SHA-256 hex of the value";
        return NULL;
    }
    case FLT_ACT_TRUNCATE: {
        size_t end = ou_offset(in, inlen, act->n);
        if (outlen != end || memcmp(in, out, end) != 0)
            return "truncate: not the first N code points";
        return NULL;
    }
    case FLT_ACT_MASK: {
        if (ou_count(out, outlen) != L) return "mask: code point count changed";
        if (L <= act->n) {
            if (outlen != inlen || memcmp(in, out, inlen) != 0)
                return "mask: value shorter than N not kept as is";
            return NULL;
        }
        size_t stars = L - act->n;
        if (act->mask_keep_last) {
            size_t off = ou_offset(in, inlen, stars);
            if (outlen != stars + (inlen - off)) return "mask keep_last: wrong length";
            for (size_t i = 0; i < stars; i++)
                if (out[i] != '*') return "mask keep_last: prefix not '*'";
            if (memcmp(out + stars, in + off, inlen - off) != 0)
                return "mask keep_last: kept tail differs";
        } else {
            size_t off = ou_offset(in, inlen, act->n);
            if (outlen != off + stars) return "mask keep_first: wrong length";
            if (memcmp(out, in, off) != 0) return "mask keep_first: kept head differs";
            for (size_t i = off; i < outlen; i++)
                if (out[i] != '*') return "mask keep_first: suffix not '*'";
        }
        return NULL;
    }
    case FLT_ACT_YEAR:
        if (o_year_readable(in, inlen) == O_NO) return "year: emitted for an unreadable value";
        if (outlen != 4 || memcmp(out, in, 4) != 0) return "year: not the 4-digit year";
        return NULL;
    default: return "not a transform";
    }
}
