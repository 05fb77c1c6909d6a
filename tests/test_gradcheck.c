/*
 * test_gradcheck.c - every differentiable op's backward against central
 * finite differences in float64.
 *
 * Each case is a function of float64 inputs (integer arguments such as
 * indices are fixed inside it). The loss is sum(f(x) * w) with fixed
 * random weights w, so that every output element's gradient matters; its
 * gradient by mt_backward must match (L(x + h e_j) - L(x - h e_j)) / 2h for
 * every element j of every input. The op list comes from src/core/ops.def:
 * every op whose GRAD column names a rule must have a case here
 * (test_every_rule_has_a_case).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define MAX_IN 4
#define STEP 1e-6

typedef mt_tensor *(*case_fn)(mt_tensor *const *x);

typedef struct grad_case {
  const char *op;    /* the ops.def name it covers */
  const char *label; /* what is special about it */
  int n;
  int ndim[MAX_IN];
  int64_t shape[MAX_IN][4];
  double lo, hi; /* inputs drawn from [lo, hi) */
  case_fn f;
} grad_case;

/* ----------------------------------------------------------- the cases */

/* Tensors a case makes on the way, freed after each evaluation. */
static mt_tensor *made[64];
static int n_made;
static mt_tensor *K(mt_tensor *t) {
  if (t && n_made < 64) made[n_made++] = t;
  return t;
}
static void free_made(void) {
  while (n_made > 0) mt_tensor_free(made[--n_made]);
}
static mt_tensor *I64(const int64_t *v, int ndim, const int64_t *shape) {
  return K(mt_from_data(v, ndim, shape, MT_INT64, TU_CPU));
}
static mt_tensor *BOOLS(const uint8_t *v, int ndim, const int64_t *shape) {
  return K(mt_from_data(v, ndim, shape, MT_BOOL, TU_CPU));
}

#define X0 x[0]
#define X1 x[1]
#define X2 x[2]
#define X3 x[3]

/* Unary ops: f(x). */
#define UNARY(name, lo, hi)                                             \
  static mt_tensor *f_##name(mt_tensor *const *x) { return mt_##name(X0); }
#define UNARY_CASE(name, lo, hi) {#name, "", 1, {2}, {{3, 4}}, lo, hi, f_##name},

#define UNARIES(X)                                                                          \
  X(neg, -2, 2) X(abs, -2, 2) X(relu, -2, 2) X(floor, -2, 2) X(ceil, -2, 2) X(round, -2, 2)  \
  X(sign, -2, 2) X(exp, -2, 2) X(log, 0.5, 3) X(sqrt, 0.5, 3) X(rsqrt, 0.5, 3) X(sin, -3, 3) \
  X(cos, -3, 3) X(tanh, -2, 2) X(sigmoid, -3, 3) X(gelu, -3, 3) X(silu, -3, 3)               \
  X(reciprocal, 0.5, 2) X(erf, -2, 2) X(erfc, -2, 2) X(log1p, -0.5, 2) X(expm1, -2, 2)       \
  X(log2, 0.5, 3) X(log10, 0.5, 3) X(tan, -1, 1) X(asin, -0.8, 0.8) X(acos, -0.8, 0.8)       \
  X(atan, -3, 3) X(sinh, -2, 2) X(cosh, -2, 2) X(asinh, -3, 3) X(acosh, 1.5, 3)              \
  X(atanh, -0.8, 0.8) X(softplus, -3, 3) X(gelu_tanh, -3, 3) X(mish, -3, 3) X(trunc, -2, 2)  \
  X(square, -2, 2)
UNARIES(UNARY)

/* Binary ops, broadcasting [3, 4] with [4]. */
#define BINARY(name, lo, hi)                                            \
  static mt_tensor *f_##name(mt_tensor *const *x) { return mt_##name(X0, X1); }
#define BINARY_CASE(name, lo, hi) {#name, "broadcast", 2, {2, 1}, {{3, 4}, {4}}, lo, hi, f_##name},
#define BINARIES(X) \
  X(add, -2, 2) X(sub, -2, 2) X(mul, -2, 2) X(div, 0.5, 2) X(pow, 0.5, 2) X(maximum, -2, 2) \
  X(minimum, -2, 2) X(atan2, 0.5, 2) X(remainder, 0.3, 3) X(fmod, 0.3, 3)
BINARIES(BINARY)

static mt_tensor *f_add_scalar(mt_tensor *const *x) { return mt_add_scalar(X0, 1.5); }
static mt_tensor *f_mul_scalar(mt_tensor *const *x) { return mt_mul_scalar(X0, -2.5); }
static mt_tensor *f_pow_scalar(mt_tensor *const *x) { return mt_pow_scalar(X0, 2.5); }
static mt_tensor *f_leaky_relu(mt_tensor *const *x) { return mt_leaky_relu(X0, 0.1); }
static mt_tensor *f_elu(mt_tensor *const *x) { return mt_elu(X0, 1.3); }
static mt_tensor *f_nan_to_num(mt_tensor *const *x) { return mt_nan_to_num(X0, 0, 1e3, -1e3); }
static mt_tensor *f_clamp(mt_tensor *const *x) { return mt_clamp(X0, -0.5, 0.7); }
static mt_tensor *f_copy(mt_tensor *const *x) { return mt_clone(K(mt_transpose(X0, 0, 1))); }
static mt_tensor *f_cast(mt_tensor *const *x) { return mt_cast(X0, MT_FLOAT64); }
static mt_tensor *f_where(mt_tensor *const *x) {
  static const uint8_t keep[] = {1, 0, 0, 1};
  return mt_where(BOOLS(keep, 1, TU_SHAPE(4)), X0, X1);
}
static mt_tensor *f_masked_fill(mt_tensor *const *x) {
  static const uint8_t mask[] = {0, 1, 1, 0};
  return mt_masked_fill(X0, BOOLS(mask, 1, TU_SHAPE(4)), 2.0);
}
static mt_tensor *f_dropout(mt_tensor *const *x) { return mt_dropout(X0, 0.4, 7); }

