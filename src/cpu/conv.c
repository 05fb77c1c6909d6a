/*
 * conv.c - torch's conv1d/conv2d on host memory (CONV).
 *
 * Computed in float32 (float16, bfloat16, float32) or float64. For each
 * image n and group g, out[n, g] ([O/G, OH*OW]) = W_g ([O/G, K]) x col
 * ([K, OH*OW]), K = C/G * kh * kw, through BLAS, where col is the im2col
 * of the group's input channels. Paths:
 *   - 1x1 kernel, stride 1, no padding: col is the input itself (no copy),
 *     one GEMM per image and group, the bias written into out first and
 *     the GEMM adding to it (beta = 1);
 *   - one input channel per group in several groups (depthwise): a direct
 *     loop per output plane, since its GEMM would have K = kh * kw and one
 *     row per group;
 *   - otherwise im2col for a chunk of images at a time, the chunk bounded
 *     by CONV_WORKSPACE bytes (one image at least), so a big batch does
 *     not allocate batch x col bytes.
 * conv1d is a conv2d with H = 1 (core/conv_rules.h).
 *
 * A chunk's columns are laid out [groups][K][count * P], and the output
 * (or dy) by channel [O][count * P], so that each group is one GEMM over
 * every image of the chunk: per image, small images (8x8: P = 64) make
 * GEMMs too small to pay for BLAS's threads (the forward spent most of its
 * time waking them). The output goes back to [N, O, P] with the bias added
 * in the same pass. The backward (CONV_GRAD, run by the autograd's
 * grad_conv) uses the same layouts:
 *   - input gradient: d col_g = W_g^T x dy_g, then col2im (each tap's row
 *     added back where im2col read it), one (image, channel) plane per task;
 *   - weight gradient: dW_g += dy_g x col_g^T, accumulated over chunks.
 */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/conv_rules.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cpu/cpu_kernels.h"
#include "cpu/stop.h"
#include "cpu/rows.h"

/* Most bytes of im2col columns held at once (more when one image needs more). */
#define CONV_WORKSPACE ((size_t)32 << 20)

/* Largest GEMM dimension BLAS takes. */
#define BLAS_DIM_MAX ((int64_t)(sizeof(blasint) >= 8 ? INT64_MAX : INT32_MAX))

/* Elements of im2col (or direct-loop) work per thread below which a region
 * does not pay. */
#define CONV_MIN_PER_THREAD ((int64_t)16384)

typedef struct conv_problem {
  const char *fn; /* "mt_conv2d" */
  mti_conv_geom g;
  mt_dtype ct; /* compute dtype: float32 or float64 */
  size_t es;
  int64_t cg, og, k, p; /* channels and out channels per group, taps per row, pixels */
  const char *x, *w, *bias; /* contiguous in ct; bias NULL when absent */
  char *y;                  /* contiguous [n, o, oh, ow] in ct */
  /* the backward (CONV_GRAD): dy [n, o, oh, ow] and the gradient, dx [n, c, h, w] or dw [o,
   * c / groups, kh, kw], contiguous in ct; w is read by the input's, x by the weight's */
  const char *dy;
  char *grad;
} conv_problem;

/* One operand of conv_gemm: row-major with leading dim ld, read transposed
 * when trans. */
typedef struct gemm_operand {
  const void *data;
  int64_t ld;
  int trans;
} gemm_operand;

/* c [m, n] (row-major, leading dim ldc) = op(a) [m, k] x op(b) [k, n] + beta c. */
static void conv_gemm(mt_dtype ct, int64_t m, int64_t n, int64_t k, gemm_operand a,
                      gemm_operand b, int beta, void *c, int64_t ldc) {
  CBLAS_TRANSPOSE ta = a.trans ? CblasTrans : CblasNoTrans;
  CBLAS_TRANSPOSE tb = b.trans ? CblasTrans : CblasNoTrans;
  if (ct == MT_FLOAT32)
    cblas_sgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, 1.0f,
                (const float *)a.data, (blasint)a.ld, (const float *)b.data, (blasint)b.ld,
                beta ? 1.0f : 0.0f, (float *)c, (blasint)ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (blasint)m, (blasint)n, (blasint)k, 1.0,
                (const double *)a.data, (blasint)a.ld, (const double *)b.data, (blasint)b.ld,
                beta ? 1.0 : 0.0, (double *)c, (blasint)ldc);
}

