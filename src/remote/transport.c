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
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/grpc_flow.h"
#include "core/protocol.h"

struct mti_channel {
  grpc_channel *channel;
  char *target; /* the address as the user wrote it */
  char *auth;   /* "Bearer <token>", or NULL */
  int tls;
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
  grpc_byte_buffer *left; /* the first message read while the stream failed */
  char status_tag, send_tag, recv_tag;
};

static pthread_once_t grpc_once = PTHREAD_ONCE_INIT;
static void init_grpc(void) {
  mti_grpc_choose_flow_control();
  grpc_init();
}

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

/* The largest CA file read (a system bundle is about 220 KiB). */
#define MAX_CA_FILE_BYTES (4 << 20)

/* The contents of the CA file at path, NUL-terminated (free it), or NULL
 * with the error set. */
static char *read_ca_file(const char *fn, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: MODALTENSOR_TLS_CA=%s: cannot read it: %s", fn, path,
              strerror(errno));
    return NULL;
  }
  char *pem = malloc(MAX_CA_FILE_BYTES + 1);
  size_t n = pem ? fread(pem, 1, MAX_CA_FILE_BYTES, f) : 0;
  int failed = ferror(f) || !feof(f);
  fclose(f);
  if (!pem) {
    mti_error_oom(fn, MAX_CA_FILE_BYTES);
    return NULL;
  }
  pem[n] = '\0';
  if (failed || !strstr(pem, "-----BEGIN CERTIFICATE-----")) {
    mti_error(MT_ERR_INVALID_ARGUMENT,
              "%s: MODALTENSOR_TLS_CA=%s: %s", fn, path,
              failed ? "cannot read it whole (not a file, or over 4 MiB)"
                     : "holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
    free(pem);
    return NULL;
  }
  return pem;
}

/* TLS credentials trusting the CAs in ca_file, or, with none, gRPC's
 * default roots: GRPC_DEFAULT_SSL_ROOTS_FILE_PATH when set, else the
 * system's store (/etc/ssl/certs/ca-certificates.crt and its kin), else
 * the roots installed with gRPC (/usr/share/grpc/roots.pem). */
static mt_status tls_credentials(const char *fn, const char *ca_file,
                                 grpc_channel_credentials **out) {
  char *pem = NULL;
  if (ca_file && *ca_file && !(pem = read_ca_file(fn, ca_file))) return mt_last_status();
  *out = grpc_ssl_credentials_create(pem, NULL, NULL, NULL);
  free(pem);
  return MT_OK;
}

/* The plain or TLS credentials addr asks for. */
static mt_status channel_credentials(const char *fn, const mti_address *addr,
                                     const mti_channel_config *cfg,
                                     grpc_channel_credentials **out) {
  if (addr->tls) return tls_credentials(fn, cfg->tls_ca, out);
  *out = grpc_insecure_credentials_create();
  return MT_OK;
}

