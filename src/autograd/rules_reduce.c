/*
 * rules_reduce.c - backward rules of reductions, scans, sorting, softmax,
 * layer_norm, matmul and cat.
 *
 * A reduction's gradient is its output's gradient spread back over the
 * reduced dims (mti_grad_unreduce), times the op's local derivative.
 */
#include <math.h>

#include "autograd/rules.h"

#define X (c->in[0])
#define OUT (c->out[0])

static int keepdim_of(const mti_grad_ctx *c) { return (c->at->flags & MTI_FLAG_KEEPDIM) != 0; }

/* The dims of mask as a list; returns their count. */
static int dims_of(uint32_t mask, int ndim, int *dims) {
  int n = 0;
  for (int d = 0; d < ndim; d++)
    if (mask >> d & 1u) dims[n++] = d;
  return n;
}

/* Elements of in that one output element reduces. */
static double reduced_count(const mti_grad_ctx *c) {
  double count = 1;
  const mti_meta *m = &c->in_meta[0];
  for (int d = 0; d < m->ndim; d++)
    if (c->at->dims_mask >> d & 1u) count *= (double)m->shape[d];
  return count;
}

/* g spread back over the reduced dims of input 0. */
static mt_tensor *spread(mti_grad_ctx *c, const mt_tensor *g) {
  return mti_grad_unreduce(c, g, &c->in_meta[0], c->at->dims_mask, keepdim_of(c));
}

/* A reduction (fn) of x over the node's dims, keeping them. */
static mt_tensor *reduce_kept(mti_grad_ctx *c, mt_tensor *(*fn)(const mt_tensor *, int,
                                                                const int *, int),
                              const mt_tensor *x) {
  int dims[MT_MAX_DIMS];
  int nd = dims_of(c->at->dims_mask, c->in_meta[0].ndim, dims);
  if (nd == 0) return T(mt_clone(x)); /* a 0-d input: nothing is reduced */
  return T(fn(x, nd, dims, 1));
}

mt_status grad_sum(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = spread(c, g);
  return mti_grad_status(c);
}

mt_status grad_mean(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_mul_scalar(spread(c, g), 1.0 / reduced_count(c)));
  return mti_grad_status(c);
}

mt_status grad_prod(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* d out / d x_i is the product of the others: out / x_i where x_i != 0;
   * at a zero, the product of the non-zeros when it is the only zero of its
   * group, else 0. */
  mt_dtype dt = mt_tensor_dtype(X);
  mt_tensor *zero = mti_grad_scalar(c, 0, dt), *one = mti_grad_scalar(c, 1, dt);
  mt_tensor *is_zero = T(mt_eq(X, zero));
  mt_tensor *nonzero_prod = reduce_kept(c, mt_prod, T(mt_where(is_zero, one, X)));
  mt_tensor *zeros = reduce_kept(c, mt_sum, T(mt_cast(is_zero, dt)));
  mt_tensor *at_zero = T(mt_where(T(mt_eq(zeros, one)), nonzero_prod, zero));
  mt_tensor *out = reduce_kept(c, mt_prod, X);
  mt_tensor *others = T(mt_where(is_zero, at_zero, T(mt_div(out, X))));
  gin[0] = T(mt_mul(spread(c, g), others));
  return mti_grad_status(c);
}

/* amax / amin: the gradient is shared evenly by the elements that tie for it. */
static mt_status extreme(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *hit = T(mt_cast(T(mt_eq(X, spread(c, OUT))), mt_tensor_dtype(g)));
  mt_tensor *count = reduce_kept(c, mt_sum, hit);
  gin[0] = T(mt_div(T(mt_mul(spread(c, g), hit)), count));
  return mti_grad_status(c);
}

mt_status grad_amax(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return extreme(c, g, gin);
}

mt_status grad_amin(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return extreme(c, g, gin);
}

