/*
 * softmax.c - softmax, log_softmax and layer_norm.
 *
 * Both work on contiguous rows of the compute dtype (float32, or float64
 * for float64 input): other inputs are staged once with mti_cpu_convert, and
 * float16/bfloat16 results are computed in the staging buffer and converted
 * back at the end. Per row (or per tile of columns when softmax runs along a
 * dim that is not the last) the passes run over data that is in cache:
 * softmax reads max, then exp and sum, then scales; layer_norm reads the
 * mean, then the variance around it (two passes, no cancellation), then
 * normalises. Sums use several SIMD lanes whose block results join double
 * accumulators. Rows, or column tiles, are spread over OpenMP threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "cpu_kernels.h"
#include "cpu_simd.h"
#include "vmath.h"

#define LANES 32        /* independent accumulators: 4 AVX2 vectors of f32 */
#define ROW_BLOCK 1024  /* elements a lane accumulator takes before joining double */
#define SHORT_ROW 64    /* rows shorter than this are handled in groups */
#define COL_MAX 512     /* widest column tile */
#define COL_MIN 64      /* narrowest: a tile reads its rows a few cache lines at a time */
#define COL_BLOCK 64    /* rows a column accumulator takes before joining double */
#define TILE_BYTES (1024 * 1024) /* aim: a column tile of all R rows stays in cache */

/* A NaN operand wins, and stays (v > NaN is false). */
#define OP_MAXF(a, v) ((a) = ((v) > (a) || (v) != (v)) ? (v) : (a))

/* result (double) = sum over ix < n of expression E (which uses ix): for
 * long rows LANES accumulators of type LT per ROW_BLOCK, joined into double
 * lanes; short rows (and the tail) add in double directly. */
#define LANE_SUM(LT, n, E, result)                                   \
  do {                                                               \
    int64_t i_ = 0;                                                  \
    result = 0;                                                      \
    if ((n) >= 2 * LANES) {                                          \
      double wide_[LANES];                                           \
      LT acc_[LANES];                                                \
      for (int j_ = 0; j_ < LANES; j_++) wide_[j_] = 0;              \
      while ((n) - i_ >= LANES) {                                    \
        int64_t end_ = i_ + ((n) - i_) / LANES * LANES;              \
        if (end_ - i_ > ROW_BLOCK) end_ = i_ + ROW_BLOCK;            \
        for (int j_ = 0; j_ < LANES; j_++) acc_[j_] = 0;             \
        for (; i_ < end_; i_ += LANES)                               \
          for (int j_ = 0; j_ < LANES; j_++) {                       \
            int64_t ix = i_ + j_;                                    \
            acc_[j_] += (E);                                         \
          }                                                          \
        for (int j_ = 0; j_ < LANES; j_++) wide_[j_] += acc_[j_];    \
      }                                                              \
      for (int w_ = LANES / 2; w_ > 0; w_ /= 2)                      \
        for (int j_ = 0; j_ < w_; j_++) wide_[j_] += wide_[j_ + w_]; \
      result = wide_[0];                                             \
    }                                                                \
    for (int64_t ix = i_; ix < (n); ix++) result += (E);             \
  } while (0)

/* result = max of x[0..n) (n >= 1) with NaN propagation, in LANES lanes
 * for long rows. */
#define LANE_MAX(T, x, n, result)                                          \
  do {                                                                     \
    int64_t i_ = 1;                                                        \
    result = (x)[0];                                                       \
    if ((n) >= 2 * LANES) {                                                \
      T m_[LANES];                                                         \
      for (int j_ = 0; j_ < LANES; j_++) m_[j_] = (x)[0];                  \
      for (i_ = 0; (n) - i_ >= LANES; i_ += LANES)                         \
        for (int j_ = 0; j_ < LANES; j_++) OP_MAXF(m_[j_], (x)[i_ + j_]);  \
      for (int j_ = 0; j_ < LANES; j_++) OP_MAXF(result, m_[j_]);          \
    }                                                                      \
    for (; i_ < (n); i_++) OP_MAXF(result, (x)[i_]);                       \
  } while (0)

