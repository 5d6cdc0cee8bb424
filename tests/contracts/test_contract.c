/* contracts/contract.c: contract parsing and every contract error. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static const struct ctr_contract *only(struct ctr_set *s)
{
    cr_assert_not_null(s);
    cr_assert_eq(s->ncontracts, 1);
    return s->contracts[0];
}

Test(contract, carrier_values)
{
    struct diaglog l;
    struct ctr_set *s = load_one(DATA("carrier.yaml"), &l);
    cr_assert_not_null(s, "%s", l.text);
    const struct ctr_contract *c = only(s);
    cr_expect_str_eq(c->provider, "parcel-carrier");
    cr_expect_str_eq(c->name, "Example Parcel Carrier Ltd.");
    cr_expect_str_eq(c->retention, "90d");
    cr_assert_eq(c->npurposes, 2);
    cr_expect_str_eq(c->purposes[1], "returns");
    cr_assert_eq(c->ncallers, 2);
    cr_expect_str_eq(c->callers[0], "orders-service");
    cr_expect_str_eq(c->upstream.scheme, "https");
    cr_expect_str_eq(c->upstream.host, "api.carrier.example");
    cr_expect_eq(c->upstream.port, 443);
    cr_expect_str_eq(c->upstream.base_path, "/api");
    cr_expect_str_eq(c->upstream.server_name, "api.carrier.example");
    cr_expect_str_eq(c->upstream.auth_header, "authorization");
    /* one trailing newline trimmed */
    cr_expect_str_eq(c->upstream.auth_value, "Bearer t0ken-s3cret");
    cr_expect(c->upstream.hmac.set);
    cr_assert_eq(c->headers.n, 1);
    cr_expect_eq(c->headers.v[0].len, strlen("idempotency-key"));
    cr_expect(memcmp(c->headers.v[0].p, "idempotency-key", 15) == 0);
    cr_expect_not(c->reject_unlisted);
    cr_assert_eq(c->nroutes, 5);
    const struct ctr_route *r = &c->routes[0];
    cr_expect_str_eq(r->method, "POST");
    cr_expect_str_eq(r->path, "/v1/shipments");
    cr_expect_eq(r->body, CTR_BODY_FIELDS);
    cr_assert_eq(r->nfields, 7);
    cr_expect_str_eq(r->fields[6].path, "recipient.phone");
    cr_expect_eq(r->fields[6].action.kind, FLT_ACT_MASK);
    cr_expect_eq(r->fields[6].action.n, 4);
    cr_expect(r->fields[6].action.mask_keep_last);
    cr_expect_str_eq(r->fields[6].category, "contact");
    cr_expect_eq(r->fields[5].action.kind, FLT_ACT_HASH);
    cr_expect_null(r->fields[0].category);
    cr_expect_eq(r->query.n, 1);
    cr_expect_eq(r->headers.n, 1);
    cr_expect_eq(c->routes[1].body, CTR_BODY_NONE);
    cr_expect_eq(c->routes[1].tmpl.seg[2].action, FLT_PARAM_HASH);
    cr_expect_eq(c->routes[3].body, CTR_BODY_OPAQUE);
    cr_expect(c->routes[3].tmpl.rest);
    cr_expect_eq(c->routes[4].body, CTR_BODY_FIELDS);
    cr_expect_eq(c->routes[4].nfields, 0); /* fields: {} is valid */
    cr_expect_not_null(c->routes[4].rules);
    cr_expect_eq(c->ntests, 3);
    cr_expect(strstr(c->file, "carrier.yaml") != NULL);
    ctr_set_unref(s);
}

