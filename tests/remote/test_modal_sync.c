/*
 * test_modal_sync.c - round trips: recording ops costs no round trip, a
 * sync point costs exactly one, MODALTENSOR_EAGER=1 costs one per op, a
 * long pending graph goes out on its own once it passes its size threshold,
 * and threads recording at once share the session. The worker's Stats
 * counters (syncs, graphs, nodes, messages) are the witnesses; no timing is
 * asserted.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modal_harness.h"

#define N 64 /* elements of the chained tensors */

static mh_worker worker;

static void teardown(void) { mh_worker_finish(&worker); }

/* x = 0, 1, ..., N-1 on modal; the session is open and synced after it. */
static mt_tensor *iota(void) {
  float v[N];
  for (int i = 0; i < N; i++) v[i] = (float)i;
  const int64_t n = N;
  mt_tensor *x = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  return x;
}

/* y = x + ops * x after `ops` recorded additions; the intermediates are
 * freed as the chain goes (their frees are queued, not sent). */
static mt_tensor *chain(const mt_tensor *x, int ops) {
  mt_tensor *y = MH_MADE(mt_clone(x)); /* one node */
  for (int k = 1; k < ops; k++) {
    mt_tensor *next = MH_MADE(mt_add(y, x));
    mt_tensor_free(y);
    y = next;
  }
  return y;
}

static void expect_chain_values(const mt_tensor *y, int ops) {
  float got[N];
  MH_OK(mt_to_host(y, got, sizeof got));
  for (int i = 0; i < N; i++)
    ck_assert_msg(got[i] == (float)(i * ops), "element %d: %g, expected %d", i, (double)got[i],
                  i * ops);
}