/* The same two for a short row (n >= 1, n < SHORT_ROW): SHORT_LANES lanes
 * so that a row of a few dozen elements is a few vector steps, not a
 * chain of dependent scalar ones; the sum adds in double lanes. The lanes
 * take a plain max, which vectorises (OP_MAXF's || does not): a NaN it
 * skips still makes x - max, and so the row's sum and result, NaN. */
#define SHORT_LANES 8
#define SHORT_MAX(T, x, n, result)                                              \
  do {                                                                          \
    T m_[SHORT_LANES];                                                          \
    int64_t i_ = 0;                                                             \
    for (int j_ = 0; j_ < SHORT_LANES; j_++) m_[j_] = (x)[0];                   \
    for (; (n) - i_ >= SHORT_LANES; i_ += SHORT_LANES)                          \
      for (int j_ = 0; j_ < SHORT_LANES; j_++) {                                \
        T v_ = (x)[i_ + j_];                                                    \
        m_[j_] = v_ > m_[j_] ? v_ : m_[j_];                                     \
      }                                                                         \
    result = m_[0];                                                             \
    for (int j_ = 1; j_ < SHORT_LANES; j_++) OP_MAXF(result, m_[j_]);           \
    for (; i_ < (n); i_++) OP_MAXF(result, (x)[i_]);                            \
  } while (0)
#define SHORT_SUM(x, n, result)                                                 \
  do {                                                                          \
    double s_[SHORT_LANES] = {0};                                               \
    int64_t i_ = 0;                                                             \
    for (; (n) - i_ >= SHORT_LANES; i_ += SHORT_LANES)                          \
      for (int j_ = 0; j_ < SHORT_LANES; j_++) s_[j_] += (double)(x)[i_ + j_];  \
    for (int w_ = SHORT_LANES / 2; w_ > 0; w_ /= 2)                             \
      for (int j_ = 0; j_ < w_; j_++) s_[j_] += s_[j_ + w_];                    \
    result = s_[0];                                                             \
    for (; i_ < (n); i_++) result += (x)[i_];                                   \
  } while (0)

/*
 * Kernels for compute type T (sum lanes LT, exponential EXP, logarithm LOG). y may
 * be x (in place). A row whose max is NaN or +-inf gets NaN (x - max is NaN
 * somewhere, and so is the sum), as in PyTorch.
 *  softmax_rows  nrows rows of n
 *  softmax_short  the same for n < SHORT_ROW: rows go in groups of about
 *    ROW_BLOCK elements, so that the exponentials run as one long SIMD loop
 *  softmax_cols  w columns (w <= COL_MAX, row stride ld) of r rows
 *  layer_norm_rows  nrows rows of n; w and b may be NULL. The mean is kept
 *    as a pair mh + ml, so that x - mean stays accurate when the spread of a
 *    row is small beside its mean; sums that overflow the lane type (|x|
 *    near 1e19 in float32) are redone in double.
 */
