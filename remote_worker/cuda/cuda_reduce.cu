/*
 * cuda_reduce.cu - sum, mean, prod, amax, amin, argmax and argmin on the GPU.
 *
 * Semantics are mti_cpu_reduce / mti_cpu_argreduce (src/cpu/reduce.c):
 *  - sum and prod of bool and integers wrap in uint64 and give int64; of
 *    floats they accumulate in float64 (the cpu joins its float32 lanes in
 *    float64) and round once into out's dtype; mean divides that sum by the
 *    count in float64 (int64 sums converted first);
 *  - amax / amin keep the dtype (float16/bfloat16 compare in float32), and a
 *    NaN wins;
 *  - argmax / argmin give the first index of the extreme value; a NaN beats
 *    every number, and the first NaN wins;
 *  - reducing nothing gives 0 (sum), 1 (prod) or NaN (mean); amax, amin and
 *    the arg reductions of an empty extent are errors (mti_infer refuses
 *    them first).
 * Only the order of the float additions differs from the cpu: a fixed tree
 * (per thread in index order, then butterflies across lanes, then splits
 * joined in order), so results are deterministic for a given shape.
 *
 * The geometry is normalised as on the cpu (red_geom, cuda_reduce.cuh), so
 * transposed or flipped views are read in memory order. One kernel serves
 * every layout: a group of G lanes reduces one output over one split of the
 * reduced range. G = 1 (a thread per output, consecutive threads on
 * consecutive kept elements: coalesced column reductions) when the
 * innermost dim is kept; G = 2..32 lanes or the whole block when it is
 * reduced (row reductions). When the outputs alone do not fill the GPU the
 * reduced range is cut into splits whose partial results go to scratch; a
 * second launch of the same kernel joins each output's splits in order and
 * writes out. A full reduction to one value is that case with one output.
 */
#include "cuda_reduce.cuh"

namespace mtw {
namespace {

/* Which policy reduces input type In for each family. */
template <class In> struct policies {
  typedef typename ::cuda::std::conditional<is_floating<In>::value, float_sum_op<In>,
                                            int_sum_op>::type sum;
  typedef extreme_op<In> extreme;
  typedef arg_op<typename cmp_type<In>::type> arg;
};

/* ---- the kernel ---- */

/*
 * Pass p of a reduction (red_params): each group of lanes reduces one
 * output over one split (reduce_lane), then combines its lanes. The result
 * goes to partial[o * splits + split], or, when partial is NULL, to out at
 * out's offset of o.
 */
template <class Op, class In>
__global__ void __launch_bounds__(RED_BLOCK)
    reduce_kernel(const In *x, red_params p, Op op, typename Op::acc *partial, void *out) {
  typedef typename Op::acc acc;
  __shared__ acc smem[32];
  int G = p.group, lane = (int)threadIdx.x % G;
  int64_t o = (int64_t)blockIdx.x * (blockDim.x / G) + threadIdx.x / G, kout = 0;
  acc a = o < p.g.nout ? reduce_lane(op, x, p, o, lane, blockIdx.y, &kout) : op.identity();
  if (G == RED_BLOCK) a = block_combine(op, a, smem);
  else if (G > 1) a = group_combine(op, a, G);
  if (o >= p.g.nout || lane != 0) return;
  if (partial) partial[o * p.splits + blockIdx.y] = a;
  else op.store(out, kout, a, p.mean_div);
}

/* The type pass 2 reads partials as: uint64 sums as int64 (the same bits,
 * and op.from gives the same acc), so that it shares the int64 kernel. */
template <class A> struct partial_input { typedef A type; };
template <> struct partial_input<uint64_t> { typedef int64_t type; };

/* Enqueues the reduction of x (geometry g) into out (origin moved by
 * g.out_base elements of esz bytes): one launch, or two with the splits'
 * partials in scratch. */
template <class Op, class In>
mt_status launch_reduce(const mtw_cuda_ctx *ctx, const char *fn, const In *x, const red_geom &g,
                        const Op &op, double mean_div, void *out, size_t esz) {
  typedef typename Op::acc acc;
  typedef typename partial_input<acc>::type pin;
  red_params p = red_plan(g, mean_div);
  char *obase = (char *)out + g.out_base * (int64_t)esz;
  if (p.splits == 1) {
    reduce_kernel<<<dim3((unsigned)p.blocks), p.threads, 0, ctx->stream>>>(x, p, op,
                                                                           (acc *)nullptr, obase);
    return launched(fn);
  }
  acc *part = (acc *)ctx->scratch(ctx, (size_t)(g.nout * p.splits) * sizeof(acc));
  if (!part) return MT_ERR_OUT_OF_MEMORY;
  reduce_kernel<<<dim3((unsigned)p.blocks, (unsigned)p.splits), p.threads, 0, ctx->stream>>>(
      x, p, op, part, nullptr);
  red_params q = red_plan_join(p);
  reduce_kernel<<<dim3((unsigned)q.blocks), q.threads, 0, ctx->stream>>>((const pin *)part, q, op,
                                                                         (acc *)nullptr, obase);
  return launched(fn);
}

/* out[i] = v for the n elements of a contiguous out (reductions of nothing). */
__global__ void fill_kernel(void *out, mt_dtype d, int64_t n, double v) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    store_as(out, d, i, v);
}

mt_status fill(const mtw_cuda_ctx *ctx, const char *fn, const mti_view *out, int64_t n, double v) {
  unsigned grid = grid_for(ctx, n, RED_BLOCK);
  fill_kernel<<<grid, RED_BLOCK, 0, ctx->stream>>>(out->data, out->dtype, n, v);
  return launched(fn);
}

/* The dtype mti_infer gives op on input dtype d. */
mt_dtype reduce_out_dtype(mti_op op, mt_dtype d) {
  bool fl = mti_dtype_is_float(d);
  switch (op) {
  case MTI_OP_SUM:
  case MTI_OP_PROD: return fl ? d : MT_INT64;
  case MTI_OP_MEAN: return fl ? d : MT_FLOAT32;
  case MTI_OP_ARGMAX:
  case MTI_OP_ARGMIN: return MT_INT64;
  default: return d;
  }
}

/* Runs op's policy for input type In. */
template <class In>
mt_status reduce_typed(const mtw_cuda_ctx *ctx, mti_op op, const char *fn, const mti_view *in,
                       const red_geom &g, const mti_view *out) {
  typedef policies<In> P;
  const In *x = (const In *)in->data + g.in_base;
  size_t esz = mt_dtype_size(out->dtype);
  double div = op == MTI_OP_MEAN && g.count > 1 ? (double)g.count : 0.0;
  switch (op) {
  case MTI_OP_SUM:
  case MTI_OP_MEAN:
  case MTI_OP_PROD: {
    typename P::sum s;
    s.alt = op == MTI_OP_PROD;
    if constexpr (!is_floating<In>::value) s.od = out->dtype;
    return launch_reduce(ctx, fn, x, g, s, div, out->data, esz);
  }
  case MTI_OP_AMAX:
  case MTI_OP_AMIN: {
    typename P::extreme e;
    e.alt = op == MTI_OP_AMIN;
    return launch_reduce(ctx, fn, x, g, e, 0.0, out->data, esz);
  }
  case MTI_OP_ARGMAX:
  case MTI_OP_ARGMIN: {
    typename P::arg e;
    e.alt = op == MTI_OP_ARGMIN;
    return launch_reduce(ctx, fn, x, g, e, 0.0, out->data, esz);
  }
  default: return mti_error(MT_ERR_INTERNAL, "%s: not a reduction", fn);
  }
}

mt_status reduce_dispatch(const mtw_cuda_ctx *ctx, mti_op op, const char *fn, const mti_view *in,
                          const red_geom &g, const mti_view *out) {
  if (out->dtype != reduce_out_dtype(op, in->dtype))
    return mti_error(MT_ERR_INTERNAL, "%s: out has dtype %s, expected %s", fn,
                     mt_dtype_name(out->dtype), mt_dtype_name(reduce_out_dtype(op, in->dtype)));
  MTW_DISPATCH(in->dtype, return reduce_typed<scalar_t>(ctx, op, fn, in, g, out));
  return mti_error(MT_ERR_DTYPE, "%s: dtype %d is not a dtype", fn, (int)in->dtype);
}

} /* namespace */
} /* namespace mtw */

