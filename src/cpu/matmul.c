/*
 * matmul.c - numpy.matmul on strided host memory.
 *
 * float32/float64 go to OpenBLAS (gemm, or gemv when one side is a vector),
 * reading the operands in place whenever BLAS can: a matrix with a unit
 * column stride is passed row-major with its row stride as leading
 * dimension, one with a unit row stride is passed transposed, and broadcast
 * batch dims are walked with stride 0. float16/bfloat16 compute in float32.
 * Integer and bool products use a blocked kernel of our own.
 *
 * linear is the same product with the weight read transposed in place and
 * the bias as the product's starting value: the output is filled with the
 * broadcast bias and BLAS accumulates onto it (beta = 1), so no transposed
 * weight and no second pass over the output exist.
 *
 * A long inner dimension is computed in pieces that accumulate onto each
 * other (run_pieces), so that a caller's stop flag (cpu/stop.h) is seen
 * every few milliseconds and an operand is never staged whole along k.
 */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/cpu_kernels.h"
#include "cpu/cpu_simd.h"
#include "cpu/host_cache.h"
#include "cpu/stop.h"

#define MM_FN "mt_matmul"

/* Largest dimension, leading dimension or increment BLAS accepts. */
#define MM_BLAS_MAX ((int64_t)(sizeof(blasint) >= 8 ? INT64_MAX : INT32_MAX))

/* Products are computed in pieces along k of about MM_PIECE_WORK
 * multiply-adds (a few milliseconds), none shorter than MM_PIECE_K_MIN
 * (where BLAS keeps its speed): most products are one piece. */
#define MM_PIECE_WORK ((double)(1 << 24))
#define MM_PIECE_K_MIN 4096

/* Below this many multiply-adds in all, a plain product runs on one thread. */
#define MM_PARALLEL_MIN (MTI_CPU_PARALLEL_MIN * 32.0)

/* One operand: a batch of rows x cols matrices, its batch strides aligned to
 * the output's batch dims (0 where it is broadcast). */
typedef struct mm_operand {
  char *data;
  int64_t rows, cols;
  int64_t rs, cs;
  int64_t bstride[MT_MAX_DIMS];
} mm_operand;

typedef enum mm_path {
  MM_GEMM,   /* matrix times matrix                    */
  MM_GEMV_A, /* n == 1: a's matrix times b's column    */
  MM_GEMV_B  /* m == 1: a's row times b's matrix       */
} mm_path;

/* How BLAS reads a matrix operand, or the vector of a gemv. */
typedef struct mm_blas_arg {
  CBLAS_TRANSPOSE trans;
  int64_t ld; /* leading dimension, or the increment of a vector */
} mm_blas_arg;

typedef struct mm_problem {
  mt_dtype ct; /* compute dtype */
  size_t es;   /* its size */
  int nb;      /* batch dims of the output */
  int64_t bshape[MT_MAX_DIMS];
  int64_t batch, m, n, k;
  mm_operand a, b;
  char *c; /* contiguous [batch, m, n] in ct */
  int accumulate; /* c holds the bias: the product is added to it */
  mm_path path;
  mm_blas_arg blas_a, blas_b;
} mm_problem;

/* ------------------------------------------------------------ operands */

/* Reads view v as the left (a) or right (b) operand: a 1-D a is one row, a
 * 1-D b one column. */
static void operand_init(mm_operand *op, const mti_view *v, int is_left, int nb,
                         const int64_t *bshape) {
  int nd = v->ndim;
  int vbatch = nd >= 2 ? nd - 2 : 0;
  op->data = (char *)v->data;
  if (nd == 1 && is_left) {
    op->rows = 1, op->cols = v->shape[0];
    op->rs = op->cols, op->cs = v->strides[0];
  } else if (nd == 1) {
    op->rows = v->shape[0], op->cols = 1;
    op->rs = v->strides[0], op->cs = 1;
  } else {
    op->rows = v->shape[nd - 2], op->cols = v->shape[nd - 1];
    op->rs = v->strides[nd - 2], op->cs = v->strides[nd - 1];
  }
  for (int d = 0; d < nb; d++) {
    int vd = d - (nb - vbatch);
    int broadcast = vd < 0 || v->shape[vd] != bshape[d] || bshape[d] == 1;
    op->bstride[d] = broadcast ? 0 : v->strides[vd];
  }
}

