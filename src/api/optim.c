/*
 * optim.c - the optimizers (mt_sgd, mt_adamw) and mt_clip_grad_norm.
 *
 * A step runs one fused node per parameter that has a gradient (SGD_STEP
 * or ADAMW_STEP of core/ops.def, pure: param, grad and state in, the new
 * param and state out), then writes the new param into the parameter with
 * mt_copy_ (one COPY node) and keeps the new state tensors in place of the
 * old. So a step on a modal device is recorded into the lazy graph like any
 * other op, with nothing downloaded: the only host work is the scalars.
 * Grad mode is off while a step or a clip runs, so nothing is recorded for
 * a backward; the write bumps the parameter's version, and a backward
 * through values kept before the step then fails, as in torch.
 *
 * The optimizer keeps its own handle on each parameter (mt_to with copy 0
 * on the parameter's own device and dtype shares the storage and the
 * autograd leaf, so mt_grad on it sees the gradients the caller's backward
 * accumulates).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/tensor_impl.h"
#include "autograd/autograd.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/optim_rules.h"

typedef enum opt_kind { OPT_SGD, OPT_ADAMW } opt_kind;

struct mt_optimizer {
  opt_kind kind;
  int n;
  mt_tensor **params;  /* the optimizer's own handles */
  mt_tensor **state0;  /* sgd: momentum buffer; adamw: exp_avg (NULL before the first step) */
  mt_tensor **state1;  /* adamw: exp_avg_sq */
  mt_tensor **steps;   /* adamw: steps taken by each param, a 0-d float64 on its device
                        * (torch's state['step']; NULL before the first step) */
  double lr, momentum, weight_decay, beta1, beta2, eps;
  int nesterov;
};

/* ------------------------------------------------------------ arguments */

static mt_status check_coef(const char *fn, const char *arg, double v, double lo, double hi) {
  if (!isfinite(v) || v < lo || (!isnan(hi) && v >= hi)) {
    if (isnan(hi))
      return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %g must be finite and >= %g", fn, arg, v,
                       lo);
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: %s: %g is outside [%g, %g)", fn, arg, v, lo,
                     hi);
  }
  return MT_OK;
}

/* A parameter: a floating leaf. */
static mt_status check_param(const char *fn, int i, mt_tensor *p) {
  if (!p) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: params[%d]: NULL", fn, i);
  if (!mti_dtype_is_float(p->dtype))
    return mti_error(MT_ERR_DTYPE, "%s: params[%d]: dtype %s; only floating tensors have "
                     "gradients", fn, i, mt_dtype_name(p->dtype));
  if (!mti_ag_is_leaf(p))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: params[%d]: made by a recorded op, not a "
                     "leaf (optimize the leaf it came from)", fn, i);
  return MT_OK;
}

void mt_optimizer_free(mt_optimizer *opt) {
  if (!opt) return;
  for (int i = 0; i < opt->n; i++) {
    if (opt->params) mt_tensor_free(opt->params[i]);
    if (opt->state0) mt_tensor_free(opt->state0[i]);
    if (opt->state1) mt_tensor_free(opt->state1[i]);
    if (opt->steps) mt_tensor_free(opt->steps[i]);
  }
  free(opt->params);
  free(opt->state0);
  free(opt->state1);
  free(opt->steps);
  free(opt);
}

/* The optimizer with its handles on the n params, or NULL with the error
 * set (the scalars are checked by the caller first). */
static mt_optimizer *optimizer_new(const char *fn, opt_kind kind, int n,
                                   mt_tensor *const *params) {
  if (n <= 0) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: n: %d, expected at least one parameter", fn, n);
    return NULL;
  }
  if (!params) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: params: NULL", fn);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (check_param(fn, i, params[i])) return NULL;
  mt_optimizer *opt = calloc(1, sizeof *opt);
  if (!opt) {
    mti_error_oom(fn, sizeof *opt);
    return NULL;
  }
  opt->kind = kind;
  size_t bytes = sizeof(mt_tensor *) * (size_t)n;
  opt->params = calloc((size_t)n, sizeof(mt_tensor *));
  opt->state0 = calloc((size_t)n, sizeof(mt_tensor *));
  opt->state1 = calloc((size_t)n, sizeof(mt_tensor *));
  opt->steps = calloc((size_t)n, sizeof(mt_tensor *));
  if (!opt->params || !opt->state0 || !opt->state1 || !opt->steps) {
    mt_optimizer_free(opt);
    mti_error_oom(fn, bytes);
    return NULL;
  }
  opt->n = n;
  for (int i = 0; i < n; i++) {
    mt_tensor *p = params[i];
    /* another handle on the same storage and the same leaf (no copy) */
    opt->params[i] = mt_to(p, p->device, p->dtype, 0);
    if (!opt->params[i]) {
      mt_optimizer_free(opt);
      return NULL;
    }
  }
  return opt;
}

