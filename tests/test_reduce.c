/*
 * test_reduce.c - sum/mean/prod/amax/amin, argmax/argmin, softmax,
 * log_softmax and layer_norm against the double reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define DTYPE_I (tu_all_dtypes[_i])

typedef mt_tensor *(*reduce_fn)(const mt_tensor *, int, const int *, int);

static const struct {
  ref_redop op;
  reduce_fn fn;
  const char *name;
} redops[5] = {
    {REF_SUM, mt_sum, "mt_sum"},    {REF_MEAN, mt_mean, "mt_mean"}, {REF_PROD, mt_prod, "mt_prod"},
    {REF_AMAX, mt_amax, "mt_amax"}, {REF_AMIN, mt_amin, "mt_amin"},
};

static mt_dtype reduce_dtype(ref_redop op, mt_dtype d) {
  if (op == REF_SUM || op == REF_PROD) return ref_is_float(d) ? d : MT_INT64;
  if (op == REF_MEAN) return ref_is_float(d) ? d : MT_FLOAT32;
  return d;
}

/* Values for reductions: small enough that products stay exact-ish and
 * sums of 1/8 steps stay exact in every float dtype. */
static double sample(mt_dtype d, uint64_t i, int for_prod) {
  if (d == MT_BOOL) return tu_value(i, 0, 2) >= 1.0;
  if (ref_is_float(d)) return for_prod ? tu_value(i, -1.5, 1.5) : tu_value(i, -4, 4);
  double lo = d == MT_UINT8 ? 0 : for_prod ? -2 : -100, hi = for_prod ? 3 : 101;
  return floor(tu_value(i, lo, hi));
}

static mt_tensor *make(mt_dtype d, int ndim, const int64_t *shape, uint64_t seed, int for_prod) {
  int64_t n = ref_numel(ndim, shape);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = sample(d, seed + (uint64_t)i, for_prod);
  mt_tensor *t = TU_TENSOR(v, ndim, shape, d);
  free(v);
  return t;
}

/* Runs redops[k] over dims and compares with ref_reduce. */
static void check_reduce(int k, const mt_tensor *a, int ndims, const int *dims, int keepdim) {
  int ndim = mt_ndim(a);
  int64_t shape[MT_MAX_DIMS], oshape[MT_MAX_DIMS];
  for (int d = 0; d < ndim; d++) shape[d] = mt_shape(a, d);
  unsigned mask = 0;
  for (int i = 0; i < ndims; i++) mask |= 1u << (dims[i] < 0 ? dims[i] + ndim : dims[i]);
  if (ndims == 0) mask = (1u << ndim) - 1u;
  int ondim = 0;
  for (int d = 0; d < ndim; d++) {
    if (!(mask >> d & 1u)) oshape[ondim++] = shape[d];
    else if (keepdim) oshape[ondim++] = 1;
  }
  mt_dtype o = reduce_dtype(redops[k].op, mt_tensor_dtype(a));
  char ctx[160];
  int used = snprintf(ctx, sizeof ctx, "%s(%s, dims", redops[k].name,
                      mt_dtype_name(mt_tensor_dtype(a)));
  for (int i = 0; i < ndims; i++) used += snprintf(ctx + used, sizeof ctx - (size_t)used, " %d", dims[i]);
  snprintf(ctx + used, sizeof ctx - (size_t)used, ", keepdim %d)", keepdim);
  mt_tensor *r = redops[k].fn(a, ndims, dims, keepdim);
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, ondim, oshape);
  double *av = TU_READ(a);
  int64_t n = ref_numel(ondim, oshape);
  double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
  ref_reduce(redops[k].op, av, ndim, shape, mask, want);
  for (int64_t i = 0; i < n; i++) want[i] = ref_round_to(want[i], o);
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(want);
  free(av);
  mt_tensor_free(r);
}

