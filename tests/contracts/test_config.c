/* contracts/config.c and set.c: privgate.yaml, loading sets, providers. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

Test(config, defaults)
{
    struct ctr_config c;
    ctr_config_defaults(&c);
    cr_expect_eq(c.limits.max_body, 8388608);
    cr_expect_eq(c.limits.max_depth, 64);
    cr_expect_eq(c.limits.max_header_bytes, 65536);
    cr_expect_eq(c.limits.max_streams_per_connection, 128);
    cr_expect_eq(c.limits.upstream_connect_timeout_ms, 5000);
    cr_expect_eq(c.limits.upstream_timeout_ms, 30000);
    cr_expect_eq(c.limits.idle_timeout_ms, 120000);
    cr_expect_eq(c.limits.header_timeout_ms, 10000);
    cr_expect(!c.audit_require);
    cr_expect_eq(c.workers, 0);
    cr_expect_str_eq(c.caller_header, "privgate-caller");
    cr_expect_str_eq(c.audit_path, "-");
    cr_expect_eq(c.nforbidden, 0);
    cr_expect_eq(c.nlisten, 0);
    cr_expect_null(c.contracts_dir);
}

Test(config, minimal_file_gets_defaults)
{
    struct diaglog l;
    struct ctr_set *s = ctr_set_load(DATA("gw-minimal/privgate.yaml"), diaglog_init(&l));
    cr_assert_not_null(s, "%s", l.text);
    const struct ctr_config *c = &s->config;
    cr_assert_eq(c->nlisten, 1);
    cr_expect_str_eq(c->listen[0].address, "127.0.0.1:8080");
    cr_expect_str_eq(c->listen[0].host, "127.0.0.1");
    cr_expect_eq(c->listen[0].port, 8080);
    cr_expect_not(c->listen[0].tls);
    cr_expect_null(c->admin_address);
    cr_expect_str_eq(c->contracts_dir, CTR_TEST_DATA "/gw-minimal/contracts");
    cr_expect_eq(c->limits.max_body, 8388608);
    cr_expect_eq(c->limits.max_depth, 64);
    cr_expect_eq(c->workers, 0);
    cr_expect_str_eq(c->audit_path, "-");
    cr_expect_str_eq(c->caller_header, "privgate-caller");
    cr_expect_str_eq(c->file, DATA("gw-minimal/privgate.yaml"));
    cr_expect_eq(s->ncontracts, 1);
    ctr_set_unref(s);
}

Test(config, full_file)
{
    struct diaglog l;
    struct ctr_set *s = ctr_set_load(DATA("gw/privgate.yaml"), diaglog_init(&l));
    cr_assert_not_null(s, "%s", l.text);
    const struct ctr_config *c = &s->config;
    cr_assert_eq(c->nlisten, 2);
    cr_expect_str_eq(c->listen[1].address, "[::1]:8443");
    cr_expect_str_eq(c->listen[1].host, "::1");
    cr_expect_eq(c->listen[1].port, 8443);
    cr_expect(c->listen[1].tls);
    /* relative to the file naming them */
    cr_expect_str_eq(c->listen[1].cert, CTR_TEST_DATA "/gw/tls/gateway.pem");
    cr_expect_str_eq(c->listen[1].key, CTR_TEST_DATA "/gw/tls/gateway.key");
    cr_expect_str_eq(c->listen[1].client_ca, CTR_TEST_DATA "/gw/tls/callers-ca.pem");
    cr_expect_null(c->listen[0].cert);
    cr_expect_str_eq(c->admin_address, "127.0.0.1:9901");
    cr_expect_str_eq(c->admin_host, "127.0.0.1");
    cr_expect_eq(c->admin_port, 9901);
    cr_expect_eq(c->workers, 4);
    cr_expect_str_eq(c->audit_path, CTR_TEST_DATA "/gw/audit.log");
    cr_assert_eq(c->nforbidden, 1);
    cr_expect_str_eq(c->forbidden_purposes[0], "third-party-marketing");
    cr_expect_str_eq(c->caller_header, "x-caller");
    cr_expect_eq(c->limits.max_body, 1048576);
    cr_expect_eq(c->limits.max_depth, 16);
    cr_expect_eq(c->limits.max_header_bytes, 16384);
    cr_expect_eq(c->limits.max_streams_per_connection, 32);
    cr_expect_eq(c->limits.upstream_connect_timeout_ms, 250);
    cr_expect_eq(c->limits.upstream_timeout_ms, 10000);
    cr_expect_eq(c->limits.idle_timeout_ms, 120000);
    cr_expect_eq(c->limits.header_timeout_ms, 1500);
    cr_expect(c->audit_require);
    /* every *.yaml of the folder, sorted; notes.txt ignored */
    cr_assert_eq(s->ncontracts, 2);
    cr_expect_str_eq(s->contracts[0]->provider, "pay");
    cr_expect_str_eq(s->contracts[1]->provider, "survey");
    ctr_set_unref(s);
}

