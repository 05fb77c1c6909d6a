/*
 * test_conv.c - conv1d, conv2d, max_pool2d, avg_pool2d and
 * adaptive_avg_pool2d on the cpu against the double references of ref.c
 * (direct loops over every tap) and a few literals worked out by hand.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "test_util.h"

#define F32 MT_FLOAT32
#define F64 MT_FLOAT64

static const mt_dtype float_dtypes[] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};

/* n deterministic values exact in every floating dtype (the caller frees). */
static double *values(int64_t n, uint64_t seed) {
  double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
  ck_assert_ptr_nonnull(v);
  for (int64_t i = 0; i < n; i++) v[i] = tu_value(seed * 7919u + (uint64_t)i, -2, 2);
  return v;
}

/* Tolerances for a sum of up to `terms` products of values in [-2, 2). */
static void conv_tol(mt_dtype d, int64_t terms, double *rtol, double *atol) {
  double eps = d == MT_FLOAT16 ? 1e-3 : d == MT_BFLOAT16 ? 8e-3 : d == F32 ? 1e-6 : 1e-14;
  *rtol = 2 * eps;
  *atol = eps * 4.0 * (double)(terms + 1);
}

/* ------------------------------------------------------------ conv */

typedef struct conv_cfg {
  int64_t n, c, h, w, o, kh, kw, stride[2], padding[2], dilation[2], groups;
  int bias;
} conv_cfg;

static const conv_cfg conv_cfgs[] = {
    {2, 3, 8, 7, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1},   /* 3x3 pad 1 */
    {1, 4, 9, 10, 6, 3, 2, {2, 3}, {1, 0}, {2, 1}, 2, 0},  /* strides, dilation, groups 2 */
    {3, 4, 6, 5, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4, 1},   /* depthwise */
    {2, 3, 7, 7, 6, 5, 3, {2, 2}, {2, 1}, {1, 2}, 3, 1},   /* depthwise, multiplier 2, strided */
    {2, 5, 4, 6, 7, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1, 1},   /* 1x1: plain GEMM */
    {2, 6, 4, 6, 4, 1, 1, {1, 1}, {0, 0}, {1, 1}, 2, 0},   /* 1x1, groups 2 */
    {1, 2, 5, 5, 3, 1, 1, {2, 2}, {1, 1}, {1, 1}, 1, 1},   /* 1x1 strided, padded: im2col */
    {1, 2, 3, 3, 2, 3, 3, {1, 1}, {0, 0}, {1, 1}, 1, 0},   /* one output pixel */
    {1, 1, 2, 2, 1, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1},   /* kernel > input, padded to fit */
    {1, 2, 4, 9, 2, 2, 3, {3, 4}, {1, 2}, {1, 3}, 1, 1},   /* big strides and dilations */
};

/* conv2d of cfg f in dtype d against ref_conv2d; x is transposed in its
 * last two dims first when transposed_x (a non-contiguous input). */
static void check_conv2d(const conv_cfg *f, mt_dtype d, int transposed_x) {
  int64_t xs[4] = {f->n, f->c, f->h, f->w}, ws[4] = {f->o, f->c / f->groups, f->kh, f->kw};
  int64_t xn = ref_numel(4, xs), wn = ref_numel(4, ws);
  double *xv = values(xn, 1), *wv = values(wn, 2), *bv = values(f->o, 3);
  mt_tensor *x = TU_TENSOR(xv, 4, xs, d), *w = TU_TENSOR(wv, 4, ws, d);
  mt_tensor *b = TU_TENSOR(bv, 1, &f->o, d);
  if (transposed_x) { /* the same logical x, stored [n, c, w, h] */
    int64_t ts[4] = {f->n, f->c, f->w, f->h};
    double *tv = malloc((size_t)xn * sizeof *tv);
    for (int64_t p = 0; p < f->n * f->c; p++)
      for (int64_t i = 0; i < f->h; i++)
        for (int64_t j = 0; j < f->w; j++) tv[(p * f->w + j) * f->h + i] = xv[(p * f->h + i) * f->w + j];
    mt_tensor *t = TU_TENSOR(tv, 4, ts, d);
    mt_tensor_free(x);
    x = TU_OK(mt_transpose(t, 2, 3));
    ck_assert(!mt_is_contiguous(x));
    mt_tensor_free(t);
    free(tv);
  }
  int64_t oh, ow;
  double *ref = malloc((size_t)(f->n * f->o * (f->h + 2 * f->padding[0]) *
                                (f->w + 2 * f->padding[1]) + 1) * sizeof *ref);
  ref_conv2d(xv, xs, wv, ws, f->bias ? bv : NULL, f->stride, f->padding, f->dilation, f->groups,
             ref, &oh, &ow);
  mt_tensor *y = TU_OK(mt_conv2d(x, w, f->bias ? b : NULL, f->stride, f->padding, f->dilation,
                                 f->groups));
  TU_CHECK_META(y, d, 4, TU_SHAPE(f->n, f->o, oh, ow));
  double rtol, atol;
  conv_tol(d, ws[1] * f->kh * f->kw, &rtol, &atol);
  TU_CHECK_CLOSE(y, ref, f->n * f->o * oh * ow, rtol, atol);
  mt_tensor_free(y), mt_tensor_free(x), mt_tensor_free(w), mt_tensor_free(b);
  free(xv), free(wv), free(bv), free(ref);
}

