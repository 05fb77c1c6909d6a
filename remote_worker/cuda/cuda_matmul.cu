/*
 * cuda_matmul.cu - numpy.matmul for the dtypes cuBLAS has no GEMM for.
 *
 * Semantics are mti_cpu_matmul (src/cpu/matmul.c): out = promote(a, b);
 * both operands are converted to the compute dtype (out's, float32 for
 * float16/bfloat16) before multiplying; a 1-d a is one row and a 1-d b one
 * column; batch dims broadcast (stride 0 where an operand lacks the dim or
 * has size 1). Integers wrap: the cpu multiplies and adds in unsigned
 * types of the dtype's width, and since wrapping arithmetic is exact modulo
 * 2^width, accumulating in uint32 (uint64 for int64) and truncating at the
 * end gives the same bits. bool is the OR of ANDs. k == 0 gives zeros.
 *
 * A plain shared-memory tiled kernel (TILE x TILE outputs per block, k in
 * steps of TILE): operands of any strides and dtypes are read through
 * load_as, one kernel per out dtype. Float dtypes, which the backend sends
 * to cuBLAS, work here too (float32 accumulation, float64 for float64).
 */
#include <cuda/std/type_traits>

#include "cuda_reduce.cuh"

namespace mtw {
namespace {

enum { TILE = 16 };

/* Compute type C and accumulator A of out type Out. */
template <class Out> struct mm_types {
  typedef Out C;
  typedef uint32_t A;
};
template <> struct mm_types<bool8> {
  typedef bool C;
  typedef uint32_t A;
};
template <> struct mm_types<int64_t> {
  typedef int64_t C;
  typedef uint64_t A;
};
template <> struct mm_types<__half> {
  typedef float C;
  typedef float A;
};
template <> struct mm_types<__nv_bfloat16> {
  typedef float C;
  typedef float A;
};
template <> struct mm_types<float> {
  typedef float C;
  typedef float A;
};
template <> struct mm_types<double> {
  typedef double C;
  typedef double A;
};

/* acc plus the product x * y (bool: acc OR (x AND y)). */
template <class A, class C> __device__ __forceinline__ A mm_step(A acc, C x, C y) {
  if constexpr (::cuda::std::is_same<C, bool>::value) return acc | (A)(x && y);
  else return acc + (A)x * (A)y;
}

/* The accumulator as out's value: integers truncate to their width (the
 * cpu's wrap), bool is "any", floats round. */
template <class Out, class A> __device__ __forceinline__ Out mm_result(A acc) {
  if constexpr (is_floating<Out>::value) return convert<Out>(acc);
  else if constexpr (::cuda::std::is_same<Out, bool8>::value) return bool8{(uint8_t)(acc != 0)};
  else return (Out)acc;
}

/* Block (x, y, z) computes out tile (rows y*TILE.., cols x*TILE..) of batch
 * z; grids larger than the launch's loop in y and z. */
template <class Out>
__global__ void __launch_bounds__(TILE * TILE) matmul_kernel(mm_problem p, Out *out) {
  typedef typename mm_types<Out>::C C;
  typedef typename mm_types<Out>::A A;
  __shared__ C as[TILE][TILE + 1], bs[TILE][TILE + 1];
  int tx = threadIdx.x, ty = threadIdx.y;
  int64_t j = (int64_t)blockIdx.x * TILE + tx;
  for (int64_t t = blockIdx.z; t < p.batch; t += gridDim.z) {
    int64_t oa, ob;
    mm_batch_offsets(p, t, &oa, &ob);
    for (int64_t i0 = (int64_t)blockIdx.y * TILE; i0 < p.m; i0 += (int64_t)gridDim.y * TILE) {
      int64_t i = i0 + ty;
      A acc = 0;
      for (int64_t k0 = 0; k0 < p.k; k0 += TILE) {
        int64_t ka = k0 + tx, kb = k0 + ty;
        as[ty][tx] = i < p.m && ka < p.k
                         ? load_as<C>(p.a.data, p.a.dtype, oa + i * p.a.rs + ka * p.a.cs)
                         : C();
        bs[ty][tx] = kb < p.k && j < p.n
                         ? load_as<C>(p.b.data, p.b.dtype, ob + kb * p.b.rs + j * p.b.cs)
                         : C();
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE; kk++) acc = mm_step<A, C>(acc, as[ty][kk], bs[kk][tx]);
        __syncthreads();
      }
      if (i < p.m && j < p.n) out[(t * p.m + i) * p.n + j] = mm_result<Out>(acc);
    }
  }
}

/* A grid dimension of n blocks, at most `most` (the kernel loops over the rest). */
unsigned clamp_grid(int64_t n, int64_t most) {
  return (unsigned)(n < most ? (n < 1 ? 1 : n) : most);
}

} /* namespace */
} /* namespace mtw */

/* One launch: blocks cover n in x, m and the batches (up to 65535 each) in
 * y and z. */
extern "C" mt_status mtw_cuda_matmul_generic(const mtw_cuda_ctx *ctx, const mti_view *a,
                                             const mti_view *b, const mti_view *out) {
  if (mti_shape_numel(out->ndim, out->shape) == 0) return MT_OK;
  mtw::mm_problem p;
  mtw::mm_problem_init(&p, *a, *b, out->ndim, out->shape);
  dim3 grid((unsigned)((p.n + mtw::TILE - 1) / mtw::TILE),
            mtw::clamp_grid((p.m + mtw::TILE - 1) / mtw::TILE, 65535),
            mtw::clamp_grid(p.batch, 65535));
  dim3 block(mtw::TILE, mtw::TILE);
  MTW_DISPATCH(out->dtype, mtw::matmul_kernel<scalar_t>
               <<<grid, block, 0, ctx->stream>>>(p, (scalar_t *)out->data);
               return mtw::launched("mt_matmul"));
  return mti_error(MT_ERR_INTERNAL, "mt_matmul: out dtype %d", (int)out->dtype);
}
