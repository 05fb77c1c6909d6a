/*
 * client.c - the modal device on the client side: workers, sessions, the
 * pending graph, uploads and downloads (implements remote.h).
 *
 * Locking: registry.lock guards connecting and shutting down; each session
 * has its own lock for its stream and pending work. A thread that holds a
 * session lock may take its worker's lock (to respawn a local worker), never
 * the registry lock.
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
#include "remote/remote.h"
#include "remote/spawn.h"
#include "remote/transport.h"

/* A pending graph is sent once it holds this many nodes (sync points send
 * it earlier); each Graph message carries at most MSG_NODES of them. */
#define FLUSH_NODES 4096
#define MSG_NODES 1024
#define FLUSH_FREES 4096
#define INLINE_INPUTS 3

/* ------------------------------------------------------------ state */

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
  int ndevices;
  mt_device_properties *props;
  replaced_channel *replaced;
} worker;

typedef struct session {
  pthread_mutex_t lock;
  worker *w;
  int device; /* index on w */
  mti_stream *stream;
  uint64_t generation; /* buffers of older generations are lost */
  uint64_t next_id;
  uint64_t next_request;
  uint64_t graphs_sent;
  char lost[320]; /* why the previous session ended */
  rec_node *nodes;
  size_t n_nodes, cap_nodes;
  uint64_t *frees;
  size_t n_frees, cap_frees;
} session;

struct mti_remote_buffer {
  session *s;
  uint64_t generation;
  uint64_t id;
  mt_dtype dtype;
  int64_t numel;
  int device;
};

