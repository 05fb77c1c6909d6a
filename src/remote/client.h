/*
 * client.h - what the parts of the client (registry.c, session.c,
 * recorder.c, transfer.c) share: the worker and session records and the
 * registry of both. Not part of remote.h: only src/remote includes it.
 *
 * registry.c: configuration, workers (connecting, discovery, following the
 *             worker file, reviving a local worker), device queries, shutdown
 * session.c:  a device's Session stream: opening it (pipelined: the Open
 *             travels with the first work), sending, receiving, sync points
 * recorder.c: the pending graph and the queued frees, and their encoding
 * transfer.c: uploads and downloads
 * content.c:  content addressing: the digests a worker holds, the bytes
 *             sent by reference until the worker confirms it has them
 *
 * Locking: registry.lock guards connecting, discovery and shutting down;
 * each session has its own lock for its stream and pending work. A thread
 * that holds a session lock may take its worker's lock (to respawn a local
 * worker), never the registry lock. Syncing several sessions takes their
 * locks in device order.
 */
#ifndef MTI_CLIENT_H
#define MTI_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/op_table.h"
#include "core/protocol.h"
#include "remote/remote.h"
#include "remote/spawn.h"
#include "remote/transport.h"

/* A pending graph is sent once it holds this many nodes (sync points send
 * it earlier); each Graph message carries at most MSG_NODES of them. */
#define FLUSH_NODES 4096
#define MSG_NODES 1024
#define FLUSH_FREES 4096
#define INLINE_INPUTS 3

typedef struct rec_view {
  uint64_t id; /* 0: absent */
  int64_t offset;
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS];
} rec_view;

typedef struct rec_node {
  mti_op op;
  mti_attrs at;
  int n;
  rec_view inline_in[INLINE_INPUTS];
  rec_view *heap_in; /* long cat lists; NULL when inline_in holds the inputs */
  int nout;
  uint64_t out_ids[MTI_MAX_OUTPUTS]; /* 0 for a copy into a view */
  mti_meta metas[MTI_MAX_OUTPUTS];
  int has_into;
  rec_view into;
} rec_node;

/* A channel that a worker was switched away from (the worker file named a
 * new address): streams of its other sessions may still point at it and at
 * its address, so both live until the worker is disconnected. */
typedef struct replaced_channel {
  mti_channel *ch;
  char *target;
  struct replaced_channel *next;
} replaced_channel;

typedef struct worker {
  pthread_mutex_t lock;
  char *target;
  mti_channel *ch;
  int local; /* started by this library */
  mti_local_worker proc;
  int ndevices; /* 0 until a Hello answered (discovery) */
  mt_device_properties *props;
  replaced_channel *replaced;
} worker;

/* The bytes of an upload sent by reference (Content without bytes), kept
 * until the sync after it answers, in case the worker asks for them. */
typedef struct held_upload {
  uint64_t id;
  mt_dtype dtype;
  int64_t numel;
  uint8_t digest[MTI_DIGEST_BYTES];
  void *data;
  size_t len;
  int device; /* modal:device, for progress reports */
} held_upload;

/* A graph kept on the worker as a template (Graph.template_id): the
 * SHA-256 of its message with ids numbered by first appearance. */
typedef struct client_template {
  uint8_t key[MTI_DIGEST_BYTES];
  uint64_t id;
  uint64_t used; /* the session's template clock: the least recent is replaced */
} client_template;

typedef struct session {
  pthread_mutex_t lock;
  worker *w;
  int device; /* index on w */
  int retired; /* its registry ended (mt_shutdown): never opened again */
  mti_stream *stream;
  int opened_pending; /* the Open went out; its Opened is still to be read */
  int dirty;          /* graphs, uploads or frees sent since the last sync answered */
  uint64_t generation; /* buffers of older generations are lost */
  uint64_t next_id;
  uint64_t next_request;
  uint64_t graphs_sent;
  char lost[320]; /* why the previous session ended */
  rec_node *nodes;
  size_t n_nodes, cap_nodes;
  uint64_t *frees;
  size_t n_frees, cap_frees;
  uint8_t (*known)[MTI_DIGEST_BYTES]; /* digests the worker holds, as far as we know */
  size_t n_known, cap_known;
  held_upload *held;
  size_t n_held, cap_held, held_bytes;
  int need_waited; /* a Need since the last sync answered: its round trip is counted */
  client_template templates[MTI_TEMPLATES_MAX];
  size_t n_templates;
  uint64_t template_clock;
} session;