/* Reductions over dim 1, and over everything. */
static const int dim1[] = {1};
static mt_tensor *f_sum(mt_tensor *const *x) { return mt_sum(X0, 1, dim1, 0); }
static mt_tensor *f_sum_all(mt_tensor *const *x) { return mt_sum(X0, 0, NULL, 0); }
static mt_tensor *f_mean(mt_tensor *const *x) { return mt_mean(X0, 1, dim1, 1); }
static mt_tensor *f_prod(mt_tensor *const *x) { return mt_prod(X0, 1, dim1, 0); }
static mt_tensor *f_prod_zero(mt_tensor *const *x) {
  /* one zero and two zeros in a row */
  static const double mask[] = {1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1};
  mt_tensor *m = K(mt_from_data(mask, 2, TU_SHAPE(3, 4), MT_FLOAT64, TU_CPU));
  return mt_prod(K(mt_mul(X0, m)), 1, dim1, 0);
}
static mt_tensor *f_amax(mt_tensor *const *x) { return mt_amax(X0, 1, dim1, 0); }
static mt_tensor *f_amin(mt_tensor *const *x) { return mt_amin(X0, 0, NULL, 1); }
static mt_tensor *f_amax_ties(mt_tensor *const *x) {
  /* clamping makes ties at the maximum: they share the gradient */
  return mt_amax(K(mt_clamp(X0, -INFINITY, 0.5)), 1, dim1, 0);
}
static mt_tensor *f_var(mt_tensor *const *x) { return mt_var(X0, 1, dim1, 1.0, 0); }
static mt_tensor *f_std(mt_tensor *const *x) { return mt_std(X0, 0, NULL, 0.0, 1); }
static mt_tensor *f_logsumexp(mt_tensor *const *x) { return mt_logsumexp(X0, 1, dim1, 0); }
static mt_tensor *f_norm(mt_tensor *const *x) { return mt_norm(X0, 2.0, 1, dim1, 0); }
static mt_tensor *f_norm3(mt_tensor *const *x) { return mt_norm(X0, 3.0, 0, NULL, 0); }
static mt_tensor *f_norm1(mt_tensor *const *x) { return mt_norm(X0, 1.0, 1, dim1, 0); }
static mt_tensor *f_norm_inf(mt_tensor *const *x) { return mt_norm(X0, INFINITY, 1, dim1, 0); }
static mt_tensor *f_max_dim(mt_tensor *const *x) {
  mt_tensor *v = NULL, *i = NULL;
  mt_max_dim(X0, 1, 0, &v, &i);
  K(i);
  return v;
}
static mt_tensor *f_min_dim(mt_tensor *const *x) {
  mt_tensor *v = NULL, *i = NULL;
  mt_min_dim(X0, 0, 1, &v, &i);
  K(i);
  return v;
}
static mt_tensor *f_sort(mt_tensor *const *x) {
  mt_tensor *v = NULL, *i = NULL;
  mt_sort(X0, 1, 1, &v, &i);
  K(i);
  return v;
}
static mt_tensor *f_topk(mt_tensor *const *x) {
  mt_tensor *v = NULL, *i = NULL;
  mt_topk(X0, 2, 1, 1, &v, &i);
  K(i);
  return v;
}
static mt_tensor *f_cumsum(mt_tensor *const *x) { return mt_cumsum(X0, 1); }
static mt_tensor *f_cumprod(mt_tensor *const *x) { return mt_cumprod(X0, 1); }
static mt_tensor *f_cumprod_zero(mt_tensor *const *x) {
  static const double mask[] = {1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1};
  mt_tensor *m = K(mt_from_data(mask, 2, TU_SHAPE(3, 4), MT_FLOAT64, TU_CPU));
  return mt_cumprod(K(mt_mul(X0, m)), 1);
}
static mt_tensor *f_softmax(mt_tensor *const *x) { return mt_softmax(X0, 1); }
static mt_tensor *f_log_softmax(mt_tensor *const *x) { return mt_log_softmax(X0, 0); }
static mt_tensor *f_layer_norm(mt_tensor *const *x) { return mt_layer_norm(X0, X1, X2, 1e-5); }
static mt_tensor *f_layer_norm_plain(mt_tensor *const *x) {
  return mt_layer_norm(X0, NULL, NULL, 1e-5);
}
static mt_tensor *f_matmul(mt_tensor *const *x) { return mt_matmul(X0, X1); }
static mt_tensor *f_cat(mt_tensor *const *x) {
  const mt_tensor *parts[] = {X0, X1};
  return mt_cat(2, parts, 1);
}
static mt_tensor *f_index_select(mt_tensor *const *x) {
  static const int64_t index[] = {2, 0, 2};
  return mt_index_select(X0, 1, I64(index, 1, TU_SHAPE(3)));
}
static mt_tensor *f_gather(mt_tensor *const *x) {
  static const int64_t index[] = {0, 0, 3, 1, 2, 2};
  return mt_gather(X0, 1, I64(index, 2, TU_SHAPE(3, 2)));
}
static mt_tensor *f_scatter(mt_tensor *const *x) {
  static const int64_t index[] = {3, 0, 1, 2, 0, 1};
  return mt_scatter(X0, 1, I64(index, 2, TU_SHAPE(3, 2)), X1);
}
static mt_tensor *f_scatter_add(mt_tensor *const *x) {
  static const int64_t index[] = {3, 3, 1, 2, 0, 0};
  return mt_scatter_add(X0, 1, I64(index, 2, TU_SHAPE(3, 2)), X1);
}
static mt_tensor *f_index_add(mt_tensor *const *x) {
  static const int64_t index[] = {1, 1, 0};
  return mt_index_add(X0, 1, I64(index, 1, TU_SHAPE(3)), X1);
}
static mt_tensor *f_embedding(mt_tensor *const *x) {
  static const int64_t index[] = {4, 0, 4, 2, 1, 4};
  return mt_embedding(X0, I64(index, 2, TU_SHAPE(2, 3)));
}
static mt_tensor *f_flip(mt_tensor *const *x) {
  static const int dims[] = {0, 1};
  return mt_flip(X0, 2, dims);
}
static mt_tensor *f_roll(mt_tensor *const *x) {
  static const int64_t shifts[] = {1, -3};
  static const int dims[] = {0, 1};
  return mt_roll(X0, 2, shifts, dims);
}
static mt_tensor *f_repeat(mt_tensor *const *x) {
  static const int64_t repeats[] = {2, 1, 3};
  return mt_repeat(X0, 3, repeats);
}
static mt_tensor *f_pad(mt_tensor *const *x) {
  static const int64_t pads[] = {1, 2, -1, 1};
  return mt_pad(X0, 4, pads, MT_PAD_CONSTANT, 3.0);
}
static mt_tensor *f_pad_reflect(mt_tensor *const *x) {
  static const int64_t pads[] = {2, 3, 1, 0};
  return mt_pad(X0, 4, pads, MT_PAD_REFLECT, 0);
}
static mt_tensor *f_pad_replicate(mt_tensor *const *x) {
  static const int64_t pads[] = {2, 1, 0, 2};
  return mt_pad(X0, 4, pads, MT_PAD_REPLICATE, 0);
}
static mt_tensor *f_tril(mt_tensor *const *x) { return mt_tril(X0, 0); }
static mt_tensor *f_triu(mt_tensor *const *x) { return mt_triu(X0, 1); }

