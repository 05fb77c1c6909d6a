/*
 * test_worker_wire.c - modaltensor-worker against hostile or broken input,
 * authentication, its command line and its shutdown.
 *
 * After each bad input the test checks that the worker still serves a new
 * client (wt_check_serving), and the fixture checks that it exits cleanly.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/protocol.h"
#include "options.h" /* MTW_ENV_TOKEN */
#include "worker_proc.h"
#include "wt_session.h"

#define TOKEN "s3cret-token-for-tests"
#define ADMIN "adm1n-token-for-tests"

static wt_worker worker;
static wc_channel *channel;

static void start_with(const char *const *args, const char *const *env) {
  grpc_init();
  ck_assert_int_eq(wt_worker_start(&worker, args, env), 0);
  channel = wc_connect(worker.addr, NULL);
}

static void setup(void) { start_with(NULL, NULL); }

static void setup_small_memory(void) {
  static const char *const args[] = {"--max-memory", "1M", NULL};
  start_with(args, NULL);
}

static void setup_token_env(void) {
  static const char *const env[] = {MTW_ENV_TOKEN "=" TOKEN, NULL};
  start_with(NULL, env);
}

static void setup_token_flag(void) {
  static const char *const args[] = {"--token", TOKEN, NULL};
  start_with(args, NULL);
}

static void setup_admin(void) {
  static const char *const args[] = {"--token", TOKEN, "--admin-token", ADMIN, NULL};
  start_with(args, NULL);
}

static void setup_session_quota(void) {
  static const char *const args[] = {"--session-max-memory", "1M", NULL};
  start_with(args, NULL);
}

static void setup_fair_share(void) {
  static const char *const args[] = {"--max-memory", "4M", NULL};
  start_with(args, NULL);
}

static void teardown(void) {
  wc_channel_free(channel);
  channel = NULL;
  ck_assert_int_eq(wt_worker_stop(&worker), 0);
  grpc_shutdown_blocking();
}

static void open_session(wt_session *s) { ck_assert_int_eq(wt_open(channel, s), 0); }

static void assert_still_serving(void) {
  ck_assert_msg(wt_check_serving(worker.addr, NULL) == 0, "the worker stopped serving");
}

/* Ends s expecting the worker to have ended it with code. */
static void expect_call_ended(wt_session *s, grpc_status_code code, const char *needle) {
  ck_assert_ptr_null(wc_stream_recv(s->stream));
  char details[512];
  ck_assert_int_eq(wc_stream_finish(s->stream, details, sizeof details), code);
  if (needle) ck_assert_msg(strstr(details, needle), "details: %s", details);
  wc_stream_free(s->stream);
  s->stream = NULL;
}

/* A sync that must report status code, with needle in its message. */
static void expect_sync(wt_session *s, int code, const char *needle) {
  char msg[1024];
  ck_assert_int_eq(wt_sync(s, msg, sizeof msg), code);
  if (needle) ck_assert_msg(strstr(msg, needle), "message: %s", msg);
}

static void expect_download_error(wt_session *s, const wt_view *v, int code, const char *needle) {
  char msg[1024], buf[64];
  size_t got;
  ck_assert_int_eq(wt_download(s, v, buf, sizeof buf, &got, msg, sizeof msg), code);
  if (needle) ck_assert_msg(strstr(msg, needle), "message: %s", msg);
}

/* ------------------------------------------------------- broken messages */

START_TEST(test_garbage_bytes) {
  wt_session s;
  open_session(&s);
  const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x7a};
  ck_assert_int_eq(wc_stream_send_bytes(s.stream, garbage, sizeof garbage), 0);
  expect_call_ended(&s, GRPC_STATUS_INVALID_ARGUMENT, "do not decode");
  assert_still_serving();
}
END_TEST

START_TEST(test_oversized_message) {
  wt_session s;
  open_session(&s);
  size_t len = (16u << 20) + 1; /* one byte over the worker's limit */
  char *big = calloc(1, len);
  wc_stream_send_bytes(s.stream, big, len); /* may fail: the worker refuses it */
  free(big);
  ck_assert_ptr_null(wc_stream_recv(s.stream));
  ck_assert_int_eq(wc_stream_finish(s.stream, NULL, 0), GRPC_STATUS_RESOURCE_EXHAUSTED);
  wc_stream_free(s.stream);
  assert_still_serving();
}
END_TEST

