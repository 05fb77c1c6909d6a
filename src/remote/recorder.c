/*
 * recorder.c - the pending graph and queued frees of a session, their
 * encoding into Graph and Free messages, and the buffers ops produce.
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
#include "core/digest.h"
#include "core/error.h"
#include "core/id_numbering.h"
#include "core/protocol.h"
#include "remote/client.h"


/* Inputs of r. Not a stored pointer: the node array moves when it grows. */
rec_view *recorder_node_inputs(rec_node *r) { return r->heap_in ? r->heap_in : r->inline_in; }

void recorder_drop_pending(session *s) {
  for (size_t i = 0; i < s->n_nodes; i++) free(s->nodes[i].heap_in);
  s->n_nodes = 0;
  s->n_frees = 0;
}



/* ------------------------------------------------------------ flushing */

void recorder_fill_view(Modaltensor__V1__TensorView *tv, rec_view *v) {
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

/* ----------------------------------------------------------- templates */

/* The id fields of g in the order the worker numbers a template's
 * parameters (the proto's Graph): per node its inputs, into, outputs. */
static size_t graph_id_slots(Modaltensor__V1__Graph *g, uint64_t **slots) {
  size_t n = 0;
  for (size_t i = 0; i < g->n_nodes; i++) {
    Modaltensor__V1__Node *node = g->nodes[i];
    for (size_t k = 0; k < node->n_inputs; k++) slots[n++] = &node->inputs[k]->id;
    if (node->into) slots[n++] = &node->into->id;
    for (size_t k = 0; k < node->n_outputs; k++) slots[n++] = &node->outputs[k]->id;
  }
  return n;
}

/* The graph's parameters (distinct non-zero ids by first appearance) into
 * params (*nparams of them), and its key: the SHA-256 of the message with
 * each id replaced by its parameter's number, so that the same step with
 * new ids has the same key. */
static mt_status graph_key(const char *fn, Modaltensor__V1__ClientMessage *m, uint64_t **slots,
                           size_t nslots, uint64_t *params, size_t *nparams,
                           uint8_t key[MTI_DIGEST_BYTES]) {
  uint64_t *ids = malloc((nslots ? nslots : 1) * sizeof *ids);
  int64_t *number = malloc((nslots ? nslots : 1) * sizeof *number);
  mt_status st = ids && number ? MT_OK : mti_error_oom(fn, nslots * 16);
  for (size_t k = 0; !st && k < nslots; k++) ids[k] = *slots[k];
  if (!st) st = mti_number_ids(fn, ids, nslots, number, nparams);
  for (size_t k = 0; !st && k < nslots; k++)
    if (number[k] >= 0) {
      params[number[k]] = ids[k];
      *slots[k] = (uint64_t)number[k] + 1;
    }
  size_t len = st ? 0 : protobuf_c_message_get_packed_size(&m->base);
  uint8_t *buf = st ? NULL : malloc(len ? len : 1);
  if (!st && !buf) st = mti_error_oom(fn, len);
  if (!st) protobuf_c_message_pack(&m->base, buf);
  if (!st) st = mti_sha256(fn, buf, len, key);
  for (size_t k = 0; ids && number && k < nslots; k++) *slots[k] = ids[k];
  free(buf);
  free(ids);
  free(number);
  return st;
}

static client_template *template_find(session *s, const uint8_t key[MTI_DIGEST_BYTES]) {
  for (size_t i = 0; i < s->n_templates; i++)
    if (!memcmp(s->templates[i].key, key, MTI_DIGEST_BYTES)) return &s->templates[i];
  return NULL;
}

/* A template slot for key: a new one, or the least recently used (the
 * worker replaces what it kept under that id). */
static client_template *template_slot(session *s, const uint8_t key[MTI_DIGEST_BYTES]) {
  client_template *t;
  if (s->n_templates < MTI_TEMPLATES_MAX) {
    t = &s->templates[s->n_templates++];
    t->id = s->n_templates;
  } else {
    t = &s->templates[0];
    for (size_t i = 1; i < s->n_templates; i++)
      if (s->templates[i].used < t->used) t = &s->templates[i];
  }
  memcpy(t->key, key, MTI_DIGEST_BYTES);
  return t;
}

static mt_status send_invoke(const char *fn, session *s, uint64_t template_id,
                             uint64_t *params, size_t nparams) {
  Modaltensor__V1__Invoke inv = MODALTENSOR__V1__INVOKE__INIT;
  inv.template_id = template_id;
  inv.n_ids = nparams;
  inv.ids = params;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_INVOKE;
  m.invoke = &inv;
  size_t len = protobuf_c_message_get_packed_size(&m.base);
  mt_status st = session_send(fn, s, &m);
  if (!st) {
    atomic_fetch_add_explicit(&registry.counters.graph_bytes, len, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.counters.graphs_reused, 1, memory_order_relaxed);
  }
  return st;
}

/* Sends m's graph: by reference when the session kept the same graph
 * (ids aside) as a template, else whole, kept as a template for next time. */
static mt_status send_graph_message(const char *fn, session *s, Modaltensor__V1__ClientMessage *m,
                                    size_t nslots) {
  uint64_t **slots = malloc((nslots ? nslots : 1) * sizeof *slots);
  uint64_t *params = malloc((nslots ? nslots : 1) * sizeof *params);
  mt_status st = slots && params ? MT_OK : mti_error_oom(fn, nslots * 16);
  uint8_t key[MTI_DIGEST_BYTES];
  size_t nparams = 0;
  if (!st) st = graph_key(fn, m, slots, graph_id_slots(m->graph, slots), params, &nparams, key);
  client_template *t = st ? NULL : template_find(s, key);
  if (t) {
    st = send_invoke(fn, s, t->id, params, nparams);
  } else if (!st) {
    t = template_slot(s, key);
    m->graph->template_id = t->id;
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    st = session_send(fn, s, m);
    if (!st) atomic_fetch_add_explicit(&registry.counters.graph_bytes, len, memory_order_relaxed);
  }
  if (t) t->used = ++s->template_clock;
  free(slots);
  free(params);
  return st;
}

/* The session ended: the worker let its templates go with it. */
void recorder_forget_templates(session *s) { s->n_templates = 0; }

/* ------------------------------------------------------------- graphs */

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
      recorder_fill_view(&views[v], &recorder_node_inputs(r)[i]);
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
      recorder_fill_view(&views[v], &r->into);
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
  st = send_graph_message(fn, s, &m, nviews + nouts);
  if (!st) {
    s->graphs_sent++;
    s->dirty = 1;
    atomic_fetch_add_explicit(&registry.counters.graphs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.counters.nodes, count, memory_order_relaxed);
  }
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
  recorder_drop_pending(s);
  return MT_OK;
}

