/*
 * test_worker.c - modaltensor-worker sessions: handshake, compute,
 * deferred errors, counters, lifecycle, isolation, concurrency.
 *
 * Every test starts its own worker (on a free loopback port) and stops it
 * with SIGTERM, expecting a clean exit.
 */
#include <check.h>
#include <grpc/grpc.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/protocol.h"
#include "cpu/host_cache.h"
#include "worker_proc.h"
#include "wt_session.h"

static wt_worker worker;
static wc_channel *channel;

static void start_with(const char *const *args) {
  grpc_init();
  ck_assert_int_eq(wt_worker_start(&worker, args, NULL), 0);
  channel = wc_connect(worker.addr, NULL);
}

static void setup(void) { start_with(NULL); }

static void setup_idle(void) {
  static const char *const args[] = {"--idle-timeout", "1", NULL};
  start_with(args);
}

static void teardown(void) {
  wc_channel_free(channel);
  channel = NULL;
  ck_assert_int_eq(wt_worker_stop(&worker), 0);
  grpc_shutdown_blocking();
}

static void open_session(wt_session *s) { ck_assert_int_eq(wt_open(channel, s), 0); }

static void close_session(wt_session *s) { ck_assert_int_eq(wt_close(s), GRPC_STATUS_OK); }

/* Downloads a whole float32 tensor and checks it against want. */
static void expect_f32(wt_session *s, uint64_t id, int ndim, const int64_t *shape,
                       const float *want, size_t n) {
  float *got = calloc(n ? n : 1, sizeof *got);
  size_t bytes = 0;
  char msg[512];
  wt_view v = wt_view_of(id, ndim, shape);
  ck_assert_int_eq(wt_download(s, &v, got, n * sizeof *got, &bytes, msg, sizeof msg), MT_OK);
  ck_assert_uint_eq(bytes, n * sizeof *got);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(fabsf(got[i] - want[i]) <= 1e-5f * (1 + fabsf(want[i])),
                  "element %zu: %g, expected %g", i, (double)got[i], (double)want[i]);
  free(got);
}

static Modaltensor__V1__StatsReply *stats_of(uint64_t session_id) {
  Modaltensor__V1__StatsReply *r = wc_stats(channel, session_id);
  ck_assert_ptr_nonnull(r);
  ck_assert_ptr_nonnull(r->status);
  return r;
}

static void stats_free(Modaltensor__V1__StatsReply *r) {
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Waits until the worker reports no open session (sessions end
 * asynchronously after their stream does); 0 when that happened. */
static int wait_no_sessions(void) {
  for (int i = 0; i < 3000; i++) {
    Modaltensor__V1__StatsReply *r = stats_of(0);
    uint32_t open = r->open_sessions;
    stats_free(r);
    if (open == 0) return 0;
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return -1;
}

/* ------------------------------------------------------------ handshake */

START_TEST(test_hello) {
  Modaltensor__V1__HelloReply *r =
      wc_hello(channel, MTI_PROTOCOL_VERSION, mti_op_table_hash(MTI_OP_COUNT), MTI_OP_COUNT);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status->code, MT_OK);
  ck_assert_uint_eq(r->protocol_version, MTI_PROTOCOL_VERSION);
  ck_assert_uint_eq(r->op_count, MTI_OP_COUNT);
  ck_assert(r->op_table_hash == mti_op_table_hash(MTI_OP_COUNT));
  ck_assert_uint_eq(r->n_devices, 1);
  ck_assert_str_eq(r->devices[0]->backend, "cpu");
  ck_assert(strncmp(r->devices[0]->name, "cpu (", 5) == 0);
  ck_assert_int_gt(r->devices[0]->total_memory, 0);
  ck_assert_int_le(r->devices[0]->free_memory, r->devices[0]->total_memory);
  char version[32];
  snprintf(version, sizeof version, "%d.%d.%d", MT_VERSION_MAJOR, MT_VERSION_MINOR,
           MT_VERSION_PATCH);
  ck_assert_str_eq(r->worker_version, version);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}
END_TEST

START_TEST(test_hello_incompatible) {
  uint64_t hash = mti_op_table_hash(MTI_OP_COUNT);
  Modaltensor__V1__HelloReply *r = wc_hello(channel, MTI_PROTOCOL_VERSION + 1, hash, MTI_OP_COUNT);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status->code, MT_ERR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(r->status->message, "protocol"));
  ck_assert_uint_eq(r->n_devices, 1); /* discovery works all the same */
  protobuf_c_message_free_unpacked(&r->base, NULL);

  r = wc_hello(channel, MTI_PROTOCOL_VERSION, hash ^ 1, MTI_OP_COUNT);
  ck_assert_int_eq(r->status->code, MT_ERR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(r->status->message, "different op lists"));
  protobuf_c_message_free_unpacked(&r->base, NULL);

  r = wc_hello(channel, MTI_PROTOCOL_VERSION, hash, MTI_OP_COUNT + 1);
  ck_assert_int_eq(r->status->code, MT_ERR_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(r->status->message, "upgrade the worker"));
  protobuf_c_message_free_unpacked(&r->base, NULL);

  /* an older client (a prefix of the op list) is served */
  r = wc_hello(channel, MTI_PROTOCOL_VERSION, mti_op_table_hash(MTI_OP_COUNT - 1),
               MTI_OP_COUNT - 1);
  ck_assert_int_eq(r->status->code, MT_OK);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}
END_TEST

START_TEST(test_health) {
  uint8_t *reply;
  size_t len;
  ck_assert_int_eq(wc_unary(channel, WC_METHOD("Health"), "", 0, &reply, &len, NULL, 0, 30000),
                   GRPC_STATUS_OK);
  Modaltensor__V1__HealthReply *r = modaltensor__v1__health_reply__unpack(NULL, len, reply);
  free(reply);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->status->code, MT_OK);
  modaltensor__v1__health_reply__free_unpacked(r, NULL);
}
END_TEST

START_TEST(test_open_sessions_get_ids) {
  wt_session a, b;
  open_session(&a);
  open_session(&b);
  ck_assert(a.id != b.id);
  close_session(&a);
  close_session(&b);
}
END_TEST

/* Sends o as the first message; returns the Opened status code and the
 * call's final status in *grpc_code. */
static int open_with(const Modaltensor__V1__Open *o, grpc_status_code *grpc_code, char *msg,
                     size_t len) {
  wc_stream *st = wc_stream_open(channel, WC_METHOD("Session"), WT_TIMEOUT_MS);
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = (Modaltensor__V1__Open *)o;
  ck_assert_int_eq(wc_stream_send(st, &m), 0);
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(st);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->kind_case, MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED);
  int code = r->opened->status->code;
  snprintf(msg, len, "%s", r->opened->status->message);
  wc_message_free(r);
  *grpc_code = wc_stream_finish(st, NULL, 0);
  wc_stream_free(st);
  return code;
}

