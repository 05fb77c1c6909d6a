/*
 * test_modal_availability.c - the modal device when no worker answers, the
 * switch to in-process execution, several workers as several devices, and
 * addresses this build refuses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modal_fake_worker.h"
#include "modal_harness.h"

#define SLACK_MS 10000 /* beyond the connect timeout: sanitizer and load */

static const int64_t four = 4;

/* A unix socket path where nothing listens. */
static void dead_socket(char *addr, size_t len) {
  snprintf(addr, len, "unix:/tmp/modaltensor-test-%d-nobody/worker.sock", (int)getpid());
}

/* Checks that every modal entry point reports st, naming addr. */
static void expect_unavailable(const char *addr, mt_status st) {
  int64_t start = mh_now_ms();
  mt_clear_error();
  ck_assert_int_eq(mt_modal_is_available(), 0);
  mh_expect_at(__FILE__, __LINE__, "mt_modal_is_available()", mt_last_status(), st, addr, NULL);
  ck_assert_int_eq(mt_modal_device_count(), 0);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), st, "mt_zeros", addr);
  float v[4] = {1, 2, 3, 4};
  MH_EXPECT_NULL(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL), st, "mt_from_data", addr);
  mt_device_properties p;
  MH_EXPECT(mt_modal_get_device_properties(0, &p), st, addr, NULL);
  MH_EXPECT(mt_synchronize(MH_MODAL), st, addr, NULL);
  /* Six attempts, each bounded by the connect timeout (1 s). */
  ck_assert_int_lt(mh_now_ms() - start, 6 * 1000 + SLACK_MS);
}

START_TEST(test_dead_unix_socket) {
  char addr[128];
  dead_socket(addr, sizeof addr);
  mh_setenv("MODALTENSOR_WORKER", addr);
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  expect_unavailable(addr, MT_ERR_UNAVAILABLE);
  mt_shutdown();
}
END_TEST

/* Something listens but does not speak gRPC: no worker all the same. */
START_TEST(test_not_a_worker) {
  char addr[64];
  mh_fake *closer = mh_fake_closer_start(addr, sizeof addr);
  ck_assert_ptr_nonnull(closer);
  mh_setenv("MODALTENSOR_WORKER", addr);
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  expect_unavailable(addr, MT_ERR_UNAVAILABLE);
  mt_shutdown();
  mh_fake_stop(closer);
}
END_TEST

/* With remote execution off, modal tensors live in-process: the modal
 * device works without any worker. */
START_TEST(test_in_process_without_worker) {
  char addr[128];
  dead_socket(addr, sizeof addr);
  mh_setenv("MODALTENSOR_WORKER", addr);
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  ck_assert_int_eq(mt_modal_is_available(), 0);
  int64_t bytes = -1;
  MH_EXPECT(mt_modal_memory_allocated(0, &bytes), MT_ERR_UNAVAILABLE,
            "mt_modal_memory_allocated", NULL);
  mt_set_remote_execution(0);
  ck_assert_int_eq(mt_remote_execution_enabled(), 0);
  ck_assert_int_eq(mt_modal_is_available(), 1);
  ck_assert_int_eq(mt_modal_device_count(), 1);
  mt_device_properties p;
  MH_OK(mt_modal_get_device_properties(0, &p));
  ck_assert_int_gt(p.total_memory, 0);
  /* The in-process device is host memory with no pool of its own: 0. */
  MH_OK(mt_modal_memory_allocated(0, &bytes));
  ck_assert_int_eq(bytes, 0);
  bytes = -1;
  MH_OK(mt_modal_memory_reserved(0, &bytes));
  ck_assert_int_eq(bytes, 0);
  MH_EXPECT(mt_modal_memory_reserved(1, &bytes), MT_ERR_DEVICE, "modal:1", NULL);
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *b = MH_MADE(mt_mul(a, a));
  MH_OK(mt_synchronize(MH_MODAL));
  MH_OK(mt_to_host(b, got, sizeof got));
  ck_assert(got[3] == 16.0f);
  ck_assert_int_eq(mt_tensor_device(b).type, MT_DEVICE_MODAL);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, ((mt_device){MT_DEVICE_MODAL, 1})),
                 MT_ERR_DEVICE, "modal:1", NULL);
  /* in-process modal and cpu are still different devices */
  mt_tensor *c = MH_MADE(mt_ones(1, &four, MT_FLOAT32, MH_CPU));
  MH_EXPECT_NULL(mt_add(b, c), MT_ERR_DEVICE, "cpu", "modal:0");
  mt_tensor_free(c);
  mt_tensor_free(b);
  mt_tensor_free(a);
  mt_shutdown();
}
END_TEST