/* The bytes of a staged copy of v in dtype dt (at least one). */
static size_t staged_bytes(const mti_view *v, mt_dtype dt) {
  size_t bytes = (size_t)mti_shape_numel(v->ndim, v->shape) * mt_dtype_size(dt);
  return bytes ? bytes : 1;
}

/* A contiguous copy of v converted to dtype dt, in *buf (the caller gives
 * it back with mti_host_free(*buf, staged_bytes(v, dt))). From the host
 * buffer cache: a float16/bfloat16 product stages both operands and its
 * result every call, and fresh pages would fault in each time. */
static mt_status stage(const mti_view *v, mt_dtype dt, mti_view *staged, void **buf) {
  size_t bytes = staged_bytes(v, dt);
  *buf = mti_host_alloc(bytes);
  if (!*buf) return mti_error_oom(MM_FN, bytes);
  *staged = *v;
  staged->data = *buf;
  staged->dtype = dt;
  mti_shape_contiguous_strides(v->ndim, v->shape, staged->strides);
  return mti_cpu_convert(v, staged);
}

/* ------------------------------------------------------------ BLAS layouts */

/* How BLAS reads a rows x cols matrix with strides (rs, cs) in place:
 * row-major with leading dim rs, or column-major (passed transposed) with
 * leading dim cs. 0 when it cannot: no unit stride, or a row/column stride
 * that is negative, zero or overlapping. */
static int blas_matrix(int64_t rows, int64_t cols, int64_t rs, int64_t cs, mm_blas_arg *arg) {
  if ((cs == 1 || cols == 1) && (rows == 1 || (rs >= cols && rs <= MM_BLAS_MAX))) {
    arg->trans = CblasNoTrans;
    arg->ld = rows == 1 ? cols : rs;
    return 1;
  }
  if ((rs == 1 || rows == 1) && (cols == 1 || (cs >= rows && cs <= MM_BLAS_MAX))) {
    arg->trans = CblasTrans;
    arg->ld = cols == 1 ? rows : cs;
    return 1;
  }
  return 0;
}

/* The increment of a gemv vector of len elements with stride s (gemv refuses
 * 0, and reads negative increments from the other end: staged instead). */
static int blas_vector(int64_t len, int64_t s, mm_blas_arg *arg) {
  arg->trans = CblasNoTrans;
  arg->ld = len == 1 ? 1 : s;
  return len == 1 || (s > 0 && s <= MM_BLAS_MAX);
}

/* Whether BLAS reads operand a / b in place in its role on p->path; sets
 * p->blas_a / p->blas_b. */
static int blas_ready_a(mm_problem *p) {
  const mm_operand *a = &p->a;
  if (p->path == MM_GEMV_B) return blas_vector(a->cols, a->cs, &p->blas_a);
  return blas_matrix(a->rows, a->cols, a->rs, a->cs, &p->blas_a);
}

static int blas_ready_b(mm_problem *p) {
  const mm_operand *b = &p->b;
  if (p->path == MM_GEMV_A) return blas_vector(b->rows, b->rs, &p->blas_b);
  return blas_matrix(b->rows, b->cols, b->rs, b->cs, &p->blas_b);
}

static mm_path choose_path(int64_t m, int64_t n) {
  if (n == 1) return MM_GEMV_A;
  if (m == 1) return MM_GEMV_B;
  return MM_GEMM;
}