/* Views and moves, which the engine differentiates itself. */
static mt_tensor *f_views(mt_tensor *const *x) {
  mt_tensor *t = K(mt_transpose(X0, 0, 1));             /* [4, 3] */
  mt_tensor *s = K(mt_slice(t, 0, 1, 4, 2));            /* [2, 3] */
  mt_tensor *u = K(mt_unsqueeze(s, 0));                 /* [1, 2, 3] */
  mt_tensor *e = K(mt_expand(u, 3, TU_SHAPE(2, 2, 3))); /* [2, 2, 3] */
  static const int perm[] = {2, 0, 1};
  mt_tensor *p = K(mt_permute(e, perm)); /* [3, 2, 2] */
  mt_tensor *r = K(mt_reshape(p, 2, TU_SHAPE(6, 2)));  /* a copy: p is not contiguous */
  return mt_mul(r, K(mt_unsqueeze(K(mt_squeeze(K(mt_slice(r, 1, 0, 1, 1)), 1)), 1)));
}

/* Neural-network ops. */
static mt_tensor *f_linear(mt_tensor *const *x) { return mt_linear(X0, X1, X2); }
static mt_tensor *f_rms_norm(mt_tensor *const *x) { return mt_rms_norm(X0, X1, 1e-6); }
static mt_tensor *f_group_norm(mt_tensor *const *x) { return mt_group_norm(X0, 2, X1, X2, 1e-5); }
static mt_tensor *f_batch_norm(mt_tensor *const *x) {
  return mt_batch_norm(X0, NULL, NULL, X1, X2, 1, 0.1, 1e-5);
}
static mt_tensor *f_batch_norm_eval(mt_tensor *const *x) {
  static const double mean[] = {0.1, -0.2, 0.3}, var[] = {0.5, 1.5, 2.0};
  mt_tensor *m = K(mt_from_data(mean, 1, TU_SHAPE(3), MT_FLOAT64, TU_CPU));
  mt_tensor *v = K(mt_from_data(var, 1, TU_SHAPE(3), MT_FLOAT64, TU_CPU));
  return mt_batch_norm(X0, m, v, X1, X2, 0, 0.1, 1e-5);
}
static mt_tensor *f_batch_norm_bias(mt_tensor *const *x) {
  return mt_batch_norm(X0, NULL, NULL, NULL, X1, 1, 0.1, 1e-5);
}
static mt_tensor *f_batch_norm_eval_bias(mt_tensor *const *x) {
  static const double mean[] = {0.3, 0.0, -0.4}, var[] = {0.2, 1.0, 3.0};
  mt_tensor *m = K(mt_from_data(mean, 1, TU_SHAPE(3), MT_FLOAT64, TU_CPU));
  mt_tensor *v = K(mt_from_data(var, 1, TU_SHAPE(3), MT_FLOAT64, TU_CPU));
  return mt_batch_norm(X0, m, v, NULL, X1, 0, 0.1, 1e-5);
}
/* x [2, 2, 3, 3] normalised as its transpose [2, 3, 3, 2] (strided; 3 channels) */
static mt_tensor *f_batch_norm_strided(mt_tensor *const *x) {
  return mt_batch_norm(K(mt_transpose(X0, 1, 3)), NULL, NULL, X1, X2, 1, 0.1, 1e-5);
}
static mt_tensor *f_layer_norm_weight(mt_tensor *const *x) {
  return mt_layer_norm(X0, X1, NULL, 1e-5);
}
static mt_tensor *f_rms_norm_strided(mt_tensor *const *x) {
  return mt_rms_norm(K(mt_transpose(X0, 0, 1)), NULL, 1e-6);
}
static mt_tensor *f_cross_entropy(mt_tensor *const *x) {
  static const int64_t target[] = {2, 0, 4};
  return mt_cross_entropy(X0, I64(target, 1, TU_SHAPE(3)), -100, 0.0);
}
static mt_tensor *f_cross_entropy_smooth(mt_tensor *const *x) {
  static const int64_t target[] = {1, -100, 0, 2, 2, 1};
  return mt_cross_entropy(X0, I64(target, 2, TU_SHAPE(2, 3)), -100, 0.2);
}
static mt_tensor *f_cross_entropy_vector(mt_tensor *const *x) {
  static const int64_t target[] = {4};
  return mt_cross_entropy(X0, I64(target, 0, NULL), -100, 0.3);
}
static mt_tensor *f_conv1d(mt_tensor *const *x) { return mt_conv1d(X0, X1, X2, 2, 1, 1, 1); }
static mt_tensor *f_conv2d(mt_tensor *const *x) {
  static const int64_t stride[] = {1, 2}, padding[] = {1, 0}, dilation[] = {1, 1};
  return mt_conv2d(X0, X1, X2, stride, padding, dilation, 1);
}
static mt_tensor *f_conv2d_groups(mt_tensor *const *x) {
  static const int64_t stride[] = {2, 1}, padding[] = {0, 1}, dilation[] = {2, 1};
  return mt_conv2d(X0, X1, NULL, stride, padding, dilation, 2);
}
static mt_tensor *f_conv2d_stride2(mt_tensor *const *x) {
  static const int64_t stride[] = {2, 2}, padding[] = {0, 0}, dilation[] = {1, 1};
  return mt_conv2d(X0, X1, X2, stride, padding, dilation, 1);
}
static mt_tensor *f_conv2d_dilation2(mt_tensor *const *x) {
  static const int64_t stride[] = {1, 1}, padding[] = {2, 1}, dilation[] = {2, 2};
  return mt_conv2d(X0, X1, NULL, stride, padding, dilation, 1);
}
static mt_tensor *f_conv2d_groups2_strided(mt_tensor *const *x) {
  static const int64_t stride[] = {2, 1}, padding[] = {1, 1}, dilation[] = {1, 1};
  return mt_conv2d(X0, X1, X2, stride, padding, dilation, 2);
}
static mt_tensor *f_conv2d_depthwise(mt_tensor *const *x) {
  static const int64_t stride[] = {1, 1}, padding[] = {1, 1}, dilation[] = {1, 1};
  return mt_conv2d(X0, X1, NULL, stride, padding, dilation, 3);
}
static mt_tensor *f_conv2d_transposed_x(mt_tensor *const *x) {
  static const int64_t stride[] = {1, 1}, padding[] = {1, 1}, dilation[] = {1, 1};
  return mt_conv2d(K(mt_transpose(X0, 2, 3)), X1, NULL, stride, padding, dilation, 1);
}
static mt_tensor *f_conv1d_dilated_groups(mt_tensor *const *x) {
  return mt_conv1d(X0, X1, NULL, 1, 0, 2, 2);
}
static mt_tensor *f_max_pool2d(mt_tensor *const *x) {
  static const int64_t kernel[] = {2, 2}, stride[] = {2, 1}, padding[] = {1, 0};
  return mt_max_pool2d(X0, kernel, stride, padding);
}
static mt_tensor *f_avg_pool2d(mt_tensor *const *x) {
  static const int64_t kernel[] = {3, 2}, stride[] = {1, 2}, padding[] = {1, 1};
  return mt_avg_pool2d(X0, kernel, stride, padding);
}
static mt_tensor *f_adaptive_avg_pool2d(mt_tensor *const *x) {
  return mt_adaptive_avg_pool2d(X0, 2, 3);
}
static mt_tensor *f_attention(mt_tensor *const *x) {
  return mt_scaled_dot_product_attention(X0, X1, X2, NULL, 0, NAN);
}
static mt_tensor *f_attention_causal(mt_tensor *const *x) {
  return mt_scaled_dot_product_attention(X0, X1, X2, NULL, 1, 0.7);
}
static mt_tensor *f_attention_mask(mt_tensor *const *x) {
  return mt_scaled_dot_product_attention(X0, X1, X2, X3, 0, NAN);
}
static mt_tensor *f_attention_bool_mask(mt_tensor *const *x) {
  static const uint8_t keep[] = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1}; /* row 1 keeps one key */
  return mt_scaled_dot_product_attention(X0, X1, X2, BOOLS(keep, 2, TU_SHAPE(3, 4)), 0, NAN);
}

