/* The rule-set vocabulary shared by fuzz_json and fuzz_form: actions,
 * the HMAC key, and a rule set with its oracle trie. */
#ifndef PRIVGATE_FUZZ_RULESETS_H
#define PRIVGATE_FUZZ_RULESETS_H

#include <stdint.h>

#include "filters/filters.h"
#include "fuzz/common.h"
#include "fuzz/oracle.h"

#define A_KEEP                                                                                     \
    {                                                                                              \
        FLT_ACT_KEEP, 0, false                                                                     \
    }
#define A_HASH                                                                                     \
    {                                                                                              \
        FLT_ACT_HASH, 0, false                                                                     \
    }
#define A_MASK_LAST(n)                                                                             \
    {                                                                                              \
        FLT_ACT_MASK, (n), true                                                                    \
    }
#define A_MASK_FIRST(n)                                                                            \
    {                                                                                              \
        FLT_ACT_MASK, (n), false                                                                   \
    }
#define A_TRUNC(n)                                                                                 \
    {                                                                                              \
        FLT_ACT_TRUNCATE, (n), false                                                               \
    }
#define A_YEAR                                                                                     \
    {                                                                                              \
        FLT_ACT_YEAR, 0, false                                                                     \
    }

struct rset {
    const char *name;
    struct orule rules[16];
    struct flt_rules *fr;
    struct onode *trie;
    bool usable;
};

#endif
