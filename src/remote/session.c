/*
 * session.c - one device's Session stream: opened without waiting (the Open
 * travels with the first work; its answer is read before the first reply),
 * sends and receives that lose the session on failure, sync points (one
 * round trip each; none when nothing was sent since the last).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/protocol.h"
#include "remote/client.h"

/* Ends the session after a transport failure: every buffer made in it is
 * lost, pending work is dropped. Keeps the thread's error, adding what to
 * do when the worker came from the worker file. */
void session_lost(session *s) {
  snprintf(s->lost, sizeof s->lost, "%s", mt_last_error());
  registry_file_hint(mt_last_status());
  mti_stream_close(s->stream);
  s->stream = NULL;
  s->opened_pending = s->dirty = 0;
  s->generation++;
  recorder_drop_pending(s);
  recorder_forget_templates(s);
  content_forget(s);
}

/* The status of the worker's answer to Open (freeing it): a refusal (an
 * incompatible client, no such device, a wrong token) as an error. */
static mt_status opened_status(const char *fn, session *s,
                               Modaltensor__V1__WorkerMessage *reply) {
  mt_status st = MT_OK;
  if (reply->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED)
    st = mti_error(MT_ERR_REMOTE, "%s: worker %s answered Open with another message", fn,
                   s->w->target);
  else if ((st = client_status(reply->opened->status)))
    mti_error(st, "%s: worker %s refused the session: %s", fn, s->w->target,
              reply->opened->status->message ? reply->opened->status->message : "");
  else
    content_learn_opened(s, reply->opened);
  protobuf_c_message_free_unpacked(&reply->base, NULL);
  return st;
}

/* A send failed before the Open's answer was read: a worker that refused
 * the session ended the stream, and its refusal (already sent) says why
 * better than the failed send. */
static mt_status refusal_behind(const char *fn, session *s, mt_status send_failure) {
  char why[512];
  snprintf(why, sizeof why, "%s", mt_last_error());
  Modaltensor__V1__WorkerMessage *reply;
  if (mti_stream_recv_left(fn, s->stream, &reply)) return mti_error(send_failure, "%s", why);
  if (reply->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED) {
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    return mti_error(send_failure, "%s", why);
  }
  mt_status st = opened_status(fn, s, reply);
  return st ? st : mti_error(send_failure, "%s", why);
}

mt_status session_send(const char *fn, session *s, Modaltensor__V1__ClientMessage *m) {
  mt_status st = mti_stream_send(fn, s->stream, &m->base, registry.timeout_ms);
  if (st && s->opened_pending) st = refusal_behind(fn, s, st);
  if (st) session_lost(s);
  else atomic_fetch_add_explicit(&registry.counters.messages, 1, memory_order_relaxed);
  return st;
}

/* Reads the answer to the session's Open, which the worker sent before any
 * other reply: a refusal ends the session, and the work sent with the Open
 * is dropped. */
static mt_status read_opened(const char *fn, session *s) {
  Modaltensor__V1__WorkerMessage *reply;
  s->opened_pending = 0;
  mt_status st = mti_stream_recv(fn, s->stream, registry.timeout_ms, &reply);
  if (!st) st = opened_status(fn, s, reply);
  if (st) session_lost(s);
  return st;
}

/* The next reply to a request of this session (the Opened first, when it
 * is still to be read). A Need on the way is answered with the bytes it
 * asks for. */
mt_status session_recv(const char *fn, session *s, Modaltensor__V1__WorkerMessage **out) {
  mt_status st = s->opened_pending ? read_opened(fn, s) : MT_OK;
  while (!st) {
    st = mti_stream_recv(fn, s->stream, registry.timeout_ms, out);
    if (st || (*out)->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_NEED) break;
    st = content_answer_need(fn, s, (*out)->need);
    protobuf_c_message_free_unpacked(&(*out)->base, NULL);
  }
  if (st && s->stream) session_lost(s);
  return st;
}

