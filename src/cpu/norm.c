/*
 * norm.c - rms_norm, group_norm, batch_norm and cross_entropy.
 *
 * As softmax.c's layer_norm: inputs are read as contiguous rows of the
 * compute dtype (float32, or float64 for float64; float16/bfloat16 are
 * staged once with mti_rows_read and results converted back at the end),
 * each row is reduced by SIMD leaf loops (float32 partial sums of BLOCK
 * values joined in double, so that long rows do not lose precision), and
 * rows (channels for batch_norm) are spread over OpenMP threads. The
 * formulas that turn the sums into results are core/norm_rules.h's, shared
 * with the cuda kernels.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/norm_rules.h"
#include "cpu_kernels.h"
#include "cpu_simd.h"
#include "rows.h"
#include "vmath.h"

#define BLOCK 1024 /* values a compute-type partial sum takes before joining double */

/*
 * Leaf loops over n contiguous values of type T (S: f32 or f64); EXP is
 * the vectorisable exponential. max: NaN wins (as softmax.c). The sums of
 * squares overflow the lane type only for |x| near 1e19 in float32; the
 * callers redo them in double then (sum_sq_wide).
 */
#define ROW_LOOPS(S, T, EXP)                                                                    \
  MTI_SIMD_CLONES static double sum_##S(const T *x, int64_t n) {                               \
    double total = 0;                                                                          \
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {                                                \
      int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;                                             \
      T acc = 0;                                                                               \
      _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < m; i++) acc += x[i0 + i]; \
      total += acc;                                                                            \
    }                                                                                          \
    return total;                                                                              \
  }                                                                                            \
  /* sum of (x - c)^2 */                                                                       \
  MTI_SIMD_CLONES static double sum_dev2_##S(const T *x, int64_t n, T c) {                     \
    double total = 0;                                                                          \
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {                                                \
      int64_t m = n - i0 < BLOCK ? n - i0 : BLOCK;                                             \
      T acc = 0;                                                                               \
      _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < m; i++) {                 \
        T d = x[i0 + i] - c;                                                                   \
        acc += d * d;                                                                          \
      }                                                                                        \
      total += acc;                                                                            \
    }                                                                                          \
    return total;                                                                              \
  }                                                                                            \
  MTI_SIMD_CLONES static T max_##S(const T *x, int64_t n) {                                    \
    T m = -(T)INFINITY;                                                                        \
    int nan = 0;                                                                               \
    _Pragma("omp simd reduction(max : m) reduction(| : nan)") for (int64_t i = 0; i < n; i++) { \
      m = x[i] > m ? x[i] : m;                                                                 \
      nan |= x[i] != x[i];                                                                     \
    }                                                                                          \
    return nan ? (T)NAN : m;                                                                   \
  }                                                                                            \
  /* sum of exp(x - m) */                                                                      \
  MTI_SIMD_CLONES static double sum_exp_##S(const T *x, int64_t n, T m) {                      \
    double total = 0;                                                                          \
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {                                                \
      int64_t k = n - i0 < BLOCK ? n - i0 : BLOCK;                                             \
      T acc = 0;                                                                               \
      _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < k; i++) acc +=           \
          EXP(x[i0 + i] - m);                                                                  \
      total += acc;                                                                            \
    }                                                                                          \
    return total;                                                                              \
  }                                                                                            \
  /* y = x * r * w (w NULL: x * r) */                                                          \
  MTI_SIMD_CLONES static void scale_rows_##S(const T *x, T *y, int64_t n, T r, const T *w) {   \
    if (w)                                                                                     \
      for (int64_t i = 0; i < n; i++) y[i] = x[i] * r * w[i];                                  \
    else                                                                                       \
      for (int64_t i = 0; i < n; i++) y[i] = x[i] * r;                                         \
  }                                                                                            \
  /* y = (x - m) * a + b */                                                                    \
  MTI_SIMD_CLONES static void affine_##S(const T *x, T *y, int64_t n, T m, T a, T b) {         \
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * a + b;                                 \
  }

ROW_LOOPS(f32, float, mti_vexpf)
ROW_LOOPS(f64, double, exp)

/* sum of x^2 in double: the fallback where the compute type overflows */
static double sum_sq_wide(const char *x, mt_dtype ct, int64_t n) {
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = ct == MT_FLOAT64 ? ((const double *)x)[i] : ((const float *)x)[i];
    total += v * v;
  }
  return total;
}

static mt_dtype compute_of(mt_dtype d) { return d == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32; }

/* Rows of work at least this long each are scheduled one by one. */
static int64_t rows_per_task(int64_t n) { return n >= 16384 ? 1 : 16384 / (n ? n : 1); }

/* A parameter (weight, bias, running stats) as n contiguous values of ct:
 * NULL when absent. */
