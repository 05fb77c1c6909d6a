/*
 * engine.c - the tape and the backward walk.
 *
 * A node is a leaf's accumulator, an op's record, or a view's record. Each
 * tensor that requires grad holds one reference to its node; each node
 * holds one on the nodes that made its inputs, so the graph lives exactly
 * as long as some tensor can still reach it. mt_backward orders the nodes
 * reachable from its root (each before the nodes of its inputs), runs each
 * node's rule once its gradient is complete, and adds the leaves'
 * gradients in only when the whole walk succeeded.
 */
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "autograd/rules.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"

/* ----------------------------------------------------------- the table */

/* What ops.def's GRAD column says of an op. */
typedef struct grad_entry {
  mti_grad_rule *rule; /* NULL: not differentiable */
  uint32_t saves;      /* bit i: input i; bit MTI_AG_SAVE_OUT + k: output k */
} grad_entry;

enum { MTI_AG_SAVE_OUT = 8 };
#define S_IN0 (1u << 0)
#define S_IN1 (1u << 1)
#define S_IN2 (1u << 2)
#define S_IN3 (1u << 3)
#define S_IN4 (1u << 4)
#define S_OUT0 (1u << (MTI_AG_SAVE_OUT + 0))
#define S_OUT1 (1u << (MTI_AG_SAVE_OUT + 1))
#define S_OUT2 (1u << (MTI_AG_SAVE_OUT + 2))

static const grad_entry grad_table[MTI_OP_COUNT] = {
#define NOGRAD {NULL, 0}
#define GRAD(rule, saves) {grad_##rule, saves}
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, G) [MTI_OP_##NAME] = G,
#include "core/ops.def"
#undef MT_OP
#undef GRAD
#undef NOGRAD
};

/* ------------------------------------------------------------ the nodes */

typedef enum node_kind { NODE_LEAF, NODE_OP, NODE_VIEW } node_kind;

typedef struct mti_ag_node {
  atomic_long refs;
  node_kind kind;
  mti_op op;          /* NODE_OP */
  mti_attrs at;       /* NODE_OP */
  mti_ag_view view;   /* NODE_VIEW */
  const char *fn;     /* who made it, for messages */
  mt_device in_device;
  int n;                        /* inputs */
  struct mti_ag_node **next;    /* n: the node of input i, or NULL (no gradient) */
  mti_meta *in_meta;            /* n */
  mt_tensor **saved_in;         /* n: kept inputs, or NULL */
  long *saved_in_version;       /* n */
  mt_tensor *saved_out[MTI_MAX_OUTPUTS];
  long saved_out_version[MTI_MAX_OUTPUTS];
  mti_meta out_meta[MTI_MAX_OUTPUTS];
  int nout;
  int keeps;      /* something was kept: a second backward needs it */
  int released;   /* a backward freed what was kept */
  /* NODE_LEAF */
  mt_tensor *grad;
  /* scratch of one backward walk */
  int pending;
  int visited;
  mt_tensor *acc;
} mti_ag_node;

static _Thread_local int grad_disabled; /* 0: enabled (the default) */

void mt_set_grad_enabled(int enabled) { grad_disabled = !enabled; }

int mt_grad_enabled(void) { return !grad_disabled; }

int mti_ag_wanted(int n, const mt_tensor *const *in) {
  if (grad_disabled) return 0;
  for (int i = 0; i < n; i++)
    if (in[i] && in[i]->grad_fn) return 1;
  return 0;
}

/* A node with n inputs and everything zeroed; refs 1. */
static mti_ag_node *node_new(const char *fn, node_kind kind, int n) {
  size_t each = sizeof(mti_ag_node *) + sizeof(mti_meta) + sizeof(mt_tensor *) + sizeof(long);
  mti_ag_node *node = calloc(1, sizeof *node + each * (size_t)n);
  if (!node) {
    mti_error_oom(fn, sizeof *node + each * (size_t)n);
    return NULL;
  }
  atomic_init(&node->refs, 1);
  node->kind = kind;
  node->fn = fn;
  node->n = n;
  char *p = (char *)(node + 1);
  node->in_meta = (mti_meta *)p, p += sizeof(mti_meta) * (size_t)n;
  node->next = (mti_ag_node **)p, p += sizeof(mti_ag_node *) * (size_t)n;
  node->saved_in = (mt_tensor **)p, p += sizeof(mt_tensor *) * (size_t)n;
  node->saved_in_version = (long *)p;
  return node;
}