static struct {
  pthread_mutex_t lock;
  atomic_int ready;
  worker *workers;
  int nworkers;
  session *sessions;
  int ndevices;
  int64_t timeout_ms, connect_timeout_ms;
  int eager;
  mti_tls_mode tls_mode;
  char *tls_ca; /* MODALTENSOR_TLS_CA, or NULL */
  char *worker_file; /* MODALTENSOR_WORKER_FILE when it names the workers, or NULL */
  int atexit_registered;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ config */

static int64_t env_seconds_ms(const char *name, double fallback) {
  const char *v = getenv(name);
  char *end;
  double s = v && *v ? strtod(v, &end) : fallback;
  if (!v || !*v || *end || !(s > 0) || s > 1e7) s = fallback;
  return (int64_t)(s * 1000.0);
}

static mt_status read_config(const char *fn) {
  reg.timeout_ms = env_seconds_ms("MODALTENSOR_TIMEOUT", 60);
  reg.connect_timeout_ms = env_seconds_ms("MODALTENSOR_CONNECT_TIMEOUT", 10);
  const char *eager = getenv("MODALTENSOR_EAGER");
  reg.eager = eager && *eager && strcmp(eager, "0") != 0;
  const char *ca = getenv("MODALTENSOR_TLS_CA");
  free(reg.tls_ca);
  reg.tls_ca = ca && *ca ? strdup(ca) : NULL;
  if (ca && *ca && !reg.tls_ca) return mti_error_oom(fn, strlen(ca) + 1);
  /* The worker file names the workers only when MODALTENSOR_WORKER does not. */
  const char *list = getenv("MODALTENSOR_WORKER"), *file = getenv("MODALTENSOR_WORKER_FILE");
  free(reg.worker_file);
  reg.worker_file = NULL;
  if ((!list || !*list) && file && *file && !(reg.worker_file = strdup(file)))
    return mti_error_oom(fn, strlen(file) + 1);
  return mti_tls_mode_parse(fn, getenv("MODALTENSOR_TLS"), &reg.tls_mode);
}

/* ------------------------------------------------------------ workers */

static mt_status remote_status(const Modaltensor__V1__Status *st) {
  return st ? (mt_status)st->code : MT_OK;
}

/* One Hello call to w: the handshake, and the only call that reports the
 * devices' memory as of now. */
static mt_status call_hello(const char *fn, worker *w, int64_t timeout_ms,
                            ProtobufCMessage **raw) {
  Modaltensor__V1__HelloRequest req = MODALTENSOR__V1__HELLO_REQUEST__INIT;
  req.protocol_version = MTI_PROTOCOL_VERSION;
  req.op_count = MTI_OP_COUNT;
  req.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  return mti_channel_unary(fn, w->ch, MTI_METHOD_HELLO, &req.base,
                           &modaltensor__v1__hello_reply__descriptor, timeout_ms, raw);
}

/* Handshake with w: checks compatibility and learns its devices. */
static mt_status hello(const char *fn, worker *w) {
  ProtobufCMessage *raw;
  mt_status s = call_hello(fn, w, reg.connect_timeout_ms, &raw);
  if (s == MT_ERR_TIMEOUT && mti_channel_tls_failure(fn, w->ch)) return MT_ERR_UNAVAILABLE;
  if (s == MT_ERR_TIMEOUT) /* nothing accepted the connection in time */
    return mti_error(MT_ERR_UNAVAILABLE, "%s: no worker answered at %s within %.0f s "
                     "(MODALTENSOR_CONNECT_TIMEOUT)", fn, w->target,
                     (double)reg.connect_timeout_ms / 1000.0);
  if (s) return s;
  Modaltensor__V1__HelloReply *rep = (Modaltensor__V1__HelloReply *)raw;
  if ((s = remote_status(rep->status))) {
    mti_error(s, "%s: worker %s refused this client: %s", fn, w->target, rep->status->message);
  } else if (rep->n_devices == 0) {
    s = mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s has no devices", fn, w->target);
  } else if (!(w->props = calloc(rep->n_devices, sizeof *w->props))) {
    s = mti_error_oom(fn, rep->n_devices * sizeof *w->props);
  } else {
    w->ndevices = (int)rep->n_devices;
    for (size_t i = 0; i < rep->n_devices; i++) {
      const Modaltensor__V1__DeviceInfo *d = rep->devices[i];
      mt_device_properties *p = &w->props[i];
      snprintf(p->name, sizeof p->name, "%s", d->name ? d->name : "");
      p->total_memory = d->total_memory;
      p->free_memory = d->free_memory;
      p->major = d->major;
      p->minor = d->minor;
      p->multiprocessors = d->multiprocessors;
    }
  }
  protobuf_c_message_free_unpacked(raw, NULL);
  return s;
}

/* Starts the local worker (if w is local) and connects to it. */
static mt_status worker_connect(const char *fn, worker *w, const char *token) {
  if (w->local) {
    mt_status s = mti_local_worker_start(fn, &w->proc);
    if (s) return s;
    free(w->target);
    if (!(w->target = strdup(w->proc.target))) return mti_error_oom(fn, sizeof w->proc.target);
  }
  mti_channel_config cfg = {token, reg.tls_mode, reg.tls_ca};
  mt_status s = mti_channel_create(fn, w->target, &cfg, &w->ch);
  if (!s) s = hello(fn, w);
  if (s && w->local) {
    char why[96];
    if (!mti_local_worker_alive(&w->proc, why, sizeof why))
      s = mti_error(MT_ERR_UNAVAILABLE, "%s: the local worker %s (its messages went to stderr)",
                    fn, why);
  }
  return s;
}

/* Closes w's channel and those it was switched away from. Only local
 * workers are disconnected while sessions may be open, and they are never
 * switched, so no stream is left pointing at a replaced channel. */
static void worker_disconnect(worker *w) {
  mti_channel_destroy(w->ch);
  w->ch = NULL;
  free(w->props);
  w->props = NULL;
  w->ndevices = 0;
  if (w->local) mti_local_worker_stop(&w->proc);
  while (w->replaced) {
    replaced_channel *old = w->replaced;
    w->replaced = old->next;
    mti_channel_destroy(old->ch);
    free(old->target);
    free(old);
  }
}

/* Restarts a local worker that died, so that new work can go on. Called
 * with the session lock held; takes the worker's lock. */
static mt_status worker_revive(const char *fn, worker *w) {
  char why[96];
  mt_status s = MT_OK;
  pthread_mutex_lock(&w->lock);
  if (w->local && !mti_local_worker_alive(&w->proc, why, sizeof why)) {
    int ndevices = w->ndevices;
    worker_disconnect(w);
    s = worker_connect(fn, w, NULL);
    if (!s && w->ndevices != ndevices)
      s = mti_error(MT_ERR_UNAVAILABLE, "%s: the restarted local worker has %d devices, not %d",
                    fn, w->ndevices, ndevices);
  }
  pthread_mutex_unlock(&w->lock);
  return s;
}

/* The next address of a comma-separated list at *p (trailing spaces
 * dropped, *len its length), advancing *p past it; NULL at the end. */
static const char *next_address(const char **p, size_t *len) {
  while (**p == ',' || **p == ' ') (*p)++;
  if (!**p) return NULL;
  const char *start = *p;
  *len = strcspn(start, ",");
  *p = start + *len;
  while (*len && start[*len - 1] == ' ') (*len)--;
  return start;
}

/* The first non-empty line of MODALTENSOR_WORKER_FILE, trimmed, into line.
 * A missing or empty file means no worker is up (`down` leaves it so):
 * MT_ERR_UNAVAILABLE, saying how to start one. */
static mt_status read_worker_file(const char *fn, char *line, size_t len) {
  FILE *f = fopen(reg.worker_file, "r");
  if (!f && errno == ENOENT)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s does not exist: no "
                     "worker is up (start one: python -m modaltensor.modal up)", fn,
                     reg.worker_file);
  if (!f)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s: %s", fn,
                     reg.worker_file, strerror(errno));
  int found = 0;
  while (!found && fgets(line, (int)len, f)) {
    size_t start = strspn(line, " \t\r\n"), end = strlen(line);
    while (end > start && strchr(" \t\r\n", line[end - 1])) end--;
    memmove(line, line + start, end - start);
    line[end - start] = '\0';
    found = line[0] != '\0';
  }
  fclose(f);
  if (!found)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s is empty: no worker is "
                     "up (start one: python -m modaltensor.modal up)", fn, reg.worker_file);
  return MT_OK;
}

/* Adds to an MT_ERR_UNAVAILABLE about a worker named by the worker file
 * what to do: a Modal worker goes away on idle shutdown or preemption, and
 * `up` rewrites the file, which the next use reads. */
static mt_status with_file_hint(mt_status st) {
  if (st != MT_ERR_UNAVAILABLE || !reg.worker_file) return st;
  char why[512];
  snprintf(why, sizeof why, "%s", mt_last_error());
  return mti_error(st, "%s [the address is from MODALTENSOR_WORKER_FILE=%s: a Modal worker stops "
                   "on idle shutdown or preemption; run python -m modaltensor.modal up and use "
                   "the device again]", why, reg.worker_file);
}

/* The address the worker file now gives w (its place in the list), into
 * out; the number of workers must not change. */
