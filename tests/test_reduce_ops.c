/*
 * test_reduce_ops.c - the reductions, scans and sorting ops of 0.2 on the
 * cpu against literals (worked out by hand from PyTorch's documented
 * semantics) and plain reference loops.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define F32 MT_FLOAT32
#define F64 MT_FLOAT64
#define I64 MT_INT64

/* ------------------------------------------------------------ reductions */

START_TEST(test_var_std) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2, 3, 4, 2, 4, 6, 8), 2, TU_SHAPE(2, 4), F32);
  mt_tensor *t = TU_OK(mt_var(a, 1, (const int[]){1}, 1, 0));
  TU_CHECK_META(t, F32, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(t, TU_VALS(5.0 / 3, 20.0 / 3), 2);
  mt_tensor_free(t);
  t = TU_OK(mt_var(a, 1, (const int[]){-1}, 0, 1)); /* population variance, keepdim */
  TU_CHECK_META(t, F32, 2, TU_SHAPE(2, 1));
  TU_CHECK_VALUES(t, TU_VALS(1.25, 5), 2);
  mt_tensor_free(t);
  t = TU_OK(mt_std(a, 1, (const int[]){0}, 1, 0)); /* columns: (1,2) (2,4) (3,6) (4,8) */
  TU_CHECK_VALUES(t, TU_VALS(sqrt(0.5), sqrt(2), sqrt(4.5), sqrt(8)), 4);
  mt_tensor_free(t);
  t = TU_OK(mt_var(a, 0, NULL, 1, 0)); /* all: mean 3.75 */
  TU_CHECK_META(t, F32, 0, NULL);
  TU_CHECK_VALUES(t, TU_VALS(37.5 / 7), 1);
  mt_tensor_free(t);
  t = TU_OK(mt_var(a, 1, (const int[]){1}, 4, 0)); /* N - correction = 0: x / 0 */
  TU_CHECK_VALUES(t, TU_VALS(INFINITY, INFINITY), 2);
  mt_tensor_free(t);
  mt_tensor *one = TU_TENSOR(TU_VALS(3), 0, NULL, F64);
  t = TU_OK(mt_var(one, 0, NULL, 1, 0)); /* 0 / 0 */
  TU_CHECK_VALUES(t, TU_VALS(NAN), 1);
  mt_tensor_free(t);
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), MT_INT32);
  TU_FAILS(mt_var(ints, 0, NULL, 1, 0), MT_ERR_DTYPE, "mt_var");
  TU_FAILS(mt_std(a, 1, (const int[]){2}, 1, 0), MT_ERR_SHAPE, "mt_std");
  TU_FAILS(mt_var(a, 0, NULL, NAN, 0), MT_ERR_INVALID_ARGUMENT, "mt_var");
  mt_tensor_free(a), mt_tensor_free(one), mt_tensor_free(ints);
}
END_TEST

START_TEST(test_logsumexp) {
  mt_tensor *a = TU_TENSOR(TU_VALS(0, 0, -INFINITY, -INFINITY, 1000, 1000, INFINITY, 1, NAN, 1),
                           2, TU_SHAPE(5, 2), F32);
  mt_tensor *t = TU_OK(mt_logsumexp(a, 1, (const int[]){1}, 0));
  TU_CHECK_VALUES(t, TU_VALS(log(2), -INFINITY, 1000 + log(2), INFINITY, NAN), 5);
  mt_tensor_free(t);
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 2, 3), 1, TU_SHAPE(3), MT_INT32);
  t = TU_OK(mt_logsumexp(ints, 0, NULL, 1));
  TU_CHECK_META(t, F32, 1, TU_SHAPE(1));
  TU_CHECK_VALUES(t, TU_VALS(3 + log(1 + exp(-1) + exp(-2))), 1);
  mt_tensor_free(t);
  mt_tensor *empty = TU_OK(mt_zeros(2, TU_SHAPE(2, 0), F64, TU_CPU));
  t = TU_OK(mt_logsumexp(empty, 1, (const int[]){1}, 0));
  TU_CHECK_VALUES(t, TU_VALS(-INFINITY, -INFINITY), 2);
  mt_tensor_free(t);
  mt_tensor_free(a), mt_tensor_free(ints), mt_tensor_free(empty);
}
END_TEST