/* Tensors keep the home they were made in: an in-process one and one on a
 * worker do not mix, whichever way the switch stands. */
START_TEST(test_in_process_and_remote_do_not_mix) {
  mh_worker worker;
  mh_worker_use(&worker);
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *remote = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_set_remote_execution(0);
  mt_tensor *local = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  MH_EXPECT_NULL(mt_add(remote, local), MT_ERR_DEVICE, "mt_add", "in-process");
  MH_EXPECT_NULL(mt_add(local, remote), MT_ERR_DEVICE, "mt_add", "in-process");
  /* Each still works on its own, in its own home. */
  mt_tensor *r2 = MH_MADE(mt_add(remote, remote));
  mt_tensor *l2 = MH_MADE(mt_add(local, local));
  MH_OK(mt_to_host(r2, got, sizeof got));
  ck_assert(got[3] == 8.0f);
  MH_OK(mt_to_host(l2, got, sizeof got));
  ck_assert(got[3] == 8.0f);
  mt_set_remote_execution(1);
  MH_EXPECT_NULL(mt_mul(l2, r2), MT_ERR_DEVICE, "mt_mul", "in-process");
  /* mt_to moves values between the homes. */
  mt_tensor *moved = MH_MADE(mt_to(local, MH_MODAL, MT_FLOAT32, 1));
  mt_tensor *sum = MH_MADE(mt_add(moved, remote));
  MH_OK(mt_to_host(sum, got, sizeof got));
  ck_assert(got[0] == 2.0f && got[3] == 8.0f);
  mt_tensor_free(sum);
  mt_tensor_free(moved);
  mt_tensor_free(l2);
  mt_tensor_free(r2);
  mt_tensor_free(local);
  mt_tensor_free(remote);
  mh_worker_finish(&worker);
}
END_TEST

/* Copies follow their tensors' homes, as ops do: whichever way the switch
 * stands, mt_clone and mt_contiguous of a tensor on a worker stay there. */
START_TEST(test_copies_keep_their_home) {
  mh_worker worker;
  mh_worker_use(&worker);
  float v[4] = {1, 2, 3, 4};
  mt_tensor *remote = MH_MADE(mt_from_data(v, 2, (const int64_t[]){2, 2}, MT_FLOAT32, MH_MODAL));
  mt_tensor *tr = MH_MADE(mt_transpose(remote, 0, 1));
  mt_set_remote_execution(0);
  mt_tensor *cast = MH_MADE(mt_cast(remote, MT_FLOAT64)); /* an op: stays remote */
  mt_tensor *clone = MH_MADE(mt_clone(remote));
  mt_tensor *cont = MH_MADE(mt_contiguous(tr));
  mt_tensor *a = mt_add(clone, remote);
  ck_assert_msg(a != NULL, "mt_clone of a remote tensor left its worker: %s", mt_last_error());
  mt_tensor *b = mt_add(cont, remote);
  ck_assert_msg(b != NULL, "mt_contiguous of a remote tensor left its worker: %s",
                mt_last_error());
  mt_tensor_free(b);
  mt_tensor_free(a);
  mt_tensor_free(cont);
  mt_tensor_free(clone);
  mt_tensor_free(cast);
  mt_tensor_free(tr);
  mt_tensor_free(remote);
  mh_worker_finish(&worker);
}
END_TEST

/* mt_copy_ between an in-process modal tensor and one on a worker (both
 * "modal:0") is refused like every op that would mix the homes, in both
 * directions and whichever way the switch stands: it must neither crash
 * nor report success and fail later. */