START_TEST(test_open_incompatible) {
  char msg[512];
  grpc_status_code g;
  Modaltensor__V1__Open o = wt_open_message();
  o.protocol_version = MTI_PROTOCOL_VERSION + 7;
  ck_assert_int_eq(open_with(&o, &g, msg, sizeof msg), MT_ERR_UNSUPPORTED);
  ck_assert_int_eq(g, GRPC_STATUS_FAILED_PRECONDITION);
  ck_assert_ptr_nonnull(strstr(msg, "protocol"));

  o = wt_open_message();
  o.op_table_hash ^= 0x100;
  ck_assert_int_eq(open_with(&o, &g, msg, sizeof msg), MT_ERR_UNSUPPORTED);
  ck_assert_int_eq(g, GRPC_STATUS_FAILED_PRECONDITION);
  ck_assert_ptr_nonnull(strstr(msg, "op table"));

  o = wt_open_message();
  o.device = 1;
  ck_assert_int_eq(open_with(&o, &g, msg, sizeof msg), MT_ERR_DEVICE);
  ck_assert_ptr_nonnull(strstr(msg, "device 1"));
}
END_TEST

START_TEST(test_older_client_limited_to_its_ops) {
  wt_session s;
  memset(&s, 0, sizeof s);
  s.next_request = 1;
  s.stream = wc_stream_open(channel, WC_METHOD("Session"), WT_TIMEOUT_MS);
  Modaltensor__V1__Open o = wt_open_message();
  o.op_count = MTI_OP_ADD + 1; /* knows the ops up to add */
  o.op_table_hash = mti_op_table_hash((int)o.op_count);
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &o;
  ck_assert_int_eq(wc_stream_send(s.stream, &m), 0);
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(s.stream);
  ck_assert_int_eq(r->opened->status->code, MT_OK);
  wc_message_free(r);

  const int64_t shape[1] = {2};
  const float a[2] = {1, 2};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  wt_view va = wt_view_of(1, 1, shape);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_MUL, 2, MT_FLOAT32, 1, shape); /* beyond add */
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 1, shape);
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "mt_mul (node 0 of graph 1)"));
  ck_assert_ptr_nonnull(strstr(msg, "beyond"));
  const float sum[2] = {2, 4};
  expect_f32(&s, 3, 1, shape, sum, 2);
  close_session(&s);
}
END_TEST

/* -------------------------------------------------------------- compute */

START_TEST(test_add_broadcast) {
  wt_session s;
  open_session(&s);
  const int64_t sa[2] = {2, 3}, sb[1] = {3};
  const float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 6, a, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, 3, b, 1 << 20), 0);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 2, sa);
  wt_view va = wt_view_of(1, 2, sa), vb = wt_view_of(2, 1, sb);
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &vb);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  const float want[6] = {11, 22, 33, 14, 25, 36};
  expect_f32(&s, 3, 2, sa, want, 6);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  close_session(&s);
}
END_TEST

START_TEST(test_graph_of_several_ops_and_views) {
  wt_session s;
  open_session(&s);
  const int64_t sa[2] = {2, 3}, st[2] = {3, 2}, tstrides[2] = {1, 3}, s2[1] = {2},
                s22[2] = {2, 2};
  const float a[6] = {1, 2, 3, 4, 5, 6};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 6, a, 8), 0); /* 8-byte chunks */
  wt_view va = wt_view_of(1, 2, sa);
  wt_view vt = wt_view_strided(1, 0, 2, st, tstrides); /* a transposed */
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_MUL, 2, MT_FLOAT32, 2, sa); /* a * a */
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_SUM, 3, MT_FLOAT32, 1, s2);
  n->attrs->dims_mask = 2; /* over dim 1 */
  wt_view v2 = wt_view_of(2, 2, sa);
  wt_graph_input(&g, &v2);
  wt_graph_node(&g, MTI_OP_MATMUL, 4, MT_FLOAT32, 2, s22); /* a @ a.T */
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &vt);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);

  const float sums[2] = {14, 77}, gram[4] = {14, 32, 32, 77};
  expect_f32(&s, 3, 1, s2, sums, 2);
  expect_f32(&s, 4, 2, s22, gram, 4);

  /* strided downloads go through a row-major copy on the worker */
  float got[6];
  size_t bytes;
  ck_assert_int_eq(wt_download(&s, &vt, got, sizeof got, &bytes, NULL, 0), MT_OK);
  const float transposed[6] = {1, 4, 2, 5, 3, 6};
  ck_assert_uint_eq(bytes, sizeof got);
  ck_assert_mem_eq(got, transposed, sizeof got);
  const int64_t rshape[1] = {3}, rstride[1] = {-1};
  wt_view rev = wt_view_strided(1, 5, 1, rshape, rstride); /* a[1, ::-1] */
  ck_assert_int_eq(wt_download(&s, &rev, got, sizeof got, &bytes, NULL, 0), MT_OK);
  const float reversed[3] = {6, 5, 4};
  ck_assert_uint_eq(bytes, sizeof reversed);
  ck_assert_mem_eq(got, reversed, sizeof reversed);
  /* a contiguous piece at an offset */
  const int64_t row[1] = {3};
  wt_view second = wt_view_strided(1, 3, 1, row, (const int64_t[]){1});
  ck_assert_int_eq(wt_download(&s, &second, got, sizeof got, &bytes, NULL, 0), MT_OK);
  ck_assert_mem_eq(got, a + 3, 3 * sizeof(float));
  close_session(&s);
}
END_TEST

START_TEST(test_copy_into_view) {
  wt_session s;
  open_session(&s);
  const int64_t s44[2] = {4, 4}, s22[2] = {2, 2}, strides[2] = {4, 1};
  float zeros[16] = {0};
  const int32_t src[4] = {1, 2, 3, 4};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 16, zeros, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_INT32, 4, src, 1 << 20), 0);
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_COPY, 0, MT_FLOAT32, 2, s22);
  n->attrs->dtype = MT_FLOAT32; /* converts int32 -> float32 */
  wt_view vsrc = wt_view_of(2, 2, s22), center = wt_view_strided(1, 5, 2, s22, strides);
  wt_graph_input(&g, &vsrc);
  wt_graph_into(&g, &center);
  /* a row broadcast into the bottom-left corner */
  const int64_t s2[1] = {2};
  n = wt_graph_node(&g, MTI_OP_COPY, 0, MT_FLOAT32, 2, s22);
  n->attrs->dtype = MT_FLOAT32;
  wt_view row = wt_view_of(2, 1, s2), corner = wt_view_strided(1, 8, 2, s22, strides);
  wt_graph_input(&g, &row);
  wt_graph_into(&g, &corner);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  float want[16] = {0};
  want[5] = 1, want[6] = 2, want[9] = 3, want[10] = 4;
  want[8] = 1, want[12] = 1, want[13] = 2; /* want[9] is overwritten by the row */
  want[9] = 2;
  expect_f32(&s, 1, 2, s44, want, 16);
  close_session(&s);
}
END_TEST

