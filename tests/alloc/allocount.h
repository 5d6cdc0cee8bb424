/* Shared-memory layout of the allocation counter (allocount.c). */
#ifndef PRIVGATE_TESTS_ALLOC_ALLOCOUNT_H
#define PRIVGATE_TESTS_ALLOC_ALLOCOUNT_H

#include <stdatomic.h>
#include <stdint.h>

struct pg_alloc_counts {
    _Atomic uint64_t attached; /* set by the preloaded library */
    _Atomic uint64_t armed;    /* PRIVGATE_ALLOC_TRACE: trace allocations while set */
    _Atomic uint64_t malloc, calloc, realloc, memalign, free;
};

#endif