Test(config, errors_with_positions)
{
    struct diaglog l;
    cr_expect_null(ctr_set_load(DATA("gw-bad/privgate.yaml"), diaglog_init(&l)));
    HAS_DIAG(&l, "gw-bad/privgate.yaml:1:1: 'contracts' is required (the folder of the contracts)");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:2:14: listen.address: expected host:port, got 'localhost'");
    HAS_DIAG(
        &l, "gw-bad/privgate.yaml:3:14: listen.address: expected host:port, got '127.0.0.1:99999'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:6:13: listen.tls.cert: cannot read '" CTR_TEST_DATA
                 "/gw-bad/tls/missing.pem': No such file or directory");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:6:7: listen.tls: 'key' is required");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:7:5: listen: unknown key 'adress'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:7:5: listen: 'address' is required");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:8:19: admin.address: expected host:port, got ':80'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:9:10: workers: expected 'auto' or a number");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:10:1: unknown key 'color'");
    HAS_DIAG(
        &l,
        "gw-bad/privgate.yaml:12:13: limits.max_body: expected a size (B, KiB, MiB), got '8MB'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:13:14: limits.max_depth: expected a number");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:14:21: limits.max_header_bytes: expected a size (B, KiB, "
                 "MiB), got '64 KiB'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:15:21: limits.upstream_timeout: expected a duration (ms, s, "
                 "m), got '30'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:16:17: limits.idle_timeout: expected a duration (ms, s, m), "
                 "got '2h'");
    HAS_DIAG(&l, "gw-bad/privgate.yaml:17:3: limits: unknown key 'max_streams'");
    cr_expect_eq(l.d.errors, 16, "%s", l.text);
}

/* Writes |text| as privgate.yaml in a fresh folder (with an empty contracts
 * folder) and loads it. */
static struct ctr_set *load_text(const char *text, struct diaglog *l, char *dir)
{
    snprintf(dir, 32, "%s", TMP_TEMPLATE("ctr-cfg"));
    cr_assert_not_null(mkdtemp(dir));
    char p[128];
    snprintf(p, sizeof p, "%s/contracts", dir);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/privgate.yaml", dir);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
    return ctr_set_load(p, diaglog_init(l));
}

static void cleanup(const char *dir)
{
    char p[128];
    snprintf(p, sizeof p, "%s/privgate.yaml", dir);
    remove(p);
    snprintf(p, sizeof p, "%s/contracts", dir);
    rmdir(p);
    rmdir(dir);
}

Test(config, sizes_and_durations)
{
    char dir[32];
    struct diaglog l;
    struct ctr_set *s = load_text("contracts: contracts\nworkers: auto\nlimits:\n"
                                  "  max_body: 8388608\n  max_header_bytes: 512B\n"
                                  "  upstream_connect_timeout: 1500ms\n  upstream_timeout: 1m\n"
                                  "  idle_timeout: 45s\n",
                                  &l, dir);
    cr_assert_not_null(s, "%s", l.text);
    cr_expect_eq(s->config.limits.max_body, 8388608);
    cr_expect_eq(s->config.limits.max_header_bytes, 512);
    cr_expect_eq(s->config.limits.upstream_connect_timeout_ms, 1500);
    cr_expect_eq(s->config.limits.upstream_timeout_ms, 60000);
    cr_expect_eq(s->config.limits.idle_timeout_ms, 45000);
    cr_expect_eq(s->config.workers, 0);
    cr_expect_eq(s->ncontracts, 0);
    ctr_set_unref(s);
    cleanup(dir);
}

Test(config, workers_and_listen_errors)
{
    char dir[32];
    struct diaglog l;
    cr_expect_null(load_text("contracts: contracts\nworkers: 0\nlisten: []\n"
                             "audit: { path: -, rotate: daily }\n",
                             &l, dir));
    HAS_DIAG(&l, "privgate.yaml:2:10: workers: must be 'auto' or at least 1");
    HAS_DIAG(&l, "privgate.yaml:3:9: listen: at least one listener is needed");
    HAS_DIAG(&l, "privgate.yaml:4:19: audit: unknown key 'rotate'");
    cleanup(dir);
}

Test(config, forbidden_purpose_in_contract)
{
    struct diaglog l;
    cr_expect_null(ctr_set_load(DATA("gw-forbidden/privgate.yaml"), diaglog_init(&l)));
    HAS_DIAG(&l, "gw-forbidden/contracts/ads.yaml:3:25: purposes: 'third-party-marketing' is "
                 "forbidden by policy.forbidden_purposes");
    cr_expect_eq(l.d.errors, 1);
}

