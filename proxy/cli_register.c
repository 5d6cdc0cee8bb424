/* privgate register [-c FILE] [--format md|csv|json] [CONTRACT|DIR...]
 * (SPEC sections 2 and 8). The formatting is contracts/register.c's. */
#include "proxy/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "contracts/register.h"

static const char register_usage[] =
    "usage: privgate register [-c FILE] [--format md|csv|json] [CONTRACT|DIR...]\n"
    "\n"
    "Prints the sharing register: from the contracts alone, which provider\n"
    "receives which field, on which route, for which purposes, with which\n"
    "action (keep, hash, mask, truncate, year) and retention. Without\n"
    "arguments it describes the contracts that the gateway config (-c FILE,\n"
    "default ./privgate.yaml) loads; CONTRACT files or directories (every\n"
    "*.yaml of a directory) may be given instead.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE    gateway config whose contracts to describe\n"
    "  -f, --format FORMAT  md (Markdown, the default), csv (RFC 4180, one\n"
    "                       record per field) or json\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 printed, 1 invalid config or contract (nothing printed)\n"
    "or write error, 2 bad usage.\n";

int px_cli_register(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    enum ctr_register_format fmt = CTR_REGISTER_MD;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:f:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'f':
            if (ctr_register_format_parse(optarg, &fmt) != 0)
                return px_cli_usage_error("register", "unknown format '%s' (md, csv or json)",
                                          optarg);
            break;
        case 'h': fputs(register_usage, stdout); return PX_EXIT_OK;
        default: return px_cli_bad_option("register", c, argv);
        }
    }
    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);
    if (config != NULL && npaths > 0)
        return px_cli_usage_error("register", "give either -c FILE or contracts, not both");
    if (config == NULL && npaths == 0) {
        if (access("privgate.yaml", F_OK) != 0)
            return px_cli_usage_error("register", "no contracts given and no ./privgate.yaml");
        config = "privgate.yaml";
    }

    struct ctr_set *s = px_cli_load(config, paths, npaths);
    if (s == NULL) {
        fputs("privgate: register: invalid contracts, no register printed\n", stderr);
        return PX_EXIT_FAIL;
    }
    errno = 0;
    int rc = ctr_register_write(s, fmt, stdout);
    int err = errno;
    ctr_set_unref(s);
    if (rc != 0) {
        fprintf(stderr, "privgate: register: cannot write the register: %s\n",
                strerror(err ? err : EIO));
        return PX_EXIT_FAIL;
    }
    return PX_EXIT_OK;
}