/* When b is the same matrix for every batch, a's batches that lie at a
 * constant row stride are one tall matrix: [batch*m, k] @ [k, n] in one BLAS
 * call, writing the contiguous output rows in order. Returns 1 if folded. */
static int fold_batch_into_rows(mm_problem *p) {
  mm_operand *a = &p->a;
  if (p->batch == 1 || !(a->cs == 1 || p->k == 1)) return 0;
  for (int d = 0; d < p->nb; d++)
    if (p->b.bstride[d] != 0 && p->bshape[d] != 1) return 0;
  int64_t rs = a->rs, expect = p->m * a->rs;
  int rs_free = p->m == 1; /* a one-row matrix has no row stride of its own */
  for (int d = p->nb - 1; d >= 0; d--) {
    if (p->bshape[d] == 1) continue;
    if (rs_free) {
      rs = expect = a->bstride[d];
      rs_free = 0;
    }
    if (a->bstride[d] != expect) return 0;
    expect *= p->bshape[d];
  }
  int64_t rows = p->batch * p->m;
  if (rs < p->k || rs > MM_BLAS_MAX || rows > MM_BLAS_MAX) return 0;
  a->rows = rows, a->rs = rs;
  p->m = rows, p->batch = 1, p->nb = 0;
  return 1;
}

/* ------------------------------------------------------------ running */

/* Element offsets of batch t's matrices in a and b. */
static void batch_offsets(const mm_problem *p, int64_t t, int64_t *oa, int64_t *ob) {
  int64_t ra = 0, rb = 0;
  for (int d = p->nb - 1; d >= 0; d--) {
    int64_t i = t % p->bshape[d];
    t /= p->bshape[d];
    ra += i * p->a.bstride[d];
    rb += i * p->b.bstride[d];
  }
  *oa = ra, *ob = rb;
}

/* c = op(a) op(b) + beta c, beta 0 or 1 (accumulating onto a bias). */
static void gemm(mt_dtype ct, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n,
                 int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb, void *c,
                 int beta) {
  if (ct == MT_FLOAT32)
    cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                (const float *)a, (blasint)lda, (const float *)b, (blasint)ldb, (float)beta,
                (float *)c, (blasint)n);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, 1.0,
                (const double *)a, (blasint)lda, (const double *)b, (blasint)ldb, (double)beta,
                (double *)c, (blasint)n);
}

/* y[0..len) = op(A) x + beta y with A rows x cols row-major (ld). With beta
 * 0, y is zeroed first so that no garbage in it (NaN) can leak through
 * gemv's beta scaling. */
static void gemv(mt_dtype ct, CBLAS_TRANSPOSE t, int64_t rows, int64_t cols, const void *a,
                 int64_t ld, const void *x, int64_t incx, void *y, size_t es, int beta) {
  int64_t len = t == CblasNoTrans ? rows : cols;
  if (!beta) memset(y, 0, (size_t)len * es);
  if (ct == MT_FLOAT32)
    cblas_sgemv(CblasRowMajor, t, (blasint)rows, (blasint)cols, 1.0f, (const float *)a,
                (blasint)ld, (const float *)x, (blasint)incx, 1.0f, (float *)y, 1);
  else
    cblas_dgemv(CblasRowMajor, t, (blasint)rows, (blasint)cols, 1.0, (const double *)a,
                (blasint)ld, (const double *)x, (blasint)incx, 1.0, (double *)y, 1);
}

/* One batch entry through BLAS. A transposed-layout matrix in a gemv is
 * passed as its row-major transpose with the opposite op. */
