/* privgate version: privgate's version and those of the libraries it runs
 * with (the runtime versions, which may differ from the headers'). */
#include "proxy/cli.h"

#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>
#include <zlib.h>

static const char version_usage[] = "usage: privgate version\n"
                                    "\n"
                                    "Prints the version of privgate, then one line per library it\n"
                                    "runs with: nghttp2, OpenSSL, libyaml, libuv, zlib.\n";

int px_cli_version(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            fputs(version_usage, stdout);
            return PX_EXIT_OK;
        }
        if (argv[1][0] == '-') return px_cli_usage_error("version", "unknown option '%s'", argv[1]);
        return px_cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    }
    printf("privgate %s\n", PRIVGATE_VERSION);
    printf("nghttp2 %s\n", nghttp2_version(0)->version_str);
    printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
    printf("libyaml %s\n", yaml_get_version_string());
    printf("libuv %s\n", uv_version_string());
    printf("zlib %s\n", zlibVersion());
    return PX_EXIT_OK;
}
