/*
 * rules_nn.c - backward rules of the neural-network ops.
 *
 * Written with the library's own ops, so they run on every device:
 * batch_norm, layer_norm and rms_norm by one fused node each (the internal
 * ops *_NORM_BACKWARD of core/ops.def, as the optimizers run theirs),
 * group_norm from its kept statistics, cross_entropy by one fused node
 * from its kept logsumexp, attention from its kept logsumexp (the
 * probabilities are exp(score - lse), no second softmax). Convolution's
 * gradients are two fused internal ops (CONV2D_INPUT_GRAD,
 * CONV2D_WEIGHT_GRAD: a GEMM and a col2im, a GEMM over im2col), which every
 * backend has, and which avg_pool2d's input gradient uses too (a depthwise
 * conv with a constant kernel).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rules.h"
#include "core/conv_rules.h"
#include "core/dtype.h"

#define X (c->in[0])

/* [1, C, 1, ...] for a per-channel [C] against x of ndim dims. */
static mt_tensor *per_channel(mti_grad_ctx *c, const mt_tensor *v, int ndim) {
  int64_t shape[MT_MAX_DIMS];
  for (int d = 0; d < ndim; d++) shape[d] = 1;
  shape[1] = mt_shape(v, 0);
  return T(mt_reshape(v, ndim, shape));
}

/* v summed over every dim but 1 (the channel), as [C]. */
static mt_tensor *sum_but_channel(mti_grad_ctx *c, const mt_tensor *v) {
  int dims[MT_MAX_DIMS], nd = 0;
  for (int d = 0; d < mt_ndim(v); d++)
    if (d != 1) dims[nd++] = d;
  return nd ? T(mt_sum(v, nd, dims, 0)) : (mt_tensor *)v;
}

/* A kept statistic in the gradient's dtype. */
static mt_tensor *as_dtype(mti_grad_ctx *c, const mt_tensor *t, mt_dtype dt) {
  return mt_tensor_dtype(t) == dt ? (mt_tensor *)t : T(mt_cast(t, dt));
}

mt_status grad_linear(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  const mt_tensor *w = c->in[1];
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_matmul(g, w));
  if (mti_grad_needed(c, 1)) {
    int64_t out = c->in_meta[1].shape[0], in = c->in_meta[1].shape[1];
    mt_tensor *g2 = T(mt_reshape(g, 2, (const int64_t[]){-1, out}));
    mt_tensor *x2 = T(mt_reshape(X, 2, (const int64_t[]){-1, in}));
    gin[1] = T(mt_matmul(T(mt_transpose(g2, 0, 1)), x2));
  }
  if (mti_grad_needed(c, 2)) gin[2] = (mt_tensor *)g; /* summed to [out] by the engine */
  return mti_grad_status(c);
}

/* The normalised-row gradient: rstd (d - mean(d) - xhat mean(d xhat)) over
 * the dims of `dims`, for d the gradient of xhat. */
static mt_tensor *normalised_grad(mti_grad_ctx *c, const mt_tensor *d, const mt_tensor *xhat,
                                  const mt_tensor *rstd, int nd, const int *dims) {
  mt_tensor *m1 = T(mt_mean(d, nd, dims, 1));
  mt_tensor *m2 = T(mt_mean(T(mt_mul(d, xhat)), nd, dims, 1));
  return T(mt_mul(rstd, T(mt_sub(T(mt_sub(d, m1)), T(mt_mul(xhat, m2))))));
}

/* layer_norm's and rms_norm's fused backward node (ROW_NORM_BACKWARD): dx
 * into gin[0], dweight into gin[1] and (layer_norm) dbias into gin[2]. */
mt_status mti_grad_row_norm(mti_grad_ctx *c, mti_op op, const mt_tensor *g, mt_tensor **gin) {
  mti_attrs at = {0};
  at.s0 = c->at->s0;
  const mt_tensor *in[3] = {g, as_dtype(c, X, mt_tensor_dtype(g)), c->in[1]};
  mt_tensor *d[3];
  if (mti_grad_run_multi(c, op, 3, in, &at, d)) return mti_grad_status(c);
  for (int i = 0; i < mti_op_get((int)op)->nout; i++)
    if (mti_grad_needed(c, i)) gin[i] = d[i];
  return mti_grad_status(c);
}

mt_status grad_rms_norm(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return mti_grad_row_norm(c, MTI_OP_RMS_NORM_BACKWARD, g, gin);
}

