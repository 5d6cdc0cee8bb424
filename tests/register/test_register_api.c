/* contracts/register.c through its API: format names, an empty set, and
 * write errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/register.h"

Test(register_api, format_names)
{
    enum ctr_register_format f = CTR_REGISTER_JSON;
    cr_expect_eq(ctr_register_format_parse("md", &f), 0);
    cr_expect_eq(f, CTR_REGISTER_MD);
    cr_expect_eq(ctr_register_format_parse("markdown", &f), 0);
    cr_expect_eq(f, CTR_REGISTER_MD);
    cr_expect_eq(ctr_register_format_parse("csv", &f), 0);
    cr_expect_eq(f, CTR_REGISTER_CSV);
    cr_expect_eq(ctr_register_format_parse("json", &f), 0);
    cr_expect_eq(f, CTR_REGISTER_JSON);
    cr_expect_eq(ctr_register_format_parse("JSON", &f), -1);
    cr_expect_eq(ctr_register_format_parse("", &f), -1);
    cr_expect_eq(ctr_register_format_parse(NULL, &f), -1);
    cr_expect_eq(f, CTR_REGISTER_JSON);
}

static struct ctr_set *load_examples(void)
{
    const char *root = getenv("PRIVGATE_SOURCE_ROOT");
    cr_assert(root != NULL);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/examples/contracts", root);
    const char *paths[] = {dir};
    struct ctr_diag d;
    memset(&d, 0, sizeof d);
    ctr_diag_stderr(&d);
    struct ctr_set *s = ctr_set_load_contracts(paths, 1, &d);
    cr_assert(s != NULL);
    return s;
}

static char *write_to_memory(const struct ctr_set *s, enum ctr_register_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f != NULL);
    cr_assert_eq(ctr_register_write(s, fmt, f), 0);
    fclose(f);
    return buf;
}

Test(register_api, empty_set)
{
    struct ctr_set s;
    memset(&s, 0, sizeof s);
    ctr_config_defaults(&s.config);
    char *json = write_to_memory(&s, CTR_REGISTER_JSON);
    cr_expect_str_eq(json, "{\n  \"providers\": []\n}\n");
    free(json);
    char *csv = write_to_memory(&s, CTR_REGISTER_CSV);
    cr_expect_str_eq(csv, "provider,purposes,callers,method,path,carrier,field,action,category,"
                          "retention,upstream_host\r\n");
    free(csv);
    char *md = write_to_memory(&s, CTR_REGISTER_MD);
    cr_expect(strstr(md, "# Sharing register\n") == md);
    cr_expect(strstr(md, "\n0 providers.\n") != NULL, "%s", md);
    free(md);
}

Test(register_api, write_error_is_reported)
{
    struct ctr_set *s = load_examples();
    for (int fmt = CTR_REGISTER_MD; fmt <= CTR_REGISTER_JSON; fmt++) {
        FILE *f = fopen("/dev/full", "w");
        cr_assert(f != NULL);
        errno = 0;
        cr_expect_eq(ctr_register_write(s, (enum ctr_register_format)fmt, f), -1);
        cr_expect_eq(errno, ENOSPC, "format %d: errno %d", fmt, errno);
        fclose(f);
    }
    ctr_set_unref(s);
}

Test(register_api, same_bytes_each_time)
{
    struct ctr_set *s = load_examples();
    for (int fmt = CTR_REGISTER_MD; fmt <= CTR_REGISTER_JSON; fmt++) {
        char *a = write_to_memory(s, (enum ctr_register_format)fmt);
        char *b = write_to_memory(s, (enum ctr_register_format)fmt);
        cr_expect_str_eq(a, b);
        free(a);
        free(b);
    }
    ctr_set_unref(s);
}
