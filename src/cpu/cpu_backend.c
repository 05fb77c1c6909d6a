/*
 * cpu_backend.c - mti_cpu_run: routes an op to its kernel family.
 *
 * Elementwise kinds get their inputs broadcast to out's shape here (stride
 * 0 along broadcast dims); the other families take their inputs as they are.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_backend.h"
#include "cpu_kernels.h"

/* Bytes [*lo, *hi) that a non-empty view touches. */
static void view_extent(const mti_view *v, uintptr_t *lo, uintptr_t *hi) {
  int64_t first = 0, last = 0;
  for (int d = 0; d < v->ndim; d++) {
    int64_t span = (v->shape[d] - 1) * v->strides[d];
    if (span < 0)
      first += span;
    else
      last += span;
  }
  int64_t size = (int64_t)mt_dtype_size(v->dtype);
  *lo = (uintptr_t)v->data + (uintptr_t)(first * size);
  *hi = (uintptr_t)v->data + (uintptr_t)((last + 1) * size);
}

static int views_overlap(const mti_view *a, const mti_view *b) {
  if (!mti_shape_numel(a->ndim, a->shape) || !mti_shape_numel(b->ndim, b->shape)) return 0;
  uintptr_t alo, ahi, blo, bhi;
  view_extent(a, &alo, &ahi);
  view_extent(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

/* COPY whose source shares memory with out (a tensor copied into a view of
 * itself): the source is first copied to a contiguous buffer, so that no
 * element is overwritten before it is read. */
static mt_status copy_staged(const mti_view *src, const mti_view *out) {
  int64_t numel = mti_shape_numel(src->ndim, src->shape);
  size_t bytes = (size_t)numel * mt_dtype_size(src->dtype);
  mti_view tmp = *src;
  if (!(tmp.data = malloc(bytes))) return mti_error_oom("mt_copy_", bytes);
  mti_shape_contiguous_strides(tmp.ndim, tmp.shape, tmp.strides);
  mt_status s = mti_cpu_convert(src, &tmp);
  if (s == MT_OK) {
    mti_view wide = mti_view_broadcast_to(&tmp, out->ndim, out->shape);
    s = mti_cpu_convert(&wide, out);
  }
  free(tmp.data);
  return s;
}

static mt_status run_elementwise(mti_op op, mti_op_kind kind, const mti_view *in, int n,
                                 const mti_attrs *at, const mti_view *out) {
  if (kind == MTI_KIND_COPY && views_overlap(&in[0], out)) return copy_staged(&in[0], out);
  mti_view wide[3];
  if (n > 3) return mti_error(MT_ERR_INTERNAL, "mti_cpu_run: %d inputs to an elementwise op", n);
  int same = 1; /* inputs of out's shape need no broadcast views (the common case) */
  for (int i = 0; i < n && same; i++)
    same = in[i].ndim == out->ndim && mti_shape_equal(out->ndim, in[i].shape, out->shape);
  if (same) return mti_cpu_elementwise(op, in, n, at, out);
  for (int i = 0; i < n; i++) wide[i] = mti_view_broadcast_to(&in[i], out->ndim, out->shape);
  return mti_cpu_elementwise(op, wide, n, at, out);
}

mt_status mti_cpu_run(mti_op op, const mti_view *in, int n, const mti_attrs *at,
                      const mti_view *out) {
  const mti_op_info *info = mti_op_get((int)op);
  if (!info) return mti_error(MT_ERR_INTERNAL, "mti_cpu_run: op %d: unknown", (int)op);
  switch (info->kind) {
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
  case MTI_KIND_CAST: return run_elementwise(op, info->kind, in, n, at, out);
  case MTI_KIND_RANDOM: return mti_cpu_random(op, at, out);
  case MTI_KIND_REDUCE: return mti_cpu_reduce(op, in, at, out);
  case MTI_KIND_ARGREDUCE: return mti_cpu_argreduce(op, in, at, out);
  case MTI_KIND_SOFTMAX: return mti_cpu_softmax(op, in, at, out);
  case MTI_KIND_LAYER_NORM: return mti_cpu_layer_norm(in, at, out);
  case MTI_KIND_MATMUL: return mti_cpu_matmul(&in[0], &in[1], out);
  case MTI_KIND_CAT: return mti_cpu_cat(in, n, at, out);
  case MTI_KIND_INDEX_SELECT: return mti_cpu_index_select(&in[0], &in[1], at, out);

  /* ---- general elementwise (0.2) ---- */
  case MTI_KIND_BITWISE:
  case MTI_KIND_PREDICATE:
  case MTI_KIND_BINARY_FLOAT:
  case MTI_KIND_DIVISION:
  case MTI_KIND_UNARY_PARAM:
  case MTI_KIND_MASKED_FILL: return run_elementwise(op, info->kind, in, n, at, out);

  /* ---- reductions, scans, sorting (0.2) ---- */
  case MTI_KIND_REDUCE_FLOAT: return mti_cpu_reduce_float(op, &in[0], at, out);
  case MTI_KIND_REDUCE_BOOL: return mti_cpu_reduce_bool(op, &in[0], at, out);
  case MTI_KIND_EXTREME_DIM: return mti_cpu_extreme_dim(op, &in[0], at, out);
  case MTI_KIND_SCAN: return mti_cpu_scan(op, &in[0], at, out);
  case MTI_KIND_SORT:
  case MTI_KIND_TOPK: return mti_cpu_sort(op, &in[0], at, out);

  /* ---- indexing, shape, creation, sampling (0.2) ---- */
  case MTI_KIND_EYE: return mti_cpu_eye(out);
  case MTI_KIND_LINSPACE: return mti_cpu_linspace(at, out);
  case MTI_KIND_RANDINT: return mti_cpu_randint(at, out);
  case MTI_KIND_GATHER: return mti_cpu_gather(&in[0], &in[1], at, out);
  case MTI_KIND_SCATTER: return mti_cpu_scatter(op, in, at, out);
  case MTI_KIND_INDEX_ADD: return mti_cpu_index_add(in, at, out);
  case MTI_KIND_EMBEDDING: return mti_cpu_embedding(&in[0], &in[1], out);
  case MTI_KIND_ONE_HOT: return mti_cpu_one_hot(&in[0], at, out);
  case MTI_KIND_REMAP: return mti_cpu_remap(op, &in[0], at, out);
  case MTI_KIND_TRIANGLE: return mti_cpu_triangle(op, &in[0], at, out);
  case MTI_KIND_MULTINOMIAL: return mti_cpu_multinomial(&in[0], at, out);
  case MTI_KIND_DROPOUT: return mti_cpu_dropout(&in[0], at, out);

  /* ---- neural-network ops (0.2) ---- */
  case MTI_KIND_LINEAR: return mti_cpu_linear(in, at, out);
  /* ---- neural-network ops (0.2): normalisations and losses ---- */
  case MTI_KIND_RMS_NORM: return mti_cpu_rms_norm(in, at, out);
  case MTI_KIND_GROUP_NORM: return mti_cpu_group_norm(in, at, out);
  case MTI_KIND_BATCH_NORM: return mti_cpu_batch_norm(in, at, out);
  case MTI_KIND_CROSS_ENTROPY: return mti_cpu_cross_entropy(in, at, out);
  /* ---- convolution and pooling (0.2) ---- */
  case MTI_KIND_CONV: return mti_cpu_conv(op, in, at, out);
  case MTI_KIND_POOL2D:
  case MTI_KIND_ADAPTIVE_POOL2D: return mti_cpu_pool2d(op, &in[0], at, out);
  case MTI_KIND_ATTENTION: return mti_cpu_attention(in, at, out);
  /* ---- optimizer updates (issue 12) ---- */
  case MTI_KIND_SGD_STEP: return mti_cpu_sgd_step(in, at, out);
  case MTI_KIND_ADAMW_STEP: return mti_cpu_adamw_step(in, at, out);
  /* ---- fused norm backwards (issue 12) ---- */
  case MTI_KIND_BATCH_NORM_BACKWARD: return mti_cpu_batch_norm_backward(in, at, out);
  case MTI_KIND_ROW_NORM_BACKWARD: return mti_cpu_row_norm_backward(op, in, at, out);
  case MTI_KIND_CROSS_ENTROPY_BACKWARD: return mti_cpu_cross_entropy_backward(in, at, out);
  /* ---- convolution backward (issue 12) ---- */
  case MTI_KIND_CONV_GRAD: return mti_cpu_conv_grad(op, in, at, out);
  }
  return mti_error(MT_ERR_INTERNAL, "mti_cpu_run: %s: no kernel family", info->name);
}
