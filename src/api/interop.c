/*
 * interop.c - zero-copy exchange with other libraries: foreign buffers
 * (mt_from_blob) and DLPack 0.6.
 */
#include <dlpack/dlpack.h>
#include <stdlib.h>
#include <string.h>

#include "api/pool.h"
#include "api/tensor_impl.h"
#include "core/dtype.h"
#include "core/error.h"

/* kDLBool arrived in DLPack 0.8; consumers that know it read bool as bool. */
#define MTI_DLPACK_BOOL 6

/* Byte span [lo, hi) that a strided view touches, relative to element 0. */
static void view_span(int ndim, const int64_t *shape, const int64_t *strides, size_t esize,
                      int64_t *lo, int64_t *hi) {
  *lo = 0;
  *hi = mti_shape_numel(ndim, shape) ? 1 : 0;
  for (int i = 0; i < ndim && *hi; i++) {
    int64_t reach = strides[i] * (shape[i] - 1);
    if (reach < 0) *lo += reach;
    else *hi += reach;
  }
  *lo *= (int64_t)esize;
  *hi *= (int64_t)esize;
}

mt_tensor *mt_from_blob(void *data, int ndim, const int64_t *shape, const int64_t *strides,
                        mt_dtype dtype, mt_deleter deleter, void *ctx) {
  const char *fn = "mt_from_blob";
  if (!mti_dtype_valid((int)dtype))
    return mti_error(MT_ERR_DTYPE, "%s: dtype: %d is not a dtype", fn, (int)dtype), NULL;
  if (mti_shape_check(fn, ndim, shape, mt_dtype_size(dtype))) return NULL;
  int64_t numel = mti_shape_numel(ndim, shape);
  if (!data && numel)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: data: NULL for %lld elements", fn,
                     (long long)numel), NULL;
  int64_t st[MT_MAX_DIMS];
  if (strides) {
    for (int i = 0; i < ndim; i++) {
      if (strides[i] < 0)
        return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: strides: stride %d is negative", fn, i),
               NULL;
      st[i] = strides[i];
    }
  } else {
    mti_shape_contiguous_strides(ndim, shape, st);
  }
  int64_t lo, hi;
  view_span(ndim, shape, st, mt_dtype_size(dtype), &lo, &hi);
  mti_storage *s = mti_storage_wrap(fn, data, (size_t)hi, deleter, ctx);
  mt_tensor *t = s ? mti_pool_get(MTI_POOL_HANDLE) : NULL;
  if (!t) {
    if (s) {
      s->deleter = NULL; /* on failure the caller keeps its buffer */
      mti_storage_release(s);
      mti_error_oom(fn, sizeof *t);
    }
    return NULL;
  }
  t->storage = s;
  t->device = (mt_device){MT_DEVICE_CPU, 0};
  t->dtype = dtype;
  t->ndim = ndim;
  mti_dims_copy(t->shape, shape, ndim);
  memcpy(t->strides, st, sizeof(int64_t) * (size_t)ndim);
  t->offset = 0;
  t->grad_fn = NULL;
  return t;
}

void *mt_data_ptr(const mt_tensor *t) {
  const char *fn = "mt_data_ptr";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (t->device.type != MT_DEVICE_CPU) {
    char buf[48];
    mti_error(MT_ERR_DEVICE, "%s: t: is on %s; only cpu tensors expose their memory", fn,
              mti_device_str(buf, sizeof buf, t->device));
    return NULL;
  }
  if (mti_shape_numel(t->ndim, t->shape) == 0) return NULL;
  return mti_tensor_host_view(t).data;
}

/* ---------------------------------------------------------------- DLPack */

static const struct {
  uint8_t code, bits;
} dl_types[MTI_NUM_DTYPES] = {
    [MT_BOOL] = {MTI_DLPACK_BOOL, 8}, [MT_UINT8] = {kDLUInt, 8},  [MT_INT8] = {kDLInt, 8},
    [MT_INT16] = {kDLInt, 16},        [MT_INT32] = {kDLInt, 32},  [MT_INT64] = {kDLInt, 64},
    [MT_FLOAT16] = {kDLFloat, 16},    [MT_BFLOAT16] = {kDLBfloat, 16},
    [MT_FLOAT32] = {kDLFloat, 32},    [MT_FLOAT64] = {kDLFloat, 64},
};

