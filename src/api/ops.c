/*
 * ops.c - the public op functions: argument translation into mti_attrs.
 *
 * The elementwise, reduction and softmax families are generated from
 * core/ops.def, so a new op of those kinds needs only its line there (and
 * its declaration in the public header).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/tensor_impl.h"
#include "core/error.h"

static const char *const ab_names[] = {"a", "b"};

static mt_tensor *unary(mti_op op, const mt_tensor *a, const mti_attrs *at) {
  return mti_run_op(op, 1, &a, ab_names, at);
}

static mt_tensor *binary(mti_op op, const mt_tensor *a, const mt_tensor *b) {
  const mt_tensor *in[2] = {a, b};
  mti_attrs at = {0};
  return mti_run_op(op, 2, in, ab_names, &at);
}

mt_status mti_dims_to_mask(const char *fn, const mt_tensor *a, int ndims, const int *dims,
                           uint32_t *mask) {
  if (ndims < 0 || ndims > MT_MAX_DIMS)
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: ndims: %d is outside 0..%d", fn, ndims,
                     MT_MAX_DIMS);
  if (ndims > 0 && !dims) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: dims: NULL", fn);
  if (ndims == 0) {
    *mask = a->ndim ? (uint32_t)((1u << a->ndim) - 1u) : 0u;
    return MT_OK;
  }
  *mask = 0;
  for (int i = 0; i < ndims; i++) {
    int d;
    if (a->ndim == 0 && (dims[i] == 0 || dims[i] == -1)) continue; /* a 0-d tensor's one dim */
    mt_status s = mti_dim_normalize(fn, "dims", dims[i], a->ndim, &d);
    if (s) return s;
    if (*mask >> d & 1u) return mti_error(MT_ERR_SHAPE, "%s: dims: dim %d appears twice", fn, d);
    *mask |= 1u << d;
  }
  return MT_OK;
}

mt_status mti_dim_of(const char *fn, const mt_tensor *a, int dim, int32_t *out) {
  int d = 0;
  if (a->ndim == 0 && (dim == 0 || dim == -1)) {
    *out = 0;
    return MT_OK;
  }
  mt_status s = mti_dim_normalize(fn, "dim", dim, a->ndim, &d);
  *out = d;
  return s;
}

/* ---- generated families ---- */

#define WRAP_BINARY(NAME, name) \
  mt_tensor *mt_##name(const mt_tensor *a, const mt_tensor *b) { return binary(MTI_OP_##NAME, a, b); }
#define WRAP_UNARY(NAME, name)                    \
  mt_tensor *mt_##name(const mt_tensor *a) {      \
    mti_attrs at = {0};                           \
    return unary(MTI_OP_##NAME, a, &at);          \
  }
#define WRAP_SCALAR(NAME, name)                            \
  mt_tensor *mt_##name(const mt_tensor *a, double s) {     \
    mti_attrs at = {0};                                    \
    at.s0 = s;                                             \
    return unary(MTI_OP_##NAME, a, &at);                   \
  }
