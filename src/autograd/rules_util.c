/*
 * rules_util.c - the helpers backward rules share (autograd/rules.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/rules.h"
#include "core/error.h"
#include "core/shape.h"

mt_tensor *mti_grad_tmp(mti_grad_ctx *c, mt_tensor *t) {
  if (!t) {
    if (!c->status) {
      c->status = mt_last_status();
      if (!c->status) c->status = MT_ERR_INTERNAL;
      snprintf(c->error, sizeof c->error, "%s", mt_last_error());
    }
    return NULL;
  }
  if (c->ntmp == c->cap) {
    int cap = c->cap ? 2 * c->cap : 64;
    mt_tensor **grown = realloc(c->tmp, sizeof *grown * (size_t)cap);
    if (!grown) {
      mt_tensor_free(t);
      if (!c->status) {
        c->status = mti_error_oom("mt_backward", sizeof *grown * (size_t)cap);
        snprintf(c->error, sizeof c->error, "%s", mt_last_error());
      }
      return NULL;
    }
    c->tmp = grown, c->cap = cap;
  }
  return c->tmp[c->ntmp++] = t;
}

mt_status mti_grad_status(mti_grad_ctx *c) {
  if (c->status) mti_error(c->status, "%s", c->error);
  return c->status;
}

mt_tensor *mti_grad_zeros(mti_grad_ctx *c, const mti_meta *m) {
  return T(mt_zeros(m->ndim, m->shape, m->dtype, c->device));
}

mt_tensor *mti_grad_scalar(mti_grad_ctx *c, double value, mt_dtype dtype) {
  return T(mt_full(0, NULL, value, dtype, c->device));
}

mt_tensor *mti_grad_unreduce(mti_grad_ctx *c, const mt_tensor *g, const mti_meta *in,
                             uint32_t dims_mask, int keepdim) {
  if (!g) return T(NULL);
  int64_t kept[MT_MAX_DIMS];
  for (int d = 0; d < in->ndim; d++) kept[d] = (dims_mask >> d & 1u) ? 1 : in->shape[d];
  const mt_tensor *k = g;
  if (!keepdim && g->ndim != in->ndim) k = T(mt_reshape(g, in->ndim, kept));
  return k ? T(mt_expand(k, in->ndim, in->shape)) : NULL;
}

mt_tensor *mti_grad_run(mti_grad_ctx *c, mti_op op, int n, const mt_tensor *const *in,
                        const mti_attrs *at) {
  static const char *const names[] = {"in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7"};
  for (int i = 0; i < n; i++)
    if (!in[i] && !mti_input_optional(mti_op_get((int)op), i)) return T(NULL);
  return T(mti_run_op(op, n, in, names, at));
}

mt_status mti_grad_run_multi(mti_grad_ctx *c, mti_op op, int n, const mt_tensor *const *in,
                             const mti_attrs *at, mt_tensor **outs) {
  static const char *const names[] = {"in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7"};
  const mti_op_info *info = mti_op_get((int)op);
  for (int k = 0; k < info->nout; k++) outs[k] = NULL;
  int missing = 0; /* a required input whose making failed (its error is kept) */
  for (int i = 0; i < n; i++) missing |= !in[i] && !mti_input_optional(info, i);
  if (missing || mti_run_op_multi(op, n, in, names, at, outs)) {
    T(NULL);
    return mti_grad_status(c);
  }
  for (int k = 0; k < info->nout; k++) T(outs[k]);
  return MT_OK;
}
