/*
 * test_norm.c - rms_norm, group_norm, batch_norm (with the running-stat
 * update) and cross_entropy against the double references of ref.c, on
 * every floating dtype, non-contiguous inputs, long rows (the threaded and
 * vector paths) and the refusals.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ref.h"
#include "test_util.h"

static const mt_dtype float_dtypes[] = {MT_FLOAT32, MT_FLOAT64, MT_FLOAT16, MT_BFLOAT16};

/* A tensor of values tu_value(seed + i) in [lo, hi). */
static mt_tensor *make(mt_dtype d, int ndim, const int64_t *shape, uint64_t seed, double lo,
                       double hi) {
  int64_t n = ref_numel(ndim, shape);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = tu_value(seed + (uint64_t)i, lo, hi);
  mt_tensor *t = TU_TENSOR(v, ndim, shape, d);
  free(v);
  return t;
}

static void tolerance(mt_dtype d, double *rtol, double *atol) {
  tu_tol(d, rtol, atol);
  if (d == MT_FLOAT32) *rtol = 1e-4, *atol = 1e-5;
}

/* r against want (rounded to r's dtype first). */
static void check_against(const char *ctx, int line, const mt_tensor *r, double *want, int64_t n) {
  mt_dtype d = mt_tensor_dtype(r);
  double rtol, atol;
  tolerance(d, &rtol, &atol);
  for (int64_t i = 0; i < n; i++) want[i] = ref_round_to(want[i], d);
  tu_check_close_at(ctx, line, r, want, n, rtol, atol);
}

/* ------------------------------------------------------------ rms_norm */

static void check_rms(const mt_tensor *a, const mt_tensor *w, double eps) {
  int ndim = mt_ndim(a);
  int64_t n = mt_shape(a, ndim - 1), numel = mt_numel(a);
  char ctx[96];
  snprintf(ctx, sizeof ctx, "rms_norm(%s%s, eps %g)", mt_dtype_name(mt_tensor_dtype(a)),
           w ? ", w" : "", eps);
  mt_tensor *r = mt_rms_norm(a, w, eps);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  ck_assert_int_eq(mt_tensor_dtype(r), mt_tensor_dtype(a));
  double *x = TU_READ(a), *wv = w ? TU_READ(w) : NULL;
  double *want = malloc(sizeof(double) * (size_t)(numel ? numel : 1));
  ref_rms_norm(x, n ? numel / n : 0, n, wv, eps, want);
  check_against(ctx, __LINE__, r, want, numel);
  free(want);
  free(x);
  free(wv);
  mt_tensor_free(r);
}

START_TEST(test_rms_norm) {
  mt_dtype d = float_dtypes[_i];
  mt_tensor *a = make(d, 3, TU_SHAPE(2, 3, 7), 1, -3, 3);
  mt_tensor *w = make(d, 1, TU_SHAPE(7), 50, 0.5, 2);
  check_rms(a, NULL, 1e-6);
  check_rms(a, w, 1e-5);
  check_rms(a, w, 0.5);
  mt_tensor *t = TU_OK(mt_transpose(a, 0, 1)); /* rows that are not contiguous in memory */
  check_rms(t, w, 1e-6);
  mt_tensor *tl = TU_OK(mt_transpose(a, 1, 2)); /* the normalised dim strided */
  check_rms(tl, NULL, 1e-6);
  mt_tensor *big = make(d, 2, TU_SHAPE(64, 4099), 8, -2, 2);
  mt_tensor *wbig = make(MT_FLOAT32, 1, TU_SHAPE(4099), 9, -1, 1); /* weight of another dtype */
  check_rms(big, wbig, 1e-6);
  mt_tensor *empty = make(d, 2, TU_SHAPE(0, 4), 1, 0, 1);
  mt_tensor *e = TU_OK(mt_rms_norm(empty, NULL, 1e-6));
  ck_assert_int_eq(mt_numel(e), 0);
  mt_tensor_free(e);
  mt_tensor_free(empty);
  mt_tensor_free(wbig);
  mt_tensor_free(big);
  mt_tensor_free(tl);
  mt_tensor_free(t);
  mt_tensor_free(w);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_rms_norm_refusals) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *i = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_INT32, TU_CPU));
  mt_tensor *w5 = TU_OK(mt_ones(1, TU_SHAPE(5), MT_FLOAT32, TU_CPU));
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_rms_norm(a, w5, 1e-5), MT_ERR_SHAPE, "mt_rms_norm");
  TU_FAILS(mt_rms_norm(s, NULL, 1e-5), MT_ERR_SHAPE, "mt_rms_norm");
  TU_FAILS(mt_rms_norm(i, NULL, 1e-5), MT_ERR_DTYPE, "mt_rms_norm");
  TU_FAILS(mt_rms_norm(a, NULL, -1), MT_ERR_INVALID_ARGUMENT, "mt_rms_norm");
  TU_FAILS(mt_rms_norm(a, NULL, NAN), MT_ERR_INVALID_ARGUMENT, "mt_rms_norm");
  TU_FAILS(mt_rms_norm(NULL, NULL, 1e-5), MT_ERR_INVALID_ARGUMENT, "mt_rms_norm");
  mt_tensor_free(s);
  mt_tensor_free(w5);
  mt_tensor_free(i);
  mt_tensor_free(a);
}
END_TEST

