/*
 * test_worker_content.c - content-addressed uploads at the wire: Content
 * with and without bytes, Need and the wait for its bytes, checks of the
 * bytes against their digest, live storages of another session as a
 * source, Opened.held, and malformed Content messages (each a clear
 * deferred error; the worker goes on serving); graph templates and Invoke.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/protocol.h"
#include "worker_proc.h"
#include "wt_session.h"

#define NUMEL (512 * 1024) /* float32: 2 MiB */

static wt_worker worker;
static wc_channel *channel;
static float *values;
static uint8_t digest[MTI_SHA256_BYTES];

static void setup(void) {
  grpc_init();
  ck_assert_int_eq(wt_worker_start(&worker, NULL, NULL), 0);
  channel = wc_connect(worker.addr, NULL);
  values = malloc(NUMEL * sizeof *values);
  for (int i = 0; i < NUMEL; i++) values[i] = (float)i * 0.5f;
  ck_assert_int_eq(mti_sha256("test", values, NUMEL * sizeof *values, digest), MT_OK);
}

static void teardown(void) {
  free(values);
  wc_channel_free(channel);
  ck_assert_int_eq(wt_worker_stop(&worker), 0);
  grpc_shutdown_blocking();
}

static void send_content(wt_session *s, uint64_t id, int64_t numel, const uint8_t *d, size_t dlen,
                         int bytes_follow) {
  Modaltensor__V1__Content c = MODALTENSOR__V1__CONTENT__INIT;
  c.id = id;
  c.dtype = MT_FLOAT32;
  c.numel = numel;
  c.digest = (ProtobufCBinaryData){dlen, (uint8_t *)d};
  c.bytes_follow = bytes_follow;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_CONTENT;
  m.content = &c;
  ck_assert_int_eq(wc_stream_send(s->stream, &m), 0);
}

static void send_sync(wt_session *s, uint64_t request_id) {
  Modaltensor__V1__Sync sync = MODALTENSOR__V1__SYNC__INIT;
  sync.request_id = request_id;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &sync;
  ck_assert_int_eq(wc_stream_send(s->stream, &m), 0);
}

static void expect_sync(wt_session *s, int code, const char *needle) {
  char msg[1024];
  ck_assert_int_eq(wt_sync(s, msg, sizeof msg), code);
  if (needle) ck_assert_msg(strstr(msg, needle), "message: %s", msg);
}

static void expect_values(wt_session *s, uint64_t id) {
  int64_t n = NUMEL;
  wt_view v = wt_view_of(id, 1, &n);
  float *got = malloc(NUMEL * sizeof *got);
  size_t len;
  char msg[256];
  ck_assert_int_eq(wt_download(s, &v, got, NUMEL * sizeof *got, &len, msg, sizeof msg), 0);
  ck_assert_uint_eq(len, NUMEL * sizeof *got);
  ck_assert_int_eq(memcmp(got, values, len), 0);
  free(got);
}

/* Content with its bytes: kept once they match. */
static void upload_named(wt_session *s, uint64_t id) {
  send_content(s, id, NUMEL, digest, sizeof digest, 1);
  ck_assert_int_eq(wt_upload(s, id, MT_FLOAT32, NUMEL, values, MTI_CHUNK_BYTES), 0);
  expect_sync(s, 0, NULL);
}

START_TEST(test_need_then_bytes) {
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);
  send_content(&s, 1, NUMEL, digest, sizeof digest, 0);
  send_sync(&s, 7);
  /* The worker holds nothing: it asks at once, and answers the Sync only
   * after the bytes came. */
  Modaltensor__V1__WorkerMessage *m = wc_stream_recv(s.stream);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(m->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_NEED);
  ck_assert_uint_eq(m->need->id, 1);
  ck_assert_uint_eq(m->need->digest.len, sizeof digest);
  ck_assert_int_eq(memcmp(m->need->digest.data, digest, sizeof digest), 0);
  wc_message_free(m);
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, NUMEL, values, MTI_CHUNK_BYTES), 0);
  m = wc_stream_recv(s.stream);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(m->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE);
  ck_assert_uint_eq(m->sync_done->request_id, 7);
  ck_assert_int_eq(m->sync_done->status->code, 0);
  wc_message_free(m);
  expect_values(&s, 1);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_live_storage_of_another_session_serves) {
  wt_session a, b;
  ck_assert_int_eq(wt_open(channel, &a), 0);
  upload_named(&a, 5);
  ck_assert_int_eq(wt_open(channel, &b), 0);
  send_content(&b, 9, NUMEL, digest, sizeof digest, 0);
  expect_sync(&b, 0, NULL); /* no Need came before the SyncDone */
  expect_values(&b, 9);
  ck_assert_int_eq(wt_close(&b), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_close(&a), GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_opened_announces_what_is_held) {
  wt_session a;
  ck_assert_int_eq(wt_open(channel, &a), 0);
  upload_named(&a, 5);
  wc_stream *st = wc_stream_open(channel, WC_METHOD("Session"), WT_TIMEOUT_MS);
  Modaltensor__V1__Open open = wt_open_message();
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &open;
  ck_assert_int_eq(wc_stream_send(st, &m), 0);
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(st);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED);
  int found = 0;
  for (size_t i = 0; i < r->opened->n_held; i++)
    found |= r->opened->held[i].len == sizeof digest &&
             !memcmp(r->opened->held[i].data, digest, sizeof digest);
  ck_assert_msg(found, "Opened.held lacks the live upload's digest (%zu held)", r->opened->n_held);
  wc_message_free(r);
  wc_stream_finish(st, NULL, 0);
  wc_stream_free(st);
  ck_assert_int_eq(wt_close(&a), GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_bytes_that_do_not_match_fail) {
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);
  uint8_t other[MTI_SHA256_BYTES];
  memcpy(other, digest, sizeof other);
  other[0] ^= 1;
  send_content(&s, 1, NUMEL, other, sizeof other, 1);
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, NUMEL, values, MTI_CHUNK_BYTES), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "do not match");
  /* nothing was kept under the wrong name: a reference to it is asked for */
  send_content(&s, 2, NUMEL, other, sizeof other, 0);
  send_sync(&s, 3);
  Modaltensor__V1__WorkerMessage *m = wc_stream_recv(s.stream);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(m->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_NEED);
  wc_message_free(m);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_check_serving(worker.addr, NULL), 0);
}
END_TEST

