/*
 * make_seeds.c - writes the seed corpus of fuzz_worker (fuzz/corpus/worker):
 * short valid sessions that reach each message kind, the view checks,
 * several op kinds, into copies, optional inputs, a node with two outputs,
 * content addressing (Content, bytes that follow or are Needed), graph
 * templates and their Invoke, and the deferred errors.
 * Regenerate when the wire changes:
 *   build/fuzz/make_seeds fuzz/corpus/worker
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/op_table.h"
#include "core/protocol.h"
#include "fuzz_worker.h"
#include "modaltensor.h"
#include "modaltensor.pb-c.h"

typedef struct seed {
  uint8_t buf[1 << 16];
  size_t len;
} seed;

static void seed_start(seed *s, uint8_t flags) {
  s->buf[0] = flags;
  s->len = 1;
}

static void put(seed *s, const Modaltensor__V1__ClientMessage *m) {
  size_t n = modaltensor__v1__client_message__get_packed_size(m);
  if (n > 0xffff || s->len + 2 + n > sizeof s->buf) abort();
  s->buf[s->len++] = (uint8_t)(n & 0xff);
  s->buf[s->len++] = (uint8_t)(n >> 8);
  s->len += modaltensor__v1__client_message__pack(m, s->buf + s->len);
}

static void upload(seed *s, uint64_t id, mt_dtype dtype, int64_t numel, uint64_t offset,
                   const void *data, size_t nbytes) {
  Modaltensor__V1__Upload u = MODALTENSOR__V1__UPLOAD__INIT;
  u.id = id;
  u.dtype = (int32_t)dtype;
  u.numel = numel;
  u.offset = offset;
  u.data.data = (uint8_t *)data;
  u.data.len = nbytes;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_UPLOAD;
  m.upload = &u;
  put(s, &m);
}

static void upload_f32(seed *s, uint64_t id, int64_t numel) {
  float v[64];
  for (int i = 0; i < numel; i++) v[i] = (float)(i % 7) - 2.5f;
  upload(s, id, MT_FLOAT32, numel, 0, v, sizeof(float) * (size_t)numel);
}

/* A node under construction: up to 3 inputs, up to 2 outputs. */
typedef struct node {
  Modaltensor__V1__Node n;
  Modaltensor__V1__TensorView in[3], *in_ptrs[3], into;
  int64_t shapes[3][MT_MAX_DIMS], strides[3][MT_MAX_DIMS], into_shape[MT_MAX_DIMS];
  Modaltensor__V1__Output out[2], *out_ptrs[2];
  int64_t out_shape[2][MT_MAX_DIMS];
  Modaltensor__V1__Attrs attrs;
} node;

/* Adds output k of a node (node_init adds the first). */
static void node_output(node *x, uint64_t id, mt_dtype dtype, int ndim, const int64_t *shape) {
  size_t k = x->n.n_outputs++;
  Modaltensor__V1__Output *o = &x->out[k];
  modaltensor__v1__output__init(o);
  o->id = id;
  o->dtype = (int32_t)dtype;
  o->n_shape = (size_t)ndim;
  memcpy(x->out_shape[k], shape, sizeof(int64_t) * (size_t)ndim);
  o->shape = x->out_shape[k];
  x->out_ptrs[k] = o;
}

static void node_init(node *x, mti_op op, uint64_t out_id, mt_dtype dtype, int ndim,
                      const int64_t *shape) {
  memset(x, 0, sizeof *x);
  modaltensor__v1__node__init(&x->n);
  modaltensor__v1__attrs__init(&x->attrs);
  x->n.op = (uint32_t)op;
  x->n.outputs = x->out_ptrs;
  x->n.attrs = &x->attrs;
  x->n.inputs = x->in_ptrs;
  node_output(x, out_id, dtype, ndim, shape);
}

/* Adds an input view (strides NULL: row-major). */
static void node_input(node *x, uint64_t id, int64_t offset, int ndim, const int64_t *shape,
                       const int64_t *strides) {
  size_t k = x->n.n_inputs++;
  Modaltensor__V1__TensorView *v = &x->in[k];
  modaltensor__v1__tensor_view__init(v);
  v->id = id;
  v->offset = offset;
  v->n_shape = (size_t)ndim;
  memcpy(x->shapes[k], shape, sizeof(int64_t) * (size_t)ndim);
  v->shape = x->shapes[k];
  if (strides) {
    v->n_strides = (size_t)ndim;
    memcpy(x->strides[k], strides, sizeof(int64_t) * (size_t)ndim);
    v->strides = x->strides[k];
  }
  x->in_ptrs[k] = v;
}