#define NORM_KERNELS(S, T, LT, EXP, LOG)                                                            \
  MTI_SIMD_CLONES static void softmax_rows_##S(const T *x, T *y, int64_t nrows, int64_t n,      \
                                               int log_out) {                                   \
    T tmp[ROW_BLOCK];                                                                           \
    for (int64_t row = 0; row < nrows; row++, x += n, y += n) {                                 \
      T m;                                                                                      \
      LANE_MAX(T, x, n, m);                                                                     \
      double sum = 0;                                                                           \
      for (int64_t c0 = 0; c0 < n; c0 += ROW_BLOCK) {                                           \
        int64_t cn = n - c0 < ROW_BLOCK ? n - c0 : ROW_BLOCK;                                   \
        T *e = log_out ? tmp : y + c0;                                                          \
        for (int64_t i = 0; i < cn; i++) e[i] = EXP(x[c0 + i] - m);                             \
        double part;                                                                            \
        LANE_SUM(LT, cn, e[ix], part);                                                          \
        sum += part;                                                                            \
      }                                                                                         \
      if (log_out) {                                                                            \
        T ls = (T)log(sum);                                                                     \
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;                                 \
      } else {                                                                                  \
        T inv = (T)(1.0 / sum);                                                                 \
        for (int64_t i = 0; i < n; i++) y[i] *= inv;                                            \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void softmax_short_##S(const T *x, T *y, int64_t nrows, int64_t n,     \
                                                int log_out) {                                  \
    T d[ROW_BLOCK], e[ROW_BLOCK], f[ROW_BLOCK];                                                 \
    double sums[ROW_BLOCK];                                                                     \
    int64_t g = ROW_BLOCK / n;                                                                  \
    for (int64_t r0 = 0; r0 < nrows; r0 += g, x += g * n, y += g * n) {                         \
      int64_t gr = nrows - r0 < g ? nrows - r0 : g;                                             \
      for (int64_t r = 0; r < gr; r++) {                                                        \
        T m;                                                                                    \
        SHORT_MAX(T, x + r * n, n, m);                                                          \
        for (int64_t c = 0; c < n; c++) d[r * n + c] = x[r * n + c] - m;                        \
      }                                                                                         \
      for (int64_t i = 0; i < gr * n; i++) e[i] = EXP(d[i]);                                    \
      for (int64_t r = 0; r < gr; r++) SHORT_SUM(e + r * n, n, sums[r]);                        \
      if (log_out)                                                                              \
        for (int64_t r = 0; r < gr; r++) f[r] = LOG((T)sums[r]);                                \
      else                                                                                      \
        for (int64_t r = 0; r < gr; r++) f[r] = (T)(1.0 / sums[r]);                             \
      for (int64_t r = 0; r < gr; r++)                                                          \
        if (log_out)                                                                            \
          for (int64_t c = 0; c < n; c++) y[r * n + c] = d[r * n + c] - f[r];                   \
        else                                                                                    \
          for (int64_t c = 0; c < n; c++) y[r * n + c] = e[r * n + c] * f[r];                   \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void softmax_cols_##S(const T *x, T *y, int64_t r, int64_t w,          \
                                               int64_t ld, int log_out) {                       \
    T m[COL_MAX], f[COL_MAX];                                                                   \
    LT acc[COL_MAX];                                                                            \
    double sum[COL_MAX];                                                                        \
    for (int64_t c = 0; c < w; c++) m[c] = -(T)INFINITY, sum[c] = 0;                            \
    for (int64_t k = 0; k < r; k++)                                                             \
      for (int64_t c = 0; c < w; c++) OP_MAXF(m[c], x[k * ld + c]);                             \
    for (int64_t k0 = 0; k0 < r; k0 += COL_BLOCK) {                                             \
      int64_t k1 = r - k0 > COL_BLOCK ? k0 + COL_BLOCK : r;                                     \
      for (int64_t c = 0; c < w; c++) acc[c] = 0;                                               \
      for (int64_t k = k0; k < k1; k++) {                                                       \
        const T *xr = x + k * ld;                                                               \
        T *yr = y + k * ld;                                                                     \
        if (log_out)                                                                            \
          for (int64_t c = 0; c < w; c++) acc[c] += EXP(xr[c] - m[c]);                          \
        else                                                                                    \
          for (int64_t c = 0; c < w; c++) acc[c] += yr[c] = EXP(xr[c] - m[c]);                  \
      }                                                                                         \
      for (int64_t c = 0; c < w; c++) sum[c] += acc[c];                                         \
    }                                                                                           \
    for (int64_t c = 0; c < w; c++) f[c] = log_out ? (T)log(sum[c]) : (T)(1.0 / sum[c]);        \
    for (int64_t k = 0; k < r; k++) {                                                           \
      const T *xr = x + k * ld;                                                                 \
      T *yr = y + k * ld;                                                                       \
      if (log_out)                                                                              \
        for (int64_t c = 0; c < w; c++) yr[c] = (xr[c] - m[c]) - f[c];                          \
      else                                                                                      \
        for (int64_t c = 0; c < w; c++) yr[c] *= f[c];                                          \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void layer_norm_rows_##S(const T *x, T *y, int64_t nrows, int64_t n,   \
                                                  const T *w, const T *b, double eps) {         \
    for (int64_t row = 0; row < nrows; row++, x += n, y += n) {                                 \
      double sum, sq;                                                                           \
      LANE_SUM(LT, n, x[ix], sum);                                                              \
      if (isinf(sum)) LANE_SUM(double, n, x[ix], sum);                                          \
      T mh = (T)(sum / (double)n), ml = (T)(sum / (double)n - (double)mh);                      \
      LANE_SUM(LT, n, ((x[ix] - mh) - ml) * ((x[ix] - mh) - ml), sq);                           \
      if (isinf(sq))                                                                            \
        LANE_SUM(double, n, ((double)x[ix] - mh - ml) * ((double)x[ix] - mh - ml), sq);         \
      T rstd = (T)(1.0 / sqrt(sq / (double)n + eps));                                           \
      if (w && b)                                                                               \
        for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - mh) - ml) * rstd * w[i] + b[i];         \
      else if (w)                                                                               \
        for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - mh) - ml) * rstd * w[i];                \
      else if (b)                                                                               \
        for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - mh) - ml) * rstd + b[i];                \
      else                                                                                      \
        for (int64_t i = 0; i < n; i++) y[i] = ((x[i] - mh) - ml) * rstd;                       \
    }                                                                                           \
  }