/* dst[i] = src[i] + bias[o] (src NULL: 0) over one output plane of P. */
static void plane_plus_bias(const conv_problem *q, char *dst, const char *src, int64_t o) {
  if (!q->bias) {
    if (src)
      memcpy(dst, src, (size_t)q->p * q->es);
    else
      memset(dst, 0, (size_t)q->p * q->es);
  } else if (q->ct == MT_FLOAT32) {
    float b = ((const float *)q->bias)[o], *d = (float *)dst;
    const float *v = (const float *)src;
    for (int64_t i = 0; i < q->p; i++) d[i] = v ? v[i] + b : b;
  } else {
    double b = ((const double *)q->bias)[o], *d = (double *)dst;
    const double *v = (const double *)src;
    for (int64_t i = 0; i < q->p; i++) d[i] = v ? v[i] + b : b;
  }
}

/* Every output plane starts as its channel's bias. */
static void fill_bias(const conv_problem *q) {
  int64_t planes = q->g.n * q->g.o;
  int nt = mti_cpu_threads_for(planes * q->p, CONV_MIN_PER_THREAD);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < planes; t++)
    plane_plus_bias(q, q->y + t * q->p * (int64_t)q->es, NULL, t % q->g.o);
}

/* ------------------------------------------------------------ im2col */

/* Row (c, ki, kj) of the columns of one image's group: the tap's input
 * pixel for every output pixel, 0 where it falls in the padding. Typed
 * loops rather than memcpy/memset per output row: at 8x8 images those
 * calls on 8 elements were most of im2col's time. */
#define IM2COL_ROW(T)                                                                       \
  static void im2col_row_##T(const mti_conv_geom *g, const T *plane, int64_t ki, int64_t kj, \
                             T *row) {                                                      \
    int64_t oh_lo, oh_hi, ow_lo, ow_hi;                                                     \
    int64_t offh = ki * g->dh - g->ph, offw = kj * g->dw - g->pw;                           \
    mti_window_valid(g->oh, g->h, g->sh, offh, &oh_lo, &oh_hi);                             \
    mti_window_valid(g->ow, g->w, g->sw, offw, &ow_lo, &ow_hi);                             \
    for (int64_t oh = 0; oh < g->oh; oh++) {                                                \
      T *dst = row + oh * g->ow;                                                            \
      int inside = oh >= oh_lo && oh < oh_hi;                                               \
      int64_t lo = inside ? ow_lo : g->ow, hi = inside ? ow_hi : g->ow;                     \
      const T *src = inside ? plane + (oh * g->sh + offh) * g->w + offw : plane;            \
      for (int64_t ow = 0; ow < lo; ow++) dst[ow] = 0;                                      \
      for (int64_t ow = lo; ow < hi; ow++) dst[ow] = src[ow * g->sw];                       \
      for (int64_t ow = hi; ow < g->ow; ow++) dst[ow] = 0;                                  \
    }                                                                                       \
  }
IM2COL_ROW(float)
IM2COL_ROW(double)
#undef IM2COL_ROW

/* Planes up to this many bytes, zero padded, fit a stack buffer: their taps
 * are then plain strided copies, without the window bounds per row (which
 * cost more than the copies on 8x8 images). */
#define PADDED_PLANE_BYTES 32768

/* GCC turns short copy loops into memcpy calls, which cost more than
 * copying 8 elements. */
#if defined(__GNUC__) && !defined(__clang__)
#define INLINE_COPIES __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define INLINE_COPIES
#endif

/* All kh * kw rows of one input plane, from its zero padded copy in pad;
 * tap t's row at dst + t * tap_stride. */
