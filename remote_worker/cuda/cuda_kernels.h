/*
 * cuda_kernels.h - the worker's custom CUDA kernels, as seen from the cuda
 * backend (cuda_backend.c, C) and implemented in the .cu files here.
 *
 * Every entry point computes one op exactly as mti_cpu_run specifies
 * (src/cpu/cpu_backend.h): same dtypes, same element rules, same shapes, on
 * strided views whose data are device pointers of ctx's device. Work is only
 * enqueued on ctx->stream; nothing here waits for the GPU. A returned error
 * means nothing (or nothing harmful) was enqueued; data-dependent failures
 * (an index out of range) are left in *ctx->fault and reported by the
 * backend at its next synchronize.
 *
 * Split by family so the op list stays in ops.def: mtw_cuda_run_kernel
 * (cuda_dispatch.cu) switches on the op's kind.
 */
#ifndef MTW_CUDA_KERNELS_H
#define MTW_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "core/op_table.h"
#include "core/shape.h"

/* Fault words: (op << 8) | reason; the first fault of a stream wins. */
enum {
  MTW_CUDA_FAULT_INDEX_RANGE = 1,
  MTW_CUDA_FAULT_INVALID_PROBS = 2,
  MTW_CUDA_FAULT_ZERO_DIVISOR = 3 /* an integer divisor 0 (remainder, fmod, floor_divide) */
};
#define MTW_CUDA_FAULT(op, reason) ((unsigned)(op) << 8 | (unsigned)(reason))

typedef struct mtw_cuda_ctx mtw_cuda_ctx;

struct mtw_cuda_ctx {
  cudaStream_t stream;  /* the session's stream: all work goes here        */
  int device;           /* the current device while a kernel entry runs    */
  int multiprocessors;  /* SM count, for grid sizing                       */
  unsigned *fault;      /* device word, 0 while no fault (see above)       */
  /* Device scratch of nbytes for the op being enqueued, usable by its work
   * on ctx->stream only; valid until the next scratch call on this ctx (so
   * one region per op). NULL with the error set when memory is exhausted. */
  void *(*scratch)(const mtw_cuda_ctx *ctx, size_t nbytes);
  void *owner;          /* the backend's stream behind ctx                 */
};

/* Runs any op except a floating matmul that cuBLAS serves (the backend
 * calls cuBLAS itself for f16/bf16/f32/f64 matmul). */
mt_status mtw_cuda_run_kernel(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in, int n,
                              const mti_attrs *at, const mti_view *out);

/* ---- families (one .cu file each, or a few) ---- */

/* FILL, ARANGE, COPY, BINARY, COMPARE, LOGICAL, SCALAR, UNARY, UNARY_FLOAT,
 * WHERE, CLAMP, CAST, and the general elementwise kinds of 0.2: BITWISE,
 * PREDICATE, BINARY_FLOAT, DIVISION (an integer divisor 0 sets the fault
 * word), UNARY_PARAM, MASKED_FILL (cuda_elementwise.cu). */
mt_status mtw_cuda_elementwise(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in, int n,
                               const mti_attrs *at, const mti_view *out);
/* RAND, RANDN from the Philox stream of src/core/philox.h (cuda_random.cu). */
mt_status mtw_cuda_random(const mtw_cuda_ctx *ctx, mti_op op, const mti_attrs *at,
                          const mti_view *out);
/* SUM, MEAN, PROD, AMAX, AMIN over at->dims_mask (cuda_reduce.cu). */
mt_status mtw_cuda_reduce(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                          const mti_attrs *at, const mti_view *out);
/* ARGMAX, ARGMIN along at->dim (cuda_reduce.cu). */
mt_status mtw_cuda_argreduce(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                             const mti_attrs *at, const mti_view *out);
/* SOFTMAX, LOG_SOFTMAX along at->dim (cuda_softmax.cu). */
mt_status mtw_cuda_softmax(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                           const mti_attrs *at, const mti_view *out);
/* LAYER_NORM over the last dim (cuda_softmax.cu). */
mt_status mtw_cuda_layer_norm(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);
/* CAT along at->dim (cuda_gather.cu). */
mt_status mtw_cuda_cat(const mtw_cuda_ctx *ctx, const mti_view *in, int n, const mti_attrs *at,
                       const mti_view *out);
/* INDEX_SELECT of in[0] along at->dim by in[1] (cuda_gather.cu). */
mt_status mtw_cuda_index_select(const mtw_cuda_ctx *ctx, const mti_view *in,
                                const mti_attrs *at, const mti_view *out);
/* MATMUL for the dtypes cuBLAS has no GEMM for (bool, integers), with
 * mti_cpu_matmul's broadcasting and accumulation rules (cuda_matmul.cu). */
mt_status mtw_cuda_matmul_generic(const mtw_cuda_ctx *ctx, const mti_view *a, const mti_view *b,
                                  const mti_view *out);

/* ---- reductions, scans, sorting (0.2) ---- */

/* REDUCE_FLOAT (var, std, logsumexp, norm), REDUCE_BOOL (all, any) and
 * EXTREME_DIM (max_dim, min_dim: out[0] values, out[1] indices)
 * (cuda_reduce_ops.cu). */
