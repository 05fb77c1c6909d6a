/*
 * ops_elementwise.c - the public functions of the general elementwise ops
 * of 0.2 whose signatures are their own (the unary, bitwise and division
 * ones are generated from core/ops.def in ops.c).
 */
#include "api/tensor_impl.h"
#include "core/error.h"

/* An op of one tensor a with the scalar parameters s0..s2. */
static mt_tensor *with_params(mti_op op, const mt_tensor *a, double s0, double s1, double s2) {
  static const char *const names[] = {"a"};
  mti_attrs at = {0};
  at.s0 = s0;
  at.s1 = s1;
  at.s2 = s2;
  return mti_run_op(op, 1, &a, names, &at);
}

mt_tensor *mt_leaky_relu(const mt_tensor *a, double negative_slope) {
  return with_params(MTI_OP_LEAKY_RELU, a, negative_slope, 0, 0);
}

mt_tensor *mt_elu(const mt_tensor *a, double alpha) {
  return with_params(MTI_OP_ELU, a, alpha, 0, 0);
}

mt_tensor *mt_nan_to_num(const mt_tensor *a, double nan, double posinf, double neginf) {
  return with_params(MTI_OP_NAN_TO_NUM, a, nan, posinf, neginf);
}

mt_tensor *mt_masked_fill(const mt_tensor *a, const mt_tensor *mask, double value) {
  static const char *const names[] = {"a", "mask"};
  const mt_tensor *in[2] = {a, mask};
  mti_attrs at = {0};
  at.s0 = value;
  return mti_run_op(MTI_OP_MASKED_FILL, 2, in, names, &at);
}
