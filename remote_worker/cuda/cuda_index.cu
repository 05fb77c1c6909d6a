/*
 * cuda_index.cu - gather, scatter, scatter_add, index_add, embedding,
 * one_hot on the GPU.
 *
 * Semantics are src/cpu/index_ops.c's. scatter and scatter_add give one
 * thread to each line along dim (entries of different lines never meet)
 * and walk it in index order, so duplicates resolve exactly as on the cpu
 * (last write wins, sums in index order) with no atomics; index_add gives
 * one thread to each output element not along dim, which runs through the
 * index in order. An entry out of range is never used: the kernel sets the
 * fault word (reported at the next synchronize).
 */
#include "cuda_reduce.cuh"

namespace mtw {
namespace {

enum { THREADS = 256 };

/* A view's geometry seen with the index's dims (0-d as 1-d of size 1). */
desc line_desc(const mti_view &v) {
  desc d = make_desc(v);
  if (v.ndim == 0) d.ndim = 1;
  return d;
}

/* Index value at element offset off. */
template <class I> __device__ __forceinline__ int64_t index_at(const I *index, int64_t off) {
  return (int64_t)index[off];
}

/* Offsets in the index, data and out of line l (every dim but dim), over
 * the index's shape ishape. */
__device__ void line_offsets(const desc &ishape, int dim, const desc &data, const desc &out,
                             int64_t l, int64_t *io, int64_t *dof, int64_t *oo) {
  *io = *dof = *oo = 0;
  for (int d = ishape.ndim - 1; d >= 0; d--) {
    if (d == dim) continue;
    int64_t k = l % ishape.shape[d];
    l /= ishape.shape[d];
    *io += k * ishape.strides[d];
    *dof += k * data.strides[d];
    *oo += k * out.strides[d];
  }
}

struct line_geom {
  desc index, data, out; /* out: contiguous strides of its shape */
  int dim;
  int64_t len, lines, bound;
};

template <class E, class I>
__global__ void __launch_bounds__(THREADS)
    gather_kernel(const E *a, const I *index, line_geom g, E *out, unsigned *fault,
                  unsigned code) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < g.lines * g.len;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t l = e / g.len, k = e - l * g.len, io, dof, oo;
    line_offsets(g.index, g.dim, g.data, g.out, l, &io, &dof, &oo);
    int64_t v = index_at(index, io + k * g.index.strides[g.dim]);
    if (v < 0 || v >= g.bound) {
      atomicCAS(fault, 0u, code);
      continue;
    }
    out[oo + k * g.out.strides[g.dim]] = a[dof + v * g.data.strides[g.dim]];
  }
}

template <class T, bool ADD, class I>
__global__ void __launch_bounds__(THREADS)
    scatter_kernel(const T *src, const I *index, line_geom g, T *out, unsigned *fault,
                   unsigned code) {
  for (int64_t l = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; l < g.lines;
       l += (int64_t)gridDim.x * blockDim.x) {
    int64_t io, dof, oo;
    line_offsets(g.index, g.dim, g.data, g.out, l, &io, &dof, &oo);
    for (int64_t k = 0; k < g.len; k++) {
      int64_t v = index_at(index, io + k * g.index.strides[g.dim]);
      if (v < 0 || v >= g.bound) {
        atomicCAS(fault, 0u, code);
        break;
      }
      T *dst = out + oo + v * g.out.strides[g.dim];
      T s = src[dof + k * g.data.strides[g.dim]];
      if constexpr (ADD) *dst = convert<T>(widen(*dst) + widen(s));
      else *dst = s;
    }
  }
}

/* out[o, index[i], j] += src[o, i, j] for every i in order (src contiguous
 * view given by its desc; out contiguous). */
template <class T, class I>
__global__ void __launch_bounds__(THREADS)
    index_add_kernel(const T *src, desc sd, const I *index, int64_t len, int64_t step,
                     int64_t outer, int64_t size, int64_t inner, T *out, unsigned *fault,
                     unsigned code) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < outer * inner;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t o = e / inner, j = e - o * inner;
    for (int64_t i = 0; i < len; i++) {
      int64_t v = index_at(index, i * step);
      if (v < 0 || v >= size) {
        atomicCAS(fault, 0u, code);
        break;
      }
      T *dst = out + (o * size + v) * inner + j;
      *dst = convert<T>(widen(*dst) + widen(src[offset_of(sd, (o * len + i) * inner + j)]));
    }
  }
}

