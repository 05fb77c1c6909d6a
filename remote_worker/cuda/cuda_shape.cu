/*
 * cuda_shape.cu - flip, roll, repeat, pad (REMAP) and tril, triu on the GPU.
 *
 * REMAP uses the per-dim maps of core/remap.h, computed on the host exactly
 * as for the cpu and copied into the op's scratch: one thread per output
 * element adds up map_d[i_d] * stride_d (a -1 anywhere gives the fill
 * value). tril/triu: one thread per element, keeping or zeroing it.
 */
#include <stdlib.h>

#include "cuda_reduce.cuh"

extern "C" {
#include "core/remap.h"
}

namespace mtw {
namespace {

enum { THREADS = 256 };

struct remap_geom {
  int ndim;
  int64_t shape[MT_MAX_DIMS];   /* out's */
  int64_t strides[MT_MAX_DIMS]; /* a's, aligned to out's dims (0 for new ones) */
  int64_t start[MT_MAX_DIMS];   /* where dim d's map starts in maps */
  int64_t n;
};

template <class E>
__global__ void __launch_bounds__(THREADS)
    remap_kernel(const E *a, const int64_t *maps, remap_geom g, E fill, E *out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < g.n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t rest = e, off = 0;
    bool filled = false;
    for (int d = g.ndim - 1; d >= 0; d--) {
      int64_t i = rest % g.shape[d];
      rest /= g.shape[d];
      int64_t m = maps[g.start[d] + i];
      filled |= m < 0;
      off += m * g.strides[d];
    }
    out[e] = filled ? fill : a[off];
  }
}

template <class E>
__global__ void __launch_bounds__(THREADS)
    triangle_kernel(const E *a, desc batch, int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                    int64_t diag, bool upper, int64_t n, E *out) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t j = e % cols, i = (e / cols) % rows, b = e / (cols * rows);
    bool keep = upper ? j - i >= diag : j - i <= diag;
    out[e] = keep ? a[offset_of(batch, b) + i * rs + j * cs] : E(0);
  }
}


} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_remap(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                    const mti_attrs *at, const mti_view *out) {
  const mti_view &a = in[0];
  char fn[48];
  op_fn(op, fn, sizeof fn);
  remap_geom g;
  g.ndim = out->ndim;
  g.n = mti_shape_numel(out->ndim, out->shape);
  if (g.n == 0) return MT_OK;
  mti_meta im = {a.dtype, a.ndim, {0}}, om = {out->dtype, out->ndim, {0}};
  mti_dims_copy(im.shape, a.shape, a.ndim);
  mti_dims_copy(om.shape, out->shape, out->ndim);
  int64_t len = mti_remap_map_len(&om), lead = out->ndim - a.ndim, at_start = 0;
  for (int d = 0; d < out->ndim; d++) {
    g.shape[d] = out->shape[d];
    g.strides[d] = d < lead ? 0 : a.strides[d - lead];
    g.start[d] = at_start;
    at_start += out->shape[d];
  }
  size_t bytes = (size_t)(len ? len : 1) * sizeof(int64_t);
  int64_t *host = (int64_t *)malloc(bytes);
  int64_t *maps = (int64_t *)ctx->scratch(ctx, bytes);
  if (!host || !maps) {
    free(host);
    return host ? mt_last_status() : mti_error_oom(fn, bytes);
  }
  mti_remap_maps(op, at, &im, &om, host);
  /* From pageable memory the copy is staged before the call returns. */
  cudaError_t e = cudaMemcpyAsync(maps, host, bytes, cudaMemcpyHostToDevice, ctx->stream);
  free(host);
  if (e != cudaSuccess) return launched(fn);
  uint64_t fill = 0;
  mti_store_double(&fill, out->dtype, at->s0);
  unsigned grid = grid_for(ctx, g.n, THREADS);
  BY_SIZE(out->dtype, {
    E f;
    memcpy(&f, &fill, sizeof f);
    remap_kernel<E><<<grid, THREADS, 0, ctx->stream>>>((const E *)a.data, maps, g, f,
                                                        (E *)out->data);
  });
  return launched(fn);
}

extern "C" mt_status mtw_cuda_triangle(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                       const mti_attrs *at, const mti_view *out) {
  const mti_view &a = in[0];
  int nd = a.ndim;
  int64_t n = mti_shape_numel(nd, a.shape);
  if (n == 0) return MT_OK;
  desc batch = make_desc(a);
  batch.ndim = nd - 2;
  unsigned grid = grid_for(ctx, n, THREADS);
  BY_SIZE(a.dtype, triangle_kernel<E><<<grid, THREADS, 0, ctx->stream>>>(
                       (const E *)a.data, batch, a.shape[nd - 2], a.shape[nd - 1],
                       a.strides[nd - 2], a.strides[nd - 1], at->ints[0], op == MTI_OP_TRIU, n,
                       (E *)out->data));
  return launched(op == MTI_OP_TRIU ? "mt_triu" : "mt_tril");
}
