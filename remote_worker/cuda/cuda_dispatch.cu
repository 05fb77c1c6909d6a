/*
 * cuda_dispatch.cu - routes an op to its kernel family (cuda_kernels.h).
 *
 * out points at the op's outputs (ops.def's NOUT views). No default case:
 * a kind added to core/kinds.def without a cuda family does not compile.
 */
#include "cuda_common.cuh"

extern "C" mt_status mtw_cuda_run_kernel(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                         int n, const mti_attrs *at, const mti_view *out) {
  const mti_op_info *info = mti_op_get((int)op);
  if (!info) return mti_error(MT_ERR_INTERNAL, "cuda: op %d is not an op", (int)op);
  switch (info->kind) {
  case MTI_KIND_RANDOM: return mtw_cuda_random(ctx, op, at, out);
  case MTI_KIND_REDUCE: return mtw_cuda_reduce(ctx, op, in, at, out);
  case MTI_KIND_ARGREDUCE: return mtw_cuda_argreduce(ctx, op, in, at, out);
  case MTI_KIND_SOFTMAX: return mtw_cuda_softmax(ctx, op, in, at, out);
  case MTI_KIND_LAYER_NORM: return mtw_cuda_layer_norm(ctx, in, at, out);
  case MTI_KIND_MATMUL: return mtw_cuda_matmul_generic(ctx, &in[0], &in[1], out);
  case MTI_KIND_CAT: return mtw_cuda_cat(ctx, in, n, at, out);
  case MTI_KIND_INDEX_SELECT: return mtw_cuda_index_select(ctx, in, at, out);
  case MTI_KIND_FILL:
  case MTI_KIND_ARANGE:
  case MTI_KIND_COPY:
  case MTI_KIND_BINARY:
  case MTI_KIND_COMPARE:
  case MTI_KIND_LOGICAL:
  case MTI_KIND_SCALAR:
  case MTI_KIND_UNARY:
  case MTI_KIND_UNARY_FLOAT:
  case MTI_KIND_WHERE:
  case MTI_KIND_CLAMP:
  case MTI_KIND_CAST: return mtw_cuda_elementwise(ctx, op, in, n, at, out);

  /* ---- general elementwise (0.2) ---- */
  case MTI_KIND_BITWISE:
  case MTI_KIND_PREDICATE:
  case MTI_KIND_BINARY_FLOAT:
  case MTI_KIND_DIVISION:
  case MTI_KIND_UNARY_PARAM:
  case MTI_KIND_MASKED_FILL: return mtw_cuda_elementwise(ctx, op, in, n, at, out);

  /* ---- reductions, scans, sorting (0.2) ---- */
  case MTI_KIND_REDUCE_FLOAT: return mtw_cuda_reduce_float(ctx, op, in, at, out);
  case MTI_KIND_REDUCE_BOOL: return mtw_cuda_reduce_bool(ctx, op, in, at, out);
  case MTI_KIND_EXTREME_DIM: return mtw_cuda_extreme_dim(ctx, op, in, at, out);
  case MTI_KIND_SCAN: return mtw_cuda_scan(ctx, op, in, at, out);
  case MTI_KIND_SORT:
  case MTI_KIND_TOPK: return mtw_cuda_sort(ctx, op, in, at, out);

  /* ---- indexing, shape, creation, sampling (0.2) ---- */
  case MTI_KIND_EYE: return mtw_cuda_eye(ctx, out);
  case MTI_KIND_LINSPACE: return mtw_cuda_linspace(ctx, at, out);
  case MTI_KIND_RANDINT: return mtw_cuda_randint(ctx, at, out);
  case MTI_KIND_GATHER: return mtw_cuda_gather(ctx, in, at, out);
  case MTI_KIND_SCATTER: return mtw_cuda_scatter(ctx, op, in, at, out);
  case MTI_KIND_INDEX_ADD: return mtw_cuda_index_add(ctx, in, at, out);
  case MTI_KIND_EMBEDDING: return mtw_cuda_embedding(ctx, in, out);
  case MTI_KIND_ONE_HOT: return mtw_cuda_one_hot(ctx, in, at, out);
  case MTI_KIND_REMAP: return mtw_cuda_remap(ctx, op, in, at, out);
  case MTI_KIND_TRIANGLE: return mtw_cuda_triangle(ctx, op, in, at, out);
  case MTI_KIND_MULTINOMIAL: return mtw_cuda_multinomial(ctx, in, at, out);
  case MTI_KIND_DROPOUT: return mtw_cuda_dropout(ctx, in, at, out);

  /* ---- neural-network ops (0.2) ---- */
  case MTI_KIND_LINEAR: return mtw_cuda_linear(ctx, in, at, out);
  /* ---- neural-network ops (0.2): normalisations and losses ---- */
  case MTI_KIND_RMS_NORM: return mtw_cuda_rms_norm(ctx, in, at, out);
  case MTI_KIND_GROUP_NORM: return mtw_cuda_group_norm(ctx, in, at, out);
  case MTI_KIND_BATCH_NORM: return mtw_cuda_batch_norm(ctx, in, at, out);
  case MTI_KIND_CROSS_ENTROPY: return mtw_cuda_cross_entropy(ctx, in, at, out);
  /* ---- convolution and pooling (0.2) ---- */
  case MTI_KIND_CONV: return mtw_cuda_conv(ctx, op, in, at, out);
  case MTI_KIND_POOL2D:
  case MTI_KIND_ADAPTIVE_POOL2D: return mtw_cuda_pool2d(ctx, op, in, at, out);
  case MTI_KIND_ATTENTION: return mtw_cuda_attention(ctx, in, at, out);
  /* ---- optimizer updates (issue 12) ---- */
  case MTI_KIND_SGD_STEP: return mtw_cuda_sgd_step(ctx, in, at, out);
  case MTI_KIND_ADAMW_STEP: return mtw_cuda_adamw_step(ctx, in, at, out);
  /* ---- fused norm backwards (issue 12) ---- */
  case MTI_KIND_BATCH_NORM_BACKWARD: return mtw_cuda_batch_norm_backward(ctx, in, at, out);
  case MTI_KIND_ROW_NORM_BACKWARD: return mtw_cuda_row_norm_backward(ctx, op, in, at, out);
  case MTI_KIND_CROSS_ENTROPY_BACKWARD: return mtw_cuda_cross_entropy_backward(ctx, in, at, out);
  /* ---- convolution backward (issue 12) ---- */
  case MTI_KIND_CONV_GRAD: return mtw_cuda_conv_grad(ctx, op, in, at, out);
  }
  return mti_error(MT_ERR_INTERNAL, "cuda: %s: no kernel family", info->fn);
}