/* Opens the session's stream (reviving a local worker known to be dead) and
 * sends the Open without waiting for its answer: the version and op-table
 * check travel with the first work, whose sync point reads the answer.
 * Only the transport's own setup (TCP, TLS, the worker's HTTP/2 SETTINGS)
 * is waited for here. */
static mt_status session_open_once(const char *fn, session *s) {
  mt_status st = registry_worker_revive(fn, s->w);
  if (!st) st = registry_worker_follow_file(fn, s->w);
  if (st) return st;
  st = mti_stream_open(fn, s->w->ch, registry.connect_timeout_ms, &s->stream);
  if (st == MT_ERR_TIMEOUT) st = registry_unreachable(fn, s->w);
  if (st) return registry_file_hint(st);
  Modaltensor__V1__Open open = MODALTENSOR__V1__OPEN__INIT;
  char client[64];
  snprintf(client, sizeof client, "libmodaltensor %s pid %d", mt_version(), (int)getpid());
  open.protocol_version = MTI_PROTOCOL_VERSION;
  open.op_count = MTI_OP_COUNT;
  open.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  open.device = s->device;
  open.client = client;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &open;
  if ((st = session_send(fn, s, &m))) return st;
  s->opened_pending = 1;
  return MT_OK;
}

/* 1 when w is a local worker that has exited, waiting up to wait_ms for a
 * killed one to finish dying. */
static int local_worker_died(worker *w, int wait_ms) {
  char why[96];
  int dead = 0;
  pthread_mutex_lock(&w->lock);
  for (int waited = 0; w->local && !dead; waited += 10) {
    dead = !mti_local_worker_alive(&w->proc, why, sizeof why);
    if (dead || waited >= wait_ms) break;
    struct timespec nap = {0, 10 * 1000 * 1000};
    nanosleep(&nap, NULL);
  }
  pthread_mutex_unlock(&w->lock);
  return dead;
}

/* Opens the session's stream if it is not open. A local worker that turns
 * out to be dying is restarted, and the open tried once more. */
mt_status session_open(const char *fn, session *s) {
  if (s->stream) return MT_OK;
  mt_status st = session_open_once(fn, s);
  if (st && s->w->local && local_worker_died(s->w, 1000)) st = session_open_once(fn, s);
  return st;
}

/* Locks device's session, connecting first when needed (and discovering
 * the devices for any but modal:0). */
session *session_lock(const char *fn, int device) {
  if (registry_check_index(fn, device)) return NULL;
  session *s = registry_session(device);
  pthread_mutex_lock(&s->lock);
  return s;
}

/* Waits for the SyncDone of request id: the session's round trip. Returns
 * its status (the first deferred error since the last sync). */
mt_status session_wait_sync(const char *fn, session *s, uint64_t id) {
  atomic_fetch_add_explicit(&registry.counters.round_trips, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&registry.counters.syncs, 1, memory_order_relaxed);
  s->dirty = 0;
  for (;;) {
    Modaltensor__V1__WorkerMessage *reply;
    mt_status st = session_recv(fn, s, &reply);
    if (st) return st;
    int done = reply->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE &&
               reply->sync_done->request_id == id;
    if (done && (st = client_status(reply->sync_done->status)))
      mti_error(st, "%s: an earlier op failed on the worker (reported at this sync): %s", fn,
                reply->sync_done->status->message);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (done) content_release(s); /* the worker has every byte sent by reference */
    if (done) return st;
  }
}

mt_status session_send_sync(const char *fn, session *s, uint64_t *id) {
  Modaltensor__V1__Sync sync = MODALTENSOR__V1__SYNC__INIT;
  sync.request_id = *id = ++s->next_request;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &sync;
  return session_send(fn, s, &m);
}

/* Sends what is pending and, when anything went out since the last sync
 * (graphs, uploads, frees), a Sync; *id is 0 when nothing needs waiting
 * for. */
static mt_status sync_start(const char *fn, session *s, uint64_t *id) {
  *id = 0;
  mt_status st = recorder_send_pending(fn, s);
  if (!st && s->stream && s->dirty) st = session_send_sync(fn, s, id);
  return st;
}

