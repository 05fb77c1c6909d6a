/*
 * wire_client.c - synchronous gRPC calls over pluck completion queues.
 */
#include "wire_client.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (64 << 20)

struct wc_channel {
  grpc_channel *channel;
  char *auth; /* "Bearer TOKEN" or NULL */
};

struct wc_stream {
  wc_channel *ch;
  grpc_call *call;
  grpc_completion_queue *cq;
  gpr_timespec deadline;
  grpc_metadata_array initial, trailing;
  grpc_status_code status;
  grpc_slice details;
  int got_initial, closed_send, status_started, status_done;
  int tag_batch, tag_status; /* addresses are tags */
};

static gpr_timespec deadline_after(int ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* The call deadline ends every operation; pluck waits a little longer. */
static gpr_timespec pluck_deadline(gpr_timespec call_deadline) {
  return gpr_time_add(call_deadline, gpr_time_from_seconds(5, GPR_TIMESPAN));
}

/* A channel with creds (released here), carrying token if not NULL. */
static wc_channel *connect_with(const char *target, const char *token,
                                grpc_channel_credentials *creds) {
  wc_channel *ch = calloc(1, sizeof *ch);
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = MAX_MESSAGE}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = MAX_MESSAGE}},
      /* as the worker does: sockets are read in large pieces */
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_TCP_READ_CHUNK_SIZE, {.integer = 256 << 10}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, {.integer = 256 << 10}},
      /* Separate channels must not share one connection: the tests use
       * channels as separate clients. */
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
  };
  grpc_channel_args chargs = {sizeof args / sizeof args[0], args};
  ch->channel = grpc_channel_create(target, creds, &chargs);
  grpc_channel_credentials_release(creds);
  if (token) {
    ch->auth = malloc(strlen(token) + 8);
    sprintf(ch->auth, "Bearer %s", token);
  }
  return ch;
}

wc_channel *wc_connect(const char *target, const char *token) {
  return connect_with(target, token, grpc_insecure_credentials_create());
}

wc_channel *wc_connect_tls(const char *target, const char *token, const char *ca_pem) {
  return connect_with(target, token, grpc_ssl_credentials_create(ca_pem, NULL, NULL, NULL));
}

void wc_channel_free(wc_channel *ch) {
  if (!ch) return;
  grpc_channel_destroy(ch->channel);
  free(ch->auth);
  free(ch);
}

static size_t auth_metadata(const wc_channel *ch, grpc_metadata *md) {
  if (!ch->auth) return 0;
  memset(md, 0, sizeof *md);
  md->key = grpc_slice_from_static_string("authorization");
  md->value = grpc_slice_from_static_string(ch->auth);
  return 1;
}

static grpc_byte_buffer *buffer_of(const void *buf, size_t len) {
  grpc_slice s = grpc_slice_from_copied_buffer(buf, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

static uint8_t *bytes_of(grpc_byte_buffer *bb, size_t *len) {
  grpc_byte_buffer_reader r;
  grpc_byte_buffer_reader_init(&r, bb);
  grpc_slice all = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  *len = GRPC_SLICE_LENGTH(all);
  uint8_t *out = malloc(*len ? *len : 1);
  memcpy(out, GRPC_SLICE_START_PTR(all), *len);
  grpc_slice_unref(all);
  return out;
}

static void copy_details(grpc_slice details, char *out, size_t len) {
  if (!out || !len) return;
  size_t n = GRPC_SLICE_LENGTH(details) < len - 1 ? GRPC_SLICE_LENGTH(details) : len - 1;
  memcpy(out, GRPC_SLICE_START_PTR(details), n);
  out[n] = '\0';
}

grpc_status_code wc_unary(wc_channel *ch, const char *method, const void *req, size_t req_len,
                          uint8_t **reply, size_t *reply_len, char *details, size_t details_len,
                          int timeout_ms) {
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec deadline = deadline_after(timeout_ms);
  grpc_slice path = grpc_slice_from_static_string(method);
  grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path,
                                             NULL, deadline, NULL);
  grpc_metadata md;
  grpc_metadata_array initial, trailing;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailing);
  grpc_byte_buffer *request = buffer_of(req, req_len), *response = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice status_details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[0].data.send_initial_metadata.count = auth_metadata(ch, &md);
  ops[0].data.send_initial_metadata.metadata = &md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &response;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &status_details;
  int tag;
  if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK)
    grpc_completion_queue_pluck(cq, &tag, pluck_deadline(deadline), NULL);
  *reply = NULL;
  *reply_len = 0;
  if (status == GRPC_STATUS_OK && response) *reply = bytes_of(response, reply_len);
  copy_details(status_details, details, details_len);
  if (response) grpc_byte_buffer_destroy(response);
  grpc_byte_buffer_destroy(request);
  grpc_slice_unref(status_details);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_completion_queue_destroy(cq);
  return status;
}

static void *unary_message(wc_channel *ch, const char *method, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *reply_type) {
  size_t len = protobuf_c_message_get_packed_size(req), reply_len;
  uint8_t *buf = malloc(len ? len : 1), *reply;
  protobuf_c_message_pack(req, buf);
  grpc_status_code st = wc_unary(ch, method, buf, len, &reply, &reply_len, NULL, 0, 30000);
  free(buf);
  if (st != GRPC_STATUS_OK) return NULL;
  void *m = protobuf_c_message_unpack(reply_type, NULL, reply_len, reply);
  free(reply);
  return m;
}