#define IM2COL_PLANE(T)                                                                     \
  INLINE_COPIES static void im2col_plane_##T(const mti_conv_geom *g, const T *plane, T *pad, T *dst,      \
                               int64_t tap_stride) {                                        \
    int64_t wp = g->w + 2 * g->pw, hp = g->h + 2 * g->ph;                                   \
    for (int64_t i = 0; i < hp * wp; i++) pad[i] = 0;                                       \
    for (int64_t h = 0; h < g->h; h++)                                                      \
      for (int64_t w = 0; w < g->w; w++) pad[(h + g->ph) * wp + g->pw + w] = plane[h * g->w + w]; \
    for (int64_t ki = 0; ki < g->kh; ki++)                                                  \
      for (int64_t kj = 0; kj < g->kw; kj++, dst += tap_stride)                             \
        for (int64_t oh = 0; oh < g->oh; oh++) {                                            \
          const T *src = pad + (oh * g->sh + ki * g->dh) * wp + kj * g->dw;                 \
          T *row = dst + oh * g->ow;                                                        \
          if (g->sw == 1)                                                                   \
            for (int64_t ow = 0; ow < g->ow; ow++) row[ow] = src[ow];                       \
          else                                                                              \
            for (int64_t ow = 0; ow < g->ow; ow++) row[ow] = src[ow * g->sw];               \
        }                                                                                   \
  }
IM2COL_PLANE(float)
IM2COL_PLANE(double)
#undef IM2COL_PLANE
#undef INLINE_COPIES

/* Columns of images [n0, n0 + count) as [groups][K][count P]: row (c,
 * tap) (c over all groups, so group g's K rows start at row g K) holds
 * that tap for every pixel of every image, image n at n P. Small planes go
 * through a padded copy, one plane per task; larger ones row by row. */
static void im2col(const conv_problem *q, int64_t n0, int64_t count, char *col) {
  const mti_conv_geom *g = &q->g;
  int64_t khw = g->kh * g->kw, rows = count * g->c * khw, es = (int64_t)q->es;
  int nt = mti_cpu_threads_for(rows * q->p, CONV_MIN_PER_THREAD);
  int64_t padded = (g->h + 2 * g->ph) * (g->w + 2 * g->pw) * es;
  if (padded <= PADDED_PLANE_BYTES) {
    int64_t planes = count * g->c, tap_stride = count * q->p;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t t = 0; t < planes; t++) {
      _Alignas(64) char pad[PADDED_PLANE_BYTES];
      int64_t n = t / g->c, c = t % g->c;
      const char *src = q->x + (n0 * g->c + t) * g->h * g->w * es;
      char *dst = col + (c * khw * count + n) * q->p * es;
      if (q->ct == MT_FLOAT32)
        im2col_plane_float(g, (const float *)src, (float *)pad, (float *)dst, tap_stride);
      else
        im2col_plane_double(g, (const double *)src, (double *)pad, (double *)dst, tap_stride);
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t r = 0; r < rows; r++) {
    int64_t tap = r % khw, plane = r / khw; /* plane: image n0 + plane / C, channel plane % C */
    int64_t n = plane / g->c, row = r - n * g->c * khw;
    const char *src = q->x + (n0 * g->c + plane) * g->h * g->w * es;
    char *dst = col + (row * count + n) * q->p * es;
    if (q->ct == MT_FLOAT32)
      im2col_row_float(g, (const float *)src, tap / g->kw, tap % g->kw, (float *)dst);
    else
      im2col_row_double(g, (const double *)src, tap / g->kw, tap % g->kw, (double *)dst);
  }
}

/* Images per chunk: its columns and its output (or dy) by channel, both
 * [rows][count P], within CONV_WORKSPACE bytes (one image at least). */
static int64_t chunk_images(const conv_problem *q) {
  size_t per_image = (size_t)((q->g.c * q->g.kh * q->g.kw + q->g.o) * q->p) * q->es;
  int64_t chunk = (int64_t)(CONV_WORKSPACE / per_image);
  if (chunk < 1) chunk = 1;
  return chunk > q->g.n ? q->g.n : chunk;
}

/* [N][O][P] planes of images [n0, n0 + count) (src) as [O][count P]: each
 * channel's planes of every image side by side, the columns' layout. */
