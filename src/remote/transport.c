/*
 * transport.c - gRPC C core client: channels, unary calls, Session streams.
 *
 * Every wait is a pluck on a per-call completion queue with a deadline, so a
 * dead or hung worker turns into MT_ERR_UNAVAILABLE or MT_ERR_TIMEOUT.
 */
#include "remote/transport.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/protocol.h"

struct mti_channel {
  grpc_channel *channel;
  char *target;
  char *auth; /* "Bearer <token>", or NULL */
};

struct mti_stream {
  mti_channel *ch;
  grpc_call *call;
  grpc_completion_queue *cq;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice details;
  int got_initial_md;
  int ended;   /* the status has arrived */
  int broken;  /* a send or receive failed: only closing is left */
  char status_tag, send_tag, recv_tag;
};

static pthread_once_t grpc_once = PTHREAD_ONCE_INIT;
static void init_grpc(void) { grpc_init(); }

static gpr_timespec deadline_in(int64_t ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static mt_status status_of_grpc(grpc_status_code code) {
  switch (code) {
  case GRPC_STATUS_OK: return MT_OK;
  case GRPC_STATUS_UNAUTHENTICATED:
  case GRPC_STATUS_PERMISSION_DENIED: return MT_ERR_UNAUTHENTICATED;
  case GRPC_STATUS_DEADLINE_EXCEEDED: return MT_ERR_TIMEOUT;
  case GRPC_STATUS_UNAVAILABLE:
  case GRPC_STATUS_CANCELLED: return MT_ERR_UNAVAILABLE;
  case GRPC_STATUS_RESOURCE_EXHAUSTED: return MT_ERR_OUT_OF_MEMORY;
  default: return MT_ERR_REMOTE;
  }
}

/* Loopback and unix-socket targets are the only ones this build reaches:
 * anything else would need TLS to carry the token safely. */
static int is_local_target(const char *t) {
  static const char *const prefixes[] = {"unix:", "localhost:", "127.", "[::1]:",
                                         "ipv4:127.", "ipv6:[::1]:"};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (strncmp(t, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return 0;
}

mt_status mti_channel_create(const char *fn, const char *target, const char *token,
                             mti_channel **out) {
  if (!is_local_target(target))
    return mti_error(MT_ERR_UNSUPPORTED,
                     "%s: worker %s: not a loopback or unix address; reaching it needs TLS, "
                     "which this build does not support yet", fn, target);
  pthread_once(&grpc_once, init_grpc);
  mti_channel *ch = calloc(1, sizeof *ch);
  if (!ch) return mti_error_oom(fn, sizeof *ch);
  ch->target = strdup(target);
  if (token && *token) {
    size_t len = strlen(token) + 8;
    if ((ch->auth = malloc(len))) snprintf(ch->auth, len, "Bearer %s", token);
  }
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       {.integer = (int)MTI_MAX_MESSAGE_BYTES}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
       {.integer = (int)MTI_MAX_MESSAGE_BYTES}},
      /* Each client process gets its own connection (and so its own worker
       * session threads), even when it opens several channels. */
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
  };
  grpc_channel_args cargs = {sizeof args / sizeof *args, args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  ch->channel = creds ? grpc_channel_create(target, creds, &cargs) : NULL;
  if (creds) grpc_channel_credentials_release(creds);
  if (!ch->target || (token && *token && !ch->auth) || !ch->channel) {
    mti_channel_destroy(ch);
    return mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s: cannot create a channel", fn, target);
  }
  *out = ch;
  return MT_OK;
}

void mti_channel_destroy(mti_channel *ch) {
  if (!ch) return;
  if (ch->channel) grpc_channel_destroy(ch->channel);
  free(ch->target);
  free(ch->auth);
  free(ch);
}

const char *mti_channel_target(const mti_channel *ch) { return ch->target; }

/* ------------------------------------------------------------ messages */

static grpc_byte_buffer *pack(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return NULL;
  protobuf_c_message_pack(msg, buf);
  grpc_slice slice = grpc_slice_new(buf, len, free);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  return bb;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader reader;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return NULL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  ProtobufCMessage *m =
      protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
  grpc_slice_unref(all);
  return m;
}

/* The authorization metadata of ch (count 0 or 1). */
static size_t auth_metadata(const mti_channel *ch, grpc_metadata *md) {
  if (!ch->auth) return 0;
  memset(md, 0, sizeof *md);
  md->key = grpc_slice_from_static_string("authorization");
  md->value = grpc_slice_from_static_string(ch->auth);
  return 1;
}

/* Error for a call that ended with (code, details). */
static mt_status call_error(const char *fn, const mti_channel *ch, grpc_status_code code,
                            grpc_slice details) {
  char *text = grpc_slice_to_c_string(details);
  mt_status s = status_of_grpc(code);
  if (s == MT_OK) s = MT_ERR_UNAVAILABLE; /* ended early without an error status */
  if (code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_CANCELLED)
    mti_error(s, "%s: worker %s is unavailable (%s)", fn, ch->target, text ? text : "");
  else
    mti_error(s, "%s: worker %s: %s", fn, ch->target, text ? text : "call failed");
  gpr_free(text);
  return s;
}

/* ------------------------------------------------------------ unary */

mt_status mti_channel_unary(const char *fn, mti_channel *ch, const char *method,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                            ProtobufCMessage **reply) {
  *reply = NULL;
  grpc_byte_buffer *send = pack(req);
  if (!send) return mti_error_oom(fn, protobuf_c_message_get_packed_size(req));
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_slice path = grpc_slice_from_static_string(method);
  gpr_timespec deadline = deadline_in(timeout_ms);
  grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path,
                                             NULL, deadline, NULL);
  grpc_metadata md;
  grpc_metadata_array initial, trailing;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailing);
  grpc_byte_buffer *recv = NULL;
  grpc_status_code code = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[0].data.send_initial_metadata.count = auth_metadata(ch, &md);
  ops[0].data.send_initial_metadata.metadata = &md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.status = &code;
  ops[5].data.recv_status_on_client.status_details = &details;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  mt_status s = MT_OK;
  if (grpc_call_start_batch(call, ops, 6, ops, NULL) != GRPC_CALL_OK) {
    s = mti_error(MT_ERR_INTERNAL, "%s: worker %s: cannot start a call", fn, ch->target);
  } else {
    /* The call's own deadline ends the batch; waiting for it is bounded. */
    grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (code != GRPC_STATUS_OK) s = call_error(fn, ch, code, details);
    else if (!recv || !(*reply = unpack(reply_desc, recv)))
      s = mti_error(MT_ERR_REMOTE, "%s: worker %s: malformed reply to %s", fn, ch->target, method);
  }
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(send);
  grpc_slice_unref(details);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  return s;
}

