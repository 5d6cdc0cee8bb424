/* privgate's top level, --help of every command, usage errors, version. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

static void assert_usage_error(struct run *r)
{
    cr_expect_eq(r->status, 2, "exit %d, stderr: %s", r->status, r->err);
    cr_expect_eq(count_lines(r->err), 1, "one line on stderr, got: %s", r->err);
    cr_expect_str_empty(r->out);
}

Test(top, help_goes_to_stdout)
{
    static const char *const forms[] = {"--help", "-h", "help"};
    static const char *const cmds[] = {"serve", "check", "test", "filter", "register", "version"};
    for (size_t i = 0; i < 3; i++) {
        struct run r;
        RUN(&r, NULL, NULL, forms[i]);
        cr_expect_eq(r.status, 0, "%s", forms[i]);
        cr_expect(strncmp(r.out, "usage: privgate COMMAND", 23) == 0, "%s", r.out);
        for (size_t c = 0; c < 6; c++)
            cr_expect(strstr(r.out, cmds[c]) != NULL, "help names %s", cmds[c]);
        cr_expect_str_empty(r.err);
        run_free(&r);
    }
}

Test(top, no_command_is_a_usage_error)
{
    struct run r;
    const char *const none[] = {NULL};
    run_privgate(&r, NULL, NULL, 0, none);
    assert_usage_error(&r);
    run_free(&r);
}

Test(top, unknown_command_is_a_usage_error)
{
    struct run r;
    RUN(&r, NULL, NULL, "frobnicate");
    assert_usage_error(&r);
    cr_expect(strstr(r.err, "frobnicate") != NULL);
    run_free(&r);
    RUN(&r, NULL, NULL, "--frobnicate");
    assert_usage_error(&r);
    run_free(&r);
}

/* --help and -h of every command: usage on stdout, exit 0. Parameters are
 * plain arrays, no pointers (Criterion issues #208, #258). */
struct help_case {
    char cmd[16];
    char flag[8];
};

ParameterizedTestParameters(commands, help)
{
    static struct help_case cases[] = {
        {"serve", "--help"},    {"serve", "-h"},    {"check", "--help"},   {"check", "-h"},
        {"test", "--help"},     {"test", "-h"},     {"filter", "--help"},  {"filter", "-h"},
        {"register", "--help"}, {"register", "-h"}, {"version", "--help"}, {"version", "-h"},
    };
    return cr_make_param_array(struct help_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct help_case *c, commands, help)
{
    struct run r;
    RUN(&r, NULL, NULL, c->cmd, c->flag);
    cr_expect_eq(r.status, 0, "%s %s: exit %d", c->cmd, c->flag, r.status);
    char want[64];
    snprintf(want, sizeof want, "usage: privgate %s", c->cmd);
    cr_expect(strncmp(r.out, want, strlen(want)) == 0, "%s %s: %s", c->cmd, c->flag, r.out);
    cr_expect_str_empty(r.err);
    run_free(&r);
}

/* Bad usage: one line on stderr, exit 2, nothing on stdout. */
struct usage_case {
    char args[7][48];
};

#define CARRIER "examples/contracts/parcel-carrier.yaml"

ParameterizedTestParameters(commands, usage_errors)
{
    static struct usage_case cases[] = {
        {{"check", "--bogus"}},
        {{"check", "-c"}},
        {{"check", "-x"}},
        {{"test", "--bogus"}},
        {{"test", "-c", "examples/privgate.yaml", "examples/contracts"}},
        {{"filter", "-p", "/v1/shipments"}}, /* no -C */
        {{"filter", "-C", CARRIER}},         /* no -p */
        {{"filter", "-C"}},                  /* -C without its value */
        {{"filter", "-C", CARRIER, "-p", "v1/shipments"}},
        {{"filter", "-C", CARRIER, "-p", "/v1/shipments", "-H", "no-colon"}},
        {{"filter", "-C", CARRIER, "-p", "/v1/shipments", "-H", "bad name: x"}},
        {{"filter", "-C", CARRIER, "-p", "/v1/shipments", "a.json", "b.json"}},
        {{"filter", "--purpose"}},
        {{"filter", "-C", CARRIER, "-p", "/v1/shipments", "--explain=yes"}},
        {{"serve", "--bogus"}},
        {{"serve", "extra"}},
        {{"version", "extra"}},
        {{"version", "--bogus"}},
    };
    return cr_make_param_array(struct usage_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct usage_case *c, commands, usage_errors)
{
    const char *args[8] = {0};
    for (int i = 0; i < 7 && c->args[i][0]; i++)
        args[i] = c->args[i];
    struct run r;
    run_privgate(&r, NULL, NULL, 0, args);
    cr_expect_eq(r.status, 2, "%s %s: exit %d, stderr: %s", args[0], args[1], r.status, r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s %s: one line on stderr, got: %s", args[0], args[1],
                 r.err);
    cr_expect(strncmp(r.err, "privgate ", 9) == 0, "%s", r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
}

Test(commands, filter_missing_body_file_is_a_usage_error)
{
    struct run r;
    RUN(&r, NULL, NULL, "filter", "-C", CARRIER, "-p", "/v1/shipments",
        "tests/cli/data/does-not-exist.json");
    assert_usage_error(&r);
    run_free(&r);
}

Test(commands, test_without_contracts_or_config_is_a_usage_error)
{
    struct run r;
    /* tests/cli/data has no privgate.yaml */
    RUN(&r, src_path("tests/cli/data"), NULL, "test");
    assert_usage_error(&r);
    cr_expect(strstr(r.err, "privgate.yaml") != NULL, "%s", r.err);
    run_free(&r);
}

Test(commands, register_without_contracts_is_a_usage_error)
{
    /* the source root has no privgate.yaml; tests/register/ tests the rest */
    struct run r;
    RUN(&r, NULL, NULL, "register");
    assert_usage_error(&r);
    cr_expect(strstr(r.err, "privgate.yaml") != NULL, "%s", r.err);
    run_free(&r);
}

Test(commands, version_names_the_libraries)
{
    struct run r;
    RUN(&r, NULL, NULL, "version");
    cr_expect_eq(r.status, 0);
    cr_expect_str_empty(r.err);
    cr_expect(strncmp(r.out, "privgate ", 9) == 0, "%s", r.out);
    static const char *const libs[] = {"\nnghttp2 1.", "\nOpenSSL 3.", "\nlibyaml 0."};
    for (size_t i = 0; i < 3; i++)
        cr_expect(strstr(r.out, libs[i]) != NULL, "%s missing in: %s", libs[i] + 1, r.out);
    run_free(&r);
    RUN(&r, NULL, NULL, "--version");
    cr_expect_eq(r.status, 0);
    cr_expect(strncmp(r.out, "privgate ", 9) == 0, "%s", r.out);
    run_free(&r);
}

Test(commands, serve_start_up_error_exits_1)
{
    struct run r;
    RUN(&r, NULL, NULL, "serve", "-c", "tests/cli/data/nope.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect_str_empty(r.out);
    cr_expect(r.err[0] != '\0', "a reason on stderr");
    run_free(&r);
}