static void images_to_channels(const conv_problem *q, const char *src, int64_t n0,
                               int64_t count, char *dst) {
  int64_t planes = q->g.o * count, bytes = q->p * (int64_t)q->es;
  int nt = mti_cpu_threads_for(planes * q->p, CONV_MIN_PER_THREAD);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < planes; t++) {
    int64_t o = t / count, n = t % count;
    memcpy(dst + t * bytes, src + ((n0 + n) * q->g.o + o) * bytes, (size_t)bytes);
  }
}

/* The inverse for the output: [O][count P] back into y's [N][O][P] planes
 * of images [n0, n0 + count), each plus its channel's bias. */
static void channels_to_images(const conv_problem *q, const char *src, int64_t n0,
                               int64_t count) {
  int64_t planes = q->g.o * count, bytes = q->p * (int64_t)q->es;
  int nt = mti_cpu_threads_for(planes * q->p, CONV_MIN_PER_THREAD);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < planes; t++) {
    int64_t o = t / count, n = t % count;
    plane_plus_bias(q, q->y + ((n0 + n) * q->g.o + o) * bytes, src + t * bytes, o);
  }
}

/* ------------------------------------------------------------ paths */

/* 1x1, stride 1, no padding: each image's group of x is already its
 * columns [C/G, H*W]; out[n, g] += W_g x them (out holds the bias or is
 * overwritten). */
static void run_pointwise(const conv_problem *q) {
  int64_t es = (int64_t)q->es, plane = q->g.h * q->g.w;
  for (int64_t n = 0; n < q->g.n; n++)
    for (int64_t grp = 0; grp < q->g.groups; grp++) {
      const char *a = q->w + grp * q->og * q->k * es;
      const char *b = q->x + (n * q->g.c + grp * q->cg) * plane * es;
      char *c = q->y + (n * q->g.o + grp * q->og) * q->p * es;
      conv_gemm(q->ct, q->og, q->p, q->k, (gemm_operand){a, q->k, 0},
                (gemm_operand){b, q->p, 0}, q->bias != NULL, c, q->p);
    }
}

/* Per chunk of images and group: y_g [Og, count P] = W_g [Og, K] x col_g
 * [K, count P], one GEMM over the chunk's images (one per image would be
 * too small to pay for BLAS's threads at small sizes), then back to [N, O,
 * P] with the bias added. */
static mt_status run_im2col(const conv_problem *q) {
  int64_t chunk = chunk_images(q), es = (int64_t)q->es;
  size_t col_bytes = (size_t)(q->g.c * q->g.kh * q->g.kw * chunk * q->p * es);
  size_t bytes = col_bytes + (size_t)(q->g.o * chunk * q->p * es);
  char *col = malloc(bytes);
  if (!col) return mti_error_oom(q->fn, bytes);
  char *y_t = col + col_bytes;
  for (int64_t n0 = 0; n0 < q->g.n && !mti_cpu_stopped(); n0 += chunk) {
    int64_t count = q->g.n - n0 < chunk ? q->g.n - n0 : chunk, np = count * q->p;
    im2col(q, n0, count, col);
    int saved = mti_cpu_blas_enter();
    for (int64_t grp = 0; grp < q->g.groups; grp++)
      conv_gemm(q->ct, q->og, np, q->k, (gemm_operand){q->w + grp * q->og * q->k * es, q->k, 0},
                (gemm_operand){col + grp * q->k * np * es, np, 0}, 0,
                y_t + grp * q->og * np * es, np);
    mti_cpu_blas_leave(saved);
    channels_to_images(q, y_t, n0, count);
  }
  free(col);
  return MT_OK;
}

/* One output plane of a one-channel-per-group conv: every tap adds its
 * weight times the shifted input rows (the plane holds the bias or 0). */
