/*
 * cuda_conv.cu - the kernels of convolution and pooling: im2col, the bias
 * fill that cuBLAS then adds the product to (beta = 1), a direct kernel
 * for one input channel per group (depthwise), and the pools. The conv
 * driver that calls cuBLAS is cuda_conv.c.
 *
 * Semantics are src/cpu/conv.c's and src/cpu/pool.c's: float16/bfloat16
 * accumulate in float32, float32 in float32, float64 in float64; max
 * pooling takes NaN as the maximum (the last NaN of a window) and reports
 * the first valid position of an all -inf window. Inputs are read through
 * their strides (no staging copies); outputs are contiguous. Every kernel
 * is a grid-stride loop over its outputs (grid_for bounds the grid).
 */
#include "cuda_common.cuh"
#include "cuda_conv.cuh"
#include "cuda_conv.h"

namespace mtw {
namespace {

enum { THREADS = 256 };

template <class T>
__global__ void __launch_bounds__(THREADS)
    im2col_kernel(mti_conv_geom g, strides4 xs, const T *x, int64_t n0, int64_t total, T *col) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off;
    col[i] = im2col_source(g, xs, n0, i, &off) ? x[off] : convert<T>(0.0f);
  }
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    bias_fill_kernel(const T *bias, int64_t bias_stride, int64_t o, int64_t p, int64_t total,
                     T *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = bias[((i / p) % o) * bias_stride];
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    depthwise_kernel(mti_conv_geom g, strides4 xs, const T *x, strides4 ws, const T *w,
                     const T *bias, int64_t bias_stride, int64_t total, T *y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = depthwise_output(g, xs, x, ws, w, bias, bias_stride, i);
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    im2col_rows_kernel(mti_conv_geom g, strides4 xs, const T *x, int64_t n0, int64_t count,
                       int64_t total, T *col) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off;
    col[i] = im2col_rows_source(g, xs, n0, count, i, &off) ? x[off] : convert<T>(0.0f);
  }
}

template <class T>
__global__ void __launch_bounds__(THREADS)
    dy_by_channel_kernel(mti_conv_geom g, strides4 ds, const T *dy, int64_t n0, int64_t count,
                         int64_t total, T *dst) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = dy[dy_by_channel_source(g, ds, n0, count, i)];
}

/* dx of a chunk (contiguous, from image n0's first element) from the
 * columns' gradient in the accumulator type A. */
template <class T>
__global__ void __launch_bounds__(THREADS)
    col2im_kernel(mti_conv_geom g, const typename acc_of<T>::type *col, int64_t count,
                  int64_t total, T *dx) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x)
    dx[i] = convert<T>(col2im_sum(g, col, count, i));
}

/* index: max_pool2d's argmax output, NULL for the averages. */
template <class T>
__global__ void __launch_bounds__(THREADS)
    pool_kernel(mti_pool_geom g, int is_max, int adaptive, int64_t channels, strides4 xs,
                const T *x, int64_t total, T *y, int64_t *index) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t at = 0;
    y[i] = pool_output(g, is_max, adaptive, channels, xs, x, i, &at);
    if (index) index[i] = at;
  }
}

bool is_float_dtype(mt_dtype d) {
  return d == MT_FLOAT16 || d == MT_BFLOAT16 || d == MT_FLOAT32 || d == MT_FLOAT64;
}

/* Runs STMT with scalar_t bound to the storage type of floating dtype d. */
#define CONV_DISPATCH(d, ...)                                  \
  switch (d) {                                                 \
    MTW_DISPATCH_CASE(MT_FLOAT16, __VA_ARGS__)                 \
    MTW_DISPATCH_CASE(MT_BFLOAT16, __VA_ARGS__)                \
    MTW_DISPATCH_CASE(MT_FLOAT32, __VA_ARGS__)                 \
    MTW_DISPATCH_CASE(MT_FLOAT64, __VA_ARGS__)                 \
  default: break;                                              \
  }

} /* namespace */
} /* namespace mtw */