Test(contract, sha256_of_file_bytes)
{
    struct diaglog l;
    struct ctr_set *s = load_one(DATA("carrier.yaml"), &l);
    const struct ctr_contract *c = only(s);
    FILE *f = fopen(DATA("carrier.yaml"), "rb");
    cr_assert_not_null(f);
    static unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(buf, n, md, &mdlen, EVP_sha256(), NULL);
    char want[72] = "sha256:";
    for (int i = 0; i < 32; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
    cr_expect_str_eq(c->sha256, want);
    ctr_set_unref(s);
}

Test(contract, http_with_insecure_and_reject)
{
    struct diaglog l;
    struct ctr_set *s = load_one(DATA("gw/contracts/b-survey.yaml"), &l);
    cr_assert_not_null(s, "%s", l.text);
    const struct ctr_contract *c = only(s);
    cr_expect_str_eq(c->upstream.scheme, "http");
    cr_expect(c->upstream.insecure);
    cr_expect_str_eq(c->upstream.host, "127.0.0.1");
    cr_expect_eq(c->upstream.port, 9000);
    cr_expect_str_eq(c->upstream.base_path, "/hooks");
    cr_expect(c->reject_unlisted);
    cr_expect_not(c->upstream.hmac.set);
    cr_expect_null(c->upstream.auth_header);
    cr_expect_eq(c->routes[0].fields[1].action.kind, FLT_ACT_TRUNCATE);
    cr_expect_eq(c->routes[0].fields[1].action.n, 5);
    cr_expect_eq(c->routes[0].fields[2].action.kind, FLT_ACT_YEAR);
    ctr_set_unref(s);
}

Test(contract, missing_file)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("nonexistent.yaml"), &l));
    HAS_DIAG(&l, "nonexistent.yaml:0:0: cannot read: No such file or directory");
}

Test(contract, yaml_syntax)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/syntax.yaml"), &l));
    HAS_DIAG(&l, "errors/syntax.yaml:4:7: YAML syntax error: did not find expected ',' or ']' "
                 "while parsing a flow sequence");
    cr_expect_eq(l.d.errors, 1);
}

Test(contract, unknown_keys_all_reported)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/unknown-keys.yaml"), &l));
    HAS_DIAG(&l, "errors/unknown-keys.yaml:4:1: unknown key 'colour'");
    HAS_DIAG(&l, "errors/unknown-keys.yaml:7:3: upstream: unknown key 'timeout'");
    HAS_DIAG(&l, "errors/unknown-keys.yaml:11:5: route: unknown key 'bodyy'");
    cr_expect_eq(l.d.errors, 3, "%s", l.text);
}

Test(contract, wrong_types)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/types.yaml"), &l));
    HAS_DIAG(&l, "errors/types.yaml:3:11: purposes: expected a list");
    HAS_DIAG(&l, "errors/types.yaml:5:8: upstream.url: expected a string");
    HAS_DIAG(&l, "errors/types.yaml:6:13: upstream.insecure: expected true or false");
    HAS_DIAG(&l, "errors/types.yaml:8:3: routes: expected a list");
    /* fail closed: an empty callers list is not "any caller" */
    HAS_DIAG(&l, "errors/types.yaml:9:10: callers: an empty list allows no caller (remove the key "
                 "to allow any caller)");
}

Test(contract, duplicates_and_second_document)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/documents.yaml"), &l));
    HAS_DIAG(&l, "errors/documents.yaml:3:1: duplicate key 'provider'");
    HAS_DIAG(&l, "errors/documents.yaml:4:15: purposes: 'p' listed twice");
    HAS_DIAG(&l, "errors/documents.yaml:6:46: query: 'x' listed twice");
    HAS_DIAG(&l, "errors/documents.yaml:8:1: a file holds one YAML document");
    cr_expect_eq(l.d.errors, 4, "%s", l.text);
}

Test(contract, version_not_1)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/version.yaml"), &l));
    HAS_DIAG(&l, "errors/version.yaml:1:11: contract: unsupported format version (must be 1)");
}

Test(contract, bad_provider_id)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/provider.yaml"), &l));
    HAS_DIAG(&l, "errors/provider.yaml:2:11: provider: 'Parcel_Carrier' must match [a-z0-9-]+");
}

