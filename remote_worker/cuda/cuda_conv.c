/*
 * cuda_conv.c - conv1d/conv2d on the cuda backend: im2col (cuda_conv.cu)
 * and cuBLAS, with src/cpu/conv.c's semantics.
 *
 * For image n and group g, out[n, g] ([O/G, P], P = OH * OW) = W_g ([O/G,
 * K]) x col ([K, P]), K = C/G * kh * kw. cuBLAS is column-major, so each
 * product is computed as out^T [P, O/G] = col^T [P, K] x W_g^T [K, O/G]:
 * row-major col and W are their column-major transposes, read with op N.
 * Images (groups == 1) or groups (groups > 1, one call per image) go to
 * cublasGemmStridedBatchedEx as one batch. The bias is filled into out
 * first and the product added to it (beta = 1), so float16/bfloat16 round
 * once, from the float32 accumulator. The columns of at most
 * CONV_CUDA_WORKSPACE bytes of images (one image at least) exist at once.
 * A 1x1, stride 1, unpadded conv of a contiguous x reads x as its columns.
 * One input channel per group (depthwise) runs a direct kernel instead.
 * float32 is exact float32 (no TF32), float16/bfloat16 accumulate in
 * float32 (the handle disallows reduced-precision reductions).
 */
#include <limits.h>
#include <string.h>

#include "core/conv_rules.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_internal.h"

/* Most bytes of im2col columns at once (more when one image needs more). */
#define CONV_CUDA_WORKSPACE ((size_t)256 << 20)
#define CONV_ALIGN ((size_t)256)

typedef struct conv_gemm {
  cudaDataType_t type;
  cublasComputeType_t compute;
  size_t es;
  int64_t og, k, p; /* out channels per group, taps, pixels */
  int beta_one;     /* the bias is already in out */
} conv_gemm;

static size_t align_up(size_t n) { return (n + CONV_ALIGN - 1) & ~(CONV_ALIGN - 1); }

static void gemm_types(mt_dtype dt, conv_gemm *q) {
  switch (dt) {
  case MT_FLOAT16: q->type = CUDA_R_16F, q->compute = CUBLAS_COMPUTE_32F; break;
  case MT_BFLOAT16: q->type = CUDA_R_16BF, q->compute = CUBLAS_COMPUTE_32F; break;
  case MT_FLOAT64: q->type = CUDA_R_64F, q->compute = CUBLAS_COMPUTE_64F; break;
  default: q->type = CUDA_R_32F, q->compute = CUBLAS_COMPUTE_32F; break;
  }
  q->es = mt_dtype_size(dt);
}

/* count products out_b^T = col_b^T x w_b^T at element strides sa (col), sb
 * (w) and sc (out). */
static mt_status gemm_batch(mtw_stream *s, const conv_gemm *q, const char *fn, const void *col,
                            int64_t sa, const void *w, int64_t sb, void *out, int64_t sc,
                            int64_t count) {
  float one_f = 1.0f, beta_f = q->beta_one ? 1.0f : 0.0f;
  double one_d = 1.0, beta_d = q->beta_one ? 1.0 : 0.0;
  int f64 = q->type == CUDA_R_64F;
  const void *alpha = f64 ? (const void *)&one_d : (const void *)&one_f;
  const void *beta = f64 ? (const void *)&beta_d : (const void *)&beta_f;
  cublasStatus_t st = cublasGemmStridedBatchedEx(
      s->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)q->p, (int)q->og, (int)q->k, alpha, col, q->type,
      (int)q->p, (long long)sa, w, q->type, (int)q->k, (long long)sb, beta, out, q->type,
      (int)q->p, (long long)sc, (int)count, q->compute, CUBLAS_GEMM_DEFAULT);
  return st == CUBLAS_STATUS_SUCCESS ? MT_OK : mtw_cublas_error(s->backend, fn, st);
}

/* The products of images [n0, n0 + count) whose columns start at col
 * (image_stride, group_stride elements apart); w is contiguous [O, K]. */
