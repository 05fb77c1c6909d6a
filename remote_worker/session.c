/*
 * session.c - the Session stream: Open, the message loop, Free, Sync, and
 * the storages' bookkeeping.
 *
 * The thread that serves a call owns its session outright: nothing here is
 * shared except the counters (atomic) and the memory budget (atomic).
 */
#include "session.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "core/op_table.h"
#include "log.h"
#include "wire.h"

/* ---------------------------------------------------------- bookkeeping */

void mtw_session_defer(mtw_session *s, mt_status status, const char *fmt, ...) {
  char msg[MTW_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mtw_log(MTW_LOG_DEBUG, "session %llu: error %s: %s", (unsigned long long)s->stats.session_id,
          mt_status_name(status), msg);
  if (s->deferred_status != MT_OK) return;
  s->deferred_status = status;
  memcpy(s->deferred_message, msg, sizeof msg);
}

/* The most one session may hold: --session-max-memory, else the device's
 * budget shared out among the sessions open on it now (so that a second
 * session is not starved by the first; what the first holds stays). */
static uint64_t session_quota(const mtw_session *s) {
  uint64_t fixed = s->worker->options->session_max_memory;
  if (fixed) return fixed;
  uint32_t open = atomic_load_explicit(&s->memory->sessions, memory_order_relaxed);
  return s->memory->limit / (open ? open : 1);
}

mt_status mtw_session_reserve(mtw_session *s, uint64_t nbytes, const char *what) {
  uint64_t quota = session_quota(s);
  int over_quota = nbytes > quota || s->held > quota - nbytes;
  if (!over_quota && mtw_memory_reserve(s->memory, nbytes)) {
    s->held += nbytes;
    return MT_OK;
  }
  return mti_error(MT_ERR_OUT_OF_MEMORY,
                   "%s%sout of memory: %llu more bytes do not fit in %s of %llu (%llu %s)",
                   what ? what : "", what ? ": " : "", (unsigned long long)nbytes,
                   over_quota ? "this session's share" : "the worker's limit",
                   (unsigned long long)(over_quota ? quota : s->memory->limit),
                   (unsigned long long)(over_quota ? s->held : mtw_memory_used(s->memory)),
                   over_quota ? "held; --session-max-memory, or fewer sessions open" : "in use");
}

void mtw_session_release(mtw_session *s, uint64_t nbytes) {
  s->held -= nbytes;
  mtw_memory_release(s->memory, nbytes);
}

static mtw_storage *storage_new(mtw_session *s, uint64_t id) {
  mtw_storage *st = calloc(1, sizeof *st);
  if (!st) return NULL;
  st->id = id;
  if (mtw_table_insert(&s->table, st)) {
    free(st);
    return NULL;
  }
  mtw_stats_add(&s->worker->stats, &s->stats, MTW_LIVE_TENSORS, 1);
  return st;
}

mt_status mtw_storage_create(mtw_session *s, uint64_t id, mt_dtype dtype, int64_t numel,
                             mtw_storage **out) {
  uint64_t nbytes = (uint64_t)numel * mt_dtype_size(dtype); /* checked by the caller */
  if (nbytes > SIZE_MAX - MTW_STORAGE_OVERHEAD)
    return mti_error(MT_ERR_OUT_OF_MEMORY, "storage: %llu bytes cannot be allocated",
                     (unsigned long long)nbytes);
  mt_status reserved = mtw_session_reserve(s, nbytes + MTW_STORAGE_OVERHEAD, NULL);
  if (reserved) return reserved;
  mtw_block *blk = mtw_block_new(s->worker->backend, s->device, s->stream, (size_t)nbytes);
  mtw_storage *st = blk ? storage_new(s, id) : NULL;
  if (!st) {
    mt_status status = blk ? mti_error_oom("storage", sizeof *st) : mt_last_status();
    mtw_block_unref(blk);
    mtw_session_release(s, nbytes + MTW_STORAGE_OVERHEAD);
    return status;
  }
  st->dtype = dtype;
  st->numel = numel;
  st->nbytes = nbytes;
  st->block = blk;
  mtw_stats_add(&s->worker->stats, &s->stats, MTW_LIVE_BYTES, nbytes);
  *out = st;
  return MT_OK;
}

void mtw_storage_create_failed(mtw_session *s, uint64_t id, mt_status status,
                               const char *message) {
  if (mtw_session_reserve(s, MTW_STORAGE_OVERHEAD, NULL)) return;
  char *copy = malloc(strlen(message) + 1);
  mtw_storage *st = copy ? storage_new(s, id) : NULL;
  if (!st) {
    free(copy);
    mtw_session_release(s, MTW_STORAGE_OVERHEAD);
    return;
  }
  strcpy(copy, message);
  st->fail_status = status;
  st->fail_message = copy;
}

/* Gives back the storage's memory and its place in the counters. */
static void release_bytes(mtw_session *s, mtw_storage *st) {
  if (!st->block) return;
  if (st->live) mtw_content_live_remove(s->worker->content, st->block);
  st->live = 0;
  mtw_block_unref(st->block);
  st->block = NULL;
  mtw_session_release(s, st->nbytes);
  mtw_stats_sub(&s->worker->stats, &s->stats, MTW_LIVE_BYTES, st->nbytes);
}

/* A storage whose bytes the session no longer waits for or checks. */
static void content_settle(mtw_session *s, mtw_storage *st) {
  mti_hasher_free(st->hasher);
  st->hasher = NULL;
  if (st->awaiting) s->awaiting--;
  st->awaiting = 0;
}

void mtw_storage_fail(mtw_session *s, mtw_storage *st, mt_status status, const char *message) {
  char *copy = malloc(strlen(message) + 1);
  release_bytes(s, st);
  content_settle(s, st);
  free(st->fail_message);
  st->fail_message = copy ? strcpy(copy, message) : NULL;
  st->fail_status = status;
}

static void storage_release(mtw_storage *st, void *ctx) {
  mtw_session *s = ctx;
  release_bytes(s, st);
  content_settle(s, st);
  mtw_session_release(s, MTW_STORAGE_OVERHEAD);
  mtw_stats_sub(&s->worker->stats, &s->stats, MTW_LIVE_TENSORS, 1);
  free(st->fail_message);
  free(st);
}

void mtw_storage_destroy(mtw_session *s, mtw_storage *st) {
  mtw_table_remove(&s->table, st->id);
  storage_release(st, s);
}

/* ------------------------------------------------------------- replies */

int mtw_session_reply(mtw_session *s, const Modaltensor__V1__WorkerMessage *m) {
  char why[128];
  snprintf(why, sizeof why, "session %llu: the client stopped reading replies",
           (unsigned long long)s->stats.session_id);
  return mtw_call_send(s->call, mtw_pack(&m->base), s->worker->options->idle_timeout_s * 1000,
                       why);
}

static int send_opened(mtw_session *s, mt_status status, const char *message) {
  Modaltensor__V1__Status st = MODALTENSOR__V1__STATUS__INIT;
  st.code = (int32_t)status;
  st.message = (char *)message;
  Modaltensor__V1__Opened opened = MODALTENSOR__V1__OPENED__INIT;
  opened.status = &st;
  opened.session_id = status == MT_OK ? s->stats.session_id : 0;
  /* What the content store holds, so that the client sends those bytes by
   * reference (a hint: anything gone by then is asked for with Need). */
  uint8_t (*held)[MTI_SHA256_BYTES] = status == MT_OK ? malloc(MTI_HELD_MAX * sizeof *held) : NULL;
  ProtobufCBinaryData *refs = held ? malloc(MTI_HELD_MAX * sizeof *refs) : NULL;
  if (refs) {
    opened.n_held = mtw_content_held(s->worker->content, held, MTI_HELD_MAX);
    for (size_t i = 0; i < opened.n_held; i++) refs[i] = (ProtobufCBinaryData){MTI_SHA256_BYTES, held[i]};
    opened.held = refs;
  }
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED;
  m.opened = &opened;
  int rc = mtw_session_reply(s, &m);
  free(refs);
  free(held);
  return rc;
}

/* ---------------------------------------------------------- Free, Sync */

/* Frees every id of f, or none: a Free naming an id this session does
 * not have is refused whole (the deferred error names it). */
static void session_free(mtw_session *s, const Modaltensor__V1__Free *f) {
  for (size_t i = 0; i < f->n_ids; i++) {
    if (f->ids[i] && mtw_table_find(&s->table, f->ids[i])) continue;
    mtw_session_defer(s, MT_ERR_INVALID_ARGUMENT,
                      "free: no storage %llu in this session (nothing of this Free was freed)",
                      (unsigned long long)f->ids[i]);
    return;
  }
  for (size_t i = 0; i < f->n_ids; i++) {
    mtw_storage *st = mtw_table_find(&s->table, f->ids[i]);
    if (st) mtw_storage_destroy(s, st); /* an id listed twice is gone the second time */
  }
}

static int session_sync(mtw_session *s, const Modaltensor__V1__Sync *sync) {
  const mtw_backend *b = s->worker->backend;
  if (b->ops->synchronize(s->stream) != MT_OK)
    mtw_session_defer(s, mt_last_status(), "sync: %s", mt_last_error());
  Modaltensor__V1__Status st = MODALTENSOR__V1__STATUS__INIT;
  st.code = (int32_t)s->deferred_status;
  st.message = s->deferred_message;
  Modaltensor__V1__SyncDone done = MODALTENSOR__V1__SYNC_DONE__INIT;
  done.request_id = sync->request_id;
  done.status = &st;
  Modaltensor__V1__WorkerMessage m = MODALTENSOR__V1__WORKER_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE;
  m.sync_done = &done;
  mtw_stats_add(&s->worker->stats, &s->stats, MTW_SYNCS, 1);
  int rc = mtw_session_reply(s, &m);
  s->deferred_status = MT_OK;
  s->deferred_message[0] = '\0';
  return rc;
}

/* ---------------------------------------------------------- the stream */

/* How a session ended, for the call's final status and the log. */
typedef struct session_end {
  grpc_status_code code;
  char details[MTW_MESSAGE_MAX];
} session_end;

static void end_with(session_end *e, grpc_status_code code, const char *fmt, ...)
    MTI_PRINTF(3, 4);
static void end_with(session_end *e, grpc_status_code code, const char *fmt, ...) {
  e->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->details, sizeof e->details, fmt, ap);
  va_end(ap);
}

