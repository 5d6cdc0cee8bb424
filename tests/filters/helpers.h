/* Test helpers for filters/: build rules from "path=action" specs and run
 * documents through the JSON filter. */
#ifndef PRIVGATE_TEST_FILTERS_HELPERS_H
#define PRIVGATE_TEST_FILTERS_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/filters.h"

struct outbuf {
    char *p;
    size_t len, cap;
};

static inline int outbuf_sink(void *ud, const char *p, size_t n)
{
    struct outbuf *o = ud;
    if (o->len + n + 1 > o->cap) {
        size_t cap = (o->len + n + 1) * 2;
        char *q = realloc(o->p, cap);
        if (!q) return -1;
        o->p = q;
        o->cap = cap;
    }
    memcpy(o->p + o->len, p, n);
    o->len += n;
    o->p[o->len] = '\0';
    return 0;
}

/* Parses "keep", "hash", "mask_last:4", "mask_first:2", "truncate:3", "year". */
static inline struct flt_action parse_action(const char *s)
{
    struct flt_action a = {FLT_ACT_KEEP, 0, false};
    if (!strcmp(s, "keep"))
        a.kind = FLT_ACT_KEEP;
    else if (!strcmp(s, "hash"))
        a.kind = FLT_ACT_HASH;
    else if (!strncmp(s, "mask_last:", 10)) {
        a.kind = FLT_ACT_MASK;
        a.mask_keep_last = true;
        a.n = (uint32_t)strtoul(s + 10, NULL, 10);
    } else if (!strncmp(s, "mask_first:", 11)) {
        a.kind = FLT_ACT_MASK;
        a.n = (uint32_t)strtoul(s + 11, NULL, 10);
    } else if (!strncmp(s, "truncate:", 9)) {
        a.kind = FLT_ACT_TRUNCATE;
        a.n = (uint32_t)strtoul(s + 9, NULL, 10);
    } else if (!strcmp(s, "year"))
        a.kind = FLT_ACT_YEAR;
    else
        cr_assert_fail("bad action %s", s);
    return a;
}

/* specs: NULL-terminated array of "path=action". */
static inline struct flt_rules *make_rules(const char *const *specs)
{
    struct flt_rules *r = flt_rules_new();
    char err[256];
    cr_assert_not_null(r);
    for (size_t i = 0; specs && specs[i]; i++) {
        const char *eq = strrchr(specs[i], '=');
        cr_assert_not_null(eq, "spec %s", specs[i]);
        struct flt_action a = parse_action(eq + 1);
        int rc = flt_rules_add(r, specs[i], (size_t)(eq - specs[i]), &a, err, sizeof err);
        cr_assert_eq(rc, 0, "add %s: %s", specs[i], err);
    }
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0, "compile: %s", err);
    return r;
}

static const char test_hmac_key[] = "test-key";

struct run_result {
    int rc;
    char *out;
    struct flt_report report;
    char unlisted[300];
};

/* Runs |doc| through |rules| in chunks of |chunk| bytes (0 = whole). */
static inline void run_json(struct flt_rules *rules, const char *doc, size_t len, size_t chunk,
                            bool reject, struct run_result *res)
{
    static struct flt_hmac_key key;
    flt_hmac_key_init(&key, (const uint8_t *)test_hmac_key, strlen(test_hmac_key));
    struct flt_json *f = flt_json_new(64);
    cr_assert_not_null(f);
    struct outbuf o = {0};
    outbuf_sink(&o, "", 0);
    struct flt_json_config cfg = {rules, &key, 64, reject, "body"};
    flt_report_init(&res->report);
    flt_json_reset(f, &cfg, outbuf_sink, &o, &res->report);
    int rc = 0;
    if (chunk == 0) chunk = len ? len : 1;
    for (size_t i = 0; i < len && rc == 0; i += chunk)
        rc = flt_json_feed(f, doc + i, len - i < chunk ? len - i : chunk);
    if (rc == 0) rc = flt_json_finish(f);
    res->rc = rc;
    res->out = o.p;
    snprintf(res->unlisted, sizeof res->unlisted, "%s", flt_json_unlisted_path(f));
    flt_json_del(f);
}

/* Joins a path list as "a,b,c". */
static inline void join_paths(const struct flt_pathlist *l, char *buf, size_t cap)
{
    size_t w = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < l->n; i++) {
        struct flt_str s = flt_pathlist_get(l, i);
        w += (size_t)snprintf(buf + w, w < cap ? cap - w : 0, "%s%.*s", i ? "," : "", (int)s.len,
                              s.p);
    }
}

#endif