START_TEST(test_reduce_every_dtype) {
  mt_dtype d = DTYPE_I;
  static const struct { int n; int dims[3]; } dimsets[] = {
      {0, {0}}, {1, {0}}, {1, {1}}, {1, {2}}, {1, {-1}}, {2, {0, 2}}, {2, {2, 0}}, {2, {-1, 1}},
      {3, {0, 1, 2}}, {3, {2, -3, 1}},
  };
  for (int k = 0; k < 5; k++) {
    mt_tensor *a = make(d, 3, TU_SHAPE(3, 4, 5), 10 + (uint64_t)k, redops[k].op == REF_PROD);
    mt_tensor *p = TU_OK(mt_permute(a, (const int[]){2, 0, 1})); /* non-contiguous [5, 3, 4] */
    for (int s = 0; s < TU_COUNT(dimsets); s++)
      for (int keep = 0; keep < 2; keep++) {
        check_reduce(k, a, dimsets[s].n, dimsets[s].dims, keep);
        check_reduce(k, p, dimsets[s].n, dimsets[s].dims, keep);
      }
    mt_tensor_free(p);
    mt_tensor_free(a);
    /* 0-d input */
    mt_tensor *z = make(d, 0, NULL, 3, 0);
    check_reduce(k, z, 0, NULL, 0);
    check_reduce(k, z, 0, NULL, 1);
    mt_tensor_free(z);
    /* reduced runs on both sides of kept ones, done outer first when the
     * inner run is short */
    mt_tensor *five = make(d, 5, TU_SHAPE(3, 2, 4, 3, 5), 9, redops[k].op == REF_PROD);
    check_reduce(k, five, 3, (const int[]){0, 2, 4}, 0);
    check_reduce(k, five, 2, (const int[]){1, 3}, 1);
    check_reduce(k, five, 2, (const int[]){0, 4}, 0);
    mt_tensor_free(five);
    /* a long inner and a long outer extent (vector loops, threads) */
    mt_tensor *big = make(d, 2, TU_SHAPE(70, 1001), 7, redops[k].op == REF_PROD);
    check_reduce(k, big, 1, (const int[]){1}, 0);
    check_reduce(k, big, 1, (const int[]){0}, 1);
    if (redops[k].op != REF_PROD) check_reduce(k, big, 0, NULL, 0);
    mt_tensor_free(big);
  }
}
END_TEST

START_TEST(test_reduce_empty_extents) {
  mt_tensor *e = TU_OK(mt_zeros(2, TU_SHAPE(0, 3), MT_FLOAT32, TU_CPU));
  int d0[1] = {0}, d1[1] = {1};
  mt_tensor *r = TU_OK(mt_sum(e, 1, d0, 0));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(0, 0, 0), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_prod(e, 1, d0, 1));
  TU_CHECK_META(r, MT_FLOAT32, 2, TU_SHAPE(1, 3));
  TU_CHECK_VALUES(r, TU_VALS(1, 1, 1), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(e, 1, d0, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN, NAN, NAN), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_sum(e, 0, NULL, 0));
  ck_assert_int_eq(mt_ndim(r), 0);
  TU_CHECK_VALUES(r, TU_VALS(0), 1);
  mt_tensor_free(r);
  /* reducing the non-empty dim gives an empty result */
  r = TU_OK(mt_amax(e, 1, d1, 0));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(0));
  mt_tensor_free(r);
  r = TU_OK(mt_sum(e, 1, d1, 0));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(0));
  mt_tensor_free(r);
  TU_FAILS(mt_amax(e, 1, d0, 0), MT_ERR_SHAPE, "mt_amax");
  TU_FAILS(mt_amin(e, 0, NULL, 0), MT_ERR_SHAPE, "mt_amin");
  TU_FAILS(mt_argmax(e, 0, 0), MT_ERR_SHAPE, "mt_argmax");
  TU_FAILS(mt_argmin(e, -2, 1), MT_ERR_SHAPE, "mt_argmin");
  mt_tensor_free(e);
  /* integer empties give int64 0 and 1, float32 NaN */
  mt_tensor *ie = TU_OK(mt_zeros(1, TU_SHAPE(0), MT_INT8, TU_CPU));
  r = TU_OK(mt_sum(ie, 0, NULL, 0));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(0), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_prod(ie, 0, NULL, 0));
  TU_CHECK_VALUES(r, TU_VALS(1), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(ie, 0, NULL, 0));
  TU_CHECK_META(r, MT_FLOAT32, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(NAN), 1);
  mt_tensor_free(r);
  mt_tensor_free(ie);
}
END_TEST

