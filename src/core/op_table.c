/*
 * op_table.c - op descriptions and output inference.
 *
 * mti_infer is the single place that knows each op's dtype and shape rules.
 * It also runs on the worker for nodes that arrive from the wire, so it
 * checks everything it reads (arity, dtypes, dims, attribute ranges).
 */
#include "core/op_table.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/conv_rules.h"

/* Short names for the ATTRS column of ops.def. */
#define A_NONE 0u
#define A_S0 MTI_ATTR_S0
#define A_S1 MTI_ATTR_S1
#define A_S2 MTI_ATTR_S2
#define A_SEED MTI_ATTR_SEED
#define A_DIMS MTI_ATTR_DIMS
#define A_DIM MTI_ATTR_DIM
#define A_DTYPE MTI_ATTR_DTYPE
#define A_INTS MTI_ATTR_INTS
#define A_KEEPDIM (MTI_FLAG_KEEPDIM << MTI_ATTR_FLAG_SHIFT)
#define A_TF32 (MTI_FLAG_TF32 << MTI_ATTR_FLAG_SHIFT)
#define A_DESCENDING (MTI_FLAG_DESCENDING << MTI_ATTR_FLAG_SHIFT)
#define A_REPLACEMENT (MTI_FLAG_REPLACEMENT << MTI_ATTR_FLAG_SHIFT)
#define A_PAD_REFLECT (MTI_FLAG_PAD_REFLECT << MTI_ATTR_FLAG_SHIFT)
#define A_PAD_REPLICATE (MTI_FLAG_PAD_REPLICATE << MTI_ATTR_FLAG_SHIFT)
#define A_CAUSAL (MTI_FLAG_CAUSAL << MTI_ATTR_FLAG_SHIFT)

static const mti_op_info op_infos[MTI_OP_COUNT] = {
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, GRAD) \
  [MTI_OP_##NAME] = {#name, "mt_" #name, MTI_KIND_##KIND, ARITY, NOUT, OPTIONAL, ATTRS},
#include "core/ops.def"
#undef MT_OP
};

static const char *const kind_names[MTI_KIND_COUNT] = {
#define MT_KIND(NAME, doc) [MTI_KIND_##NAME] = #NAME,
#include "core/kinds.def"
#undef MT_KIND
};

const mti_op_info *mti_op_get(int op) {
  return op >= 0 && op < MTI_OP_COUNT ? &op_infos[op] : NULL;
}

const char *mti_kind_name(mti_op_kind kind) {
  return (int)kind >= 0 && (int)kind < MTI_KIND_COUNT ? kind_names[kind] : "?";
}

/* Standard 64-bit FNV-1a (docs/PROTOCOL.md), so that a peer can use a
 * stock implementation. The kind goes in by name: kinds may be renumbered,
 * ops may not. */
uint64_t mti_op_table_hash(int count) {
  uint64_t h = 14695981039346656037ull;
  if (count > MTI_OP_COUNT) count = MTI_OP_COUNT;
  for (int op = 0; op < count; op++) {
    const mti_op_info *i = &op_infos[op];
    char rec[256]; /* names are short; a longer record is hashed cut, never read past */
    int len = snprintf(rec, sizeof rec, "%d:%s:%s:%d:%d:%x:%x;", op, i->name,
                       mti_kind_name(i->kind), i->arity, i->nout, i->optional, i->attrs);
    if (len < 0) len = 0;
    if ((size_t)len >= sizeof rec) len = (int)sizeof rec - 1;
    for (int k = 0; k < len; k++) h = (h ^ (uint8_t)rec[k]) * 1099511628211ull;
  }
  return h;
}

static uint64_t add_saturating(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t numel_of(const mti_meta *m) {
  return (uint64_t)mti_shape_numel(m->ndim, m->shape);
}

/* A contraction's multiply-adds: every output element sums over the last
 * dim of input 0 (k). */
static uint64_t contraction_work(const mti_meta *a, const mti_meta *out) {
  uint64_t k = a->ndim ? (uint64_t)a->shape[a->ndim - 1] : 1, m = numel_of(out);
  return k && m > UINT64_MAX / k ? UINT64_MAX : m * k;
}

/* A convolution's multiply-adds: every output element sums over
 * C / groups x kh x kw taps, the weight's elements per out channel. */
static uint64_t conv_work(const mti_meta *w, const mti_meta *out) {
  uint64_t o = w->ndim ? (uint64_t)w->shape[0] : 0;
  uint64_t taps = o ? numel_of(w) / o : 0, m = numel_of(out);
  return taps && m > UINT64_MAX / taps ? UINT64_MAX : m * taps;
}

/* Attention's multiply-adds: every query row (an element of the logsumexp
 * output) meets S keys, with E products for its score and Ev for its share
 * of the output. */
static uint64_t attention_work(const mti_meta *k, const mti_meta *v, const mti_meta *lse) {
  if (k->ndim < 2 || v->ndim < 1) return 0; /* mti_infer refuses these */
  uint64_t factors[3] = {numel_of(lse), (uint64_t)k->shape[k->ndim - 2],
                         (uint64_t)k->shape[k->ndim - 1] + (uint64_t)v->shape[v->ndim - 1]};
  uint64_t w = 1;
  for (int i = 0; i < 3; i++) {
    if (factors[i] == 0) return 0;
    if (w > UINT64_MAX / factors[i]) return UINT64_MAX;
    w *= factors[i];
  }
  return w;
}

uint64_t mti_op_work(mti_op op, int n, const mti_meta *in, const mti_meta *out) {
  const mti_op_info *info = mti_op_get((int)op);
  uint64_t work = 0;
  if (!info) return 0;
  for (int i = 0; i < n; i++) work = add_saturating(work, numel_of(&in[i]));
  for (int k = 0; k < info->nout; k++) work = add_saturating(work, numel_of(&out[k]));
  if ((info->kind == MTI_KIND_MATMUL || info->kind == MTI_KIND_LINEAR) && n >= 1)
    work = add_saturating(work, contraction_work(&in[0], &out[0]));
  if (info->kind == MTI_KIND_CONV && n >= 2)
    work = add_saturating(work, conv_work(&in[1], &out[0]));
  if (info->kind == MTI_KIND_CONV_GRAD && n >= 2) /* the forward's multiply-adds */
    work = add_saturating(work, op == MTI_OP_CONV2D_INPUT_GRAD ? conv_work(&in[1], &in[0])
                                                               : conv_work(&out[0], &in[0]));
  return work;
}

uint64_t mti_op_work_attrs(mti_op op, int n, const mti_meta *in, const mti_attrs *at,
                           const mti_meta *out) {
  uint64_t work = mti_op_work(op, n, in, out);
  const mti_op_info *info = mti_op_get((int)op);
  if (info && info->kind == MTI_KIND_POOL2D && at && at->n_ints >= 2 && at->ints[0] > 0 &&
      at->ints[1] > 0) {
    uint64_t k = (uint64_t)at->ints[0], m = numel_of(&out[0]);
    k = (uint64_t)at->ints[1] > UINT64_MAX / k ? UINT64_MAX : k * (uint64_t)at->ints[1];
    work = add_saturating(work, m && k > UINT64_MAX / m ? UINT64_MAX : m * k);
  }
  if (info->kind == MTI_KIND_ATTENTION && n >= 3)
    work = add_saturating(work, attention_work(&in[1], &in[2], &out[1]));
  return work;
}

/* Names of the slots for messages, in MTI_ATTR_* bit order. */
static const char *const slot_names[] = {"s0",   "s1",    "s2",   "seed",
                                         "dims", "dim",   "dtype", "ints"};

/* Names of the flags for messages, in MTI_FLAG_* bit order. */
static const char *const flag_names[] = {"KEEPDIM", "TF32", "DESCENDING", [5] = "REPLACEMENT",
                                          [6] = "PAD_REFLECT", [7] = "PAD_REPLICATE",
                                          [8] = "CAUSAL"};

static int slot_used(const mti_attrs *at, int slot) {
  switch (slot) {
  case 0: return at->s0 != 0 || signbit(at->s0) || isnan(at->s0);
  case 1: return at->s1 != 0 || signbit(at->s1) || isnan(at->s1);
  case 2: return at->s2 != 0 || signbit(at->s2) || isnan(at->s2);
  case 3: return at->seed != 0;
  case 4: return at->dims_mask != 0;
  case 5: return at->dim != 0;
  case 6: return at->dtype != 0;
  default: return at->n_ints != 0;
  }
}

mt_status mti_attrs_check(mti_op op, const mti_attrs *at) {
  const mti_op_info *info = mti_op_get((int)op);
  if (!info) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_op: op: %d is not an op", (int)op);
  for (int slot = 0; slot < MTI_ATTR_FLAG_SHIFT; slot++)
    if (!(info->attrs >> slot & 1u) && slot_used(at, slot))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: attrs: %s is set, but %s has no such attribute",
                       info->fn, slot_names[slot], info->fn);
  if (at->n_ints < 0 || at->n_ints > MTI_MAX_INT_ATTRS)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: attrs: %d ints, at most %d", info->fn,
                     at->n_ints, MTI_MAX_INT_ATTRS);
  uint32_t allowed = (info->attrs >> MTI_ATTR_FLAG_SHIFT) |
                     (info->optional << MTI_FLAG_PRESENT_SHIFT);
  uint32_t bad = at->flags & ~allowed;
  if (bad) {
    int bit = __builtin_ctz(bad);
    int named = bit < (int)(sizeof flag_names / sizeof *flag_names);
    char name[32];
    if (bit >= MTI_FLAG_PRESENT_SHIFT)
      snprintf(name, sizeof name, "PRESENT(%d)", bit - MTI_FLAG_PRESENT_SHIFT);
    else
      snprintf(name, sizeof name, "%s", named && flag_names[bit] ? flag_names[bit] : "unknown");
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: attrs: flag %s (0x%x) is not a flag of %s",
                     info->fn, name, 1u << bit, info->fn);
  }
  return MT_OK;
}

/* ---- helpers: each sets the error with the op's public name ---- */

typedef struct infer_ctx {
  const char *fn; /* "mt_add" */
  const mti_op_info *info;
} infer_ctx;

static mt_status check_dtype(const infer_ctx *c, const char *arg, int d) {
  if (!mti_dtype_valid(d))
    return mti_error(MT_ERR_DTYPE, "%s: %s: %d is not a dtype", c->fn, arg, d);
  return MT_OK;
}

static mt_status check_meta(const infer_ctx *c, const char *arg, const mti_meta *m) {
  mt_status s = check_dtype(c, arg, (int)m->dtype);
  if (s) return s;
  return mti_shape_check(c->fn, m->ndim, m->shape, mt_dtype_size(m->dtype));
}

static void set_out(mti_meta *out, mt_dtype dtype, int ndim, const int64_t *shape) {
  out->dtype = dtype;
  out->ndim = ndim;
  for (int i = 0; i < ndim; i++) out->shape[i] = shape[i];
}