#define S1(a) 1, {1}, {{a}}
#define S2(a, b) 1, {2}, {{a, b}}

static const grad_case cases[] = {
    UNARIES(UNARY_CASE)
    BINARIES(BINARY_CASE)
    {"add_scalar", "", S2(3, 4), -2, 2, f_add_scalar},
    {"mul_scalar", "", S2(3, 4), -2, 2, f_mul_scalar},
    {"pow_scalar", "", S2(3, 4), 0.5, 2, f_pow_scalar},
    {"leaky_relu", "", S2(3, 4), -2, 2, f_leaky_relu},
    {"elu", "", S2(3, 4), -2, 2, f_elu},
    {"nan_to_num", "", S2(3, 4), -2, 2, f_nan_to_num},
    {"clamp", "", S2(3, 4), -1, 1, f_clamp},
    {"copy", "non-contiguous", S2(3, 4), -2, 2, f_copy},
    {"cast", "", S2(3, 4), -2, 2, f_cast},
    {"where", "broadcast", 2, {2, 1}, {{3, 4}, {4}}, -2, 2, f_where},
    {"masked_fill", "", S2(3, 4), -2, 2, f_masked_fill},
    {"dropout", "", S2(3, 4), -2, 2, f_dropout},
    {"sum", "", S2(3, 4), -2, 2, f_sum},
    {"sum", "all", S2(3, 4), -2, 2, f_sum_all},
    {"mean", "keepdim", S2(3, 4), -2, 2, f_mean},
    {"prod", "", S2(3, 4), 0.5, 1.5, f_prod},
    {"prod", "zeros", S2(3, 4), 0.5, 1.5, f_prod_zero},
    {"amax", "", S2(3, 4), -2, 2, f_amax},
    {"amax", "ties", S2(3, 4), 0.6, 2, f_amax_ties},
    {"amin", "all, keepdim", S2(3, 4), -2, 2, f_amin},
    {"var", "", S2(3, 4), -2, 2, f_var},
    {"std", "all, keepdim", S2(3, 4), -2, 2, f_std},
    {"logsumexp", "", S2(3, 4), -2, 2, f_logsumexp},
    {"norm", "p 2", S2(3, 4), -2, 2, f_norm},
    {"norm", "p 3", S2(3, 4), -2, 2, f_norm3},
    {"norm", "p 1", S2(3, 4), -2, 2, f_norm1},
    {"norm", "p inf", S2(3, 4), -2, 2, f_norm_inf},
    {"max_dim", "", S2(3, 4), -2, 2, f_max_dim},
    {"min_dim", "keepdim", S2(3, 4), -2, 2, f_min_dim},
    {"sort", "descending", S2(3, 4), -2, 2, f_sort},
    {"topk", "", S2(3, 4), -2, 2, f_topk},
    {"cumsum", "", S2(3, 4), -2, 2, f_cumsum},
    {"cumprod", "", S2(3, 4), 0.5, 1.5, f_cumprod},
    {"cumprod", "zeros", S2(3, 4), 0.5, 1.5, f_cumprod_zero},
    {"softmax", "", S2(3, 4), -2, 2, f_softmax},
    {"log_softmax", "", S2(3, 4), -2, 2, f_log_softmax},
    {"layer_norm", "", 3, {2, 1, 1}, {{3, 4}, {4}, {4}}, -2, 2, f_layer_norm},
    {"layer_norm", "no weight", S2(3, 4), -2, 2, f_layer_norm_plain},
    {"matmul", "batched, broadcast", 2, {3, 2}, {{2, 3, 4}, {4, 2}}, -2, 2, f_matmul},
    {"matmul", "vector @ matrix", 2, {1, 2}, {{4}, {4, 3}}, -2, 2, f_matmul},
    {"matmul", "matrix @ vector", 2, {2, 1}, {{3, 4}, {4}}, -2, 2, f_matmul},
    {"matmul", "vector @ vector", 2, {1, 1}, {{4}, {4}}, -2, 2, f_matmul},
    {"cat", "", 2, {2, 2}, {{3, 2}, {3, 3}}, -2, 2, f_cat},
    {"index_select", "repeated index", S2(3, 4), -2, 2, f_index_select},
    {"gather", "", S2(3, 4), -2, 2, f_gather},
    {"scatter", "", 2, {2, 2}, {{3, 4}, {3, 2}}, -2, 2, f_scatter},
    {"scatter_add", "", 2, {2, 2}, {{3, 4}, {3, 2}}, -2, 2, f_scatter_add},
    {"index_add", "", 2, {2, 2}, {{3, 4}, {3, 3}}, -2, 2, f_index_add},
    {"embedding", "repeated rows", S2(5, 3), -2, 2, f_embedding},
    {"flip", "", S2(3, 4), -2, 2, f_flip},
    {"roll", "", S2(3, 4), -2, 2, f_roll},
    {"repeat", "new dim", S2(3, 4), -2, 2, f_repeat},
    {"pad", "constant, crop", S2(3, 4), -2, 2, f_pad},
    {"pad", "reflect", S2(3, 4), -2, 2, f_pad_reflect},
    {"pad", "replicate", S2(3, 4), -2, 2, f_pad_replicate},
    {"tril", "", S2(3, 4), -2, 2, f_tril},
    {"triu", "", S2(3, 4), -2, 2, f_triu},
    {"(views)", "transpose, slice, expand, permute, reshape", S2(3, 4), -2, 2, f_views},
    {"linear", "", 3, {3, 2, 1}, {{2, 2, 3}, {4, 3}, {4}}, -2, 2, f_linear},
    {"rms_norm", "", 2, {2, 1}, {{3, 4}, {4}}, -2, 2, f_rms_norm},
    {"group_norm", "", 3, {3, 1, 1}, {{2, 4, 3}, {4}, {4}}, -2, 2, f_group_norm},
    {"batch_norm", "training", 3, {3, 1, 1}, {{4, 3, 2}, {3}, {3}}, -2, 2, f_batch_norm},
    {"batch_norm", "eval", 3, {3, 1, 1}, {{4, 3, 2}, {3}, {3}}, -2, 2, f_batch_norm_eval},
    {"batch_norm", "training, no weight", 2, {3, 1}, {{4, 3, 2}, {3}}, -2, 2, f_batch_norm_bias},
    {"batch_norm", "eval, no weight", 2, {3, 1}, {{4, 3, 2}, {3}}, -2, 2, f_batch_norm_eval_bias},
    {"batch_norm", "2-d [N, C]", 3, {2, 1, 1}, {{5, 3}, {3}, {3}}, -2, 2, f_batch_norm},
    {"batch_norm", "4-d, strided x", 3, {4, 1, 1}, {{2, 2, 3, 3}, {3}, {3}}, -2, 2,
     f_batch_norm_strided},
    {"layer_norm", "3-d, no bias", 2, {3, 1}, {{2, 3, 5}, {5}}, -2, 2, f_layer_norm_weight},
    {"rms_norm", "no weight, strided x", S2(4, 3), -2, 2, f_rms_norm_strided},
    {"cross_entropy", "[C] logits, smoothing", 1, {1}, {{6}}, -2, 2, f_cross_entropy_vector},
    {"cross_entropy", "", S2(3, 5), -2, 2, f_cross_entropy},
    {"cross_entropy", "[N, C, d], ignore_index, smoothing", 1, {3}, {{2, 3, 3}}, -2, 2,
     f_cross_entropy_smooth},
    {"conv1d", "stride 2, padding 1", 3, {3, 3, 1}, {{2, 2, 7}, {3, 2, 3}, {3}}, -1, 1, f_conv1d},
    {"conv2d", "", 3, {4, 4, 1}, {{1, 2, 4, 5}, {3, 2, 3, 2}, {3}}, -1, 1, f_conv2d},
    {"conv2d", "groups 2, dilation", 2, {4, 4}, {{2, 4, 5, 4}, {2, 2, 2, 3}}, -1, 1,
     f_conv2d_groups},
    {"conv2d", "stride 2, padding 0, batch 2", 3, {4, 4, 1}, {{2, 3, 7, 6}, {4, 3, 3, 3}, {4}},
     -1, 1, f_conv2d_stride2},
    {"conv2d", "dilation 2, padding 2", 2, {4, 4}, {{1, 2, 6, 6}, {3, 2, 3, 2}}, -1, 1,
     f_conv2d_dilation2},
    {"conv2d", "groups 2 of 3 outputs, stride 2, bias", 3, {4, 4, 1},
     {{2, 4, 5, 5}, {6, 2, 3, 3}, {6}}, -1, 1, f_conv2d_groups2_strided},
    {"conv2d", "depthwise (groups = C), multiplier 2", 2, {4, 4}, {{2, 3, 5, 4}, {6, 1, 2, 3}},
     -1, 1, f_conv2d_depthwise},
    {"conv2d", "transposed (strided) x", 2, {4, 4}, {{1, 2, 5, 4}, {2, 2, 3, 3}}, -1, 1,
     f_conv2d_transposed_x},
    {"conv1d", "dilation 2, groups 2, padding 0", 2, {3, 3}, {{2, 4, 9}, {4, 2, 3}}, -1, 1,
     f_conv1d_dilated_groups},
    {"max_pool2d", "padding", 1, {4}, {{1, 2, 4, 5}}, -2, 2, f_max_pool2d},
    {"avg_pool2d", "", 1, {4}, {{1, 2, 4, 5}}, -2, 2, f_avg_pool2d},
    {"adaptive_avg_pool2d", "", 1, {4}, {{1, 2, 5, 7}}, -2, 2, f_adaptive_avg_pool2d},
    {"scaled_dot_product_attention", "", 3, {3, 3, 3}, {{2, 3, 4}, {2, 5, 4}, {2, 5, 2}}, -1, 1,
     f_attention},
    {"scaled_dot_product_attention", "causal, scale", 3, {3, 3, 3},
     {{1, 4, 3}, {1, 4, 3}, {1, 4, 2}}, -1, 1, f_attention_causal},
    {"scaled_dot_product_attention", "additive mask (its gradient too)", 4, {3, 3, 3, 2},
     {{1, 4, 3}, {1, 4, 3}, {1, 4, 2}, {4, 4}}, -1, 1, f_attention_mask},
    {"scaled_dot_product_attention", "bool mask", 3, {3, 3, 3},
     {{2, 3, 2}, {2, 4, 2}, {2, 4, 3}}, -1, 1, f_attention_bool_mask},
};
#define N_CASES TU_COUNT(cases)

