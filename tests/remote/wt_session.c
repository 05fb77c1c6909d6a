/*
 * wt_session.c - building and exchanging session messages in tests.
 */
#include "wt_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/protocol.h"

Modaltensor__V1__Open wt_open_message(void) {
  Modaltensor__V1__Open o = MODALTENSOR__V1__OPEN__INIT;
  o.protocol_version = MTI_PROTOCOL_VERSION;
  o.op_count = MTI_OP_COUNT;
  o.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  o.client = (char *)"worker tests";
  return o;
}

static int send_kind(wt_session *s, Modaltensor__V1__ClientMessage *m) {
  return wc_stream_send(s->stream, m);
}

int wt_open(wc_channel *ch, wt_session *s) {
  memset(s, 0, sizeof *s);
  s->next_request = 1;
  s->stream = wc_stream_open(ch, WC_METHOD("Session"), WT_TIMEOUT_MS);
  Modaltensor__V1__Open o = wt_open_message();
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &o;
  if (send_kind(s, &m)) return -1;
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(s->stream);
  int ok = r && r->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_OPENED && r->opened->status &&
           r->opened->status->code == MT_OK && r->opened->session_id != 0;
  if (ok) s->id = r->opened->session_id;
  wc_message_free(r);
  return ok ? 0 : -1;
}

grpc_status_code wt_close(wt_session *s) {
  grpc_status_code st = wc_stream_finish(s->stream, NULL, 0);
  wc_stream_free(s->stream);
  s->stream = NULL;
  return st;
}

int wt_upload_chunk(wt_session *s, uint64_t id, int32_t dtype, int64_t numel, uint64_t offset,
                    const void *data, size_t len) {
  Modaltensor__V1__Upload u = MODALTENSOR__V1__UPLOAD__INIT;
  u.id = id;
  u.dtype = dtype;
  u.numel = numel;
  u.offset = offset;
  u.data.data = (uint8_t *)data;
  u.data.len = len;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD;
  m.upload = &u;
  return send_kind(s, &m);
}

int wt_upload(wt_session *s, uint64_t id, mt_dtype dtype, int64_t numel, const void *data,
              size_t chunk_bytes) {
  size_t total = (size_t)numel * mt_dtype_size(dtype), off = 0;
  do {
    size_t n = total - off < chunk_bytes ? total - off : chunk_bytes;
    if (wt_upload_chunk(s, id, (int32_t)dtype, numel, off, (const char *)data + off, n)) return -1;
    off += n;
  } while (off < total);
  return 0;
}

int wt_free(wt_session *s, size_t n, const uint64_t *ids) {
  Modaltensor__V1__Free f = MODALTENSOR__V1__FREE__INIT;
  f.n_ids = n;
  f.ids = (uint64_t *)ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE;
  m.free = &f;
  return send_kind(s, &m);
}

static void copy_message(const Modaltensor__V1__Status *st, char *msg, size_t len) {
  if (msg && len) snprintf(msg, len, "%s", st && st->message ? st->message : "");
}

int wt_sync(wt_session *s, char *msg, size_t len) {
  Modaltensor__V1__Sync sync = MODALTENSOR__V1__SYNC__INIT;
  sync.request_id = s->next_request++;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &sync;
  if (send_kind(s, &m)) return -1;
  Modaltensor__V1__WorkerMessage *r = wc_stream_recv(s->stream);
  int rc = -1;
  if (r && r->kind_case == MODALTENSOR__V1__WORKER_MESSAGE__KIND_SYNC_DONE &&
      r->sync_done->request_id == sync.request_id && r->sync_done->status) {
    rc = r->sync_done->status->code;
    copy_message(r->sync_done->status, msg, len);
  }
  wc_message_free(r);
  return rc;
}

wt_view wt_view_of(uint64_t id, int ndim, const int64_t *shape) {
  wt_view v;
  memset(&v, 0, sizeof v);
  v.id = id;
  v.ndim = ndim;
  for (int d = 0; d < ndim; d++) v.shape[d] = shape[d];
  return v;
}

wt_view wt_view_strided(uint64_t id, int64_t offset, int ndim, const int64_t *shape,
                        const int64_t *strides) {
  wt_view v = wt_view_of(id, ndim, shape);
  v.offset = offset;
  v.has_strides = 1;
  for (int d = 0; d < ndim; d++) v.strides[d] = strides[d];
  return v;
}

/* A TensorView pointing into the arrays of v (which must outlive it). */
static void fill_tensor_view(Modaltensor__V1__TensorView *tv, wt_view *v) {
  modaltensor__v1__tensor_view__init(tv);
  tv->id = v->id;
  tv->offset = v->offset;
  tv->n_shape = (size_t)v->ndim;
  tv->shape = v->shape;
  tv->n_strides = v->has_strides ? (size_t)v->ndim : 0;
  tv->strides = v->strides;
}

