/*
 * cuda_common.cuh - what every kernel file shares: dtype to C++ type
 * mapping, mt_cast's element conversions on the device, strided view
 * descriptors, grid sizing and launch error checks.
 *
 * Element rules match src/cpu (see src/cpu/convert.c): float -> integer
 * truncates toward zero and saturates, NaN gives 0; integer -> integer wraps;
 * anything -> bool is (x != 0); float16 and bfloat16 are storage types that
 * compute in float32 and round to nearest even when stored.
 */
#ifndef MTW_CUDA_COMMON_CUH
#define MTW_CUDA_COMMON_CUH

#include <stdint.h>
#include <stdio.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda_kernels.h"

extern "C" {
#include "core/dtype.h"
#include "core/error.h"
}

namespace mtw {

/* ---- dtypes ---- */

/* Bool storage as a byte, read as (byte != 0) like the cpu does: data from
 * the host may hold other non-zero bytes, which C++ bool must not see (its
 * other values are undefined behaviour). Every kernel reads bool tensors
 * through this type (dtype_traits<MT_BOOL>) and stores 0 or 1. */
struct bool8 {
  uint8_t v;
};

template <mt_dtype D> struct dtype_traits;
#define MTW_DTYPE_TRAITS(D, T, C)                                                           \
  template <> struct dtype_traits<D> {                                                     \
    typedef T type;    /* storage */                                                       \
    typedef C compute; /* arithmetic */                                                    \
  };
MTW_DTYPE_TRAITS(MT_BOOL, bool8, bool)
MTW_DTYPE_TRAITS(MT_UINT8, uint8_t, uint8_t)
MTW_DTYPE_TRAITS(MT_INT8, int8_t, int8_t)
MTW_DTYPE_TRAITS(MT_INT16, int16_t, int16_t)
MTW_DTYPE_TRAITS(MT_INT32, int32_t, int32_t)
MTW_DTYPE_TRAITS(MT_INT64, int64_t, int64_t)
MTW_DTYPE_TRAITS(MT_FLOAT16, __half, float)
MTW_DTYPE_TRAITS(MT_BFLOAT16, __nv_bfloat16, float)
MTW_DTYPE_TRAITS(MT_FLOAT32, float, float)
MTW_DTYPE_TRAITS(MT_FLOAT64, double, double)
#undef MTW_DTYPE_TRAITS

/* Runs the statement list with `scalar_t` bound to dtype d's storage type:
 *   MTW_DISPATCH(view->dtype, return launch<scalar_t>(...));
 * An invalid dtype falls through to the code after the macro. */
#define MTW_DISPATCH_CASE(D, ...)                                                           \
  case D: {                                                                                \
    typedef typename ::mtw::dtype_traits<D>::type scalar_t;                                \
    __VA_ARGS__;                                                                           \
  } break;
#define MTW_DISPATCH(d, ...)                                                                \
  switch (d) {                                                                             \
    MTW_DISPATCH_CASE(MT_BOOL, __VA_ARGS__)                                                \
    MTW_DISPATCH_CASE(MT_UINT8, __VA_ARGS__)                                               \
    MTW_DISPATCH_CASE(MT_INT8, __VA_ARGS__)                                                \
    MTW_DISPATCH_CASE(MT_INT16, __VA_ARGS__)                                               \
    MTW_DISPATCH_CASE(MT_INT32, __VA_ARGS__)                                               \
    MTW_DISPATCH_CASE(MT_INT64, __VA_ARGS__)                                               \
    MTW_DISPATCH_CASE(MT_FLOAT16, __VA_ARGS__)                                             \
    MTW_DISPATCH_CASE(MT_BFLOAT16, __VA_ARGS__)                                            \
    MTW_DISPATCH_CASE(MT_FLOAT32, __VA_ARGS__)                                             \
    MTW_DISPATCH_CASE(MT_FLOAT64, __VA_ARGS__)                                             \
  default: break;                                                                          \
  }

template <class T> struct is_floating { static const bool value = false; };
template <> struct is_floating<__half> { static const bool value = true; };
template <> struct is_floating<__nv_bfloat16> { static const bool value = true; };
template <> struct is_floating<float> { static const bool value = true; };
template <> struct is_floating<double> { static const bool value = true; };

/* ---- element conversions (mt_cast's rules); host and device, so that
 * host tests can check them ---- */

/* The bits of 16-bit floats and back (__half_raw converts both ways on
 * the host and the device). */
__host__ __device__ __forceinline__ uint16_t bits_of(__half x) { return __half_raw(x).x; }
__host__ __device__ __forceinline__ uint16_t bits_of(__nv_bfloat16 x) {
  return __nv_bfloat16_raw(x).x;
}
__host__ __device__ __forceinline__ __half half_of_bits(uint16_t b) {
  __half_raw r;
  r.x = b;
  return __half(r);
}
__host__ __device__ __forceinline__ __nv_bfloat16 bfloat16_of_bits(uint16_t b) {
  __nv_bfloat16_raw r;
  r.x = b;
  return __nv_bfloat16(r);
}

/* float32 to 16-bit floats and back with the cpu's bit rules (core/dtype.h:
 * round to nearest even, NaN keeps its sign and payload), not the CUDA
 * intrinsics, whose NaN is canonical. */
__host__ __device__ __forceinline__ __half to_half(float f) {
  return half_of_bits(mti_f32_to_f16(f));
}
__host__ __device__ __forceinline__ __nv_bfloat16 to_bfloat16(float f) {
  return bfloat16_of_bits(mti_f32_to_bf16(f));
}

/* Widening to a type that holds every value exactly: half/bfloat16 ->
 * float, bool bytes -> bool. */
__host__ __device__ __forceinline__ float widen(__half x) { return mti_f16_to_f32(bits_of(x)); }
__host__ __device__ __forceinline__ float widen(__nv_bfloat16 x) {
  return mti_bf16_to_f32(bits_of(x));
}
__host__ __device__ __forceinline__ bool widen(bool8 x) { return x.v != 0; }
template <class T> __host__ __device__ __forceinline__ T widen(T x) { return x; }

/* float64 <-> float32 with the cpu's NaN bits (core/dtype.h); any other
 * pair is a plain C++ conversion. */
template <class To, class From> __host__ __device__ __forceinline__ To float_as(From x) {
  return (To)x;
}
template <> __host__ __device__ __forceinline__ float float_as<float, double>(double x) {
  return mti_f64_to_f32(x);
}
template <> __host__ __device__ __forceinline__ double float_as<double, float>(float x) {
  return mti_f32_to_f64(x);
}

/* Range of integer type I as doubles: [lo, hi]; hi_excl = hi + 1 (exact). */
template <class I> struct int_range;
#define MTW_INT_RANGE(I, LO, HI, HI_EXCL)                                                   \
  template <> struct int_range<I> {                                                        \
    __host__ __device__ static constexpr double lo() { return LO; }                        \
    __host__ __device__ static constexpr double hi_excl() { return HI_EXCL; }              \
    __host__ __device__ static constexpr I max() { return HI; }                            \
  };
MTW_INT_RANGE(uint8_t, 0.0, (uint8_t)255, 256.0)
MTW_INT_RANGE(int8_t, -128.0, (int8_t)127, 128.0)
MTW_INT_RANGE(int16_t, -32768.0, (int16_t)32767, 32768.0)
MTW_INT_RANGE(int32_t, -2147483648.0, (int32_t)2147483647, 2147483648.0)
MTW_INT_RANGE(int64_t, -9223372036854775808.0, (int64_t)INT64_MAX, 9223372036854775808.0)
#undef MTW_INT_RANGE

/* A floating value to integer type I: truncate toward zero, saturate, NaN -> 0. */
template <class I> __host__ __device__ __forceinline__ I float_to_int(double d) {
  if (d != d) return (I)0;
  if (d >= int_range<I>::hi_excl()) return int_range<I>::max();
  if (d <= int_range<I>::lo()) return (I)int_range<I>::lo();
  return (I)d; /* in range: C++ truncates toward zero */
}

/* convert<To>(x): x of any storage or compute type, to storage type To. */
template <class To, class From> struct converter {
  __host__ __device__ __forceinline__ static To run(From x) {
    auto w = widen(x);
    if (is_floating<From>::value) return float_to_int<To>((double)w);
    return (To)w; /* integer -> integer wraps */
  }
};
template <class From> struct converter<bool, From> {
  __host__ __device__ __forceinline__ static bool run(From x) { return widen(x) != 0; }
};
template <class From> struct converter<bool8, From> {
  __host__ __device__ __forceinline__ static bool8 run(From x) {
    return bool8{(uint8_t)(widen(x) != 0)};
  }
};
template <class From> struct converter<float, From> {
  __host__ __device__ __forceinline__ static float run(From x) {
    return float_as<float>(widen(x));
  }
};
template <class From> struct converter<double, From> {
  __host__ __device__ __forceinline__ static double run(From x) {
    return float_as<double>(widen(x));
  }
};
/* 16-bit floats go through float32 (double -> float -> half, as the cpu). */
template <class From> struct converter<__half, From> {
  __host__ __device__ __forceinline__ static __half run(From x) {
    return to_half(converter<float, From>::run(x));
  }
};
template <class From> struct converter<__nv_bfloat16, From> {
  __host__ __device__ __forceinline__ static __nv_bfloat16 run(From x) {
    return to_bfloat16(converter<float, From>::run(x));
  }
};
template <> struct converter<__half, __half> {
  __host__ __device__ __forceinline__ static __half run(__half x) { return x; }
};
template <> struct converter<__nv_bfloat16, __nv_bfloat16> {
  __host__ __device__ __forceinline__ static __nv_bfloat16 run(__nv_bfloat16 x) { return x; }
};

template <class To, class From> __host__ __device__ __forceinline__ To convert(From x) {
  return converter<To, From>::run(x);
}

/* Runs STMT with E bound to the unsigned type of dtype d's size: kernels
 * that only move elements need one instantiation per size, not per dtype. */
#define BY_SIZE(d, ...)                                        \
  switch (mt_dtype_size(d)) {                                  \
  case 1: { typedef uint8_t E; __VA_ARGS__; } break;           \
  case 2: { typedef uint16_t E; __VA_ARGS__; } break;          \
  case 4: { typedef uint32_t E; __VA_ARGS__; } break;          \
  default: { typedef uint64_t E; __VA_ARGS__; } break;         \
  }

/* ---- rounding as the cpu ---- */

/* a * b and a + b rounded each on its own, never fused into one multiply-
 * add, where a result must round as the cpu's ISO C build does (nvcc fuses
 * a * b + c by default). On the host (the host tests) the plain operators:
 * ISO C++ does not contract them either. */
__host__ __device__ __forceinline__ float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ double mul_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ __forceinline__ double add_rn(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

/* ---- strided views ---- */

/* A view's geometry, passed to kernels by value. Strides in elements. */
struct desc {
  int ndim;
  int64_t shape[MT_MAX_DIMS];
  int64_t strides[MT_MAX_DIMS];
};

inline desc make_desc(const mti_view &v) {
  desc d;
  d.ndim = v.ndim;
  for (int i = 0; i < MT_MAX_DIMS; i++) {
    d.shape[i] = i < v.ndim ? v.shape[i] : 1;
    d.strides[i] = i < v.ndim ? v.strides[i] : 0;
  }
  return d;
}

/* Element offset of the i-th element in row-major order of d's shape. */
__device__ __forceinline__ int64_t offset_of(const desc &d, int64_t i) {
  int64_t off = 0;
  for (int k = d.ndim - 1; k >= 0; k--) {
    int64_t s = d.shape[k];
    off += (i % s) * d.strides[k];
    i /= s;
  }
  return off;
}

/* ---- launches ---- */

/* Blocks for a grid-stride loop over n items: enough to fill every SM a few
 * times over, no more (the loop covers the rest). */
inline unsigned grid_for(const mtw_cuda_ctx *ctx, int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = (int64_t)ctx->multiprocessors * (2048 / threads) * 4;
  if (blocks > cap) blocks = cap;
  return blocks < 1 ? 1u : (unsigned)blocks;
}

/* The status after enqueuing kernels for fn ("mt_add"): a launch error
 * becomes the session's error naming fn. */
inline mt_status launched(const char *fn) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return MT_OK;
  return mti_error(e == cudaErrorMemoryAllocation ? MT_ERR_OUT_OF_MEMORY : MT_ERR_INTERNAL,
                   "%s: cuda: %s (%s)", fn, cudaGetErrorName(e), cudaGetErrorString(e));
}

/* "mt_<name>" of op, for messages. */
inline const char *op_fn(mti_op op, char *buf, size_t len) {
  const mti_op_info *info = mti_op_get((int)op);
  snprintf(buf, len, "mt_%s", info ? info->name : "?");
  return buf;
}

} /* namespace mtw */

#endif
