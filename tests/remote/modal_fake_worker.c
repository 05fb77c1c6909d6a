/*
 * modal_fake_worker.c - an incompatible "worker" (gRPC core server) and a
 * port that hangs up (plain sockets); see modal_fake_worker.h.
 */
#include "modal_fake_worker.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "modal_harness.h"
#include "modaltensor.pb-c.h"

struct mh_fake {
  pthread_t thread;
  /* the gRPC kind */
  grpc_server *server;
  grpc_completion_queue *cq;
  int shutdown_tag, call_tag, batch_tag; /* addresses are tags */
  int shut_down;                         /* the shutdown tag came (serving thread only) */
  /* the closing kind */
  int listen_fd;
  atomic_int stop;
  int liar; /* sessions get a Need for a storage they never named */
};

/* ------------------------------------------------------------ gRPC */

static grpc_byte_buffer *hello_reply(void) {
  Modaltensor__V1__Status st = MODALTENSOR__V1__STATUS__INIT;
  st.code = MT_ERR_UNSUPPORTED;
  st.message = "fake-worker: " MH_FAKE_REASON;
  Modaltensor__V1__DeviceInfo dev = MODALTENSOR__V1__DEVICE_INFO__INIT;
  dev.name = "fake";
  dev.backend = "cpu";
  Modaltensor__V1__DeviceInfo *devs[1] = {&dev};
  Modaltensor__V1__HelloReply r = MODALTENSOR__V1__HELLO_REPLY__INIT;
  r.status = &st;
  r.protocol_version = 99;
  r.n_devices = 1;
  r.devices = devs;
  r.worker_version = "99.0.0";
  size_t len = modaltensor__v1__hello_reply__get_packed_size(&r);
  uint8_t *buf = malloc(len ? len : 1);
  modaltensor__v1__hello_reply__pack(&r, buf);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
  free(buf);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

static grpc_byte_buffer *pack_reply(const Modaltensor__V1__WorkerMessage *m) {
  size_t len = modaltensor__v1__worker_message__get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  modaltensor__v1__worker_message__pack(m, buf);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
  free(buf);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

/* What a worker of another protocol answers a Session's Open with (as the
 * real worker does): a refusal, before the stream ends; or, code MT_OK,
 * an acceptance. */
static grpc_byte_buffer *opened_reply(int code) {
  Modaltensor__V1__Status st = MODALTENSOR__V1__STATUS__INIT;
  st.code = code;
  st.message = code ? "fake-worker: " MH_FAKE_REASON : "";
  Modaltensor__V1__Opened o = MODALTENSOR__V1__OPENED__INIT;
  o.status = &st;
  o.session_id = code ? 0 : 1;
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED;
  m.opened = &o;
  return pack_reply(&m);
}

/* A Need for storage MH_FAKE_LIE_ID, which no client named. */
static grpc_byte_buffer *lying_need(void) {
  static uint8_t zeros[32];
  Modaltensor__V1__Need need = MODALTENSOR__V1__NEED__INIT;
  need.id = MH_FAKE_LIE_ID;
  need.digest = (ProtobufCBinaryData){sizeof zeros, zeros};
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_NEED;
  m.need = &need;
  return pack_reply(&m);
}

/* Runs one batch of call and waits for it (noting a shutdown seen on the
 * way); 1 when it completed. */
static int run_batch(mh_fake *f, grpc_call *call, grpc_op *ops, size_t n) {
  if (grpc_call_start_batch(call, ops, n, &f->batch_tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev;
  do {
    ev = grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_OP_COMPLETE && ev.tag == &f->shutdown_tag) f->shut_down = 1;
  } while (ev.type == GRPC_OP_COMPLETE && ev.tag != &f->batch_tag);
  return ev.type == GRPC_OP_COMPLETE;
}

/* Answers one call and waits until it is over: Hello and Session with a
 * refusal, sent (as the real worker does) only once the request came;
 * anything else as unimplemented. */
/* The liar's session: accepts the Open, reads one more message, asks for
 * bytes nobody named, and ends the call once the client has. */
static void answer_liar(mh_fake *f, grpc_call *call) {
  grpc_byte_buffer *open = NULL, *next = NULL, *opened = opened_reply(MT_OK), *need = lying_need();
  int cancelled = 0;
  grpc_op ops[3];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &open;
  int ok = run_batch(f, call, ops, 2) && open;
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_MESSAGE;
  ops[0].data.send_message.send_message = opened;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &next;
  ok = ok && run_batch(f, call, ops, 2) && next;
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_MESSAGE;
  ops[0].data.send_message.send_message = need;
  ok = ok && run_batch(f, call, ops, 1);
  /* the client hangs up once it has read the Need */
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[0].data.recv_close_on_server.cancelled = &cancelled;
  if (ok) run_batch(f, call, ops, 1);
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[0].data.send_status_from_server.status = GRPC_STATUS_OK;
  run_batch(f, call, ops, 1);
  grpc_byte_buffer *all[] = {open, next, opened, need};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (all[i]) grpc_byte_buffer_destroy(all[i]);
}

static void answer(mh_fake *f, grpc_call *call, const grpc_call_details *d) {
  int is_hello = grpc_slice_str_cmp(d->method, "/modaltensor.v1.Worker/Hello") == 0;
  int is_session = grpc_slice_str_cmp(d->method, "/modaltensor.v1.Worker/Session") == 0;
  if (is_session && f->liar) {
    answer_liar(f, call);
    return;
  }
  grpc_byte_buffer *request = NULL,
                   *reply = is_hello ? hello_reply() : is_session ? opened_reply(MT_ERR_UNSUPPORTED) : NULL;
  int cancelled = 0;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &request;
  int ok = run_batch(f, call, ops, reply ? 2 : 1);
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (reply && ok && request) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = reply;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status =
      is_hello ? GRPC_STATUS_OK : is_session ? GRPC_STATUS_FAILED_PRECONDITION
                                             : GRPC_STATUS_UNIMPLEMENTED;
  grpc_slice details = grpc_slice_from_static_string(is_session ? "fake-worker: " MH_FAKE_REASON
                                                                : "fake-worker: not implemented");
  ops[n++].data.send_status_from_server.status_details = is_hello ? NULL : &details;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &cancelled;
  if (ok) run_batch(f, call, ops, n);
  if (request) grpc_byte_buffer_destroy(request);
  if (reply) grpc_byte_buffer_destroy(reply);
}

/* One call at a time: request, answer, repeat; after shutdown the
 * pending request fails, and the thread ends once it has seen that and the
 * shutdown tag. */
static void *serve_grpc(void *arg) {
  mh_fake *f = arg;
  for (;;) {
    grpc_call *call = NULL;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_call_details_init(&details);
    grpc_metadata_array_init(&md);
    int pending = grpc_server_request_call(f->server, &call, &details, &md, f->cq, f->cq,
                                           &f->call_tag) == GRPC_CALL_OK;
    int serving = pending;
    while (pending || !f->shut_down) {
      grpc_event ev = grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      if (ev.type != GRPC_OP_COMPLETE) break;
      if (ev.tag == &f->shutdown_tag) {
        f->shut_down = 1;
      } else if (ev.tag == &f->call_tag) {
        pending = 0;
        serving = ev.success;
        if (serving) answer(f, call, &details);
        break;
      }
    }
    if (call) grpc_call_unref(call);
    grpc_call_details_destroy(&details);
    grpc_metadata_array_destroy(&md);
    if (!serving) { /* the server is shutting down: wait for its tag */
      while (!f->shut_down) {
        grpc_event ev = grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || ev.tag == &f->shutdown_tag) f->shut_down = 1;
      }
      return NULL;
    }
  }
}

static mh_fake *fake_grpc_start(char *addr, size_t len, int liar) {
  mh_fake *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->liar = liar;
  f->listen_fd = -1;
  grpc_init();
  f->cq = grpc_completion_queue_create_for_next(NULL);
  f->server = grpc_server_create(NULL, NULL);
  grpc_server_register_completion_queue(f->server, f->cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  int port = grpc_server_add_http2_port(f->server, "127.0.0.1:0", creds);
  grpc_server_credentials_release(creds);
  if (port <= 0) {
    grpc_server_destroy(f->server);
    grpc_completion_queue_shutdown(f->cq);
    grpc_completion_queue_destroy(f->cq);
    free(f);
    return NULL;
  }
  grpc_server_start(f->server);
  snprintf(addr, len, "127.0.0.1:%d", port);
  pthread_create(&f->thread, NULL, serve_grpc, f);
  return f;
}

mh_fake *mh_fake_incompatible_start(char *addr, size_t len) { return fake_grpc_start(addr, len, 0); }

mh_fake *mh_fake_liar_start(char *addr, size_t len) { return fake_grpc_start(addr, len, 1); }

/* ------------------------------------------------------------ closer */

static void *serve_closer(void *arg) {
  mh_fake *f = arg;
  while (!atomic_load(&f->stop)) {
    struct pollfd p = {f->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd >= 0) close(fd);
  }
  return NULL;
}

mh_fake *mh_fake_closer_start(char *addr, size_t len) {
  mh_fake *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
      listen(f->listen_fd, 16) || getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl)) {
    if (f->listen_fd >= 0) close(f->listen_fd);
    free(f);
    return NULL;
  }
  snprintf(addr, len, "127.0.0.1:%d", ntohs(sa.sin_port));
  pthread_create(&f->thread, NULL, serve_closer, f);
  return f;
}

void mh_fake_stop(mh_fake *f) {
  if (!f) return;
  if (f->server) {
    grpc_server_shutdown_and_notify(f->server, f->cq, &f->shutdown_tag);
    grpc_server_cancel_all_calls(f->server);
    pthread_join(f->thread, NULL);
    grpc_server_destroy(f->server);
    grpc_completion_queue_shutdown(f->cq);
    while (grpc_completion_queue_next(f->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(f->cq);
  } else {
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
  }
  free(f);
}