mt_optimizer *mt_sgd(int n, mt_tensor *const *params, double lr, double momentum,
                     double weight_decay, int nesterov) {
  const char *fn = "mt_sgd";
  if (check_coef(fn, "lr", lr, 0, NAN) || check_coef(fn, "momentum", momentum, 0, NAN) ||
      check_coef(fn, "weight_decay", weight_decay, 0, NAN))
    return NULL;
  if (nesterov && !(momentum > 0)) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: nesterov: needs momentum > 0 (dampening is 0)", fn);
    return NULL;
  }
  mt_optimizer *opt = optimizer_new(fn, OPT_SGD, n, params);
  if (!opt) return NULL;
  opt->lr = lr;
  opt->momentum = momentum;
  opt->weight_decay = weight_decay;
  opt->nesterov = nesterov != 0;
  return opt;
}

mt_optimizer *mt_adamw(int n, mt_tensor *const *params, double lr, double beta1, double beta2,
                       double eps, double weight_decay) {
  const char *fn = "mt_adamw";
  if (check_coef(fn, "lr", lr, 0, NAN) || check_coef(fn, "beta1", beta1, 0, 1) ||
      check_coef(fn, "beta2", beta2, 0, 1) || check_coef(fn, "eps", eps, 0, NAN) ||
      check_coef(fn, "weight_decay", weight_decay, 0, NAN))
    return NULL;
  mt_optimizer *opt = optimizer_new(fn, OPT_ADAMW, n, params);
  if (!opt) return NULL;
  opt->lr = lr;
  opt->beta1 = beta1;
  opt->beta2 = beta2;
  opt->eps = eps;
  opt->weight_decay = weight_decay;
  return opt;
}

/* ------------------------------------------------------------ steps */

static mt_status sgd_update(mt_optimizer *opt, int i, const mt_tensor *g, mt_tensor **outs) {
  static const char *const names[] = {"param", "grad", "momentum_buffer"};
  const mt_tensor *in[3] = {opt->params[i], g, opt->state0[i]};
  mti_attrs at = {0};
  at.s0 = opt->lr;
  at.s1 = opt->momentum;
  at.s2 = opt->weight_decay;
  at.n_ints = 1;
  at.ints[0] = opt->nesterov;
  mt_status s = mti_run_op_multi(MTI_OP_SGD_STEP, 3, in, names, &at, outs);
  if (s) return s;
  if (opt->momentum > 0) {
    mt_tensor_free(opt->state0[i]);
    opt->state0[i] = outs[1];
  } else {
    mt_tensor_free(outs[1]);
  }
  outs[1] = NULL;
  return MT_OK;
}