/* ---------------------------------------------------------- group_norm */

static void check_group(const mt_tensor *a, int64_t groups, const mt_tensor *w,
                        const mt_tensor *b, double eps) {
  int64_t n = mt_shape(a, 0), c = mt_shape(a, 1), numel = mt_numel(a);
  int64_t spatial = n && c ? numel / (n * c) : 0;
  char ctx[96];
  snprintf(ctx, sizeof ctx, "group_norm(%s, %lld groups%s%s)", mt_dtype_name(mt_tensor_dtype(a)),
           (long long)groups, w ? ", w" : "", b ? ", b" : "");
  mt_tensor *r = mt_group_norm(a, groups, w, b, eps);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  double *x = TU_READ(a), *wv = w ? TU_READ(w) : NULL, *bv = b ? TU_READ(b) : NULL;
  double *want = malloc(sizeof(double) * (size_t)(numel ? numel : 1));
  ref_group_norm(x, n, c, spatial, groups, wv, bv, eps, want, NULL, NULL);
  check_against(ctx, __LINE__, r, want, numel);
  free(want);
  free(x);
  free(wv);
  free(bv);
  mt_tensor_free(r);
}

START_TEST(test_group_norm) {
  mt_dtype d = float_dtypes[_i];
  mt_tensor *a = make(d, 3, TU_SHAPE(2, 6, 5), 3, -4, 4);
  mt_tensor *w = make(d, 1, TU_SHAPE(6), 20, 0.5, 2);
  mt_tensor *b = make(MT_FLOAT32, 1, TU_SHAPE(6), 30, -1, 1);
  for (int64_t g = 1; g <= 6; g++) {
    if (6 % g) continue;
    check_group(a, g, NULL, NULL, 1e-5);
    check_group(a, g, w, b, 1e-5);
  }
  mt_tensor *a4 = make(d, 4, TU_SHAPE(3, 4, 2, 3), 4, -2, 2);
  mt_tensor *p = TU_OK(mt_transpose(a4, 2, 3)); /* non-contiguous [3, 4, 3, 2] */
  check_group(p, 2, NULL, NULL, 1e-3);
  mt_tensor *a2 = make(d, 2, TU_SHAPE(5, 6), 5, -2, 2); /* no spatial dims */
  check_group(a2, 3, w, NULL, 1e-5);
  mt_tensor *big = make(d, 3, TU_SHAPE(2, 8, 4096), 6, -1, 3);
  check_group(big, 4, NULL, NULL, 1e-5);
  mt_tensor_free(big);
  mt_tensor_free(a2);
  mt_tensor_free(p);
  mt_tensor_free(a4);
  mt_tensor_free(b);
  mt_tensor_free(w);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_group_norm_refusals) {
  mt_tensor *a = TU_OK(mt_ones(3, TU_SHAPE(2, 6, 3), MT_FLOAT32, TU_CPU));
  mt_tensor *v = TU_OK(mt_ones(1, TU_SHAPE(6), MT_FLOAT32, TU_CPU));
  mt_tensor *w4 = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_group_norm(a, 4, NULL, NULL, 1e-5), MT_ERR_INVALID_ARGUMENT, "mt_group_norm");
  TU_FAILS(mt_group_norm(a, 0, NULL, NULL, 1e-5), MT_ERR_INVALID_ARGUMENT, "mt_group_norm");
  TU_FAILS(mt_group_norm(a, 2, w4, NULL, 1e-5), MT_ERR_SHAPE, "mt_group_norm");
  TU_FAILS(mt_group_norm(v, 2, NULL, NULL, 1e-5), MT_ERR_SHAPE, "mt_group_norm");
  TU_FAILS(mt_group_norm(a, 2, NULL, NULL, -1), MT_ERR_INVALID_ARGUMENT, "mt_group_norm");
  mt_tensor_free(w4);
  mt_tensor_free(v);
  mt_tensor_free(a);
}
END_TEST

