/*
 * test_linalg.c - matmul (every case of numpy.matmul, every dtype), linear,
 * cat, stack and index_select.
 */
#define _POSIX_C_SOURCE 200112L /* setenv */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define DTYPE_I (tu_all_dtypes[_i])

/* Values exact in every dtype, whose products and sums of up to a few
 * hundred terms stay exact in float32 too. */
static double sample(mt_dtype d, uint64_t i) {
  if (d == MT_BOOL) return tu_value(i, 0, 2) >= 1.0;
  if (ref_is_float(d)) return tu_value(i, -4, 4);
  return floor(tu_value(i, d == MT_UINT8 ? 0 : -5, 6));
}

enum { PLAIN, TRANSPOSED, STEPPED };

/* A tensor of logical shape (ndim, shape); TRANSPOSED swaps the storage of
 * the last two dims, STEPPED takes every other element of the last dim. */
static mt_tensor *make(mt_dtype d, int ndim, const int64_t *shape, uint64_t seed, int layout) {
  int64_t phys[MT_MAX_DIMS];
  for (int i = 0; i < ndim; i++) phys[i] = shape[i];
  if (layout == TRANSPOSED && ndim >= 2) {
    phys[ndim - 1] = shape[ndim - 2];
    phys[ndim - 2] = shape[ndim - 1];
  } else if (layout == STEPPED && ndim >= 1) {
    phys[ndim - 1] = 2 * shape[ndim - 1];
  } else {
    layout = PLAIN;
  }
  int64_t n = ref_numel(ndim, phys);
  double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) v[i] = sample(d, seed + (uint64_t)i);
  mt_tensor *t = TU_TENSOR(v, ndim, phys, d);
  free(v);
  mt_tensor *view = t;
  if (layout == TRANSPOSED) view = TU_OK(mt_transpose(t, -1, -2));
  if (layout == STEPPED) view = TU_OK(mt_slice(t, -1, 0, phys[ndim - 1], 2));
  if (view != t) mt_tensor_free(t);
  return view;
}

/* ------------------------------------------------------------- matmul */

static void check_matmul(const mt_tensor *a, const mt_tensor *b) {
  int an = mt_ndim(a), bn = mt_ndim(b), on;
  int64_t as[MT_MAX_DIMS], bs[MT_MAX_DIMS], os[MT_MAX_DIMS + 2];
  for (int i = 0; i < an; i++) as[i] = mt_shape(a, i);
  for (int i = 0; i < bn; i++) bs[i] = mt_shape(b, i);
  mt_dtype da = mt_tensor_dtype(a), db = mt_tensor_dtype(b), o = ref_promote(da, db);
  char ctx[160];
  int used = snprintf(ctx, sizeof ctx, "matmul(%s[", mt_dtype_name(da));
  for (int i = 0; i < an; i++) used += snprintf(ctx + used, sizeof ctx - (size_t)used, i ? ",%lld" : "%lld", (long long)as[i]);
  used += snprintf(ctx + used, sizeof ctx - (size_t)used, "]%s, %s[", mt_is_contiguous(a) ? "" : "~",
                   mt_dtype_name(db));
  for (int i = 0; i < bn; i++) used += snprintf(ctx + used, sizeof ctx - (size_t)used, i ? ",%lld" : "%lld", (long long)bs[i]);
  snprintf(ctx + used, sizeof ctx - (size_t)used, "]%s)", mt_is_contiguous(b) ? "" : "~");
  TU_EXPECT(ref_matmul(NULL, an, as, NULL, bn, bs, NULL, &on, os), "%s: reference refuses", ctx);
  mt_tensor *r = mt_matmul(a, b);
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, on, os);
  double *av = TU_READ(a), *bv = TU_READ(b);
  int64_t n = ref_numel(on, os);
  double *want = malloc(sizeof(double) * (size_t)(n ? n : 1));
  ref_matmul(av, an, as, bv, bn, bs, want, &on, os);
  for (int64_t i = 0; i < n; i++)
    want[i] = ref_is_int(o) ? (double)ref_wrap((int64_t)want[i], o) : ref_round_to(want[i], o);
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  tu_check_close_at(ctx, __LINE__, r, want, n, rtol, atol);
  free(want);
  free(av);
  free(bv);
  mt_tensor_free(r);
}

static void run_matmul(mt_dtype da, int an, const int64_t *as, int al, mt_dtype db, int bn,
                       const int64_t *bs, int bl) {
  mt_tensor *a = make(da, an, as, 100, al), *b = make(db, bn, bs, 900, bl);
  check_matmul(a, b);
  mt_tensor_free(a);
  mt_tensor_free(b);
}