Test(config, missing_contracts_folder)
{
    char dir[32];
    struct diaglog l;
    cr_expect_null(load_text("contracts: nowhere\n", &l, dir));
    cr_expect(strstr(l.text, "/nowhere:0:0: cannot read the contracts folder: No such file or "
                             "directory") != NULL,
              "%s", l.text);
    cleanup(dir);
}

Test(set, find_provider)
{
    struct diaglog l;
    struct ctr_set *s = ctr_set_load(DATA("gw/privgate.yaml"), diaglog_init(&l));
    cr_assert_not_null(s);
    struct flt_str rest;
    const char *p = "/survey/responses?lang=en";
    const struct ctr_contract *c = ctr_set_find_provider(s, p, strlen(p), &rest);
    cr_assert_not_null(c);
    cr_expect_str_eq(c->provider, "survey");
    cr_expect_eq(rest.len, strlen("/responses?lang=en"));
    cr_expect(memcmp(rest.p, "/responses?lang=en", rest.len) == 0);
    p = "/pay";
    c = ctr_set_find_provider(s, p, strlen(p), &rest);
    cr_assert_not_null(c);
    cr_expect_eq(rest.len, 0);
    cr_expect_null(ctr_set_find_provider(s, "/pa/x", 5, &rest));
    cr_expect_null(ctr_set_find_provider(s, "/payx/x", 7, &rest));
    cr_expect_null(ctr_set_find_provider(s, "/zzz", 4, &rest));
    cr_expect_null(ctr_set_find_provider(s, "pay/x", 5, &rest));
    cr_expect_null(ctr_set_find_provider(s, "/", 1, &rest));
    ctr_set_unref(s);
}

Test(set, refcount)
{
    struct diaglog l;
    struct ctr_set *s = load_one(DATA("carrier.yaml"), &l);
    cr_assert_not_null(s);
    cr_expect_eq(atomic_load(&s->refs), 1);
    cr_expect_eq(ctr_set_ref(s), s);
    cr_expect_eq(atomic_load(&s->refs), 2);
    ctr_set_unref(s);
    cr_expect_eq(atomic_load(&s->refs), 1);
    ctr_set_unref(s);
    ctr_set_unref(NULL);
}

Test(set, load_contracts_default_config)
{
    struct diaglog l;
    const char *paths[] = {DATA("gw/contracts"), DATA("carrier.yaml")};
    struct ctr_set *s = ctr_set_load_contracts(paths, 2, diaglog_init(&l));
    cr_assert_not_null(s, "%s", l.text);
    cr_expect_eq(s->ncontracts, 3);
    cr_expect_str_eq(s->contracts[0]->provider, "parcel-carrier");
    cr_expect_eq(s->config.nforbidden, 0);
    cr_expect_eq(s->config.limits.max_body, 8388608);
    ctr_set_unref(s);
}

/* Review finding 7: policy.forbidden_purposes is compared without regard
 * to letter case, and neither side may carry surrounding white space. */
Test(config, forbidden_purposes_any_case_no_space)
{
    char dir[] = TMP_TEMPLATE("ctr-forbid");
    cr_assert_not_null(mkdtemp(dir));
    char p[128], c[128], cd[96];
    snprintf(cd, sizeof cd, "%s/contracts", dir);
    cr_assert_eq(mkdir(cd, 0700), 0);
    snprintf(p, sizeof p, "%s/privgate.yaml", dir);
    snprintf(c, sizeof c, "%s/ads.yaml", cd);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("contracts: contracts\npolicy:\n  forbidden_purposes: [Third-Party-Marketing, "
          "\" profiling\"]\n",
          f);
    fclose(f);
    f = fopen(c, "w");
    cr_assert_not_null(f);
    fputs("contract: 1\nprovider: ads\npurposes: [measurement, third-party-marketing]\n"
          "upstream: { url: \"https://ads.example\" }\nroutes: [{ method: POST, path: /e }]\n",
          f);
    fclose(f);
    struct diaglog l;
    cr_expect_null(ctr_set_load(p, diaglog_init(&l)));
    cr_expect(strstr(l.text, "privgate.yaml:3:47: policy.forbidden_purposes: ' profiling' has "
                             "leading or trailing white space\n") != NULL,
              "%s", l.text);
    cr_expect(strstr(l.text, "ads.yaml:3:25: purposes: 'third-party-marketing' is forbidden by "
                             "policy.forbidden_purposes\n") != NULL,
              "%s", l.text);
    remove(c);
    remove(p);
    rmdir(cd);
    rmdir(dir);
}
