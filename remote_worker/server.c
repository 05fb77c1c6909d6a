/*
 * server.c - accepting calls, authenticating them, and the unary methods.
 *
 * The main thread only accepts: for each call it requests, it binds a fresh
 * pluck completion queue to the call and, when the call arrives, hands both
 * to a new thread, which serves the call synchronously from start to end
 * (call.h). A Session call keeps its thread for the session's lifetime;
 * unary calls end quickly. Threads are joined as they finish and at
 * shutdown, when every call is cancelled first.
 */
#include "server.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "core/op_table.h"
#include "log.h"
#include "session.h"
#include "wire.h"

/* A unary call whose request does not arrive within this is dropped. */
#define UNARY_REQUEST_TIMEOUT_MS 30000

/* The receive windows: core/grpc_flow.h (a lookahead setting would never
 * reach the wire while BDP probing sizes them). */

/* Socket reads of 8 KiB (gRPC's default) take 128 system calls per
 * chunk; 256 KiB take 4. */
#define TCP_READ_CHUNK_BYTES (256 << 10)

/* Keepalive: ping an idle connection every 30 s and drop it when a ping
 * goes unanswered for 10 s, so a vanished client's sessions end. Clients
 * may ping every 10 s without data. */
#define KEEPALIVE_TIME_MS 30000
#define KEEPALIVE_TIMEOUT_MS 10000
#define MIN_CLIENT_PING_INTERVAL_MS 10000

/* One requested call, then the thread that serves it. */
typedef struct accepted {
  mtw_server *srv;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array metadata;
  grpc_completion_queue *cq; /* bound to the call, plucked by its thread */
  pthread_t thread;
  atomic_int done;
  struct accepted *next;
} accepted;

struct mtw_server {
  mtw_worker *w;
  grpc_server *server;
  grpc_completion_queue *cq; /* new calls and the shutdown notice */
  atomic_int stopping;
  atomic_int active_calls;       /* authorized calls being served */
  atomic_llong last_call_end_ms; /* monotonic; the start before any call */
  int shutdown_tag; /* its address is the tag */
  accepted *running; /* touched by the accepting thread only */
};

/* ------------------------------------------------------ compatibility */

mt_status mtw_check_compatible(uint32_t protocol_version, uint64_t op_table_hash,
                               uint32_t op_count, char *buf, size_t len) {
  if (protocol_version != MTI_PROTOCOL_VERSION) {
    snprintf(buf, len,
             "modaltensor-worker: the client speaks protocol %u, this worker %u: use a client "
             "and a worker of the same protocol",
             protocol_version, MTI_PROTOCOL_VERSION);
    return MT_ERR_UNSUPPORTED;
  }
  if (op_count > (uint32_t)MTI_OP_COUNT) {
    snprintf(buf, len,
             "modaltensor-worker: the client knows %u ops, this worker only %d: upgrade the worker",
             op_count, (int)MTI_OP_COUNT);
    return MT_ERR_UNSUPPORTED;
  }
  if (mti_op_table_hash((int)op_count) != op_table_hash) {
    snprintf(buf, len,
             "modaltensor-worker: the client's op table (%u ops) differs from this worker's: "
             "they were built from different op lists",
             op_count);
    return MT_ERR_UNSUPPORTED;
  }
  if (len) buf[0] = '\0';
  return MT_OK;
}

/* --------------------------------------------------------------- auth */

/* Compares in time that depends only on the expected length. */
static int bearer_matches(const char *token, grpc_slice value) {
  static const char prefix[] = "Bearer ";
  size_t plen = sizeof prefix - 1, want_len = plen + strlen(token);
  size_t got_len = GRPC_SLICE_LENGTH(value);
  const uint8_t *got = GRPC_SLICE_START_PTR(value);
  unsigned diff = got_len != want_len;
  for (size_t i = 0; i < want_len; i++) {
    uint8_t want = (uint8_t)(i < plen ? prefix[i] : token[i - plen]);
    diff |= (unsigned)(want ^ (i < got_len ? got[i] : 0));
  }
  return diff == 0;
}

