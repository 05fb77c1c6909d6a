/*
 * cuda_elementwise_ops.cu - the general elementwise ops of 0.2 on the GPU.
 *
 * Not written yet: every op of that section of core/ops.def (MTI_OP_ERF ..
 * MTI_OP_MASKED_FILL) is refused here with MT_ERR_UNSUPPORTED naming the op,
 * so a cuda worker answers clearly instead of running a wrong kernel. The
 * cpu backend (src/cpu/elementwise_kernels.c) is the reference to port.
 */
#include "cuda_common.cuh"

extern "C" mt_status mtw_cuda_elementwise_ops(const mtw_cuda_ctx *ctx, mti_op op,
                                              const mti_view *in, int n, const mti_attrs *at,
                                              const mti_view *out) {
  (void)ctx;
  (void)in;
  (void)n;
  (void)at;
  (void)out;
  const mti_op_info *info = mti_op_get((int)op);
  return mti_error(MT_ERR_UNSUPPORTED, "%s: the cuda backend has no kernel for it yet (run it on a "
                   "cpu worker)", info ? info->fn : "mt_?");
}