static mt_dtype float_result(mt_dtype d) { return mti_dtype_is_float(d) ? d : MT_FLOAT32; }

static int is_whole_number(double v) { return isfinite(v) && v == floor(v); }

/* ---- per kind ---- */

static mt_status infer_creation(const infer_ctx *c, mti_op op, const mti_attrs *at,
                                mti_meta *out) {
  mt_status s = check_dtype(c, "dtype", at->dtype);
  if (s) return s;
  out->dtype = (mt_dtype)at->dtype;
  if ((s = mti_shape_check(c->fn, out->ndim, out->shape, mt_dtype_size(out->dtype)))) return s;
  if (op == MTI_OP_RAND || op == MTI_OP_RANDN) {
    if (!mti_dtype_is_float(out->dtype))
      return mti_error(MT_ERR_DTYPE, "%s: dtype: %s is not a floating dtype", c->fn,
                       mt_dtype_name(out->dtype));
  }
  if (op == MTI_OP_ARANGE) {
    if (out->ndim != 1) return mti_error(MT_ERR_SHAPE, "%s: result must be 1-d", c->fn);
    if (!isfinite(at->s0) || !isfinite(at->s1))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: start and step must be finite", c->fn);
  }
  return MT_OK;
}

static mt_status infer_broadcast(const infer_ctx *c, int n, const mti_meta *in, int *ndim,
                                 int64_t *shape) {
  *ndim = in[0].ndim;
  memcpy(shape, in[0].shape, sizeof(int64_t) * (size_t)in[0].ndim);
  for (int i = 1; i < n; i++) {
    mt_status s = mti_shape_broadcast(c->fn, *ndim, shape, in[i].ndim, in[i].shape, ndim, shape);
    if (s) return s;
  }
  return MT_OK;
}

/* An elementwise result: the inputs' broadcast shape in dtype dt. */
static mt_status elementwise_out(const infer_ctx *c, int n, const mti_meta *in, mt_dtype dt,
                                 mti_meta *out) {
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  mt_status s = infer_broadcast(c, n, in, &ndim, shape);
  if (s) return s;
  set_out(out, dt, ndim, shape);
  return MT_OK;
}

static mt_status binary_dtype(const infer_ctx *c, mti_op op, const mti_meta *in, mt_dtype *dt) {
  *dt = mti_promote(in[0].dtype, in[1].dtype);
  if (*dt == MT_BOOL && (op == MTI_OP_SUB || op == MTI_OP_POW))
    return mti_error(MT_ERR_DTYPE, "%s: a, b: not supported for two bool tensors", c->fn);
  if (op == MTI_OP_DIV) *dt = float_result(*dt);
  return MT_OK;
}

/* An integer tensor with a fractional scalar computes in float32 (and
 * bool with a whole one in int64), as PyTorch's scalar promotion. */
static mt_dtype scalar_dtype(mt_dtype a, double scalar) {
  if (mti_dtype_is_float(a)) return a;
  return !is_whole_number(scalar) ? MT_FLOAT32 : a == MT_BOOL ? MT_INT64 : a;
}

static mt_status check_empty_extent(const infer_ctx *c, const mti_meta *a, uint32_t mask) {
  for (int d = 0; d < a->ndim; d++)
    if ((mask >> d & 1u) && a->shape[d] == 0)
      return mti_error(MT_ERR_SHAPE, "%s: dims: dim %d has size 0 and %s has no identity", c->fn,
                       d, c->fn);
  return MT_OK;
}

/* Output of reducing mask of a (keepdim keeps size-1 dims). */
static void reduced_shape(const mti_meta *a, uint32_t mask, int keepdim, mti_meta *out,
                          mt_dtype dt) {
  out->dtype = dt;
  out->ndim = 0;
  for (int d = 0; d < a->ndim; d++) {
    if (!(mask >> d & 1u)) out->shape[out->ndim++] = a->shape[d];
    else if (keepdim) out->shape[out->ndim++] = 1;
  }
}

static mt_status infer_reduce(const infer_ctx *c, mti_op op, const mti_meta *a,
                              const mti_attrs *at, mti_meta *out) {
  uint32_t all = a->ndim ? (uint32_t)((1u << a->ndim) - 1u) : 0u;
  if (at->dims_mask & ~all)
    return mti_error(MT_ERR_SHAPE, "%s: dims: mask 0x%x names dims a %d-d tensor lacks", c->fn,
                     at->dims_mask, a->ndim);
  mt_dtype dt = a->dtype;
  if (op == MTI_OP_SUM || op == MTI_OP_PROD) dt = mti_dtype_is_float(dt) ? dt : MT_INT64;
  if (op == MTI_OP_MEAN) dt = float_result(dt);
  if (op == MTI_OP_AMAX || op == MTI_OP_AMIN) {
    mt_status s = check_empty_extent(c, a, at->dims_mask);
    if (s) return s;
  }
  reduced_shape(a, at->dims_mask, (at->flags & MTI_FLAG_KEEPDIM) != 0, out, dt);
  return MT_OK;
}

/* dim of a, where a 0-d tensor has the one dim 0 (as in PyTorch). */
static mt_status check_dim(const infer_ctx *c, const char *arg, int dim, int ndim) {
  if (dim < 0 || dim >= (ndim ? ndim : 1))
    return mti_error(MT_ERR_SHAPE, "%s: %s: dim %d is out of range for a %d-d tensor", c->fn, arg,
                     dim, ndim);
  return MT_OK;
}

static mt_status infer_argreduce(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                                 mti_meta *out) {
  mt_status s = check_dim(c, "dim", at->dim, a->ndim);
  if (s) return s;
  uint32_t mask = a->ndim ? 1u << at->dim : 0u;
  if ((s = check_empty_extent(c, a, mask))) return s;
  reduced_shape(a, mask, (at->flags & MTI_FLAG_KEEPDIM) != 0, out, MT_INT64);
  return MT_OK;
}

