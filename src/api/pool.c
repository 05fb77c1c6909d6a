/*
 * pool.c - the per-thread free lists behind tensor handles and small
 * storages (pool.h).
 *
 * Each thread has one LIFO list per class, linked through the first word of
 * the free blocks. A thread registers its lists with a pthread key the first
 * time it keeps a block, so that they are emptied when it exits; the main
 * thread's lists stay reachable from its TLS until the process ends (leak
 * checkers call them reachable, not leaked).
 */
#include "api/pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "api/tensor_impl.h"
#include "core/poison.h"

/* Blocks kept per class and thread: the temporaries of a small model step;
 * at most 64 * 4 KiB per thread in the largest class. */
#define MTI_POOL_DEPTH 64
#define MTI_POOL_ALIGN 64

_Static_assert(sizeof(mti_storage) <= MTI_POOL_STORAGE_HEADER,
               "a storage header must fit before its pooled data");

typedef struct pool_lists {
  void *head[MTI_POOL_CLASS_COUNT];
  int count[MTI_POOL_CLASS_COUNT];
  int registered;
} pool_lists;

static _Thread_local pool_lists lists;
static pthread_key_t exit_key;
static int exit_key_made;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Bytes of a block of class c: a handle rounded up to the alignment, or a
 * storage header and its data. */
static size_t block_bytes(mti_pool_class c) {
  switch (c) {
  case MTI_POOL_HANDLE:
    return (sizeof(mt_tensor) + MTI_POOL_ALIGN - 1) / MTI_POOL_ALIGN * MTI_POOL_ALIGN;
  case MTI_POOL_SMALL_256: return MTI_POOL_STORAGE_HEADER + 256;
  case MTI_POOL_SMALL_1K: return MTI_POOL_STORAGE_HEADER + 1024;
  case MTI_POOL_SMALL_4K: return MTI_POOL_STORAGE_HEADER + 4096;
  case MTI_POOL_CLASS_COUNT: break;
  }
  return 0;
}

int mti_pool_storage_class(size_t nbytes) {
  if (nbytes <= 256) return MTI_POOL_SMALL_256;
  if (nbytes <= 1024) return MTI_POOL_SMALL_1K;
  if (nbytes <= MTI_POOL_SMALL_MAX) return MTI_POOL_SMALL_4K;
  return -1;
}

/* Thread exit: the thread's lists go back to the heap. */
static void release_lists(void *p) {
  pool_lists *l = p;
  for (int c = 0; c < MTI_POOL_CLASS_COUNT; c++) {
    while (l->head[c]) {
      void *next = *(void **)l->head[c];
      MTI_UNPOISON(l->head[c], block_bytes((mti_pool_class)c));
      free(l->head[c]);
      l->head[c] = next;
    }
    l->count[c] = 0;
  }
  l->registered = 0; /* a later put registers again */
}

static void make_exit_key(void) {
  exit_key_made = pthread_key_create(&exit_key, release_lists) == 0;
}

/* 1 when this thread's lists will be emptied at its exit (so it may keep
 * blocks). */
static int lists_registered(void) {
  if (lists.registered) return 1;
  pthread_once(&exit_key_once, make_exit_key);
  if (!exit_key_made || pthread_setspecific(exit_key, &lists)) return 0;
  lists.registered = 1;
  return 1;
}

void *mti_pool_get(mti_pool_class c) {
  void *b = lists.head[c];
  if (!b) return aligned_alloc(MTI_POOL_ALIGN, block_bytes(c));
  lists.head[c] = *(void **)b;
  lists.count[c]--;
  MTI_UNPOISON(b, block_bytes(c));
  return b;
}

void mti_pool_put(mti_pool_class c, void *block) {
  if (!block) return;
  if (lists.count[c] >= MTI_POOL_DEPTH || !lists_registered()) {
    free(block);
    return;
  }
  *(void **)block = lists.head[c];
  lists.head[c] = block;
  lists.count[c]++;
  MTI_POISON((char *)block + sizeof(void *), block_bytes(c) - sizeof(void *));
}