START_TEST(test_matmul_numpy_cases) {
  mt_dtype d = DTYPE_I;
  static const struct { int an; int64_t as[4]; int bn; int64_t bs[4]; } cases[] = {
      {1, {5}, 1, {5}},                  /* -> 0-d */
      {1, {4}, 2, {4, 3}},               /* -> [3] */
      {2, {3, 4}, 1, {4}},               /* -> [3] */
      {2, {3, 4}, 2, {4, 5}},
      {3, {2, 3, 4}, 2, {4, 5}},         /* batch on the left */
      {2, {3, 4}, 3, {2, 4, 5}},         /* batch on the right */
      {4, {2, 1, 3, 4}, 3, {5, 4, 6}},   /* batches broadcast -> [2, 5, 3, 6] */
      {3, {1, 3, 4}, 3, {2, 4, 5}},
      {1, {4}, 3, {2, 4, 5}},            /* -> [2, 5] */
      {3, {2, 3, 4}, 1, {4}},            /* -> [2, 3] */
      {2, {3, 0}, 2, {0, 4}},            /* K = 0: zeros */
      {2, {0, 4}, 2, {4, 5}},            /* M = 0 */
      {2, {3, 4}, 2, {4, 0}},            /* N = 0 */
      {3, {0, 3, 4}, 2, {4, 2}},         /* empty batch */
      {1, {0}, 1, {0}},                  /* 0-d zero */
      {2, {1, 1}, 2, {1, 1}},
      {2, {17, 33}, 2, {33, 9}},
  };
  for (int c = 0; c < TU_COUNT(cases); c++)
    for (int la = 0; la < 3; la++) {
      int lb = (la + c) % 3;
      run_matmul(d, cases[c].an, cases[c].as, la, d, cases[c].bn, cases[c].bs, lb);
    }
}
END_TEST

START_TEST(test_matmul_large) {
  static const mt_dtype dts[] = {MT_FLOAT32, MT_FLOAT64, MT_FLOAT16, MT_BFLOAT16, MT_INT32};
  for (int i = 0; i < TU_COUNT(dts); i++) {
    mt_dtype d = dts[i];
    run_matmul(d, 2, TU_SHAPE(64, 70), PLAIN, d, 2, TU_SHAPE(70, 33), PLAIN);
    run_matmul(d, 2, TU_SHAPE(64, 70), TRANSPOSED, d, 2, TU_SHAPE(70, 33), TRANSPOSED);
    run_matmul(d, 3, TU_SHAPE(2, 65, 129), PLAIN, d, 2, TU_SHAPE(129, 67), STEPPED);
    run_matmul(d, 1, TU_SHAPE(300), PLAIN, d, 2, TU_SHAPE(300, 200), PLAIN);
    run_matmul(d, 2, TU_SHAPE(200, 300), TRANSPOSED, d, 1, TU_SHAPE(300), STEPPED);
  }
  /* an expanded (stride 0) batch operand */
  mt_tensor *m = make(MT_FLOAT32, 3, TU_SHAPE(1, 8, 6), 3, PLAIN);
  mt_tensor *e = TU_OK(mt_expand(m, 3, TU_SHAPE(4, 8, 6)));
  mt_tensor *b = make(MT_FLOAT32, 3, TU_SHAPE(4, 6, 5), 4, PLAIN);
  check_matmul(e, b);
  mt_tensor_free(b);
  mt_tensor_free(e);
  mt_tensor_free(m);
}
END_TEST

/* A long inner dimension is computed in pieces that accumulate onto each
 * other (src/cpu/matmul.c): the same results, and an operand broadcast
 * along k (stride 0) is staged a piece at a time. */
START_TEST(test_matmul_long_inner_dim) {
  static const mt_dtype dts[] = {MT_FLOAT32, MT_FLOAT64, MT_FLOAT16, MT_INT32};
  for (int i = 0; i < TU_COUNT(dts); i++) {
    mt_dtype d = dts[i];
    run_matmul(d, 2, TU_SHAPE(4, 9000), PLAIN, d, 2, TU_SHAPE(9000, 700), TRANSPOSED);
    run_matmul(d, 3, TU_SHAPE(2, 3, 9000), STEPPED, d, 1, TU_SHAPE(9000), PLAIN);
  }
  const int64_t k = (int64_t)1 << 25;
  mt_tensor *half = TU_OK(mt_full(2, TU_SHAPE(1, 1), 0.5, MT_FLOAT32, TU_CPU));
  mt_tensor *two = TU_OK(mt_full(2, TU_SHAPE(1, 1), 2.0, MT_FLOAT32, TU_CPU));
  mt_tensor *row = TU_OK(mt_expand(half, 2, TU_SHAPE(1, k)));
  mt_tensor *col = TU_OK(mt_expand(two, 2, TU_SHAPE(k, 1)));
  mt_tensor *r = TU_OK(mt_matmul(row, col));
  double v = 0;
  ck_assert_int_eq(mt_item(r, &v), MT_OK);
  ck_assert_double_eq(v, (double)k);
  mt_tensor_free(r);
  mt_tensor_free(col);
  mt_tensor_free(row);
  mt_tensor_free(two);
  mt_tensor_free(half);
}
END_TEST

/* The TF32 mode: off by default, MODALTENSOR_ALLOW_TF32=1 turns it on
 * initially (read on first use: each test is a fresh process), the setter
 * wins after that, and the cpu's float32 results are bit for bit the same
 * with it on (the cpu has no TF32). */
