/*
 * cuda_norm.cu - rms_norm, group_norm, batch_norm and cross_entropy on the
 * GPU.
 *
 * Semantics are the cpu's (src/cpu/norm.c) and the formulas that turn sums
 * into results are core/norm_rules.h's, shared with it: compute type
 * float64 for float64 and float32 otherwise, statistics summed per thread
 * in double and across the block with cub::BlockReduce (double), results
 * rounded once into out. Only the summation order differs from the cpu.
 *
 * Every kernel reads contiguous rows: an input that is contiguous is read
 * as it is (its own dtype, widened per element), any other view (strided,
 * or cross_entropy's [N, C, d...] whose classes are not the last dim) is
 * first staged into scratch as contiguous compute-type rows. Weights, biases
 * and running stats are staged to the compute type too (a few values).
 *  rms_norm, group_norm, cross_entropy: one block of THREADS per row (a
 *    grid-stride loop over rows when there are more than MAX_GRID).
 *  batch_norm: one block per channel computes the statistics and the
 *    channel's scale and shift, then an elementwise kernel applies them.
 *  cross_entropy: each row block writes the row's logsumexp, its loss and
 *    whether it counts; one block then sums the losses in a fixed order.
 *    A target outside [0, C) that is not ignore_index sets the fault word
 *    (MTW_CUDA_FAULT_INDEX_RANGE), reported at the next synchronize.
 */
#include <cub/block/block_reduce.cuh>

#include "cuda_reduce.cuh"

extern "C" {
#include "core/norm_rules.h"
}

namespace mtw {
namespace {

enum {
  THREADS = 256,       /* threads of a row block                        */
  APPLY_THREADS = 256, /* threads of the elementwise kernels              */
  MAX_GRID = 65535     /* row blocks launched at most (the rest loop)     */
};

typedef cub::BlockReduce<double, THREADS> block_reduce;

/* The sum of v over the block, in every thread. All threads must call it;
 * tmp and out are the caller's shared memory (reused after the barrier). */
__device__ __forceinline__ double block_sum(double v, block_reduce::TempStorage &tmp,
                                            double &out) {
  double s = block_reduce(tmp).Sum(v);
  if (threadIdx.x == 0) out = s;
  __syncthreads();
  s = out;
  __syncthreads();
  return s;
}

/* max over the block where a NaN wins, in every thread */
struct nan_max {
  __device__ double operator()(double a, double b) const {
    return (b > a || b != b) ? b : a;
  }
};
__device__ __forceinline__ double block_max(double v, block_reduce::TempStorage &tmp,
                                            double &out) {
  double s = block_reduce(tmp).Reduce(v, nan_max());
  if (threadIdx.x == 0) out = s;
  __syncthreads();
  s = out;
  __syncthreads();
  return s;
}

__device__ __forceinline__ float exp_ct(float x) { return expf(x); }
__device__ __forceinline__ double exp_ct(double x) { return exp(x); }

unsigned row_grid(int64_t rows) { return (unsigned)(rows < MAX_GRID ? (rows > 0 ? rows : 1) : MAX_GRID); }

/* ---- rms_norm ---- */

template <class In>
__global__ void __launch_bounds__(THREADS)
    rms_norm_rows(const In *x, int64_t rows, int64_t n, const typename float_compute<In>::type *w,
                  double eps, In *y) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const In *xr = x + row * n;
    In *yr = y + row * n;
    double sq = 0;
    for (int64_t k = threadIdx.x; k < n; k += THREADS) {
      double v = (double)(CT)widen(xr[k]);
      sq += v * v;
    }
    sq = block_sum(sq, tmp, shared);
    CT r = (CT)mti_norm_rstd(sq / (double)n, eps);
    for (int64_t k = threadIdx.x; k < n; k += THREADS) {
      CT t = mul_rn((CT)widen(xr[k]), r);
      if (w) t = mul_rn(t, w[k]);
      yr[k] = convert<In>(t);
    }
  }
}

/* ---- row statistics (group_norm) ---- */

/* mean and biased variance of a row of len values, in every thread: the
 * mean, then the squared deviations around it rounded to CT. */
template <class In, class CT>
__device__ void row_stats(const In *xr, int64_t len, block_reduce::TempStorage &tmp,
                          double &shared, double *mean, double *var) {
  double s = 0;
  for (int64_t k = threadIdx.x; k < len; k += THREADS) s += (double)(CT)widen(xr[k]);
  s = block_sum(s, tmp, shared);
  *mean = s / (double)len;
  CT mc = (CT)*mean;
  double q = 0;
  for (int64_t k = threadIdx.x; k < len; k += THREADS) {
    CT d = (CT)widen(xr[k]) - mc;
    q += (double)mul_rn(d, d);
  }
  q = block_sum(q, tmp, shared);
  *var = mti_norm_variance(q, len, *mean, (double)mc);
}

