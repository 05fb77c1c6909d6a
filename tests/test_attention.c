/*
 * test_attention.c - mt_scaled_dot_product_attention on the cpu against
 * the naive double reference (tests/ref.c): masks, is_causal, scales,
 * L != S, broadcast heads, every floating dtype, strided inputs, edge
 * sizes, large logits, fully masked rows and bad arguments.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "test_util.h"

enum { MASK_NONE, MASK_BOOL, MASK_FLOAT };

typedef struct attn_case {
  int64_t b, h, hk, len, keys, e, ev; /* hk: heads of k and v (1 or h) */
  int mask;                           /* MASK_* of shape [L, S] (broadcast) */
  int causal;
  double scale; /* NAN: default */
  double spread; /* inputs in [-spread, spread) */
} attn_case;

/* Values of n elements from seed, in [-spread, spread) (exact in every dtype
 * when spread <= 32: multiples of 1/8). */
static double *values(int64_t n, uint64_t seed, double spread) {
  double *x = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) x[i] = tu_value(seed + (uint64_t)i, -spread, spread);
  return x;
}

/* [b, hk, rows, cols] expanded to [b, h, rows, cols] for the reference. */
static double *expand_heads(const double *x, const attn_case *c, int64_t rows, int64_t cols) {
  int64_t per = rows * cols;
  double *y = malloc(sizeof(double) * (size_t)(c->b * c->h * per + 1));
  for (int64_t b = 0; b < c->b; b++)
    for (int64_t h = 0; h < c->h; h++)
      memcpy(y + (b * c->h + h) * per, x + (b * c->hk + (c->hk == 1 ? 0 : h)) * per,
             sizeof(double) * (size_t)per);
  return y;
}

static void run_case(const attn_case *c, mt_dtype dt) {
  int64_t nq = c->b * c->h * c->len * c->e, nk = c->b * c->hk * c->keys * c->e;
  int64_t nv = c->b * c->hk * c->keys * c->ev, nm = c->len * c->keys;
  double *q = values(nq, 1, c->spread), *k = values(nk, 1000, c->spread);
  double *v = values(nv, 5000, 4), *m = values(nm, 9000, 4);
  if (c->mask == MASK_BOOL)
    for (int64_t i = 0; i < nm; i++) m[i] = m[i] > -2; /* about 3 in 4 kept */
  mt_tensor *tq = TU_TENSOR(q, 4, TU_SHAPE(c->b, c->h, c->len, c->e), dt);
  mt_tensor *tk = TU_TENSOR(k, 4, TU_SHAPE(c->b, c->hk, c->keys, c->e), dt);
  mt_tensor *tv = TU_TENSOR(v, 4, TU_SHAPE(c->b, c->hk, c->keys, c->ev), dt);
  mt_tensor *tm = NULL;
  if (c->mask)
    tm = TU_TENSOR(m, 2, TU_SHAPE(c->len, c->keys),
                   c->mask == MASK_BOOL ? MT_BOOL : dt == MT_FLOAT64 ? dt : MT_FLOAT32);
  mt_tensor *out = TU_OK(mt_scaled_dot_product_attention(tq, tk, tv, tm, c->causal, c->scale));
  TU_CHECK_META(out, dt, 4, TU_SHAPE(c->b, c->h, c->len, c->ev));

  int64_t bh = c->b * c->h;
  double *ke = expand_heads(k, c, c->keys, c->e), *ve = expand_heads(v, c, c->keys, c->ev);
  double *bias = NULL;
  if (c->mask) {
    bias = malloc(sizeof(double) * (size_t)(bh * nm + 1));
    for (int64_t i = 0; i < bh * nm; i++)
      bias[i] = c->mask == MASK_BOOL ? (m[i % nm] ? 0 : -INFINITY) : m[i % nm];
  }
  double *want = malloc(sizeof(double) * (size_t)(bh * c->len * c->ev + 1));
  double scale = isnan(c->scale) ? 1 / sqrt((double)c->e) : c->scale;
  ref_attention(q, ke, ve, bias, bh, c->len, c->keys, c->e, c->ev, c->causal, scale, want);
  double rtol, atol;
  tu_tol(dt, &rtol, &atol);
  if (dt == MT_FLOAT32) rtol = 2e-5, atol = 2e-5; /* sums of up to S * E float products */
  if (dt == MT_FLOAT64) rtol = 1e-10, atol = 1e-10;
  if (dt == MT_FLOAT16) atol = 2e-3;
  if (dt == MT_BFLOAT16) atol = 2e-2;
  TU_CHECK_CLOSE(out, want, bh * c->len * c->ev, rtol, atol);
  free(q), free(k), free(v), free(m), free(ke), free(ve), free(bias), free(want);
  mt_tensor_free(tq), mt_tensor_free(tk), mt_tensor_free(tv), mt_tensor_free(tm);
  mt_tensor_free(out);
}