/* A Graph of n nodes, kept as template template_id when not 0. */
static void graph_kept(seed *s, node *nodes, size_t n, uint64_t template_id) {
  Modaltensor__V1__Node *ptrs[8];
  for (size_t i = 0; i < n; i++) ptrs[i] = &nodes[i].n;
  Modaltensor__V1__Graph g = MODALTENSOR__V1__GRAPH__INIT;
  g.n_nodes = n;
  g.nodes = ptrs;
  g.template_id = template_id;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_GRAPH;
  m.graph = &g;
  put(s, &m);
}

static void graph(seed *s, node *nodes, size_t n) { graph_kept(s, nodes, n, 0); }

static void invoke(seed *s, uint64_t template_id, size_t n, uint64_t *ids) {
  Modaltensor__V1__Invoke v = MODALTENSOR__V1__INVOKE__INIT;
  v.template_id = template_id;
  v.n_ids = n;
  v.ids = ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_INVOKE;
  m.invoke = &v;
  put(s, &m);
}

/* A Content naming nbytes of data by their SHA-256 (corrupt: one bit off). */
static void content(seed *s, uint64_t id, mt_dtype dtype, int64_t numel, const void *data,
                    size_t nbytes, int bytes_follow, int corrupt) {
  uint8_t digest[MTI_SHA256_BYTES];
  if (mti_sha256("make_seeds", data, nbytes, digest)) abort();
  digest[0] ^= (uint8_t)(corrupt ? 1 : 0);
  Modaltensor__V1__Content c = MODALTENSOR__V1__CONTENT__INIT;
  c.id = id;
  c.dtype = (int32_t)dtype;
  c.numel = numel;
  c.digest = (ProtobufCBinaryData){sizeof digest, digest};
  c.bytes_follow = bytes_follow;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_CONTENT;
  m.content = &c;
  put(s, &m);
}

static void download(seed *s, uint64_t request, uint64_t id, int ndim, const int64_t *shape) {
  Modaltensor__V1__TensorView v = MODALTENSOR__V1__TENSOR_VIEW__INIT;
  v.id = id;
  v.n_shape = (size_t)ndim;
  v.shape = (int64_t *)shape;
  Modaltensor__V1__Download d = MODALTENSOR__V1__DOWNLOAD__INIT;
  d.request_id = request;
  d.view = &v;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_DOWNLOAD;
  m.download = &d;
  put(s, &m);
}

static void sync_(seed *s, uint64_t request) {
  Modaltensor__V1__Sync y = MODALTENSOR__V1__SYNC__INIT;
  y.request_id = request;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_SYNC;
  m.sync = &y;
  put(s, &m);
}

static void free_(seed *s, size_t n, uint64_t *ids) {
  Modaltensor__V1__Free f = MODALTENSOR__V1__FREE__INIT;
  f.n_ids = n;
  f.ids = ids;
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_FREE;
  m.free = &f;
  put(s, &m);
}

static void write_seed(const char *dir, const char *name, const seed *s) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
    fprintf(stderr, "make_seeds: cannot write %s\n", path);
    exit(1);
  }
}

static const int64_t s4[1] = {4}, s23[2] = {2, 3}, s32[2] = {3, 2}, s22[2] = {2, 2},
                     s6[1] = {6}, s1[1] = {1};

/* upload, add with broadcasting, download, sync */
static void seed_add(const char *dir) {
  seed s;
  seed_start(&s, 0);
  upload_f32(&s, 1, 6);
  upload_f32(&s, 2, 3);
  node x;
  node_init(&x, MTI_OP_ADD, 3, MT_FLOAT32, 2, s23);
  node_input(&x, 1, 0, 2, s23, NULL);
  node_input(&x, 2, 0, 1, (const int64_t[]){3}, NULL);
  graph(&s, &x, 1);
  download(&s, 1, 3, 2, s23);
  sync_(&s, 2);
  write_seed(dir, "add_broadcast", &s);
}

/* a reduction over a strided (transposed, broadcast) view, then matmul */
static void seed_views(const char *dir) {
  seed s;
  seed_start(&s, 0);
  upload_f32(&s, 1, 6);
  node x[3];
  node_init(&x[0], MTI_OP_SUM, 2, MT_FLOAT32, 1, (const int64_t[]){3});
  node_input(&x[0], 1, 0, 2, s23, (const int64_t[]){1, 2});
  x[0].attrs.dims_mask = 1;
  node_init(&x[1], MTI_OP_MATMUL, 3, MT_FLOAT32, 2, s22);
  node_input(&x[1], 1, 0, 2, s23, NULL);
  node_input(&x[1], 1, 0, 2, s32, NULL);
  node_init(&x[2], MTI_OP_AMAX, 4, MT_FLOAT32, 2, (const int64_t[]){1, 1});
  node_input(&x[2], 1, 5, 2, s22, (const int64_t[]){0, 0});
  x[2].attrs.dims_mask = 3;
  x[2].attrs.flags = 1; /* KEEPDIM */
  graph(&s, x, 3);
  download(&s, 1, 3, 2, s22);
  sync_(&s, 2);
  write_seed(dir, "views_reduce_matmul", &s);
}