START_TEST(test_truncated_message) {
  wt_session s;
  open_session(&s);
  uint8_t data[100] = {0};
  Modaltensor__V1__Upload u = MODALTENSOR__V1__UPLOAD__INIT;
  u.id = 1;
  u.dtype = MT_UINT8;
  u.numel = 100;
  u.data.data = data;
  u.data.len = sizeof data;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD;
  m.upload = &u;
  uint8_t packed[256];
  size_t len = modaltensor__v1__client_message__pack(&m, packed);
  ck_assert_uint_gt(len, 100);
  ck_assert_int_eq(wc_stream_send_bytes(s.stream, packed, len / 2), 0);
  expect_call_ended(&s, GRPC_STATUS_INVALID_ARGUMENT, "do not decode");
  assert_still_serving();
}
END_TEST

START_TEST(test_message_before_open) {
  wc_stream *st = wc_stream_open(channel, WC_METHOD("Session"), WT_TIMEOUT_MS);
  Modaltensor__V1__Sync sync = MODALTENSOR__V1__SYNC__INIT;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &sync;
  ck_assert_int_eq(wc_stream_send(st, &m), 0);
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(st);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED);
  ck_assert_int_eq(r->opened->status->code, MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(r->opened->status->message, "must be Open"));
  wc_message_free(r);
  ck_assert_int_eq(wc_stream_finish(st, NULL, 0), GRPC_STATUS_INVALID_ARGUMENT);
  wc_stream_free(st);

  /* garbage as the first message */
  st = wc_stream_open(channel, WC_METHOD("Session"), WT_TIMEOUT_MS);
  ck_assert_int_eq(wc_stream_send_bytes(st, "\x0a\xff", 2), 0);
  r = wc_stream_recv(st);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->opened->status->code, MT_ERR_INVALID_ARGUMENT);
  wc_message_free(r);
  ck_assert_int_eq(wc_stream_finish(st, NULL, 0), GRPC_STATUS_INVALID_ARGUMENT);
  wc_stream_free(st);
  assert_still_serving();
}
END_TEST

START_TEST(test_second_open_and_empty_message) {
  wt_session s;
  open_session(&s);
  Modaltensor__V1__Open o = wt_open_message();
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &o;
  ck_assert_int_eq(wc_stream_send(s.stream, &m), 0);
  expect_call_ended(&s, GRPC_STATUS_INVALID_ARGUMENT, "second Open");

  open_session(&s);
  ck_assert_int_eq(wc_stream_send_bytes(s.stream, "", 0), 0); /* a ClientMessage of no kind */
  expect_call_ended(&s, GRPC_STATUS_INVALID_ARGUMENT, "no kind");
  assert_still_serving();
}
END_TEST

START_TEST(test_unknown_method_and_bad_unary) {
  uint8_t *reply;
  size_t len;
  ck_assert_int_eq(wc_unary(channel, WC_METHOD("Nope"), "", 0, &reply, &len, NULL, 0, 30000),
                   GRPC_STATUS_UNIMPLEMENTED);
  ck_assert_int_eq(wc_unary(channel, WC_METHOD("Hello"), "\xff\xff", 2, &reply, &len, NULL, 0,
                            30000),
                   GRPC_STATUS_INVALID_ARGUMENT);
  wc_stream *st = wc_stream_open(channel, "/other.Service/Session", WT_TIMEOUT_MS);
  ck_assert_int_eq(wc_stream_finish(st, NULL, 0), GRPC_STATUS_UNIMPLEMENTED);
  wc_stream_free(st);
  assert_still_serving();
}
END_TEST

/* ----------------------------------------------------------- bad values */

