/*
 * cuda_attention.cu - scaled dot-product attention as one fused kernel
 * (flash-attention's order of work; tiling in cuda_attention.cuh).
 *
 * A block takes ATTN_ROWS query rows of one batch entry and stages them in
 * shared memory; then for each tile of 32 keys it stages the keys and
 * values, each lane computes the score of its key for a row, the warp
 * folds the tile into the row's running max m and sum l (shuffles), and
 * the accumulator (ATTN_SLOTS registers per lane and row, feature lane +
 * 32 * t) is rescaled by exp(m_old - m_new) and gets p @ v. No L x S
 * matrix exists anywhere; with is_causal the tiles past the block's last
 * row are not visited. float16/bfloat16/float32 compute in float32,
 * float64 in double. E and Ev above ATTN_MAX_FEATURES (256) are refused,
 * and so is shared memory beyond the device's opt-in limit (float64 with
 * E and Ev near 256 on a GPU with less than 164 KiB per block).
 */
#include <string.h>

#include "cuda_attention.cuh"
#include "cuda_common.cuh"

namespace mtw {
namespace {

const char *const FN = "mt_scaled_dot_product_attention";

__device__ __forceinline__ float attn_exp(float x) { return expf(x); }
__device__ __forceinline__ double attn_exp(double x) { return exp(x); }

template <class A> __device__ __forceinline__ A warp_max(A x) {
  for (int o = 16; o > 0; o >>= 1) x = attn_nanmax(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

template <class A> __device__ __forceinline__ A warp_sum(A x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

/* The mask element at off as an additive value (bool: keep 0, else -inf). */
template <class A> __device__ __forceinline__ A mask_value(const void *mask, int dtype,
                                                           int64_t off) {
  switch (dtype) {
  case MT_BOOL: return ((const uint8_t *)mask)[off] ? (A)0 : -(A)INFINITY;
  case MT_FLOAT16: return (A)widen(((const __half *)mask)[off]);
  case MT_BFLOAT16: return (A)widen(((const __nv_bfloat16 *)mask)[off]);
  case MT_FLOAT32: return (A)((const float *)mask)[off];
  default: return (A)((const double *)mask)[off];
  }
}

/* T: storage type of q, k, v and out; A: compute type. */
template <class T, class A>
__global__ void __launch_bounds__(ATTN_WARPS * 32)
    attention_kernel(attn_params p, const T *__restrict__ q, const T *__restrict__ k,
                     const T *__restrict__ v, const void *__restrict__ mask, int mask_dtype,
                     T *__restrict__ out, float *__restrict__ lse) {
  extern __shared__ double attn_smem[]; /* double: aligned for either compute type */
  A *qs = (A *)attn_smem;                        /* [ATTN_ROWS][e]     */
  A *ks = qs + (size_t)ATTN_ROWS * p.e;          /* [ATTN_KEYS][e + 1] */
  A *vs = ks + (size_t)ATTN_KEYS * (p.e + 1);    /* [ATTN_KEYS][ev]    */
  A *ps = vs + (size_t)ATTN_KEYS * p.ev;         /* [ATTN_WARPS][ATTN_KEYS] */
  const int64_t nblocks = attn_row_blocks(p.len);
  const int64_t b = (int64_t)blockIdx.x / nblocks, i0 = (int64_t)blockIdx.x % nblocks * ATTN_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T *qb = q + attn_batch_offset(p, b, p.q_batch);
  const T *kb = k + attn_batch_offset(p, b, p.k_batch);
  const T *vb = v + attn_batch_offset(p, b, p.v_batch);
  const int64_t mb = p.has_mask ? attn_batch_offset(p, b, p.m_batch) : 0;
  const A scale = (A)p.scale;

  for (int64_t x = threadIdx.x; x < (int64_t)ATTN_ROWS * p.e; x += blockDim.x) {
    int64_t r = x / p.e, c = x % p.e, row = i0 + r;
    qs[x] = row < p.len ? convert<A>(qb[row * p.q_row + c * p.q_col]) : (A)0;
  }
  A m[ATTN_ROWS_PER_WARP], l[ATTN_ROWS_PER_WARP], acc[ATTN_ROWS_PER_WARP][ATTN_SLOTS];
#pragma unroll
  for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
    m[rr] = -(A)INFINITY;
    l[rr] = 0;
#pragma unroll
    for (int t = 0; t < ATTN_SLOTS; t++) acc[rr][t] = 0;
  }

  const int64_t end = attn_key_end(p, i0);
  for (int64_t j0 = 0; j0 < end; j0 += ATTN_KEYS) {
    __syncthreads(); /* the previous tile is consumed (and the queries are staged) */
    for (int64_t x = threadIdx.x; x < (int64_t)ATTN_KEYS * p.e; x += blockDim.x) {
      int64_t j = x / p.e, c = x % p.e, key = j0 + j;
      ks[j * (p.e + 1) + c] = key < p.keys ? convert<A>(kb[key * p.k_row + c * p.k_col]) : (A)0;
    }
    for (int64_t x = threadIdx.x; x < (int64_t)ATTN_KEYS * p.ev; x += blockDim.x) {
      int64_t j = x / p.ev, c = x % p.ev, key = j0 + j;
      vs[x] = key < p.keys ? convert<A>(vb[key * p.v_row + c * p.v_col]) : (A)0;
    }
    __syncthreads();
    const int64_t key = j0 + lane;
    const int nk = end - j0 < ATTN_KEYS ? (int)(end - j0) : ATTN_KEYS;
#pragma unroll
    for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
      const int r = warp * ATTN_ROWS_PER_WARP + rr;
      const int64_t row = i0 + r;
      if (row >= p.len) continue; /* the same for the whole warp */
      A s = 0;
      for (int64_t c = 0; c < p.e; c++) s += qs[r * p.e + c] * ks[lane * (p.e + 1) + c];
      s *= scale;
      if (p.has_mask && key < p.keys) s += mask_value<A>(mask, mask_dtype, mb + row * p.m_row + key * p.m_col);
      if (!attn_key_visible(p, row, key)) s = -(A)INFINITY;
      const A mx = attn_nanmax(m[rr], warp_max(s));
      const A shift = attn_shift(mx);
      const A alpha = attn_exp(m[rr] - shift), pj = attn_exp(s - shift);
      l[rr] = l[rr] * alpha + warp_sum(pj);
      m[rr] = mx;
      ps[warp * ATTN_KEYS + lane] = pj;
      __syncwarp();
#pragma unroll
      for (int t = 0; t < ATTN_SLOTS; t++) {
        const int64_t c = lane + 32 * t;
        if (c < p.ev) {
          A a = acc[rr][t] * alpha;
          for (int j = 0; j < nk; j++) a += ps[warp * ATTN_KEYS + j] * vs[j * p.ev + c];
          acc[rr][t] = a;
        }
      }
      __syncwarp(); /* ps is read by all lanes before the next row writes it */
    }
  }

#pragma unroll
  for (int rr = 0; rr < ATTN_ROWS_PER_WARP; rr++) {
    const int64_t row = i0 + warp * ATTN_ROWS_PER_WARP + rr;
    if (row >= p.len) continue;
    const int64_t at = b * p.len + row;
    /* S = 0 gives zeros; a row of masked keys has l = 0: 0 / 0 = NaN, as torch */
    const A inv = p.keys ? (A)1 / l[rr] : (A)0;
#pragma unroll
    for (int t = 0; t < ATTN_SLOTS; t++) {
      const int64_t c = lane + 32 * t;
      if (c < p.ev) out[at * p.ev + c] = convert<T>(p.keys ? acc[rr][t] * inv : (A)0);
    }
    if (lane == 0) lse[at] = attn_lse(m[rr], l[rr]);
  }
}

/* Strides of v broadcast to [batch dims of the output, rows, cols], into
 * p's fields (q, k, v: their own rows and cols; the mask: L and S). */
void operand_strides(const attn_params &p, const mti_view &v, int64_t rows, int64_t cols,
                     int64_t *batch, int64_t *row, int64_t *col) {
  int64_t shape[MT_MAX_DIMS];
  for (int d = 0; d < p.nbatch; d++) shape[d] = p.batch_shape[d];
  shape[p.nbatch] = rows;
  shape[p.nbatch + 1] = cols;
  mti_view wide = mti_view_broadcast_to(&v, p.nbatch + 2, shape);
  for (int d = 0; d < p.nbatch; d++) batch[d] = wide.strides[d];
  *row = wide.strides[p.nbatch];
  *col = wide.strides[p.nbatch + 1];
}

/* Allows the kernel smem bytes of dynamic shared memory (past the default
 * 48 KiB where the device allows it). */
template <class T, class A> mt_status allow_smem(const mtw_cuda_ctx *ctx, size_t smem) {
  if (smem <= 48 * 1024) return MT_OK;
  int optin = 0;
  cudaError_t e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin,
                                         ctx->device);
  if (e != cudaSuccess) return launched(FN);
  if ((size_t)optin < smem)
    return mti_error(MT_ERR_UNSUPPORTED, "%s: E and Ev need %zu bytes of shared memory per "
                     "block, the device has %d", FN, smem, optin);
  e = cudaFuncSetAttribute(attention_kernel<T, A>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                           (int)smem);
  return e == cudaSuccess ? MT_OK : launched(FN);
}

template <class T, class A>
mt_status launch(const mtw_cuda_ctx *ctx, const attn_params &p, const mti_view *in,
                 const mti_view *out) {
  size_t smem = attn_smem_bytes(p.e, p.ev, sizeof(A));
  mt_status s = allow_smem<T, A>(ctx, smem);
  if (s) return s;
  int64_t blocks = p.batch * attn_row_blocks(p.len);
  attention_kernel<T, A><<<(unsigned)blocks, ATTN_WARPS * 32, smem, ctx->stream>>>(
      p, (const T *)in[0].data, (const T *)in[1].data, (const T *)in[2].data,
      p.has_mask ? in[3].data : NULL, p.has_mask ? (int)in[3].dtype : 0, (T *)out[0].data,
      (float *)out[1].data);
  return launched(FN);
}

} /* namespace */
} /* namespace mtw */