#define DEPTHWISE_PLANE(T)                                                                  \
  static void depthwise_plane_##T(const conv_problem *q, int64_t n, int64_t o) {            \
    const mti_conv_geom *g = &q->g;                                                         \
    const T *x = (const T *)q->x + (n * g->c + o / q->og) * g->h * g->w;                    \
    const T *w = (const T *)q->w + o * g->kh * g->kw;                                       \
    T *y = (T *)q->y + (n * g->o + o) * q->p;                                               \
    if (!q->bias) memset(y, 0, (size_t)q->p * sizeof(T));                                   \
    for (int64_t ki = 0; ki < g->kh; ki++)                                                  \
      for (int64_t kj = 0; kj < g->kw; kj++) {                                              \
        int64_t offh = ki * g->dh - g->ph, offw = kj * g->dw - g->pw, h0, h1, w0, w1;       \
        mti_window_valid(g->oh, g->h, g->sh, offh, &h0, &h1);                               \
        mti_window_valid(g->ow, g->w, g->sw, offw, &w0, &w1);                               \
        T wv = w[ki * g->kw + kj];                                                          \
        for (int64_t oh = h0; oh < h1; oh++) {                                              \
          const T *src = x + (oh * g->sh + offh) * g->w + offw;                             \
          T *dst = y + oh * g->ow;                                                          \
          if (g->sw == 1)                                                                   \
            for (int64_t ow = w0; ow < w1; ow++) dst[ow] += wv * src[ow];                   \
          else                                                                              \
            for (int64_t ow = w0; ow < w1; ow++) dst[ow] += wv * src[ow * g->sw];           \
        }                                                                                   \
      }                                                                                     \
  }
DEPTHWISE_PLANE(float)
DEPTHWISE_PLANE(double)
#undef DEPTHWISE_PLANE

static void run_depthwise(const conv_problem *q) {
  int64_t planes = q->g.n * q->g.o;
  int nt = mti_cpu_threads_for(planes * q->p * q->k, CONV_MIN_PER_THREAD);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < planes; t++) {
    if (q->ct == MT_FLOAT32)
      depthwise_plane_float(q, t / q->g.o, t % q->g.o);
    else
      depthwise_plane_double(q, t / q->g.o, t % q->g.o);
  }
}

/* ------------------------------------------------------------ driver */

/* mti_infer admitted the node: every count is >= 1 (out is not empty). */
static mt_status conv_compute(conv_problem *q) {
  const mti_conv_geom *g = &q->g;
  int pointwise = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 &&
                  g->pw == 0;
  /* one channel per group takes the direct loop only when there are
   * several groups: a single one (a 1-channel input) is one GEMM over the
   * chunk's images, with K = kh * kw (5x faster on [64, 1, 8, 8]) */
  if ((q->cg > 1 || g->groups == 1) && !pointwise) return run_im2col(q);
  if (q->bias) fill_bias(q);
  if (q->cg == 1) {
    run_depthwise(q);
    return MT_OK;
  }
  int saved = mti_cpu_blas_enter();
  run_pointwise(q);
  mti_cpu_blas_leave(saved);
  return MT_OK;
}

/* q's counts from its geometry and out's dtype (the compute dtype);
 * MT_ERR_UNSUPPORTED when a chunk's GEMM passes BLAS's int range. */
static mt_status problem_init(conv_problem *q, mti_op op, const mti_view *out) {
  q->fn = mti_op_get((int)op)->fn;
  q->ct = out->dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  q->es = mt_dtype_size(q->ct);
  q->cg = q->g.c / q->g.groups, q->og = q->g.o / q->g.groups;
  q->k = q->cg * q->g.kh * q->g.kw, q->p = q->g.oh * q->g.ow;
  int64_t np = chunk_images(q) * q->p;
  if (q->og > BLAS_DIM_MAX || np > BLAS_DIM_MAX || q->k > BLAS_DIM_MAX)
    return mti_error(MT_ERR_UNSUPPORTED, "%s: a GEMM of %lld x %lld x %lld passes BLAS's range",
                     q->fn, (long long)q->og, (long long)np, (long long)q->k);
  return MT_OK;
}

