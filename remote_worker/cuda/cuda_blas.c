/*
 * cuda_blas.c - matmul in float16, bfloat16, float32 and float64 with
 * cuBLAS, with the semantics of src/cpu/matmul.c (numpy.matmul: 1-d
 * operands, broadcast batch dims, promotion to the output dtype).
 *
 * cuBLAS is column-major and the views are row-major, so the product is
 * computed as C^T = B^T A^T: a row-major matrix with a unit column stride is
 * its column-major transpose (op N), one with a unit row stride is passed
 * with op T; either way it is read in place. Batch dims go to
 * cublasGemmStridedBatchedEx as one stride per operand (0 where broadcast)
 * as far as they flatten, and a loop over the rest. Only operands of
 * another dtype or without a unit stride are copied first (the COPY kernel,
 * into the stream's staging region), and a strided output is computed
 * contiguous and copied out.
 *
 * A long product is enqueued in pieces along k, each accumulating onto the
 * one before (beta 1). Before each piece after the first, once about
 * PACE_WORK multiply-adds are queued, the host waits for the stream and
 * reads its stop flag: so the GPU holds at most a few milliseconds of a
 * product whose client went away. A product of one piece (most of them)
 * never waits.
 *
 * linear (x @ w^T + b) is the same product with w's transpose as a view
 * (read in place, op T) and the bias as C's starting value: the output is
 * filled with the broadcast bias and cuBLAS accumulates onto it (beta 1).
 *
 * float32 is exact float32 (CUBLAS_COMPUTE_32F) unless the op carries
 * MTI_FLAG_TF32 (mt_set_matmul_tf32); float16/bfloat16 accumulate in
 * float32 with reduced-precision split-K reductions disallowed, as the cpu.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "cuda/cuda_internal.h"

#define FN "mt_matmul"
#define STAGE_ALIGN ((size_t)256)
#define PACE_WORK ((double)((int64_t)1 << 34)) /* multiply-adds: ~2 ms on an A100 */
#define PIECE_K_MIN 4096                       /* pieces of k are no shorter */

/* One operand: a batch of rows x cols matrices with strides (rs, cs) in
 * elements, its batch strides aligned to the output's batch dims. */
typedef struct operand {
  const char *data;
  int64_t rows, cols, rs, cs;
  int64_t bstride[MT_MAX_DIMS];
  cublasOperation_t op; /* how cuBLAS reads it in place */
  int64_t ld;
} operand;

typedef struct problem {
  cudaDataType_t type;
  cublasComputeType_t compute;
  size_t es;
  int nb;
  int64_t bshape[MT_MAX_DIMS];
  int64_t cstride[MT_MAX_DIMS];
  int64_t m, n, k;
  operand a, b;
  char *c; /* contiguous [batch..., m, n] */
  int accumulate; /* c holds the bias: beta 1 */
} problem;

int mtw_cuda_blas_serves(mt_dtype dt) {
  return dt == MT_FLOAT16 || dt == MT_BFLOAT16 || dt == MT_FLOAT32 || dt == MT_FLOAT64;
}

/* ------------------------------------------------------------ handle */

void mtw_cuda_blas_release(mtw_stream *s) {
  if (s->blas) mtw_cuda_pool_keep_blas(s->backend->pools[s->device], s->blas);
  s->blas = NULL;
  if (s->blas_workspace)
    mtw_cuda_pool_release(s->backend->pools[s->device], s->blas_workspace);
  s->blas_workspace = NULL;
}

/* The stream's cuBLAS handle, taken (or made) on its first matmul: bound
 * to the stream, with a workspace of our allocator (no cudaMalloc per
 * call). */