static mt_status adamw_update(mt_optimizer *opt, int i, const mt_tensor *g, mt_tensor **outs) {
  static const char *const names[] = {"param", "grad", "exp_avg", "exp_avg_sq", "step"};
  mt_tensor *p = opt->params[i];
  for (int k = 0; k < 2; k++) {
    mt_tensor **st = k ? &opt->state1[i] : &opt->state0[i];
    /* torch's zeros_like on the first step: a fill node, nothing uploaded */
    if (!*st && !(*st = mt_zeros(p->ndim, p->shape, p->dtype, p->device))) return mt_last_status();
  }
  if (!opt->steps[i] && !(opt->steps[i] = mt_zeros(0, NULL, MT_FLOAT64, p->device)))
    return mt_last_status();
  const mt_tensor *in[5] = {p, g, opt->state0[i], opt->state1[i], opt->steps[i]};
  mti_attrs at = {0};
  at.s0 = opt->lr;
  at.s1 = opt->beta1;
  at.s2 = opt->beta2;
  at.n_ints = MTI_ADAMW_N_INTS;
  /* the step count and its bias corrections stay on the device: the same
   * attrs every step, so a modal step's graph goes by reference */
  at.ints[MTI_ADAMW_INT_EPS] = mti_optim_double_bits(opt->eps);
  at.ints[MTI_ADAMW_INT_WEIGHT_DECAY] = mti_optim_double_bits(opt->weight_decay);
  mt_status s = mti_run_op_multi(MTI_OP_ADAMW_STEP, 5, in, names, &at, outs);
  if (s) return s;
  mt_tensor **state[3] = {&opt->state0[i], &opt->state1[i], &opt->steps[i]};
  for (int k = 0; k < 3; k++) {
    mt_tensor_free(*state[k]);
    *state[k] = outs[k + 1];
    outs[k + 1] = NULL;
  }
  return MT_OK;
}

mt_status mt_optimizer_step(mt_optimizer *opt) {
  if (!opt) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_optimizer_step: opt: NULL");
  int was_enabled = mt_grad_enabled();
  mt_set_grad_enabled(0);
  mt_status s = MT_OK;
  for (int i = 0; i < opt->n && !s; i++) {
    mt_tensor *g = NULL;
    if ((s = mt_grad(opt->params[i], &g)) || !g) continue; /* no gradient: skipped, as torch */
    mt_tensor *outs[MTI_MAX_OUTPUTS] = {NULL};
    s = opt->kind == OPT_SGD ? sgd_update(opt, i, g, outs) : adamw_update(opt, i, g, outs);
    if (!s) s = mt_copy_(opt->params[i], outs[0]);
    mt_tensor_free(outs[0]);
    mt_tensor_free(g);
  }
  mt_set_grad_enabled(was_enabled);
  return s;
}

mt_status mt_optimizer_zero_grad(mt_optimizer *opt) {
  if (!opt) return mti_error(MT_ERR_INVALID_ARGUMENT, "mt_optimizer_zero_grad: opt: NULL");
  for (int i = 0; i < opt->n; i++) {
    mt_status s = mt_zero_grad(opt->params[i]);
    if (s) return s;
  }
  return MT_OK;
}

mt_status mt_optimizer_set_lr(mt_optimizer *opt, double lr) {
  const char *fn = "mt_optimizer_set_lr";
  if (!opt) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: opt: NULL", fn);
  mt_status s = check_coef(fn, "lr", lr, 0, NAN);
  if (s) return s;
  opt->lr = lr;
  return MT_OK;
}

/* ------------------------------------------------------------ clipping */

/* The sum of g's squares as a 0-d tensor of dtype acc on g's device,
 * computed in acc. */
static mt_tensor *sum_of_squares(const mt_tensor *g, mt_dtype acc) {
  mt_tensor *wide = mt_to(g, g->device, acc, 0);
  mt_tensor *sq = wide ? mt_mul(wide, wide) : NULL;
  mt_tensor *sum = sq ? mt_sum(sq, 0, NULL, 0) : NULL;
  mt_tensor_free(wide);
  mt_tensor_free(sq);
  return sum;
}

/* g *= coef in place (coef 0-d), in g's dtype as torch's mul_. */
static mt_status scale_in_place(mt_tensor *g, const mt_tensor *coef) {
  mt_tensor *c = mt_to(coef, g->device, g->dtype, 0);
  mt_tensor *scaled = c ? mt_mul(g, c) : NULL;
  mt_status s = scaled ? mt_copy_(g, scaled) : mt_last_status();
  mt_tensor_free(c);
  mt_tensor_free(scaled);
  return s;
}

/* 1 when a and b are the same elements (one storage, one geometry). */
static int same_view(const mt_tensor *a, const mt_tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset || a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] || a->strides[d] != b->strides[d]) return 0;
  return 1;
}

/* total = sqrt(sum of squares) over the gradients grads[0..m); coef =
 * min(1, max_norm / (total + 1e-6)) as torch (max_norm * reciprocal). The
 * sums run in float32, or in float64 when a gradient is float64 (torch's
 * norm then is float64 too); the total returned is float32. */
