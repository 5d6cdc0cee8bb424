/* contracts/tests.c: the `tests:` of contracts (SPEC 6). */
#include <stdlib.h>
#include <unistd.h>

#include "contracts/int.h"
#include "helpers.h"

static struct ctr_test_outcome run_one(const char *file, size_t i)
{
    struct diaglog l;
    struct ctr_set *s = load_one(file, &l);
    cr_assert_not_null(s, "%s", l.text);
    struct ctr_test_outcome o;
    cr_assert_lt(i, s->contracts[0]->ntests);
    ctr_test_run(&s->config, s->contracts[0], i, &o);
    /* the name lives in the contract: copy what the assertions need */
    static char name[128];
    snprintf(name, sizeof name, "%s", o.name);
    o.name = name;
    ctr_set_unref(s);
    return o;
}

Test(tests, carrier_all_pass)
{
    struct diaglog l;
    struct ctr_set *s = load_one(DATA("carrier.yaml"), &l);
    cr_assert_not_null(s, "%s", l.text);
    const struct ctr_contract *c = s->contracts[0];
    cr_assert_eq(c->ntests, 3);
    for (size_t i = 0; i < c->ntests; i++) {
        struct ctr_test_outcome o;
        ctr_test_run(&s->config, c, i, &o);
        cr_expect(o.passed, "test '%s' failed: %s", o.name, o.reason);
        cr_expect_str_eq(o.reason, "");
    }
    struct ctr_test_outcome o;
    ctr_test_run(&s->config, c, 0, &o);
    cr_expect_str_eq(o.name, "carrier never receives the email");
    ctr_test_run(&s->config, c, 99, &o);
    cr_expect_not(o.passed);
    ctr_set_unref(s);
}

Test(tests, yaml_scalars_become_typed_json)
{
    struct ctr_test_outcome o = run_one(DATA("echo.yaml"), 0);
    cr_expect(o.passed, "%s", o.reason);
    o = run_one(DATA("echo.yaml"), 1);
    cr_expect(o.passed, "%s", o.reason);
}

Test(tests, failures_and_reasons)
{
    struct ctr_test_outcome o = run_one(DATA("failing.yaml"), 0);
    cr_expect_not(o.passed);
    cr_expect_str_eq(o.name, "expects forwarded, gets refused");
    cr_expect(strstr(o.reason, "expected forwarded, got refused 400 purpose_required") != NULL,
              "%s", o.reason);

    o = run_one(DATA("failing.yaml"), 1);
    cr_expect_not(o.passed);
    cr_expect_str_eq(o.reason, "expected refused, got forwarded");

    o = run_one(DATA("failing.yaml"), 2);
    cr_expect_not(o.passed);
    cr_expect(strstr(o.reason, "expected status 400, got 403 purpose_not_allowed") != NULL, "%s",
              o.reason);
    cr_expect(strstr(o.reason, "expected error purpose_required, got purpose_not_allowed") != NULL,
              "%s", o.reason);

    o = run_one(DATA("failing.yaml"), 3);
    cr_expect_not(o.passed);
    cr_expect_str_eq(o.reason, "body: different value at body.keep");

    o = run_one(DATA("failing.yaml"), 4);
    cr_expect_not(o.passed);
    cr_expect(strstr(o.reason, "removed: body.other expected, not reported") != NULL, "%s",
              o.reason);
    cr_expect(strstr(o.reason, "removed: header.cookie reported, not expected") != NULL, "%s",
              o.reason);
    cr_expect(strstr(o.reason, "body.drop") == NULL, "%s", o.reason);

    o = run_one(DATA("failing.yaml"), 5);
    cr_expect_not(o.passed);
    cr_expect(strstr(o.reason, "header x-api-key: forwarded with another value") != NULL, "%s",
              o.reason);
    cr_expect(strstr(o.reason, "header user-agent: not forwarded") != NULL, "%s", o.reason);
    cr_expect(strstr(o.reason, "accept") == NULL, "%s", o.reason);
    /* never a header value: the injected credential stays secret */
    cr_expect(strstr(o.reason, "t0ken") == NULL, "%s", o.reason);
    cr_expect(strstr(o.reason, "wrong") == NULL, "%s", o.reason);

    o = run_one(DATA("failing.yaml"), 6);
    cr_expect_not(o.passed);
    cr_expect(strstr(o.reason, "path differs (query parameter 'x' missing)") != NULL, "%s",
              o.reason);
    cr_expect(strstr(o.reason, "transformed: body.keep expected, not reported") != NULL, "%s",
              o.reason);
}

