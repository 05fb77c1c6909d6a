/*
 * cpu_kernels.h - the kernel families behind mti_cpu_run (internal to src/cpu).
 *
 * Calling conventions shared by all families:
 *  - out is allocated, its shape and dtype are what mti_infer decided;
 *  - for the elementwise family every input is already broadcast to out's
 *    shape (same ndim and shape, stride 0 where broadcast);
 *  - views may have any strides; fast paths cover the contiguous case;
 *  - work above MTI_CPU_PARALLEL_MIN elements is split across OpenMP threads,
 *    as many as mti_cpu_threads() says (every region names its count).
 */
#ifndef MTI_CPU_KERNELS_H
#define MTI_CPU_KERNELS_H

#include "cpu_backend.h"
#include "cpu/threads.h"

/* Below this many elements (or inner-loop iterations) a kernel runs on one thread. */
#define MTI_CPU_PARALLEL_MIN 32768

/* FILL ARANGE COPY BINARY COMPARE LOGICAL SCALAR UNARY UNARY_FLOAT WHERE CLAMP CAST,
 * and of 0.2: BITWISE PREDICATE BINARY_FLOAT DIVISION UNARY_PARAM MASKED_FILL */
mt_status mti_cpu_elementwise(mti_op op, const mti_view *in, int n, const mti_attrs *at,
                              const mti_view *out);