/* An export: the DLPack struct, its shape/strides, and a handle that keeps
 * the storage alive until the consumer calls the deleter. */
typedef struct dl_export {
  DLManagedTensor managed;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS];
  mt_tensor *hold;
} dl_export;

static void dl_export_delete(DLManagedTensor *m) {
  dl_export *e = m ? m->manager_ctx : NULL;
  if (!e) return;
  mt_tensor_free(e->hold);
  free(e);
}

struct DLManagedTensor *mt_to_dlpack(const mt_tensor *t) {
  const char *fn = "mt_to_dlpack";
  if (mti_check_tensor(fn, "t", t)) return NULL;
  if (t->device.type != MT_DEVICE_CPU) {
    char buf[48];
    mti_error(MT_ERR_DEVICE, "%s: t: is on %s; move it to cpu first (mt_to)", fn,
              mti_device_str(buf, sizeof buf, t->device));
    return NULL;
  }
  dl_export *e = calloc(1, sizeof *e);
  if (!e) return mti_error_oom(fn, sizeof *e), NULL;
  if (!(e->hold = mti_tensor_view(fn, t, t->ndim, t->shape, t->strides, t->offset))) {
    free(e);
    return NULL;
  }
  memcpy(e->shape, t->shape, sizeof e->shape);
  memcpy(e->strides, t->strides, sizeof e->strides);
  DLTensor *dl = &e->managed.dl_tensor;
  dl->data = t->storage->data;
  dl->device = (DLDevice){kDLCPU, 0};
  dl->ndim = t->ndim;
  dl->dtype = (DLDataType){dl_types[t->dtype].code, dl_types[t->dtype].bits, 1};
  dl->shape = e->shape;
  dl->strides = e->strides;
  dl->byte_offset = (uint64_t)t->offset * mt_dtype_size(t->dtype);
  e->managed.manager_ctx = e;
  e->managed.deleter = dl_export_delete;
  return &e->managed;
}

/* The mt_dtype of a DLPack type, or -1. */
static int dtype_of_dl(DLDataType t) {
  if (t.lanes != 1) return -1;
  for (int d = 0; d < MTI_NUM_DTYPES; d++)
    if (dl_types[d].code == t.code && dl_types[d].bits == t.bits) return d;
  return -1;
}

static void dl_import_release(void *ctx) {
  DLManagedTensor *m = ctx;
  if (m->deleter) m->deleter(m);
}

/* Takes ownership of m also on failure: the deleter runs on every path. */
mt_tensor *mt_from_dlpack(struct DLManagedTensor *m) {
  const char *fn = "mt_from_dlpack";
  if (!m) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: m: NULL", fn), NULL;
  const DLTensor *dl = &m->dl_tensor;
  int dtype = dtype_of_dl(dl->dtype);
  mt_status s = MT_OK;
  if (dl->device.device_type != kDLCPU && dl->device.device_type != kDLCUDAHost)
    s = mti_error(MT_ERR_DEVICE, "%s: m: device type %d is not host memory", fn,
                  (int)dl->device.device_type);
  else if (dtype < 0)
    s = mti_error(MT_ERR_DTYPE, "%s: m: DLPack type (code %u, bits %u, lanes %u) has no mt_dtype",
                  fn, dl->dtype.code, dl->dtype.bits, dl->dtype.lanes);
  else if (dl->ndim < 0 || dl->ndim > MT_MAX_DIMS || (dl->ndim && !dl->shape))
    s = mti_error(MT_ERR_SHAPE, "%s: m: ndim %d is outside 0..%d", fn, dl->ndim, MT_MAX_DIMS);
  else if (dl->byte_offset % mt_dtype_size((mt_dtype)dtype))
    s = mti_error(MT_ERR_INVALID_ARGUMENT, "%s: m: byte_offset is not a whole element", fn);
  mt_tensor *t = NULL;
  if (!s) {
    char *data = (char *)dl->data + dl->byte_offset;
    t = mt_from_blob(data, dl->ndim, dl->shape, dl->strides, (mt_dtype)dtype, dl_import_release, m);
  }
  if (!t && m->deleter) m->deleter(m);
  return t;
}