/* A sync point: one round trip when work went out since the last, none
 * otherwise. */
mt_status session_sync_locked(const char *fn, session *s) {
  uint64_t id;
  mt_status st = sync_start(fn, s, &id);
  if (!st && id) st = session_wait_sync(fn, s, id);
  return st;
}

/* On a device with no session yet, opening one (the transport's setup,
 * no reply awaited) is what reports a worker that cannot be reached. */
mt_status mti_remote_synchronize(const char *fn, int index) {
  session *s = session_lock(fn, index);
  if (!s) return mt_last_status();
  mt_status st = session_open(fn, s);
  if (!st) st = session_sync_locked(fn, s);
  pthread_mutex_unlock(&s->lock);
  return st;
}

/* Every open session: all Syncs go out first, then each answer is awaited,
 * so syncing n devices takes one round trip, not n. Locks in device order.
 * Returns the first failure (every session is still waited for). */
mt_status mti_remote_synchronize_all(const char *fn) {
  if (!atomic_load_explicit(&registry.ready, memory_order_acquire)) return MT_OK;
  mt_status first = MT_OK;
  char msg[512] = "";
  int n = registry.nsessions;
  uint64_t *ids = calloc((size_t)n, sizeof *ids);
  if (!ids) return mti_error_oom(fn, (size_t)n * sizeof *ids);
  for (int i = 0; i < n; i++) {
    session *s = registry.sessions[i];
    pthread_mutex_lock(&s->lock);
    mt_status st = sync_start(fn, s, &ids[i]);
    if (st && !first) first = st, snprintf(msg, sizeof msg, "%s", mt_last_error());
  }
  for (int i = 0; i < n; i++) {
    session *s = registry.sessions[i];
    mt_status st = ids[i] && s->stream ? session_wait_sync(fn, s, ids[i]) : MT_OK;
    if (st && !first) first = st, snprintf(msg, sizeof msg, "%s", mt_last_error());
    pthread_mutex_unlock(&s->lock);
  }
  free(ids);
  return first ? mti_error(first, "%s", msg) : MT_OK;
}


/* MT_OK when b belongs to s's current session. */
mt_status session_check_alive(const char *fn, const session *s, const mti_remote_buffer *b) {
  if (b->generation == s->generation && s->stream) return MT_OK;
  return mti_error(MT_ERR_UNAVAILABLE,
                   "%s: the tensor was lost when its session with worker %s ended (%s)", fn,
                   s->w->target ? s->w->target : "?", s->lost[0] ? s->lost : "shut down");
}

/* Locks the session of device and checks every input belongs to it. */
session *session_lock_inputs(const char *fn, int device, int n, const mti_remote_view *in) {
  session *s = session_lock(fn, device);
  if (!s) return NULL;
  for (int i = 0; i < n; i++) {
    if (!in[i].buf) continue;
    const session *home = in[i].buf->s;
    if (home->retired) {
      /* A session from before mt_shutdown: retired, never touched again. */
      mti_error(MT_ERR_UNAVAILABLE, "%s: input %d was lost when its session ended (%s)", fn, i,
                home->lost);
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
    if (home != s) {
      mti_error(MT_ERR_DEVICE, "%s: input %d is on modal:%d, the op runs on modal:%d", fn, i,
                in[i].buf->device, device);
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
    if (session_check_alive(fn, s, in[i].buf)) {
      pthread_mutex_unlock(&s->lock);
      return NULL;
    }
  }
  if (session_open(fn, s)) {
    pthread_mutex_unlock(&s->lock);
    return NULL;
  }
  return s;
}

/* The device exists and its session is open, or opens now: a worker that
 * cannot be reached is reported by the call that checks, as the transport
 * comes up (no reply is awaited). */
mt_status mti_remote_check_device(const char *fn, int index) {
  session *s = session_lock(fn, index);
  if (!s) return mt_last_status();
  mt_status st = session_open(fn, s);
  pthread_mutex_unlock(&s->lock);
  return st;
}
