/*
 * session.h - one client's session: its storages, its stream on the
 * backend, its deferred error. Served by one thread (mtw_session_serve).
 *
 * Shared by session.c (the stream, Open, Free, Sync), graph.c (Graph) and
 * transfer.c (Upload, Download).
 */
#ifndef MTW_SESSION_H
#define MTW_SESSION_H

#include <stdarg.h>
#include <stdint.h>

#include "call.h"
#include "core/error.h"
#include "modaltensor.pb-c.h"
#include "stats.h"
#include "storage.h"
#include "wire.h"
#include "worker.h"

#define MTW_MESSAGE_MAX 1024

/* The most inputs one node may have (cat); more is refused, not allocated. */
#define MTW_MAX_NODE_INPUTS 4096

typedef struct mtw_session {
  mtw_worker *worker;
  mtw_call *call;
  mtw_session_stats stats; /* stats.session_id is the session's id */
  int device;
  uint32_t client_op_count; /* ops the client knows: only these may be used */
  mtw_stream *stream;
  mtw_memory *memory; /* the device's budget */
  uint64_t held;      /* bytes of it this session holds (its quota counts these) */
  mtw_table table;
  uint64_t graphs;   /* graphs received, for "graph G" in messages */
  uint64_t messages; /* messages received, for protocol errors */
  mt_status deferred_status; /* first error since the last Sync */
  char deferred_message[MTW_MESSAGE_MAX];
  /* Contents answered with Need whose bytes have not come yet; while any
   * has not, the messages that depend on order wait in this queue. */
  int awaiting;
  struct queued_message *queue_head, *queue_tail;
  size_t queued;
  struct mtw_template *templates[MTI_TEMPLATES_MAX]; /* template.c */
  size_t n_templates;
} mtw_session;

/* Serves a Session call from its first message (Open) to its end. */
void mtw_session_serve(mtw_worker *w, mtw_call *call);

/* Records status and message as the session's deferred error unless one
 * is already waiting for the next Sync. */
void mtw_session_defer(mtw_session *s, mt_status status, const char *fmt, ...) MTI_PRINTF(3, 4);

/* Charges nbytes to the session (its quota, then the device's budget);
 * on failure sets the error "what: out of memory: ..." (what may be NULL)
 * and returns MT_ERR_OUT_OF_MEMORY. Everything a session allocates
 * (storages, staging copies) goes through here and mtw_session_release. */
mt_status mtw_session_reserve(mtw_session *s, uint64_t nbytes, const char *what);
void mtw_session_release(mtw_session *s, uint64_t nbytes);

/* A new storage of numel elements of dtype with memory for its values,
 * added to the table and the counters. The id must be new. On failure sets
 * the error and returns its status (nothing is added). */
mt_status mtw_storage_create(mtw_session *s, uint64_t id, mt_dtype dtype, int64_t numel,
                             mtw_storage **out);

/* Adds a failed storage under id (new, non-zero) so that every use of it
 * reports message; when even that fails, the id stays unknown. */
void mtw_storage_create_failed(mtw_session *s, uint64_t id, mt_status status,
                               const char *message);

/* Turns an existing storage into a failed one, releasing its memory. */
void mtw_storage_fail(mtw_session *s, mtw_storage *st, mt_status status, const char *message);

/* The failure message of a failed storage. */
static inline const char *mtw_storage_failure(const mtw_storage *st) {
  return st->fail_message ? st->fail_message : "failed (its message was lost: out of memory)";
}

/* Removes the storage from the table, the counters and the budget. */
void mtw_storage_destroy(mtw_session *s, mtw_storage *st);

/* An Upload chunk: its payload is either contiguous (data) or still in
 * the gRPC message (bb, from byte data_pos; see mtw_peek_upload). */
typedef struct mtw_upload_chunk {
  mtw_upload_header h;
  const uint8_t *data;
  grpc_byte_buffer *bb;
} mtw_upload_chunk;

/* Sends m on the session's stream; 0, or -1 when the client is gone. */
int mtw_session_reply(mtw_session *s, const Modaltensor__V1__WorkerMessage *m);

/* The messages that have an effect on the session. They return 0 to go
 * on, or -1 when the stream cannot go on (sending failed, or the call
 * ended while a graph ran: its remaining nodes are dropped). */
int mtw_session_graph(mtw_session *s, const Modaltensor__V1__Graph *g);
int mtw_session_upload(mtw_session *s, const mtw_upload_chunk *u);
int mtw_session_content(mtw_session *s, const Modaltensor__V1__Content *c);
int mtw_session_invoke(mtw_session *s, const Modaltensor__V1__Invoke *inv);

/* Keeps g (taking it over) as template g->template_id, replacing one of
 * that id; a deferred error when the session has MTI_TEMPLATES_MAX. */
void mtw_session_template_keep(mtw_session *s, Modaltensor__V1__Graph *g);
void mtw_session_templates_clear(mtw_session *s);
int mtw_session_download(mtw_session *s, const Modaltensor__V1__Download *d);

#endif
