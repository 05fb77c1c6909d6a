/*
 * tensor_impl.h - what an mt_tensor handle is (internal to the library).
 *
 * A handle is a view: shape, strides and offset over a reference-counted
 * storage. Every public call that returns a tensor returns a new handle;
 * views of one storage keep it alive until the last handle goes.
 */
#ifndef MTI_TENSOR_IMPL_H
#define MTI_TENSOR_IMPL_H

#include <stdatomic.h>

#include "core/op_table.h"
#include "core/shape.h"
#include "remote/remote.h"

/* Bytes that back tensors: host memory (cpu tensors, and modal tensors made
 * while remote execution is off, which stay in-process for their whole life;
 * see docs/ARCHITECTURE.md), or a buffer on a worker (remote != NULL, data
 * NULL). */
typedef struct mti_storage {
  atomic_long refs;
  void *data;
  mti_remote_buffer *remote;
  size_t nbytes;
  mt_deleter deleter; /* foreign memory (mt_from_blob, DLPack): called instead of free */
  void *deleter_ctx;
  int foreign;
  int pool_class; /* >= 0: header and data are one pooled block (api/pool.h) */
  atomic_long version; /* bumped by every write in place: autograd refuses a
                          backward through values changed after they were kept */
} mti_storage;

struct mt_tensor {
  mti_storage *storage;
  mt_device device;
  mt_dtype dtype;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS]; /* elements */
  int64_t offset;               /* elements from storage->data to element [0..0] */
  struct mti_ag_node *grad_fn;  /* autograd: NULL, or the leaf's accumulator or the op
                                   that made it (autograd/autograd.h); one reference */
};

/* Storage of nbytes of fresh host memory (64-byte aligned), refs = 1; NULL
 * with the error set (naming fn) when memory is exhausted. */
mti_storage *mti_storage_new(const char *fn, size_t nbytes);
/* Storage over foreign memory; deleter(ctx) runs when it dies. */
mti_storage *mti_storage_wrap(const char *fn, void *data, size_t nbytes, mt_deleter deleter,
                              void *ctx);
/* Storage for a worker buffer (takes b; releases it when the storage dies). */
mti_storage *mti_storage_remote(const char *fn, mti_remote_buffer *b, size_t nbytes);
void mti_storage_retain(mti_storage *s);
void mti_storage_release(mti_storage *s);

/* A contiguous tensor of meta's shape/dtype on device with fresh host
 * storage. */
mt_tensor *mti_tensor_new(const char *fn, const mti_meta *meta, mt_device device);

/* A contiguous tensor of meta's shape/dtype over storage s (taking it). */
mt_tensor *mti_tensor_wrap(const char *fn, mti_storage *s, const mti_meta *meta,
                           mt_device device);

/* 1 when t's values live on a worker. */
static inline int mti_tensor_is_remote(const mt_tensor *t) { return t->storage->remote != NULL; }

/* 1 when new tensors on device d live on a worker (modal with remote
 * execution on). */
int mti_device_is_remote(mt_device d);

/* Worker view of a remote tensor. */
mti_remote_view mti_tensor_remote_view(const mt_tensor *t);

/* A new handle on t's storage with t's device and dtype and the given
 * geometry (the caller has checked it stays inside the storage). */
mt_tensor *mti_tensor_view(const char *fn, const mt_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset);

/* Host view of t for the cpu kernels. */
mti_view mti_tensor_host_view(const mt_tensor *t);

/* Metadata of t for mti_infer. */
mti_meta mti_tensor_meta(const mt_tensor *t);

/* Checks t is not NULL; sets MT_ERR_INVALID_ARGUMENT naming fn and arg. */
mt_status mti_check_tensor(const char *fn, const char *arg, const mt_tensor *t);

/* A dims list as a mask of normalised dims (ndims == 0: every dim; a 0-d
 * tensor's one dim is 0 or -1); MT_ERR_SHAPE for a bad or repeated dim. */
mt_status mti_dims_to_mask(const char *fn, const mt_tensor *a, int ndims, const int *dims,
                           uint32_t *mask);

/* dim normalised for ops where a 0-d tensor has the one dim 0. */
mt_status mti_dim_of(const char *fn, const mt_tensor *a, int dim, int32_t *out);

/* Checks that device names a device tensors can be made on now. */
mt_status mti_check_device(const char *fn, mt_device device);

/* "cpu", "modal:1" into buf. */
const char *mti_device_str(char *buf, size_t len, mt_device d);

static inline int mti_device_equal(mt_device a, mt_device b) {
  return a.type == b.type && a.index == b.index;
}

/* Runs op on tensor inputs (all on one device) and returns its new first
 * output (outputs past the first, saved statistics, are freed); NULL with
 * the error set. in[i] may be NULL only
 * where the op's row marks input i optional (its MTI_FLAG_PRESENT bit is
 * then set here, from the non-NULL ones); names[i] names in[i] in messages. */
mt_tensor *mti_run_op(mti_op op, int n, const mt_tensor *const *in, const char *const *names,
                      const mti_attrs *at);

/* The same for an op with several outputs: outs receives its nout tensors
 * (owned by the caller), or all NULL with the error set. */
mt_status mti_run_op_multi(mti_op op, int n, const mt_tensor *const *in,
                           const char *const *names, const mti_attrs *at, mt_tensor **outs);

/* Runs a creation op (fill, arange, rand, randn) making a tensor of
 * meta's shape (dtype from at->dtype) on device. */
mt_tensor *mti_run_creation(mti_op op, mt_device device, int ndim, const int64_t *shape,
                            const mti_attrs *at);

/* Writes src converted and broadcast into the existing view dst. */
mt_status mti_copy_into(const char *fn, mt_tensor *dst, const mt_tensor *src);

#endif