START_TEST(test_conv2d_reference) {
  for (int k = 0; k < TU_COUNT(float_dtypes); k++)
    for (int i = 0; i < TU_COUNT(conv_cfgs); i++) {
      check_conv2d(&conv_cfgs[i], float_dtypes[k], 0);
      check_conv2d(&conv_cfgs[i], float_dtypes[k], 1);
    }
}
END_TEST

/* Many images through im2col, more than one workspace chunk of 32 MiB
 * (every image is 576 x 3136 float32 columns, 7 MiB): the chunks must
 * line up. Compared on a sample of the output against the reference. */
START_TEST(test_conv2d_chunked_batch) {
  conv_cfg f = {6, 64, 56, 56, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 1};
  check_conv2d(&f, F32, 0);
}
END_TEST

START_TEST(test_conv1d) {
  /* x [1, 1, 5] = 1..5, w [1, 1, 3] = (1, 0, -1), pad 1: x[i-1] - x[i+1] */
  mt_tensor *x = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5), 3, TU_SHAPE(1, 1, 5), F32);
  mt_tensor *w = TU_TENSOR(TU_VALS(1, 0, -1), 3, TU_SHAPE(1, 1, 3), F32);
  mt_tensor *b = TU_TENSOR(TU_VALS(10), 1, TU_SHAPE(1), F32);
  mt_tensor *y = TU_OK(mt_conv1d(x, w, b, 1, 1, 1, 1));
  TU_CHECK_META(y, F32, 3, TU_SHAPE(1, 1, 5));
  TU_CHECK_VALUES(y, TU_VALS(8, 8, 8, 8, 14), 5);
  mt_tensor_free(y);
  y = TU_OK(mt_conv1d(x, w, NULL, 2, 0, 2, 1)); /* taps 0, 2, 4 at stride 2: one output */
  TU_CHECK_META(y, F32, 3, TU_SHAPE(1, 1, 1));
  TU_CHECK_VALUES(y, TU_VALS(1 - 5), 1);
  mt_tensor_free(y);
  /* conv1d agrees with conv2d at H = 1 */
  for (int k = 0; k < TU_COUNT(float_dtypes); k++) {
    mt_dtype d = float_dtypes[k];
    double *xv = values(2 * 6 * 11, 4), *wv = values(4 * 3 * 3, 5), *bv = values(4, 6);
    mt_tensor *x1 = TU_TENSOR(xv, 3, TU_SHAPE(2, 6, 11), d);
    mt_tensor *w1 = TU_TENSOR(wv, 3, TU_SHAPE(4, 3, 3), d);
    mt_tensor *b1 = TU_TENSOR(bv, 1, TU_SHAPE(4), d);
    int64_t xs[4] = {2, 6, 1, 11}, ws[4] = {4, 3, 1, 3}, oh, ow;
    double ref[2 * 4 * 11];
    ref_conv2d(xv, xs, wv, ws, bv, TU_SHAPE(1, 2), TU_SHAPE(0, 2), TU_SHAPE(1, 3), 2, ref, &oh,
               &ow);
    y = TU_OK(mt_conv1d(x1, w1, b1, 2, 2, 3, 2));
    TU_CHECK_META(y, d, 3, TU_SHAPE(2, 4, ow));
    double rtol, atol;
    conv_tol(d, 9, &rtol, &atol);
    TU_CHECK_CLOSE(y, ref, 2 * 4 * ow, rtol, atol);
    mt_tensor_free(y), mt_tensor_free(x1), mt_tensor_free(w1), mt_tensor_free(b1);
    free(xv), free(wv), free(bv);
  }
  mt_tensor_free(x), mt_tensor_free(w), mt_tensor_free(b);
}
END_TEST

