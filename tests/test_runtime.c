/*
 * test_runtime.c - the cpu runtime: the thread count (mt_set_num_threads)
 * and the free lists that recycle tensor handles and small storages
 * (src/api/pool.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <check.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

START_TEST(test_num_threads_set_and_reset) {
  int def = mt_get_num_threads();
  ck_assert_int_ge(def, 1);
  mt_set_num_threads(3);
  ck_assert_int_eq(mt_get_num_threads(), 3);
  mt_set_num_threads(0);
  ck_assert_int_eq(mt_get_num_threads(), def);
}
END_TEST

START_TEST(test_num_threads_negative_refused) {
  int before = mt_get_num_threads();
  mt_clear_error();
  mt_set_num_threads(-1);
  ck_assert_int_eq(mt_last_status(), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(mt_last_error(), "mt_set_num_threads"));
  ck_assert_int_eq(mt_get_num_threads(), before);
}
END_TEST

/* Another libgomp user (PyTorch does this on import) does not change ours. */
START_TEST(test_num_threads_ignores_omp_setting) {
  int before = mt_get_num_threads();
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  ck_assert_int_eq(mt_get_num_threads(), before);
  omp_set_num_threads(saved);
}
END_TEST

/* Results do not depend on the thread count: exp over enough elements to
 * be split, an exact integer sum and a matmul (BLAS). */
START_TEST(test_results_same_for_any_thread_count) {
  enum { N = 300000, M = 96 };
  double *v = malloc(sizeof(double) * N);
  for (int i = 0; i < N; i++) v[i] = (i % 1000) * 0.01 - 5.0;
  mt_tensor *a = TU_TENSOR(v, 1, TU_SHAPE(N), MT_FLOAT32);
  mt_tensor *ai = TU_TENSOR(v, 1, TU_SHAPE(N), MT_INT64);
  mt_tensor *m = TU_TENSOR(v, 2, TU_SHAPE(M, M), MT_FLOAT32);
  double *res[2], *prod[2], sums[2];
  for (int k = 0; k < 2; k++) {
    mt_set_num_threads(k + 1);
    mt_tensor *e = TU_OK(mt_exp(a));
    mt_tensor *s = TU_OK(mt_sum(ai, 0, NULL, 0));
    mt_tensor *p = TU_OK(mt_matmul(m, m));
    res[k] = TU_READ(e);
    prod[k] = TU_READ(p);
    ck_assert_int_eq(mt_item(s, &sums[k]), MT_OK);
    mt_tensor_free(e);
    mt_tensor_free(s);
    mt_tensor_free(p);
  }
  mt_set_num_threads(0);
  for (int i = 0; i < N; i++) ck_assert_double_eq(res[0][i], res[1][i]);
  for (int i = 0; i < M * M; i++) ck_assert_double_eq_tol(prod[0][i], prod[1][i], 1e-3);
  ck_assert_double_eq(sums[0], sums[1]);
  for (int k = 0; k < 2; k++) {
    free(res[k]);
    free(prod[k]);
  }
  free(v);
  mt_tensor_free(a);
  mt_tensor_free(ai);
  mt_tensor_free(m);
}
END_TEST

/* Recycled storages of every small class hold exactly what the next op
 * writes: zeros after ones, in sizes across the class bounds. */
START_TEST(test_recycled_storage_is_overwritten) {
  static const int64_t sizes[] = {1, 16, 63, 64, 65, 255, 256, 257, 1023, 1024, 1025, 2000};
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < TU_COUNT(sizes); i++) {
      int64_t n = sizes[i];
      mt_tensor *ones = TU_OK(mt_ones(1, &n, MT_FLOAT32, TU_CPU));
      mt_tensor_free(ones);
      mt_tensor *z = TU_OK(mt_zeros(1, &n, MT_FLOAT32, TU_CPU));
      double *got = TU_READ(z);
      for (int64_t j = 0; j < n; j++) ck_assert_double_eq(got[j], 0.0);
      free(got);
      mt_tensor_free(z);
    }
  }
}
END_TEST

