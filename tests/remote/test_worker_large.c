/*
 * test_worker_large.c - a 1 GiB tensor through modaltensor-worker (labels
 * "remote;large").
 *
 * The client never holds the tensor: it generates each 1 MiB chunk as it
 * uploads and checks each chunk as it downloads, so its memory stays small
 * while the worker holds 2 GiB (the input and one result). Prints the
 * transfer rates it saw (information, not assertions). WT_LARGE_MIB sets
 * another size.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "worker_proc.h"
#include "wt_session.h"

#define CHUNK (1u << 20)

static wt_worker worker;
static wc_channel *channel;

static void setup(void) {
  grpc_init();
  ck_assert_int_eq(wt_worker_start(&worker, NULL, NULL), 0);
  channel = wc_connect(worker.addr, NULL);
}

static void teardown(void) {
  wc_channel_free(channel);
  ck_assert_int_eq(wt_worker_stop(&worker), 0);
  grpc_shutdown_blocking();
}

/* The test pattern: every int32 value, wrapping, in a scrambled order. */
static int32_t value_at(uint64_t i) { return (int32_t)(uint32_t)(i * 2654435761u); }

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct checker {
  uint64_t checked; /* elements */
  int bad;
} checker;

/* A downloaded chunk of x + 1, at element offset / 4. */
static int check_chunk(void *ctx, uint64_t offset, const void *data, size_t len) {
  checker *c = ctx;
  const int32_t *v = data;
  if (offset % 4 || len % 4) return -1;
  for (size_t k = 0; k < len / 4; k++) {
    uint64_t i = offset / 4 + k;
    if (v[k] != (int32_t)((uint32_t)value_at(i) + 1u)) c->bad = 1;
  }
  c->checked += len / 4;
  return c->bad ? -1 : 0;
}

START_TEST(test_one_gib_round_trip) {
  const char *env = getenv("WT_LARGE_MIB");
  const int64_t mib = env ? atoll(env) : 1024;
  ck_assert_int_gt(mib, 0);
  const int64_t numel = mib * (CHUNK / 4);
  const uint64_t nbytes = (uint64_t)numel * 4;
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);

  int32_t *chunk = malloc(CHUNK);
  int64_t sum = 0;
  double t0 = seconds(), generating = 0;
  for (uint64_t off = 0; off < nbytes; off += CHUNK) {
    double g0 = seconds();
    for (uint32_t k = 0; k < CHUNK / 4; k++) {
      chunk[k] = value_at(off / 4 + k);
      sum += chunk[k];
    }
    generating += seconds() - g0;
    ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_INT32, numel, off, chunk, CHUNK), 0);
  }
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  double upload = seconds() - t0 - generating;
  free(chunk);

  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_ADD_SCALAR, 2, MT_INT32, 1, &numel);
  n->attrs->s0 = 1;
  wt_view x = wt_view_of(1, 1, &numel);
  wt_graph_input(&g, &x);
  n = wt_graph_node(&g, MTI_OP_SUM, 3, MT_INT64, 0, NULL);
  n->attrs->dims_mask = 1;
  wt_graph_input(&g, &x);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);

  int64_t total = 0;
  size_t got;
  wt_view vs = wt_view_of(3, 0, NULL);
  ck_assert_int_eq(wt_download(&s, &vs, &total, sizeof total, &got, NULL, 0), MT_OK);
  ck_assert(total == sum);

  checker c = {0, 0};
  wt_view y = wt_view_of(2, 1, &numel);
  t0 = seconds();
  ck_assert_int_eq(wt_download_each(&s, &y, check_chunk, &c, NULL, 0), MT_OK);
  double download = seconds() - t0;
  ck_assert(!c.bad);
  ck_assert_uint_eq(c.checked, (uint64_t)numel);

  Modaltensor__V1__StatsReply *r = wc_stats(channel, s.id);
  ck_assert_uint_eq(r->sessions[0]->counters->bytes_in, nbytes);
  ck_assert_uint_eq(r->sessions[0]->counters->live_bytes, 2 * nbytes + 8);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  const uint64_t ids[3] = {1, 2, 3};
  ck_assert_int_eq(wt_free(&s, 3, ids), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  r = wc_stats(channel, s.id);
  ck_assert_uint_eq(r->sessions[0]->counters->live_bytes, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  printf("%lld MiB: upload %.2f GB/s, download (checked) %.2f GB/s\n", (long long)mib,
         (double)nbytes / upload / 1e9, (double)nbytes / download / 1e9);
}
END_TEST

int main(void) {
  Suite *s = suite_create("worker-large");
  TCase *tc = tcase_create("large");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 1500);
  tcase_add_test(tc, test_one_gib_round_trip);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