START_TEST(test_reduce_bad_dims) {
  mt_tensor *a = make(MT_FLOAT32, 3, TU_SHAPE(2, 3, 4), 1, 0);
  for (int k = 0; k < 5; k++) {
    const char *fn = redops[k].name;
    mt_clear_error();
    mt_tensor *r = redops[k].fn(a, 2, (const int[]){1, 1}, 0);
    ck_assert_msg(r == NULL, "%s accepted dims {1, 1}", fn);
    tu_check_error_at(__FILE__, __LINE__, "duplicate dims", MT_ERR_SHAPE, fn);
    r = redops[k].fn(a, 2, (const int[]){0, -3}, 0); /* the same dim twice */
    ck_assert_msg(r == NULL, "%s accepted dims {0, -3}", fn);
    tu_check_error_at(__FILE__, __LINE__, "duplicate dims", MT_ERR_SHAPE, fn);
    r = redops[k].fn(a, 1, (const int[]){3}, 0);
    ck_assert_msg(r == NULL, "%s accepted dim 3", fn);
    tu_check_error_at(__FILE__, __LINE__, "dim 3", MT_ERR_SHAPE, fn);
    r = redops[k].fn(a, 1, (const int[]){-4}, 0);
    ck_assert_msg(r == NULL, "%s accepted dim -4", fn);
    tu_check_error_at(__FILE__, __LINE__, "dim -4", MT_ERR_SHAPE, fn);
    r = redops[k].fn(a, 4, (const int[]){0, 1, 2, 0}, 0);
    ck_assert_msg(r == NULL, "%s accepted 4 dims of a 3-d tensor", fn);
    tu_check_error_at(__FILE__, __LINE__, "4 dims", MT_ERR_SHAPE, fn);
    mt_clear_error();
    r = redops[k].fn(a, 1, NULL, 0);
    ck_assert_msg(r == NULL, "%s accepted NULL dims", fn);
    tu_check_error_at(__FILE__, __LINE__, "NULL dims", MT_ERR_INVALID_ARGUMENT, fn);
    mt_clear_error();
    r = redops[k].fn(NULL, 0, NULL, 0);
    ck_assert_msg(r == NULL, "%s accepted a NULL tensor", fn);
    tu_check_error_at(__FILE__, __LINE__, "NULL a", MT_ERR_INVALID_ARGUMENT, fn);
  }
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_reduce_nan) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, NAN, 3, -INFINITY, 2, 5), 2, TU_SHAPE(2, 3), MT_FLOAT32);
  int d1[1] = {1}, d0[1] = {0};
  mt_tensor *r = TU_OK(mt_amax(a, 1, d1, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN, 5), 2);
  mt_tensor_free(r);
  r = TU_OK(mt_amin(a, 1, d1, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN, -INFINITY), 2);
  mt_tensor_free(r);
  r = TU_OK(mt_amax(a, 1, d0, 0));
  TU_CHECK_VALUES(r, TU_VALS(1, NAN, 5), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_sum(a, 1, d1, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN, -INFINITY), 2);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(a, 0, NULL, 0));
  TU_CHECK_VALUES(r, TU_VALS(NAN), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_prod(a, 1, d0, 0));
  TU_CHECK_VALUES(r, TU_VALS(-INFINITY, NAN, 15), 3);
  mt_tensor_free(r);
  mt_tensor_free(a);
  /* a NaN anywhere in a long row, including the tail past the vector width */
  for (int pos = 0; pos < 3; pos++) {
    const int at[3] = {0, 4096, 9999};
    double *v = malloc(sizeof(double) * 10000);
    for (int i = 0; i < 10000; i++) v[i] = tu_value((uint64_t)i, -4, 4);
    v[at[pos]] = NAN;
    mt_tensor *t = TU_TENSOR(v, 1, TU_SHAPE(10000), MT_FLOAT32);
    r = TU_OK(mt_amax(t, 0, NULL, 0));
    TU_CHECK_VALUES(r, TU_VALS(NAN), 1);
    mt_tensor_free(r);
    r = TU_OK(mt_amin(t, 0, NULL, 0));
    TU_CHECK_VALUES(r, TU_VALS(NAN), 1);
    mt_tensor_free(r);
    r = TU_OK(mt_argmax(t, 0, 0));
    TU_CHECK_VALUES(r, &(double){at[pos]}, 1);
    mt_tensor_free(r);
    mt_tensor_free(t);
    free(v);
  }
}
END_TEST