Test(tests, parse_errors)
{
    char dir[] = TMP_TEMPLATE("ctr-tests");
    cr_assert_not_null(mkdtemp(dir));
    char p[64];
    snprintf(p, sizeof p, "%s/t.yaml", dir);
    FILE *f = fopen(p, "w");
    fputs("contract: 1\nprovider: t\npurposes: [p]\nupstream: { url: \"https://t.example\" }\n"
          "routes: [{ method: GET, path: /a }]\n"
          "tests:\n"
          "  - name: x\n"
          "    request: { paht: /a }\n"
          "    expect: { outcome: maybe, status: 42, removed: body.x }\n"
          "  - name: y\n",
          f);
    fclose(f);
    struct diaglog l;
    cr_expect_null(load_one(p, &l));
    HAS_DIAG(&l, "t.yaml:8:16: request: unknown key 'paht'");
    HAS_DIAG(&l, "t.yaml:8:14: request: 'path' is required");
    HAS_DIAG(&l, "t.yaml:9:24: expect.outcome: must be forwarded or refused");
    HAS_DIAG(&l, "t.yaml:9:39: expect.status: not an HTTP status");
    HAS_DIAG(&l, "t.yaml:9:52: expect.removed: expected a list");
    HAS_DIAG(&l, "t.yaml:10:5: test: 'request' is required");
    HAS_DIAG(&l, "t.yaml:10:5: test: 'expect' is required");
    remove(p);
    rmdir(dir);
}

static void canon_is(const char *in, const char *want)
{
    struct ctr__buf b = {0};
    cr_assert_eq(ctr__json_canon(in, strlen(in), &b), 0, "%s", in);
    cr_expect_str_eq(b.p, want);
    ctr__buf_free(&b);
}

Test(tests, json_canonical_form)
{
    canon_is(" { \"b\" : [1, 2.5e3, true], \"a\":{\"y\":null,\"x\":\"\\u0065\\n\"} } ",
             "{\"a\":{\"x\":\"e\\n\",\"y\":null},\"b\":[1,2.5e3,true]}");
    canon_is("\"\\ud83d\\ude00\\/\"", "\"\xf0\x9f\x98\x80/\"");
    canon_is("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}");
    canon_is("", "");
    canon_is("[]", "[]");
    struct ctr__buf b = {0};
    cr_expect_neq(ctr__json_canon("{\"a\":}", 6, &b), 0);
    ctr__buf_free(&b);
    cr_expect_neq(ctr__json_canon("\"\\ud800\"", 8, &b), 0);
    ctr__buf_free(&b);
    cr_expect_neq(ctr__json_canon("a=1&b=2", 7, &b), 0);
    ctr__buf_free(&b);
    cr_expect_neq(ctr__json_canon("[1,]", 4, &b), 0);
    ctr__buf_free(&b);
    cr_expect_neq(ctr__json_canon("01", 2, &b), 0);
    ctr__buf_free(&b);
}

/* Review finding 6: a failing test names what differs, never a value: JSON
 * paths for bodies, parameter names and segment numbers for paths. */
static void no_secret(const struct ctr_test_outcome *o)
{
    cr_expect_not(o->passed);
    cr_expect(strstr(o->reason, "SECRET") == NULL, "value in reason: %s", o->reason);
    cr_expect(strstr(o->reason, "example.com") == NULL, "value in reason: %s", o->reason);
    cr_expect(strchr(o->reason, '\n') == NULL, "one line: %s", o->reason);
}

Test(tests, reasons_never_carry_values)
{
    struct ctr_test_outcome o = run_one(DATA("values/leaky.yaml"), 0);
    no_secret(&o);
    cr_expect_str_eq(o.reason, "body: missing body.extra, different value at body.items[0].sku, "
                               "missing body.items[1], different value at body.keep, "
                               "missing body.\"odd.name\"");
    o = run_one(DATA("values/leaky.yaml"), 1);
    no_secret(&o);
    cr_expect_str_eq(o.reason, "path differs (segment 3, query parameter 'q' has another value, "
                               "query parameter 'zzz' missing)");
    o = run_one(DATA("values/leaky.yaml"), 2);
    no_secret(&o);
    cr_expect_str_eq(o.reason, "body: different value at body.keep (line 2)");
    o = run_one(DATA("values/leaky.yaml"), 3);
    no_secret(&o);
    cr_expect_str_eq(o.reason, "body differs (not comparable as JSON)");
    o = run_one(DATA("values/leaky.yaml"), 4);
    no_secret(&o);
    cr_expect_str_eq(o.reason, "path differs (5 segments expected, 4 forwarded)");
}