/* ---------------------------------------------------------- batch_norm */

/* Two training steps update the running stats by torch's rule, then eval
 * normalises with them. */
START_TEST(test_batch_norm) {
  mt_dtype d = float_dtypes[_i];
  const int64_t n = 4, c = 3, sp = 5, numel = n * c * sp;
  const double momentum = 0.1, eps = 1e-5;
  mt_tensor *w = make(d, 1, TU_SHAPE(3), 20, 0.5, 2), *b = make(d, 1, TU_SHAPE(3), 30, -1, 1);
  mt_tensor *rm = TU_OK(mt_zeros(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU));
  mt_tensor *rv = TU_OK(mt_ones(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU));
  double want_rm[3] = {0, 0, 0}, want_rv[3] = {1, 1, 1}, mean[3], var[3];
  double *wv = TU_READ(w), *bv = TU_READ(b), want[60];
  for (int step = 0; step < 2; step++) {
    mt_tensor *x = make(d, 3, TU_SHAPE(4, 3, 5), 100 * (uint64_t)step + 1, -3, 5);
    double *xv = TU_READ(x);
    mt_tensor *y = TU_OK(mt_batch_norm(x, rm, rv, w, b, 1, momentum, eps));
    ref_batch_stats(xv, n, c, sp, mean, var);
    ref_batch_norm(xv, n, c, sp, mean, var, wv, bv, eps, want);
    check_against("batch_norm training", __LINE__, y, want, numel);
    for (int k = 0; k < 3; k++) {
      want_rm[k] = (1 - momentum) * want_rm[k] + momentum * mean[k];
      want_rv[k] = (1 - momentum) * want_rv[k] + momentum * var[k] * (double)(n * sp) /
                                                   (double)(n * sp - 1);
    }
    TU_CHECK_CLOSE(rm, want_rm, 3, 1e-5, 1e-6);
    TU_CHECK_CLOSE(rv, want_rv, 3, 1e-5, 1e-6);
    mt_tensor_free(y);
    free(xv);
    mt_tensor_free(x);
  }
  /* eval with the running stats; training without any */
  mt_tensor *x = make(d, 3, TU_SHAPE(4, 3, 5), 7, -3, 5);
  mt_tensor *xt = TU_OK(mt_transpose(x, 0, 2)); /* non-contiguous [5, 3, 4] */
  double *xv = TU_READ(xt), *rmv = TU_READ(rm), *rvv = TU_READ(rv); /* as stored: float32 */
  mt_tensor *y = TU_OK(mt_batch_norm(xt, rm, rv, w, NULL, 0, momentum, eps));
  ref_batch_norm(xv, 5, 3, 4, rmv, rvv, wv, NULL, eps, want);
  free(rmv);
  free(rvv);
  check_against("batch_norm eval", __LINE__, y, want, numel);
  mt_tensor_free(y);
  y = TU_OK(mt_batch_norm(xt, NULL, NULL, NULL, b, 1, momentum, eps));
  ref_batch_stats(xv, 5, 3, 4, mean, var);
  ref_batch_norm(xv, 5, 3, 4, mean, var, NULL, bv, eps, want);
  check_against("batch_norm training, no running stats", __LINE__, y, want, numel);
  mt_tensor_free(y);
  free(xv);
  free(wv);
  free(bv);
  mt_tensor_free(xt);
  mt_tensor_free(x);
  mt_tensor_free(rv);
  mt_tensor_free(rm);
  mt_tensor_free(b);
  mt_tensor_free(w);
}
END_TEST

