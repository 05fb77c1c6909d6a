/*
 * graph.c - validates and runs the nodes of a Graph, one at a time.
 *
 * Every node is checked completely before it runs: op number, arity, that
 * each id names a whole storage of this session, views inside their
 * storages, shape and dtype inference (mti_infer, as on the client), the
 * client's expected output, the work and memory limits. A node that
 * fails (or whose input failed) marks its output failed with
 * "mt_<op> (node N of graph G): reason" and records the session's deferred
 * error; later nodes still run when their own inputs are fine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/op_table.h"
#include "core/shape.h"
#include "log.h"
#include "session.h"
#include "validate.h"

typedef struct node_ctx {
  mtw_session *s;
  const Modaltensor__V1__Node *node;
  const mti_op_info *info; /* NULL for an unknown op */
  mtw_storage *into;       /* the target of a copy into a view, once found */
  char prefix[96];         /* "mt_add (node 3 of graph 2)" */
} node_ctx;

/* Makes each new output id of the node a failed storage with message, so
 * that later nodes and downloads inherit the failure. Ids that are 0, taken
 * or repeated stay as they are. An into target is left alone here. */
static void fail_new_outputs(node_ctx *c, mt_status status, const char *msg) {
  if (c->node->into) return;
  for (size_t k = 0; k < c->node->n_outputs; k++) {
    uint64_t id = c->node->outputs[k]->id;
    if (id != 0 && !mtw_table_find(&c->s->table, id))
      mtw_storage_create_failed(c->s, id, status, msg);
  }
}

/* Fails the node with "prefix: reason": the deferred error, and a failed
 * output storage where its id is new. An into target is left as it was:
 * the copy never started. */
static void refuse(node_ctx *c, mt_status status, const char *fmt, ...) MTI_PRINTF(3, 4);
static void refuse(node_ctx *c, mt_status status, const char *fmt, ...) {
  char msg[MTW_MESSAGE_MAX];
  int n = snprintf(msg, sizeof msg, "%s: ", c->prefix); /* the prefix is short */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
  va_end(ap);
  mtw_session_defer(c->s, status, "%s", msg);
  fail_new_outputs(c, status, msg);
}

/* The reason in the thread's error without its leading "mt_<op>: ", which
 * the prefix already says. */
static const char *error_reason(const node_ctx *c) {
  const char *e = mt_last_error();
  char head[64];
  int n = snprintf(head, sizeof head, "mt_%s: ", c->info ? c->info->name : "op");
  if (n > 0 && strncmp(e, head, (size_t)n) == 0) e += n;
  return e;
}

/* The node's result is failed the way input `failed` is: same status and
 * message (the original cause), also as the deferred error. */
static void inherit_failure(node_ctx *c, const mtw_storage *failed) {
  char msg[MTW_MESSAGE_MAX];
  snprintf(msg, sizeof msg, "%s", mtw_storage_failure(failed));
  mt_status status = failed->fail_status;
  mtw_session_defer(c->s, status, "%s", msg);
  if (c->into && c->into != failed) mtw_storage_fail(c->s, c->into, status, msg);
  else fail_new_outputs(c, status, msg);
}

static mti_attrs attrs_of(const Modaltensor__V1__Attrs *a) {
  mti_attrs at;
  memset(&at, 0, sizeof at);
  if (a) {
    at.s0 = a->s0;
    at.s1 = a->s1;
    at.seed = a->seed;
    at.dims_mask = a->dims_mask;
    at.dim = a->dim;
    at.dtype = a->dtype;
    at.flags = a->flags;
    at.s2 = a->s2;
    /* more than fit is refused by mti_attrs_check, from n_ints */
    at.n_ints = a->n_ints > MTI_MAX_INT_ATTRS ? MTI_MAX_INT_ATTRS + 1 : (int32_t)a->n_ints;
    for (size_t i = 0; i < a->n_ints && i < MTI_MAX_INT_ATTRS; i++) at.ints[i] = a->ints[i];
  }
  return at;
}