static int64_t idle_ms(const mtw_session *s) { return s->worker->options->idle_timeout_s * 1000; }

/* Receives the next message. NULL when the stream is over or broken; e
 * says why. */
static grpc_byte_buffer *next_buffer(mtw_session *s, session_end *e) {
  char why[160];
  snprintf(why, sizeof why, "modaltensor-worker: session idle for %lld s: ended, its tensors freed",
           (long long)s->worker->options->idle_timeout_s);
  grpc_byte_buffer *bb;
  switch (mtw_call_recv(s->call, idle_ms(s), why, &bb)) {
  case MTW_RECV_MESSAGE: break;
  case MTW_RECV_END: end_with(e, GRPC_STATUS_OK, "%s", ""); return NULL;
  case MTW_RECV_TIMEOUT: end_with(e, GRPC_STATUS_DEADLINE_EXCEEDED, "%s", why); return NULL;
  case MTW_RECV_FAILED: end_with(e, GRPC_STATUS_CANCELLED, "cancelled or connection lost"); return NULL;
  }
  s->messages++;
  if (s->stats.session_id) mtw_stats_add(&s->worker->stats, &s->stats, MTW_MESSAGES, 1);
  return bb;
}

/* Decodes bb (and destroys it); NULL when it is not a ClientMessage. */
static Modaltensor__V1__ClientMessage *decode(mtw_session *s, grpc_byte_buffer *bb,
                                              session_end *e) {
  size_t len = grpc_byte_buffer_length(bb);
  Modaltensor__V1__ClientMessage *m = (Modaltensor__V1__ClientMessage *)mtw_unpack(
      &modaltensor__v1__client_message__descriptor, bb);
  grpc_byte_buffer_destroy(bb);
  if (!m)
    end_with(e, GRPC_STATUS_INVALID_ARGUMENT,
             "modaltensor-worker: message %llu: %zu bytes that do not decode as a ClientMessage",
             (unsigned long long)s->messages, len);
  return m;
}

