/*
 * cuda_scan_sort.cu - cumsum, cumprod, sort, argsort and topk on the GPU,
 * with src/cpu/scan_sort.c's semantics, through CUB.
 *
 * Scans: the input is loaded along dim (rows_desc) into scratch in the
 * accumulator type (float64 for floats, int64 wrapping for integers and
 * bool) with each element's row as its key; cub::DeviceScan::
 * InclusiveScanByKey runs every row at once, and a last kernel stores the
 * results through out's strides in out's dtype.
 *
 * Sorting: each element becomes its order key (order_key: NaN largest, -0
 * equal to +0, complemented for descending) and its position in the row;
 * cub::DeviceSegmentedSort::StableSortPairs sorts every row (a segment)
 * stably, so equal keys keep their positions' order: PyTorch's stable sort,
 * and topk's lower index first. The first k of each sorted row (all of it
 * for sort) give the indices, and the values are read back from the input
 * at those positions.
 */
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "cuda_reduce_ops.cuh"

namespace mtw {
namespace {

enum { THREADS = 256 };

/* Bytes rounded up to 256, so that regions carved from one scratch stay aligned. */
size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }

/* ---- scans ---- */

template <class A> struct scan_op {
  bool prod;
  __device__ A operator()(A a, A b) const { return prod ? a * b : a + b; }
};
/* Integers wrap: the arithmetic runs in uint64. */
template <> struct scan_op<int64_t> {
  bool prod;
  __device__ int64_t operator()(int64_t a, int64_t b) const {
    return (int64_t)(prod ? (uint64_t)a * (uint64_t)b : (uint64_t)a + (uint64_t)b);
  }
};

struct same_row {
  __device__ bool operator()(int64_t a, int64_t b) const { return a == b; }
};

template <class A>
__global__ void __launch_bounds__(THREADS)
    scan_load_kernel(const void *x, mt_dtype dt, desc d, int64_t n, int64_t len, A *vals,
                     int64_t *rows) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    vals[e] = load_as<A>(x, dt, offset_of(d, e));
    rows[e] = e / len;
  }
}

template <class A>
__global__ void __launch_bounds__(THREADS)
    scan_store_kernel(const A *acc, int64_t n, void *out, mt_dtype odt, desc od) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x)
    store_as(out, odt, offset_of(od, e), acc[e]);
}

template <class A>
mt_status scan(const mtw_cuda_ctx *ctx, const char *fn, const mti_view &in, const mti_view &out,
               uint32_t mask, bool prod) {
  int64_t nrows, len;
  desc xd = rows_desc(in, mask, &nrows, &len), od = rows_desc(out, mask, &nrows, &len);
  int64_t n = nrows * len;
  size_t vb = aligned(sizeof(A) * (size_t)n), kb = aligned(sizeof(int64_t) * (size_t)n), temp = 0;
  scan_op<A> op{prod};
  cub::DeviceScan::InclusiveScanByKey(nullptr, temp, (const int64_t *)nullptr, (const A *)nullptr,
                                      (A *)nullptr, op, n, same_row(), ctx->stream);
  char *scratch = (char *)ctx->scratch(ctx, 2 * vb + kb + aligned(temp));
  if (!scratch) return mt_last_status();
  A *vals = (A *)scratch, *acc = (A *)(scratch + vb);
  int64_t *rows = (int64_t *)(scratch + 2 * vb);
  unsigned grid = grid_for(ctx, n, THREADS);
  scan_load_kernel<A><<<grid, THREADS, 0, ctx->stream>>>(in.data, in.dtype, xd, n, len, vals, rows);
  if (cub::DeviceScan::InclusiveScanByKey(scratch + 2 * vb + kb, temp, rows, vals, acc, op, n,
                                          same_row(), ctx->stream))
    return launched(fn);
  scan_store_kernel<A><<<grid, THREADS, 0, ctx->stream>>>(acc, n, out.data, out.dtype, od);
  return launched(fn);
}

/* ---- sorting ---- */

__global__ void __launch_bounds__(THREADS)
    sort_load_kernel(const void *x, mt_dtype dt, desc d, int64_t n, int64_t len, bool descending,
                     uint64_t *keys, int64_t *pos) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    keys[e] = order_key(x, dt, offset_of(d, e), descending);
    pos[e] = e % len;
  }
}

__global__ void __launch_bounds__(THREADS) offsets_kernel(int64_t nrows, int64_t len, int64_t *off) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r <= nrows;
       r += (int64_t)gridDim.x * blockDim.x)
    off[r] = r * len;
}

/* The first k of each sorted row: indices, and values (E: the element's
 * bits) read from the input at those positions when values is not NULL. */
