/*
 * dtype.h - element type facts, type promotion and scalar conversions.
 */
#ifndef MTI_DTYPE_H
#define MTI_DTYPE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "modaltensor.h"

/* Marks the bit-level conversions below as callable from CUDA device code
 * too, so that the worker's kernels (remote_worker/cuda) round, and keep
 * NaN payloads, exactly as the cpu does: one definition for both. */
#ifdef __CUDACC__
#define MTI_HOST_DEVICE __host__ __device__
#else
#define MTI_HOST_DEVICE
#endif

/* Number of dtypes: the rows of dtypes.def. */
enum {
  MTI_NUM_DTYPES = 0
#define MT_DTYPE(NAME, name, size) +1
#include "core/dtypes.def"
#undef MT_DTYPE
};

static inline int mti_dtype_valid(int d) { return d >= MT_BOOL && d <= MT_FLOAT64; }
static inline int mti_dtype_is_float(mt_dtype d) { return d >= MT_FLOAT16; }
/* Integer dtypes, bool excluded. */
static inline int mti_dtype_is_int(mt_dtype d) { return d >= MT_UINT8 && d <= MT_INT64; }

/* NumPy/PyTorch promotion of two valid dtypes (the PyTorch lattice:
 * uint8 with int8 gives int16; an integer with a float gives the float;
 * float16 with bfloat16 gives float32). */
mt_dtype mti_promote(mt_dtype a, mt_dtype b);

/* The dtype arithmetic runs in: float16 and bfloat16 compute in float32. */
static inline mt_dtype mti_compute_dtype(mt_dtype d) {
  return (d == MT_FLOAT16 || d == MT_BFLOAT16) ? MT_FLOAT32 : d;
}

/* ---- 16-bit floats: round to nearest even, NaN stays NaN (quiet) with
 * its sign and the top of its payload (f32 -> f16: 0x7e00 | payload >> 13;
 * f32 -> bf16: the top half | 0x40). GPUs' own conversions give one
 * canonical NaN instead, so the cuda kernels call these too. ---- */

MTI_HOST_DEVICE static inline uint32_t mti_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
MTI_HOST_DEVICE static inline float mti_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

MTI_HOST_DEVICE static inline float mti_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return mti_bits_f32(sign | 0x7f800000u | (man << 13)); /* inf/nan */
  if (exp == 0) {                                                          /* zero/subnormal */
    float f = (float)man * 0x1p-24f;
    return sign ? -f : f;
  }
  return mti_bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

MTI_HOST_DEVICE static inline uint16_t mti_f32_to_f16(float f) {
  uint32_t u = mti_f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* nan */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
  if (a < 0x38800000u) {                                   /* below 2^-14: subnormal */
    /* Adding 0.5 makes the FPU round the bits to a 2^-24 quantum (RNE). */
    float r = mti_bits_f32(a) + 0.5f;
    return (uint16_t)(sign | (mti_f32_bits(r) - 0x3f000000u));
  }
  uint32_t odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd; /* rebias exponent (-112 << 23) and round to nearest even */
  return (uint16_t)(sign | (a >> 13));
}

MTI_HOST_DEVICE static inline float mti_bf16_to_f32(uint16_t h) {
  return mti_bits_f32((uint32_t)h << 16);
}

MTI_HOST_DEVICE static inline uint16_t mti_f32_to_bf16(float f) {
  uint32_t u = mti_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet nan */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* ---- float64 <-> float32 as the cpu's C casts give them (x86-64 and
 * AArch64 alike), NaN included: a NaN stays quiet with its sign and the top
 * of its payload; the GPU's own conversion would give a canonical NaN ---- */

MTI_HOST_DEVICE static inline float mti_f64_to_f32(double d) {
  if (d == d) return (float)d;
  uint64_t u;
  memcpy(&u, &d, 8);
  uint32_t sign = (uint32_t)(u >> 32) & 0x80000000u, payload = (uint32_t)(u >> 29) & 0x3fffffu;
  return mti_bits_f32(sign | 0x7fc00000u | payload);
}

MTI_HOST_DEVICE static inline double mti_f32_to_f64(float f) {
  if (f == f) return (double)f;
  uint64_t u = mti_f32_bits(f), bits = (u & 0x80000000u) << 32 | 0x7ff8000000000000u |
                                       (u & 0x3fffffu) << 29;
  double d;
  memcpy(&d, &bits, 8);
  return d;
}

/* ---- one element to/from double: for scalars and slow paths, not kernels ---- */

/* Reads the element at p as a double. */
double mti_load_double(const void *p, mt_dtype d);

/* Stores v at p converted to d with mt_cast's rules (truncation toward
 * zero and saturation for integers, NaN -> 0, non-zero -> true). */
void mti_store_double(void *p, mt_dtype d, double v);

/* v converted to an integer dtype's range with mt_cast's rules. */
int64_t mti_double_to_int(double v, mt_dtype d);

#endif