START_TEST(test_creation_cast_and_layer_norm) {
  wt_session s;
  open_session(&s);
  const int64_t s3[1] = {3}, s5[1] = {5}, s23[2] = {2, 3};
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_FULL, 1, MT_FLOAT64, 1, s3);
  n->attrs->dtype = MT_FLOAT64;
  n->attrs->s0 = 2.5;
  n = wt_graph_node(&g, MTI_OP_ARANGE, 2, MT_INT32, 1, s5);
  n->attrs->dtype = MT_INT32;
  n->attrs->s0 = 0;
  n->attrs->s1 = 2;
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);

  const float x[6] = {-1.5f, 2.7f, 3, 1, 2, 3};
  ck_assert_int_eq(wt_upload(&s, 3, MT_FLOAT32, 6, x, 1 << 20), 0);
  wt_graph_init(&g);
  n = wt_graph_node(&g, MTI_OP_CAST, 4, MT_INT32, 2, s23);
  n->attrs->dtype = MT_INT32;
  wt_view vx = wt_view_of(3, 2, s23), none = wt_view_of(0, 0, NULL);
  wt_graph_input(&g, &vx);
  n = wt_graph_node(&g, MTI_OP_LAYER_NORM, 5, MT_FLOAT32, 2, s23); /* no weight, no bias */
  n->attrs->s0 = 1e-5;
  wt_graph_input(&g, &vx);
  wt_graph_input(&g, &none);
  wt_graph_input(&g, &none);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);

  double full[3];
  int32_t ints[6];
  size_t bytes;
  wt_view v1 = wt_view_of(1, 1, s3), v2 = wt_view_of(2, 1, s5), v4 = wt_view_of(4, 2, s23);
  ck_assert_int_eq(wt_download(&s, &v1, full, sizeof full, &bytes, NULL, 0), MT_OK);
  ck_assert(full[0] == 2.5 && full[2] == 2.5);
  ck_assert_int_eq(wt_download(&s, &v2, ints, sizeof ints, &bytes, NULL, 0), MT_OK);
  ck_assert_uint_eq(bytes, 5 * sizeof(int32_t));
  ck_assert(ints[0] == 0 && ints[1] == 2 && ints[4] == 8);
  ck_assert_int_eq(wt_download(&s, &v4, ints, sizeof ints, &bytes, NULL, 0), MT_OK);
  ck_assert(ints[0] == -1 && ints[1] == 2 && ints[2] == 3);
  /* row 1 is [1, 2, 3]: mean 2, variance 2/3 */
  float ln[6];
  wt_view v5 = wt_view_of(5, 2, s23);
  ck_assert_int_eq(wt_download(&s, &v5, ln, sizeof ln, &bytes, NULL, 0), MT_OK);
  ck_assert(fabsf(ln[3] + 1.2247f) < 1e-3f && fabsf(ln[4]) < 1e-5f &&
            fabsf(ln[5] - 1.2247f) < 1e-3f);
  close_session(&s);
}
END_TEST

START_TEST(test_empty_tensor) {
  wt_session s;
  open_session(&s);
  const int64_t shape[2] = {0, 3};
  ck_assert_int_eq(wt_upload_chunk(&s, 1, MT_FLOAT32, 0, 0, NULL, 0), 0);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_EXP, 2, MT_FLOAT32, 2, shape);
  wt_view v = wt_view_of(1, 2, shape);
  wt_graph_input(&g, &v);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  size_t bytes = 99;
  float buf[1];
  wt_view out = wt_view_of(2, 2, shape);
  ck_assert_int_eq(wt_download(&s, &out, buf, sizeof buf, &bytes, NULL, 0), MT_OK);
  ck_assert_uint_eq(bytes, 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  close_session(&s);
}
END_TEST

START_TEST(test_chunked_upload_64mib) {
  wt_session s;
  open_session(&s);
  const int64_t n = 16 << 20; /* 64 MiB of float32 */
  float *data = malloc((size_t)n * sizeof *data);
  for (int64_t i = 0; i < n; i++) data[i] = (float)(i % 1000003);
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, n, data, 1 << 20), 0);
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *node = wt_graph_node(&g, MTI_OP_ADD_SCALAR, 2, MT_FLOAT32, 1, &n);
  node->attrs->s0 = 1;
  wt_view v = wt_view_of(1, 1, &n);
  wt_graph_input(&g, &v);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  float *back = malloc((size_t)n * sizeof *back);
  size_t bytes;
  wt_view out = wt_view_of(2, 1, &n);
  ck_assert_int_eq(wt_download(&s, &out, back, (size_t)n * sizeof *back, &bytes, NULL, 0), MT_OK);
  ck_assert_uint_eq(bytes, (size_t)n * sizeof *back);
  for (int64_t i = 0; i < n; i++)
    if (back[i] != data[i] + 1) ck_abort_msg("element %lld differs", (long long)i);
  Modaltensor__V1__StatsReply *r = stats_of(s.id);
  ck_assert_uint_eq(r->sessions[0]->counters->bytes_in, (uint64_t)n * 4);
  ck_assert_uint_eq(r->sessions[0]->counters->bytes_out, (uint64_t)n * 4);
  stats_free(r);
  free(back);
  free(data);
  close_session(&s);
}
END_TEST

/* ------------------------------------------------------- deferred errors */