static mt_status file_address(const char *fn, const worker *w, char *out, size_t len) {
  char line[4 * MTI_ADDRESS_MAX];
  mt_status st = read_worker_file(fn, line, sizeof line);
  if (st) return st;
  const char *p = line, *a;
  size_t alen;
  int n = 0;
  for (; (a = next_address(&p, &alen)); n++)
    if (n == (int)(w - reg.workers)) snprintf(out, len, "%.*s", (int)alen, a);
  if (n != reg.nworkers)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: MODALTENSOR_WORKER_FILE=%s now names %d workers, "
                     "this program started with %d: restart it to use them", fn,
                     reg.worker_file, n, reg.nworkers);
  return MT_OK;
}

/* Connects to address in place of w's worker, which must have as many
 * devices. The old channel stays until w is disconnected. Called with w's
 * lock held. */
static mt_status worker_switch(const char *fn, worker *w, const char *address) {
  worker fresh = {.target = strdup(address)};
  replaced_channel *old = malloc(sizeof *old);
  mt_status st = fresh.target && old ? worker_connect(fn, &fresh, getenv("MODALTENSOR_TOKEN"))
                                     : mti_error_oom(fn, sizeof *old + strlen(address) + 1);
  if (st) {
    st = with_file_hint(st);
  } else if (fresh.ndevices != w->ndevices) {
    st = mti_error(MT_ERR_UNAVAILABLE, "%s: the worker at %s (from MODALTENSOR_WORKER_FILE=%s) "
                   "has %d devices, this program started with %d: restart it to use them", fn,
                   address, reg.worker_file, fresh.ndevices, w->ndevices);
  }
  if (st) {
    worker_disconnect(&fresh);
    free(fresh.target);
    free(old);
    return st;
  }
  *old = (replaced_channel){w->ch, w->target, w->replaced};
  free(w->props);
  w->replaced = old;
  w->ch = fresh.ch;
  w->target = fresh.target;
  w->props = fresh.props;
  return MT_OK;
}

/* Before a session of w opens again: when the worker file now names
 * another address (a new `up`), switches w there. Called with the session
 * lock held; takes the worker's lock. */
static mt_status worker_follow_file(const char *fn, worker *w) {
  if (!reg.worker_file) return MT_OK;
  char address[MTI_ADDRESS_MAX];
  mt_status st = file_address(fn, w, address, sizeof address);
  if (st) return st;
  pthread_mutex_lock(&w->lock);
  if (strcmp(address, w->target) != 0) st = worker_switch(fn, w, address);
  pthread_mutex_unlock(&w->lock);
  return st;
}

static void stop_local_worker_at_exit(void) {
  for (int i = 0; i < reg.nworkers; i++)
    if (reg.workers[i].local) mti_local_worker_stop(&reg.workers[i].proc);
}

/* Splits MODALTENSOR_WORKER, or the line of MODALTENSOR_WORKER_FILE, into
 * workers (one local worker when neither is set). */
static mt_status make_workers(const char *fn) {
  char line[4 * MTI_ADDRESS_MAX];
  const char *list = getenv("MODALTENSOR_WORKER");
  if (reg.worker_file) {
    mt_status st = read_worker_file(fn, line, sizeof line);
    if (st) return st;
    list = line;
  }
  int n = 1;
  for (const char *p = list; p && *p; p++) n += *p == ',';
  reg.workers = calloc((size_t)n, sizeof *reg.workers);
  if (!reg.workers) return mti_error_oom(fn, (size_t)n * sizeof *reg.workers);
  reg.nworkers = 0;
  if (!list || !*list) {
    reg.workers[0].local = 1;
    reg.nworkers = 1;
  }
  size_t len;
  for (const char *p = list, *a; p && (a = next_address(&p, &len));)
    reg.workers[reg.nworkers++].target = strndup(a, len);
  for (int i = 0; i < reg.nworkers; i++) pthread_mutex_init(&reg.workers[i].lock, NULL);
  if (reg.nworkers == 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: no address in \"%s\"", fn,
                     reg.worker_file ? "MODALTENSOR_WORKER_FILE" : "MODALTENSOR_WORKER", list);
  return MT_OK;
}

static void free_registry(void) {
  for (int i = 0; i < reg.nworkers; i++) {
    worker_disconnect(&reg.workers[i]);
    free(reg.workers[i].target);
    pthread_mutex_destroy(&reg.workers[i].lock);
  }
  free(reg.workers);
  free(reg.sessions);
  free(reg.tls_ca);
  reg.tls_ca = NULL;
  free(reg.worker_file);
  reg.worker_file = NULL;
  reg.workers = NULL;
  reg.sessions = NULL;
  reg.nworkers = reg.ndevices = 0;
}

static mt_status make_sessions(const char *fn) {
  for (int i = 0; i < reg.nworkers; i++) reg.ndevices += reg.workers[i].ndevices;
  reg.sessions = calloc((size_t)reg.ndevices, sizeof *reg.sessions);
  if (!reg.sessions) return mti_error_oom(fn, (size_t)reg.ndevices * sizeof *reg.sessions);
  int k = 0;
  for (int i = 0; i < reg.nworkers; i++)
    for (int d = 0; d < reg.workers[i].ndevices; d++, k++) {
      session *s = &reg.sessions[k];
      pthread_mutex_init(&s->lock, NULL);
      s->w = &reg.workers[i];
      s->device = d;
      s->generation = 1;
    }
  return MT_OK;
}

/* Connects to every configured worker once; later calls are one load. A
 * failed attempt leaves nothing behind, so the next call tries again. */