/* ------------------------------------------------------------- running */

/* Deterministic values in [lo, hi): a 64-bit LCG, so a failure repeats. */
static void fill(double *v, int64_t n, double lo, double hi, uint64_t *state) {
  for (int64_t i = 0; i < n; i++) {
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = lo + (hi - lo) * (double)(*state >> 11) / 9007199254740992.0;
  }
}

static int64_t numel_of(const grad_case *gc, int i) {
  int64_t n = 1;
  for (int d = 0; d < gc->ndim[i]; d++) n *= gc->shape[i][d];
  return n;
}

/* f(x) for inputs of values xs, read back (malloc'd; *n its length). */
static double *evaluate(const grad_case *gc, double *const *xs, int requires_grad,
                        mt_tensor **inputs, mt_tensor **out, int64_t *n) {
  for (int i = 0; i < gc->n; i++) {
    inputs[i] = TU_OK(mt_from_data(xs[i], gc->ndim[i], gc->shape[i], MT_FLOAT64, TU_CPU));
    if (requires_grad) ck_assert_int_eq(mt_set_requires_grad(inputs[i], 1), MT_OK);
  }
  mt_tensor *y = gc->f(inputs);
  ck_assert_msg(y, "%s (%s): %s", gc->op, gc->label, mt_last_error());
  ck_assert_int_eq(mt_tensor_dtype(y), MT_FLOAT64);
  *n = mt_numel(y);
  *out = y;
  return TU_READ(y);
}