/* index ops with an int64 index, one out of range (a deferred error) */
static void seed_index(const char *dir) {
  seed s;
  seed_start(&s, 0);
  upload_f32(&s, 1, 6);
  const int64_t idx[2] = {1, 7};
  upload(&s, 2, MT_INT64, 2, 0, idx, sizeof idx);
  node x[2];
  node_init(&x[0], MTI_OP_INDEX_SELECT, 3, MT_FLOAT32, 1, (const int64_t[]){2});
  node_input(&x[0], 1, 0, 1, s6, NULL);
  node_input(&x[0], 2, 0, 1, (const int64_t[]){2}, NULL);
  node_init(&x[1], MTI_OP_GATHER, 4, MT_FLOAT32, 1, (const int64_t[]){2});
  node_input(&x[1], 1, 0, 1, s6, NULL);
  node_input(&x[1], 2, 0, 1, (const int64_t[]){2}, NULL);
  graph(&s, x, 2);
  sync_(&s, 1);
  download(&s, 2, 3, 1, (const int64_t[]){2});
  write_seed(dir, "index_deferred_error", &s);
}

/* where (three inputs), cast, layer_norm with its optional weight, softmax */
static void seed_kinds(const char *dir) {
  seed s;
  seed_start(&s, 0);
  upload_f32(&s, 1, 4);
  const uint8_t mask[4] = {1, 0, 1, 0};
  upload(&s, 2, MT_BOOL, 4, 0, mask, sizeof mask);
  node x[4];
  node_init(&x[0], MTI_OP_WHERE, 3, MT_FLOAT32, 1, s4);
  node_input(&x[0], 2, 0, 1, s4, NULL);
  node_input(&x[0], 1, 0, 1, s4, NULL);
  node_input(&x[0], 1, 0, 1, s1, NULL);
  node_init(&x[1], MTI_OP_CAST, 4, MT_FLOAT16, 1, s4);
  node_input(&x[1], 3, 0, 1, s4, NULL);
  x[1].attrs.dtype = MT_FLOAT16;
  node_init(&x[2], MTI_OP_LAYER_NORM, 5, MT_FLOAT32, 1, s4);
  node_input(&x[2], 1, 0, 1, s4, NULL);
  node_input(&x[2], 1, 0, 1, s4, NULL);
  node_input(&x[2], 0, 0, 0, NULL, NULL);
  x[2].attrs.s0 = 1e-5;
  x[2].attrs.flags = MTI_FLAG_PRESENT(1);
  node_init(&x[3], MTI_OP_SOFTMAX, 6, MT_FLOAT32, 2, s22);
  node_input(&x[3], 1, 0, 2, s22, NULL);
  x[3].attrs.dim = 1;
  graph(&s, x, 4);
  download(&s, 1, 6, 2, s22);
  sync_(&s, 2);
  write_seed(dir, "where_cast_norm_softmax", &s);
}

/* a copy into a view of an existing storage, a chunked upload, frees */
static void seed_into_and_free(const char *dir) {
  seed s;
  seed_start(&s, 0);
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  upload(&s, 1, MT_FLOAT32, 8, 0, v, 16);
  upload(&s, 1, 0, 0, 16, v + 4, 16);
  upload_f32(&s, 2, 2);
  node x;
  node_init(&x, MTI_OP_COPY, 0, MT_FLOAT32, 1, (const int64_t[]){2});
  node_input(&x, 2, 0, 1, (const int64_t[]){2}, NULL);
  Modaltensor__V1__TensorView into = MODALTENSOR__V1__TENSOR_VIEW__INIT;
  into.id = 1;
  into.offset = 1;
  into.n_shape = 1;
  into.shape = (int64_t[]){2};
  into.n_strides = 1;
  into.strides = (int64_t[]){3};
  x.n.into = &into;
  x.attrs.dtype = MT_FLOAT32;
  graph(&s, &x, 1);
  download(&s, 1, 1, 1, (const int64_t[]){8});
  uint64_t ids[3] = {2, 9, 1};
  free_(&s, 3, ids);
  free_(&s, 1, ids);
  sync_(&s, 2);
  write_seed(dir, "into_chunks_free", &s);
}