/* Small storages stay 64-byte aligned, as the vector loops expect. */
START_TEST(test_small_storage_aligned) {
  for (int64_t n = 1; n <= 1100; n += 37) {
    mt_tensor *t = TU_OK(mt_empty(1, &n, MT_FLOAT32, TU_CPU));
    ck_assert_uint_eq((uintptr_t)mt_data_ptr(t) % 64, 0);
    mt_tensor_free(t);
  }
}
END_TEST

/* Many live tensors at once (more than a free list keeps), freed out of
 * order, keep their own values. */
START_TEST(test_many_live_tensors_keep_values) {
  enum { COUNT = 300 };
  mt_tensor *ts[COUNT];
  int64_t n = 16;
  for (int i = 0; i < COUNT; i++) ts[i] = TU_OK(mt_full(1, &n, i, MT_FLOAT32, TU_CPU));
  for (int i = 0; i < COUNT; i += 2) mt_tensor_free(ts[i]);
  for (int i = 0; i < COUNT; i += 2) ts[i] = TU_OK(mt_full(1, &n, -i, MT_FLOAT32, TU_CPU));
  for (int i = 0; i < COUNT; i++) {
    double v;
    mt_tensor *first = TU_OK(mt_slice(ts[i], 0, 0, 1, 1));
    ck_assert_int_eq(mt_item(first, &v), MT_OK);
    ck_assert_double_eq(v, i % 2 ? i : -i);
    mt_tensor_free(first);
  }
  for (int i = 0; i < COUNT; i++) mt_tensor_free(ts[i]);
}
END_TEST

/* A view outlives its base: the pooled storage goes back with the last
 * handle, not the first. */
START_TEST(test_view_keeps_pooled_storage) {
  int64_t n = 16;
  mt_tensor *base = TU_OK(mt_full(1, &n, 7, MT_FLOAT32, TU_CPU));
  mt_tensor *view = TU_OK(mt_slice(base, 0, 4, 8, 1));
  mt_tensor_free(base);
  mt_tensor *other = TU_OK(mt_full(1, &n, -1, MT_FLOAT32, TU_CPU)); /* may reuse the handle */
  double *got = TU_READ(view);
  for (int i = 0; i < 4; i++) ck_assert_double_eq(got[i], 7);
  free(got);
  mt_tensor_free(view);
  mt_tensor_free(other);
}
END_TEST

/* A freed large buffer serves the next tensor of its size class (the
 * training-step case: same shapes every step) and stays 64-byte aligned. */
START_TEST(test_large_storage_reused) {
  int64_t n = 100000; /* 400 KB: past the small pool, inside the cache */
  mt_tensor *a = TU_OK(mt_empty(1, &n, MT_FLOAT32, TU_CPU));
  const void *first = mt_data_ptr(a);
  mt_tensor_free(a);
  int64_t close = n - 100; /* same class: at most 1/8 apart */
  mt_tensor *b = TU_OK(mt_empty(1, &close, MT_FLOAT32, TU_CPU));
  ck_assert_ptr_eq(mt_data_ptr(b), first);
  ck_assert_uint_eq((uintptr_t)mt_data_ptr(b) % 64, 0);
  mt_tensor_free(b);
}
END_TEST

/* Recycled large buffers hold what the next op writes, in sizes across the
 * class bounds (powers of two and their eighths, and the largest class). */
START_TEST(test_recycled_large_storage_is_overwritten) {
  static const int64_t sizes[] = {1025, 1100, 2048, 2049, 4608, 4609, 65536, 70000, 1 << 24};
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < TU_COUNT(sizes); i++) {
      int64_t n = sizes[i];
      mt_tensor *ones = TU_OK(mt_ones(1, &n, MT_FLOAT32, TU_CPU));
      mt_tensor_free(ones);
      mt_tensor *z = TU_OK(mt_zeros(1, &n, MT_FLOAT32, TU_CPU));
      mt_tensor *total = TU_OK(mt_sum(z, 0, NULL, 0));
      double v = -1;
      ck_assert_int_eq(mt_item(total, &v), MT_OK);
      ck_assert_double_eq(v, 0.0);
      ck_assert_uint_eq((uintptr_t)mt_data_ptr(z) % 64, 0);
      mt_tensor_free(total);
      mt_tensor_free(z);
    }
  }
}
END_TEST

enum { HANDOFF_COUNT = 200, WORKERS = 4 };

