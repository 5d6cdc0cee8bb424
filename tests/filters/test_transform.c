/* filters/transform.c: HMAC against RFC 4231, mask/truncate/year. */
#include "tests/filters/helpers.h"

static char *run_xform(struct flt_action a, const char *in, size_t chunk, int *rc)
{
    struct flt_hmac_key key;
    flt_hmac_key_init(&key, (const uint8_t *)"test-key", 8);
    struct flt_xform x;
    struct outbuf o = {0};
    outbuf_sink(&o, "", 0);
    flt_xform_begin(&x, &a, &key);
    size_t len = strlen(in);
    if (!chunk) chunk = len ? len : 1;
    for (size_t i = 0; i < len; i += chunk)
        cr_assert_eq(flt_xform_feed(&x, in + i, len - i < chunk ? len - i : chunk, outbuf_sink, &o),
                     0);
    *rc = flt_xform_end(&x, outbuf_sink, &o);
    return o.p;
}

Test(transform, hmac_rfc4231_case2)
{
    struct flt_hmac_key k;
    char hex[65] = {0};
    flt_hmac_key_init(&k, (const uint8_t *)"Jefe", 4);
    const char *msg = "what do ya want for nothing?";
    flt_hmac_hex(&k, msg, strlen(msg), hex);
    cr_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Test(transform, hmac_long_key_rfc4231_case6)
{
    uint8_t key[131];
    memset(key, 0xaa, sizeof key);
    struct flt_hmac_key k;
    char hex[65] = {0};
    flt_hmac_key_init(&k, key, sizeof key);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    flt_hmac_hex(&k, msg, strlen(msg), hex);
    cr_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

Test(transform, streaming_hash_equals_oneshot)
{
    struct flt_action a = {FLT_ACT_HASH, 0, false};
    int rc;
    char *one = run_xform(a, "ann@example.com", 0, &rc);
    cr_assert_eq(rc, 0);
    char *bytes = run_xform(a, "ann@example.com", 1, &rc);
    cr_assert_str_eq(one, bytes);
    cr_assert_str_eq(one, "33a0ba430509b0761c9b5d405cc43d50a8be49efe0277aead8a240583b5601fa");
    free(one);
    free(bytes);
}

struct xcase {
    const char *act, *in, *out; /* out NULL: unreadable */
};

static const struct xcase xcases[] = {
    {"mask_last:4", "07700900123", "*******0123"},
    {"mask_last:0", "abc", "***"},
    {"mask_last:4", "", ""},
    {"mask_last:2", "h\xc3\xa9llo\xe2\x82\xac", "****o\xe2\x82\xac"},
    {"mask_first:1", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80x", "\xf0\x9f\x98\x80**"},
    {"mask_first:10", "short", "short"},
    {"truncate:0", "abc", ""},
    {"truncate:5", "SW1A 1AA", "SW1A "},
    {"truncate:1", "\xe2\x82\xac\xe2\x82\xac", "\xe2\x82\xac"},
    {"year", "1990-05-17", "1990"},
    {"year", "2024-02-29", "2024"},
    {"year", "2023-02-29", NULL},
    {"year", "1900-02-29", NULL},
    {"year", "2000-02-29", "2000"},
    {"year", "1990-13-01", NULL},
    {"year", "1990-00-01", NULL},
    {"year", "1990-05-17T23:59", NULL},
    {"year", "1990-05-17T23:59:60Z", "1990"},
    {"year", "1990-05-17T23:59:60", NULL},
    {"year", "1990-05-17T24:00", NULL},
    {"year", "1990-05-17T10:20:30.5Z", "1990"},
    {"year", "1990-05-17T10:20:30.Z", NULL},
    {"year", "1990-05-17T10:20-05:30", "1990"},
    {"year", "1990-05-17T10:20+0530", NULL},
    {"year", "1990-05-17Z", NULL},
    {"year", "1990-05-17T", NULL},
    {"year", "1990-05-17 10:20", NULL},
    {"year", "1990-5-17", NULL},
    {"year", "19900517", NULL},
    {"year", "1990-05-17x", NULL},
    {"year", "", NULL},
    {"year", "1990-05-17T10:20Zx", NULL},
};

Test(transform, table)
{
    for (size_t i = 0; i < sizeof xcases / sizeof xcases[0]; i++) {
        const struct xcase *c = &xcases[i];
        for (size_t chunk = 0; chunk <= 1; chunk++) {
            int rc;
            char *out = run_xform(parse_action(c->act), c->in, chunk, &rc);
            if (c->out) {
                cr_assert_eq(rc, 0, "%s %s", c->act, c->in);
                cr_assert_str_eq(out, c->out, "%s %s", c->act, c->in);
            } else {
                cr_assert_eq(rc, 1, "%s %s: expected unreadable", c->act, c->in);
                cr_assert_str_eq(out, "", "year emits nothing before the end");
            }
            free(out);
        }
    }
}

Test(transform, hash_without_key_is_unreadable)
{
    struct flt_action a = {FLT_ACT_HASH, 0, false};
    struct flt_xform x;
    struct outbuf o = {0};
    flt_xform_begin(&x, &a, NULL);
    cr_assert_eq(flt_xform_feed(&x, "v", 1, outbuf_sink, &o), 0);
    cr_assert_eq(flt_xform_end(&x, outbuf_sink, &o), 1);
    cr_assert_null(o.p, "nothing emitted");
}
