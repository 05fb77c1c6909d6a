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