START_TEST(test_reduce_large_accuracy) {
  const int64_t n = (1 << 20) + 3;
  mt_tensor *a = TU_OK(mt_rand(1, &n, MT_FLOAT32, TU_CPU, 42));
  double *v = TU_READ(a), sum = 0;
  for (int64_t i = 0; i < n; i++) sum += v[i];
  mt_tensor *r = TU_OK(mt_sum(a, 0, NULL, 0));
  double x;
  TU_CHECK_OK(mt_item(r, &x));
  ck_assert_msg(fabs(x - sum) <= 1e-5 * sum, "sum of %lld float32: %.9g, exact %.9g (rel %.2g)",
                (long long)n, x, sum, fabs(x - sum) / sum);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(a, 0, NULL, 0));
  TU_CHECK_OK(mt_item(r, &x));
  ck_assert_msg(fabs(x - sum / (double)n) <= 1e-5 * sum / (double)n, "mean %.9g, exact %.9g", x,
                sum / (double)n);
  mt_tensor_free(r);

  /* along each dim of a 2-d view of the same data */
  mt_tensor *m = TU_OK(mt_slice(a, 0, 0, 1024 * 1024, 1));
  mt_tensor *m2 = TU_OK(mt_reshape(m, 2, TU_SHAPE(1024, 1024)));
  for (int dim = 0; dim < 2; dim++) {
    r = TU_OK(mt_sum(m2, 1, &dim, 0));
    double want[1024] = {0};
    for (int i = 0; i < 1024; i++)
      for (int j = 0; j < 1024; j++) want[dim ? i : j] += v[i * 1024 + j];
    TU_CHECK_CLOSE(r, want, 1024, 1e-5, 0);
    mt_tensor_free(r);
  }
  free(v);
  mt_tensor_free(m2);
  mt_tensor_free(m);
  mt_tensor_free(a);

  /* 16-bit floats accumulate in float32 */
  mt_tensor *h = TU_OK(mt_ones(1, TU_SHAPE(10000), MT_FLOAT16, TU_CPU));
  r = TU_OK(mt_sum(h, 0, NULL, 0));
  TU_CHECK_OK(mt_item(r, &x));
  ck_assert_msg(x == 10000, "float16 sum of 10000 ones = %g", x);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(h, 0, NULL, 0));
  TU_CHECK_OK(mt_item(r, &x));
  ck_assert_msg(x == 1, "float16 mean of ones = %g", x);
  mt_tensor_free(r);
  mt_tensor_free(h);
  mt_tensor *b = TU_OK(mt_ones(1, TU_SHAPE(10000), MT_BFLOAT16, TU_CPU));
  r = TU_OK(mt_sum(b, 0, NULL, 0));
  TU_CHECK_OK(mt_item(r, &x));
  ck_assert_msg(x == 9984, "bfloat16 sum of 10000 ones = %g (10000 rounds to 9984)", x);
  mt_tensor_free(r);
  mt_tensor_free(b);

  /* integers accumulate in int64 */
  mt_tensor *u = TU_OK(mt_full(1, TU_SHAPE(100000), 255, MT_UINT8, TU_CPU));
  r = TU_OK(mt_sum(u, 0, NULL, 0));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(25500000), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_mean(u, 0, NULL, 0));
  TU_CHECK_VALUES(r, TU_VALS(255), 1);
  mt_tensor_free(r);
  mt_tensor_free(u);
  mt_tensor *i32 = TU_OK(mt_full(1, TU_SHAPE(70000), 2147483647.0, MT_INT32, TU_CPU));
  r = TU_OK(mt_sum(i32, 0, NULL, 0));
  int64_t s64;
  TU_CHECK_OK(mt_to_host(r, &s64, 8));
  ck_assert(s64 == (int64_t)70000 * 2147483647);
  mt_tensor_free(r);
  mt_tensor_free(i32);
  mt_tensor *bo = TU_OK(mt_ones(2, TU_SHAPE(300, 300), MT_BOOL, TU_CPU));
  r = TU_OK(mt_sum(bo, 0, NULL, 0));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(90000), 1);
  mt_tensor_free(r);
  mt_tensor_free(bo);
}
END_TEST

/* ------------------------------------------------------------ argmax */

