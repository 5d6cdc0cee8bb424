/* privgate serve [-c FILE] (SPEC sections 2, 3 and 5). */
#include "proxy/cli.h"

#include <getopt.h>
#include <stdio.h>

#ifdef PRIVGATE_HAVE_SERVE
#include "proxy/serve.h"
#endif

static const char serve_usage[] =
    "usage: privgate serve [-c FILE]\n"
    "\n"
    "Runs the gateway with the config FILE and the contracts it names.\n"
    "SIGHUP reloads config and contracts; SIGTERM and SIGINT drain and exit.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  gateway config (default: privgate.yaml)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 after a clean shutdown, 1 on a start-up error, 2 bad usage.\n";

int px_cli_serve(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "privgate.yaml";
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'h': fputs(serve_usage, stdout); return PX_EXIT_OK;
        default: return px_cli_bad_option("serve", c, argv);
        }
    }
    if (optind < argc) return px_cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
#ifdef PRIVGATE_HAVE_SERVE
    return px_serve(config);
#else
    fprintf(stderr, "privgate: serve: not available in this build (config %s not loaded)\n",
            config);
    return PX_EXIT_FAIL;
#endif
}