static mt_status ensure_connected(const char *fn) {
  if (atomic_load_explicit(&reg.ready, memory_order_acquire)) return MT_OK;
  pthread_mutex_lock(&reg.lock);
  mt_status s = MT_OK;
  if (!atomic_load(&reg.ready)) {
    const char *token = getenv("MODALTENSOR_TOKEN");
    s = read_config(fn);
    if (!s) s = make_workers(fn);
    for (int i = 0; !s && i < reg.nworkers; i++)
      s = with_file_hint(worker_connect(fn, &reg.workers[i], token));
    if (!s) s = make_sessions(fn);
    if (s) {
      free_registry();
    } else {
      if (!reg.atexit_registered) reg.atexit_registered = !atexit(stop_local_worker_at_exit);
      atomic_store_explicit(&reg.ready, 1, memory_order_release);
    }
  }
  pthread_mutex_unlock(&reg.lock);
  return s;
}

/* ------------------------------------------------------------ sessions */

/* Inputs of r. Not a stored pointer: the node array moves when it grows. */
static rec_view *node_inputs(rec_node *r) { return r->heap_in ? r->heap_in : r->inline_in; }

static void drop_pending(session *s) {
  for (size_t i = 0; i < s->n_nodes; i++) free(s->nodes[i].heap_in);
  s->n_nodes = 0;
  s->n_frees = 0;
}

/* Ends the session after a transport failure: every buffer made in it is
 * lost, pending work is dropped. Keeps the thread's error, adding what to
 * do when the worker came from the worker file. */
static void session_lost(session *s) {
  snprintf(s->lost, sizeof s->lost, "%s", mt_last_error());
  with_file_hint(mt_last_status());
  mti_stream_close(s->stream);
  s->stream = NULL;
  s->generation++;
  drop_pending(s);
}

static mt_status send_msg(const char *fn, session *s, Modaltensor__V1__ClientMessage *m) {
  mt_status st = mti_stream_send(fn, s->stream, &m->base, reg.timeout_ms);
  if (st) session_lost(s);
  return st;
}

static mt_status recv_msg(const char *fn, session *s, Modaltensor__V1__WorkerMessage **out) {
  mt_status st = mti_stream_recv(fn, s->stream, reg.timeout_ms, out);
  if (st) session_lost(s);
  return st;
}