START_TEST(test_unknown_op) {
  wt_session s;
  open_session(&s);
  const int64_t s2[1] = {2};
  const float a[2] = {1, 2};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  wt_view v1 = wt_view_of(1, 1, s2);
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_NEG, 2, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &v1);
  n->op = 9999;
  n = wt_graph_node(&g, MTI_OP_NEG, 3, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &v1);
  n->op = MTI_OP_COUNT; /* one past the last */
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "op 9999 is not an op");
  wt_view v2 = wt_view_of(2, 1, s2), v3 = wt_view_of(3, 1, s2);
  expect_download_error(&s, &v2, MT_ERR_INVALID_ARGUMENT, "mt_op (node 0 of graph 1)");
  expect_download_error(&s, &v3, MT_ERR_INVALID_ARGUMENT, "is not an op");
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_bad_ids) {
  wt_session s;
  open_session(&s);
  const int64_t s2[1] = {2};
  const float a[2] = {1, 2};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  wt_view v1 = wt_view_of(1, 1, s2), v77 = wt_view_of(77, 1, s2), v0 = wt_view_of(0, 1, s2);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 2, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &v77);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "input 0: no storage 77 in this session");

  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 3, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &v0);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "no storage 0");

  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 1, MT_FLOAT32, 1, s2); /* output id in use */
  wt_graph_input(&g, &v1);
  wt_graph_node(&g, MTI_OP_NEG, 0, MT_FLOAT32, 1, s2); /* no output id */
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "storage 1 already exists");
  const float still[2] = {1, 2};
  float buf[2];
  size_t got;
  ck_assert_int_eq(wt_download(&s, &v1, buf, sizeof buf, &got, NULL, 0), MT_OK);
  ck_assert_mem_eq(buf, still, sizeof still); /* not overwritten */

  const uint64_t ids[3] = {0, 123456789, UINT64_MAX};
  ck_assert_int_eq(wt_free(&s, 3, ids), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "free: no storage 0");
  expect_download_error(&s, &v77, MT_ERR_INVALID_ARGUMENT, "no storage 77");
  /* uploads into id 0 or an id in use */
  ck_assert_int_eq(wt_upload(&s, 0, MT_FLOAT32, 2, a, 1 << 20), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "0 is not an id");
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "the id is in use");
  /* the session still works */
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 5, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  wt_view v5 = wt_view_of(5, 1, s2);
  ck_assert_int_eq(wt_download(&s, &v5, buf, sizeof buf, &got, NULL, 0), MT_OK);
  ck_assert(buf[0] == -1 && buf[1] == -2);
  expect_sync(&s, MT_OK, NULL);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_overflowing_shapes) {
  wt_session s;
  open_session(&s);
  /* numel * dtype size overflows */
  ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_FLOAT32, INT64_MAX / 2, 0, NULL, 0), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "too large");
  ck_assert_int_eq(wt_upload_chunk(&s, 2, MT_FLOAT32, -5, 0, NULL, 0), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "negative");
  ck_assert_int_eq(wt_upload_chunk(&s, 3, 99, 4, 0, NULL, 0), 0);
  expect_sync(&s, MT_ERR_DTYPE, "dtype 99");
  wt_view v1 = wt_view_of(1, 0, NULL);
  expect_download_error(&s, &v1, MT_ERR_INVALID_ARGUMENT, "too large");

  /* a creation op whose shape overflows */
  const int64_t huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_FULL, 10, MT_FLOAT32, 2, huge);
  n->attrs->dtype = MT_FLOAT32;
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "byte size overflows");

  /* broadcast views of one element whose result would overflow */
  const float one = 1;
  ck_assert_int_eq(wt_upload(&s, 4, MT_FLOAT32, 1, &one, 1 << 20), 0);
  const int64_t tall[2] = {INT64_C(1) << 40, 1}, wide[2] = {1, INT64_C(1) << 40},
                zero[2] = {0, 0};
  wt_view vt = wt_view_strided(4, 0, 2, tall, zero), vw = wt_view_strided(4, 0, 2, wide, zero);
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 11, MT_FLOAT32, 2, huge);
  wt_graph_input(&g, &vt);
  wt_graph_input(&g, &vw);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "overflows");

  /* a view whose own shape overflows, and one with too many dims */
  const int64_t big[3] = {INT64_C(1) << 62, 4, 4};
  wt_view vb = wt_view_of(4, 3, big);
  expect_download_error(&s, &vb, MT_ERR_INVALID_ARGUMENT, "overflows");
  /* wt_view holds at most 8 dims: make the sent view 9-d by hand */
  const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  wt_graph_init(&g);
  n = wt_graph_node(&g, MTI_OP_NEG, 12, MT_FLOAT32, 0, NULL);
  wt_view v8 = wt_view_of(4, 8, nine);
  wt_graph_input(&g, &v8);
  g.inputs[0][0].n_shape = 9;
  g.inputs[0][0].shape = (int64_t *)nine;
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_SHAPE, "9 dims");
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_views_outside_storage) {
  wt_session s;
  open_session(&s);
  float ten[10];
  for (int i = 0; i < 10; i++) ten[i] = (float)i;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 10, ten, 1 << 20), 0);
  const int64_t s4[1] = {4}, s2[1] = {2}, s22[2] = {2, 2};
  float buf[16];
  size_t got;
  /* the largest legal strided view: elements 0, 3, 6, 9 */
  wt_view ok = wt_view_strided(1, 0, 1, s4, (const int64_t[]){3});
  ck_assert_int_eq(wt_download(&s, &ok, buf, sizeof buf, &got, NULL, 0), MT_OK);
  ck_assert(buf[3] == 9);
  struct {
    int64_t offset;
    int ndim;
    const int64_t *shape;
    int64_t strides[2];
  } bad[] = {
      {0, 1, s4, {4, 0}},          /* reaches element 12 */
      {0, 1, s4, {-1, 0}},         /* reaches element -3 */
      {-1, 1, s2, {1, 0}},         /* negative offset */
      {10, 1, s2, {1, 0}},         /* starts past the end */
      {9, 1, s2, {1, 0}},          /* ends past the end */
      {0, 1, s2, {INT64_MIN, 0}},  /* a stride with no magnitude */
      {5, 1, s2, {INT64_MAX, 0}},  /* a stride far outside */
      {0, 2, s22, {INT64_C(1) << 62, INT64_C(1) << 62}}, /* sums that would overflow */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    wt_view v = wt_view_strided(1, bad[i].offset, bad[i].ndim, bad[i].shape, bad[i].strides);
    expect_download_error(&s, &v, MT_ERR_INVALID_ARGUMENT, "outside the storage");
    /* the same view as a node input: a deferred error */
    wt_graph g;
    wt_graph_init(&g);
    wt_graph_node(&g, MTI_OP_NEG, 100 + i, MT_FLOAT32, bad[i].ndim, bad[i].shape);
    wt_graph_input(&g, &v);
    ck_assert_int_eq(wt_graph_send(&s, &g), 0);
    expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "outside the storage");
  }
  /* strides that do not match the dims */
  wt_view mismatch = wt_view_strided(1, 0, 2, s22, (const int64_t[]){2, 1});
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 200, MT_FLOAT32, 2, s22);
  wt_graph_input(&g, &mismatch);
  g.inputs[0][0].n_strides = 1;
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "1 strides for 2 dims");
  /* a negative dim */
  const int64_t negative[1] = {-2};
  wt_view vneg = wt_view_of(1, 1, negative);
  expect_download_error(&s, &vneg, MT_ERR_SHAPE, "negative");
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_bad_upload_sequences) {
  wt_session s;
  open_session(&s);
  uint8_t data[64] = {0};
  /* a chunk at the wrong offset fails the storage; later chunks are ignored */
  ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_UINT8, 64, 0, data, 16), 0);
  ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_UINT8, 64, 32, data, 16), 0);
  ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_UINT8, 64, 16, data, 16), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "offset 32, expected 16");
  wt_view v1 = wt_view_of(1, 1, (const int64_t[]){64});
  expect_download_error(&s, &v1, MT_ERR_INVALID_ARGUMENT, "offset 32, expected 16");
  /* a chunk past the end */
  ck_assert_int_eq(wt_upload_chunk(&s, 2, MT_UINT8, 8, 0, data, 16), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "passes the end");
  /* a chunk with another dtype than the first */
  ck_assert_int_eq(wt_upload_chunk(&s, 3, MT_INT16, 8, 0, data, 8), 0);
  ck_assert_int_eq(wt_upload_chunk(&s, 3, MT_INT32, 8, 8, data, 8), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "the first said");
  /* a continuation for a storage no first chunk made */
  ck_assert_int_eq(wt_upload_chunk(&s, 4, MT_UINT8, 8, 4, data, 4), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "no chunk at offset 0");
  /* an incomplete upload cannot be used or read */
  ck_assert_int_eq(wt_upload_chunk(&s, 5, MT_UINT8, 64, 0, data, 32), 0);
  wt_view v5 = wt_view_of(5, 1, (const int64_t[]){64});
  expect_download_error(&s, &v5, MT_ERR_INVALID_ARGUMENT, "incomplete (32 of 64 bytes");
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 6, MT_UINT8, 1, (const int64_t[]){64});
  wt_graph_input(&g, &v5);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "incomplete");
  /* ... until its last chunk arrives */
  ck_assert_int_eq(wt_upload_chunk(&s, 5, 0, 0, 32, data, 32), 0);
  char buf[64];
  size_t got;
  ck_assert_int_eq(wt_download(&s, &v5, buf, sizeof buf, &got, NULL, 0), MT_OK);
  ck_assert_uint_eq(got, 64);
  expect_sync(&s, MT_OK, NULL);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_bad_nodes) {
  wt_session s;
  open_session(&s);
  const int64_t s4[1] = {4}, s2[1] = {2};
  const float a[4] = {1, 2, 3, 4};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, 4, a, 1 << 20), 0);
  wt_view v1 = wt_view_of(1, 1, s4);
  wt_graph g;
  /* the client's idea of the output differs from the worker's */
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_INT32, 1, s4);
  wt_graph_input(&g, &v1);
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "the client expects int32 [4], the worker infers float32 [4]");
  /* wrong arity */
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 4, MT_FLOAT32, 1, s4);
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "takes 2 inputs, got 1");
  /* attributes out of range */
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_SOFTMAX, 5, MT_FLOAT32, 1, s4);
  n->attrs->dim = 3;
  wt_graph_input(&g, &v1);
  n = wt_graph_node(&g, MTI_OP_CAST, 6, MT_FLOAT32, 1, s4);
  n->attrs->dtype = 42;
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_SHAPE, "mt_softmax (node 0 of graph 3): dim: dim 3 is out of range");
  /* into: only copy, no overlapping target, shapes must agree */
  const int64_t zero_stride[1] = {0};
  wt_view overlapping = wt_view_strided(2, 0, 1, s4, zero_stride);
  wt_view half = wt_view_of(2, 1, s2);
  wt_graph_init(&g);
  n = wt_graph_node(&g, MTI_OP_NEG, 0, MT_FLOAT32, 1, s4);
  wt_graph_input(&g, &v1);
  wt_graph_into(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "only copy writes into");
  wt_graph_init(&g);
  n = wt_graph_node(&g, MTI_OP_COPY, 0, MT_FLOAT32, 1, s4);
  n->attrs->dtype = MT_FLOAT32;
  wt_graph_input(&g, &v1);
  wt_graph_into(&g, &overlapping);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "overlap");
  wt_graph_init(&g);
  n = wt_graph_node(&g, MTI_OP_COPY, 0, MT_FLOAT32, 1, s4);
  n->attrs->dtype = MT_FLOAT32;
  wt_graph_input(&g, &v1);
  wt_graph_into(&g, &half);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_INVALID_ARGUMENT, "into: the view is float32 [2]");
  /* storage 2 was never touched by the refused copies */
  float buf[4];
  size_t got;
  wt_view v2 = wt_view_of(2, 1, s4);
  ck_assert_int_eq(wt_download(&s, &v2, buf, sizeof buf, &got, NULL, 0), MT_OK);
  ck_assert_mem_eq(buf, a, sizeof a);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