/* Reductions of nothing fill out (0, 1 or NaN); amax / amin of nothing are
 * errors, as on the cpu. */
extern "C" mt_status mtw_cuda_reduce(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                     const mti_attrs *at, const mti_view *out) {
  char fn[48];
  mtw::op_fn(op, fn, sizeof fn);
  uint32_t mask = at->dims_mask & (in->ndim ? (uint32_t)((1u << in->ndim) - 1u) : 0u);
  mtw::red_geom g;
  mtw::red_geom_init(&g, in->ndim, in->shape, in->strides, mask, 0);
  if (g.nout == 0) return MT_OK;
  if (g.count == 0) {
    if (op == MTI_OP_AMAX || op == MTI_OP_AMIN)
      return mti_error(MT_ERR_SHAPE, "%s: dims: cannot reduce an empty extent", fn);
    return mtw::fill(ctx, fn, out, g.nout, op == MTI_OP_SUM ? 0.0 : op == MTI_OP_PROD ? 1.0 : NAN);
  }
  return mtw::reduce_dispatch(ctx, op, fn, in, g, out);
}

/* A 0-d input, or a reduced dim of size 1, gives index 0 everywhere. */
extern "C" mt_status mtw_cuda_argreduce(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                        const mti_attrs *at, const mti_view *out) {
  char fn[48];
  mtw::op_fn(op, fn, sizeof fn);
  uint32_t mask = in->ndim ? 1u << at->dim : 0u;
  mtw::red_geom g;
  mtw::red_geom_init(&g, in->ndim, in->shape, in->strides, mask, 1);
  if (g.nout == 0) return MT_OK;
  if (g.count == 0) return mti_error(MT_ERR_SHAPE, "%s: dim: cannot reduce an empty extent", fn);
  if (g.count == 1) return mtw::fill(ctx, fn, out, g.nout, 0.0);
  return mtw::reduce_dispatch(ctx, op, fn, in, g, out);
}