struct mti_remote_buffer {
  session *s;
  uint64_t generation;
  uint64_t id;
  mt_dtype dtype;
  int64_t numel;
  int device;
};

/* Per-process counters (mt_modal_stats): atomics, since sessions count
 * under their own locks. */
typedef struct client_counters {
  _Atomic uint64_t round_trips, syncs, graphs, nodes, bytes_up, bytes_down, messages;
  _Atomic uint64_t bytes_skipped, uploads_skipped, graph_bytes, graphs_reused;
} client_counters;

typedef struct registry_state {
  pthread_mutex_t lock;
  atomic_int ready;      /* channels made and session 0 exists */
  atomic_int discovered; /* every worker's devices are known */
  worker *workers;
  int nworkers;
  session **sessions; /* 1 before discovery (modal:0), ndevices after */
  int nsessions;
  int64_t timeout_ms, connect_timeout_ms;
  int eager;
  mti_tls_mode tls_mode;
  char *tls_ca; /* MODALTENSOR_TLS_CA, or NULL */
  char *worker_file; /* MODALTENSOR_WORKER_FILE when it names the workers, or NULL */
  int atexit_registered;
  client_counters counters;
} registry_state;

extern registry_state registry;

/* registry.c */
mt_status client_status(const Modaltensor__V1__Status *st);
mt_status registry_connect(const char *fn);
mt_status registry_discover(const char *fn);
session *registry_session(int device);
mt_status registry_check_index(const char *fn, int index);
mt_status registry_worker_revive(const char *fn, worker *w);
mt_status registry_worker_follow_file(const char *fn, worker *w);
mt_status registry_file_hint(mt_status st);
mt_status registry_unreachable(const char *fn, worker *w);

/* session.c */
void session_lost(session *s);
mt_status session_send(const char *fn, session *s, Modaltensor__V1__ClientMessage *m);
mt_status session_recv(const char *fn, session *s, Modaltensor__V1__WorkerMessage **out);
mt_status session_open(const char *fn, session *s);
session *session_lock(const char *fn, int device);
session *session_lock_inputs(const char *fn, int device, int n, const mti_remote_view *in);
mt_status session_check_alive(const char *fn, const session *s, const mti_remote_buffer *b);
mt_status session_send_sync(const char *fn, session *s, uint64_t *id);
mt_status session_wait_sync(const char *fn, session *s, uint64_t id);
mt_status session_sync_locked(const char *fn, session *s);

/* recorder.c */
rec_view *recorder_node_inputs(rec_node *r);
void recorder_drop_pending(session *s);
void recorder_fill_view(Modaltensor__V1__TensorView *tv, rec_view *v);
void recorder_set_view(rec_view *r, const mti_remote_view *v);
mt_status recorder_send_pending(const char *fn, session *s);
void recorder_forget_templates(session *s);
mti_remote_buffer *recorder_new_buffer(const char *fn, session *s, int device, mt_dtype dtype,
                                       int64_t numel);

/* transfer.c */
mt_status transfer_send_bytes(const char *fn, session *s, const held_upload *h);

/* content.c */
int content_known(const session *s, const uint8_t d[MTI_DIGEST_BYTES]);
void content_learn(session *s, const uint8_t d[MTI_DIGEST_BYTES]);
void content_learn_opened(session *s, const Modaltensor__V1__Opened *o);
mt_status content_hold(const char *fn, session *s, const held_upload *h);
mt_status content_answer_need(const char *fn, session *s, const Modaltensor__V1__Need *need);
void content_release(session *s);
void content_forget(session *s);

#endif
