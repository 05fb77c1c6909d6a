/*
 * row_reduce.c - the reductions of 0.2: var, std, logsumexp, norm (one
 * pass per statistic over contiguous rows), all, any, max_dim and min_dim
 * (on top of reduce.c's kernels).
 *
 * var, std, logsumexp and norm move the reduced dims last (rows.h): rows
 * are then contiguous in the compute dtype (float64 for float64, float32
 * for the others, staged when the input is not already laid out so), and
 * each row is reduced in cache: var takes the mean and then the squared
 * deviations around it (two passes, no cancellation), logsumexp the max
 * and then the exponentials around it. Sums run in LANES accumulators of
 * the compute type whose block results join double ones. Rows are spread
 * over OpenMP threads; results do not depend on the thread count.
 *
 * all and any are amin and amax of the input as bool; max_dim and min_dim
 * are argmax/argmin along the dim (reduce.c's SIMD kernels, column layouts
 * and NaN rules), and the values are picked at those indices.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cpu_kernels.h"
#include "cpu_simd.h"
#include "index_util.h"
#include "rows.h"
#include "vmath.h"

#define LANES 16       /* independent accumulators: 2 AVX2 vectors of f32 */
#define ROW_BLOCK 1024 /* elements a lane accumulator takes before joining double */

/* result (double) = sum over ix < n of expression E (which uses ix), in
 * LANES accumulators of type LT joined into double every ROW_BLOCK. */
#define LANE_SUM(LT, n, E, result)                                   \
  do {                                                               \
    double wide_[LANES] = {0};                                       \
    int64_t i_ = 0;                                                  \
    while ((n) - i_ >= LANES) {                                      \
      int64_t end_ = i_ + ((n) - i_) / LANES * LANES;                \
      if (end_ - i_ > ROW_BLOCK) end_ = i_ + ROW_BLOCK;              \
      LT acc_[LANES] = {0};                                          \
      for (; i_ < end_; i_ += LANES)                                 \
        for (int j_ = 0; j_ < LANES; j_++) {                         \
          int64_t ix = i_ + j_;                                      \
          acc_[j_] += (E);                                           \
        }                                                            \
      for (int j_ = 0; j_ < LANES; j_++) wide_[j_] += acc_[j_];      \
    }                                                                \
    for (int w_ = LANES / 2; w_ > 0; w_ /= 2)                        \
      for (int j_ = 0; j_ < w_; j_++) wide_[j_] += wide_[j_ + w_];   \
    result = wide_[0];                                               \
    for (int64_t ix = i_; ix < (n); ix++) result += (E);             \
  } while (0)

/* A NaN operand wins, and stays (v > NaN is false). */
#define OP_MAXF(a, v) ((a) = ((v) > (a) || (v) != (v)) ? (v) : (a))
#define OP_MINF(a, v) ((a) = ((v) < (a) || (v) != (v)) ? (v) : (a))

/* result = the max (or min, OP) of E over ix < n (n >= 1), NaN winning. */
#define LANE_PICK(T, n, E, OP, result)                               \
  do {                                                               \
    int64_t ix = 0;                                                  \
    T best_ = (E);                                                   \
    T m_[LANES];                                                     \
    for (int j_ = 0; j_ < LANES; j_++) m_[j_] = best_;               \
    int64_t i_ = 0;                                                  \
    for (; (n) - i_ >= LANES; i_ += LANES)                           \
      for (int j_ = 0; j_ < LANES; j_++) {                           \
        ix = i_ + j_;                                                \
        T v_ = (E);                                                  \
        OP(m_[j_], v_);                                              \
      }                                                              \
    for (int j_ = 0; j_ < LANES; j_++) OP(best_, m_[j_]);            \
    for (ix = i_; ix < (n); ix++) {                                  \
      T v_ = (E);                                                    \
      OP(best_, v_);                                                 \
    }                                                                \
    result = best_;                                                  \
  } while (0)

/*
 * Row kernels of compute type T (exponential EXP, |x| ABS):
 *  var_S       sum((x - mean)^2) / max(0, n - correction)
 *  lse_S       max + log(sum(exp(x - max))); -inf for a row of -inf or n 0
 *  norm_S      the p-norm (p 2, 1, +-inf and 0 have their own loops)
 */
