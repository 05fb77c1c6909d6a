/*
 * attention.c - scaled dot-product attention without an L x S matrix.
 *
 * Flash-attention's order of work: a task takes one batch entry and a block
 * of up to Q_BLOCK query rows, and walks the keys in blocks of K_BLOCK. For
 * each key block it computes the score tile q_blk @ k_blk^T, adds the mask,
 * and folds the tile into a running softmax per row: the running max m, the
 * running sum l of exp(score - m), and the accumulator acc = sum exp(score -
 * m) * v, rescaled by exp(m_old - m_new) whenever the max grows. The result
 * is acc / l and the row's logsumexp is m + log(l). Memory per task is
 * O(Q_BLOCK * (K_BLOCK + Ev) + E * K_BLOCK); with is_causal, key blocks past
 * the block's last row are never visited.
 *
 * Both products of a tile go through BLAS GEMM in 64-feature slices
 * (measured 1.3-2.8x faster than the SIMD loops on [8, 12, 512, 64] and
 * [1, 4, 1024, 128], equal at L = 1). The loops (the key block transposed
 * into a small buffer, so that the products run along the keys without a
 * reduction) serve views whose row strides BLAS refuses (an expanded row).
 *
 * float16 and bfloat16 compute in float32, float64 in double: q, k and v
 * are used in place when they are of the compute type with unit stride
 * along their features, else staged once into contiguous copies (a
 * broadcast batch dim stays broadcast: the copy has the input's own shape).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_kernels.h"
#include "stop.h"
#include "cpu_simd.h"
#include "vmath.h"

#define Q_BLOCK 64 /* query rows per task */
#define K_BLOCK 64 /* keys per score tile */
/* Features per BLAS call: 64 x 64 x 64 products stay within OpenBLAS's
 * small-matrix path (no shared buffers); bigger calls from several threads
 * at once were measured 3-6x slower here (E = 128 as one call). */
#define BLAS_CHUNK 64
/* Multiply-adds a thread should get at least before a region pays. */
#define MIN_WORK_PER_THREAD (1 << 17)

static const char *const FN = "mt_scaled_dot_product_attention";

/* An operand broadcast to the output's batch dims: rows of features with
 * unit stride, the row stride, and a stride per batch dim. */
typedef struct attn_operand {
  const char *data;
  int64_t row_stride;                /* elements */
  int64_t batch_strides[MT_MAX_DIMS]; /* elements, 0 where broadcast */
  char *owned;                       /* staged copy to free, or NULL */
} attn_operand;

/* Everything a task reads: operands, mask, sizes and the output. */
typedef struct attn_problem {
  mt_dtype ct;     /* compute type: float32 or float64 */
  int nbatch;      /* batch dims of the output */
  int64_t batch_shape[MT_MAX_DIMS];
  int64_t batch, len, keys, e, ev; /* batch entries, L, S, E, Ev */
  attn_operand q, k, v;
  const mti_view *mask; /* broadcast to [batch..., L, S], or NULL */
  double scale;
  int causal;
  int blas; /* tiles through BLAS GEMM (else the SIMD loops) */
  const mti_view *out, *lse;
} attn_problem;

/* The operand v as rows of ct with unit feature stride, broadcast to the
 * batch dims of p: v itself when it already is so, else a staged copy. */
static mt_status operand_init(const attn_problem *p, const mti_view *v, attn_operand *op) {
  mti_view src = *v;
  op->owned = NULL;
  int last = v->ndim - 1;
  if (v->dtype != p->ct || (v->shape[last] > 1 && v->strides[last] != 1)) {
    int64_t numel = mti_shape_numel(v->ndim, v->shape);
    size_t bytes = (size_t)numel * mt_dtype_size(p->ct);
    if (!(op->owned = malloc(bytes ? bytes : 1))) return mti_error_oom(FN, bytes);
    src.data = op->owned;
    src.dtype = p->ct;
    mti_shape_contiguous_strides(v->ndim, v->shape, src.strides);
    mt_status s = mti_cpu_convert(v, &src);
    if (s) {
      free(op->owned);
      op->owned = NULL;
      return s;
    }
  }
  int64_t shape[MT_MAX_DIMS];
  mti_dims_copy(shape, p->batch_shape, p->nbatch);
  shape[p->nbatch] = v->shape[last - 1];
  shape[p->nbatch + 1] = v->shape[last];
  mti_view wide = mti_view_broadcast_to(&src, p->nbatch + 2, shape);
  op->data = wide.data;
  op->row_stride = wide.strides[p->nbatch];
  mti_dims_copy(op->batch_strides, wide.strides, p->nbatch);
  return MT_OK;
}

