/*
 * rules_elementwise.c - backward rules of the elementwise ops.
 *
 * Each returns its gradients in out0's broadcast shape; the engine sums
 * them back to each input's shape (autograd/rules.h). Formulas are
 * torch.autograd's (derivatives.yaml), including its choices at the
 * corners: ties of maximum split the gradient, relu's is 0 at 0, pow's
 * exponent gradient is 0 where the base is 0.
 */
#include <math.h>

#include "autograd/rules.h"

#define X (c->in[0])
#define Y (c->in[1])
#define OUT (c->out[0])
#define PASS ((mt_tensor *)g)

/* g * factor into input 0 (the usual shape of a unary rule). */
static mt_status unary_times(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin,
                             mt_tensor *factor) {
  gin[0] = factor ? T(mt_mul(g, factor)) : NULL;
  return mti_grad_status(c);
}

/* 0-d v in g's dtype. */
static mt_tensor *scalar(mti_grad_ctx *c, const mt_tensor *g, double v) {
  return mti_grad_scalar(c, v, mt_tensor_dtype(g));
}

/* A bool mask as g's dtype (1 / 0). */
static mt_tensor *as_g(mti_grad_ctx *c, const mt_tensor *g, mt_tensor *mask) {
  return T(mt_cast(mask, mt_tensor_dtype(g)));
}

/* g where keep, 0 elsewhere. */
static mt_tensor *g_where(mti_grad_ctx *c, const mt_tensor *g, mt_tensor *keep) {
  return T(mt_where(keep, g, scalar(c, g, 0)));
}

mt_status grad_copy(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = PASS; /* the engine casts it back to the input's dtype */
  return mti_grad_status(c);
}

mt_status grad_zero(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  (void)g, (void)gin; /* piecewise constant: a zero gradient */
  return mti_grad_status(c);
}

mt_status grad_add(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = gin[1] = PASS;
  return mti_grad_status(c);
}

mt_status grad_sub(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = PASS;
  if (mti_grad_needed(c, 1)) gin[1] = T(mt_neg(g));
  return mti_grad_status(c);
}

mt_status grad_mul(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_mul(g, Y));
  if (mti_grad_needed(c, 1)) gin[1] = T(mt_mul(g, X));
  return mti_grad_status(c);
}

mt_status grad_div(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_div(g, Y));
  if (mti_grad_needed(c, 1))
    gin[1] = T(mt_neg(T(mt_div(T(mt_mul(g, X)), T(mt_mul(Y, Y))))));
  return mti_grad_status(c);
}

mt_status grad_pow(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  if (mti_grad_needed(c, 0)) {
    /* b * a^(b-1); 0 where b is 0 (torch), which a^-1 at a = 0 would make NaN */
    mt_tensor *d = T(mt_mul(Y, T(mt_pow(X, T(mt_add_scalar(Y, -1.0))))));
    gin[0] = T(mt_mul(g, T(mt_where(T(mt_eq(Y, scalar(c, g, 0))), scalar(c, g, 0), d))));
  }
  if (mti_grad_needed(c, 1)) {
    mt_tensor *d = T(mt_mul(c->out[0], T(mt_log(X))));
    mt_tensor *base0 = T(mt_logical_and(T(mt_eq(X, scalar(c, g, 0))),
                                        T(mt_ge(Y, scalar(c, g, 0)))));
    gin[1] = T(mt_mul(g, T(mt_where(base0, scalar(c, g, 0), d))));
  }
  return mti_grad_status(c);
}

/* maximum / minimum: the winner takes g, a tie splits it in halves. */
static mt_status extreme(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin, int is_max) {
  mt_tensor *wins = as_g(c, g, T(is_max ? mt_gt(X, Y) : mt_lt(X, Y)));
  mt_tensor *ties = as_g(c, g, T(mt_eq(X, Y)));
  mt_tensor *share = T(mt_add(wins, T(mt_mul_scalar(ties, 0.5))));
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_mul(g, share));
  if (mti_grad_needed(c, 1)) gin[1] = T(mt_mul(g, T(mt_add_scalar(T(mt_neg(share)), 1.0))));
  return mti_grad_status(c);
}

mt_status grad_maximum(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return extreme(c, g, gin, 1);
}

mt_status grad_minimum(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return extreme(c, g, gin, 0);
}

mt_status grad_add_scalar(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = PASS;
  return mti_grad_status(c);
}

mt_status grad_mul_scalar(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_mul_scalar(g, c->at->s0));
  return mti_grad_status(c);
}