static mt_status param_rows(const char *fn, const mti_view *v, int present, mt_dtype ct,
                            mti_rows *r) {
  memset(r, 0, sizeof *r);
  if (!present) return MT_OK;
  return mti_rows_read(fn, v, 0, ct, r);
}

static const void *param_data(const mti_rows *r) { return r->nrows ? r->data : NULL; }

/* ------------------------------------------------------------ rms_norm */

/* Row by row: ms = mean(x^2) in double, r = 1 / sqrt(ms + eps) rounded to
 * the compute type, y = x * r * w. */
static void rms_rows(mt_dtype ct, const char *x, char *y, int64_t rows, int64_t n, const void *w,
                     double eps) {
  size_t esz = mt_dtype_size(ct);
  int64_t per = rows_per_task(n), ntask = (rows + per - 1) / per;
#pragma omp parallel for schedule(dynamic) if (rows * n >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t t = 0; t < ntask; t++) {
    int64_t end = (t + 1) * per < rows ? (t + 1) * per : rows;
    for (int64_t row = t * per; row < end; row++) {
      size_t off = (size_t)(row * n) * esz;
      double sq = ct == MT_FLOAT64 ? sum_dev2_f64((const double *)(x + off), n, 0)
                                   : sum_dev2_f32((const float *)(x + off), n, 0);
      if (isinf(sq)) sq = sum_sq_wide(x + off, ct, n);
      double r = mti_norm_rstd(sq / (double)n, eps);
      if (ct == MT_FLOAT64)
        scale_rows_f64((const double *)(x + off), (double *)(y + off), n, r, (const double *)w);
      else
        scale_rows_f32((const float *)(x + off), (float *)(y + off), n, (float)r,
                       (const float *)w);
    }
  }
}

mt_status mti_cpu_rms_norm(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = "mt_rms_norm";
  const mti_view *a = &in[0];
  uint32_t last = 1u << (a->ndim - 1);
  if (mti_shape_numel(a->ndim, a->shape) == 0) return MT_OK;
  mt_dtype ct = compute_of(out->dtype);
  mti_rows x, y, w;
  mt_status s = mti_rows_read(fn, a, last, ct, &x);
  if (s) return s;
  if ((s = param_rows(fn, &in[1], (at->flags & MTI_FLAG_HAS_WEIGHT) != 0, ct, &w))) {
    mti_rows_free(&x);
    return s;
  }
  if (!(s = mti_rows_for_out(fn, out, last, ct, &y))) {
    rms_rows(ct, x.data, y.data, x.nrows, x.len, param_data(&w), at->s0);
    s = mti_rows_write_back(&y, out, last);
  }
  mti_rows_free(&x);
  mti_rows_free(&w);
  return s;
}

/* ------------------------------------------------- row statistics */

/* mean and biased variance of n contiguous values of ct (two passes: the
 * mean, then the squared deviations around it rounded to ct). */
static void row_stats(mt_dtype ct, const char *x, int64_t n, double *mean, double *var) {
  if (ct == MT_FLOAT64) {
    const double *v = (const double *)x;
    *mean = sum_f64(v, n) / (double)n;
    *var = mti_norm_variance(sum_dev2_f64(v, n, *mean), n, *mean, *mean);
  } else {
    const float *v = (const float *)x;
    double sum = sum_f32(v, n);
    if (isinf(sum)) { /* float32 partial sums overflowed: once more in double */
      sum = 0;
      for (int64_t i = 0; i < n; i++) sum += v[i];
    }
    *mean = sum / (double)n;
    float mc = (float)*mean;
    double dev2 = sum_dev2_f32(v, n, mc);
    if (isinf(dev2)) {
      dev2 = 0;
      for (int64_t i = 0; i < n; i++) dev2 += ((double)v[i] - mc) * ((double)v[i] - mc);
    }
    *var = mti_norm_variance(dev2, n, *mean, mc);
  }
}

/* y = (x - m) * a + b over n contiguous values of ct */
static void affine(mt_dtype ct, const char *x, char *y, int64_t n, double m, double a, double b) {
  if (ct == MT_FLOAT64) affine_f64((const double *)x, (double *)y, n, m, a, b);
  else affine_f32((const float *)x, (float *)y, n, (float)m, (float)a, (float)b);
}

static double param_at(mt_dtype ct, const void *p, int64_t i, double absent) {
  if (!p) return absent;
  return ct == MT_FLOAT64 ? ((const double *)p)[i] : ((const float *)p)[i];
}

static void store_stat(mt_dtype ct, void *p, int64_t i, double v) {
  if (ct == MT_FLOAT64) ((double *)p)[i] = v;
  else ((float *)p)[i] = (float)v;
}