START_TEST(test_deferred_error_in_graph) {
  wt_session s;
  open_session(&s);
  const int64_t s4[1] = {4}, s2[1] = {2};
  const float a[4] = {1, 2, 3, 4};
  const int64_t idx[2] = {1, 7}; /* 7 is out of range */
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_INT64, 2, idx, 1 << 20), 0);
  wt_view va = wt_view_of(1, 1, s4), vi = wt_view_of(2, 1, s2), vx = wt_view_of(3, 1, s2);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_INDEX_SELECT, 3, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &vi);
  wt_graph_node(&g, MTI_OP_ADD, 4, MT_FLOAT32, 1, s2); /* uses the failed result */
  wt_graph_input(&g, &vx);
  wt_graph_input(&g, &vx);
  wt_graph_node(&g, MTI_OP_MUL, 5, MT_FLOAT32, 1, s4); /* independent */
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);

  char msg[512], dmsg[512], first[512];
  int code = wt_sync(&s, msg, sizeof msg);
  ck_assert_int_ne(code, MT_OK);
  ck_assert_int_gt(code, 0);
  ck_assert_msg(strstr(msg, "mt_index_select (node 0 of graph 1)"), "message: %s", msg);
  float buf[4];
  size_t bytes;
  ck_assert_int_eq(wt_download(&s, &vx, buf, sizeof buf, &bytes, dmsg, sizeof dmsg), code);
  ck_assert_str_eq(dmsg, msg);
  wt_view v4 = wt_view_of(4, 1, s2);
  ck_assert_int_eq(wt_download(&s, &v4, buf, sizeof buf, &bytes, dmsg, sizeof dmsg), code);
  ck_assert_str_eq(dmsg, msg); /* the original cause */
  const float squares[4] = {1, 4, 9, 16};
  expect_f32(&s, 5, 1, s4, squares, 4);
  snprintf(first, sizeof first, "%s", msg);
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_OK); /* reported once */
  ck_assert_str_eq(msg, "");

  /* a later graph that uses the failed tensor reports again */
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 6, MT_FLOAT32, 1, s2);
  wt_graph_input(&g, &vx);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, dmsg, sizeof dmsg), code);
  ck_assert_str_eq(dmsg, first);
  close_session(&s);
}
END_TEST

START_TEST(test_validation_error_names_node) {
  wt_session s;
  open_session(&s);
  const int64_t s2[1] = {2}, s3[1] = {3};
  const float a[3] = {1, 2, 3};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 3, a, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, 2, a, 1 << 20), 0);
  wt_view v1 = wt_view_of(1, 1, s3), v2 = wt_view_of(2, 1, s2);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 3, MT_FLOAT32, 1, s3);
  wt_graph_input(&g, &v1);
  wt_graph_node(&g, MTI_OP_SUB, 4, MT_FLOAT32, 1, s3); /* [3] - [2]: no broadcast */
  wt_graph_input(&g, &v1);
  wt_graph_input(&g, &v2);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_SHAPE);
  ck_assert_msg(strncmp(msg, "mt_sub (node 1 of graph 1): ", 28) == 0, "message: %s", msg);
  ck_assert_ptr_nonnull(strstr(msg, "broadcast"));
  close_session(&s);
}
END_TEST

/* The TF32 flag travels with a matmul (a cpu worker has no TF32: exact
 * results) and is refused on any other op. */
START_TEST(test_tf32_flag_matmul_only) {
  wt_session s;
  open_session(&s);
  const int64_t s22[2] = {2, 2};
  const float a[4] = {1, 2, 3, 4}, square[4] = {7, 10, 15, 22};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20), 0);
  wt_view va = wt_view_of(1, 2, s22);
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_MATMUL, 2, MT_FLOAT32, 2, s22);
  n->attrs->flags = MTI_FLAG_TF32;
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  n = wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 2, s22);
  n->attrs->flags = MTI_FLAG_TF32;
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "mt_add (node 1 of graph 1): ") && strstr(msg, "TF32"), "message: %s",
                msg);
  expect_f32(&s, 2, 2, s22, square, 4);
  close_session(&s);
}
END_TEST

/* A node whose attributes or outputs break its op's row in ops.def is
 * refused whole, naming the slot, and nothing of it runs; the next node of
 * the same graph still does. */
static void expect_refused(mti_op op, void (*spoil)(Modaltensor__V1__Node *), const char *needle) {
  wt_session s;
  open_session(&s);
  const int64_t s4[1] = {4};
  const float a[4] = {1, 2, 3, 4}, twice[4] = {2, 4, 6, 8};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20), 0);
  wt_view va = wt_view_of(1, 1, s4);
  wt_graph g;
  wt_graph_init(&g);
  spoil(wt_graph_node(&g, op, 2, MT_FLOAT32, 1, s4));
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 1, s4);
  wt_graph_input(&g, &va);
  wt_graph_input(&g, &va);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "(node 0 of graph 1): ") && strstr(msg, needle), "message: %s", msg);
  wt_view v2 = wt_view_of(2, 1, s4);
  float got[4];
  size_t bytes = 0;
  ck_assert_int_eq(wt_download(&s, &v2, got, sizeof got, &bytes, msg, sizeof msg),
                   MT_ERR_INVALID_ARGUMENT);
  expect_f32(&s, 3, 1, s4, twice, 4);
  close_session(&s);
}

static void set_unused_double(Modaltensor__V1__Node *n) { n->attrs->s2 = 0.5; }
static void set_unused_ints(Modaltensor__V1__Node *n) {
  static int64_t ints[2] = {1, 2};
  n->attrs->n_ints = 2;
  n->attrs->ints = ints;
}
static void set_present_flag(Modaltensor__V1__Node *n) { n->attrs->flags = MTI_FLAG_PRESENT(1); }
static void drop_outputs(Modaltensor__V1__Node *n) { n->n_outputs = 0; }

START_TEST(test_attribute_schema_enforced) {
  expect_refused(MTI_OP_ADD, set_unused_double, "attrs: s2 is set, but mt_add has no such");
  expect_refused(MTI_OP_MUL, set_unused_ints, "attrs: ints is set");
  expect_refused(MTI_OP_ADD, set_present_flag, "flag PRESENT(1)");
  expect_refused(MTI_OP_ADD, drop_outputs, "has 1 outputs, the node lists 0");
}
END_TEST

/* Two outputs for a one-output op, or one id listed twice: refused. */
START_TEST(test_output_list_checked) {
  wt_session s;
  open_session(&s);
  const int64_t s4[1] = {4};
  const float a[4] = {1, 2, 3, 4};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20), 0);
  wt_view va = wt_view_of(1, 1, s4);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_NEG, 2, MT_FLOAT32, 1, s4);
  wt_graph_output(&g, 3, MT_FLOAT32, 1, s4);
  wt_graph_input(&g, &va);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "mt_neg (node 0 of graph 1): has 1 outputs, the node lists 2"),
                "message: %s", msg);
  close_session(&s);
}
END_TEST

/* -------------------------------------------------------------- counters */

