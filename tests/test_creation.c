/*
 * test_creation.c - empty/zeros/ones/full/arange/from_data/rand/randn:
 * every dtype, 0-d and empty shapes, and every documented refusal.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* Loop tests run once per dtype: _i indexes tu_all_dtypes. */
#define DTYPE_I (tu_all_dtypes[_i])

static const mt_dtype float_dtypes[4] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};

/* Checks row-major contiguous strides of t. */
static void check_contiguous(const mt_tensor *t) {
  ck_assert_int_eq(mt_is_contiguous(t), 1);
  int64_t expect = 1;
  for (int d = mt_ndim(t) - 1; d >= 0; d--) {
    if (mt_shape(t, d) > 1) ck_assert_int_eq(mt_stride(t, d), expect);
    expect *= mt_shape(t, d) > 0 ? mt_shape(t, d) : 1;
  }
}

/* ------------------------------------------------------------- fills */

START_TEST(test_empty_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_tensor *t = TU_OK(mt_empty(3, TU_SHAPE(2, 3, 4), d, TU_CPU));
  TU_CHECK_META(t, d, 3, TU_SHAPE(2, 3, 4));
  ck_assert_int_eq(mt_numel(t), 24);
  ck_assert_int_eq(mt_stride(t, 0), 12);
  ck_assert_int_eq(mt_stride(t, 1), 4);
  ck_assert_int_eq(mt_stride(t, 2), 1);
  ck_assert_int_eq(mt_stride(t, -1), 1); /* negative dims count from the end */
  ck_assert_int_eq(mt_shape(t, -3), 2);
  mt_device dev = mt_tensor_device(t);
  ck_assert_int_eq(dev.type, MT_DEVICE_CPU);
  ck_assert_int_eq(dev.index, 0);
  check_contiguous(t);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_zeros_ones_every_dtype) {
  mt_dtype d = DTYPE_I;
  double zeros[6] = {0}, ones[6] = {1, 1, 1, 1, 1, 1};
  mt_tensor *z = TU_OK(mt_zeros(2, TU_SHAPE(2, 3), d, TU_CPU));
  mt_tensor *o = TU_OK(mt_ones(2, TU_SHAPE(2, 3), d, TU_CPU));
  TU_CHECK_META(z, d, 2, TU_SHAPE(2, 3));
  TU_CHECK_META(o, d, 2, TU_SHAPE(2, 3));
  TU_CHECK_CLOSE(z, zeros, 6, 0, 0);
  TU_CHECK_CLOSE(o, ones, 6, 0, 0);
  check_contiguous(z);
  mt_tensor_free(z);
  mt_tensor_free(o);
  /* a size past the threading threshold */
  o = TU_OK(mt_ones(1, TU_SHAPE(70001), d, TU_CPU));
  double *v = TU_READ(o);
  for (int i = 0; i < 70001; i++) TU_EXPECT(v[i] == 1.0, "[%d] = %g", i, v[i]);
  free(v);
  mt_tensor_free(o);
}
END_TEST

START_TEST(test_full_every_dtype) {
  mt_dtype d = DTYPE_I;
  /* values chosen to exercise mt_cast's rules on each dtype */
  static const double values[] = {2.5,   -7.75, 300.7, -300.7, 1e10,     -1e10, 0.1,
                                  -0.0,  NAN,   INFINITY, -INFINITY, 65519.0, 65520.0, 1e-30};
  for (int i = 0; i < TU_COUNT(values); i++) {
    mt_tensor *t = TU_OK(mt_full(2, TU_SHAPE(3, 5), values[i], d, TU_CPU));
    TU_CHECK_META(t, d, 2, TU_SHAPE(3, 5));
    double want[15];
    for (int k = 0; k < 15; k++) want[k] = ref_round_to(values[i], d);
    TU_CHECK_CLOSE(t, want, 15, 0, 0);
    mt_tensor_free(t);
  }
}
END_TEST