START_TEST(test_batch_norm_large) {
  mt_tensor *x = make(MT_FLOAT32, 4, TU_SHAPE(8, 16, 32, 32), 3, -2, 6);
  double *xv = TU_READ(x), mean[16], var[16];
  double *want = malloc(sizeof(double) * 8 * 16 * 1024);
  mt_tensor *y = TU_OK(mt_batch_norm(x, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5));
  ref_batch_stats(xv, 8, 16, 1024, mean, var);
  ref_batch_norm(xv, 8, 16, 1024, mean, var, NULL, NULL, 1e-5, want);
  check_against("batch_norm large", __LINE__, y, want, 8 * 16 * 1024);
  free(want);
  free(xv);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_batch_norm_refusals) {
  mt_tensor *x = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *one = TU_OK(mt_ones(3, TU_SHAPE(1, 3, 1), MT_FLOAT32, TU_CPU));
  mt_tensor *r = TU_OK(mt_zeros(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU));
  mt_tensor *r4 = TU_OK(mt_zeros(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  mt_tensor *ri = TU_OK(mt_zeros(1, TU_SHAPE(3), MT_INT64, TU_CPU));
  TU_FAILS(mt_batch_norm(x, NULL, NULL, NULL, NULL, 0, 0.1, 1e-5), MT_ERR_INVALID_ARGUMENT,
           "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, r, NULL, NULL, NULL, 1, 0.1, 1e-5), MT_ERR_INVALID_ARGUMENT,
           "mt_batch_norm");
  TU_FAILS(mt_batch_norm(one, NULL, NULL, NULL, NULL, 1, 0.1, 1e-5), MT_ERR_INVALID_ARGUMENT,
           "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, r4, r4, NULL, NULL, 1, 0.1, 1e-5), MT_ERR_SHAPE, "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, r4, r4, NULL, NULL, 0, 0.1, 1e-5), MT_ERR_SHAPE, "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, ri, ri, NULL, NULL, 1, 0.1, 1e-5), MT_ERR_DTYPE, "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, NULL, NULL, r4, NULL, 1, 0.1, 1e-5), MT_ERR_SHAPE, "mt_batch_norm");
  TU_FAILS(mt_batch_norm(x, r, r, NULL, NULL, 1, NAN, 1e-5), MT_ERR_INVALID_ARGUMENT,
           "mt_batch_norm");
  TU_FAILS(mt_batch_norm(NULL, r, r, NULL, NULL, 1, 0.1, 1e-5), MT_ERR_INVALID_ARGUMENT,
           "mt_batch_norm");
  /* a refused call leaves the running stats alone */
  double zeros[3] = {0, 0, 0};
  TU_CHECK_VALUES(r, zeros, 3);
  mt_tensor_free(ri);
  mt_tensor_free(r4);
  mt_tensor_free(r);
  mt_tensor_free(one);
  mt_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------- cross_entropy */

static mt_tensor *targets(int ndim, const int64_t *shape, int64_t classes, uint64_t seed,
                          int64_t ignore_every) {
  int64_t n = ref_numel(ndim, shape);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++)
    v[i] = ignore_every && i % ignore_every == 1 ? -100
                                                 : (double)((seed * 7919 + (uint64_t)i * 104729) %
                                                            (uint64_t)classes);
  mt_tensor *t = TU_TENSOR(v, ndim, shape, MT_INT64);
  free(v);
  return t;
}

/* loss of logits [n, c, inner...] (contiguous values xv) against t */
static void check_ce(const mt_tensor *x, const mt_tensor *t, int64_t ignore, double ls,
                     double rtol) {
  int ndim = mt_ndim(x);
  int64_t n = ndim == 1 ? 1 : mt_shape(x, 0), c = mt_shape(x, ndim == 1 ? 0 : 1);
  int64_t inner = n && c ? mt_numel(x) / (n * c) : 1;
  char ctx[128];
  snprintf(ctx, sizeof ctx, "cross_entropy(%s, %d-d, ignore %lld, ls %g)",
           mt_dtype_name(mt_tensor_dtype(x)), ndim, (long long)ignore, ls);
  mt_tensor *r = mt_cross_entropy(x, t, ignore, ls);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  ck_assert_int_eq(mt_ndim(r), 0);
  ck_assert_int_eq(mt_tensor_dtype(r), mt_tensor_dtype(x));
  double *xv = TU_READ(x), *tv = TU_READ(t);
  int64_t nt = mt_numel(t);
  int64_t *ti = malloc(sizeof(int64_t) * (size_t)(nt ? nt : 1));
  for (int64_t i = 0; i < nt; i++) ti[i] = (int64_t)tv[i];
  double want = ref_round_to(ref_cross_entropy(xv, ti, n, c, inner, ignore, ls),
                             mt_tensor_dtype(x));
  tu_check_close_at(ctx, __LINE__, r, &want, 1, rtol, rtol);
  free(ti);
  free(tv);
  free(xv);
  mt_tensor_free(r);
}