/* The role a call's bearer token gives it. */
typedef enum role { ROLE_NONE, ROLE_CLIENT, ROLE_ADMIN } role;

static int bears(const char *token, const grpc_metadata_array *md) {
  for (size_t i = 0; i < md->count; i++)
    if (grpc_slice_str_cmp(md->metadata[i].key, "authorization") == 0)
      return bearer_matches(token, md->metadata[i].value);
  return 0;
}

/* A worker without a token serves everyone as its admin (whoever reaches
 * it may do anything anyway); with one, the admin token (--admin-token)
 * makes a call admin and the client token a client. */
static role role_of(const mtw_options *o, const grpc_metadata_array *md) {
  if (o->admin_token && bears(o->admin_token, md)) return ROLE_ADMIN;
  if (!o->token) return o->admin_token ? ROLE_CLIENT : ROLE_ADMIN;
  return bears(o->token, md) ? ROLE_CLIENT : ROLE_NONE;
}

/* -------------------------------------------------------------- unary */

static Modaltensor__V1__Status *ok_status(Modaltensor__V1__Status *st) {
  modaltensor__v1__status__init(st);
  return st;
}

static int64_t uptime_ms(const mtw_worker *w) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)(now.tv_sec - w->started.tv_sec) * 1000 +
         (now.tv_nsec - w->started.tv_nsec) / 1000000;
}

/* The handshake reply: compatibility, and each device with its memory as of
 * now (clients repeat Hello to read memory_allocated/reserved). free_memory
 * is the budget's room (what new tensors may still take), not the device's
 * free bytes: cached cuda blocks count as free. */
static grpc_byte_buffer *hello(mtw_worker *w, const Modaltensor__V1__HelloRequest *req) {
  char reason[MTW_MESSAGE_MAX];
  Modaltensor__V1__Status st;
  ok_status(&st);
  st.code = (int32_t)mtw_check_compatible(req->protocol_version, req->op_table_hash,
                                          req->op_count, reason, sizeof reason);
  st.message = reason;
  Modaltensor__V1__HelloReply reply = MODALTENSOR__V1__HELLO_REPLY__INIT;
  reply.status = &st;
  reply.protocol_version = MTI_PROTOCOL_VERSION;
  reply.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  reply.op_count = MTI_OP_COUNT;
  char version[32];
  snprintf(version, sizeof version, "%d.%d.%d", MT_VERSION_MAJOR, MT_VERSION_MINOR,
           MT_VERSION_PATCH);
  reply.worker_version = version;
  int n = w->device_count;
  Modaltensor__V1__DeviceInfo *infos = calloc((size_t)n, sizeof *infos);
  Modaltensor__V1__DeviceInfo **ptrs = calloc((size_t)n, sizeof *ptrs);
  mtw_device_props *props = calloc((size_t)n, sizeof *props);
  grpc_byte_buffer *bb = NULL;
  if (infos && ptrs && props) {
    for (int i = 0; i < n; i++) {
      w->backend->ops->device_props(w->backend, i, &props[i]);
      modaltensor__v1__device_info__init(&infos[i]);
      uint64_t used = mtw_memory_used(&w->memory[i]);
      infos[i].name = props[i].name;
      infos[i].total_memory = props[i].total_memory;
      infos[i].free_memory =
          (uint64_t)props[i].total_memory > used ? props[i].total_memory - (int64_t)used : 0;
      infos[i].major = props[i].major;
      infos[i].minor = props[i].minor;
      infos[i].multiprocessors = props[i].multiprocessors;
      infos[i].backend = (char *)w->backend->name;
      infos[i].used_memory = props[i].used_memory;
      infos[i].reserved_memory = props[i].reserved_memory;
      ptrs[i] = &infos[i];
    }
    reply.n_devices = (size_t)n;
    reply.devices = ptrs;
    bb = mtw_pack(&reply.base);
  }
  free(props);
  free(ptrs);
  free(infos);
  return bb;
}