static mt_status blas_handle(mtw_stream *s) {
  if (s->blas) return MT_OK;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  s->blas = mtw_cuda_pool_take_blas(s->backend->pools[s->device]);
  if (!s->blas) st = cublasCreate(&s->blas);
  if (st != CUBLAS_STATUS_SUCCESS) {
    s->blas = NULL;
    return mtw_cublas_error(s->backend, FN, st);
  }
  s->blas_workspace =
      mtw_cuda_pool_alloc(s->backend->pools[s->device], s, MTW_CUDA_BLAS_WORKSPACE,
                          MTW_CUDA_STORAGE);
  if (!s->blas_workspace) {
    mt_status status = mt_last_status();
    mtw_cuda_blas_release(s);
    return status;
  }
  cublasMath_t math =
      (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
  st = cublasSetStream(s->blas, s->stream);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasSetMathMode(s->blas, math);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasSetWorkspace(s->blas, s->blas_workspace, MTW_CUDA_BLAS_WORKSPACE);
  if (st != CUBLAS_STATUS_SUCCESS) { /* a handle that failed here is not kept */
    mt_status status = mtw_cublas_error(s->backend, FN, st);
    cublasDestroy(s->blas);
    s->blas = NULL;
    mtw_cuda_blas_release(s);
    return status;
  }
  return MT_OK;
}

/* ------------------------------------------------------------ layouts */

/* How cuBLAS reads a rows x cols row-major-indexed matrix in place: op N
 * with leading dim rs when columns are unit stride, op T with leading dim
 * cs when rows are; 0 when neither fits (or a dim passes int). */
static int blas_layout(operand *o) {
  int64_t rows = o->rows, cols = o->cols, rs = o->rs, cs = o->cs;
  if (rows > INT_MAX || cols > INT_MAX) return 0;
  if ((cs == 1 || cols == 1) && (rows == 1 || (rs >= cols && rs <= INT_MAX))) {
    o->op = CUBLAS_OP_N;
    o->ld = rows == 1 ? cols : rs;
    return 1;
  }
  if ((rs == 1 || rows == 1) && (cols == 1 || (cs >= rows && cs <= INT_MAX))) {
    o->op = CUBLAS_OP_T;
    o->ld = cols == 1 ? rows : cs;
    return 1;
  }
  return 0;
}

/* Reads view v as the left (a) or right (b) operand: a 1-d a is one row, a
 * 1-d b one column; batch dims broadcast against p's. */
static void operand_init(operand *o, const mti_view *v, int is_left, const problem *p) {
  int nd = v->ndim, vbatch = nd >= 2 ? nd - 2 : 0;
  o->data = v->data;
  if (nd == 1 && is_left) {
    o->rows = 1, o->cols = v->shape[0], o->rs = v->shape[0], o->cs = v->strides[0];
  } else if (nd == 1) {
    o->rows = v->shape[0], o->cols = 1, o->rs = v->strides[0], o->cs = 1;
  } else {
    o->rows = v->shape[nd - 2], o->cols = v->shape[nd - 1];
    o->rs = v->strides[nd - 2], o->cs = v->strides[nd - 1];
  }
  for (int d = 0; d < p->nb; d++) {
    int vd = d - (p->nb - vbatch);
    int broadcast = vd < 0 || v->shape[vd] != p->bshape[d] || p->bshape[d] == 1;
    o->bstride[d] = broadcast ? 0 : v->strides[vd];
  }
}

/* ------------------------------------------------------------ staging */

static size_t view_bytes(const mti_view *v, mt_dtype dt) {
  size_t n = (size_t)mti_shape_numel(v->ndim, v->shape) * mt_dtype_size(dt);
  return (n + STAGE_ALIGN - 1) & ~(STAGE_ALIGN - 1);
}

/* A contiguous dt copy of v at dst (the COPY kernel converts). */
static mt_status stage_copy(mtw_stream *s, const mti_view *v, mt_dtype dt, char *dst,
                            mti_view *staged) {
  *staged = *v;
  staged->data = dst;
  staged->dtype = dt;
  mti_shape_contiguous_strides(v->ndim, v->shape, staged->strides);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.dtype = (int32_t)dt;
  return mtw_cuda_run_kernel(&s->ctx, MTI_OP_COPY, v, 1, &at, staged);
}

/* Whether v, as the left or right operand, can be read in place. */
static int in_place(const mti_view *v, int is_left, mt_dtype dt, const problem *p) {
  if (v->dtype != dt) return 0;
  operand o;
  operand_init(&o, v, is_left, p);
  return blas_layout(&o);
}

/* ------------------------------------------------------------ running */

/* Element offsets of outer batch t's matrices, over batch dims [0, nd). */
static void outer_offsets(const problem *p, int nd, int64_t t, int64_t *oa, int64_t *ob,
                          int64_t *oc) {
  *oa = *ob = *oc = 0;
  for (int d = nd - 1; d >= 0; d--) {
    int64_t i = t % p->bshape[d];
    t /= p->bshape[d];
    *oa += i * p->a.bstride[d];
    *ob += i * p->b.bstride[d];
    *oc += i * p->cstride[d];
  }
}

/* One cuBLAS call: count products at strides sa, sb, sc from the given
 * element offsets, as C^T = B^T A^T, over k elements of the inner dim
 * (from where oa and ob point); accumulate onto c adds them to it. */
static mt_status gemm(mtw_stream *s, const problem *p, int64_t m, int64_t k, int64_t lda,
                      int64_t oa, int64_t ob, int64_t oc, int64_t count, int64_t sa, int64_t sb,
                      int64_t sc, int accumulate) {
  float one_f = 1.0f, beta_f = (float)accumulate;
  double one_d = 1.0, beta_d = (double)accumulate;
  int f64 = p->type == CUDA_R_64F;
  const void *alpha = f64 ? (const void *)&one_d : (const void *)&one_f;
  const void *beta = f64 ? (const void *)&beta_d : (const void *)&beta_f;
  const char *a = p->a.data + oa * (int64_t)p->es, *b = p->b.data + ob * (int64_t)p->es;
  char *c = p->c + oc * (int64_t)p->es;
  cublasStatus_t st;
  if (count == 1)
    st = cublasGemmEx(s->blas, p->b.op, p->a.op, (int)p->n, (int)m, (int)k, alpha, b, p->type,
                      (int)p->b.ld, a, p->type, (int)lda, beta, c, p->type, (int)p->n,
                      p->compute, CUBLAS_GEMM_DEFAULT);
  else
    st = cublasGemmStridedBatchedEx(s->blas, p->b.op, p->a.op, (int)p->n, (int)m, (int)k,
                                    alpha, b, p->type, (int)p->b.ld, sb, a, p->type, (int)lda,
                                    sa, beta, c, p->type, (int)p->n, sc, (int)count, p->compute,
                                    CUBLAS_GEMM_DEFAULT);
  return st == CUBLAS_STATUS_SUCCESS ? MT_OK : mtw_cublas_error(s->backend, FN, st);
}

/* Flattens the innermost batch dims that share one stride per operand
 * into one strided batch; returns the number of outer dims left and sets
 * the inner batch's count and strides. Dims of size 1 are skipped; a
 * negative batch stride (a flipped view) stays in the outer loop. */
static int inner_batch(const problem *p, int64_t *count, int64_t *sa, int64_t *sb, int64_t *sc) {
  *count = 1, *sa = *sb = *sc = 0;
  int d = p->nb - 1;
  for (; d >= 0; d--) {
    int64_t n = p->bshape[d];
    if (n == 1) continue;
    if (p->a.bstride[d] < 0 || p->b.bstride[d] < 0) break;
    if (*count == 1) {
      *sa = p->a.bstride[d], *sb = p->b.bstride[d], *sc = p->cstride[d];
    } else if (p->a.bstride[d] != *sa * *count || p->b.bstride[d] != *sb * *count ||
               p->cstride[d] != *sc * *count) {
      break;
    }
    if (*count > INT_MAX / n) break;
    *count *= n;
  }
  return d + 1;
}

/* The length of k's pieces for calls of call_work multiply-adds per
 * element of k. */
static int64_t k_piece(int64_t k, double call_work) {
  double per = PACE_WORK / call_work;
  if (per < PIECE_K_MIN) per = PIECE_K_MIN;
  return per >= (double)k ? k : (int64_t)per;
}

/* Before the next piece: once PACE_WORK multiply-adds are queued, waits
 * for them (an error surfaces at the next synchronize) and fails if the
 * stream's stop flag rose meanwhile. */
static mt_status paced(mtw_stream *s, double *queued) {
  if (*queued < PACE_WORK) return MT_OK;
  *queued = 0;
  cudaStreamSynchronize(s->stream);
  if (s->stop && atomic_load_explicit(s->stop, memory_order_relaxed))
    return mti_error(MT_ERR_UNAVAILABLE, FN ": stopped: the session's call ended");
  return MT_OK;
}

/* Runs every product: the inner batch per cuBLAS call, the outer dims in a
 * loop. When b is shared by the whole batch and a's matrices are rows at a
 * constant stride, the batch is one tall product instead. */
static mt_status run_products(mtw_stream *s, problem *p) {
  int64_t count, sa, sb, sc, m = p->m, lda = p->a.ld;
  int outer = inner_batch(p, &count, &sa, &sb, &sc);
  if (outer == 0 && count > 1 && sb == 0 && p->a.op == CUBLAS_OP_N && m * count <= INT_MAX) {
    if (m == 1 && sa >= p->k && sa <= INT_MAX) lda = sa; /* one row: its stride is free */
    if (sa == m * lda) m *= count, count = 1;
  }
  int64_t outer_count = 1;
  for (int d = 0; d < outer; d++) outer_count *= p->bshape[d];
  double call_work = (double)count * (double)m * (double)p->n; /* per element of k */
  int64_t piece = k_piece(p->k, call_work);
  double queued = 0;
  mt_status status = MT_OK;
  for (int64_t t = 0; t < outer_count && status == MT_OK; t++) {
    int64_t oa, ob, oc;
    outer_offsets(p, outer, t, &oa, &ob, &oc);
    for (int64_t k0 = 0; k0 < p->k && status == MT_OK; k0 += piece) {
      if ((status = paced(s, &queued)) != MT_OK) break;
      int64_t len = p->k - k0 < piece ? p->k - k0 : piece;
      status = gemm(s, p, m, len, lda, oa + k0 * p->a.cs, ob + k0 * p->b.rs, oc, count, sa, sb,
                    sc, p->accumulate || k0 > 0);
      queued += call_work * (double)len;
    }
  }
  return status;
}

static void types_of(mt_dtype dt, const mti_attrs *at, problem *p) {
  int tf32 = at && (at->flags & MTI_FLAG_TF32);
  switch (dt) {
  case MT_FLOAT16: p->type = CUDA_R_16F, p->compute = CUBLAS_COMPUTE_32F; break;
  case MT_BFLOAT16: p->type = CUDA_R_16BF, p->compute = CUBLAS_COMPUTE_32F; break;
  case MT_FLOAT64: p->type = CUDA_R_64F, p->compute = CUBLAS_COMPUTE_64F; break;
  default:
    p->type = CUDA_R_32F;
    p->compute = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    break;
  }
  p->es = mt_dtype_size(dt);
}

/* The output's batch shape and contiguous batch strides, and m, n, k. */
static void problem_shape(problem *p, const mti_view *a, const mti_view *b, const mti_view *out) {
  p->nb = out->ndim - (a->ndim >= 2) - (b->ndim >= 2);
  p->m = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1;
  p->n = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
  p->k = a->shape[a->ndim - 1];
  int64_t stride = p->m * p->n;
  for (int d = p->nb - 1; d >= 0; d--) {
    p->bshape[d] = out->shape[d];
    p->cstride[d] = stride;
    stride *= out->shape[d];
  }
}

/* Fills the contiguous dt buffer c (out's shape) with bias broadcast over
 * out's rows (the COPY kernel converts): the product's starting value. */
static mt_status fill_bias(mtw_stream *s, const mti_view *bias, const mti_view *out, mt_dtype dt,
                           char *c) {
  mti_view src = *out, dst = *out;
  src.data = bias->data;
  src.dtype = bias->dtype;
  for (int d = 0; d < out->ndim; d++) src.strides[d] = 0;
  src.strides[out->ndim - 1] = bias->strides[0];
  dst.data = c;
  dst.dtype = dt;
  mti_shape_contiguous_strides(out->ndim, out->shape, dst.strides);
  mti_attrs at;
  memset(&at, 0, sizeof at);
  at.dtype = (int32_t)dt;
  return mtw_cuda_run_kernel(&s->ctx, MTI_OP_COPY, &src, 1, &at, &dst);
}

/* out = a @ b, plus bias broadcast over out's rows when bias is not NULL. */
static mt_status product(mtw_stream *s, const mti_view *a, const mti_view *b,
                         const mti_view *bias, const mti_attrs *at, const mti_view *out) {
  int64_t total = mti_shape_numel(out->ndim, out->shape);
  if (total == 0) return MT_OK;
  mt_dtype dt = out->dtype;
  problem p;
  memset(&p, 0, sizeof p);
  types_of(dt, at, &p);
  problem_shape(&p, a, b, out);
  p.accumulate = bias != NULL;
  if (p.m > INT_MAX || p.n > INT_MAX || p.k > INT_MAX)
    return mti_error(MT_ERR_UNSUPPORTED, FN ": %lld x %lld x %lld passes cuBLAS's int range",
                     (long long)p.m, (long long)p.n, (long long)p.k);

  /* one staging region for what cannot be read or written in place */
  int stage_a = p.k > 0 && !in_place(a, 1, dt, &p), stage_b = p.k > 0 && !in_place(b, 0, dt, &p);
  int stage_c = !mti_shape_is_contiguous(out->ndim, out->shape, out->strides);
  size_t bytes_a = stage_a ? view_bytes(a, dt) : 0, bytes_b = stage_b ? view_bytes(b, dt) : 0;
  size_t bytes_c = stage_c ? view_bytes(out, dt) : 0;
  char *stage = NULL;
  if (bytes_a + bytes_b + bytes_c) {
    stage = mtw_cuda_region_get(s, &s->staging, bytes_a + bytes_b + bytes_c);
    if (!stage) return mt_last_status();
  }
  mti_view va = *a, vb = *b;
  mt_status status = MT_OK;
  if (stage_a) status = stage_copy(s, a, dt, stage, &va);
  if (status == MT_OK && stage_b) status = stage_copy(s, b, dt, stage + bytes_a, &vb);
  if (status != MT_OK) return status;
  p.c = stage_c ? stage + bytes_a + bytes_b : out->data;

  if (bias) {
    if ((status = fill_bias(s, bias, out, dt, p.c)) != MT_OK) return status;
  } else if (p.k == 0) {
    cudaError_t e = cudaMemsetAsync(p.c, 0, (size_t)total * p.es, s->stream);
    if (e != cudaSuccess) return mtw_cuda_error(s->backend, FN, e);
  }
  if (p.k > 0) {
    operand_init(&p.a, &va, 1, &p);
    operand_init(&p.b, &vb, 0, &p);
    blas_layout(&p.a); /* in place or staged contiguous: both fit */
    blas_layout(&p.b);
    if ((status = blas_handle(s)) != MT_OK || (status = run_products(s, &p)) != MT_OK)
      return status;
  }
  if (!stage_c) return MT_OK;
  mti_view vc = *out;
  vc.data = p.c;
  mti_shape_contiguous_strides(out->ndim, out->shape, vc.strides);
  mti_attrs copy;
  memset(&copy, 0, sizeof copy);
  copy.dtype = (int32_t)dt;
  return mtw_cuda_run_kernel(&s->ctx, MTI_OP_COPY, &vc, 1, &copy, out);
}

mt_status mtw_cuda_blas_matmul(mtw_stream *s, const mti_view *a, const mti_view *b,
                               const mti_attrs *at, const mti_view *out) {
  return product(s, a, b, NULL, at, out);
}

/* x @ weight^T (+ bias): the transpose is weight's view with its strides
 * swapped, which cuBLAS reads in place (op T). */
mt_status mtw_cuda_linear(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                          const mti_view *out) {
  mti_view wt = in[1];
  wt.shape[0] = in[1].shape[1], wt.shape[1] = in[1].shape[0];
  wt.strides[0] = in[1].strides[1], wt.strides[1] = in[1].strides[0];
  const mti_view *bias = (at->flags & MTI_FLAG_PRESENT(2)) ? &in[2] : NULL;
  return product((mtw_stream *)ctx->owner, &in[0], &wt, bias, at, out);
}

/* For other cuBLAS users of the backend (cuda_conv.c): the handle bound to
 * s's stream, made on first use. */
mt_status mtw_cuda_blas_ready(mtw_stream *s, const char *fn) {
  mt_status st = blas_handle(s);
  if (st == MT_OK) return MT_OK;
  char why[256]; /* the error buffer is rewritten below */
  snprintf(why, sizeof why, "%s", mt_last_error());
  return mti_error(st, "%s: %s", fn, why);
}