static mt_status gemm_images(mtw_stream *s, const conv_gemm *q, const mti_conv_geom *g,
                             const char *fn, const char *col, int64_t image_stride,
                             int64_t group_stride, const char *w, char *out, int64_t n0,
                             int64_t count) {
  int64_t es = (int64_t)q->es, out_image = g->o * q->p;
  if (g->groups == 1)
    return gemm_batch(s, q, fn, col, image_stride, w, 0, out + n0 * out_image * es, out_image,
                      count);
  mt_status st = MT_OK;
  for (int64_t n = 0; n < count && st == MT_OK; n++)
    st = gemm_batch(s, q, fn, col + n * image_stride * es, group_stride, w, q->og * q->k,
                    out + (n0 + n) * out_image * es, q->og * q->p, g->groups);
  return st;
}

/* A contiguous copy of v in its dtype at dst (the COPY kernel). */
static mt_status stage_contiguous(mtw_stream *s, const mti_view *v, void *dst, mti_view *staged) {
  *staged = *v;
  staged->data = dst;
  mti_shape_contiguous_strides(v->ndim, v->shape, staged->strides);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.dtype = (int32_t)v->dtype;
  return mtw_cuda_run_kernel(&s->ctx, MTI_OP_COPY, v, 1, &at, staged);
}

static int is_pointwise(const mti_conv_geom *g, const mti_view *x) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
         mti_shape_is_contiguous(x->ndim, x->shape, x->strides);
}

/* im2col and GEMM, the weight staged contiguous when it is not. */
static mt_status conv_gemm_path(mtw_stream *s, const mti_conv_geom *g, const char *fn,
                                const mti_view *in, conv_gemm *q, const mti_view *out) {
  int pointwise = is_pointwise(g, &in[0]);
  int stage_w = !mti_shape_is_contiguous(in[1].ndim, in[1].shape, in[1].strides);
  size_t w_bytes = stage_w ? align_up((size_t)mti_shape_numel(in[1].ndim, in[1].shape) * q->es)
                           : 0;
  size_t per_image = (size_t)(g->groups * q->k * q->p) * q->es;
  int64_t chunk = pointwise ? 0 : (int64_t)(CONV_CUDA_WORKSPACE / per_image);
  if (!pointwise && chunk < 1) chunk = 1;
  if (chunk > g->n) chunk = g->n;
  size_t bytes = w_bytes + (size_t)chunk * per_image;
  char *scratch = NULL;
  if (bytes) {
    scratch = s->ctx.scratch(&s->ctx, bytes); /* the op's one scratch region */
    if (!scratch) return mt_last_status();
  }
  const char *w = in[1].data;
  mt_status st = MT_OK;
  if (stage_w) {
    mti_view staged;
    if ((st = stage_contiguous(s, &in[1], scratch, &staged)) != MT_OK) return st;
    w = scratch;
  }
  if (pointwise) {
    int64_t plane = g->h * g->w;
    return gemm_images(s, q, g, fn, in[0].data, g->c * plane, q->k * plane, w, out->data, 0,
                       g->n);
  }
  char *col = scratch + w_bytes;
  for (int64_t n0 = 0; n0 < g->n && st == MT_OK; n0 += chunk) {
    int64_t count = g->n - n0 < chunk ? g->n - n0 : chunk;
    st = mtw_cuda_conv_im2col(&s->ctx, g, &in[0], n0, count, col);
    if (st == MT_OK)
      st = gemm_images(s, q, g, fn, col, g->groups * q->k * q->p, q->k * q->p, w, out->data, n0,
                       count);
  }
  return st;
}