/* Channel c's scale and shift, as the cpu's channel_affine: y = (x - mean)
 * * scale + shift. */
template <class CT>
__device__ __forceinline__ void channel_affine(const CT *w, const CT *b, int64_t c, double rstd,
                                               CT *scale, CT *shift) {
  *scale = (CT)mti_norm_scale(rstd, w ? (double)w[c] : 1.0);
  *shift = b ? b[c] : (CT)0;
}

/* One block per row (n, g) of len = per_group * spatial values. */
template <class In>
__global__ void __launch_bounds__(THREADS)
    group_norm_rows(const In *x, int64_t rows, int64_t groups, int64_t per_group, int64_t spatial,
                    const typename float_compute<In>::type *w,
                    const typename float_compute<In>::type *b, double eps, In *y,
                    typename float_compute<In>::type *mean_out,
                    typename float_compute<In>::type *rstd_out) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  const int64_t len = per_group * spatial;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const In *xr = x + row * len;
    In *yr = y + row * len;
    double mean = 0, var = 0;
    if (len) row_stats<In, CT>(xr, len, tmp, shared, &mean, &var);
    double rstd = mti_norm_rstd(var, eps);
    if (threadIdx.x == 0) {
      mean_out[row] = (CT)mean;
      rstd_out[row] = (CT)rstd;
    }
    int64_t first = row % groups * per_group;
    CT mc = (CT)mean;
    for (int64_t k = threadIdx.x; k < len; k += THREADS) {
      CT scale, shift;
      channel_affine(w, b, first + k / spatial, rstd, &scale, &shift);
      yr[k] = convert<In>(add_rn(mul_rn((CT)widen(xr[k]) - mc, scale), shift));
    }
  }
}

/* ---- batch_norm ---- */

/* One block per channel: the batch statistics over x [n, channels,
 * spatial] (or, in eval, the running ones rm/rv), then the channel's scale
 * and shift for bn_apply. */
template <class In>
__global__ void __launch_bounds__(THREADS)
    bn_stats(const In *x, int64_t n, int64_t channels, int64_t spatial,
             const typename float_compute<In>::type *rm, const typename float_compute<In>::type *rv,
             const typename float_compute<In>::type *w, const typename float_compute<In>::type *b,
             double eps, typename float_compute<In>::type *mean_out,
             typename float_compute<In>::type *var_out, typename float_compute<In>::type *center,
             typename float_compute<In>::type *scale, typename float_compute<In>::type *shift) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  const int64_t count = n * spatial;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    double mean, var;
    if (rm) {
      mean = (double)rm[c];
      var = (double)rv[c];
    } else {
      double s = 0;
      for (int64_t i = threadIdx.x; i < count; i += THREADS)
        s += (double)(CT)widen(x[(i / spatial * channels + c) * spatial + i % spatial]);
      s = block_sum(s, tmp, shared);
      mean = s / (double)count;
      CT mc = (CT)mean;
      double q = 0;
      for (int64_t i = threadIdx.x; i < count; i += THREADS) {
        CT d = (CT)widen(x[(i / spatial * channels + c) * spatial + i % spatial]) - mc;
        q += (double)mul_rn(d, d);
      }
      q = block_sum(q, tmp, shared);
      var = mti_norm_variance(q, count, mean, (double)mc);
    }
    if (threadIdx.x == 0) {
      mean_out[c] = (CT)mean;
      var_out[c] = (CT)var;
      center[c] = (CT)mean;
      channel_affine(w, b, c, mti_norm_rstd(var, eps), &scale[c], &shift[c]);
    }
  }
}

template <class In>
__global__ void bn_apply(const In *x, int64_t numel, int64_t channels, int64_t spatial,
                         const typename float_compute<In>::type *center,
                         const typename float_compute<In>::type *scale,
                         const typename float_compute<In>::type *shift, In *y) {
  typedef typename float_compute<In>::type CT;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = i / spatial % channels;
    y[i] = convert<In>(add_rn(mul_rn((CT)widen(x[i]) - center[c], scale[c]), shift[c]));
  }
}

/* ---- cross_entropy ---- */

/* One block per row of classes logits: lse_out[row], and the row's loss
 * (loss[row]) and whether it counts (counted[row], 0 or 1). */