/* sum(f(xs) * w) with grad mode off. */
static double loss_at(const grad_case *gc, double *const *xs, const double *w) {
  mt_tensor *inputs[MAX_IN], *y;
  int64_t n;
  mt_set_grad_enabled(0);
  double *v = evaluate(gc, xs, 0, inputs, &y, &n), loss = 0;
  mt_set_grad_enabled(1);
  for (int64_t k = 0; k < n; k++) loss += v[k] * w[k];
  free(v);
  mt_tensor_free(y);
  free_made();
  for (int i = 0; i < gc->n; i++) mt_tensor_free(inputs[i]);
  return loss;
}

/* The gradients mt_backward gives for the loss, one array per input. */
static void analytic(const grad_case *gc, double *const *xs, double **w, double **grads) {
  mt_tensor *inputs[MAX_IN], *y;
  int64_t n;
  free(evaluate(gc, xs, 1, inputs, &y, &n));
  static uint64_t weight_state = 12345;
  *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
  fill(*w, n, -1, 1, &weight_state);
  int64_t yshape[8];
  for (int d = 0; d < mt_ndim(y); d++) yshape[d] = mt_shape(y, d);
  mt_tensor *wt = TU_OK(mt_from_data(*w, mt_ndim(y), yshape, MT_FLOAT64, TU_CPU));
  mt_tensor *loss = TU_OK(mt_sum(K(mt_mul(y, wt)), 0, NULL, 0));
  ck_assert_msg(mt_requires_grad(loss), "%s: the loss does not require grad", gc->op);
  ck_assert_msg(mt_backward(loss, NULL) == MT_OK, "%s (%s): %s", gc->op, gc->label,
                mt_last_error());
  for (int i = 0; i < gc->n; i++) {
    mt_tensor *g = NULL;
    ck_assert_int_eq(mt_grad(inputs[i], &g), MT_OK);
    int64_t m = numel_of(gc, i);
    if (g) {
      TU_CHECK_META(g, MT_FLOAT64, gc->ndim[i], gc->shape[i]);
      grads[i] = TU_READ(g);
    } else {
      grads[i] = calloc((size_t)(m ? m : 1), sizeof(double));
    }
    mt_tensor_free(g);
  }
  mt_tensor_free(loss);
  mt_tensor_free(wt);
  mt_tensor_free(y);
  free_made();
  for (int i = 0; i < gc->n; i++) mt_tensor_free(inputs[i]);
}