/* A view's storage: present in this session, not failed, whole. Returns
 * NULL after failing the node (inheriting the storage's own failure). */
static mtw_storage *usable_storage(node_ctx *c, const char *what, uint64_t id) {
  mtw_storage *st = id ? mtw_table_find(&c->s->table, id) : NULL;
  if (!st) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "%s: no storage %llu in this session", what,
           (unsigned long long)id);
    return NULL;
  }
  if (st->fail_status != MT_OK) {
    inherit_failure(c, st);
    return NULL;
  }
  if (st->received != st->nbytes) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "%s: storage %llu is incomplete (%llu of %llu bytes uploaded)",
           what, (unsigned long long)id, (unsigned long long)st->received,
           (unsigned long long)st->nbytes);
    return NULL;
  }
  return st;
}

/* Checks a wire view of storage st and builds the mti_view the backend
 * reads; 0 on success (else the node is failed). */
static int build_view(node_ctx *c, const char *what, const Modaltensor__V1__TensorView *tv,
                      const mtw_storage *st, mti_view *out) {
  mtw_view_desc d;
  size_t es = mt_dtype_size(st->dtype);
  if (mtw_view_check(what, tv->offset, tv->n_shape, tv->shape, tv->n_strides, tv->strides,
                     st->numel, es, &d) != MT_OK) {
    refuse(c, mt_last_status(), "%s", mt_last_error());
    return -1;
  }
  memset(out, 0, sizeof *out);
  out->data = (char *)st->block->ptr + (size_t)d.offset * es;
  out->dtype = st->dtype;
  out->ndim = d.ndim;
  memcpy(out->shape, d.shape, sizeof d.shape);
  memcpy(out->strides, d.strides, sizeof d.strides);
  return 0;
}

/* The into target of a copy: checked, and its view built; 0 on success. */
static int into_target(node_ctx *c, mti_view *out) {
  const Modaltensor__V1__Node *n = c->node;
  if (c->info->kind != MTI_KIND_COPY) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "into: only copy writes into an existing view");
    return -1;
  }
  if (n->n_outputs != 1 || n->outputs[0]->id != 0) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "into: needs one output with id 0, got %zu outputs",
           n->n_outputs);
    return -1;
  }
  mtw_storage *st = usable_storage(c, "into", n->into->id);
  if (!st || build_view(c, "into", n->into, st, out)) return -1;
  if (mti_strides_overlap(out->ndim, out->shape, out->strides)) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "into: elements of the view overlap");
    return -1;
  }
  c->into = st;
  return 0;
}

/* Fills metas and views of the inputs; 0 on success. */
static int gather_inputs(node_ctx *c, const mti_attrs *at, mti_meta *metas, mti_view *views) {
  const Modaltensor__V1__Node *n = c->node;
  for (size_t i = 0; i < n->n_inputs; i++) {
    const Modaltensor__V1__TensorView *tv = n->inputs[i];
    char what[32];
    snprintf(what, sizeof what, "input %zu", i);
    memset(&metas[i], 0, sizeof metas[i]);
    memset(&views[i], 0, sizeof views[i]);
    if (!mti_input_present(c->info, at, (int)i)) { /* absent: id 0 */
      if (tv->id == 0) continue;
      refuse(c, MT_ERR_INVALID_ARGUMENT, "%s: storage %llu given, but the flags say it is absent",
             what, (unsigned long long)tv->id);
      return -1;
    }
    mtw_storage *st = usable_storage(c, what, tv->id);
    if (!st || build_view(c, what, tv, st, &views[i])) return -1;
    metas[i].dtype = views[i].dtype;
    metas[i].ndim = views[i].ndim;
    memcpy(metas[i].shape, views[i].shape, sizeof metas[i].shape);
  }
  return 0;
}

