/*
 * cuda_gather.cu - cat and index_select on the GPU.
 *
 * Semantics are mti_cpu_cat / mti_cpu_index_select (src/cpu/gather.c). Both
 * see the contiguous out as rows: for cat, input i fills a slab of every
 * outer row (converted to out's dtype, which is the inputs' promotion); for
 * index_select, out row (o, l) is a's inner block at outer index o and
 * position index[l] along dim. Index entries may be negative (counted from
 * the end, -size..size-1); an entry out of range is never used to read or
 * write: the kernel sets the fault word instead (the backend reports it at
 * its next synchronize), also when out is empty, as the cpu checks every
 * entry then too.
 */
#include "cuda_reduce.cuh"

namespace mtw {
namespace {

enum { THREADS = 256 };

/* ---- cat ---- */

/* The slab of out one input fills: element e of the input (row-major, of
 * shape [outer, len * inner] seen flat) goes to out + (e / row) * pitch +
 * e % row. */
struct slab {
  int64_t row, pitch, n;
};

/* Copies (and converts) a strided input into its slab of out (type Out);
 * the input's dtype is read at run time, so one kernel per out dtype. */
template <class Out>
__global__ void __launch_bounds__(THREADS)
    cat_kernel(const void *src, mt_dtype d, desc from, slab s, Out *dst) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < s.n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = e / s.row;
    dst[o * s.pitch + (e - o * s.row)] = load_as<Out>(src, d, offset_of(from, e));
  }
}

/* Whether cudaMemcpy2DAsync takes these pitches (at most 2^31 - 1 bytes
 * on every device we build for). */
bool pitch_ok(int64_t bytes) { return bytes < ((int64_t)1 << 31); }

/* Input v into its slab at dst: a 2-D device copy when it is contiguous and
 * of out's dtype, else the converting kernel. */
mt_status cat_one(const mtw_cuda_ctx *ctx, const mti_view &v, const mti_view &out, int dim,
                  char *dst) {
  int64_t outer = mti_shape_numel(dim, out.shape);
  int64_t inner = mti_shape_numel(out.ndim - dim - 1, out.shape + dim + 1);
  int64_t es = (int64_t)mt_dtype_size(out.dtype), row = v.shape[dim] * inner;
  int64_t pitch = out.shape[dim] * inner;
  if (v.dtype == out.dtype && mti_shape_is_contiguous(v.ndim, v.shape, v.strides) &&
      (outer == 1 || pitch_ok(pitch * es))) {
    cudaError_t e = outer == 1 ? cudaMemcpyAsync(dst, v.data, (size_t)(row * es),
                                                 cudaMemcpyDeviceToDevice, ctx->stream)
                               : cudaMemcpy2DAsync(dst, (size_t)(pitch * es), v.data,
                                                   (size_t)(row * es), (size_t)(row * es),
                                                   (size_t)outer, cudaMemcpyDeviceToDevice,
                                                   ctx->stream);
    if (e == cudaSuccess) return MT_OK;
    (void)cudaGetLastError(); /* e is also the last error: clear it for later ops' checks */
    return mti_error(MT_ERR_INTERNAL, "mt_cat: cuda: %s (%s)", cudaGetErrorString(e),
                     cudaGetErrorName(e));
  }
  slab s = {row, pitch, outer * row};
  desc from = make_desc(v);
  unsigned grid = grid_for(ctx, s.n, THREADS);
  MTW_DISPATCH(out.dtype, cat_kernel<scalar_t><<<grid, THREADS, 0, ctx->stream>>>(
                              v.data, v.dtype, from, s, (scalar_t *)dst);
               return launched("mt_cat"));
  return mti_error(MT_ERR_INTERNAL, "mt_cat: out dtype %d", (int)out.dtype);
}

/* ---- index_select ---- */

struct gather_geom {
  desc pre;            /* dims of a before dim (row-major over outer index o) */
  desc post;           /* dims of a after dim */
  bool post_contig;    /* post is row-major: inner offset c is c */
  int64_t size, stride; /* of a along dim */
  int64_t len, step;   /* index entries and their stride */
  int64_t rows, inner; /* out is [rows, inner], rows = outer * len */
  int group;           /* threads per row: a power of two <= THREADS */
};

/*
 * Rows of out go to groups of `group` threads (several rows per block when
 * inner is short), which copy the row's inner block with consecutive
 * threads on consecutive elements. E: an unsigned type of the element
 * size (a move needs no conversion); I: the index type.
 */
template <class E, class I>
__global__ void __launch_bounds__(THREADS)
    index_select_kernel(const E *a, const I *index, gather_geom g, E *out, unsigned *fault,
                        unsigned code) {
  int G = g.group, lane = (int)threadIdx.x % G;
  int64_t per_block = THREADS / G;
  for (int64_t row = blockIdx.x * per_block + threadIdx.x / G; row < g.rows;
       row += (int64_t)gridDim.x * per_block) {
    int64_t o = row / g.len, l = row - o * g.len;
    int64_t pos = wrap_index((int64_t)index[l * g.step], g.size);
    if (pos < 0) {
      if (lane == 0) atomicCAS(fault, 0u, code);
      continue;
    }
    const E *src = a + offset_of(g.pre, o) + pos * g.stride;
    E *dst = out + row * g.inner;
    if (g.post_contig)
      for (int64_t c = lane; c < g.inner; c += G) dst[c] = src[c];
    else
      for (int64_t c = lane; c < g.inner; c += G) dst[c] = src[offset_of(g.post, c)];
  }
}

