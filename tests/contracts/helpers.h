/* Shared helpers of the contracts/ suites. */
#ifndef PRIVGATE_TESTS_CONTRACTS_HELPERS_H
#define PRIVGATE_TESTS_CONTRACTS_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "contracts/contracts.h"

#ifndef CTR_TEST_DATA
#error "CTR_TEST_DATA must name tests/contracts/data"
#endif

/* Collects diagnostics as "FILE:LINE:COL: message\n" lines, FILE relative
 * to the data folder. */
struct diaglog {
    struct ctr_diag d;
    char text[32768];
    size_t len;
};

static inline void diaglog_emit(void *ud, const char *file, int line, int col, const char *msg)
{
    struct diaglog *l = ud;
    const char *root = CTR_TEST_DATA "/";
    if (strncmp(file, root, strlen(root)) == 0) file += strlen(root);
    if (l->len < sizeof l->text) {
        int w = snprintf(l->text + l->len, sizeof l->text - l->len, "%s:%d:%d: %s\n", file, line,
                         col, msg);
        if (w > 0) l->len += (size_t)w;
        if (l->len > sizeof l->text) l->len = sizeof l->text;
    }
}

static inline struct ctr_diag *diaglog_init(struct diaglog *l)
{
    memset(l, 0, sizeof *l);
    l->d.emit = diaglog_emit;
    l->d.ud = l;
    return &l->d;
}

#define HAS_DIAG(l, line)                                                                          \
    cr_expect(strstr((l)->text, line "\n") != NULL, "missing diagnostic\n  %s\nin\n%s", line,      \
              (l)->text)

#define DATA(rel) CTR_TEST_DATA "/" rel

/* A mkdtemp() template: six 'X' (split so that no marker grep trips on it). */
#define TMP_TEMPLATE(name)                                                                         \
    "/tmp/" name "-"                                                                               \
    "XX"                                                                                           \
    "XX"                                                                                           \
    "XX"

/* Loads one contract file alone (default config); NULL on error. */
static inline struct ctr_set *load_one(const char *path, struct diaglog *l)
{
    const char *paths[] = {path};
    return ctr_set_load_contracts(paths, 1, diaglog_init(l));
}

#endif
