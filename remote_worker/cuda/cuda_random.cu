/*
 * cuda_random.cu - mt_rand and mt_randn on the GPU: the Philox stream of
 * core/philox.h, laid out as documented there, with the very functions the
 * cpu (src/cpu/random.c) uses.
 *
 * Each thread computes whole Philox blocks from their own counters (block b
 * makes elements E*b .. E*b+E-1 of the flat output), so there is no state
 * and no dependence on the launch shape: element i depends only on (seed,
 * i, dtype). A block that runs past the end drops its extra values, as on
 * the cpu.
 *
 * mt_rand is bit-identical to the cpu: the uniform mappings are exact.
 * mt_randn evaluates philox.h's Box-Muller (its log and sincos polynomials,
 * one correctly rounded square root); it matches the cpu bit for bit
 * because this file is compiled with --fmad=false (remote_worker's
 * CMakeLists.txt), as philox.h prescribes: every product and sum is then
 * rounded on its own, as in the cpu's ISO C build. Fused multiply-adds
 * would round the polynomials less often and move results by a few ulp.
 */
#include "cuda_common.cuh"

#include "core/philox.h"

namespace mtw {
namespace rnd {

enum { THREADS = 256 };

/* The E values block b makes for storage type S: uniform (NORMAL false) or
 * normal, in the layout of philox.h. */
template <class S, bool NORMAL> struct block_values;

template <bool NORMAL> struct block_values<float, NORMAL> {
  static const int E = 4;
  __host__ __device__ static void run(mti_philox_words w, float *v) {
    if constexpr (NORMAL) {
      mti_philox_box_muller_f32(w.w[0], w.w[1], &v[0], &v[1]);
      mti_philox_box_muller_f32(w.w[2], w.w[3], &v[2], &v[3]);
    } else {
      for (int j = 0; j < 4; j++) v[j] = mti_philox_uniform_f32(w.w[j]);
    }
  }
};

/* The float16/bfloat16 uniforms are exact in those types (no rounding);
 * normals are the float32 ones rounded to nearest even (the cpu's rule,
 * to_half / to_bfloat16). */
template <bool NORMAL> struct block_values<__half, NORMAL> {
  static const int E = 4;
  __host__ __device__ static void run(mti_philox_words w, __half *v) {
    float f[4];
    if constexpr (NORMAL) {
      block_values<float, true>::run(w, f);
    } else {
      for (int j = 0; j < 4; j++) f[j] = mti_philox_uniform_f16(w.w[j]);
    }
    for (int j = 0; j < 4; j++) v[j] = to_half(f[j]);
  }
};

template <bool NORMAL> struct block_values<__nv_bfloat16, NORMAL> {
  static const int E = 4;
  __host__ __device__ static void run(mti_philox_words w, __nv_bfloat16 *v) {
    float f[4];
    if constexpr (NORMAL) {
      block_values<float, true>::run(w, f);
    } else {
      for (int j = 0; j < 4; j++) f[j] = mti_philox_uniform_bf16(w.w[j]);
    }
    for (int j = 0; j < 4; j++) v[j] = to_bfloat16(f[j]);
  }
};

template <bool NORMAL> struct block_values<double, NORMAL> {
  static const int E = 2;
  __host__ __device__ static void run(mti_philox_words w, double *v) {
    if constexpr (NORMAL) {
      mti_philox_box_muller_f64(w.w[0], w.w[1], w.w[2], w.w[3], &v[0], &v[1]);
    } else {
      v[0] = mti_philox_uniform_f64(w.w[0], w.w[1]);
      v[1] = mti_philox_uniform_f64(w.w[2], w.w[3]);
    }
  }
};

/* E values of S stored at once (8 or 16 bytes) where the output allows. */
template <class S, int E> struct alignas(sizeof(S) * E) block_pack {
  S v[E];
};

/* Block b of the stream into the n elements at out; `vector` says out is
 * aligned for whole-block stores. Host and device, for the host test. */
template <class S, bool NORMAL>
__host__ __device__ void random_block(S *out, int64_t n, uint64_t seed, uint64_t b, bool vector) {
  typedef block_values<S, NORMAL> values;
  const int E = values::E;
  const uint32_t stream = NORMAL ? MTI_PHILOX_STREAM_NORMAL : MTI_PHILOX_STREAM_UNIFORM;
  block_pack<S, E> p;
  values::run(mti_philox_block(seed, stream, b), p.v);
  int64_t first = (int64_t)b * E;
  if (vector && first + E <= n) {
    reinterpret_cast<block_pack<S, E> *>(out)[b] = p;
  } else {
    for (int j = 0; j < E && first + j < n; j++) out[first + j] = p.v[j];
  }
}

/* Blocks [0, ceil(n / E)) of the stream, in a grid-stride loop. */
template <class S, bool NORMAL>
__global__ void __launch_bounds__(THREADS) random_kernel(S *out, int64_t n, uint64_t seed,
                                                         bool vector) {
  const int E = block_values<S, NORMAL>::E;
  const uint64_t blocks = (uint64_t)(n + E - 1) / E;
  const uint64_t grid = (uint64_t)gridDim.x * blockDim.x;
  for (uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; b < blocks; b += grid)
    random_block<S, NORMAL>(out, n, seed, b, vector);
}

/* Enqueues the n elements of out (storage S) of rand or randn (normal). */
template <class S>
void launch(const mtw_cuda_ctx *ctx, bool normal, const mti_view &out, int64_t n, uint64_t seed) {
  const int E = block_values<S, false>::E;
  int64_t blocks = (n + E - 1) / E;
  bool vector = (uintptr_t)out.data % (sizeof(S) * E) == 0;
  unsigned grid = grid_for(ctx, blocks, THREADS);
  S *data = static_cast<S *>(out.data);
  if (normal)
    random_kernel<S, true><<<grid, THREADS, 0, ctx->stream>>>(data, n, seed, vector);
  else
    random_kernel<S, false><<<grid, THREADS, 0, ctx->stream>>>(data, n, seed, vector);
}

} /* namespace rnd */
} /* namespace mtw */

/* RAND, RANDN into the contiguous floating tensor out. */
extern "C" mt_status mtw_cuda_random(const mtw_cuda_ctx *ctx, mti_op op, const mti_attrs *at,
                                     const mti_view *out) {
  char fn[48];
  mtw::op_fn(op, fn, sizeof fn);
  int64_t n = mti_shape_numel(out->ndim, out->shape);
  if (n == 0) return MT_OK;
  bool normal = op == MTI_OP_RANDN;
  switch (out->dtype) {
  case MT_FLOAT16: mtw::rnd::launch<__half>(ctx, normal, *out, n, at->seed); break;
  case MT_BFLOAT16: mtw::rnd::launch<__nv_bfloat16>(ctx, normal, *out, n, at->seed); break;
  case MT_FLOAT32: mtw::rnd::launch<float>(ctx, normal, *out, n, at->seed); break;
  case MT_FLOAT64: mtw::rnd::launch<double>(ctx, normal, *out, n, at->seed); break;
  default:
    return mti_error(MT_ERR_INTERNAL, "%s: cuda: no kernel for %s", fn,
                     mt_dtype_name(out->dtype));
  }
  return mtw::launched(fn);
}