START_TEST(test_matmul_tf32_mode) {
  setenv("MODALTENSOR_ALLOW_TF32", "1", 1);
  ck_assert_int_eq(mt_matmul_tf32_enabled(), 1);
  mt_set_matmul_tf32(0);
  ck_assert_int_eq(mt_matmul_tf32_enabled(), 0);
  mt_tensor *a = make(MT_FLOAT32, 3, TU_SHAPE(2, 37, 53), 11, PLAIN);
  mt_tensor *b = make(MT_FLOAT32, 2, TU_SHAPE(53, 29), 12, TRANSPOSED);
  mt_tensor *exact = TU_OK(mt_matmul(a, b));
  mt_set_matmul_tf32(1);
  ck_assert_int_eq(mt_matmul_tf32_enabled(), 1);
  mt_tensor *tf32 = TU_OK(mt_matmul(a, b));
  float *want = malloc(2 * 37 * 29 * sizeof *want);
  TU_CHECK_OK(mt_to_host(exact, want, 2 * 37 * 29 * sizeof *want));
  TU_CHECK_RAW(tf32, want, 2 * 37 * 29);
  check_matmul(a, b);
  free(want);
  mt_tensor_free(tf32);
  mt_tensor_free(exact);
  mt_tensor_free(b);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_matmul_mixed_and_wrap) {
  run_matmul(MT_INT32, 2, TU_SHAPE(3, 4), PLAIN, MT_FLOAT16, 2, TU_SHAPE(4, 2), PLAIN);
  run_matmul(MT_INT8, 2, TU_SHAPE(3, 4), PLAIN, MT_UINT8, 2, TU_SHAPE(4, 2), PLAIN);
  run_matmul(MT_FLOAT16, 2, TU_SHAPE(3, 4), PLAIN, MT_BFLOAT16, 2, TU_SHAPE(4, 2), PLAIN);
  run_matmul(MT_BOOL, 2, TU_SHAPE(3, 4), PLAIN, MT_FLOAT32, 1, TU_SHAPE(4), PLAIN);
  /* integer accumulation wraps in the result dtype */
  mt_tensor *a = TU_TENSOR(TU_VALS(100, 100), 2, TU_SHAPE(1, 2), MT_INT8);
  mt_tensor *at = TU_OK(mt_transpose(a, 0, 1));
  mt_tensor *r = TU_OK(mt_matmul(a, at));
  TU_CHECK_META(r, MT_INT8, 2, TU_SHAPE(1, 1));
  TU_CHECK_VALUES(r, TU_VALS(32), 1); /* 20000 mod 256 */
  mt_tensor_free(r);
  mt_tensor_free(at);
  mt_tensor_free(a);
  /* bool: logical or of ands */
  mt_tensor *p = TU_TENSOR(TU_VALS(1, 0, 0, 0, 1, 1), 2, TU_SHAPE(2, 3), MT_BOOL);
  mt_tensor *q = TU_TENSOR(TU_VALS(0, 1, 1, 1, 0, 1), 2, TU_SHAPE(3, 2), MT_BOOL);
  r = TU_OK(mt_matmul(p, q));
  TU_CHECK_META(r, MT_BOOL, 2, TU_SHAPE(2, 2));
  TU_CHECK_VALUES(r, TU_VALS(0, 1, 1, 1), 4);
  uint8_t raw[4];
  TU_CHECK_OK(mt_to_host(r, raw, 4));
  ck_assert(raw[0] == 0 && raw[1] == 1 && raw[2] == 1 && raw[3] == 1);
  mt_tensor_free(r);
  mt_tensor_free(p);
  mt_tensor_free(q);
  /* a float16 result past 65504 overflows */
  mt_tensor *h = TU_OK(mt_full(2, TU_SHAPE(1, 64), 32, MT_FLOAT16, TU_CPU));
  mt_tensor *ht = TU_OK(mt_full(2, TU_SHAPE(64, 1), 32, MT_FLOAT16, TU_CPU));
  r = TU_OK(mt_matmul(h, ht));
  TU_CHECK_CLOSE(r, TU_VALS(INFINITY), 1, 0, 0);
  mt_tensor_free(r);
  mt_tensor_free(h);
  mt_tensor_free(ht);
}
END_TEST

/* Integer matmul accumulates exactly in the integer dtype. */
START_TEST(test_matmul_integer_exact) {
  const int64_t a[2] = {(int64_t)1 << 31, 1}, b[2] = {((int64_t)1 << 31) - 1, ((int64_t)1 << 53) + 1};
  mt_tensor *ta = TU_OK(mt_from_data(a, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *tb = TU_OK(mt_from_data(b, 1, TU_SHAPE(2), MT_INT64, TU_CPU));
  mt_tensor *r = TU_OK(mt_matmul(ta, tb));
  TU_CHECK_META(r, MT_INT64, 0, NULL);
  const int64_t want = ((int64_t)1 << 62) - ((int64_t)1 << 31) + ((int64_t)1 << 53) + 1;
  TU_CHECK_RAW(r, &want, 1);
  mt_tensor_free(r);
  mt_tensor_free(ta);
  mt_tensor_free(tb);
  /* int32: 2^20 * 2^20 wraps to 0, plus 5 * 7 */
  const int32_t c[4] = {1 << 20, 5, 1, 2}, d[4] = {1 << 20, 3, 7, 4};
  mt_tensor *tc = TU_OK(mt_from_data(c, 2, TU_SHAPE(2, 2), MT_INT32, TU_CPU));
  mt_tensor *td = TU_OK(mt_from_data(d, 2, TU_SHAPE(2, 2), MT_INT32, TU_CPU));
  r = TU_OK(mt_matmul(tc, td));
  const int32_t w32[4] = {35, 3 * (1 << 20) + 20, (1 << 20) + 14, 11};
  TU_CHECK_RAW(r, w32, 4);
  mt_tensor_free(r);
  mt_tensor_free(tc);
  mt_tensor_free(td);
}
END_TEST

START_TEST(test_matmul_refusals) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *b = TU_OK(mt_ones(2, TU_SHAPE(5, 2), MT_FLOAT32, TU_CPU));
  mt_tensor *v5 = TU_OK(mt_ones(1, TU_SHAPE(5), MT_FLOAT32, TU_CPU));
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  mt_tensor *b1 = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *b2 = TU_OK(mt_ones(3, TU_SHAPE(3, 4, 5), MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_matmul(a, b), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(a, v5), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(v5, a), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(s, a), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(a, s), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(s, s), MT_ERR_SHAPE, "mt_matmul");
  TU_FAILS(mt_matmul(b1, b2), MT_ERR_SHAPE, "mt_matmul"); /* batches 2 and 3 */
  TU_FAILS(mt_matmul(NULL, a), MT_ERR_INVALID_ARGUMENT, "mt_matmul");
  TU_FAILS(mt_matmul(a, NULL), MT_ERR_INVALID_ARGUMENT, "mt_matmul");
  mt_tensor_free(a);
  mt_tensor_free(b);
  mt_tensor_free(v5);
  mt_tensor_free(s);
  mt_tensor_free(b1);
  mt_tensor_free(b2);
}
END_TEST

/* ------------------------------------------------------------- linear */

/* x [rows, k] (rows = all but x's last dim), w [n, k], b [n] or NULL. */
static void ref_linear(const double *x, int64_t rows, int64_t k, const double *w, int64_t n,
                       const double *b, double *out) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < n; j++) {
      double acc = b ? b[j] : 0.0;
      for (int64_t i = 0; i < k; i++) acc += x[r * k + i] * w[j * k + i];
      out[r * n + j] = acc;
    }
}