START_TEST(test_malformed_content) {
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);
  send_content(&s, 0, NUMEL, digest, sizeof digest, 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "0 is not an id");
  send_content(&s, 1, NUMEL, digest, 5, 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "a digest of 5 bytes");
  send_content(&s, 2, -4, digest, sizeof digest, 1);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "numel -4");
  send_content(&s, 1, NUMEL, digest, sizeof digest, 0); /* id 1 exists (failed) */
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "in use");
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_check_serving(worker.addr, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------ templates */

#define SMALL 16

static void send_invoke(wt_session *s, uint64_t template_id, size_t n, const uint64_t *ids) {
  Modaltensor__V1__Invoke inv = MODALTENSOR__V1__INVOKE__INIT;
  inv.template_id = template_id;
  inv.n_ids = n;
  inv.ids = (uint64_t *)ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_INVOKE;
  m.invoke = &inv;
  ck_assert_int_eq(wc_stream_send(s->stream, &m), 0);
}

/* Sends out = a + b as template 3 (parameters a, b, out). */
static void send_add_template(wt_session *s, uint64_t a, uint64_t b, uint64_t out) {
  const int64_t n = SMALL;
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, out, MT_FLOAT32, 1, &n);
  wt_view va = wt_view_of(a, 1, &n), vb = wt_view_of(b, 1, &n);
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &vb);
  g.graph.template_id = 3;
  ck_assert_int_eq(wt_graph_send(s, &g), 0);
}

static void expect_small(wt_session *s, uint64_t id, float want) {
  const int64_t n = SMALL;
  wt_view v = wt_view_of(id, 1, &n);
  float got[SMALL];
  size_t len;
  char msg[256];
  ck_assert_int_eq(wt_download(s, &v, got, sizeof got, &len, msg, sizeof msg), 0);
  for (int i = 0; i < SMALL; i++) ck_assert_msg(got[i] == want, "[%d] = %g, want %g", i, got[i], want);
}

START_TEST(test_invoke_runs_the_template_with_new_ids) {
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);
  float ones[SMALL], twos[SMALL];
  for (int i = 0; i < SMALL; i++) ones[i] = 1, twos[i] = 2;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, SMALL, ones, MTI_CHUNK_BYTES), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, SMALL, twos, MTI_CHUNK_BYTES), 0);
  send_add_template(&s, 1, 2, 3);
  expect_sync(&s, 0, NULL);
  expect_small(&s, 3, 3.0f);
  const uint64_t again[] = {3, 2, 4}; /* 4 = 3 + 2 */
  send_invoke(&s, 3, 3, again);
  const uint64_t twice[] = {4, 4, 5}; /* a parameter twice: 5 = 4 + 4 */
  send_invoke(&s, 3, 3, twice);
  expect_sync(&s, 0, NULL);
  expect_small(&s, 4, 5.0f);
  expect_small(&s, 5, 10.0f);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_malformed_invoke) {
  wt_session s;
  ck_assert_int_eq(wt_open(channel, &s), 0);
  float ones[SMALL];
  for (int i = 0; i < SMALL; i++) ones[i] = 1;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, SMALL, ones, MTI_CHUNK_BYTES), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, SMALL, ones, MTI_CHUNK_BYTES), 0);
  const uint64_t ids[] = {1, 2, 9};
  send_invoke(&s, 3, 3, ids);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "no template 3");
  send_add_template(&s, 1, 2, 3);
  expect_sync(&s, 0, NULL);
  send_invoke(&s, 3, 2, ids);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "3 parameters, 2 ids given");
  const uint64_t unknown[] = {77, 1, 9};
  send_invoke(&s, 3, 3, unknown);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "77");
  const uint64_t reuse[] = {1, 1, 2}; /* output 2 exists */
  send_invoke(&s, 3, 3, reuse);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "already exists");
  expect_small(&s, 2, 1.0f); /* untouched */
  expect_small(&s, 3, 2.0f);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_check_serving(worker.addr, NULL), 0);
}
END_TEST

static Suite *content_suite(void) {
  Suite *s = suite_create("worker_content");
  TCase *tc = tcase_create("content");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_need_then_bytes);
  tcase_add_test(tc, test_live_storage_of_another_session_serves);
  tcase_add_test(tc, test_opened_announces_what_is_held);
  tcase_add_test(tc, test_bytes_that_do_not_match_fail);
  tcase_add_test(tc, test_malformed_content);
  suite_add_tcase(s, tc);
  TCase *tt = tcase_create("templates");
  tcase_add_checked_fixture(tt, setup, teardown);
  tcase_set_timeout(tt, 300);
  tcase_add_test(tt, test_invoke_runs_the_template_with_new_ids);
  tcase_add_test(tt, test_malformed_invoke);
  suite_add_tcase(s, tt);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(content_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
