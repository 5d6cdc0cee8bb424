/* privgate register (SPEC sections 2 and 8): the register of examples/ in
 * Markdown, CSV and JSON checked against tests/register/expected/, the JSON
 * and CSV checked for structure, and the exit statuses. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/run.h"

/* The whole file at |rel| (under the source root), NUL-terminated. */
static char *slurp(const char *rel)
{
    const char *path = src_path(rel);
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "cannot open %s", path);
    char *buf = NULL;
    size_t len = 0;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        char *nb = realloc(buf, len + n + 1);
        cr_assert(nb != NULL);
        buf = nb;
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf == NULL) buf = calloc(1, 1);
    cr_assert(buf != NULL);
    buf[len] = '\0';
    return buf;
}

/* The first line where |got| and |want| differ, for failure messages. */
static int first_diff_line(const char *got, const char *want)
{
    int line = 1;
    for (; *got && *got == *want; got++, want++)
        line += *got == '\n';
    return line;
}

static void expect_output(const char *expected, const char *const *args)
{
    struct run r;
    run_privgate_str(&r, NULL, NULL, args);
    cr_assert_eq(r.status, 0, "stdout: %s\nstderr: %s", r.out, r.err);
    cr_expect_str_empty(r.err);
    char *want = slurp(expected);
    cr_expect(strcmp(r.out, want) == 0, "%s differs from the output at line %d; output:\n%s",
              expected, first_diff_line(r.out, want), r.out);
    free(want);
    run_free(&r);
}

#define EXPECT_OUTPUT(expected, ...)                                                               \
    do {                                                                                           \
        const char *const args_[] = {"register", __VA_ARGS__, NULL};                               \
        expect_output((expected), args_);                                                          \
    } while (0)

/* ------------------------------------------------------- expected files */

Test(register, markdown_of_the_examples)
{
    EXPECT_OUTPUT("tests/register/expected/register.md", "-c", "examples/privgate.yaml");
    EXPECT_OUTPUT("tests/register/expected/register.md", "-c", "examples/privgate.yaml", "--format",
                  "md");
    EXPECT_OUTPUT("tests/register/expected/register.md", "--format=markdown", "examples/contracts");
}

Test(register, csv_of_the_examples)
{
    EXPECT_OUTPUT("tests/register/expected/register.csv", "-c", "examples/privgate.yaml", "-f",
                  "csv");
    EXPECT_OUTPUT("tests/register/expected/register.csv", "--format=csv", "examples/contracts");
}

Test(register, json_of_the_examples)
{
    EXPECT_OUTPUT("tests/register/expected/register.json", "-c", "examples/privgate.yaml", "-f",
                  "json");
    /* contracts given one by one, in another order: same register */
    EXPECT_OUTPUT(
        "tests/register/expected/register.json", "-f", "json",
        "examples/contracts/survey-vendor.yaml", "examples/contracts/analytics-vendor.yaml",
        "examples/contracts/support-desk.yaml", "examples/contracts/device-cloud.yaml",
        "examples/contracts/payment-processor.yaml", "examples/contracts/parcel-carrier.yaml");
}

Test(register, default_config_in_the_working_directory)
{
    struct run r;
    RUN(&r, src_path("examples"), NULL, "register"); /* ./privgate.yaml */
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    char *want = slurp("tests/register/expected/register.md");
    cr_expect_str_eq(r.out, want);
    free(want);
    run_free(&r);
}

Test(register, edge_cases)
{
    EXPECT_OUTPUT("tests/register/expected/edge.md", "tests/register/data/edge");
    EXPECT_OUTPUT("tests/register/expected/edge.csv", "-f", "csv", "tests/register/data/edge");
    EXPECT_OUTPUT("tests/register/expected/edge.json", "-f", "json", "tests/register/data/edge");
}

/* ------------------------------------------------------------------ csv */

/* An RFC 4180 parser: records end with CRLF, fields are separated by ','
 * and quoted fields double their quotes. Calls |row| per record with its
 * fields (|nf| of them); fails the test on a malformed input. */