START_TEST(test_conv_special_and_empty) {
  /* NaN and inf flow through the sums as IEEE says */
  mt_tensor *x = TU_TENSOR(TU_VALS(1, NAN, 3, 4, INFINITY, 6), 4, TU_SHAPE(1, 1, 1, 6), F32);
  mt_tensor *w = TU_TENSOR(TU_VALS(1, 1), 4, TU_SHAPE(1, 1, 1, 2), F32);
  mt_tensor *y = TU_OK(mt_conv2d(x, w, NULL, NULL, NULL, NULL, 1));
  TU_CHECK_VALUES(y, TU_VALS(NAN, NAN, 7, INFINITY, INFINITY), 5);
  mt_tensor_free(y), mt_tensor_free(x), mt_tensor_free(w);
  /* an empty batch and zero out channels give empty outputs */
  x = TU_OK(mt_zeros(4, TU_SHAPE(0, 2, 5, 5), F32, TU_CPU));
  w = TU_OK(mt_zeros(4, TU_SHAPE(3, 2, 3, 3), F32, TU_CPU));
  y = TU_OK(mt_conv2d(x, w, NULL, NULL, NULL, NULL, 1));
  TU_CHECK_META(y, F32, 4, TU_SHAPE(0, 3, 3, 3));
  mt_tensor_free(y), mt_tensor_free(x), mt_tensor_free(w);
}
END_TEST

START_TEST(test_conv_errors) {
  mt_tensor *x = TU_OK(mt_zeros(4, TU_SHAPE(1, 4, 5, 5), F32, TU_CPU));
  mt_tensor *w = TU_OK(mt_zeros(4, TU_SHAPE(2, 4, 3, 3), F32, TU_CPU));
  mt_tensor *big = TU_OK(mt_zeros(4, TU_SHAPE(2, 4, 7, 7), F32, TU_CPU));
  mt_tensor *w64 = TU_OK(mt_zeros(4, TU_SHAPE(2, 4, 3, 3), F64, TU_CPU));
  mt_tensor *ix = TU_OK(mt_zeros(4, TU_SHAPE(1, 4, 5, 5), MT_INT32, TU_CPU));
  mt_tensor *b3 = TU_OK(mt_zeros(1, TU_SHAPE(3), F32, TU_CPU));
  mt_tensor *x3 = TU_OK(mt_zeros(3, TU_SHAPE(4, 5, 5), F32, TU_CPU));
  TU_FAILS(mt_conv2d(x, big, NULL, NULL, NULL, NULL, 1), MT_ERR_SHAPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w64, NULL, NULL, NULL, NULL, 1), MT_ERR_DTYPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(ix, w, NULL, NULL, NULL, NULL, 1), MT_ERR_DTYPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, b3, NULL, NULL, NULL, 1), MT_ERR_SHAPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, NULL, NULL, NULL, 2), MT_ERR_SHAPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, NULL, NULL, NULL, 3), MT_ERR_SHAPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, NULL, NULL, NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, TU_SHAPE(0, 1), NULL, NULL, 1), MT_ERR_INVALID_ARGUMENT,
           "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, NULL, TU_SHAPE(-1, 0), NULL, 1), MT_ERR_INVALID_ARGUMENT,
           "mt_conv2d");
  TU_FAILS(mt_conv2d(x, w, NULL, NULL, NULL, TU_SHAPE(1, 0), 1), MT_ERR_INVALID_ARGUMENT,
           "mt_conv2d");
  TU_FAILS(mt_conv2d(x3, w, NULL, NULL, NULL, NULL, 1), MT_ERR_SHAPE, "mt_conv2d");
  TU_FAILS(mt_conv2d(NULL, w, NULL, NULL, NULL, NULL, 1), MT_ERR_INVALID_ARGUMENT, "mt_conv2d");
  TU_FAILS(mt_conv1d(x3, w, NULL, 1, 0, 1, 1), MT_ERR_SHAPE, "mt_conv1d");
  TU_FAILS(mt_conv1d(x, w, NULL, 1, 0, 1, 1), MT_ERR_SHAPE, "mt_conv1d");
  mt_tensor_free(x), mt_tensor_free(w), mt_tensor_free(big), mt_tensor_free(w64);
  mt_tensor_free(ix), mt_tensor_free(b3), mt_tensor_free(x3);
}
END_TEST