START_TEST(test_counters) {
  wt_session s;
  open_session(&s);
  const int64_t n[1] = {1024};
  float a[1024];
  for (int i = 0; i < 1024; i++) a[i] = (float)i;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1024, a, 1024), 0); /* 4 chunks */
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, 1024, a, 1 << 20), 0);
  wt_view v1 = wt_view_of(1, 1, n), v2 = wt_view_of(2, 1, n), v3 = wt_view_of(3, 1, n);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 1, n);
  wt_graph_input(&g, &v1);
  wt_graph_input(&g, &v2);
  wt_graph_node(&g, MTI_OP_RELU, 4, MT_FLOAT32, 1, n);
  wt_graph_input(&g, &v3);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  float out[1024];
  size_t bytes;
  ck_assert_int_eq(wt_download(&s, &v3, out, sizeof out, &bytes, NULL, 0), MT_OK);

  Modaltensor__V1__StatsReply *r = stats_of(s.id);
  ck_assert_int_eq(r->status->code, MT_OK);
  ck_assert_uint_eq(r->n_sessions, 1);
  ck_assert_uint_eq(r->sessions[0]->session_id, s.id);
  const Modaltensor__V1__Counters *c = r->sessions[0]->counters;
  ck_assert_uint_eq(c->graphs, 1);
  ck_assert_uint_eq(c->nodes, 2);
  ck_assert_uint_eq(c->syncs, 1);
  ck_assert_uint_eq(c->bytes_in, 8192);
  ck_assert_uint_eq(c->bytes_out, 4096);
  ck_assert_uint_eq(c->live_tensors, 4);
  ck_assert_uint_eq(c->live_bytes, 4 * 4096);
  ck_assert_uint_eq(c->messages, 1 + 5 + 1 + 1 + 1); /* open, chunks, graph, sync, download */
  ck_assert_uint_eq(r->open_sessions, 1);
  ck_assert_uint_eq(r->total->live_tensors, 4);
  stats_free(r);

  const uint64_t ids[4] = {1, 2, 3, 4};
  ck_assert_int_eq(wt_free(&s, 4, ids), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  r = stats_of(s.id);
  c = r->sessions[0]->counters;
  ck_assert_uint_eq(c->live_tensors, 0);
  ck_assert_uint_eq(c->live_bytes, 0);
  ck_assert_uint_eq(c->syncs, 2);
  ck_assert_uint_eq(r->total->live_tensors, 0);
  ck_assert_uint_eq(r->total->live_bytes, 0);
  stats_free(r);

  r = stats_of(s.id + 1000); /* no such session */
  ck_assert_int_eq(r->status->code, MT_ERR_INVALID_ARGUMENT);
  ck_assert_uint_eq(r->n_sessions, 0);
  stats_free(r);
  close_session(&s);
}
END_TEST

/* Leaves a session with live tensors, ends its stream (finished cleanly or
 * cancelled), and checks that the worker freed them. */
static void check_freed_when_stream_ends(int cancel) {
  wt_session s;
  open_session(&s);
  static float block[1 << 18]; /* 1 MiB */
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1 << 18, block, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&s, 2, MT_FLOAT32, 1 << 18, block, 1 << 20), 0);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);
  Modaltensor__V1__StatsReply *r = stats_of(0);
  ck_assert_uint_eq(r->total->live_tensors, 2);
  ck_assert_uint_eq(r->total->live_bytes, 2u << 20);
  stats_free(r);
  Modaltensor__V1__HelloReply *h =
      wc_hello(channel, MTI_PROTOCOL_VERSION, mti_op_table_hash(MTI_OP_COUNT), MTI_OP_COUNT);
  ck_assert_int_ge(h->devices[0]->used_memory, 2 << 20); /* the backend's rounded blocks */
  ck_assert_int_ge(h->devices[0]->reserved_memory, h->devices[0]->used_memory);
  protobuf_c_message_free_unpacked(&h->base, NULL);
  if (cancel) {
    wc_stream_free(s.stream); /* as if the client died */
  } else {
    close_session(&s);
  }
  ck_assert_int_eq(wait_no_sessions(), 0);
  r = stats_of(0);
  ck_assert_uint_eq(r->total->live_tensors, 0);
  ck_assert_uint_eq(r->total->live_bytes, 0);
  ck_assert_uint_eq(r->total->bytes_in, 2u << 20); /* totals since start stay */
  ck_assert_uint_eq(r->n_sessions, 0);
  stats_free(r);
  h = wc_hello(channel, MTI_PROTOCOL_VERSION, mti_op_table_hash(MTI_OP_COUNT), MTI_OP_COUNT);
  ck_assert_int_eq(h->devices[0]->free_memory, h->devices[0]->total_memory);
  ck_assert_int_eq(h->devices[0]->used_memory, 0);
  /* what remains is the host buffer cache's, at most MTI_HOST_CACHE_BYTES */
  ck_assert_int_le(h->devices[0]->reserved_memory, MTI_HOST_CACHE_BYTES);
  protobuf_c_message_free_unpacked(&h->base, NULL);
}

START_TEST(test_session_freed_when_stream_finishes) { check_freed_when_stream_ends(0); }
END_TEST

START_TEST(test_session_freed_when_client_vanishes) { check_freed_when_stream_ends(1); }
END_TEST

START_TEST(test_idle_session_ends) {
  wt_session s;
  open_session(&s);
  const float a[2] = {1, 2};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  /* nothing more: the worker ends the session after 1 s */
  ck_assert_ptr_null(wc_stream_recv(s.stream));
  char details[256];
  ck_assert_int_eq(wc_stream_finish(s.stream, details, sizeof details),
                   GRPC_STATUS_DEADLINE_EXCEEDED);
  ck_assert_ptr_nonnull(strstr(details, "idle"));
  wc_stream_free(s.stream);
  ck_assert_int_eq(wait_no_sessions(), 0);
  Modaltensor__V1__StatsReply *r = stats_of(0);
  ck_assert_uint_eq(r->total->live_tensors, 0);
  stats_free(r);
}
END_TEST

/* ------------------------------------------------------------- isolation */

