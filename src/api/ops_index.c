/*
 * ops_index.c - the public indexing, shape, creation and sampling ops:
 * argument checks (messages name the function and the argument), dims
 * normalised, then the op table's run functions.
 */
#include <stdlib.h>
#include <string.h>

#include "api/tensor_impl.h"
#include "core/dtype.h"
#include "core/error.h"

/* ------------------------------------------------------------ creation */

static mt_tensor *create(mti_op op, int ndim, const int64_t *shape, mti_attrs *at,
                         mt_dtype dtype, mt_device device) {
  const char *fn = mti_op_get((int)op)->fn;
  if (!mti_dtype_valid((int)dtype))
    return mti_error(MT_ERR_DTYPE, "%s: dtype: %d is not a dtype", fn, (int)dtype), NULL;
  if (mti_shape_check(fn, ndim, shape, mt_dtype_size(dtype)) || mti_check_device(fn, device))
    return NULL;
  at->dtype = (int32_t)dtype;
  return mti_run_creation(op, device, ndim, shape, at);
}

mt_tensor *mt_eye(int64_t n, int64_t m, mt_dtype dtype, mt_device device) {
  int64_t shape[2] = {n, m};
  mti_attrs at = {0};
  return create(MTI_OP_EYE, 2, shape, &at, dtype, device);
}

mt_tensor *mt_linspace(double start, double end, int64_t steps, mt_dtype dtype, mt_device device) {
  mti_attrs at = {0};
  at.s0 = start;
  at.s1 = end;
  return create(MTI_OP_LINSPACE, 1, &steps, &at, dtype, device);
}

mt_tensor *mt_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, mt_dtype dtype,
                      mt_device device, uint64_t seed) {
  mti_attrs at = {0};
  at.seed = seed;
  at.n_ints = 2;
  at.ints[0] = low;
  at.ints[1] = high;
  return create(MTI_OP_RANDINT, ndim, shape, &at, dtype, device);
}

/* ------------------------------------------------------------ helpers */

/* dim normalised for a, where a 0-d tensor has the one dim 0. */
static mt_status norm_dim(const char *fn, const char *arg, const mt_tensor *a, int dim, int *out) {
  if (a->ndim == 0 && (dim == 0 || dim == -1)) {
    *out = 0;
    return MT_OK;
  }
  return mti_dim_normalize(fn, arg, dim, a->ndim, out);
}

static mt_status check_list(const char *fn, const char *arg, int n, const void *list, int max) {
  if (n < 0 || n > max)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %d entries, expected 0..%d", fn, arg, n,
                     max);
  if (n > 0 && !list) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: NULL", fn, arg);
  return MT_OK;
}

static mt_tensor *run1(mti_op op, const mt_tensor *a, const mti_attrs *at) {
  static const char *const names[] = {"a"};
  return mti_run_op(op, 1, &a, names, at);
}

/* ------------------------------------------------------------ indexing */

static mt_tensor *along_dim(mti_op op, const mt_tensor *a, int dim, const mt_tensor *index,
                            const mt_tensor *src) {
  static const char *const names[] = {"a", "index", "src"};
  const mti_op_info *info = mti_op_get((int)op);
  const mt_tensor *in[3] = {a, index, src};
  mti_attrs at = {0};
  int d;
  if (mti_check_tensor(info->fn, "a", a) || norm_dim(info->fn, "dim", a, dim, &d)) return NULL;
  at.dim = d;
  return mti_run_op(op, info->arity, in, names, &at);
}

mt_tensor *mt_gather(const mt_tensor *a, int dim, const mt_tensor *index) {
  return along_dim(MTI_OP_GATHER, a, dim, index, NULL);
}

mt_tensor *mt_scatter(const mt_tensor *a, int dim, const mt_tensor *index, const mt_tensor *src) {
  return along_dim(MTI_OP_SCATTER, a, dim, index, src);
}

mt_tensor *mt_scatter_add(const mt_tensor *a, int dim, const mt_tensor *index,
                          const mt_tensor *src) {
  return along_dim(MTI_OP_SCATTER_ADD, a, dim, index, src);
}

mt_tensor *mt_index_add(const mt_tensor *a, int dim, const mt_tensor *index, const mt_tensor *src) {
  return along_dim(MTI_OP_INDEX_ADD, a, dim, index, src);
}

mt_tensor *mt_embedding(const mt_tensor *weight, const mt_tensor *index) {
  static const char *const names[] = {"weight", "index"};
  const mt_tensor *in[2] = {weight, index};
  mti_attrs at = {0};
  return mti_run_op(MTI_OP_EMBEDDING, 2, in, names, &at);
}

mt_tensor *mt_one_hot(const mt_tensor *index, int64_t num_classes) {
  static const char *const names[] = {"index"};
  mti_attrs at = {0};
  at.n_ints = 1;
  at.ints[0] = num_classes;
  return mti_run_op(MTI_OP_ONE_HOT, 1, &index, names, &at);
}

/* ------------------------------------------------------------ shape */