START_TEST(test_norm) {
  mt_tensor *a = TU_TENSOR(TU_VALS(3, -4, 0, 1, 0, 0), 2, TU_SHAPE(2, 3), F64);
  const int last[] = {1};
  struct { double p, r0, r1; } cases[] = {
      {2, 5, 1}, {1, 7, 1}, {INFINITY, 4, 1}, {-INFINITY, 0, 0}, {0, 2, 1},
      {3, cbrt(91), 1}, {0.5, pow(sqrt(3) + 2, 2), 1}};
  for (int c = 0; c < TU_COUNT(cases); c++) {
    mt_tensor *t = TU_OK(mt_norm(a, cases[c].p, 1, last, 0));
    TU_CHECK_VALUES(t, ((const double[]){cases[c].r0, cases[c].r1}), 2);
    mt_tensor_free(t);
  }
  mt_tensor *t = TU_OK(mt_norm(a, 2, 0, NULL, 1));
  TU_CHECK_META(t, F64, 2, TU_SHAPE(1, 1));
  TU_CHECK_VALUES(t, TU_VALS(sqrt(26)), 1);
  mt_tensor_free(t);
  mt_tensor *empty = TU_OK(mt_zeros(1, TU_SHAPE(0), F32, TU_CPU));
  t = TU_OK(mt_norm(empty, INFINITY, 0, NULL, 0));
  TU_CHECK_VALUES(t, TU_VALS(0), 1);
  mt_tensor_free(t);
  TU_FAILS(mt_norm(empty, -INFINITY, 0, NULL, 0), MT_ERR_SHAPE, "mt_norm");
  TU_FAILS(mt_norm(a, NAN, 0, NULL, 0), MT_ERR_INVALID_ARGUMENT, "mt_norm");
  mt_tensor *ints = TU_TENSOR(TU_VALS(1, 2), 1, TU_SHAPE(2), I64);
  TU_FAILS(mt_norm(ints, 2, 0, NULL, 0), MT_ERR_DTYPE, "mt_norm");
  mt_tensor_free(a), mt_tensor_free(empty), mt_tensor_free(ints);
}
END_TEST

START_TEST(test_all_any) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, NAN, 0, 0, 2, 3), 2, TU_SHAPE(2, 3), F32);
  mt_tensor *t = TU_OK(mt_all(a, 1, (const int[]){1}, 0));
  TU_CHECK_META(t, MT_BOOL, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(t, TU_VALS(0, 0), 2);
  mt_tensor_free(t);
  t = TU_OK(mt_any(a, 1, (const int[]){0}, 1));
  TU_CHECK_META(t, MT_BOOL, 2, TU_SHAPE(1, 3));
  TU_CHECK_VALUES(t, TU_VALS(1, 1, 1), 3);
  mt_tensor_free(t);
  t = TU_OK(mt_all(a, 1, (const int[]){0}, 0)); /* NaN is non-zero */
  TU_CHECK_VALUES(t, TU_VALS(0, 1, 0), 3);
  mt_tensor_free(t);
  mt_tensor *u8 = TU_TENSOR(TU_VALS(1, 255, 3), 1, TU_SHAPE(3), MT_UINT8);
  t = TU_OK(mt_all(u8, 0, NULL, 0));
  TU_CHECK_META(t, MT_BOOL, 0, NULL);
  TU_CHECK_VALUES(t, TU_VALS(1), 1);
  mt_tensor_free(t);
  mt_tensor *empty = TU_OK(mt_zeros(2, TU_SHAPE(2, 0), I64, TU_CPU));
  t = TU_OK(mt_all(empty, 1, (const int[]){1}, 0));
  TU_CHECK_VALUES(t, TU_VALS(1, 1), 2);
  mt_tensor_free(t);
  t = TU_OK(mt_any(empty, 0, NULL, 0));
  TU_CHECK_VALUES(t, TU_VALS(0), 1);
  mt_tensor_free(t);
  mt_tensor_free(a), mt_tensor_free(u8), mt_tensor_free(empty);
}
END_TEST

