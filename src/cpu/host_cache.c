/*
 * host_cache.c - the size-class cache of host buffers (host_cache.h).
 *
 * Each class is a LIFO list linked through the first word of its free
 * buffers, so that the most recently freed (cache-warm) buffer goes first.
 */
#include "cpu/host_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "core/poison.h"

#define MIN_SHIFT 12 /* 4 KiB: smaller storages come from api/pool.h */
#define MAX_SHIFT 26 /* 64 MiB: the largest cached class */
#define STEPS 8      /* classes per power of two */
#define CLASS_COUNT ((MAX_SHIFT - MIN_SHIFT) * STEPS + 1)

#define VECTOR_ALIGN 64
/* From 16 MiB, buffers go on 2 MiB boundaries and ask for transparent huge
 * pages: with 4 KiB pages, first-touch faults cost more than the kernels
 * that fill a fresh tensor (measured: 114 ms vs 11 ms to fill 40 MB). */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)16 << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *heads[CLASS_COUNT];
static size_t cached_bytes;

/* nbytes rounded up to its alignment; 0 on overflow. */
static size_t aligned_size(size_t nbytes) {
  size_t align = nbytes >= HUGE_MIN ? HUGE_PAGE : VECTOR_ALIGN;
  size_t padded = (nbytes + align - 1) / align * align;
  return padded < nbytes ? 0 : padded;
}

/* The class of an nbytes buffer, -1 outside the cached sizes; *capacity
 * the bytes its buffers have. Class (s, k) holds 2^s (1 + k / STEPS). */
static int class_of(size_t nbytes, size_t *capacity) {
  if (nbytes < ((size_t)1 << MIN_SHIFT) || nbytes > ((size_t)1 << MAX_SHIFT)) {
    *capacity = aligned_size(nbytes ? nbytes : 1);
    return -1;
  }
  size_t floor_pow = (size_t)1 << MIN_SHIFT;
  int shift = MIN_SHIFT;
  while (shift < MAX_SHIFT && (floor_pow << 1) < nbytes) floor_pow <<= 1, shift++;
  size_t step = floor_pow / STEPS;
  size_t k = nbytes <= floor_pow ? 0 : (nbytes - floor_pow + step - 1) / step;
  *capacity = floor_pow + k * step;
  return (shift - MIN_SHIFT) * STEPS + (int)k;
}

/* A new buffer of capacity bytes (a multiple of its alignment, or 0 for a
 * size past the address space: NULL). */
static void *system_alloc(size_t capacity) {
  size_t align = capacity >= HUGE_MIN ? HUGE_PAGE : VECTOR_ALIGN;
  void *data = NULL;
  if (!capacity || posix_memalign(&data, align, capacity)) return NULL;
#ifdef MADV_HUGEPAGE
  if (align == HUGE_PAGE) madvise(data, capacity, MADV_HUGEPAGE); /* a hint: failure is fine */
#endif
  return data;
}

size_t mti_host_capacity(size_t nbytes) {
  size_t capacity;
  class_of(nbytes, &capacity);
  return capacity;
}

size_t mti_host_cached_bytes(void) {
  pthread_mutex_lock(&lock);
  size_t n = cached_bytes;
  pthread_mutex_unlock(&lock);
  return n;
}

void *mti_host_alloc(size_t nbytes) {
  size_t capacity;
  int c = class_of(nbytes, &capacity);
  if (c < 0) return system_alloc(capacity);
  pthread_mutex_lock(&lock);
  void *b = heads[c];
  if (b) {
    MTI_UNPOISON(b, capacity);
    heads[c] = *(void **)b;
    cached_bytes -= capacity;
  }
  pthread_mutex_unlock(&lock);
  return b ? b : system_alloc(capacity);
}

void mti_host_free(void *data, size_t nbytes) {
  if (!data) return;
  size_t capacity;
  int c = class_of(nbytes, &capacity);
  int kept = 0;
  if (c >= 0) {
    pthread_mutex_lock(&lock);
    if (cached_bytes + capacity <= MTI_HOST_CACHE_BYTES) {
      *(void **)data = heads[c];
      heads[c] = data;
      cached_bytes += capacity;
      kept = 1;
      MTI_POISON((char *)data + sizeof(void *), capacity - sizeof(void *));
    }
    pthread_mutex_unlock(&lock);
  }
  if (!kept) free(data);
}
