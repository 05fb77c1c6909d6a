/*
 * test_modal_auth.c - a worker that requires a token, and one that speaks
 * another protocol: the client is refused with the right status and a
 * message naming the worker, and never half-works.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_fake_worker.h"
#include "modal_harness.h"

#define TOKEN "s3cret-t0ken"

static mh_worker worker;
static const int64_t four = 4;

/* The worker reads its token from the environment (as its --help advises:
 * arguments show in ps). */
static void start_with_env_token(void) {
  static const char *const env[] = {"MODALTENSOR_WORKER_TOKEN=" TOKEN, NULL};
  static const char *const quiet[] = {"--log-level", "error", NULL}; /* refusals are expected */
  mh_worker_start(&worker, quiet, env, TOKEN);
  mh_point_at(&worker);
}

/* t was made (recording waits for no reply: the Open travels with the
 * work); the sync point that follows reports the refusal, naming the
 * worker, and t is lost with the session. */
static void expect_refused_at_sync(mt_tensor *t, mt_status st, const char *needle) {
  ck_assert_ptr_nonnull(t);
  MH_EXPECT(mt_synchronize(MH_MODAL), st, worker.proc.addr, needle);
  float out[4];
  MH_EXPECT(mt_to_host(t, out, sizeof out), MT_ERR_UNAVAILABLE, "lost", worker.proc.addr);
  mt_tensor_free(t);
}

/* Every entry point that asks the worker reports the refusal at once; a
 * tensor made on the device reports it at its first sync point. */
static void expect_refused(mt_status st, const char *needle) {
  mt_clear_error();
  ck_assert_int_eq(mt_modal_is_available(), 0);
  mh_expect_at(__FILE__, __LINE__, "mt_modal_is_available()", mt_last_status(), st,
               worker.proc.addr, needle);
  ck_assert_int_eq(mt_modal_device_count(), 0);
  expect_refused_at_sync(mt_zeros(1, &four, MT_FLOAT32, MH_MODAL), st, needle);
  float v[4] = {0};
  expect_refused_at_sync(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL), st, needle);
  mt_device_properties p;
  MH_EXPECT(mt_modal_get_device_properties(0, &p), st, worker.proc.addr, NULL);
  /* cpu is untouched by it */
  mt_tensor *c = MH_MADE(mt_ones(1, &four, MT_FLOAT32, MH_CPU));
  expect_refused_at_sync(mt_to(c, MH_MODAL, MT_FLOAT32, 1), st, needle);
  mt_tensor_free(c);
  /* Nothing reached the worker's sessions. */
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 0);
  ck_assert_uint_eq(mh_stats(&worker).messages, 0);
}

START_TEST(test_no_token_is_refused) {
  start_with_env_token();
  ck_assert_int_eq(unsetenv("MODALTENSOR_TOKEN"), 0);
  expect_refused(MT_ERR_UNAUTHENTICATED, NULL);
  mh_worker_finish(&worker);
}
END_TEST

START_TEST(test_wrong_token_is_refused) {
  start_with_env_token();
  mh_setenv("MODALTENSOR_TOKEN", TOKEN "x");
  expect_refused(MT_ERR_UNAUTHENTICATED, NULL);
  mh_worker_finish(&worker);
}
END_TEST

START_TEST(test_empty_token_is_refused) {
  start_with_env_token();
  mh_setenv("MODALTENSOR_TOKEN", "");
  expect_refused(MT_ERR_UNAUTHENTICATED, NULL);
  mh_worker_finish(&worker);
}
END_TEST

static void expect_working(void) {
  ck_assert_int_eq(mt_modal_is_available(), 1);
  ck_assert_int_eq(mt_modal_device_count(), 1);
  float v[4] = {1, 2, 3, 4}, got[4];
  mt_tensor *a = MH_MADE(mt_from_data(v, 1, &four, MT_FLOAT32, MH_MODAL));
  mt_tensor *b = MH_MADE(mt_mul(a, a));
  MH_OK(mt_to_host(b, got, sizeof got));
  ck_assert(got[0] == 1.0f && got[3] == 16.0f);
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);
  mt_tensor_free(b);
  mt_tensor_free(a);
}

START_TEST(test_right_token_works) {
  start_with_env_token();
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  mh_worker_finish(&worker);
}
END_TEST

START_TEST(test_token_from_the_command_line) {
  static const char *const args[] = {"--token", TOKEN, NULL};
  mh_worker_start(&worker, args, NULL, TOKEN);
  mh_point_at(&worker);
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  mh_worker_finish(&worker);
}
END_TEST

/* A token the worker does not ask for is harmless. */
START_TEST(test_token_without_worker_token) {
  mh_worker_use(&worker);
  mh_setenv("MODALTENSOR_TOKEN", TOKEN);
  expect_working();
  mh_worker_finish(&worker);
}
END_TEST

/* A worker of another protocol refuses the handshake: MT_ERR_UNSUPPORTED
 * with the worker's own reason, on every call that connects. */
START_TEST(test_incompatible_worker) {
  char addr[64];
  mh_fake *fake = mh_fake_incompatible_start(addr, sizeof addr);
  ck_assert_ptr_nonnull(fake);
  mh_setenv("MODALTENSOR_WORKER", addr);
  mt_clear_error();
  ck_assert_int_eq(mt_modal_is_available(), 0);
  mh_expect_at(__FILE__, __LINE__, "mt_modal_is_available()", mt_last_status(),
               MT_ERR_UNSUPPORTED, addr, MH_FAKE_REASON);
  ck_assert_int_eq(mt_modal_device_count(), 0);
  /* The refusal of the Open that went with the op arrives at its sync. */
  mt_tensor *z = mt_zeros(1, &four, MT_FLOAT32, MH_MODAL);
  ck_assert_msg(z != NULL, "mt_zeros failed: %s", mt_last_error());
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_ERR_UNSUPPORTED, addr, MH_FAKE_REASON);
  mt_tensor_free(z);
  /* A sync with nothing sent since asks nothing. */
  MH_EXPECT(mt_synchronize(MH_MODAL), MT_OK, NULL, NULL);
  mt_shutdown();
  mh_fake_stop(fake);
}
END_TEST

static Suite *auth_suite(void) {
  Suite *s = suite_create("modal_auth");
  TCase *tc = tcase_create("auth");
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_no_token_is_refused);
  tcase_add_test(tc, test_wrong_token_is_refused);
  tcase_add_test(tc, test_empty_token_is_refused);
  tcase_add_test(tc, test_right_token_works);
  tcase_add_test(tc, test_token_from_the_command_line);
  tcase_add_test(tc, test_token_without_worker_token);
  tcase_add_test(tc, test_incompatible_worker);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(auth_suite()); }