mt_status mti_channel_create(const char *fn, const char *address, const mti_channel_config *cfg,
                             mti_channel **out) {
  mti_address addr;
  mt_status s = mti_address_parse(fn, address, cfg->tls_mode, &addr);
  if (s) return s;
  int has_token = cfg->token && *cfg->token;
  if (has_token && !addr.tls && !addr.local)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: worker %s: refusing to send MODALTENSOR_TOKEN in clear over the "
                     "network: reach a non-loopback worker over TLS (an https:// address, or "
                     "MODALTENSOR_TLS unset or 1)", fn, address);
  pthread_once(&grpc_once, init_grpc);
  grpc_channel_credentials *creds = NULL;
  if ((s = channel_credentials(fn, &addr, cfg, &creds))) return s;
  mti_channel *ch = calloc(1, sizeof *ch);
  if (!ch) {
    if (creds) grpc_channel_credentials_release(creds);
    return mti_error_oom(fn, sizeof *ch);
  }
  ch->target = strdup(address);
  ch->tls = addr.tls;
  if (has_token) {
    size_t len = strlen(cfg->token) + 8;
    if ((ch->auth = malloc(len))) snprintf(ch->auth, len, "Bearer %s", cfg->token);
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
  ch->channel = creds ? grpc_channel_create(addr.target, creds, &cargs) : NULL;
  if (creds) grpc_channel_credentials_release(creds);
  if (!ch->target || (has_token && !ch->auth) || !ch->channel) {
    mti_channel_destroy(ch);
    return mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s: cannot create a channel", fn, address);
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

void mti_channel_connect(mti_channel *ch) {
  grpc_channel_check_connectivity_state(ch->channel, 1);
}

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

/* Whether gRPC's text for a failed connection speaks of TLS. */
static int mentions_tls(const char *text) {
  static const char *const words[] = {"ssl", "tls", "handshake", "certificate", "alpn"};
  char lower[512];
  size_t n = 0;
  for (; text && text[n] && n + 1 < sizeof lower; n++)
    lower[n] = (char)tolower((unsigned char)text[n]);
  lower[n] = '\0';
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    if (strstr(lower, words[i])) return 1;
  return 0;
}

/* The likely cause of a failed handshake, from gRPC's text: a peer that
 * answers in plain text, a TLS endpoint that does not offer HTTP/2 (ALPN
 * "h2"), else a certificate this client does not accept. */
static mt_status tls_error(const char *fn, const mti_channel *ch, const char *detail) {
  const char *why =
      strstr(detail, "wrong version number")
          ? "the worker does not seem to speak TLS (start it with --tls-cert and --tls-key, or "
            "reach it through a TLS proxy)"
      : strstr(detail, "ALPN")
          ? "the TLS endpoint does not offer HTTP/2 (behind Modal, forward the worker's port "
            "with modal.forward(port, h2_enabled=True))"
          : "the worker's certificate is not trusted or does not name this address (for a "
            "private CA, set MODALTENSOR_TLS_CA to its PEM file)";
  return mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s: the TLS handshake failed: %s [%s]", fn,
                   ch->target, why, detail);
}

/* Error for a call that ended with (code, details). */
static mt_status call_error(const char *fn, const mti_channel *ch, grpc_status_code code,
                            grpc_slice details) {
  char *text = grpc_slice_to_c_string(details);
  mt_status s = status_of_grpc(code);
  if (s == MT_OK) s = MT_ERR_UNAVAILABLE; /* ended early without an error status */
  if (ch->tls && code == GRPC_STATUS_UNAVAILABLE && mentions_tls(text))
    tls_error(fn, ch, text);
  else if (code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_CANCELLED)
    mti_error(s, "%s: worker %s is unavailable (%s)", fn, ch->target, text ? text : "");
  else
    mti_error(s, "%s: worker %s: %s", fn, ch->target, text ? text : "call failed");
  gpr_free(text);
  return s;
}

/* ------------------------------------------------------------ unary */

/* The outcome of one unary call; free with unary_result_free. */
typedef struct unary_result {
  grpc_status_code code;
  grpc_slice details;
  grpc_byte_buffer *reply; /* NULL when none came */
} unary_result;

static void unary_result_free(unary_result *r) {
  if (r->reply) grpc_byte_buffer_destroy(r->reply);
  grpc_slice_unref(r->details);
}

/* One unary call of method with request send, ended by its deadline at
 * the latest. flags: GRPC_INITIAL_METADATA_WAIT_FOR_READY to wait for the
 * worker to come up, 0 to fail at once when it cannot be reached. 0 when
 * the call ran (*r holds its end), -1 when it could not start. */
static int run_unary(mti_channel *ch, const char *method, grpc_byte_buffer *send,
                     int64_t timeout_ms, uint32_t flags, unary_result *r) {
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_call *call = grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                             grpc_slice_from_static_string(method), NULL,
                                             deadline_in(timeout_ms), NULL);
  grpc_metadata md;
  grpc_metadata_array initial, trailing;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailing);
  r->code = GRPC_STATUS_UNKNOWN;
  r->details = grpc_empty_slice();
  r->reply = NULL;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = flags;
  ops[0].data.send_initial_metadata.count = auth_metadata(ch, &md);
  ops[0].data.send_initial_metadata.metadata = &md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &r->reply;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.status = &r->code;
  ops[5].data.recv_status_on_client.status_details = &r->details;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
  int started = grpc_call_start_batch(call, ops, 6, ops, NULL) == GRPC_CALL_OK;
  /* The call's own deadline ends the batch; waiting for it is bounded. */
  if (started) grpc_completion_queue_pluck(cq, ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailing);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  if (!started) unary_result_free(r);
  return started ? 0 : -1;
}

mt_status mti_channel_unary(const char *fn, mti_channel *ch, const char *method,
                            const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *reply_desc, int64_t timeout_ms,
                            ProtobufCMessage **reply) {
  *reply = NULL;
  grpc_byte_buffer *send = pack(req);
  if (!send) return mti_error_oom(fn, protobuf_c_message_get_packed_size(req));
  unary_result r;
  mt_status s = MT_OK;
  if (run_unary(ch, method, send, timeout_ms, GRPC_INITIAL_METADATA_WAIT_FOR_READY, &r)) {
    s = mti_error(MT_ERR_INTERNAL, "%s: worker %s: cannot start a call", fn, ch->target);
  } else {
    if (r.code != GRPC_STATUS_OK) s = call_error(fn, ch, r.code, r.details);
    else if (!r.reply || !(*reply = unpack(reply_desc, r.reply)))
      s = mti_error(MT_ERR_REMOTE, "%s: worker %s: malformed reply to %s", fn, ch->target, method);
    unary_result_free(&r);
  }
  grpc_byte_buffer_destroy(send);
  return s;
}

