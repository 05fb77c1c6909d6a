/*
 * optim_rules.h - the element rules of the optimizer updates (SGD_STEP,
 * ADAMW_STEP in ops.def), shared by the cpu kernels (src/cpu/optim.c) and
 * the cuda kernels (remote_worker/cuda/cuda_optim.cu), so the two backends
 * compute the same roundings; the attribute encoding, shared with the client
 * (src/api/optim.c) that writes it.
 *
 * The formulas are torch.optim's (torch/optim/sgd.py, adamw.py: the
 * single-tensor paths) in their order of operations, with every scalar
 * prepared in double as torch's Python does and converted to the compute
 * type once: float for float16, bfloat16 and float32, double for float64.
 * Each product and sum is its own rounding (the cpu build is ISO C, which
 * does not contract a * b + c; the cuda file is compiled with --fmad=false).
 */
#ifndef MTI_OPTIM_RULES_H
#define MTI_OPTIM_RULES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "core/op_table.h"

/* ADAMW_STEP carries two doubles beyond s0..s2 in its integer list, as
 * their IEEE-754 bits (the wire moves ints exactly). */
enum { MTI_ADAMW_INT_EPS = 0, MTI_ADAMW_INT_WEIGHT_DECAY = 1, MTI_ADAMW_N_INTS = 2 };

static inline int64_t mti_optim_double_bits(double d) {
  int64_t v;
  memcpy(&v, &d, sizeof v);
  return v;
}

static inline double mti_optim_bits_double(int64_t v) {
  double d;
  memcpy(&d, &v, sizeof d);
  return d;
}

/* The scalars of one SGD_STEP (s0 lr, s1 momentum, s2 weight_decay, ints[0]
 * nesterov; the buffer input's presence says whether this is the first
 * step). */
typedef struct mti_sgd_coef {
  double neg_lr, momentum, weight_decay;
  int nesterov;
} mti_sgd_coef;

static inline mti_sgd_coef mti_sgd_prepare(const mti_attrs *at) {
  mti_sgd_coef k;
  k.neg_lr = -at->s0; /* param.add_(d_p, alpha=-lr) */
  k.momentum = at->s1;
  k.weight_decay = at->s2;
  k.nesterov = at->n_ints > 0 && at->ints[0] != 0;
  return k;
}

/* The scalars of one ADAMW_STEP, as torch's _single_tensor_adamw makes
 * them from lr, betas, eps, weight_decay and the step count: the attrs'
 * part from mti_adamw_prepare, the step's from mti_adamw_at_step (run
 * where the step count lives: on the host for the cpu, on the device for
 * cuda). */
typedef struct mti_adamw_coef {
  double lr, decay;      /* decay = 1 - lr * weight_decay */
  double beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  double neg_step_size;  /* -(lr / bias_correction1) */
  double bc2_sqrt;       /* sqrt(bias_correction2) */
} mti_adamw_coef;

static inline mti_adamw_coef mti_adamw_prepare(const mti_attrs *at) {
  mti_adamw_coef k;
  double lr = at->s0, wd = mti_optim_bits_double(at->ints[MTI_ADAMW_INT_WEIGHT_DECAY]);
  k.lr = lr;
  k.decay = 1.0 - lr * wd;
  k.beta1 = at->s1;
  k.one_minus_beta1 = 1.0 - at->s1;
  k.beta2 = at->s2;
  k.one_minus_beta2 = 1.0 - at->s2;
  k.eps = mti_optim_bits_double(at->ints[MTI_ADAMW_INT_EPS]);
  k.neg_step_size = NAN;
  k.bc2_sqrt = NAN;
  return k;
}

/* The bias corrections of step t (>= 1): 1 - beta ** t in double, as
 * torch's Python computes them. */
MTI_HOST_DEVICE static inline void mti_adamw_at_step(mti_adamw_coef *k, double t) {
  k->neg_step_size = -(k->lr / (1.0 - pow(k->beta1, t)));
  k->bc2_sqrt = sqrt(1.0 - pow(k->beta2, t));
}

/* The rules in compute type T (float or double; SQRT its square root), suffix S. The state
 * values (buffer, moments) a rule returns are rounded to the storage dtype
 * by the kernel, and the rounded value is what the later rules read, as
 * torch reads its state tensors back. */
#define MTI_OPTIM_RULES(T, S, SQRT)                                                              \
  /* d_p = grad.add(param, alpha=weight_decay), skipped when it is 0 */                      \
  MTI_HOST_DEVICE static inline T mti_sgd_decayed_##S(T g, T p, T wd) {                      \
    return wd != (T)0 ? g + wd * p : g;                                                      \
  }                                                                                          \
  /* buf.mul_(momentum).add_(d_p) after the first step (dampening 0) */                      \
  MTI_HOST_DEVICE static inline T mti_sgd_buffer_##S(T buf, T d, T momentum) {               \
    return buf * momentum + d;                                                               \
  }                                                                                          \
  /* nesterov: d_p.add(buf, alpha=momentum); else buf */                                     \
  MTI_HOST_DEVICE static inline T mti_sgd_direction_##S(T d, T buf, T momentum, int nesterov) { \
    return nesterov ? d + momentum * buf : buf;                                              \
  }                                                                                          \
  /* param.add_(d_p, alpha=-lr) */                                                           \
  MTI_HOST_DEVICE static inline T mti_sgd_param_##S(T p, T d, T neg_lr) { return p + neg_lr * d; } \
  /* exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1) */                                      \
  MTI_HOST_DEVICE static inline T mti_adamw_m_##S(T m, T g, T beta1, T one_minus_beta1) {    \
    return m * beta1 + one_minus_beta1 * g;                                                  \
  }                                                                                          \
  /* exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2) */                         \
  MTI_HOST_DEVICE static inline T mti_adamw_v_##S(T v, T g, T beta2, T one_minus_beta2) {    \
    return v * beta2 + one_minus_beta2 * g * g;                                              \
  }                                                                                          \
  /* param.mul_(1 - lr * wd), then param.addcdiv_(exp_avg, denom, value=-step_size) with     \
   * denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps) */                        \
  MTI_HOST_DEVICE static inline T mti_adamw_param_##S(T p, T m, T v, T decay, T neg_step,    \
                                                      T bc2_sqrt, T eps) {                   \
    T decayed = p * decay;                                                                   \
    T denom = SQRT(v) / bc2_sqrt + eps;                                                      \
    return decayed + neg_step * m / denom;                                                   \
  }

MTI_OPTIM_RULES(float, f32, sqrtf)
MTI_OPTIM_RULES(double, f64, sqrt)
/* MTI_OPTIM_RULES stays defined: the cpu instantiates the float rules once
 * more with its vectorisable, also correctly rounded, square root. */

#endif