#define CSV_MAX_FIELDS 16
typedef void (*csv_row_fn)(void *ud, size_t idx, char **fields, size_t nf);

static size_t csv_parse(const char *s, csv_row_fn row, void *ud)
{
    size_t nrec = 0;
    while (*s) {
        char *fields[CSV_MAX_FIELDS];
        size_t nf = 0;
        for (;;) {
            cr_assert_lt(nf, CSV_MAX_FIELDS, "record %zu: too many fields", nrec);
            size_t cap = strlen(s) + 1, len = 0;
            char *fld = malloc(cap);
            cr_assert(fld != NULL);
            if (*s == '"') {
                s++;
                for (;;) {
                    cr_assert(*s != '\0', "record %zu: unterminated quoted field", nrec);
                    if (s[0] == '"' && s[1] == '"') {
                        fld[len++] = '"';
                        s += 2;
                    } else if (s[0] == '"') {
                        s++;
                        break;
                    } else {
                        fld[len++] = *s++;
                    }
                }
            } else {
                while (*s && *s != ',' && *s != '\r' && *s != '\n') {
                    cr_assert(*s != '"', "record %zu: quote in an unquoted field", nrec);
                    fld[len++] = *s++;
                }
            }
            fld[len] = '\0';
            fields[nf++] = fld;
            if (*s == ',') {
                s++;
                continue;
            }
            cr_assert(s[0] == '\r' && s[1] == '\n', "record %zu: does not end with CRLF", nrec);
            s += 2;
            break;
        }
        row(ud, nrec++, fields, nf);
        for (size_t i = 0; i < nf; i++)
            free(fields[i]);
    }
    return nrec;
}

static const char *const csv_columns[] = {
    "provider", "purposes", "callers",  "method",    "path",          "carrier",
    "field",    "action",   "category", "retention", "upstream_host",
};

/* The JSON array |a| of strings joined with ';', or |none| when |a| is not
 * an array (callers: null) or empty: what a CSV list column must hold. */
static void expect_joined(const char *got, json_t *a, const char *none, size_t idx,
                          const char *what)
{
    char want[1024] = "";
    size_t off = 0, i;
    json_t *e;
    if (json_array_size(a) == 0) snprintf(want, sizeof want, "%s", none);
    json_array_foreach(a, i, e)
    {
        off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", i ? ";" : "",
                                json_string_value(e));
        cr_assert_lt(off, sizeof want);
    }
    cr_expect_str_eq(got, want, "record %zu: %s", idx, what);
}

struct csv_check {
    json_t *providers; /* the JSON register of the same contracts */
    size_t bodies;     /* records with carrier "body" */
};

static void csv_row(void *ud, size_t idx, char **f, size_t nf)
{
    struct csv_check *c = ud;
    cr_assert_eq(nf, 11, "record %zu has %zu fields", idx, nf);
    if (idx == 0) {
        for (size_t i = 0; i < nf; i++)
            cr_expect_str_eq(f[i], csv_columns[i]);
        return;
    }
    /* every record names a provider of the JSON register, with its
     * purposes, callers ("any" for callers: null), retention and upstream
     * host */
    size_t i;
    json_t *p;
    bool found = false;
    json_array_foreach(c->providers, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "id")), f[0]) != 0) continue;
        found = true;
        expect_joined(f[1], json_object_get(p, "purposes"), "", idx, "purposes");
        cr_expect(json_is_null(json_object_get(p, "callers")) ||
                      json_array_size(json_object_get(p, "callers")) > 0,
                  "record %zu: callers is neither null nor a non-empty list", idx);
        expect_joined(f[2], json_object_get(p, "callers"), "any", idx, "callers");
        json_t *ret = json_object_get(p, "retention");
        cr_expect_str_eq(f[9], json_is_string(ret) ? json_string_value(ret) : "");
        cr_expect_str_eq(f[10], json_string_value(json_object_get(p, "upstream_host")));
    }
    cr_expect(found, "record %zu: unknown provider %s", idx, f[0]);
    cr_expect(strcmp(f[5], "body") == 0 || strcmp(f[5], "query") == 0 ||
                  strcmp(f[5], "param") == 0 || strcmp(f[5], "header") == 0 || f[5][0] == '\0',
              "record %zu: carrier %s", idx, f[5]);
    c->bodies += strcmp(f[5], "body") == 0;
}

