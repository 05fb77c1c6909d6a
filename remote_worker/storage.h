/*
 * storage.h - a session's storages: reference-counted device memory, the
 * memory budget of a device, and the id -> storage table.
 */
#ifndef MTW_STORAGE_H
#define MTW_STORAGE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "core/digest.h"

/* Device memory with a reference count. A storage holds one reference; a
 * download that gRPC still sends straight from the memory holds another, so
 * a Free (or the session's end) cannot pull the bytes from under it. The
 * last unref releases the memory, on whatever thread that happens. */
typedef struct mtw_block {
  atomic_int refs;
  mtw_backend *backend;
  int device;
  void *ptr;
  size_t nbytes;
} mtw_block;

/* A block of nbytes on the stream's device; NULL with the error set. */
mtw_block *mtw_block_new(mtw_backend *b, int device, mtw_stream *s, size_t nbytes);
void mtw_block_ref(mtw_block *blk);
void mtw_block_unref(mtw_block *blk);

/* Bytes of tensor memory a device may hold, shared by all sessions on it.
 * Reservations happen before allocations, so a request over the limit is
 * refused before any memory is touched. */
typedef struct mtw_memory {
  _Atomic uint64_t used;
  uint64_t limit;
  _Atomic uint32_t sessions; /* open on the device: the fair share divides by it */
} mtw_memory;

void mtw_memory_init(mtw_memory *m, uint64_t limit);
/* 1 when n more bytes fit (and are now reserved), else 0. */
int mtw_memory_reserve(mtw_memory *m, uint64_t n);
void mtw_memory_release(mtw_memory *m, uint64_t n);
uint64_t mtw_memory_used(mtw_memory *m);

/* Bookkeeping charged to the budget per storage besides its bytes, so that
 * millions of empty tensors cannot exhaust the host. */
#define MTW_STORAGE_OVERHEAD 256u

/* A storage as the client named it. Failed storages keep their id (with no
 * memory) so that every later use reports the original failure. */
typedef struct mtw_storage {
  uint64_t id;
  mt_dtype dtype;
  int64_t numel;
  uint64_t nbytes;
  uint64_t received;   /* upload progress; == nbytes once the values are whole */
  int uploading;       /* made by Upload and waiting for chunks (failed or not) */
  mtw_block *block;    /* NULL when failed */
  mt_status fail_status; /* MT_OK unless failed */
  char *fail_message;
  /* Content-addressed uploads (Content): the SHA-256 the bytes must have,
   * the hash of the chunks received so far (NULL once checked, or for a
   * plain Upload), whether the session waits for its bytes (a Need went
   * out), and whether the block is registered in the content store. */
  uint8_t digest[MTI_SHA256_BYTES];
  mti_hasher *hasher;
  int awaiting;
  int live;
} mtw_storage;

/* Open addressing (linear probing, backward-shift deletion) keyed by id.
 * Ids come from the client, so the hash is seeded per session. */
typedef struct mtw_table {
  mtw_storage **slots;
  size_t cap; /* a power of two, or 0 */
  size_t count;
  uint64_t seed;
} mtw_table;

void mtw_table_init(mtw_table *t, uint64_t seed);
/* Frees the slot array only; the caller has emptied the table. */
void mtw_table_destroy(mtw_table *t);
mtw_storage *mtw_table_find(const mtw_table *t, uint64_t id);
/* Adds s, whose id is not in the table; -1 when memory runs out. */
int mtw_table_insert(mtw_table *t, mtw_storage *s);
/* Removes and returns the storage with id, or NULL. */
mtw_storage *mtw_table_remove(mtw_table *t, uint64_t id);
/* Empties the table, handing every storage to fn: for tearing down. */
void mtw_table_clear(mtw_table *t, void (*fn)(mtw_storage *s, void *ctx), void *ctx);

#endif