static mt_status infer_layer_norm(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                  mti_meta *out) {
  const mti_meta *a = &in[0];
  if (a->ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: a: needs at least 1 dim", c->fn);
  if (!(at->s0 >= 0.0) || !isfinite(at->s0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: eps: %g must be finite and >= 0", c->fn,
                     at->s0);
  int64_t last = a->shape[a->ndim - 1];
  static const char *names[3] = {"a", "weight", "bias"};
  for (int i = 1; i < 3; i++) {
    if (!mti_input_present(c->info, at, i)) continue;
    if (in[i].ndim != 1 || in[i].shape[0] != last)
      return mti_error(MT_ERR_SHAPE, "%s: %s: must be 1-d of size %lld (the last dim of a)",
                       c->fn, names[i], (long long)last);
  }
  set_out(out, float_result(a->dtype), a->ndim, a->shape);
  return MT_OK;
}

static mt_status infer_matmul(const infer_ctx *c, const mti_meta *a, const mti_meta *b,
                              mti_meta *out) {
  if (a->ndim < 1 || b->ndim < 1)
    return mti_error(MT_ERR_SHAPE, "%s: %s: 0-d operands are not matrices", c->fn,
                     a->ndim < 1 ? "a" : "b");
  int64_t k_a = a->shape[a->ndim - 1];
  int64_t k_b = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (k_a != k_b) {
    char sa[160], sb[160];
    return mti_error(MT_ERR_SHAPE, "%s: a, b: inner dims differ: %s @ %s", c->fn,
                     mti_shape_str(sa, sizeof sa, a->ndim, a->shape),
                     mti_shape_str(sb, sizeof sb, b->ndim, b->shape));
  }
  int a_batch = a->ndim > 2 ? a->ndim - 2 : 0, b_batch = b->ndim > 2 ? b->ndim - 2 : 0;
  int ndim;
  int64_t shape[MT_MAX_DIMS + 2];
  mt_status s = mti_shape_broadcast(c->fn, a_batch, a->shape, b_batch, b->shape, &ndim, shape);
  if (s) return s;
  if (a->ndim >= 2) shape[ndim++] = a->shape[a->ndim - 2];
  if (b->ndim >= 2) shape[ndim++] = b->shape[b->ndim - 1];
  set_out(out, mti_promote(a->dtype, b->dtype), ndim, shape);
  return MT_OK;
}

static mt_status infer_cat(const infer_ctx *c, int n, const mti_meta *in, const mti_attrs *at,
                           mti_meta *out) {
  const mti_meta *first = &in[0];
  if (first->ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: ts[0]: 0-d tensors cannot be joined", c->fn);
  mt_status s = check_dim(c, "dim", at->dim, first->ndim);
  if (s) return s;
  mt_dtype dt = first->dtype;
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    if (in[i].ndim != first->ndim)
      return mti_error(MT_ERR_SHAPE, "%s: ts[%d]: has %d dims, ts[0] has %d", c->fn, i,
                       in[i].ndim, first->ndim);
    for (int d = 0; d < first->ndim; d++)
      if (d != at->dim && in[i].shape[d] != first->shape[d])
        return mti_error(MT_ERR_SHAPE, "%s: ts[%d]: dim %d is %lld, ts[0] has %lld", c->fn, i, d,
                         (long long)in[i].shape[d], (long long)first->shape[d]);
    if (in[i].shape[at->dim] > INT64_MAX - total)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: joined size overflows", c->fn);
    total += in[i].shape[at->dim];
    dt = mti_promote(dt, in[i].dtype);
  }
  set_out(out, dt, first->ndim, first->shape);
  out->shape[at->dim] = total;
  return mti_shape_check(c->fn, out->ndim, out->shape, mt_dtype_size(dt));
}

static mt_status infer_index_select(const infer_ctx *c, const mti_meta *a, const mti_meta *idx,
                                    const mti_attrs *at, mti_meta *out) {
  if (a->ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: a: 0-d tensors have no dim to index", c->fn);
  mt_status s = check_dim(c, "dim", at->dim, a->ndim);
  if (s) return s;
  if (idx->dtype != MT_INT32 && idx->dtype != MT_INT64)
    return mti_error(MT_ERR_DTYPE, "%s: index: dtype %s, expected int32 or int64", c->fn,
                     mt_dtype_name(idx->dtype));
  if (idx->ndim > 1)
    return mti_error(MT_ERR_SHAPE, "%s: index: must be 0-d or 1-d, got %d dims", c->fn, idx->ndim);
  set_out(out, a->dtype, 0, NULL);
  for (int d = 0; d < a->ndim; d++) {
    if (d != at->dim) out->shape[out->ndim++] = a->shape[d];
    else if (idx->ndim == 1) out->shape[out->ndim++] = idx->shape[0];
  }
  return MT_OK;
}

/* ---- rules: general elementwise (0.2) ---- */

/* The bitwise ops: integers and bool only, in the promoted dtype. */
static mt_status infer_bitwise(const infer_ctx *c, int n, const mti_meta *in, mti_meta *out) {
  mt_dtype dt = n == 2 ? mti_promote(in[0].dtype, in[1].dtype) : in[0].dtype;
  for (int i = 0; i < n; i++)
    if (mti_dtype_is_float(in[i].dtype))
      return mti_error(MT_ERR_DTYPE, "%s: %s: %s is not an integer or bool dtype", c->fn,
                       i ? "b" : "a", mt_dtype_name(in[i].dtype));
  return elementwise_out(c, n, in, dt, out);
}

/* floor_divide, remainder, fmod: the promoted dtype, which must not be bool
 * (PyTorch refuses it). An integer divisor 0 is found by the kernel. */
static mt_status infer_division(const infer_ctx *c, const mti_meta *in, mti_meta *out) {
  mt_dtype dt = mti_promote(in[0].dtype, in[1].dtype);
  if (dt == MT_BOOL)
    return mti_error(MT_ERR_DTYPE, "%s: a, b: not supported for two bool tensors", c->fn);
  return elementwise_out(c, 2, in, dt, out);
}

/* leaky_relu and elu take floating tensors only (as PyTorch); nan_to_num
 * takes any dtype and leaves integers and bool as they are. */
static mt_status infer_unary_param(const infer_ctx *c, mti_op op, const mti_meta *in,
                                   mti_meta *out) {
  if (op != MTI_OP_NAN_TO_NUM && !mti_dtype_is_float(in[0].dtype))
    return mti_error(MT_ERR_DTYPE, "%s: a: %s is not a floating dtype", c->fn,
                     mt_dtype_name(in[0].dtype));
  return elementwise_out(c, 1, in, in[0].dtype, out);
}

/* Largest finite value of a floating dtype. */
static double float_max(mt_dtype d) {
  if (d == MT_FLOAT16) return 65504.0;
  return d == MT_BFLOAT16 ? 0x1.fep127 : d == MT_FLOAT32 ? 0x1.fffffep127 : INFINITY;
}

/* Whether value converts to d without overflow (PyTorch's check of a fill
 * value): integers need a value in their range (NaN and inf are not),
 * floats a value within their finite range unless it is inf or NaN; bool
 * takes anything (non-zero is true). */
static int value_fits(mt_dtype d, double v) {
  static const double lo[] = {[MT_UINT8] = 0, [MT_INT8] = -128, [MT_INT16] = -32768,
                              [MT_INT32] = -2147483648.0, [MT_INT64] = -0x1p63};
  static const double hi[] = {[MT_UINT8] = 255, [MT_INT8] = 127, [MT_INT16] = 32767,
                              [MT_INT32] = 2147483647.0, [MT_INT64] = 0x1p63};
  if (d == MT_BOOL) return 1;
  if (mti_dtype_is_float(d)) return !isfinite(v) || fabs(v) <= float_max(d);
  return v >= lo[d] && (d == MT_INT64 ? v < hi[d] : v <= hi[d]);
}

/* masked_fill: a bool mask that broadcasts to a (the result is a's shape
 * and dtype) and a value that a's dtype can hold. */
static mt_status infer_masked_fill(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                   mti_meta *out) {
  if (in[1].dtype != MT_BOOL)
    return mti_error(MT_ERR_DTYPE, "%s: mask: dtype %s, expected bool", c->fn,
                     mt_dtype_name(in[1].dtype));
  mt_status s = elementwise_out(c, 2, in, in[0].dtype, out);
  if (s) return s;
  if (out->ndim != in[0].ndim ||
      memcmp(out->shape, in[0].shape, sizeof(int64_t) * (size_t)out->ndim)) {
    char sa[160], sm[160];
    return mti_error(MT_ERR_SHAPE, "%s: mask: shape %s does not broadcast to a's %s", c->fn,
                     mti_shape_str(sm, sizeof sm, in[1].ndim, in[1].shape),
                     mti_shape_str(sa, sizeof sa, in[0].ndim, in[0].shape));
  }
  if (!value_fits(in[0].dtype, at->s0))
    return mti_error(MT_ERR_INVALID_ARGUMENT,
                     "%s: value: %g cannot be converted to %s without overflow", c->fn, at->s0,
                     mt_dtype_name(in[0].dtype));
  return MT_OK;
}

/* ---- rules: reductions, scans, sorting (0.2) ---- */

static mt_status check_dims_mask(const infer_ctx *c, const mti_meta *a, uint32_t mask) {
  uint32_t all = a->ndim ? (uint32_t)((1u << a->ndim) - 1u) : 0u;
  if (mask & ~all)
    return mti_error(MT_ERR_SHAPE, "%s: dims: mask 0x%x names dims a %d-d tensor lacks", c->fn,
                     mask, a->ndim);
  return MT_OK;
}

/* var, std and norm take floating inputs (as PyTorch), logsumexp any
 * (integers and bool give float32). correction and p must be numbers; the
 * -inf norm of an empty extent has no value. */
static mt_status infer_reduce_float(const infer_ctx *c, mti_op op, const mti_meta *a,
                                    const mti_attrs *at, mti_meta *out) {
  mt_status s = check_dims_mask(c, a, at->dims_mask);
  if (s) return s;
  if (op != MTI_OP_LOGSUMEXP && !mti_dtype_is_float(a->dtype))
    return mti_error(MT_ERR_DTYPE, "%s: a: %s is not a floating dtype", c->fn,
                     mt_dtype_name(a->dtype));
  if ((op == MTI_OP_VAR || op == MTI_OP_STD) && !isfinite(at->s0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: correction: %g is not finite", c->fn, at->s0);
  if (op == MTI_OP_NORM && isnan(at->s0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: p: NaN is not an order", c->fn);
  if (op == MTI_OP_NORM && at->s0 == -INFINITY && (s = check_empty_extent(c, a, at->dims_mask)))
    return s;
  reduced_shape(a, at->dims_mask, (at->flags & MTI_FLAG_KEEPDIM) != 0, out,
                float_result(a->dtype));
  return MT_OK;
}

/* max_dim, min_dim: values in a's dtype and int64 indices, both reduced
 * along dim, which must not be empty. */
static mt_status infer_extreme_dim(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                                   mti_meta *out) {
  mt_status s = infer_argreduce(c, a, at, &out[1]);
  if (s) return s;
  out[0] = out[1];
  out[0].dtype = a->dtype;
  return MT_OK;
}

/* sort: values and int64 indices of a's shape; argsort: the indices. */
static mt_status infer_sort(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                            mti_meta *out) {
  mt_status s = check_dim(c, "dim", at->dim, a->ndim);
  if (s) return s;
  for (int k = 0; k < c->info->nout; k++) set_out(&out[k], MT_INT64, a->ndim, a->shape);
  if (c->info->nout == 2) out[0].dtype = a->dtype;
  return MT_OK;
}

/* topk: k = ints[0] in [0, size of dim] (a 0-d tensor's one dim has size
 * 1 and keeps its shape); bool is refused, as PyTorch does. */
static mt_status infer_topk(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                            mti_meta *out) {
  mt_status s = check_dim(c, "dim", at->dim, a->ndim);
  if (s) return s;
  if (a->dtype == MT_BOOL) return mti_error(MT_ERR_DTYPE, "%s: a: not supported for bool", c->fn);
  if (at->n_ints != 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: k: %d integer attributes, expected 1", c->fn,
                     at->n_ints);
  int64_t size = a->ndim ? a->shape[at->dim] : 1, k = at->ints[0];
  if (k < 0 || k > size)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: k: %lld is outside [0, %lld] (the size of dim %d)",
                     c->fn, (long long)k, (long long)size, at->dim);
  set_out(&out[0], a->dtype, a->ndim, a->shape);
  if (a->ndim) out[0].shape[at->dim] = k;
  out[1] = out[0];
  out[1].dtype = MT_INT64;
  return MT_OK;
}

/* ---- rules: indexing, shape, creation, sampling (0.2) ---- */

static mt_status check_index_dtype(const infer_ctx *c, const char *arg, const mti_meta *idx) {
  if (idx->dtype != MT_INT32 && idx->dtype != MT_INT64)
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected int32 or int64", c->fn, arg,
                     mt_dtype_name(idx->dtype));
  return MT_OK;
}

static mt_status check_float_input(const infer_ctx *c, const char *arg, const mti_meta *m) {
  if (!mti_dtype_is_float(m->dtype))
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected a floating dtype", c->fn, arg,
                     mt_dtype_name(m->dtype));
  return MT_OK;
}

static mt_status check_n_ints(const infer_ctx *c, const char *arg, const mti_attrs *at, int n) {
  if (at->n_ints != n)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %d integer attributes, expected %d", c->fn,
                     arg, at->n_ints, n);
  return MT_OK;
}

/* The largest integer dtype d holds exactly (floats: 2^mantissa bits). */
static int64_t dtype_max_exact(mt_dtype d) {
  switch (d) {
  case MT_BOOL: return 1;
  case MT_UINT8: return UINT8_MAX;
  case MT_INT8: return INT8_MAX;
  case MT_INT16: return INT16_MAX;
  case MT_INT32: return INT32_MAX;
  case MT_INT64: return INT64_MAX;
  case MT_FLOAT16: return (int64_t)1 << 11;
  case MT_BFLOAT16: return (int64_t)1 << 8;
  case MT_FLOAT32: return (int64_t)1 << 24;
  case MT_FLOAT64: return (int64_t)1 << 53;
  }
  return 0;
}

static int64_t dtype_min_exact(mt_dtype d) {
  if (d == MT_BOOL || d == MT_UINT8) return 0;
  if (mti_dtype_is_float(d)) return -dtype_max_exact(d);
  return d == MT_INT64 ? INT64_MIN : -dtype_max_exact(d) - 1;
}

/* eye, linspace, randint: out[0] comes with its shape; the rule checks it
 * and the attributes (randint's [low, high) must be non-empty and its
 * values representable in the dtype, as PyTorch's from/to check). */
static mt_status infer_index_creation(const infer_ctx *c, mti_op op, const mti_attrs *at,
                                      mti_meta *out) {
  mt_status s = check_dtype(c, "dtype", at->dtype);
  if (s) return s;
  out->dtype = (mt_dtype)at->dtype;
  if ((s = mti_shape_check(c->fn, out->ndim, out->shape, mt_dtype_size(out->dtype)))) return s;
  int want = op == MTI_OP_EYE ? 2 : op == MTI_OP_LINSPACE ? 1 : out->ndim;
  if (out->ndim != want) return mti_error(MT_ERR_SHAPE, "%s: result must be %d-d", c->fn, want);
  if (op == MTI_OP_LINSPACE && (!isfinite(at->s0) || !isfinite(at->s1)))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: start, end: must be finite", c->fn);
  if (op != MTI_OP_RANDINT) return MT_OK;
  if ((s = check_n_ints(c, "low, high", at, 2))) return s;
  int64_t low = at->ints[0], high = at->ints[1];
  if (low >= high)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: low, high: [%lld, %lld) is empty", c->fn,
                     (long long)low, (long long)high);
  if (low < dtype_min_exact(out->dtype) || high - 1 > dtype_max_exact(out->dtype))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: low, high: [%lld, %lld) is out of range for %s",
                     c->fn, (long long)low, (long long)high, mt_dtype_name(out->dtype));
  return MT_OK;
}

/* index against a (and src, when given) as torch.gather/scatter check it:
 * the same number of dims, and no dim of index larger than a's (except
 * along dim) or src's. */
static mt_status check_scatter_index(const infer_ctx *c, const mti_meta *a, const mti_meta *idx,
                                     const mti_meta *src, int dim) {
  mt_status s = check_dim(c, "dim", dim, a->ndim);
  if (s || (s = check_index_dtype(c, "index", idx))) return s;
  if (idx->ndim != a->ndim || (src && src->ndim != a->ndim))
    return mti_error(MT_ERR_SHAPE, "%s: index%s: %d dims, a has %d", c->fn, src ? ", src" : "",
                     src && idx->ndim == a->ndim ? src->ndim : idx->ndim, a->ndim);
  for (int d = 0; d < a->ndim; d++) {
    if (d != dim && idx->shape[d] > a->shape[d])
      return mti_error(MT_ERR_SHAPE, "%s: index: dim %d is %lld, larger than a's %lld", c->fn, d,
                       (long long)idx->shape[d], (long long)a->shape[d]);
    if (src && idx->shape[d] > src->shape[d])
      return mti_error(MT_ERR_SHAPE, "%s: index: dim %d is %lld, larger than src's %lld", c->fn,
                       d, (long long)idx->shape[d], (long long)src->shape[d]);
  }
  if (src && src->dtype != a->dtype)
    return mti_error(MT_ERR_DTYPE, "%s: src: dtype %s, a is %s", c->fn, mt_dtype_name(src->dtype),
                     mt_dtype_name(a->dtype));
  return MT_OK;
}

/* index_add: src is a with dim resized to the index's length. */
static mt_status infer_index_add(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                 mti_meta *out) {
  const mti_meta *a = &in[0], *idx = &in[1], *src = &in[2];
  mt_status s = check_dim(c, "dim", at->dim, a->ndim);
  if (s || (s = check_index_dtype(c, "index", idx))) return s;
  if (idx->ndim > 1)
    return mti_error(MT_ERR_SHAPE, "%s: index: must be 0-d or 1-d, got %d dims", c->fn, idx->ndim);
  int64_t len = idx->ndim ? idx->shape[0] : 1;
  int match = src->ndim == a->ndim;
  for (int d = 0; match && d < a->ndim; d++)
    match = src->shape[d] == (d == at->dim ? len : a->shape[d]);
  if (!match || (a->ndim == 0 && len != 1)) {
    char sa[160], ss[160];
    return mti_error(MT_ERR_SHAPE, "%s: src: shape %s, expected a's %s with dim %d of size %lld",
                     c->fn, mti_shape_str(ss, sizeof ss, src->ndim, src->shape),
                     mti_shape_str(sa, sizeof sa, a->ndim, a->shape), at->dim, (long long)len);
  }
  if (src->dtype != a->dtype)
    return mti_error(MT_ERR_DTYPE, "%s: src: dtype %s, a is %s", c->fn, mt_dtype_name(src->dtype),
                     mt_dtype_name(a->dtype));
  set_out(out, a->dtype, a->ndim, a->shape);
  return MT_OK;
}

/* embedding and one_hot: index's shape and one more dim. */
static mt_status infer_index_plus_dim(const infer_ctx *c, mti_op op, const mti_meta *in,
                                      const mti_attrs *at, mti_meta *out) {
  const mti_meta *idx = op == MTI_OP_EMBEDDING ? &in[1] : &in[0];
  mt_status s = check_index_dtype(c, "index", idx);
  if (s) return s;
  if (idx->ndim >= MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: index: %d dims leave no room for one more", c->fn,
                     idx->ndim);
  int64_t last;
  mt_dtype dt = MT_INT64;
  if (op == MTI_OP_EMBEDDING) {
    if (in[0].ndim != 2)
      return mti_error(MT_ERR_SHAPE, "%s: weight: must be 2-d, got %d dims", c->fn, in[0].ndim);
    last = in[0].shape[1];
    dt = in[0].dtype;
  } else {
    if ((s = check_n_ints(c, "num_classes", at, 1))) return s;
    if ((last = at->ints[0]) <= 0)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: num_classes: %lld, expected > 0", c->fn,
                       (long long)last);
  }
  set_out(out, dt, idx->ndim, idx->shape);
  out->shape[out->ndim++] = last;
  return MT_OK;
}