START_TEST(test_full_literals) {
  /* Hand-computed conversions of mt_full's value. */
  static const struct { double v; mt_dtype d; double want; } cases[] = {
      {300.7, MT_UINT8, 255},    {-5.5, MT_UINT8, 0},        {-2.9, MT_INT8, -2},
      {200.0, MT_INT8, 127},     {NAN, MT_INT32, 0},         {3e9, MT_INT32, 2147483647.0},
      {-3e9, MT_INT32, -2147483648.0}, {0.1, MT_BOOL, 1},    {NAN, MT_BOOL, 1},
      {-0.0, MT_BOOL, 0},        {300.7, MT_FLOAT16, 300.75}, {300.7, MT_BFLOAT16, 300},
      {65520.0, MT_FLOAT16, INFINITY}, {65519.0, MT_FLOAT16, 65504}, {1e39, MT_FLOAT32, INFINITY},
      {1e20, MT_INT64, 9223372036854775807.0},
  };
  for (int i = 0; i < TU_COUNT(cases); i++) {
    mt_tensor *t = TU_OK(mt_full(0, NULL, cases[i].v, cases[i].d, TU_CPU));
    double x;
    TU_CHECK_OK(mt_item(t, &x));
    ck_assert_msg((isnan(x) && isnan(cases[i].want)) || x == cases[i].want,
                  "full(%g, %s) = %.17g, expected %.17g", cases[i].v, mt_dtype_name(cases[i].d), x,
                  cases[i].want);
    mt_tensor_free(t);
  }
  /* int64 saturation read exactly */
  mt_tensor *t = TU_OK(mt_full(1, TU_SHAPE(2), -1e30, MT_INT64, TU_CPU));
  int64_t got[2];
  TU_CHECK_OK(mt_to_host(t, got, sizeof got));
  ck_assert(got[0] == INT64_MIN && got[1] == INT64_MIN);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_zero_dim_and_empty) {
  mt_dtype d = DTYPE_I;
  mt_tensor *t = TU_OK(mt_full(0, NULL, 1.0, d, TU_CPU));
  ck_assert_int_eq(mt_ndim(t), 0);
  ck_assert_int_eq(mt_numel(t), 1);
  ck_assert_int_eq(mt_is_contiguous(t), 1);
  double x = -1;
  TU_CHECK_OK(mt_item(t, &x));
  ck_assert(x == 1.0);
  unsigned char one[8];
  TU_CHECK_OK(mt_to_host(t, one, ref_size(d)));
  ck_assert(ref_load(one, d) == 1.0);
  mt_tensor_free(t);

  /* ndim 0 with a non-NULL shape is the same 0-d tensor */
  t = TU_OK(mt_zeros(0, TU_SHAPE(7), d, TU_CPU));
  ck_assert_int_eq(mt_ndim(t), 0);
  ck_assert_int_eq(mt_numel(t), 1);
  mt_tensor_free(t);

  static const int64_t shapes[][3] = {{0, 3, 1}, {3, 0, 5}, {2, 2, 0}};
  for (int i = 0; i < 3; i++) {
    t = TU_OK(mt_ones(3, shapes[i], d, TU_CPU));
    TU_CHECK_META(t, d, 3, shapes[i]);
    ck_assert_int_eq(mt_numel(t), 0);
    unsigned char dummy[8];
    TU_CHECK_OK(mt_to_host(t, dummy, 0));
    TU_STATUS(mt_to_host(t, dummy, 1), MT_ERR_INVALID_ARGUMENT, "mt_to_host");
    TU_STATUS(mt_item(t, &x), MT_ERR_SHAPE, "mt_item");
    mt_tensor_free(t);
  }
  t = TU_OK(mt_empty(1, TU_SHAPE(0), d, TU_CPU));
  ck_assert_int_eq(mt_numel(t), 0);
  mt_tensor_free(t);
  /* every creation function takes shape NULL for 0-d */
  t = TU_OK(mt_empty(0, NULL, d, TU_CPU));
  ck_assert_int_eq(mt_ndim(t), 0);
  mt_tensor_free(t);
  t = TU_OK(mt_from_data(one, 0, NULL, d, TU_CPU));
  ck_assert_int_eq(mt_ndim(t), 0);
  mt_tensor_free(t);
  if (ref_is_float(d)) {
    t = TU_OK(mt_rand(0, NULL, d, TU_CPU, 1));
    ck_assert_int_eq(mt_numel(t), 1);
    mt_tensor_free(t);
  }
}
END_TEST