static mt_status clip(int m, mt_tensor **grads, double max_norm, mt_tensor **total_out) {
  mt_tensor *sumsq = NULL, *total = NULL, *coef = NULL;
  mt_status s = MT_OK;
  mt_device home = grads[0]->device;
  mt_dtype acc = MT_FLOAT32;
  for (int k = 0; k < m; k++)
    if (grads[k]->dtype == MT_FLOAT64) acc = MT_FLOAT64;
  for (int k = 0; k < m && !s; k++) {
    mt_tensor *part = sum_of_squares(grads[k], acc), *here = NULL;
    if (part) here = mt_to(part, home, acc, 0);
    mt_tensor_free(part);
    if (!here) {
      s = mt_last_status();
      break;
    }
    if (!sumsq) {
      sumsq = here;
      continue;
    }
    mt_tensor *next = mt_add(sumsq, here);
    mt_tensor_free(here);
    mt_tensor_free(sumsq);
    sumsq = next;
    if (!sumsq) s = mt_last_status();
  }
  if (!s && !(total = mt_sqrt(sumsq))) s = mt_last_status();
  if (!s) {
    mt_tensor *shifted = mt_add_scalar(total, 1e-6);
    mt_tensor *inv = shifted ? mt_reciprocal(shifted) : NULL;
    mt_tensor *raw = inv ? mt_mul_scalar(inv, max_norm) : NULL;
    coef = raw ? mt_clamp(raw, -INFINITY, 1.0) : NULL;
    if (!coef) s = mt_last_status();
    mt_tensor_free(shifted);
    mt_tensor_free(inv);
    mt_tensor_free(raw);
  }
  /* A parameter listed twice holds one gradient: it counts for each above
   * but is scaled once. */
  for (int k = 0; k < m && !s; k++) {
    int seen = 0;
    for (int j = 0; j < k && !seen; j++) seen = same_view(grads[j], grads[k]);
    if (!seen) s = scale_in_place(grads[k], coef);
  }
  mt_tensor_free(sumsq);
  mt_tensor_free(coef);
  mt_tensor *total32 = s ? NULL : mt_to(total, home, MT_FLOAT32, 0);
  mt_tensor_free(total);
  if (!s && !total32) s = mt_last_status();
  if (s) return s;
  *total_out = total32;
  return MT_OK;
}

mt_status mt_clip_grad_norm(int n, mt_tensor *const *params, double max_norm,
                            mt_tensor **total_norm) {
  const char *fn = "mt_clip_grad_norm";
  if (total_norm) *total_norm = NULL;
  if (n < 0) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: n: %d is negative", fn, n);
  if (n > 0 && !params) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: params: NULL", fn);
  if (!(max_norm > 0))
    return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: max_norm: %g must be > 0", fn, max_norm);
  for (int i = 0; i < n; i++)
    if (!params[i]) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: params[%d]: NULL", fn, i);
  mt_tensor **grads = calloc((size_t)(n > 0 ? n : 1), sizeof *grads);
  if (!grads) return mti_error_oom(fn, sizeof *grads * (size_t)(n > 0 ? n : 1));
  int was_enabled = mt_grad_enabled();
  mt_set_grad_enabled(0);
  int m = 0;
  mt_status s = MT_OK;
  for (int i = 0; i < n && !s; i++) {
    mt_tensor *g = NULL;
    if (!(s = mt_grad(params[i], &g)) && g) grads[m++] = g;
  }
  mt_tensor *total = NULL;
  if (!s && m > 0) {
    s = clip(m, grads, max_norm, &total);
  } else if (!s) {
    /* nothing to clip: a total of 0, as torch's empty case */
    mt_device home = n > 0 ? params[0]->device : (mt_device){MT_DEVICE_CPU, 0};
    if (!(total = mt_zeros(0, NULL, MT_FLOAT32, home))) s = mt_last_status();
  }
  for (int k = 0; k < m; k++) mt_tensor_free(grads[k]);
  free(grads);
  mt_set_grad_enabled(was_enabled);
  if (s) return s;
  if (total_norm)
    *total_norm = total;
  else
    mt_tensor_free(total);
  return MT_OK;
}