/* Channel c's scale and shift: y = (x - mean) * (rstd * w) + b, the mean
 * subtracted first (no cancellation where x is close to it). */
static void channel_affine(mt_dtype ct, const void *w, const void *b, int64_t c, double rstd,
                           double *scale, double *shift) {
  *scale = mti_norm_scale(rstd, param_at(ct, w, c, 1.0));
  *shift = param_at(ct, b, c, 0.0);
}

/* ---------------------------------------------------------- group_norm */

mt_status mti_cpu_group_norm(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = "mt_group_norm";
  const mti_view *a = &in[0];
  int64_t n = a->shape[0], channels = a->shape[1], groups = at->ints[0], spatial = 1;
  for (int d = 2; d < a->ndim; d++) spatial *= a->shape[d];
  if (n == 0) return MT_OK;
  mt_dtype ct = compute_of(out[0].dtype);
  int64_t per_group = channels / groups, len = per_group * spatial, rows = n * groups;
  mti_rows x, y, w, b;
  mt_status s = mti_rows_read(fn, a, 0, ct, &x);
  if (s) return s;
  memset(&b, 0, sizeof b);
  if (!(s = param_rows(fn, &in[1], (at->flags & MTI_FLAG_HAS_WEIGHT) != 0, ct, &w)) &&
      !(s = param_rows(fn, &in[2], (at->flags & MTI_FLAG_HAS_BIAS) != 0, ct, &b)) &&
      !(s = mti_rows_for_out(fn, &out[0], 0, ct, &y))) {
    size_t esz = mt_dtype_size(ct);
    const void *wp = param_data(&w), *bp = param_data(&b);
    int64_t per = rows_per_task(len), ntask = (rows + per - 1) / per;
#pragma omp parallel for schedule(dynamic) if (rows * len >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      int64_t end = (t + 1) * per < rows ? (t + 1) * per : rows;
      for (int64_t row = t * per; row < end; row++) {
        const char *xr = x.data + (size_t)(row * len) * esz;
        char *yr = y.data + (size_t)(row * len) * esz;
        double mean = 0, var = 0, rstd;
        if (len) row_stats(ct, xr, len, &mean, &var);
        rstd = mti_norm_rstd(var, at->s0);
        store_stat(ct, out[1].data, row, mean);
        store_stat(ct, out[2].data, row, rstd);
        for (int64_t k = 0; k < per_group; k++) {
          double scale, shift;
          channel_affine(ct, wp, bp, row % groups * per_group + k, rstd, &scale, &shift);
          affine(ct, xr + (size_t)(k * spatial) * esz, yr + (size_t)(k * spatial) * esz, spatial,
                 mean, scale, shift);
        }
      }
    }
    s = mti_rows_write_back(&y, &out[0], 0);
  }
  mti_rows_free(&x);
  mti_rows_free(&w);
  mti_rows_free(&b);
  return s;
}

/* ---------------------------------------------------------- batch_norm */

/* Mean and biased variance of channel c of x [n, channels, spatial]
 * (contiguous, ct): the n segments of spatial values are summed in turn. */
static void channel_stats(mt_dtype ct, const char *x, int64_t n, int64_t channels,
                          int64_t spatial, int64_t c, double *mean, double *var) {
  size_t esz = mt_dtype_size(ct), seg = (size_t)spatial * esz;
  double sum = 0, dev2 = 0, count = (double)(n * spatial);
  for (int64_t i = 0; i < n; i++) {
    const char *p = x + (size_t)(i * channels + c) * seg;
    sum += ct == MT_FLOAT64 ? sum_f64((const double *)p, spatial)
                            : sum_f32((const float *)p, spatial);
  }
  *mean = sum / count;
  double mc = ct == MT_FLOAT64 ? *mean : (double)(float)*mean;
  for (int64_t i = 0; i < n; i++) {
    const char *p = x + (size_t)(i * channels + c) * seg;
    dev2 += ct == MT_FLOAT64 ? sum_dev2_f64((const double *)p, spatial, mc)
                             : sum_dev2_f32((const float *)p, spatial, (float)mc);
  }
  *var = mti_norm_variance(dev2, n * spatial, *mean, mc);
}