static void node_retain(mti_ag_node *node) {
  if (node) atomic_fetch_add_explicit(&node->refs, 1, memory_order_relaxed);
}

/* Frees what node kept for its backward. */
static void node_drop_saved(mti_ag_node *node) {
  for (int i = 0; i < node->n; i++) {
    mt_tensor_free(node->saved_in[i]);
    node->saved_in[i] = NULL;
  }
  for (int k = 0; k < MTI_MAX_OUTPUTS; k++) {
    mt_tensor_free(node->saved_out[k]);
    node->saved_out[k] = NULL;
  }
}

/* Drops one reference; a node that dies drops its inputs' nodes, through a
 * work list rather than recursion (a long chain must not overflow the
 * stack). */
static void node_release(mti_ag_node *node) {
  mti_ag_node *stack_inline[64];
  mti_ag_node **stack = stack_inline;
  int cap = 64, top = 0;
  if (node) stack[top++] = node;
  while (top > 0) {
    mti_ag_node *d = stack[--top];
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1) continue;
    node_drop_saved(d);
    mt_tensor_free(d->grad);
    mt_tensor_free(d->acc);
    for (int i = 0; i < d->n; i++) {
      if (!d->next[i]) continue;
      if (top == cap) {
        mti_ag_node **bigger = malloc(sizeof *bigger * (size_t)cap * 2);
        if (!bigger) { /* out of memory while freeing: leak this subgraph rather than crash */
          continue;
        }
        memcpy(bigger, stack, sizeof *stack * (size_t)top);
        if (stack != stack_inline) free(stack);
        stack = bigger, cap *= 2;
      }
      stack[top++] = d->next[i];
    }
    free(d);
  }
  if (stack != stack_inline) free(stack);
}

void mti_ag_release(mt_tensor *t) {
  node_release(t->grad_fn);
  t->grad_fn = NULL;
}

void mti_ag_share(const mt_tensor *in, mt_tensor *out) {
  node_retain(in->grad_fn);
  out->grad_fn = in->grad_fn;
}

/* A handle of t's values that no node knows (a kept tensor). */
static mt_tensor *keep(const char *fn, const mt_tensor *t) {
  return mti_tensor_view(fn, t, t->ndim, t->shape, t->strides, t->offset);
}

static long version_of(const mt_tensor *t) {
  return atomic_load_explicit(&t->storage->version, memory_order_relaxed);
}

/* Links node's inputs to their nodes and records their metadata. */
static void link_inputs(mti_ag_node *node, int n, const mt_tensor *const *in) {
  for (int i = 0; i < n; i++) {
    if (!in[i]) {
      node->in_meta[i].ndim = -1;
      continue;
    }
    node->in_meta[i] = mti_tensor_meta(in[i]);
    node->next[i] = in[i]->grad_fn;
    node_retain(in[i]->grad_fn);
  }
}

mt_status mti_ag_record_op(mti_op op, int n, const mt_tensor *const *in, const mti_attrs *at,
                           mt_tensor *const *outs) {
  const grad_entry *g = &grad_table[op];
  const mti_op_info *info = mti_op_get((int)op);
  if (!g->rule || !mti_dtype_is_float(outs[0]->dtype)) return MT_OK;
  mti_ag_node *node = node_new(info->fn, NODE_OP, n);
  if (!node) return mt_last_status();
  node->op = op;
  node->at = *at;
  node->nout = info->nout;
  node->in_device = outs[0]->device;
  link_inputs(node, n, in);
  for (int i = 0; i < n && i < MTI_AG_SAVE_OUT; i++) {
    if (!(g->saves >> i & 1u) || !in[i]) continue;
    if (!(node->saved_in[i] = keep(info->fn, in[i]))) goto oom;
    node->saved_in_version[i] = version_of(in[i]);
    node->keeps = 1;
  }
  for (int k = 0; k < info->nout; k++) {
    node->out_meta[k] = mti_tensor_meta(outs[k]);
    if (!(g->saves >> (MTI_AG_SAVE_OUT + k) & 1u)) continue;
    if (!(node->saved_out[k] = keep(info->fn, outs[k]))) goto oom;
    node->saved_out_version[k] = version_of(outs[k]);
    node->keeps = 1;
  }
  outs[0]->grad_fn = node;
  return MT_OK;
oom:
  node_release(node);
  return mt_last_status();
}

