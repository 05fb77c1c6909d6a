/*
 * cuda_softmax.cu - softmax, log_softmax and layer_norm on the GPU.
 *
 * Semantics and numerics are mti_cpu_softmax / mti_cpu_layer_norm
 * (src/cpu/softmax.c): the compute type is float64 for float64 and float32
 * otherwise (float16/bfloat16 compute in float32 and round once into out;
 * integer and bool inputs are first converted to float32, as the cpu
 * stages them). softmax: m = the row max (a NaN wins), e = exp(x - m), sum
 * of e in float64, y = e * (1 / sum); log_softmax: y = (x - m) - log(sum).
 * A row whose max is NaN or +-inf (all -inf included) gives NaN, as on the
 * cpu. layer_norm: two
 * passes (the mean as a pair mh + ml, then the squared deviations around
 * it), each summed per thread in the compute type (joined into float64
 * every SUM_BLOCK values) and across threads in float64, redone in float64
 * where the compute type overflows; y =
 * ((x - mh) - ml) * rstd * w + b, rounded step by step as the cpu (no
 * fused multiply-add). Only the summation order differs from the cpu.
 *
 * Rows along the last dim (softmax along a dim whose inner extent is 1,
 * layer_norm always) go one warp per row up to WARP_ROW elements and one
 * block per row beyond; a row that fits (ITEMS per thread) is read once
 * into registers. Softmax along an outer dim runs down columns as the
 * cpu's column kernel (consecutive threads on consecutive inner elements,
 * float32 sums in blocks of SUM_BLOCK rows), with COL_GROUPS threads
 * sharing each column's rows. Inputs are any strided views; out is
 * contiguous.
 */
#include <cuda/std/type_traits>

#include "cuda_reduce.cuh"

namespace mtw {
namespace {

enum {
  WARP_ROWS_BLOCK = 256, /* threads per block of the warp-per-row kernels */
  WARP_ITEMS = 16,       /* values a lane caches: rows up to 512           */
  ROW_BLOCK = 512,       /* threads of a block-per-row kernel              */
  ROW_ITEMS = 16,        /* values a thread caches: rows up to 8192        */
  COL_TILE = 32,         /* columns per block of the column kernel          */
  COL_GROUPS = 8,        /* threads sharing a column's rows                 */
  SUM_BLOCK = 64  /* values a float32 partial sum takes before joining float64 (cpu: 32..64) */
};
const int64_t WARP_ROW = 32 * WARP_ITEMS;

/* ---- arithmetic as the cpu rounds it ---- */

__device__ __forceinline__ float exp_ct(float x) { return expf(x); }
__device__ __forceinline__ double exp_ct(double x) { return exp(x); }

template <class T> struct add_op {
  __device__ T combine(T a, T b) const { return a + b; }
};
/* max where a NaN operand wins and stays */
template <class T> struct max_nan_op {
  __device__ T combine(T a, T b) const { return (b > a || b != b) ? b : a; }
};

/* Combines v over the WIDTH threads of a row: a warp, or the block. */
template <int WIDTH, class Op, class T> __device__ __forceinline__ T row_combine(Op op, T v) {
  if constexpr (WIDTH == 32) {
    return group_combine(op, v, 32);
  } else {
    __shared__ T smem[32];
    return block_combine(op, v, smem);
  }
}

/* The rows of a view: row q starts at offset_of(rest, q) and steps by
 * `step` elements (rest: the view's dims other than the row's). */
struct rows_desc {
  desc rest;
  int64_t step;
  int64_t nrows, n; /* rows and elements per row */
};

/* Thread (row, lane) of a kernel whose rows take WIDTH threads. */
template <int WIDTH> struct row_slot {
  int64_t row;
  int lane;
  __device__ row_slot() {
    row = (int64_t)blockIdx.x * (blockDim.x / WIDTH) + threadIdx.x / WIDTH;
    lane = (int)(threadIdx.x % WIDTH);
  }
};

/* ---- softmax along rows ---- */

/*
 * One row per WIDTH threads. Rows of at most WIDTH * ITEMS elements are
 * read once into registers (v); longer ones (block kernels only) are read
 * again for each pass.
 */
template <class In, int WIDTH, int ITEMS>
__global__ void __launch_bounds__(WIDTH == 32 ? WARP_ROWS_BLOCK : ROW_BLOCK)
    softmax_rows(const In *x, rows_desc rd, In *y, bool log_out) {
  typedef typename float_compute<In>::type CT;
  row_slot<WIDTH> s;
  if (s.row >= rd.nrows) return; /* warp kernels only: a block kernel has one row */
  const In *xr = x + offset_of(rd.rest, s.row);
  In *yr = y + s.row * rd.n;
  const int64_t n = rd.n, step = rd.step;
  const bool cached = n <= (int64_t)WIDTH * ITEMS;
  CT v[ITEMS];
  CT m = -(CT)INFINITY;
  max_nan_op<CT> mx;
  if (cached) {
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
      int64_t k = s.lane + (int64_t)j * WIDTH;
      v[j] = k < n ? (CT)widen(xr[k * step]) : -(CT)INFINITY;
      m = mx.combine(m, v[j]);
    }
  } else {
    for (int64_t k = s.lane; k < n; k += WIDTH) m = mx.combine(m, (CT)widen(xr[k * step]));
  }
  m = row_combine<WIDTH>(mx, m);
  double part = 0;
  if (cached) {
    CT acc = 0;
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
      int64_t k = s.lane + (int64_t)j * WIDTH;
      if (k < n) acc += exp_ct(v[j] - m);
    }
    part = acc;
  } else {
    CT acc = 0;
    int in_block = 0;
    for (int64_t k = s.lane; k < n; k += WIDTH) {
      acc += exp_ct((CT)widen(xr[k * step]) - m);
      if (++in_block == SUM_BLOCK) part += acc, acc = 0, in_block = 0;
    }
    part += acc;
  }
  double sum = row_combine<WIDTH>(add_op<double>(), part);
  CT f = log_out ? (CT)log(sum) : (CT)(1.0 / sum);
  if (cached) {
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
      int64_t k = s.lane + (int64_t)j * WIDTH;
      if (k < n) yr[k] = convert<In>(log_out ? (v[j] - m) - f : exp_ct(v[j] - m) * f);
    }
  } else {
    for (int64_t k = s.lane; k < n; k += WIDTH) {
      CT xv = (CT)widen(xr[k * step]);
      yr[k] = convert<In>(log_out ? (xv - m) - f : exp_ct(xv - m) * f);
    }
  }
}