static void check_linear(const mt_tensor *x, const mt_tensor *w, const mt_tensor *b) {
  int xn = mt_ndim(x);
  int64_t k = mt_shape(x, xn - 1), n = mt_shape(w, 0), rows = 1, os[MT_MAX_DIMS];
  for (int i = 0; i < xn - 1; i++) rows *= os[i] = mt_shape(x, i);
  os[xn - 1] = n;
  mt_dtype o = ref_promote(mt_tensor_dtype(x), mt_tensor_dtype(w));
  if (b) o = ref_promote(o, mt_tensor_dtype(b));
  char ctx[160];
  snprintf(ctx, sizeof ctx, "linear(%s x%s [%lld rows, %lld], w%s [%lld, %lld]%s)",
           mt_dtype_name(mt_tensor_dtype(x)), mt_is_contiguous(x) ? "" : "~", (long long)rows,
           (long long)k, mt_is_contiguous(w) ? "" : "~", (long long)n, (long long)k,
           b ? ", b" : "");
  mt_tensor *r = mt_linear(x, w, b);
  TU_EXPECT(r != NULL, "%s failed: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, xn, os);
  double *xv = TU_READ(x), *wv = TU_READ(w), *bv = b ? TU_READ(b) : NULL;
  double *want = malloc(sizeof(double) * (size_t)(rows * n > 0 ? rows * n : 1));
  ref_linear(xv, rows, k, wv, n, bv, want);
  for (int64_t i = 0; i < rows * n; i++) want[i] = ref_round_to(want[i], o);
  double rtol, atol;
  tu_tol(o, &rtol, &atol);
  tu_check_close_at(ctx, __LINE__, r, want, rows * n, rtol, atol);
  free(want);
  free(xv);
  free(wv);
  free(bv);
  mt_tensor_free(r);
}

/* Every floating dtype, x of 1 to 3 dims in every layout, the weight plain
 * (read transposed by the product) or itself a transposed view, with and
 * without a bias; empty rows, k = 0 (the bias alone) and n = 0. */
START_TEST(test_linear_cases) {
  static const mt_dtype dts[] = {MT_FLOAT16, MT_BFLOAT16, MT_FLOAT32, MT_FLOAT64};
  static const struct { int xn; int64_t xs[3]; int64_t n; } cases[] = {
      {1, {5}, 3},       {2, {4, 5}, 3},  {3, {2, 3, 6}, 7}, {2, {1, 33}, 17},
      {3, {2, 9, 40}, 65}, {2, {0, 5}, 3}, {2, {4, 0}, 3},   {2, {4, 5}, 0},
  };
  for (int d = 0; d < TU_COUNT(dts); d++)
    for (int c = 0; c < TU_COUNT(cases); c++)
      for (int layout = 0; layout < 3; layout++) {
        int64_t k = cases[c].xs[cases[c].xn - 1], n = cases[c].n;
        mt_tensor *x = make(dts[d], cases[c].xn, cases[c].xs, 100, layout);
        mt_tensor *w = make(dts[d], 2, TU_SHAPE(n, k), 500, (layout + 1) % 3);
        mt_tensor *b = make(dts[d], 1, TU_SHAPE(n), 900, layout == STEPPED ? STEPPED : PLAIN);
        check_linear(x, w, NULL);
        check_linear(x, w, b);
        mt_tensor_free(x);
        mt_tensor_free(w);
        mt_tensor_free(b);
      }
}
END_TEST

/* Mixed floating dtypes promote; the bias joins the promotion. */
START_TEST(test_linear_mixed) {
  mt_tensor *x = make(MT_FLOAT16, 2, TU_SHAPE(3, 8), 1, PLAIN);
  mt_tensor *w = make(MT_FLOAT32, 2, TU_SHAPE(4, 8), 2, PLAIN);
  mt_tensor *b = make(MT_FLOAT64, 1, TU_SHAPE(4), 3, PLAIN);
  check_linear(x, w, NULL);
  check_linear(x, w, b);
  mt_tensor_free(x);
  mt_tensor_free(w);
  mt_tensor_free(b);
}
END_TEST

START_TEST(test_linear_refusals) {
  mt_tensor *x = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *w = TU_OK(mt_ones(2, TU_SHAPE(5, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *wt = TU_OK(mt_ones(2, TU_SHAPE(4, 5), MT_FLOAT32, TU_CPU));
  mt_tensor *w3 = TU_OK(mt_ones(3, TU_SHAPE(1, 5, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *b4 = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, TU_CPU));
  mt_tensor *xi = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_INT32, TU_CPU));
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_linear(x, wt, NULL), MT_ERR_SHAPE, "mt_linear");
  TU_FAILS(mt_linear(x, w3, NULL), MT_ERR_SHAPE, "mt_linear");
  TU_FAILS(mt_linear(x, w, b4), MT_ERR_SHAPE, "mt_linear");
  TU_FAILS(mt_linear(s, w, NULL), MT_ERR_SHAPE, "mt_linear");
  TU_FAILS(mt_linear(xi, w, NULL), MT_ERR_DTYPE, "mt_linear");
  TU_FAILS(mt_linear(x, xi, NULL), MT_ERR_DTYPE, "mt_linear");
  TU_FAILS(mt_linear(NULL, w, NULL), MT_ERR_INVALID_ARGUMENT, "mt_linear");
  TU_FAILS(mt_linear(x, NULL, NULL), MT_ERR_INVALID_ARGUMENT, "mt_linear");
  mt_tensor_free(x);
  mt_tensor_free(w);
  mt_tensor_free(wt);
  mt_tensor_free(w3);
  mt_tensor_free(b4);
  mt_tensor_free(xi);
  mt_tensor_free(s);
}
END_TEST

/* -------------------------------------------------------------- cat */

/* Expected cat of n row-major arrays along dim. */
static double *ref_cat(int n, double **vals, int ndim, int64_t (*shapes)[MT_MAX_DIMS], int dim,
                       int64_t *total) {
  int64_t outer = ref_numel(dim, shapes[0]), inner = ref_numel(ndim - dim - 1, shapes[0] + dim + 1);
  int64_t sum = 0;
  for (int i = 0; i < n; i++) sum += shapes[i][dim];
  *total = sum;
  double *out = malloc(sizeof(double) * (size_t)(outer * sum * inner + 1));
  int64_t pos = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int i = 0; i < n; i++) {
      int64_t chunk = shapes[i][dim] * inner;
      memcpy(out + pos, vals[i] + o * chunk, sizeof(double) * (size_t)chunk);
      pos += chunk;
    }
  return out;
}

static void check_cat(int n, const mt_tensor *const *ts, int dim) {
  int ndim = mt_ndim(ts[0]);
  int nd = dim < 0 ? dim + ndim : dim;
  int64_t shapes[8][MT_MAX_DIMS];
  double *vals[8];
  mt_dtype o = mt_tensor_dtype(ts[0]);
  for (int i = 0; i < n; i++) {
    for (int d = 0; d < ndim; d++) shapes[i][d] = mt_shape(ts[i], d);
    vals[i] = TU_READ(ts[i]);
    o = ref_promote(o, mt_tensor_dtype(ts[i]));
  }
  int64_t total, oshape[MT_MAX_DIMS];
  double *want = ref_cat(n, vals, ndim, shapes, nd, &total);
  for (int d = 0; d < ndim; d++) oshape[d] = shapes[0][d];
  oshape[nd] = total;
  char ctx[64];
  snprintf(ctx, sizeof ctx, "cat(n %d, dim %d) -> %s", n, dim, mt_dtype_name(o));
  mt_tensor *r = mt_cat(n, ts, dim);
  TU_EXPECT(r != NULL, "%s: %s", ctx, mt_last_error());
  tu_check_meta_at(ctx, __LINE__, r, o, ndim, oshape);
  int64_t numel = ref_numel(ndim, oshape);
  for (int64_t i = 0; i < numel; i++) want[i] = ref_round_to(want[i], o);
  tu_check_close_at(ctx, __LINE__, r, want, numel, 0, 0);
  free(want);
  for (int i = 0; i < n; i++) free(vals[i]);
  mt_tensor_free(r);
}

START_TEST(test_cat_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_tensor *a = make(d, 3, TU_SHAPE(2, 3, 4), 1, PLAIN);
  mt_tensor *b = make(d, 3, TU_SHAPE(2, 3, 4), 2, TRANSPOSED);
  mt_tensor *c = make(d, 3, TU_SHAPE(2, 3, 4), 3, STEPPED);
  const mt_tensor *abc[3] = {a, b, c};
  for (int dim = -3; dim < 3; dim++) {
    check_cat(2, abc, dim);
    check_cat(3, abc, dim);
    check_cat(1, abc, dim);
  }
  /* different extents along dim, and an empty one */
  mt_tensor *x = make(d, 2, TU_SHAPE(3, 5), 4, PLAIN);
  mt_tensor *y = make(d, 2, TU_SHAPE(3, 1), 5, PLAIN);
  mt_tensor *z = TU_OK(mt_zeros(2, TU_SHAPE(3, 0), d, TU_CPU));
  const mt_tensor *xyz[3] = {x, z, y};
  check_cat(3, xyz, 1);
  check_cat(3, xyz, -1);
  /* large */
  mt_tensor *l1 = make(d, 2, TU_SHAPE(1000, 37), 6, PLAIN);
  mt_tensor *l2 = make(d, 2, TU_SHAPE(1000, 41), 7, TRANSPOSED);
  const mt_tensor *ll[2] = {l1, l2};
  check_cat(2, ll, 1);
  mt_tensor_free(l1);
  mt_tensor_free(l2);
  mt_tensor_free(x);
  mt_tensor_free(y);
  mt_tensor_free(z);
  mt_tensor_free(a);
  mt_tensor_free(b);
  mt_tensor_free(c);
}
END_TEST

START_TEST(test_cat_promotion) {
  static const struct { mt_dtype a, b; } pairs[] = {
      {MT_INT8, MT_FLOAT16}, {MT_UINT8, MT_INT8}, {MT_BOOL, MT_INT32}, {MT_FLOAT16, MT_BFLOAT16},
      {MT_INT64, MT_FLOAT64}, {MT_FLOAT32, MT_BOOL},
  };
  for (int i = 0; i < TU_COUNT(pairs); i++) {
    mt_tensor *a = make(pairs[i].a, 2, TU_SHAPE(2, 3), 10, PLAIN);
    mt_tensor *b = make(pairs[i].b, 2, TU_SHAPE(4, 3), 20, TRANSPOSED);
    const mt_tensor *ab[2] = {a, b};
    check_cat(2, ab, 0);
    mt_tensor_free(a);
    mt_tensor_free(b);
  }
}
END_TEST

START_TEST(test_cat_refusals) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(2, 3), MT_FLOAT32, TU_CPU));
  mt_tensor *b = TU_OK(mt_ones(2, TU_SHAPE(2, 4), MT_FLOAT32, TU_CPU));
  mt_tensor *c = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 1), MT_FLOAT32, TU_CPU));
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  const mt_tensor *ab[2] = {a, b}, *ac[2] = {a, c}, *ss[2] = {s, s}, *an[2] = {a, NULL};
  TU_FAILS(mt_cat(2, ab, 0), MT_ERR_SHAPE, "mt_cat");
  TU_FAILS(mt_cat(2, ac, 0), MT_ERR_SHAPE, "mt_cat");
  TU_FAILS(mt_cat(2, ab, 2), MT_ERR_SHAPE, "mt_cat");
  TU_FAILS(mt_cat(2, ab, -3), MT_ERR_SHAPE, "mt_cat");
  TU_FAILS(mt_cat(2, ss, 0), MT_ERR_SHAPE, "mt_cat");
  TU_FAILS(mt_cat(0, ab, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  TU_FAILS(mt_cat(-1, ab, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  TU_FAILS(mt_cat(2, NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  TU_FAILS(mt_cat(2, an, 0), MT_ERR_INVALID_ARGUMENT, "mt_cat");
  TU_FAILS(mt_stack(2, ab, 0), MT_ERR_SHAPE, "mt_stack");
  TU_FAILS(mt_stack(0, ab, 0), MT_ERR_INVALID_ARGUMENT, "mt_stack");
  TU_FAILS(mt_stack(2, NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_stack");
  TU_FAILS(mt_stack(2, an, 0), MT_ERR_INVALID_ARGUMENT, "mt_stack");
  const mt_tensor *aa[2] = {a, a};
  TU_FAILS(mt_stack(2, aa, 3), MT_ERR_SHAPE, "mt_stack");
  TU_FAILS(mt_stack(2, aa, -4), MT_ERR_SHAPE, "mt_stack");
  mt_tensor_free(a);
  mt_tensor_free(b);
  mt_tensor_free(c);
  mt_tensor_free(s);
}
END_TEST

/* ------------------------------------------------------------- stack */

START_TEST(test_stack) {
  mt_tensor *a = make(MT_FLOAT32, 2, TU_SHAPE(2, 3), 1, PLAIN);
  mt_tensor *b = make(MT_INT16, 2, TU_SHAPE(2, 3), 2, TRANSPOSED);
  const mt_tensor *ab[2] = {a, b};
  double *av = TU_READ(a), *bv = TU_READ(b);
  static const struct { int dim; int64_t shape[3]; } cases[] = {
      {0, {2, 2, 3}}, {1, {2, 2, 3}}, {2, {2, 3, 2}}, {-1, {2, 3, 2}}, {-3, {2, 2, 3}}, {-2, {2, 2, 3}}};
  for (int c = 0; c < TU_COUNT(cases); c++) {
    mt_tensor *r = TU_OK(mt_stack(2, ab, cases[c].dim));
    TU_CHECK_META(r, MT_FLOAT32, 3, cases[c].shape);
    int nd = cases[c].dim < 0 ? cases[c].dim + 3 : cases[c].dim;
    double want[12];
    for (int k = 0; k < 2; k++)
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
          int64_t idx[3] = {i, j, 0}, pos;
          /* insert k at position nd */
          int64_t full[3];
          for (int q = 0, src = 0; q < 3; q++) full[q] = q == nd ? k : idx[src++];
          pos = (full[0] * cases[c].shape[1] + full[1]) * cases[c].shape[2] + full[2];
          want[pos] = (k ? bv : av)[i * 3 + j];
        }
    TU_CHECK_VALUES(r, want, 12);
    mt_tensor_free(r);
  }
  free(av);
  free(bv);
  /* 0-d tensors stack into a vector */
  mt_tensor *s1 = TU_TENSOR(TU_VALS(3), 0, NULL, MT_INT8), *s2 = TU_TENSOR(TU_VALS(-4), 0, NULL, MT_INT8);
  const mt_tensor *ss[3] = {s1, s2, s1};
  mt_tensor *r = TU_OK(mt_stack(3, ss, 0));
  TU_CHECK_META(r, MT_INT8, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(3, -4, 3), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_stack(1, ss, -1));
  TU_CHECK_META(r, MT_INT8, 1, TU_SHAPE(1));
  mt_tensor_free(r);
  mt_tensor_free(s1);
  mt_tensor_free(s2);
  mt_tensor_free(a);
  mt_tensor_free(b);
}
END_TEST

/* ------------------------------------------------------- index_select */

START_TEST(test_index_select_every_dtype) {
  mt_dtype d = DTYPE_I;
  mt_tensor *a = make(d, 2, TU_SHAPE(4, 3), 1, PLAIN);
  double *av = TU_READ(a);
  mt_tensor *i64 = TU_TENSOR(TU_VALS(3, 0, -1, 3, -4), 1, TU_SHAPE(5), MT_INT64);
  mt_tensor *r = TU_OK(mt_index_select(a, 0, i64));
  TU_CHECK_META(r, d, 2, TU_SHAPE(5, 3));
  const int rows[5] = {3, 0, 3, 3, 0};
  double want[15];
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 3; j++) want[i * 3 + j] = av[rows[i] * 3 + j];
  TU_CHECK_CLOSE(r, want, 15, 0, 0);
  mt_tensor_free(r);

  mt_tensor *i32 = TU_TENSOR(TU_VALS(2, -3, 2), 1, TU_SHAPE(3), MT_INT32);
  r = TU_OK(mt_index_select(a, -1, i32));
  TU_CHECK_META(r, d, 2, TU_SHAPE(4, 3));
  const int cols[3] = {2, 0, 2};
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) want[i * 3 + j] = av[i * 3 + cols[j]];
  TU_CHECK_CLOSE(r, want, 12, 0, 0);
  mt_tensor_free(r);

  /* a transposed source, a stepped index */
  mt_tensor *at = TU_OK(mt_transpose(a, 0, 1)); /* [3, 4] */
  mt_tensor *wide = TU_TENSOR(TU_VALS(1, 9, -1, 9, 0, 9), 1, TU_SHAPE(6), MT_INT64);
  mt_tensor *stepped = TU_OK(mt_slice(wide, 0, 0, 6, 2)); /* 1, -1, 0 */
  r = TU_OK(mt_index_select(at, 1, stepped));
  TU_CHECK_META(r, d, 2, TU_SHAPE(3, 3));
  const int pick[3] = {1, 3, 0};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) want[i * 3 + j] = av[pick[j] * 3 + i];
  TU_CHECK_CLOSE(r, want, 9, 0, 0);
  mt_tensor_free(r);

  /* an empty index */
  mt_tensor *none = TU_OK(mt_zeros(1, TU_SHAPE(0), MT_INT64, TU_CPU));
  r = TU_OK(mt_index_select(a, 0, none));
  TU_CHECK_META(r, d, 2, TU_SHAPE(0, 3));
  mt_tensor_free(r);

  mt_tensor_free(none);
  mt_tensor_free(stepped);
  mt_tensor_free(wide);
  mt_tensor_free(at);
  mt_tensor_free(i32);
  mt_tensor_free(i64);
  free(av);
  mt_tensor_free(a);
}
END_TEST

START_TEST(test_index_select_scalar_and_large) {
  mt_tensor *a = TU_TENSOR(TU_VALS(0, 1, 2, 3, 4, 5), 2, TU_SHAPE(2, 3), MT_FLOAT32);
  /* A 0-d index picks one entry and drops the dim, like a[i]. */
  mt_tensor *i = TU_TENSOR(TU_VALS(-1), 0, NULL, MT_INT32);
  mt_tensor *r = TU_OK(mt_index_select(a, 0, i));
  ck_assert_int_eq(mt_numel(r), 3);
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(r, TU_VALS(3, 4, 5), 3);
  mt_tensor_free(r);
  r = TU_OK(mt_index_select(a, 1, i));
  TU_CHECK_META(r, MT_FLOAT32, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(r, TU_VALS(2, 5), 2);
  mt_tensor_free(r);
  mt_tensor_free(i);
  mt_tensor_free(a);

  /* many indices into a long table (threaded path) */
  const int64_t rows = 50000, n = 40000;
  mt_tensor *table = TU_OK(mt_arange(0, (double)(rows * 3), 1, MT_FLOAT64, TU_CPU));
  mt_tensor *t2 = TU_OK(mt_reshape(table, 2, TU_SHAPE(rows, 3)));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)n);
  for (int64_t k = 0; k < n; k++) idx[k] = (k * 7919) % rows - (k % 2 ? rows : 0);
  mt_tensor *it = TU_OK(mt_from_data(idx, 1, &n, MT_INT64, TU_CPU));
  r = TU_OK(mt_index_select(t2, 0, it));
  TU_CHECK_META(r, MT_FLOAT64, 2, TU_SHAPE(n, 3));
  double *want = malloc(sizeof(double) * (size_t)n * 3);
  for (int64_t k = 0; k < n; k++) {
    int64_t row = idx[k] < 0 ? idx[k] + rows : idx[k];
    for (int j = 0; j < 3; j++) want[k * 3 + j] = (double)(row * 3 + j);
  }
  TU_CHECK_CLOSE(r, want, n * 3, 0, 0);
  free(want);
  free(idx);
  mt_tensor_free(r);
  mt_tensor_free(it);
  mt_tensor_free(t2);
  mt_tensor_free(table);
}
END_TEST

START_TEST(test_index_select_refusals) {
  mt_tensor *a = TU_OK(mt_ones(2, TU_SHAPE(4, 3), MT_FLOAT32, TU_CPU));
  mt_tensor *hi = TU_TENSOR(TU_VALS(0, 4), 1, TU_SHAPE(2), MT_INT64);
  mt_tensor *lo = TU_TENSOR(TU_VALS(-5), 1, TU_SHAPE(1), MT_INT32);
  mt_tensor *f = TU_TENSOR(TU_VALS(0, 1), 1, TU_SHAPE(2), MT_FLOAT32);
  mt_tensor *i8 = TU_TENSOR(TU_VALS(0, 1), 1, TU_SHAPE(2), MT_INT8);
  mt_tensor *b = TU_TENSOR(TU_VALS(0, 1), 1, TU_SHAPE(2), MT_BOOL);
  mt_tensor *two_d = TU_OK(mt_zeros(2, TU_SHAPE(1, 2), MT_INT64, TU_CPU));
  mt_tensor *ok = TU_TENSOR(TU_VALS(0), 1, TU_SHAPE(1), MT_INT64);
  mt_tensor *s = TU_OK(mt_ones(0, NULL, MT_FLOAT32, TU_CPU));
  TU_FAILS(mt_index_select(a, 0, hi), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  TU_FAILS(mt_index_select(a, 0, lo), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  mt_tensor *big = TU_TENSOR(TU_VALS(3), 1, TU_SHAPE(1), MT_INT64);
  TU_FAILS(mt_index_select(a, 1, big), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  mt_tensor_free(big);
  TU_FAILS(mt_index_select(a, 0, f), MT_ERR_DTYPE, "mt_index_select");
  TU_FAILS(mt_index_select(a, 0, i8), MT_ERR_DTYPE, "mt_index_select");
  TU_FAILS(mt_index_select(a, 0, b), MT_ERR_DTYPE, "mt_index_select");
  TU_FAILS(mt_index_select(a, 0, two_d), MT_ERR_SHAPE, "mt_index_select");
  TU_FAILS(mt_index_select(a, 2, ok), MT_ERR_SHAPE, "mt_index_select");
  TU_FAILS(mt_index_select(a, -3, ok), MT_ERR_SHAPE, "mt_index_select");
  TU_FAILS(mt_index_select(s, 0, ok), MT_ERR_SHAPE, "mt_index_select");
  TU_FAILS(mt_index_select(NULL, 0, ok), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  TU_FAILS(mt_index_select(a, 0, NULL), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  /* an out-of-range index deep in a long index tensor */
  int64_t *idx = calloc(50000, sizeof(int64_t));
  idx[49999] = 4;
  const int64_t n = 50000;
  mt_tensor *lt = TU_OK(mt_from_data(idx, 1, &n, MT_INT64, TU_CPU));
  TU_FAILS(mt_index_select(a, 0, lt), MT_ERR_INVALID_ARGUMENT, "mt_index_select");
  mt_tensor_free(lt);
  free(idx);
  mt_tensor_free(s);
  mt_tensor_free(ok);
  mt_tensor_free(two_d);
  mt_tensor_free(b);
  mt_tensor_free(i8);
  mt_tensor_free(f);
  mt_tensor_free(lo);
  mt_tensor_free(hi);
  mt_tensor_free(a);
}
END_TEST

static Suite *linalg_suite(void) {
  Suite *s = suite_create("linalg");
  TCase *tc = tcase_create("matmul");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_matmul_numpy_cases, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_matmul_large);
  tcase_add_test(tc, test_matmul_long_inner_dim);
  tcase_add_test(tc, test_matmul_mixed_and_wrap);
  tcase_add_test(tc, test_matmul_tf32_mode);
  tcase_add_test(tc, test_matmul_integer_exact);
  tcase_add_test(tc, test_matmul_refusals);
  suite_add_tcase(s, tc);

  tc = tcase_create("linear");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_linear_cases);
  tcase_add_test(tc, test_linear_mixed);
  tcase_add_test(tc, test_linear_refusals);
  suite_add_tcase(s, tc);

  tc = tcase_create("join");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_cat_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_cat_promotion);
  tcase_add_test(tc, test_cat_refusals);
  tcase_add_test(tc, test_stack);
  suite_add_tcase(s, tc);

  tc = tcase_create("index_select");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_index_select_every_dtype, 0, REF_NUM_DTYPES);
  tcase_add_test(tc, test_index_select_scalar_and_large);
  tcase_add_test(tc, test_index_select_refusals);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(linalg_suite()); }