START_TEST(test_case) {
  const grad_case *gc = &cases[_i];
  uint64_t state = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
  double *xs[MAX_IN], *grads[MAX_IN], *w;
  for (int i = 0; i < gc->n; i++) {
    int64_t m = numel_of(gc, i);
    xs[i] = malloc(sizeof(double) * (size_t)(m ? m : 1));
    fill(xs[i], m, gc->lo, gc->hi, &state);
  }
  analytic(gc, xs, &w, grads);
  for (int i = 0; i < gc->n; i++) {
    for (int64_t j = 0; j < numel_of(gc, i); j++) {
      double keep = xs[i][j];
      xs[i][j] = keep + STEP;
      double up = loss_at(gc, xs, w);
      xs[i][j] = keep - STEP;
      double down = loss_at(gc, xs, w);
      xs[i][j] = keep;
      double numeric = (up - down) / (2 * STEP);
      TU_EXPECT(fabs(grads[i][j] - numeric) <= 1e-5 + 1e-4 * fabs(numeric),
                "%s (%s): d loss / d input %d [%lld]: backward %.10g, finite differences %.10g",
                gc->op, gc->label, i, (long long)j, grads[i][j], numeric);
    }
  }
  for (int i = 0; i < gc->n; i++) free(xs[i]), free(grads[i]);
  free(w);
}
END_TEST

/* ------------------------------------------- float32 against float64 */

/* The fused backwards (norms, cross_entropy) compute float32 gradients in
 * float32 (sums in double): they must stay within 1e-4 (relative to 1 +
 * |g|) of the float64 ones for the same values, on larger inputs than the
 * float64 cases where the kernels' sums have more terms. */