mt_status mti_cpu_batch_norm(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = "mt_batch_norm";
  const mti_view *a = &in[0];
  int64_t n = a->shape[0], channels = a->shape[1], spatial = 1;
  for (int d = 2; d < a->ndim; d++) spatial *= a->shape[d];
  mt_dtype ct = compute_of(out[0].dtype);
  int eval = (at->flags & MTI_FLAG_PRESENT(1)) != 0;
  mti_rows x, y, rm, rv, w, b;
  memset(&x, 0, sizeof x);
  memset(&y, 0, sizeof y);
  mt_status s;
  if ((s = param_rows(fn, &in[1], eval, ct, &rm))) return s;
  memset(&rv, 0, sizeof rv);
  memset(&w, 0, sizeof w);
  memset(&b, 0, sizeof b);
  if (!(s = param_rows(fn, &in[2], eval, ct, &rv)) &&
      !(s = param_rows(fn, &in[3], (at->flags & MTI_FLAG_PRESENT(3)) != 0, ct, &w)) &&
      !(s = param_rows(fn, &in[4], (at->flags & MTI_FLAG_PRESENT(4)) != 0, ct, &b)) &&
      !(s = mti_rows_read(fn, a, 0, ct, &x)) && !(s = mti_rows_for_out(fn, &out[0], 0, ct, &y))) {
    size_t esz = mt_dtype_size(ct), seg = (size_t)spatial * esz;
    const void *wp = param_data(&w), *bp = param_data(&b);
    int64_t numel = n * channels * spatial;
#pragma omp parallel for schedule(dynamic) if (numel >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
    for (int64_t c = 0; c < channels; c++) {
      double mean, var, scale, shift;
      if (eval) {
        mean = param_at(ct, rm.data, c, 0);
        var = param_at(ct, rv.data, c, 0);
      } else {
        channel_stats(ct, x.data, n, channels, spatial, c, &mean, &var);
      }
      store_stat(ct, out[1].data, c, mean);
      store_stat(ct, out[2].data, c, var);
      channel_affine(ct, wp, bp, c, mti_norm_rstd(var, at->s0), &scale, &shift);
      for (int64_t i = 0; i < n; i++) {
        size_t off = (size_t)(i * channels + c) * seg;
        affine(ct, x.data + off, y.data + off, spatial, mean, scale, shift);
      }
    }
    s = mti_rows_write_back(&y, &out[0], 0);
  }
  mti_rows_free(&x);
  mti_rows_free(&rm);
  mti_rows_free(&rv);
  mti_rows_free(&w);
  mti_rows_free(&b);
  return s;
}

/* ------------------------------------------------------- cross_entropy */

/* logsumexp of one row of classes values, and their sum when smoothing. */
static double row_lse(mt_dtype ct, const char *x, int64_t classes, int want_sum, double *sum_x) {
  double m, se;
  if (ct == MT_FLOAT64) {
    const double *v = (const double *)x;
    m = max_f64(v, classes);
    se = sum_exp_f64(v, classes, m);
    *sum_x = want_sum ? sum_f64(v, classes) : 0;
  } else {
    const float *v = (const float *)x;
    float mf = max_f32(v, classes);
    m = mf;
    se = sum_exp_f32(v, classes, mf);
    *sum_x = want_sum ? sum_f32(v, classes) : 0;
  }
  return m + log(se);
}

/* The first target that is neither a class nor ignore_index, as the error. */
static mt_status target_error(const int64_t *t, int64_t rows, int64_t classes, int64_t ignore) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignore && (t[r] < 0 || t[r] >= classes))
      return mti_error(MT_ERR_INVALID_ARGUMENT,
                       "mt_cross_entropy: target: %lld is out of range for %lld classes (and is "
                       "not ignore_index %lld)", (long long)t[r], (long long)classes,
                       (long long)ignore);
  return MT_OK;
}

/* The 0-d loss into out (logits' dtype) from a double. */
static mt_status store_loss(const mti_view *out, double loss) {
  mti_view src = *out;
  src.data = &loss;
  src.dtype = MT_FLOAT64;
  return mti_cpu_convert(&src, out);
}

mt_status mti_cpu_cross_entropy(const mti_view *in, const mti_attrs *at, const mti_view *out) {
  const char *fn = "mt_cross_entropy";
  const mti_view *a = &in[0];
  int cdim = a->ndim == 1 ? 0 : 1;
  int64_t classes = a->shape[cdim], ignore = at->ints[0];
  double ls = at->s0;
  mt_dtype ct = compute_of(a->dtype);
  mti_rows x, t;
  mt_status s = mti_rows_read(fn, a, 1u << cdim, ct, &x);
  if (s) return s;
  if ((s = mti_rows_read(fn, &in[1], 0, MT_INT64, &t))) {
    mti_rows_free(&x);
    return s;
  }
  int64_t rows = x.nrows, count = 0;
  const int64_t *target = (const int64_t *)t.data;
  double total = 0;
  int bad = 0;
  size_t esz = mt_dtype_size(ct);
#pragma omp parallel for schedule(static) reduction(+ : total, count) reduction(| : bad) if (rows * classes >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t r = 0; r < rows; r++) {
    const char *xr = x.data + (size_t)(r * classes) * esz;
    double sum_x, lse = row_lse(ct, xr, classes, ls != 0, &sum_x);
    store_stat(ct, out[1].data, r, lse);
    int64_t k = target[r];
    if (k == ignore) continue;
    if (k < 0 || k >= classes) {
      bad = 1;
      continue;
    }
    total += mti_cross_entropy_row(lse, param_at(ct, xr, k, 0), sum_x, classes, ls);
    count++;
  }
  s = bad ? target_error(target, rows, classes, ignore)
          : store_loss(&out[0], mti_cross_entropy_mean(total, count));
  mti_rows_free(&x);
  mti_rows_free(&t);
  return s;
}

