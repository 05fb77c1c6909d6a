/*
 * random.c - mt_rand and mt_randn on the cpu: the Philox stream of
 * core/philox.h, laid out as documented there.
 *
 * Element i depends only on (seed, i, dtype): every Philox block is computed
 * from its own counter, threads share out whole groups of blocks, and the
 * elements of a last, partial group come from the same group code writing
 * aside, so neither threading, chunking nor the output's length changes a
 * value.
 *
 * A group is RANDOM_LANES consecutive blocks computed side by side (word j
 * of every block in one array), so that GCC turns the Philox rounds and the
 * mappings into SIMD code.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "core/philox.h"
#include "cpu/cpu_kernels.h"
#include "cpu/cpu_simd.h"

#define RANDOM_LANES 8

/* Groups per parallel work item. */
#define RANDOM_CHUNK_GROUPS 256

/* Word j of block b0 + l in w[j][l]. */
static inline void philox_lanes(uint64_t seed, uint32_t stream, uint64_t b0,
                                uint32_t w[4][RANDOM_LANES]) {
  for (int l = 0; l < RANDOM_LANES; l++) {
    mti_philox_words x = mti_philox_block(seed, stream, b0 + (uint64_t)l);
    for (int j = 0; j < 4; j++) w[j][l] = x.w[j];
  }
}

/* ---- one group: the elements of blocks b0 .. b0 + RANDOM_LANES - 1,
 * written from d (E elements per block, in block order) ---- */

static inline void rand_f32_group(uint64_t seed, uint64_t b0, float *d) {
  uint32_t w[4][RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_UNIFORM, b0, w);
  for (int l = 0; l < RANDOM_LANES; l++)
    for (int j = 0; j < 4; j++) d[4 * l + j] = mti_philox_uniform_f32(w[j][l]);
}

/* The float16/bfloat16 uniforms are exact in those types: no rounding. */
static inline void rand_f16_group(uint64_t seed, uint64_t b0, uint16_t *d) {
  uint32_t w[4][RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_UNIFORM, b0, w);
  for (int l = 0; l < RANDOM_LANES; l++)
    for (int j = 0; j < 4; j++) d[4 * l + j] = mti_f32_to_f16(mti_philox_uniform_f16(w[j][l]));
}

static inline void rand_bf16_group(uint64_t seed, uint64_t b0, uint16_t *d) {
  uint32_t w[4][RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_UNIFORM, b0, w);
  for (int l = 0; l < RANDOM_LANES; l++)
    for (int j = 0; j < 4; j++) d[4 * l + j] = mti_f32_to_bf16(mti_philox_uniform_bf16(w[j][l]));
}

static inline void rand_f64_group(uint64_t seed, uint64_t b0, double *d) {
  uint32_t w[4][RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_UNIFORM, b0, w);
  for (int l = 0; l < RANDOM_LANES; l++) {
    d[2 * l] = mti_philox_uniform_f64(w[0][l], w[1][l]);
    d[2 * l + 1] = mti_philox_uniform_f64(w[2][l], w[3][l]);
  }
}

/* mti_philox_box_muller_f32 in three passes: the square root stays a scalar
 * libm call (it may set errno, so GCC will not vectorise it), and splitting
 * it out lets the log and sincos passes vectorise. Shared by three dtypes, so
 * GCC keeps it out of line: it gets SIMD clones of its own. */
MTI_SIMD_CLONES static void randn_f32_group(uint64_t seed, uint64_t b0, float *d) {
  uint32_t w[4][RANDOM_LANES];
  float r[2][RANDOM_LANES], c[2][RANDOM_LANES], s[2][RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_NORMAL, b0, w);
  for (int p = 0; p < 2; p++)
    for (int l = 0; l < RANDOM_LANES; l++) {
      r[p][l] = mti_philox_radius2_f32(w[2 * p][l]);
      mti_philox_sincos2pi_f32(w[2 * p + 1][l], &c[p][l], &s[p][l]);
    }
  for (int p = 0; p < 2; p++)
    for (int l = 0; l < RANDOM_LANES; l++) r[p][l] = sqrtf(r[p][l]);
  for (int l = 0; l < RANDOM_LANES; l++)
    for (int p = 0; p < 2; p++) {
      d[4 * l + 2 * p] = r[p][l] * c[p][l];
      d[4 * l + 2 * p + 1] = r[p][l] * s[p][l];
    }
}

static inline void randn_f16_group(uint64_t seed, uint64_t b0, uint16_t *d) {
  float z[4 * RANDOM_LANES];
  randn_f32_group(seed, b0, z);
  for (int i = 0; i < 4 * RANDOM_LANES; i++) d[i] = mti_f32_to_f16(z[i]);
}