START_TEST(test_max_dims) {
  int64_t shape[MT_MAX_DIMS + 1];
  for (int i = 0; i <= MT_MAX_DIMS; i++) shape[i] = i % 2 ? 2 : 1;
  mt_tensor *t = TU_OK(mt_ones(MT_MAX_DIMS, shape, MT_FLOAT32, TU_CPU));
  ck_assert_int_eq(mt_ndim(t), MT_MAX_DIMS);
  ck_assert_int_eq(mt_numel(t), 16);
  mt_tensor_free(t);
  TU_FAILS(mt_ones(MT_MAX_DIMS + 1, shape, MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_ones");
  TU_FAILS(mt_empty(MT_MAX_DIMS + 1, shape, MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_empty");
  TU_FAILS(mt_zeros(-1, shape, MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_zeros");
  TU_FAILS(mt_full(100, shape, 1, MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_full");
  TU_FAILS(mt_rand(9, shape, MT_FLOAT32, TU_CPU, 1), MT_ERR_SHAPE, "mt_rand");
  TU_FAILS(mt_randn(9, shape, MT_FLOAT32, TU_CPU, 1), MT_ERR_SHAPE, "mt_randn");
  TU_FAILS(mt_from_data(shape, 9, shape, MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_from_data");
}
END_TEST

START_TEST(test_bad_shapes) {
  TU_FAILS(mt_zeros(2, TU_SHAPE(3, -1), MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_zeros");
  TU_FAILS(mt_empty(1, TU_SHAPE(-5), MT_INT8, TU_CPU), MT_ERR_SHAPE, "mt_empty");
  TU_FAILS(mt_ones(3, TU_SHAPE(0, -2, 4), MT_FLOAT64, TU_CPU), MT_ERR_SHAPE, "mt_ones");
  TU_FAILS(mt_rand(1, TU_SHAPE(-1), MT_FLOAT32, TU_CPU, 3), MT_ERR_SHAPE, "mt_rand");
  TU_FAILS(mt_from_data(NULL, 1, TU_SHAPE(-1), MT_FLOAT32, TU_CPU), MT_ERR_SHAPE, "mt_from_data");

  /* NULL shape with ndim > 0 */
  TU_FAILS(mt_empty(1, NULL, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_empty");
  TU_FAILS(mt_zeros(2, NULL, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_zeros");
  TU_FAILS(mt_ones(2, NULL, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_ones");
  TU_FAILS(mt_full(2, NULL, 1, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_full");
  TU_FAILS(mt_rand(2, NULL, MT_FLOAT32, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT, "mt_rand");
  TU_FAILS(mt_randn(2, NULL, MT_FLOAT32, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT, "mt_randn");
  float f = 1;
  TU_FAILS(mt_from_data(&f, 1, NULL, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_from_data");

  /* byte sizes that overflow */
  const int64_t big = (int64_t)1 << 32;
  TU_FAILS(mt_empty(2, TU_SHAPE(big, big), MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_empty");
  TU_FAILS(mt_zeros(2, TU_SHAPE(INT64_MAX, 2), MT_BOOL, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_zeros");
  TU_FAILS(mt_ones(1, TU_SHAPE((int64_t)1 << 61), MT_FLOAT64, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_ones");
  TU_FAILS(mt_full(3, TU_SHAPE(1 << 22, 1 << 22, 1 << 22), 0, MT_INT16, TU_CPU),
           MT_ERR_INVALID_ARGUMENT, "mt_full");
  TU_FAILS(mt_rand(2, TU_SHAPE(big, big), MT_FLOAT32, TU_CPU, 1), MT_ERR_INVALID_ARGUMENT,
           "mt_rand");
  TU_FAILS(mt_from_data(&f, 2, TU_SHAPE(big, big), MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT,
           "mt_from_data");
}
END_TEST

START_TEST(test_bad_dtype_and_device) {
  const mt_dtype bad[] = {(mt_dtype)42, (mt_dtype)10, (mt_dtype)-1};
  for (int i = 0; i < 3; i++) {
    TU_FAILS(mt_empty(1, TU_SHAPE(2), bad[i], TU_CPU), MT_ERR_DTYPE, "mt_empty");
    TU_FAILS(mt_zeros(1, TU_SHAPE(2), bad[i], TU_CPU), MT_ERR_DTYPE, "mt_zeros");
    TU_FAILS(mt_ones(1, TU_SHAPE(2), bad[i], TU_CPU), MT_ERR_DTYPE, "mt_ones");
    TU_FAILS(mt_full(1, TU_SHAPE(2), 1, bad[i], TU_CPU), MT_ERR_DTYPE, "mt_full");
    TU_FAILS(mt_arange(0, 4, 1, bad[i], TU_CPU), MT_ERR_DTYPE, "mt_arange");
    TU_FAILS(mt_rand(1, TU_SHAPE(2), bad[i], TU_CPU, 1), MT_ERR_DTYPE, "mt_rand");
    TU_FAILS(mt_randn(1, TU_SHAPE(2), bad[i], TU_CPU, 1), MT_ERR_DTYPE, "mt_randn");
    double data[2] = {0};
    TU_FAILS(mt_from_data(data, 1, TU_SHAPE(2), bad[i], TU_CPU), MT_ERR_DTYPE, "mt_from_data");
  }
  const mt_device baddev[] = {{7, 0}, {MT_DEVICE_CPU, 1}, {-1, 0}};
  for (int i = 0; i < 3; i++) {
    TU_FAILS(mt_empty(1, TU_SHAPE(2), MT_FLOAT32, baddev[i]), MT_ERR_DEVICE, "mt_empty");
    TU_FAILS(mt_zeros(1, TU_SHAPE(2), MT_FLOAT32, baddev[i]), MT_ERR_DEVICE, "mt_zeros");
    TU_FAILS(mt_full(1, TU_SHAPE(2), 3, MT_FLOAT32, baddev[i]), MT_ERR_DEVICE, "mt_full");
    TU_FAILS(mt_arange(0, 4, 1, MT_FLOAT32, baddev[i]), MT_ERR_DEVICE, "mt_arange");
    TU_FAILS(mt_rand(1, TU_SHAPE(2), MT_FLOAT32, baddev[i], 1), MT_ERR_DEVICE, "mt_rand");
    float data[2] = {0};
    TU_FAILS(mt_from_data(data, 1, TU_SHAPE(2), MT_FLOAT32, baddev[i]), MT_ERR_DEVICE,
             "mt_from_data");
  }
}
END_TEST

/* ------------------------------------------------------------- from_data */

START_TEST(test_from_data_every_dtype) {
  mt_dtype d = DTYPE_I;
  size_t es = ref_size(d);
  unsigned char raw[24 * 8], copy[24 * 8];
  for (int i = 0; i < 24; i++) ref_store(raw + i * es, d, tu_value((uint64_t)i, -20, 20));
  memcpy(copy, raw, sizeof raw);
  mt_tensor *t = TU_OK(mt_from_data(raw, 3, TU_SHAPE(2, 3, 4), d, TU_CPU));
  TU_CHECK_META(t, d, 3, TU_SHAPE(2, 3, 4));
  check_contiguous(t);
  memset(raw, 0x5a, sizeof raw); /* the tensor holds its own copy */
  TU_CHECK_RAW(t, copy, 24);
  mt_tensor_free(t);

  /* 0-d and empty; data may be NULL only when empty */
  t = TU_OK(mt_from_data(copy, 0, TU_SHAPE(0), d, TU_CPU));
  TU_CHECK_RAW(t, copy, 1);
  mt_tensor_free(t);
  t = TU_OK(mt_from_data(NULL, 2, TU_SHAPE(4, 0), d, TU_CPU));
  ck_assert_int_eq(mt_numel(t), 0);
  mt_tensor_free(t);
  TU_FAILS(mt_from_data(NULL, 1, TU_SHAPE(3), d, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_from_data");
  TU_FAILS(mt_from_data(NULL, 0, NULL, d, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_from_data");
}
END_TEST

/* --------------------------------------------------------------- arange */

START_TEST(test_arange_lengths) {
  static const struct { double start, end, step; int64_t len; } cases[] = {
      {0, 5, 1, 5},      {0, 1, 0.1, 10},  {5, 0, -1, 5},    {0, 5, -1, 0},
      {5, 0, 1, 0},      {0, 2.5, 0.5, 5}, {1, 2, 0.3, 4},   {-3, 3, 2, 3},
      {0, 0, 1, 0},      {0.5, 3, 1, 3},   {10, 0, -2.5, 4}, {0, 1, 3, 1},
      {-1, -10, -3, 3},  {2, 2.0001, 1, 1},
  };
  for (int i = 0; i < TU_COUNT(cases); i++) {
    mt_tensor *t = TU_OK(mt_arange(cases[i].start, cases[i].end, cases[i].step, MT_FLOAT64, TU_CPU));
    ck_assert_msg(mt_ndim(t) == 1 && mt_shape(t, 0) == cases[i].len,
                  "arange(%g, %g, %g): %d-d, length %lld, expected %lld", cases[i].start,
                  cases[i].end, cases[i].step, mt_ndim(t), (long long)mt_shape(t, 0),
                  (long long)cases[i].len);
    ck_assert_int_eq(mt_tensor_dtype(t), MT_FLOAT64);
    double want[16];
    for (int64_t k = 0; k < cases[i].len; k++) want[k] = cases[i].start + (double)k * cases[i].step;
    TU_CHECK_CLOSE(t, want, cases[i].len, 1e-12, 1e-12);
    mt_tensor_free(t);
  }
}
END_TEST

START_TEST(test_arange_every_dtype) {
  mt_dtype d = DTYPE_I;
  if (d == MT_BOOL) return; /* a range of booleans means nothing */
  mt_tensor *t = TU_OK(mt_arange(0, 10, 3, d, TU_CPU));
  TU_CHECK_META(t, d, 1, TU_SHAPE(4));
  TU_CHECK_CLOSE(t, TU_VALS(0, 3, 6, 9), 4, 0, 0);
  mt_tensor_free(t);
  if (d != MT_UINT8) {
    t = TU_OK(mt_arange(5, -3, -2, d, TU_CPU));
    TU_CHECK_CLOSE(t, TU_VALS(5, 3, 1, -1), 4, 0, 0);
    mt_tensor_free(t);
  }
  /* long enough for the threaded path, where the dtype holds the values */
  if (d == MT_UINT8 || d == MT_INT8 || d == MT_INT16) return;
  t = TU_OK(mt_arange(0, 40000, 1, d, TU_CPU));
  double *v = TU_READ(t);
  for (int i = 0; i < 40000; i++) {
    double w = ref_round_to((double)i, d);
    TU_EXPECT(v[i] == w, "[%d] = %g, expected %g", i, v[i], w);
  }
  free(v);
  mt_tensor_free(t);
}
END_TEST

START_TEST(test_arange_refusals) {
  TU_FAILS(mt_arange(0, 5, 0, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  TU_FAILS(mt_arange(NAN, 5, 1, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  TU_FAILS(mt_arange(0, INFINITY, 1, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  TU_FAILS(mt_arange(0, 5, NAN, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  TU_FAILS(mt_arange(-INFINITY, 5, 1, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
  TU_FAILS(mt_arange(0, 1e300, 1e-300, MT_FLOAT32, TU_CPU), MT_ERR_INVALID_ARGUMENT, "mt_arange");
}
END_TEST

/* --------------------------------------------------------------- random */

START_TEST(test_rand_range_and_seed) {
  for (int i = 0; i < 4; i++) {
    mt_dtype d = float_dtypes[i];
    const int64_t n = 100003;
    mt_tensor *a = TU_OK(mt_rand(2, TU_SHAPE(n, 1), d, TU_CPU, 1234));
    mt_tensor *b = TU_OK(mt_rand(2, TU_SHAPE(n, 1), d, TU_CPU, 1234));
    mt_tensor *c = TU_OK(mt_rand(2, TU_SHAPE(n, 1), d, TU_CPU, 1235));
    TU_CHECK_META(a, d, 2, TU_SHAPE(n, 1));
    double *va = TU_READ(a), *vb = TU_READ(b), *vc = TU_READ(c);
    double sum = 0, sq = 0, lo = 1, hi = 0;
    int64_t differ = 0;
    for (int64_t k = 0; k < n; k++) {
      TU_EXPECT(va[k] >= 0.0 && va[k] < 1.0, "%s rand[%lld] = %.17g outside [0, 1)",
                    mt_dtype_name(d), (long long)k, va[k]);
      TU_EXPECT(va[k] == vb[k], "%s: same seed, [%lld] %.17g vs %.17g", mt_dtype_name(d),
                    (long long)k, va[k], vb[k]);
      differ += va[k] != vc[k];
      sum += va[k];
      sq += va[k] * va[k];
      lo = va[k] < lo ? va[k] : lo;
      hi = va[k] > hi ? va[k] : hi;
    }
    double mean = sum / (double)n, var = sq / (double)n - mean * mean;
    ck_assert_msg(differ > n / 2, "%s: seeds 1234 and 1235 agree on %lld of %lld values",
                  mt_dtype_name(d), (long long)(n - differ), (long long)n);
    ck_assert_msg(fabs(mean - 0.5) < 0.01, "%s: mean %g", mt_dtype_name(d), mean);
    ck_assert_msg(fabs(var - 1.0 / 12) < 0.01, "%s: variance %g", mt_dtype_name(d), var);
    ck_assert_msg(lo < 0.01 && hi > 0.99, "%s: range [%g, %g]", mt_dtype_name(d), lo, hi);
    free(va);
    free(vb);
    free(vc);
    mt_tensor_free(a);
    mt_tensor_free(b);
    mt_tensor_free(c);
  }
}
END_TEST

START_TEST(test_randn_moments) {
  for (int i = 0; i < 4; i++) {
    mt_dtype d = float_dtypes[i];
    const int64_t n = 100001;
    mt_tensor *a = TU_OK(mt_randn(1, TU_SHAPE(n), d, TU_CPU, 99));
    mt_tensor *b = TU_OK(mt_randn(1, TU_SHAPE(n), d, TU_CPU, 99));
    mt_tensor *c = TU_OK(mt_randn(1, TU_SHAPE(n), d, TU_CPU, 100));
    double *va = TU_READ(a), *vb = TU_READ(b), *vc = TU_READ(c);
    double sum = 0, sq = 0;
    int64_t differ = 0, beyond2 = 0;
    for (int64_t k = 0; k < n; k++) {
      TU_EXPECT(isfinite(va[k]), "%s randn[%lld] = %g", mt_dtype_name(d), (long long)k, va[k]);
      TU_EXPECT(va[k] == vb[k], "%s: same seed differs at %lld", mt_dtype_name(d),
                    (long long)k);
      differ += va[k] != vc[k];
      beyond2 += fabs(va[k]) > 2.0;
      sum += va[k];
      sq += va[k] * va[k];
    }
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    ck_assert_msg(fabs(mean) < 0.02, "%s: mean %g", mt_dtype_name(d), mean);
    ck_assert_msg(fabs(sd - 1.0) < 0.02, "%s: std %g", mt_dtype_name(d), sd);
    /* P(|z| > 2) = 4.55% */
    ck_assert_msg(fabs((double)beyond2 / (double)n - 0.0455) < 0.005, "%s: %lld beyond 2 sigma",
                  mt_dtype_name(d), (long long)beyond2);
    ck_assert_msg(differ > n / 2, "%s: different seeds agree", mt_dtype_name(d));
    free(va);
    free(vb);
    free(vc);
    mt_tensor_free(a);
    mt_tensor_free(b);
    mt_tensor_free(c);
  }
}
END_TEST

START_TEST(test_random_shapes_and_refusals) {
  mt_tensor *t = TU_OK(mt_rand(0, NULL, MT_FLOAT32, TU_CPU, 5));
  double x;
  TU_CHECK_OK(mt_item(t, &x));
  ck_assert(x >= 0 && x < 1);
  mt_tensor_free(t);
  t = TU_OK(mt_randn(2, TU_SHAPE(0, 4), MT_FLOAT64, TU_CPU, 5));
  ck_assert_int_eq(mt_numel(t), 0);
  mt_tensor_free(t);
  /* an odd count (Box-Muller makes pairs) */
  t = TU_OK(mt_randn(1, TU_SHAPE(3), MT_FLOAT32, TU_CPU, 5));
  double *v = TU_READ(t);
  ck_assert(isfinite(v[0]) && isfinite(v[1]) && isfinite(v[2]));
  ck_assert(v[0] != v[1] && v[1] != v[2]);
  free(v);
  mt_tensor_free(t);

  for (int i = 0; i < REF_NUM_DTYPES; i++) {
    mt_dtype d = tu_all_dtypes[i];
    if (ref_is_float(d)) continue;
    TU_FAILS(mt_rand(1, TU_SHAPE(4), d, TU_CPU, 1), MT_ERR_DTYPE, "mt_rand");
    TU_FAILS(mt_randn(1, TU_SHAPE(4), d, TU_CPU, 1), MT_ERR_DTYPE, "mt_randn");
  }
}
END_TEST

static Suite *creation_suite(void) {
  Suite *s = suite_create("creation");
  TCase *tc = tcase_create("fill");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_empty_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_loop_test(tc, test_zeros_ones_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_loop_test(tc, test_full_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_full_literals);
  tcase_add_loop_test(tc, test_zero_dim_and_empty, 0, REF_NUM_DTYPES);
  tcase_add_loop_test(tc, test_from_data_every_dtype, 0, REF_NUM_DTYPES);
  suite_add_tcase(s, tc);

  tc = tcase_create("refusals");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_max_dims);
  tcase_add_test(tc, test_bad_shapes);
  tcase_add_test(tc, test_bad_dtype_and_device);
  suite_add_tcase(s, tc);

  tc = tcase_create("arange");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_arange_lengths);
  tcase_add_loop_test(tc, test_arange_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_arange_refusals);
  suite_add_tcase(s, tc);

  tc = tcase_create("random");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_rand_range_and_seed);
  tcase_add_test(tc, test_randn_moments);
  tcase_add_test(tc, test_random_shapes_and_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(creation_suite()); }