mt_status mti_ag_record_view(const char *fn, const mt_tensor *in, mt_tensor *out,
                             const mti_ag_view *how) {
  if (!mti_dtype_is_float(out->dtype)) return MT_OK;
  mti_ag_node *node = node_new(fn, NODE_VIEW, 1);
  if (!node) return mt_last_status();
  node->view = *how;
  node->in_device = in->device;
  node->nout = 1;
  node->out_meta[0] = mti_tensor_meta(out);
  link_inputs(node, 1, &in);
  mti_ag_release(out);
  out->grad_fn = node;
  return MT_OK;
}

mt_status mti_ag_check_write(const char *fn, const mt_tensor *dst, const mt_tensor *src) {
  if (grad_disabled) return MT_OK;
  if (dst->grad_fn && dst->grad_fn->kind == NODE_LEAF)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: dst is a leaf that requires grad; write it with grad mode off "
                     "(mt_set_grad_enabled(0)), as optimizers do", fn);
  if (dst->grad_fn)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: dst requires grad (made by %s), and a write in place is not "
                     "recorded for the backward; mt_detach it or write with grad mode off",
                     fn, dst->grad_fn->fn);
  if (src->grad_fn)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: src requires grad, and a write in place is not recorded for the "
                     "backward; build the result with ops (mt_cat, mt_where, ...) or mt_detach src",
                     fn);
  return MT_OK;
}

/* ------------------------------------------------------ the public calls */

mt_status mt_set_requires_grad(mt_tensor *t, int requires_grad) {
  const char *fn = "mt_set_requires_grad";
  mt_status s = mti_check_tensor(fn, "t", t);
  if (s) return s;
  if (t->grad_fn && t->grad_fn->kind != NODE_LEAF) {
    if (requires_grad) return MT_OK;
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: t was made by %s, a recorded op: only leaves change; use mt_detach(t)",
                     fn, t->grad_fn->fn);
  }
  if (!requires_grad) {
    mti_ag_release(t);
    return MT_OK;
  }
  if (!mti_dtype_is_float(t->dtype))
    return mti_error(MT_ERR_DTYPE, "%s: t is %s; only floating tensors have gradients", fn,
                     mt_dtype_name(t->dtype));
  if (t->grad_fn) return MT_OK;
  mti_ag_node *leaf = node_new(fn, NODE_LEAF, 0);
  if (!leaf) return mt_last_status();
  leaf->in_device = t->device;
  leaf->nout = 1;
  leaf->out_meta[0] = mti_tensor_meta(t);
  t->grad_fn = leaf;
  return MT_OK;
}

int mt_requires_grad(const mt_tensor *t) { return t && t->grad_fn != NULL; }

int mti_ag_is_leaf(const mt_tensor *t) { return !t->grad_fn || t->grad_fn->kind == NODE_LEAF; }

mt_status mt_grad(const mt_tensor *t, mt_tensor **out) {
  const char *fn = "mt_grad";
  mt_status s = mti_check_tensor(fn, "t", t);
  if (s) return s;
  if (!out) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: out: NULL", fn);
  *out = NULL;
  if (!t->grad_fn || t->grad_fn->kind != NODE_LEAF || !t->grad_fn->grad) return MT_OK;
  return (*out = keep(fn, t->grad_fn->grad)) ? MT_OK : mt_last_status();
}

mt_status mt_zero_grad(mt_tensor *t) {
  mt_status s = mti_check_tensor("mt_zero_grad", "t", t);
  if (s) return s;
  if (t->grad_fn && t->grad_fn->kind == NODE_LEAF) {
    mt_tensor_free(t->grad_fn->grad);
    t->grad_fn->grad = NULL;
  }
  return MT_OK;
}

mt_tensor *mt_detach(const mt_tensor *t) {
  if (mti_check_tensor("mt_detach", "t", t)) return NULL;
  return keep("mt_detach", t);
}