mt_status mtw_cuda_conv(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                        const mti_attrs *at, const mti_view *out) {
  mtw_stream *s = (mtw_stream *)ctx->owner;
  const mti_op_info *info = mti_op_get((int)op);
  const char *fn = info ? info->fn : "mt_conv2d";
  int rank = op == MTI_OP_CONV1D ? 3 : 4;
  if (!info || in[0].ndim != rank || in[1].ndim != rank || out->ndim != rank ||
      at->n_ints != (rank == 3 ? 4 : 7) ||
      !mti_shape_is_contiguous(out->ndim, out->shape, out->strides))
    return mti_error(MT_ERR_INTERNAL, "%s: cuda: a node mti_infer did not check", fn);
  int has_bias = (at->flags & MTI_FLAG_PRESENT(2)) != 0;
  int64_t total = mti_shape_numel(out->ndim, out->shape);
  if (total == 0) return MT_OK;
  mti_conv_geom g;
  mti_conv_geom_of(op, in[0].shape, in[1].shape, at->ints, &g);
  conv_gemm q;
  memset(&q, 0, sizeof q);
  gemm_types(out->dtype, &q);
  q.og = g.o / g.groups, q.k = (g.c / g.groups) * g.kh * g.kw, q.p = g.oh * g.ow;
  if (g.c / g.groups == 1) return mtw_cuda_conv_depthwise(ctx, &g, in, has_bias, out);
  if (q.p > INT_MAX || q.og > INT_MAX || q.k > INT_MAX || g.n > INT_MAX || g.groups > INT_MAX)
    return mti_error(MT_ERR_UNSUPPORTED, "%s: a GEMM of %lld x %lld x %lld passes cuBLAS's int "
                     "range", fn, (long long)q.og, (long long)q.p, (long long)q.k);
  mt_status st = MT_OK;
  if (has_bias) {
    q.beta_one = 1;
    st = mtw_cuda_conv_bias_fill(ctx, &in[2], out);
  }
  if (st == MT_OK) st = mtw_cuda_blas_ready(s, fn);
  if (st == MT_OK) st = conv_gemm_path(s, &g, fn, in, &q, out);
  return st;
}

/* ------------------------------------------------------------ backward */

/* The backward (CONV_GRAD) of a chunk of images at a time, laid out as
 * cuda_conv.cuh says: columns [C kh kw][count P], dy by channel [O][count
 * P], so each product spans the chunk's images and the groups are one
 * strided batch. Operands are in the tensors' dtype; products come out in
 * the accumulator type (float32, float64 for float64), so that the 16-bit
 * types round once: the input's col2im sums float taps, and the weight's
 * float32 sum over chunks is converted at the end (the COPY kernel). */
typedef struct grad_plan {
  const char *fn;
  mti_conv_geom g;
  conv_gemm q;            /* the operands' types; og, k, p */
  cudaDataType_t acc;     /* the products' type */
  size_t acc_es;
  int64_t chunk, rows;    /* images per chunk; C kh kw */
} grad_plan;

/* One operand of a product: column-major leading dim, batch stride, op. */
typedef struct gemm_side {
  const void *data;
  int64_t ld, stride;
  cublasOperation_t op;
} gemm_side;

/* For each group: c = op(a) [m, k] x op(b) [k, n] (+ c when beta_one),
 * column-major, c of leading dim ldc and batch stride sc. */
static mt_status grad_gemm(mtw_stream *s, const grad_plan *p, int64_t m, int64_t n, int64_t k,
                           gemm_side a, gemm_side b, int beta_one, void *c, int64_t ldc,
                           int64_t sc) {
  float one_f = 1.0f, beta_f = beta_one ? 1.0f : 0.0f;
  double one_d = 1.0, beta_d = beta_one ? 1.0 : 0.0;
  int f64 = p->q.type == CUDA_R_64F;
  const void *alpha = f64 ? (const void *)&one_d : (const void *)&one_f;
  const void *beta = f64 ? (const void *)&beta_d : (const void *)&beta_f;
  cublasStatus_t st = cublasGemmStridedBatchedEx(
      s->blas, a.op, b.op, (int)m, (int)n, (int)k, alpha, a.data, p->q.type, (int)a.ld,
      (long long)a.stride, b.data, p->q.type, (int)b.ld, (long long)b.stride, beta, c, p->acc,
      (int)ldc, (long long)sc, (int)p->g.groups, p->q.compute, CUBLAS_GEMM_DEFAULT);
  return st == CUBLAS_STATUS_SUCCESS ? MT_OK : mtw_cublas_error(s->backend, p->fn, st);
}