mt_status grad_group_norm(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  const mti_meta *m = &c->in_meta[0];
  mt_dtype dt = mt_tensor_dtype(g);
  int64_t groups = c->at->ints[0], n = m->shape[0];
  const int64_t grouped[3] = {n, groups, -1}, stat[3] = {n, groups, 1};
  int last = -1;
  mt_tensor *mean = T(mt_reshape(as_dtype(c, c->out[1], dt), 3, stat));
  mt_tensor *rstd = T(mt_reshape(as_dtype(c, c->out[2], dt), 3, stat));
  mt_tensor *xg = T(mt_reshape(X, 3, grouped));
  mt_tensor *xhat_g = T(mt_mul(T(mt_sub(xg, mean)), rstd));
  mt_tensor *xhat = T(mt_reshape(xhat_g, m->ndim, m->shape));
  if (mti_grad_needed(c, 1)) gin[1] = sum_but_channel(c, T(mt_mul(g, xhat)));
  if (mti_grad_needed(c, 2)) gin[2] = sum_but_channel(c, g);
  if (mti_grad_needed(c, 0)) {
    const mt_tensor *w = c->in[1];
    const mt_tensor *d = w ? T(mt_mul(g, per_channel(c, w, m->ndim))) : g;
    mt_tensor *dg = normalised_grad(c, T(mt_reshape(d, 3, grouped)), xhat_g, rstd, 1, &last);
    gin[0] = T(mt_reshape(dg, m->ndim, m->shape));
  }
  return mti_grad_status(c);
}

mt_status grad_batch_norm(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* One fused node (BATCH_NORM_BACKWARD) from the kept mean and var:
   * training (no running stats given) normalised with the batch's
   * statistics, which depend on x; eval with constants. */
  mti_attrs at = {0};
  at.s0 = c->at->s0;
  at.n_ints = 1;
  at.ints[0] = c->in_meta[1].ndim < 0;
  const mt_tensor *in[5] = {as_dtype(c, g, c->in_meta[0].dtype), X, c->out[1], c->out[2],
                            c->in[3]};
  mt_tensor *d[3];
  if (mti_grad_run_multi(c, MTI_OP_BATCH_NORM_BACKWARD, 5, in, &at, d)) return mti_grad_status(c);
  if (mti_grad_needed(c, 0)) gin[0] = d[0];
  if (mti_grad_needed(c, 3)) gin[3] = d[1];
  if (mti_grad_needed(c, 4)) gin[4] = d[2];
  return mti_grad_status(c);
}

mt_status grad_cross_entropy(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* One fused node (CROSS_ENTROPY_BACKWARD) from the kept logsumexp:
   * (softmax - (1 - s) onehot - s / C) g / count on the rows whose target
   * is not ignored, softmax = exp(logits - lse). */
  const mt_tensor *in[4] = {as_dtype(c, g, c->in_meta[0].dtype), X, c->in[1], c->out[1]};
  gin[0] = mti_grad_run(c, MTI_OP_CROSS_ENTROPY_BACKWARD, 4, in, c->at);
  return mti_grad_status(c);
}

/* ------------------------------------------------------------- conv */

typedef struct conv_geom {
  int spatial;          /* 1 (conv1d) or 2 */
  int64_t stride[2], padding[2], dilation[2], groups;
} conv_geom;

static conv_geom conv_geom_of(const mti_grad_ctx *c) {
  const int64_t *v = c->at->ints;
  conv_geom k;
  if (c->op == MTI_OP_CONV1D) {
    k = (conv_geom){1, {1, v[0]}, {0, v[1]}, {1, v[2]}, v[3]};
  } else {
    k = (conv_geom){2, {v[0], v[1]}, {v[2], v[3]}, {v[4], v[5]}, v[6]};
  }
  return k;
}

/* A conv1d operand as its conv2d form ([.., W] -> [.., 1, W]). */
static const mt_tensor *as_2d(mti_grad_ctx *c, const mt_tensor *t, int spatial) {
  return spatial == 2 ? t : T(mt_unsqueeze(t, -2));
}

/* A CONV_GRAD node of geometry k, the extents e0, e1 last (x's H, W for
 * the input's gradient, the kernel's for the weight's), on dy and the
 * weight or x, all in their conv2d form. */
