/*
 * libFuzzer target for the gateway configuration loader (contracts/config.c,
 * SPEC 3): the input is written to <tmpdir>/privgate.yaml, next to a
 * contracts/ folder holding one valid contract, and loaded with ctr_set_load.
 * Properties: no crash or leak; NULL exactly when an error was reported;
 * diagnostics with a file, line/column >= 0 and a non-empty message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "contracts/contracts.h"
#include "fuzz/common.h"

static char dir[64], file[128], cdir[128], contract[160], tdir[128], tls[3][160];
static const char *const tls_names[3] = {"gateway.pem", "gateway.key", "callers-ca.pem"};

static const char valid_contract[] = "contract: 1\n"
                                     "provider: p\n"
                                     "purposes: [x]\n"
                                     "upstream: { url: \"https://h.example\" }\n"
                                     "routes:\n"
                                     "  - { method: GET, path: / }\n";

static void cleanup(void)
{
    unlink(file);
    unlink(contract);
    rmdir(cdir);
    for (int i = 0; i < 3; i++)
        unlink(tls[i]);
    rmdir(tdir);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/privgate-fuzz-config-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(file, sizeof file, "%s/privgate.yaml", dir);
    snprintf(cdir, sizeof cdir, "%s/contracts", dir);
    snprintf(contract, sizeof contract, "%s/contracts/p.yaml", dir);
    if (mkdir(cdir, 0700) != 0) {
        perror("mkdir");
        abort();
    }
    fz_write_file(contract, valid_contract, sizeof valid_contract - 1);
    /* the files SPEC 3's example names (content is not read at load time) */
    snprintf(tdir, sizeof tdir, "%s/tls", dir);
    if (mkdir(tdir, 0700) != 0) {
        perror("mkdir");
        abort();
    }
    for (int i = 0; i < 3; i++) {
        snprintf(tls[i], sizeof tls[i], "%s/tls/%s", dir, tls_names[i]);
        fz_write_file(tls[i], "-----BEGIN X-----\n", 18);
    }
    atexit(cleanup);
    return 0;
}

static void emit(void *ud, const char *f, int line, int col, const char *msg)
{
    (void)ud;
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "diag: %s:%d:%d: %s\n", f ? f : "(null)", line, col, msg ? msg : "(null)");
    if (!f || !msg) fz_fail("diag: NULL file or message");
    if (line < 0 || col < 0) fz_fail("diag: negative line/column %d:%d", line, col);
    size_t ml = strnlen(msg, 1 << 16);
    if (ml == 0 || ml == 1 << 16) fz_fail("diag: empty or unterminated message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    fz_write_file(file, data, size);
    struct ctr_diag diag = {.emit = emit, .ud = NULL, .errors = 0};
    struct ctr_set *s = ctr_set_load(file, &diag);
    if (!s && diag.errors == 0) fz_fail("ctr_set_load returned NULL without reporting an error");
    if (s && diag.errors != 0)
        fz_fail("ctr_set_load reported %d error(s) but returned a set", diag.errors);
    if (s) {
        if (s->config.limits.max_depth == 0 || s->config.limits.max_body == 0)
            fz_fail("loaded config with max_depth %u, max_body %llu", s->config.limits.max_depth,
                    (unsigned long long)s->config.limits.max_body);
        ctr_set_unref(s);
    }
    return 0;
}
