/* privgate check [-c FILE] [CONTRACT...] (SPEC section 2). */
#include "proxy/cli.h"

#include <getopt.h>
#include <stdio.h>

static const char check_usage[] =
    "usage: privgate check [-c FILE] [CONTRACT...]\n"
    "\n"
    "Validates the gateway config FILE and every contract it loads, or, when\n"
    "CONTRACT files or directories are given, those contracts (with -c as\n"
    "well: both). Errors are printed as FILE:LINE:COL: message on stderr.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  gateway config (default: privgate.yaml)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 valid, 1 invalid, 2 bad usage.\n";

int px_cli_check(int argc, char **argv)
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
        case 'h': fputs(check_usage, stdout); return PX_EXIT_OK;
        default: return px_cli_bad_option("check", c, argv);
        }
    }
    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);

    size_t ncontracts = 0;
    bool ok = true;
    bool config_ok = false;
    if (config != NULL || npaths == 0) {
        /* The config, and every contract of its contracts folder. */
        const char *file = config ? config : "privgate.yaml";
        struct ctr_set *s = px_cli_load(file, NULL, 0);
        if (s == NULL) {
            ok = false;
        } else {
            config_ok = true;
            ncontracts += s->ncontracts;
            ctr_set_unref(s);
        }
    }
    if (npaths > 0) {
        /* under the policy of -c's config (its errors, if any, were reported
         * above: then the defaults) */
        struct ctr_set *s = px_cli_load(config_ok ? config : NULL, paths, npaths);
        if (s == NULL) {
            ok = false;
        } else {
            ncontracts += s->ncontracts;
            ctr_set_unref(s);
        }
    }
    if (!ok) {
        fputs("privgate: check failed\n", stderr);
        return PX_EXIT_FAIL;
    }
    printf("privgate: %zu contract%s OK\n", ncontracts, ncontracts == 1 ? "" : "s");
    return PX_EXIT_OK;
}