mt_status mtw_cuda_reduce_float(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_reduce_bool(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                               const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_extreme_dim(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                               const mti_attrs *at, const mti_view *out);
/* SCAN (cumsum, cumprod), SORT (sort: values, indices; argsort: indices)
 * and TOPK (values, indices) through CUB (cuda_scan_sort.cu). */
mt_status mtw_cuda_scan(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                        const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_sort(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                        const mti_attrs *at, const mti_view *out);

/* ---- indexing, shape, creation, sampling (0.2) ---- */

/* EYE, LINSPACE, RANDINT (Philox as src/core/philox.h), DROPOUT,
 * MULTINOMIAL (cuda_sample.cu). */
mt_status mtw_cuda_eye(const mtw_cuda_ctx *ctx, const mti_view *out);
mt_status mtw_cuda_linspace(const mtw_cuda_ctx *ctx, const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_randint(const mtw_cuda_ctx *ctx, const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_dropout(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                           const mti_view *out);
mt_status mtw_cuda_multinomial(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                               const mti_view *out);
/* GATHER, SCATTER/SCATTER_ADD, INDEX_ADD, EMBEDDING, ONE_HOT (cuda_index.cu). */
mt_status mtw_cuda_gather(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                          const mti_view *out);
mt_status mtw_cuda_scatter(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                           const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_index_add(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                             const mti_view *out);
mt_status mtw_cuda_embedding(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_view *out);
mt_status mtw_cuda_one_hot(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                           const mti_view *out);
/* REMAP (flip, roll, repeat, pad) and TRIANGLE (tril, triu) (cuda_shape.cu). */
mt_status mtw_cuda_remap(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                         const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_triangle(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                            const mti_attrs *at, const mti_view *out);
/* LINEAR (cuda_blas.c: cuBLAS, the bias as the product's starting value). */
mt_status mtw_cuda_linear(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                          const mti_view *out);
/* ---- neural-network ops (0.2): normalisations and losses (cuda_norm.cu) ---- */
/* RMS_NORM, GROUP_NORM (out: y, mean, rstd), BATCH_NORM (out: y, mean,
 * var), CROSS_ENTROPY (out: loss, lse; a target out of range that is not
 * ignore_index sets the fault word). */
mt_status mtw_cuda_rms_norm(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                            const mti_view *out);
mt_status mtw_cuda_group_norm(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);
mt_status mtw_cuda_batch_norm(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);
mt_status mtw_cuda_cross_entropy(const mtw_cuda_ctx *ctx, const mti_view *in,
                                 const mti_attrs *at, const mti_view *out);
/* BATCH_NORM_BACKWARD (out: dx, dweight, dbias) and ROW_NORM_BACKWARD
 * (layer_norm_backward: dx, dweight, dbias; rms_norm_backward: dx, dweight)
 * (cuda_norm.cu, issue 12). */
mt_status mtw_cuda_batch_norm_backward(const mtw_cuda_ctx *ctx, const mti_view *in,
                                       const mti_attrs *at, const mti_view *out);
mt_status mtw_cuda_row_norm_backward(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                     const mti_attrs *at, const mti_view *out);
/* CROSS_ENTROPY_BACKWARD (cuda_norm.cu): in g (0-d), logits, target, lse. */
mt_status mtw_cuda_cross_entropy_backward(const mtw_cuda_ctx *ctx, const mti_view *in,
                                          const mti_attrs *at, const mti_view *out);

/* ---- convolution and pooling (0.2) ---- */

/* CONV (conv1d, conv2d): im2col and cuBLAS, or a direct kernel for one
 * input channel per group (cuda_conv.c, cuda_conv.cu). */
mt_status mtw_cuda_conv(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                        const mti_attrs *at, const mti_view *out);
/* POOL2D (max_pool2d: out[0] values, out[1] argmax; avg_pool2d) and
 * ADAPTIVE_POOL2D (cuda_conv.cu). */
mt_status mtw_cuda_pool2d(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                          const mti_attrs *at, const mti_view *out);

/* ---- neural-network ops (0.2) ---- */

/* ATTENTION: one fused flash-attention kernel, out[0] the result and
 * out[1] the float32 logsumexp per query row; E and Ev at most 256
 * (cuda_attention.cu). */
mt_status mtw_cuda_attention(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                             const mti_view *out);

/* ---- optimizer updates (issue 12) ---- */

/* SGD_STEP (in[2], the momentum buffer, read only with flag PRESENT(2))
 * and ADAMW_STEP: one thread per element, out[0] the new param, then the
 * new state (cuda_optim.cu). */
mt_status mtw_cuda_sgd_step(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                            const mti_view *out);
mt_status mtw_cuda_adamw_step(const mtw_cuda_ctx *ctx, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);

/* ---- convolution backward (issue 12) ---- */

/* CONV_GRAD (conv2d_input_grad: in dy, weight; conv2d_weight_grad: in dy,
 * x): cuBLAS products over the backward's layouts and a col2im kernel
 * (cuda_conv.c, cuda_conv.cu). */
mt_status mtw_cuda_conv_grad(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                             const mti_attrs *at, const mti_view *out);

#ifdef __cplusplus
}
#endif

#endif
