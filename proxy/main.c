/* privgate: the one binary. Dispatches to the commands of SPEC section 2. */
#include "proxy/cli.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", px_cli_serve, "run the gateway"},
    {"check", px_cli_check, "validate the gateway config and the contracts"},
    {"test", px_cli_test, "run the tests: of contracts"},
    {"filter", px_cli_filter, "dry-run one request through a contract"},
    {"register", px_cli_register, "print the sharing register"},
    {"version", px_cli_version, "print the versions of privgate and its libraries"},
};

static void usage(FILE *out)
{
    fputs("usage: privgate COMMAND [OPTIONS] [ARGS]\n"
          "\n"
          "privgate is a third-party sharing gateway: it lets through to each\n"
          "service provider only what the provider's data contract allows.\n"
          "\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Run 'privgate COMMAND --help' for the options of a command.\n"
          "Exit status: 0 success, 1 invalid config/contract or failed test,\n"
          "2 bad usage, 3 request refused (filter).\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("privgate: no command given (see 'privgate --help')\n", stderr);
        return PX_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return PX_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) return px_cli_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-')
        fprintf(stderr, "privgate: unknown option '%s' (see 'privgate --help')\n", cmd);
    else
        fprintf(stderr, "privgate: unknown command '%s' (see 'privgate --help')\n", cmd);
    return PX_EXIT_USAGE;
}