/* Frees the tensors the rule made (the engine has taken its own handles on
 * the gradients it returned). */
static void ctx_free(mti_grad_ctx *c) {
  for (int t = 0; t < c->ntmp; t++) mt_tensor_free(c->tmp[t]);
  free(c->tmp);
  c->tmp = NULL;
  c->ntmp = c->cap = 0;
}

/* ------------------------------------------------------ backward of views */

static mt_status view_backward(mti_grad_ctx *c, const mti_ag_view *v, const mt_tensor *g,
                               mt_tensor **gin) {
  const mti_meta *m = &c->in_meta[0];
  switch (v->kind) {
    case MTI_AG_RESHAPE:
      gin[0] = T(mt_reshape(g, m->ndim, m->shape));
      break;
    case MTI_AG_PERMUTE: {
      int inverse[MT_MAX_DIMS];
      for (int i = 0; i < m->ndim; i++) inverse[v->dims[i]] = i;
      gin[0] = T(mt_permute(g, inverse));
      break;
    }
    case MTI_AG_SLICE: {
      mt_tensor *z = mti_grad_zeros(c, m);
      mt_tensor *part = z ? T(mt_slice(z, v->dim, v->start, INT64_MAX, v->step)) : NULL;
      mt_tensor *into = part ? T(mt_slice(part, v->dim, 0, g->shape[v->dim], 1)) : NULL;
      if (into && mt_copy_(into, g)) T(NULL);
      gin[0] = z;
      break;
    }
    case MTI_AG_EXPAND:
      gin[0] = (mt_tensor *)g; /* the engine sums it back to the input's shape */
      break;
    case MTI_AG_MOVE:
      gin[0] = T(mt_to(g, c->device, m->dtype, 0));
      break;
  }
  return mti_grad_status(c);
}

/* ------------------------------------------------------------ the walk */

typedef struct node_list {
  mti_ag_node **items;
  int len, cap;
} node_list;

static int list_push(node_list *l, mti_ag_node *node) {
  if (l->len == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    mti_ag_node **items = realloc(l->items, sizeof *items * (size_t)cap);
    if (!items) return -1;
    l->items = items, l->cap = cap;
  }
  l->items[l->len++] = node;
  return 0;
}

/* Every node reachable from root, once, in *all; each one's pending count
 * is the number of edges into it from reachable nodes. */
static mt_status collect(mti_ag_node *root, node_list *all) {
  node_list stack = {0};
  mt_status st = MT_OK;
  root->visited = 1;
  if (list_push(all, root) || list_push(&stack, root)) st = MT_ERR_OUT_OF_MEMORY;
  while (!st && stack.len > 0) {
    mti_ag_node *node = stack.items[--stack.len];
    for (int i = 0; i < node->n && !st; i++) {
      mti_ag_node *next = node->next[i];
      if (!next) continue;
      next->pending++;
      if (next->visited) continue;
      next->visited = 1;
      if (list_push(all, next) || list_push(&stack, next)) st = MT_ERR_OUT_OF_MEMORY;
    }
  }
  free(stack.items);
  return st ? mti_error_oom("mt_backward", sizeof(void *) * (size_t)all->cap) : MT_OK;
}

/* g summed and cast into meta's shape and dtype (g itself when it fits;
 * else a new tensor); NULL with the error set. */
static mt_tensor *fit(const mti_ag_node *node, const mt_tensor *g, const mti_meta *m) {
  const char *fn = "mt_backward";
  mt_tensor *out = keep(fn, g);
  if (!out) return NULL;
  if (out->ndim != m->ndim || memcmp(out->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim)) {
    int dims[MT_MAX_DIMS], nd = 0, lead = out->ndim - m->ndim, fits = lead >= 0;
    for (int d = 0; d < out->ndim && fits; d++) {
      int md = d - lead;
      if (md < 0 || (m->shape[md] == 1 && out->shape[d] != 1)) dims[nd++] = d;
      else fits = m->shape[md] == out->shape[d];
    }
    if (!fits) {
      char a[160], b[160];
      mt_tensor_free(out);
      return mti_error(MT_ERR_INTERNAL, "%s: the rule of %s gave a gradient of shape %s for an "
                       "input of shape %s", fn, node->fn, mti_shape_str(a, sizeof a, g->ndim, g->shape),
                       mti_shape_str(b, sizeof b, m->ndim, m->shape)), NULL;
    }
    mt_tensor *summed = nd ? mt_sum(out, nd, dims, 1) : keep(fn, out);
    mt_tensor_free(out);
    out = summed ? mt_reshape(summed, m->ndim, m->shape) : NULL;
    mt_tensor_free(summed);
    if (!out) return NULL;
  }
  if (out->dtype != m->dtype) {
    mt_tensor *cast = mt_cast(out, m->dtype);
    mt_tensor_free(out);
    out = cast;
  }
  return out;
}