/*
 * Softmax along a dim with inner extent > 1, a tile of COL_TILE columns q
 * = (o, c) per block: thread (tx, ty) takes column tx of the tile and its
 * rows ty, ty + COL_GROUPS, ... (offset_of(rest, q) + k * step), so that
 * a warp reads COL_TILE consecutive columns of one row. Three passes: max,
 * sum of exponentials (float32 blocks of SUM_BLOCK rows joined in float64,
 * as the cpu), results; the COL_GROUPS partial results of a column join in
 * shared memory in order. out is [outer, r, inner] contiguous.
 */
template <class In>
__global__ void __launch_bounds__(COL_TILE * COL_GROUPS)
    softmax_cols(const In *x, rows_desc rd, int64_t inner, In *y, bool log_out) {
  typedef typename float_compute<In>::type CT;
  __shared__ CT part_max[COL_GROUPS][COL_TILE];
  __shared__ double part_sum[COL_GROUPS][COL_TILE];
  int tx = (int)threadIdx.x % COL_TILE, ty = (int)threadIdx.x / COL_TILE;
  int64_t q = (int64_t)blockIdx.x * COL_TILE + tx, r = rd.n, step = rd.step;
  bool valid = q < rd.nrows;
  const In *xc = x + (valid ? offset_of(rd.rest, q) : 0);
  int64_t o = q / inner, c = q - o * inner;
  In *yc = y + o * r * inner + c;
  max_nan_op<CT> mx;
  CT m = -(CT)INFINITY;
  for (int64_t k = ty; valid && k < r; k += COL_GROUPS) m = mx.combine(m, (CT)widen(xc[k * step]));
  part_max[ty][tx] = m;
  __syncthreads();
  m = part_max[0][tx];
  for (int i = 1; i < COL_GROUPS; i++) m = mx.combine(m, part_max[i][tx]);
  double sum = 0;
  CT acc = 0;
  int in_block = 0;
  for (int64_t k = ty; valid && k < r; k += COL_GROUPS) {
    acc += exp_ct((CT)widen(xc[k * step]) - m);
    if (++in_block == SUM_BLOCK) sum += acc, acc = 0, in_block = 0;
  }
  part_sum[ty][tx] = sum + acc;
  __syncthreads();
  sum = part_sum[0][tx];
  for (int i = 1; i < COL_GROUPS; i++) sum += part_sum[i][tx];
  CT f = log_out ? (CT)log(sum) : (CT)(1.0 / sum);
  for (int64_t k = ty; valid && k < r; k += COL_GROUPS) {
    CT xv = (CT)widen(xc[k * step]);
    yc[k * inner] = convert<In>(log_out ? (xv - m) - f : exp_ct(xv - m) * f);
  }
}

