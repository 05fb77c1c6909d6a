/*
 * storage.c - reference-counted memory behind tensors.
 *
 * Host storages of up to MTI_POOL_SMALL_MAX bytes are one pooled block, the
 * header followed by the data (api/pool.h); larger ones are a header and a
 * data buffer from the size-class cache (cpu/host_cache.h).
 */
#include <stdlib.h>

#include "cpu/host_cache.h"
#include "api/pool.h"
#include "api/tensor_impl.h"
#include "core/error.h"

/* A small storage: header and data in one block from the pool. */
static mti_storage *small_new(int cls) {
  mti_storage *s = mti_pool_get((mti_pool_class)cls);
  if (s) s->data = (char *)s + MTI_POOL_STORAGE_HEADER;
  return s;
}

/* A large storage: a header and a separate buffer. */
static mti_storage *large_new(size_t nbytes) {
  mti_storage *s = malloc(sizeof *s);
  void *data = s ? mti_host_alloc(nbytes) : NULL;
  if (!data) {
    free(s);
    return NULL;
  }
  s->data = data;
  return s;
}

mti_storage *mti_storage_new(const char *fn, size_t nbytes) {
  int cls = mti_pool_storage_class(nbytes);
  mti_storage *s = cls >= 0 ? small_new(cls) : large_new(nbytes);
  if (!s) {
    mti_error_oom(fn, nbytes);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->version, 0);
  s->pool_class = cls;
  s->remote = NULL;
  s->nbytes = nbytes;
  s->deleter = NULL;
  s->deleter_ctx = NULL;
  s->foreign = 0;
  return s;
}

mti_storage *mti_storage_remote(const char *fn, mti_remote_buffer *b, size_t nbytes) {
  mti_storage *s = malloc(sizeof *s);
  if (!s) {
    mti_remote_release(b);
    mti_error_oom(fn, sizeof *s);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->version, 0);
  s->pool_class = -1;
  s->data = NULL;
  s->remote = b;
  s->nbytes = nbytes;
  s->deleter = NULL;
  s->deleter_ctx = NULL;
  s->foreign = 0;
  return s;
}

mti_storage *mti_storage_wrap(const char *fn, void *data, size_t nbytes, mt_deleter deleter,
                              void *ctx) {
  mti_storage *s = malloc(sizeof *s);
  if (!s) {
    mti_error_oom(fn, sizeof *s);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  atomic_init(&s->version, 0);
  s->pool_class = -1;
  s->data = data;
  s->remote = NULL;
  s->nbytes = nbytes;
  s->deleter = deleter;
  s->deleter_ctx = ctx;
  s->foreign = 1;
  return s;
}

void mti_storage_retain(mti_storage *s) { atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); }

void mti_storage_release(mti_storage *s) {
  if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
  if (s->pool_class >= 0) {
    mti_pool_put((mti_pool_class)s->pool_class, s);
    return;
  }
  if (s->remote) {
    mti_remote_release(s->remote);
  } else if (s->foreign) {
    if (s->deleter) s->deleter(s->deleter_ctx);
  } else {
    mti_host_free(s->data, s->nbytes);
  }
  free(s);
}