static const grad_case f32_cases[] = {
    {"batch_norm", "training", 3, {3, 1, 1}, {{16, 4, 9}, {4}, {4}}, -2, 2, f_batch_norm},
    {"batch_norm", "eval", 3, {3, 1, 1}, {{8, 3, 5}, {3}, {3}}, -2, 2, f_batch_norm_eval},
    {"batch_norm", "2-d, no weight", 2, {2, 1}, {{64, 3}, {3}}, -2, 2, f_batch_norm_bias},
    {"layer_norm", "", 3, {2, 1, 1}, {{12, 40}, {40}, {40}}, -2, 2, f_layer_norm},
    {"rms_norm", "", 2, {2, 1}, {{12, 40}, {40}}, -2, 2, f_rms_norm},
    {"cross_entropy", "[N, C, d], ignore_index, smoothing", 1, {3}, {{2, 3, 3}}, -2, 2,
     f_cross_entropy_smooth},
};

/* The gradients of sum(f(xs as dt) * w) as float64 arrays (malloc'd). */
static void grads_in(const grad_case *gc, double *const *xs, mt_dtype dt, double **w,
                     double **grads) {
  mt_tensor *inputs[MAX_IN];
  for (int i = 0; i < gc->n; i++) {
    mt_tensor *wide = TU_OK(mt_from_data(xs[i], gc->ndim[i], gc->shape[i], MT_FLOAT64, TU_CPU));
    inputs[i] = TU_OK(mt_cast(wide, dt));
    mt_tensor_free(wide);
    ck_assert_int_eq(mt_set_requires_grad(inputs[i], 1), MT_OK);
  }
  mt_tensor *y = gc->f(inputs);
  ck_assert_msg(y, "%s (%s): %s", gc->op, gc->label, mt_last_error());
  int64_t n = mt_numel(y), yshape[8];
  if (!*w) {
    static uint64_t weight_state = 777;
    *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
    fill(*w, n, -1, 1, &weight_state);
  }
  for (int d = 0; d < mt_ndim(y); d++) yshape[d] = mt_shape(y, d);
  mt_tensor *wt = TU_OK(mt_from_data(*w, mt_ndim(y), yshape, MT_FLOAT64, TU_CPU));
  mt_tensor *loss = TU_OK(mt_sum(K(mt_mul(y, K(mt_cast(wt, dt)))), 0, NULL, 0));
  ck_assert_msg(mt_backward(loss, NULL) == MT_OK, "%s (%s): %s", gc->op, gc->label,
                mt_last_error());
  for (int i = 0; i < gc->n; i++) {
    mt_tensor *g = NULL;
    ck_assert_int_eq(mt_grad(inputs[i], &g), MT_OK);
    ck_assert_msg(g != NULL, "%s (%s): input %d has no gradient", gc->op, gc->label, i);
    grads[i] = TU_READ(K(mt_cast(g, MT_FLOAT64)));
    mt_tensor_free(g);
    mt_tensor_free(inputs[i]);
  }
  mt_tensor_free(loss);
  mt_tensor_free(wt);
  mt_tensor_free(y);
  free_made();
}

START_TEST(test_float32_norm_grads) {
  const grad_case *gc = &f32_cases[_i];
  uint64_t state = 0x51ed2701u + (uint64_t)_i;
  double *xs[MAX_IN] = {NULL}, *g32[MAX_IN], *g64[MAX_IN], *w = NULL;
  for (int i = 0; i < gc->n; i++) {
    int64_t m = numel_of(gc, i);
    xs[i] = malloc(sizeof(double) * (size_t)(m ? m : 1));
    fill(xs[i], m, gc->lo, gc->hi, &state);
  }
  grads_in(gc, xs, MT_FLOAT64, &w, g64);
  grads_in(gc, xs, MT_FLOAT32, &w, g32);
  for (int i = 0; i < gc->n; i++) {
    for (int64_t j = 0; j < numel_of(gc, i); j++)
      TU_EXPECT(fabs(g32[i][j] - g64[i][j]) <= 1e-4 * (1 + fabs(g64[i][j])),
                "%s (%s) float32: d loss / d input %d [%lld]: %.9g, float64 %.9g", gc->op,
                gc->label, i, (long long)j, g32[i][j], g64[i][j]);
    free(xs[i]), free(g32[i]), free(g64[i]);
  }
  free(w);
}
END_TEST

/* Every op with a GRAD rule in ops.def has a case above. */
#define NOGRAD 0
#define GRAD(rule, saves) 1
static const struct {
  const char *name;
  int differentiable;
} ops[] = {
#define MT_OP(NAME, name, KIND, ARITY, NOUT, OPTIONAL, ATTRS, G) {#name, G},
#include "core/ops.def"
#undef MT_OP
};

START_TEST(test_every_rule_has_a_case) {
  for (int op = 0; op < TU_COUNT(ops); op++) {
    if (!ops[op].differentiable) continue;
    int found = 0;
    for (int k = 0; k < N_CASES && !found; k++) found = strcmp(cases[k].op, ops[op].name) == 0;
    ck_assert_msg(found, "mt_%s has a backward rule and no gradient check", ops[op].name);
  }
}
END_TEST

static Suite *gradcheck_suite(void) {
  Suite *s = suite_create("gradcheck");
  TCase *tc = tcase_create("gradcheck");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_every_rule_has_a_case);
  tcase_add_loop_test(tc, test_case, 0, N_CASES);
  tcase_add_loop_test(tc, test_float32_norm_grads, 0, TU_COUNT(f32_cases));
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return tu_run_suite(gradcheck_suite()); }
