/*
 * elementwise_kernels.h - leaf loops of the elementwise ops (internal to
 * elementwise.c and elementwise_kernels.c).
 *
 * A leaf runs one op over n elements of contiguous arrays: inputs of the
 * op's compute dtype ct (bool inputs as bytes, nonzero = true; where's
 * condition likewise), output of ct, or bool for comparisons and logical ops.
 */
#ifndef MTI_CPU_ELEMENTWISE_KERNELS_H
#define MTI_CPU_ELEMENTWISE_KERNELS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/op_table.h"

/* Scalar operands already converted for ct: u holds integers reduced modulo
 * 2^64 (add/mul), i the integer exponent of pow_scalar or integer clamp
 * bounds, f and d the float32 / float64 values (s0..s2). The integer
 * division kernels set *zero_divisor when they meet a divisor 0. */
typedef struct mti_ew_scalars {
  uint64_t u[2];
  int64_t i[2];
  float f[3];
  double d[3];
  atomic_int *zero_divisor;
} mti_ew_scalars;

typedef void (*mti_ew_kernel)(void *out, const void *const *in, int64_t n,
                              const mti_ew_scalars *sc);

/* The leaf for op in compute dtype ct; NULL where there is none (identity
 * ops, and combinations mti_infer refuses). */
mti_ew_kernel mti_ew_kernel_for(mti_op op, mt_dtype ct);

#endif
