/* privgate test: one line per test, "N passed, N failed" last, exit 0/1. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "run.h"

/* Every line but the last starts with "PASS " (or "FAIL "); returns the
 * number of lines with |prefix|. */
static size_t lines_with(const char *out, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    for (const char *l = out; *l;) {
        if (strncmp(l, prefix, plen) == 0) n++;
        const char *eol = strchr(l, '\n');
        if (eol == NULL) break;
        l = eol + 1;
    }
    return n;
}

Test(test, examples_pass)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "examples/contracts");
    cr_expect_eq(r.status, 0, "stdout: %s\nstderr: %s", r.out, r.err);
    size_t lines = count_lines(r.out);
    cr_assert_gt(lines, 30, "%s", r.out);
    size_t pass = lines_with(r.out, "PASS ");
    cr_expect_eq(pass, lines - 1, "%s", r.out);
    char want[64];
    snprintf(want, sizeof want, "%zu passed, 0 failed", pass);
    cr_expect_str_eq(last_line(r.out), want);
    cr_expect(strstr(r.out, "PASS parcel-carrier: the carrier's marketing is refused\n") != NULL,
              "%s", r.out);
    run_free(&r);
}

Test(test, examples_through_their_config)
{
    struct run a, b;
    RUN(&a, NULL, NULL, "test", "examples/contracts");
    RUN(&b, src_path("examples"), NULL, "test"); /* ./privgate.yaml */
    cr_expect_eq(b.status, 0, "stdout: %s\nstderr: %s", b.out, b.err);
    cr_expect_str_eq(last_line(b.out), last_line(a.out));
    run_free(&b);
    RUN(&b, NULL, NULL, "test", "-c", "examples/privgate.yaml");
    cr_expect_eq(b.status, 0);
    cr_expect_str_eq(last_line(b.out), last_line(a.out));
    run_free(&a);
    run_free(&b);
}

Test(test, failures_are_counted)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "tests/cli/data/failing");
    cr_expect_eq(r.status, 1, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_expect_eq(count_lines(r.out), 4, "%s", r.out);
    cr_expect(strncmp(r.out, "PASS failing-fixture: the order id is kept\n", 43) == 0, "%s", r.out);
    cr_expect(strstr(r.out, "\nFAIL failing-fixture: wrongly expects the email to be kept: ") !=
                  NULL,
              "%s", r.out);
    cr_expect(strstr(r.out, "\nFAIL failing-fixture: wrongly expects a refusal: ") != NULL, "%s",
              r.out);
    cr_expect_str_eq(last_line(r.out), "1 passed, 2 failed");
    run_free(&r);
}

Test(test, one_line_per_test_even_for_multi_line_reasons)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "tests/cli/data/failing-ndjson");
    cr_expect_eq(r.status, 1);
    cr_expect_eq(count_lines(r.out), 2, "%s", r.out);
    cr_expect(
        strncmp(r.out, "FAIL ndjson-fixture: wrongly expects the user ids to be kept: ", 62) == 0,
        "%s", r.out);
    cr_expect(strstr(r.out, "(line 2)") != NULL, "both NDJSON lines named: %s", r.out);
    cr_expect_str_eq(last_line(r.out), "0 passed, 1 failed");
    run_free(&r);
}

Test(test, passing_and_failing_together)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "tests/cli/data/failing/failing.yaml",
        "examples/contracts/survey-vendor.yaml");
    cr_expect_eq(r.status, 1);
    size_t pass = lines_with(r.out, "PASS ");
    char want[64];
    snprintf(want, sizeof want, "%zu passed, 2 failed", pass);
    cr_expect_str_eq(last_line(r.out), want);
    cr_expect_gt(pass, 1);
    run_free(&r);
}

Test(test, contract_without_tests)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "tests/cli/data/no-tests");
    cr_expect_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_str_eq(r.out, "0 passed, 0 failed\n");
    run_free(&r);
}

Test(test, invalid_contract_fails)
{
    struct run r;
    RUN(&r, NULL, NULL, "test", "tests/cli/data/invalid/hash-no-key.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect(has_diag_line(r.err, "hash-no-key.yaml"), "%s", r.err);
    cr_expect_str_eq(last_line(r.out), "0 passed, 0 failed");
    run_free(&r);
}