START_TEST(test_cross_entropy) {
  mt_dtype d = float_dtypes[_i];
  double rtol = d == MT_FLOAT64 ? 1e-10 : d == MT_FLOAT32 ? 1e-5 : 1e-2;
  mt_tensor *x = make(d, 2, TU_SHAPE(6, 7), 1, -4, 4);
  mt_tensor *t = targets(1, TU_SHAPE(6), 7, 1, 0), *ti = targets(1, TU_SHAPE(6), 7, 2, 3);
  check_ce(x, t, -100, 0, rtol);
  check_ce(x, ti, -100, 0, rtol);
  check_ce(x, ti, -100, 0.1, rtol);
  check_ce(x, t, 3, 1.0, rtol); /* an ignore_index that is a class */
  mt_tensor *xt = TU_OK(mt_transpose(x, 0, 1)), *xc = TU_OK(mt_contiguous(xt));
  mt_tensor *xs = TU_OK(mt_transpose(xc, 0, 1)); /* x's values, column-major */
  check_ce(xs, ti, -100, 0.2, rtol);
  /* [N, C, d1, d2] with spatial targets */
  mt_tensor *x4 = make(d, 4, TU_SHAPE(2, 5, 3, 4), 2, -3, 3);
  mt_tensor *t4 = targets(3, TU_SHAPE(2, 3, 4), 5, 3, 5);
  check_ce(x4, t4, -100, 0, rtol);
  check_ce(x4, t4, -100, 0.3, rtol);
  /* [C] with a 0-d target */
  mt_tensor *x1 = make(d, 1, TU_SHAPE(9), 4, -2, 2), *t0 = targets(0, NULL, 9, 4, 0);
  check_ce(x1, t0, -100, 0.05, rtol);
  mt_tensor_free(t0);
  mt_tensor_free(x1);
  mt_tensor_free(t4);
  mt_tensor_free(x4);
  mt_tensor_free(xs);
  mt_tensor_free(xc);
  mt_tensor_free(xt);
  mt_tensor_free(ti);
  mt_tensor_free(t);
  mt_tensor_free(x);
}
END_TEST

/* 32k classes (the threaded, vectorised rows) and logits far from 0. */
START_TEST(test_cross_entropy_large) {
  mt_tensor *u = make(MT_FLOAT32, 2, TU_SHAPE(16, 32768), 5, -8, 8);
  mt_tensor *x = TU_OK(mt_add_scalar(u, 1e4)); /* exp would overflow without the max */
  mt_tensor *t = targets(1, TU_SHAPE(16), 32768, 9, 4);
  check_ce(u, t, -100, 0, 1e-5);
  check_ce(x, t, -100, 0.1, 1e-4);
  mt_tensor *x64 = make(MT_FLOAT64, 2, TU_SHAPE(4, 40000), 6, -300, 300);
  mt_tensor *t64 = targets(1, TU_SHAPE(4), 40000, 3, 0);
  check_ce(x64, t64, -100, 0.1, 1e-10);
  mt_tensor_free(t64);
  mt_tensor_free(x64);
  mt_tensor_free(t);
  mt_tensor_free(x);
  mt_tensor_free(u);
}
END_TEST

