/*
 * call.c - synchronous batches on a server call.
 */
#define _GNU_SOURCE /* pthread_clockjoin_np */
#include "call.h"

#include <grpc/support/time.h>
#include <string.h>
#include <time.h>

/* How long finishing waits for the peer to acknowledge the end before the
 * call is cancelled outright (a whole number of seconds). */
#define CLOSE_WAIT_MS 10000

static gpr_timespec deadline_in(int64_t ms) {
  if (ms < 0) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Starts ops under tag and waits for them; returns the event's success, or
 * -1 when the deadline passed first: the call is then cancelled with
 * DEADLINE_EXCEEDED and why, and the batch reaped. */
static int run_batch(mtw_call *c, const grpc_op *ops, size_t n, void *tag, int64_t timeout_ms,
                     const char *why) {
  if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK) return 0;
  grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, deadline_in(timeout_ms), NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) {
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, why, NULL);
    grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    return -1;
  }
  return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int mtw_call_start(mtw_call *c) {
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (run_batch(c, ops, 1, &c->started, -1, NULL) != 1) return -1;
  ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
  if (grpc_call_start_batch(c->call, &ops[1], 1, &c->close_done, NULL) != GRPC_CALL_OK) return -1;
  c->started = 1;
  return 0;
}

mtw_recv_result mtw_call_recv(mtw_call *c, int64_t timeout_ms, const char *why,
                              grpc_byte_buffer **out) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  *out = NULL;
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = out;
  int ok = run_batch(c, &op, 1, out, timeout_ms, why);
  if (ok == -1) {
    if (*out) grpc_byte_buffer_destroy(*out);
    *out = NULL;
    return MTW_RECV_TIMEOUT;
  }
  if (!ok) {
    if (*out) grpc_byte_buffer_destroy(*out);
    *out = NULL;
    return MTW_RECV_FAILED;
  }
  if (*out) return MTW_RECV_MESSAGE;
  /* A cancelled call also reads as an end; its close watch tells them
   * apart when it has already completed. */
  return mtw_call_cancelled(c) ? MTW_RECV_FAILED : MTW_RECV_END;
}

/* The watcher: waits for the close watch's completion (the call's end),
 * then raises stop if the call was cancelled or broke. */
static void *watch_close(void *arg) {
  mtw_call *c = arg;
  grpc_completion_queue_pluck(c->cq, &c->close_done, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  if (c->cancelled) atomic_store(&c->stop, 1);
  return NULL;
}

int mtw_call_watch(mtw_call *c) {
  if (!c->started || c->watched) return -1;
  if (pthread_create(&c->watcher, NULL, watch_close, c) != 0) return -1;
  c->watched = 1;
  return 0;
}

const atomic_int *mtw_call_stop_flag(mtw_call *c) { return &c->stop; }

int mtw_call_cancelled(mtw_call *c) {
  if (c->watched) return atomic_load(&c->stop);
  if (c->started && !c->close_done &&
      grpc_completion_queue_pluck(c->cq, &c->close_done, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL)
              .type == GRPC_OP_COMPLETE)
    c->close_done = 1;
  if (c->close_done && c->cancelled) atomic_store(&c->stop, 1);
  return c->close_done && c->cancelled;
}

/* Waits for the watcher (the close watch's end) for CLOSE_WAIT_MS, then
 * cancels the call, which ends the watch at once. */
static void join_watcher(mtw_call *c) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += CLOSE_WAIT_MS / 1000;
  if (pthread_clockjoin_np(c->watcher, NULL, CLOCK_MONOTONIC, &until) != 0) {
    grpc_call_cancel(c->call, NULL);
    pthread_join(c->watcher, NULL);
  }
  c->watched = 0;
  c->close_done = 1;
}

int mtw_call_send(mtw_call *c, grpc_byte_buffer *bb, int64_t timeout_ms, const char *why) {
  if (!bb) return -1;
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = bb;
  int ok = run_batch(c, &op, 1, &c->status_sent, timeout_ms, why);
  grpc_byte_buffer_destroy(bb);
  return ok == 1 ? 0 : -1;
}

void mtw_call_finish(mtw_call *c, grpc_status_code code, const char *details) {
  if (code != GRPC_STATUS_OK || !c->started) {
    /* Ending early: messages the client already sent stay unread, and the
     * close watch would wait for them; cancelling with the status sends it
     * and ends the call at once. */
    grpc_call_cancel_with_status(c->call, code, details ? details : "", NULL);
  } else {
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = code;
    run_batch(c, &op, 1, &c->status_sent, CLOSE_WAIT_MS, "the peer did not close the call");
  }
  if (c->watched) join_watcher(c);
  if (c->started && !c->close_done) {
    grpc_event ev = grpc_completion_queue_pluck(c->cq, &c->close_done, deadline_in(CLOSE_WAIT_MS),
                                                NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
      grpc_call_cancel(c->call, NULL);
      grpc_completion_queue_pluck(c->cq, &c->close_done, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                  NULL);
    }
    c->close_done = 1;
  }
}