START_TEST(test_memory_limit) {
  wt_session s;
  open_session(&s);
  static uint8_t data[2 << 20];
  /* 2 MiB do not fit in 1 MiB */
  ck_assert_int_eq(wt_upload(&s, 1, MT_UINT8, 2 << 20, data, 1 << 20), 0);
  expect_sync(&s, MT_ERR_OUT_OF_MEMORY, "memory");
  wt_view v1 = wt_view_of(1, 1, (const int64_t[]){2 << 20});
  expect_download_error(&s, &v1, MT_ERR_OUT_OF_MEMORY, "upload to storage 1");
  /* 512 KiB do; a result of 512 KiB more does not */
  const int64_t half[1] = {512 << 10};
  ck_assert_int_eq(wt_upload(&s, 2, MT_UINT8, half[0], data, 1 << 20), 0);
  wt_view v2 = wt_view_of(2, 1, half);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_UINT8, 1, half);
  wt_graph_input(&g, &v2);
  wt_graph_input(&g, &v2);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  expect_sync(&s, MT_ERR_OUT_OF_MEMORY, "mt_add (node 0 of graph 1): out of memory");
  const uint64_t ids[3] = {1, 2, 3};
  ck_assert_int_eq(wt_free(&s, 3, ids), 0);
  expect_sync(&s, MT_OK, NULL);
  /* freed memory is usable again */
  ck_assert_int_eq(wt_upload(&s, 4, MT_UINT8, 900 << 10, data, 1 << 20), 0);
  expect_sync(&s, MT_OK, NULL);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  assert_still_serving();
}
END_TEST