static int same_meta(const mti_meta *a, mt_dtype dtype, size_t ndim, const int64_t *shape) {
  if ((int)a->dtype != (int)dtype || (size_t)a->ndim != ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != shape[d]) return 0;
  return 1;
}

/* Checks that output k of the node is what the worker inferred. */
static int check_expected(node_ctx *c, size_t k, const mti_meta *got_meta) {
  const Modaltensor__V1__Output *o = c->node->outputs[k];
  if (same_meta(got_meta, (mt_dtype)o->dtype, o->n_shape, o->shape)) return 0;
  char got[160], want[160];
  int nd = o->n_shape > MT_MAX_DIMS ? MT_MAX_DIMS : (int)o->n_shape;
  refuse(c, MT_ERR_INVALID_ARGUMENT, "output %zu: the client expects %s %s, the worker infers %s %s",
         k, mt_dtype_name((mt_dtype)o->dtype), mti_shape_str(want, sizeof want, nd, o->shape),
         mt_dtype_name(got_meta->dtype),
         mti_shape_str(got, sizeof got, got_meta->ndim, got_meta->shape));
  return -1;
}

/* A copy into a view must give the view's dtype from a source that
 * broadcasts to the view's shape; out then takes the view's shape. */
static int check_into(node_ctx *c, const mti_view *into_view, mti_meta *out) {
  int nd;
  int64_t shape[MT_MAX_DIMS];
  char got[160], want[160];
  if (out->dtype != into_view->dtype ||
      mti_shape_broadcast("into", out->ndim, out->shape, into_view->ndim, into_view->shape, &nd,
                          shape) != MT_OK ||
      nd != into_view->ndim || memcmp(shape, into_view->shape, sizeof(int64_t) * (size_t)nd)) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "into: the view is %s %s, the copy gives %s %s",
           mt_dtype_name(into_view->dtype),
           mti_shape_str(want, sizeof want, into_view->ndim, into_view->shape),
           mt_dtype_name(out->dtype), mti_shape_str(got, sizeof got, out->ndim, out->shape));
    return -1;
  }
  out->ndim = into_view->ndim;
  memcpy(out->shape, into_view->shape, sizeof out->shape);
  return 0;
}

/* Infers the outputs and checks them against what the client recorded.
 * 0 on success. */
static int infer_outputs(node_ctx *c, const mti_attrs *at, const mti_meta *metas,
                         const mti_view *into_view, mti_meta *out) {
  const Modaltensor__V1__Node *n = c->node;
  memset(out, 0, sizeof *out * MTI_MAX_OUTPUTS);
  if (c->info->arity == 0) {
    /* creation ops (no inputs) take their shape from the node */
    const Modaltensor__V1__Output *o = n->outputs[0];
    if (o->n_shape > MT_MAX_DIMS) {
      refuse(c, MT_ERR_SHAPE, "output 0: %zu dims, at most %d", o->n_shape, MT_MAX_DIMS);
      return -1;
    }
    out->ndim = (int)o->n_shape;
    for (int d = 0; d < out->ndim; d++) out->shape[d] = o->shape[d];
  }
  if (mti_infer((mti_op)n->op, (int)n->n_inputs, metas, at, out) != MT_OK) {
    refuse(c, mt_last_status(), "%s", error_reason(c));
    return -1;
  }
  if (into_view && check_into(c, into_view, out)) return -1;
  for (size_t k = 0; k < n->n_outputs; k++)
    if (check_expected(c, k, &out[k])) return -1;
  return 0;
}

/* Refuses a node that would touch more elements than the worker allows:
 * a few bytes of view (a broadcast of one element to [2^20, 2^20]) could
 * otherwise keep a core busy for hours. 0 when it is within the limit. */
