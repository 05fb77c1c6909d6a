/*
 * tensor.c - handles: making, inspecting, copying and freeing tensors.
 */
#include <stdlib.h>
#include <string.h>

#include "api/pool.h"
#include "api/tensor_impl.h"
#include "autograd/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cpu/cpu_backend.h"

/* ------------------------------------------------------------ internals */

mt_tensor *mti_tensor_wrap(const char *fn, mti_storage *s, const mti_meta *meta,
                           mt_device device) {
  mt_tensor *t = mti_pool_get(MTI_POOL_HANDLE);
  if (!t) {
    mti_storage_release(s);
    mti_error_oom(fn, sizeof *t);
    return NULL;
  }
  t->storage = s;
  t->device = device;
  t->dtype = meta->dtype;
  t->ndim = meta->ndim;
  memcpy(t->shape, meta->shape, sizeof(int64_t) * (size_t)meta->ndim);
  mti_shape_contiguous_strides(t->ndim, t->shape, t->strides);
  t->offset = 0;
  t->grad_fn = NULL;
  return t;
}

mt_tensor *mti_tensor_new(const char *fn, const mti_meta *meta, mt_device device) {
  size_t nbytes = (size_t)mti_shape_numel(meta->ndim, meta->shape) * mt_dtype_size(meta->dtype);
  mti_storage *s = mti_storage_new(fn, nbytes);
  return s ? mti_tensor_wrap(fn, s, meta, device) : NULL;
}

mti_remote_view mti_tensor_remote_view(const mt_tensor *t) {
  mti_remote_view v;
  v.buf = t->storage->remote;
  v.offset = t->offset;
  v.ndim = t->ndim;
  /* Whole arrays: a fixed-size copy is a few vector moves, no memcpy call. */
  memcpy(v.shape, t->shape, sizeof v.shape);
  memcpy(v.strides, t->strides, sizeof v.strides);
  return v;
}

mt_tensor *mti_tensor_view(const char *fn, const mt_tensor *t, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset) {
  mt_tensor *v = mti_pool_get(MTI_POOL_HANDLE);
  if (!v) {
    mti_error_oom(fn, sizeof *v);
    return NULL;
  }
  mti_storage_retain(t->storage);
  v->storage = t->storage;
  v->device = t->device;
  v->dtype = t->dtype;
  v->ndim = ndim;
  memcpy(v->shape, shape, sizeof(int64_t) * (size_t)ndim);
  memcpy(v->strides, strides, sizeof(int64_t) * (size_t)ndim);
  v->offset = offset;
  v->grad_fn = NULL;
  return v;
}

mti_view mti_tensor_host_view(const mt_tensor *t) {
  mti_view v;
  v.data = (char *)t->storage->data + t->offset * (int64_t)mt_dtype_size(t->dtype);
  v.dtype = t->dtype;
  v.ndim = t->ndim;
  /* Whole arrays: a fixed-size copy is a few vector moves, no memcpy call. */
  memcpy(v.shape, t->shape, sizeof v.shape);
  memcpy(v.strides, t->strides, sizeof v.strides);
  return v;
}

mti_meta mti_tensor_meta(const mt_tensor *t) {
  mti_meta m;
  m.dtype = t->dtype;
  m.ndim = t->ndim;
  memcpy(m.shape, t->shape, sizeof m.shape);
  return m;
}

mt_status mti_check_tensor(const char *fn, const char *arg, const mt_tensor *t) {
  if (!t) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: NULL tensor", fn, arg);
  return MT_OK;
}

/* ------------------------------------------------------- freeing, access */

void mt_tensor_free(mt_tensor *t) {
  if (!t) return;
  if (t->grad_fn) mti_ag_release(t);
  mti_storage_release(t->storage);
  mti_pool_put(MTI_POOL_HANDLE, t);
}

int mt_ndim(const mt_tensor *t) {
  if (mti_check_tensor("mt_ndim", "t", t)) return 0;
  return t->ndim;
}