/* ----------------------------------------------------------------- auth */

static void expect_stats(wc_channel *ch, uint64_t session_id, int code, size_t sessions,
                         int total);

static void check_auth(void) {
  wc_channel *none = wc_connect(worker.addr, NULL), *wrong = wc_connect(worker.addr, "wrong"),
             *prefix = wc_connect(worker.addr, TOKEN "x");
  wc_channel *bad[3] = {none, wrong, prefix};
  for (int i = 0; i < 3; i++) {
    uint8_t *reply;
    size_t len;
    char details[256];
    ck_assert_int_eq(wc_unary(bad[i], WC_METHOD("Health"), "", 0, &reply, &len, details,
                              sizeof details, 30000),
                     GRPC_STATUS_UNAUTHENTICATED);
    wt_session s;
    ck_assert_int_ne(wt_open(bad[i], &s), 0);
    ck_assert_int_eq(wt_close(&s), GRPC_STATUS_UNAUTHENTICATED);
    wc_channel_free(bad[i]);
  }
  ck_assert_int_eq(wt_check_serving(worker.addr, TOKEN), 0);
  /* a client reads its own session's counters, not the worker's */
  wc_channel *good = wc_connect(worker.addr, TOKEN);
  wt_session s;
  ck_assert_int_eq(wt_open(good, &s), 0);
  expect_stats(good, s.id, MT_OK, 1, 0);
  expect_stats(good, 0, MT_ERR_INVALID_ARGUMENT, 0, 0);
  ck_assert_int_eq(wt_close(&s), GRPC_STATUS_OK);
  wc_channel_free(good);
}

