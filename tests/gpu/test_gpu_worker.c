/*
 * test_gpu_worker.c - the worker's cuda backend through the library: real
 * device properties, cuBLAS matmul in its precision modes, the caching
 * allocator when the GPU is full, and kernel faults (an index out of range,
 * an integer divisor 0). Needs a GPU: ctest
 * runs it under gpu_probe, which skips it (77) when there is none.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "modal_harness.h"

static mh_worker worker;
static const char *const cuda_args[] = {"--backend", "cuda", NULL};

static void setup(void) {
  mh_worker_start(&worker, cuda_args, NULL, NULL);
  mh_point_at(&worker);
}

static void teardown(void) { mh_worker_finish(&worker); }

static mt_device_properties props(void) {
  mt_device_properties p;
  MH_OK(mt_modal_get_device_properties(0, &p));
  return p;
}

static double item(const mt_tensor *t) {
  double v = NAN;
  MH_OK(mt_item(t, &v));
  return v;
}

/* The largest |x - y| over two float32 tensors of n elements. */
static double max_diff(const mt_tensor *x, const mt_tensor *y, int64_t n) {
  float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
  ck_assert(a && b);
  MH_OK(mt_to_host(x, a, (size_t)n * sizeof *a));
  MH_OK(mt_to_host(y, b, (size_t)n * sizeof *b));
  double worst = 0;
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
  free(a);
  free(b);
  return worst;
}

START_TEST(test_device_is_a_gpu) {
  mt_device_properties p = props();
  ck_assert_int_ge(p.major, 7);
  ck_assert_int_gt(p.multiprocessors, 0);
  ck_assert_int_gt(p.total_memory, (int64_t)1 << 30);
}
END_TEST

/* float32 on cuBLAS against the cpu: exact float32 by default (only the
 * summation order differs), within TF32's 10-bit mantissa when enabled;
 * a transposed operand and a broadcast batch go through in place. */
START_TEST(test_matmul_against_cpu) {
  const int64_t sa[3] = {3, 96, 80}, sb[2] = {72, 80};
  mt_tensor *a_cpu = MH_MADE(mt_rand(3, sa, MT_FLOAT32, MH_CPU, 1));
  mt_tensor *b_cpu = MH_MADE(mt_rand(2, sb, MT_FLOAT32, MH_CPU, 2));
  mt_tensor *bt_cpu = MH_MADE(mt_transpose(b_cpu, 0, 1));
  mt_tensor *want = MH_MADE(mt_matmul(a_cpu, bt_cpu));
  mt_tensor *a = MH_MADE(mt_to(a_cpu, MH_MODAL, MT_FLOAT32, 1));
  mt_tensor *b = MH_MADE(mt_to(b_cpu, MH_MODAL, MT_FLOAT32, 1));
  mt_tensor *bt = MH_MADE(mt_transpose(b, 0, 1));
  mt_set_matmul_tf32(0);
  mt_tensor *exact = MH_MADE(mt_matmul(a, bt));
  mt_set_matmul_tf32(1);
  mt_tensor *tf32 = MH_MADE(mt_matmul(a, bt));
  mt_set_matmul_tf32(0);
  int64_t n = 3 * 96 * 72;
  ck_assert_double_le(max_diff(exact, want, n), 1e-4);
  ck_assert_double_le(max_diff(tf32, want, n), 0.1);
  mt_tensor *tensors[] = {tf32, exact, bt, b, a, want, bt_cpu, b_cpu, a_cpu};
  for (int i = 0; i < (int)(sizeof tensors / sizeof *tensors); i++) mt_tensor_free(tensors[i]);
}
END_TEST

/* A tensor beyond what the GPU has left fails with the allocator's out of
 * memory for that session, which goes on. Blocks cached after a free are
 * given back to CUDA when a larger block needs their room. */