#define WRAP_REDUCE(NAME, name)                                                         \
  mt_tensor *mt_##name(const mt_tensor *a, int ndims, const int *dims, int keepdim) {   \
    mti_attrs at = {0};                                                                 \
    if (mti_check_tensor("mt_" #name, "a", a) ||                                        \
        mti_dims_to_mask("mt_" #name, a, ndims, dims, &at.dims_mask))                       \
      return NULL;                                                                      \
    at.flags = keepdim ? MTI_FLAG_KEEPDIM : 0;                                          \
    return unary(MTI_OP_##NAME, a, &at);                                                \
  }
#define WRAP_ARGREDUCE(NAME, name)                                                      \
  mt_tensor *mt_##name(const mt_tensor *a, int dim, int keepdim) {                      \
    mti_attrs at = {0};                                                                 \
    if (mti_check_tensor("mt_" #name, "a", a) || mti_dim_of("mt_" #name, a, dim, &at.dim))  \
      return NULL;                                                                      \
    at.flags = keepdim ? MTI_FLAG_KEEPDIM : 0;                                          \
    return unary(MTI_OP_##NAME, a, &at);                                                \
  }
#define WRAP_SOFTMAX(NAME, name)                                                        \
  mt_tensor *mt_##name(const mt_tensor *a, int dim) {                                   \
    mti_attrs at = {0};                                                                 \
    if (mti_check_tensor("mt_" #name, "a", a) || mti_dim_of("mt_" #name, a, dim, &at.dim))  \
      return NULL;                                                                      \
    return unary(MTI_OP_##NAME, a, &at);                                                \
  }
#define WRAP_ARITY_1 WRAP_UNARY
#define WRAP_ARITY_2 WRAP_BINARY

#define WRAP_KIND_BINARY(N, n, A) WRAP_BINARY(N, n)
#define WRAP_KIND_COMPARE(N, n, A) WRAP_BINARY(N, n)
#define WRAP_KIND_LOGICAL(N, n, A) WRAP_ARITY_##A(N, n)
#define WRAP_KIND_SCALAR(N, n, A) WRAP_SCALAR(N, n)
#define WRAP_KIND_UNARY(N, n, A) WRAP_UNARY(N, n)
#define WRAP_KIND_UNARY_FLOAT(N, n, A) WRAP_UNARY(N, n)
#define WRAP_KIND_REDUCE(N, n, A) WRAP_REDUCE(N, n)
#define WRAP_KIND_ARGREDUCE(N, n, A) WRAP_ARGREDUCE(N, n)
#define WRAP_KIND_SOFTMAX(N, n, A) WRAP_SOFTMAX(N, n)
/* Written by hand below (or in tensor.c): their signatures are their own. */
#define WRAP_KIND_FILL(N, n, A)
#define WRAP_KIND_ARANGE(N, n, A)
#define WRAP_KIND_RANDOM(N, n, A)
#define WRAP_KIND_COPY(N, n, A)
#define WRAP_KIND_WHERE(N, n, A)
#define WRAP_KIND_CLAMP(N, n, A)
#define WRAP_KIND_CAST(N, n, A)
#define WRAP_KIND_LAYER_NORM(N, n, A)
#define WRAP_KIND_MATMUL(N, n, A)
#define WRAP_KIND_CAT(N, n, A)
#define WRAP_KIND_INDEX_SELECT(N, n, A)
/* ---- general elementwise (0.2); UNARY_PARAM and MASKED_FILL: ops_elementwise.c ---- */
#define WRAP_KIND_BITWISE(N, n, A) WRAP_ARITY_##A(N, n)
#define WRAP_KIND_PREDICATE(N, n, A) WRAP_UNARY(N, n)
#define WRAP_KIND_BINARY_FLOAT(N, n, A) WRAP_BINARY(N, n)
#define WRAP_KIND_DIVISION(N, n, A) WRAP_BINARY(N, n)
#define WRAP_KIND_UNARY_PARAM(N, n, A)
#define WRAP_KIND_MASKED_FILL(N, n, A)
/* ---- indexing, shape, creation, sampling (0.2): in api/ops_index.c ---- */
#define WRAP_KIND_EYE(N, n, A)
#define WRAP_KIND_LINSPACE(N, n, A)
#define WRAP_KIND_RANDINT(N, n, A)
#define WRAP_KIND_GATHER(N, n, A)
#define WRAP_KIND_SCATTER(N, n, A)
#define WRAP_KIND_INDEX_ADD(N, n, A)
#define WRAP_KIND_EMBEDDING(N, n, A)
#define WRAP_KIND_ONE_HOT(N, n, A)
#define WRAP_KIND_REMAP(N, n, A)
#define WRAP_KIND_TRIANGLE(N, n, A)
#define WRAP_KIND_MULTINOMIAL(N, n, A)
#define WRAP_KIND_DROPOUT(N, n, A)
/* ---- reductions, scans, sorting (0.2): the others in api/ops_reduce.c ---- */
#define WRAP_KIND_REDUCE_FLOAT(N, n, A)
#define WRAP_KIND_REDUCE_BOOL(N, n, A) WRAP_REDUCE(N, n)
#define WRAP_KIND_EXTREME_DIM(N, n, A)
#define WRAP_KIND_SCAN(N, n, A) WRAP_SOFTMAX(N, n) /* the same signature: (a, dim) */
#define WRAP_KIND_SORT(N, n, A)
#define WRAP_KIND_TOPK(N, n, A)
/* ---- neural-network ops (0.2): by hand below ---- */
#define WRAP_KIND_LINEAR(N, n, A)
/* ---- neural-network ops (0.2): normalisations and losses in api/ops_norm.c ---- */
#define WRAP_KIND_RMS_NORM(N, n, A)
#define WRAP_KIND_GROUP_NORM(N, n, A)
#define WRAP_KIND_BATCH_NORM(N, n, A)
#define WRAP_KIND_CROSS_ENTROPY(N, n, A)
/* ---- convolution and pooling (0.2): in api/ops_conv.c ---- */
#define WRAP_KIND_CONV(N, n, A)
#define WRAP_KIND_POOL2D(N, n, A)
#define WRAP_KIND_ADAPTIVE_POOL2D(N, n, A)
/* ---- neural-network ops (0.2): api/ops_attention.c ---- */
#define WRAP_KIND_ATTENTION(N, n, A)
/* ---- optimizer updates (issue 12): run by mt_optimizer_step, api/optim.c ---- */
#define WRAP_KIND_SGD_STEP(N, n, A)
#define WRAP_KIND_ADAMW_STEP(N, n, A)
/* ---- fused norm backwards (issue 12): run by the rules, src/autograd/rules_nn.c ---- */
#define WRAP_KIND_BATCH_NORM_BACKWARD(N, n, A)
#define WRAP_KIND_ROW_NORM_BACKWARD(N, n, A)
#define WRAP_KIND_CROSS_ENTROPY_BACKWARD(N, n, A)
/* ---- convolution backward (issue 12): run by the autograd's grad_conv, src/autograd/rules_nn.c ---- */
#define WRAP_KIND_CONV_GRAD(N, n, A)

#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, GRAD) WRAP_KIND_##KIND(NAME, name, ARITY)
#include "core/ops.def"
#undef MT_OP

/* ---- ops with their own signatures ---- */

mt_tensor *mt_where(const mt_tensor *cond, const mt_tensor *a, const mt_tensor *b) {
  static const char *const names[] = {"cond", "a", "b"};
  const mt_tensor *in[3] = {cond, a, b};
  mti_attrs at = {0};
  return mti_run_op(MTI_OP_WHERE, 3, in, names, &at);
}

mt_tensor *mt_clamp(const mt_tensor *a, double lo, double hi) {
  mti_attrs at = {0};
  at.s0 = lo;
  at.s1 = hi;
  return unary(MTI_OP_CLAMP, a, &at);
}

mt_tensor *mt_cast(const mt_tensor *a, mt_dtype dtype) {
  mti_attrs at = {0};
  at.dtype = (int32_t)dtype;
  return unary(MTI_OP_CAST, a, &at);
}

mt_tensor *mt_layer_norm(const mt_tensor *a, const mt_tensor *weight, const mt_tensor *bias,
                         double eps) {
  static const char *const names[] = {"a", "weight", "bias"};
  const mt_tensor *in[3] = {a, weight, bias};
  mti_attrs at = {0};
  at.s0 = eps;
  return mti_run_op(MTI_OP_LAYER_NORM, 3, in, names, &at);
}

/* -1 until first read from MODALTENSOR_ALLOW_TF32, then 0 or 1. */
static atomic_int matmul_tf32 = -1;

void mt_set_matmul_tf32(int enabled) { atomic_store(&matmul_tf32, enabled != 0); }

int mt_matmul_tf32_enabled(void) {
  int v = atomic_load(&matmul_tf32);
  if (v >= 0) return v;
  const char *env = getenv("MODALTENSOR_ALLOW_TF32");
  int expected = -1;
  atomic_compare_exchange_strong(&matmul_tf32, &expected, env && strcmp(env, "1") == 0);
  return atomic_load(&matmul_tf32);
}

/* The TF32 mode is captured here, when the op is recorded: a lazy graph
 * runs later, after the caller may have changed it. */
mt_tensor *mt_matmul(const mt_tensor *a, const mt_tensor *b) {
  const mt_tensor *in[2] = {a, b};
  mti_attrs at = {0};
  at.flags = mt_matmul_tf32_enabled() ? MTI_FLAG_TF32 : 0;
  return mti_run_op(MTI_OP_MATMUL, 2, in, ab_names, &at);
}

/* Records the TF32 mode as mt_matmul does. */
mt_tensor *mt_linear(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias) {
  static const char *const names[] = {"x", "weight", "bias"};
  const mt_tensor *in[3] = {x, weight, bias};
  mti_attrs at = {0};
  at.flags = mt_matmul_tf32_enabled() ? MTI_FLAG_TF32 : 0;
  return mti_run_op(MTI_OP_LINEAR, 3, in, names, &at);
}

mt_tensor *mt_index_select(const mt_tensor *a, int dim, const mt_tensor *index) {
  static const char *const names[] = {"a", "index"};
  const mt_tensor *in[2] = {a, index};
  mti_attrs at = {0};
  int d;
  if (mti_check_tensor("mt_index_select", "a", a) ||
      mti_dim_normalize("mt_index_select", "dim", dim, a->ndim, &d))
    return NULL;
  at.dim = d;
  return mti_run_op(MTI_OP_INDEX_SELECT, 2, in, names, &at);
}

/* Names "ts[0]", "ts[1]", ... for messages; NULL when out of memory. */
static char **list_names(const char *fn, int n) {
  char **names = calloc((size_t)n, sizeof *names + 16);
  if (!names) {
    mti_error_oom(fn, (size_t)n * (sizeof *names + 16));
    return NULL;
  }
  char *text = (char *)(names + n);
  for (int i = 0; i < n; i++) {
    names[i] = text + 16 * i;
    snprintf(names[i], 16, "ts[%d]", i);
  }
  return names;
}

static mt_status check_list(const char *fn, int n, const mt_tensor *const *ts) {
  if (n < 1) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: n: %d, expected at least 1", fn, n);
  if (!ts) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: ts: NULL", fn);
  for (int i = 0; i < n; i++)
    if (!ts[i]) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: ts[%d]: NULL tensor", fn, i);
  return MT_OK;
}

mt_tensor *mt_cat(int n, const mt_tensor *const *ts, int dim) {
  const char *fn = "mt_cat";
  mti_attrs at = {0};
  int d;
  if (check_list(fn, n, ts)) return NULL;
  if (ts[0]->ndim == 0)
    return mti_error(MT_ERR_SHAPE, "%s: ts[0]: 0-d tensors cannot be joined", fn), NULL;
  if (mti_dim_normalize(fn, "dim", dim, ts[0]->ndim, &d)) return NULL;
  at.dim = d;
  char **names = list_names(fn, n);
  if (!names) return NULL;
  mt_tensor *out = mti_run_op(MTI_OP_CAT, n, ts, (const char *const *)names, &at);
  free(names);
  return out;
}

mt_tensor *mt_stack(int n, const mt_tensor *const *ts, int dim) {
  const char *fn = "mt_stack";
  int d;
  if (check_list(fn, n, ts) || mti_dim_normalize(fn, "dim", dim, ts[0]->ndim + 1, &d)) return NULL;
  for (int i = 1; i < n; i++) {
    if (!mti_device_equal(ts[i]->device, ts[0]->device)) {
      char a[48], b[48];
      return mti_error(MT_ERR_DEVICE, "%s: ts[0] is on %s, ts[%d] is on %s", fn,
                       mti_device_str(a, sizeof a, ts[0]->device), i,
                       mti_device_str(b, sizeof b, ts[i]->device)), NULL;
    }
    if (ts[i]->ndim != ts[0]->ndim ||
        memcmp(ts[i]->shape, ts[0]->shape, sizeof(int64_t) * (size_t)ts[0]->ndim)) {
      char a[160], b[160];
      return mti_error(MT_ERR_SHAPE, "%s: ts[%d]: shape %s differs from ts[0]'s %s", fn, i,
                       mti_shape_str(a, sizeof a, ts[i]->ndim, ts[i]->shape),
                       mti_shape_str(b, sizeof b, ts[0]->ndim, ts[0]->shape)), NULL;
    }
  }
  /* stack = cat of views with a new size-1 dim: no op of its own. */
  mt_tensor **views = calloc((size_t)n, sizeof *views);
  if (!views) return mti_error_oom(fn, sizeof *views * (size_t)n), NULL;
  mt_tensor *out = NULL;
  int made = 0;
  for (; made < n; made++)
    if (!(views[made] = mt_unsqueeze(ts[made], d))) break;
  if (made == n) out = mt_cat(n, (const mt_tensor *const *)views, d);
  for (int i = 0; i < made; i++) mt_tensor_free(views[i]);
  free(views);
  return out;
}