mt_status grad_var(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *centred = T(mt_sub(X, reduce_kept(c, mt_mean, X)));
  double scale = 2.0 / (reduced_count(c) - c->at->s0);
  gin[0] = T(mt_mul(spread(c, g), T(mt_mul_scalar(centred, scale))));
  return mti_grad_status(c);
}

mt_status grad_std(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *centred = T(mt_sub(X, reduce_kept(c, mt_mean, X)));
  double scale = 1.0 / (reduced_count(c) - c->at->s0);
  mt_tensor *per = T(mt_div(T(mt_mul_scalar(centred, scale)), spread(c, OUT)));
  gin[0] = T(mt_mul(spread(c, g), per));
  return mti_grad_status(c);
}

mt_status grad_logsumexp(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_mul(spread(c, g), T(mt_exp(T(mt_sub(X, spread(c, OUT)))))));
  return mti_grad_status(c);
}

mt_status grad_norm(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  double p = c->at->s0;
  mt_dtype dt = mt_tensor_dtype(g);
  mt_tensor *zero = mti_grad_scalar(c, 0, dt);
  mt_tensor *sign = T(mt_sign(X)), *norm = spread(c, OUT);
  mt_tensor *local;
  if (p == 0) return mti_grad_status(c); /* a count: constant */
  if (p == 1) {
    local = sign;
  } else if (isinf(p)) { /* the extreme |x| takes it, ties share */
    mt_tensor *hit = T(mt_cast(T(mt_eq(T(mt_abs(X)), norm)), dt));
    local = T(mt_div(T(mt_mul(sign, hit)), reduce_kept(c, mt_sum, hit)));
  } else { /* sign(x) |x|^(p-1) / norm^(p-1); 0 where the norm is 0 */
    mt_tensor *ratio = T(mt_div(T(mt_abs(X)), norm));
    mt_tensor *v = T(mt_mul(sign, T(mt_pow_scalar(ratio, p - 1.0))));
    local = T(mt_where(T(mt_eq(norm, zero)), zero, v));
  }
  gin[0] = T(mt_mul(spread(c, g), local));
  return mti_grad_status(c);
}

mt_status grad_index_of_extreme(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* max_dim, min_dim, sort, topk: each value came from the input element
   * its index (out1) names along dim. */
  const mti_meta *m = &c->in_meta[0];
  if (m->ndim == 0) {
    gin[0] = (mt_tensor *)g;
    return mti_grad_status(c);
  }
  int dim = c->at->dim;
  const mt_tensor *gk = g, *index = c->out[1];
  int reduced = c->op == MTI_OP_MAX_DIM || c->op == MTI_OP_MIN_DIM;
  if (reduced && !keepdim_of(c)) {
    gk = T(mt_unsqueeze(g, dim));
    index = T(mt_unsqueeze(index, dim));
  }
  gin[0] = T(mt_scatter_add(mti_grad_zeros(c, m), dim, index, gk));
  return mti_grad_status(c);
}

/* sum over j >= i along dim: a cumsum from the far end. */
static mt_tensor *reverse_cumsum(mti_grad_ctx *c, const mt_tensor *t, int dim) {
  return T(mt_flip(T(mt_cumsum(T(mt_flip(t, 1, &dim)), dim)), 1, &dim));
}

mt_status grad_cumsum(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = c->in_meta[0].ndim ? reverse_cumsum(c, g, c->at->dim) : (mt_tensor *)g;
  return mti_grad_status(c);
}