static void *make_small(void *arg) {
  mt_tensor **out = arg;
  int64_t n = 8;
  for (int i = 0; i < HANDOFF_COUNT; i++) out[i] = mt_full(1, &n, i, MT_FLOAT32, TU_CPU);
  mt_tensor *tmp = mt_zeros(1, &n, MT_FLOAT32, TU_CPU); /* kept on this thread's list */
  mt_tensor_free(tmp);
  return NULL;
}

/* Tensors made on a thread that then exits are freed on another one. */
START_TEST(test_cross_thread_free) {
  mt_tensor *ts[HANDOFF_COUNT];
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, make_small, ts), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  for (int i = 0; i < HANDOFF_COUNT; i++) {
    ck_assert_ptr_nonnull(ts[i]);
    double *v = TU_READ(ts[i]);
    ck_assert_double_eq(v[7], i);
    free(v);
    mt_tensor_free(ts[i]);
  }
}
END_TEST

/* Each worker makes small tensors, computes on them and frees its
 * neighbour's (made on another thread) while that one keeps working. */
typedef struct churn_arg {
  int id;
  mt_tensor *made[HANDOFF_COUNT];
  struct churn_arg *neighbour;
  pthread_barrier_t *made_all;
  int bad;
} churn_arg;

static void *churn(void *p) {
  churn_arg *a = p;
  int64_t n = 16;
  for (int i = 0; i < HANDOFF_COUNT; i++)
    a->made[i] = mt_full(1, &n, a->id * 1000 + i, MT_FLOAT32, TU_CPU);
  pthread_barrier_wait(a->made_all);
  for (int i = 0; i < HANDOFF_COUNT; i++) {
    mt_tensor *sum = mt_add(a->neighbour->made[i], a->neighbour->made[i]);
    double v = 0;
    mt_tensor *one = sum ? mt_slice(sum, 0, 15, 16, 1) : NULL;
    if (!one || mt_item(one, &v) != MT_OK || v != 2.0 * (a->neighbour->id * 1000 + i)) a->bad++;
    mt_tensor_free(one);
    mt_tensor_free(sum);
  }
  pthread_barrier_wait(a->made_all);
  for (int i = 0; i < HANDOFF_COUNT; i++) mt_tensor_free(a->neighbour->made[i]);
  return NULL;
}

START_TEST(test_concurrent_churn_across_threads) {
  churn_arg args[WORKERS];
  pthread_t threads[WORKERS];
  pthread_barrier_t made_all;
  ck_assert_int_eq(pthread_barrier_init(&made_all, NULL, WORKERS), 0);
  for (int w = 0; w < WORKERS; w++) {
    args[w] = (churn_arg){.id = w, .neighbour = &args[(w + 1) % WORKERS], .made_all = &made_all};
  }
  for (int w = 0; w < WORKERS; w++)
    ck_assert_int_eq(pthread_create(&threads[w], NULL, churn, &args[w]), 0);
  for (int w = 0; w < WORKERS; w++) ck_assert_int_eq(pthread_join(threads[w], NULL), 0);
  pthread_barrier_destroy(&made_all);
  for (int w = 0; w < WORKERS; w++) ck_assert_int_eq(args[w].bad, 0);
}
END_TEST

static Suite *runtime_suite(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("threads");
  tcase_add_test(tc, test_num_threads_set_and_reset);
  tcase_add_test(tc, test_num_threads_negative_refused);
  tcase_add_test(tc, test_num_threads_ignores_omp_setting);
  tcase_add_test(tc, test_results_same_for_any_thread_count);
  suite_add_tcase(s, tc);
  tc = tcase_create("free_lists");
  tcase_add_test(tc, test_recycled_storage_is_overwritten);
  tcase_add_test(tc, test_small_storage_aligned);
  tcase_add_test(tc, test_many_live_tensors_keep_values);
  tcase_add_test(tc, test_view_keeps_pooled_storage);
  tcase_add_test(tc, test_large_storage_reused);
  tcase_add_test(tc, test_recycled_large_storage_is_overwritten);
  tcase_add_test(tc, test_cross_thread_free);
  tcase_add_test(tc, test_concurrent_churn_across_threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(runtime_suite()); }