static grpc_byte_buffer *health(mtw_worker *w) {
  Modaltensor__V1__Status st;
  Modaltensor__V1__HealthReply reply = MODALTENSOR__V1__HEALTH_REPLY__INIT;
  reply.status = ok_status(&st);
  reply.uptime_ms = (uint64_t)uptime_ms(w);
  return mtw_pack(&reply.base);
}

/* Counters: an admin reads the worker's and any session's; a client only
 * those of the session it names (its id is unguessable, so naming it
 * proves it is the client's own). */
static grpc_byte_buffer *stats(mtw_worker *w, const Modaltensor__V1__StatsRequest *req,
                               int admin) {
  Modaltensor__V1__Status st;
  char message[160];
  Modaltensor__V1__StatsReply reply = MODALTENSOR__V1__STATS_REPLY__INIT;
  reply.status = ok_status(&st);
  if (!admin && req->session_id == 0) {
    st.code = MT_ERR_INVALID_ARGUMENT;
    st.message = "stats: name your session's id; the worker's own counters and other sessions' "
                 "are for its admin (--admin-token)";
  } else if (mtw_stats_reply_fill(&w->stats, req->session_id, admin, &reply)) {
    st.code = MT_ERR_INVALID_ARGUMENT;
    snprintf(message, sizeof message, "stats: no open session %llu",
             (unsigned long long)req->session_id);
    st.message = message;
  }
  grpc_byte_buffer *bb = mtw_pack(&reply.base);
  mtw_stats_reply_free(&reply);
  return bb;
}

typedef enum method { M_HELLO, M_HEALTH, M_STATS, M_SESSION, M_UNKNOWN } method;

static const ProtobufCMessageDescriptor *request_type(method m) {
  switch (m) {
  case M_HELLO: return &modaltensor__v1__hello_request__descriptor;
  case M_HEALTH: return &modaltensor__v1__health_request__descriptor;
  default: return &modaltensor__v1__stats_request__descriptor;
  }
}

/* One request, one reply. */
static void serve_unary(mtw_worker *w, mtw_call *c, method m, int admin) {
  grpc_byte_buffer *bb = NULL;
  if (mtw_call_start(c) ||
      mtw_call_recv(c, UNARY_REQUEST_TIMEOUT_MS, "modaltensor-worker: no request arrived", &bb) !=
          MTW_RECV_MESSAGE) {
    mtw_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT, "modaltensor-worker: no request message");
    return;
  }
  ProtobufCMessage *req = mtw_unpack(request_type(m), bb);
  grpc_byte_buffer_destroy(bb);
  if (!req) {
    mtw_call_finish(c, GRPC_STATUS_INVALID_ARGUMENT,
                    "modaltensor-worker: the request does not decode");
    return;
  }
  grpc_byte_buffer *reply =
      m == M_HELLO    ? hello(w, (const Modaltensor__V1__HelloRequest *)req)
      : m == M_HEALTH ? health(w)
                      : stats(w, (const Modaltensor__V1__StatsRequest *)req, admin);
  mtw_unpacked_free(req);
  if (mtw_call_send(c, reply, UNARY_REQUEST_TIMEOUT_MS, "modaltensor-worker: reply not taken"))
    mtw_call_finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "modaltensor-worker: sending failed");
  else
    mtw_call_finish(c, GRPC_STATUS_OK, NULL);
}

/* ------------------------------------------------------------ threads */

static int64_t monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t mtw_server_idle_ms(mtw_server *srv) {
  if (atomic_load(&srv->active_calls) > 0) return 0;
  int64_t idle = monotonic_ms() - (int64_t)atomic_load(&srv->last_call_end_ms);
  return idle > 0 ? idle : 0;
}

/* Serves one authorized call, keeping the idle clock: the end is stamped
 * before the count drops, so a reader that sees no call sees its end. */