/* ------------------------------------------------------------ pools */

typedef struct pool_cfg {
  int64_t n, c, h, w, kernel[2], stride[2], padding[2];
} pool_cfg;

static const pool_cfg pool_cfgs[] = {
    {2, 3, 6, 7, {2, 2}, {2, 2}, {0, 0}}, {1, 2, 7, 5, {3, 3}, {2, 2}, {1, 1}},
    {1, 1, 5, 8, {3, 2}, {1, 3}, {1, 0}}, {2, 2, 4, 4, {4, 4}, {4, 4}, {0, 0}},
    {1, 1, 3, 3, {3, 3}, {1, 1}, {1, 1}},
};

static void check_pool(int is_max, const pool_cfg *f, mt_dtype d) {
  int64_t xs[4] = {f->n, f->c, f->h, f->w}, oh, ow, n = ref_numel(4, xs);
  double *xv = values(n, 9);
  double *ref = malloc((size_t)(n + 64) * sizeof *ref), *idx = malloc((size_t)(n + 64) * sizeof *idx);
  ref_pool2d(is_max, xv, f->n * f->c, f->h, f->w, f->kernel, f->stride, f->padding, ref, idx, &oh,
             &ow);
  mt_tensor *x = TU_TENSOR(xv, 4, xs, d);
  mt_tensor *y = TU_OK(is_max ? mt_max_pool2d(x, f->kernel, f->stride, f->padding)
                              : mt_avg_pool2d(x, f->kernel, f->stride, f->padding));
  TU_CHECK_META(y, d, 4, TU_SHAPE(f->n, f->c, oh, ow));
  double rtol, atol;
  conv_tol(d, f->kernel[0] * f->kernel[1], &rtol, &atol);
  TU_CHECK_CLOSE(y, ref, f->n * f->c * oh * ow, rtol, is_max ? 0 : atol);
  mt_tensor_free(y), mt_tensor_free(x);
  free(xv), free(ref), free(idx);
}

START_TEST(test_pools_reference) {
  for (int k = 0; k < TU_COUNT(float_dtypes); k++)
    for (int i = 0; i < TU_COUNT(pool_cfgs); i++) {
      check_pool(1, &pool_cfgs[i], float_dtypes[k]);
      check_pool(0, &pool_cfgs[i], float_dtypes[k]);
    }
}
END_TEST

START_TEST(test_pool_literals) {
  /* 3-d input; NaN wins max windows; padding counts in avg's divisor */
  mt_tensor *x = TU_TENSOR(TU_VALS(1, 2, 3, 4, NAN, 6, -7, 8, 9, 10, 11, 12, 13, 14, 15, 16), 3,
                           TU_SHAPE(1, 4, 4), F32);
  mt_tensor *y = TU_OK(mt_max_pool2d(x, TU_SHAPE(2, 2), NULL, NULL));
  TU_CHECK_META(y, F32, 3, TU_SHAPE(1, 2, 2));
  TU_CHECK_VALUES(y, TU_VALS(NAN, 8, 14, 16), 4);
  mt_tensor_free(y);
  y = TU_OK(mt_avg_pool2d(x, TU_SHAPE(2, 2), TU_SHAPE(2, 2), TU_SHAPE(1, 1)));
  TU_CHECK_META(y, F32, 3, TU_SHAPE(1, 3, 3));
  TU_CHECK_VALUES(y, TU_VALS(0.25, 1.25, 1, NAN, 5, 5, 3.25, 7.25, 4), 9);
  mt_tensor_free(y);
  mt_tensor *inf = TU_TENSOR(TU_VALS(-INFINITY, -INFINITY, -INFINITY, -INFINITY), 3,
                             TU_SHAPE(1, 2, 2), F64);
  y = TU_OK(mt_max_pool2d(inf, TU_SHAPE(2, 2), NULL, NULL));
  TU_CHECK_VALUES(y, TU_VALS(-INFINITY), 1);
  mt_tensor_free(y), mt_tensor_free(inf);
  /* adaptive: 4 -> 3 windows [0, 2) [1, 3) [2, 4) over the columns, all rows */
  y = TU_OK(mt_adaptive_avg_pool2d(x, 1, 3));
  TU_CHECK_META(y, F32, 3, TU_SHAPE(1, 1, 3));
  TU_CHECK_VALUES(y, TU_VALS(NAN, 54 / 8.0, 62 / 8.0), 3);
  mt_tensor_free(y), mt_tensor_free(x);
}
END_TEST