mt_status grad_pow_scalar(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  double p = c->at->s0;
  if (p == 0) return mti_grad_status(c); /* a^0 is constant */
  return unary_times(c, g, gin, T(mt_mul_scalar(T(mt_pow_scalar(X, p - 1.0)), p)));
}

mt_status grad_neg(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_neg(g));
  return mti_grad_status(c);
}

mt_status grad_abs(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_sign(X)));
}

mt_status grad_relu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = g_where(c, g, T(mt_gt(OUT, scalar(c, g, 0))));
  return mti_grad_status(c);
}

mt_status grad_exp(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, OUT);
}

mt_status grad_log(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, X));
  return mti_grad_status(c);
}

mt_status grad_sqrt(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_mul_scalar(OUT, 2.0))));
  return mti_grad_status(c);
}

mt_status grad_rsqrt(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_mul_scalar(T(mt_pow_scalar(OUT, 3.0)), -0.5)));
}

mt_status grad_sin(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_cos(X)));
}

mt_status grad_cos(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_neg(T(mt_sin(X)))));
}

/* 1 - out^2 (tanh; tan's is 1 + out^2). */
static mt_tensor *one_minus_square(mti_grad_ctx *c, mt_tensor *t, double sign) {
  return T(mt_add_scalar(T(mt_mul_scalar(T(mt_square(t)), -sign)), 1.0));
}

mt_status grad_tanh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, one_minus_square(c, OUT, 1.0));
}

mt_status grad_tan(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, one_minus_square(c, OUT, -1.0));
}

mt_status grad_sigmoid(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_mul(OUT, T(mt_add_scalar(T(mt_neg(OUT)), 1.0)))));
}

mt_status grad_reciprocal(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_neg(T(mt_square(OUT)))));
}

mt_status grad_expm1(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_add_scalar(OUT, 1.0)));
}

/* The standard normal density at x. */
static mt_tensor *normal_pdf(mti_grad_ctx *c, const mt_tensor *x) {
  return T(mt_mul_scalar(T(mt_exp(T(mt_mul_scalar(T(mt_square(x)), -0.5)))),
                         1.0 / sqrt(2.0 * M_PI)));
}

mt_status grad_gelu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* Phi(x) + x phi(x) */
  mt_tensor *cdf = T(mt_mul_scalar(T(mt_add_scalar(T(mt_erf(T(mt_mul_scalar(X, M_SQRT1_2)))),
                                                   1.0)), 0.5));
  return unary_times(c, g, gin, T(mt_add(cdf, T(mt_mul(X, normal_pdf(c, X))))));
}

mt_status grad_gelu_tanh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  const double k = sqrt(2.0 / M_PI), a = 0.044715;
  mt_tensor *x2 = T(mt_square(X));
  mt_tensor *u = T(mt_mul_scalar(T(mt_mul(X, T(mt_add_scalar(T(mt_mul_scalar(x2, a)), 1.0)))), k));
  mt_tensor *t = T(mt_tanh(u));
  mt_tensor *du = T(mt_mul_scalar(T(mt_add_scalar(T(mt_mul_scalar(x2, 3.0 * a)), 1.0)), k));
  mt_tensor *left = T(mt_mul_scalar(T(mt_add_scalar(t, 1.0)), 0.5));
  mt_tensor *right = T(mt_mul(T(mt_mul_scalar(T(mt_mul(X, one_minus_square(c, t, 1.0))), 0.5)), du));
  return unary_times(c, g, gin, T(mt_add(left, right)));
}

mt_status grad_silu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* s (1 + x (1 - s)) */
  mt_tensor *s = T(mt_sigmoid(X));
  mt_tensor *inner = T(mt_add_scalar(T(mt_mul(X, T(mt_add_scalar(T(mt_neg(s)), 1.0)))), 1.0));
  return unary_times(c, g, gin, T(mt_mul(s, inner)));
}

mt_status grad_softplus(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_sigmoid(X)));
}

mt_status grad_mish(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x) */
  mt_tensor *t = T(mt_tanh(T(mt_softplus(X))));
  mt_tensor *right = T(mt_mul(T(mt_mul(X, T(mt_sigmoid(X)))), one_minus_square(c, t, 1.0)));
  return unary_times(c, g, gin, T(mt_add(t, right)));
}

mt_status grad_erf(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin,
                     T(mt_mul_scalar(T(mt_exp(T(mt_neg(T(mt_square(X)))))), 2.0 / sqrt(M_PI))));
}

mt_status grad_erfc(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin,
                     T(mt_mul_scalar(T(mt_exp(T(mt_neg(T(mt_square(X)))))), -2.0 / sqrt(M_PI))));
}

mt_status grad_log1p(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_add_scalar(X, 1.0))));
  return mti_grad_status(c);
}