#define ROW_KERNELS(S, T, EXP, ABS)                                                           \
  MTI_SIMD_CLONES static double var_##S(const T *x, int64_t n, double correction) {          \
    double sum, sq;                                                                            \
    LANE_SUM(T, n, x[ix], sum);                                                                \
    T mean = (T)(sum / (double)n);                                                             \
    LANE_SUM(T, n, (x[ix] - mean) * (x[ix] - mean), sq);                                       \
    if (isinf(sq)) LANE_SUM(double, n, ((double)x[ix] - mean) * ((double)x[ix] - mean), sq);  \
    return sq / fmax(0.0, (double)n - correction);                                             \
  }                                                                                            \
  MTI_SIMD_CLONES static double lse_##S(const T *x, int64_t n) {                              \
    if (n == 0) return -INFINITY;                                                              \
    T m;                                                                                       \
    LANE_PICK(T, n, x[ix], OP_MAXF, m);                                                        \
    if (isnan(m) || isinf(m)) return (double)m;                                                \
    double sum;                                                                                \
    LANE_SUM(T, n, EXP(x[ix] - m), sum);                                                       \
    return (double)m + log(sum);                                                               \
  }                                                                                            \
  MTI_SIMD_CLONES static double norm_##S(const T *x, int64_t n, double p) {                   \
    double r;                                                                                  \
    if (p == 2) {                                                                              \
      LANE_SUM(T, n, x[ix] * x[ix], r);                                                        \
      if (isinf(r)) LANE_SUM(double, n, (double)x[ix] * x[ix], r);                             \
      return sqrt(r);                                                                          \
    }                                                                                          \
    if (p == 1) {                                                                              \
      LANE_SUM(T, n, ABS(x[ix]), r);                                                           \
      return r;                                                                                \
    }                                                                                          \
    if (p == 0) {                                                                              \
      LANE_SUM(T, n, (T)(x[ix] != 0), r);                                                      \
      return r;                                                                                \
    }                                                                                          \
    if (isinf(p)) {                                                                            \
      T pick = 0;                                                                              \
      if (n > 0 && p > 0) LANE_PICK(T, n, ABS(x[ix]), OP_MAXF, pick);                          \
      else if (n > 0) LANE_PICK(T, n, ABS(x[ix]), OP_MINF, pick);                              \
      return (double)pick;                                                                     \
    }                                                                                          \
    LANE_SUM(double, n, pow(fabs((double)x[ix]), p), r);                                       \
    return pow(r, 1.0 / p);                                                                    \
  }

ROW_KERNELS(f32, float, mti_vexpf, fabsf)
ROW_KERNELS(f64, double, exp, fabs)

/* Rows per task: tasks of at least 16K elements are worth scheduling. */
static int64_t rows_per_task(int64_t n) { return n >= 16384 ? 1 : 16384 / (n ? n : 1); }

static double reduce_row(mti_op op, mt_dtype ct, const char *row, int64_t n, double s) {
  int f64 = ct == MT_FLOAT64;
  const float *xf = (const float *)row;
  const double *xd = (const double *)row;
  switch (op) {
  case MTI_OP_VAR: return f64 ? var_f64(xd, n, s) : var_f32(xf, n, s);
  case MTI_OP_STD: return sqrt(f64 ? var_f64(xd, n, s) : var_f32(xf, n, s));
  case MTI_OP_LOGSUMEXP: return f64 ? lse_f64(xd, n) : lse_f32(xf, n);
  default: return f64 ? norm_f64(xd, n, s) : norm_f32(xf, n, s);
  }
}

