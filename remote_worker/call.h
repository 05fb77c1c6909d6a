/*
 * call.h - one server call driven synchronously on its own completion queue.
 *
 * Each accepted call is bound to a fresh pluck queue and served by one
 * thread, which starts a batch and plucks its tag before starting the next:
 * so at most one send and one receive are in flight, as gRPC requires.
 */
#ifndef MTW_CALL_H
#define MTW_CALL_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct mtw_call {
  grpc_call *call;
  grpc_completion_queue *cq;
  int started;      /* initial metadata sent, close watch running */
  int close_done;   /* the close watch completed */
  int cancelled;    /* set by the close watch */
  int status_sent;
  /* With a watcher thread (mtw_call_watch) the close watch is its alone:
   * stop is raised the moment the call is cancelled or breaks. */
  int watched;
  pthread_t watcher;
  atomic_int stop;
} mtw_call;

typedef enum mtw_recv_result {
  MTW_RECV_MESSAGE, /* *out holds a message */
  MTW_RECV_END,     /* the client half-closed: no more messages */
  MTW_RECV_FAILED,  /* cancelled, connection lost, or worker shutting down */
  MTW_RECV_TIMEOUT  /* nothing within the timeout; the call is now cancelled */
} mtw_recv_result;

/* Sends the initial metadata and starts watching for the call's end.
 * 0 on success. */
int mtw_call_start(mtw_call *c);

/* Hands the close watch to a thread of its own, for a call whose thread
 * may be busy for long (a session running a kernel): mtw_call_stop_flag
 * then rises as soon as the client cancels or the connection breaks, not
 * only when the call's thread next looks. After mtw_call_start; 0 on
 * success, -1 when no thread could be made (the call is then watched as
 * before, by polling). */
int mtw_call_watch(mtw_call *c);

/* A flag that becomes 1 once mtw_call_cancelled would say so: for kernels
 * to test while they run (cpu/stop.h). Valid for the call's life. */
const atomic_int *mtw_call_stop_flag(mtw_call *c);

/* Waits for the next message for at most timeout_ms (< 0: no limit); on
 * timeout the call ends with DEADLINE_EXCEEDED and the details why. */
mtw_recv_result mtw_call_recv(mtw_call *c, int64_t timeout_ms, const char *why,
                              grpc_byte_buffer **out);

/* Sends bb (and destroys it) and waits until gRPC has taken it, for at
 * most timeout_ms (< 0: no limit; a client that stops reading holds the
 * send); 0 on success. A NULL bb (a failed encoding) fails. */
int mtw_call_send(mtw_call *c, grpc_byte_buffer *bb, int64_t timeout_ms, const char *why);

/* 1 once the client cancelled the call or it broke (the worker shutting
 * down cancels every call): a cheap poll, for work that runs between
 * receives and should stop when nobody waits for it. */
int mtw_call_cancelled(mtw_call *c);

/* Ends the call with code and details (may be NULL), then waits until it
 * is closed. An OK status is sent after everything was read; any other
 * ends the call at once (cancelling it with that status). */
void mtw_call_finish(mtw_call *c, grpc_status_code code, const char *details);

#endif