/* Normalised dim of t for an accessor, or -1 with the error set. */
static int accessor_dim(const char *fn, const mt_tensor *t, int dim) {
  int d;
  if (mti_check_tensor(fn, "t", t) || mti_dim_normalize(fn, "dim", dim, t->ndim, &d)) return -1;
  return d;
}

int64_t mt_shape(const mt_tensor *t, int dim) {
  int d = accessor_dim("mt_shape", t, dim);
  return d < 0 ? 0 : t->shape[d];
}

int64_t mt_stride(const mt_tensor *t, int dim) {
  int d = accessor_dim("mt_stride", t, dim);
  return d < 0 ? 0 : t->strides[d];
}

int64_t mt_numel(const mt_tensor *t) {
  if (mti_check_tensor("mt_numel", "t", t)) return 0;
  return mti_shape_numel(t->ndim, t->shape);
}

mt_dtype mt_tensor_dtype(const mt_tensor *t) {
  if (mti_check_tensor("mt_tensor_dtype", "t", t)) return MT_BOOL;
  return t->dtype;
}

mt_device mt_tensor_device(const mt_tensor *t) {
  mt_device none = {MT_DEVICE_CPU, 0};
  if (mti_check_tensor("mt_tensor_device", "t", t)) return none;
  return t->device;
}

int mt_is_contiguous(const mt_tensor *t) {
  if (mti_check_tensor("mt_is_contiguous", "t", t)) return 0;
  return mti_shape_is_contiguous(t->ndim, t->shape, t->strides);
}

/* -------------------------------------------------------------- creation */

/* Checks shared by every creation function. */
static mt_status check_creation(const char *fn, int ndim, const int64_t *shape, mt_dtype dtype,
                                mt_device device) {
  if (!mti_dtype_valid((int)dtype))
    return mti_error(MT_ERR_DTYPE, "%s: dtype: %d is not a dtype", fn, (int)dtype);
  mt_status s = mti_shape_check(fn, ndim, shape, mt_dtype_size(dtype));
  if (s) return s;
  return mti_check_device(fn, device);
}

static mt_tensor *make_filled(const char *fn, int ndim, const int64_t *shape, double value,
                              mt_dtype dtype, mt_device device) {
  if (check_creation(fn, ndim, shape, dtype, device)) return NULL;
  mti_attrs at = {0};
  at.s0 = value;
  at.dtype = (int32_t)dtype;
  return mti_run_creation(MTI_OP_FULL, device, ndim, shape, &at);
}

mt_tensor *mt_empty(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device) {
  if (check_creation("mt_empty", ndim, shape, dtype, device)) return NULL;
  /* A worker allocates only through ops: a zero fill is the cheapest one. */
  if (mti_device_is_remote(device)) return make_filled("mt_empty", ndim, shape, 0.0, dtype, device);
  mti_meta m = {.dtype = dtype, .ndim = ndim};
  mti_dims_copy(m.shape, shape, ndim);
  return mti_tensor_new("mt_empty", &m, device);
}

mt_tensor *mt_zeros(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device) {
  return make_filled("mt_zeros", ndim, shape, 0.0, dtype, device);
}

mt_tensor *mt_ones(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device) {
  return make_filled("mt_ones", ndim, shape, 1.0, dtype, device);
}

mt_tensor *mt_full(int ndim, const int64_t *shape, double value, mt_dtype dtype,
                   mt_device device) {
  return make_filled("mt_full", ndim, shape, value, dtype, device);
}

mt_tensor *mt_arange(double start, double end, double step, mt_dtype dtype, mt_device device) {
  const char *fn = "mt_arange";
  if (!isfinite(start) || !isfinite(end) || !isfinite(step))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: start, end, step must be finite", fn), NULL;
  if (step == 0.0) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: step: must not be 0", fn), NULL;
  double count = ceil((end - start) / step);
  if (!(count < 9.0e18))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %g elements are too many", fn, count), NULL;
  int64_t len = count > 0 ? (int64_t)count : 0;
  if (check_creation(fn, 1, &len, dtype, device)) return NULL;
  mti_attrs at = {0};
  at.s0 = start;
  at.s1 = step;
  at.dtype = (int32_t)dtype;
  return mti_run_creation(MTI_OP_ARANGE, device, 1, &len, &at);
}