mt_status mti_cpu_conv(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out) {
  int64_t out_numel = mti_shape_numel(out->ndim, out->shape);
  if (out_numel == 0) return MT_OK;
  conv_problem q;
  memset(&q, 0, sizeof q);
  mti_conv_geom_of(op, in[0].shape, in[1].shape, at->ints, &q.g);
  if (problem_init(&q, op, out)) return mt_last_status();
  /* x, weight, bias in ct and contiguous (their own memory when they are), out's room */
  mti_rows rows[4];
  memset(rows, 0, sizeof rows);
  int has_bias = (at->flags & MTI_FLAG_PRESENT(2)) != 0;
  mt_status s = mti_rows_read(q.fn, &in[0], 0, q.ct, &rows[0]);
  if (s == MT_OK) s = mti_rows_read(q.fn, &in[1], 0, q.ct, &rows[1]);
  if (s == MT_OK && has_bias) s = mti_rows_read(q.fn, &in[2], 0, q.ct, &rows[2]);
  if (s == MT_OK) s = mti_rows_for_out(q.fn, out, 0, q.ct, &rows[3]);
  if (s == MT_OK) {
    q.x = rows[0].data, q.w = rows[1].data, q.bias = has_bias ? rows[2].data : NULL;
    q.y = rows[3].data;
    s = conv_compute(&q);
    if (s == MT_OK) s = mti_rows_write_back(&rows[3], out, 0);
  }
  for (int i = 0; i < 4; i++) mti_rows_free(&rows[i]);
  return s;
}

/* ------------------------------------------------------------ backward */

/* Plane (n, c) of dx from the columns' gradient (col2im, [groups][K][count
 * P] as im2col lays them out for the backward): every tap adds its row
 * back where im2col read it, so overlapping taps sum. */
#define COL2IM_PLANE(T)                                                                     \
  static void col2im_plane_##T(const conv_problem *q, const T *col, int64_t count,          \
                               int64_t n, int64_t c, T *plane) {                            \
    const mti_conv_geom *g = &q->g;                                                         \
    int64_t khw = g->kh * g->kw, ld = count * q->p;                                         \
    memset(plane, 0, (size_t)(g->h * g->w) * sizeof(T));                                    \
    for (int64_t tap = 0; tap < khw; tap++) {                                               \
      int64_t ki = tap / g->kw, kj = tap % g->kw, h0, h1, w0, w1;                           \
      int64_t offh = ki * g->dh - g->ph, offw = kj * g->dw - g->pw;                         \
      mti_window_valid(g->oh, g->h, g->sh, offh, &h0, &h1);                                 \
      mti_window_valid(g->ow, g->w, g->sw, offw, &w0, &w1);                                 \
      const T *row = col + (c * khw + tap) * ld + n * q->p;                                 \
      for (int64_t oh = h0; oh < h1; oh++) {                                                \
        T *dst = plane + (oh * g->sh + offh) * g->w + offw;                                 \
        const T *src = row + oh * g->ow;                                                    \
        if (g->sw == 1)                                                                     \
          for (int64_t ow = w0; ow < w1; ow++) dst[ow] += src[ow];                          \
        else                                                                                \
          for (int64_t ow = w0; ow < w1; ow++) dst[ow * g->sw] += src[ow];                  \
      }                                                                                     \
    }                                                                                       \
  }
COL2IM_PLANE(float)
COL2IM_PLANE(double)
#undef COL2IM_PLANE

/* dx of images [n0, n0 + count) from their columns' gradient, one plane per
 * (image, channel) in parallel (planes do not share taps). */
static void col2im(const conv_problem *q, const char *col, int64_t n0, int64_t count) {
  int64_t planes = count * q->g.c, plane = q->g.h * q->g.w;
  int nt = mti_cpu_threads_for(planes * plane * q->g.kh * q->g.kw, CONV_MIN_PER_THREAD);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t t = 0; t < planes; t++) {
    int64_t n = t / q->g.c, c = t % q->g.c, at = (n0 * q->g.c + t) * plane;
    if (q->ct == MT_FLOAT32)
      col2im_plane_float(q, (const float *)col, count, n, c, (float *)q->grad + at);
    else
      col2im_plane_double(q, (const double *)col, count, n, c, (double *)q->grad + at);
  }
}

/* dx: per chunk of images and group, d col_g [K, count P] = w_g^T [K, Og]
 * x dy_g [Og, count P], then col2im. */