static Modaltensor__V1__ClientMessage *next_message(mtw_session *s, session_end *e) {
  grpc_byte_buffer *bb = next_buffer(s, e);
  return bb ? decode(s, bb, e) : NULL;
}

/* Handles the first message, which must be a compatible Open; on success
 * the session is registered and has its stream. */
static int session_open(mtw_session *s, session_end *e) {
  Modaltensor__V1__ClientMessage *m = next_message(s, e);
  if (!m) {
    if (e->code == GRPC_STATUS_INVALID_ARGUMENT) send_opened(s, MT_ERR_INVALID_ARGUMENT, e->details);
    return -1;
  }
  int rc = -1;
  char reason[MTW_MESSAGE_MAX];
  const Modaltensor__V1__Open *o = m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN
                                       ? m->open : NULL;
  mt_status status = MT_OK;
  if (!o) {
    status = MT_ERR_INVALID_ARGUMENT;
    snprintf(reason, sizeof reason, "modaltensor-worker: the first message of a session must be Open");
    end_with(e, GRPC_STATUS_INVALID_ARGUMENT, "%s", reason);
  } else if ((status = mtw_check_compatible(o->protocol_version, o->op_table_hash, o->op_count,
                                             reason, sizeof reason)) != MT_OK) {
    end_with(e, GRPC_STATUS_FAILED_PRECONDITION, "%s", reason);
  } else if (o->device < 0 || o->device >= s->worker->device_count) {
    status = MT_ERR_DEVICE;
    snprintf(reason, sizeof reason, "modaltensor-worker: device %d: this worker has %d device(s)",
             (int)o->device, s->worker->device_count);
    end_with(e, GRPC_STATUS_FAILED_PRECONDITION, "%s", reason);
  } else if ((status = s->worker->backend->ops->stream_create(s->worker->backend, o->device,
                                                              mtw_call_stop_flag(s->call),
                                                              &s->stream)) != MT_OK) {
    snprintf(reason, sizeof reason, "modaltensor-worker: %s", mt_last_error());
    end_with(e, GRPC_STATUS_RESOURCE_EXHAUSTED, "%s", reason);
  }
  if (status != MT_OK) {
    send_opened(s, status, reason);
    mtw_log(MTW_LOG_INFO, "session refused: %s", reason);
  } else {
    s->device = o->device;
    s->client_op_count = o->op_count;
    s->memory = &s->worker->memory[s->device];
    atomic_fetch_add_explicit(&s->memory->sessions, 1, memory_order_relaxed);
    mtw_stats_register(&s->worker->stats, &s->stats);
    mtw_stats_add(&s->worker->stats, &s->stats, MTW_MESSAGES, 1);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    mtw_table_init(&s->table, (uint64_t)now.tv_nsec * 0x9e3779b97f4a7c15ull ^
                                  (uint64_t)(uintptr_t)s ^ s->stats.session_id);
    char client[96];
    mtw_log(MTW_LOG_INFO, "session %llu opened: device %d, client \"%s\"",
            (unsigned long long)s->stats.session_id, s->device,
            mtw_log_sanitize(client, sizeof client, o->client));
    rc = 0;
    if (send_opened(s, MT_OK, "")) {
      end_with(e, GRPC_STATUS_UNAVAILABLE, "sending Opened failed");
      rc = 1; /* opened, but the stream is already gone */
    }
  }
  mtw_unpacked_free(&m->base);
  return rc;
}