/* Stats from ch for session_id: the status, how many sessions came back
 * and whether the worker's total did. */
static void expect_stats(wc_channel *ch, uint64_t session_id, int code, size_t sessions,
                         int total) {
  Modaltensor__V1__StatsReply *r = wc_stats(ch, session_id);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status->code, code);
  if (code != MT_OK)
    ck_assert_msg(session_id || strstr(r->status->message, "--admin-token"), "message: %s",
                  r->status->message);
  ck_assert_uint_eq(r->n_sessions, sessions);
  ck_assert_int_eq(r->total != NULL, total);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* With --admin-token, that token reads every session's counters and the
 * worker's; the client token only its own session's, and guessing another
 * session's id fails (ids are random). */
START_TEST(test_stats_privacy) {
  wc_channel *client = wc_connect(worker.addr, TOKEN), *admin = wc_connect(worker.addr, ADMIN);
  wt_session a, b;
  ck_assert_int_eq(wt_open(client, &a), 0);
  ck_assert_int_eq(wt_open(client, &b), 0);
  ck_assert(a.id != b.id && a.id > 1000 && b.id > 1000);
  expect_stats(client, a.id, MT_OK, 1, 0);
  expect_stats(client, a.id + 1, MT_ERR_INVALID_ARGUMENT, 0, 0);
  expect_stats(client, 0, MT_ERR_INVALID_ARGUMENT, 0, 0);
  expect_stats(admin, 0, MT_OK, 2, 1);
  expect_stats(admin, b.id, MT_OK, 1, 1);
  /* the admin token is also a client's */
  ck_assert_int_eq(wt_check_serving(worker.addr, ADMIN), 0);
  ck_assert_int_eq(wt_close(&a), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_close(&b), GRPC_STATUS_OK);
  wc_channel_free(client);
  wc_channel_free(admin);
}
END_TEST