/* ---- layer_norm ---- */

/* Sum over the row of f(value) per thread in CT (in float64 when WIDE;
 * joined into float64 every SUM_BLOCK values), then across the row in
 * float64. */
template <int WIDTH, int ITEMS, bool WIDE, class In, class CT, class F>
__device__ __forceinline__ double row_sum(const CT (&v)[ITEMS], bool cached, const In *xr,
                                          int64_t n, int64_t step, int lane, F f) {
  typedef typename ::cuda::std::conditional<WIDE, double, CT>::type LT;
  double part = 0;
  LT acc = 0;
  if (cached) {
#pragma unroll
    for (int j = 0; j < ITEMS; j++)
      if (lane + (int64_t)j * WIDTH < n) acc += f((LT)v[j]);
  } else {
    int in_block = 0;
    for (int64_t k = lane; k < n; k += WIDTH) {
      acc += f((LT)widen(xr[k * step]));
      if (++in_block == SUM_BLOCK) part += acc, acc = 0, in_block = 0;
    }
  }
  return row_combine<WIDTH>(add_op<double>(), part + acc);
}

/* One row per WIDTH threads, as softmax_rows; w and b (NULL when absent)
 * are n contiguous values of the compute type. */
template <class In, int WIDTH, int ITEMS>
__global__ void __launch_bounds__(WIDTH == 32 ? WARP_ROWS_BLOCK : ROW_BLOCK)
    layer_norm_rows(const In *x, rows_desc rd, const typename float_compute<In>::type *w,
                    const typename float_compute<In>::type *b, double eps, In *y) {
  typedef typename float_compute<In>::type CT;
  row_slot<WIDTH> s;
  if (s.row >= rd.nrows) return;
  const In *xr = x + offset_of(rd.rest, s.row);
  In *yr = y + s.row * rd.n;
  const int64_t n = rd.n, step = rd.step;
  const bool cached = n <= (int64_t)WIDTH * ITEMS;
  CT v[ITEMS];
  if (cached) {
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
      int64_t k = s.lane + (int64_t)j * WIDTH;
      v[j] = k < n ? (CT)widen(xr[k * step]) : (CT)0;
    }
  }
  auto ident = [](auto t) { return t; };
  double sum = row_sum<WIDTH, ITEMS, false>(v, cached, xr, n, step, s.lane, ident);
  if (isinf(sum)) sum = row_sum<WIDTH, ITEMS, true>(v, cached, xr, n, step, s.lane, ident);
  double mean = sum / (double)n;
  CT mh = (CT)mean, ml = (CT)(mean - (double)mh);
  auto dev2 = [mh, ml](auto t) { /* the square rounded before it is summed */
    auto d = (t - mh) - ml;
    return mul_rn(d, d);
  };
  double sq = row_sum<WIDTH, ITEMS, false>(v, cached, xr, n, step, s.lane, dev2);
  if (isinf(sq)) sq = row_sum<WIDTH, ITEMS, true>(v, cached, xr, n, step, s.lane, dev2);
  CT rstd = (CT)(1.0 / sqrt(sq / (double)n + eps));
  auto norm = [&](CT xv, int64_t k) {
    CT t = mul_rn((xv - mh) - ml, rstd);
    if (w) t = mul_rn(t, w[k]);
    if (b) t = add_rn(t, b[k]);
    return convert<In>(t);
  };
  if (cached) {
#pragma unroll
    for (int j = 0; j < ITEMS; j++) {
      int64_t k = s.lane + (int64_t)j * WIDTH;
      if (k < n) yr[k] = norm(v[j], k);
    }
  } else {
    for (int64_t k = s.lane; k < n; k += WIDTH) yr[k] = norm((CT)widen(xr[k * step]), k);
  }
}

/* ---- staging ---- */

/* dst[i] = element i (row-major) of the view (src, d, shape/strides in
 * `from`) converted to CT: integer inputs, weights and biases. */
template <class CT>
__global__ void stage_kernel(const void *src, mt_dtype d, desc from, int64_t n, CT *dst) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = load_as<CT>(src, d, offset_of(from, i));
}