START_TEST(test_chain_of_1000_ops_is_one_sync) {
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  mh_counters before = mh_stats(&worker);
  mt_tensor *y = chain(x, 1000);
  /* Recording sent nothing yet: the worker saw no new message. */
  mh_counters recorded = mh_stats(&worker);
  ck_assert_uint_eq(recorded.messages, before.messages);
  expect_chain_values(y, 1000);
  mh_counters after = mh_stats(&worker);
  ck_assert_uint_eq(after.syncs - before.syncs, 1);
  ck_assert_uint_eq(after.nodes - before.nodes, 1000);
  ck_assert_uint_eq(after.graphs - before.graphs, 1); /* 1000 nodes fit one Graph message */
  ck_assert_uint_eq(after.bytes_out - before.bytes_out, N * sizeof(float));
  /* Graph, Free (999 intermediates), Download, Sync. */
  ck_assert_uint_le(after.messages - before.messages, 4);
  ck_assert_uint_eq(after.live_tensors, 2); /* x and y */
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_each_sync_point_is_one_round_trip) {
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  mh_counters c0 = mh_stats(&worker);
  /* Uploads, ops, views and frees are not sync points. */
  const int64_t n = N;
  float v[N] = {0};
  mt_tensor *u = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  mt_tensor *s = MH_MADE(mt_sum(x, 0, NULL, 0));
  mt_tensor *r = MH_MADE(mt_reshape(x, 2, (const int64_t[]){8, 8}));
  mt_tensor *t = MH_MADE(mt_transpose(r, 0, 1));
  mt_tensor *z = MH_MADE(mt_zeros(1, &n, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_copy_(z, x));
  mt_tensor_free(u);
  mh_counters c1 = mh_stats(&worker);
  ck_assert_uint_eq(c1.syncs, c0.syncs);
  /* mt_synchronize, mt_item, mt_to_host and mt_to(cpu): one sync each. */
  MH_OK(mt_synchronize(MH_MODAL));
  mh_counters c2 = mh_stats(&worker);
  ck_assert_uint_eq(c2.syncs - c1.syncs, 1);
  ck_assert_uint_eq(c2.nodes - c1.nodes, 3); /* sum, zeros, copy_ */
  double total;
  MH_OK(mt_item(s, &total));
  ck_assert(total == (N - 1) * N / 2.0);
  mh_counters c3 = mh_stats(&worker);
  ck_assert_uint_eq(c3.syncs - c2.syncs, 1);
  float got[N];
  MH_OK(mt_to_host(t, got, sizeof got)); /* a strided view */
  ck_assert(got[1] == 8.0f && got[8] == 1.0f);
  mh_counters c4 = mh_stats(&worker);
  ck_assert_uint_eq(c4.syncs - c3.syncs, 1);
  mt_tensor *host = MH_MADE(mt_to(z, MH_CPU, MT_FLOAT64, 0));
  mh_counters c5 = mh_stats(&worker);
  ck_assert_uint_eq(c5.syncs - c4.syncs, 1);
  /* An empty mt_synchronize (nothing sent since the last sync point) costs
   * nothing: no message, no round trip, on either side's counters. */
  mt_modal_stats before, after;
  MH_OK(mt_modal_get_stats(&before));
  MH_OK(mt_synchronize(MH_MODAL));
  MH_OK(mt_modal_synchronize_all());
  MH_OK(mt_modal_get_stats(&after));
  ck_assert_uint_eq(after.round_trips, before.round_trips);
  ck_assert_uint_eq(after.messages, before.messages);
  mh_counters c6 = mh_stats(&worker);
  ck_assert_uint_eq(c6.syncs, c5.syncs);
  ck_assert_uint_eq(c6.messages, c5.messages);
  ck_assert_uint_eq(c6.graphs, c5.graphs);
  /* cpu synchronisation never reaches the worker. */
  MH_OK(mt_synchronize(MH_CPU));
  ck_assert_uint_eq(mh_stats(&worker).messages, c6.messages);
  mt_tensor_free(host);
  mt_tensor_free(z);
  mt_tensor_free(t);
  mt_tensor_free(r);
  mt_tensor_free(s);
  mt_tensor_free(x);
}
END_TEST

/* A pending graph is sent once it is long enough, without a sync; the
 * sync point then sends only the rest. */
START_TEST(test_long_graph_is_sent_before_the_sync) {
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  mh_counters before = mh_stats(&worker);
  mt_tensor *y = chain(x, 5000);
  /* The worker receives the first part on its own; wait for it (bounded). */
  int64_t until = mh_now_ms() + 60000;
  mh_counters seen;
  while ((seen = mh_stats(&worker)).nodes == before.nodes) {
    ck_assert_msg(mh_now_ms() < until, "5000 recorded ops sent nothing to the worker");
    mh_sleep_ms(10);
  }
  ck_assert_uint_eq(seen.syncs, before.syncs);
  expect_chain_values(y, 5000);
  mh_counters after = mh_stats(&worker);
  ck_assert_uint_eq(after.syncs - before.syncs, 1);
  ck_assert_uint_eq(after.nodes - before.nodes, 5000);
  ck_assert_uint_le(after.graphs - before.graphs, 8);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_eager_is_one_sync_per_op) {
  mh_setenv("MODALTENSOR_EAGER", "1");
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  mh_counters before = mh_stats(&worker);
  mt_tensor *y = chain(x, 50);
  mh_counters recorded = mh_stats(&worker);
  ck_assert_uint_eq(recorded.syncs - before.syncs, 50);
  ck_assert_uint_eq(recorded.graphs - before.graphs, 50);
  ck_assert_uint_eq(recorded.nodes - before.nodes, 50);
  expect_chain_values(y, 50);
  ck_assert_uint_eq(mh_stats(&worker).syncs - recorded.syncs, 1);
  /* An upload is synced at once too. */
  const int64_t n = N;
  float v[N] = {0};
  mh_counters c0 = mh_stats(&worker);
  mt_tensor *u = MH_MADE(mt_from_data(v, 1, &n, MT_FLOAT32, MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).syncs - c0.syncs, 1);
  mt_tensor_free(u);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

/* In eager mode an op's deferred error comes back from the op's own call. */
START_TEST(test_eager_reports_errors_at_the_op) {
  mh_setenv("MODALTENSOR_EAGER", "1");
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  int64_t bad[1] = {N};
  const int64_t one = 1;
  mt_tensor *idx = MH_MADE(mt_from_data(bad, 1, &one, MT_INT64, MH_MODAL));
  MH_EXPECT_NULL(mt_index_select(x, 0, idx), MT_ERR_INVALID_ARGUMENT, "mt_index_select", NULL);
  MH_OK(mt_synchronize(MH_MODAL));
  mt_tensor_free(idx);
  mt_tensor_free(x);
}
END_TEST

START_TEST(test_eager_zero_is_lazy) {
  mh_setenv("MODALTENSOR_EAGER", "0");
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  mh_counters before = mh_stats(&worker);
  mt_tensor *y = chain(x, 50);
  expect_chain_values(y, 50);
  ck_assert_uint_eq(mh_stats(&worker).syncs - before.syncs, 1);
  mt_tensor_free(y);
  mt_tensor_free(x);
}
END_TEST

/* Threads share the device's session: each records its own chain and
 * reads it back while the others do the same. */
typedef struct chain_job {
  const mt_tensor *x;
  int ops;
  int ok;
} chain_job;

static void *run_chain(void *arg) {
  chain_job *j = arg;
  mt_tensor *y = mt_clone(j->x);
  for (int k = 1; y && k < j->ops; k++) {
    mt_tensor *next = mt_add(y, j->x);
    mt_tensor_free(y);
    y = next;
  }
  float got[N];
  j->ok = y && mt_to_host(y, got, sizeof got) == MT_OK;
  for (int i = 0; j->ok && i < N; i++) j->ok = got[i] == (float)(i * j->ops);
  mt_tensor_free(y);
  return NULL;
}

START_TEST(test_threads_share_the_session) {
  mh_worker_use(&worker);
  mt_tensor *x = iota();
  enum { THREADS = 4 };
  pthread_t t[THREADS];
  chain_job jobs[THREADS];
  for (int i = 0; i < THREADS; i++) {
    jobs[i] = (chain_job){x, 300 + 100 * i, 0};
    ck_assert_int_eq(pthread_create(&t[i], NULL, run_chain, &jobs[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < THREADS; i++) ck_assert_msg(jobs[i].ok, "thread %d got a wrong chain", i);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 1);
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);
  mt_tensor_free(x);
}
END_TEST

static Suite *sync_suite(void) {
  Suite *s = suite_create("modal_sync");
  TCase *tc = tcase_create("round_trips");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_chain_of_1000_ops_is_one_sync);
  tcase_add_test(tc, test_each_sync_point_is_one_round_trip);
  tcase_add_test(tc, test_long_graph_is_sent_before_the_sync);
  tcase_add_test(tc, test_eager_is_one_sync_per_op);
  tcase_add_test(tc, test_eager_reports_errors_at_the_op);
  tcase_add_test(tc, test_eager_zero_is_lazy);
  tcase_add_test(tc, test_threads_share_the_session);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return mh_run_suite(sync_suite()); }