template <class In>
__global__ void __launch_bounds__(THREADS)
    cross_entropy_rows(const In *x, int64_t rows, int64_t classes, const int64_t *target,
                       int64_t ignore, double ls, typename float_compute<In>::type *lse_out,
                       double *loss, double *counted, unsigned *fault, unsigned code) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const In *xr = x + row * classes;
    double m = -INFINITY, sx = 0;
    for (int64_t k = threadIdx.x; k < classes; k += THREADS) {
      CT v = (CT)widen(xr[k]);
      m = nan_max()(m, (double)v);
      sx += (double)v;
    }
    m = block_max(m, tmp, shared);
    if (ls != 0) sx = block_sum(sx, tmp, shared);
    CT mc = (CT)m; /* exact: m is one of the row's values (or NaN) */
    double se = 0;
    for (int64_t k = threadIdx.x; k < classes; k += THREADS)
      se += (double)exp_ct((CT)widen(xr[k]) - mc);
    se = block_sum(se, tmp, shared);
    if (threadIdx.x == 0) {
      double lse = m + log(se);
      lse_out[row] = (CT)lse;
      int64_t t = target[row];
      double l = 0, counts = 0;
      if (t != ignore) {
        if (t < 0 || t >= classes) {
          atomicCAS(fault, 0u, code);
        } else {
          l = mti_cross_entropy_row(lse, (double)(CT)widen(xr[t]), sx, classes, ls);
          counts = 1;
        }
      }
      loss[row] = l;
      counted[row] = counts;
    }
  }
}

/* One block: the mean of the counted losses into the 0-d out. */
template <class In>
__global__ void __launch_bounds__(THREADS)
    cross_entropy_mean(const double *loss, const double *counted, int64_t rows, In *out) {
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  double s = 0, c = 0;
  for (int64_t r = threadIdx.x; r < rows; r += THREADS) s += loss[r], c += counted[r];
  s = block_sum(s, tmp, shared);
  c = block_sum(c, tmp, shared);
  if (threadIdx.x == 0) *out = convert<In>(mti_cross_entropy_mean(s, (int64_t)c));
}

/* ---- staging ---- */

/* dst[i] = element i (row-major) of the view converted to T. */
template <class T>
__global__ void stage_kernel(const void *src, mt_dtype d, desc from, int64_t n, T *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = load_as<T>(src, d, offset_of(from, i));
}

template <class T> void stage(const mtw_cuda_ctx *ctx, const mti_view &v, int64_t n, T *dst) {
  stage_kernel<T><<<grid_for(ctx, n, APPLY_THREADS), APPLY_THREADS, 0, ctx->stream>>>(
      v.data, v.dtype, make_desc(v), n, dst);
}

/* Bytes of n values of T, rounded up to 256 so that regions carved one
 * after another from scratch stay aligned. */
template <class T> size_t region(int64_t n) { return ((size_t)n * sizeof(T) + 255) / 256 * 256; }

bool is_contiguous(const mti_view &v) {
  return mti_shape_is_contiguous(v.ndim, v.shape, v.strides);
}

/* v with dim moved last (the other dims keep their order). */
mti_view dim_last(const mti_view &v, int dim) {
  mti_view p = v;
  int at = 0;
  for (int d = 0; d < v.ndim; d++)
    if (d != dim) p.shape[at] = v.shape[d], p.strides[at++] = v.strides[d];
  p.shape[at] = v.shape[dim];
  p.strides[at] = v.strides[dim];
  return p;
}

/* Carves regions off one scratch allocation (one per op: ctx->scratch). */
struct carver {
  char *base;
  size_t used;
  void *take(size_t bytes) {
    void *p = base + used;
    used += bytes;
    return bytes ? p : nullptr;
  }
};

/* Scratch of total bytes (NULL base when 0); false when exhausted. */
bool scratch_of(const mtw_cuda_ctx *ctx, size_t total, carver *c) {
  c->used = 0;
  c->base = nullptr;
  if (!total) return true;
  c->base = (char *)ctx->scratch(ctx, total);
  return c->base != nullptr;
}

/* Runs the statements with In bound to floating dtype d's storage type. */
#define BY_FLOAT(d, ...)      \
  switch (d) {                \
  case MT_FLOAT16: {          \
    typedef __half In;        \
    __VA_ARGS__;              \
  } break;                    \
  case MT_BFLOAT16: {         \
    typedef __nv_bfloat16 In; \
    __VA_ARGS__;              \
  } break;                    \
  case MT_FLOAT32: {          \
    typedef float In;         \
    __VA_ARGS__;              \
  } break;                    \
  default: {                  \
    typedef double In;        \
    __VA_ARGS__;              \
  } break;                    \
  }

/* The rows of v as contiguous In values: v's own memory when it is
 * contiguous, else a copy staged into scratch (exact: v's own dtype). */
template <class In>
const In *rows_of(const mtw_cuda_ctx *ctx, const mti_view &v, int64_t n, carver *c) {
  if (is_contiguous(v)) return (const In *)v.data;
  In *p = (In *)c->take(region<In>(n));
  stage(ctx, v, n, p);
  return p;
}

template <class In> size_t rows_bytes(const mti_view &v, int64_t n) {
  return is_contiguous(v) ? 0 : region<In>(n);
}