START_TEST(test_out_of_memory_then_recovery) {
  mt_device_properties p = props();
  int64_t too_big = (p.total_memory - ((int64_t)64 << 20)) / 4;
  mt_tensor *big = MH_MADE(mt_zeros(1, &too_big, MT_FLOAT32, MH_MODAL));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_OUT_OF_MEMORY, "out of memory on cuda:0", NULL);
  mt_tensor_free(big);

  int64_t third = p.total_memory / 10 * 3 / 4, half = p.total_memory / 2 / 4;
  mt_tensor *parts[3];
  for (int i = 0; i < 3; i++) parts[i] = MH_MADE(mt_zeros(1, &third, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  for (int i = 0; i < 3; i++) mt_tensor_free(parts[i]);
  mt_tensor *ones = MH_MADE(mt_full(1, &half, 1.0, MT_FLOAT32, MH_MODAL));
  mt_tensor *top = MH_MADE(mt_amax(ones, 0, NULL, 0));
  ck_assert(item(top) == 1.0);
  mt_tensor_free(top);
  mt_tensor_free(ones);

  mt_tensor *small = MH_MADE(mt_arange(0, 4, 1, MT_FLOAT32, MH_MODAL));
  mt_tensor *sum = MH_MADE(mt_sum(small, 0, NULL, 0));
  ck_assert(item(sum) == 6.0);
  mt_tensor_free(sum);
  mt_tensor_free(small);
}
END_TEST

/* An index out of range is found by the kernel on the GPU: the next sync
 * reports it as the cpu would (invalid argument, out of range) and the
 * session goes on. */
START_TEST(test_index_select_fault) {
  mt_tensor *a = MH_MADE(mt_arange(0, 10, 1, MT_FLOAT32, MH_MODAL));
  const int64_t idx_v[2] = {1, 12}, two = 2;
  mt_tensor *idx = MH_MADE(mt_from_data(idx_v, 1, &two, MT_INT64, MH_MODAL));
  mt_tensor *r = MH_MADE(mt_index_select(a, 0, idx));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "mt_index_select", "out of range");
  mt_tensor *b = MH_MADE(mt_add(a, a));
  mt_tensor *sum = MH_MADE(mt_sum(b, 0, NULL, 0));
  ck_assert(item(sum) == 90.0);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor *tensors[] = {sum, b, r, idx, a};
  for (int i = 0; i < (int)(sizeof tensors / sizeof *tensors); i++) mt_tensor_free(tensors[i]);
}
END_TEST

/* An integer divisor 0 deep in a large int32 floor_divide is found by the
 * kernel: the next sync reports the cpu's error (invalid argument,
 * "b: integer division by zero") and the session goes on. */
START_TEST(test_zero_divisor_fault) {
  const int64_t n = (INT64_C(1) << 24) + 3;
  mt_tensor *a = MH_MADE(mt_arange(1, (double)n + 1, 1, MT_INT32, MH_MODAL));
  mt_tensor *d = MH_MADE(mt_remainder(a, a)); /* zeros */
  mt_tensor *q = MH_MADE(mt_floor_divide(a, d));
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_INVALID_ARGUMENT, "mt_floor_divide",
            "integer division by zero");
  mt_tensor *ok = MH_MADE(mt_floor_divide(a, a));
  mt_tensor *sum = MH_MADE(mt_sum(ok, 0, NULL, 0));
  ck_assert(item(sum) == (double)n);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor *tensors[] = {sum, ok, q, d, a};
  for (int i = 0; i < (int)(sizeof tensors / sizeof *tensors); i++) mt_tensor_free(tensors[i]);
}
END_TEST

static Suite *gpu_suite(void) {
  Suite *s = suite_create("gpu_worker");
  TCase *tc = tcase_create("cuda");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_device_is_a_gpu);
  tcase_add_test(tc, test_matmul_against_cpu);
  tcase_add_test(tc, test_out_of_memory_then_recovery);
  tcase_add_test(tc, test_index_select_fault);
  tcase_add_test(tc, test_zero_divisor_fault);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(gpu_suite()); }