static void serve_authorized(mtw_server *srv, mtw_call *c, method m, int admin) {
  atomic_fetch_add(&srv->active_calls, 1);
  if (m == M_SESSION) mtw_session_serve(srv->w, c);
  else if (m != M_UNKNOWN) serve_unary(srv->w, c, m, admin);
  else mtw_call_finish(c, GRPC_STATUS_UNIMPLEMENTED, "modaltensor-worker: no such method");
  atomic_store(&srv->last_call_end_ms, (long long)monotonic_ms());
  atomic_fetch_sub(&srv->active_calls, 1);
}

static method method_of(grpc_slice path) {
  static const char *const names[] = {MTI_METHOD_HELLO, MTI_METHOD_HEALTH, MTI_METHOD_STATS,
                                      MTI_METHOD_SESSION};
  for (int i = 0; i < 4; i++)
    if (grpc_slice_str_cmp(path, names[i]) == 0) return (method)i;
  return M_UNKNOWN;
}

static void *serve_call(void *arg) {
  accepted *a = arg;
  mtw_worker *w = a->srv->w;
  mtw_call c = {.call = a->call, .cq = a->cq};
  method m = method_of(a->details.method);
  if (mtw_log_enabled(MTW_LOG_DEBUG)) {
    char *peer = grpc_call_get_peer(a->call);
    char path[96];
    char *p = grpc_slice_to_c_string(a->details.method);
    mtw_log(MTW_LOG_DEBUG, "call %s from %s", mtw_log_sanitize(path, sizeof path, p), peer);
    gpr_free(p);
    gpr_free(peer);
  }
  role r = role_of(w->options, &a->metadata);
  if (r == ROLE_NONE) {
    char *peer = grpc_call_get_peer(a->call);
    mtw_log(MTW_LOG_WARN, "refused a call from %s: missing or wrong token", peer);
    gpr_free(peer);
    mtw_call_finish(&c, GRPC_STATUS_UNAUTHENTICATED,
                    "modaltensor-worker: missing or wrong bearer token");
  } else {
    serve_authorized(a->srv, &c, m, r == ROLE_ADMIN);
  }
  grpc_call_unref(a->call);
  a->call = NULL;
  atomic_store(&a->done, 1);
  return NULL;
}

static void accepted_free(accepted *a) {
  if (a->call) grpc_call_unref(a->call);
  grpc_completion_queue_destroy(a->cq);
  grpc_call_details_destroy(&a->details);
  grpc_metadata_array_destroy(&a->metadata);
  free(a);
}

/* Asks gRPC for the next call; NULL when it cannot (shutting down). */
static accepted *request_call(mtw_server *srv) {
  accepted *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->srv = srv;
  grpc_call_details_init(&a->details);
  grpc_metadata_array_init(&a->metadata);
  atomic_init(&a->done, 0);
  a->cq = grpc_completion_queue_create_for_pluck(NULL);
  if (grpc_server_request_call(srv->server, &a->call, &a->details, &a->metadata, a->cq, srv->cq,
                               a) != GRPC_CALL_OK) {
    accepted_free(a);
    return NULL;
  }
  return a;
}

static void start_thread(mtw_server *srv, accepted *a) {
  if (pthread_create(&a->thread, NULL, serve_call, a) != 0) {
    mtw_log(MTW_LOG_ERROR, "no thread for a new call: refused");
    grpc_call_cancel_with_status(a->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                 "modaltensor-worker: out of threads", NULL);
    accepted_free(a);
    return;
  }
  a->next = srv->running;
  srv->running = a;
}

/* Joins the threads whose call is over (all of them when all is set). */
static void reap(mtw_server *srv, int all) {
  for (accepted **p = &srv->running; *p;) {
    accepted *a = *p;
    if (all || atomic_load(&a->done)) {
      pthread_join(a->thread, NULL);
      *p = a->next;
      accepted_free(a);
    } else {
      p = &a->next;
    }
  }
}