static void blas_batch(const mm_problem *p, int64_t t) {
  int64_t oa, ob;
  batch_offsets(p, t, &oa, &ob);
  const char *a = p->a.data + oa * (int64_t)p->es;
  const char *b = p->b.data + ob * (int64_t)p->es;
  char *c = p->c + t * p->m * p->n * (int64_t)p->es;
  const mm_blas_arg *la = &p->blas_a, *lb = &p->blas_b;
  int beta = p->accumulate;
  switch (p->path) {
  case MM_GEMM:
    gemm(p->ct, la->trans, lb->trans, p->m, p->n, p->k, a, la->ld, b, lb->ld, c, beta);
    break;
  case MM_GEMV_A: /* c = a b */
    if (la->trans == CblasNoTrans)
      gemv(p->ct, CblasNoTrans, p->m, p->k, a, la->ld, b, lb->ld, c, p->es, beta);
    else
      gemv(p->ct, CblasTrans, p->k, p->m, a, la->ld, b, lb->ld, c, p->es, beta);
    break;
  case MM_GEMV_B: /* c = b^T a */
    if (lb->trans == CblasNoTrans)
      gemv(p->ct, CblasTrans, p->k, p->n, b, lb->ld, a, la->ld, c, p->es, beta);
    else
      gemv(p->ct, CblasNoTrans, p->n, p->k, b, lb->ld, a, la->ld, c, p->es, beta);
    break;
  }
}

/* The batch entries run in turn, each BLAS call threaded by OpenBLAS itself
 * when it is large enough. Running small calls side by side on OpenMP threads
 * was measured slower and erratic here: concurrent OpenBLAS calls contend for
 * its buffer pool. */
static void run_blas(const mm_problem *p) {
  int saved = mti_cpu_blas_enter();
  for (int64_t t = 0; t < p->batch; t++) blas_batch(p, t);
  mti_cpu_blas_leave(saved);
}

/* ------------------------------------------------------------ plain kernels */

/* Integer, bool and out-of-BLAS-range float products: rows [i0, i1) of one
 * batch entry, c[i, :] = sum over k of a[i, k] * b[k, :], with b's rows unit
 * stride. Blocked so that a K_BLOCK x COL_BLOCK panel of b stays in cache
 * while it serves every row. Integers compute in unsigned types of the same
 * width (wrap-around without undefined behaviour); W is the type products are
 * taken in, wide enough that no promotion to int can overflow. */
#define MM_COL_BLOCK 512
#define MM_K_BLOCK 128
#define MM_ROW_BLOCK 32

typedef void (*mm_plain_fn)(const char *a, int64_t rsa, int64_t csa, const char *b, int64_t rsb,
                            char *c, int64_t i0, int64_t i1, int64_t n, int64_t k,
                            int accumulate);

#define MM_MULADD(c, a, b) ((c) + (a) * (b))
#define MM_ORAND(c, a, b) ((c) | ((a) & (b)))

#define MM_PLAIN_KERNEL(NAME, T, W, UPDATE)                                                   \
  MTI_SIMD_CLONES static void NAME(const char *a, int64_t rsa, int64_t csa, const char *b,   \
                                   int64_t rsb, char *c, int64_t i0, int64_t i1, int64_t n,  \
                                   int64_t k, int accumulate) {                               \
    const T *restrict A = (const T *)a;                                                       \
    const T *restrict B = (const T *)b;                                                       \
    T *restrict C = (T *)c;                                                                   \
    for (int64_t j0 = 0; j0 < n; j0 += MM_COL_BLOCK) {                                        \
      int64_t j1 = n - j0 < MM_COL_BLOCK ? n : j0 + MM_COL_BLOCK;                             \
      for (int64_t i = i0; i < i1 && !accumulate; i++)                                        \
        for (int64_t j = j0; j < j1; j++) C[i * n + j] = 0;                                   \
      for (int64_t k0 = 0; k0 < k; k0 += MM_K_BLOCK) {                                        \
        int64_t k1 = k - k0 < MM_K_BLOCK ? k : k0 + MM_K_BLOCK;                               \
        for (int64_t i = i0; i < i1; i++) {                                                   \
          T *ci = C + i * n;                                                                  \
          for (int64_t kk = k0; kk < k1; kk++) {                                              \
            const W av = (W)A[i * rsa + kk * csa];                                            \
            const T *bk = B + kk * rsb;                                                       \
            for (int64_t j = j0; j < j1; j++) ci[j] = (T)UPDATE((W)ci[j], av, (W)bk[j]);      \
          }                                                                                   \
        }                                                                                     \
      }                                                                                       \
    }                                                                                         \
  }

