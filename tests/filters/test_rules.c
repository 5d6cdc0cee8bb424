/* filters/rules.c: path syntax and contract-level rule errors (SPEC 4.1). */
#include "tests/filters/helpers.h"

static int add(struct flt_rules *r, const char *path, const char *act, char *err)
{
    struct flt_action a = parse_action(act);
    return flt_rules_add(r, path, strlen(path), &a, err, 256);
}

Test(rules, valid_paths)
{
    const char *ok[] = {
        "a", "a.b",   "a[]",     "a[].b",           "[]",    "[].x", "$", "$.a", "$[]",
        "*", "a.*.b", "\"x.y\"", "meta.\"a\\\"b\"", "a[][]", "\"\"", "é"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct flt_rules *r = flt_rules_new();
        char err[256] = "";
        cr_assert_eq(add(r, ok[i], "keep", err), 0, "%s: %s", ok[i], err);
        cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0, "%s: %s", ok[i], err);
        flt_rules_unref(r);
    }
}

Test(rules, invalid_paths)
{
    const char *bad[] = {"",    "a.",   ".a",     "a..b",   "a[",       "a[0]", "a]", "$a",
                         "a.$", "a\"b", "\"open", "a b.c[", "\"a\\x\"", "a.[]", "a*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct flt_rules *r = flt_rules_new();
        char err[256] = "";
        cr_assert_neq(add(r, bad[i], "keep", err), 0, "%s accepted", bad[i]);
        cr_assert_neq(err[0], '\0');
        flt_rules_unref(r);
    }
}

Test(rules, duplicates)
{
    struct flt_rules *r = flt_rules_new();
    char err[256];
    cr_assert_eq(add(r, "a.b", "keep", err), 0);
    cr_assert_neq(add(r, "$.a.b", "keep", err), 0);
    cr_assert(strstr(err, "twice"), "%s", err);
    cr_assert_eq(add(r, "q", "keep", err), 0);
    cr_assert_neq(add(r, "\"q\"", "hash", err), 0);
    flt_rules_unref(r);
}

Test(rules, transform_below_keep)
{
    struct flt_rules *r = flt_rules_new();
    char err[256];
    cr_assert_eq(add(r, "r", "keep", err), 0);
    cr_assert_neq(add(r, "r.phone", "mask_last:4", err), 0);
    cr_assert(strstr(err, "kept container"), "%s", err);
    flt_rules_unref(r);

    r = flt_rules_new();
    cr_assert_eq(add(r, "r.phone", "hash", err), 0);
    cr_assert_neq(add(r, "r", "keep", err), 0);
    cr_assert_eq(add(r, "r.name", "keep", err), 0, "keep beside a transform is fine");
    flt_rules_unref(r);

    r = flt_rules_new();
    cr_assert_eq(add(r, "r", "hash", err), 0);
    cr_assert_neq(add(r, "r.x", "keep", err), 0);
    flt_rules_unref(r);
}

Test(rules, wildcard_ambiguity)
{
    struct flt_rules *r = flt_rules_new();
    char err[256];
    cr_assert_eq(add(r, "a.*", "hash", err), 0);
    cr_assert_eq(add(r, "a.b", "keep", err), 0);
    cr_assert_neq(flt_rules_compile(r, err, sizeof err), 0);
    cr_assert(strstr(err, "ambiguous"), "%s", err);
    flt_rules_unref(r);

    r = flt_rules_new();
    cr_assert_eq(add(r, "*", "keep", err), 0);
    cr_assert_eq(add(r, "b.c", "hash", err), 0);
    cr_assert_neq(flt_rules_compile(r, err, sizeof err), 0);
    flt_rules_unref(r);

    r = flt_rules_new();
    cr_assert_eq(add(r, "*.id", "keep", err), 0);
    cr_assert_eq(add(r, "a.id", "keep", err), 0);
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0, "same action: fine");
    flt_rules_unref(r);
}

Test(rules, mask_limit_and_meta)
{
    struct flt_rules *r = flt_rules_new();
    char err[256];
    cr_assert_neq(add(r, "p", "mask_last:65", err), 0);
    cr_assert_eq(add(r, "p", "mask_last:4", err), 0);
    cr_assert_eq(add(r, "longer_name", "hash", err), 0);
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0);
    cr_assert_eq(flt_rules_max_mask(r), 4);
    cr_assert_eq(flt_rules_max_name(r), 11);
    cr_assert(flt_rules_need_key(r));
    flt_rules_unref(r);
}

Test(rules, lookup_top)
{
    const char *specs[] = {"a=keep", "h=hash", "n.x=keep", NULL};
    struct flt_rules *r = make_rules(specs);
    cr_assert_eq(flt_rules_lookup_top(r, "a", 1)->kind, FLT_ACT_KEEP);
    cr_assert_eq(flt_rules_lookup_top(r, "h", 1)->kind, FLT_ACT_HASH);
    cr_assert_null(flt_rules_lookup_top(r, "n", 1), "ancestor only");
    cr_assert_null(flt_rules_lookup_top(r, "zz", 2));
    flt_rules_unref(r);
    const char *all[] = {"$=keep", NULL};
    r = make_rules(all);
    cr_assert_eq(flt_rules_lookup_top(r, "zz", 2)->kind, FLT_ACT_KEEP);
    flt_rules_unref(r);
}

Test(rules, normalise)
{
    char out[128], err[128];
    cr_assert_gt(flt_path_normalise("$.a.\"b\"[].*", 11, out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, "a.b[].*");
    cr_assert_gt(flt_path_normalise("meta.\"x.y\"", 10, out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, "meta.\"x.y\"");
    cr_assert_eq(flt_path_normalise("a..b", 4, out, sizeof out, err, sizeof err), -1);
}

Test(rules, refcount)
{
    struct flt_rules *r = flt_rules_new();
    char err[64];
    cr_assert_eq(flt_rules_compile(r, err, sizeof err), 0);
    cr_assert_eq(flt_rules_ref(r), r);
    flt_rules_unref(r);
    flt_rules_unref(r);
}