static int check_work(node_ctx *c, int n, const mti_meta *metas, const mti_attrs *at,
                      const mti_meta *out) {
  uint64_t work = mti_op_work_attrs((mti_op)c->node->op, n, metas, at, out),
           limit = c->s->worker->max_node_work;
  if (work <= limit) return 0;
  refuse(c, MT_ERR_INVALID_ARGUMENT,
         "touches %llu elements, more than this worker's limit of %llu (--max-node-work)",
         (unsigned long long)work, (unsigned long long)limit);
  return -1;
}

/* Output ids: as many as the op has, each new and distinct (an into copy
 * has its one id 0, checked by into_target). 0 when they are. */
static int check_output_ids(node_ctx *c) {
  const Modaltensor__V1__Node *n = c->node;
  if (n->n_outputs != (size_t)c->info->nout) {
    refuse(c, MT_ERR_INVALID_ARGUMENT, "has %d outputs, the node lists %zu", c->info->nout,
           n->n_outputs);
    return -1;
  }
  if (n->into) return 0;
  for (size_t k = 0; k < n->n_outputs; k++) {
    uint64_t id = n->outputs[k]->id;
    int repeated = 0;
    for (size_t j = 0; j < k; j++) repeated |= n->outputs[j]->id == id;
    if (id == 0 || repeated || mtw_table_find(&c->s->table, id)) {
      refuse(c, MT_ERR_INVALID_ARGUMENT,
             id == 0 ? "output %zu: %llu is not an id"
                     : repeated ? "output %zu: storage %llu is listed twice"
                                : "output %zu: storage %llu already exists",
             k, (unsigned long long)id);
      return -1;
    }
  }
  return 0;
}

/* Creates the node's output storages and their views; 0 on success. */
static int create_outputs(node_ctx *c, const mti_meta *metas, mtw_storage **targets,
                          mti_view *views) {
  for (int k = 0; k < c->info->nout; k++) {
    const mti_meta *m = &metas[k];
    int64_t numel = mti_shape_numel(m->ndim, m->shape);
    if (mtw_storage_create(c->s, c->node->outputs[k]->id, m->dtype, numel, &targets[k]) != MT_OK) {
      refuse(c, mt_last_status(), "%s", mt_last_error());
      return -1;
    }
    targets[k]->received = targets[k]->nbytes;
    memset(&views[k], 0, sizeof views[k]);
    views[k].data = targets[k]->block->ptr;
    views[k].dtype = m->dtype;
    views[k].ndim = m->ndim;
    memcpy(views[k].shape, m->shape, sizeof views[k].shape);
    mti_shape_contiguous_strides(views[k].ndim, views[k].shape, views[k].strides);
  }
  return 0;
}

/* Runs the validated node into new storages or the into view. */
static void execute(node_ctx *c, const mti_attrs *at, const mti_view *views,
                    const mti_meta *out_metas, const mti_view *into_view) {
  mtw_session *s = c->s;
  const mtw_backend *b = s->worker->backend;
  mtw_storage *targets[MTI_MAX_OUTPUTS] = {c->into};
  mti_view outs[MTI_MAX_OUTPUTS];
  if (into_view) outs[0] = *into_view;
  else if (create_outputs(c, out_metas, targets, outs)) return;
  if (b->ops->run(s->stream, (mti_op)c->node->op, views, (int)c->node->n_inputs, at, outs) !=
      MT_OK) {
    if (mtw_call_cancelled(s->call)) /* its result is for nobody: the session ends */
      mtw_log(MTW_LOG_INFO, "session %llu: %s stopped in its kernel: the call ended",
              (unsigned long long)s->stats.session_id, c->prefix);
    char msg[MTW_MESSAGE_MAX];
    mt_status status = mt_last_status();
    snprintf(msg, sizeof msg, "%s: %s", c->prefix, error_reason(c));
    mtw_session_defer(s, status, "%s", msg);
    for (int k = 0; k < c->info->nout; k++) mtw_storage_fail(s, targets[k], status, msg);
  }
}

