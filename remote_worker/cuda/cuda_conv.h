/*
 * cuda_conv.h - the launchers of cuda_conv.cu that the conv driver
 * (cuda_conv.c, which calls cuBLAS) uses. Each enqueues on ctx->stream and
 * returns a launch error as the session's error.
 */
#ifndef MTW_CUDA_CONV_H
#define MTW_CUDA_CONV_H

#include "cuda/cuda_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "core/conv_rules.h"

/* The im2col columns of images [n0, n0 + count) of x (any strides) into
 * col, contiguous [count][C][kh][kw][OH * OW] in x's dtype. */
mt_status mtw_cuda_conv_im2col(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                               const mti_view *x, int64_t n0, int64_t count, void *col);

/* Every output plane [n, o] of the contiguous out set to bias[o]. */
mt_status mtw_cuda_conv_bias_fill(const mtw_cuda_ctx *ctx, const mti_view *bias,
                                  const mti_view *out);

/* The whole conv directly, for C / groups == 1 (in: x, weight, bias when
 * has_bias). */
mt_status mtw_cuda_conv_depthwise(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                  const mti_view *in, int has_bias, const mti_view *out);

/* The backward's layouts (cuda_conv.cuh): the columns of images [n0, n0 +
 * count) of x (any strides) as [C kh kw][count P] in x's dtype; dy (any
 * strides) of those images as [O][count P] in its dtype; dx of those images
 * (into the contiguous dx, from image n0) from the columns' gradient in
 * the accumulator type (float, double for float64) laid out as the
 * columns. */
mt_status mtw_cuda_conv_im2col_rows(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                    const mti_view *x, int64_t n0, int64_t count, void *col);
mt_status mtw_cuda_conv_dy_by_channel(const mtw_cuda_ctx *ctx, const mti_conv_geom *g,
                                      const mti_view *dy, int64_t n0, int64_t count, void *dst);
mt_status mtw_cuda_conv_col2im(const mtw_cuda_ctx *ctx, const mti_conv_geom *g, const void *col,
                               int64_t n0, int64_t count, const mti_view *dx);

#ifdef __cplusplus
}
#endif

#endif