int wt_download_each(wt_session *s, const wt_view *v,
                     int (*each)(void *ctx, uint64_t offset, const void *data, size_t len),
                     void *ctx, char *msg, size_t len) {
  wt_view copy = *v;
  Modaltensor__V1__TensorView tv;
  fill_tensor_view(&tv, &copy);
  Modaltensor__V1__Download d = MODALTENSOR__V1__DOWNLOAD__INIT;
  d.request_id = s->next_request++;
  d.view = &tv;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD;
  m.download = &d;
  if (msg && len) msg[0] = '\0';
  if (send_kind(s, &m)) return -1;
  uint64_t expect = 0;
  for (;;) {
    Modaltensor__V1__WorkerMessage *r = wc_stream_recv(s->stream);
    if (!r || r->kind_case != MODALTENSOR__V1__WORKER_MESSAGE__KIND_CHUNK ||
        r->chunk->request_id != d.request_id || !r->chunk->status) {
      wc_message_free(r);
      return -1;
    }
    const Modaltensor__V1__DownloadChunk *c = r->chunk;
    int code = c->status->code, last = c->last;
    if (code != MT_OK) {
      copy_message(c->status, msg, len);
      wc_message_free(r);
      return last ? code : -1;
    }
    /* chunks come in order, none larger than a chunk */
    int ok = c->offset == expect && c->data.len <= (1u << 20) &&
             each(ctx, c->offset, c->data.data, c->data.len) == 0;
    expect += c->data.len;
    wc_message_free(r);
    if (!ok) return -1;
    if (last) return MT_OK;
  }
}

typedef struct into_buffer {
  char *buf;
  size_t cap, got;
} into_buffer;

static int copy_chunk(void *ctx, uint64_t offset, const void *data, size_t len) {
  into_buffer *b = ctx;
  if (offset != b->got || len > b->cap - b->got) return -1;
  if (len) memcpy(b->buf + b->got, data, len);
  b->got += len;
  return 0;
}

int wt_download(wt_session *s, const wt_view *v, void *buf, size_t cap, size_t *got, char *msg,
                size_t len) {
  into_buffer b = {buf, cap, 0};
  int rc = wt_download_each(s, v, copy_chunk, &b, msg, len);
  *got = b.got;
  return rc;
}

void wt_graph_init(wt_graph *g) {
  memset(g, 0, sizeof *g);
  modaltensor__v1__graph__init(&g->graph);
  g->graph.nodes = g->node_ptrs;
}

Modaltensor__V1__Node *wt_graph_node(wt_graph *g, mti_op op, uint64_t output_id,
                                     mt_dtype out_dtype, int out_ndim, const int64_t *out_shape) {
  size_t i = g->graph.n_nodes++;
  Modaltensor__V1__Node *n = &g->nodes[i];
  modaltensor__v1__node__init(n);
  modaltensor__v1__attrs__init(&g->attrs[i]);
  n->op = (uint32_t)op;
  n->attrs = &g->attrs[i];
  n->outputs = g->output_ptrs[i];
  n->inputs = g->input_ptrs[i];
  g->node_ptrs[i] = n;
  wt_graph_output(g, output_id, out_dtype, out_ndim, out_shape);
  return n;
}

void wt_graph_output(wt_graph *g, uint64_t output_id, mt_dtype out_dtype, int out_ndim,
                     const int64_t *out_shape) {
  size_t i = g->graph.n_nodes - 1;
  Modaltensor__V1__Node *n = &g->nodes[i];
  size_t k = n->n_outputs++;
  Modaltensor__V1__Output *o = &g->outputs[i][k];
  modaltensor__v1__output__init(o);
  o->id = output_id;
  o->dtype = (int32_t)out_dtype;
  o->n_shape = (size_t)out_ndim;
  for (int d = 0; d < out_ndim && d < MT_MAX_DIMS; d++) g->out_shapes[i][k][d] = out_shape[d];
  o->shape = g->out_shapes[i][k];
  g->output_ptrs[i][k] = o;
}

void wt_graph_input(wt_graph *g, const wt_view *v) {
  size_t i = g->graph.n_nodes - 1;
  Modaltensor__V1__Node *n = &g->nodes[i];
  size_t k = n->n_inputs++;
  g->input_views[i][k] = *v;
  fill_tensor_view(&g->inputs[i][k], &g->input_views[i][k]);
  g->input_ptrs[i][k] = &g->inputs[i][k];
}

void wt_graph_into(wt_graph *g, const wt_view *v) {
  size_t i = g->graph.n_nodes - 1;
  g->into_views[i] = *v;
  fill_tensor_view(&g->into[i], &g->into_views[i]);
  g->nodes[i].into = &g->into[i];
}

int wt_graph_send(wt_session *s, wt_graph *g) {
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH;
  m.graph = &g->graph;
  return send_kind(s, &m);
}

int wt_check_serving(const char *addr, const char *token) {
  wc_channel *ch = wc_connect(addr, token);
  wt_session s;
  int rc = -1;
  if (wt_open(ch, &s) == 0) {
    const int64_t shape[1] = {4};
    const float a[4] = {1, 2, 3, 4}, b[4] = {10, 20, 30, 40};
    float sum[4] = {0};
    size_t got = 0;
    wt_view out = wt_view_of(3, 1, shape);
    wt_graph g;
    wt_graph_init(&g);
    wt_graph_node(&g, MTI_OP_ADD, 3, MT_FLOAT32, 1, shape);
    wt_view va = wt_view_of(1, 1, shape), vb = wt_view_of(2, 1, shape);
    wt_graph_input(&g, &va);
    wt_graph_input(&g, &vb);
    const uint64_t ids[3] = {1, 2, 3};
    if (wt_upload(&s, 1, MT_FLOAT32, 4, a, 1 << 20) == 0 &&
        wt_upload(&s, 2, MT_FLOAT32, 4, b, 1 << 20) == 0 && wt_graph_send(&s, &g) == 0 &&
        wt_download(&s, &out, sum, sizeof sum, &got, NULL, 0) == MT_OK && got == sizeof sum &&
        sum[0] == 11 && sum[3] == 44 && wt_free(&s, 3, ids) == 0 && wt_sync(&s, NULL, 0) == MT_OK)
      rc = 0;
  }
  if (s.stream && wt_close(&s) != GRPC_STATUS_OK) rc = -1;
  wc_channel_free(ch);
  return rc;
}