static mt_tensor *make_random(const char *fn, mti_op op, int ndim, const int64_t *shape,
                              mt_dtype dtype, mt_device device, uint64_t seed) {
  if (check_creation(fn, ndim, shape, dtype, device)) return NULL;
  mti_attrs at = {0};
  at.seed = seed;
  at.dtype = (int32_t)dtype;
  return mti_run_creation(op, device, ndim, shape, &at);
}

mt_tensor *mt_rand(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device,
                   uint64_t seed) {
  return make_random("mt_rand", MTI_OP_RAND, ndim, shape, dtype, device, seed);
}

mt_tensor *mt_randn(int ndim, const int64_t *shape, mt_dtype dtype, mt_device device,
                    uint64_t seed) {
  return make_random("mt_randn", MTI_OP_RANDN, ndim, shape, dtype, device, seed);
}

mt_tensor *mt_from_data(const void *data, int ndim, const int64_t *shape, mt_dtype dtype,
                        mt_device device) {
  const char *fn = "mt_from_data";
  if (check_creation(fn, ndim, shape, dtype, device)) return NULL;
  mti_meta m = {.dtype = dtype, .ndim = ndim};
  mti_dims_copy(m.shape, shape, ndim);
  size_t nbytes = (size_t)mti_shape_numel(ndim, shape) * mt_dtype_size(dtype);
  if (!data && nbytes)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: data: NULL for %zu bytes", fn, nbytes), NULL;
  if (mti_device_is_remote(device)) {
    mti_view src = {.data = (void *)data, .dtype = dtype, .ndim = ndim};
    mti_dims_copy(src.shape, shape, ndim);
    mti_shape_contiguous_strides(ndim, src.shape, src.strides);
    mti_remote_buffer *b = mti_remote_upload(fn, device.index, &src);
    mti_storage *s = b ? mti_storage_remote(fn, b, nbytes) : NULL;
    return s ? mti_tensor_wrap(fn, s, &m, device) : NULL;
  }
  mt_tensor *t = mti_tensor_new(fn, &m, device);
  if (t && nbytes) memcpy(t->storage->data, data, nbytes);
  return t;
}

/* ------------------------------------------------------- reading values */

mt_status mt_to_host(const mt_tensor *t, void *dst, size_t nbytes) {
  const char *fn = "mt_to_host";
  mt_status s = mti_check_tensor(fn, "t", t);
  if (s) return s;
  size_t want = (size_t)mti_shape_numel(t->ndim, t->shape) * mt_dtype_size(t->dtype);
  if (nbytes != want)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: nbytes: %zu, but the tensor holds %zu bytes",
                     fn, nbytes, want);
  if (!want) return MT_OK;
  if (!dst) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: dst: NULL", fn);
  if (mti_tensor_is_remote(t)) {
    mti_remote_view rv = mti_tensor_remote_view(t);
    return mti_remote_download(fn, &rv, dst, nbytes);
  }
  mti_view src = mti_tensor_host_view(t);
  if (mti_shape_is_contiguous(t->ndim, t->shape, t->strides)) {
    memcpy(dst, src.data, want);
    return MT_OK;
  }
  mti_view out = src;
  out.data = dst;
  mti_shape_contiguous_strides(out.ndim, out.shape, out.strides);
  mti_attrs at = {0};
  at.dtype = (int32_t)t->dtype;
  return mti_cpu_run(MTI_OP_COPY, &src, 1, &at, &out);
}

mt_status mt_item(const mt_tensor *t, double *out) {
  const char *fn = "mt_item";
  mt_status s = mti_check_tensor(fn, "t", t);
  if (s) return s;
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  int64_t n = mti_shape_numel(t->ndim, t->shape);
  if (n != 1)
    return mti_error(MT_ERR_SHAPE, "%s: t: has %lld elements, expected exactly 1", fn,
                     (long long)n);
  if (mti_tensor_is_remote(t)) {
    double buf[2]; /* room for the widest dtype, aligned */
    mti_remote_view rv = mti_tensor_remote_view(t);
    if ((s = mti_remote_download(fn, &rv, buf, mt_dtype_size(t->dtype)))) return s;
    *out = mti_load_double(buf, t->dtype);
    return MT_OK;
  }
  const char *p = (const char *)mti_tensor_host_view(t).data;
  *out = mti_load_double(p, t->dtype);
  return MT_OK;
}