static const mt_dtype float_dtypes[] = {MT_FLOAT32, MT_FLOAT64, MT_FLOAT16, MT_BFLOAT16};

START_TEST(test_against_reference) {
  static const attn_case cases[] = {
      /* b, h, hk, L, S, E, Ev, mask, causal, scale, spread */
      {1, 1, 1, 5, 7, 4, 3, MASK_NONE, 0, NAN, 2},
      {2, 3, 3, 70, 130, 16, 8, MASK_NONE, 0, NAN, 2},   /* several tiles, S % 64 != 0 */
      {2, 2, 2, 65, 65, 8, 8, MASK_NONE, 1, NAN, 2},     /* causal, L = S */
      {1, 2, 2, 10, 150, 8, 4, MASK_NONE, 1, NAN, 2},    /* causal, L < S: top-left */
      {1, 1, 1, 150, 10, 8, 4, MASK_NONE, 1, NAN, 2},    /* causal, L > S */
      {2, 4, 4, 1, 200, 32, 32, MASK_NONE, 0, NAN, 2},   /* decoding: L = 1 */
      {1, 2, 2, 33, 77, 8, 5, MASK_BOOL, 0, NAN, 2},
      {1, 2, 2, 33, 77, 8, 5, MASK_FLOAT, 0, NAN, 2},
      {2, 4, 1, 20, 30, 8, 8, MASK_NONE, 0, 0.3, 2},     /* heads broadcast, custom scale */
      {1, 1, 1, 9, 9, 8, 8, MASK_NONE, 0, -1.5, 2},      /* negative scale */
      {1, 2, 2, 40, 90, 16, 16, MASK_NONE, 1, 8.0, 16},  /* logits near 1e4: stability */
      {1, 1, 1, 3, 4, 1, 1, MASK_NONE, 0, NAN, 2},       /* E = 1 */
      {1, 1, 1, 70, 70, 72, 130, MASK_NONE, 0, NAN, 1},  /* E, Ev not multiples of 8 */
  };
  for (int d = 0; d < TU_COUNT(float_dtypes); d++)
    for (int i = 0; i < TU_COUNT(cases); i++) run_case(&cases[i], float_dtypes[d]);
}
END_TEST