static void input_chunk_images(const conv_problem *q, int64_t n0, int64_t count, char *col,
                             char *dy_t) {
  int64_t es = (int64_t)q->es, np = count * q->p;
  images_to_channels(q, q->dy, n0, count, dy_t);
  int saved = mti_cpu_blas_enter();
  for (int64_t grp = 0; grp < q->g.groups; grp++)
    conv_gemm(q->ct, q->k, np, q->og, (gemm_operand){q->w + grp * q->og * q->k * es, q->k, 1},
              (gemm_operand){dy_t + grp * q->og * np * es, np, 0}, 0, col + grp * q->k * np * es,
              np);
  mti_cpu_blas_leave(saved);
  col2im(q, col, n0, count);
}

/* dw: per chunk of images and group, dw_g [Og, K] += dy_g [Og, count P] x
 * col_g^T [count P, K]: one GEMM spans the chunk's images. */
static void weight_chunk_images(const conv_problem *q, int64_t n0, int64_t count, char *col,
                              char *dy_t) {
  int64_t es = (int64_t)q->es, np = count * q->p;
  im2col(q, n0, count, col);
  images_to_channels(q, q->dy, n0, count, dy_t);
  int saved = mti_cpu_blas_enter();
  for (int64_t grp = 0; grp < q->g.groups; grp++)
    conv_gemm(q->ct, q->og, q->k, np, (gemm_operand){dy_t + grp * q->og * np * es, np, 0},
              (gemm_operand){col + grp * q->k * np * es, np, 1}, n0 > 0,
              q->grad + grp * q->og * q->k * es, q->k);
  mti_cpu_blas_leave(saved);
}

static mt_status conv_grad_compute(const conv_problem *q, int input_grad) {
  if (q->g.n == 0 || q->g.o == 0) { /* no dy: a zero gradient */
    int64_t numel = input_grad ? q->g.n * q->g.c * q->g.h * q->g.w : q->g.o * q->k;
    memset(q->grad, 0, (size_t)numel * q->es);
    return MT_OK;
  }
  int64_t chunk = chunk_images(q), es = (int64_t)q->es;
  size_t col_bytes = (size_t)(q->g.c * q->g.kh * q->g.kw * chunk * q->p * es);
  size_t bytes = col_bytes + (size_t)(q->g.o * chunk * q->p * es);
  char *col = malloc(bytes);
  if (!col) return mti_error_oom(q->fn, bytes);
  for (int64_t n0 = 0; n0 < q->g.n && !mti_cpu_stopped(); n0 += chunk) {
    int64_t count = q->g.n - n0 < chunk ? q->g.n - n0 : chunk;
    if (input_grad)
      input_chunk_images(q, n0, count, col, col + col_bytes);
    else
      weight_chunk_images(q, n0, count, col, col + col_bytes);
  }
  free(col);
  return MT_OK;
}

mt_status mti_cpu_conv_grad(mti_op op, const mti_view *in, const mti_attrs *at,
                            const mti_view *out) {
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  int input_grad = op == MTI_OP_CONV2D_INPUT_GRAD;
  conv_problem q;
  memset(&q, 0, sizeof q);
  mti_conv_grad_geom_of(op, in[0].shape, in[1].shape, at->ints, &q.g);
  if (problem_init(&q, op, out)) return mt_last_status();
  /* dy, the weight or x in ct and contiguous (their own memory when they are), out's room */
  mti_rows rows[3];
  memset(rows, 0, sizeof rows);
  mt_status s = mti_rows_read(q.fn, &in[0], 0, q.ct, &rows[0]);
  if (s == MT_OK) s = mti_rows_read(q.fn, &in[1], 0, q.ct, &rows[1]);
  if (s == MT_OK) s = mti_rows_for_out(q.fn, out, 0, q.ct, &rows[2]);
  if (s == MT_OK) {
    q.dy = rows[0].data, q.grad = rows[2].data;
    if (input_grad)
      q.w = rows[1].data;
    else
      q.x = rows[1].data;
    s = conv_grad_compute(&q, input_grad);
    if (s == MT_OK) s = mti_rows_write_back(&rows[2], out, 0);
  }
  for (int i = 0; i < 3; i++) mti_rows_free(&rows[i]);
  return s;
}