template <class E, class I>
__global__ void __launch_bounds__(THREADS)
    embedding_kernel(const E *w, int64_t vocab, int64_t ws, int64_t cs, const I *index, desc id,
                     int64_t width, int64_t n, E *out, unsigned *fault, unsigned code) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = e / width, j = e - r * width;
    int64_t v = index_at(index, offset_of(id, r));
    if (v < 0 || v >= vocab) {
      atomicCAS(fault, 0u, code);
      continue;
    }
    out[e] = w[v * ws + j * cs];
  }
}

template <class I>
__global__ void __launch_bounds__(THREADS)
    one_hot_kernel(const I *index, desc id, int64_t rows, int64_t classes, int64_t *out,
                   unsigned *fault, unsigned code) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    int64_t v = index_at(index, offset_of(id, r));
    if (v < 0 || v >= classes) atomicCAS(fault, 0u, code);
    else out[r * classes + v] = 1;
  }
}


/* Runs STMT with I bound to the index type (int32 or int64). */
#define BY_INDEX(d, ...)                                       \
  if ((d) == MT_INT32) { typedef int32_t I; __VA_ARGS__; }     \
  else { typedef int64_t I; __VA_ARGS__; }

line_geom make_lines(const mti_view &index, int dim, const mti_view &data, const mti_view &out,
                     int64_t bound) {
  line_geom g;
  g.index = line_desc(index);
  g.data = line_desc(data);
  g.out = line_desc(out);
  mti_shape_contiguous_strides(out.ndim, out.shape, g.out.strides);
  if (out.ndim == 0) g.out.strides[0] = 0;
  g.dim = dim;
  g.len = g.index.shape[dim];
  int64_t n = mti_shape_numel(g.index.ndim, g.index.shape);
  g.lines = g.len ? n / g.len : 0;
  g.bound = bound;
  return g;
}

/* out = in converted (the COPY kernel): scatter and index_add start from a. */
mt_status copy_into(const mtw_cuda_ctx *ctx, const mti_view &a, const mti_view &out) {
  mti_attrs at = {};
  at.dtype = (int32_t)out.dtype;
  return mtw_cuda_elementwise(ctx, MTI_OP_COPY, &a, 1, &at, &out);
}

} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_gather(const mtw_cuda_ctx *ctx, const mti_view *in,
                                     const mti_attrs *at, const mti_view *out) {
  const mti_view &a = in[0], &index = in[1];
  line_geom g = make_lines(index, at->dim, a, *out, a.ndim ? a.shape[at->dim] : 1);
  if (g.lines * g.len == 0) return MT_OK;
  unsigned code = MTW_CUDA_FAULT(MTI_OP_GATHER, MTW_CUDA_FAULT_INDEX_RANGE);
  unsigned grid = grid_for(ctx, g.lines * g.len, THREADS);
  BY_SIZE(a.dtype, BY_INDEX(index.dtype, gather_kernel<E, I><<<grid, THREADS, 0, ctx->stream>>>(
                                             (const E *)a.data, (const I *)index.data, g,
                                             (E *)out->data, ctx->fault, code)));
  return launched("mt_gather");
}

extern "C" mt_status mtw_cuda_scatter(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                      const mti_attrs *at, const mti_view *out) {
  const char *fn = op == MTI_OP_SCATTER_ADD ? "mt_scatter_add" : "mt_scatter";
  mt_status s = copy_into(ctx, in[0], *out);
  if (s) return s;
  line_geom g = make_lines(in[1], at->dim, in[2], *out, out->ndim ? out->shape[at->dim] : 1);
  if (g.lines * g.len == 0) return MT_OK;
  unsigned code = MTW_CUDA_FAULT(op, MTW_CUDA_FAULT_INDEX_RANGE);
  unsigned grid = grid_for(ctx, g.lines, THREADS);
  if (op == MTI_OP_SCATTER) {
    BY_SIZE(out->dtype, BY_INDEX(in[1].dtype,
                                 scatter_kernel<E, false, I><<<grid, THREADS, 0, ctx->stream>>>(
                                     (const E *)in[2].data, (const I *)in[1].data, g,
                                     (E *)out->data, ctx->fault, code)));
    return launched(fn);
  }
  MTW_DISPATCH(out->dtype,
               BY_INDEX(in[1].dtype,
                        scatter_kernel<scalar_t, true, I><<<grid, THREADS, 0, ctx->stream>>>(
                            (const scalar_t *)in[2].data, (const I *)in[1].data, g,
                            (scalar_t *)out->data, ctx->fault, code));
               return launched(fn));
  return mti_error(MT_ERR_INTERNAL, "%s: out dtype %d", fn, (int)out->dtype);
}

