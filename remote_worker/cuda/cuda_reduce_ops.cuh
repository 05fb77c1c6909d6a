/*
 * cuda_reduce_ops.cuh - host and device logic of the reductions, scans and
 * sorting kernels of 0.2 (cuda_reduce_ops.cu, cuda_scan_sort.cu) that the
 * host tests check without a GPU: the row geometry and the sort keys.
 */
#ifndef MTW_CUDA_REDUCE_OPS_CUH
#define MTW_CUDA_REDUCE_OPS_CUH

#include "cuda_reduce.cuh"

namespace mtw {

/* v as rows along the dims of mask (moved last, in order; the other dims
 * first, in order): a descriptor whose row-major element e is element
 * (e / len, e % len) of the rows, and their count and length. */
inline desc rows_desc(const mti_view &v, uint32_t mask, int64_t *nrows, int64_t *len) {
  mti_view p = v;
  int at = 0;
  *nrows = *len = 1;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < v.ndim; d++) {
      if ((int)(mask >> d & 1u) != pass) continue;
      p.shape[at] = v.shape[d];
      p.strides[at++] = v.strides[d];
      *(pass ? len : nrows) *= v.shape[d];
    }
  return make_desc(p);
}

/* An IEEE bit pattern of `bits` bits as an order-preserving key: NaN (any
 * sign or payload) is the largest, -0 equals +0 (as src/cpu/scan_sort.c). */
__host__ __device__ __forceinline__ uint64_t float_order_key(uint64_t u, int bits, bool is_nan) {
  uint64_t sign = (uint64_t)1 << (bits - 1), all = sign | (sign - 1);
  if (is_nan) return all;
  if ((u & (sign - 1)) == 0) return sign;
  return u & sign ? ~u & all : u | sign;
}

/* The sort key of element off of p (dtype d): unsigned order is the value
 * order of PyTorch's sort (NaN last); complemented for descending. */
__host__ __device__ __forceinline__ uint64_t order_key(const void *p, mt_dtype d, int64_t off,
                                                      bool descending) {
  uint64_t k = 0;
  switch (d) {
  case MT_BOOL:
  case MT_UINT8: k = ((const uint8_t *)p)[off]; break;
  case MT_INT8: k = (uint8_t)(((const uint8_t *)p)[off] ^ 0x80u); break;
  case MT_INT16: k = (uint16_t)(((const uint16_t *)p)[off] ^ 0x8000u); break;
  case MT_INT32: k = ((const uint32_t *)p)[off] ^ 0x80000000u; break;
  case MT_INT64: k = ((const uint64_t *)p)[off] ^ ((uint64_t)1 << 63); break;
  case MT_FLOAT16: {
    uint16_t h = ((const uint16_t *)p)[off];
    k = float_order_key(h, 16, (h & 0x7fffu) > 0x7c00u);
    break;
  }
  case MT_BFLOAT16: {
    uint16_t h = ((const uint16_t *)p)[off];
    k = float_order_key(h, 16, (h & 0x7fffu) > 0x7f80u);
    break;
  }
  case MT_FLOAT32: {
    uint32_t u = ((const uint32_t *)p)[off];
    k = float_order_key(u, 32, (u & 0x7fffffffu) > 0x7f800000u);
    break;
  }
  case MT_FLOAT64: {
    uint64_t u = ((const uint64_t *)p)[off];
    k = float_order_key(u, 64, (u & ~((uint64_t)1 << 63)) > 0x7ff0000000000000ull);
    break;
  }
  }
  return descending ? ~k : k;
}

} /* namespace mtw */

#endif
