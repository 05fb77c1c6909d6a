/*
 * ops_attention.c - mt_scaled_dot_product_attention: argument checks, then
 * the op's two-output node (the attention output and the float32
 * logsumexp of each query row, which is kept for the backward of the
 * autograd issue and freed here: the public function returns the output).
 */
#include <math.h>

#include "api/tensor_impl.h"
#include "core/error.h"

static const char *const attention_names[] = {"query", "key", "value", "attn_mask"};

mt_tensor *mt_scaled_dot_product_attention(const mt_tensor *q, const mt_tensor *k,
                                           const mt_tensor *v, const mt_tensor *attn_mask,
                                           int is_causal, double scale) {
  const char *fn = "mt_scaled_dot_product_attention";
  if (mti_check_tensor(fn, "query", q) || mti_check_tensor(fn, "key", k) ||
      mti_check_tensor(fn, "value", v))
    return NULL;
  if (attn_mask && is_causal) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: attn_mask and is_causal cannot both be set", fn);
    return NULL;
  }
  if (!isnan(scale) && !isfinite(scale)) {
    mti_error(MT_ERR_INVALID_ARGUMENT, "%s: scale: %g must be finite (NaN: 1/sqrt(E))", fn,
              scale);
    return NULL;
  }
  mti_attrs at = {0};
  at.s0 = scale; /* NaN travels as is: the kernels take 1/sqrt(E) */
  at.flags = is_causal ? MTI_FLAG_CAUSAL : 0;
  const mt_tensor *in[4] = {q, k, v, attn_mask};
  mt_tensor *outs[MTI_MAX_OUTPUTS];
  if (mti_run_op_multi(MTI_OP_SCALED_DOT_PRODUCT_ATTENTION, 4, in, attention_names, &at, outs))
    return NULL;
  mt_tensor_free(outs[1]);
  return outs[0];
}