START_TEST(test_edge_sizes) {
  mt_device cpu = TU_CPU;
  /* S = 0: an empty sum gives zeros */
  mt_tensor *q = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_FLOAT32, cpu));
  mt_tensor *k = TU_OK(mt_zeros(3, TU_SHAPE(2, 0, 4), MT_FLOAT32, cpu));
  mt_tensor *v = TU_OK(mt_zeros(3, TU_SHAPE(2, 0, 5), MT_FLOAT32, cpu));
  mt_tensor *o = TU_OK(mt_scaled_dot_product_attention(q, k, v, NULL, 0, NAN));
  TU_CHECK_META(o, MT_FLOAT32, 3, TU_SHAPE(2, 3, 5));
  double zeros[30] = {0};
  TU_CHECK_VALUES(o, zeros, 30);
  mt_tensor_free(o), mt_tensor_free(q), mt_tensor_free(k), mt_tensor_free(v);
  /* L = 0 */
  q = TU_OK(mt_zeros(3, TU_SHAPE(2, 0, 4), MT_FLOAT64, cpu));
  k = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_FLOAT64, cpu));
  v = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 6), MT_FLOAT64, cpu));
  o = TU_OK(mt_scaled_dot_product_attention(q, k, v, NULL, 1, NAN));
  TU_CHECK_META(o, MT_FLOAT64, 3, TU_SHAPE(2, 0, 6));
  mt_tensor_free(o), mt_tensor_free(q), mt_tensor_free(k), mt_tensor_free(v);
  /* 2-d operands, a literal: one query, two keys with scores 0 and ln 3 */
  q = TU_TENSOR(TU_VALS(1), 2, TU_SHAPE(1, 1), MT_FLOAT64);
  k = TU_TENSOR(TU_VALS(0, log(3)), 2, TU_SHAPE(2, 1), MT_FLOAT64);
  v = TU_TENSOR(TU_VALS(4, 8), 2, TU_SHAPE(2, 1), MT_FLOAT64);
  o = TU_OK(mt_scaled_dot_product_attention(q, k, v, NULL, 0, 1.0));
  TU_CHECK_VALUES(o, TU_VALS(0.25 * 4 + 0.75 * 8), 1);
  mt_tensor_free(o), mt_tensor_free(q), mt_tensor_free(k), mt_tensor_free(v);
}
END_TEST

START_TEST(test_masked_rows_and_nan) {
  /* row 0 keeps no key: NaN (as torch); row 1 keeps key 1 only */
  mt_tensor *q = TU_TENSOR(TU_VALS(1, 2), 2, TU_SHAPE(2, 1), MT_FLOAT32);
  mt_tensor *k = TU_TENSOR(TU_VALS(1, 1), 2, TU_SHAPE(2, 1), MT_FLOAT32);
  mt_tensor *v = TU_TENSOR(TU_VALS(3, 5), 2, TU_SHAPE(2, 1), MT_FLOAT32);
  mt_tensor *mb = TU_TENSOR(TU_VALS(0, 0, 0, 1), 2, TU_SHAPE(2, 2), MT_BOOL);
  mt_tensor *o = TU_OK(mt_scaled_dot_product_attention(q, k, v, mb, 0, NAN));
  TU_CHECK_VALUES(o, TU_VALS(NAN, 5), 2);
  mt_tensor_free(o);
  /* an additive -inf row is the same; a NaN in the mask makes its row NaN */
  mt_tensor *mf = TU_TENSOR(TU_VALS(-INFINITY, -INFINITY, NAN, 0), 2, TU_SHAPE(2, 2), MT_FLOAT32);
  o = TU_OK(mt_scaled_dot_product_attention(q, k, v, mf, 0, NAN));
  TU_CHECK_VALUES(o, TU_VALS(NAN, NAN), 2);
  mt_tensor_free(o);
  /* +inf in q gives NaN rows as torch's softmax (inf - inf) */
  mt_tensor *qi = TU_TENSOR(TU_VALS(INFINITY, 1), 2, TU_SHAPE(2, 1), MT_FLOAT32);
  o = TU_OK(mt_scaled_dot_product_attention(qi, k, v, NULL, 0, NAN));
  double *got = TU_READ(o);
  ck_assert(isnan(got[0]));
  ck_assert(fabs(got[1] - 4) < 1e-6);
  free(got);
  mt_tensor_free(o), mt_tensor_free(qi), mt_tensor_free(mf), mt_tensor_free(mb);
  mt_tensor_free(q), mt_tensor_free(k), mt_tensor_free(v);
}
END_TEST