START_TEST(test_adaptive_reference) {
  static const int64_t sizes[][2] = {{1, 1}, {2, 3}, {5, 7}, {7, 4}, {3, 3}, {10, 9}};
  int64_t xs[4] = {2, 3, 7, 9};
  double *xv = values(ref_numel(4, xs), 11);
  for (int k = 0; k < TU_COUNT(float_dtypes); k++)
    for (int i = 0; i < TU_COUNT(sizes); i++) {
      mt_dtype d = float_dtypes[k];
      double ref[6 * 10 * 9];
      ref_adaptive_avg_pool2d(xv, 6, 7, 9, sizes[i][0], sizes[i][1], ref);
      mt_tensor *x = TU_TENSOR(xv, 4, xs, d);
      mt_tensor *y = TU_OK(mt_adaptive_avg_pool2d(x, sizes[i][0], sizes[i][1]));
      TU_CHECK_META(y, d, 4, TU_SHAPE(2, 3, sizes[i][0], sizes[i][1]));
      double rtol, atol;
      conv_tol(d, 63, &rtol, &atol);
      TU_CHECK_CLOSE(y, ref, 6 * sizes[i][0] * sizes[i][1], rtol, atol);
      mt_tensor_free(y), mt_tensor_free(x);
    }
  free(xv);
}
END_TEST

START_TEST(test_pool_errors) {
  mt_tensor *x = TU_OK(mt_zeros(4, TU_SHAPE(1, 2, 4, 4), F32, TU_CPU));
  mt_tensor *ix = TU_OK(mt_zeros(4, TU_SHAPE(1, 2, 4, 4), MT_INT64, TU_CPU));
  mt_tensor *x2 = TU_OK(mt_zeros(2, TU_SHAPE(4, 4), F32, TU_CPU));
  mt_tensor *e = TU_OK(mt_zeros(4, TU_SHAPE(1, 0, 4, 4), F32, TU_CPU));
  TU_FAILS(mt_max_pool2d(x, TU_SHAPE(5, 5), NULL, NULL), MT_ERR_SHAPE, "mt_max_pool2d");
  TU_FAILS(mt_max_pool2d(x, TU_SHAPE(2, 2), NULL, TU_SHAPE(2, 0)), MT_ERR_INVALID_ARGUMENT,
           "mt_max_pool2d");
  TU_FAILS(mt_avg_pool2d(x, TU_SHAPE(0, 2), NULL, NULL), MT_ERR_INVALID_ARGUMENT,
           "mt_avg_pool2d");
  TU_FAILS(mt_avg_pool2d(x, TU_SHAPE(2, 2), TU_SHAPE(1, 0), NULL), MT_ERR_INVALID_ARGUMENT,
           "mt_avg_pool2d");
  TU_FAILS(mt_avg_pool2d(x, NULL, NULL, NULL), MT_ERR_INVALID_ARGUMENT, "mt_avg_pool2d");
  TU_FAILS(mt_max_pool2d(ix, TU_SHAPE(2, 2), NULL, NULL), MT_ERR_DTYPE, "mt_max_pool2d");
  TU_FAILS(mt_max_pool2d(x2, TU_SHAPE(2, 2), NULL, NULL), MT_ERR_SHAPE, "mt_max_pool2d");
  TU_FAILS(mt_avg_pool2d(e, TU_SHAPE(2, 2), NULL, NULL), MT_ERR_SHAPE, "mt_avg_pool2d");
  TU_FAILS(mt_adaptive_avg_pool2d(x, -1, 2), MT_ERR_INVALID_ARGUMENT, "mt_adaptive_avg_pool2d");
  TU_FAILS(mt_adaptive_avg_pool2d(e, 2, 2), MT_ERR_SHAPE, "mt_adaptive_avg_pool2d");
  mt_tensor_free(x), mt_tensor_free(ix), mt_tensor_free(x2), mt_tensor_free(e);
}
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("conv");
  TCase *tc = tcase_create("conv");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_conv2d_reference);
  tcase_add_test(tc, test_conv2d_chunked_batch);
  tcase_add_test(tc, test_conv1d);
  tcase_add_test(tc, test_conv_special_and_empty);
  tcase_add_test(tc, test_conv_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("pool");
  tcase_add_test(tc, test_pools_reference);
  tcase_add_test(tc, test_pool_literals);
  tcase_add_test(tc, test_adaptive_reference);
  tcase_add_test(tc, test_pool_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(conv_suite()); }