/* Checks the index entries alone (out is empty, nothing to copy). */
template <class I>
__global__ void index_check_kernel(const I *index, int64_t len, int64_t step, int64_t size,
                                   unsigned *fault, unsigned code) {
  for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < len;
       l += (int64_t)gridDim.x * blockDim.x)
    if (wrap_index((int64_t)index[l * step], size) < 0) atomicCAS(fault, 0u, code);
}

template <class E, class I>
mt_status index_select_typed(const mtw_cuda_ctx *ctx, const mti_view &a, const I *index,
                             const gather_geom &g, const mti_view &out) {
  unsigned code = MTW_CUDA_FAULT(MTI_OP_INDEX_SELECT, MTW_CUDA_FAULT_INDEX_RANGE);
  if (g.rows == 0 || g.inner == 0) {
    if (g.len > 0)
      index_check_kernel<I><<<grid_for(ctx, g.len, THREADS), THREADS, 0, ctx->stream>>>(
          index, g.len, g.step, g.size, ctx->fault, code);
    return launched("mt_index_select");
  }
  unsigned grid = grid_for(ctx, g.rows, THREADS / g.group);
  index_select_kernel<E, I><<<grid, THREADS, 0, ctx->stream>>>(
      (const E *)a.data, index, g, (E *)out.data, ctx->fault, code);
  return launched("mt_index_select");
}

template <class I>
mt_status index_select_by_size(const mtw_cuda_ctx *ctx, const mti_view &a, const I *index,
                               const gather_geom &g, const mti_view &out) {
  switch (mt_dtype_size(a.dtype)) {
  case 1: return index_select_typed<uint8_t>(ctx, a, index, g, out);
  case 2: return index_select_typed<uint16_t>(ctx, a, index, g, out);
  case 4: return index_select_typed<uint32_t>(ctx, a, index, g, out);
  default: return index_select_typed<uint64_t>(ctx, a, index, g, out);
  }
}

/* The dims [from, to) of v as a desc. */
desc sub_desc(const mti_view &v, int from, int to) {
  desc d;
  d.ndim = to - from;
  for (int i = 0; i < MT_MAX_DIMS; i++) {
    d.shape[i] = i < d.ndim ? v.shape[from + i] : 1;
    d.strides[i] = i < d.ndim ? v.strides[from + i] : 0;
  }
  return d;
}

} /* namespace */
} /* namespace mtw */

/* Inputs with no elements contribute nothing. */
extern "C" mt_status mtw_cuda_cat(const mtw_cuda_ctx *ctx, const mti_view *in, int n,
                                  const mti_attrs *at, const mti_view *out) {
  int dim = at->dim;
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  int64_t inner = mti_shape_numel(out->ndim - dim - 1, out->shape + dim + 1), offset = 0;
  size_t es = mt_dtype_size(out->dtype);
  for (int i = 0; i < n; i++) {
    const mti_view &v = in[i];
    if (mti_shape_numel(v.ndim, v.shape) == 0) continue;
    char *dst = (char *)out->data + (size_t)(offset * inner) * es;
    mt_status s = mtw::cat_one(ctx, v, *out, dim, dst);
    if (s) return s;
    offset += v.shape[dim];
  }
  return MT_OK;
}

extern "C" mt_status mtw_cuda_index_select(const mtw_cuda_ctx *ctx, const mti_view *in,
                                           const mti_attrs *at, const mti_view *out) {
  const mti_view &a = in[0], &index = in[1];
  int dim = at->dim;
  mtw::gather_geom g;
  g.pre = mtw::sub_desc(a, 0, dim);
  g.post = mtw::sub_desc(a, dim + 1, a.ndim);
  g.post_contig = mti_shape_is_contiguous(g.post.ndim, g.post.shape, g.post.strides) != 0;
  g.size = a.shape[dim];
  g.stride = a.strides[dim];
  g.len = index.ndim == 0 ? 1 : index.shape[0];
  g.step = index.ndim == 0 ? 0 : index.strides[0];
  g.inner = mti_shape_numel(a.ndim - dim - 1, a.shape + dim + 1);
  g.rows = mti_shape_numel(dim, a.shape) * g.len;
  g.group = mtw::pow2_at_least(g.inner < (int64_t)mtw::THREADS ? g.inner : (int64_t)mtw::THREADS);
  if (out->dtype != a.dtype)
    return mti_error(MT_ERR_INTERNAL, "mt_index_select: out has dtype %s",
                     mt_dtype_name(out->dtype));
  if (index.dtype == MT_INT32)
    return mtw::index_select_by_size(ctx, a, (const int32_t *)index.data, g, *out);
  if (index.dtype == MT_INT64)
    return mtw::index_select_by_size(ctx, a, (const int64_t *)index.data, g, *out);
  return mti_error(MT_ERR_DTYPE, "mt_index_select: index: dtype %s, expected int32 or int64",
                   mt_dtype_name(index.dtype));
}
