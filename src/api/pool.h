/*
 * pool.h - per-thread free lists for tensor handles and small host storages.
 *
 * A small op spends more time in malloc/free of its handle and its output's
 * storage than in its kernel. Freed blocks of a few fixed sizes are kept on
 * a list of the freeing thread (no locks, no atomics: each list belongs to
 * one thread) and handed out again. A list holds at most MTI_POOL_DEPTH
 * blocks; beyond that, and at thread exit, blocks go back to free(). Under
 * AddressSanitizer a listed block is poisoned, so a use after free of a
 * recycled block is still reported.
 */
#ifndef MTI_POOL_H
#define MTI_POOL_H

#include <stddef.h>

/* Block kinds: a tensor handle, and host storages whose header and data
 * share one 64-byte aligned block of up to MTI_POOL_SMALL_MAX data bytes. */
typedef enum mti_pool_class {
  MTI_POOL_HANDLE,
  MTI_POOL_SMALL_256,
  MTI_POOL_SMALL_1K,
  MTI_POOL_SMALL_4K,
  MTI_POOL_CLASS_COUNT
} mti_pool_class;

#define MTI_POOL_SMALL_MAX 4096
#define MTI_POOL_STORAGE_HEADER 64 /* bytes before a pooled storage's data */

/* The smallest storage class whose data part holds nbytes; -1 above
 * MTI_POOL_SMALL_MAX. */
int mti_pool_storage_class(size_t nbytes);

/* A block of class c (uninitialised, 64-byte aligned), from this thread's
 * list or the heap; NULL when memory is exhausted. */
void *mti_pool_get(mti_pool_class c);

/* Gives back a block from mti_pool_get(c), on any thread. */
void mti_pool_put(mti_pool_class c, void *block);

#endif