/* [B, L, H, E] tensors transposed to [B, H, L, E] views, as models make
 * them, give what their contiguous copies give. */
START_TEST(test_strided_inputs) {
  int64_t b = 2, l = 37, h = 3, e = 16;
  double *x = values(b * l * h * e, 77, 2), *y = values(b * l * h * e, 777, 2);
  for (int d = 0; d < TU_COUNT(float_dtypes); d++) {
    mt_dtype dt = float_dtypes[d];
    mt_tensor *base_q = TU_TENSOR(x, 4, TU_SHAPE(b, l, h, e), dt);
    mt_tensor *base_k = TU_TENSOR(y, 4, TU_SHAPE(b, l, h, e), dt);
    mt_tensor *q = TU_OK(mt_transpose(base_q, 1, 2)), *k = TU_OK(mt_transpose(base_k, 1, 2));
    mt_tensor *qc = TU_OK(mt_contiguous(q)), *kc = TU_OK(mt_contiguous(k));
    mt_tensor *kt = TU_OK(mt_transpose(k, 2, 3));
    mt_tensor *vt = TU_OK(mt_contiguous(kt)); /* [b, h, e, l] */
    mt_tensor *v = TU_OK(mt_transpose(vt, 2, 3)); /* k's values, features strided: staged */
    mt_tensor *o1 = TU_OK(mt_scaled_dot_product_attention(q, k, v, NULL, 1, NAN));
    mt_tensor *o2 = TU_OK(mt_scaled_dot_product_attention(qc, kc, kc, NULL, 1, NAN));
    double *want = TU_READ(o2);
    TU_CHECK_CLOSE(o1, want, b * h * l * e, 0, 0);
    free(want);
    mt_tensor_free(o1), mt_tensor_free(o2), mt_tensor_free(v), mt_tensor_free(vt);
    mt_tensor_free(kt);
    mt_tensor_free(q), mt_tensor_free(k), mt_tensor_free(qc), mt_tensor_free(kc);
    mt_tensor_free(base_q), mt_tensor_free(base_k);
  }
  free(x), free(y);
}
END_TEST

/* Rows of stride 0 (one key expanded to S keys, one query to L): the SIMD
 * loops take these (BLAS refuses a leading dimension below the row). */
START_TEST(test_expanded_rows) {
  double *x = values(16, 5, 2), *y = values(2 * 3 * 40 * 8, 55, 2);
  for (int d = 0; d < TU_COUNT(float_dtypes); d++) {
    mt_dtype dt = float_dtypes[d];
    mt_tensor *row = TU_TENSOR(x, 1, TU_SHAPE(16), dt);
    mt_tensor *k = TU_OK(mt_expand(row, 4, TU_SHAPE(2, 3, 40, 16)));
    mt_tensor *q = TU_OK(mt_expand(row, 4, TU_SHAPE(2, 3, 9, 16)));
    mt_tensor *v = TU_TENSOR(y, 4, TU_SHAPE(2, 3, 40, 8), dt);
    mt_tensor *qc = TU_OK(mt_contiguous(q)), *kc = TU_OK(mt_contiguous(k));
    mt_tensor *o1 = TU_OK(mt_scaled_dot_product_attention(q, k, v, NULL, 1, NAN));
    mt_tensor *o2 = TU_OK(mt_scaled_dot_product_attention(qc, kc, v, NULL, 1, NAN));
    double *want = TU_READ(o2), rtol, atol;
    tu_tol(dt, &rtol, &atol);
    TU_CHECK_CLOSE(o1, want, 2 * 3 * 9 * 8, rtol, 1e-5 + atol);
    free(want);
    mt_tensor_free(o1), mt_tensor_free(o2), mt_tensor_free(q), mt_tensor_free(k);
    mt_tensor_free(qc), mt_tensor_free(kc), mt_tensor_free(v), mt_tensor_free(row);
  }
  free(x), free(y);
}
END_TEST

