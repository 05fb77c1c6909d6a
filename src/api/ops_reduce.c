/*
 * ops_reduce.c - the public reductions, scans and sorting ops of 0.2 with
 * their own signatures (all, any, cumsum and cumprod are generated in
 * api/ops.c): argument checks (messages name the function and the
 * argument), dims normalised, then the op table's run functions. Ops with
 * two outputs return a status and write both through out-pointers.
 */
#include "api/tensor_impl.h"
#include "core/error.h"

static const char *const a_name[] = {"a"};

/* A reduction over dims with the scalar s (correction, p) in s0. */
static mt_tensor *reduce_float(mti_op op, const mt_tensor *a, int ndims, const int *dims,
                               double s, int keepdim) {
  const char *fn = mti_op_get((int)op)->fn;
  mti_attrs at = {0};
  if (mti_check_tensor(fn, "a", a) || mti_dims_to_mask(fn, a, ndims, dims, &at.dims_mask))
    return NULL;
  at.s0 = s;
  at.flags = keepdim ? MTI_FLAG_KEEPDIM : 0;
  return mti_run_op(op, 1, &a, a_name, &at);
}

mt_tensor *mt_var(const mt_tensor *a, int ndims, const int *dims, double correction, int keepdim) {
  return reduce_float(MTI_OP_VAR, a, ndims, dims, correction, keepdim);
}

mt_tensor *mt_std(const mt_tensor *a, int ndims, const int *dims, double correction, int keepdim) {
  return reduce_float(MTI_OP_STD, a, ndims, dims, correction, keepdim);
}

mt_tensor *mt_logsumexp(const mt_tensor *a, int ndims, const int *dims, int keepdim) {
  return reduce_float(MTI_OP_LOGSUMEXP, a, ndims, dims, 0.0, keepdim);
}

mt_tensor *mt_norm(const mt_tensor *a, double p, int ndims, const int *dims, int keepdim) {
  return reduce_float(MTI_OP_NORM, a, ndims, dims, p, keepdim);
}

/* Runs a two-output op along dim: the out-pointers are checked and
 * cleared first, so that they are NULL on every failure. */
static mt_status run_pair(mti_op op, const mt_tensor *a, int dim, mti_attrs *at,
                          mt_tensor **first, mt_tensor **second) {
  const char *fn = mti_op_get((int)op)->fn;
  if (first) *first = NULL;
  if (second) *second = NULL;
  if (!first || !second)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: NULL out-pointer", fn,
                     first ? "indices" : "values");
  if (mti_check_tensor(fn, "a", a) || mti_dim_of(fn, a, dim, &at->dim)) return mt_last_status();
  mt_tensor *outs[MTI_MAX_OUTPUTS];
  mt_status s = mti_run_op_multi(op, 1, &a, a_name, at, outs);
  if (s) return s;
  *first = outs[0];
  *second = outs[1];
  return MT_OK;
}

mt_status mt_max_dim(const mt_tensor *a, int dim, int keepdim, mt_tensor **values,
                     mt_tensor **indices) {
  mti_attrs at = {0};
  at.flags = keepdim ? MTI_FLAG_KEEPDIM : 0;
  return run_pair(MTI_OP_MAX_DIM, a, dim, &at, values, indices);
}

mt_status mt_min_dim(const mt_tensor *a, int dim, int keepdim, mt_tensor **values,
                     mt_tensor **indices) {
  mti_attrs at = {0};
  at.flags = keepdim ? MTI_FLAG_KEEPDIM : 0;
  return run_pair(MTI_OP_MIN_DIM, a, dim, &at, values, indices);
}

mt_status mt_sort(const mt_tensor *a, int dim, int descending, mt_tensor **values,
                  mt_tensor **indices) {
  mti_attrs at = {0};
  at.flags = descending ? MTI_FLAG_DESCENDING : 0;
  return run_pair(MTI_OP_SORT, a, dim, &at, values, indices);
}

mt_tensor *mt_argsort(const mt_tensor *a, int dim, int descending) {
  mti_attrs at = {0};
  if (mti_check_tensor("mt_argsort", "a", a) || mti_dim_of("mt_argsort", a, dim, &at.dim))
    return NULL;
  at.flags = descending ? MTI_FLAG_DESCENDING : 0;
  return mti_run_op(MTI_OP_ARGSORT, 1, &a, a_name, &at);
}

mt_status mt_topk(const mt_tensor *a, int64_t k, int dim, int largest, mt_tensor **values,
                  mt_tensor **indices) {
  mti_attrs at = {0};
  at.flags = largest ? MTI_FLAG_DESCENDING : 0;
  at.n_ints = 1;
  at.ints[0] = k;
  return run_pair(MTI_OP_TOPK, a, dim, &at, values, indices);
}