/* Adds g (taken) into node's gradient so far. */
static mt_status accumulate(mti_ag_node *node, mt_tensor *g) {
  if (!node->acc) {
    node->acc = g;
    return MT_OK;
  }
  mt_tensor *sum = mt_add(node->acc, g);
  mt_tensor_free(g);
  if (!sum) return mt_last_status();
  mt_tensor_free(node->acc);
  node->acc = sum;
  return MT_OK;
}

/* Checks that nothing node kept was written in place since. */
static mt_status check_versions(const mti_ag_node *node) {
  for (int i = 0; i < node->n; i++)
    if (node->saved_in[i] && version_of(node->saved_in[i]) != node->saved_in_version[i])
      return mti_error(MT_ERR_INVALID_ARGUMENT,
                       "mt_backward: input %d of %s, kept for the backward, was modified in "
                       "place afterwards (version %ld, kept at %ld)", i, node->fn,
                       version_of(node->saved_in[i]), node->saved_in_version[i]);
  for (int k = 0; k < node->nout; k++)
    if (node->saved_out[k] && version_of(node->saved_out[k]) != node->saved_out_version[k])
      return mti_error(MT_ERR_INVALID_ARGUMENT,
                       "mt_backward: output %d of %s, kept for the backward, was modified in "
                       "place afterwards (version %ld, kept at %ld)", k, node->fn,
                       version_of(node->saved_out[k]), node->saved_out_version[k]);
  return MT_OK;
}

/* Runs node's rule on its complete gradient and passes the results on. */
static mt_status step(mti_ag_node *node) {
  if (node->released)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "mt_backward: the graph through %s was already freed by a backward "
                     "(a second backward needs the forward run again)", node->fn);
  mt_status st = check_versions(node);
  if (st) return st;
  mti_grad_ctx c;
  mt_tensor *gin_inline[MTI_MAX_FIXED_INPUTS];
  mt_tensor **gin = gin_inline;
  if (node->n > MTI_MAX_FIXED_INPUTS && !(gin = calloc((size_t)node->n, sizeof *gin)))
    return mti_error_oom("mt_backward", sizeof *gin * (size_t)node->n);
  if (gin == gin_inline) memset(gin_inline, 0, sizeof gin_inline);
  c.op = node->op;
  c.at = &node->at;
  c.n = node->n;
  c.next = node->next;
  c.in_meta = node->in_meta;
  c.in = node->saved_in;
  c.out = node->saved_out;
  c.out_meta = node->out_meta;
  c.device = node->in_device;
  c.tmp = NULL;
  c.ntmp = c.cap = 0;
  c.status = MT_OK;
  c.error[0] = 0;
  if (node->kind == NODE_VIEW) st = view_backward(&c, &node->view, node->acc, gin);
  else st = grad_table[node->op].rule(&c, node->acc, gin);
  for (int i = 0; i < node->n && !st; i++) {
    mti_ag_node *next = node->next[i];
    if (!next) continue;
    if (gin[i]) {
      mt_tensor *g = fit(node, gin[i], &node->in_meta[i]);
      st = g ? accumulate(next, g) : mt_last_status();
    }
  }
  ctx_free(&c);
  if (gin != gin_inline) free(gin);
  return st;
}