static void run_node(mtw_session *s, const Modaltensor__V1__Node *n, size_t index) {
  node_ctx c = {s, n, n->op < MTI_OP_COUNT ? mti_op_get((int)n->op) : NULL, NULL, ""};
  snprintf(c.prefix, sizeof c.prefix, "mt_%s (node %zu of graph %llu)",
           c.info ? c.info->name : "op", index, (unsigned long long)s->graphs);
  mtw_stats_add(&s->worker->stats, &s->stats, MTW_NODES, 1);
  if (!c.info) {
    refuse(&c, MT_ERR_INVALID_ARGUMENT, "op %u is not an op of this worker (it knows %d)",
           n->op, (int)MTI_OP_COUNT);
    return;
  }
  if (n->op >= s->client_op_count) {
    refuse(&c, MT_ERR_INVALID_ARGUMENT, "op %u is beyond the %u ops the client announced", n->op,
           s->client_op_count);
    return;
  }
  int arity = c.info->arity;
  if (arity >= 0 ? n->n_inputs != (size_t)arity
                 : n->n_inputs < 1 || n->n_inputs > MTW_MAX_NODE_INPUTS) {
    refuse(&c, MT_ERR_INVALID_ARGUMENT, "takes %s%d inputs, got %zu", arity >= 0 ? "" : "1 to ",
           arity >= 0 ? arity : MTW_MAX_NODE_INPUTS, n->n_inputs);
    return;
  }
  mti_attrs at = attrs_of(n->attrs);
  if (check_output_ids(&c)) return;
  if (mti_attrs_check((mti_op)n->op, &at) != MT_OK) {
    refuse(&c, MT_ERR_INVALID_ARGUMENT, "%s", error_reason(&c));
    return;
  }
  mti_view into_view;
  if (n->into ? into_target(&c, &into_view) : 0) return;

  enum { SMALL = 4 };
  mti_meta small_metas[SMALL];
  mti_view small_views[SMALL];
  mti_meta *metas = small_metas;
  mti_view *views = small_views;
  if (n->n_inputs > SMALL) {
    metas = malloc(n->n_inputs * sizeof *metas);
    views = malloc(n->n_inputs * sizeof *views);
    if (!metas || !views) {
      free(metas);
      free(views);
      refuse(&c, MT_ERR_OUT_OF_MEMORY, "out of memory for %zu inputs", n->n_inputs);
      return;
    }
  }
  mti_meta out_metas[MTI_MAX_OUTPUTS];
  if (gather_inputs(&c, &at, metas, views) == 0 &&
      infer_outputs(&c, &at, metas, n->into ? &into_view : NULL, out_metas) == 0 &&
      check_work(&c, (int)n->n_inputs, metas, &at, out_metas) == 0)
    execute(&c, &at, views, out_metas, n->into ? &into_view : NULL);
  if (metas != small_metas) {
    free(metas);
    free(views);
  }
}

int mtw_session_graph(mtw_session *s, const Modaltensor__V1__Graph *g) {
  s->graphs++;
  mtw_stats_add(&s->worker->stats, &s->stats, MTW_GRAPHS, 1);
  mtw_log(MTW_LOG_DEBUG, "session %llu: graph %llu, %zu nodes",
          (unsigned long long)s->stats.session_id, (unsigned long long)s->graphs, g->n_nodes);
  for (size_t i = 0; i < g->n_nodes; i++) {
    /* a client that went away (or a worker shutting down) waits for
     * nothing: the rest of the graph is dropped with the session */
    if (mtw_call_cancelled(s->call)) {
      mtw_log(MTW_LOG_INFO, "session %llu: graph %llu stopped at node %zu of %zu: the call ended",
              (unsigned long long)s->stats.session_id, (unsigned long long)s->graphs, i,
              g->n_nodes);
      return -1;
    }
    run_node(s, g->nodes[i], i);
  }
  return 0;
}
