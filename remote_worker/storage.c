/*
 * storage.c - blocks, memory budgets and the storage table.
 */
#include "storage.h"

#include <stdlib.h>

#include "core/error.h"

mtw_block *mtw_block_new(mtw_backend *b, int device, mtw_stream *s, size_t nbytes) {
  mtw_block *blk = malloc(sizeof *blk);
  if (!blk) {
    mti_error_oom("alloc", sizeof *blk);
    return NULL;
  }
  /* Zero-byte storages still get a unique, valid address. */
  blk->ptr = b->ops->alloc(s, nbytes ? nbytes : 1);
  if (!blk->ptr) {
    free(blk);
    return NULL;
  }
  atomic_init(&blk->refs, 1);
  blk->backend = b;
  blk->device = device;
  blk->nbytes = nbytes;
  return blk;
}

void mtw_block_ref(mtw_block *blk) { atomic_fetch_add_explicit(&blk->refs, 1, memory_order_relaxed); }

void mtw_block_unref(mtw_block *blk) {
  if (!blk || atomic_fetch_sub_explicit(&blk->refs, 1, memory_order_acq_rel) != 1) return;
  blk->backend->ops->release(blk->backend, blk->device, blk->ptr, blk->nbytes ? blk->nbytes : 1);
  free(blk);
}

void mtw_memory_init(mtw_memory *m, uint64_t limit) {
  atomic_init(&m->used, 0);
  atomic_init(&m->sessions, 0);
  m->limit = limit;
}

int mtw_memory_reserve(mtw_memory *m, uint64_t n) {
  uint64_t used = atomic_load_explicit(&m->used, memory_order_relaxed);
  do {
    if (n > m->limit || used > m->limit - n) return 0;
  } while (!atomic_compare_exchange_weak_explicit(&m->used, &used, used + n, memory_order_relaxed,
                                                  memory_order_relaxed));
  return 1;
}

void mtw_memory_release(mtw_memory *m, uint64_t n) {
  atomic_fetch_sub_explicit(&m->used, n, memory_order_relaxed);
}

uint64_t mtw_memory_used(mtw_memory *m) { return atomic_load_explicit(&m->used, memory_order_relaxed); }

/* ---- table ---- */

static uint64_t mix(uint64_t x) { /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static size_t home_slot(const mtw_table *t, uint64_t id) {
  return (size_t)mix(id ^ t->seed) & (t->cap - 1);
}

void mtw_table_init(mtw_table *t, uint64_t seed) {
  t->slots = NULL;
  t->cap = 0;
  t->count = 0;
  t->seed = seed;
}

void mtw_table_destroy(mtw_table *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->count = 0;
}

mtw_storage *mtw_table_find(const mtw_table *t, uint64_t id) {
  if (!t->cap) return NULL;
  for (size_t i = home_slot(t, id);; i = (i + 1) & (t->cap - 1)) {
    mtw_storage *s = t->slots[i];
    if (!s) return NULL;
    if (s->id == id) return s;
  }
}

static void place(mtw_table *t, mtw_storage *s) {
  size_t i = home_slot(t, s->id);
  while (t->slots[i]) i = (i + 1) & (t->cap - 1);
  t->slots[i] = s;
}

static int grow(mtw_table *t) {
  size_t cap = t->cap ? t->cap * 2 : 64;
  if (cap < t->cap || cap > SIZE_MAX / sizeof *t->slots) return -1;
  mtw_storage **old = t->slots;
  size_t old_cap = t->cap;
  t->slots = calloc(cap, sizeof *t->slots);
  if (!t->slots) {
    t->slots = old;
    return -1;
  }
  t->cap = cap;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i]) place(t, old[i]);
  free(old);
  return 0;
}

int mtw_table_insert(mtw_table *t, mtw_storage *s) {
  /* Keep the load at most 1/2 so probe runs stay short. */
  if ((t->count + 1) * 2 > t->cap && grow(t)) return -1;
  place(t, s);
  t->count++;
  return 0;
}

/* Empties slot i and moves later entries of its probe run back, so lookups
 * never need tombstones. */
static void erase_slot(mtw_table *t, size_t i) {
  size_t mask = t->cap - 1;
  t->slots[i] = NULL;
  for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
    size_t home = home_slot(t, t->slots[j]->id);
    /* The entry at j may move to i when its home is not in (i, j]. */
    if (((j - home) & mask) >= ((j - i) & mask)) {
      t->slots[i] = t->slots[j];
      t->slots[j] = NULL;
      i = j;
    }
  }
  t->count--;
}

mtw_storage *mtw_table_remove(mtw_table *t, uint64_t id) {
  if (!t->cap) return NULL;
  for (size_t i = home_slot(t, id);; i = (i + 1) & (t->cap - 1)) {
    mtw_storage *s = t->slots[i];
    if (!s) return NULL;
    if (s->id == id) {
      erase_slot(t, i);
      return s;
    }
  }
}

void mtw_table_clear(mtw_table *t, void (*fn)(mtw_storage *s, void *ctx), void *ctx) {
  for (size_t i = 0; i < t->cap; i++) {
    mtw_storage *s = t->slots[i];
    if (!s) continue;
    t->slots[i] = NULL;
    fn(s, ctx);
  }
  t->count = 0;
}
