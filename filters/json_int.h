/* filters/json.c internals for white-box tests (tests/json/). */
#ifndef PRIVGATE_FILTERS_JSON_INT_H
#define PRIVGATE_FILTERS_JSON_INT_H

#include "filters/filters.h"

/* The instruction set of the filter's fast lanes (fast_loop()). */
enum flt__json_simd {
    FLT__SIMD_BASE = 0, /* the build's baseline: SSE2 on x86-64, else scalar */
    FLT__SIMD_AVX2 = 1, /* x86-64-v3 code (AVX2, BMI1/2, POPCNT; 16-byte vectors),
                         * CPUs that have it */
};

/* Selects the highest level not above |level| that this build and CPU
 * support (flt_json_new() selects the highest). Kept across
 * flt_json_reset(). Returns the level now in use. For tests: both levels
 * must give the same output, report and errors. */
int flt__json_set_simd(struct flt_json *f, int level);

#endif