/* roll: (dim, shift) pairs over distinct dims. */
static mt_status check_roll(const infer_ctx *c, const mti_meta *a, const mti_attrs *at) {
  if (at->n_ints < 2 || at->n_ints % 2)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: dims, shifts: %d integers, expected pairs",
                     c->fn, at->n_ints);
  uint32_t seen = 0;
  for (int k = 0; k < at->n_ints; k += 2) {
    int64_t d = at->ints[k];
    if (d < 0 || d >= (a->ndim ? a->ndim : 1))
      return mti_error(MT_ERR_SHAPE, "%s: dims: dim %lld is out of range for a %d-d tensor", c->fn,
                       (long long)d, a->ndim);
    if (seen >> d & 1u) return mti_error(MT_ERR_SHAPE, "%s: dims: dim %lld appears twice", c->fn,
                                         (long long)d);
    seen |= 1u << d;
  }
  return MT_OK;
}

/* repeat: one count per out dim (at least a's dims; a's align right). */
static mt_status infer_repeat(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                              mti_meta *out) {
  int n = at->n_ints;
  if (n < a->ndim || n > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: repeats: %d counts, expected %d..%d (a has %d dims)",
                     c->fn, n, a->ndim, MT_MAX_DIMS, a->ndim);
  out->dtype = a->dtype;
  out->ndim = n;
  for (int d = 0; d < n; d++) {
    int64_t r = at->ints[d], size = d < n - a->ndim ? 1 : a->shape[d - (n - a->ndim)];
    if (r < 0)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: repeats: %lld is negative", c->fn,
                       (long long)r);
    if (size && r > INT64_MAX / size)
      return mti_error(MT_ERR_SHAPE, "%s: repeats: dim %d overflows", c->fn, d);
    out->shape[d] = r * size;
  }
  return MT_OK;
}

/* pad: (before, after) pairs from the last dim backwards. */
static mt_status infer_pad(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                           mti_meta *out) {
  int n = at->n_ints;
  uint32_t mode = at->flags & (MTI_FLAG_PAD_REFLECT | MTI_FLAG_PAD_REPLICATE);
  if (n < 2 || n % 2 || n > 2 * a->ndim)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: pads: %d values, expected 2..%d, even", c->fn,
                     n, 2 * a->ndim);
  if (mode == (MTI_FLAG_PAD_REFLECT | MTI_FLAG_PAD_REPLICATE))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: mode: reflect and replicate both set", c->fn);
  set_out(out, a->dtype, a->ndim, a->shape);
  for (int k = 0; k < n / 2; k++) {
    int d = a->ndim - 1 - k;
    int64_t lo = at->ints[2 * k], hi = at->ints[2 * k + 1], size = a->shape[d];
    if (mode && (lo < 0 || hi < 0))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: pads: negative for dim %d (only constant "
                       "padding crops)", c->fn, d);
    if (mode == MTI_FLAG_PAD_REFLECT && (lo >= size || hi >= size))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: pads: (%lld, %lld) for dim %d of size %lld: "
                       "reflect needs pads < size", c->fn, (long long)lo, (long long)hi, d,
                       (long long)size);
    if (mode == MTI_FLAG_PAD_REPLICATE && size == 0 && (lo || hi))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: pads: dim %d is empty: nothing to replicate",
                       c->fn, d);
    if (llabs(lo) > INT64_MAX / 4 || llabs(hi) > INT64_MAX / 4 || size + lo + hi < 0)
      return mti_error(MT_ERR_SHAPE, "%s: pads: (%lld, %lld) for dim %d of size %lld leave a "
                       "negative size", c->fn, (long long)lo, (long long)hi, d, (long long)size);
    out->shape[d] = size + lo + hi;
  }
  return MT_OK;
}

static mt_status infer_remap(const infer_ctx *c, mti_op op, const mti_meta *a,
                             const mti_attrs *at, mti_meta *out) {
  mt_status s;
  if (op == MTI_OP_REPEAT) return infer_repeat(c, a, at, out);
  if (op == MTI_OP_PAD) return infer_pad(c, a, at, out);
  if (op == MTI_OP_ROLL && (s = check_roll(c, a, at))) return s;
  uint32_t all = a->ndim ? (uint32_t)((1u << a->ndim) - 1u) : 0u;
  if (at->dims_mask & ~all)
    return mti_error(MT_ERR_SHAPE, "%s: dims: mask 0x%x names dims a %d-d tensor lacks", c->fn,
                     at->dims_mask, a->ndim);
  set_out(out, a->dtype, a->ndim, a->shape);
  return MT_OK;
}

/* multinomial: float rows of probabilities; without replacement there
 * must be as many categories as samples. */
static mt_status infer_multinomial(const infer_ctx *c, const mti_meta *p, const mti_attrs *at,
                                   mti_meta *out) {
  mt_status s = check_float_input(c, "probs", p);
  if (s || (s = check_n_ints(c, "num_samples", at, 1))) return s;
  if (p->ndim != 1 && p->ndim != 2)
    return mti_error(MT_ERR_SHAPE, "%s: probs: must be 1-d or 2-d, got %d dims", c->fn, p->ndim);
  int64_t cats = p->shape[p->ndim - 1], n = at->ints[0];
  if (cats == 0) return mti_error(MT_ERR_SHAPE, "%s: probs: no categories", c->fn);
  if (n <= 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: num_samples: %lld, expected > 0", c->fn,
                     (long long)n);
  if (!(at->flags & MTI_FLAG_REPLACEMENT) && n > cats)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: num_samples: %lld without replacement from "
                     "%lld categories", c->fn, (long long)n, (long long)cats);
  set_out(out, MT_INT64, p->ndim, p->shape);
  out->shape[p->ndim - 1] = n;
  return MT_OK;
}

/* ---- rules: normalisations and losses ---- */

/* The compute dtype of the floating ops below: float64 for float64, else
 * float32 (float16/bfloat16 compute in float32); their statistics have it. */
static mt_dtype compute_dtype(mt_dtype d) { return d == MT_FLOAT64 ? MT_FLOAT64 : MT_FLOAT32; }

static mt_status check_eps(const infer_ctx *c, double eps) {
  if (!(eps >= 0.0) || !isfinite(eps))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: eps: %g must be finite and >= 0", c->fn, eps);
  return MT_OK;
}