/* int64 reductions are exact beyond 2^53. */
START_TEST(test_reduce_int64_exact) {
  const int64_t big = (int64_t)1 << 62, root = 3037000499;
  const int64_t xs[6] = {big, 1, -big, root, root, INT64_MAX};
  mt_tensor *x = TU_OK(mt_from_data(xs, 2, TU_SHAPE(2, 3), MT_INT64, TU_CPU));
  int d1[1] = {1};
  mt_tensor *r = TU_OK(mt_sum(x, 1, d1, 0));
  const int64_t sums[2] = {1, (int64_t)((uint64_t)root * 2u + (uint64_t)INT64_MAX)};
  TU_CHECK_RAW(r, sums, 2);
  mt_tensor_free(r);
  mt_tensor *rr = TU_OK(mt_slice(x, 1, 0, 2, 1)); /* [[big, 1], [root, root]] */
  r = TU_OK(mt_prod(rr, 1, d1, 0));
  const int64_t prods[2] = {big, root * root};
  TU_CHECK_RAW(r, prods, 2);
  mt_tensor_free(r);
  mt_tensor_free(rr);
  r = TU_OK(mt_amax(x, 0, NULL, 0));
  const int64_t mx = INT64_MAX;
  TU_CHECK_RAW(r, &mx, 1);
  mt_tensor_free(r);
  /* neighbours that double cannot tell apart */
  const int64_t ys[3] = {INT64_MAX - 1, INT64_MAX, INT64_MAX - 2};
  mt_tensor *y = TU_OK(mt_from_data(ys, 1, TU_SHAPE(3), MT_INT64, TU_CPU));
  r = TU_OK(mt_argmax(y, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(1), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_argmin(y, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(2), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_amin(y, 0, NULL, 0));
  const int64_t mn = INT64_MAX - 2;
  TU_CHECK_RAW(r, &mn, 1);
  mt_tensor_free(r);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_argreduce_literals) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 3, 3, 0, 0, -1), 1, TU_SHAPE(6), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_argmax(a, 0, 0));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(1), 1); /* first of the tied maxima */
  mt_tensor_free(r);
  r = TU_OK(mt_argmin(a, -1, 1));
  TU_CHECK_META(r, MT_INT64, 1, TU_SHAPE(1));
  TU_CHECK_VALUES(r, TU_VALS(5), 1);
  mt_tensor_free(r);
  mt_tensor_free(a);

  mt_tensor *n = TU_TENSOR(TU_VALS(1, NAN, 3, NAN, -INFINITY), 1, TU_SHAPE(5), MT_FLOAT64);
  r = TU_OK(mt_argmax(n, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(1), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_argmin(n, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(1), 1); /* NaN counts as the minimum too */
  mt_tensor_free(r);
  mt_tensor_free(n);

  mt_tensor *m = TU_TENSOR(TU_VALS(5, 1, 5, 2, 7, 7, 0, 7, 7, 9, -3, 9), 2, TU_SHAPE(3, 4), MT_INT16);
  r = TU_OK(mt_argmax(m, 1, 0));
  TU_CHECK_META(r, MT_INT64, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(0, 0, 1), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_argmax(m, 0, 1));
  TU_CHECK_META(r, MT_INT64, 2, TU_SHAPE(1, 4));
  TU_CHECK_VALUES(r, TU_VALS(1, 2, 0, 2), 4);
  mt_tensor_free(r);
  r = TU_OK(mt_argmin(m, -2, 0));
  TU_CHECK_VALUES(r, TU_VALS(0, 0, 2, 0), 4);
  mt_tensor_free(r);
  mt_tensor_free(m);

  mt_tensor *b = TU_TENSOR(TU_VALS(0, 0, 1, 1), 1, TU_SHAPE(4), MT_BOOL);
  r = TU_OK(mt_argmax(b, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(2), 1);
  mt_tensor_free(r);
  mt_tensor_free(b);

  mt_tensor *s = TU_TENSOR(TU_VALS(4), 0, NULL, MT_FLOAT32);
  r = TU_OK(mt_argmax(s, 0, 0));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  TU_CHECK_VALUES(r, TU_VALS(0), 1);
  mt_tensor_free(r);
  TU_FAILS(mt_argmax(s, 1, 0), MT_ERR_SHAPE, "mt_argmax");
  mt_tensor_free(s);

  mt_tensor *t = TU_OK(mt_zeros(2, TU_SHAPE(2, 3), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_argmax(t, 2, 0), MT_ERR_SHAPE, "mt_argmax");
  TU_FAILS(mt_argmin(t, -3, 0), MT_ERR_SHAPE, "mt_argmin");
  TU_FAILS(mt_argmax(NULL, 0, 0), MT_ERR_INVALID_ARGUMENT, "mt_argmax");
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_argreduce_every_dtype) {
  mt_dtype d = DTYPE_I;
  /* small integer ranges make many ties */
  mt_tensor *a = make(d, 3, TU_SHAPE(4, 5, 6), 21, 1);
  mt_tensor *p = TU_OK(mt_transpose(a, 0, 2));
  const mt_tensor *ins[2] = {a, p};
  for (int w = 0; w < 2; w++)
    for (int dim = -3; dim < 3; dim++)
      for (int is_max = 0; is_max < 2; is_max++) {
        const mt_tensor *t = ins[w];
        int64_t shape[3], oshape[3];
        for (int i = 0; i < 3; i++) shape[i] = mt_shape(t, i);
        int nd = dim < 0 ? dim + 3 : dim, on = 0;
        for (int i = 0; i < 3; i++)
          if (i != nd) oshape[on++] = shape[i];
        mt_tensor *r = is_max ? mt_argmax(t, dim, 0) : mt_argmin(t, dim, 0);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "%s(%s, %d)", is_max ? "argmax" : "argmin", mt_dtype_name(d), dim);
        ck_assert_msg(r != NULL, "%s: %s", ctx, mt_last_error());
        tu_check_meta_at(ctx, __LINE__, r, MT_INT64, 2, oshape);
        double *v = TU_READ(t), want[120];
        ref_argreduce(is_max, v, 3, shape, nd, want);
        tu_check_close_at(ctx, __LINE__, r, want, ref_numel(2, oshape), 0, 0);
        free(v);
        mt_tensor_free(r);
      }
  mt_tensor_free(p);
  mt_tensor_free(a);
  /* a long row: the first of two equal maxima, past the threading threshold */
  if (d == MT_BOOL) return;
  mt_tensor *big = TU_OK(mt_zeros(1, TU_SHAPE(50001), d, TU_CPU));
  mt_tensor *hi = TU_OK(mt_full(0, NULL, 3, d, TU_CPU));
  mt_tensor *lo = TU_OK(mt_full(0, NULL, ref_is_int(d) && d == MT_UINT8 ? 0 : -3, d, TU_CPU));
  mt_tensor *s1 = TU_OK(mt_slice(big, 0, 33333, 33334, 1)), *s2 = TU_OK(mt_slice(big, 0, 45000, 45001, 1));
  mt_tensor *s3 = TU_OK(mt_slice(big, 0, 40000, 40001, 1));
  TU_CHECK_OK(mt_copy_(s1, hi));
  TU_CHECK_OK(mt_copy_(s2, hi));
  if (d != MT_UINT8) TU_CHECK_OK(mt_copy_(s3, lo));
  mt_tensor *r = TU_OK(mt_argmax(big, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(33333), 1);
  mt_tensor_free(r);
  r = TU_OK(mt_argmin(big, 0, 0));
  TU_CHECK_VALUES(r, TU_VALS(d == MT_UINT8 ? 0 : 40000), 1);
  mt_tensor_free(r);
  mt_tensor_free(s1);
  mt_tensor_free(s2);
  mt_tensor_free(s3);
  mt_tensor_free(hi);
  mt_tensor_free(lo);
  mt_tensor_free(big);
}
END_TEST

/* ------------------------------------------------------------ softmax */

static void check_softmax(int log_form, const mt_tensor *a, int dim) {
  int ndim = mt_ndim(a);
  int64_t shape[MT_MAX_DIMS];
  for (int i = 0; i < ndim; i++) shape[i] = mt_shape(a, i);
  mt_dtype d = mt_tensor_dtype(a), o = ref_is_float(d) ? d : MT_FLOAT32;
  char ctx[96];
  snprintf(ctx, sizeof ctx, "%s(%s, %d)", log_form ? "log_softmax" : "softmax", mt_dtype_name(d), dim);
  mt_tensor *r = log_form ? mt_log_softmax(a, dim) : mt_softmax(a, dim);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, ndim, shape);
  int64_t n = mt_numel(a);
  double *v = TU_READ(a), *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
  ref_softmax(log_form, v, ndim, shape, ndim ? (dim < 0 ? dim + ndim : dim) : 0, want);
  for (int64_t i = 0; i < n; i++) want[i] = ref_round_to(want[i], o);
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  /* log_softmax near 0 is x - max - log(sum) with sum near 1: an ulp of
   * float32 at 1 is the absolute error to expect */
  if (o == MT_FLOAT32) atol = log_form ? 1e-6 : 1e-7;
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(v);
  free(want);
  mt_tensor_free(r);
}

START_TEST(test_softmax_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_tensor *a = make(d, 3, TU_SHAPE(3, 4, 5), 5, 0);
  mt_tensor *p = TU_OK(mt_permute(a, (const int[]){1, 2, 0}));
  for (int log_form = 0; log_form < 2; log_form++)
    for (int dim = -3; dim < 3; dim++) {
      check_softmax(log_form, a, dim);
      check_softmax(log_form, p, dim);
    }
  mt_tensor *big = make(d, 2, TU_SHAPE(40, 1031), 9, 0);
  mt_tensor *s = make(d, 0, NULL, 1, 0);
  mt_tensor *e = TU_OK(mt_zeros(2, TU_SHAPE(0, 4), d, TU_CPU));
  for (int log_form = 0; log_form < 2; log_form++) {
    check_softmax(log_form, big, 1);
    check_softmax(log_form, big, 0);
    check_softmax(log_form, s, 0);
    check_softmax(log_form, e, 1);
    check_softmax(log_form, e, 0);
  }
  mt_tensor_free(e);
  mt_tensor_free(s);
  mt_tensor_free(big);
  mt_tensor_free(p);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_softmax_stability) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1e4, 1e4 - 1, 1e4 - 2, -INFINITY, 0, 1, 1e4, -1e4, 0, -50, -50, -50),
                           2, TU_SHAPE(4, 3), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_softmax(a, 1));
  double e1 = exp(-1), e2 = exp(-2), z = 1 + e1 + e2, y = 1 + exp(1);
  TU_CHECK_CLOSE(r, TU_VALS(1 / z, e1 / z, e2 / z, 0, 1 / y, exp(1) / y, 1, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3),
                 12, 1e-5, 1e-7);
  mt_tensor_free(r);
  r = TU_OK(mt_log_softmax(a, -1));
  double lz = log(z), ly = log(y);
  TU_CHECK_CLOSE(r, TU_VALS(-lz, -1 - lz, -2 - lz, -INFINITY, -ly, 1 - ly, 0, -2e4, -1e4,
                            -log(3), -log(3), -log(3)),
                 12, 1e-5, 1e-6);
  mt_tensor_free(r);
  mt_tensor_free(a);

  /* a NaN anywhere in a short row, in its vector lanes or its tail, makes
   * the whole row NaN; the other rows are untouched */
  float rows[3 * 20];
  for (int i = 0; i < 3 * 20; i++) rows[i] = (float)(i % 7) - 3;
  rows[13] = NAN;
  rows[20 + 18] = NAN;
  a = TU_OK(mt_from_data(rows, 2, TU_SHAPE(3, 20), MT_FLOAT32, TU_CPU));
  for (int log_form = 0; log_form < 2; log_form++) {
    r = TU_OK(log_form ? mt_log_softmax(a, 1) : mt_softmax(a, 1));
    float got[3 * 20];
    TU_CHECK_OK(mt_to_host(r, got, sizeof got));
    for (int i = 0; i < 3 * 20; i++)
      ck_assert_msg(i < 40 ? isnan(got[i]) : isfinite(got[i]), "%ssoftmax element %d: %g",
                    log_form ? "log_" : "", i, (double)got[i]);
    mt_tensor_free(r);
  }
  mt_tensor_free(a);

  /* every row sums to 1, float16 and float32, down the first dim */
  for (int pass = 0; pass < 2; pass++) {
    mt_dtype d = pass ? MT_FLOAT16 : MT_FLOAT32;
    mt_tensor *x = TU_OK(mt_randn(2, TU_SHAPE(257, 9), d, TU_CPU, 3));
    mt_tensor *x10 = TU_OK(mt_mul_scalar(x, 10));
    r = TU_OK(mt_softmax(x10, 0));
    mt_tensor *rf = TU_OK(mt_cast(r, MT_FLOAT64));
    int dim0 = 0;
    mt_tensor *sums = TU_OK(mt_sum(rf, 1, &dim0, 0));
    double ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    TU_CHECK_CLOSE(sums, ones, 9, pass ? 2e-2 : 1e-5, 0);
    mt_tensor_free(sums);
    mt_tensor_free(rf);
    mt_tensor_free(r);
    mt_tensor_free(x10);
    mt_tensor_free(x);
  }
  TU_FAILS(mt_softmax(NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_softmax");
  mt_tensor *t = TU_OK(mt_zeros(2, TU_SHAPE(2, 2), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_softmax(t, 2), MT_ERR_SHAPE, "mt_softmax");
  TU_FAILS(mt_log_softmax(t, -3), MT_ERR_SHAPE, "mt_log_softmax");
  mt_tensor_free(t);
}
END_TEST

/* --------------------------------------------------------- layer_norm */

static void check_layer_norm(const mt_tensor *a, const mt_tensor *w, const mt_tensor *b,
                             double eps, double rtol, double atol) {
  int ndim = mt_ndim(a);
  int64_t shape[MT_MAX_DIMS];
  for (int i = 0; i < ndim; i++) shape[i] = mt_shape(a, i);
  mt_dtype d = mt_tensor_dtype(a), o = ref_is_float(d) ? d : MT_FLOAT32;
  char ctx[96];
  snprintf(ctx, sizeof ctx, "layer_norm(%s%s%s, eps %g)", mt_dtype_name(d), w ? ", w" : "",
           b ? ", b" : "", eps);
  mt_tensor *r = mt_layer_norm(a, w, b, eps);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, ndim, shape);
  int64_t n = mt_numel(a);
  double *v = TU_READ(a), *wv = w ? TU_READ(w) : NULL, *bv = b ? TU_READ(b) : NULL;
  double *want = malloc(sizeof(double) * (size_t)n);
  ref_layer_norm(v, ndim, shape, wv, bv, eps, want);
  for (int64_t i = 0; i < n; i++) want[i] = ref_round_to(want[i], o);
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(want);
  free(v);
  free(wv);
  free(bv);
  mt_tensor_free(r);
}

START_TEST(test_layer_norm) {
  static const mt_dtype dts[] = {MT_FLOAT32, MT_FLOAT64, MT_FLOAT16, MT_BFLOAT16, MT_INT32, MT_UINT8};
  for (int i = 0; i < TU_COUNT(dts); i++) {
    mt_dtype d = dts[i];
    mt_dtype o = ref_is_float(d) ? d : MT_FLOAT32;
    double rtol, atol;
    tu_tol(o, &rtol, &atol);
    if (o == MT_FLOAT32) rtol = 1e-4, atol = 1e-5;
    mt_tensor *a = make(d, 3, TU_SHAPE(2, 3, 7), 3, 0);
    mt_tensor *w = make(o, 1, TU_SHAPE(7), 50, 0);
    mt_tensor *b = make(o, 1, TU_SHAPE(7), 60, 0);
    check_layer_norm(a, NULL, NULL, 1e-5, rtol, atol);
    check_layer_norm(a, w, NULL, 1e-5, rtol, atol);
    check_layer_norm(a, NULL, b, 0.5, rtol, atol);
    check_layer_norm(a, w, b, 1e-3, rtol, atol);
    mt_tensor *t = TU_OK(mt_transpose(a, 0, 1));
    check_layer_norm(t, w, b, 1e-5, rtol, atol);
    mt_tensor_free(t);
    mt_tensor *big = make(d, 2, TU_SHAPE(64, 1031), 8, 0);
    check_layer_norm(big, NULL, NULL, 1e-5, rtol, atol);
    mt_tensor_free(big);
    mt_tensor_free(a);
    mt_tensor_free(w);
    mt_tensor_free(b);
  }
  /* a constant row normalises to the bias; eps 0 is allowed */
  mt_tensor *c = TU_OK(mt_full(2, TU_SHAPE(2, 4), 7, MT_FLOAT32, TU_CPU));
  mt_tensor *bias = TU_TENSOR(TU_VALS(1, 2, 3, 4), 1, TU_SHAPE(4), MT_FLOAT32);
  mt_tensor *r = TU_OK(mt_layer_norm(c, NULL, bias, 1e-5));
  TU_CHECK_VALUES(r, TU_VALS(1, 2, 3, 4, 1, 2, 3, 4), 8);
  mt_tensor_free(r);
  mt_tensor *x = TU_TENSOR(TU_VALS(1, 3), 1, TU_SHAPE(2), MT_FLOAT64);
  r = TU_OK(mt_layer_norm(x, NULL, NULL, 0));
  TU_CHECK_VALUES(r, TU_VALS(-1, 1), 2);
  mt_tensor_free(r);
  mt_tensor_free(x);
  mt_tensor_free(bias);
  mt_tensor_free(c);
}
END_TEST

/* Rows with a large mean and a small spread: the variance must not be
 * computed as E[x^2] - E[x]^2 in float32. */
START_TEST(test_layer_norm_large_mean) {
  mt_tensor *u = TU_OK(mt_rand(2, TU_SHAPE(8, 4096), MT_FLOAT32, TU_CPU, 11));
  mt_tensor *a = TU_OK(mt_add_scalar(u, 1000));
  check_layer_norm(a, NULL, NULL, 1e-5, 1e-2, 2e-2);
  mt_tensor_free(a);
  mt_tensor_free(u);
}
END_TEST

START_TEST(test_layer_norm_refusals) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *w5 = TU_OK(mt_ones(1, TU_SHAPE(5), MT_FLOAT32, TU_CPU));
  mt_tensor *w2d = TU_OK(mt_ones(2, TU_SHAPE(1, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_layer_norm(a, w5, NULL, 1e-5), MT_ERR_SHAPE, "mt_layer_norm");
  TU_FAILS(mt_layer_norm(a, NULL, w2d, 1e-5), MT_ERR_SHAPE, "mt_layer_norm");
  TU_FAILS(mt_layer_norm(s, NULL, NULL, 1e-5), MT_ERR_SHAPE, "mt_layer_norm");
  TU_FAILS(mt_layer_norm(a, NULL, NULL, -1e-5), MT_ERR_INVALID_ARGUMENT, "mt_layer_norm");
  TU_FAILS(mt_layer_norm(a, NULL, NULL, NAN), MT_ERR_INVALID_ARGUMENT, "mt_layer_norm");
  TU_FAILS(mt_layer_norm(NULL, NULL, NULL, 1e-5), MT_ERR_INVALID_ARGUMENT, "mt_layer_norm");
  mt_tensor_free(s);
  mt_tensor_free(w2d);
  mt_tensor_free(w5);
  mt_tensor_free(a);
}
END_TEST

static Suite *reduce_suite(void) {
  Suite *s = suite_create("reduce");
  TCase *tc = tcase_create("reduce");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_reduce_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_reduce_empty_extents);
  tcase_add_test(tc, test_reduce_bad_dims);
  tcase_add_test(tc, test_reduce_nan);
  tcase_add_test(tc, test_reduce_large_accuracy);
  tcase_add_test(tc, test_reduce_int64_exact);
  suite_add_tcase(s, tc);

  tc = tcase_create("argreduce");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_argreduce_literals);
  tcase_add_loop_test(tc, test_argreduce_every_dtype, 0, REF_NUM_DTYPES);
  suite_add_tcase(s, tc);

  tc = tcase_create("normalise");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_softmax_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_softmax_stability);
  tcase_add_test(tc, test_layer_norm);
  tcase_add_test(tc, test_layer_norm_large_mean);
  tcase_add_test(tc, test_layer_norm_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(reduce_suite()); }