/* Runs a Graph, then keeps it when it is a template (taking it from m). */
static int session_graph(mtw_session *s, Modaltensor__V1__ClientMessage *m) {
  int rc = mtw_session_graph(s, m->graph);
  if (m->graph->template_id) {
    mtw_session_template_keep(s, m->graph);
    m->graph = NULL;
  }
  return rc;
}

/* Handles one decoded message; 0 to go on. */
static int dispatch(mtw_session *s, Modaltensor__V1__ClientMessage *m, session_end *e) {
  switch (m->kind_case) {
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD: {
    const Modaltensor__V1__Upload *u = m->upload;
    mtw_upload_chunk c = {{u->id, u->dtype, u->numel, u->offset, 0, u->data.len}, u->data.data,
                          NULL};
    return mtw_session_upload(s, &c);
  }
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_CONTENT: return mtw_session_content(s, m->content);
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH: return session_graph(s, m);
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_INVOKE: return mtw_session_invoke(s, m->invoke);
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE: session_free(s, m->free); return 0;
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD: return mtw_session_download(s, m->download);
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC: return session_sync(s, m->sync);
  case MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN:
    end_with(e, GRPC_STATUS_INVALID_ARGUMENT,
             "modaltensor-worker: message %llu: a second Open in one session",
             (unsigned long long)s->messages);
    return -1;
  default:
    end_with(e, GRPC_STATUS_INVALID_ARGUMENT,
             "modaltensor-worker: message %llu: a ClientMessage of no kind this worker knows",
             (unsigned long long)s->messages);
    return -1;
  }
}