/* Element offset of batch entry b (row-major over the batch dims) for the
 * given per-dim strides. */
static int64_t batch_offset(const attn_problem *p, int64_t b, const int64_t *strides) {
  int64_t off = 0;
  for (int d = p->nbatch - 1; d >= 0; d--) {
    off += b % p->batch_shape[d] * strides[d];
    b /= p->batch_shape[d];
  }
  return off;
}

/* The mask of rows [i0, i0 + nr) and keys [j0, j0 + nk) of batch entry b
 * as additive values: bool false gives -inf, true 0; floats their value.
 * Added (not stored over the score), so a NaN score stays NaN, as torch. */
#define MASK_TILE(S, T)                                                                     \
  static void mask_tile_##S(const attn_problem *p, int64_t b, int64_t i0, int64_t nr,        \
                            int64_t j0, int64_t nk, T *bias) {                               \
    const mti_view *m = p->mask;                                                            \
    int64_t rs = m->strides[p->nbatch], cs = m->strides[p->nbatch + 1];                      \
    int64_t base = batch_offset(p, b, m->strides) + i0 * rs + j0 * cs;                      \
    for (int64_t i = 0; i < nr; i++) {                                                      \
      T *row = bias + i * K_BLOCK;                                                          \
      int64_t at = base + i * rs;                                                           \
      switch (m->dtype) {                                                                   \
      case MT_BOOL:                                                                         \
        for (int64_t j = 0; j < nk; j++)                                                    \
          row[j] = ((const uint8_t *)m->data)[at + j * cs] ? (T)0 : -(T)INFINITY;           \
        break;                                                                              \
      case MT_FLOAT16:                                                                      \
        for (int64_t j = 0; j < nk; j++)                                                    \
          row[j] = (T)mti_f16_to_f32(((const uint16_t *)m->data)[at + j * cs]);             \
        break;                                                                              \
      case MT_BFLOAT16:                                                                     \
        for (int64_t j = 0; j < nk; j++)                                                    \
          row[j] = (T)mti_bf16_to_f32(((const uint16_t *)m->data)[at + j * cs]);            \
        break;                                                                              \
      case MT_FLOAT32:                                                                      \
        for (int64_t j = 0; j < nk; j++) row[j] = (T)((const float *)m->data)[at + j * cs]; \
        break;                                                                              \
      default: /* float64 (mti_infer admits no other dtype) */                              \
        for (int64_t j = 0; j < nk; j++) row[j] = (T)((const double *)m->data)[at + j * cs]; \
        break;                                                                              \
      }                                                                                     \
    }                                                                                       \
  }

/* A NaN operand wins, and stays (v > NaN is false). */
#define ATTN_MAX(a, v) ((a) = ((v) > (a) || (v) != (v)) ? (v) : (a))

/*
 * The leaf loops for compute type T with exponential EXP (SIMD clones):
 *  transpose_keys  kt[c][j] = k[j][c] for nk keys of e features
 *  score_tile      s[i][j] = sum_c q[i][c] * kt[c][j] (nr rows, nk keys)
 *  fold_tile       the online-softmax step of one tile: scales the scores
 *                  and adds the bias (or -inf past the causal diagonal),
 *                  updates m and l, rescales acc and adds p @ v
 */