/* Optional input i, when present: floating and 1-d of size n. */
static mt_status check_param(const infer_ctx *c, const mti_meta *in, const mti_attrs *at, int i,
                             const char *name, int64_t n, const char *of) {
  if (!mti_input_present(c->info, at, i)) return MT_OK;
  mt_status s = check_float_input(c, name, &in[i]);
  if (s) return s;
  if (in[i].ndim != 1 || in[i].shape[0] != n)
    return mti_error(MT_ERR_SHAPE, "%s: %s: must be 1-d of size %lld (%s)", c->fn, name,
                     (long long)n, of);
  return MT_OK;
}

static mt_status infer_rms_norm(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                mti_meta *out) {
  const mti_meta *a = &in[0];
  mt_status s = check_float_input(c, "a", a);
  if (s || (s = check_eps(c, at->s0))) return s;
  if (a->ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: a: needs at least 1 dim", c->fn);
  if ((s = check_param(c, in, at, 1, "weight", a->shape[a->ndim - 1], "the last dim of a")))
    return s;
  set_out(out, a->dtype, a->ndim, a->shape);
  return MT_OK;
}

/* a [N, C, *]: at least 2 dims, floating. */
static mt_status check_channels(const infer_ctx *c, const char *arg, const mti_meta *a) {
  mt_status s = check_float_input(c, arg, a);
  if (s) return s;
  if (a->ndim < 2)
    return mti_error(MT_ERR_SHAPE, "%s: %s: must be [N, C, *] (at least 2 dims), got %d dims",
                     c->fn, arg, a->ndim);
  return MT_OK;
}

static mt_status infer_group_norm(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                  mti_meta *out) {
  const mti_meta *a = &in[0];
  mt_status s = check_channels(c, "a", a);
  if (s || (s = check_eps(c, at->s0)) || (s = check_n_ints(c, "groups", at, 1))) return s;
  int64_t channels = a->shape[1], groups = at->ints[0];
  if (groups <= 0 || channels % groups)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: groups: %lld must be > 0 and divide the %lld "
                     "channels (dim 1 of a)", c->fn, (long long)groups, (long long)channels);
  if ((s = check_param(c, in, at, 1, "weight", channels, "the channels of a")) ||
      (s = check_param(c, in, at, 2, "bias", channels, "the channels of a")))
    return s;
  set_out(&out[0], a->dtype, a->ndim, a->shape);
  int64_t stats[2] = {a->shape[0], groups};
  set_out(&out[1], compute_dtype(a->dtype), 2, stats);
  out[2] = out[1];
  return MT_OK;
}

/* Training (no running stats) needs more than one value per channel, for
 * the unbiased variance of the running update (PyTorch's check). */
static mt_status infer_batch_norm(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                  mti_meta *out) {
  const mti_meta *x = &in[0];
  mt_status s = check_channels(c, "x", x);
  if (s || (s = check_eps(c, at->s0))) return s;
  int has_mean = mti_input_present(c->info, at, 1), has_var = mti_input_present(c->info, at, 2);
  if (has_mean != has_var)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: running_mean, running_var: give both or "
                     "neither", c->fn);
  int64_t channels = x->shape[1];
  static const char *const names[] = {"x", "running_mean", "running_var", "weight", "bias"};
  for (int i = 1; i < 5; i++)
    if ((s = check_param(c, in, at, i, names[i], channels, "the channels of x"))) return s;
  int64_t per_channel = x->shape[0];
  for (int d = 2; d < x->ndim; d++) per_channel *= x->shape[d];
  if (!has_mean && per_channel <= 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: x: training needs more than 1 value per "
                     "channel, got %lld", c->fn, (long long)per_channel);
  set_out(&out[0], x->dtype, x->ndim, x->shape);
  set_out(&out[1], compute_dtype(x->dtype), 1, &channels);
  out[2] = out[1];
  return MT_OK;
}

/* logits [N, C, d...] with target [N, d...] (int64), or [C] with a 0-d
 * target; label_smoothing in [0, 1]. */
static mt_status infer_cross_entropy(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                     mti_meta *out) {
  const mti_meta *x = &in[0], *t = &in[1];
  mt_status s = check_float_input(c, "logits", x);
  if (s || (s = check_n_ints(c, "ignore_index", at, 1))) return s;
  if (t->dtype != MT_INT64)
    return mti_error(MT_ERR_DTYPE, "%s: target: dtype %s, expected int64 class indices", c->fn,
                     mt_dtype_name(t->dtype));
  if (!(at->s0 >= 0.0 && at->s0 <= 1.0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: label_smoothing: %g is outside [0, 1]", c->fn,
                     at->s0);
  if (x->ndim < 1)
    return mti_error(MT_ERR_SHAPE, "%s: logits: must be [C] or [N, C, d...], got 0 dims", c->fn);
  int cdim = x->ndim == 1 ? 0 : 1;
  int match = t->ndim == x->ndim - 1;
  for (int d = 0, k = 0; match && d < x->ndim; d++)
    if (d != cdim) match = t->shape[k++] == x->shape[d];
  if (!match) {
    char sx[160], st[160];
    return mti_error(MT_ERR_SHAPE, "%s: target: shape %s, expected logits' %s without dim %d "
                     "(the classes)", c->fn, mti_shape_str(st, sizeof st, t->ndim, t->shape),
                     mti_shape_str(sx, sizeof sx, x->ndim, x->shape), cdim);
  }
  if (x->shape[cdim] == 0)
    return mti_error(MT_ERR_SHAPE, "%s: logits: dim %d (the classes) is empty", c->fn, cdim);
  set_out(&out[0], x->dtype, 0, NULL);
  set_out(&out[1], compute_dtype(x->dtype), t->ndim, t->shape);
  return MT_OK;
}

/* ---- rules: convolution and pooling (0.2) ---- */

/* Attribute values past this are refused: window arithmetic then stays far
 * from int64 overflow (extents are at most 2^62). */
#define CONV_ATTR_MAX ((int64_t)1 << 31)

static mt_status check_int_range(const infer_ctx *c, const char *arg, int64_t v, int64_t lo) {
  if (v < lo || v > CONV_ATTR_MAX)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %lld is outside [%lld, %lld]", c->fn, arg,
                     (long long)v, (long long)lo, (long long)CONV_ATTR_MAX);
  return MT_OK;
}

/* in0, in1 (and in2 when present) of one floating dtype. */
static mt_status check_conv_dtypes(const infer_ctx *c, const mti_meta *in, const mti_attrs *at) {
  static const char *const names[3] = {"x", "weight", "bias"};
  mt_status s = check_float_input(c, "x", &in[0]);
  if (s) return s;
  for (int i = 1; i < 3; i++) {
    if (!mti_input_present(c->info, at, i) || in[i].dtype == in[0].dtype) continue;
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected x's %s", c->fn, names[i],
                     mt_dtype_name(in[i].dtype), mt_dtype_name(in[0].dtype));
  }
  return MT_OK;
}

/* stride >= 1, padding >= 0, dilation >= 1 for each spatial dim, groups >= 1. */
static mt_status check_conv_ints(const infer_ctx *c, mti_op op, const mti_attrs *at) {
  int sp = op == MTI_OP_CONV1D ? 1 : 2;
  mt_status s = check_n_ints(c, "stride, padding, dilation, groups", at, 3 * sp + 1);
  for (int d = 0; d < sp && !s; d++) {
    if ((s = check_int_range(c, "stride", at->ints[d], 1))) break;
    if ((s = check_int_range(c, "padding", at->ints[sp + d], 0))) break;
    s = check_int_range(c, "dilation", at->ints[2 * sp + d], 1);
  }
  if (!s) s = check_int_range(c, "groups", at->ints[3 * sp], 1);
  return s;
}

/* Output extent of one spatial dim, or an error naming the input and
 * kernel sizes (torch's "kernel size can't be greater than actual input"). */
static mt_status window_out(const infer_ctx *c, int64_t in, int64_t k, int64_t stride,
                            int64_t pad, int64_t dil, int64_t *out) {
  if (k - 1 > (INT64_MAX / 4) / dil)
    return mti_error(MT_ERR_SHAPE, "%s: kernel: %lld taps at dilation %lld is too long", c->fn,
                     (long long)k, (long long)dil);
  *out = mti_window_out(in, k, stride, pad, dil);
  if (*out < 1)
    return mti_error(MT_ERR_SHAPE, "%s: padded input size %lld is smaller than the dilated "
                     "kernel size %lld", c->fn, (long long)(in + 2 * pad),
                     (long long)(dil * (k - 1) + 1));
  return MT_OK;
}

static mt_status infer_conv(const infer_ctx *c, mti_op op, const mti_meta *in,
                            const mti_attrs *at, mti_meta *out) {
  int rank = op == MTI_OP_CONV1D ? 3 : 4;
  const mti_meta *x = &in[0], *w = &in[1];
  mt_status s = check_conv_dtypes(c, in, at);
  if (s || (s = check_conv_ints(c, op, at))) return s;
  if (x->ndim != rank || w->ndim != rank)
    return mti_error(MT_ERR_SHAPE, "%s: x and weight must be %d-d ([N, C, %s] and [out, "
                     "C / groups, %s]), got %d-d and %d-d", c->fn, rank,
                     rank == 3 ? "L" : "H, W", rank == 3 ? "k" : "kh, kw", x->ndim, w->ndim);
  int64_t groups = at->ints[rank == 3 ? 3 : 6];
  if (x->shape[1] < 1 || x->shape[1] % groups)
    return mti_error(MT_ERR_SHAPE, "%s: x: %lld channels, expected a positive multiple of "
                     "groups (%lld)", c->fn, (long long)x->shape[1], (long long)groups);
  if (w->shape[0] % groups || w->shape[1] != x->shape[1] / groups)
    return mti_error(MT_ERR_SHAPE, "%s: weight: shape [%lld, %lld, ...], expected [a multiple "
                     "of groups (%lld), %lld (x's channels / groups), ...]", c->fn,
                     (long long)w->shape[0], (long long)w->shape[1], (long long)groups,
                     (long long)(x->shape[1] / groups));
  if (mti_input_present(c->info, at, 2) && (in[2].ndim != 1 || in[2].shape[0] != w->shape[0]))
    return mti_error(MT_ERR_SHAPE, "%s: bias: must be 1-d of size %lld (weight's out channels)",
                     c->fn, (long long)w->shape[0]);
  set_out(out, x->dtype, rank, x->shape);
  out->shape[1] = w->shape[0];
  int sp = rank - 2;
  for (int d = 0; d < sp; d++) {
    if (w->shape[2 + d] < 1)
      return mti_error(MT_ERR_SHAPE, "%s: weight: kernel size 0", c->fn);
    if ((s = window_out(c, x->shape[2 + d], w->shape[2 + d], at->ints[d], at->ints[sp + d],
                        at->ints[2 * sp + d], &out->shape[2 + d])))
      return s;
  }
  return MT_OK;
}