NORM_KERNELS(f32, float, float, mti_vexpf, mti_vlogf)
NORM_KERNELS(f64, double, double, exp, log)

/* ---- drivers ---- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows per task: tasks of at least 16K elements are worth scheduling
 * dynamically (which keeps both cores busy when one is slowed by other load). */
static int64_t rows_per_task(int64_t n) { return n >= 16384 ? 1 : 16384 / (n ? n : 1); }

/* The compute-dtype rows of `v`: v's own memory when it is contiguous and of
 * dtype ct, else a staged copy (*buf, the caller frees it). */
static mt_status rows_of(const char *fn, const mti_view *v, mt_dtype ct, int64_t numel,
                         const char **src, char **buf) {
  *buf = NULL;
  if (v->dtype == ct && mti_shape_is_contiguous(v->ndim, v->shape, v->strides)) {
    *src = v->data;
    return MT_OK;
  }
  size_t bytes = (size_t)numel * mt_dtype_size(ct);
  if (!(*buf = malloc(bytes ? bytes : 1))) return mti_error_oom(fn, bytes);
  mti_view dst = *v;
  dst.data = *buf;
  dst.dtype = ct;
  mti_shape_contiguous_strides(v->ndim, v->shape, dst.strides);
  mt_status s = mti_cpu_convert(v, &dst);
  if (s) {
    free(*buf);
    *buf = NULL;
  }
  *src = *buf;
  return s;
}

/* Results computed in the compute dtype at y go to out (converted from the
 * staging buffer when out has a 16-bit dtype). */
static mt_status store_rows(const mti_view *out, mt_dtype ct, const void *y) {
  if (y == out->data) return MT_OK;
  mti_view src = *out;
  src.data = (void *)y;
  src.dtype = ct;
  return mti_cpu_convert(&src, out);
}

/* Softmax of [outer, r, inner] rows: rows in parallel when inner == 1, else
 * tiles of columns sized so that a tile of all r rows stays in L2. */