START_TEST(test_sessions_are_isolated) {
  wt_session a, b;
  open_session(&a);
  open_session(&b);
  const int64_t s4[1] = {4};
  const float va_data[4] = {1, 2, 3, 4}, vb_data[4] = {9, 9, 9, 9};
  ck_assert_int_eq(wt_upload(&a, 1, MT_FLOAT32, 4, va_data, 1 << 20), 0);
  ck_assert_int_eq(wt_upload(&a, 2, MT_FLOAT32, 4, va_data, 1 << 20), 0);
  ck_assert_int_eq(wt_sync(&a, NULL, 0), MT_OK);
  wt_view v1 = wt_view_of(1, 1, s4), v2 = wt_view_of(2, 1, s4);
  char msg[512];
  float buf[4];
  size_t bytes;

  /* B cannot read A's id */
  ck_assert_int_eq(wt_download(&b, &v1, buf, sizeof buf, &bytes, msg, sizeof msg),
                   MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "no storage 1 in this session"));
  /* nor use it as an input */
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_ADD, 5, MT_FLOAT32, 1, s4);
  wt_graph_input(&g, &v1);
  wt_graph_input(&g, &v1);
  ck_assert_int_eq(wt_graph_send(&b, &g), 0);
  ck_assert_int_eq(wt_sync(&b, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "input 0: no storage 1 in this session"));
  /* nor free it */
  const uint64_t ids[1] = {1};
  ck_assert_int_eq(wt_free(&b, 1, ids), 0);
  ck_assert_int_eq(wt_sync(&b, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "free: no storage 1"));
  /* nor write into it */
  ck_assert_int_eq(wt_upload(&b, 7, MT_FLOAT32, 4, vb_data, 1 << 20), 0);
  wt_view v7 = wt_view_of(7, 1, s4);
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, MTI_OP_COPY, 0, MT_FLOAT32, 1, s4);
  n->attrs->dtype = MT_FLOAT32;
  wt_graph_input(&g, &v7);
  wt_graph_into(&g, &v2);
  ck_assert_int_eq(wt_graph_send(&b, &g), 0);
  ck_assert_int_eq(wt_sync(&b, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msg, "into: no storage 2"));
  /* and its own id 1 is its own */
  ck_assert_int_eq(wt_upload(&b, 1, MT_FLOAT32, 4, vb_data, 1 << 20), 0);
  ck_assert_int_eq(wt_sync(&b, msg, sizeof msg), MT_OK);
  expect_f32(&b, 1, 1, s4, vb_data, 4);

  expect_f32(&a, 1, 1, s4, va_data, 4);
  expect_f32(&a, 2, 1, s4, va_data, 4);
  Modaltensor__V1__StatsReply *r = stats_of(a.id);
  ck_assert_uint_eq(r->sessions[0]->counters->live_tensors, 2);
  stats_free(r);
  ck_assert_int_eq(wt_sync(&a, msg, sizeof msg), MT_OK); /* A saw no error */
  close_session(&a);
  close_session(&b);
}
END_TEST

/* ----------------------------------------------------------- concurrency */

typedef struct client_job {
  const char *addr;
  int seed;
  int ok;
} client_job;

/* Rounds of upload, add, download and free in one session. */
static void *client_rounds(void *arg) {
  client_job *job = arg;
  wc_channel *ch = wc_connect(job->addr, NULL);
  wt_session s;
  job->ok = wt_open(ch, &s) == 0;
  enum { N = 4096 };
  static _Thread_local float a[N], b[N], sum[N], prod[N];
  const int64_t shape[1] = {N}, square[2] = {64, 64};
  for (int round = 0; round < 20 && job->ok; round++) {
    for (int i = 0; i < N; i++) {
      a[i] = (float)(job->seed * 1000 + round + i);
      b[i] = (float)(i % 17);
    }
    uint64_t base = (uint64_t)round * 4 + 1;
    wt_view va = wt_view_of(base, 1, shape), vb = wt_view_of(base + 1, 1, shape),
            vs = wt_view_of(base + 2, 1, shape), vm = wt_view_of(base + 3, 2, square);
    wt_view a64 = wt_view_of(base, 2, square); /* a as 64 x 64 */
    wt_graph g;
    wt_graph_init(&g);
    wt_graph_node(&g, MTI_OP_ADD, base + 2, MT_FLOAT32, 1, shape);
    wt_graph_input(&g, &va);
    wt_graph_input(&g, &vb);
    wt_graph_node(&g, MTI_OP_MATMUL, base + 3, MT_FLOAT32, 2, square); /* sessions share BLAS */
    wt_graph_input(&g, &a64);
    wt_graph_input(&g, &a64);
    size_t bytes = 0, mbytes = 0;
    const uint64_t ids[4] = {base, base + 1, base + 2, base + 3};
    job->ok = wt_upload(&s, base, MT_FLOAT32, N, a, 4096) == 0 &&
              wt_upload(&s, base + 1, MT_FLOAT32, N, b, 1 << 20) == 0 &&
              wt_graph_send(&s, &g) == 0 &&
              wt_download(&s, &vs, sum, sizeof sum, &bytes, NULL, 0) == MT_OK &&
              wt_download(&s, &vm, prod, sizeof prod, &mbytes, NULL, 0) == MT_OK &&
              bytes == sizeof sum && mbytes == sizeof prod && wt_free(&s, 4, ids) == 0;
    for (int i = 0; i < N && job->ok; i++) job->ok = sum[i] == a[i] + b[i];
    /* one element of a @ a, summed in double here */
    double want = 0;
    for (int k = 0; k < 64; k++) want += (double)a[3 * 64 + k] * a[k * 64 + 5];
    job->ok = job->ok && fabs(prod[3 * 64 + 5] - want) <= 1e-5 * fabs(want);
  }
  job->ok = job->ok && wt_sync(&s, NULL, 0) == MT_OK;
  if (wt_close(&s) != GRPC_STATUS_OK) job->ok = 0;
  wc_channel_free(ch);
  return NULL;
}

START_TEST(test_several_clients_at_once) {
  enum { CLIENTS = 3 };
  pthread_t threads[CLIENTS];
  client_job jobs[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    jobs[i] = (client_job){worker.addr, i + 1, 0};
    ck_assert_int_eq(pthread_create(&threads[i], NULL, client_rounds, &jobs[i]), 0);
  }
  for (int i = 0; i < CLIENTS; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < CLIENTS; i++) ck_assert_msg(jobs[i].ok, "client %d failed", i);
  ck_assert_int_eq(wait_no_sessions(), 0);
  Modaltensor__V1__StatsReply *r = stats_of(0);
  ck_assert_uint_eq(r->total->graphs, CLIENTS * 20);
  ck_assert_uint_eq(r->total->live_tensors, 0);
  stats_free(r);
}
END_TEST

/* ------------------------------------------------------------ limits */

static void setup_small_work(void) {
  static const char *const args[] = {"--max-node-work", "1M", NULL};
  start_with(args);
}

/* Sends one node (output out_id) over views a and b (may be NULL) and
 * syncs: the status, with the message in msg. */
static int run_broadcast_node(wt_session *s, mti_op op, uint64_t out_id, const wt_view *a,
                              const wt_view *b, int out_ndim, const int64_t *out_shape,
                              uint32_t dims_mask, char *msg, size_t len) {
  wt_graph g;
  wt_graph_init(&g);
  Modaltensor__V1__Node *n = wt_graph_node(&g, op, out_id, MT_FLOAT32, out_ndim, out_shape);
  n->attrs->dims_mask = dims_mask;
  wt_graph_input(&g, a);
  if (b) wt_graph_input(&g, b);
  ck_assert_int_eq(wt_graph_send(s, &g), 0);
  return wt_sync(s, msg, len);
}

/* About 100 bytes of wire asking for 2^40 additions (a sum over one
 * element broadcast to [2^20, 2^20]), and a matmul of the same views:
 * refused before they run, naming the op and the size. */