START_TEST(test_cross_entropy_edges) {
  mt_tensor *x = make(MT_FLOAT32, 2, TU_SHAPE(3, 4), 1, -1, 1);
  mt_tensor *ign = TU_TENSOR(TU_VALS(-100, -100, -100), 1, TU_SHAPE(3), MT_INT64);
  mt_tensor *r = TU_OK(mt_cross_entropy(x, ign, -100, 0));
  double v;
  ck_assert_int_eq(mt_item(r, &v), MT_OK);
  ck_assert(isnan(v)); /* every target ignored: 0 / 0, as torch */
  mt_tensor_free(r);
  /* NaN and inf logits give NaN for their row */
  mt_tensor *bad = TU_TENSOR(TU_VALS(0, NAN, 1, 2), 2, TU_SHAPE(1, 4), MT_FLOAT32);
  mt_tensor *t1 = TU_TENSOR(TU_VALS(0), 1, TU_SHAPE(1), MT_INT64);
  r = TU_OK(mt_cross_entropy(bad, t1, -100, 0));
  ck_assert_int_eq(mt_item(r, &v), MT_OK);
  ck_assert(isnan(v));
  mt_tensor_free(r);
  /* an empty batch: NaN */
  mt_tensor *e = TU_OK(mt_zeros(2, TU_SHAPE(0, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *te = TU_OK(mt_zeros(1, TU_SHAPE(0), MT_INT64, TU_CPU));
  r = TU_OK(mt_cross_entropy(e, te, -100, 0));
  ck_assert_int_eq(mt_item(r, &v), MT_OK);
  ck_assert(isnan(v));
  mt_tensor_free(r);
  mt_tensor_free(te);
  mt_tensor_free(e);
  mt_tensor_free(t1);
  mt_tensor_free(bad);
  mt_tensor_free(ign);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_cross_entropy_refusals) {
  mt_tensor *x = TU_OK(mt_zeros(2, TU_SHAPE(3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *xi = TU_OK(mt_zeros(2, TU_SHAPE(3, 4), MT_INT64, TU_CPU));
  mt_tensor *t = TU_TENSOR(TU_VALS(0, 3, 1), 1, TU_SHAPE(3), MT_INT64);
  mt_tensor *t32 = TU_TENSOR(TU_VALS(0, 3, 1), 1, TU_SHAPE(3), MT_INT32);
  mt_tensor *high = TU_TENSOR(TU_VALS(0, 4, 1), 1, TU_SHAPE(3), MT_INT64);
  mt_tensor *neg = TU_TENSOR(TU_VALS(0, -1, 1), 1, TU_SHAPE(3), MT_INT64);
  mt_tensor *t2 = TU_OK(mt_zeros(1, TU_SHAPE(2), MT_INT64, TU_CPU));
  TU_FAILS(mt_cross_entropy(x, high, -100, 0), MT_ERR_INVALID_ARGUMENT, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, neg, -100, 0), MT_ERR_INVALID_ARGUMENT, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, t32, -100, 0), MT_ERR_DTYPE, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(xi, t, -100, 0), MT_ERR_DTYPE, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, t2, -100, 0), MT_ERR_SHAPE, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, t, -100, 1.5), MT_ERR_INVALID_ARGUMENT, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, t, -100, -0.1), MT_ERR_INVALID_ARGUMENT, "mt_cross_entropy");
  TU_FAILS(mt_cross_entropy(x, NULL, -100, 0), MT_ERR_INVALID_ARGUMENT, "mt_cross_entropy");
  mt_tensor *ok = TU_OK(mt_cross_entropy(x, neg, -1, 0)); /* -1 ignored, not out of range */
  mt_tensor_free(ok);
  mt_tensor_free(t2);
  mt_tensor_free(neg);
  mt_tensor_free(high);
  mt_tensor_free(t32);
  mt_tensor_free(t);
  mt_tensor_free(xi);
  mt_tensor_free(x);
}
END_TEST

static Suite *norm_suite(void) {
  Suite *s = suite_create("norm");
  TCase *tc = tcase_create("norm");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_rms_norm, 0, TU_COUNT(float_dtypes));
  tcase_add_test(tc, test_rms_norm_refusals);
  tcase_add_loop_test(tc, test_group_norm, 0, TU_COUNT(float_dtypes));
  tcase_add_test(tc, test_group_norm_refusals);
  tcase_add_loop_test(tc, test_batch_norm, 0, TU_COUNT(float_dtypes));
  tcase_add_test(tc, test_batch_norm_large);
  tcase_add_test(tc, test_batch_norm_refusals);
  tcase_add_loop_test(tc, test_cross_entropy, 0, TU_COUNT(float_dtypes));
  tcase_add_test(tc, test_cross_entropy_large);
  tcase_add_test(tc, test_cross_entropy_edges);
  tcase_add_test(tc, test_cross_entropy_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(norm_suite()); }