START_TEST(test_max_min_dim) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 3, 3, 0, NAN, 2, NAN, -1), 2, TU_SHAPE(2, 4), F32);
  mt_tensor *v, *i;
  TU_CHECK_OK(mt_max_dim(a, 1, 0, &v, &i));
  TU_CHECK_META(v, F32, 1, TU_SHAPE(2));
  TU_CHECK_META(i, I64, 1, TU_SHAPE(2));
  TU_CHECK_VALUES(v, TU_VALS(3, NAN), 2);
  TU_CHECK_VALUES(i, TU_VALS(1, 0), 2); /* the first of a tie; the first NaN */
  mt_tensor_free(v), mt_tensor_free(i);
  TU_CHECK_OK(mt_min_dim(a, -1, 1, &v, &i));
  TU_CHECK_META(v, F32, 2, TU_SHAPE(2, 1));
  TU_CHECK_VALUES(v, TU_VALS(0, NAN), 2);
  TU_CHECK_VALUES(i, TU_VALS(3, 0), 2);
  mt_tensor_free(v), mt_tensor_free(i);
  mt_tensor *b = TU_TENSOR(TU_VALS(0, 1, 1, 0), 2, TU_SHAPE(2, 2), MT_BOOL);
  TU_CHECK_OK(mt_max_dim(b, 0, 0, &v, &i));
  TU_CHECK_VALUES(v, TU_VALS(1, 1), 2);
  TU_CHECK_VALUES(i, TU_VALS(1, 0), 2);
  mt_tensor_free(v), mt_tensor_free(i);
  mt_tensor *s = TU_TENSOR(TU_VALS(7), 0, NULL, MT_INT16);
  TU_CHECK_OK(mt_max_dim(s, 0, 0, &v, &i));
  TU_CHECK_META(v, MT_INT16, 0, NULL);
  TU_CHECK_VALUES(i, TU_VALS(0), 1);
  mt_tensor_free(v), mt_tensor_free(i);
  mt_tensor *empty = TU_OK(mt_zeros(2, TU_SHAPE(2, 0), F32, TU_CPU));
  v = i = (mt_tensor *)1;
  TU_STATUS(mt_max_dim(empty, 1, 0, &v, &i), MT_ERR_SHAPE, "mt_max_dim");
  ck_assert(v == NULL && i == NULL);
  TU_STATUS(mt_min_dim(a, 2, 0, &v, &i), MT_ERR_SHAPE, "mt_min_dim");
  TU_STATUS(mt_max_dim(a, 0, 0, NULL, &i), MT_ERR_INVALID_ARGUMENT, "mt_max_dim");
  mt_tensor_free(a), mt_tensor_free(b), mt_tensor_free(s), mt_tensor_free(empty);
}
END_TEST

/* ------------------------------------------------------------ scans */

