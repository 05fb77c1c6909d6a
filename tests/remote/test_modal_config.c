/*
 * test_modal_config.c - mt_modal_configure: settings from code win over the
 * environment, are refused while the device is in use and apply after
 * mt_shutdown, malformed ones are refused before anything is sent, and
 * NULL goes back to the environment. Also the flow-control choice the
 * library makes for gRPC (core/grpc_flow.h), which the environment can
 * override.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/grpc_flow.h"
#include "modal_harness.h"

#define TOKEN "config-test-token"

static mh_worker worker, other;

static void teardown(void) {
  mt_modal_configure(NULL);
  if (other.proc.pid > 0) mh_worker_finish(&other);
  if (worker.proc.pid > 0) mh_worker_finish(&worker);
}

/* One upload and a sync: the session is open on whichever worker. */
static mt_status touch(void) {
  const float v[2] = {1, 2};
  const int64_t n = 2;
  mt_tensor *t = mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL);
  if (!t) return mt_last_status();
  mt_status st = mt_synchronize(MH_MODAL);
  mt_tensor_free(t);
  return st;
}

START_TEST(test_code_wins_over_the_environment) {
  mh_worker_start(&worker, NULL, NULL, NULL);
  mh_setenv("MODALTENSOR_WORKER", "127.0.0.1:1"); /* nothing listens there */
  mt_modal_config cfg = MT_MODAL_CONFIG_INIT;
  cfg.worker = worker.proc.addr;
  cfg.timeout_s = 120;
  MH_OK(mt_modal_configure(&cfg));
  MH_OK(touch());
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);
}
END_TEST

START_TEST(test_refused_while_in_use_applies_after_shutdown) {
  mh_worker_start(&worker, NULL, NULL, NULL);
  mh_worker_start(&other, NULL, NULL, NULL);
  mh_point_at(&worker);
  MH_OK(touch());
  mt_modal_config cfg = MT_MODAL_CONFIG_INIT;
  cfg.worker = other.proc.addr;
  MH_EXPECT(mt_modal_configure(&cfg), MT_ERR_UNSUPPORTED, "mt_shutdown", NULL);
  mt_shutdown();
  MH_OK(mt_modal_configure(&cfg));
  MH_OK(touch());
  mh_wait_sessions(&worker, 0, 60000);
  ck_assert_uint_eq(mh_stats(&other).open_sessions, 1);
  /* NULL: the environment again */
  mt_shutdown();
  MH_OK(mt_modal_configure(NULL));
  MH_OK(touch());
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);
}
END_TEST

START_TEST(test_token_from_code) {
  const char *const env[] = {"MODALTENSOR_WORKER_TOKEN=" TOKEN, NULL};
  mh_worker_start(&worker, NULL, env, TOKEN);
  mh_point_at(&worker);
  MH_EXPECT(touch(), MT_ERR_UNAUTHENTICATED, NULL, NULL);
  mt_shutdown();
  mt_modal_config cfg = MT_MODAL_CONFIG_INIT;
  cfg.token = TOKEN;
  MH_OK(mt_modal_configure(&cfg));
  MH_OK(touch());
}
END_TEST

START_TEST(test_flow_control_experiment_chosen_when_unset) {
  unsetenv("GRPC_EXPERIMENTS");
  mh_worker_start(&worker, NULL, NULL, NULL);
  mh_point_at(&worker);
  MH_OK(touch());
  const char *set = getenv("GRPC_EXPERIMENTS");
  ck_assert_ptr_nonnull(set);
  ck_assert_str_eq(set, MTI_GRPC_EXPERIMENTS);
}
END_TEST

START_TEST(test_flow_control_left_to_the_environment) {
  setenv("GRPC_EXPERIMENTS", "", 1); /* every experiment at its default */
  mh_worker_start(&worker, NULL, NULL, NULL);
  mh_point_at(&worker);
  MH_OK(touch());
  ck_assert_str_eq(getenv("GRPC_EXPERIMENTS"), "");
}
END_TEST

START_TEST(test_malformed_settings) {
  mt_modal_config cfg = MT_MODAL_CONFIG_INIT;
  cfg.worker = "ftp://host:1";
  MH_EXPECT(mt_modal_configure(&cfg), MT_ERR_INVALID_ARGUMENT, "ftp://host:1", NULL);
  cfg.worker = " , ";
  MH_EXPECT(mt_modal_configure(&cfg), MT_ERR_INVALID_ARGUMENT, "no address", NULL);
  cfg = (mt_modal_config)MT_MODAL_CONFIG_INIT;
  cfg.tls = 5;
  MH_EXPECT(mt_modal_configure(&cfg), MT_ERR_INVALID_ARGUMENT, "tls", NULL);
  cfg = (mt_modal_config)MT_MODAL_CONFIG_INIT;
  cfg.timeout_s = -1;
  MH_EXPECT(mt_modal_configure(&cfg), MT_ERR_INVALID_ARGUMENT, "timeout_s", NULL);
  cfg = (mt_modal_config)MT_MODAL_CONFIG_INIT;
  cfg.worker = "example.com:443";
  cfg.tls = 0;
  cfg.token = TOKEN; /* in clear to another host: refused at first use */
  MH_OK(mt_modal_configure(&cfg));
  MH_EXPECT(touch(), MT_ERR_INVALID_ARGUMENT, "in clear", NULL);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("modal_config");
  TCase *tc = tcase_create("config");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_code_wins_over_the_environment);
  tcase_add_test(tc, test_refused_while_in_use_applies_after_shutdown);
  tcase_add_test(tc, test_token_from_code);
  tcase_add_test(tc, test_malformed_settings);
  tcase_add_test(tc, test_flow_control_experiment_chosen_when_unset);
  tcase_add_test(tc, test_flow_control_left_to_the_environment);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(config_suite()); }