/* --session-max-memory caps one session; another session still gets its
 * own share, and the refusal says which limit it hit. */
START_TEST(test_session_quota) {
  static uint8_t data[768 << 10];
  wt_session a, b;
  open_session(&a);
  open_session(&b);
  ck_assert_int_eq(wt_upload(&a, 1, MT_UINT8, 768 << 10, data, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&a, 2, MT_UINT8, 768 << 10, data, 1 << 20), 0);
  expect_sync(&a, MT_ERR_OUT_OF_MEMORY, "this session's share of 1048576");
  ck_assert_int_eq(wt_upload(&b, 1, MT_UINT8, 768 << 10, data, 1 << 20), 0);
  expect_sync(&b, MT_OK, NULL);
  ck_assert_int_eq(wt_close(&a), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_close(&b), GRPC_STATUS_OK);
}
END_TEST

/* Without --session-max-memory a session's share is the device's budget
 * over the sessions open: alone, a session may use 3 MiB of 4; with a
 * second open, it may not grow past 2. */
START_TEST(test_fair_share) {
  static uint8_t data[1 << 20];
  wt_session a, b;
  open_session(&a);
  for (uint64_t id = 1; id <= 3; id++)
    ck_assert_int_eq(wt_upload(&a, id, MT_UINT8, 1 << 20, data, 1 << 20), 0);
  expect_sync(&a, MT_OK, NULL);
  open_session(&b);
  ck_assert_int_eq(wt_upload(&a, 4, MT_UINT8, 1 << 10, data, 1 << 20), 0);
  expect_sync(&a, MT_ERR_OUT_OF_MEMORY, "this session's share of 2097152");
  ck_assert_int_eq(wt_upload(&b, 1, MT_UINT8, 512 << 10, data, 1 << 20), 0);
  expect_sync(&b, MT_OK, NULL);
  ck_assert_int_eq(wt_close(&a), GRPC_STATUS_OK);
  ck_assert_int_eq(wt_close(&b), GRPC_STATUS_OK);
}
END_TEST

START_TEST(test_token_from_environment) { check_auth(); }
END_TEST

START_TEST(test_token_from_flag) { check_auth(); }
END_TEST

/* ------------------------------------------------------ process behaviour */

START_TEST(test_sigterm_with_open_session) {
  wt_session s;
  open_session(&s);
  static float block[1 << 16];
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1 << 16, block, 1 << 20), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  ck_assert_int_eq(wt_worker_stop(&worker), 0); /* SIGTERM: clean exit */
  ck_assert_ptr_null(wc_stream_recv(s.stream));
  ck_assert_int_ne(wc_stream_finish(s.stream, NULL, 0), GRPC_STATUS_OK);
  wc_stream_free(s.stream);
  wc_channel_free(channel);
  channel = NULL;
  grpc_shutdown_blocking();
}
END_TEST