START_TEST(test_bad_arguments) {
  mt_device cpu = TU_CPU;
  const char *fn = "mt_scaled_dot_product_attention";
  mt_tensor *q = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_FLOAT32, cpu));
  mt_tensor *k = TU_OK(mt_ones(3, TU_SHAPE(2, 5, 4), MT_FLOAT32, cpu));
  mt_tensor *v = TU_OK(mt_ones(3, TU_SHAPE(2, 5, 6), MT_FLOAT32, cpu));
  mt_tensor *k3 = TU_OK(mt_ones(3, TU_SHAPE(2, 5, 3), MT_FLOAT32, cpu));
  mt_tensor *v4 = TU_OK(mt_ones(3, TU_SHAPE(2, 4, 6), MT_FLOAT32, cpu));
  mt_tensor *k64 = TU_OK(mt_ones(3, TU_SHAPE(2, 5, 4), MT_FLOAT64, cpu));
  mt_tensor *qi = TU_OK(mt_ones(3, TU_SHAPE(2, 3, 4), MT_INT32, cpu));
  mt_tensor *kb = TU_OK(mt_ones(3, TU_SHAPE(3, 5, 4), MT_FLOAT32, cpu));
  mt_tensor *q1 = TU_OK(mt_ones(1, TU_SHAPE(4), MT_FLOAT32, cpu));
  mt_tensor *mask = TU_OK(mt_ones(2, TU_SHAPE(3, 5), MT_BOOL, cpu));
  mt_tensor *mask_int = TU_OK(mt_ones(2, TU_SHAPE(3, 5), MT_INT64, cpu));
  mt_tensor *mask_f16 = TU_OK(mt_ones(2, TU_SHAPE(3, 5), MT_FLOAT16, cpu));
  mt_tensor *mask_big = TU_OK(mt_ones(3, TU_SHAPE(4, 3, 5), MT_BOOL, cpu));
  mt_tensor *mask_bad = TU_OK(mt_ones(2, TU_SHAPE(3, 4), MT_BOOL, cpu));
  TU_FAILS(mt_scaled_dot_product_attention(NULL, k, v, NULL, 0, NAN), MT_ERR_INVALID_ARGUMENT, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, mask, 1, NAN), MT_ERR_INVALID_ARGUMENT, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, NULL, 0, INFINITY), MT_ERR_INVALID_ARGUMENT,
           fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k3, v, NULL, 0, NAN), MT_ERR_SHAPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v4, NULL, 0, NAN), MT_ERR_SHAPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, kb, v, NULL, 0, NAN), MT_ERR_SHAPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q1, k, v, NULL, 0, NAN), MT_ERR_SHAPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k64, v, NULL, 0, NAN), MT_ERR_DTYPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(qi, k, v, NULL, 0, NAN), MT_ERR_DTYPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, mask_int, 0, NAN), MT_ERR_DTYPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, mask_f16, 0, NAN), MT_ERR_DTYPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, mask_big, 0, NAN), MT_ERR_SHAPE, fn);
  TU_FAILS(mt_scaled_dot_product_attention(q, k, v, mask_bad, 0, NAN), MT_ERR_SHAPE, fn);
  mt_tensor *ts[] = {q, k, v, k3, v4, k64, qi, kb, q1, mask, mask_int, mask_f16, mask_big, mask_bad};
  for (int i = 0; i < TU_COUNT(ts); i++) mt_tensor_free(ts[i]);
}
END_TEST

static Suite *attention_suite(void) {
  Suite *s = suite_create("attention");
  TCase *tc = tcase_create("attention");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_against_reference);
  tcase_add_test(tc, test_edge_sizes);
  tcase_add_test(tc, test_masked_rows_and_nan);
  tcase_add_test(tc, test_strided_inputs);
  tcase_add_test(tc, test_expanded_rows);
  tcase_add_test(tc, test_bad_arguments);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(attention_suite()); }