/* ------------------------------------------------ the norm backwards */

/*
 * Leaf loops of the backwards over n contiguous values of T, with m the
 * row's (or channel's) mean (0 for rms_norm) and r its rstd:
 *  grad_sums  sums of dy and of dy (x - m) (partials of BLOCK values in T
 *    joined in double, as the forward's)
 *  row_grad_sums  for a row with weight w: sums of d = dy w and of d h
 *    with h = (x - m) r, and dy h and dy added into the column sums pw, pb
 *  grad_dx  dx = k (dy w - a - (x - m) b), w NULL for 1 (batch_norm's k
 *    holds its channel's weight)
 */
#define BACKWARD_LOOPS(S, T)                                                                     \
  MTI_SIMD_CLONES static void grad_sums_##S(const T *dy, const T *x, int64_t n, T m,            \
                                            double *s_dy, double *s_dyx) {                       \
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {                                                 \
      int64_t k = n - i0 < BLOCK ? n - i0 : BLOCK;                                              \
      T a = 0, b = 0;                                                                           \
      _Pragma("omp simd reduction(+ : a, b)") for (int64_t i = 0; i < k; i++) {                 \
        a += dy[i0 + i];                                                                        \
        b += dy[i0 + i] * (x[i0 + i] - m);                                                      \
      }                                                                                         \
      *s_dy += a;                                                                               \
      *s_dyx += b;                                                                              \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void row_grad_sums_##S(const T *dy, const T *x, const T *w, int64_t n, \
                                                T m, T r, double *pw, double *pb, double *s_d,  \
                                                double *s_dh) {                                 \
    for (int64_t i0 = 0; i0 < n; i0 += BLOCK) {                                                 \
      int64_t k = n - i0 < BLOCK ? n - i0 : BLOCK;                                              \
      T a = 0, b = 0;                                                                           \
      _Pragma("omp simd reduction(+ : a, b)") for (int64_t i = 0; i < k; i++) {                 \
        int64_t j = i0 + i;                                                                     \
        T h = (x[j] - m) * r, d = dy[j] * w[j];                                                 \
        a += d;                                                                                 \
        b += d * h;                                                                             \
        pw[j] += dy[j] * h;                                                                     \
        pb[j] += dy[j];                                                                         \
      }                                                                                         \
      *s_d += a;                                                                                \
      *s_dh += b;                                                                               \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void grad_dx_##S(const T *dy, const T *x, const T *w, T *dx,           \
                                          int64_t n, T m, T k, T a, T b) {                      \
    if (w)                                                                                      \
      for (int64_t i = 0; i < n; i++) dx[i] = k * (dy[i] * w[i] - a - (x[i] - m) * b);          \
    else                                                                                        \
      for (int64_t i = 0; i < n; i++) dx[i] = k * (dy[i] - a - (x[i] - m) * b);                 \
  }

BACKWARD_LOOPS(f32, float)
BACKWARD_LOOPS(f64, double)

/* ------------------------------------------------ batch_norm_backward */

/* The per-channel coefficients of dx = k (dy - a - (x - mean) b). */
typedef struct bn_channel {
  double mean, rstd, sum_dy, sum_dyx; /* sum_dyx: sum of dy (x - mean) */
} bn_channel;

/* Channel c's sums over the n segments of spatial values of x [n,
 * channels, spatial] and dy (contiguous, ct). */
static void bn_channel_sums(mt_dtype ct, const char *dy, const char *x, int64_t n,
                            int64_t channels, int64_t spatial, int64_t c, bn_channel *ch) {
  size_t seg = (size_t)spatial * mt_dtype_size(ct);
  ch->sum_dy = ch->sum_dyx = 0;
  for (int64_t i = 0; i < n; i++) {
    size_t off = (size_t)(i * channels + c) * seg;
    if (ct == MT_FLOAT64)
      grad_sums_f64((const double *)(dy + off), (const double *)(x + off), spatial, ch->mean,
                    &ch->sum_dy, &ch->sum_dyx);
    else
      grad_sums_f32((const float *)(dy + off), (const float *)(x + off), spatial,
                    (float)ch->mean, &ch->sum_dy, &ch->sum_dyx);
  }
}

/* Channel c's dx: w rstd (dy - sum_dy / M - (x - mean) rstd^2 sum_dyx / M)
 * in training (M = n spatial), w rstd dy in eval. */
static void bn_channel_dx(mt_dtype ct, const char *dy, const char *x, char *dx, int64_t n,
                          int64_t channels, int64_t spatial, int64_t c, const bn_channel *ch,
                          double weight, int training) {
  size_t seg = (size_t)spatial * mt_dtype_size(ct);
  double count = (double)(n * spatial), k = weight * ch->rstd;
  double a = training ? ch->sum_dy / count : 0;
  double b = training ? ch->sum_dyx * ch->rstd * ch->rstd / count : 0;
  for (int64_t i = 0; i < n; i++) {
    size_t off = (size_t)(i * channels + c) * seg;
    if (ct == MT_FLOAT64)
      grad_dx_f64((const double *)(dy + off), (const double *)(x + off), NULL,
                  (double *)(dx + off), spatial, ch->mean, k, a, b);
    else
      grad_dx_f32((const float *)(dy + off), (const float *)(x + off), NULL, (float *)(dx + off),
                  spatial, (float)ch->mean, (float)k, (float)a, (float)b);
  }
}

mt_status mti_cpu_batch_norm_backward(const mti_view *in, const mti_attrs *at,
                                      const mti_view *out) {
  const char *fn = "mt_batch_norm_backward";
  const mti_view *x_in = &in[1];
  int64_t n = x_in->shape[0], channels = x_in->shape[1], spatial = 1;
  for (int d = 2; d < x_in->ndim; d++) spatial *= x_in->shape[d];
  mt_dtype ct = compute_of(out[0].dtype);
  int training = at->ints[0] != 0, empty = n * spatial == 0;
  mti_rows dy, x, dx, mean, var, w;
  memset(&dy, 0, sizeof dy), memset(&x, 0, sizeof x), memset(&dx, 0, sizeof dx);
  memset(&var, 0, sizeof var), memset(&w, 0, sizeof w);
  mt_status s = param_rows(fn, &in[2], 1, ct, &mean);
  if (!s && !(s = param_rows(fn, &in[3], 1, ct, &var)) &&
      !(s = param_rows(fn, &in[4], (at->flags & MTI_FLAG_PRESENT(4)) != 0, ct, &w)) &&
      (empty || (!(s = mti_rows_read(fn, &in[0], 0, ct, &dy)) &&
                 !(s = mti_rows_read(fn, x_in, 0, ct, &x)) &&
                 !(s = mti_rows_for_out(fn, &out[0], 0, ct, &dx))))) {
    const void *wp = param_data(&w);
    int64_t numel = n * channels * spatial;
#pragma omp parallel for schedule(dynamic) if (numel >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
    for (int64_t c = 0; c < channels; c++) {
      bn_channel ch = {param_at(ct, mean.data, c, 0), 0, 0, 0};
      ch.rstd = mti_norm_rstd(param_at(ct, var.data, c, 0), at->s0);
      if (!empty) bn_channel_sums(ct, dy.data, x.data, n, channels, spatial, c, &ch);
      store_stat(ct, out[1].data, c, ch.sum_dyx * ch.rstd);
      store_stat(ct, out[2].data, c, ch.sum_dy);
      if (!empty)
        bn_channel_dx(ct, dy.data, x.data, dx.data, n, channels, spatial, c, &ch,
                      param_at(ct, wp, c, 1.0), training);
    }
    if (!empty) s = mti_rows_write_back(&dx, &out[0], 0);
  }
  mti_rows_free(&dy);
  mti_rows_free(&x);
  mti_rows_free(&dx);
  mti_rows_free(&mean);
  mti_rows_free(&var);
  mti_rows_free(&w);
  return s;
}

/* ------------------------------- layer_norm_backward, rms_norm_backward */

#define ROW_CHUNKS_MAX 64           /* row chunks, each with its own column sums */
#define ROW_PARTIALS_MAX (1 << 22) /* doubles all chunks' column sums take at most */

/* Row chunks of the column sums: a count fixed by the shape alone (never
 * by the threads), so the sums are the same on every machine. */
static int64_t row_chunks(int64_t rows, int64_t n) {
  int64_t per = rows_per_task(n), chunks = (rows + per - 1) / per;
  int64_t room = ROW_PARTIALS_MAX / (2 * n);
  if (chunks > ROW_CHUNKS_MAX) chunks = ROW_CHUNKS_MAX;
  if (chunks > room) chunks = room;
  return chunks > 1 ? chunks : 1;
}

/* One row's dx, and its terms of the column sums pw (dweight), pb (dbias).
 * rms: m = 0 and r = 1 / sqrt(mean(x^2) + eps), and d's mean is not taken. */
static void row_norm_grad(mt_dtype ct, const char *dy, const char *x, const void *w, char *dx,
                          int64_t n, int rms, double eps, double *pw, double *pb) {
  double m = 0, var = 0, s_d = 0, s_dh = 0;
  if (rms) {
    var = ct == MT_FLOAT64 ? sum_dev2_f64((const double *)x, n, 0)
                           : sum_dev2_f32((const float *)x, n, 0);
    if (isinf(var)) var = sum_sq_wide(x, ct, n);
    var /= (double)n;
  } else {
    row_stats(ct, x, n, &m, &var);
  }
  double r = mti_norm_rstd(var, eps);
  if (ct == MT_FLOAT64) {
    row_grad_sums_f64((const double *)dy, (const double *)x, w, n, m, r, pw, pb, &s_d, &s_dh);
    grad_dx_f64((const double *)dy, (const double *)x, w, (double *)dx, n, m, r,
                rms ? 0 : s_d / (double)n, r * s_dh / (double)n);
  } else {
    row_grad_sums_f32((const float *)dy, (const float *)x, w, n, (float)m, (float)r, pw, pb, &s_d,
                      &s_dh);
    grad_dx_f32((const float *)dy, (const float *)x, w, (float *)dx, n, (float)m, (float)r,
                rms ? 0.0f : (float)(s_d / (double)n), (float)(r * s_dh / (double)n));
  }
}

/* The rows of x [rows, n] in chunks over the threads; sums[2 n k..] are
 * chunk k's column sums (zeroed here). */
static void row_norm_rows(mt_dtype ct, const char *dy, const char *x, const void *w, char *dx,
                          int64_t rows, int64_t n, int rms, double eps, double *sums,
                          int64_t chunks) {
  size_t esz = mt_dtype_size(ct);
  int64_t per = (rows + chunks - 1) / chunks;
  memset(sums, 0, sizeof *sums * (size_t)(2 * n * chunks));
#pragma omp parallel for schedule(dynamic) if (rows * n >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t k = 0; k < chunks; k++) {
    int64_t end = (k + 1) * per < rows ? (k + 1) * per : rows;
    double *pw = sums + 2 * n * k, *pb = pw + n;
    for (int64_t row = k * per; row < end; row++) {
      size_t off = (size_t)(row * n) * esz;
      row_norm_grad(ct, dy + off, x + off, w, dx + off, n, rms, eps, pw, pb);
    }
  }
}

/* out[1] (and out[2] for layer_norm) from the chunks' column sums, joined
 * in chunk order. */
static void store_column_sums(mt_dtype ct, const double *sums, int64_t n, int64_t chunks,
                              const mti_view *out, int nout) {
  for (int64_t j = 0; j < n; j++) {
    double sw = 0, sb = 0;
    for (int64_t k = 0; k < chunks; k++) sw += sums[2 * n * k + j], sb += sums[2 * n * k + n + j];
    store_stat(ct, out[1].data, j, sw);
    if (nout > 2) store_stat(ct, out[2].data, j, sb);
  }
}

/* weight as n values of ct, ones when it is absent (the leaf loops take
 * one form). */
static mt_status weight_or_ones(const char *fn, const mti_view *v, int present, mt_dtype ct,
                                int64_t n, mti_rows *r) {
  if (present) return param_rows(fn, v, 1, ct, r);
  memset(r, 0, sizeof *r);
  size_t esz = mt_dtype_size(ct);
  if (!(r->owned = r->data = malloc(esz * (size_t)n)))
    return mti_error_oom(fn, esz * (size_t)n);
  for (int64_t j = 0; j < n; j++) store_stat(ct, r->data, j, 1.0);
  return MT_OK;
}

mt_status mti_cpu_row_norm_backward(mti_op op, const mti_view *in, const mti_attrs *at,
                                    const mti_view *out) {
  int rms = op == MTI_OP_RMS_NORM_BACKWARD, nout = rms ? 2 : 3;
  const char *fn = rms ? "mt_rms_norm_backward" : "mt_layer_norm_backward";
  const mti_view *x_in = &in[1];
  int64_t n = x_in->shape[x_in->ndim - 1];
  int64_t rows = n ? mti_shape_numel(x_in->ndim, x_in->shape) / n : 0;
  uint32_t last = 1u << (x_in->ndim - 1);
  mt_dtype ct = compute_of(out[0].dtype);
  if (n == 0) return MT_OK;
  int64_t chunks = row_chunks(rows, n);
  size_t sums_bytes = sizeof(double) * (size_t)(2 * n * chunks);
  double *sums = malloc(sums_bytes);
  if (!sums) return mti_error_oom(fn, sums_bytes);
  mti_rows dy, x, dx, w;
  memset(&dy, 0, sizeof dy), memset(&x, 0, sizeof x), memset(&dx, 0, sizeof dx);
  mt_status s = weight_or_ones(fn, &in[2], (at->flags & MTI_FLAG_PRESENT(2)) != 0, ct, n, &w);
  if (!s && !(s = mti_rows_read(fn, &in[0], last, ct, &dy)) &&
      !(s = mti_rows_read(fn, x_in, last, ct, &x)) &&
      !(s = mti_rows_for_out(fn, &out[0], last, ct, &dx))) {
    row_norm_rows(ct, dy.data, x.data, w.data, dx.data, rows, n, rms, at->s0, sums, chunks);
    store_column_sums(ct, sums, n, chunks, out, nout);
    s = mti_rows_write_back(&dx, &out[0], last);
  }
  free(sums);
  mti_rows_free(&dy);
  mti_rows_free(&x);
  mti_rows_free(&dx);
  mti_rows_free(&w);
  return s;
}

/* ---------------------------------------------- cross_entropy_backward */

/* dx = (exp(x - lse) - off) scale over n contiguous values of T. */
#define CE_LOOPS(S, T, EXP)                                                                     \
  MTI_SIMD_CLONES static void ce_row_grad_##S(const T *x, T *dx, int64_t n, T lse, T off,      \
                                              T scale) {                                       \
    for (int64_t i = 0; i < n; i++) dx[i] = (EXP(x[i] - lse) - off) * scale;                   \
  }