/* A param (weight, bias, running stat) as n contiguous CT values. */
template <class CT>
const CT *param(const mtw_cuda_ctx *ctx, const mti_view &v, bool present, int64_t n, carver *c) {
  if (!present) return nullptr;
  CT *p = (CT *)c->take(region<CT>(n));
  stage(ctx, v, n, p);
  return p;
}

template <class In>
mt_status rms_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                    const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const mti_view &a = in[0];
  int64_t n = a.shape[a.ndim - 1], numel = mti_shape_numel(a.ndim, a.shape), rows = numel / n;
  bool has_w = (at->flags & MTI_FLAG_HAS_WEIGHT) != 0;
  carver c;
  if (!scratch_of(ctx, rows_bytes<In>(a, numel) + (has_w ? region<CT>(n) : 0), &c))
    return MT_ERR_OUT_OF_MEMORY;
  const In *x = rows_of<In>(ctx, a, numel, &c);
  const CT *w = param<CT>(ctx, in[1], has_w, n, &c);
  rms_norm_rows<In><<<row_grid(rows), THREADS, 0, ctx->stream>>>(x, rows, n, w, at->s0,
                                                                   (In *)out->data);
  return launched("mt_rms_norm");
}

template <class In>
mt_status group_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                      const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const mti_view &a = in[0];
  int64_t numel = mti_shape_numel(a.ndim, a.shape), n = a.shape[0], channels = a.shape[1];
  int64_t groups = at->ints[0], spatial = 1;
  for (int d = 2; d < a.ndim; d++) spatial *= a.shape[d];
  bool has_w = (at->flags & MTI_FLAG_HAS_WEIGHT) != 0, has_b = (at->flags & MTI_FLAG_HAS_BIAS) != 0;
  size_t total = rows_bytes<In>(a, numel) + (has_w ? region<CT>(channels) : 0) +
                 (has_b ? region<CT>(channels) : 0);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *x = rows_of<In>(ctx, a, numel, &c);
  const CT *w = param<CT>(ctx, in[1], has_w, channels, &c);
  const CT *b = param<CT>(ctx, in[2], has_b, channels, &c);
  int64_t rows = n * groups;
  group_norm_rows<In><<<row_grid(rows), THREADS, 0, ctx->stream>>>(
      x, rows, groups, channels / groups, spatial, w, b, at->s0, (In *)out[0].data,
      (CT *)out[1].data, (CT *)out[2].data);
  return launched("mt_group_norm");
}

template <class In>
mt_status batch_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                      const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const mti_view &a = in[0];
  int64_t numel = mti_shape_numel(a.ndim, a.shape), n = a.shape[0], channels = a.shape[1];
  int64_t spatial = 1;
  for (int d = 2; d < a.ndim; d++) spatial *= a.shape[d];
  if (channels == 0) return MT_OK;
  bool eval = (at->flags & MTI_FLAG_PRESENT(1)) != 0;
  bool has_w = (at->flags & MTI_FLAG_PRESENT(3)) != 0, has_b = (at->flags & MTI_FLAG_PRESENT(4)) != 0;
  size_t per = region<CT>(channels);
  size_t total = rows_bytes<In>(a, numel) + per * (3 + (eval ? 2 : 0) + has_w + has_b);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *x = rows_of<In>(ctx, a, numel, &c);
  const CT *rm = param<CT>(ctx, in[1], eval, channels, &c);
  const CT *rv = param<CT>(ctx, in[2], eval, channels, &c);
  const CT *w = param<CT>(ctx, in[3], has_w, channels, &c);
  const CT *b = param<CT>(ctx, in[4], has_b, channels, &c);
  CT *center = (CT *)c.take(per), *scale = (CT *)c.take(per), *shift = (CT *)c.take(per);
  bn_stats<In><<<row_grid(channels), THREADS, 0, ctx->stream>>>(
      x, n, channels, spatial, rm, rv, w, b, at->s0, (CT *)out[1].data, (CT *)out[2].data, center,
      scale, shift);
  mt_status s = launched("mt_batch_norm");
  if (s || numel == 0) return s;
  bn_apply<In><<<grid_for(ctx, numel, APPLY_THREADS), APPLY_THREADS, 0, ctx->stream>>>(
      x, numel, channels, spatial, center, scale, shift, (In *)out[0].data);
  return launched("mt_batch_norm");
}

/* The logits as contiguous rows of classes: [N, C] (or [C]) contiguous is
 * read as it is; [N, C, d...] and strided views are staged with the
 * classes moved last (rows in the target's order). */
