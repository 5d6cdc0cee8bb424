/*
 * libFuzzer target for the contract loader (contracts/, SPEC 4).
 *
 * The input is written to one file per process (<tmpdir>/contract.yaml,
 * next to secrets/hmac and secrets/token that seeds may name) and loaded
 * with ctr_set_load_contracts. Properties:
 *  - no crash, no sanitizer report, no leak (LeakSanitizer, per input);
 *  - NULL exactly when at least one error was reported through the diag;
 *  - every diagnostic has a file, line/column >= 0 and a bounded message
 *    that never contains a secret file's content;
 *  - a loaded set survives running each contract's `tests:` and one
 *    request per route through ctr_run, then unrefs cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contracts/contracts.h"
#include "fuzz/common.h"

#define SECRET_TOKEN "Bearer fuzz-secret-token-7f3a9c"
#define SECRET_HMAC "fuzz-secret-hmac-key-51e2b0"

static const uint8_t *cur_in; /* the input being loaded */
static size_t cur_len;
static bool verbose; /* FUZZ_VERBOSE=1: print diagnostics and load results */
static char dir[64];
static char file[128], f_hmac[128], f_token[128], d_secrets[128];

static void cleanup(void)
{
    unlink(file);
    unlink(f_hmac);
    unlink(f_token);
    rmdir(d_secrets);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/privgate-fuzz-contract-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(file, sizeof file, "%s/contract.yaml", dir);
    snprintf(d_secrets, sizeof d_secrets, "%s/secrets", dir);
    snprintf(f_hmac, sizeof f_hmac, "%s/secrets/hmac", dir);
    snprintf(f_token, sizeof f_token, "%s/secrets/token", dir);
    if (mkdir(d_secrets, 0700) != 0) {
        perror("mkdir");
        abort();
    }
    fz_write_file(f_hmac, SECRET_HMAC, strlen(SECRET_HMAC));
    fz_write_file(f_token, SECRET_TOKEN, strlen(SECRET_TOKEN));
    atexit(cleanup);
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    return 0;
}

static void emit(void *ud, const char *f, int line, int col, const char *msg)
{
    (void)ud;
    if (verbose)
        fprintf(stderr, "diag: %s:%d:%d: %s\n", f ? f : "(null)", line, col, msg ? msg : "(null)");
    if (!f || !msg) fz_fail("diag: NULL file or message");
    if (line < 0 || col < 0) fz_fail("diag: negative line/column %d:%d", line, col);
    size_t ml = strnlen(msg, 1 << 16);
    if (ml == 1 << 16) fz_fail("diag: message longer than 64 KiB or not terminated");
    if (ml == 0) fz_fail("diag: empty message");
    /* a secret's content in a message is a leak, unless the contract itself
     * spells it (libFuzzer learns the string from this very comparison) */
    if ((strstr(msg, SECRET_TOKEN) &&
         !memmem(cur_in, cur_len, SECRET_TOKEN, strlen(SECRET_TOKEN))) ||
        (strstr(msg, SECRET_HMAC) && !memmem(cur_in, cur_len, SECRET_HMAC, strlen(SECRET_HMAC))))
        fz_fail("diag: message contains a secret file's content: %s", msg);
    if (strnlen(f, 4096) == 4096) fz_fail("diag: file name not terminated");
}

/* One request per route: method, path with {params} and '*' filled in,
 * the contract's first purpose and caller, a small JSON body. */
static void drive(const struct ctr_set *s, const struct ctr_contract *c)
{
    for (size_t ri = 0; ri < c->nroutes && ri < 32; ri++) {
        const struct ctr_route *rt = &c->routes[ri];
        char path[512];
        size_t pl = 0;
        if (!rt->path || !rt->method) fz_fail("route %zu without method or path", ri);
        for (const char *q = rt->path; *q && pl + 8 < sizeof path; q++) {
            if (*q == '{') {
                const char *e = strchr(q, '}');
                if (!e) break;
                memcpy(path + pl, "p1", 2);
                pl += 2;
                q = e;
            } else if (*q == '*') {
                memcpy(path + pl, "x/y", 3);
                pl += 3;
            } else {
                path[pl++] = *q;
            }
        }
        if (pl + 16 < sizeof path) {
            memcpy(path + pl, "?a=1&b=%41", 10);
            pl += 10;
        }
        struct ctr_header h[3] = {
            {{"content-type", 12}, {"application/json", 16}},
            {{"cookie", 6}, {"sid=1", 5}},
            {{"idempotency-key", 15}, {"k1", 2}},
        };
        struct ctr_request req = {
            .method = {rt->method, strlen(rt->method)},
            .path = {path, pl},
            .headers = h,
            .nheaders = 3,
            .caller = {c->ncallers ? c->callers[0] : NULL, c->ncallers ? strlen(c->callers[0]) : 0},
            .purpose = {c->npurposes ? c->purposes[0] : "none",
                        c->npurposes ? strlen(c->purposes[0]) : 4},
        };
        static const char body[] = "{\"order_id\":7,\"email\":\"a@b\",\"items\":[{\"sku\":\"x\"}]}";
        struct ctr_result *r = calloc(1, sizeof *r);
        if (!r) abort();
        ctr_run(&s->config, c, &req, body, sizeof body - 1, r);
        ctr_result_free(r);
        free(r);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    fz_write_file(file, data, size);
    cur_in = data;
    cur_len = size;
    struct ctr_diag diag = {.emit = emit, .ud = NULL, .errors = 0};
    const char *paths[1] = {file};
    struct ctr_set *s = ctr_set_load_contracts(paths, 1, &diag);
    if (!s && diag.errors == 0)
        fz_fail("ctr_set_load_contracts returned NULL without reporting an error");
    if (s && diag.errors != 0)
        fz_fail("ctr_set_load_contracts reported %d error(s) but returned a set", diag.errors);
    if (verbose)
        fprintf(stderr, "load: %s (%zu contracts)\n", s ? "ok" : "refused", s ? s->ncontracts : 0);
    if (!s) return 0;
    for (size_t i = 0; i < s->ncontracts; i++) {
        const struct ctr_contract *c = s->contracts[i];
        for (size_t t = 0; t < c->ntests && t < 16; t++) {
            struct ctr_test_outcome *o = calloc(1, sizeof *o);
            if (!o) abort();
            ctr_test_run(&s->config, c, t, o);
            if (verbose)
                fprintf(stderr, "test %s: %s %s\n", o->name ? o->name : "(null)",
                        o->passed ? "passed" : "failed", o->reason);
            if (strnlen(o->reason, sizeof o->reason) == sizeof o->reason)
                fz_fail("test outcome reason not terminated");
            free(o);
        }
        drive(s, c);
        struct flt_str rest;
        char pp[256];
        int k = snprintf(pp, sizeof pp, "/%s/v1/x?y=1", c->provider ? c->provider : "");
        if (k > 0 && (size_t)k < sizeof pp) (void)ctr_set_find_provider(s, pp, (size_t)k, &rest);
    }
    ctr_set_unref(s);
    return 0;
}