/* creation and random ops (no inputs) */
static void seed_creation(const char *dir) {
  seed s;
  seed_start(&s, 0);
  node x[2];
  node_init(&x[0], MTI_OP_FULL, 1, MT_INT32, 2, s23);
  x[0].attrs.s0 = 3;
  x[0].attrs.dtype = MT_INT32;
  node_init(&x[1], MTI_OP_RANDINT, 2, MT_INT64, 1, s6);
  x[1].attrs.seed = 42;
  x[1].attrs.dtype = MT_INT64;
  int64_t range[2] = {0, 10};
  x[1].attrs.n_ints = 2;
  x[1].attrs.ints = range;
  graph(&s, x, 2);
  download(&s, 1, 2, 1, s6);
  sync_(&s, 2);
  write_seed(dir, "creation_random", &s);
}

/* bytes named by their digest: sent along, held already (the first's),
 * Needed then sent, and sent with a digest they do not match */
static void seed_content(const char *dir) {
  seed s;
  seed_start(&s, 0);
  float v[6] = {1, 2, 3, 4, 5, 6}, w[6] = {6, 5, 4, 3, 2, 1};
  content(&s, 1, MT_FLOAT32, 6, v, sizeof v, 1, 0);
  upload(&s, 1, 0, 0, 0, v, sizeof v);
  content(&s, 2, MT_FLOAT32, 6, v, sizeof v, 0, 0);
  content(&s, 3, MT_FLOAT32, 6, w, sizeof w, 0, 0);
  upload(&s, 3, 0, 0, 0, w, sizeof w);
  content(&s, 4, MT_FLOAT32, 6, w, sizeof w, 1, 1);
  upload(&s, 4, 0, 0, 0, w, sizeof w);
  node x;
  node_init(&x, MTI_OP_ADD, 5, MT_FLOAT32, 1, s6);
  node_input(&x, 2, 0, 1, s6, NULL);
  node_input(&x, 3, 0, 1, s6, NULL);
  graph(&s, &x, 1);
  download(&s, 1, 5, 1, s6);
  download(&s, 2, 4, 1, s6);
  sync_(&s, 3);
  write_seed(dir, "content_need_mismatch", &s);
}

/* a two-output node (topk) kept as a template, invoked with new ids, then
 * invoked wrongly (too few ids, an unknown template) */
static void seed_template(const char *dir) {
  seed s;
  seed_start(&s, 0);
  upload_f32(&s, 1, 6);
  upload_f32(&s, 10, 6);
  node x[2];
  node_init(&x[0], MTI_OP_TOPK, 2, MT_FLOAT32, 2, (const int64_t[]){2, 2});
  node_output(&x[0], 3, MT_INT64, 2, (const int64_t[]){2, 2});
  node_input(&x[0], 1, 0, 2, s23, NULL);
  int64_t k = 2;
  x[0].attrs.n_ints = 1;
  x[0].attrs.ints = &k;
  x[0].attrs.dim = 1;
  x[0].attrs.flags = MTI_FLAG_DESCENDING;
  node_init(&x[1], MTI_OP_SORT, 4, MT_FLOAT32, 1, s6);
  node_output(&x[1], 5, MT_INT64, 1, s6);
  node_input(&x[1], 1, 0, 1, s6, NULL);
  graph_kept(&s, x, 2, 7);
  uint64_t ids[5] = {10, 11, 12, 13, 14};
  invoke(&s, 7, 5, ids);
  download(&s, 1, 12, 2, (const int64_t[]){2, 2});
  invoke(&s, 7, 2, ids);
  invoke(&s, 8, 5, ids);
  sync_(&s, 2);
  write_seed(dir, "template_topk_sort", &s);
}

/* the Open itself is fuzzed: an old protocol version */
static void seed_raw_open(const char *dir) {
  seed s;
  seed_start(&s, FUZZ_FLAG_RAW_OPEN);
  Modaltensor__V1__Open open = MODALTENSOR__V1__OPEN__INIT;
  open.protocol_version = MTI_PROTOCOL_VERSION - 1;
  open.op_count = MTI_OP_COUNT;
  open.op_table_hash = mti_op_table_hash(MTI_OP_COUNT);
  Modaltensor__V1__ClientMessage m = MODALTENSOR__V1__CLIENT_MESSAGE__INIT;
  m.kind_case = MODALTENSOR__V1__CLIENT_MESSAGE__KIND_OPEN;
  m.open = &open;
  put(&s, &m);
  sync_(&s, 1);
  write_seed(dir, "raw_open_old_protocol", &s);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  seed_add(argv[1]);
  seed_views(argv[1]);
  seed_index(argv[1]);
  seed_kinds(argv[1]);
  seed_into_and_free(argv[1]);
  seed_creation(argv[1]);
  seed_content(argv[1]);
  seed_template(argv[1]);
  seed_raw_open(argv[1]);
  return 0;
}