using namespace mtw;

extern "C" mt_status mtw_cuda_attention(const mtw_cuda_ctx *ctx, const mti_view *in,
                                        const mti_attrs *at, const mti_view *out) {
  attn_params p;
  memset(&p, 0, sizeof p);
  const mti_view &o = out[0];
  p.nbatch = o.ndim - 2;
  p.batch = 1;
  for (int d = 0; d < p.nbatch; d++) p.batch *= p.batch_shape[d] = o.shape[d];
  p.len = o.shape[o.ndim - 2];
  p.ev = o.shape[o.ndim - 1];
  p.keys = in[1].shape[in[1].ndim - 2];
  p.e = in[0].shape[in[0].ndim - 1];
  p.scale = isnan(at->s0) ? 1.0 / sqrt((double)(p.e ? p.e : 1)) : at->s0;
  p.causal = (at->flags & MTI_FLAG_CAUSAL) != 0;
  p.has_mask = (at->flags & MTI_FLAG_PRESENT(3)) != 0;
  if (p.batch == 0 || p.len == 0) return MT_OK;
  if (p.e > ATTN_MAX_FEATURES || p.ev > ATTN_MAX_FEATURES)
    return mti_error(MT_ERR_UNSUPPORTED, "%s: E = %lld, Ev = %lld: the cuda kernel takes at most "
                     "%d features", FN, (long long)p.e, (long long)p.ev, ATTN_MAX_FEATURES);
  if (p.batch > INT32_MAX / attn_row_blocks(p.len))
    return mti_error(MT_ERR_UNSUPPORTED, "%s: %lld batch entries of %lld rows are more blocks "
                     "than one grid holds", FN, (long long)p.batch, (long long)p.len);
  operand_strides(p, in[0], p.len, p.e, p.q_batch, &p.q_row, &p.q_col);
  operand_strides(p, in[1], p.keys, p.e, p.k_batch, &p.k_row, &p.k_col);
  operand_strides(p, in[2], p.keys, p.ev, p.v_batch, &p.v_row, &p.v_col);
  if (p.has_mask) operand_strides(p, in[3], p.len, p.keys, p.m_batch, &p.m_row, &p.m_col);
  switch (o.dtype) {
  case MT_FLOAT16: return launch<__half, float>(ctx, p, in, out);
  case MT_BFLOAT16: return launch<__nv_bfloat16, float>(ctx, p, in, out);
  case MT_FLOAT32: return launch<float, float>(ctx, p, in, out);
  case MT_FLOAT64: return launch<double, double>(ctx, p, in, out);
  default: break;
  }
  return mti_error(MT_ERR_INTERNAL, "%s: dtype %s reached the cuda kernel", FN,
                   mt_dtype_name(o.dtype));
}
