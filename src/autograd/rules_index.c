/*
 * rules_index.c - backward rules of indexing and data-movement ops.
 *
 * Where the forward copies elements to new places, the backward adds each
 * gradient back to the place its element came from: a scatter_add or
 * index_add into zeros, or the same remapping undone (flip, roll).
 */
#include <string.h>

#include "autograd/rules.h"

#define INDEX (c->in[1])

mt_status grad_gather(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_scatter_add(mti_grad_zeros(c, &c->in_meta[0]), c->at->dim, INDEX, g));
  return mti_grad_status(c);
}

mt_status grad_scatter(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* a keeps g where src did not overwrite it; src gets g at its targets */
  if (mti_grad_needed(c, 0)) {
    mti_meta m = c->in_meta[2];
    m.dtype = mt_tensor_dtype(g);
    gin[0] = T(mt_scatter(g, c->at->dim, INDEX, mti_grad_zeros(c, &m)));
  }
  if (mti_grad_needed(c, 2)) gin[2] = T(mt_gather(g, c->at->dim, INDEX));
  return mti_grad_status(c);
}

mt_status grad_scatter_add(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = (mt_tensor *)g;
  if (mti_grad_needed(c, 2)) gin[2] = T(mt_gather(g, c->at->dim, INDEX));
  return mti_grad_status(c);
}

mt_status grad_index_add(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = (mt_tensor *)g;
  if (mti_grad_needed(c, 2)) gin[2] = T(mt_index_select(g, c->at->dim, INDEX));
  return mti_grad_status(c);
}

mt_status grad_embedding(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* Rows picked several times add up: an index_add of g's rows. */
  const mti_meta *w = &c->in_meta[0];
  const int64_t flat[1] = {-1}, rows[2] = {-1, w->shape[1]};
  mt_tensor *index = T(mt_reshape(INDEX, 1, flat));
  mt_tensor *g_rows = T(mt_reshape(g, 2, rows));
  gin[0] = T(mt_index_add(mti_grad_zeros(c, w), 0, index, g_rows));
  return mti_grad_status(c);
}

mt_status grad_flip(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = mti_grad_run(c, MTI_OP_FLIP, 1, &g, c->at);
  return mti_grad_status(c);
}

mt_status grad_roll(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mti_attrs back = *c->at; /* (dim, shift) pairs: roll back by each shift */
  for (int i = 1; i < back.n_ints; i += 2) back.ints[i] = -back.ints[i];
  gin[0] = mti_grad_run(c, MTI_OP_ROLL, 1, &g, &back);
  return mti_grad_status(c);
}

mt_status grad_repeat(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* Each dim of g is [repeats, size]: split it and sum the copies, one dim
   * at a time (two dims per dim at once could pass MT_MAX_DIMS). */
  const mti_meta *m = &c->in_meta[0];
  int nd = c->at->n_ints, lead = nd - m->ndim;
  const mt_tensor *acc = g;
  for (int d = 0; d < nd && acc; d++) {
    int64_t r = c->at->ints[d], size = d < lead ? 1 : m->shape[d - lead];
    if (r == 1) continue;
    int64_t shape[MT_MAX_DIMS + 1];
    int k = 0;
    for (int e = 0; e < nd; e++) {
      if (e == d) shape[k++] = r, shape[k++] = size;
      else shape[k++] = mt_shape(acc, e);
    }
    if (r == 0) { /* nothing was copied: a zero gradient */
      acc = NULL;
      break;
    }
    mt_tensor *split = T(mt_reshape(acc, nd + 1, shape));
    acc = T(mt_sum(split, 1, &d, 0));
  }
  gin[0] = (mt_tensor *)acc; /* the engine drops the leading dims of size 1 */
  return mti_grad_status(c);
}

mt_status grad_pad(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  const mti_meta *m = &c->in_meta[0];
  const mti_attrs *at = c->at;
  if (!(at->flags & (MTI_FLAG_PAD_REFLECT | MTI_FLAG_PAD_REPLICATE))) {
    mti_attrs crop = *at; /* constant: padding back by -pads crops (and undoes a crop) */
    crop.s0 = 0;
    for (int i = 0; i < crop.n_ints; i++) crop.ints[i] = -crop.ints[i];
    gin[0] = mti_grad_run(c, MTI_OP_PAD, 1, &g, &crop);
    return mti_grad_status(c);
  }
  /* reflect / replicate: pad the flat positions of the input the same way
   * to learn where each output element came from, then add g back there. */
  int64_t numel = 1;
  for (int d = 0; d < m->ndim; d++) numel *= m->shape[d];
  const int64_t flat[1] = {-1};
  mt_tensor *positions = T(mt_arange(0, (double)numel, 1, MT_INT64, c->device));
  const mt_tensor *shaped = positions ? T(mt_reshape(positions, m->ndim, m->shape)) : NULL;
  mt_tensor *source = shaped ? mti_grad_run(c, MTI_OP_PAD, 1, &shaped, at) : NULL;
  mti_meta flat_meta = {.dtype = m->dtype, .ndim = 1, .shape = {numel}};
  mt_tensor *sum = T(mt_index_add(mti_grad_zeros(c, &flat_meta), 0, T(mt_reshape(source, 1, flat)),
                                  T(mt_reshape(g, 1, flat))));
  gin[0] = T(mt_reshape(sum, m->ndim, m->shape));
  return mti_grad_status(c);
}

mt_status grad_tril(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = mti_grad_run(c, MTI_OP_TRIL, 1, &g, c->at);
  return mti_grad_status(c);
}

mt_status grad_triu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = mti_grad_run(c, MTI_OP_TRIU, 1, &g, c->at);
  return mti_grad_status(c);
}