/* The conv2d attributes of a CONV_GRAD node and its two extents (x's H, W
 * or the weight's kh, kw), each >= 1. */
static mt_status check_conv_grad_ints(const infer_ctx *c, mti_op op, const mti_attrs *at) {
  mt_status s = check_n_ints(c, "stride, padding, dilation, groups, extents", at,
                             MTI_CONV_GRAD_N_INTS);
  const char *extent = op == MTI_OP_CONV2D_INPUT_GRAD ? "input size" : "kernel size";
  for (int d = 0; d < 2 && !s; d++) {
    if ((s = check_int_range(c, "stride", at->ints[d], 1))) break;
    if ((s = check_int_range(c, "padding", at->ints[2 + d], 0))) break;
    if ((s = check_int_range(c, "dilation", at->ints[4 + d], 1))) break;
    s = check_int_range(c, extent, at->ints[7 + d], 1);
  }
  if (!s) s = check_int_range(c, "groups", at->ints[6], 1);
  return s;
}

/* dy [N, O, OH, OW] and the other operand (weight or x), 4-d, one floating dtype. */
static mt_status check_conv_grad_operands(const infer_ctx *c, const char *other,
                                          const mti_meta *in, int64_t groups) {
  mt_status s = check_float_input(c, "grad_output", &in[0]);
  if (s) return s;
  if (in[1].dtype != in[0].dtype)
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected grad_output's %s", c->fn, other,
                     mt_dtype_name(in[1].dtype), mt_dtype_name(in[0].dtype));
  if (in[0].ndim != 4 || in[1].ndim != 4)
    return mti_error(MT_ERR_SHAPE, "%s: grad_output and %s must be 4-d, got %d-d and %d-d",
                     c->fn, other, in[0].ndim, in[1].ndim);
  if (in[0].shape[1] % groups)
    return mti_error(MT_ERR_SHAPE, "%s: grad_output: %lld channels, expected a multiple of "
                     "groups (%lld)", c->fn, (long long)in[0].shape[1], (long long)groups);
  return MT_OK;
}

/* dy's spatial extents must be the forward's output for the geometry. */
static mt_status check_conv_grad_extents(const infer_ctx *c, const mti_attrs *at,
                                         const int64_t *in_hw, const int64_t *k_hw,
                                         const mti_meta *dy) {
  for (int d = 0; d < 2; d++) {
    int64_t o = 0;
    mt_status s = window_out(c, in_hw[d], k_hw[d], at->ints[d], at->ints[2 + d],
                             at->ints[4 + d], &o);
    if (s) return s;
    if (o != dy->shape[2 + d])
      return mti_error(MT_ERR_SHAPE, "%s: grad_output: spatial dim %d is %lld, the forward's "
                       "output has %lld", c->fn, d, (long long)dy->shape[2 + d], (long long)o);
  }
  return MT_OK;
}

static mt_status infer_conv_grad(const infer_ctx *c, mti_op op, const mti_meta *in,
                                 const mti_attrs *at, mti_meta *out) {
  int input_grad = op == MTI_OP_CONV2D_INPUT_GRAD;
  const char *other = input_grad ? "weight" : "x";
  mt_status s = check_conv_grad_ints(c, op, at);
  if (s || (s = check_conv_grad_operands(c, other, in, at->ints[6]))) return s;
  const mti_meta *dy = &in[0], *b = &in[1];
  int64_t groups = at->ints[6];
  if (input_grad) {
    if (b->shape[0] != dy->shape[1] || b->shape[1] < 1 || b->shape[1] > INT64_MAX / groups ||
        b->shape[2] < 1 || b->shape[3] < 1)
      return mti_error(MT_ERR_SHAPE, "%s: weight: shape [%lld, %lld, ...], expected "
                       "[grad_output's %lld channels, C / groups >= 1, kh >= 1, kw >= 1]", c->fn,
                       (long long)b->shape[0], (long long)b->shape[1],
                       (long long)dy->shape[1]);
    if ((s = check_conv_grad_extents(c, at, &at->ints[7], &b->shape[2], dy))) return s;
    set_out(out, dy->dtype, 4, (const int64_t[]){dy->shape[0], b->shape[1] * groups,
                                                 at->ints[7], at->ints[8]});
    return MT_OK;
  }
  if (b->shape[0] != dy->shape[0] || b->shape[1] < 1 || b->shape[1] % groups)
    return mti_error(MT_ERR_SHAPE, "%s: x: shape [%lld, %lld, ...], expected [grad_output's "
                     "%lld images, a positive multiple of groups (%lld), ...]", c->fn,
                     (long long)b->shape[0], (long long)b->shape[1], (long long)dy->shape[0],
                     (long long)groups);
  if ((s = check_conv_grad_extents(c, at, &b->shape[2], &at->ints[7], dy))) return s;
  set_out(out, dy->dtype, 4, (const int64_t[]){dy->shape[1], b->shape[1] / groups, at->ints[7],
                                               at->ints[8]});
  return MT_OK;
}

/* 3-d [C, H, W] or 4-d [N, C, H, W] floating input, every dim but N non-empty. */
static mt_status check_pool_input(const infer_ctx *c, const mti_meta *a) {
  mt_status s = check_float_input(c, "x", a);
  if (s) return s;
  if (a->ndim != 3 && a->ndim != 4)
    return mti_error(MT_ERR_SHAPE, "%s: x: expected 3-d [C, H, W] or 4-d [N, C, H, W], got "
                     "%d-d", c->fn, a->ndim);
  for (int d = a->ndim - 3; d < a->ndim; d++)
    if (a->shape[d] == 0)
      return mti_error(MT_ERR_SHAPE, "%s: x: dim %d is empty (only the batch may be)", c->fn,
                       d);
  return MT_OK;
}

/* kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2 (torch's rule). */
static mt_status infer_pool2d(const infer_ctx *c, const mti_meta *a, const mti_attrs *at,
                              mti_meta *out) {
  mt_status s = check_pool_input(c, a);
  if (s || (s = check_n_ints(c, "kernel_size, stride, padding", at, 6))) return s;
  set_out(&out[0], a->dtype, a->ndim, a->shape);
  for (int d = 0; d < 2 && !s; d++) {
    int64_t k = at->ints[d], pad = at->ints[4 + d];
    if ((s = check_int_range(c, "kernel_size", k, 1)) ||
        (s = check_int_range(c, "stride", at->ints[2 + d], 1)) ||
        (s = check_int_range(c, "padding", pad, 0)))
      return s;
    if (pad > k / 2)
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: padding: %lld, at most half the kernel "
                       "size %lld", c->fn, (long long)pad, (long long)k);
    s = window_out(c, a->shape[a->ndim - 2 + d], k, at->ints[2 + d], pad, 1,
                   &out[0].shape[a->ndim - 2 + d]);
  }
  if (s) return s;
  if (c->info->nout == 2) {
    out[1] = out[0];
    out[1].dtype = MT_INT64;
  }
  return MT_OK;
}

static mt_status infer_adaptive_pool2d(const infer_ctx *c, const mti_meta *a,
                                       const mti_attrs *at, mti_meta *out) {
  mt_status s = check_pool_input(c, a);
  if (s || (s = check_n_ints(c, "output_size", at, 2))) return s;
  set_out(out, a->dtype, a->ndim, a->shape);
  for (int d = 0; d < 2; d++) {
    int64_t size = at->ints[d], in = a->shape[a->ndim - 2 + d];
    if ((s = check_int_range(c, "output_size", size, 0))) return s;
    if (in > INT64_MAX / 4 / (size + 1)) /* mti_adaptive_end's (i + 1) * in */
      return mti_error(MT_ERR_SHAPE, "%s: output_size: %lld windows over %lld is too many",
                       c->fn, (long long)size, (long long)in);
    out->shape[a->ndim - 2 + d] = size;
  }
  return MT_OK;
}

/* ---- rules: neural-network ops (0.2) ---- */

static mt_status check_attention_operand(const infer_ctx *c, const char *arg, const mti_meta *m,
                                         mt_dtype dtype) {
  if (m->ndim < 2)
    return mti_error(MT_ERR_SHAPE, "%s: %s: needs at least 2 dims ([..., len, features]), got %d",
                     c->fn, arg, m->ndim);
  if (m->dtype != dtype)
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected %s (query's)", c->fn, arg,
                     mt_dtype_name(m->dtype), mt_dtype_name(dtype));
  return MT_OK;
}

/* The mask: bool (true keeps) or an additive float of q's dtype or
 * float32, broadcasting to the scores' shape without growing it. */
static mt_status check_attention_mask(const infer_ctx *c, const mti_meta *mask, mt_dtype qt,
                                      int ndim, const int64_t *scores) {
  if (mask->dtype != MT_BOOL && mask->dtype != qt && mask->dtype != MT_FLOAT32)
    return mti_error(MT_ERR_DTYPE, "%s: attn_mask: dtype %s, expected bool, float32%s%s", c->fn,
                     mt_dtype_name(mask->dtype), qt == MT_FLOAT32 ? "" : " or ",
                     qt == MT_FLOAT32 ? "" : mt_dtype_name(qt));
  int bn;
  int64_t b[MT_MAX_DIMS];
  mt_status s = mti_shape_broadcast(c->fn, mask->ndim, mask->shape, ndim, scores, &bn, b);
  if (s || bn != ndim || !mti_shape_equal(ndim, b, scores)) {
    char sm[160], ss[160];
    return mti_error(MT_ERR_SHAPE, "%s: attn_mask: %s does not broadcast to the scores' %s",
                     c->fn, mti_shape_str(sm, sizeof sm, mask->ndim, mask->shape),
                     mti_shape_str(ss, sizeof ss, ndim, scores));
  }
  return MT_OK;
}

/* q [..., L, E], k [..., S, E], v [..., S, Ev] (batch dims broadcast) give
 * out0 [..., L, Ev] in q's floating dtype and out1 [..., L] float32. */
