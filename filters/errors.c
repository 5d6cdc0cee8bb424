#include "filters/filters.h"

const char *flt_strerror(int err)
{
    switch (err) {
#define FLT__ERR_MSG(name, value, code, msg)                                                       \
    case (value): return (msg);
        FLT_ERRNO_MAP(FLT__ERR_MSG)
#undef FLT__ERR_MSG
    }
    return "unknown error";
}

const char *flt_errcode(int err)
{
    switch (err) {
#define FLT__ERR_CODE(name, value, code, msg)                                                      \
    case (value): return (code);
        FLT_ERRNO_MAP(FLT__ERR_CODE)
#undef FLT__ERR_CODE
    }
    return "internal_error";
}

const char *flt_action_name(enum flt_action_kind k)
{
    switch (k) {
    case FLT_ACT_NONE: return "filter";
    case FLT_ACT_KEEP: return "keep";
    case FLT_ACT_HASH: return "hash";
    case FLT_ACT_MASK: return "mask";
    case FLT_ACT_TRUNCATE: return "truncate";
    case FLT_ACT_YEAR: return "year";
    }
    return "?";
}