/* REDUCE ARGREDUCE SOFTMAX LAYER_NORM (inputs not broadcast) */
mt_status mti_cpu_reduce(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_argreduce(mti_op op, const mti_view *in, const mti_attrs *at,
                            const mti_view *out);
mt_status mti_cpu_softmax(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_layer_norm(const mti_view *in, const mti_attrs *at, const mti_view *out);

/* MATMUL (numpy.matmul; inputs not broadcast, out has the broadcast batch) */
mt_status mti_cpu_matmul(const mti_view *a, const mti_view *b, const mti_view *out);
/* LINEAR (in[0] @ in[1]^T + in[2] when PRESENT(2); matmul.c) */
mt_status mti_cpu_linear(const mti_view *in, const mti_attrs *at, const mti_view *out);

/* CAT (n inputs, possibly of other dtypes than out), INDEX_SELECT */
mt_status mti_cpu_cat(const mti_view *in, int n, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_index_select(const mti_view *a, const mti_view *index, const mti_attrs *at,
                               const mti_view *out);

/* RANDOM */
mt_status mti_cpu_random(mti_op op, const mti_attrs *at, const mti_view *out);

/* ---- reductions, scans, sorting (0.2) ---- */

/* REDUCE_FLOAT (var std logsumexp norm) REDUCE_BOOL (all any) EXTREME_DIM
 * (max_dim min_dim: out[0] values, out[1] indices) (row_reduce.c) */
mt_status mti_cpu_reduce_float(mti_op op, const mti_view *in, const mti_attrs *at,
                               const mti_view *out);
mt_status mti_cpu_reduce_bool(mti_op op, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);
mt_status mti_cpu_extreme_dim(mti_op op, const mti_view *in, const mti_attrs *at,
                              const mti_view *out);
/* SCAN (cumsum cumprod) SORT (sort: values, indices; argsort: indices) TOPK
 * (values, indices) (scan_sort.c) */
mt_status mti_cpu_scan(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_sort(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out);

/* ---- indexing, shape, creation, sampling (0.2) ---- */

/* EYE LINSPACE RANDINT (sample.c): out's shape as mti_infer gave it */
mt_status mti_cpu_eye(const mti_view *out);
mt_status mti_cpu_linspace(const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_randint(const mti_attrs *at, const mti_view *out);
/* GATHER SCATTER INDEX_ADD EMBEDDING ONE_HOT (index_ops.c) */
mt_status mti_cpu_gather(const mti_view *a, const mti_view *index, const mti_attrs *at,
                         const mti_view *out);
mt_status mti_cpu_scatter(mti_op op, const mti_view *in, const mti_attrs *at,
                          const mti_view *out);
mt_status mti_cpu_index_add(const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_embedding(const mti_view *weight, const mti_view *index, const mti_view *out);
mt_status mti_cpu_one_hot(const mti_view *index, const mti_attrs *at, const mti_view *out);
/* REMAP (flip roll repeat pad) TRIANGLE (tril triu) (shape_ops.c) */
mt_status mti_cpu_remap(mti_op op, const mti_view *a, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_triangle(mti_op op, const mti_view *a, const mti_attrs *at,
                           const mti_view *out);
/* MULTINOMIAL DROPOUT (sample.c) */
mt_status mti_cpu_multinomial(const mti_view *probs, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_dropout(const mti_view *a, const mti_attrs *at, const mti_view *out);

/* ---- normalisations and losses (norm.c) ---- */

/* RMS_NORM (in[1] read when MTI_FLAG_HAS_WEIGHT) GROUP_NORM (out: y, mean,
 * rstd) BATCH_NORM (out: y, mean, var; in[1..4] read when present; eval
 * when the running stats in[1], in[2] are) CROSS_ENTROPY (out: loss, lse; a
 * target out of range is MT_ERR_INVALID_ARGUMENT) */
mt_status mti_cpu_rms_norm(const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_group_norm(const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_batch_norm(const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_cross_entropy(const mti_view *in, const mti_attrs *at, const mti_view *out);
/* ---- convolution and pooling (0.2) ---- */

/* CONV (conv1d conv2d: in[2] read only when MTI_FLAG_PRESENT(2)) (conv.c) */
mt_status mti_cpu_conv(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out);
/* POOL2D (max_pool2d: out[0] values, out[1] argmax; avg_pool2d) and
 * ADAPTIVE_POOL2D (adaptive_avg_pool2d) (pool.c) */
mt_status mti_cpu_pool2d(mti_op op, const mti_view *in, const mti_attrs *at,
                         const mti_view *out);
/* ---- neural-network ops (0.2) ---- */

/* ATTENTION (attention.c): in q, k, v and the optional mask in[3] (flag
 * PRESENT(3)) as mti_infer admitted them, not broadcast; out[0] the
 * result, out[1] the float32 logsumexp per query row. */
mt_status mti_cpu_attention(const mti_view *in, const mti_attrs *at, const mti_view *out);

/* ---- optimizer updates (issue 12) ---- */

/* SGD_STEP, ADAMW_STEP (optim.c): in as mti_infer admitted them (any
 * strides; SGD_STEP's buffer in[2] read only with flag PRESENT(2)); out[0]
 * the new param, then the new state. */
mt_status mti_cpu_sgd_step(const mti_view *in, const mti_attrs *at, const mti_view *out);
mt_status mti_cpu_adamw_step(const mti_view *in, const mti_attrs *at, const mti_view *out);
/* ---- convolution backward (issue 12) ---- */

/* CONV_GRAD (conv.c): CONV2D_INPUT_GRAD (in dy, weight) or
 * CONV2D_WEIGHT_GRAD (in dy, x), any strides, as mti_infer admitted them. */
mt_status mti_cpu_conv_grad(mti_op op, const mti_view *in, const mti_attrs *at,
                            const mti_view *out);

/* ---- fused norm backwards (issue 12, norm.c) ---- */

/* BATCH_NORM_BACKWARD (in: dy, x, mean, var, weight read with flag
 * PRESENT(4); out: dx, dweight, dbias) and ROW_NORM_BACKWARD
 * (layer_norm_backward: dx, dweight, dbias; rms_norm_backward: dx, dweight;
 * in: dy, x, weight read with flag PRESENT(2)); inputs as mti_infer
 * admitted them, any strides. */
mt_status mti_cpu_batch_norm_backward(const mti_view *in, const mti_attrs *at,
                                      const mti_view *out);
mt_status mti_cpu_row_norm_backward(mti_op op, const mti_view *in, const mti_attrs *at,
                                    const mti_view *out);
/* CROSS_ENTROPY_BACKWARD (norm.c): in g (0-d), logits, target, lse; out
 * d loss / d logits. */
mt_status mti_cpu_cross_entropy_backward(const mti_view *in, const mti_attrs *at,
                                         const mti_view *out);

/* Strided conversion of src into dst (same shape, any dtypes, any strides;
 * mt_cast's rules). The workhorse behind COPY, CAST and the input staging of
 * other families. */
mt_status mti_cpu_convert(const mti_view *src, const mti_view *dst);
/* One row of mti_cpu_convert: n elements from src (dtype sd, stride ss in
 * elements) to dst (dd, ds), on the calling thread; the rows must not
 * overlap. For short rows, where a view's setup would cost more than the
 * conversion (staging buffers). */
void mti_cpu_convert_row(const void *src, mt_dtype sd, int64_t ss, void *dst, mt_dtype dd,
                         int64_t ds, int64_t n);

#endif