/* Images per chunk: its columns (in the wider of the two types) and dy by
 * channel within CONV_CUDA_WORKSPACE bytes, one image at least, and count
 * P within cuBLAS's int. */
static int64_t grad_chunk(const grad_plan *p) {
  size_t wide = p->acc_es > p->q.es ? p->acc_es : p->q.es;
  size_t per_image = (size_t)(p->rows * p->q.p) * wide + (size_t)(p->g.o * p->q.p) * p->q.es;
  int64_t chunk = (int64_t)(CONV_CUDA_WORKSPACE / per_image);
  if (chunk > INT_MAX / p->q.p) chunk = INT_MAX / p->q.p;
  if (chunk < 1) chunk = 1;
  return chunk > p->g.n ? p->g.n : chunk;
}

/* dx: per chunk, d col_g^T [count P, K] = dy_g^T [count P, Og] x w_g [Og,
 * K] (row-major d col_g [K, count P] = w_g^T x dy_g), then col2im. */
static mt_status input_grad(mtw_stream *s, const grad_plan *p, const mti_view *in,
                            const mti_view *out) {
  int stage_w = !mti_shape_is_contiguous(in[1].ndim, in[1].shape, in[1].strides);
  size_t w_bytes = stage_w ? align_up((size_t)(p->g.o * p->q.k) * p->q.es) : 0;
  size_t col_bytes = align_up((size_t)(p->rows * p->chunk * p->q.p) * p->acc_es);
  char *scratch = s->ctx.scratch(&s->ctx, w_bytes + col_bytes +
                                               (size_t)(p->g.o * p->chunk * p->q.p) * p->q.es);
  if (!scratch) return mt_last_status();
  const char *w = in[1].data;
  mt_status st = MT_OK;
  if (stage_w) {
    mti_view staged;
    if ((st = stage_contiguous(s, &in[1], scratch, &staged)) != MT_OK) return st;
    w = scratch;
  }
  char *col = scratch + w_bytes, *dy_t = col + col_bytes;
  int64_t og = p->q.og, k = p->q.k;
  for (int64_t n0 = 0; n0 < p->g.n && st == MT_OK; n0 += p->chunk) {
    int64_t count = p->g.n - n0 < p->chunk ? p->g.n - n0 : p->chunk, np = count * p->q.p;
    st = mtw_cuda_conv_dy_by_channel(&s->ctx, &p->g, &in[0], n0, count, dy_t);
    if (st == MT_OK)
      st = grad_gemm(s, p, np, k, og, (gemm_side){dy_t, np, og * np, CUBLAS_OP_N},
                     (gemm_side){w, k, og * k, CUBLAS_OP_T}, 0, col, np, k * np);
    if (st == MT_OK) st = mtw_cuda_conv_col2im(&s->ctx, &p->g, col, n0, count, out);
  }
  return st;
}

/* dw: per chunk, dw_g^T [K, Og] += col_g [K, count P] x dy_g^T [count P,
 * Og] (row-major dw_g = dy_g x col_g^T), into out or, for the 16-bit
 * types, a float32 sum converted into out at the end. */