/* Opens the session's stream (reviving a local worker known to be dead). */
static mt_status session_open_once(const char *fn, session *s) {
  mt_status st = worker_revive(fn, s->w);
  if (!st) st = worker_follow_file(fn, s->w);
  if (st) return st;
  if ((st = mti_stream_open(fn, s->w->ch, reg.connect_timeout_ms, &s->stream)))
    return with_file_hint(st);
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
  Modaltensor__V1__WorkerMessage *reply;
  if ((st = send_msg(fn, s, &m)) || (st = recv_msg(fn, s, &reply))) return st;
  if (reply->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED)
    st = mti_error(MT_ERR_REMOTE, "%s: worker %s answered Open with another message", fn,
                   s->w->target);
  else if ((st = remote_status(reply->opened->status)))
    mti_error(st, "%s: worker %s refused the session: %s", fn, s->w->target,
              reply->opened->status->message);
  protobuf_c_message_free_unpacked(&reply->base, NULL);
  if (st) session_lost(s);
  return st;
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
static mt_status session_open(const char *fn, session *s) {
  if (s->stream) return MT_OK;
  mt_status st = session_open_once(fn, s);
  if (st && s->w->local && local_worker_died(s->w, 1000)) st = session_open_once(fn, s);
  return st;
}

static session *session_of(int device) { return &reg.sessions[device]; }

/* Locks device's session, connecting first when needed. */
static session *session_lock(const char *fn, int device) {
  if (ensure_connected(fn)) return NULL;
  if (device < 0 || device >= reg.ndevices) {
    mti_error(MT_ERR_DEVICE, "%s: device: modal:%d does not exist (%d modal devices)", fn, device,
              reg.ndevices);
    return NULL;
  }
  session *s = session_of(device);
  pthread_mutex_lock(&s->lock);
  return s;
}

/* ------------------------------------------------------------ flushing */

static void fill_view(Modaltensor__V1__TensorView *tv, rec_view *v) {
  modaltensor__v1__tensor_view__init(tv);
  tv->id = v->id;
  tv->offset = v->offset;
  tv->n_shape = tv->n_strides = (size_t)v->ndim;
  tv->shape = v->shape;
  tv->strides = v->strides;
}

static void fill_attrs(Modaltensor__V1__Attrs *a, const mti_attrs *at) {
  modaltensor__v1__attrs__init(a);
  a->s0 = at->s0;
  a->s1 = at->s1;
  a->seed = at->seed;
  a->dims_mask = at->dims_mask;
  a->dim = at->dim;
  a->dtype = at->dtype;
  a->flags = at->flags;
  a->s2 = at->s2;
  a->n_ints = (size_t)at->n_ints;
  a->ints = (int64_t *)at->ints;
}

static void fill_output(Modaltensor__V1__Output *o, const rec_node *r, int k) {
  modaltensor__v1__output__init(o);
  o->id = r->out_ids[k];
  o->dtype = (int32_t)r->metas[k].dtype;
  o->n_shape = (size_t)r->metas[k].ndim;
  o->shape = (int64_t *)r->metas[k].shape;
}

/* Sends nodes [first, first + count) as one Graph message. The protobuf
 * structs point into the recorded nodes: nothing is copied but the packing. */
static mt_status send_graph(const char *fn, session *s, size_t first, size_t count) {
  size_t nviews = 0, nouts = 0;
  for (size_t i = first; i < first + count; i++) {
    nviews += (size_t)s->nodes[i].n + 1;
    nouts += (size_t)s->nodes[i].nout;
  }
  Modaltensor__V1__Node *nodes = malloc(count * sizeof *nodes);
  Modaltensor__V1__Node **node_ptrs = malloc(count * sizeof *node_ptrs);
  Modaltensor__V1__Attrs *attrs = malloc(count * sizeof *attrs);
  Modaltensor__V1__TensorView *views = malloc(nviews * sizeof *views);
  Modaltensor__V1__TensorView **view_ptrs = malloc(nviews * sizeof *view_ptrs);
  Modaltensor__V1__Output *outs = malloc(nouts * sizeof *outs);
  Modaltensor__V1__Output **out_ptrs = malloc(nouts * sizeof *out_ptrs);
  mt_status st = MT_OK;
  if (!nodes || !node_ptrs || !attrs || !views || !view_ptrs || !outs || !out_ptrs) {
    st = mti_error_oom(fn, count * (sizeof *nodes + sizeof *attrs) + nviews * sizeof *views +
                               nouts * sizeof *outs);
    goto done;
  }
  size_t v = 0, o = 0;
  for (size_t k = 0; k < count; k++) {
    rec_node *r = &s->nodes[first + k];
    Modaltensor__V1__Node *n = &nodes[k];
    modaltensor__v1__node__init(n);
    n->op = (uint32_t)r->op;
    n->n_inputs = (size_t)r->n;
    n->inputs = &view_ptrs[v];
    for (int i = 0; i < r->n; i++, v++) {
      fill_view(&views[v], &node_inputs(r)[i]);
      view_ptrs[v] = &views[v];
    }
    fill_attrs(&attrs[k], &r->at);
    n->attrs = &attrs[k];
    n->n_outputs = (size_t)r->nout;
    n->outputs = &out_ptrs[o];
    for (int j = 0; j < r->nout; j++, o++) {
      fill_output(&outs[o], r, j);
      out_ptrs[o] = &outs[o];
    }
    if (r->has_into) {
      fill_view(&views[v], &r->into);
      n->into = &views[v++];
    }
    node_ptrs[k] = n;
  }
  Modaltensor__V1__Graph graph = MODALTENSOR__V1__GRAPH__INIT;
  graph.n_nodes = count;
  graph.nodes = node_ptrs;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH;
  m.graph = &graph;
  st = send_msg(fn, s, &m);
  if (!st) s->graphs_sent++;
done:
  free(nodes);
  free(node_ptrs);
  free(attrs);
  free(views);
  free(view_ptrs);
  free(outs);
  free(out_ptrs);
  return st;
}

/* Sends the pending graph, then the queued frees. */
static mt_status flush(const char *fn, session *s) {
  mt_status st = MT_OK;
  for (size_t first = 0; !st && first < s->n_nodes; first += MSG_NODES) {
    size_t count = s->n_nodes - first < MSG_NODES ? s->n_nodes - first : MSG_NODES;
    st = send_graph(fn, s, first, count);
  }
  if (st) return st; /* session_lost dropped the rest */
  drop_pending(s);
  return MT_OK;
}

static mt_status flush_frees(const char *fn, session *s, uint64_t *ids, size_t n) {
  Modaltensor__V1__Free fr = MODALTENSOR__V1__FREE__INIT;
  fr.n_ids = n;
  fr.ids = ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE;
  m.free = &fr;
  return send_msg(fn, s, &m);
}

/* Sends everything pending: nodes first, then frees (a free may name an
 * input of a pending node). */
static mt_status send_pending(const char *fn, session *s) {
  if (!s->stream) return MT_OK;
  size_t nfrees = s->n_frees;
  uint64_t *frees = NULL;
  if (nfrees) { /* flush() clears n_frees; keep the list until it is sent */
    frees = s->frees;
    s->frees = NULL;
    s->cap_frees = 0;
  }
  mt_status st = flush(fn, s);
  if (!st && nfrees) st = flush_frees(fn, s, frees, nfrees);
  free(frees);
  return st;
}

/* Waits for the SyncDone of request id; returns its status (deferred error). */
static mt_status wait_sync(const char *fn, session *s, uint64_t id) {
  for (;;) {
    Modaltensor__V1__WorkerMessage *reply;
    mt_status st = recv_msg(fn, s, &reply);
    if (st) return st;
    int done = reply->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE &&
               reply->sync_done->request_id == id;
    if (done && (st = remote_status(reply->sync_done->status)))
      mti_error(st, "%s: an earlier op failed on the worker (reported at this sync): %s", fn,
                reply->sync_done->status->message);
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (done) return st;
  }
}

static mt_status send_sync(const char *fn, session *s, uint64_t *id) {
  Modaltensor__V1__Sync sync = MODALTENSOR__V1__SYNC__INIT;
  sync.request_id = *id = ++s->next_request;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &sync;
  return send_msg(fn, s, &m);
}

static mt_status sync_locked(const char *fn, session *s) {
  uint64_t id;
  mt_status st = send_pending(fn, s);
  if (!st && s->stream && !(st = send_sync(fn, s, &id))) st = wait_sync(fn, s, id);
  return st;
}

/* ------------------------------------------------------------ public */

int mti_remote_device_count(void) {
  return ensure_connected("mt_modal_device_count") ? 0 : reg.ndevices;
}

mt_status mti_remote_check_device(const char *fn, int index) {
  mt_status st = ensure_connected(fn);
  if (st) return st;
  if (index < 0 || index >= reg.ndevices)
    return mti_error(MT_ERR_DEVICE, "%s: device: modal:%d does not exist (%d modal devices)", fn,
                     index, reg.ndevices);
  return MT_OK;
}

mt_status mti_remote_device_properties(const char *fn, int index, mt_device_properties *out) {
  mt_status st = mti_remote_check_device(fn, index);
  if (st) return st;
  session *s = session_of(index);
  pthread_mutex_lock(&s->w->lock);
  *out = s->w->props[s->device];
  pthread_mutex_unlock(&s->w->lock);
  return MT_OK;
}

/* Reads device's memory numbers from a reply to a fresh Hello to w. Called
 * with w's lock held, so that a restart cannot swap the channel under it. */
static mt_status memory_from_hello(const char *fn, worker *w, int device, int64_t *allocated,
                                   int64_t *reserved) {
  if (!w->ch)
    return mti_error(MT_ERR_UNAVAILABLE, "%s: the worker at %s is disconnected", fn, w->target);
  ProtobufCMessage *raw;
  mt_status st = call_hello(fn, w, reg.timeout_ms, &raw);
  if (st) return st;
  Modaltensor__V1__HelloReply *rep = (Modaltensor__V1__HelloReply *)raw;
  if ((st = remote_status(rep->status))) {
    mti_error(st, "%s: worker %s refused this client: %s", fn, w->target, rep->status->message);
  } else if ((size_t)device >= rep->n_devices) {
    st = mti_error(MT_ERR_UNAVAILABLE, "%s: worker %s now reports %zu devices, not %d", fn,
                   w->target, rep->n_devices, w->ndevices);
  } else {
    *allocated = rep->devices[device]->used_memory;
    *reserved = rep->devices[device]->reserved_memory;
  }
  protobuf_c_message_free_unpacked(raw, NULL);
  return st;
}

mt_status mti_remote_memory_usage(const char *fn, int index, int64_t *allocated,
                                  int64_t *reserved) {
  mt_status st = mti_remote_check_device(fn, index);
  if (st) return st;
  session *s = session_of(index);
  pthread_mutex_lock(&s->w->lock);
  st = memory_from_hello(fn, s->w, s->device, allocated, reserved);
  pthread_mutex_unlock(&s->w->lock);
  return st;
}

mt_status mti_remote_synchronize(const char *fn, int index) {
  session *s = session_lock(fn, index);
  if (!s) return mt_last_status();
  mt_status st = sync_locked(fn, s);
  pthread_mutex_unlock(&s->lock);
  return st;
}

/* Registries from before an mt_shutdown: buffers that outlive it still
 * point at their sessions, so those stay allocated (and reachable). */
typedef struct retired_registry {
  worker *workers;
  session *sessions;
  struct retired_registry *next;
} retired_registry;
static retired_registry *retired;

void mti_remote_shutdown(void) {
  pthread_mutex_lock(&reg.lock);
  if (atomic_load(&reg.ready)) {
    for (int i = 0; i < reg.ndevices; i++) {
      session *s = &reg.sessions[i];
      pthread_mutex_lock(&s->lock);
      snprintf(s->lost, sizeof s->lost, "mt_shutdown closed it");
      mti_stream_close(s->stream); /* the worker frees the session's memory */
      s->stream = NULL;
      s->generation++;
      drop_pending(s);
      pthread_mutex_unlock(&s->lock);
    }
    for (int i = 0; i < reg.nworkers; i++) {
      pthread_mutex_lock(&reg.workers[i].lock);
      worker_disconnect(&reg.workers[i]);
      pthread_mutex_unlock(&reg.workers[i].lock);
    }
    retired_registry *r = malloc(sizeof *r);
    if (r) { /* without it the arrays are simply never freed: same effect */
      r->workers = reg.workers;
      r->sessions = reg.sessions;
      r->next = retired;
      retired = r;
    }
    reg.workers = NULL;
    reg.sessions = NULL;
    reg.nworkers = reg.ndevices = 0;
    atomic_store(&reg.ready, 0);
  }
  pthread_mutex_unlock(&reg.lock);
}

mt_dtype mti_remote_buffer_dtype(const mti_remote_buffer *b) { return b->dtype; }
int64_t mti_remote_buffer_numel(const mti_remote_buffer *b) { return b->numel; }
int mti_remote_buffer_device(const mti_remote_buffer *b) { return b->device; }

static mti_remote_buffer *new_buffer(const char *fn, session *s, int device, mt_dtype dtype,
                                     int64_t numel) {
  mti_remote_buffer *b = malloc(sizeof *b);
  if (!b) {
    mti_error_oom(fn, sizeof *b);
    return NULL;
  }
  b->s = s;
  b->generation = s->generation;
  b->id = ++s->next_id;
  b->dtype = dtype;
  b->numel = numel;
  b->device = device;
  return b;
}

/* MT_OK when b belongs to s's current session. */
static mt_status check_alive(const char *fn, const session *s, const mti_remote_buffer *b) {
  if (b->generation == s->generation && s->stream) return MT_OK;
  return mti_error(MT_ERR_UNAVAILABLE,
                   "%s: the tensor was lost when its session with worker %s ended (%s)", fn,
                   s->w->target ? s->w->target : "?", s->lost[0] ? s->lost : "shut down");
}

void mti_remote_release(mti_remote_buffer *b) {
  if (!b) return;
  session *s = b->s;
  pthread_mutex_lock(&s->lock);
  if (b->generation == s->generation && s->stream) {
    if (s->n_frees == s->cap_frees) {
      size_t cap = s->cap_frees ? 2 * s->cap_frees : 256;
      uint64_t *f = realloc(s->frees, cap * sizeof *f);
      if (f) s->frees = f, s->cap_frees = cap;
    }
    /* Without memory for the queue the id stays allocated on the worker
     * until the session ends: a leak there, never a crash here. */
    if (s->n_frees < s->cap_frees) s->frees[s->n_frees++] = b->id;
    if (s->n_frees >= FLUSH_FREES) send_pending("mt_tensor_free", s);
  }
  pthread_mutex_unlock(&s->lock);
  free(b);
}

static void set_rec_view(rec_view *r, const mti_remote_view *v) {
  r->id = v->buf ? v->buf->id : 0;
  r->offset = v->offset;
  r->ndim = v->ndim;
  memcpy(r->shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
  memcpy(r->strides, v->strides, sizeof(int64_t) * (size_t)v->ndim);
}

/* Appends a node; on success returns it with its inputs set. */
static rec_node *append_node(const char *fn, session *s, mti_op op, int n,
                             const mti_remote_view *in, const mti_attrs *at) {
  if (s->n_nodes == s->cap_nodes) {
    size_t cap = s->cap_nodes ? 2 * s->cap_nodes : 256;
    rec_node *nodes = realloc(s->nodes, cap * sizeof *nodes);
    if (!nodes) {
      mti_error_oom(fn, cap * sizeof *nodes);
      return NULL;
    }
    s->nodes = nodes;
    s->cap_nodes = cap;
  }
  rec_node *r = &s->nodes[s->n_nodes];
  r->heap_in = NULL;
  if (n > INLINE_INPUTS && !(r->heap_in = malloc((size_t)n * sizeof *r->heap_in))) {
    mti_error_oom(fn, (size_t)n * sizeof *r->heap_in);
    return NULL;
  }
  r->op = op;
  r->at = *at;
  r->n = n;
  r->has_into = 0;
  for (int i = 0; i < n; i++) set_rec_view(&node_inputs(r)[i], &in[i]);
  s->n_nodes++;
  return r;
}

/* After recording: sends (and in eager mode waits) when it is time. */
static mt_status after_record(const char *fn, session *s) {
  if (reg.eager) return sync_locked(fn, s);
  if (s->n_nodes >= FLUSH_NODES) return send_pending(fn, s);
  return MT_OK;
}

/* Locks the session of device and checks every input belongs to it. */
static session *lock_for_inputs(const char *fn, int device, int n, const mti_remote_view *in) {
  session *s = session_lock(fn, device);
  if (!s) return NULL;
  for (int i = 0; i < n; i++) {
    if (!in[i].buf) continue;
    const session *home = in[i].buf->s;
    if (home < reg.sessions || home >= reg.sessions + reg.ndevices) {
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
    if (check_alive(fn, s, in[i].buf)) {
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

mt_status mti_remote_record(const char *fn, int device, mti_op op, int n,
                            const mti_remote_view *in, const mti_attrs *at,
                            const mti_meta *metas, mti_remote_buffer **outs) {
  int nout = mti_op_get((int)op)->nout;
  for (int k = 0; k < nout; k++) outs[k] = NULL;
  session *s = lock_for_inputs(fn, device, n, in);
  if (!s) return mt_last_status();
  mt_status st = MT_OK;
  for (int k = 0; k < nout && !st; k++)
    if (!(outs[k] = new_buffer(fn, s, device, metas[k].dtype,
                               mti_shape_numel(metas[k].ndim, metas[k].shape))))
      st = mt_last_status();
  rec_node *r = st ? NULL : append_node(fn, s, op, n, in, at);
  if (r) {
    r->nout = nout;
    for (int k = 0; k < nout; k++) {
      r->out_ids[k] = outs[k]->id;
      r->metas[k] = metas[k];
    }
    st = after_record(fn, s);
  } else if (!st) {
    st = mt_last_status();
  }
  pthread_mutex_unlock(&s->lock);
  if (st)
    for (int k = 0; k < nout; k++) {
      free(outs[k]);
      outs[k] = NULL;
    }
  return st;
}

mt_status mti_remote_record_into(const char *fn, const mti_remote_view *src,
                                 const mti_attrs *at, const mti_remote_view *dst) {
  mti_remote_view both[2] = {*src, *dst};
  session *s = lock_for_inputs(fn, dst->buf->device, 2, both);
  if (!s) return mt_last_status();
  mt_status st = MT_OK;
  rec_node *r = append_node(fn, s, MTI_OP_COPY, 1, src, at);
  if (!r) {
    st = mt_last_status();
  } else {
    r->nout = 1;
    r->out_ids[0] = 0;
    r->metas[0].dtype = dst->buf->dtype;
    r->metas[0].ndim = dst->ndim;
    memcpy(r->metas[0].shape, dst->shape, sizeof(int64_t) * (size_t)dst->ndim);
    r->has_into = 1;
    set_rec_view(&r->into, dst);
    st = after_record(fn, s);
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}

/* Sends one Upload chunk of b. */
static mt_status send_chunk(const char *fn, session *s, const mti_remote_buffer *b,
                            uint64_t offset, const void *data, size_t len) {
  Modaltensor__V1__Upload up = MODALTENSOR__V1__UPLOAD__INIT;
  up.id = b->id;
  up.dtype = (int32_t)b->dtype;
  up.numel = b->numel;
  up.offset = offset;
  up.data.len = len;
  up.data.data = (uint8_t *)data;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD;
  m.upload = &up;
  return send_msg(fn, s, &m);
}

/* Streams src's values, row-major, in chunks: contiguous sources go
 * straight from their memory, others through one staging chunk. */
static mt_status upload_values(const char *fn, session *s, const mti_remote_buffer *b,
                               const mti_view *src) {
  size_t esize = mt_dtype_size(src->dtype), total = (size_t)b->numel * esize;
  int contiguous = mti_shape_is_contiguous(src->ndim, src->shape, src->strides);
  if (total == 0) return send_chunk(fn, s, b, 0, NULL, 0);
  if (contiguous) {
    mt_status st = MT_OK;
    for (size_t off = 0; !st && off < total; off += MTI_CHUNK_BYTES) {
      size_t len = total - off < MTI_CHUNK_BYTES ? total - off : MTI_CHUNK_BYTES;
      st = send_chunk(fn, s, b, off, (const char *)src->data + off, len);
    }
    return st;
  }
  /* Strided: walk the elements in row-major order into a staging chunk. */
  size_t per_chunk = MTI_CHUNK_BYTES / esize;
  char *stage = malloc(per_chunk * esize);
  if (!stage) return mti_error_oom(fn, per_chunk * esize);
  int64_t idx[MT_MAX_DIMS] = {0};
  mt_status st = MT_OK;
  size_t filled = 0, sent = 0;
  for (int64_t e = 0; !st && e < b->numel; e++) {
    int64_t off = 0;
    for (int d = 0; d < src->ndim; d++) off += idx[d] * src->strides[d];
    memcpy(stage + filled * esize, (const char *)src->data + off * (int64_t)esize, esize);
    if (++filled == per_chunk || e + 1 == b->numel) {
      st = send_chunk(fn, s, b, sent, stage, filled * esize);
      sent += filled * esize;
      filled = 0;
    }
    for (int d = src->ndim - 1; d >= 0 && ++idx[d] == src->shape[d]; d--) idx[d] = 0;
  }
  free(stage);
  return st;
}

mti_remote_buffer *mti_remote_upload(const char *fn, int device, const mti_view *src) {
  session *s = lock_for_inputs(fn, device, 0, NULL);
  if (!s) return NULL;
  mti_remote_buffer *b =
      new_buffer(fn, s, device, src->dtype, mti_shape_numel(src->ndim, src->shape));
  /* Pending nodes go first so that the worker sees ops in program order. */
  mt_status st = b ? send_pending(fn, s) : mt_last_status();
  if (!st) st = upload_values(fn, s, b, src);
  if (!st && reg.eager) st = sync_locked(fn, s);
  pthread_mutex_unlock(&s->lock);
  if (st) {
    free(b);
    return NULL;
  }
  return b;
}

static mt_status send_download(const char *fn, session *s, const mti_remote_view *view,
                               uint64_t *id) {
  rec_view rv;
  set_rec_view(&rv, view);
  Modaltensor__V1__TensorView tv;
  fill_view(&tv, &rv);
  Modaltensor__V1__Download dl = MODALTENSOR__V1__DOWNLOAD__INIT;
  dl.request_id = *id = ++s->next_request;
  dl.view = &tv;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD;
  m.download = &dl;
  return send_msg(fn, s, &m);
}

/* Receives the chunks of download id into dst. A failed view keeps the
 * worker's status and message. */
static mt_status recv_download(const char *fn, session *s, uint64_t id, void *dst,
                               size_t nbytes) {
  for (;;) {
    Modaltensor__V1__WorkerMessage *reply;
    mt_status st = recv_msg(fn, s, &reply);
    if (st) return st;
    int last = 1;
    if (reply->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_CHUNK ||
        reply->chunk->request_id != id) {
      st = mti_error(MT_ERR_REMOTE, "%s: worker %s sent an unexpected message", fn, s->w->target);
    } else {
      const Modaltensor__V1__DownloadChunk *c = reply->chunk;
      last = c->last;
      if ((st = remote_status(c->status)))
        mti_error(st, "%s: %s", fn, c->status->message);
      else if (c->offset > nbytes || c->data.len > nbytes - c->offset)
        st = mti_error(MT_ERR_REMOTE, "%s: worker %s sent bytes past the end", fn, s->w->target);
      else if (c->data.len)
        memcpy((char *)dst + c->offset, c->data.data, c->data.len);
    }
    protobuf_c_message_free_unpacked(&reply->base, NULL);
    if (st && !last) session_lost(s); /* the rest of the answer cannot be matched any more */
    if (st || last) return st;
  }
}

mt_status mti_remote_download(const char *fn, const mti_remote_view *view, void *dst,
                              size_t nbytes) {
  session *s = lock_for_inputs(fn, view->buf->device, 1, view);
  if (!s) return mt_last_status();
  uint64_t dl_id, sync_id;
  mt_status st = send_pending(fn, s);
  if (!st) st = send_download(fn, s, view, &dl_id);
  if (!st) st = send_sync(fn, s, &sync_id);
  if (!st) {
    mt_status view_st = recv_download(fn, s, dl_id, dst, nbytes);
    char view_msg[512];
    snprintf(view_msg, sizeof view_msg, "%s", mt_last_error());
    st = s->stream ? wait_sync(fn, s, sync_id) : view_st;
    if (view_st) st = mti_error(view_st, "%s", view_msg); /* the view's own failure first */
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}