MM_PLAIN_KERNEL(plain_u8, uint8_t, uint32_t, MM_MULADD)
MM_PLAIN_KERNEL(plain_u16, uint16_t, uint32_t, MM_MULADD)
MM_PLAIN_KERNEL(plain_u32, uint32_t, uint32_t, MM_MULADD)
MM_PLAIN_KERNEL(plain_u64, uint64_t, uint64_t, MM_MULADD)
MM_PLAIN_KERNEL(plain_f32, float, float, MM_MULADD)
MM_PLAIN_KERNEL(plain_f64, double, double, MM_MULADD)
MM_PLAIN_KERNEL(plain_bool, uint8_t, uint32_t, MM_ORAND)

static mm_plain_fn plain_kernel(mt_dtype ct) {
  switch (ct) {
  case MT_BOOL: return plain_bool;
  case MT_UINT8:
  case MT_INT8: return plain_u8;
  case MT_INT16: return plain_u16;
  case MT_INT32: return plain_u32;
  case MT_FLOAT32: return plain_f32;
  case MT_FLOAT64: return plain_f64;
  default: return plain_u64;
  }
}

static void run_plain(const mm_problem *p) {
  mm_plain_fn kernel = plain_kernel(p->ct);
  int64_t row_blocks = (p->m + MM_ROW_BLOCK - 1) / MM_ROW_BLOCK;
  int64_t items = p->batch * row_blocks;
  int64_t es = (int64_t)p->es;
  int parallel = (double)p->batch * (double)p->m * (double)p->n * (double)p->k >= MM_PARALLEL_MIN;
#pragma omp parallel for schedule(dynamic) if (parallel) num_threads(mti_cpu_threads())
  for (int64_t it = 0; it < items; it++) {
    int64_t t = it / row_blocks, i0 = it % row_blocks * MM_ROW_BLOCK;
    int64_t i1 = p->m - i0 < MM_ROW_BLOCK ? p->m : i0 + MM_ROW_BLOCK;
    int64_t oa, ob;
    batch_offsets(p, t, &oa, &ob);
    kernel(p->a.data + oa * es, p->a.rs, p->a.cs, p->b.data + ob * es, p->b.rs,
           p->c + t * p->m * p->n * es, i0, i1, p->n, p->k, p->accumulate);
  }
}

/* ------------------------------------------------------------ driver */

static mt_dtype compute_dtype_of(mt_dtype out) {
  return out == MT_FLOAT16 || out == MT_BFLOAT16 ? MT_FLOAT32 : out;
}

static void problem_init(mm_problem *p, const mti_view *a, const mti_view *b,
                         const mti_view *out) {
  p->ct = compute_dtype_of(out->dtype);
  p->es = mt_dtype_size(p->ct);
  p->nb = out->ndim - (a->ndim > 1) - (b->ndim > 1);
  p->batch = 1;
  for (int d = 0; d < p->nb; d++) {
    p->bshape[d] = out->shape[d];
    p->batch *= out->shape[d];
  }
  operand_init(&p->a, a, 1, p->nb, p->bshape);
  operand_init(&p->b, b, 0, p->nb, p->bshape);
  p->m = p->a.rows, p->k = p->a.cols, p->n = p->b.cols;
}

/* Picks the path and stages the operands BLAS cannot read in place or whose
 * dtype is not ct. staged[] receives the buffers to free. */
