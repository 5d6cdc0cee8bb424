/*
 * End-to-end: for each example contract, a request through the real
 * gateway reaches the provider exactly as `privgate filter --explain`
 * predicts — path, headers and body, byte for byte.
 */
#include <unistd.h>

#include "common.h"

static struct e2e E;

static void teardown(void)
{
    e2e_fini(&E);
}

TestSuite(examples, .fini = teardown);

struct example {
    const char *file;
    const char *provider;
    const char *method;
    const char *path;
    const char *purpose;
    const char *caller;
    const char *type;
    const char *headers[4];
    const char *body;
};

static const struct example EXAMPLES[] = {
    {"parcel-carrier.yaml",
     "parcel-carrier",
     "POST",
     "/v1/shipments?dry_run=1&utm_source=newsletter",
     "order-fulfillment",
     "orders-service",
     "application/json",
     {"cookie: sid=1", "idempotency-key: k-77", NULL},
     "{\"order_id\":7,\"customer_id\":\"C-1001\",\"email\":\"ann@example.com\",\"recipient\":{"
     "\"name\":\"Ann Example\",\"phone\":\"+44 20 7946 0958\",\"address\":{\"street\":\"1 High "
     "Street\",\"city\":\"London\",\"postcode\":\"SW1A 1AA\"}},\"items\":[{\"sku\":\"BOOK-1\","
     "\"quantity\":2,\"price\":12.5}],\"marketing_opt_in\":true}"},
    {"analytics-vendor.yaml",
     "analytics-vendor",
     "POST",
     "/v1/events",
     "product-analytics",
     "events-pipeline",
     "application/x-ndjson",
     {NULL},
     "{\"event\":\"page_view\",\"user_id\":\"u-1\",\"email\":\"ann@example.com\",\"birth_date\":"
     "\"1990-04-12\",\"ip\":\"203.0.113.9\"}\n{\"event\":\"checkout\",\"user_id\":\"u-2\","
     "\"birth_date\":\"1985-11-30T08:15:00Z\"}\n{\"event\":\"signup\",\"user_id\":42,"
     "\"birth_date\":\"unknown\"}\n"},
    {"device-cloud.yaml",
     "device-cloud",
     "POST",
     "/v1/activations",
     "device-activation",
     "device-service",
     "application/json",
     {"authorization: Bearer internal", "user-agent: device-service/2.3", NULL},
     "{\"account_id\":\"acct-5521\",\"email\":\"ann@example.com\",\"device\":{\"serial\":"
     "\"SN-0042-XYZ\",\"wifi_ssid\":\"AnnHome\",\"mac\":\"00:1a:2b:3c:4d:5e\"},\"country\":\"GB\","
     "\"location\":{\"lat\":51.5,\"lon\":-0.12}}"},
    {"payment-processor.yaml",
     "payment-processor",
     "POST",
     "/v1/charges",
     "payments",
     "checkout-service",
     "application/json",
     {"idempotency-key: order-7", NULL},
     "{\"amount\":2500,\"currency\":\"EUR\",\"card_token\":\"tok_visa_4242\",\"customer_id\":1001,"
     "\"billing\":{\"postcode\":\"SW1A 1AA\"}}"},
    {"support-desk.yaml",
     "support-desk",
     "POST",
     "/api/v1/tickets",
     "customer-service",
     "support-portal",
     "application/json",
     {"cookie: session=abc", "x-forwarded-for: 203.0.113.9",
      "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", NULL},
     "{\"subject\":\"Parcel not delivered\",\"message\":\"My order 7 has not arrived. "
     "\\u00c9tienne\",\"order_id\":7,\"channel\":\"web\",\"requester\":{\"name\":\"Ann "
     "Example\",\"email\":\"ann@example.com\",\"phone\":\"+44 20 7946 0958\",\"date_of_birth\":"
     "\"1990-04-12\"},\"payment\":{\"last4\":\"4242\"}}"},
    {"survey-vendor.yaml",
     "survey-vendor",
     "POST",
     "/v2/invitations?survey_id=nps-2026&utm_campaign=spring",
     "customer-research",
     "crm-service",
     "application/x-www-form-urlencoded",
     {"authorization: Bearer caller-token", "cookie: sid=9", "user-agent: crm/1.0", NULL},
     "first_name=Ann&last_name=Example&email=ann%40example.com"},
};