#define ATTN_LEAVES(S, T, EXP)                                                                  \
  MTI_SIMD_CLONES static void transpose_keys_##S(const T *k, int64_t ks, int64_t nk, int64_t e, \
                                                 T *kt) {                                      \
    for (int64_t j = 0; j < nk; j++)                                                            \
      for (int64_t c = 0; c < e; c++) kt[c * K_BLOCK + j] = k[j * ks + c];                      \
  }                                                                                             \
  MTI_SIMD_CLONES static void score_tile_##S(const T *q, int64_t qs, int64_t nr, int64_t e,     \
                                             const T *kt, int64_t nk, T *s) {                  \
    for (int64_t i = 0; i < nr; i++) {                                                          \
      T *restrict si = s + i * K_BLOCK;                                                         \
      const T *qi = q + i * qs;                                                                 \
      for (int64_t j = 0; j < nk; j++) si[j] = 0;                                               \
      for (int64_t c = 0; c < e; c++) {                                                         \
        const T qc = qi[c];                                                                     \
        const T *restrict kc = kt + c * K_BLOCK;                                                \
        for (int64_t j = 0; j < nk; j++) si[j] += qc * kc[j];                                   \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void fold_scores_##S(T *s, const T *bias, int64_t nr, int64_t nk,      \
                                              int64_t diag, T scale, int64_t ev, T *m, T *l,    \
                                              T *acc) {                                         \
    for (int64_t i = 0; i < nr; i++) {                                                          \
      T *restrict si = s + i * K_BLOCK;                                                         \
      if (bias)                                                                                 \
        for (int64_t j = 0; j < nk; j++) si[j] = si[j] * scale + bias[i * K_BLOCK + j];         \
      else                                                                                      \
        for (int64_t j = 0; j < nk; j++) si[j] *= scale;                                        \
      /* causal: tile key j is past row i when j > i + diag */                                 \
      for (int64_t j = i + diag + 1 > 0 ? i + diag + 1 : 0; j < nk; j++) si[j] = -(T)INFINITY;  \
      T mx = m[i];                                                                              \
      for (int64_t j = 0; j < nk; j++) ATTN_MAX(mx, si[j]);                                     \
      /* while every key so far is masked, mx is -inf: shift by 0 so that */                   \
      /* exp gives 0 for them instead of exp(-inf + inf) = NaN */                              \
      T shift = mx == -(T)INFINITY ? (T)0 : mx;                                                 \
      T alpha = EXP(m[i] - shift), sum = 0;                                                     \
      for (int64_t j = 0; j < nk; j++) si[j] = EXP(si[j] - shift);                              \
      for (int64_t j = 0; j < nk; j++) sum += si[j];                                            \
      l[i] = l[i] * alpha + sum;                                                                \
      m[i] = mx;                                                                                \
      T *restrict ai = acc + i * ev;                                                            \
      for (int64_t c = 0; c < ev; c++) ai[c] *= alpha;                                          \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void add_pv_##S(const T *s, int64_t nr, int64_t nk, const T *v,        \
                                         int64_t vs, int64_t ev, T *acc) {                      \
    for (int64_t i = 0; i < nr; i++) {                                                          \
      T *restrict ai = acc + i * ev;                                                            \
      for (int64_t j = 0; j < nk; j++) {                                                        \
        const T pj = s[i * K_BLOCK + j];                                                        \
        const T *restrict vj = v + j * vs;                                                      \
        for (int64_t c = 0; c < ev; c++) ai[c] += pj * vj[c];                                   \
      }                                                                                         \
    }                                                                                           \
  }

MASK_TILE(f32, float)
MASK_TILE(f64, double)
ATTN_LEAVES(f32, float, mti_vexpf)
ATTN_LEAVES(f64, double, exp)

/* Writes row i of the result (acc / l in out's dtype) and its logsumexp. */
static void store_row(const attn_problem *p, int64_t row, const double *res, double lse) {
  int64_t at = row * p->ev;
  char *o = p->out->data;
  switch (p->out->dtype) {
  case MT_FLOAT16:
    for (int64_t c = 0; c < p->ev; c++) ((uint16_t *)o)[at + c] = mti_f32_to_f16((float)res[c]);
    break;
  case MT_BFLOAT16:
    for (int64_t c = 0; c < p->ev; c++) ((uint16_t *)o)[at + c] = mti_f32_to_bf16((float)res[c]);
    break;
  case MT_FLOAT32:
    for (int64_t c = 0; c < p->ev; c++) ((float *)o)[at + c] = (float)res[c];
    break;
  default:
    for (int64_t c = 0; c < p->ev; c++) ((double *)o)[at + c] = res[c];
    break;
  }
  ((float *)p->lse->data)[row] = (float)lse;
}

/* Scratch of one task: transposed keys, scores, bias, m, l, acc and a
 * result row, in the compute type (res in double). */
typedef struct attn_scratch {
  void *kt, *s, *bias, *m, *l, *acc;
  double *res;
  void *block;
} attn_scratch;

static int scratch_alloc(const attn_problem *p, attn_scratch *w) {
  size_t es = mt_dtype_size(p->ct);
  size_t n_kt = (size_t)(p->e ? p->e : 1) * K_BLOCK, n_tile = (size_t)Q_BLOCK * K_BLOCK;
  size_t n_acc = (size_t)Q_BLOCK * (size_t)(p->ev ? p->ev : 1);
  size_t total = es * (n_kt + 2 * n_tile + 2 * Q_BLOCK + n_acc) +
                 sizeof(double) * (size_t)(p->ev ? p->ev : 1);
  char *b = malloc(total);
  if (!b) return 0;
  w->block = b;
  w->kt = b;
  w->s = b += es * n_kt;
  w->bias = b += es * n_tile;
  w->m = b += es * n_tile;
  w->l = b += es * Q_BLOCK;
  w->acc = b += es * Q_BLOCK;
  w->res = (double *)(void *)(b + es * n_acc);
  return 1;
}

/* Rows [i0, i0 + nr) of batch entry b. */
#define ATTN_TASK(S, T, GEMM)                                                                       \
  static void task_##S(const attn_problem *p, int64_t b, int64_t i0, int64_t nr,            \
                       attn_scratch *w) {                                                    \
    T *kt = w->kt, *s = w->s, *bias = p->mask ? w->bias : NULL, *m = w->m, *l = w->l;          \
    T *acc = w->acc;                                                                         \
    const T *q = (const T *)p->q.data + batch_offset(p, b, p->q.batch_strides) +             \
                 i0 * p->q.row_stride;                                                       \
    const T *k = (const T *)p->k.data + batch_offset(p, b, p->k.batch_strides);              \
    const T *v = (const T *)p->v.data + batch_offset(p, b, p->v.batch_strides);              \
    T scale = (T)p->scale;                                                                   \
    for (int64_t i = 0; i < nr; i++) m[i] = -(T)INFINITY, l[i] = 0;                          \
    for (int64_t i = 0; i < nr * p->ev; i++) acc[i] = 0;                                     \
    /* causal: keys past the block's last row i0 + nr - 1 are never seen */                 \
    int64_t end = p->causal && i0 + nr < p->keys ? i0 + nr : p->keys;                        \
    for (int64_t j0 = 0; j0 < end; j0 += K_BLOCK) {                                          \
      int64_t nk = end - j0 < K_BLOCK ? end - j0 : K_BLOCK;                                  \
      const T *kj = k + j0 * p->k.row_stride, *vj = v + j0 * p->v.row_stride;                \
      if (p->blas)                                                                           \
        for (int64_t c0 = 0; c0 < p->e; c0 += BLAS_CHUNK)                                    \
          GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nr, (blasint)nk,            \
               (blasint)(p->e - c0 < BLAS_CHUNK ? p->e - c0 : BLAS_CHUNK), (T)1, q + c0,     \
               (blasint)p->q.row_stride, kj + c0, (blasint)p->k.row_stride, (T)(c0 ? 1 : 0), \
               s, K_BLOCK);                                                                  \
      else {                                                                                 \
        transpose_keys_##S(kj, p->k.row_stride, nk, p->e, kt);                               \
        score_tile_##S(q, p->q.row_stride, nr, p->e, kt, nk, s);                             \
      }                                                                                      \
      if (bias) mask_tile_##S(p, b, i0, nr, j0, nk, bias);                                   \
      /* row i sees tile key j when j0 + j <= i0 + i: j <= i + (i0 - j0) */                  \
      int64_t diag = p->causal ? i0 - j0 : K_BLOCK;                                          \
      fold_scores_##S(s, bias, nr, nk, diag, scale, p->ev, m, l, acc);                       \
      if (p->blas)                                                                           \
        for (int64_t c0 = 0; c0 < p->ev; c0 += BLAS_CHUNK)                                   \
          GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nr,                       \
               (blasint)(p->ev - c0 < BLAS_CHUNK ? p->ev - c0 : BLAS_CHUNK), (blasint)nk,    \
               (T)1, s, K_BLOCK, vj + c0, (blasint)p->v.row_stride, (T)1, acc + c0,          \
               (blasint)p->ev);                                                              \
      else                                                                                   \
        add_pv_##S(s, nr, nk, vj, p->v.row_stride, p->ev, acc);                              \
    }                                                                                        \
    for (int64_t i = 0; i < nr; i++) {                                                       \
      /* S = 0 gives zeros (an empty sum, as torch); a row of masked keys */                 \
      /* has l = 0 and gives 0 / 0 = NaN, as torch's softmax */                              \
      double inv = p->keys ? 1.0 / (double)l[i] : 0.0;                                       \
      for (int64_t c = 0; c < p->ev; c++)                                                    \
        w->res[c] = p->keys ? (double)acc[i * p->ev + c] * inv : 0.0;                        \
      double lse = (double)m[i] + log((double)l[i]);                                         \
      if (m[i] == -(T)INFINITY) lse = -INFINITY;                                             \
      store_row(p, b * p->len + i0 + i, w->res, lse);                                        \
    }                                                                                        \
  }