static mt_tensor *conv_grad_op(mti_grad_ctx *c, mti_op op, const conv_geom *k,
                               const mt_tensor *dy, const mt_tensor *other, int64_t e0,
                               int64_t e1) {
  const int64_t ints[MTI_CONV_GRAD_N_INTS] = {k->stride[0],   k->stride[1],   k->padding[0],
                                              k->padding[1],  k->dilation[0], k->dilation[1],
                                              k->groups,      e0,             e1};
  mti_attrs at = {0};
  at.n_ints = MTI_CONV_GRAD_N_INTS;
  memcpy(at.ints, ints, sizeof ints);
  const mt_tensor *in[2] = {dy, other};
  return dy && other ? mti_grad_run(c, op, 2, in, &at) : T(NULL);
}

mt_status grad_conv(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  conv_geom k = conv_geom_of(c);
  const mti_meta *xm = &c->in_meta[0], *wm = &c->in_meta[1];
  const mt_tensor *dy = as_2d(c, g, k.spatial);
  if (mti_grad_needed(c, 0)) {
    const mt_tensor *w = as_2d(c, c->in[1], k.spatial);
    int64_t h = k.spatial == 2 ? xm->shape[2] : 1, wd = xm->shape[xm->ndim - 1];
    mt_tensor *dx = conv_grad_op(c, MTI_OP_CONV2D_INPUT_GRAD, &k, dy, w, h, wd);
    gin[0] = k.spatial == 2 || !dx ? dx : T(mt_squeeze(dx, -2));
  }
  if (mti_grad_needed(c, 1)) {
    const mt_tensor *x = as_2d(c, X, k.spatial);
    int64_t kh = k.spatial == 2 ? wm->shape[2] : 1, kw = wm->shape[wm->ndim - 1];
    mt_tensor *dw = conv_grad_op(c, MTI_OP_CONV2D_WEIGHT_GRAD, &k, dy, x, kh, kw);
    gin[1] = k.spatial == 2 || !dw ? dw : T(mt_squeeze(dw, -2));
  }
  if (mti_grad_needed(c, 2)) gin[2] = sum_but_channel(c, g);
  return mti_grad_status(c);
}

/* ------------------------------------------------------------ pools */

/* A pool's [C, H, W] operand as [1, C, H, W]. */
static const mt_tensor *batched(mti_grad_ctx *c, const mt_tensor *t, int ndim) {
  return ndim == 4 ? t : T(mt_unsqueeze(t, 0));
}

mt_status grad_max_pool2d(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* each output took the input element its index (out1, flat in the
   * plane) names: add g there */
  const mti_meta *m = &c->in_meta[0];
  int nd = m->ndim;
  int64_t lead[MT_MAX_DIMS];
  for (int d = 0; d < nd - 2; d++) lead[d] = m->shape[d];
  lead[nd - 2] = -1;
  mti_meta planes = *m;
  planes.ndim = nd - 1;
  planes.shape[nd - 2] = m->shape[nd - 2] * m->shape[nd - 1];
  mt_tensor *index = T(mt_reshape(c->out[1], nd - 1, lead));
  mt_tensor *g2 = T(mt_reshape(g, nd - 1, lead));
  mt_tensor *flat = T(mt_scatter_add(mti_grad_zeros(c, &planes), nd - 2, index, g2));
  gin[0] = T(mt_reshape(flat, m->ndim, m->shape));
  return mti_grad_status(c);
}

mt_status grad_avg_pool2d(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* A mean over windows counting the padding is a depthwise convolution
   * with a constant kernel: its input gradient. */
  const mti_meta *m = &c->in_meta[0];
  const int64_t *v = c->at->ints;
  int64_t ch = m->shape[m->ndim - 3];
  conv_geom k = {2, {v[2], v[3]}, {v[4], v[5]}, {1, 1}, ch};
  mt_tensor *w = T(mt_full(4, (const int64_t[]){ch, 1, v[0], v[1]}, 1.0 / (double)(v[0] * v[1]),
                           mt_tensor_dtype(g), c->device));
  const mt_tensor *dy = batched(c, g, m->ndim);
  mt_tensor *dx = conv_grad_op(c, MTI_OP_CONV2D_INPUT_GRAD, &k, dy, w, m->shape[m->ndim - 2],
                               m->shape[m->ndim - 1]);
  gin[0] = m->ndim == 4 || !dx ? dx : T(mt_squeeze(dx, 0));
  return mti_grad_status(c);
}