mt_status mti_cpu_reduce_float(mti_op op, const mti_view *in, const mti_attrs *at,
                               const mti_view *out) {
  const char *fn = mti_op_get((int)op)->fn;
  uint32_t mask = at->dims_mask;
  mt_dtype ct = out->dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  mti_rows r;
  mt_status s = mti_rows_read(fn, in, mask, ct, &r);
  if (s) return s;
  double *res = malloc((size_t)(r.nrows ? r.nrows : 1) * sizeof(double));
  if (!res) {
    mti_rows_free(&r);
    return mti_error_oom(fn, (size_t)r.nrows * sizeof(double));
  }
  size_t row_bytes = (size_t)r.len * mt_dtype_size(ct);
  int64_t per = rows_per_task(r.len), ntask = (r.nrows + per - 1) / per;
#pragma omp parallel for schedule(dynamic) if (ntask > 1) \
    num_threads(mti_cpu_threads_for(r.nrows * r.len, MTI_CPU_PARALLEL_MIN / 2))
  for (int64_t t = 0; t < ntask; t++)
    for (int64_t i = t * per; i < r.nrows && i < (t + 1) * per; i++)
      res[i] = reduce_row(op, ct, r.data + (size_t)i * row_bytes, r.len, at->s0);
  mti_rows_free(&r);
  mti_view src = {res, MT_FLOAT64, 1, {r.nrows}, {1}};
  mti_view dst = {out->data, out->dtype, 1, {r.nrows}, {1}};
  s = mti_cpu_convert(&src, &dst);
  free(res);
  return s;
}

/* all: amin of the input as bool; any: its amax. The all of nothing is
 * true, the any of nothing false. */
mt_status mti_cpu_reduce_bool(mti_op op, const mti_view *in, const mti_attrs *at,
                              const mti_view *out) {
  int64_t nout = mti_shape_numel(out->ndim, out->shape);
  if (nout == 0) return MT_OK;
  if (mti_shape_numel(in->ndim, in->shape) == 0) {
    memset(out->data, op == MTI_OP_ALL, (size_t)nout);
    return MT_OK;
  }
  mti_view b = *in;
  char *owned = NULL;
  if (in->dtype != MT_BOOL) {
    size_t n = (size_t)mti_shape_numel(in->ndim, in->shape);
    if (!(owned = malloc(n))) return mti_error_oom(mti_op_get((int)op)->fn, n);
    b.data = owned;
    b.dtype = MT_BOOL;
    mti_shape_contiguous_strides(b.ndim, b.shape, b.strides);
    mt_status s = mti_cpu_convert(in, &b);
    if (s) {
      free(owned);
      return s;
    }
  }
  mt_status s = mti_cpu_reduce(op == MTI_OP_ALL ? MTI_OP_AMIN : MTI_OP_AMAX, &b, at, out);
  free(owned);
  return s;
}

/* values[o] = the element of in at indices[o] along dim, o enumerating
 * the kept dims in order (values and indices are contiguous). */
static void pick_values(const mti_view *in, int dim, const mti_view *indices,
                        const mti_view *values) {
  int64_t shape[MT_MAX_DIMS], strides[MT_MAX_DIMS];
  int nk = 0;
  for (int d = 0; d < in->ndim; d++) {
    if (d == dim) continue;
    shape[nk] = in->shape[d];
    strides[nk++] = in->strides[d];
  }
  size_t esz = mt_dtype_size(in->dtype);
  int64_t n = mti_shape_numel(values->ndim, values->shape), along = in->ndim ? in->strides[dim] : 0;
  const int64_t *idx = indices->data;
#pragma omp parallel for schedule(static) \
    num_threads(mti_cpu_threads_for(n, MTI_CPU_PARALLEL_MIN / 2))
  for (int64_t o = 0; o < n; o++) {
    int64_t off = mti_outer_offset(shape, strides, nk, o) + idx[o] * along;
    memcpy((char *)values->data + (size_t)o * esz, (const char *)in->data + off * (int64_t)esz,
           esz);
  }
}

/* indices: argmax/argmin along dim, which picks the first of equal values
 * and the first NaN; values: the elements at those indices. */
mt_status mti_cpu_extreme_dim(mti_op op, const mti_view *in, const mti_attrs *at,
                              const mti_view *out) {
  mti_op arg = op == MTI_OP_MAX_DIM ? MTI_OP_ARGMAX : MTI_OP_ARGMIN;
  mt_status s = mti_cpu_argreduce(arg, in, at, &out[1]);
  if (!s) pick_values(in, at->dim, &out[1], &out[0]);
  return s;
}