extern "C" mt_status mtw_cuda_index_add(const mtw_cuda_ctx *ctx, const mti_view *in,
                                        const mti_attrs *at, const mti_view *out) {
  const mti_view &idx = in[1], &src = in[2];
  mt_status s = copy_into(ctx, in[0], *out);
  if (s) return s;
  int64_t outer, size, inner;
  mti_shape_split(out->ndim, out->shape, at->dim, &outer, &size, &inner);
  int64_t len = idx.ndim ? idx.shape[0] : 1, step = idx.ndim ? idx.strides[0] : 0;
  if (outer * inner == 0 || len == 0) return MT_OK;
  desc sd = make_desc(src);
  unsigned code = MTW_CUDA_FAULT(MTI_OP_INDEX_ADD, MTW_CUDA_FAULT_INDEX_RANGE);
  unsigned grid = grid_for(ctx, outer * inner, THREADS);
  MTW_DISPATCH(out->dtype,
               BY_INDEX(idx.dtype, index_add_kernel<scalar_t, I><<<grid, THREADS, 0, ctx->stream>>>(
                                       (const scalar_t *)src.data, sd, (const I *)idx.data, len,
                                       step, outer, size, inner, (scalar_t *)out->data,
                                       ctx->fault, code));
               return launched("mt_index_add"));
  return mti_error(MT_ERR_INTERNAL, "mt_index_add: out dtype %d", (int)out->dtype);
}

extern "C" mt_status mtw_cuda_embedding(const mtw_cuda_ctx *ctx, const mti_view *in,
                                        const mti_view *out) {
  const mti_view &w = in[0], &idx = in[1];
  int64_t n = mti_shape_numel(out->ndim, out->shape);
  if (n == 0) return MT_OK;
  desc id = make_desc(idx);
  unsigned code = MTW_CUDA_FAULT(MTI_OP_EMBEDDING, MTW_CUDA_FAULT_INDEX_RANGE);
  unsigned grid = grid_for(ctx, n, THREADS);
  BY_SIZE(w.dtype, BY_INDEX(idx.dtype, embedding_kernel<E, I><<<grid, THREADS, 0, ctx->stream>>>(
                                           (const E *)w.data, w.shape[0], w.strides[0],
                                           w.strides[1], (const I *)idx.data, id, w.shape[1], n,
                                           (E *)out->data, ctx->fault, code)));
  return launched("mt_embedding");
}

extern "C" mt_status mtw_cuda_one_hot(const mtw_cuda_ctx *ctx, const mti_view *in,
                                      const mti_attrs *at, const mti_view *out) {
  const mti_view &idx = in[0];
  int64_t rows = mti_shape_numel(idx.ndim, idx.shape), classes = at->ints[0];
  if (rows == 0) return MT_OK;
  if (cudaMemsetAsync(out->data, 0, (size_t)(rows * classes) * sizeof(int64_t), ctx->stream))
    return launched("mt_one_hot");
  desc id = make_desc(idx);
  unsigned code = MTW_CUDA_FAULT(MTI_OP_ONE_HOT, MTW_CUDA_FAULT_INDEX_RANGE);
  BY_INDEX(idx.dtype, one_hot_kernel<I><<<grid_for(ctx, rows, THREADS), THREADS, 0, ctx->stream>>>(
                          (const I *)idx.data, id, rows, classes, (int64_t *)out->data,
                          ctx->fault, code));
  return launched("mt_one_hot");
}