Modaltensor__V1__HelloReply *wc_hello(wc_channel *ch, uint32_t protocol_version, uint64_t hash,
                                      uint32_t op_count) {
  Modaltensor__V1__HelloRequest req = MODALTENSOR__V1__HELLO_REQUEST__INIT;
  req.protocol_version = protocol_version;
  req.op_table_hash = hash;
  req.op_count = op_count;
  return unary_message(ch, WC_METHOD("Hello"), &req.base,
                       &modaltensor__v1__hello_reply__descriptor);
}

Modaltensor__V1__StatsReply *wc_stats(wc_channel *ch, uint64_t session_id) {
  Modaltensor__V1__StatsRequest req = MODALTENSOR__V1__STATS_REQUEST__INIT;
  req.session_id = session_id;
  return unary_message(ch, WC_METHOD("Stats"), &req.base,
                       &modaltensor__v1__stats_reply__descriptor);
}

/* Runs one batch and waits for it; the event's success. */
static int batch(wc_stream *s, const grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(s->call, ops, n, &s->tag_batch, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->tag_batch, pluck_deadline(s->deadline), NULL);
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

wc_stream *wc_stream_open(wc_channel *ch, const char *method, int timeout_ms) {
  wc_stream *s = calloc(1, sizeof *s);
  s->ch = ch;
  s->cq = grpc_completion_queue_create_for_pluck(NULL);
  s->deadline = deadline_after(timeout_ms);
  s->details = grpc_empty_slice();
  s->status = GRPC_STATUS_UNKNOWN;
  grpc_metadata_array_init(&s->initial);
  grpc_metadata_array_init(&s->trailing);
  s->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                     grpc_slice_from_static_string(method), NULL, s->deadline, NULL);
  grpc_metadata md;
  grpc_op ops[1];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[0].data.send_initial_metadata.count = auth_metadata(ch, &md);
  ops[0].data.send_initial_metadata.metadata = &md;
  batch(s, ops, 1);
  /* The status arrives whenever the call ends; watch for it from now on. */
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing;
  ops[0].data.recv_status_on_client.status = &s->status;
  ops[0].data.recv_status_on_client.status_details = &s->details;
  s->status_started = grpc_call_start_batch(s->call, ops, 1, &s->tag_status, NULL) == GRPC_CALL_OK;
  return s;
}

int wc_stream_send_bytes(wc_stream *s, const void *buf, size_t len) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = buffer_of(buf, len);
  int ok = batch(s, &op, 1);
  grpc_byte_buffer_destroy(op.data.send_message.send_message);
  return ok ? 0 : -1;
}

int wc_stream_send(wc_stream *s, const Modaltensor__V1__ClientMessage *m) {
  size_t len = protobuf_c_message_get_packed_size(&m->base);
  uint8_t *buf = malloc(len ? len : 1);
  protobuf_c_message_pack(&m->base, buf);
  /* Hand the packed bytes over without another copy. */
  grpc_slice slice = grpc_slice_new(buf, len, free);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  int ok = batch(s, &op, 1);
  grpc_byte_buffer_destroy(op.data.send_message.send_message);
  return ok ? 0 : -1;
}

Modaltensor__V1__WorkerMessage *wc_stream_recv(wc_stream *s) {
  grpc_byte_buffer *bb = NULL;
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (!s->got_initial) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    n++;
    s->got_initial = 1;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &bb;
  n++;
  int ok = batch(s, ops, n);
  if (!ok || !bb) {
    if (bb) grpc_byte_buffer_destroy(bb);
    return NULL;
  }
  size_t len;
  uint8_t *bytes = bytes_of(bb, &len);
  grpc_byte_buffer_destroy(bb);
  Modaltensor__V1__WorkerMessage *m =
      modaltensor__v1__worker_message__unpack(NULL, len, bytes);
  free(bytes);
  return m;
}

void wc_message_free(Modaltensor__V1__WorkerMessage *m) {
  if (m) modaltensor__v1__worker_message__free_unpacked(m, NULL);
}

grpc_status_code wc_stream_finish(wc_stream *s, char *details, size_t details_len) {
  if (!s->closed_send) {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    batch(s, &op, 1);
    s->closed_send = 1;
  }
  if (!s->got_initial) { /* the status is only delivered after the headers */
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_INITIAL_METADATA;
    op.data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    batch(s, &op, 1);
    s->got_initial = 1;
  }
  if (s->status_started && !s->status_done) {
    grpc_completion_queue_pluck(s->cq, &s->tag_status, pluck_deadline(s->deadline), NULL);
    s->status_done = 1;
  }
  copy_details(s->details, details, details_len);
  return s->status;
}

void wc_stream_free(wc_stream *s) {
  if (!s) return;
  if (s->status_started && !s->status_done) {
    grpc_call_cancel(s->call, NULL);
    grpc_completion_queue_pluck(s->cq, &s->tag_status, pluck_deadline(s->deadline), NULL);
  }
  grpc_call_unref(s->call);
  grpc_completion_queue_destroy(s->cq);
  grpc_slice_unref(s->details);
  grpc_metadata_array_destroy(&s->initial);
  grpc_metadata_array_destroy(&s->trailing);
  free(s);
}