ATTN_TASK(f32, float, cblas_sgemm)
ATTN_TASK(f64, double, cblas_dgemm)

/* 1 when BLAS can take the tiles: leading dimensions BLAS accepts (at
 * least the row length, within blasint) and no empty features. */
static int blas_fits(const attn_problem *p) {
  int64_t lim = (int64_t)(sizeof(blasint) >= 8 ? INT64_MAX : INT32_MAX);
  return p->e > 0 && p->ev > 0 && p->q.row_stride >= p->e && p->k.row_stride >= p->e &&
         p->v.row_stride >= p->ev && p->q.row_stride <= lim && p->k.row_stride <= lim &&
         p->v.row_stride <= lim && p->ev <= lim;
}

/* Runs every (batch entry, query block) task, in parallel when the work pays. */
static mt_status run_tasks(const attn_problem *p) {
  int64_t nblocks = (p->len + Q_BLOCK - 1) / Q_BLOCK, ntask = p->batch * nblocks;
  double work = (double)p->batch * (double)p->len * (double)p->keys * (double)(p->e + p->ev);
  int nt = mti_cpu_threads_for(work > (double)INT64_MAX ? INT64_MAX : (int64_t)work,
                               MIN_WORK_PER_THREAD);
  if (nt > ntask) nt = (int)ntask;
  int failed = 0;
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : failed)
  {
    /* Every thread reaches the loop (a worksharing loop that some skip
     * would hang); one without scratch skips its tasks and fails the op. */
    attn_scratch w;
    memset(&w, 0, sizeof w);
    int ready = scratch_alloc(p, &w);
    failed = !ready;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < ntask; t++) {
      if (!ready || mti_cpu_stop_raised(stop)) continue;
      int64_t b = t / nblocks, i0 = t % nblocks * Q_BLOCK;
      int64_t nr = p->len - i0 < Q_BLOCK ? p->len - i0 : Q_BLOCK;
      if (p->ct == MT_FLOAT64)
        task_f64(p, b, i0, nr, &w);
      else
        task_f32(p, b, i0, nr, &w);
    }
    if (ready) free(w.block);
  }
  return failed ? mti_error_oom(FN, 0) : MT_OK;
}