template <class In>
mt_status cross_entropy_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                              const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const mti_view &a = in[0], &t = in[1];
  int cdim = a.ndim == 1 ? 0 : 1;
  int64_t numel = mti_shape_numel(a.ndim, a.shape), classes = a.shape[cdim];
  int64_t rows = mti_shape_numel(t.ndim, t.shape);
  mti_view moved = dim_last(a, cdim);
  bool x_direct = is_contiguous(moved), t_direct = is_contiguous(t);
  size_t total = (x_direct ? 0 : region<In>(numel)) + (t_direct ? 0 : region<int64_t>(rows)) +
                 2 * region<double>(rows);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *x = (const In *)moved.data;
  if (!x_direct) {
    In *p = (In *)c.take(region<In>(numel));
    stage(ctx, moved, numel, p);
    x = p;
  }
  const int64_t *target = (const int64_t *)t.data;
  if (!t_direct) {
    int64_t *p = (int64_t *)c.take(region<int64_t>(rows));
    stage(ctx, t, rows, p);
    target = p;
  }
  double *loss = (double *)c.take(region<double>(rows));
  double *counted = (double *)c.take(region<double>(rows));
  unsigned code = MTW_CUDA_FAULT(MTI_OP_CROSS_ENTROPY, MTW_CUDA_FAULT_INDEX_RANGE);
  if (rows) {
    cross_entropy_rows<In><<<row_grid(rows), THREADS, 0, ctx->stream>>>(
        x, rows, classes, target, at->ints[0], at->s0, (CT *)out[1].data, loss, counted,
        ctx->fault, code);
    mt_status s = launched("mt_cross_entropy");
    if (s) return s;
  }
  cross_entropy_mean<In><<<1, THREADS, 0, ctx->stream>>>(loss, counted, rows, (In *)out[0].data);
  return launched("mt_cross_entropy");
}

/* ---- fused norm backwards (issue 12) ---- */

enum {
  TILE_COLS = 32, /* columns of a column-sum block (one warp across)      */
  TILE_ROWS = 8,  /* rows a column-sum block takes at a time              */
  SLICES_MAX = 64 /* row slices of the column sums (joined in slice order) */
};

/* One block per channel: sums of dy and dy (x - mean) over x [n, channels,
 * spatial]; dweight, dbias, and the channel's coefficients of bn_dx (as the
 * cpu's bn_channel_dx: dx = k (dy - a - (x - mean) b)). */
template <class In>
__global__ void __launch_bounds__(THREADS)
    bn_backward_sums(const In *dy, const In *x, int64_t n, int64_t channels, int64_t spatial,
                     const typename float_compute<In>::type *mean,
                     const typename float_compute<In>::type *var,
                     const typename float_compute<In>::type *w, double eps, int training,
                     typename float_compute<In>::type *dweight,
                     typename float_compute<In>::type *dbias, typename float_compute<In>::type *k,
                     typename float_compute<In>::type *a, typename float_compute<In>::type *b) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  const int64_t count = n * spatial;
  for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
    CT m = mean[c];
    double sdy = 0, sdyx = 0;
    for (int64_t i = threadIdx.x; i < count; i += THREADS) {
      int64_t at = (i / spatial * channels + c) * spatial + i % spatial;
      CT g = (CT)widen(dy[at]);
      sdy += (double)g;
      sdyx += (double)mul_rn(g, (CT)widen(x[at]) - m);
    }
    sdy = block_sum(sdy, tmp, shared);
    sdyx = block_sum(sdyx, tmp, shared);
    if (threadIdx.x == 0) {
      double rstd = mti_norm_rstd((double)var[c], eps), total = (double)count;
      dweight[c] = (CT)(sdyx * rstd);
      dbias[c] = (CT)sdy;
      k[c] = (CT)((w ? (double)w[c] : 1.0) * rstd);
      a[c] = (CT)(training ? sdy / total : 0.0);
      b[c] = (CT)(training ? sdyx * rstd * rstd / total : 0.0);
    }
  }
}

template <class In>
__global__ void bn_backward_dx(const In *dy, const In *x, int64_t numel, int64_t channels,
                               int64_t spatial, const typename float_compute<In>::type *mean,
                               const typename float_compute<In>::type *k,
                               const typename float_compute<In>::type *a,
                               const typename float_compute<In>::type *b, In *dx) {
  typedef typename float_compute<In>::type CT;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = i / spatial % channels;
    CT d = (CT)widen(dy[i]) - a[c] - mul_rn((CT)widen(x[i]) - mean[c], b[c]);
    dx[i] = convert<In>(mul_rn(k[c], d));
  }
}

/* One block per row of n: the row's mean (0 for rms) and rstd, kept in
 * stats[2 row..] for the column sums, and the row's dx (as the cpu's
 * row_norm_grad; w NULL for 1). */