CE_LOOPS(f32, float, mti_vexpf)
CE_LOOPS(f64, double, exp)

/* One row of classes logits: the gradient with the target's term, or 0 *
 * scale on an ignored row (NaN when no row counts: scale is then inf). */
static void ce_row(mt_dtype ct, const char *x, char *dx, int64_t classes, double lse,
                   int64_t target, int valid, double smoothing, double scale) {
  double off = smoothing / (double)classes, hit = off + (1.0 - smoothing);
  for (int64_t k = 0; !valid && k < classes; k++) store_stat(ct, dx, k, 0.0 * scale);
  if (!valid) return;
  if (ct == MT_FLOAT64) {
    ce_row_grad_f64((const double *)x, (double *)dx, classes, lse, off, scale);
    if (target >= 0 && target < classes)
      ((double *)dx)[target] = (exp(((const double *)x)[target] - lse) - hit) * scale;
  } else {
    ce_row_grad_f32((const float *)x, (float *)dx, classes, (float)lse, (float)off, (float)scale);
    if (target >= 0 && target < classes)
      ((float *)dx)[target] =
          (mti_vexpf(((const float *)x)[target] - (float)lse) - (float)hit) * (float)scale;
  }
}

mt_status mti_cpu_cross_entropy_backward(const mti_view *in, const mti_attrs *at,
                                         const mti_view *out) {
  const char *fn = "mt_cross_entropy_backward";
  const mti_view *a = &in[1];
  int cdim = a->ndim == 1 ? 0 : 1;
  int64_t classes = a->shape[cdim], ignore = at->ints[0];
  uint32_t mask = 1u << cdim;
  mt_dtype ct = compute_of(a->dtype);
  mti_rows g, x, t, lse, dx;
  memset(&x, 0, sizeof x), memset(&t, 0, sizeof t), memset(&lse, 0, sizeof lse);
  memset(&dx, 0, sizeof dx);
  mt_status s = mti_rows_read(fn, &in[0], 0, MT_FLOAT64, &g);
  if (!s && !(s = mti_rows_read(fn, a, mask, ct, &x)) &&
      !(s = mti_rows_read(fn, &in[2], 0, MT_INT64, &t)) &&
      !(s = mti_rows_read(fn, &in[3], 0, ct, &lse)) &&
      !(s = mti_rows_for_out(fn, &out[0], mask, ct, &dx))) {
    const int64_t *target = (const int64_t *)t.data;
    int64_t rows = x.nrows, count = 0;
    for (int64_t r = 0; r < rows; r++) count += target[r] != ignore;
    double scale = *(const double *)g.data / (double)count;
    size_t esz = mt_dtype_size(ct);
#pragma omp parallel for schedule(static) if (rows * classes >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
    for (int64_t r = 0; r < rows; r++) {
      size_t off = (size_t)(r * classes) * esz;
      ce_row(ct, x.data + off, dx.data + off, classes, param_at(ct, lse.data, r, 0), target[r],
             target[r] != ignore, at->s0, scale);
    }
    s = mti_rows_write_back(&dx, &out[0], mask);
  }
  mti_rows_free(&g);
  mti_rows_free(&x);
  mti_rows_free(&t);
  mti_rows_free(&lse);
  mti_rows_free(&dx);
  return s;
}