/* The [out, in] matrix of adaptive averaging along one dim: row i averages
 * [floor(i in / out), ceil((i + 1) in / out)). */
static mt_tensor *averaging_matrix(mti_grad_ctx *c, int64_t out, int64_t in, mt_dtype dt) {
  size_t cells = (size_t)(out * in);
  double *a = calloc(cells ? cells : 1, sizeof(double));
  if (!a) return T(NULL);
  for (int64_t i = 0; i < out; i++) {
    int64_t lo = i * in / out, hi = ((i + 1) * in + out - 1) / out;
    for (int64_t j = lo; j < hi; j++) a[i * in + j] = 1.0 / (double)(hi - lo);
  }
  mt_device cpu = {MT_DEVICE_CPU, 0};
  mt_tensor *host = T(mt_from_data(a, 2, (const int64_t[]){out, in}, MT_FLOAT64, cpu));
  free(a);
  return host ? T(mt_to(host, c->device, dt, 1)) : NULL;
}

mt_status grad_adaptive_avg_pool2d(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* y = Ah x Aw^T per plane (the windows are products of 1-d ranges), so
   * dx = Ah^T g Aw. */
  const mti_meta *m = &c->in_meta[0];
  mt_dtype dt = mt_tensor_dtype(g);
  mt_tensor *ah = averaging_matrix(c, c->at->ints[0], m->shape[m->ndim - 2], dt);
  mt_tensor *aw = averaging_matrix(c, c->at->ints[1], m->shape[m->ndim - 1], dt);
  mt_tensor *left = T(mt_matmul(T(mt_transpose(ah, 0, 1)), g));
  gin[0] = T(mt_matmul(left, aw));
  return mti_grad_status(c);
}

/* -------------------------------------------------------- attention */

mt_status grad_attention(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* P = exp(S - lse) from the kept logsumexp (0 on rows with no key);
   * dV = P^T g, dS = P (g V^T - rowsum(g out)), dQ = dS K scale,
   * dK = dS^T Q scale, and an additive mask gets dS. */
  const mt_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2], *mask = c->in[3];
  mt_dtype dt = mt_tensor_dtype(g);
  const mti_meta *qm = &c->in_meta[0], *km = &c->in_meta[1];
  int64_t l = qm->shape[qm->ndim - 2], s = km->shape[km->ndim - 2];
  double scale = isnan(c->at->s0) ? 1.0 / sqrt((double)qm->shape[qm->ndim - 1]) : c->at->s0;
  mt_tensor *kt = T(mt_transpose(k, -1, -2));
  mt_tensor *scores = T(mt_mul_scalar(T(mt_matmul(q, kt)), scale));
  if (mask && mt_tensor_dtype(mask) == MT_BOOL)
    scores = T(mt_masked_fill(scores, T(mt_logical_not(mask)), -INFINITY));
  else if (mask)
    scores = T(mt_add(scores, mask));
  if (c->at->flags & MTI_FLAG_CAUSAL) {
    mt_tensor *ones = T(mt_ones(2, (const int64_t[]){l, s}, MT_BOOL, c->device));
    scores = T(mt_masked_fill(scores, T(mt_triu(ones, 1)), -INFINITY));
  }
  mt_tensor *lse = T(mt_unsqueeze(as_dtype(c, c->out[1], dt), -1));
  mt_tensor *p = T(mt_exp(T(mt_sub(scores, lse))));
  mt_tensor *zero = mti_grad_scalar(c, 0, dt);
  p = T(mt_where(T(mt_isfinite(lse)), p, zero)); /* a row with no kept key has no weights */
  int last = -1;
  mt_tensor *row = T(mt_sum(T(mt_mul(g, c->out[0])), 1, &last, 1));
  mt_tensor *dp = T(mt_matmul(g, T(mt_transpose(v, -1, -2))));
  mt_tensor *ds = T(mt_mul(p, T(mt_sub(dp, row))));
  if (mti_grad_needed(c, 2)) gin[2] = T(mt_matmul(T(mt_transpose(p, -1, -2)), g));
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_mul_scalar(T(mt_matmul(ds, k)), scale));
  if (mti_grad_needed(c, 1))
    gin[1] = T(mt_mul_scalar(T(mt_matmul(T(mt_transpose(ds, -1, -2)), q)), scale));
  if (mti_grad_needed(c, 3)) gin[3] = ds;
  return mti_grad_status(c);
}