mt_status grad_log2(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_mul_scalar(X, M_LN2))));
  return mti_grad_status(c);
}

mt_status grad_log10(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_mul_scalar(X, M_LN10))));
  return mti_grad_status(c);
}

/* sign / sqrt(sign2 * x^2 + constant): asin, acos, asinh, acosh. */
static mt_status inverse_root(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin, double sign,
                              double square_sign, double constant) {
  mt_tensor *r = T(mt_rsqrt(T(mt_add_scalar(T(mt_mul_scalar(T(mt_square(X)), square_sign)),
                                            constant))));
  return unary_times(c, g, gin, sign < 0 ? T(mt_neg(r)) : r);
}

mt_status grad_asin(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return inverse_root(c, g, gin, 1.0, -1.0, 1.0);
}

mt_status grad_acos(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return inverse_root(c, g, gin, -1.0, -1.0, 1.0);
}

mt_status grad_asinh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return inverse_root(c, g, gin, 1.0, 1.0, 1.0);
}

mt_status grad_acosh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return inverse_root(c, g, gin, 1.0, 1.0, -1.0);
}

mt_status grad_atan(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_add_scalar(T(mt_square(X)), 1.0))));
  return mti_grad_status(c);
}

mt_status grad_atanh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_div(g, T(mt_add_scalar(T(mt_neg(T(mt_square(X)))), 1.0))));
  return mti_grad_status(c);
}

mt_status grad_sinh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_cosh(X)));
}

mt_status grad_cosh(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_sinh(X)));
}

mt_status grad_square(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return unary_times(c, g, gin, T(mt_mul_scalar(X, 2.0)));
}

mt_status grad_leaky_relu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_where(T(mt_gt(X, scalar(c, g, 0))), g, T(mt_mul_scalar(g, c->at->s0))));
  return mti_grad_status(c);
}

mt_status grad_elu(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *neg_side = T(mt_mul(g, T(mt_add_scalar(OUT, c->at->s0))));
  gin[0] = T(mt_where(T(mt_gt(X, scalar(c, g, 0))), g, neg_side));
  return mti_grad_status(c);
}

mt_status grad_nan_to_num(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = g_where(c, g, T(mt_isfinite(X)));
  return mti_grad_status(c);
}

mt_status grad_where(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *zero = scalar(c, g, 0);
  if (mti_grad_needed(c, 1)) gin[1] = T(mt_where(X, g, zero));
  if (mti_grad_needed(c, 2)) gin[2] = T(mt_where(X, zero, g));
  return mti_grad_status(c);
}

mt_status grad_clamp(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *inside = T(mt_logical_and(T(mt_ge(X, scalar(c, g, c->at->s0))),
                                       T(mt_le(X, scalar(c, g, c->at->s1)))));
  gin[0] = g_where(c, g, inside);
  return mti_grad_status(c);
}

mt_status grad_atan2(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  mt_tensor *r2 = T(mt_add(T(mt_square(X)), T(mt_square(Y))));
  mt_tensor *gr = T(mt_div(g, r2));
  if (mti_grad_needed(c, 0)) gin[0] = T(mt_mul(gr, Y));
  if (mti_grad_needed(c, 1)) gin[1] = T(mt_neg(T(mt_mul(gr, X))));
  return mti_grad_status(c);
}

/* remainder and fmod: a - q b with q = floor (remainder) or trunc (fmod) of a / b. */
static mt_status division(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin, int floor_q) {
  gin[0] = PASS;
  if (mti_grad_needed(c, 1)) {
    mt_tensor *ratio = T(mt_div(X, Y));
    mt_tensor *q = T(floor_q ? mt_floor(ratio) : mt_trunc(ratio));
    gin[1] = T(mt_neg(T(mt_mul(g, q))));
  }
  return mti_grad_status(c);
}

mt_status grad_remainder(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return division(c, g, gin, 1);
}

mt_status grad_fmod(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  return division(c, g, gin, 0);
}

mt_status grad_masked_fill(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  gin[0] = T(mt_masked_fill(g, Y, 0.0));
  return mti_grad_status(c);
}

mt_status grad_dropout(mti_grad_ctx *c, const mt_tensor *g, mt_tensor **gin) {
  /* The same seed drops the same elements of a tensor of ones: the mask,
   * already scaled by 1 / (1 - p). */
  const mti_meta *m = &c->out_meta[0];
  const mt_tensor *ones = T(mt_full(m->ndim, m->shape, 1.0, m->dtype, c->device));
  return unary_times(c, g, gin, ones ? mti_grad_run(c, MTI_OP_DROPOUT, 1, &ones, c->at) : NULL);
}
