/*
 * cuda_attention.cuh - the index arithmetic and online-softmax steps of the
 * fused attention kernel (cuda_attention.cu), __host__ __device__ so that
 * tests/cuda/test_cuda_attention_host.cu can run the kernel's tiling on the
 * host against the cpu backend.
 *
 * Layout: a block of ATTN_WARPS warps takes ATTN_ROWS query rows of one
 * batch entry (ATTN_ROWS_PER_WARP per warp) and walks the keys in tiles of
 * ATTN_KEYS = 32 (one key per lane for the scores). Shared memory holds the
 * query rows, the key tile (rows padded by one element, so that lane j
 * reading key j's feature c hits its own bank) and the value tile, all in
 * the compute type, plus each warp's probabilities of one row.
 */
#ifndef MTW_CUDA_ATTENTION_CUH
#define MTW_CUDA_ATTENTION_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "core/shape.h"
}

namespace mtw {

enum {
  ATTN_WARPS = 4,
  ATTN_ROWS_PER_WARP = 4,
  ATTN_ROWS = ATTN_WARPS * ATTN_ROWS_PER_WARP, /* query rows of a block */
  ATTN_KEYS = 32,                              /* keys of a tile: one per lane */
  ATTN_MAX_FEATURES = 256,                     /* E and Ev, at most */
  ATTN_SLOTS = ATTN_MAX_FEATURES / 32          /* accumulator elements per lane */
};

/* Everything the kernel reads, by value. Strides in elements; batch strides
 * are 0 where an operand is broadcast over the output's batch dims. */
struct attn_params {
  int nbatch;
  int64_t batch_shape[MT_MAX_DIMS];
  int64_t q_batch[MT_MAX_DIMS], k_batch[MT_MAX_DIMS], v_batch[MT_MAX_DIMS];
  int64_t m_batch[MT_MAX_DIMS];
  int64_t q_row, q_col, k_row, k_col, v_row, v_col, m_row, m_col;
  int64_t batch, len, keys, e, ev;
  double scale;
  int causal;
  int has_mask;
};

/* Element offset of batch entry b (row-major over the batch dims). */
__host__ __device__ inline int64_t attn_batch_offset(const attn_params &p, int64_t b,
                                                     const int64_t *strides) {
  int64_t off = 0;
  for (int d = p.nbatch - 1; d >= 0; d--) {
    off += b % p.batch_shape[d] * strides[d];
    b /= p.batch_shape[d];
  }
  return off;
}

/* Query blocks per batch entry. */
__host__ __device__ inline int64_t attn_row_blocks(int64_t len) {
  return (len + ATTN_ROWS - 1) / ATTN_ROWS;
}

/* One past the last key a block starting at row i0 sees: with is_causal
 * the keys past its last row i0 + ATTN_ROWS - 1 are skipped, whole tiles. */
__host__ __device__ inline int64_t attn_key_end(const attn_params &p, int64_t i0) {
  return p.causal && i0 + ATTN_ROWS < p.keys ? i0 + ATTN_ROWS : p.keys;
}

/* 1 when query row i sees key j (j < keys; is_causal: j <= i). */
__host__ __device__ inline bool attn_key_visible(const attn_params &p, int64_t i, int64_t j) {
  return j < p.keys && (!p.causal || j <= i);
}

/* A NaN operand wins, as the cpu's max. */
template <class T> __host__ __device__ inline T attn_nanmax(T a, T b) {
  return (a != a || a > b) ? a : b;
}

/* The shift of the exponentials once a tile raised the running max to mx:
 * 0 while every key so far is masked (mx = -inf), so that exp gives 0 for
 * them, not exp(-inf + inf) = NaN. */
template <class T> __host__ __device__ inline T attn_shift(T mx) {
  return mx == -(T)INFINITY ? (T)0 : mx;
}

/* The row's logsumexp from its running max and sum. */
template <class T> __host__ __device__ inline float attn_lse(T m, T l) {
  if (m == -(T)INFINITY) return -INFINITY;
  return (float)((double)m + log((double)l));
}

/* Dynamic shared memory of a block for compute-type size es. */
__host__ __device__ inline size_t attn_smem_bytes(int64_t e, int64_t ev, size_t es) {
  size_t q = (size_t)ATTN_ROWS * (size_t)e, k = (size_t)ATTN_KEYS * (size_t)(e + 1);
  size_t v = (size_t)ATTN_KEYS * (size_t)ev, probs = (size_t)ATTN_WARPS * ATTN_KEYS;
  return es * (q + k + v + probs);
}

} /* namespace mtw */

#endif