mt_tensor *mt_flip(const mt_tensor *a, int ndims, const int *dims) {
  const char *fn = "mt_flip";
  mti_attrs at = {0};
  if (mti_check_tensor(fn, "a", a) || check_list(fn, "dims", ndims, dims, MT_MAX_DIMS))
    return NULL;
  for (int i = 0; i < ndims; i++) {
    int d;
    if (norm_dim(fn, "dims", a, dims[i], &d)) return NULL;
    if (at.dims_mask >> d & 1u)
      return mti_error(MT_ERR_SHAPE, "%s: dims: dim %d appears twice", fn, d), NULL;
    if (a->ndim) at.dims_mask |= 1u << d; /* a 0-d tensor has nothing to reverse */
  }
  return run1(MTI_OP_FLIP, a, &at);
}

/* torch.roll without dims: the flattened tensor rolled, shape kept. */
static mt_tensor *roll_flat(const mt_tensor *a, int64_t shift) {
  int64_t n = mt_numel(a);
  mt_tensor *flat = mt_reshape(a, 1, &n), *out = NULL;
  if (!flat) return NULL;
  int dim = 0;
  mt_tensor *rolled = mt_roll(flat, 1, &shift, &dim);
  if (rolled) out = mt_reshape(rolled, a->ndim, a->shape);
  mt_tensor_free(rolled);
  mt_tensor_free(flat);
  return out;
}

mt_tensor *mt_roll(const mt_tensor *a, int ndims, const int64_t *shifts, const int *dims) {
  const char *fn = "mt_roll";
  if (mti_check_tensor(fn, "a", a) || check_list(fn, "shifts", ndims, shifts, MT_MAX_DIMS))
    return NULL;
  if (ndims == 0) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: shifts: none given", fn), NULL;
  if (!dims) {
    if (ndims != 1)
      return mti_error(MT_ERR_INVALID_ARGUMENT,
                       "%s: shifts: %d given without dims, expected 1 (a flattened roll)", fn,
                       ndims), NULL;
    return roll_flat(a, shifts[0]);
  }
  mti_attrs at = {0};
  for (int i = 0; i < ndims; i++) {
    int d;
    if (norm_dim(fn, "dims", a, dims[i], &d)) return NULL;
    at.ints[at.n_ints++] = d;
    at.ints[at.n_ints++] = shifts[i];
  }
  return run1(MTI_OP_ROLL, a, &at);
}

mt_tensor *mt_repeat(const mt_tensor *a, int ndim, const int64_t *repeats) {
  const char *fn = "mt_repeat";
  mti_attrs at = {0};
  if (mti_check_tensor(fn, "a", a) || check_list(fn, "repeats", ndim, repeats, MT_MAX_DIMS))
    return NULL;
  at.n_ints = ndim;
  if (ndim) memcpy(at.ints, repeats, sizeof(int64_t) * (size_t)ndim);
  return run1(MTI_OP_REPEAT, a, &at);
}

mt_tensor *mt_pad(const mt_tensor *a, int npads, const int64_t *pads, mt_pad_mode mode,
                  double value) {
  const char *fn = "mt_pad";
  mti_attrs at = {0};
  if (mti_check_tensor(fn, "a", a) || check_list(fn, "pads", npads, pads, 2 * MT_MAX_DIMS))
    return NULL;
  if (mode != MT_PAD_CONSTANT && mode != MT_PAD_REFLECT && mode != MT_PAD_REPLICATE)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: mode: %d is not an mt_pad_mode", fn,
                     (int)mode), NULL;
  if (mode != MT_PAD_CONSTANT && value != 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: value: only constant padding has a value",
                     fn), NULL;
  at.flags = mode == MT_PAD_REFLECT     ? MTI_FLAG_PAD_REFLECT
             : mode == MT_PAD_REPLICATE ? MTI_FLAG_PAD_REPLICATE
                                        : 0u;
  at.s0 = value;
  at.n_ints = npads;
  if (npads) memcpy(at.ints, pads, sizeof(int64_t) * (size_t)npads);
  return run1(MTI_OP_PAD, a, &at);
}

static mt_tensor *triangle(mti_op op, const mt_tensor *a, int64_t diagonal) {
  mti_attrs at = {0};
  at.n_ints = 1;
  at.ints[0] = diagonal;
  return run1(op, a, &at);
}

mt_tensor *mt_tril(const mt_tensor *a, int64_t diagonal) {
  return triangle(MTI_OP_TRIL, a, diagonal);
}

mt_tensor *mt_triu(const mt_tensor *a, int64_t diagonal) {
  return triangle(MTI_OP_TRIU, a, diagonal);
}

/* ------------------------------------------------------------ sampling */

mt_tensor *mt_multinomial(const mt_tensor *probs, int64_t num_samples, int replacement,
                          uint64_t seed) {
  static const char *const names[] = {"probs"};
  mti_attrs at = {0};
  at.seed = seed;
  at.n_ints = 1;
  at.ints[0] = num_samples;
  at.flags = replacement ? MTI_FLAG_REPLACEMENT : 0u;
  return mti_run_op(MTI_OP_MULTINOMIAL, 1, &probs, names, &at);
}

mt_tensor *mt_dropout(const mt_tensor *a, double p, uint64_t seed) {
  mti_attrs at = {0};
  at.s0 = p;
  at.seed = seed;
  return run1(MTI_OP_DROPOUT, a, &at);
}