/* Once the backend is lost (a poisoned GPU context: every later op would
 * fail), ends the session and stops the worker through its SIGTERM path;
 * main then exits non-zero and clients see the worker gone. 1 if so. */
static int backend_lost(mtw_session *s, session_end *e) {
  const char *why = s->worker->backend->ops->lost(s->worker->backend);
  if (!why) return 0;
  end_with(e, GRPC_STATUS_UNAVAILABLE, "modaltensor-worker: %s: the worker exits", why);
  mtw_log(MTW_LOG_ERROR, "session %llu: the backend is lost (%s): stopping the worker",
          (unsigned long long)s->stats.session_id, why);
  raise(SIGTERM);
  return 1;
}

/* Messages queued while the session waits for bytes it asked for (Need):
 * far more than a client sends between a Content and its next sync. */
#define MTW_QUEUE_MAX 65536

typedef struct queued_message {
  Modaltensor__V1__ClientMessage *m;
  struct queued_message *next;
} queued_message;

/* Messages that must wait while a Need is out: those that may read a
 * storage or answer in order. Upload and Content only make new storages,
 * so they go on (the awaited bytes are among them). */
static int waits_for_bytes(const Modaltensor__V1__ClientMessage *m) {
  return m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH ||
         m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_INVOKE ||
         m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE ||
         m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD ||
         m->kind_case == MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
}

/* Queues m (taking it over); -1 when the queue is full. */
static int queue_push(mtw_session *s, Modaltensor__V1__ClientMessage *m, session_end *e) {
  queued_message *q = s->queued < MTW_QUEUE_MAX ? malloc(sizeof *q) : NULL;
  if (!q) {
    end_with(e, GRPC_STATUS_RESOURCE_EXHAUSTED,
             "modaltensor-worker: %zu messages arrived while the session waited for the bytes "
             "it asked for (Need)", s->queued);
    mtw_unpacked_free(&m->base);
    return -1;
  }
  q->m = m;
  q->next = NULL;
  if (s->queue_tail) s->queue_tail->next = q;
  else s->queue_head = q;
  s->queue_tail = q;
  s->queued++;
  return 0;
}

static Modaltensor__V1__ClientMessage *queue_pop(mtw_session *s) {
  queued_message *q = s->queue_head;
  Modaltensor__V1__ClientMessage *m = q->m;
  if (!(s->queue_head = q->next)) s->queue_tail = NULL;
  s->queued--;
  free(q);
  return m;
}