static mt_status flush_frees(const char *fn, session *s, uint64_t *ids, size_t n) {
  Modaltensor__V1__Free fr = MODALTENSOR__V1__FREE__INIT;
  fr.n_ids = n;
  fr.ids = ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE;
  m.free = &fr;
  s->dirty = 1; /* a sync confirms the worker has let them go */
  return session_send(fn, s, &m);
}

/* Sends everything pending: nodes first, then frees (a free may name an
 * input of a pending node). */
mt_status recorder_send_pending(const char *fn, session *s) {
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

mt_dtype mti_remote_buffer_dtype(const mti_remote_buffer *b) { return b->dtype; }
int64_t mti_remote_buffer_numel(const mti_remote_buffer *b) { return b->numel; }
int mti_remote_buffer_device(const mti_remote_buffer *b) { return b->device; }

mti_remote_buffer *recorder_new_buffer(const char *fn, session *s, int device, mt_dtype dtype,
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
    if (s->n_frees >= FLUSH_FREES) recorder_send_pending("mt_tensor_free", s);
  }
  pthread_mutex_unlock(&s->lock);
  free(b);
}

void recorder_set_view(rec_view *r, const mti_remote_view *v) {
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
  for (int i = 0; i < n; i++) recorder_set_view(&recorder_node_inputs(r)[i], &in[i]);
  s->n_nodes++;
  return r;
}

/* After recording: sends (and in eager mode waits) when it is time. */
static mt_status after_record(const char *fn, session *s) {
  if (registry.eager) return session_sync_locked(fn, s);
  if (s->n_nodes >= FLUSH_NODES) return recorder_send_pending(fn, s);
  return MT_OK;
}



mt_status mti_remote_record(const char *fn, int device, mti_op op, int n,
                            const mti_remote_view *in, const mti_attrs *at,
                            const mti_meta *metas, mti_remote_buffer **outs) {
  int nout = mti_op_get((int)op)->nout;
  for (int k = 0; k < nout; k++) outs[k] = NULL;
  session *s = session_lock_inputs(fn, device, n, in);
  if (!s) return mt_last_status();
  mt_status st = MT_OK;
  for (int k = 0; k < nout && !st; k++)
    if (!(outs[k] = recorder_new_buffer(fn, s, device, metas[k].dtype,
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
  session *s = session_lock_inputs(fn, dst->buf->device, 2, both);
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
    recorder_set_view(&r->into, dst);
    st = after_record(fn, s);
  }
  pthread_mutex_unlock(&s->lock);
  return st;
}