START_TEST(test_command_line) {
  char err[2048];
  static const char *const help[] = {"--help", NULL};
  ck_assert_int_eq(wt_worker_run(help, err, sizeof err), 0);
  /* Without a usable GPU --backend cuda refuses to start and says why (a
   * build without CUDA, or no device); with one it serves, then idles out. */
  static const char *const cuda[] = {"--backend", "cuda", "--listen", "127.0.0.1:0",
                                     "--idle-exit", "1", NULL};
  int rc = wt_worker_run(cuda, err, sizeof err);
  ck_assert_int_ge(rc, 0);
  if (rc != 0)
    ck_assert_msg(rc == 1 && (strstr(err, "without the CUDA backend") ||
                              strstr(err, "no CUDA device is visible")),
                  "status %d, stderr: %s", rc, err);
  static const char *const unknown[] = {"--frobnicate", NULL};
  ck_assert_int_eq(wt_worker_run(unknown, err, sizeof err), 2);
  ck_assert_ptr_nonnull(strstr(err, "--frobnicate"));
  static const char *const bad_memory[] = {"--max-memory", "lots", NULL};
  ck_assert_int_eq(wt_worker_run(bad_memory, err, sizeof err), 2);
  static const char *const bad_level[] = {"--log-level=loud", NULL};
  ck_assert_int_eq(wt_worker_run(bad_level, err, sizeof err), 2);
  static const char *const missing[] = {"--listen", NULL};
  ck_assert_int_eq(wt_worker_run(missing, err, sizeof err), 2);
  static const char *const unbindable[] = {"--listen", "unix:/nonexistent-dir/worker.sock", NULL};
  ck_assert_int_eq(wt_worker_run(unbindable, err, sizeof err), 1);
  ck_assert_ptr_nonnull(strstr(err, "cannot listen"));
}
END_TEST

static TCase *tcase(const char *name, void (*setup_fn)(void)) {
  TCase *tc = tcase_create(name);
  if (setup_fn) tcase_add_checked_fixture(tc, setup_fn, teardown);
  tcase_set_timeout(tc, 240);
  return tc;
}

static void no_teardown_setup(void) {
  grpc_init();
  ck_assert_int_eq(wt_worker_start(&worker, NULL, NULL), 0);
  channel = wc_connect(worker.addr, NULL);
}

static Suite *wire_suite(void) {
  Suite *s = suite_create("worker-wire");
  TCase *tc = tcase("malformed", setup);
  tcase_add_test(tc, test_garbage_bytes);
  tcase_add_test(tc, test_oversized_message);
  tcase_add_test(tc, test_truncated_message);
  tcase_add_test(tc, test_message_before_open);
  tcase_add_test(tc, test_second_open_and_empty_message);
  tcase_add_test(tc, test_unknown_method_and_bad_unary);
  suite_add_tcase(s, tc);

  tc = tcase("bad-values", setup);
  tcase_add_test(tc, test_unknown_op);
  tcase_add_test(tc, test_bad_ids);
  tcase_add_test(tc, test_overflowing_shapes);
  tcase_add_test(tc, test_views_outside_storage);
  tcase_add_test(tc, test_bad_upload_sequences);
  tcase_add_test(tc, test_bad_nodes);
  suite_add_tcase(s, tc);

  tc = tcase("memory-limit", setup_small_memory);
  tcase_add_test(tc, test_memory_limit);
  suite_add_tcase(s, tc);

  tc = tcase("auth-env", setup_token_env);
  tcase_add_test(tc, test_token_from_environment);
  suite_add_tcase(s, tc);
  tc = tcase("auth-flag", setup_token_flag);
  tcase_add_test(tc, test_token_from_flag);
  suite_add_tcase(s, tc);
  tc = tcase("auth-admin", setup_admin);
  tcase_add_test(tc, test_stats_privacy);
  suite_add_tcase(s, tc);

  tc = tcase("session-quota", setup_session_quota);
  tcase_add_test(tc, test_session_quota);
  suite_add_tcase(s, tc);
  tc = tcase("fair-share", setup_fair_share);
  tcase_add_test(tc, test_fair_share);
  suite_add_tcase(s, tc);

  /* this one stops the worker itself */
  tc = tcase("shutdown", NULL);
  tcase_add_checked_fixture(tc, no_teardown_setup, NULL);
  tcase_add_test(tc, test_sigterm_with_open_session);
  suite_add_tcase(s, tc);

  tc = tcase("command-line", NULL);
  tcase_add_test(tc, test_command_line);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(wire_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