static mt_status prepare_blas(mm_problem *p, const mti_view *a, const mti_view *b,
                              void *staged[2]) {
  mti_view sv;
  mt_status st;
  p->path = choose_path(p->m, p->n);
  if (a->dtype != p->ct || !blas_ready_a(p)) {
    if ((st = stage(a, p->ct, &sv, &staged[0])) != MT_OK) return st;
    operand_init(&p->a, &sv, 1, p->nb, p->bshape);
  }
  if (b->dtype != p->ct || !blas_ready_b(p)) {
    if ((st = stage(b, p->ct, &sv, &staged[1])) != MT_OK) return st;
    operand_init(&p->b, &sv, 0, p->nb, p->bshape);
  }
  /* Folding keeps b's role and leaves a in a layout BLAS reads; a staged
   * operand is contiguous, which BLAS reads in any role. */
  if (fold_batch_into_rows(p)) p->path = choose_path(p->m, p->n);
  blas_ready_a(p);
  blas_ready_b(p);
  return MT_OK;
}

/* The plain kernels read a with any strides and b with unit-stride rows. */
static mt_status prepare_plain(mm_problem *p, const mti_view *a, const mti_view *b,
                               void *staged[2]) {
  mti_view sv;
  mt_status st;
  if (a->dtype != p->ct) {
    if ((st = stage(a, p->ct, &sv, &staged[0])) != MT_OK) return st;
    operand_init(&p->a, &sv, 1, p->nb, p->bshape);
  }
  if (b->dtype != p->ct || (p->b.cs != 1 && p->n > 1)) {
    if ((st = stage(b, p->ct, &sv, &staged[1])) != MT_OK) return st;
    operand_init(&p->b, &sv, 0, p->nb, p->bshape);
  }
  return MT_OK;
}

/* Fills the contiguous ct buffer c (out's shape) with bias broadcast over
 * out's rows: the product's starting value. */
static mt_status fill_bias(const mti_view *bias, const mti_view *out, mt_dtype ct, void *c) {
  mti_view src = *out, dst = *out;
  src.data = bias->data;
  src.dtype = bias->dtype;
  for (int d = 0; d < out->ndim; d++) src.strides[d] = 0;
  src.strides[out->ndim - 1] = bias->strides[0];
  dst.data = c;
  dst.dtype = ct;
  mti_shape_contiguous_strides(out->ndim, out->shape, dst.strides);
  return mti_cpu_convert(&src, &dst);
}

/* The length of k's pieces (run_pieces). */
static int64_t k_piece(const mm_problem *p) {
  double per = MM_PIECE_WORK / ((double)p->batch * (double)p->m * (double)p->n);
  if (per < MM_PIECE_K_MIN) per = MM_PIECE_K_MIN;
  return per >= (double)p->k ? p->k : (int64_t)per;
}

/* Elements [k0, k0 + len) of an operand's inner dimension: a's last dim,
 * b's rows (its only dim when it is 1-D). */
static mti_view slice_k(const mti_view *v, int is_left, int64_t k0, int64_t len) {
  mti_view s = *v;
  int d = is_left || v->ndim == 1 ? v->ndim - 1 : v->ndim - 2;
  s.data = (char *)v->data + k0 * v->strides[d] * (int64_t)mt_dtype_size(v->dtype);
  s.shape[d] = len;
  return s;
}

/* Stages what p's path needs of a and b, then runs p. */
static mt_status run_piece(mm_problem *p, const mti_view *a, const mti_view *b, int use_blas) {
  void *staged[2] = {NULL, NULL};
  mt_status st = use_blas ? prepare_blas(p, a, b, staged) : prepare_plain(p, a, b, staged);
  if (st == MT_OK && use_blas) run_blas(p);
  else if (st == MT_OK) run_plain(p);
  if (staged[0]) mti_host_free(staged[0], staged_bytes(a, p->ct));
  if (staged[1]) mti_host_free(staged[1], staged_bytes(b, p->ct));
  return st;
}

