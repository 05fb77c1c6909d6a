/*
 * gpu_nan_bits.cu - the bits every floating conversion of the cuda kernels
 * gives on the GPU for NaNs (and a few ordinary values), beside the cpu's
 * (core/dtype.h) and CUDA's own intrinsics: the first GPU run shows at a
 * glance whether the device rounds and keeps NaN payloads as the cpu does.
 * Prints a table; exits 1 when a conversion of ours differs from the cpu,
 * 77 when no GPU is usable (CTest: skipped).
 */
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_common.cuh"

using namespace mtw;

enum { N_CASES = 8, N_CONV = 6 };
static const char *const CONVERSIONS[N_CONV] = {"f32->f16", "f32->bf16", "f16->f32",
                                                "bf16->f32", "f64->f32", "f32->f64"};

/* One input of each width; every conversion reads the one it needs. */
struct nan_case {
  uint32_t f32;
  uint16_t f16, bf16;
  uint64_t f64;
};

/* The cases as one kernel argument (the host's table is not device data). */
struct case_table {
  nan_case c[N_CASES];
};

static const case_table TABLE = {{
    {0x7fc00000u, 0x7e00u, 0x7fc0u, 0x7ff8000000000000ull},
    {0xffc00000u, 0xfe00u, 0xffc0u, 0xfff8000000000000ull},
    {0x7f800001u, 0x7c01u, 0x7f81u, 0x7ff0000000000001ull},
    {0x7fa5a5a5u, 0x7d55u, 0x7faau, 0x7ffa5a5a5a5a5a5aull},
    {0xffffffffu, 0xffffu, 0xffffu, 0xffffffffffffffffull},
    {0x3f800001u, 0x3c01u, 0x3f81u, 0x3ff0000000000001ull},
    {0x477ff000u, 0x7bffu, 0x7f7fu, 0x47efffffe0000000ull},
    {0x33000001u, 0x0001u, 0x0001u, 0x3e60000000000001ull},
}};
static const nan_case *const CASES = TABLE.c;

__host__ __device__ uint64_t f64_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}

/* Result bits of conversion k of case c: ours (convert<>, what the
 * kernels use) when ours, else the CUDA intrinsics and casts. */
__device__ uint64_t convert_bits(const nan_case &c, int k, bool ours) {
  float f = mti_bits_f32(c.f32);
  double d;
  memcpy(&d, &c.f64, 8);
  __half h = half_of_bits(c.f16);
  __nv_bfloat16 b = bfloat16_of_bits(c.bf16);
  switch (k) {
  case 0: return ours ? bits_of(convert<__half>(f)) : bits_of(__float2half_rn(f));
  case 1: return ours ? bits_of(convert<__nv_bfloat16>(f)) : bits_of(__float2bfloat16_rn(f));
  case 2: return mti_f32_bits(ours ? convert<float>(h) : __half2float(h));
  case 3: return mti_f32_bits(ours ? convert<float>(b) : __bfloat162float(b));
  case 4: return mti_f32_bits(ours ? convert<float>(d) : (float)d);
  default: return f64_bits(ours ? convert<double>(f) : (double)f);
  }
}

/* Thread (c, k) converts case c by conversion k, ours and CUDA's. */
__global__ void convert_kernel(case_table t, uint64_t *out) {
  int c = threadIdx.x / N_CONV, k = threadIdx.x % N_CONV;
  if (c >= N_CASES) return;
  out[2 * threadIdx.x] = convert_bits(t.c[c], k, true);
  out[2 * threadIdx.x + 1] = convert_bits(t.c[c], k, false);
}

/* The cpu's result bits (core/dtype.h; C casts for float64 <-> float32). */
static uint64_t cpu_bits(const nan_case &c, int k) {
  float f = mti_bits_f32(c.f32);
  double d;
  memcpy(&d, &c.f64, 8);
  switch (k) {
  case 0: return mti_f32_to_f16(f);
  case 1: return mti_f32_to_bf16(f);
  case 2: return mti_f32_bits(mti_f16_to_f32(c.f16));
  case 3: return mti_f32_bits(mti_bf16_to_f32(c.bf16));
  case 4: return mti_f32_bits((float)d);
  default: return f64_bits((double)f);
  }
}

/* Runs the kernel, prints the table, counts ours that differ. */
int main(void) {
  uint64_t *dev = NULL, host[2 * N_CASES * N_CONV];
  cudaError_t e = cudaMalloc(&dev, sizeof host);
  if (e != cudaSuccess) {
    printf("gpu_nan_bits: no GPU: %s\n", cudaGetErrorString(e));
    return 77;
  }
  convert_kernel<<<1, N_CASES * N_CONV>>>(TABLE, dev);
  e = cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) {
    printf("gpu_nan_bits: %s\n", cudaGetErrorString(e));
    return 1;
  }
  int bad = 0;
  printf("| conversion | input | cpu | ours (GPU) | CUDA intrinsic (GPU) |\n|---|---|---|---|---|\n");
  for (int c = 0; c < N_CASES; c++)
    for (int k = 0; k < N_CONV; k++) {
      uint64_t cpu = cpu_bits(CASES[c], k), ours = host[2 * (c * N_CONV + k)];
      uint64_t intrinsic = host[2 * (c * N_CONV + k) + 1];
      uint64_t in = k == 2 ? CASES[c].f16 : k == 3 ? CASES[c].bf16 : k == 4 ? CASES[c].f64
                                                                          : CASES[c].f32;
      bad += ours != cpu;
      printf("| %s | %llx | %llx | %llx%s | %llx |\n", CONVERSIONS[k], (unsigned long long)in,
             (unsigned long long)cpu, (unsigned long long)ours, ours != cpu ? " DIFFERS" : "",
             (unsigned long long)intrinsic);
    }
  printf("%d of ours differ from the cpu\n", bad);
  cudaFree(dev);
  return bad ? 1 : 0;
}