mt_status grad_cumprod(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* d out_j / d x_i = out_j / x_i for j >= i when x_i != 0. At the first
   * zero z of a row, out_j / x_z is the cumprod with x_z replaced by 1; past
   * it every term is 0. */
  if (!c->in_meta[0].ndim) {
    gin[0] = (mt_tensor *)g;
    return mti_grad_status(c);
  }
  int dim = c->at->dim;
  mt_dtype dt = mt_tensor_dtype(X);
  mt_tensor *zero = mti_grad_scalar(c, 0, dt), *one = mti_grad_scalar(c, 1, dt);
  mt_tensor *is_zero = T(mt_eq(X, zero));
  mt_tensor *zeros_so_far = T(mt_cumsum(T(mt_cast(is_zero, dt)), dim));
  mt_tensor *first_zero = T(mt_logical_and(is_zero, T(mt_eq(zeros_so_far, one))));
  mt_tensor *out = T(mt_cumprod(X, dim));
  mt_tensor *plain = T(mt_div(reverse_cumsum(c, T(mt_mul(g, out)), dim), X));
  mt_tensor *skipped = T(mt_cumprod(T(mt_where(first_zero, one, X)), dim));
  mt_tensor *at_first = reverse_cumsum(c, T(mt_mul(g, skipped)), dim);
  gin[0] = T(mt_where(first_zero, at_first, T(mt_where(is_zero, zero, plain))));
  return mti_grad_status(c);
}

mt_status grad_softmax(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  int dim = c->at->dim;
  if (!c->in_meta[0].ndim) return mti_grad_status(c); /* softmax of one element is 1 */
  mt_tensor *dot = T(mt_sum(T(mt_mul(g, OUT)), 1, &dim, 1));
  gin[0] = T(mt_mul(OUT, T(mt_sub(g, dot))));
  return mti_grad_status(c);
}

mt_status grad_log_softmax(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  int dim = c->at->dim;
  if (!c->in_meta[0].ndim) return mti_grad_status(c);
  mt_tensor *total = T(mt_sum(g, 1, &dim, 1));
  gin[0] = T(mt_sub(g, T(mt_mul(T(mt_exp(OUT)), total))));
  return mti_grad_status(c);
}

mt_status grad_layer_norm(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return mti_grad_row_norm(c, MTI_OP_LAYER_NORM_BACKWARD, g, gin);
}

mt_status grad_matmul(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* With 1-d operands made matrices ([k] -> [1, k] for a, [k, 1] for b):
   * da = g b^T, db = a^T g; the engine sums broadcast batch dims. */
  const mt_tensor *a = c->in[0], *b = c->in[1], *g2 = g;
  int a_vec = c->in_meta[0].ndim == 1, b_vec = c->in_meta[1].ndim == 1;
  static const int64_t one_by_one[2] = {1, 1};
  if (a_vec) a = T(mt_unsqueeze(a, 0));
  if (b_vec) b = T(mt_unsqueeze(b, 1));
  if (a_vec && b_vec) g2 = T(mt_reshape(g, 2, one_by_one));
  else if (a_vec) g2 = T(mt_unsqueeze(g, -2));
  else if (b_vec) g2 = T(mt_unsqueeze(g, -1));
  if (mti_grad_needed(c, 0)) {
    mt_tensor *da = T(mt_matmul(g2, T(mt_transpose(b, -1, -2))));
    gin[0] = a_vec ? T(mt_squeeze(da, -2)) : da;
  }
  if (mti_grad_needed(c, 1)) {
    mt_tensor *db = T(mt_matmul(T(mt_transpose(a, -1, -2)), g2));
    gin[1] = b_vec ? T(mt_squeeze(db, -1)) : db;
  }
  return mti_grad_status(c);
}

mt_status grad_cat(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  int dim = c->at->dim;
  int64_t offset = 0;
  for (int i = 0; i < c->n; i++) {
    int64_t len = c->in_meta[i].shape[dim];
    if (mti_grad_needed(c, i)) gin[i] = T(mt_slice(g, dim, offset, offset + len, 1));
    offset += len;
  }
  return mti_grad_status(c);
}

mt_status grad_index_select(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  const mti_meta *m = &c->in_meta[0];
  if (m->ndim == 0) {
    gin[0] = (mt_tensor *)g;
    return mti_grad_status(c);
  }
  gin[0] = T(mt_index_add(mti_grad_zeros(c, m), c->at->dim, c->in[1], g));
  return mti_grad_status(c);
}