template <class CT>
void stage(const mtw_cuda_ctx *ctx, const mti_view &v, int64_t n, CT *dst) {
  stage_kernel<CT><<<grid_for(ctx, n, 256), 256, 0, ctx->stream>>>(v.data, v.dtype, make_desc(v),
                                                                   n, dst);
}

/* Bytes of n values of T, rounded up to 256 so that regions carved one
 * after another from scratch stay aligned. */
template <class T> size_t region(int64_t n) { return ((size_t)n * sizeof(T) + 255) / 256 * 256; }

/* The rows of view v along dim: the other dims in `rest`. */
rows_desc rows_of(const mti_view &v, int dim, int64_t nrows) {
  rows_desc rd;
  rd.rest.ndim = 0;
  for (int i = 0; i < MT_MAX_DIMS; i++) rd.rest.shape[i] = 1, rd.rest.strides[i] = 0;
  for (int d = 0; d < v.ndim; d++) {
    if (d == dim) continue;
    rd.rest.shape[rd.rest.ndim] = v.shape[d];
    rd.rest.strides[rd.rest.ndim++] = v.strides[d];
  }
  rd.step = v.ndim ? v.strides[dim] : 0;
  rd.n = v.ndim ? v.shape[dim] : 1;
  rd.nrows = nrows;
  return rd;
}

unsigned blocks_for(int64_t n, int64_t per) { return (unsigned)((n + per - 1) / per); }

/* Softmax of x (In, geometry rd) into y; inner: the extent after dim. */
template <class In>
mt_status softmax_typed(const mtw_cuda_ctx *ctx, const char *fn, const In *x, rows_desc rd,
                        int64_t inner, In *y, bool log_out) {
  if (inner > 1) {
    softmax_cols<In><<<blocks_for(rd.nrows, COL_TILE), COL_TILE * COL_GROUPS, 0, ctx->stream>>>(
        x, rd, inner, y, log_out);
  } else if (rd.n <= WARP_ROW) {
    const int per = WARP_ROWS_BLOCK / 32;
    softmax_rows<In, 32, WARP_ITEMS>
        <<<blocks_for(rd.nrows, per), WARP_ROWS_BLOCK, 0, ctx->stream>>>(x, rd, y, log_out);
  } else {
    softmax_rows<In, ROW_BLOCK, ROW_ITEMS>
        <<<(unsigned)rd.nrows, ROW_BLOCK, 0, ctx->stream>>>(x, rd, y, log_out);
  }
  return launched(fn);
}

template <class In>
mt_status layer_norm_typed(const mtw_cuda_ctx *ctx, const In *x, rows_desc rd,
                           const typename float_compute<In>::type *w,
                           const typename float_compute<In>::type *b, double eps, In *y) {
  if (rd.n <= WARP_ROW) {
    const int per = WARP_ROWS_BLOCK / 32;
    layer_norm_rows<In, 32, WARP_ITEMS>
        <<<blocks_for(rd.nrows, per), WARP_ROWS_BLOCK, 0, ctx->stream>>>(x, rd, w, b, eps, y);
  } else {
    layer_norm_rows<In, ROW_BLOCK, ROW_ITEMS>
        <<<(unsigned)rd.nrows, ROW_BLOCK, 0, ctx->stream>>>(x, rd, w, b, eps, y);
  }
  return launched("mt_layer_norm");
}

/* The dtype of a floating result (mti_infer's float_result). */
mt_dtype float_result(mt_dtype d) { return mti_dtype_is_float(d) ? d : MT_FLOAT32; }

/* A contiguous view of n float32 values at p with v's shape. */
mti_view contiguous_f32(const mti_view &v, float *p) {
  mti_view c = v;
  c.data = p;
  c.dtype = MT_FLOAT32;
  mti_shape_contiguous_strides(v.ndim, v.shape, c.strides);
  return c;
}

} /* namespace */
} /* namespace mtw */