extern "C" mt_status mtw_cuda_conv_im2col(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                          const mti_view *x, int64_t n0, int64_t count,
                                          void *col) {
  int64_t total = count * g->c * g->kh * g->kw * g->oh * g->ow;
  if (total <= 0) return MT_OK;
  mtw::strides4 xs = mtw::strides4_of(*x, x->ndim == 3);
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(x->dtype, mtw::im2col_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                              *g, xs, (const scalar_t *)x->data, n0, total, (scalar_t *)col);
                return mtw::launched("mt_conv2d"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d: cuda: dtype %d", (int)x->dtype);
}

extern "C" mt_status mtw_cuda_conv_bias_fill(const mtw_cuda_ctx *ctx, const mti_view *bias,
                                             const mti_view *out) {
  int64_t total = mti_shape_numel(out->ndim, out->shape);
  if (total <= 0) return MT_OK;
  int64_t o = out->shape[1], p = total / (out->shape[0] * o);
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(out->dtype,
                mtw::bias_fill_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    (const scalar_t *)bias->data, bias->strides[0], o, p, total,
                    (scalar_t *)out->data);
                return mtw::launched("mt_conv2d"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d: cuda: dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_conv_depthwise(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                             const mti_view *in, int has_bias,
                                             const mti_view *out) {
  int64_t total = mti_shape_numel(out->ndim, out->shape);
  if (total <= 0) return MT_OK;
  int conv1d = in[0].ndim == 3;
  mtw::strides4 xs = mtw::strides4_of(in[0], conv1d), ws = mtw::strides4_of(in[1], conv1d);
  const void *bias = has_bias ? in[2].data : NULL;
  int64_t bias_stride = has_bias ? in[2].strides[0] : 0;
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(out->dtype,
                mtw::depthwise_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    *g, xs, (const scalar_t *)in[0].data, ws, (const scalar_t *)in[1].data,
                    (const scalar_t *)bias, bias_stride, total, (scalar_t *)out->data);
                return mtw::launched("mt_conv2d"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d: cuda: dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_pool2d(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                     const mti_attrs *at, const mti_view *out) {
  char fn[64];
  mtw::op_fn(op, fn, sizeof fn);
  if (!mtw::is_float_dtype(in[0].dtype) || in[0].ndim < 3 || in[0].ndim > 4 ||
      at->n_ints < (op == MTI_OP_ADAPTIVE_AVG_POOL2D ? 2 : 6))
    return mti_error(MT_ERR_INTERNAL, "%s: cuda: a node mti_infer did not check", fn);
  int64_t total = mti_shape_numel(out[0].ndim, out[0].shape);
  if (total <= 0) return MT_OK;
  mti_pool_geom g;
  mti_pool_geom_of(op, in[0].ndim, in[0].shape, at->ints, &g);
  int is_max = op == MTI_OP_MAX_POOL2D, adaptive = op == MTI_OP_ADAPTIVE_AVG_POOL2D;
  int64_t channels = in[0].shape[in[0].ndim - 3];
  mtw::strides4 xs = mtw::strides4_of(in[0], 0);
  int64_t *index = is_max ? (int64_t *)out[1].data : NULL;
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(in[0].dtype,
                mtw::pool_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    g, is_max, adaptive, channels, xs, (const scalar_t *)in[0].data, total,
                    (scalar_t *)out[0].data, index);
                return mtw::launched(fn));
  return mti_error(MT_ERR_INTERNAL, "%s: cuda: dtype %d", fn, (int)in[0].dtype);
}

extern "C" mt_status mtw_cuda_conv_im2col_rows(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                               const mti_view *x, int64_t n0, int64_t count,
                                               void *col) {
  int64_t total = count * g->c * g->kh * g->kw * g->oh * g->ow;
  if (total <= 0) return MT_OK;
  mtw::strides4 xs = mtw::strides4_of(*x, 0);
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(x->dtype,
                mtw::im2col_rows_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    *g, xs, (const scalar_t *)x->data, n0, count, total, (scalar_t *)col);
                return mtw::launched("mt_conv2d_weight_grad"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d_weight_grad: cuda: dtype %d", (int)x->dtype);
}

extern "C" mt_status mtw_cuda_conv_dy_by_channel(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                                 const mti_view *dy, int64_t n0, int64_t count,
                                                 void *dst) {
  int64_t total = count * g->o * g->oh * g->ow;
  if (total <= 0) return MT_OK;
  mtw::strides4 ds = mtw::strides4_of(*dy, 0);
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(dy->dtype,
                mtw::dy_by_channel_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    *g, ds, (const scalar_t *)dy->data, n0, count, total, (scalar_t *)dst);
                return mtw::launched("mt_conv2d_grad"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d_grad: cuda: dtype %d", (int)dy->dtype);
}

extern "C" mt_status mtw_cuda_conv_col2im(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                          const void *col, int64_t n0, int64_t count,
                                          const mti_view *dx) {
  int64_t image = g->c * g->h * g->w, total = count * image;
  if (total <= 0) return MT_OK;
  unsigned grid = mtw::grid_for(ctx, total, mtw::THREADS);
  CONV_DISPATCH(dx->dtype,
                typedef typename mtw::acc_of<scalar_t>::type acc_t;
                mtw::col2im_kernel<scalar_t><<<grid, mtw::THREADS, 0, ctx->stream>>>(
                    *g, (const acc_t *)col, count, total, (scalar_t *)dx->data + n0 * image);
                return mtw::launched("mt_conv2d_input_grad"));
  return mti_error(MT_ERR_INTERNAL, "mt_conv2d_input_grad: cuda: dtype %d", (int)dx->dtype);
}