/* A call that waits for the worker only reports a deadline, however the
 * connection attempts failed. A call that does not wait fails with the
 * last attempt's error, whose text names a failed TLS handshake. */
#define TLS_PROBE_TIMEOUT_MS 3000

mt_status mti_channel_tls_failure(const char *fn, mti_channel *ch) {
  if (!ch->tls) return MT_OK;
  Modaltensor__V1__HealthRequest req = MODALTENSOR__V1__HEALTH_REQUEST__INIT;
  grpc_byte_buffer *send = pack(&req.base);
  unary_result r;
  mt_status s = MT_OK;
  if (send && run_unary(ch, MTI_METHOD_HEALTH, send, TLS_PROBE_TIMEOUT_MS, 0, &r) == 0) {
    char *text = grpc_slice_to_c_string(r.details);
    if (r.code == GRPC_STATUS_UNAVAILABLE && mentions_tls(text)) s = tls_error(fn, ch, text);
    gpr_free(text);
    unary_result_free(&r);
  }
  if (send) grpc_byte_buffer_destroy(send);
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

/* How long a failed stream waits for what the worker sent before it
 * ended: its last messages and its status. */
#define STATUS_GRACE_MS 1000

/* One RECV_MESSAGE (with the initial metadata when still due): the
 * message, or NULL at the end of the stream or on failure (*ok as
 * run_batch). */
static grpc_byte_buffer *recv_buffer(mti_stream *s, int64_t timeout_ms, int *ok) {
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
  *ok = run_batch(s, ops, n, &s->recv_tag, timeout_ms);
  s->got_initial_md = 1;
  if (*ok != 1 && bb) {
    grpc_byte_buffer_destroy(bb);
    bb = NULL;
  }
  return bb;
}

/* Reads what a worker that ended the stream sent: gRPC delivers its
 * status only once the messages before it were read. The first is kept
 * for mti_stream_recv_left. */
static void drain(mti_stream *s) {
  for (int i = 0; i < 64; i++) {
    int ok;
    grpc_byte_buffer *bb = recv_buffer(s, STATUS_GRACE_MS, &ok);
    if (!bb) return;
    if (!s->left) s->left = bb;
    else grpc_byte_buffer_destroy(bb);
  }
}

/* Marks s broken and reports why: the call's final status when it has one
 * (waiting briefly for it), else the fallback. */
static mt_status stream_failed(const char *fn, mti_stream *s, int timed_out) {
  int first = !s->broken;
  s->broken = 1;
  if (timed_out)
    return mti_error(MT_ERR_TIMEOUT, "%s: worker %s did not answer in time (MODALTENSOR_TIMEOUT)",
                     fn, s->ch->target);
  /* A worker that ended the stream sent its status: read up to it before
   * cancelling, which would replace it with CANCELLED. */
  if (!s->ended && first) {
    drain(s);
    grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->status_tag,
                                                deadline_in(STATUS_GRACE_MS), NULL);
    s->ended = ev.type == GRPC_OP_COMPLETE;
  }
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
  int ok = run_batch(s, ops, 1, &s->send_tag, timeout_ms);
  if (ok != 1) {
    mt_status st = ok == -1 ? MT_ERR_TIMEOUT : stream_failed(fn, s, 0);
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

static mt_status unpack_message(const char *fn, mti_stream *s, grpc_byte_buffer *bb,
                                Modaltensor__V1__WorkerMessage **out) {
  *out = (Modaltensor__V1__WorkerMessage *)unpack(&modaltensor__v1__worker_message__descriptor, bb);
  grpc_byte_buffer_destroy(bb);
  if (*out) return MT_OK;
  s->broken = 1;
  return mti_error(MT_ERR_REMOTE, "%s: worker %s sent a malformed message", fn, s->ch->target);
}

mt_status mti_stream_recv(const char *fn, mti_stream *s, int64_t timeout_ms,
                          Modaltensor__V1__WorkerMessage **out) {
  *out = NULL;
  if (s->broken) return stream_failed(fn, s, 0);
  int ok;
  grpc_byte_buffer *bb = recv_buffer(s, timeout_ms, &ok);
  if (!bb) return stream_failed(fn, s, ok == -1);
  return unpack_message(fn, s, bb, out);
}

mt_status mti_stream_recv_left(const char *fn, mti_stream *s,
                               Modaltensor__V1__WorkerMessage **out) {
  *out = NULL;
  grpc_byte_buffer *bb = s->left;
  s->left = NULL;
  if (!bb)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s sent nothing more", fn, s->ch->target);
  return unpack_message(fn, s, bb, out);
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
  if (s->left) grpc_byte_buffer_destroy(s->left);
  grpc_slice_unref(s->details);
  grpc_metadata_array_destroy(&s->initial_md);
  grpc_metadata_array_destroy(&s->trailing_md);
  free(s);
}