template <class In>
__global__ void __launch_bounds__(THREADS)
    row_norm_backward_rows(const In *dy, const In *x, int64_t rows, int64_t n,
                           const typename float_compute<In>::type *w, double eps, int rms,
                           In *dx, typename float_compute<In>::type *stats) {
  typedef typename float_compute<In>::type CT;
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const In *gr = dy + row * n, *xr = x + row * n;
    double mean = 0, var = 0;
    if (rms) {
      for (int64_t j = threadIdx.x; j < n; j += THREADS) {
        double v = (double)(CT)widen(xr[j]);
        var += v * v;
      }
      var = block_sum(var, tmp, shared) / (double)n;
    } else {
      row_stats<In, CT>(xr, n, tmp, shared, &mean, &var);
    }
    CT m = (CT)mean, r = (CT)mti_norm_rstd(var, eps);
    double sd = 0, sdh = 0;
    for (int64_t j = threadIdx.x; j < n; j += THREADS) {
      CT d = w ? mul_rn((CT)widen(gr[j]), w[j]) : (CT)widen(gr[j]);
      sd += (double)d;
      sdh += (double)mul_rn(d, mul_rn((CT)widen(xr[j]) - m, r));
    }
    sd = block_sum(sd, tmp, shared);
    sdh = block_sum(sdh, tmp, shared);
    CT a = (CT)(rms ? 0.0 : sd / (double)n), b = (CT)((double)r * sdh / (double)n);
    for (int64_t j = threadIdx.x; j < n; j += THREADS) {
      CT d = w ? mul_rn((CT)widen(gr[j]), w[j]) : (CT)widen(gr[j]);
      dx[row * n + j] = convert<In>(mul_rn(r, d - a - mul_rn((CT)widen(xr[j]) - m, b)));
    }
    if (threadIdx.x == 0) {
      stats[2 * row] = m;
      stats[2 * row + 1] = r;
    }
  }
}

/* Blocks of TILE_COLS x TILE_ROWS threads, blockIdx.x a column tile,
 * blockIdx.y a slice of rows_per rows: the slice's sums of dy xhat and dy
 * per column into part[(2 slice) n + j] and part[(2 slice + 1) n + j]. */
template <class In>
__global__ void __launch_bounds__(TILE_COLS *TILE_ROWS)
    row_norm_column_sums(const In *dy, const In *x, int64_t rows, int64_t n, int64_t rows_per,
                         const typename float_compute<In>::type *stats, double *part) {
  typedef typename float_compute<In>::type CT;
  __shared__ double sw[TILE_ROWS][TILE_COLS], sb[TILE_ROWS][TILE_COLS];
  int64_t j = blockIdx.x * (int64_t)TILE_COLS + threadIdx.x;
  int64_t first = blockIdx.y * rows_per, end = first + rows_per < rows ? first + rows_per : rows;
  double pw = 0, pb = 0;
  if (j < n)
    for (int64_t row = first + threadIdx.y; row < end; row += TILE_ROWS) {
      CT g = (CT)widen(dy[row * n + j]);
      CT h = mul_rn((CT)widen(x[row * n + j]) - stats[2 * row], stats[2 * row + 1]);
      pw += (double)mul_rn(g, h);
      pb += (double)g;
    }
  sw[threadIdx.y][threadIdx.x] = pw;
  sb[threadIdx.y][threadIdx.x] = pb;
  __syncthreads();
  if (threadIdx.y == 0 && j < n) {
    for (int t = 1; t < TILE_ROWS; t++) pw += sw[t][threadIdx.x], pb += sb[t][threadIdx.x];
    part[2 * blockIdx.y * n + j] = pw;
    part[(2 * blockIdx.y + 1) * n + j] = pb;
  }
}

/* dweight (and dbias when not NULL) from the slices' sums, in slice order. */
template <class CT>
__global__ void row_norm_join(const double *part, int64_t n, int64_t slices, CT *dweight,
                              CT *dbias) {
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n;
       j += (int64_t)gridDim.x * blockDim.x) {
    double pw = 0, pb = 0;
    for (int64_t s = 0; s < slices; s++) pw += part[2 * s * n + j], pb += part[(2 * s + 1) * n + j];
    dweight[j] = (CT)pw;
    if (dbias) dbias[j] = (CT)pb;
  }
}

