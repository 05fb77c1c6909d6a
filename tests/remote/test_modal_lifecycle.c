/*
 * test_modal_lifecycle.c - what the worker holds for a client over time:
 * one storage per live tensor storage (views share it), nothing once every
 * handle is freed and a sync has passed; mt_shutdown ends the session (the
 * worker frees it), leaves the handles that outlive it safely unusable
 * (MT_ERR_UNAVAILABLE) and freeable, and the next call connects again. With
 * no worker configured, mt_shutdown also stops the worker the library
 * started.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modal_harness.h"

#define WORKER_COMM "modaltensor-wor" /* /proc comm: the first 15 characters */

static mh_worker worker;

static void setup(void) { mh_worker_use(&worker); }
static void teardown(void) { mh_worker_finish(&worker); }

static const int64_t shape[2] = {16, 8}; /* 128 elements */

/* Makes many tensors and views of every kind; returns how many storages
 * (and bytes) they hold on the worker. The handles go to out. */
static int make_many(mt_tensor **out, int *count, uint64_t *bytes) {
  int n = 0, storages = 0;
  *bytes = 0;
  for (int i = 0; i < 20; i++) {
    float v[128];
    for (int k = 0; k < 128; k++) v[k] = (float)(i + k);
    mt_tensor *a = out[n++] = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_MODAL));
    mt_tensor *b = out[n++] = MH_MADE(mt_rand(2, shape, MT_FLOAT64, MH_MODAL, (uint64_t)i));
    mt_tensor *c = out[n++] = MH_MADE(mt_add(a, a));
    mt_tensor *t = out[n++] = MH_MADE(mt_transpose(c, 0, 1)); /* views: no storage */
    mt_tensor *s = out[n++] = MH_MADE(mt_slice(t, 0, 1, 8, 2));
    out[n++] = MH_MADE(mt_expand(a, 3, (const int64_t[]){2, 16, 8}));
    out[n++] = MH_MADE(mt_contiguous(s)); /* a copy */
    out[n++] = MH_MADE(mt_reshape(s, 1, (const int64_t[]){-1})); /* a copy too */
    out[n++] = MH_MADE(mt_cast(b, MT_INT8));
    const mt_tensor *pair[2] = {a, c};
    out[n++] = MH_MADE(mt_stack(2, pair, 0));
    out[n++] = MH_MADE(mt_empty(1, (const int64_t[]){0}, MT_INT16, MH_MODAL));
    storages += 8;
    /* a, b, c; two 64-element float32 copies; the int8 cast; the stack */
    *bytes += 128 * (4 + 8 + 4) + 2 * 64 * 4 + 128 + 256 * 4;
  }
  *count = n;
  return storages;
}

START_TEST(test_worker_holds_nothing_after_frees) {
  mt_tensor *t[400];
  int n;
  uint64_t bytes;
  int storages = make_many(t, &n, &bytes);
  MH_OK(mt_synchronize(MH_MODAL));
  mh_counters live = mh_stats(&worker);
  ck_assert_uint_eq(live.live_tensors, (uint64_t)storages);
  ck_assert_uint_eq(live.live_bytes, bytes);
  /* Free bases before their views, in an order unlike creation. */
  for (int i = 0; i < n; i += 2) mt_tensor_free(t[i]);
  for (int i = n % 2 == 0 ? n - 1 : n - 2; i >= 0; i -= 2) mt_tensor_free(t[i]);
  /* Frees are queued until the next message: one sync sends them. */
  MH_OK(mt_synchronize(MH_MODAL));
  mh_counters after = mh_stats(&worker);
  ck_assert_uint_eq(after.live_tensors, 0);
  ck_assert_uint_eq(after.live_bytes, 0);
  ck_assert_uint_eq(after.open_sessions, 1);
}
END_TEST

START_TEST(test_a_view_keeps_its_storage) {
  float v[128];
  for (int k = 0; k < 128; k++) v[k] = (float)k;
  mt_tensor *a = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_MODAL));
  mt_tensor *view = MH_MADE(mt_slice(a, 0, 15, 16, 1));
  mt_tensor_free(a);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 1);
  float row[8];
  MH_OK(mt_to_host(view, row, sizeof row));
  for (int k = 0; k < 8; k++) ck_assert(row[k] == (float)(120 + k));
  mt_tensor_free(view);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
}
END_TEST