START_TEST(test_absurd_work_refused) {
  wt_session s;
  open_session(&s);
  const float one = 1;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1, &one, 1 << 20), 0);
  const int64_t huge[2] = {1 << 20, 1 << 20}, column[2] = {1 << 20, 1}, zero[2] = {0, 0};
  wt_view a = wt_view_strided(1, 0, 2, huge, zero), b = wt_view_strided(1, 0, 2, column, zero);
  char msg[512];
  ck_assert_int_eq(run_broadcast_node(&s, MTI_OP_SUM, 2, &a, NULL, 0, NULL, 3, msg, sizeof msg),
                   MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "mt_sum (node 0 of graph 1): touches 1099511627777 elements") &&
                    strstr(msg, "--max-node-work"),
                "message: %s", msg);
  ck_assert_int_eq(run_broadcast_node(&s, MTI_OP_MATMUL, 3, &a, &b, 2, column, 0, msg, sizeof msg),
                   MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "mt_matmul (node 0 of graph 2): touches") &&
                    strstr(msg, "limit of 274877906944"),
                "message: %s", msg);
  /* the session goes on */
  const int64_t s1[1] = {1};
  expect_f32(&s, 1, 1, s1, &one, 1);
  close_session(&s);
}
END_TEST

/* --max-node-work sets the limit: a sum over 2^19 broadcast elements runs
 * (and is right), one over 2^21 is refused. */
START_TEST(test_work_limit_option) {
  wt_session s;
  open_session(&s);
  const float two = 2;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1, &two, 1 << 20), 0);
  const int64_t small[1] = {1 << 19}, big[1] = {1 << 21}, zero[1] = {0};
  wt_view a = wt_view_strided(1, 0, 1, small, zero), b = wt_view_strided(1, 0, 1, big, zero);
  char msg[512];
  ck_assert_int_eq(run_broadcast_node(&s, MTI_OP_SUM, 2, &a, NULL, 0, NULL, 1, msg, sizeof msg),
                   MT_OK);
  const float want = 2.0f * (1 << 19);
  const int64_t scalar[1] = {1};
  expect_f32(&s, 2, 0, scalar, &want, 1);
  ck_assert_int_eq(run_broadcast_node(&s, MTI_OP_SUM, 3, &b, NULL, 0, NULL, 1, msg, sizeof msg),
                   MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "limit of 1048576"), "message: %s", msg);
  close_session(&s);
}
END_TEST

/* A Free naming one known and one unknown id frees nothing (a bad message
 * is never partly applied); the error names the unknown id. */
START_TEST(test_free_is_whole) {
  wt_session s;
  open_session(&s);
  const float a[2] = {1, 2};
  const int64_t s2[1] = {2};
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 2, a, 1 << 20), 0);
  uint64_t ids[2] = {1, 77};
  ck_assert_int_eq(wt_free(&s, 2, ids), 0);
  char msg[512];
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(msg, "no storage 77") && strstr(msg, "nothing of this Free was freed"),
                "message: %s", msg);
  expect_f32(&s, 1, 1, s2, a, 2);
  ck_assert_int_eq(wt_free(&s, 1, ids), 0);
  ck_assert_int_eq(wt_sync(&s, msg, sizeof msg), MT_OK);
  close_session(&s);
}
END_TEST

/* A graph of many slow nodes (matmuls of 384^2 float32), its client gone
 * right after sending it: the worker stops between nodes instead of
 * running the rest for nobody. */
START_TEST(test_graph_stops_when_client_goes) {
  enum { NODES = 200, N = 384 };
  wt_session s;
  open_session(&s);
  float *a = calloc((size_t)N * N, sizeof *a);
  ck_assert_ptr_nonnull(a);
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, (int64_t)N * N, a, 1 << 20), 0);
  free(a);
  ck_assert_int_eq(wt_sync(&s, NULL, 0), MT_OK);

  static int64_t shape[2] = {N, N};
  static Modaltensor__V1__TensorView in;
  static Modaltensor__V1__TensorView *ins[2] = {&in, &in};
  static Modaltensor__V1__Output outs[NODES];
  static Modaltensor__V1__Output *out_ptrs[NODES];
  static Modaltensor__V1__Node nodes[NODES];
  static Modaltensor__V1__Node *node_ptrs[NODES];
  modaltensor__v1__tensor_view__init(&in);
  in.id = 1;
  in.n_shape = 2;
  in.shape = shape;
  for (int i = 0; i < NODES; i++) {
    modaltensor__v1__output__init(&outs[i]);
    outs[i].id = 2 + (uint64_t)i;
    outs[i].dtype = MT_FLOAT32;
    outs[i].n_shape = 2;
    outs[i].shape = shape;
    out_ptrs[i] = &outs[i];
    modaltensor__v1__node__init(&nodes[i]);
    nodes[i].op = MTI_OP_MATMUL;
    nodes[i].n_inputs = 2;
    nodes[i].inputs = ins;
    nodes[i].n_outputs = 1;
    nodes[i].outputs = &out_ptrs[i];
    node_ptrs[i] = &nodes[i];
  }
  Modaltensor__V1__Graph g = MODALTENSOR__V1__GRAPH__INIT;
  g.n_nodes = NODES;
  g.nodes = node_ptrs;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH;
  m.graph = &g;
  Modaltensor__V1__StatsReply *r = stats_of(0);
  uint64_t nodes_before = r->total->nodes;
  stats_free(r);
  ck_assert_int_eq(wc_stream_send(s.stream, &m), 0);
  wc_stream_free(s.stream); /* cancels: as if the client died */
  ck_assert_int_eq(wait_no_sessions(), 0);
  r = stats_of(0);
  uint64_t ran = r->total->nodes - nodes_before;
  ck_assert_uint_eq(r->total->live_tensors, 0);
  stats_free(r);
  ck_assert_msg(ran < NODES / 2, "%llu of %d nodes ran after the client left",
                (unsigned long long)ran, NODES);
}
END_TEST

/* No work limit to speak of, so that one node can run for minutes. */
static void setup_unbounded_work(void) {
  static const char *const args[] = {"--max-node-work", "1024T", NULL};
  start_with(args);
}

static int64_t now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Uploads one float32 to s and makes g the sum of its [2^20, 2^20] view
 * with strides [0, 0]: 2^40 additions, minutes of kernel. */
static void long_sum_graph(wt_session *s, wt_graph *g) {
  const float one = 1;
  ck_assert_int_eq(wt_upload(s, 1, MT_FLOAT32, 1, &one, 1 << 20), 0);
  const int64_t huge[2] = {1 << 20, 1 << 20}, zero[2] = {0, 0};
  wt_view a = wt_view_strided(1, 0, 2, huge, zero);
  wt_graph_init(g);
  Modaltensor__V1__Node *n = wt_graph_node(g, MTI_OP_SUM, 2, MT_FLOAT32, 0, NULL);
  n->attrs->dims_mask = 3;
  wt_graph_input(g, &a);
}