/* ------------------------------------------------------------ streams */

/* Runs a batch and waits for it: 1 done, 0 failed, -1 deadline passed. */
static int run_batch(mti_stream *s, grpc_op *ops, size_t n, void *tag, int64_t timeout_ms) {
  if (grpc_call_start_batch(s->call, ops, n, tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(s->cq, tag, deadline_in(timeout_ms), NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    grpc_call_cancel(s->call, NULL);
    grpc_completion_queue_pluck(s->cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return -1;
  }
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Marks s broken and reports why: the call's final status when it has one
 * (waiting briefly for it), else the fallback. */
static mt_status stream_failed(const char *fn, mti_stream *s, int timed_out) {
  s->broken = 1;
  if (timed_out)
    return mti_error(MT_ERR_TIMEOUT, "%s: worker %s did not answer in time (MODALTENSOR_TIMEOUT)",
                     fn, s->ch->target);
  if (!s->ended) {
    grpc_call_cancel(s->call, NULL);
    grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->status_tag, deadline_in(5000), NULL);
    s->ended = ev.type == GRPC_OP_COMPLETE;
  }
  if (!s->ended)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s: the session stream broke", fn,
                     s->ch->target);
  return call_error(fn, s->ch, s->status, s->details);
}

mt_status mti_stream_open(const char *fn, mti_channel *ch, int64_t timeout_ms, mti_stream **out) {
  mti_stream *s = calloc(1, sizeof *s);
  if (!s) return mti_error_oom(fn, sizeof *s);
  s->ch = ch;
  s->cq = grpc_completion_queue_create_for_pluck(NULL);
  s->details = grpc_empty_slice();
  grpc_metadata_array_init(&s->initial_md);
  grpc_metadata_array_init(&s->trailing_md);
  s->call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                     grpc_slice_from_static_string(MTI_METHOD_SESSION), NULL,
                                     gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_metadata md;
  grpc_op ops[1];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.status = &s->status;
  ops[0].data.recv_status_on_client.status_details = &s->details;
  ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
  if (!s->call || grpc_call_start_batch(s->call, ops, 1, &s->status_tag, NULL) != GRPC_CALL_OK) {
    s->ended = 1; /* no status batch to wait for */
    mti_stream_close(s);
    return mti_error(MT_ERR_INTERNAL, "%s: worker %s: cannot start a session", fn, ch->target);
  }
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[0].data.send_initial_metadata.count = auth_metadata(ch, &md);
  ops[0].data.send_initial_metadata.metadata = &md;
  if (run_batch(s, ops, 1, &s->send_tag, timeout_ms) != 1) {
    mt_status st = stream_failed(fn, s, 0);
    mti_stream_close(s);
    return st;
  }
  *out = s;
  return MT_OK;
}

mt_status mti_stream_send(const char *fn, mti_stream *s, const ProtobufCMessage *msg,
                          int64_t timeout_ms) {
  if (s->broken) return stream_failed(fn, s, 0);
  grpc_byte_buffer *bb = pack(msg);
  if (!bb) return mti_error_oom(fn, protobuf_c_message_get_packed_size(msg));
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = bb;
  int ok = run_batch(s, &op, 1, &s->send_tag, timeout_ms);
  grpc_byte_buffer_destroy(bb);
  return ok == 1 ? MT_OK : stream_failed(fn, s, ok == -1);
}

mt_status mti_stream_recv(const char *fn, mti_stream *s, int64_t timeout_ms,
                          Modaltensor__V1__WorkerMessage **out) {
  *out = NULL;
  if (s->broken) return stream_failed(fn, s, 0);
  grpc_byte_buffer *bb = NULL;
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (!s->got_initial_md) {
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
  }
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n++].data.recv_message.recv_message = &bb;
  int ok = run_batch(s, ops, n, &s->recv_tag, timeout_ms);
  s->got_initial_md = 1;
  if (ok != 1 || !bb) {
    if (bb) grpc_byte_buffer_destroy(bb);
    return stream_failed(fn, s, ok == -1);
  }
  *out = (Modaltensor__V1__WorkerMessage *)unpack(&modaltensor__v1__worker_message__descriptor, bb);
  grpc_byte_buffer_destroy(bb);
  if (!*out) {
    s->broken = 1;
    return mti_error(MT_ERR_REMOTE, "%s: worker %s sent a malformed message", fn, s->ch->target);
  }
  return MT_OK;
}

void mti_stream_close(mti_stream *s) {
  if (!s) return;
  if (s->call) {
    if (!s->ended) {
      grpc_call_cancel(s->call, NULL);
      grpc_completion_queue_pluck(s->cq, &s->status_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    grpc_call_unref(s->call);
  }
  grpc_completion_queue_shutdown(s->cq);
  grpc_completion_queue_destroy(s->cq);
  grpc_slice_unref(s->details);
  grpc_metadata_array_destroy(&s->initial_md);
  grpc_metadata_array_destroy(&s->trailing_md);
  free(s);
}
