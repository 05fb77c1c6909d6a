/*
 * elementwise_rules.h - the element rules of the elementwise ops that the
 * cpu kernels (src/cpu/elementwise*.c) and the cuda kernels
 * (remote_worker/cuda/cuda_elementwise.cu) share: one definition, so the two
 * backends cannot drift apart. The MTI_HOST_DEVICE rules run in kernels of
 * both (host and device); the scalar preparations run on the host before a
 * launch. Ops whose element is one math library call (erf, atan2, fmod,
 * ...) or one operator (bitwise_and) have no rule: each backend names it.
 */
#ifndef MTI_ELEMENTWISE_RULES_H
#define MTI_ELEMENTWISE_RULES_H

#include <math.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/op_table.h"

/* a^e in wrapping integer arithmetic. A negative exponent gives 0 except
 * for the bases 1 and -1 (PyTorch's rule); 0^0 is 1. */
MTI_HOST_DEVICE static inline int64_t mti_int_pow(int64_t a, int64_t e) {
  if (e < 0) return a == 1 ? 1 : a == -1 ? ((e & 1) ? -1 : 1) : 0;
  uint64_t r = 1, b = (uint64_t)a;
  for (; e; e >>= 1, b *= b)
    if (e & 1) r *= b;
  return (int64_t)r;
}

/* Integer a // b, a % b (sign of b) and fmod (sign of a) in int64, which
 * holds every operand. A divisor 0 gives 0 (the kernels report it as the
 * op's error); b = -1 is done without dividing, so INT64_MIN / -1 wraps
 * instead of trapping. */
MTI_HOST_DEVICE static inline int64_t mti_int_floor_divide(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return (int64_t)(0u - (uint64_t)a);
  int64_t q = a / b;
  return q - (a % b != 0 && (a < 0) != (b < 0));
}
MTI_HOST_DEVICE static inline int64_t mti_int_fmod(int64_t a, int64_t b) {
  return b == 0 || b == -1 ? 0 : a % b;
}
MTI_HOST_DEVICE static inline int64_t mti_int_remainder(int64_t a, int64_t b) {
  int64_t r = mti_int_fmod(a, b);
  return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

/* GPT-2's gelu: x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) in type T
 * with the tanh function TANH (a macro, so that the cpu's float32 loop can
 * use its vectorised tanh and every other caller the math library's). */
#define MTI_GELU_TANH(T, TANH, x) \
  ((T)0.5 * (x) *                 \
   ((T)1 + TANH((T)0.79788456080286535588 * ((x) + (T)0.044715 * (x) * (x) * (x)))))

/* The float rules of 0.2 in both precisions: mti_softplus_f32,
 * mti_softplus_f64, ... (elementwise_rules_float.inc). */
#define MTI_T float
#define MTI_S f32
#define MTI_M(fn) fn##f
#include "core/elementwise_rules_float.inc"
#undef MTI_T
#undef MTI_S
#undef MTI_M
#define MTI_T double
#define MTI_S f64
#define MTI_M(fn) fn
#include "core/elementwise_rules_float.inc"
#undef MTI_T
#undef MTI_S
#undef MTI_M

/* A whole number reduced modulo 2^64: integer add/mul with a scalar wrap
 * like the tensor arithmetic does. */
static inline uint64_t mti_wrap_to_u64(double v) {
  if (v > -0x1p62 && v < 0x1p62) return (uint64_t)(int64_t)v; /* the usual case: no fmod */
  if (!isfinite(v)) return 0;
  double r = fmod(v, 18446744073709551616.0); /* exact, |r| < 2^64 */
  return r < 0 ? 0u - (uint64_t)(-r) : (uint64_t)r;
}

/* Integer exponent of pow_scalar (a whole number): huge magnitudes keep
 * their parity (every double beyond 2^53 is even). */
static inline int64_t mti_pow_exponent(double v) {
  if (v >= 0x1p62) return INT64_C(1) << 62;
  if (v <= -0x1p62) return -(INT64_C(1) << 62);
  return v == v ? (int64_t)v : 0;
}

/* Clamp bound for an integer (or bool) ct: lo rounds up, hi down, both
 * saturate. */
static inline int64_t mti_clamp_bound(double v, int upper, mt_dtype ct) {
  v = upper ? floor(v) : ceil(v);
  if (ct == MT_BOOL) return v >= 1 ? 1 : 0;
  return mti_double_to_int(v, ct);
}

/* The unary ops that leave the values of compute dtype ct unchanged: run
 * as copies by both backends. */
static inline int mti_unary_is_identity(mti_op op, mt_dtype ct) {
  if (mti_dtype_is_float(ct)) return 0;
  switch (op) {
  case MTI_OP_FLOOR:
  case MTI_OP_CEIL:
  case MTI_OP_ROUND: return 1;
  case MTI_OP_ABS:
  case MTI_OP_RELU: return ct == MT_UINT8 || ct == MT_BOOL;
  case MTI_OP_SIGN: return ct == MT_BOOL;
  case MTI_OP_TRUNC: return 1;
  case MTI_OP_SQUARE: return ct == MT_BOOL;
  default: return 0;
  }
}

#endif