static void softmax_run(mt_dtype ct, const char *x, char *y, int64_t outer, int64_t r,
                        int64_t inner, int log_out) {
  int par = outer * r * inner >= MTI_CPU_PARALLEL_MIN;
  size_t esz = mt_dtype_size(ct);
  if (inner == 1) {
    int64_t per = rows_per_task(r), ntask = cdiv(outer, per);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      int64_t o = t * per, cnt = min64(per, outer - o);
      size_t at = (size_t)(o * r) * esz;
      if (ct == MT_FLOAT64)
        (r < SHORT_ROW ? softmax_short_f64 : softmax_rows_f64)((const double *)(x + at),
                                                               (double *)(y + at), cnt, r, log_out);
      else
        (r < SHORT_ROW ? softmax_short_f32 : softmax_rows_f32)((const float *)(x + at),
                                                               (float *)(y + at), cnt, r, log_out);
    }
    return;
  }
  int64_t tw = TILE_BYTES / (r * (int64_t)esz) / 8 * 8;
  tw = tw < COL_MIN ? COL_MIN : tw > COL_MAX ? COL_MAX : tw;
  int64_t ntile = cdiv(inner, tw);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
  for (int64_t q = 0; q < outer * ntile; q++) {
    int64_t o = q / ntile, c = q % ntile * tw, w = min64(tw, inner - c);
    size_t at = (size_t)(o * r * inner + c) * esz;
    if (ct == MT_FLOAT64)
      softmax_cols_f64((const double *)(x + at), (double *)(y + at), r, w, inner, log_out);
    else
      softmax_cols_f32((const float *)(x + at), (float *)(y + at), r, w, inner, log_out);
  }
}

mt_status mti_cpu_softmax(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = op == MTI_OP_LOG_SOFTMAX ? "mt_log_softmax" : "mt_softmax";
  int64_t outer, r, inner;
  mti_shape_split(in->ndim, in->shape, at->dim, &outer, &r, &inner);
  int64_t numel = outer * r * inner;
  if (numel == 0) return MT_OK;
  mt_dtype ct = out->dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  const char *x;
  char *buf;
  mt_status s = rows_of(fn, in, ct, numel, &x, &buf);
  if (s) return s;
  char *y = out->dtype == ct ? out->data : buf;
  softmax_run(ct, x, y, outer, r, inner, op == MTI_OP_LOG_SOFTMAX);
  s = store_rows(out, ct, y);
  free(buf);
  return s;
}

/* weight or bias as n contiguous elements of ct (*buf: a staged copy). */
static mt_status param_of(const mti_view *v, mt_dtype ct, int64_t n, const char **p, char **buf) {
  if (!v) {
    *p = *buf = NULL;
    return MT_OK;
  }
  return rows_of("mt_layer_norm", v, ct, n, p, buf);
}

mt_status mti_cpu_layer_norm(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const mti_view *a = &in[0];
  int64_t n = a->shape[a->ndim - 1], rows = 1;
  for (int d = 0; d < a->ndim - 1; d++) rows *= a->shape[d];
  if (n == 0 || rows == 0) return MT_OK;
  mt_dtype ct = out->dtype == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32;
  const char *x, *w, *b;
  char *xbuf, *wbuf = NULL, *bbuf = NULL;
  mt_status s = rows_of("mt_layer_norm", a, ct, rows * n, &x, &xbuf);
  if (!s) s = param_of(at->flags & MTI_FLAG_HAS_WEIGHT ? &in[1] : NULL, ct, n, &w, &wbuf);
  if (!s) s = param_of(at->flags & MTI_FLAG_HAS_BIAS ? &in[2] : NULL, ct, n, &b, &bbuf);
  if (!s) {
    char *y = out->dtype == ct ? out->data : xbuf;
    size_t esz = mt_dtype_size(ct);
    int64_t per = rows_per_task(n), ntask = cdiv(rows, per);
    double eps = at->s0;
#pragma omp parallel for schedule(dynamic) if (rows * n >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      int64_t o = t * per, cnt = min64(per, rows - o);
      size_t off = (size_t)(o * n) * esz;
      if (ct == MT_FLOAT64)
        layer_norm_rows_f64((const double *)(x + off), (double *)(y + off), cnt, n,
                            (const double *)w, (const double *)b, eps);
      else
        layer_norm_rows_f32((const float *)(x + off), (float *)(y + off), cnt, n,
                            (const float *)w, (const float *)b, eps);
    }
    s = store_rows(out, ct, y);
  }
  free(xbuf);
  free(wbuf);
  free(bbuf);
  return s;
}