/* The number of CSV records the JSON register implies: per route, its
 * params, query parameters, headers and fields (one for an opaque body),
 * or one record when there is none. */
static size_t rows_of_json(json_t *providers, size_t *bodies)
{
    size_t n = 0, i, k;
    json_t *p, *r;
    *bodies = 0;
    json_array_foreach(providers, i, p)
    {
        json_array_foreach(json_object_get(p, "routes"), k, r)
        {
            size_t b = json_array_size(json_object_get(r, "fields"));
            if (strcmp(json_string_value(json_object_get(r, "body")), "opaque") == 0) b = 1;
            size_t m = json_array_size(json_object_get(r, "params")) +
                       json_array_size(json_object_get(r, "query")) +
                       json_array_size(json_object_get(r, "headers")) + b;
            *bodies += b;
            n += m ? m : 1;
        }
    }
    return n;
}

static json_t *register_json(const char *contracts)
{
    struct run r;
    RUN(&r, NULL, NULL, "register", "-f", "json", contracts);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    json_error_t err;
    json_t *j = json_loads(r.out, JSON_REJECT_DUPLICATES, &err);
    cr_assert(j != NULL, "invalid JSON at %d:%d: %s", err.line, err.column, err.text);
    run_free(&r);
    return j;
}

static void check_csv(const char *contracts)
{
    json_t *j = register_json(contracts);
    struct csv_check c = {.providers = json_object_get(j, "providers")};
    struct run r;
    RUN(&r, NULL, NULL, "register", "--format", "csv", contracts);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    size_t records = csv_parse(r.out, csv_row, &c);
    size_t bodies;
    size_t want = rows_of_json(c.providers, &bodies);
    cr_expect_eq(records, want + 1, "%zu records, the JSON register implies %zu + header", records,
                 want);
    cr_expect_eq(c.bodies, bodies);
    run_free(&r);
    json_decref(j);
}

Test(register, csv_records_match_the_json)
{
    check_csv("examples/contracts");
    check_csv("tests/register/data/edge");
    check_csv("tests/cli/data/no-tests");
}

Test(register, csv_quoting_round_trips)
{
    struct run r;
    RUN(&r, NULL, NULL, "register", "-f", "csv", "tests/register/data/edge");
    cr_assert_eq(r.status, 0);
    /* a field name with a comma and quotes, a category with both */
    cr_expect(
        strstr(r.out, ",body,\"meta.\"\"x,y\"\"\",truncate 2,\"free text, \"\"quoted\"\"\",") !=
            NULL,
        "%s", r.out);
    cr_expect(strstr(r.out, "edge-case,\"support;odd,purpose\",any,") != NULL, "%s", r.out);
    /* a route without any field: one record with empty carrier..category */
    run_free(&r);
    RUN(&r, NULL, NULL, "register", "-f", "csv", "tests/cli/data/no-tests/quiet.yaml");
    cr_expect_str_eq(r.out, "provider,purposes,callers,method,path,carrier,field,action,category,"
                            "retention,upstream_host\r\nquiet,order-fulfillment,any,GET,/v1/ping,,,"
                            ",,,api.quiet.example\r\n");
    run_free(&r);
}

/* ----------------------------------------------------------------- json */

static void expect_keys(json_t *o, const char *const *keys, size_t n, const char *what)
{
    cr_assert(json_is_object(o), "%s is not an object", what);
    cr_expect_eq(json_object_size(o), n, "%s has %zu keys", what, json_object_size(o));
    for (size_t i = 0; i < n; i++)
        cr_expect(json_object_get(o, keys[i]) != NULL, "%s lacks %s", what, keys[i]);
}