Test(contract, field_paths)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/fields.yaml"), &l));
    /* messages come from flt_rules_add; positions are the keys' */
    cr_expect(strstr(l.text, "errors/fields.yaml:10:9: body.fields: ") != NULL, "%s", l.text);
    cr_expect(strstr(l.text, "errors/fields.yaml:11:9: body.fields: ") != NULL, "%s", l.text);
    /* `$.a` and `a` are the same path */
    cr_expect(strstr(l.text, "errors/fields.yaml:17:9: body.fields: ") != NULL, "%s", l.text);
    /* a transform below a kept container */
    cr_expect(strstr(l.text, "errors/fields.yaml:23:9: body.fields: ") != NULL, "%s", l.text);
    /* a wildcard and a named entry disagree: from flt_rules_compile, at `fields:` */
    cr_expect(strstr(l.text, "errors/fields.yaml:27:7: body.fields: ambiguous paths") != NULL, "%s",
              l.text);
    cr_expect_eq(l.d.errors, 5, "%s", l.text);
}

Test(contract, actions)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/actions.yaml"), &l));
    HAS_DIAG(&l, "errors/actions.yaml:11:12: mask needs exactly one of keep_first, keep_last");
    HAS_DIAG(&l, "errors/actions.yaml:12:22: mask needs exactly one of keep_first, keep_last");
    HAS_DIAG(&l, "errors/actions.yaml:13:22: mask needs exactly one of keep_first, keep_last");
    HAS_DIAG(&l, "errors/actions.yaml:14:39: keep_last: must be at most 64");
    HAS_DIAG(&l, "errors/actions.yaml:15:22: truncate needs 'length'");
    HAS_DIAG(&l, "errors/actions.yaml:16:28: length applies to truncate only");
    HAS_DIAG(&l, "errors/actions.yaml:17:12: unknown action 'frobnicate' (keep, hash, mask, "
                 "truncate, year)");
    HAS_DIAG(&l, "errors/actions.yaml:18:28: field: unknown key 'colour'");
    HAS_DIAG(&l, "errors/actions.yaml:19:12: truncate needs 'length'");
    HAS_DIAG(&l, "errors/actions.yaml:20:28: keep_first applies to mask only");
    /* line 10, {action: mask, keep_last: 4, category: contact}, is valid */
    cr_expect_eq(l.d.errors, 10, "%s", l.text);
}

Test(contract, hash_needs_key)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/hash-no-key.yaml"), &l));
    HAS_DIAG(&l, "errors/hash-no-key.yaml:8:19: hash needs upstream.hmac_key_file");
    HAS_DIAG(&l, "errors/hash-no-key.yaml:11:22: hash needs upstream.hmac_key_file");
}

Test(contract, http_needs_insecure)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/http.yaml"), &l));
    HAS_DIAG(&l, "errors/http.yaml:5:8: upstream.url: http:// needs 'insecure: true'");
}

Test(contract, unreadable_secrets_name_file_not_content)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/secrets.yaml"), &l));
    HAS_DIAG(&l, "errors/secrets.yaml:8:17: upstream.auth.value_file: cannot read "
                 "'" CTR_TEST_DATA "/errors/../secrets/missing-token': No such file or directory");
    HAS_DIAG(&l, "errors/secrets.yaml:9:18: upstream.hmac_key_file: cannot read "
                 "'" CTR_TEST_DATA "/errors/../secrets': Is a directory");
}

Test(contract, secret_content_never_printed)
{
    /* a credential with a newline inside is refused without showing it */
    char dir[] = TMP_TEMPLATE("ctr-secret");
    cr_assert_not_null(mkdtemp(dir));
    char tok[64], yml[64];
    snprintf(tok, sizeof tok, "%s/tok", dir);
    snprintf(yml, sizeof yml, "%s/c.yaml", dir);
    FILE *f = fopen(tok, "w");
    fputs("PRIVATE-VALUE\nSECOND-LINE\n", f);
    fclose(f);
    f = fopen(yml, "w");
    fputs("contract: 1\nprovider: s\npurposes: [p]\nupstream:\n  url: https://x.example\n"
          "  auth: { header: x-key, value_file: tok }\nroutes: [{ method: GET, path: /a }]\n",
          f);
    fclose(f);
    struct diaglog l;
    cr_expect_null(load_one(yml, &l));
    cr_expect(strstr(l.text, ":6:38: upstream.auth.value_file: the value contains CR, LF or NUL") !=
                  NULL,
              "%s", l.text);
    cr_expect(strstr(l.text, "PRIVATE") == NULL);
    cr_expect(strstr(l.text, "SECOND") == NULL);
    remove(tok);
    remove(yml);
    rmdir(dir);
}

