/*
 * End-to-end: bodies are streamed — a 64 MiB JSON array passes with the
 * gateway's memory bounded, and a body made invalid at its very end never
 * reaches the provider complete.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void setup(void)
{
    start_shop(&E, "limits:\n  max_body: 128MiB\n");
}

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(stream, .init = setup, .fini = teardown);

/* Writes a compact JSON array of about |target| bytes (kept whole by the
 * "[]": keep route, so the filtered body is the same bytes) and returns
 * its SHA-256 in hex. |tail| is appended after the array (to break it). */
static size_t write_array(const char *path, size_t target, const char *tail, char hex[65])
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    size_t n = 0;
    char buf[256];
    fputc('[', f);
    EVP_DigestUpdate(md, "[", 1);
    n++;
    for (unsigned long i = 0; n < target; i++) {
        int k = snprintf(
            buf, sizeof(buf),
            "%s{\"id\":%lu,\"name\":\"item %lu\",\"tags\":[\"a\",\"b\\u00e9\"],\"n\":-1.5e3}",
            i ? "," : "", i, i);
        fwrite(buf, 1, (size_t)k, f);
        EVP_DigestUpdate(md, buf, (size_t)k);
        n += (size_t)k;
    }
    fputc(']', f);
    EVP_DigestUpdate(md, "]", 1);
    n++;
    if (tail) {
        fputs(tail, f);
        n += strlen(tail);
    }
    fclose(f);
    unsigned char d[32];
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return n;
}

/* Peak resident set of |pid| in KiB (VmHWM). */
static long peak_rss_kib(pid_t pid)
{
    long kib = e2e_proc_kb(pid, "VmHWM");
    cr_assert(kib > 0);
    return kib;
}

Test(stream, a_64_MiB_array_passes_with_bounded_memory)
{
    char hex[65];
    const char *f = e2e_path(&E, "big.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    size_t n = write_array(fp, 64u << 20, NULL, hex);
    long before = peak_rss_kib(E.gw_pid);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_eq((size_t)json_integer_value(json_object_get(j, "body_len")), n);
    cr_expect_str_eq(jstr(j, "body_sha256"), hex);
    json_decref(j);
    long after = peak_rss_kib(E.gw_pid);
    fprintf(stderr, "gateway peak RSS: %ld KiB before, %ld KiB after a %zu-byte body\n", before,
            after, n);
    /* bounded by windows and pipes, not by the body: far below 64 MiB */
    cr_expect_lt(after - before, 16 * 1024, "RSS grew by %ld KiB", after - before);
}

Test(stream, a_body_invalid_at_its_end_never_reaches_the_provider_complete)
{
    char hex[65];
    const char *f = e2e_path(&E, "bad.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    write_array(fp, 8u << 20, "x", hex);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&E, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    expect_error(&r, 400, "invalid_body");
    e2e_resp_free(&r);
    /* the demo partner records a request only once its END_STREAM came */
    struct e2e_resp r2;
    const char *h2[] = {H_PURPOSE, H_CALLER, NULL};
    e2e_curl(&E, "GET", "/shop/v1/ping", h2, NULL, NULL, &r2); /* orders the record file */
    cr_expect_eq(r2.status, 200);
    e2e_resp_free(&r2);
    cr_expect_eq(e2e_count_lines(E.record), 1, "the broken body was recorded upstream");
    json_t *j = recorded(&E, 0);
    cr_assert(j);
    cr_expect_str_eq(jstr(j, "path"), "/v1/ping");
    json_decref(j);
}

/* ------------------------------------------------------ back-pressure */

static struct e2e S;

static void stall_setup(void)
{
    e2e_init(&S);
    /* a provider that stops reading: it never opens a flow-control window */
    const char *const extra[] = {"--take-no-body", NULL};
    e2e_start_partner(&S, "h2c", extra);
    e2e_contract(&S, "shop", SHOP_CONTRACT);
    if (!e2e_start_gateway(&S, "limits:\n  max_body: 128MiB\n  upstream_timeout: 2s\n")) {
        char *err = e2e_read(S.gw_err, NULL);
        cr_assert_fail("gateway did not start: %s", err ? err : "");
    }
}

static void stall_teardown(void)
{
    e2e_fini(&S);
}

/* HTTP/2 flow control end to end: while the provider takes nothing, the
 * gateway reads the caller's body only as far as its windows and pipes
 * allow (a few hundred KiB), not the whole 64 MiB, and answers 504
 * upstream_timeout when upstream_timeout passes. */
Test(stream_stall, a_provider_that_takes_nothing_stops_the_callers_upload, .init = stall_setup,
     .fini = stall_teardown)
{
    char hex[65];
    const char *f = e2e_path(&S, "big.json");
    char fp[512];
    snprintf(fp, sizeof(fp), "%s", f);
    size_t n = write_array(fp, 64u << 20, NULL, hex);
    long before = peak_rss_kib(S.gw_pid);
    const char *h[] = {H_PURPOSE, H_CALLER, H_JSON, NULL};
    struct e2e_resp r;
    e2e_curl(&S, "POST", "/shop/v1/bulk", h, NULL, fp, &r);
    expect_error(&r, 504, "upstream_timeout");
    e2e_resp_free(&r);
    long after = peak_rss_kib(S.gw_pid);
    /* the audit record says how much of the body the gateway read */
    cr_assert(e2e_wait_file(S.audit, 10000));
    size_t len = 0;
    char *log = NULL;
    for (int i = 0; i < 100 && (!log || !strchr(log, '\n')); i++) {
        free(log);
        e2e_wait_file(S.audit, 100);
        log = e2e_read(S.audit, &len);
    }
    cr_assert(log && strchr(log, '\n'), "no audit record");
    json_t *j = json_loads(log, JSON_DISABLE_EOF_CHECK, NULL);
    free(log);
    cr_assert(j);
    json_int_t bytes_in = json_integer_value(json_object_get(j, "bytes_in"));
    json_int_t bytes_out = json_integer_value(json_object_get(j, "bytes_out"));
    json_decref(j);
    fprintf(stderr, "body %zu bytes: gateway read %lld, sent %lld; peak RSS %ld -> %ld KiB\n", n,
            (long long)bytes_in, (long long)bytes_out, before, after);
    cr_expect_gt(bytes_in, 0);
    cr_expect_lt(bytes_in, 8 << 20, "read %lld bytes of a body nobody takes", (long long)bytes_in);
    /* the provider's initial stream window (the partner's SETTINGS: 1 MiB),
     * no more */
    cr_expect_leq(bytes_out, 1 << 20, "%lld bytes sent past the provider's window",
                  (long long)bytes_out);
    cr_expect_lt(after - before, 16 * 1024, "RSS grew by %ld KiB", after - before);
    cr_expect_eq(e2e_count_lines(S.record), 0);
}