Test(register, json_structure)
{
    json_t *j = register_json("examples/contracts");
    cr_assert_eq(json_object_size(j), 1);
    json_t *providers = json_object_get(j, "providers");
    cr_assert(json_is_array(providers));
    cr_assert_eq(json_array_size(providers), 6);
    static const char *const pkeys[] = {"id",      "name",      "description",   "purposes",
                                        "callers", "retention", "upstream_host", "unlisted",
                                        "routes"};
    static const char *const rkeys[] = {"method",  "path", "params", "query",
                                        "headers", "body", "fields"};
    const char *prev = "";
    size_t i, k, m;
    json_t *p, *r, *f;
    size_t nfields = 0;
    json_array_foreach(providers, i, p)
    {
        expect_keys(p, pkeys, sizeof pkeys / sizeof pkeys[0], "provider");
        const char *id = json_string_value(json_object_get(p, "id"));
        cr_assert(id != NULL);
        cr_expect_lt(strcmp(prev, id), 0, "providers not sorted: %s then %s", prev, id);
        prev = id;
        json_array_foreach(json_object_get(p, "routes"), k, r)
        {
            expect_keys(r, rkeys, sizeof rkeys / sizeof rkeys[0], "route");
            json_array_foreach(json_object_get(r, "fields"), m, f)
            {
                const char *act = json_string_value(json_object_get(f, "action"));
                cr_assert(act != NULL);
                size_t want = 3;
                if (strcmp(act, "mask") == 0 || strcmp(act, "truncate") == 0) want = 4;
                cr_expect_eq(json_object_size(f), want, "field %s",
                             json_string_value(json_object_get(f, "path")));
                nfields++;
            }
        }
    }
    cr_expect_eq(nfields, 29);

    /* the parcel carrier, as its contract says */
    json_t *pc = json_array_get(providers, 2);
    cr_expect_str_eq(json_string_value(json_object_get(pc, "id")), "parcel-carrier");
    cr_expect_str_eq(json_string_value(json_object_get(pc, "retention")), "90d");
    cr_expect_str_eq(json_string_value(json_object_get(pc, "upstream_host")),
                     "api.carrier.example");
    json_t *ship = json_array_get(json_object_get(pc, "routes"), 0);
    json_t *phone = json_array_get(json_object_get(ship, "fields"), 4);
    cr_expect_str_eq(json_string_value(json_object_get(phone, "path")), "recipient.phone");
    cr_expect_str_eq(json_string_value(json_object_get(phone, "action")), "mask");
    cr_expect_eq(json_integer_value(json_object_get(phone, "keep_last")), 4);
    cr_expect_str_eq(json_string_value(json_object_get(phone, "category")), "contact");
    json_t *labels = json_array_get(json_object_get(pc, "routes"), 2);
    cr_expect_str_eq(json_string_value(json_object_get(labels, "body")), "opaque");
    json_t *get = json_array_get(json_object_get(pc, "routes"), 1);
    json_t *param = json_array_get(json_object_get(get, "params"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(param, "name")), "customer_id");
    cr_expect_str_eq(json_string_value(json_object_get(param, "action")), "hash");
    /* the payment processor refuses unlisted fields */
    json_t *pp = json_array_get(providers, 3);
    cr_expect_str_eq(json_string_value(json_object_get(pp, "unlisted")), "reject");
    json_decref(j);
}

Test(register, json_strings_round_trip)
{
    json_t *j = register_json("tests/register/data/edge");
    json_t *p = json_array_get(json_object_get(j, "providers"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(p, "name")),
                     "Pipes | Commas, \"Quotes\" & *Stars*");
    cr_expect_str_eq(json_string_value(json_object_get(p, "description")),
                     "1. starts like a list\nand spans two lines, with a `backtick`");
    cr_expect(json_is_null(json_object_get(p, "callers")));
    cr_expect(json_is_null(json_object_get(p, "retention")));
    cr_expect_str_eq(json_string_value(json_object_get(p, "upstream_host")),
                     "api.edge.example:8443");
    json_decref(j);
}

/* ------------------------------------------------------------- markdown */