template <class In>
mt_status batch_backward_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                               const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const char *fn = "mt_batch_norm_backward";
  const mti_view &g = in[0], &xv = in[1];
  int64_t numel = mti_shape_numel(xv.ndim, xv.shape), n = xv.shape[0], channels = xv.shape[1];
  int64_t spatial = 1;
  for (int d = 2; d < xv.ndim; d++) spatial *= xv.shape[d];
  if (channels == 0) return MT_OK;
  bool has_w = (at->flags & MTI_FLAG_PRESENT(4)) != 0;
  size_t per = region<CT>(channels);
  size_t total = rows_bytes<In>(g, numel) + rows_bytes<In>(xv, numel) + per * (5 + has_w);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *dy = rows_of<In>(ctx, g, numel, &c), *x = rows_of<In>(ctx, xv, numel, &c);
  const CT *mean = param<CT>(ctx, in[2], true, channels, &c);
  const CT *var = param<CT>(ctx, in[3], true, channels, &c);
  const CT *w = param<CT>(ctx, in[4], has_w, channels, &c);
  CT *k = (CT *)c.take(per), *a = (CT *)c.take(per), *b = (CT *)c.take(per);
  bn_backward_sums<In><<<row_grid(channels), THREADS, 0, ctx->stream>>>(
      dy, x, n, channels, spatial, mean, var, w, at->s0, (int)at->ints[0], (CT *)out[1].data,
      (CT *)out[2].data, k, a, b);
  mt_status s = launched(fn);
  if (s || numel == 0) return s;
  bn_backward_dx<In><<<grid_for(ctx, numel, APPLY_THREADS), APPLY_THREADS, 0, ctx->stream>>>(
      dy, x, numel, channels, spatial, mean, k, a, b, (In *)out[0].data);
  return launched(fn);
}

/* Row slices of the column sums: fixed by the shape, so the sums do not
 * depend on the device. */
int64_t column_slices(int64_t rows) {
  int64_t slices = (rows + 255) / 256;
  return slices < 1 ? 1 : (slices > SLICES_MAX ? SLICES_MAX : slices);
}

template <class In>
mt_status row_backward_typed(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                             const mti_attrs *at, const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  bool rms = op == MTI_OP_RMS_NORM_BACKWARD;
  const char *fn = rms ? "mt_rms_norm_backward" : "mt_layer_norm_backward";
  const mti_view &g = in[0], &xv = in[1];
  int64_t n = xv.shape[xv.ndim - 1], numel = mti_shape_numel(xv.ndim, xv.shape);
  if (n == 0) return MT_OK;
  int64_t rows = numel / n, slices = column_slices(rows);
  int64_t rows_per = (rows + slices - 1) / slices;
  bool has_w = (at->flags & MTI_FLAG_PRESENT(2)) != 0;
  size_t total = rows_bytes<In>(g, numel) + rows_bytes<In>(xv, numel) +
                 (has_w ? region<CT>(n) : 0) + region<CT>(2 * rows) +
                 region<double>(2 * slices * n);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *dy = rows_of<In>(ctx, g, numel, &c), *x = rows_of<In>(ctx, xv, numel, &c);
  const CT *w = param<CT>(ctx, in[2], has_w, n, &c);
  CT *stats = (CT *)c.take(region<CT>(2 * rows));
  double *part = (double *)c.take(region<double>(2 * slices * n));
  mt_status s;
  if (rows) {
    row_norm_backward_rows<In><<<row_grid(rows), THREADS, 0, ctx->stream>>>(
        dy, x, rows, n, w, at->s0, rms, (In *)out[0].data, stats);
    if ((s = launched(fn))) return s;
  }
  dim3 tiles((unsigned)((n + TILE_COLS - 1) / TILE_COLS), (unsigned)slices);
  if (tiles.x > MAX_GRID)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: x: a last dim of %lld is past what the "
                     "column sums take", fn, (long long)n);
  row_norm_column_sums<In><<<tiles, dim3(TILE_COLS, TILE_ROWS), 0, ctx->stream>>>(
      dy, x, rows, n, rows_per, stats, part);
  if ((s = launched(fn))) return s;
  row_norm_join<CT><<<grid_for(ctx, n, APPLY_THREADS), APPLY_THREADS, 0, ctx->stream>>>(
      part, n, slices, (CT *)out[1].data, rms ? nullptr : (CT *)out[2].data);
  return launched(fn);
}

/* The targets that are not ignore_index, into *count (one block). */
__global__ void __launch_bounds__(THREADS)
    ce_count(const int64_t *target, int64_t rows, int64_t ignore, double *count) {
  __shared__ block_reduce::TempStorage tmp;
  __shared__ double shared;
  double n = 0;
  for (int64_t r = threadIdx.x; r < rows; r += THREADS) n += target[r] != ignore ? 1.0 : 0.0;
  n = block_sum(n, tmp, shared);
  if (threadIdx.x == 0) *count = n;
}

/* One block per row (n, d) of the logits [N, classes, inner]: dx = (exp(x
 * - lse) - off) scale, off = s / C (plus 1 - s at the target), as the
 * cpu's ce_row; 0 * scale on an ignored row (NaN when no row counts). */
template <class In>
__global__ void __launch_bounds__(THREADS)
    ce_backward_rows(const In *g, const In *x, int64_t rows, int64_t classes, int64_t inner,
                     const int64_t *target, const typename float_compute<In>::type *lse,
                     int64_t ignore, double ls, const double *count, In *dx) {
  typedef typename float_compute<In>::type CT;
  CT scale = (CT)((double)(CT)widen(g[0]) / *count);
  CT off = (CT)(ls / (double)classes), hit = (CT)(ls / (double)classes + (1.0 - ls));
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    int64_t base = row / inner * classes * inner + row % inner, t = target[row];
    bool valid = t != ignore;
    for (int64_t k = threadIdx.x; k < classes; k += THREADS) {
      int64_t i = base + k * inner;
      CT v = mul_rn((CT)0, scale);
      if (valid) v = mul_rn(exp_ct((CT)widen(x[i]) - lse[row]) - (k == t ? hit : off), scale);
      dx[i] = convert<In>(v);
    }
  }
}

template <class In>
mt_status ce_backward_typed(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                            const mti_view *out) {
  typedef typename float_compute<In>::type CT;
  const char *fn = "mt_cross_entropy_backward";
  const mti_view &a = in[1], &t = in[2], &l = in[3];
  int cdim = a.ndim == 1 ? 0 : 1;
  int64_t numel = mti_shape_numel(a.ndim, a.shape), classes = a.shape[cdim], inner = 1;
  for (int d = cdim + 1; d < a.ndim; d++) inner *= a.shape[d];
  int64_t rows = mti_shape_numel(t.ndim, t.shape);
  size_t total = rows_bytes<In>(in[0], 1) + rows_bytes<In>(a, numel) +
                 rows_bytes<int64_t>(t, rows) + rows_bytes<CT>(l, rows) + region<double>(1);
  carver c;
  if (!scratch_of(ctx, total, &c)) return MT_ERR_OUT_OF_MEMORY;
  const In *g = rows_of<In>(ctx, in[0], 1, &c), *x = rows_of<In>(ctx, a, numel, &c);
  const int64_t *target = rows_of<int64_t>(ctx, t, rows, &c);
  const CT *lse = rows_of<CT>(ctx, l, rows, &c);
  double *count = (double *)c.take(region<double>(1));
  ce_count<<<1, THREADS, 0, ctx->stream>>>(target, rows, at->ints[0], count);
  mt_status s = launched(fn);
  if (s || rows == 0) return s;
  ce_backward_rows<In><<<row_grid(rows), THREADS, 0, ctx->stream>>>(
      g, x, rows, classes, inner, target, lse, at->ints[0], at->s0, count, (In *)out[0].data);
  return launched(fn);
}

} /* namespace */
} /* namespace mtw */

extern "C" mt_status mtw_cuda_rms_norm(const mtw_cuda_ctx *ctx, const mti_view *in,
                                       const mti_attrs *at, const mti_view *out) {
  if (mti_shape_numel(in[0].ndim, in[0].shape) == 0) return MT_OK;
  BY_FLOAT(in[0].dtype, return mtw::rms_typed<In>(ctx, in, at, out));
  return MT_OK; /* not reached: BY_FLOAT's default returns */
}

extern "C" mt_status mtw_cuda_group_norm(const mtw_cuda_ctx *ctx, const mti_view *in,
                                         const mti_attrs *at, const mti_view *out) {
  if (in[0].shape[0] == 0) return MT_OK;
  BY_FLOAT(in[0].dtype, return mtw::group_typed<In>(ctx, in, at, out));
  return MT_OK;
}

extern "C" mt_status mtw_cuda_batch_norm(const mtw_cuda_ctx *ctx, const mti_view *in,
                                         const mti_attrs *at, const mti_view *out) {
  BY_FLOAT(in[0].dtype, return mtw::batch_typed<In>(ctx, in, at, out));
  return MT_OK;
}

extern "C" mt_status mtw_cuda_cross_entropy(const mtw_cuda_ctx *ctx, const mti_view *in,
                                            const mti_attrs *at, const mti_view *out) {
  BY_FLOAT(in[0].dtype, return mtw::cross_entropy_typed<In>(ctx, in, at, out));
  return MT_OK;
}

extern "C" mt_status mtw_cuda_batch_norm_backward(const mtw_cuda_ctx *ctx, const mti_view *in,
                                                  const mti_attrs *at, const mti_view *out) {
  BY_FLOAT(in[0].dtype, return mtw::batch_backward_typed<In>(ctx, in, at, out));
  return MT_OK;
}

extern "C" mt_status mtw_cuda_row_norm_backward(const mtw_cuda_ctx *ctx, mti_op op,
                                                const mti_view *in, const mti_attrs *at,
                                                const mti_view *out) {
  BY_FLOAT(in[0].dtype, return mtw::row_backward_typed<In>(ctx, op, in, at, out));
  return MT_OK;
}

extern "C" mt_status mtw_cuda_cross_entropy_backward(const mtw_cuda_ctx *ctx, const mti_view *in,
                                                     const mti_attrs *at, const mti_view *out) {
  BY_FLOAT(in[1].dtype, return mtw::ce_backward_typed<In>(ctx, in, at, out));
  return MT_OK;
}
