/*
 * cuda_reduce_ops.cu - var, std, logsumexp, norm, all, any, max_dim and
 * min_dim on the GPU, with src/cpu/row_reduce.c's semantics.
 *
 * The input is read as rows along the reduced dims (rows_desc): one block
 * per row (a grid-stride loop over rows), each thread accumulating its
 * elements in float64, block_combine joining the threads in a fixed order.
 * var takes the mean and then the squared deviations around it (two passes
 * over the row), logsumexp the max and then the exponentials around it.
 * all and any are a block-wide and / or. max_dim and min_dim are amax/amin
 * and argmax/argmin (cuda_reduce.cu): the same NaN and tie rules as there.
 */
#include "cuda_reduce_ops.cuh"

namespace mtw {
namespace {

enum { THREADS = 256 };
enum { R_VAR, R_STD, R_LSE, R_NORM };

struct add_op {
  __device__ double combine(double a, double b) const { return a + b; }
};
/* max / min where a NaN wins (and stays). */
struct max_op {
  __device__ double combine(double a, double b) const {
    return a != a ? a : b != b ? b : b > a ? b : a;
  }
};
struct min_op {
  __device__ double combine(double a, double b) const {
    return a != a ? a : b != b ? b : b < a ? b : a;
  }
};

/* The combination over the block of f(x[e]) for the row's elements. */
template <class Op, class F>
__device__ double row_fold(const void *x, mt_dtype dt, const desc &d, int64_t row, int64_t len,
                           const Op &op, double identity, F f, double *smem) {
  double acc = identity;
  for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
    acc = op.combine(acc, f(load_as<double>(x, dt, offset_of(d, row * len + j))));
  return block_combine(op, acc, smem);
}

struct square {
  double m;
  __device__ double operator()(double v) const { return (v - m) * (v - m); }
};
struct absolute {
  __device__ double operator()(double v) const { return fabs(v); }
};
struct nonzero {
  __device__ double operator()(double v) const { return v != 0 ? 1.0 : 0.0; }
};
struct abs_pow {
  double p;
  __device__ double operator()(double v) const { return pow(fabs(v), p); }
};
struct exp_minus {
  double m;
  __device__ double operator()(double v) const { return exp(v - m); }
};
struct same {
  __device__ double operator()(double v) const { return v; }
};

__device__ double row_norm(const void *x, mt_dtype dt, const desc &d, int64_t row, int64_t len,
                           double p, double *smem) {
  if (p == 2) return sqrt(row_fold(x, dt, d, row, len, add_op(), 0.0, square{0}, smem));
  if (p == 1) return row_fold(x, dt, d, row, len, add_op(), 0.0, absolute(), smem);
  if (p == 0) return row_fold(x, dt, d, row, len, add_op(), 0.0, nonzero(), smem);
  if (isinf(p) && p > 0) return row_fold(x, dt, d, row, len, max_op(), 0.0, absolute(), smem);
  if (isinf(p)) return row_fold(x, dt, d, row, len, min_op(), INFINITY, absolute(), smem);
  return pow(row_fold(x, dt, d, row, len, add_op(), 0.0, abs_pow{p}, smem), 1.0 / p);
}

__device__ double row_result(int kind, const void *x, mt_dtype dt, const desc &d, int64_t row,
                             int64_t len, double s, double *smem) {
  if (kind == R_NORM) return row_norm(x, dt, d, row, len, s, smem);
  if (kind == R_LSE) {
    double m = row_fold(x, dt, d, row, len, max_op(), -INFINITY, same(), smem);
    if (m != m || isinf(m)) return m;
    return m + log(row_fold(x, dt, d, row, len, add_op(), 0.0, exp_minus{m}, smem));
  }
  double mean = row_fold(x, dt, d, row, len, add_op(), 0.0, same(), smem) / (double)len;
  double v = row_fold(x, dt, d, row, len, add_op(), 0.0, square{mean}, smem) /
             fmax(0.0, (double)len - s);
  return kind == R_STD ? sqrt(v) : v;
}

__global__ void __launch_bounds__(THREADS)
    reduce_float_kernel(const void *x, mt_dtype dt, desc d, int64_t nrows, int64_t len, int kind,
                        double s, void *out, mt_dtype odt) {
  __shared__ double smem[32];
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    double r = row_result(kind, x, dt, d, row, len, s, smem);
    if (threadIdx.x == 0) store_as(out, odt, row, r);
  }
}

__global__ void __launch_bounds__(THREADS)
    reduce_bool_kernel(const void *x, mt_dtype dt, desc d, int64_t nrows, int64_t len, bool all,
                       bool8 *out) {
  for (int64_t row = blockIdx.x; row < nrows; row += gridDim.x) {
    int mine = all ? 1 : 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
      bool v = load_as<bool>(x, dt, offset_of(d, row * len + j));
      mine = all ? mine & v : mine | v;
    }
    int r = all ? __syncthreads_and(mine) : __syncthreads_or(mine);
    if (threadIdx.x == 0) out[row] = bool8{(uint8_t)(r != 0)};
  }
}

unsigned row_grid(int64_t nrows) {
  return (unsigned)(nrows < 65535 ? (nrows < 1 ? 1 : nrows) : 65535);
}

} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_reduce_float(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                           const mti_attrs *at, const mti_view *out) {
  char fn[64];
  int64_t nrows, len;
  desc d = rows_desc(in[0], at->dims_mask, &nrows, &len);
  if (nrows == 0) return MT_OK;
  int kind = op == MTI_OP_VAR ? R_VAR : op == MTI_OP_STD ? R_STD
             : op == MTI_OP_LOGSUMEXP ? R_LSE : R_NORM;
  reduce_float_kernel<<<row_grid(nrows), THREADS, 0, ctx->stream>>>(
      in[0].data, in[0].dtype, d, nrows, len, kind, at->s0, out->data, out->dtype);
  return launched(op_fn(op, fn, sizeof fn));
}

extern "C" mt_status mtw_cuda_reduce_bool(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                          const mti_attrs *at, const mti_view *out) {
  char fn[64];
  int64_t nrows, len;
  desc d = rows_desc(in[0], at->dims_mask, &nrows, &len);
  if (nrows == 0) return MT_OK;
  reduce_bool_kernel<<<row_grid(nrows), THREADS, 0, ctx->stream>>>(
      in[0].data, in[0].dtype, d, nrows, len, op == MTI_OP_ALL, (bool8 *)out->data);
  return launched(op_fn(op, fn, sizeof fn));
}

extern "C" mt_status mtw_cuda_extreme_dim(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                          const mti_attrs *at, const mti_view *out) {
  mti_attrs red = *at;
  red.dims_mask = in[0].ndim ? 1u << at->dim : 0u;
  bool max = op == MTI_OP_MAX_DIM;
  mt_status s = mtw_cuda_reduce(ctx, max ? MTI_OP_AMAX : MTI_OP_AMIN, in, &red, &out[0]);
  if (!s) s = mtw_cuda_argreduce(ctx, max ? MTI_OP_ARGMAX : MTI_OP_ARGMIN, in, at, &out[1]);
  return s;
}