void mtw_server_run(mtw_server *srv) {
  accepted *pending = request_call(srv);
  int shut_down = 0;
  while (!shut_down || pending) {
    grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (ev.tag == &srv->shutdown_tag) {
      shut_down = 1;
      continue;
    }
    accepted *a = ev.tag;
    pending = NULL;
    if (ev.success) start_thread(srv, a);
    else accepted_free(a);
    reap(srv, 0);
    if (!atomic_load(&srv->stopping)) pending = request_call(srv);
  }
  reap(srv, 1);
}

void mtw_server_stop(mtw_server *srv) {
  if (atomic_exchange(&srv->stopping, 1)) return;
  grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
  grpc_server_cancel_all_calls(srv->server);
}

static void destroy_queue(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
}

void mtw_server_destroy(mtw_server *srv) {
  grpc_server_destroy(srv->server);
  destroy_queue(srv->cq);
  free(srv);
}

/* Plain credentials, or TLS with tls's certificate and key (clients are
 * not asked for certificates: the bearer token authenticates them). */
static grpc_server_credentials *server_credentials(const mtw_tls_pem *tls) {
  if (!tls) return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {tls->private_key, tls->cert_chain};
  return grpc_ssl_server_credentials_create_ex(NULL, &pair, 1,
                                               GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
}

/* Whether listen can be bound without TLS: after a TLS bind failed, tells
 * a bad address from a certificate or key that gRPC refused. */
static int address_bindable(const char *listen) {
  grpc_server *probe = grpc_server_create(NULL, NULL);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(probe, cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int ok = grpc_server_add_http2_port(probe, listen, creds) != 0;
  grpc_server_credentials_release(creds);
  int shutdown_tag;
  grpc_server_shutdown_and_notify(probe, cq, &shutdown_tag);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).tag !=
         &shutdown_tag) {
  }
  grpc_server_destroy(probe);
  destroy_queue(cq);
  return ok;
}

mtw_server *mtw_server_start(mtw_worker *w, const char *listen, const mtw_tls_pem *tls, int *port,
                             int *tls_rejected) {
  *tls_rejected = 0;
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = MTI_MAX_MESSAGE_BYTES}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, {.integer = MTI_MAX_MESSAGE_BYTES}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_TCP_READ_CHUNK_SIZE, {.integer = TCP_READ_CHUNK_BYTES}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, {.integer = TCP_READ_CHUNK_BYTES}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_KEEPALIVE_TIME_MS, {.integer = KEEPALIVE_TIME_MS}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS, {.integer = KEEPALIVE_TIMEOUT_MS}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, {.integer = 1}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, {.integer = 0}},
      {GRPC_ARG_INTEGER, (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
       {.integer = MIN_CLIENT_PING_INTERVAL_MS}},
  };
  grpc_channel_args chargs = {sizeof args / sizeof args[0], args};
  mtw_server *srv = calloc(1, sizeof *srv);
  if (!srv) return NULL;
  srv->w = w;
  atomic_init(&srv->stopping, 0);
  atomic_init(&srv->active_calls, 0);
  atomic_init(&srv->last_call_end_ms, (long long)monotonic_ms());
  srv->server = grpc_server_create(&chargs, NULL);
  srv->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
  grpc_server_credentials *creds = server_credentials(tls);
  *port = creds ? grpc_server_add_http2_port(srv->server, listen, creds) : 0;
  if (creds) grpc_server_credentials_release(creds);
  if (*port == 0) {
    *tls_rejected = tls && address_bindable(listen);
    if (*tls_rejected)
      mtw_log(MTW_LOG_ERROR, "cannot serve TLS on %s: gRPC refused the certificate and key (is "
              "the key the one of the certificate, both PEM, the key unencrypted?)", listen);
    else
      mtw_log(MTW_LOG_ERROR, "cannot listen on %s", listen);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
    while (grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).tag !=
           &srv->shutdown_tag) {
    }
    mtw_server_destroy(srv);
    return NULL;
  }
  grpc_server_start(srv->server);
  return srv;
}