/* SIGTERM while one node is in a kernel for minutes (a sum of 2^40
 * broadcast elements): the worker exits with status 0 soon after
 * --stop-timeout (1 s by default) instead of when the kernel ends. */
START_TEST(test_sigterm_does_not_wait_for_a_long_kernel) {
  wt_session s;
  open_session(&s);
  wt_graph g;
  long_sum_graph(&s, &g);
  ck_assert_int_eq(wt_graph_send(&s, &g), 0);
  struct timespec running = {0, 500 * 1000000}; /* the kernel has started */
  nanosleep(&running, NULL);
  int64_t t0 = now_ms();
  ck_assert_int_eq(wt_worker_stop(&worker), 0);
  int64_t took = now_ms() - t0;
  ck_assert_msg(took < 15000, "the worker took %lld ms to stop", (long long)took);
  wt_close(&s); /* the stream is gone: any status */
}
END_TEST

/* Sends the one node of g, which would run for minutes, lets its kernel
 * start, then drops the stream as a client that dies does: the kernel
 * stops, the session ends with its memory freed, and a new session's work
 * runs, all on the same worker and long before the kernel would end. */
static void check_long_node_stops_when_client_goes(wt_session *s, wt_graph *g) {
  ck_assert_int_eq(wt_graph_send(s, g), 0);
  struct timespec running = {0, 300 * 1000000}; /* the kernel has started */
  nanosleep(&running, NULL);
  Modaltensor__V1__StatsReply *r = stats_of(0);
  ck_assert_uint_eq(r->open_sessions, 1); /* still running: the test sees it stop */
  stats_free(r);
  wc_stream_free(s->stream); /* cancels: as if the client died */
  ck_assert_int_eq(wait_no_sessions(), 0);
  r = stats_of(0);
  ck_assert_uint_eq(r->total->live_tensors, 0);
  ck_assert_uint_eq(r->total->live_bytes, 0);
  stats_free(r);
  ck_assert_int_eq(wt_check_serving(worker.addr, NULL), 0);
}

/* The sum of 2^40 broadcast elements (long_sum_graph). */
START_TEST(test_long_sum_stops_when_client_goes) {
  wt_session s;
  open_session(&s);
  wt_graph g;
  long_sum_graph(&s, &g);
  check_long_node_stops_when_client_goes(&s, &g);
}
END_TEST

/* Its matmul twin: [1, 2^40] @ [2^40, 1], both views of one float32 with
 * stride 0: 2^40 multiply-adds along the inner dimension. */
START_TEST(test_long_matmul_stops_when_client_goes) {
  wt_session s;
  open_session(&s);
  const float one = 1;
  ck_assert_int_eq(wt_upload(&s, 1, MT_FLOAT32, 1, &one, 1 << 20), 0);
  const int64_t row[2] = {1, (int64_t)1 << 40}, col[2] = {(int64_t)1 << 40, 1};
  const int64_t zero[2] = {0, 0}, out_shape[2] = {1, 1};
  wt_view a = wt_view_strided(1, 0, 2, row, zero), b = wt_view_strided(1, 0, 2, col, zero);
  wt_graph g;
  wt_graph_init(&g);
  wt_graph_node(&g, MTI_OP_MATMUL, 2, MT_FLOAT32, 2, out_shape);
  wt_graph_input(&g, &a);
  wt_graph_input(&g, &b);
  check_long_node_stops_when_client_goes(&s, &g);
}
END_TEST

/* The fixture's teardown for tests that stop the worker themselves. */
static void teardown_stopped(void) {
  wc_channel_free(channel);
  channel = NULL;
  if (worker.pid > 0) wt_worker_stop(&worker);
  grpc_shutdown_blocking();
}

static TCase *tcase(const char *name, void (*setup_fn)(void)) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup_fn, teardown);
  tcase_set_timeout(tc, 240);
  return tc;
}

static Suite *worker_suite(void) {
  Suite *s = suite_create("worker");
  TCase *tc = tcase("handshake", setup);
  tcase_add_test(tc, test_hello);
  tcase_add_test(tc, test_hello_incompatible);
  tcase_add_test(tc, test_health);
  tcase_add_test(tc, test_open_sessions_get_ids);
  tcase_add_test(tc, test_open_incompatible);
  tcase_add_test(tc, test_older_client_limited_to_its_ops);
  suite_add_tcase(s, tc);

  tc = tcase("compute", setup);
  tcase_add_test(tc, test_add_broadcast);
  tcase_add_test(tc, test_graph_of_several_ops_and_views);
  tcase_add_test(tc, test_copy_into_view);
  tcase_add_test(tc, test_creation_cast_and_layer_norm);
  tcase_add_test(tc, test_empty_tensor);
  tcase_add_test(tc, test_chunked_upload_64mib);
  suite_add_tcase(s, tc);

  tc = tcase("deferred", setup);
  tcase_add_test(tc, test_deferred_error_in_graph);
  tcase_add_test(tc, test_validation_error_names_node);
  tcase_add_test(tc, test_tf32_flag_matmul_only);
  suite_add_tcase(s, tc);

  tc = tcase("lifecycle", setup);
  tcase_add_test(tc, test_counters);
  tcase_add_test(tc, test_session_freed_when_stream_finishes);
  tcase_add_test(tc, test_session_freed_when_client_vanishes);
  tcase_add_test(tc, test_sessions_are_isolated);
  tcase_add_test(tc, test_several_clients_at_once);
  suite_add_tcase(s, tc);

  tc = tcase_create("stop");
  tcase_add_checked_fixture(tc, setup_unbounded_work, teardown_stopped);
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_sigterm_does_not_wait_for_a_long_kernel);
  tcase_add_test(tc, test_long_sum_stops_when_client_goes);
  tcase_add_test(tc, test_long_matmul_stops_when_client_goes);
  suite_add_tcase(s, tc);

  tc = tcase("limits", setup);
  tcase_add_test(tc, test_absurd_work_refused);
  tcase_add_test(tc, test_free_is_whole);
  tcase_add_test(tc, test_graph_stops_when_client_goes);
  suite_add_tcase(s, tc);

  tc = tcase("work_option", setup_small_work);
  tcase_add_test(tc, test_work_limit_option);
  suite_add_tcase(s, tc);

  tc = tcase("idle", setup_idle);
  tcase_add_test(tc, test_idle_session_ends);
  tcase_add_test(tc, test_attribute_schema_enforced);
  tcase_add_test(tc, test_output_list_checked);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(worker_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