/* ----------------------------------------------------------------- copies */

static mt_tensor *share(const char *fn, const mt_tensor *t) {
  return mti_tensor_view(fn, t, t->ndim, t->shape, t->strides, t->offset);
}

/* t's values (same dtype) in a tensor on device, on a worker when
 * to_remote is set: t itself (a new handle) when it already lives there,
 * else a contiguous copy moved there through host memory. */
static mt_tensor *bring_to(const char *fn, const mt_tensor *t, mt_device device, int to_remote) {
  if (to_remote == mti_tensor_is_remote(t) && (!to_remote || t->device.index == device.index))
    return share(fn, t);
  mti_meta m = mti_tensor_meta(t);
  size_t nbytes = (size_t)mti_shape_numel(m.ndim, m.shape) * mt_dtype_size(m.dtype);
  mt_tensor *host = NULL;
  if (mti_tensor_is_remote(t)) { /* download into host memory first */
    mt_device cpu = {MT_DEVICE_CPU, 0};
    if (!(host = mti_tensor_new(fn, &m, cpu))) return NULL;
    mti_remote_view rv = mti_tensor_remote_view(t);
    if (nbytes && mti_remote_download(fn, &rv, host->storage->data, nbytes)) {
      mt_tensor_free(host);
      return NULL;
    }
    if (!to_remote) {
      host->device = device;
      return host;
    }
  }
  const mt_tensor *src = host ? host : t;
  mti_view hv = mti_tensor_host_view(src);
  mti_remote_buffer *b = mti_remote_upload(fn, device.index, &hv);
  mt_tensor_free(host);
  mti_storage *s = b ? mti_storage_remote(fn, b, nbytes) : NULL;
  return s ? mti_tensor_wrap(fn, s, &m, device) : NULL;
}

mt_status mti_copy_into(const char *fn, mt_tensor *dst, const mt_tensor *src) {
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  mt_status s = mti_shape_broadcast(fn, src->ndim, src->shape, dst->ndim, dst->shape, &ndim, shape);
  if (s) return s;
  if (ndim != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)ndim)) {
    char a[160], b[160];
    return mti_error(MT_ERR_SHAPE, "%s: src: shape %s does not broadcast to dst's %s", fn,
                     mti_shape_str(a, sizeof a, src->ndim, src->shape),
                     mti_shape_str(b, sizeof b, dst->ndim, dst->shape));
  }
  if (mti_strides_overlap(dst->ndim, dst->shape, dst->strides))
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: dst: its elements overlap in memory (an expanded view?)", fn);
  mt_tensor *near = bring_to(fn, src, dst->device, mti_tensor_is_remote(dst));
  if (!near) return mt_last_status();
  /* Kept tensors that share dst's storage are stale from here on. */
  atomic_fetch_add_explicit(&dst->storage->version, 1, memory_order_relaxed);
  mti_attrs at = {0};
  at.dtype = (int32_t)dst->dtype;
  if (mti_tensor_is_remote(dst)) {
    mti_remote_view in = mti_tensor_remote_view(near), out = mti_tensor_remote_view(dst);
    s = mti_remote_record_into(fn, &in, &at, &out);
  } else {
    mti_view in = mti_tensor_host_view(near), out = mti_tensor_host_view(dst);
    s = mti_cpu_run(MTI_OP_COPY, &in, 1, &at, &out);
  }
  mt_tensor_free(near);
  return s;
}

/* A contiguous copy of t converted to dtype on device, on a worker when
 * to_remote is set. */