/* Runs the product p of a and b (p->c and p->accumulate set) in pieces
 * along k that each accumulate onto the one before (beta = 1). Between
 * pieces the caller's stop flag is looked at (cpu/stop.h), and an operand
 * that must be staged is staged a piece at a time, so a long or broadcast
 * (stride 0) inner dimension is never copied whole. Most products are one
 * piece, run as p itself. */
static mt_status run_pieces(mm_problem *p, const mti_view *a, const mti_view *b,
                            const mti_view *out, int use_blas) {
  int64_t piece = k_piece(p);
  if (piece == p->k) return run_piece(p, a, b, use_blas);
  mt_status st = MT_OK;
  for (int64_t k0 = 0; k0 < p->k && st == MT_OK && !mti_cpu_stopped(); k0 += piece) {
    int64_t len = p->k - k0 < piece ? p->k - k0 : piece;
    mti_view ap = slice_k(a, 1, k0, len), bp = slice_k(b, 0, k0, len);
    mm_problem q;
    problem_init(&q, &ap, &bp, out);
    q.c = p->c;
    q.accumulate = p->accumulate || k0 > 0;
    st = run_piece(&q, &ap, &bp, use_blas);
  }
  return st;
}

/* out = a @ b (+ bias broadcast over out's rows when bias is not NULL). A
 * staged operand is a contiguous copy of (a piece of) that operand alone
 * (never of its broadcast), made only for a dtype change or a layout BLAS
 * cannot read. float16/bfloat16 results are computed in a float32 buffer
 * and rounded into out at the end. */
static mt_status product(const mti_view *a, const mti_view *b, const mti_view *bias,
                         const mti_view *out) {
  int64_t out_numel = mti_shape_numel(out->ndim, out->shape);
  if (out_numel == 0) return MT_OK;
  mm_problem p;
  problem_init(&p, a, b, out);
  if (p.k == 0 && !bias) {
    memset(out->data, 0, (size_t)out_numel * mt_dtype_size(out->dtype));
    return MT_OK;
  }
  void *c_buf = NULL;
  int use_blas = (p.ct == MT_FLOAT32 || p.ct == MT_FLOAT64) && p.m <= MM_BLAS_MAX &&
                 p.n <= MM_BLAS_MAX && p.k <= MM_BLAS_MAX;
  mt_status st = MT_OK;
  if (p.ct != out->dtype) {
    size_t bytes = (size_t)out_numel * p.es;
    c_buf = mti_host_alloc(bytes);
    if (!c_buf) st = mti_error_oom(MM_FN, bytes);
  }
  p.c = c_buf ? (char *)c_buf : (char *)out->data;
  p.accumulate = bias != NULL;
  if (st == MT_OK && bias) st = fill_bias(bias, out, p.ct, p.c);
  if (st == MT_OK && p.k > 0) st = run_pieces(&p, a, b, out, use_blas);
  if (st == MT_OK && c_buf) {
    mti_view c_view = *out;
    c_view.data = c_buf;
    c_view.dtype = p.ct;
    mti_shape_contiguous_strides(out->ndim, out->shape, c_view.strides);
    st = mti_cpu_convert(&c_view, out);
  }
  if (c_buf) mti_host_free(c_buf, (size_t)out_numel * p.es);
  return st;
}

mt_status mti_cpu_matmul(const mti_view *a, const mti_view *b, const mti_view *out) {
  return product(a, b, NULL, out);
}

/* x @ weight^T (+ bias): the weight's transpose is a view (its strides
 * swapped), which BLAS reads in place with the opposite op. */
mt_status mti_cpu_linear(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  mti_view wt = in[1];
  wt.shape[0] = in[1].shape[1], wt.shape[1] = in[1].shape[0];
  wt.strides[0] = in[1].strides[1], wt.strides[1] = in[1].strides[0];
  int has_bias = (at->flags & MTI_FLAG_PRESENT(2)) != 0;
  return product(&in[0], &wt, has_bias ? &in[2] : NULL, out);
}