static mt_status weight_grad(mtw_stream *s, const grad_plan *p, const mti_view *in,
                             const mti_view *out) {
  int widen = p->acc_es != p->q.es;
  size_t dw_bytes = widen ? align_up((size_t)(p->g.o * p->q.k) * p->acc_es) : 0;
  size_t col_bytes = align_up((size_t)(p->rows * p->chunk * p->q.p) * p->q.es);
  char *scratch = s->ctx.scratch(&s->ctx, dw_bytes + col_bytes +
                                               (size_t)(p->g.o * p->chunk * p->q.p) * p->q.es);
  if (!scratch) return mt_last_status();
  char *dw = widen ? scratch : out->data, *col = scratch + dw_bytes, *dy_t = col + col_bytes;
  int64_t og = p->q.og, k = p->q.k;
  mt_status st = MT_OK;
  for (int64_t n0 = 0; n0 < p->g.n && st == MT_OK; n0 += p->chunk) {
    int64_t count = p->g.n - n0 < p->chunk ? p->g.n - n0 : p->chunk, np = count * p->q.p;
    st = mtw_cuda_conv_im2col_rows(&s->ctx, &p->g, &in[1], n0, count, col);
    if (st == MT_OK) st = mtw_cuda_conv_dy_by_channel(&s->ctx, &p->g, &in[0], n0, count, dy_t);
    if (st == MT_OK)
      st = grad_gemm(s, p, k, og, np, (gemm_side){col, np, k * np, CUBLAS_OP_T},
                     (gemm_side){dy_t, np, og * np, CUBLAS_OP_N}, n0 > 0, dw, k, og * k);
  }
  if (st != MT_OK || !widen) return st;
  mti_view sum = *out;
  sum.data = dw;
  sum.dtype = MT_FLOAT32;
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.dtype = (int32_t)out->dtype;
  return mtw_cuda_run_kernel(&s->ctx, MTI_OP_COPY, &sum, 1, &at, out);
}

mt_status mtw_cuda_conv_grad(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                             const mti_attrs *at, const mti_view *out) {
  mtw_stream *s = (mtw_stream *)ctx->owner;
  const mti_op_info *info = mti_op_get((int)op);
  const char *fn = info ? info->fn : "mt_conv2d_input_grad";
  if (!info || in[0].ndim != 4 || in[1].ndim != 4 || out->ndim != 4 ||
      at->n_ints != MTI_CONV_GRAD_N_INTS ||
      !mti_shape_is_contiguous(out->ndim, out->shape, out->strides))
    return mti_error(MT_ERR_INTERNAL, "%s: cuda: a node mti_infer did not check", fn);
  int64_t total = mti_shape_numel(out->ndim, out->shape);
  if (total == 0) return MT_OK;
  grad_plan p;
  memset(&p, 0, sizeof p);
  p.fn = fn;
  mti_conv_grad_geom_of(op, in[0].shape, in[1].shape, at->ints, &p.g);
  if (p.g.n == 0 || p.g.o == 0) { /* no dy: a zero gradient */
    cudaError_t e = cudaMemsetAsync(out->data, 0, (size_t)total * mt_dtype_size(out->dtype),
                                    s->stream);
    return e == cudaSuccess ? MT_OK : mtw_cuda_error(s->backend, fn, e);
  }
  gemm_types(out->dtype, &p.q);
  p.acc = p.q.type == CUDA_R_64F ? CUDA_R_64F : CUDA_R_32F;
  p.acc_es = p.acc == CUDA_R_64F ? 8 : 4;
  p.q.og = p.g.o / p.g.groups, p.q.k = (p.g.c / p.g.groups) * p.g.kh * p.g.kw;
  p.q.p = p.g.oh * p.g.ow, p.rows = p.g.c * p.g.kh * p.g.kw;
  if (p.q.p > INT_MAX || p.q.og > INT_MAX || p.q.k > INT_MAX || p.g.groups > INT_MAX)
    return mti_error(MT_ERR_UNSUPPORTED, "%s: a GEMM of %lld x %lld x %lld passes cuBLAS's int "
                     "range", fn, (long long)p.q.og, (long long)p.q.p, (long long)p.q.k);
  p.chunk = grad_chunk(&p);
  mt_status st = mtw_cuda_blas_ready(s, fn);
  if (st != MT_OK) return st;
  return op == MTI_OP_CONV2D_INPUT_GRAD ? input_grad(s, &p, in, out) : weight_grad(s, &p, in, out);
}