/* Integer and bool inputs are converted to float32 in scratch first. */
extern "C" mt_status mtw_cuda_softmax(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                      const mti_attrs *at, const mti_view *out) {
  const char *fn = op == MTI_OP_LOG_SOFTMAX ? "mt_log_softmax" : "mt_softmax";
  int64_t outer, r, inner;
  mti_shape_split(in->ndim, in->shape, at->dim, &outer, &r, &inner);
  int64_t numel = outer * r * inner;
  if (numel == 0) return MT_OK;
  if (out->dtype != mtw::float_result(in->dtype))
    return mti_error(MT_ERR_INTERNAL, "%s: out has dtype %s", fn, mt_dtype_name(out->dtype));
  mti_view x = *in;
  if (!mti_dtype_is_float(in->dtype)) {
    float *buf = (float *)ctx->scratch(ctx, (size_t)numel * sizeof(float));
    if (!buf) return MT_ERR_OUT_OF_MEMORY;
    mtw::stage(ctx, *in, numel, buf);
    x = mtw::contiguous_f32(*in, buf);
  }
  mtw::rows_desc rd = mtw::rows_of(x, at->dim, outer * inner);
  bool log_out = op == MTI_OP_LOG_SOFTMAX;
  switch (x.dtype) {
  case MT_FLOAT16:
    return mtw::softmax_typed(ctx, fn, (const __half *)x.data, rd, inner, (__half *)out->data,
                              log_out);
  case MT_BFLOAT16:
    return mtw::softmax_typed(ctx, fn, (const __nv_bfloat16 *)x.data, rd, inner,
                              (__nv_bfloat16 *)out->data, log_out);
  case MT_FLOAT32:
    return mtw::softmax_typed(ctx, fn, (const float *)x.data, rd, inner, (float *)out->data,
                              log_out);
  default:
    return mtw::softmax_typed(ctx, fn, (const double *)x.data, rd, inner, (double *)out->data,
                              log_out);
  }
}

/* Weight and bias (any dtype, any strides) and integer inputs are converted
 * to the compute type in one scratch region first. */
extern "C" mt_status mtw_cuda_layer_norm(const mtw_cuda_ctx *ctx, const mti_view *in,
                                         const mti_attrs *at, const mti_view *out) {
  const mti_view *a = &in[0];
  int64_t n = a->shape[a->ndim - 1], rows = 1;
  for (int d = 0; d < a->ndim - 1; d++) rows *= a->shape[d];
  if (n == 0 || rows == 0) return MT_OK;
  if (out->dtype != mtw::float_result(a->dtype))
    return mti_error(MT_ERR_INTERNAL, "mt_layer_norm: out has dtype %s", mt_dtype_name(out->dtype));
  bool f64 = out->dtype == MT_FLOAT64, stage_x = !mti_dtype_is_float(a->dtype);
  bool has_w = (at->flags & MTI_FLAG_HAS_WEIGHT) != 0, has_b = (at->flags & MTI_FLAG_HAS_BIAS) != 0;
  size_t wbytes = f64 ? mtw::region<double>(n) : mtw::region<float>(n);
  size_t xbytes = stage_x ? mtw::region<float>(rows * n) : 0;
  size_t total = xbytes + (has_w ? wbytes : 0) + (has_b ? wbytes : 0);
  char *scratch = NULL;
  if (total && !(scratch = (char *)ctx->scratch(ctx, total))) return MT_ERR_OUT_OF_MEMORY;
  mti_view x = *a;
  if (stage_x) {
    mtw::stage(ctx, *a, rows * n, (float *)scratch);
    x = mtw::contiguous_f32(*a, (float *)scratch);
  }
  void *w = has_w ? scratch + xbytes : NULL;
  void *b = has_b ? scratch + xbytes + (has_w ? wbytes : 0) : NULL;
  if (f64) {
    if (w) mtw::stage(ctx, in[1], n, (double *)w);
    if (b) mtw::stage(ctx, in[2], n, (double *)b);
  } else {
    if (w) mtw::stage(ctx, in[1], n, (float *)w);
    if (b) mtw::stage(ctx, in[2], n, (float *)b);
  }
  mtw::rows_desc rd = mtw::rows_of(x, x.ndim - 1, rows);
  double eps = at->s0;
  switch (x.dtype) {
  case MT_FLOAT16:
    return mtw::layer_norm_typed(ctx, (const __half *)x.data, rd, (const float *)w,
                                 (const float *)b, eps, (__half *)out->data);
  case MT_BFLOAT16:
    return mtw::layer_norm_typed(ctx, (const __nv_bfloat16 *)x.data, rd, (const float *)w,
                                 (const float *)b, eps, (__nv_bfloat16 *)out->data);
  case MT_FLOAT32:
    return mtw::layer_norm_typed(ctx, (const float *)x.data, rd, (const float *)w,
                                 (const float *)b, eps, (float *)out->data);
  default:
    return mtw::layer_norm_typed(ctx, (const double *)x.data, rd, (const double *)w,
                                 (const double *)b, eps, (double *)out->data);
  }
}