template <class E>
__global__ void __launch_bounds__(THREADS)
    sort_store_kernel(const int64_t *pos, int64_t nrows, int64_t len, int64_t k, int64_t *indices,
                      desc id, const E *x, desc xd, E *values, desc vd) {
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < nrows * k;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t row = e / k, src = pos[row * len + e % k];
    indices[offset_of(id, e)] = src;
    if (values) values[offset_of(vd, e)] = x[offset_of(xd, row * len + src)];
  }
}

/* Scratch of a sort: keys and positions twice, the offsets, CUB's temporary storage. */
struct sort_space {
  size_t kb, ob, temp;
  size_t total() const { return 4 * kb + ob + aligned(temp); }
};

sort_space sort_plan(int64_t n, int64_t nrows, cudaStream_t stream) {
  sort_space s;
  s.kb = aligned(sizeof(uint64_t) * (size_t)n);
  s.ob = aligned(sizeof(int64_t) * (size_t)(nrows + 1));
  s.temp = 0;
  cub::DeviceSegmentedSort::StableSortPairs(nullptr, s.temp, (const uint64_t *)nullptr,
                                            (uint64_t *)nullptr, (const int64_t *)nullptr,
                                            (int64_t *)nullptr, n, nrows, (const int64_t *)nullptr,
                                            (const int64_t *)nullptr, stream);
  return s;
}

/* Sorts the rows of in along mask; the first k positions of each row go
 * to idx_out and, when val_out is given, the values to it. */
mt_status sort_rows(const mtw_cuda_ctx *ctx, const char *fn, const mti_view &in, uint32_t mask,
                    bool descending, const mti_view &idx_out, const mti_view *val_out) {
  int64_t nrows, len, k;
  desc xd = rows_desc(in, mask, &nrows, &len), id = rows_desc(idx_out, mask, &nrows, &k);
  int64_t n = nrows * len;
  if (nrows * k == 0) return MT_OK;
  sort_space sp = sort_plan(n, nrows, ctx->stream);
  char *scratch = (char *)ctx->scratch(ctx, sp.total());
  if (!scratch) return mt_last_status();
  uint64_t *keys = (uint64_t *)scratch, *keys_out = (uint64_t *)(scratch + sp.kb);
  int64_t *pos = (int64_t *)(scratch + 2 * sp.kb), *pos_out = (int64_t *)(scratch + 3 * sp.kb);
  int64_t *offsets = (int64_t *)(scratch + 4 * sp.kb);
  sort_load_kernel<<<grid_for(ctx, n, THREADS), THREADS, 0, ctx->stream>>>(
      in.data, in.dtype, xd, n, len, descending, keys, pos);
  offsets_kernel<<<grid_for(ctx, nrows + 1, THREADS), THREADS, 0, ctx->stream>>>(nrows, len,
                                                                                 offsets);
  if (cub::DeviceSegmentedSort::StableSortPairs(scratch + 4 * sp.kb + sp.ob, sp.temp, keys,
                                                keys_out, pos, pos_out, n, nrows, offsets,
                                                offsets + 1, ctx->stream))
    return launched(fn);
  desc vd = val_out ? rows_desc(*val_out, mask, &nrows, &k) : id;
  unsigned grid = grid_for(ctx, nrows * k, THREADS);
  BY_SIZE(in.dtype, sort_store_kernel<E><<<grid, THREADS, 0, ctx->stream>>>(
                        pos_out, nrows, len, k, (int64_t *)idx_out.data, id, (const E *)in.data,
                        xd, val_out ? (E *)val_out->data : (E *)nullptr, vd));
  return launched(fn);
}

} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_scan(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                   const mti_attrs *at, const mti_view *out) {
  char fn[64];
  op_fn(op, fn, sizeof fn);
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  uint32_t mask = in[0].ndim ? 1u << at->dim : 0u;
  bool prod = op == MTI_OP_CUMPROD;
  if (out->dtype == MT_INT64) return scan<int64_t>(ctx, fn, in[0], *out, mask, prod);
  return scan<double>(ctx, fn, in[0], *out, mask, prod);
}

extern "C" mt_status mtw_cuda_sort(const mtw_cuda_ctx *ctx, mti_op op, const mti_view *in,
                                   const mti_attrs *at, const mti_view *out) {
  char fn[64];
  op_fn(op, fn, sizeof fn);
  uint32_t mask = in[0].ndim ? 1u << at->dim : 0u;
  bool descending = (at->flags & MTI_FLAG_DESCENDING) != 0;
  if (op == MTI_OP_ARGSORT) return sort_rows(ctx, fn, in[0], mask, descending, out[0], nullptr);
  return sort_rows(ctx, fn, in[0], mask, descending, out[1], &out[0]);
}