/* Copies an example contract, pointing its upstream at the demo partner. */
static void install(const struct example *x)
{
    char src[700];
    snprintf(src, sizeof(src), "%s/examples/contracts/%s", E.source, x->file);
    char *text = e2e_read(src, NULL);
    cr_assert(text, "%s", src);
    char *url = strstr(text, "  url: https://");
    cr_assert(url);
    char *host = url + strlen("  url: https://");
    char *eol = strchr(host, '\n');
    char *slash = memchr(host, '/', (size_t)(eol - host));
    char out[16384];
    snprintf(out, sizeof(out), "%.*s  url: @UP@%.*s\n  insecure: true%s", (int)(url - text), text,
             slash ? (int)(eol - slash) : 0, slash ? slash : "", eol);
    free(text);
    e2e_contract(&E, x->provider, out);
}

static void check(const struct example *x)
{
    e2e_init(&E);
    char link[600];
    snprintf(link, sizeof(link), "%s/examples/secrets", E.source);
    cr_assert_eq(symlink(link, e2e_path(&E, "secrets")), 0);
    e2e_start_partner(&E, "h2c", NULL);
    install(x);
    cr_assert(e2e_start_gateway(&E, NULL));

    /* the prediction */
    char body[600], contract[600];
    snprintf(body, sizeof(body), "%s", e2e_path(&E, "request.body"));
    e2e_write(body, "%s", x->body);
    snprintf(contract, sizeof(contract), "%s/contracts/%s.yaml", E.dir, x->provider);
    char *argv[32];
    int n = 0;
    argv[n++] = E.privgate;
    argv[n++] = "filter";
    argv[n++] = "-C";
    argv[n++] = contract;
    argv[n++] = "-m";
    argv[n++] = (char *)x->method;
    argv[n++] = "-p";
    argv[n++] = (char *)x->path;
    argv[n++] = "--purpose";
    argv[n++] = (char *)x->purpose;
    argv[n++] = "--caller";
    argv[n++] = (char *)x->caller;
    argv[n++] = "-T";
    argv[n++] = (char *)x->type;
    for (int i = 0; x->headers[i]; i++) {
        argv[n++] = "-H";
        argv[n++] = (char *)x->headers[i];
    }
    argv[n++] = "--explain";
    argv[n++] = body;
    argv[n] = NULL;
    char *out = NULL;
    cr_assert_eq(e2e_run(argv, NULL, &out, NULL), 0, "privgate filter: %s", out);
    json_error_t jerr;
    json_t *want = json_loads(out, 0, &jerr);
    cr_assert(want, "explain output: %s", out);
    free(out);

    /* the real thing */
    char path[600], purpose[128], caller[128], type[128];
    snprintf(path, sizeof(path), "/%s%s", x->provider, x->path);
    snprintf(purpose, sizeof(purpose), "privgate-purpose: %s", x->purpose);
    snprintf(caller, sizeof(caller), "privgate-caller: %s", x->caller);
    snprintf(type, sizeof(type), "content-type: %s", x->type);
    /* curl's own accept and user-agent are not part of the prediction */
    const char *h[12] = {"accept:", "user-agent:", purpose, caller, type};
    int k = 5;
    for (int i = 0; x->headers[i]; i++)
        h[k++] = x->headers[i];
    h[k] = NULL;
    struct e2e_resp r;
    e2e_curl(&E, x->method, path, h, NULL, body, &r);
    cr_assert_eq(r.status, 200, "status %d: %s", r.status, r.body);
    e2e_resp_free(&r);

    json_t *got = recorded(&E, 0);
    cr_assert(got);
    cr_expect_str_eq(jstr(got, "path"), jstr(want, "path"));
    cr_expect_str_eq(jstr(got, "body"), jstr(want, "body"), "body differs from the prediction");
    json_t *gh = json_object_get(got, "headers"), *wh = json_object_get(want, "headers");
    const char *name;
    json_t *v;
    json_object_foreach(wh, name, v)
    {
        const char *gv = jstr(gh, name);
        cr_expect(gv != NULL, "header %s not forwarded", name);
        if (gv && strcmp(json_string_value(v), "(injected)") != 0)
            cr_expect_str_eq(gv, json_string_value(v), "header %s", name);
    }
    json_object_foreach(gh, name, v)
    {
        if (strcmp(name, "content-length") == 0) continue;
        cr_expect(json_object_get(wh, name) != NULL, "header %s forwarded but not predicted", name);
    }
    json_decref(got);
    json_decref(want);
}

Test(examples, parcel_carrier)
{
    check(&EXAMPLES[0]);
}

Test(examples, analytics_vendor_ndjson)
{
    check(&EXAMPLES[1]);
}

Test(examples, device_cloud)
{
    check(&EXAMPLES[2]);
}

Test(examples, payment_processor_base_path)
{
    check(&EXAMPLES[3]);
}

Test(examples, support_desk)
{
    check(&EXAMPLES[4]);
}

Test(examples, survey_vendor_form)
{
    check(&EXAMPLES[5]);
}