START_TEST(test_cumsum_cumprod) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 2, 3, 4, 5, 6), 2, TU_SHAPE(2, 3), F32);
  mt_tensor *t = TU_OK(mt_cumsum(a, 1));
  TU_CHECK_VALUES(t, TU_VALS(1, 3, 6, 4, 9, 15), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_cumsum(a, 0));
  TU_CHECK_VALUES(t, TU_VALS(1, 2, 3, 5, 7, 9), 6);
  mt_tensor_free(t);
  t = TU_OK(mt_cumprod(a, -1));
  TU_CHECK_VALUES(t, TU_VALS(1, 2, 6, 4, 20, 120), 6);
  mt_tensor_free(t);
  mt_tensor *tr = TU_OK(mt_transpose(a, 0, 1)); /* [[1, 4], [2, 5], [3, 6]] */
  t = TU_OK(mt_cumsum(tr, 1));
  TU_CHECK_VALUES(t, TU_VALS(1, 5, 2, 7, 3, 9), 6);
  mt_tensor_free(t);
  mt_tensor *i8 = TU_TENSOR(TU_VALS(100, 100, 100), 1, TU_SHAPE(3), MT_INT8);
  t = TU_OK(mt_cumsum(i8, 0)); /* int64: no wrap at 127 */
  TU_CHECK_META(t, I64, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(t, TU_VALS(100, 200, 300), 3);
  mt_tensor_free(t);
  mt_tensor *b = TU_TENSOR(TU_VALS(1, 0, 1), 1, TU_SHAPE(3), MT_BOOL);
  t = TU_OK(mt_cumprod(b, 0));
  TU_CHECK_META(t, I64, 1, TU_SHAPE(3));
  TU_CHECK_VALUES(t, TU_VALS(1, 0, 0), 3);
  mt_tensor_free(t);
  mt_tensor *h = TU_TENSOR(TU_VALS(0.5, 0.25, NAN, 1), 1, TU_SHAPE(4), MT_FLOAT16);
  t = TU_OK(mt_cumsum(h, 0));
  TU_CHECK_META(t, MT_FLOAT16, 1, TU_SHAPE(4));
  TU_CHECK_VALUES(t, TU_VALS(0.5, 0.75, NAN, NAN), 4);
  mt_tensor_free(t);
  mt_tensor *s = TU_TENSOR(TU_VALS(3), 0, NULL, MT_INT32);
  t = TU_OK(mt_cumsum(s, -1));
  TU_CHECK_META(t, I64, 0, NULL);
  TU_CHECK_VALUES(t, TU_VALS(3), 1);
  mt_tensor_free(t);
  TU_FAILS(mt_cumsum(a, 2), MT_ERR_SHAPE, "mt_cumsum");
  mt_tensor_free(a), mt_tensor_free(tr), mt_tensor_free(i8), mt_tensor_free(b),
      mt_tensor_free(h), mt_tensor_free(s);
}
END_TEST

/* ------------------------------------------------------------ sorting */

START_TEST(test_sort_literals) {
  mt_tensor *a = TU_TENSOR(TU_VALS(3, NAN, -0.0, 1, 0, 3, -INFINITY), 1, TU_SHAPE(7), F32);
  mt_tensor *v, *i;
  TU_CHECK_OK(mt_sort(a, 0, 0, &v, &i));
  TU_CHECK_VALUES(v, TU_VALS(-INFINITY, -0.0, 0, 1, 3, 3, NAN), 7);
  TU_CHECK_VALUES(i, TU_VALS(6, 2, 4, 3, 0, 5, 1), 7); /* stable: -0 and 0 keep their order */
  mt_tensor_free(v), mt_tensor_free(i);
  TU_CHECK_OK(mt_sort(a, -1, 1, &v, &i));
  TU_CHECK_VALUES(v, TU_VALS(NAN, 3, 3, 1, -0.0, 0, -INFINITY), 7);
  TU_CHECK_VALUES(i, TU_VALS(1, 0, 5, 3, 2, 4, 6), 7);
  mt_tensor_free(v), mt_tensor_free(i);
  mt_tensor *m = TU_TENSOR(TU_VALS(5, -1, 2, 0, 7, -3), 2, TU_SHAPE(2, 3), MT_INT16);
  mt_tensor *t = TU_OK(mt_argsort(m, 0, 0)); /* columns */
  TU_CHECK_META(t, I64, 2, TU_SHAPE(2, 3));
  TU_CHECK_VALUES(t, TU_VALS(1, 0, 1, 0, 1, 0), 6);
  mt_tensor_free(t);
  mt_tensor *s = TU_TENSOR(TU_VALS(4), 0, NULL, F64);
  TU_CHECK_OK(mt_sort(s, 0, 1, &v, &i));
  TU_CHECK_META(v, F64, 0, NULL);
  TU_CHECK_VALUES(i, TU_VALS(0), 1);
  mt_tensor_free(v), mt_tensor_free(i);
  TU_STATUS(mt_sort(m, 2, 0, &v, &i), MT_ERR_SHAPE, "mt_sort");
  TU_FAILS(mt_argsort(m, -3, 0), MT_ERR_SHAPE, "mt_argsort");
  mt_tensor_free(a), mt_tensor_free(m), mt_tensor_free(s);
}
END_TEST