mt_status mti_cpu_attention(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  attn_problem p;
  memset(&p, 0, sizeof p);
  const mti_view *o = &out[0];
  p.ct = o->dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  p.nbatch = o->ndim - 2;
  mti_dims_copy(p.batch_shape, o->shape, p.nbatch);
  p.batch = mti_shape_numel(p.nbatch, p.batch_shape);
  p.len = o->shape[o->ndim - 2];
  p.ev = o->shape[o->ndim - 1];
  p.keys = in[1].shape[in[1].ndim - 2];
  p.e = in[0].shape[in[0].ndim - 1];
  p.scale = isnan(at->s0) ? 1.0 / sqrt((double)(p.e ? p.e : 1)) : at->s0;
  p.causal = (at->flags & MTI_FLAG_CAUSAL) != 0;
  p.out = &out[0];
  p.lse = &out[1];
  if (p.batch == 0 || p.len == 0) return MT_OK;
  mti_view mask;
  if (at->flags & MTI_FLAG_PRESENT(3)) {
    int64_t shape[MT_MAX_DIMS];
    mti_dims_copy(shape, p.batch_shape, p.nbatch);
    shape[p.nbatch] = p.len;
    shape[p.nbatch + 1] = p.keys;
    mask = mti_view_broadcast_to(&in[3], p.nbatch + 2, shape);
    p.mask = &mask;
  }
  mt_status s = operand_init(&p, &in[0], &p.q);
  if (!s) s = operand_init(&p, &in[1], &p.k);
  if (!s) s = operand_init(&p, &in[2], &p.v);
  if (!s) {
    p.blas = blas_fits(&p);
    s = run_tasks(&p);
  }
  free(p.q.owned);
  free(p.k.owned);
  free(p.v.owned);
  return s;
}