/* The seed gradient of t: grad (checked), or 1 when t has one element. */
static mt_tensor *seed_of(const mt_tensor *t, const mt_tensor *grad) {
  const char *fn = "mt_backward";
  char a[160], b[160];
  if (!grad) {
    if (mti_shape_numel(t->ndim, t->shape) != 1)
      return mti_error(MT_ERR_SHAPE, "%s: t has shape %s; without grad it must have one element",
                       fn, mti_shape_str(a, sizeof a, t->ndim, t->shape)), NULL;
    return mt_full(t->ndim, t->shape, 1.0, t->dtype, t->device);
  }
  if (!mti_device_equal(grad->device, t->device))
    return mti_error(MT_ERR_DEVICE, "%s: grad is on %s, t on %s", fn,
                     mti_device_str(a, sizeof a, grad->device),
                     mti_device_str(b, sizeof b, t->device)), NULL;
  if (grad->ndim != t->ndim || memcmp(grad->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim))
    return mti_error(MT_ERR_SHAPE, "%s: grad has shape %s, t %s", fn,
                     mti_shape_str(a, sizeof a, grad->ndim, grad->shape),
                     mti_shape_str(b, sizeof b, t->ndim, t->shape)), NULL;
  return grad->dtype == t->dtype ? keep(fn, grad) : mt_cast(grad, t->dtype);
}

/* Walks the reachable nodes in order: a node runs once every node that
 * uses its output has passed its gradient on. Leaves gather theirs in acc. */
static mt_status walk(node_list *all) {
  node_list ready = {0};
  mt_status st = list_push(&ready, all->items[0]) ? mti_error_oom("mt_backward", 64) : MT_OK;
  while (!st && ready.len > 0) {
    mti_ag_node *node = ready.items[--ready.len];
    if (node->kind == NODE_LEAF) continue;
    if (node->acc) st = step(node);
    for (int i = 0; i < node->n && !st; i++) {
      mti_ag_node *next = node->next[i];
      if (next && --next->pending == 0 && list_push(&ready, next))
        st = mti_error_oom("mt_backward", sizeof(void *) * (size_t)ready.cap);
    }
    mt_tensor_free(node->acc);
    node->acc = NULL;
  }
  free(ready.items);
  return st;
}

/* Adds each leaf's gathered gradient into its accumulated one. */
static mt_status commit(node_list *all) {
  for (int k = 0; k < all->len; k++) {
    mti_ag_node *leaf = all->items[k];
    if (leaf->kind != NODE_LEAF || !leaf->acc) continue;
    mt_tensor *g = leaf->acc;
    leaf->acc = NULL;
    if (leaf->grad) {
      mt_tensor *sum = mt_add(leaf->grad, g);
      mt_tensor_free(g);
      if (!sum) return mt_last_status();
      g = sum;
    } else if (!mti_shape_is_contiguous(g->ndim, g->shape, g->strides) ||
               atomic_load_explicit(&g->storage->refs, memory_order_acquire) > 1) {
      /* A leaf owns its gradient: one shared with another leaf (both
       * inputs of an add), the caller's grad or a view would change with
       * them when written in place (clipping, zero_). */
      mt_tensor *c = mt_clone(g);
      mt_tensor_free(g);
      if (!c) return mt_last_status();
      g = c;
    }
    mt_tensor_free(leaf->grad);
    leaf->grad = g;
  }
  return MT_OK;
}

mt_status mt_backward(const mt_tensor *t, const mt_tensor *grad) {
  const char *fn = "mt_backward";
  mt_status st = mti_check_tensor(fn, "t", t);
  if (st) return st;
  if (!t->grad_fn)
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: t does not require grad (no input of the ops that made it did, or "
                     "grad mode was off)", fn);
  int was_disabled = grad_disabled;
  grad_disabled = 1;
  mti_ag_node *root = t->grad_fn;
  node_list all = {0};
  mt_tensor *seed = seed_of(t, grad);
  st = seed ? collect(root, &all) : mt_last_status();
  if (!st) {
    root->acc = seed, seed = NULL;
    st = walk(&all);
  }
  if (!st) st = commit(&all);
  for (int k = 0; k < all.len; k++) {
    mti_ag_node *node = all.items[k];
    mt_tensor_free(node->acc);
    node->acc = NULL;
    node->visited = 0;
    node->pending = 0;
    if (!st && node->keeps) {
      node_drop_saved(node);
      node->released = 1;
    }
  }
  mt_tensor_free(seed);
  free(all.items);
  grad_disabled = was_disabled;
  return st;
}