START_TEST(test_topk_literals) {
  mt_tensor *a = TU_TENSOR(TU_VALS(1, 5, NAN, 5, 2, 0), 1, TU_SHAPE(6), F32);
  mt_tensor *v, *i;
  TU_CHECK_OK(mt_topk(a, 3, 0, 1, &v, &i));
  TU_CHECK_VALUES(v, TU_VALS(NAN, 5, 5), 3);
  TU_CHECK_VALUES(i, TU_VALS(2, 1, 3), 3); /* ties: the lower index first */
  mt_tensor_free(v), mt_tensor_free(i);
  TU_CHECK_OK(mt_topk(a, 2, -1, 0, &v, &i));
  TU_CHECK_VALUES(v, TU_VALS(0, 1), 2);
  TU_CHECK_VALUES(i, TU_VALS(5, 0), 2);
  mt_tensor_free(v), mt_tensor_free(i);
  TU_CHECK_OK(mt_topk(a, 0, 0, 1, &v, &i));
  TU_CHECK_META(v, F32, 1, TU_SHAPE(0));
  mt_tensor_free(v), mt_tensor_free(i);
  TU_CHECK_OK(mt_topk(a, 6, 0, 0, &v, &i));
  TU_CHECK_VALUES(i, TU_VALS(5, 0, 4, 1, 3, 2), 6);
  mt_tensor_free(v), mt_tensor_free(i);
  TU_STATUS(mt_topk(a, 7, 0, 1, &v, &i), MT_ERR_INVALID_ARGUMENT, "mt_topk");
  TU_STATUS(mt_topk(a, -1, 0, 1, &v, &i), MT_ERR_INVALID_ARGUMENT, "mt_topk");
  TU_STATUS(mt_topk(a, 1, 1, 1, &v, &i), MT_ERR_SHAPE, "mt_topk");
  mt_tensor *b = TU_TENSOR(TU_VALS(1, 0), 1, TU_SHAPE(2), MT_BOOL);
  TU_STATUS(mt_topk(b, 1, 0, 1, &v, &i), MT_ERR_DTYPE, "mt_topk");
  mt_tensor_free(a), mt_tensor_free(b);
}
END_TEST

/* Reference: a stable selection sort of one row by (value, index), NaN
 * largest, -0 == 0. */
static int ref_before(double x, double y, int descending) {
  if (isnan(x) || isnan(y)) return descending ? isnan(x) && !isnan(y) : !isnan(x) && isnan(y);
  return descending ? x > y : x < y;
}

static void ref_sort_row(const double *x, int64_t n, int descending, int64_t *order) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  for (int64_t i = 1; i < n; i++) /* insertion sort: stable */
    for (int64_t j = i; j > 0 && ref_before(x[order[j]], x[order[j - 1]], descending); j--) {
      int64_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
}

/* Rows long enough for the radix path (and short ones), values with many
 * ties, every dtype; topk with k small (heap) and large (sort). */
