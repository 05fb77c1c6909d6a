/*
 * test_util.c - helpers shared by the Check suites (see test_util.h).
 */
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const mt_dtype tu_all_dtypes[REF_NUM_DTYPES] = {
    MT_BOOL,    MT_UINT8,    MT_INT8,     MT_INT16,  MT_INT32,
    MT_INT64,   MT_FLOAT16,  MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};

void tu_tol(mt_dtype d, double *rtol, double *atol) {
  switch (d) {
  case MT_FLOAT16: *rtol = 2e-3; *atol = 1e-4; break;
  case MT_BFLOAT16: *rtol = 1.6e-2; *atol = 1e-3; break;
  case MT_FLOAT32: *rtol = 1e-5; *atol = 1e-6; break;
  case MT_FLOAT64: *rtol = 1e-12; *atol = 1e-14; break;
  default: *rtol = 0; *atol = 0; break;
  }
}

mt_tensor *tu_ok_at(const char *file, int line, const char *expr, mt_tensor *t) {
  TU_EXPECT(t != NULL, "%s:%d: %s failed: %s (%s)", file, line, expr,
                mt_status_name(mt_last_status()), mt_last_error());
  return t;
}

mt_tensor *tu_tensor_at(const char *file, int line, const double *v, int ndim,
                        const int64_t *shape, mt_dtype dt) {
  /* test_creation checks that a 0-d shape may be NULL; elsewhere a
   * library slip there should not take down unrelated tests */
  static const int64_t no_dims[1] = {0};
  if (ndim == 0 && !shape) shape = no_dims;
  int64_t n = ref_numel(ndim, shape);
  size_t es = ref_size(dt);
  unsigned char *raw = malloc((size_t)(n ? n : 1) * es);
  TU_EXPECT(raw != NULL, "%s:%d: out of memory", file, line);
  for (int64_t i = 0; i < n; i++) ref_store(raw + (size_t)i * es, dt, v[i]);
  mt_tensor *t = mt_from_data(raw, ndim, shape, dt, TU_CPU);
  free(raw);
  return tu_ok_at(file, line, "mt_from_data", t);
}

double *tu_read_at(const char *file, int line, const mt_tensor *t) {
  TU_EXPECT(t != NULL, "%s:%d: reading a NULL tensor", file, line);
  double *v = ref_read(t);
  TU_EXPECT(v != NULL, "%s:%d: mt_to_host failed: %s", file, line, mt_last_error());
  return v;
}

void tu_check_meta_at(const char *file, int line, const mt_tensor *t, mt_dtype dt, int ndim,
                      const int64_t *shape) {
  TU_EXPECT(t != NULL, "%s:%d: NULL tensor", file, line);
  mt_dtype got = mt_tensor_dtype(t);
  TU_EXPECT(got == dt, "%s:%d: dtype %s, expected %s", file, line, mt_dtype_name(got),
                mt_dtype_name(dt));
  TU_EXPECT(mt_ndim(t) == ndim, "%s:%d: ndim %d, expected %d", file, line, mt_ndim(t), ndim);
  for (int d = 0; d < ndim; d++)
    TU_EXPECT(mt_shape(t, d) == shape[d], "%s:%d: shape[%d] = %lld, expected %lld", file,
                  line, d, (long long)mt_shape(t, d), (long long)shape[d]);
}

static int close_enough(double got, double exp, double rtol, double atol) {
  if (isnan(exp)) return isnan(got);
  if (isinf(exp) || isinf(got)) return got == exp;
  return fabs(got - exp) <= atol + rtol * fabs(exp);
}

void tu_check_close_at(const char *file, int line, const mt_tensor *t, const double *expected,
                       int64_t n, double rtol, double atol) {
  TU_EXPECT(t != NULL, "%s:%d: NULL tensor", file, line);
  TU_EXPECT(mt_numel(t) == n, "%s:%d: numel %lld, expected %lld", file, line,
                (long long)mt_numel(t), (long long)n);
  double *got = tu_read_at(file, line, t);
  for (int64_t i = 0; i < n; i++) {
    if (close_enough(got[i], expected[i], rtol, atol)) continue;
    double g = got[i];
    free(got);
    ck_abort_msg("%s:%d: [%lld] = %.17g, expected %.17g (%s, rtol %g, atol %g)", file, line,
                 (long long)i, g, expected[i], mt_dtype_name(mt_tensor_dtype(t)), rtol, atol);
  }
  free(got);
}

void tu_check_values_at(const char *file, int line, const mt_tensor *t, const double *expected,
                        int64_t n) {
  double rtol, atol;
  TU_EXPECT(t != NULL, "%s:%d: NULL tensor", file, line);
  tu_tol(mt_tensor_dtype(t), &rtol, &atol);
  tu_check_close_at(file, line, t, expected, n, rtol, atol);
}

void tu_check_raw_at(const char *file, int line, const mt_tensor *t, const void *expected,
                     int64_t n) {
  TU_EXPECT(t != NULL, "%s:%d: NULL tensor", file, line);
  TU_EXPECT(mt_numel(t) == n, "%s:%d: numel %lld, expected %lld", file, line,
                (long long)mt_numel(t), (long long)n);
  mt_dtype d = mt_tensor_dtype(t);
  size_t es = ref_size(d);
  unsigned char *got = malloc((size_t)(n ? n : 1) * es);
  TU_EXPECT(got != NULL, "%s:%d: out of memory", file, line);
  mt_status s = mt_to_host(t, got, (size_t)n * es);
  if (s != MT_OK) {
    free(got);
    ck_abort_msg("%s:%d: mt_to_host: %s", file, line, mt_last_error());
  }
  const unsigned char *want = expected;
  for (int64_t i = 0; i < n; i++) {
    const void *g = got + (size_t)i * es, *w = want + (size_t)i * es;
    if (ref_is_float(d)) {
      double gv = ref_load(g, d), wv = ref_load(w, d);
      if ((isnan(gv) && isnan(wv)) || gv == wv) continue;
      free(got);
      ck_abort_msg("%s:%d: [%lld] = %.17g, expected %.17g (%s)", file, line, (long long)i, gv,
                   wv, mt_dtype_name(d));
    } else {
      int64_t gv = ref_load_i64(g, d), wv = ref_load_i64(w, d);
      if (gv == wv) continue;
      free(got);
      ck_abort_msg("%s:%d: [%lld] = %lld, expected %lld (%s)", file, line, (long long)i,
                   (long long)gv, (long long)wv, mt_dtype_name(d));
    }
  }
  free(got);
}

void tu_check_error_at(const char *file, int line, const char *expr, mt_status st, const char *fn) {
  mt_status got = mt_last_status();
  const char *msg = mt_last_error();
  TU_EXPECT(got == st, "%s:%d: %s: last status %s, expected %s (message \"%s\")", file, line,
                expr, mt_status_name(got), mt_status_name(st), msg);
  TU_EXPECT(msg != NULL && msg[0] != '\0', "%s:%d: %s: empty error message", file, line, expr);
  if (fn) {
    size_t len = strlen(fn);
    TU_EXPECT(strncmp(msg, fn, len) == 0 && msg[len] == ':',
                  "%s:%d: %s: message \"%s\" does not start with \"%s:\"", file, line, expr, msg,
                  fn);
  }
}

double tu_value(uint64_t i, double lo, double hi) {
  /* splitmix64: a fixed, well-mixed sequence */
  uint64_t z = i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = (double)(z >> 11) * 0x1p-53;
  return lo + floor(u * (hi - lo) * 8.0) / 8.0;
}

int tu_run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