Test(contract, routes_methods_params_unlisted)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/routes.yaml"), &l));
    HAS_DIAG(&l, "errors/routes.yaml:5:11: unlisted: must be remove or reject");
    HAS_DIAG(&l, "errors/routes.yaml:7:13: method: invalid method 'FETCH'");
    HAS_DIAG(&l, "errors/routes.yaml:8:11: path: must start with '/'");
    /* template message from flt_template_compile */
    cr_expect(strstr(l.text, "errors/routes.yaml:10:11: path: ") != NULL, "%s", l.text);
    HAS_DIAG(&l, "errors/routes.yaml:13:15: params: the path has no parameter '{other}'");
    HAS_DIAG(&l, "errors/routes.yaml:13:32: params: 'id' must be keep or hash");
    HAS_DIAG(&l, "errors/routes.yaml:14:5: route GET /v1/{id} is defined twice (first at line 11)");
    cr_expect_eq(l.d.errors, 7, "%s", l.text);
}

Test(contract, duplicate_provider_across_files)
{
    struct diaglog l;
    const char *paths[] = {DATA("dup")};
    cr_expect_null(ctr_set_load_contracts(paths, 1, diaglog_init(&l)));
    HAS_DIAG(&l,
             "dup/b.yaml:3:11: provider 'same' is already defined in " CTR_TEST_DATA "/dup/a.yaml");
    cr_expect_eq(l.d.errors, 1);
}

Test(contract, every_error_file_fails_alone)
{
    /* loading several files reports the errors of all of them */
    struct diaglog l;
    const char *paths[] = {DATA("errors/version.yaml"), DATA("errors/http.yaml"),
                           DATA("carrier.yaml")};
    cr_expect_null(ctr_set_load_contracts(paths, 3, diaglog_init(&l)));
    cr_expect_eq(l.d.errors, 2, "%s", l.text);
}

/* Review finding 2: YAML wants unique keys, libyaml does not check; a
 * duplicate would silently turn `id: hash` into `id: keep`. Every mapping
 * of the file refuses them, at the second occurrence. */
Test(contract, duplicate_keys_everywhere)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/dup-keys.yaml"), &l));
    HAS_DIAG(&l, "errors/dup-keys.yaml:6:3: duplicate key 'url'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:8:68: duplicate key 'header'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:14:7: duplicate key 'id'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:17:5: duplicate key 'method'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:22:9: duplicate key 'customer_id'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:23:50: duplicate key 'keep_last'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:29:46: duplicate key 'x'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:29:29: request.headers: duplicate header 'cookie'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:30:28: duplicate key 'order_id'");
    HAS_DIAG(&l, "errors/dup-keys.yaml:31:35: duplicate key 'outcome'");
    /* the rules see the duplicate field path too */
    HAS_DIAG(&l, "errors/dup-keys.yaml:22:9: body.fields: \"customer_id\" is listed twice");
    cr_expect_eq(l.d.errors, 11, "%s", l.text);
}

