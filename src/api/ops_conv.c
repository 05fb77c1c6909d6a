/*
 * ops_conv.c - the public convolution and pooling ops: argument checks
 * (messages name the function and the argument), the integer attributes
 * in the layout of core/conv_rules.h, then the op table's run functions.
 * Shapes, dtypes and ranges are checked by mti_infer.
 */
#include "api/tensor_impl.h"
#include "core/error.h"

static const char *const conv_names[] = {"x", "weight", "bias"};
static const char *const x_name[] = {"x"};

/* pair[0..1] into ints, or fallback[0..1] when pair is NULL. */
static void put_pair(mti_attrs *at, const int64_t *pair, const int64_t *fallback) {
  const int64_t *src = pair ? pair : fallback;
  at->ints[at->n_ints++] = src[0];
  at->ints[at->n_ints++] = src[1];
}

mt_tensor *mt_conv1d(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias,
                     int64_t stride, int64_t padding, int64_t dilation, int64_t groups) {
  const mt_tensor *in[3] = {x, weight, bias};
  mti_attrs at = {0};
  at.n_ints = 4;
  at.ints[0] = stride, at.ints[1] = padding, at.ints[2] = dilation, at.ints[3] = groups;
  return mti_run_op(MTI_OP_CONV1D, 3, in, conv_names, &at);
}

mt_tensor *mt_conv2d(const mt_tensor *x, const mt_tensor *weight, const mt_tensor *bias,
                     const int64_t stride[2], const int64_t padding[2], const int64_t dilation[2],
                     int64_t groups) {
  static const int64_t ones[2] = {1, 1}, zeros[2] = {0, 0};
  const mt_tensor *in[3] = {x, weight, bias};
  mti_attrs at = {0};
  put_pair(&at, stride, ones);
  put_pair(&at, padding, zeros);
  put_pair(&at, dilation, ones);
  at.ints[at.n_ints++] = groups;
  return mti_run_op(MTI_OP_CONV2D, 3, in, conv_names, &at);
}

/* [kernel, stride (NULL: kernel), padding (NULL: 0)]; 0 with the error set
 * for a NULL kernel. */
static mt_status pool_attrs(const char *fn, const int64_t *kernel, const int64_t *stride,
                            const int64_t *padding, mti_attrs *at) {
  static const int64_t zeros[2] = {0, 0};
  if (!kernel) return mti_error(MT_ERR_INVALID_ARGUMENT, "%s: kernel: NULL", fn);
  put_pair(at, kernel, kernel);
  put_pair(at, stride, kernel);
  put_pair(at, padding, zeros);
  return MT_OK;
}

mt_tensor *mt_max_pool2d(const mt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                         const int64_t padding[2]) {
  mti_attrs at = {0};
  if (pool_attrs("mt_max_pool2d", kernel, stride, padding, &at)) return NULL;
  mt_tensor *outs[MTI_MAX_OUTPUTS];
  if (mti_run_op_multi(MTI_OP_MAX_POOL2D, 1, &x, x_name, &at, outs)) return NULL;
  mt_tensor_free(outs[1]); /* the argmax is for the backward (autograd keeps it) */
  return outs[0];
}

mt_tensor *mt_avg_pool2d(const mt_tensor *x, const int64_t kernel[2], const int64_t stride[2],
                         const int64_t padding[2]) {
  mti_attrs at = {0};
  if (pool_attrs("mt_avg_pool2d", kernel, stride, padding, &at)) return NULL;
  return mti_run_op(MTI_OP_AVG_POOL2D, 1, &x, x_name, &at);
}

mt_tensor *mt_adaptive_avg_pool2d(const mt_tensor *x, int64_t out_h, int64_t out_w) {
  mti_attrs at = {0};
  at.n_ints = 2;
  at.ints[0] = out_h, at.ints[1] = out_w;
  return mti_run_op(MTI_OP_ADAPTIVE_AVG_POOL2D, 1, &x, x_name, &at);
}