static mt_status infer_attention(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                 mti_meta *out) {
  const mti_meta *q = &in[0], *k = &in[1], *v = &in[2];
  mt_status s = check_float_input(c, "query", q);
  if (s || (s = check_attention_operand(c, "query", q, q->dtype)) ||
      (s = check_attention_operand(c, "key", k, q->dtype)) ||
      (s = check_attention_operand(c, "value", v, q->dtype)))
    return s;
  int64_t len = q->shape[q->ndim - 2], e = q->shape[q->ndim - 1];
  int64_t keys = k->shape[k->ndim - 2], ev = v->shape[v->ndim - 1];
  if (k->shape[k->ndim - 1] != e)
    return mti_error(MT_ERR_SHAPE, "%s: key: %lld features, query has %lld", c->fn,
                     (long long)k->shape[k->ndim - 1], (long long)e);
  if (v->shape[v->ndim - 2] != keys)
    return mti_error(MT_ERR_SHAPE, "%s: value: %lld rows, key has %lld", c->fn,
                     (long long)v->shape[v->ndim - 2], (long long)keys);
  if (!isnan(at->s0) && !isfinite(at->s0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: scale: %g must be finite (NaN: 1/sqrt(E))",
                     c->fn, at->s0);
  int has_mask = mti_input_present(c->info, at, 3);
  if (has_mask && (at->flags & MTI_FLAG_CAUSAL))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: attn_mask and is_causal cannot both be set",
                     c->fn);
  int nb;
  int64_t shape[MT_MAX_DIMS + 2];
  if ((s = mti_shape_broadcast(c->fn, q->ndim - 2, q->shape, k->ndim - 2, k->shape, &nb, shape)) ||
      (s = mti_shape_broadcast(c->fn, nb, shape, v->ndim - 2, v->shape, &nb, shape)))
    return s;
  if (nb + 2 > MT_MAX_DIMS)
    return mti_error(MT_ERR_SHAPE, "%s: the result would have more than %d dims", c->fn,
                     MT_MAX_DIMS);
  shape[nb] = len;
  shape[nb + 1] = keys;
  if (has_mask && (s = check_attention_mask(c, &in[3], q->dtype, nb + 2, shape))) return s;
  shape[nb + 1] = ev;
  set_out(&out[0], q->dtype, nb + 2, shape);
  set_out(&out[1], MT_FLOAT32, nb + 1, shape);
  return MT_OK;
}

static mt_status check_arity(const infer_ctx *c, const mti_op_info *info, int n,
                             const mti_meta *in) {
  if (info->arity >= 0 ? n != info->arity : n < 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: takes %d inputs, got %d", c->fn, info->arity, n);
  if (n > 0 && !in) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: inputs: NULL", c->fn);
  return MT_OK;
}

/* x [..., k] @ weight^T [k, n] (+ bias [n]) -> [..., n], all floating. */
static mt_status infer_linear(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                              mti_meta *out) {
  const mti_meta *x = &in[0], *w = &in[1], *b = &in[2];
  int has_bias = mti_input_present(c->info, at, 2);
  mt_status s;
  if ((s = check_float_input(c, "x", x)) || (s = check_float_input(c, "weight", w)) ||
      (has_bias && (s = check_float_input(c, "bias", b))))
    return s;
  if (x->ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: x: needs at least 1 dim", c->fn);
  int64_t k = x->shape[x->ndim - 1];
  if (w->ndim != 2 || w->shape[1] != k) {
    char sx[160], sw[160];
    return mti_error(MT_ERR_SHAPE, "%s: weight: must be [out, %lld] for x %s, got %s", c->fn,
                     (long long)k, mti_shape_str(sx, sizeof sx, x->ndim, x->shape),
                     mti_shape_str(sw, sizeof sw, w->ndim, w->shape));
  }
  if (has_bias && (b->ndim != 1 || b->shape[0] != w->shape[0]))
    return mti_error(MT_ERR_SHAPE, "%s: bias: must be 1-d of size %lld (weight's rows)", c->fn,
                     (long long)w->shape[0]);
  mt_dtype dt = mti_promote(x->dtype, w->dtype);
  if (has_bias) dt = mti_promote(dt, b->dtype);
  int64_t shape[MT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  shape[x->ndim - 1] = w->shape[0];
  set_out(out, dt, x->ndim, shape);
  return MT_OK;
}

/* ---- rules: optimizer updates (issue 12) ---- */

/* A finite scalar attribute >= lo (and < hi when hi is not NaN). */
static mt_status check_coef(const infer_ctx *c, const char *arg, double v, double lo, double hi) {
  if (!isfinite(v) || v < lo || (!isnan(hi) && v >= hi)) {
    if (isnan(hi))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %g must be finite and >= %g", c->fn, arg,
                       v, lo);
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %g is outside [%g, %g)", c->fn, arg, v, lo,
                     hi);
  }
  return MT_OK;
}

/* in[i] of the param's dtype and shape (gradients and state). */
static mt_status check_like_param(const infer_ctx *c, const mti_meta *in, int i,
                                  const char *name) {
  const mti_meta *p = &in[0], *t = &in[i];
  if (t->dtype != p->dtype)
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected the param's %s", c->fn, name,
                     mt_dtype_name(t->dtype), mt_dtype_name(p->dtype));
  if (t->ndim != p->ndim || !mti_shape_equal(p->ndim, t->shape, p->shape)) {
    char sp[160], st[160];
    return mti_error(MT_ERR_SHAPE, "%s: %s: shape %s, expected the param's %s", c->fn, name,
                     mti_shape_str(st, sizeof st, t->ndim, t->shape),
                     mti_shape_str(sp, sizeof sp, p->ndim, p->shape));
  }
  return MT_OK;
}

