/*
 * storage.c - reference-counted memory behind tensors.
 */
#include <stdlib.h>

#include "api/tensor_impl.h"
#include "core/error.h"

#define MTI_STORAGE_ALIGN 64

mti_storage *mti_storage_new(const char *fn, size_t nbytes) {
  mti_storage *s = malloc(sizeof *s);
  void *data = NULL;
  /* Round up so that vector loops may read whole cache lines. */
  size_t padded = (nbytes + MTI_STORAGE_ALIGN - 1) / MTI_STORAGE_ALIGN * MTI_STORAGE_ALIGN;
  if (!s || padded < nbytes || posix_memalign(&data, MTI_STORAGE_ALIGN, padded ? padded : 1)) {
    free(s);
    mti_error_oom(fn, nbytes);
    return NULL;
  }
  atomic_init(&s->refs, 1);
  s->data = data;
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
  if (s->remote) {
    mti_remote_release(s->remote);
  } else if (s->foreign) {
    if (s->deleter) s->deleter(s->deleter_ctx);
  } else {
    free(s->data);
  }
  free(s);
}