Test(register, markdown_escapes_table_cells)
{
    struct run r;
    RUN(&r, NULL, NULL, "register", "tests/register/data/edge");
    cr_assert_eq(r.status, 0);
    /* a '|' in a name or a field would end a table cell */
    cr_expect(strstr(r.out, "## Pipes \\| Commas, \"Quotes\" \\& \\*Stars\\* (`edge-case`)\n") !=
                  NULL,
              "%s", r.out);
    cr_expect(strstr(r.out, "| body | `meta.\"a\\|b\"` | keep | |\n") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "| body | ``code`tick`` | mask keep_first 2 | |\n") != NULL, "%s",
              r.out);
    /* a description is one paragraph that does not start a list */
    cr_expect(
        strstr(r.out, "\n1\\. starts like a list and spans two lines, with a \\`backtick\\`\n") !=
            NULL,
        "%s", r.out);
    /* every table row has as many cells as its header */
    for (const char *l = r.out; *l;) {
        const char *eol = strchr(l, '\n');
        size_t len = eol ? (size_t)(eol - l) : strlen(l);
        if (len > 0 && l[0] == '|') {
            size_t pipes = 0;
            for (size_t i = 0; i < len; i++)
                pipes += l[i] == '|' && (i == 0 || l[i - 1] != '\\');
            cr_expect(pipes == 3 || pipes == 5 || pipes == 7, "row: %.*s", (int)len, l);
        }
        if (!eol) break;
        l = eol + 1;
    }
    run_free(&r);
}

/* ------------------------------------------------------- exit statuses */

Test(register, help)
{
    struct run r;
    RUN(&r, NULL, NULL, "register", "--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strncmp(r.out, "usage: privgate register ", 25) == 0, "%s", r.out);
    run_free(&r);
}

static void expect_usage(const char *cwd, const char *const *args, const char *reason)
{
    struct run r;
    run_privgate_str(&r, cwd, NULL, args);
    cr_expect_eq(r.status, 2, "stderr: %s", r.err);
    cr_expect_str_empty(r.out);
    cr_expect(strstr(r.err, reason) != NULL, "stderr: %s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "stderr: %s", r.err);
    run_free(&r);
}

#define EXPECT_USAGE(cwd, reason, ...)                                                             \
    do {                                                                                           \
        const char *const args_[] = {"register", __VA_ARGS__, NULL};                               \
        expect_usage((cwd), args_, (reason));                                                      \
    } while (0)

Test(register, usage_errors)
{
    EXPECT_USAGE(NULL, "unknown format 'xml'", "--format", "xml", "examples/contracts");
    EXPECT_USAGE(NULL, "unknown format 'MD'", "-f", "MD", "examples/contracts");
    EXPECT_USAGE(NULL, "option '--format' needs a value", "examples/contracts", "--format");
    EXPECT_USAGE(NULL, "unknown option '--bogus'", "--bogus", "examples/contracts");
    EXPECT_USAGE(NULL, "not both", "-c", "examples/privgate.yaml", "examples/contracts");
    EXPECT_USAGE(src_path("tests/register"), "no ./privgate.yaml", "-f", "csv");
}

Test(register, invalid_contract)
{
    struct run r;
    RUN(&r, NULL, NULL, "register", "examples/contracts", "tests/cli/data/invalid/version-2.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect_str_empty(r.out);
    cr_expect(has_diag_line(r.err, "tests/cli/data/invalid/version-2.yaml"), "%s", r.err);
    run_free(&r);
    RUN(&r, NULL, NULL, "register", "-c", "tests/cli/data/bad-config/privgate.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
    RUN(&r, NULL, NULL, "register", "-f", "json", "no/such/contract.yaml");
    cr_expect_eq(r.status, 1, "stderr: %s", r.err);
    cr_expect_str_empty(r.out);
    run_free(&r);
}

Test(register, deterministic)
{
    struct run a, b;
    RUN(&a, NULL, NULL, "register", "-f", "json", "examples/contracts");
    RUN(&b, NULL, NULL, "register", "-f", "json", "examples/contracts");
    cr_expect_str_eq(a.out, b.out);
    run_free(&a);
    run_free(&b);
}