static void check_copy_between_homes(int switch_on) {
  mh_worker worker;
  mh_worker_use(&worker);
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *remote = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_set_remote_execution(0);
  mt_tensor *local = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_set_remote_execution(switch_on);
  MH_EXPECT(mt_copy_(local, remote), MT_ERR_DEVICE, "mt_copy_", "in-process");
  MH_EXPECT(mt_copy_(remote, local), MT_ERR_DEVICE, "mt_copy_", "in-process");
  /* and both are intact */
  MH_OK(mt_to_host(remote, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  MH_OK(mt_to_host(local, got, sizeof got));
  ck_assert(got[3] == 4.0f);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor_free(local);
  mt_tensor_free(remote);
  mh_worker_finish(&worker);
}

START_TEST(test_copy_between_homes_switch_on) { check_copy_between_homes(1); }
END_TEST

START_TEST(test_copy_between_homes_switch_off) { check_copy_between_homes(0); }
END_TEST

/* MODALTENSOR_WORKER lists several workers: one device each, in order. */
START_TEST(test_two_workers_two_devices) {
  mh_worker w0, w1;
  mh_worker_start(&w0, NULL, NULL, NULL);
  mh_worker_start(&w1, NULL, NULL, NULL);
  char list[1100];
  snprintf(list, sizeof list, "%s, %s", w0.proc.addr, w1.proc.addr);
  mh_setenv("MODALTENSOR_WORKER", list);
  ck_assert_int_eq(mt_modal_device_count(), 2);
  const mt_device d0 = {MT_DEVICE_MODAL, 0}, d1 = {MT_DEVICE_MODAL, 1};
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, d0));
  mt_tensor *b = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, d1));
  MH_EXPECT_NULL(mt_add(a, b), MT_ERR_DEVICE, "modal:0", "modal:1");
  mt_tensor *moved = MH_MADE(mt_to(a, d1, MT_FLOAT32, 0));
  ck_assert_int_eq(mt_tensor_device(moved).index, 1);
  mt_tensor *sum = MH_MADE(mt_add(moved, b));
  MH_OK(mt_to_host(sum, got, sizeof got));
  ck_assert(got[3] == 8.0f);
  MH_OK(mt_synchronize(d0));
  MH_OK(mt_synchronize(d1));
  /* One session on each worker; the values live where they were made. */
  mh_counters c0 = mh_stats(&w0), c1 = mh_stats(&w1);
  ck_assert_uint_eq(c0.open_sessions, 1);
  ck_assert_uint_eq(c1.open_sessions, 1);
  ck_assert_uint_eq(c0.live_tensors, 1); /* a */
  ck_assert_uint_eq(c1.live_tensors, 3); /* b, moved, sum */
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, ((mt_device){MT_DEVICE_MODAL, 2})),
                 MT_ERR_DEVICE, "modal:2", NULL);
  mt_tensor_free(sum);
  mt_tensor_free(moved);
  mt_tensor_free(b);
  mt_tensor_free(a);
  mh_worker_finish(&w1);
  mh_worker_finish(&w0);
}
END_TEST

/* Another host is tried (over TLS, test_modal_tls.c has the details);
 * nothing answers at this documentation address, so it is unavailable
 * within the connect timeout. */
START_TEST(test_remote_address_is_tried) {
  mh_setenv("MODALTENSOR_WORKER", "192.0.2.1:50051");
  mh_setenv("MODALTENSOR_CONNECT_TIMEOUT", "1");
  ck_assert_int_eq(mt_modal_is_available(), 0);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE, "192.0.2.1:50051",
                 NULL);
  mt_shutdown();
}
END_TEST

/* No address configured and no worker binary to start. */
START_TEST(test_no_worker_binary) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  mh_setenv("MODALTENSOR_WORKER_BINARY", "/nonexistent/modaltensor-worker");
  ck_assert_int_eq(mt_modal_is_available(), 0);
  MH_EXPECT_NULL(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), MT_ERR_UNAVAILABLE,
                 "MODALTENSOR_WORKER_BINARY", NULL);
  mt_shutdown();
}
END_TEST

/* An explicit binary is used as given. */
START_TEST(test_explicit_worker_binary) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  mh_setenv("MODALTENSOR_WORKER_BINARY", WT_WORKER_PATH);
  ck_assert_int_eq(mt_modal_is_available(), 1);
  double x;
  mt_tensor *a = MH_MADE(mt_full(0, NULL, 2.5, MT_FLOAT64, MH_MODAL));
  MH_OK(mt_item(a, &x));
  ck_assert(x == 2.5);
  mt_tensor_free(a);
  mt_shutdown();
}
END_TEST

static Suite *availability_suite(void) {
  Suite *s = suite_create("modal_availability");
  TCase *tc = tcase_create("availability");
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_dead_unix_socket);
  tcase_add_test(tc, test_not_a_worker);
  tcase_add_test(tc, test_in_process_without_worker);
  tcase_add_test(tc, test_in_process_and_remote_do_not_mix);
  tcase_add_test(tc, test_copies_keep_their_home);
  tcase_add_test(tc, test_copy_between_homes_switch_on);
  tcase_add_test(tc, test_copy_between_homes_switch_off);
  tcase_add_test(tc, test_two_workers_two_devices);
  tcase_add_test(tc, test_remote_address_is_tried);
  tcase_add_test(tc, test_no_worker_binary);
  tcase_add_test(tc, test_explicit_worker_binary);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(availability_suite()); }