static mt_tensor *copy_to(const char *fn, const mt_tensor *t, mt_device device, mt_dtype dtype,
                          int to_remote) {
  if (!to_remote) {
    mti_meta m = mti_tensor_meta(t);
    m.dtype = dtype;
    mt_tensor *out = mti_tensor_new(fn, &m, device);
    if (out && mti_copy_into(fn, out, t)) {
      mt_tensor_free(out);
      return NULL;
    }
    return out;
  }
  /* On a worker, outputs come from ops: move t there, then copy. */
  int moved = mti_tensor_is_remote(t) != 1 || t->device.index != device.index;
  mt_tensor *near = bring_to(fn, t, device, 1);
  if (!near || (moved && dtype == t->dtype)) return near; /* a fresh contiguous copy already */
  static const char *const names[] = {"t"};
  mti_attrs at = {0};
  at.dtype = (int32_t)dtype;
  const mt_tensor *in = near;
  mt_tensor *out = mti_run_op(MTI_OP_COPY, 1, &in, names, &at);
  mt_tensor_free(near);
  return out;
}

/* A new handle on t's values that stands for t in autograd too. */
static mt_tensor *share_tracked(const char *fn, const mt_tensor *t) {
  mt_tensor *out = share(fn, t);
  if (out && t->grad_fn) mti_ag_share(t, out);
  return out;
}

/* copy_to, recorded for autograd as a move of t. */
static mt_tensor *copy_tracked(const char *fn, const mt_tensor *t, mt_device device,
                               mt_dtype dtype, int to_remote) {
  mt_tensor *out = copy_to(fn, t, device, dtype, to_remote);
  const mti_ag_view move = {.kind = MTI_AG_MOVE};
  if (out && mti_ag_wanted(1, &t) && mti_ag_record_view(fn, t, out, &move)) {
    mt_tensor_free(out);
    return NULL;
  }
  return out;
}

mt_tensor *mt_to(const mt_tensor *t, mt_device device, mt_dtype dtype, int copy) {
  const char *fn = "mt_to";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (!mti_dtype_valid((int)dtype))
    return mti_error(MT_ERR_DTYPE, "%s: dtype: %d is not a dtype", fn, (int)dtype), NULL;
  if (!copy && dtype == t->dtype && mti_device_equal(device, t->device))
    return share_tracked(fn, t);
  if (mti_check_device(fn, device)) return NULL;
  /* A copy goes where tensors on device are made now: with the remote
   * switch, this is how a tensor moves between in-process and a worker. */
  return copy_tracked(fn, t, device, dtype, mti_device_is_remote(device));
}

mt_tensor *mt_contiguous(const mt_tensor *t) {
  const char *fn = "mt_contiguous";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (mti_shape_is_contiguous(t->ndim, t->shape, t->strides)) return share_tracked(fn, t);
  return copy_tracked(fn, t, t->device, t->dtype, mti_tensor_is_remote(t));
}

mt_tensor *mt_clone(const mt_tensor *t) {
  const char *fn = "mt_clone";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  return copy_tracked(fn, t, t->device, t->dtype, mti_tensor_is_remote(t));
}

mt_status mt_copy_(mt_tensor *dst, const mt_tensor *src) {
  const char *fn = "mt_copy_";
  mt_status s;
  if ((s = mti_check_tensor(fn, "dst", dst)) || (s = mti_check_tensor(fn, "src", src))) return s;
  if (!mti_device_equal(dst->device, src->device)) {
    char a[32], b[32];
    return mti_error(MT_ERR_DEVICE, "%s: dst is on %s, src is on %s", fn,
                     mti_device_str(a, sizeof a, dst->device),
                     mti_device_str(b, sizeof b, src->device));
  }
  if (mti_tensor_is_remote(dst) != mti_tensor_is_remote(src))
    return mti_error(MT_ERR_DEVICE,
                     "%s: %s lives in-process (made while remote execution was off) and %s on "
                     "a worker; move one with mt_to", fn, mti_tensor_is_remote(dst) ? "src" : "dst",
                     mti_tensor_is_remote(dst) ? "dst" : "src");
  if ((s = mti_ag_check_write(fn, dst, src))) return s;
  return mti_copy_into(fn, dst, src);
}