static mt_status infer_sgd_step(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                mti_meta *out) {
  mt_status s;
  if ((s = check_float_input(c, "param", &in[0])) || (s = check_like_param(c, in, 1, "grad")) ||
      (s = check_n_ints(c, "nesterov", at, 1)) || (s = check_coef(c, "lr", at->s0, 0, NAN)) ||
      (s = check_coef(c, "momentum", at->s1, 0, NAN)) ||
      (s = check_coef(c, "weight_decay", at->s2, 0, NAN)))
    return s;
  int has_buf = mti_input_present(c->info, at, 2);
  if (at->ints[0] != 0 && at->ints[0] != 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: nesterov: %lld, expected 0 or 1", c->fn,
                     (long long)at->ints[0]);
  if (at->ints[0] && !(at->s1 > 0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: nesterov: needs momentum > 0", c->fn);
  if (has_buf && !(at->s1 > 0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: momentum_buffer: given with momentum 0",
                     c->fn);
  if (has_buf && (s = check_like_param(c, in, 2, "momentum_buffer"))) return s;
  set_out(&out[0], in[0].dtype, in[0].ndim, in[0].shape);
  static const int64_t none[1] = {0};
  if (at->s1 > 0)
    out[1] = out[0];
  else
    set_out(&out[1], in[0].dtype, 1, none);
  return MT_OK;
}

static mt_status infer_adamw_step(const infer_ctx *c, const mti_meta *in, const mti_attrs *at,
                                  mti_meta *out) {
  mt_status s;
  if ((s = check_float_input(c, "param", &in[0])) || (s = check_like_param(c, in, 1, "grad")) ||
      (s = check_like_param(c, in, 2, "exp_avg")) ||
      (s = check_like_param(c, in, 3, "exp_avg_sq")) ||
      (s = check_n_ints(c, "eps, weight_decay", at, 2)) ||
      (s = check_coef(c, "lr", at->s0, 0, NAN)) || (s = check_coef(c, "beta1", at->s1, 0, 1)) ||
      (s = check_coef(c, "beta2", at->s2, 0, 1)))
    return s;
  if (in[4].dtype != MT_FLOAT64 || in[4].ndim != 0)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: step: must be a 0-d float64 tensor, got %d-d %s",
                     c->fn, in[4].ndim, mt_dtype_name(in[4].dtype));
  double eps, wd;
  memcpy(&eps, &at->ints[0], sizeof eps);
  memcpy(&wd, &at->ints[1], sizeof wd);
  if ((s = check_coef(c, "eps", eps, 0, NAN)) || (s = check_coef(c, "weight_decay", wd, 0, NAN)))
    return s;
  for (int k = 0; k < 3; k++) set_out(&out[k], in[0].dtype, in[0].ndim, in[0].shape);
  set_out(&out[3], MT_FLOAT64, 0, NULL);
  return MT_OK;
}

/* ---- rules: fused norm backwards (issue 12) ---- */

/* dy floating, x of its dtype and shape (the rules cast an integer x). */
static mt_status check_dy_like_x(const infer_ctx *c, const mti_meta *in) {
  const mti_meta *dy = &in[0], *x = &in[1];
  mt_status s = check_float_input(c, "dy", dy);
  if (s) return s;
  if (x->dtype != dy->dtype)
    return mti_error(MT_ERR_DTYPE, "%s: x: dtype %s, expected dy's %s", c->fn,
                     mt_dtype_name(x->dtype), mt_dtype_name(dy->dtype));
  if (dy->ndim != x->ndim || !mti_shape_equal(x->ndim, dy->shape, x->shape)) {
    char sd[160], sx[160];
    return mti_error(MT_ERR_SHAPE, "%s: dy: shape %s, expected x's %s", c->fn,
                     mti_shape_str(sd, sizeof sd, dy->ndim, dy->shape),
                     mti_shape_str(sx, sizeof sx, x->ndim, x->shape));
  }
  return MT_OK;
}

/* in[i]: 1-d [n] of the compute dtype of dy (batch_norm's kept statistics). */
static mt_status check_stat(const infer_ctx *c, const mti_meta *in, int i, const char *name,
                            int64_t n) {
  mt_dtype want = compute_dtype(in[0].dtype);
  if (in[i].dtype != want)
    return mti_error(MT_ERR_DTYPE, "%s: %s: dtype %s, expected %s (batch_norm's statistics)",
                     c->fn, name, mt_dtype_name(in[i].dtype), mt_dtype_name(want));
  if (in[i].ndim != 1 || in[i].shape[0] != n)
    return mti_error(MT_ERR_SHAPE, "%s: %s: must be 1-d of size %lld (the channels of x)", c->fn,
                     name, (long long)n);
  return MT_OK;
}

static mt_status infer_batch_norm_backward(const infer_ctx *c, const mti_meta *in,
                                           const mti_attrs *at, mti_meta *out) {
  mt_status s = check_dy_like_x(c, in);
  if (s || (s = check_channels(c, "x", &in[1])) || (s = check_eps(c, at->s0)) ||
      (s = check_n_ints(c, "training", at, 1)))
    return s;
  if (at->ints[0] != 0 && at->ints[0] != 1)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: training: %lld, expected 0 or 1", c->fn,
                     (long long)at->ints[0]);
  int64_t channels = in[1].shape[1];
  if ((s = check_stat(c, in, 2, "mean", channels)) || (s = check_stat(c, in, 3, "var", channels)) ||
      (s = check_param(c, in, at, 4, "weight", channels, "the channels of x")))
    return s;
  set_out(&out[0], in[0].dtype, in[0].ndim, in[0].shape);
  set_out(&out[1], compute_dtype(in[0].dtype), 1, &channels);
  out[2] = out[1];
  return MT_OK;
}

/* layer_norm_backward (out: dx, dweight, dbias) and rms_norm_backward (dx,
 * dweight). */
static mt_status infer_row_norm_backward(const infer_ctx *c, mti_op op, const mti_meta *in,
                                         const mti_attrs *at, mti_meta *out) {
  mt_status s = check_dy_like_x(c, in);
  if (s || (s = check_eps(c, at->s0))) return s;
  if (in[1].ndim < 1) return mti_error(MT_ERR_SHAPE, "%s: x: needs at least 1 dim", c->fn);
  int64_t last = in[1].shape[in[1].ndim - 1];
  if ((s = check_param(c, in, at, 2, "weight", last, "the last dim of x"))) return s;
  set_out(&out[0], in[0].dtype, in[0].ndim, in[0].shape);
  set_out(&out[1], compute_dtype(in[0].dtype), 1, &last);
  if (op == MTI_OP_LAYER_NORM_BACKWARD) out[2] = out[1];
  return MT_OK;
}

/* g 0-d of the logits' dtype; logits, target and attrs as the forward's;
 * lse of the target's shape in the compute dtype. */
static mt_status infer_cross_entropy_backward(const infer_ctx *c, const mti_meta *in,
                                              const mti_attrs *at, mti_meta *out) {
  const mti_meta *g = &in[0], *x = &in[1], *lse = &in[3];
  mti_meta fwd[2];
  mt_status s = infer_cross_entropy(c, &in[1], at, fwd);
  if (s) return s;
  if (g->dtype != x->dtype || g->ndim != 0)
    return mti_error(MT_ERR_SHAPE, "%s: g: must be 0-d of the logits' dtype %s", c->fn,
                     mt_dtype_name(x->dtype));
  if (lse->dtype != fwd[1].dtype || lse->ndim != fwd[1].ndim ||
      !mti_shape_equal(lse->ndim, lse->shape, fwd[1].shape))
    return mti_error(MT_ERR_SHAPE, "%s: lse: must be %s of the target's shape (cross_entropy's "
                     "out1)", c->fn, mt_dtype_name(fwd[1].dtype));
  set_out(out, x->dtype, x->ndim, x->shape);
  return MT_OK;
}

/* The rule of each kind. No default: a new kind must get its rule here. */
static mt_status infer_kind(const infer_ctx *c, mti_op op, mti_op_kind kind, int n,
                            const mti_meta *in, const mti_attrs *at, mti_meta *out) {
  mt_status s;
  switch (kind) {
  case MTI_KIND_FILL:
  case MTI_KIND_ARANGE:
  case MTI_KIND_RANDOM: return infer_creation(c, op, at, out);
  case MTI_KIND_COPY:
  case MTI_KIND_CAST:
    if ((s = check_dtype(c, "dtype", at->dtype))) return s;
    return elementwise_out(c, n, in, (mt_dtype)at->dtype, out);
  case MTI_KIND_BINARY: {
    mt_dtype dt;
    if ((s = binary_dtype(c, op, in, &dt))) return s;
    return elementwise_out(c, n, in, dt, out);
  }
  case MTI_KIND_COMPARE:
  case MTI_KIND_LOGICAL: return elementwise_out(c, n, in, MT_BOOL, out);
  case MTI_KIND_SCALAR: return elementwise_out(c, n, in, scalar_dtype(in[0].dtype, at->s0), out);
  case MTI_KIND_UNARY:
    if (in[0].dtype == MT_BOOL && op == MTI_OP_NEG)
      return mti_error(MT_ERR_DTYPE, "%s: a: not supported for bool (use mt_logical_not)", c->fn);
    return elementwise_out(c, n, in, in[0].dtype, out);
  case MTI_KIND_UNARY_FLOAT: return elementwise_out(c, n, in, float_result(in[0].dtype), out);
  case MTI_KIND_WHERE:
    return elementwise_out(c, n, in, mti_promote(in[1].dtype, in[2].dtype), out);
  case MTI_KIND_CLAMP:
    if (isnan(at->s0) || isnan(at->s1))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: lo, hi: NaN is not a bound", c->fn);
    return elementwise_out(c, n, in, in[0].dtype, out);
  case MTI_KIND_REDUCE: return infer_reduce(c, op, &in[0], at, out);
  case MTI_KIND_ARGREDUCE: return infer_argreduce(c, &in[0], at, out);
  case MTI_KIND_SOFTMAX:
    if ((s = check_dim(c, "dim", at->dim, in[0].ndim))) return s;
    set_out(out, float_result(in[0].dtype), in[0].ndim, in[0].shape);
    return MT_OK;
  case MTI_KIND_LAYER_NORM: return infer_layer_norm(c, in, at, out);
  case MTI_KIND_MATMUL: return infer_matmul(c, &in[0], &in[1], out);
  case MTI_KIND_CAT: return infer_cat(c, n, in, at, out);
  case MTI_KIND_INDEX_SELECT: return infer_index_select(c, &in[0], &in[1], at, out);

  /* ---- general elementwise (0.2) ---- */
  case MTI_KIND_BITWISE: return infer_bitwise(c, n, in, out);
  case MTI_KIND_PREDICATE: return elementwise_out(c, n, in, MT_BOOL, out);
  case MTI_KIND_BINARY_FLOAT:
    return elementwise_out(c, n, in, float_result(mti_promote(in[0].dtype, in[1].dtype)), out);
  case MTI_KIND_DIVISION: return infer_division(c, in, out);
  case MTI_KIND_UNARY_PARAM: return infer_unary_param(c, op, in, out);
  case MTI_KIND_MASKED_FILL: return infer_masked_fill(c, in, at, out);

  /* ---- reductions, scans, sorting (0.2) ---- */
  case MTI_KIND_REDUCE_FLOAT: return infer_reduce_float(c, op, &in[0], at, out);
  case MTI_KIND_REDUCE_BOOL:
    if ((s = check_dims_mask(c, &in[0], at->dims_mask))) return s;
    reduced_shape(&in[0], at->dims_mask, (at->flags & MTI_FLAG_KEEPDIM) != 0, out, MT_BOOL);
    return MT_OK;
  case MTI_KIND_EXTREME_DIM: return infer_extreme_dim(c, &in[0], at, out);
  case MTI_KIND_SCAN:
    if ((s = check_dim(c, "dim", at->dim, in[0].ndim))) return s;
    set_out(out, mti_dtype_is_float(in[0].dtype) ? in[0].dtype : MT_INT64, in[0].ndim,
            in[0].shape);
    return MT_OK;
  case MTI_KIND_SORT: return infer_sort(c, &in[0], at, out);
  case MTI_KIND_TOPK: return infer_topk(c, &in[0], at, out);

  /* ---- indexing, shape, creation, sampling (0.2) ---- */
  case MTI_KIND_EYE:
  case MTI_KIND_LINSPACE:
  case MTI_KIND_RANDINT: return infer_index_creation(c, op, at, out);
  case MTI_KIND_GATHER:
    if ((s = check_scatter_index(c, &in[0], &in[1], NULL, at->dim))) return s;
    set_out(out, in[0].dtype, in[1].ndim, in[1].shape);
    return MT_OK;
  case MTI_KIND_SCATTER:
    if ((s = check_scatter_index(c, &in[0], &in[1], &in[2], at->dim))) return s;
    set_out(out, in[0].dtype, in[0].ndim, in[0].shape);
    return MT_OK;
  case MTI_KIND_INDEX_ADD: return infer_index_add(c, in, at, out);
  case MTI_KIND_EMBEDDING:
  case MTI_KIND_ONE_HOT: return infer_index_plus_dim(c, op, in, at, out);
  case MTI_KIND_REMAP: return infer_remap(c, op, &in[0], at, out);
  case MTI_KIND_TRIANGLE:
    if ((s = check_n_ints(c, "diagonal", at, 1))) return s;
    if (in[0].ndim < 2)
      return mti_error(MT_ERR_SHAPE, "%s: a: needs at least 2 dims, got %d", c->fn, in[0].ndim);
    set_out(out, in[0].dtype, in[0].ndim, in[0].shape);
    return MT_OK;
  case MTI_KIND_MULTINOMIAL: return infer_multinomial(c, &in[0], at, out);
  case MTI_KIND_DROPOUT:
    if ((s = check_float_input(c, "a", &in[0]))) return s;
    if (!(at->s0 >= 0.0 && at->s0 <= 1.0))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: p: %g is outside [0, 1]", c->fn, at->s0);
    set_out(out, in[0].dtype, in[0].ndim, in[0].shape);
    return MT_OK;

  /* ---- neural-network ops (0.2) ---- */
  case MTI_KIND_LINEAR: return infer_linear(c, in, at, out);
  /* ---- neural-network ops (0.2): normalisations and losses ---- */
  case MTI_KIND_RMS_NORM: return infer_rms_norm(c, in, at, out);
  case MTI_KIND_GROUP_NORM: return infer_group_norm(c, in, at, out);
  case MTI_KIND_BATCH_NORM: return infer_batch_norm(c, in, at, out);
  case MTI_KIND_CROSS_ENTROPY: return infer_cross_entropy(c, in, at, out);
  /* ---- convolution and pooling (0.2) ---- */
  case MTI_KIND_CONV: return infer_conv(c, op, in, at, out);
  case MTI_KIND_POOL2D: return infer_pool2d(c, &in[0], at, out);
  case MTI_KIND_ADAPTIVE_POOL2D: return infer_adaptive_pool2d(c, &in[0], at, out);
  case MTI_KIND_ATTENTION: return infer_attention(c, in, at, out);
  /* ---- optimizer updates (issue 12) ---- */
  case MTI_KIND_SGD_STEP: return infer_sgd_step(c, in, at, out);
  case MTI_KIND_ADAMW_STEP: return infer_adamw_step(c, in, at, out);
  /* ---- fused norm backwards (issue 12) ---- */
  case MTI_KIND_BATCH_NORM_BACKWARD: return infer_batch_norm_backward(c, in, at, out);
  case MTI_KIND_ROW_NORM_BACKWARD: return infer_row_norm_backward(c, op, in, at, out);
  case MTI_KIND_CROSS_ENTROPY_BACKWARD: return infer_cross_entropy_backward(c, in, at, out);
  /* ---- convolution backward (issue 12) ---- */
  case MTI_KIND_CONV_GRAD: return infer_conv_grad(c, op, in, at, out);
  }
  return mti_error(MT_ERR_INTERNAL, "%s: kind %d has no inference rule", c->fn, (int)kind);
}

mt_status mti_infer(mti_op op, int n, const mti_meta *in, const mti_attrs *at, mti_meta *out) {
  const mti_op_info *info = mti_op_get((int)op);
  if (!info) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_op: op: %d is not an op", (int)op);
  infer_ctx c = {info->fn, info};
  mt_status s = check_arity(&c, info, n, in);
  if (s) return s;
  for (int i = 0; i < n; i++) {
    if (!mti_input_present(info, at, i)) continue; /* absent optional inputs carry no meta */
    if ((s = check_meta(&c, "input", &in[i]))) return s;
  }
  if ((s = infer_kind(&c, op, info->kind, n, in, at, out))) return s;
  /* Broadcasting and matmul batches can multiply sizes past what fits. */
  for (int k = 0; k < info->nout; k++)
    if ((s = mti_shape_check(c.fn, out[k].ndim, out[k].shape, mt_dtype_size(out[k].dtype))))
      return s;
  return MT_OK;
}