START_TEST(test_sort_topk_reference) {
  static const int64_t lengths[] = {1, 5, 33, 300, 1000};
  for (int d = 0; d < REF_NUM_DTYPES; d++)
    for (int l = 0; l < TU_COUNT(lengths); l++)
      for (int desc = 0; desc < 2; desc++) {
        mt_dtype dt = tu_all_dtypes[d];
        int64_t n = lengths[l], rows = 3;
        double *x = malloc(sizeof(double) * (size_t)(n * rows));
        int64_t *order = malloc(sizeof(int64_t) * (size_t)n);
        for (int64_t k = 0; k < n * rows; k++)
          x[k] = dt == MT_BOOL ? (double)(k * 7 % 3 == 0) : floor(tu_value((uint64_t)k, -20, 20));
        if (dt == MT_UINT8)
          for (int64_t k = 0; k < n * rows; k++) x[k] = fabs(x[k]);
        if (dt == F32 || dt == F64) x[n / 2] = NAN;
        mt_tensor *a = TU_TENSOR(x, 2, TU_SHAPE(rows, n), dt);
        mt_tensor *v, *idx, *tv, *ti;
        TU_CHECK_OK(mt_sort(a, 1, desc, &v, &idx));
        int64_t k = n / 20 + 1;
        int has_topk = dt != MT_BOOL;
        if (has_topk) TU_CHECK_OK(mt_topk(a, k, 1, desc, &tv, &ti));
        double *gv = TU_READ(v), *gi = TU_READ(idx), *kv = has_topk ? TU_READ(tv) : NULL;
        double *ki = has_topk ? TU_READ(ti) : NULL;
        double *xs = TU_READ(a); /* the values as the dtype holds them */
        for (int64_t r = 0; r < rows; r++) {
          ref_sort_row(xs + r * n, n, desc, order);
          for (int64_t j = 0; j < n; j++) {
            TU_EXPECT(gi[r * n + j] == (double)order[j], "%s n %lld desc %d row %lld [%lld]: %g vs %lld",
                      mt_dtype_name(dt), (long long)n, desc, (long long)r, (long long)j,
                      gi[r * n + j], (long long)order[j]);
            double want = xs[r * n + order[j]], got = gv[r * n + j];
            TU_EXPECT(got == want || (isnan(got) && isnan(want)), "%s values [%lld]",
                      mt_dtype_name(dt), (long long)j);
          }
          for (int64_t j = 0; has_topk && j < k; j++)
            TU_EXPECT(ki[r * k + j] == (double)order[j] && (kv[r * k + j] == xs[r * n + order[j]] ||
                                                            isnan(kv[r * k + j])),
                      "topk %s n %lld k %lld largest %d [%lld]: index %g, expected %lld",
                      mt_dtype_name(dt), (long long)n, (long long)k, desc, (long long)j,
                      ki[r * k + j], (long long)order[j]);
        }
        free(gv), free(gi), free(kv), free(ki), free(xs), free(x), free(order);
        mt_tensor_free(a), mt_tensor_free(v), mt_tensor_free(idx);
        if (has_topk) mt_tensor_free(tv), mt_tensor_free(ti);
      }
}
END_TEST

static Suite *reduce_ops_suite(void) {
  Suite *s = suite_create("reduce_ops");
  TCase *tc = tcase_create("reductions");
  tcase_add_test(tc, test_var_std);
  tcase_add_test(tc, test_logsumexp);
  tcase_add_test(tc, test_norm);
  tcase_add_test(tc, test_all_any);
  tcase_add_test(tc, test_max_min_dim);
  suite_add_tcase(s, tc);
  tc = tcase_create("scans");
  tcase_add_test(tc, test_cumsum_cumprod);
  suite_add_tcase(s, tc);
  tc = tcase_create("sorting");
  tcase_add_test(tc, test_sort_literals);
  tcase_add_test(tc, test_topk_literals);
  tcase_add_test(tc, test_sort_topk_reference);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(reduce_ops_suite()); }