static void queue_clear(mtw_session *s) {
  while (s->queue_head) mtw_unpacked_free(&queue_pop(s)->base);
}

/* The next message to handle: a queued one once no bytes are awaited,
 * else one from the stream (queued instead when it must wait). 1 when
 * *m or *c holds it, 0 when it was queued, -1 when the stream is over. */
static int next_work(mtw_session *s, session_end *e, Modaltensor__V1__ClientMessage **m,
                     mtw_upload_chunk *c) {
  *m = NULL;
  c->bb = NULL;
  if (!s->awaiting && s->queue_head) {
    *m = queue_pop(s);
    return 1;
  }
  grpc_byte_buffer *bb = next_buffer(s, e);
  if (!bb) return -1;
  if (mtw_peek_upload(bb, &c->h)) {
    c->bb = bb;
    return 1;
  }
  if (!(*m = decode(s, bb, e))) return -1;
  if (!s->awaiting || !waits_for_bytes(*m)) return 1;
  return queue_push(s, *m, e);
}

/* Serves messages until the stream ends or breaks. Large uploads skip the
 * decoder: their payload goes from gRPC's buffers to the storage in one
 * copy. */
static void session_loop(mtw_session *s, session_end *e) {
  for (;;) {
    Modaltensor__V1__ClientMessage *m;
    mtw_upload_chunk c = {{0}, NULL, NULL};
    int got = next_work(s, e, &m, &c);
    if (got < 0) return;
    if (got == 0) continue;
    int rc;
    if (c.bb) {
      rc = mtw_session_upload(s, &c);
      grpc_byte_buffer_destroy(c.bb);
    } else {
      rc = dispatch(s, m, e);
      mtw_unpacked_free(&m->base);
    }
    if (rc) {
      if (e->code != GRPC_STATUS_OK) return;
      if (mtw_call_cancelled(s->call)) end_with(e, GRPC_STATUS_CANCELLED, "the call ended");
      else end_with(e, GRPC_STATUS_UNAVAILABLE, "sending a reply failed");
      return;
    }
    if (backend_lost(s, e)) return;
  }
}

static void session_close(mtw_session *s, const session_end *e) {
  uint64_t tensors = s->table.count;
  queue_clear(s);
  mtw_session_templates_clear(s);
  mtw_table_clear(&s->table, storage_release, s);
  mtw_table_destroy(&s->table);
  s->worker->backend->ops->stream_destroy(s->stream);
  int normal = e->code == GRPC_STATUS_OK || e->code == GRPC_STATUS_CANCELLED;
  mtw_log(normal ? MTW_LOG_INFO : MTW_LOG_WARN,
          "session %llu closed (%s): %llu messages, %llu graphs, %llu tensors freed",
          (unsigned long long)s->stats.session_id,
          e->code == GRPC_STATUS_OK ? "the client finished" : e->details,
          (unsigned long long)s->messages, (unsigned long long)s->graphs,
          (unsigned long long)tensors);
  mtw_stats_unregister(&s->worker->stats, &s->stats);
  atomic_fetch_sub_explicit(&s->memory->sessions, 1, memory_order_relaxed);
}

void mtw_session_serve(mtw_worker *w, mtw_call *call) {
  mtw_session *s = calloc(1, sizeof *s);
  if (!s) {
    mtw_call_finish(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "modaltensor-worker: out of memory");
    return;
  }
  s->worker = w;
  s->call = call;
  session_end e = {GRPC_STATUS_OK, ""};
  if (mtw_call_start(call)) {
    end_with(&e, GRPC_STATUS_UNAVAILABLE, "the call ended before it started");
  } else {
    /* kernels stop when the client goes: the call's end is watched apart */
    if (mtw_call_watch(call))
      mtw_log(MTW_LOG_WARN, "no thread to watch a session's call: its kernels run to the end");
    int rc = session_open(s, &e);
    if (rc == 0) session_loop(s, &e);
    if (rc >= 0) session_close(s, &e);
  }
  mtw_call_finish(call, e.code, e.details[0] ? e.details : NULL);
  free(s);
}
