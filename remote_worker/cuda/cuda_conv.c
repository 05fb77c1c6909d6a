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
