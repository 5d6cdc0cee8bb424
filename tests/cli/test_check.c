/* privgate check: exit 0 valid, 1 invalid with FILE:LINE:COL on stderr. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

Test(check, example_contracts_are_valid)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "examples/contracts");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "privgate: 6 contracts OK\n");
    cr_expect_str_empty(r.err);
    run_free(&r);
}

Test(check, one_contract_file)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "examples/contracts/parcel-carrier.yaml");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "privgate: 1 contract OK\n");
    run_free(&r);
}

Test(check, example_config_is_valid)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "-c", "examples/privgate.yaml");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "privgate: 6 contracts OK\n");
    run_free(&r);
}

Test(check, default_config_is_privgate_yaml_here)
{
    struct run r;
    RUN(&r, src_path("examples"), NULL, "check");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "privgate: 6 contracts OK\n");
    run_free(&r);
}

Test(check, missing_default_config_is_invalid)
{
    struct run r;
    RUN(&r, src_path("tests/cli/data"), NULL, "check");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "privgate.yaml") != NULL, "%s", r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
}

struct invalid_case {
    char file[48];
};

ParameterizedTestParameters(check, invalid_contracts)
{
    static struct invalid_case cases[] = {
        {"version-2.yaml"},
        {"hash-no-key.yaml"},
        {"http-upstream.yaml"},
        {"unknown-key.yaml"},
    };
    return cr_make_param_array(struct invalid_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct invalid_case *c, check, invalid_contracts)
{
    char rel[128];
    snprintf(rel, sizeof rel, "tests/cli/data/invalid/%s", c->file);
    struct run r;
    RUN(&r, NULL, NULL, "check", rel);
    cr_expect_eq(r.status, 1, "%s: exit %d", c->file, r.status);
    cr_expect(has_diag_line(r.err, rel), "%s: no FILE:LINE:COL line in: %s", c->file, r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
}

Test(check, unknown_key_names_its_line)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "tests/cli/data/invalid/unknown-key.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "unknown-key.yaml:6:") != NULL, "%s", r.err);
    run_free(&r);
}

Test(check, one_invalid_among_valid_fails)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "examples/contracts/parcel-carrier.yaml",
        "tests/cli/data/invalid/version-2.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect(has_diag_line(r.err, "version-2.yaml"), "%s", r.err);
    run_free(&r);
}

Test(check, forbidden_purpose_in_config_is_invalid)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "-c", "tests/cli/data/bad-config/privgate.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect(has_diag_line(r.err, "data-broker.yaml"), "%s", r.err);
    run_free(&r);
}

/* -c's policy applies to the contracts named on the command line too */
Test(check, config_policy_applies_to_named_contracts)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "-c", "examples/privgate.yaml",
        "tests/cli/data/bad-config/contracts/data-broker.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect(has_diag_line(r.err, "data-broker.yaml"), "%s", r.err);
    cr_expect(strstr(r.err, "forbidden by policy") != NULL, "%s", r.err);
    run_free(&r);
}

/* without -c there is no policy: the same contract is valid */
Test(check, named_contract_without_config_has_no_policy)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "tests/cli/data/bad-config/contracts/data-broker.yaml");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "privgate: 1 contract OK\n");
    run_free(&r);
}

Test(check, missing_contract_file_is_invalid)
{
    struct run r;
    RUN(&r, NULL, NULL, "check", "tests/cli/data/nope.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "nope.yaml") != NULL, "%s", r.err);
    run_free(&r);
}