/* The worker's memory numbers follow this client's tensors: a new 4 MiB
 * tensor adds at least its bytes once a sync has sent it, and its free (sent
 * by the next sync) takes them back; reserved never falls below allocated. */
START_TEST(test_memory_follows_tensors) {
  int64_t before, allocated, reserved;
  MH_OK(mt_modal_memory_allocated(0, &before));
  MH_OK(mt_modal_memory_reserved(0, &reserved));
  ck_assert_int_ge(before, 0);
  ck_assert_int_ge(reserved, before);
  const int64_t numel = (int64_t)1 << 20; /* float32: 4 MiB */
  mt_tensor *t = MH_MADE(mt_zeros(1, &numel, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_synchronize(MH_MODAL));
  MH_OK(mt_modal_memory_allocated(0, &allocated));
  MH_OK(mt_modal_memory_reserved(0, &reserved));
  ck_assert_int_ge(allocated - before, numel * 4);
  ck_assert_int_ge(reserved, allocated);
  mt_tensor_free(t);
  MH_OK(mt_synchronize(MH_MODAL));
  MH_OK(mt_modal_memory_allocated(0, &allocated));
  MH_OK(mt_modal_memory_reserved(0, &reserved));
  ck_assert_int_eq(allocated, before);
  ck_assert_int_ge(reserved, allocated);
}
END_TEST

START_TEST(test_memory_query_errors) {
  int64_t bytes = -7;
  MH_EXPECT(mt_modal_memory_allocated(1, &bytes), MT_ERR_DEVICE, "mt_modal_memory_allocated",
            "modal:1");
  MH_EXPECT(mt_modal_memory_reserved(-1, &bytes), MT_ERR_DEVICE, "mt_modal_memory_reserved",
            "modal:-1");
  ck_assert_int_eq(bytes, -7);
  MH_EXPECT(mt_modal_memory_allocated(0, NULL), MT_ERR_INVALID_ARGUMENT, "out", NULL);
  MH_EXPECT(mt_modal_memory_reserved(0, NULL), MT_ERR_INVALID_ARGUMENT, "out", NULL);
}
END_TEST

START_TEST(test_shutdown_ends_the_session) {
  float v[128];
  for (int k = 0; k < 128; k++) v[k] = (float)k;
  mt_tensor *kept = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_MODAL));
  mt_tensor *view = MH_MADE(mt_transpose(kept, 0, 1));
  mt_tensor *sum = MH_MADE(mt_sum(kept, 0, NULL, 0));
  mt_tensor *pending = MH_MADE(mt_mul(kept, kept)); /* recorded, never sent */
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);

  mt_shutdown();
  mh_counters c = mh_wait_sessions(&worker, 0, 30000);
  ck_assert_uint_eq(c.live_tensors, 0); /* the worker freed the session */
  ck_assert_uint_eq(c.live_bytes, 0);
  mt_shutdown(); /* a second one is harmless */

  /* Handles that outlived the session: unusable, and say why. */
  float got[128];
  double x;
  MH_EXPECT(mt_to_host(kept, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  MH_EXPECT(mt_to_host(view, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  MH_EXPECT(mt_item(sum, &x), MT_ERR_UNAVAILABLE, "mt_item", "lost");
  MH_EXPECT(mt_to_host(pending, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  MH_EXPECT_NULL(mt_add(kept, kept), MT_ERR_UNAVAILABLE, "mt_add", "lost");
  MH_EXPECT_NULL(mt_to(kept, MH_CPU, MT_FLOAT32, 0), MT_ERR_UNAVAILABLE, "lost", NULL);
  mt_tensor *z = MH_MADE(mt_zeros(2, shape, MT_FLOAT32, MH_MODAL)); /* reconnects */
  MH_EXPECT(mt_copy_(z, kept), MT_ERR_UNAVAILABLE, "lost", NULL);
  /* Views of lost tensors are only handles: making them is fine. */
  mt_tensor *view2 = MH_MADE(mt_reshape(kept, 1, (const int64_t[]){128}));

  /* A later call has reconnected: new tensors work. */
  mt_tensor *fresh = MH_MADE(mt_from_data(v, 2, shape, MT_FLOAT32, MH_MODAL));
  mt_tensor *doubled = MH_MADE(mt_add(fresh, fresh));
  MH_OK(mt_to_host(doubled, got, sizeof got));
  for (int k = 0; k < 128; k++) ck_assert(got[k] == 2.0f * (float)k);
  ck_assert_uint_eq(mh_stats(&worker).open_sessions, 1);

  /* Freeing the lost ones is safe, in any order, and touches no session. */
  mt_tensor_free(kept);
  mt_tensor_free(view2);
  mt_tensor_free(pending);
  mt_tensor_free(sum);
  mt_tensor_free(view);
  mt_tensor_free(doubled);
  mt_tensor_free(fresh);
  mt_tensor_free(z);
  MH_OK(mt_synchronize(MH_MODAL));
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
}
END_TEST

START_TEST(test_repeated_shutdown_and_reconnect) {
  for (int round = 0; round < 5; round++) {
    mt_tensor *a = MH_MADE(mt_full(1, (const int64_t[]){4}, round, MT_INT32, MH_MODAL));
    double x;
    mt_tensor *s = MH_MADE(mt_sum(a, 0, NULL, 0));
    MH_OK(mt_item(s, &x));
    ck_assert(x == 4.0 * round);
    mt_tensor_free(s);
    mt_tensor_free(a);
    mt_shutdown();
    mh_wait_sessions(&worker, 0, 30000);
  }
  ck_assert_uint_eq(mh_stats(&worker).live_tensors, 0);
}
END_TEST

/* With MODALTENSOR_WORKER unset the library starts its own worker (a child
 * process) and mt_shutdown stops it; the next call starts another. */
START_TEST(test_local_worker_stops_at_shutdown) {
  ck_assert_int_eq(unsetenv("MODALTENSOR_WORKER"), 0);
  ck_assert_int_eq(mh_find_child(WORKER_COMM), -1);
  ck_assert_int_eq(mt_modal_is_available(), 1);
  ck_assert_int_eq(mt_modal_device_count(), 1);
  pid_t first = mh_find_child(WORKER_COMM);
  ck_assert_int_gt(first, 0);
  mt_device_properties p;
  MH_OK(mt_modal_get_device_properties(0, &p));
  ck_assert_int_gt(p.total_memory, 0);
  mt_tensor *a = MH_MADE(mt_ones(1, (const int64_t[]){3}, MT_FLOAT32, MH_MODAL));
  mt_shutdown();
  ck_assert_int_eq(mh_find_child(WORKER_COMM), -1); /* stopped and reaped */
  float got[3];
  MH_EXPECT(mt_to_host(a, got, sizeof got), MT_ERR_UNAVAILABLE, "lost", NULL);
  mt_tensor_free(a);
  mt_tensor *b = MH_MADE(mt_ones(1, (const int64_t[]){3}, MT_FLOAT32, MH_MODAL));
  MH_OK(mt_to_host(b, got, sizeof got));
  ck_assert(got[2] == 1.0f);
  ck_assert_int_gt(mh_find_child(WORKER_COMM), 0);
  mt_tensor_free(b);
  mt_shutdown();
  ck_assert_int_eq(mh_find_child(WORKER_COMM), -1);
}
END_TEST

static Suite *lifecycle_suite(void) {
  Suite *s = suite_create("modal_lifecycle");
  TCase *tc = tcase_create("sessions");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, MH_TEST_TIMEOUT_S);
  tcase_add_test(tc, test_worker_holds_nothing_after_frees);
  tcase_add_test(tc, test_a_view_keeps_its_storage);
  tcase_add_test(tc, test_memory_follows_tensors);
  tcase_add_test(tc, test_memory_query_errors);
  tcase_add_test(tc, test_shutdown_ends_the_session);
  tcase_add_test(tc, test_repeated_shutdown_and_reconnect);
  suite_add_tcase(s, tc);
  TCase *local = tcase_create("local_worker");
  tcase_set_timeout(local, MH_TEST_TIMEOUT_S);
  tcase_add_test(local, test_local_worker_stops_at_shutdown);
  suite_add_tcase(s, local);
  return s;
}

int main(void) { return mh_run_suite(lifecycle_suite()); }
