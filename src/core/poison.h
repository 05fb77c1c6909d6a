/*
 * poison.h - marking memory a cache holds as unusable for AddressSanitizer,
 * so that a use after free of a recycled block is still reported (the
 * per-thread free lists of api/pool.c, the host buffer cache of
 * cpu/host_cache.c). No-ops in other builds.
 */
#ifndef MTI_POISON_H
#define MTI_POISON_H

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define MTI_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define MTI_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define MTI_POISON(p, n) ((void)(p), (void)(n))
#define MTI_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif
