/*
 * cuda_sample.cu - eye, linspace, randint, dropout and multinomial on the
 * GPU, with src/cpu/sample.c's semantics and the Philox stream layouts of
 * src/core/philox.h (compiled with --fmad=false, so the float64 keys and
 * sums round as on the cpu and the draws are the same bit for bit).
 *
 * multinomial: one thread per row checks the row and, with replacement,
 * turns it into running sums in scratch (float64, in category order, as the
 * cpu); then one thread per sample searches them. Without replacement, one
 * thread per (row, category) computes its race key, CUB's
 * DeviceSegmentedSort::StableSortPairs orders each row by key (ties stay
 * in category order), and the first num_samples categories are the draws.
 * A row that cannot be sampled sets the fault word.
 */
#include <cub/device/device_segmented_sort.cuh>

#include "cuda_reduce.cuh"

extern "C" {
#include "core/philox.h"
}

namespace mtw {
namespace {

enum { THREADS = 256 };

template <class T>
__global__ void __launch_bounds__(THREADS) eye_kernel(int64_t n, int64_t m, T *out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n * m;
       e += (int64_t)gridDim.x * blockDim.x)
    out[e] = convert<T>(e / m == e % m ? 1.0 : 0.0);
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    linspace_kernel(double start, double end, int64_t steps, double step, T *out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < steps;
       i += (int64_t)gridDim.x * blockDim.x) {
    double v = i < steps / 2 || steps == 1 ? start + step * (double)i
                                           : end - step * (double)(steps - 1 - i);
    out[i] = convert<T>(v);
  }
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    randint_kernel(uint64_t seed, uint64_t low, uint64_t range, int64_t n, T *out) {
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; 2 * b < n;
       b += (int64_t)gridDim.x * blockDim.x) {
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_RANDINT, (uint64_t)b);
    for (int j = 0; j < 2 && 2 * b + j < n; j++) {
      uint64_t x = (uint64_t)w.w[2 * j + 1] << 32 | w.w[2 * j];
      out[2 * b + j] = convert<T>((int64_t)(low + x % range));
    }
  }
}

/* x * (kept ? scale : 0) in T's compute type, a of any strides. */
template <class T>
__global__ void __launch_bounds__(THREADS)
    dropout_kernel(const T *a, desc ad, uint64_t seed, double p, double scale, int64_t n,
                   T *out) {
  typedef decltype(widen(T())) C;
  for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; 4 * b < n;
       b += (int64_t)gridDim.x * blockDim.x) {
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_DROPOUT, (uint64_t)b);
    for (int j = 0; j < 4 && 4 * b + j < n; j++) {
      C keep = (double)mti_philox_uniform_f32(w.w[j]) >= p ? (C)scale : (C)0;
      int64_t e = 4 * b + j;
      out[e] = convert<T>(widen(a[offset_of(ad, e)]) * keep);
    }
  }
}

/* ---- multinomial ---- */

/* Row r of probs as float64 into p (rows x cats, contiguous); checks it and,
 * with replacement, makes running sums; last[r] is the last positive
 * category. */
template <class T>
__global__ void __launch_bounds__(THREADS)
    rows_kernel(const T *probs, desc pd, int64_t rows, int64_t cats, int64_t n, bool replacement,
                double *p, int64_t *last, unsigned *fault, unsigned code) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    double total = 0, *row = p + r * cats;
    int64_t positive = 0, lastpos = 0;
    bool bad = false;
    for (int64_t c = 0; c < cats; c++) {
      double v = (double)widen(probs[offset_of(pd, r * cats + c)]);
      bad |= !(v >= 0) || isinf(v);
      total += v;
      positive += v > 0;
      if (v > 0) lastpos = c;
      row[c] = replacement ? total : v;
    }
    last[r] = lastpos;
    if (bad || !(total > 0) || isinf(total) || (!replacement && positive < n))
      atomicCAS(fault, 0u, code);
  }
}

__global__ void __launch_bounds__(THREADS)
    draw_kernel(const double *cdf, const int64_t *last, int64_t rows, int64_t cats, int64_t n,
                uint64_t seed, int64_t *out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < rows * n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = e / n;
    const double *row = cdf + r * cats;
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_MULTINOMIAL, (uint64_t)e);
    double target = mti_philox_uniform_f64(w.w[0], w.w[1]) * row[cats - 1];
    int64_t lo = 0, hi = cats;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (row[mid] > target) hi = mid;
      else lo = mid + 1;
    }
    out[e] = lo < cats ? lo : last[r];
  }
}

__global__ void __launch_bounds__(THREADS)
    keys_kernel(const double *p, int64_t total, int64_t cats, uint64_t seed, double *keys,
                int64_t *cat, int64_t *offsets, int64_t rows) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total;
       e += (int64_t)gridDim.x * blockDim.x) {
    mti_philox_words w = mti_philox_block(seed, MTI_PHILOX_STREAM_MULTINOMIAL, (uint64_t)e);
    double u = mti_philox_uniform_f64(w.w[0], w.w[1]) + 0x1p-53;
    keys[e] = p[e] > 0 ? -mti_philox_log(u) / p[e] : INFINITY;
    cat[e] = e % cats;
    if (e % cats == 0) offsets[e / cats] = e;
    if (e == 0) offsets[rows] = total;
  }
}

__global__ void __launch_bounds__(THREADS)
    first_kernel(const int64_t *sorted, int64_t rows, int64_t cats, int64_t n, int64_t *out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < rows * n;
       e += (int64_t)gridDim.x * blockDim.x)
    out[e] = sorted[e / n * cats + e % n];
}

/* Bytes rounded up to 256, so that regions carved from one scratch stay aligned. */
size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

mt_status without_replacement(const mtw_cuda_ctx *ctx, const double *p, int64_t rows,
                              int64_t cats, int64_t n, uint64_t seed, char *rest, int64_t *out) {
  int64_t total = rows * cats;
  size_t kb = aligned(sizeof(double) * (size_t)total), ib = aligned(sizeof(int64_t) * (size_t)total);
  double *keys = (double *)rest, *keys_out = (double *)(rest + kb);
  int64_t *cat = (int64_t *)(rest + 2 * kb), *cat_out = (int64_t *)(rest + 2 * kb + ib);
  int64_t *offsets = (int64_t *)(rest + 2 * kb + 2 * ib);
  char *temp = rest + 2 * kb + 2 * ib + aligned(sizeof(int64_t) * (size_t)(rows + 1));
  size_t temp_bytes = 0;
  cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp_bytes, keys, keys_out, cat, cat_out,
                                            total, rows, offsets, offsets + 1, ctx->stream);
  keys_kernel<<<grid_for(ctx, total, THREADS), THREADS, 0, ctx->stream>>>(
      p, total, cats, seed, keys, cat, offsets, rows);
  if (cub::DeviceSegmentedSort::StableSortPairs(temp, temp_bytes, keys, keys_out, cat, cat_out,
                                                total, rows, offsets, offsets + 1, ctx->stream))
    return launched("mt_multinomial");
  first_kernel<<<grid_for(ctx, rows * n, THREADS), THREADS, 0, ctx->stream>>>(cat_out, rows, cats,
                                                                               n, out);
  return launched("mt_multinomial");
}

/* Scratch for without_replacement beyond p and last: keys and categories
 * twice, the offsets and CUB's temporary storage. */
size_t race_bytes(int64_t rows, int64_t cats, cudaStream_t stream) {
  int64_t total = rows * cats;
  size_t temp = 0;
  cub::DeviceSegmentedSort::StableSortPairs(nullptr, temp, (const double *)nullptr,
                                            (double *)nullptr, (const int64_t *)nullptr,
                                            (int64_t *)nullptr, total, rows,
                                            (const int64_t *)nullptr, (const int64_t *)nullptr,
                                            stream);
  return 2 * aligned(sizeof(double) * (size_t)total) + 2 * aligned(sizeof(int64_t) * (size_t)total) +
         aligned(sizeof(int64_t) * (size_t)(rows + 1)) + aligned(temp);
}

} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_eye(const mtw_cuda_ctx *ctx, const mti_view *out) {
  int64_t n = out->shape[0], m = out->shape[1];
  if (n * m == 0) return MT_OK;
  MTW_DISPATCH(out->dtype, eye_kernel<scalar_t><<<grid_for(ctx, n * m, THREADS), THREADS, 0,
                                                 ctx->stream>>>(n, m, (scalar_t *)out->data);
               return launched("mt_eye"));
  return mti_error(MT_ERR_INTERNAL, "mt_eye: dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_linspace(const mtw_cuda_ctx *ctx, const mti_attrs *at,
                                       const mti_view *out) {
  int64_t steps = out->shape[0];
  if (steps == 0) return MT_OK;
  double step = steps > 1 ? (at->s1 - at->s0) / (double)(steps - 1) : 0.0;
  MTW_DISPATCH(out->dtype, linspace_kernel<scalar_t><<<grid_for(ctx, steps, THREADS), THREADS, 0,
                                                      ctx->stream>>>(
                               at->s0, at->s1, steps, step, (scalar_t *)out->data);
               return launched("mt_linspace"));
  return mti_error(MT_ERR_INTERNAL, "mt_linspace: dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_randint(const mtw_cuda_ctx *ctx, const mti_attrs *at,
                                      const mti_view *out) {
  int64_t n = mti_shape_numel(out->ndim, out->shape);
  if (n == 0) return MT_OK;
  uint64_t low = (uint64_t)at->ints[0], range = (uint64_t)at->ints[1] - low;
  MTW_DISPATCH(out->dtype, randint_kernel<scalar_t><<<grid_for(ctx, (n + 1) / 2, THREADS),
                                                      THREADS, 0, ctx->stream>>>(
                               at->seed, low, range, n, (scalar_t *)out->data);
               return launched("mt_randint"));
  return mti_error(MT_ERR_INTERNAL, "mt_randint: dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_dropout(const mtw_cuda_ctx *ctx, const mti_view *in,
                                      const mti_attrs *at, const mti_view *out) {
  int64_t n = mti_shape_numel(out->ndim, out->shape);
  if (n == 0) return MT_OK;
  double p = at->s0, scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  desc ad = make_desc(in[0]);
  unsigned grid = grid_for(ctx, (n + 3) / 4, THREADS);
  switch (out->dtype) {
  case MT_FLOAT16:
    dropout_kernel<__half><<<grid, THREADS, 0, ctx->stream>>>(
        (const __half *)in[0].data, ad, at->seed, p, scale, n, (__half *)out->data);
    break;
  case MT_BFLOAT16:
    dropout_kernel<__nv_bfloat16><<<grid, THREADS, 0, ctx->stream>>>(
        (const __nv_bfloat16 *)in[0].data, ad, at->seed, p, scale, n,
        (__nv_bfloat16 *)out->data);
    break;
  case MT_FLOAT64:
    dropout_kernel<double><<<grid, THREADS, 0, ctx->stream>>>(
        (const double *)in[0].data, ad, at->seed, p, scale, n, (double *)out->data);
    break;
  default:
    dropout_kernel<float><<<grid, THREADS, 0, ctx->stream>>>(
        (const float *)in[0].data, ad, at->seed, p, scale, n, (float *)out->data);
    break;
  }
  return launched("mt_dropout");
}

extern "C" mt_status mtw_cuda_multinomial(const mtw_cuda_ctx *ctx, const mti_view *in,
                                          const mti_attrs *at, const mti_view *out) {
  const mti_view &probs = in[0];
  int64_t cats = probs.shape[probs.ndim - 1], rows = probs.ndim == 2 ? probs.shape[0] : 1;
  int64_t n = at->ints[0];
  bool replacement = (at->flags & MTI_FLAG_REPLACEMENT) != 0;
  if (rows == 0) return MT_OK;
  size_t pb = aligned(sizeof(double) * (size_t)(rows * cats)), lb = aligned(sizeof(int64_t) * (size_t)rows);
  size_t bytes = pb + lb + (replacement ? 0 : race_bytes(rows, cats, ctx->stream));
  char *scratch = (char *)ctx->scratch(ctx, bytes);
  if (!scratch) return mt_last_status();
  double *p = (double *)scratch;
  int64_t *last = (int64_t *)(scratch + pb);
  desc pd = make_desc(probs);
  unsigned code = MTW_CUDA_FAULT(MTI_OP_MULTINOMIAL, MTW_CUDA_FAULT_INVALID_PROBS);
  unsigned grid = grid_for(ctx, rows, THREADS);
  MTW_DISPATCH(probs.dtype, rows_kernel<scalar_t><<<grid, THREADS, 0, ctx->stream>>>(
                                (const scalar_t *)probs.data, pd, rows, cats, n, replacement, p,
                                last, ctx->fault, code));
  if (!replacement)
    return without_replacement(ctx, p, rows, cats, n, at->seed, scratch + pb + lb,
                               (int64_t *)out->data);
  draw_kernel<<<grid_for(ctx, rows * n, THREADS), THREADS, 0, ctx->stream>>>(
      p, last, rows, cats, n, at->seed, (int64_t *)out->data);
  return launched("mt_multinomial");
}