/* The same through a gateway config: root, nested and list-item maps. */
Test(contract, duplicate_keys_in_config)
{
    char dir[] = TMP_TEMPLATE("ctr-dupcfg");
    cr_assert_not_null(mkdtemp(dir));
    char p[96];
    snprintf(p, sizeof p, "%s/privgate.yaml", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    char c[96];
    snprintf(c, sizeof c, "%s/c", dir);
    cr_assert_eq(mkdir(c, 0700), 0);
    fputs("contracts: c\n"
          "limits:\n  max_body: 1KiB\n  max_body: 1MiB\n"
          "listen:\n  - { address: \"127.0.0.1:1\", address: \"127.0.0.1:2\" }\n"
          "contracts: other\n",
          f);
    fclose(f);
    struct diaglog l;
    cr_expect_null(ctr_set_load(p, diaglog_init(&l)));
    char want[3][160];
    snprintf(want[0], sizeof want[0], "%s:4:3: duplicate key 'max_body'\n", p);
    snprintf(want[1], sizeof want[1], "%s:6:31: duplicate key 'address'\n", p);
    snprintf(want[2], sizeof want[2], "%s:7:1: duplicate key 'contracts'\n", p);
    for (int i = 0; i < 3; i++)
        cr_expect(strstr(l.text, want[i]) != NULL, "missing %s in\n%s", want[i], l.text);
    cr_expect_eq(l.d.errors, 3, "%s", l.text);
    remove(p);
    rmdir(c);
    rmdir(dir);
}

/* Review finding 7: a purpose with leading or trailing white space is
 * refused (it could never match a request's, nor a forbidden one). */
Test(contract, purposes_without_surrounding_space)
{
    struct diaglog l;
    cr_expect_null(load_one(DATA("errors/purpose-space.yaml"), &l));
    HAS_DIAG(&l, "errors/purpose-space.yaml:3:15: purposes: ' q' has leading or trailing white "
                 "space");
    HAS_DIAG(&l, "errors/purpose-space.yaml:3:21: purposes: 'r ' has leading or trailing white "
                 "space");
    HAS_DIAG(&l, "errors/purpose-space.yaml:3:27: purposes: '\ts' has leading or trailing white "
                 "space");
    cr_expect_eq(l.d.errors, 3, "%s", l.text);
}

/* Review finding 7 (verification): hash without hmac_key_file is refused
 * for every route with fields, the form-body ones included (a form body is
 * filtered by the same `fields:`), and for params. */
Test(contract, hash_without_key_on_form_route)
{
    char dir[] = TMP_TEMPLATE("ctr-formkey");
    cr_assert_not_null(mkdtemp(dir));
    char p[96];
    snprintf(p, sizeof p, "%s/c.yaml", dir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("contract: 1\nprovider: form\npurposes: [p]\nupstream: { url: \"https://x.example\" }\n"
          "routes:\n  - method: POST\n    path: /form\n    body:\n      fields:\n"
          "        email: { action: hash }\n",
          f);
    fclose(f);
    struct diaglog l;
    cr_expect_null(load_one(p, &l));
    char want[160];
    snprintf(want, sizeof want, "%s:10:26: hash needs upstream.hmac_key_file\n", p);
    cr_expect(strstr(l.text, want) != NULL, "missing %s in\n%s", want, l.text);
    remove(p);
    rmdir(dir);
}

/* upstream.protocol (not in SPEC 4; docs/GATEWAY.md "HTTP/1.1 upstreams"):
 * h2 | http/1.1 | auto, default auto; anything else is an error. */
Test(contract, upstream_protocol)
{
    char dir[] = TMP_TEMPLATE("ctr-proto");
    cr_assert_not_null(mkdtemp(dir));
    static const char *const vals[] = {NULL, "auto", "h2", "http/1.1", "\"HTTP/1.1\"", "h3"};
    static const enum ctr_up_proto want[] = {CTR_UP_AUTO, CTR_UP_AUTO, CTR_UP_H2, CTR_UP_HTTP1};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s/c%zu.yaml", dir, i);
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fputs("contract: 1\nprovider: s\npurposes: [p]\nupstream:\n  url: http://127.0.0.1:9\n"
              "  insecure: true\n",
              f);
        if (vals[i]) fprintf(f, "  protocol: %s\n", vals[i]);
        fputs("routes: [{ method: GET, path: /a }]\n", f);
        fclose(f);
        struct diaglog l;
        struct ctr_set *s = load_one(p, &l);
        if (i < 4) {
            cr_assert_not_null(s, "%s: %s", vals[i] ? vals[i] : "(none)", l.text);
            cr_expect_eq(only(s)->upstream.protocol, want[i], "%s", vals[i] ? vals[i] : "(none)");
            ctr_set_unref(s);
        } else {
            cr_expect_null(s, "%s accepted", vals[i]);
            char w[160];
            snprintf(w, sizeof w, "%s:7:13: upstream.protocol: expected h2, http/1.1 or auto", p);
            cr_expect(strstr(l.text, w) != NULL, "missing '%s' in\n%s", w, l.text);
            cr_expect_eq(l.d.errors, 1, "%s", l.text);
        }
        remove(p);
    }
    rmdir(dir);
}
