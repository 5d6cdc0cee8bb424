/* privgate test [-c FILE] [CONTRACT|DIR...] (SPEC sections 2 and 6). */
#include "proxy/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

static const char test_usage[] =
    "usage: privgate test [-c FILE] [CONTRACT|DIR...]\n"
    "\n"
    "Runs the tests: of the given contracts (files, or every *.yaml of a\n"
    "directory) through the same code the gateway uses, without network.\n"
    "Without arguments, runs those of the contracts that the gateway config\n"
    "(-c FILE, default ./privgate.yaml) loads. Prints one line per test,\n"
    "'PASS provider: name' or 'FAIL provider: name: reason', then\n"
    "'N passed, N failed'.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  gateway config whose contracts to test\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 all passed, 1 a test failed or a contract is invalid,\n"
    "2 bad usage.\n";

/* Writes |s| keeping the output one line per test: a control character
 * (a newline in an NDJSON body of a failure reason, say) is written as
 * \n, \r, \t or \xNN. */
static void put_oneline(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != 0x7f) {
            putchar(c);
            continue;
        }
        switch (c) {
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        default: printf("\\x%02x", c); break;
        }
    }
}

int px_cli_test(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'h': fputs(test_usage, stdout); return PX_EXIT_OK;
        default: return px_cli_bad_option("test", c, argv);
        }
    }
    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);
    if (config != NULL && npaths > 0)
        return px_cli_usage_error("test", "give either -c FILE or contracts, not both");
    if (config == NULL && npaths == 0) {
        if (access("privgate.yaml", F_OK) != 0)
            return px_cli_usage_error("test", "no contracts given and no ./privgate.yaml");
        config = "privgate.yaml";
    }

    struct ctr_set *s = px_cli_load(config, paths, npaths);
    if (s == NULL) {
        fputs("privgate: test: invalid contracts, no test run\n", stderr);
        puts("0 passed, 0 failed");
        return PX_EXIT_FAIL;
    }
    size_t passed = 0, failed = 0;
    for (size_t i = 0; i < s->ncontracts; i++) {
        const struct ctr_contract *ct = s->contracts[i];
        for (size_t t = 0; t < ct->ntests; t++) {
            struct ctr_test_outcome out = {0};
            ctr_test_run(&s->config, ct, t, &out);
            const char *name = out.name ? out.name : "(unnamed)";
            fputs(out.passed ? "PASS " : "FAIL ", stdout);
            put_oneline(ct->provider);
            fputs(": ", stdout);
            put_oneline(name);
            if (!out.passed) {
                fputs(": ", stdout);
                put_oneline(out.reason[0] ? out.reason : "failed");
            }
            putchar('\n');
            if (out.passed)
                passed++;
            else
                failed++;
        }
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    ctr_set_unref(s);
    return failed == 0 ? PX_EXIT_OK : PX_EXIT_FAIL;
}