static inline void randn_bf16_group(uint64_t seed, uint64_t b0, uint16_t *d) {
  float z[4 * RANDOM_LANES];
  randn_f32_group(seed, b0, z);
  for (int i = 0; i < 4 * RANDOM_LANES; i++) d[i] = mti_f32_to_bf16(z[i]);
}

/* mti_philox_box_muller_f64 in the three passes of randn_f32_group (and, as
 * large, with SIMD clones of its own). */
MTI_SIMD_CLONES static void randn_f64_group(uint64_t seed, uint64_t b0, double *d) {
  uint32_t w[4][RANDOM_LANES];
  double r[RANDOM_LANES], c[RANDOM_LANES], s[RANDOM_LANES];
  philox_lanes(seed, MTI_PHILOX_STREAM_NORMAL, b0, w);
  for (int l = 0; l < RANDOM_LANES; l++) {
    r[l] = mti_philox_radius2_f64(w[0][l], w[1][l]);
    mti_philox_sincos2pi_f64(w[2][l], w[3][l], &c[l], &s[l]);
  }
  for (int l = 0; l < RANDOM_LANES; l++) r[l] = sqrt(r[l]);
  for (int l = 0; l < RANDOM_LANES; l++) {
    d[2 * l] = r[l] * c[l];
    d[2 * l + 1] = r[l] * s[l];
  }
}

/* ---- groups [g0, g1), written from dst (the first element of group g0) ---- */

typedef void (*random_run_fn)(uint64_t seed, int64_t g0, int64_t g1, void *dst);

#define RANDOM_RUN(NAME, T, E)                                                                \
  MTI_SIMD_CLONES static void NAME##_run(uint64_t seed, int64_t g0, int64_t g1, void *dst) { \
    T *d = (T *)dst;                                                                          \
    for (int64_t g = g0; g < g1; g++, d += RANDOM_LANES * (E))                                \
      NAME##_group(seed, (uint64_t)g * RANDOM_LANES, d);                                      \
  }

RANDOM_RUN(rand_f32, float, 4)
RANDOM_RUN(rand_f16, uint16_t, 4)
RANDOM_RUN(rand_bf16, uint16_t, 4)
RANDOM_RUN(rand_f64, double, 2)
RANDOM_RUN(randn_f32, float, 4)
RANDOM_RUN(randn_f16, uint16_t, 4)
RANDOM_RUN(randn_bf16, uint16_t, 4)
RANDOM_RUN(randn_f64, double, 2)

typedef struct random_kernel {
  random_run_fn run;
  int64_t per_block; /* elements a block makes */
} random_kernel;

static random_kernel random_kernel_of(int normal, mt_dtype dtype) {
  switch (dtype) {
  case MT_FLOAT16: return (random_kernel){normal ? randn_f16_run : rand_f16_run, 4};
  case MT_BFLOAT16: return (random_kernel){normal ? randn_bf16_run : rand_bf16_run, 4};
  case MT_FLOAT64: return (random_kernel){normal ? randn_f64_run : rand_f64_run, 2};
  default: return (random_kernel){normal ? randn_f32_run : rand_f32_run, 4};
  }
}

/* Whole groups go straight into out, in chunks spread across threads; a last,
 * partial group is made by the same code into a buffer and its leading
 * elements copied. */
mt_status mti_cpu_random(mti_op op, const mti_attrs *at, const mti_view *out) {
  random_kernel k = random_kernel_of(op == MTI_OP_RANDN, out->dtype);
  int64_t es = (int64_t)mt_dtype_size(out->dtype);
  int64_t n = mti_shape_numel(out->ndim, out->shape);
  int64_t per_group = k.per_block * RANDOM_LANES;
  int64_t groups = n / per_group, rest = n % per_group;
  int64_t chunks = (groups + RANDOM_CHUNK_GROUPS - 1) / RANDOM_CHUNK_GROUPS;
  uint64_t seed = at->seed;
  char *data = (char *)out->data;
#pragma omp parallel for schedule(static) if (n >= MTI_CPU_PARALLEL_MIN) num_threads(mti_cpu_threads())
  for (int64_t c = 0; c < chunks; c++) {
    int64_t g0 = c * RANDOM_CHUNK_GROUPS;
    int64_t g1 = groups - g0 < RANDOM_CHUNK_GROUPS ? groups : g0 + RANDOM_CHUNK_GROUPS;
    k.run(seed, g0, g1, data + g0 * per_group * es);
  }
  if (rest) {
    double last[4 * RANDOM_LANES]; /* room and alignment for any group */
    k.run(seed, groups, groups + 1, last);
    memcpy(data + groups * per_group * es, last, (size_t)(rest * es));
  }
  return MT_OK;
}
