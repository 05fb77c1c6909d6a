/*
 * convert.c - strided conversion between any two dtypes (mt_cast's rules).
 *
 * Element rules: float -> integer truncates toward zero and saturates, NaN
 * gives 0; integer -> integer wraps; anything -> bool is (x != 0); float16
 * and bfloat16 go through float32 with round-to-nearest-even.
 *
 * Structure: a 10 x 10 table of row converters (one contiguous loop, cloned
 * for AVX2, and one strided loop per dtype pair), generated from one list of
 * dtypes, with F16C/AVX2 rows for float32 <-> float16/bfloat16 where the CPU
 * has them; the driver coalesces the two views' dims and walks rows, or
 * tiles when the two views disagree on which dim is contiguous (a transpose).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_kernels.h"
#include "cpu_simd.h"
#include "vmath.h"

/* ---- element conversions ----
 * Every source dtype is read into an intermediate type that holds it
 * exactly (int32 for bool and integers up to 32 bits, int64, float for the
 * 16-bit floats and float32, double), and the intermediate is stored into
 * the destination. The helpers are branch-free so that loops vectorise. */

static inline uint32_t sel_u32(int c, uint32_t a, uint32_t b) {
  uint32_t m = 0u - (uint32_t)(c != 0);
  return (a & m) | (b & ~m);
}

static inline uint64_t sel_u64(int c, uint64_t a, uint64_t b) {
  uint64_t m = 0u - (uint64_t)(c != 0);
  return (a & m) | (b & ~m);
}

/* Same bits as mti_f16_to_f32. */
static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t em = h & 0x7fffu;
  float normal = mti_vfloat((em << 13) + 0x38000000u);
  float special = mti_vfloat((em << 13) | 0x7f800000u); /* inf, nan */
  float subnormal = (float)(int32_t)em * 0x1p-24f;
  float r = mti_vsel(em >= 0x7c00u, special, normal);
  r = mti_vsel(em < 0x400u, subnormal, r);
  return mti_vfloat(mti_vbits(r) | sign);
}

/* Same bits as mti_f32_to_f16 (see there for the rounding tricks). */
static inline uint16_t f32_to_f16(float f) {
  uint32_t u = mti_vbits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  uint32_t nan = 0x7e00u | ((a >> 13) & 0x3ffu);
  uint32_t subnormal = mti_vbits(mti_vfloat(a) + 0.5f) - 0x3f000000u;
  uint32_t normal = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;
  uint32_t r = sel_u32(a < 0x38800000u, subnormal, normal);
  r = sel_u32(a >= 0x477ff000u, 0x7c00u, r);
  r = sel_u32(a > 0x7f800000u, nan, r);
  return (uint16_t)(sign | r);
}

static inline float bf16_to_f32(uint16_t h) { return mti_vfloat((uint32_t)h << 16); }

/* Same bits as mti_f32_to_bf16. */
static inline uint16_t f32_to_bf16(float f) {
  uint32_t u = mti_vbits(f);
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (uint16_t)sel_u32((u & 0x7fffffffu) > 0x7f800000u, (u >> 16) | 0x40u, rounded);
}

/* Float to an integer type whose whole range float holds exactly (8 and 16
 * bits): NaN -> 0, clamp, truncate. */
static inline int32_t f32_to_small_int(float x, float lo, float hi) {
  float c = mti_vsel(x != x, 0.0f, x);
  c = mti_vsel(c < lo, lo, c);
  c = mti_vsel(c > hi, hi, c);
  return (int32_t)c;
}

static inline int32_t f64_to_small_int(double x, double lo, double hi) {
  double c = mti_vseld(x != x, 0.0, x);
  c = mti_vseld(c < lo, lo, c);
  c = mti_vseld(c > hi, hi, c);
  return (int32_t)c;
}

/* 2^31 and 2^63 are exact but the largest int32/int64 are not: values at or
 * above the power of two are replaced before the conversion and saturate
 * after it. */
static inline int32_t f32_to_i32(float x) {
  int big = x >= 0x1p31f;
  float c = mti_vsel((x != x) | big, 0.0f, x);
  c = mti_vsel(c < -0x1p31f, -0x1p31f, c);
  return (int32_t)sel_u32(big, INT32_MAX, (uint32_t)(int32_t)c);
}

static inline int64_t f32_to_i64(float x) {
  int big = x >= 0x1p63f;
  float c = mti_vsel((x != x) | big, 0.0f, x);
  c = mti_vsel(c < -0x1p63f, -0x1p63f, c);
  return (int64_t)sel_u64(big, INT64_MAX, (uint64_t)(int64_t)c);
}

static inline int32_t f64_to_i32(double x) { return f64_to_small_int(x, -0x1p31, 0x1p31 - 1.0); }

static inline int64_t f64_to_i64(double x) {
  int big = x >= 0x1p63;
  double c = mti_vseld((x != x) | big, 0.0, x);
  c = mti_vseld(c < -0x1p63, -0x1p63, c);
  return (int64_t)sel_u64(big, INT64_MAX, (uint64_t)(int64_t)c);
}

/* Loading: source dtype -> intermediate. Bool bytes other than 0/1 read as true. */
#define LOAD_b8(x) ((int32_t)((x) != 0))
#define LOAD_u8(x) ((int32_t)(x))
#define LOAD_i8(x) ((int32_t)(x))
#define LOAD_i16(x) ((int32_t)(x))
#define LOAD_i32(x) ((int32_t)(x))
#define LOAD_i64(x) ((int64_t)(x))
#define LOAD_f16(x) f16_to_f32(x)
#define LOAD_bf16(x) bf16_to_f32(x)
#define LOAD_f32(x) (x)
#define LOAD_f64(x) (x)

/* The intermediate kind of each source dtype: I (int32/int64) or F. */
#define KIND_b8 I
#define KIND_u8 I
#define KIND_i8 I
#define KIND_i16 I
#define KIND_i32 I
#define KIND_i64 I
#define KIND_f16 F32
#define KIND_bf16 F32
#define KIND_f32 F32
#define KIND_f64 F64

/* Storing: intermediate -> destination dtype. Integers wrap (the narrowing
 * conversion is modular in GCC and every compiler we target). */
#define STORE_I_b8(x) ((uint8_t)((x) != 0))
#define STORE_I_u8(x) ((uint8_t)(x))
#define STORE_I_i8(x) ((int8_t)(x))
#define STORE_I_i16(x) ((int16_t)(x))
#define STORE_I_i32(x) ((int32_t)(x))
#define STORE_I_i64(x) ((int64_t)(x))
#define STORE_I_f16(x) f32_to_f16((float)(x))
#define STORE_I_bf16(x) f32_to_bf16((float)(x))
#define STORE_I_f32(x) ((float)(x))
#define STORE_I_f64(x) ((double)(x))

#define STORE_F32_b8(x) ((uint8_t)((x) != 0.0f))
#define STORE_F32_u8(x) ((uint8_t)f32_to_small_int(x, 0.0f, 255.0f))
#define STORE_F32_i8(x) ((int8_t)f32_to_small_int(x, -128.0f, 127.0f))
#define STORE_F32_i16(x) ((int16_t)f32_to_small_int(x, -32768.0f, 32767.0f))
#define STORE_F32_i32(x) f32_to_i32(x)
#define STORE_F32_i64(x) f32_to_i64(x)
#define STORE_F32_f16(x) f32_to_f16(x)
#define STORE_F32_bf16(x) f32_to_bf16(x)
#define STORE_F32_f32(x) (x)
#define STORE_F32_f64(x) ((double)(x))

#define STORE_F64_b8(x) ((uint8_t)((x) != 0.0))
#define STORE_F64_u8(x) ((uint8_t)f64_to_small_int(x, 0.0, 255.0))
#define STORE_F64_i8(x) ((int8_t)f64_to_small_int(x, -128.0, 127.0))
#define STORE_F64_i16(x) ((int16_t)f64_to_small_int(x, -32768.0, 32767.0))
#define STORE_F64_i32(x) f64_to_i32(x)
#define STORE_F64_i64(x) f64_to_i64(x)
#define STORE_F64_f16(x) f32_to_f16((float)(x))
#define STORE_F64_bf16(x) f32_to_bf16((float)(x))
#define STORE_F64_f32(x) ((float)(x))
#define STORE_F64_f64(x) (x)

#define STORE_(kind, D) STORE_##kind##_##D
#define STORE(kind, D) STORE_(kind, D)
#define CONVERT(S, D, x) STORE(KIND_##S, D)(LOAD_##S(x))

/* X-macros over the dtypes in mt_dtype order: (arg, short name, storage
 * type). The list is spelled twice because a macro cannot expand inside its
 * own expansion, and the tables nest one loop over dtypes in another. */
#define CVT_SOURCES(X, arg) \
  X(arg, b8, uint8_t)       \
  X(arg, u8, uint8_t)       \
  X(arg, i8, int8_t)        \
  X(arg, i16, int16_t)      \
  X(arg, i32, int32_t)      \
  X(arg, i64, int64_t)      \
  X(arg, f16, uint16_t)     \
  X(arg, bf16, uint16_t)    \
  X(arg, f32, float)        \
  X(arg, f64, double)
#define CVT_DESTS(X, arg) \
  X(arg, b8, uint8_t)     \
  X(arg, u8, uint8_t)     \
  X(arg, i8, int8_t)      \
  X(arg, i16, int16_t)    \
  X(arg, i32, int32_t)    \
  X(arg, i64, int64_t)    \
  X(arg, f16, uint16_t)   \
  X(arg, bf16, uint16_t)  \
  X(arg, f32, float)      \
  X(arg, f64, double)

#define T_b8 uint8_t
#define T_u8 uint8_t
#define T_i8 int8_t
#define T_i16 int16_t
#define T_i32 int32_t
#define T_i64 int64_t
#define T_f16 uint16_t
#define T_bf16 uint16_t
#define T_f32 float
#define T_f64 double

/* The two row loops of one (S, D) pair. */
#define DEFINE_ROW_PAIR(S, D, TD)                                                           \
  MTI_SIMD_CLONES static void cvt_contig_##S##_##D(const void *src, void *dst, int64_t n) { \
    const T_##S *restrict s = src;                                                        \
    TD *restrict d = dst;                                                                 \
    for (int64_t i = 0; i < n; i++) d[i] = CONVERT(S, D, s[i]);                           \
  }                                                                                       \
  static void cvt_strided_##S##_##D(const void *src, int64_t ss, void *dst, int64_t ds,  \
                                    int64_t n) {                                          \
    const T_##S *s = src;                                                                 \
    TD *d = dst;                                                                          \
    for (int64_t i = 0; i < n; i++) d[i * ds] = CONVERT(S, D, s[i * ss]);                 \
  }
#define DEFINE_ROWS_FROM(unused, S, TS) CVT_DESTS(DEFINE_ROW_PAIR, S)
CVT_SOURCES(DEFINE_ROWS_FROM, ~)

typedef void (*contig_fn)(const void *src, void *dst, int64_t n);
typedef void (*strided_fn)(const void *src, int64_t ss, void *dst, int64_t ds, int64_t n);

#define CONTIG_ENTRY(S, D, TD) cvt_contig_##S##_##D,
#define CONTIG_ROW(unused, S, TS) {CVT_DESTS(CONTIG_ENTRY, S)},
static const contig_fn contig_table[MTI_NUM_DTYPES][MTI_NUM_DTYPES] = {
    CVT_SOURCES(CONTIG_ROW, ~)};

#define STRIDED_ENTRY(S, D, TD) cvt_strided_##S##_##D,
#define STRIDED_ROW(unused, S, TS) {CVT_DESTS(STRIDED_ENTRY, S)},
static const strided_fn strided_table[MTI_NUM_DTYPES][MTI_NUM_DTYPES] = {
    CVT_SOURCES(STRIDED_ROW, ~)};

/* ---- float32 <-> float16/bfloat16 rows with x86 vector instructions ----
 * float16 converts with F16C (vcvtph2ps, and vcvtps2ph with its rounding
 * set to nearest even), bfloat16 with AVX2 integer shifts doing
 * f32_to_bf16's rounding 16 lanes at a time. Both give the bits of the
 * portable loops above, NaN payloads included. The
 * library's baseline is plain x86-64, so these functions alone are compiled
 * for AVX2 and F16C, and contig_for() picks them only on a CPU that has
 * both; elsewhere (and in a build with MTI_NO_SIMD_CLONES, baseline code
 * only) the portable loops run. Tails go to the portable loops. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(MTI_NO_SIMD_CLONES)
#include <cpuid.h>
#include <immintrin.h>
#define HALF_VECTOR_ROWS 1
#define TARGET_AVX2_F16C __attribute__((target("avx2,f16c")))

/* vcvtph2ps of 8 halves with the portable bits: the instruction quiets a
 * signaling NaN, so its quiet bit is cleared again where the input was one
 * (exponent all ones, quiet bit clear, payload not zero). */
TARGET_AVX2_F16C static inline __m256 f16_to_f32_8(const uint16_t *s) {
  __m128i h = _mm_loadu_si128((const __m128i *)s);
  __m256i w = _mm256_cvtepu16_epi32(h);
  __m256i top = _mm256_and_si256(w, _mm256_set1_epi32(0x7e00));
  __m256i payload = _mm256_and_si256(w, _mm256_set1_epi32(0x1ff));
  __m256i snan = _mm256_andnot_si256(_mm256_cmpeq_epi32(payload, _mm256_setzero_si256()),
                                     _mm256_cmpeq_epi32(top, _mm256_set1_epi32(0x7c00)));
  __m256i quiet = _mm256_and_si256(snan, _mm256_set1_epi32(0x400000));
  return _mm256_castsi256_ps(_mm256_andnot_si256(quiet, _mm256_castps_si256(_mm256_cvtph_ps(h))));
}

TARGET_AVX2_F16C static void f16_f32_vector(const void *src, void *dst, int64_t n) {
  const uint16_t *s = src;
  float *d = dst;
  int64_t i = 0;
  for (; n - i >= 16; i += 16) {
    _mm256_storeu_ps(d + i, f16_to_f32_8(s + i));
    _mm256_storeu_ps(d + i + 8, f16_to_f32_8(s + i + 8));
  }
  cvt_contig_f16_f32(s + i, d + i, n - i);
}

TARGET_AVX2_F16C static void f32_f16_vector(const void *src, void *dst, int64_t n) {
  const float *s = src;
  uint16_t *d = dst;
  int64_t i = 0;
  for (; n - i >= 16; i += 16) {
    __m128i lo = _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT);
    __m128i hi = _mm256_cvtps_ph(_mm256_loadu_ps(s + i + 8), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)(d + i), lo);
    _mm_storeu_si128((__m128i *)(d + i + 8), hi);
  }
  cvt_contig_f32_f16(s + i, d + i, n - i);
}

TARGET_AVX2_F16C static void bf16_f32_vector(const void *src, void *dst, int64_t n) {
  const uint16_t *s = src;
  float *d = dst;
  int64_t i = 0;
  for (; n - i >= 16; i += 16) {
    __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
    __m256i hi = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i + 8)));
    _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(lo, 16));
    _mm256_storeu_si256((__m256i *)(d + i + 8), _mm256_slli_epi32(hi, 16));
  }
  cvt_contig_bf16_f32(s + i, d + i, n - i);
}

/* f32_to_bf16 on 8 lanes, the results in the low halves of the lanes. */
TARGET_AVX2_F16C static inline __m256i bf16_round8(__m256i u) {
  __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i biased = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
  __m256i rounded = _mm256_srli_epi32(biased, 16);
  __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                      _mm256_set1_epi32(0x7f800000));
  return _mm256_blendv_epi8(rounded, quiet, is_nan);
}

TARGET_AVX2_F16C static void f32_bf16_vector(const void *src, void *dst, int64_t n) {
  const float *s = src;
  uint16_t *d = dst;
  int64_t i = 0;
  for (; n - i >= 16; i += 16) {
    __m256i lo = bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i)));
    __m256i hi = bf16_round8(_mm256_loadu_si256((const __m256i *)(s + i + 8)));
    /* packus interleaves the 128-bit halves: lo0-3 hi0-3 lo4-7 hi4-7 */
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
    _mm256_storeu_si256((__m256i *)(d + i), packed);
  }
  cvt_contig_f32_bf16(s + i, d + i, n - i);
}

/* AVX2 (which __builtin_cpu_supports checks with the OS's register
 * support) and F16C, from CPUID leaf 1 (clang's builtin has no "f16c"). */
static int have_avx2_f16c(void) {
  unsigned eax, ebx, ecx, edx;
  if (!__builtin_cpu_supports("avx2") || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  return (ecx & bit_F16C) != 0;
}
#endif

/* The contiguous row converter of (sd, dd): a vector one where this CPU has
 * it, else the table's. */
static contig_fn contig_for(mt_dtype sd, mt_dtype dd) {
#ifdef HALF_VECTOR_ROWS
  if (have_avx2_f16c()) {
    if (sd == MT_FLOAT16 && dd == MT_FLOAT32) return f16_f32_vector;
    if (sd == MT_FLOAT32 && dd == MT_FLOAT16) return f32_f16_vector;
    if (sd == MT_BFLOAT16 && dd == MT_FLOAT32) return bf16_f32_vector;
    if (sd == MT_FLOAT32 && dd == MT_BFLOAT16) return f32_bf16_vector;
  }
#endif
  return contig_table[sd][dd];
}

/* ---- same-dtype rows: plain element copies by size ---- */

#define DEFINE_COPY(bits)                                                                  \
  static void copy_strided_##bits(const void *src, int64_t ss, void *dst, int64_t ds,     \
                                  int64_t n) {                                            \
    const uint##bits##_t *s = src;                                                        \
    uint##bits##_t *d = dst;                                                              \
    for (int64_t i = 0; i < n; i++) d[i * ds] = s[i * ss];                                \
  }                                                                                       \
  MTI_SIMD_CLONES static void fill_##bits(const void *src, void *dst, int64_t n) {        \
    uint##bits##_t v = *(const uint##bits##_t *)src, *restrict d = dst;                   \
    for (int64_t i = 0; i < n; i++) d[i] = v;                                             \
  }
DEFINE_COPY(8)
DEFINE_COPY(16)
DEFINE_COPY(32)
DEFINE_COPY(64)

void mti_cpu_convert_row(const void *src, mt_dtype sd, int64_t ss, void *dst, mt_dtype dd,
                         int64_t ds, int64_t n) {
  const char *s = src;
  char *d = dst;
  if (sd != dd) {
    if (ss == 1 && ds == 1)
      contig_for(sd, dd)(s, d, n);
    else
      strided_table[sd][dd](s, ss, d, ds, n);
    return;
  }
  size_t size = mt_dtype_size(sd);
  if (ss == 1 && ds == 1) {
    memcpy(d, s, (size_t)n * size);
    return;
  }
  if (ss == 0 && ds == 1) {
    static const contig_fn fills[] = {fill_8, fill_16, NULL, fill_32, NULL, NULL, NULL, fill_64};
    fills[size - 1](s, d, n);
    return;
  }
  static const strided_fn copies[] = {copy_strided_8, copy_strided_16, NULL, copy_strided_32,
                                      NULL,           NULL,            NULL, copy_strided_64};
  copies[size - 1](s, ss, d, ds, n);
}

/* ---- N-d driver ---- */

/* Dims of dst and src after dropping size-1 dims, ordering by dst stride
 * (largest first, so the last dim is where dst moves fastest) and merging
 * neighbours that are contiguous in both. */
typedef struct pair_layout {
  int nd;
  int64_t shape[MT_MAX_DIMS];
  int64_t dst_stride[MT_MAX_DIMS], src_stride[MT_MAX_DIMS];
} pair_layout;

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

static void pair_layout_init(pair_layout *l, const mti_view *src, const mti_view *dst) {
  l->nd = 0;
  for (int i = 0; i < dst->ndim; i++) {
    if (dst->shape[i] == 1) continue;
    /* Insertion keeping larger |dst stride| first; ties keep their order. */
    int at = l->nd;
    while (at > 0 && abs64(l->dst_stride[at - 1]) < abs64(dst->strides[i])) {
      l->shape[at] = l->shape[at - 1];
      l->dst_stride[at] = l->dst_stride[at - 1];
      l->src_stride[at] = l->src_stride[at - 1];
      at--;
    }
    l->shape[at] = dst->shape[i];
    l->dst_stride[at] = dst->strides[i];
    l->src_stride[at] = src->strides[i];
    l->nd++;
  }
  int nd = 0;
  for (int i = 0; i < l->nd; i++) {
    if (nd > 0 && l->dst_stride[nd - 1] == l->dst_stride[i] * l->shape[i] &&
        l->src_stride[nd - 1] == l->src_stride[i] * l->shape[i]) {
      l->shape[nd - 1] *= l->shape[i];
      l->dst_stride[nd - 1] = l->dst_stride[i];
      l->src_stride[nd - 1] = l->src_stride[i];
      continue;
    }
    l->shape[nd] = l->shape[i];
    l->dst_stride[nd] = l->dst_stride[i];
    l->src_stride[nd] = l->src_stride[i];
    nd++;
  }
  if (nd == 0) { /* one element */
    l->shape[0] = 1;
    l->dst_stride[0] = l->src_stride[0] = 1;
    nd = 1;
  }
  l->nd = nd;
}

/* Threads for `work` elements: one below MTI_CPU_PARALLEL_MIN (or inside a
 * parallel region), and at least half of that per thread above it. */
static int threads_for(int64_t work) { return mti_cpu_threads_for(work, MTI_CPU_PARALLEL_MIN / 2); }

typedef struct convert_job {
  const pair_layout *l;
  const char *src;
  char *dst;
  mt_dtype sd, dd;
  size_t ssize, dsize;
} convert_job;

/* Converts the elements [begin, end) of the row-major order of the layout:
 * rows of the last dim, walked with an odometer over the outer dims. */
static void convert_range(const convert_job *j, int64_t begin, int64_t end) {
  const pair_layout *l = j->l;
  int last = l->nd - 1;
  int64_t inner = l->shape[last];
  int64_t row = begin / inner, col = begin % inner;
  int64_t idx[MT_MAX_DIMS];
  int64_t soff = col * l->src_stride[last], doff = col * l->dst_stride[last];
  for (int d = last - 1; d >= 0; d--) {
    idx[d] = row % l->shape[d];
    row /= l->shape[d];
    soff += idx[d] * l->src_stride[d];
    doff += idx[d] * l->dst_stride[d];
  }
  for (int64_t pos = begin; pos < end;) {
    int64_t n = inner - col < end - pos ? inner - col : end - pos;
    mti_cpu_convert_row(j->src + soff * (int64_t)j->ssize, j->sd, l->src_stride[last],
                        j->dst + doff * (int64_t)j->dsize, j->dd, l->dst_stride[last], n);
    pos += n;
    soff -= col * l->src_stride[last];
    doff -= col * l->dst_stride[last];
    col = 0;
    for (int d = last - 1; d >= 0; d--) { /* next row */
      soff += l->src_stride[d];
      doff += l->dst_stride[d];
      if (++idx[d] < l->shape[d]) break;
      soff -= l->shape[d] * l->src_stride[d];
      doff -= l->shape[d] * l->dst_stride[d];
      idx[d] = 0;
    }
  }
}

/* Transpose-like layouts: dst is contiguous along its last dim while src is
 * contiguous along another dim k. Walking either side row by row touches a
 * cache line per element on the other side, and with power-of-two strides
 * those lines all fall into the same cache sets and evict each other. So a
 * TILE x TILE tile is first converted, reading src along its contiguous dim
 * k, into a small buffer (rows of dst's dtype, padded against set conflicts),
 * and then copied out of that buffer down its columns into contiguous dst
 * rows. Both sides of memory are then read or written a line at a time. */
#define TILE 64
#define TILE_PITCH (TILE + 1) /* buffer row length in elements */
#define TILE_BYTES ((size_t)TILE * TILE_PITCH * 8)

/* The dim k of src that makes the layout transpose-like, or -1. */
static int find_transpose_dim(const pair_layout *l) {
  int last = l->nd - 1;
  if (l->nd < 2 || l->dst_stride[last] != 1 || abs64(l->src_stride[last]) < TILE) return -1;
  for (int k = 0; k < last; k++)
    if (abs64(l->src_stride[k]) == 1 && l->shape[k] >= TILE / 4 && l->shape[last] >= TILE / 4)
      return k;
  return -1;
}

/* The tile [k0, k0 + TILE) x [i0, i0 + TILE) of (dim k, last dim) in the
 * outer_index-th combination of the remaining dims. */
static void convert_tile(const convert_job *j, int k, int64_t outer_index, int64_t k0,
                         int64_t i0, char *buf) {
  const pair_layout *l = j->l;
  int last = l->nd - 1;
  int64_t soff = 0, doff = 0, rest = outer_index;
  for (int d = last - 1; d >= 0; d--) {
    if (d == k) continue;
    int64_t idx = rest % l->shape[d];
    rest /= l->shape[d];
    soff += idx * l->src_stride[d];
    doff += idx * l->dst_stride[d];
  }
  int64_t kn = l->shape[k] - k0 < TILE ? l->shape[k] - k0 : TILE;
  int64_t in = l->shape[last] - i0 < TILE ? l->shape[last] - i0 : TILE;
  int64_t ssize = (int64_t)j->ssize, dsize = (int64_t)j->dsize;
  const char *s = j->src + (soff + k0 * l->src_stride[k] + i0 * l->src_stride[last]) * ssize;
  for (int64_t i = 0; i < in; i++) /* buffer row i = src along k */
    mti_cpu_convert_row(s + i * l->src_stride[last] * ssize, j->sd, l->src_stride[k],
                        buf + i * TILE_PITCH * dsize, j->dd, 1, kn);
  char *d = j->dst + (doff + k0 * l->dst_stride[k] + i0) * dsize;
  for (int64_t kk = 0; kk < kn; kk++) /* dst row kk = buffer column kk */
    mti_cpu_convert_row(buf + kk * dsize, j->dd, TILE_PITCH, d + kk * l->dst_stride[k] * dsize,
                        j->dd, 1, in);
}

static mt_status convert_tiled(const convert_job *j, int k, int64_t numel) {
  const pair_layout *l = j->l;
  int last = l->nd - 1;
  int64_t ktiles = (l->shape[k] + TILE - 1) / TILE;
  int64_t itiles = (l->shape[last] + TILE - 1) / TILE;
  int64_t outer = numel / (l->shape[k] * l->shape[last]);
  int64_t tiles = outer * ktiles * itiles;
  int nt = threads_for(numel);
  char *bufs = malloc(TILE_BYTES * (size_t)nt);
  if (!bufs) return mti_error_oom("mt_copy", TILE_BYTES * (size_t)nt);
#pragma omp parallel num_threads(nt)
  {
    char *buf = bufs + TILE_BYTES * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tiles; t++) {
      int64_t it = t % itiles, kt = (t / itiles) % ktiles;
      convert_tile(j, k, t / (itiles * ktiles), kt * TILE, it * TILE, buf);
    }
  }
  free(bufs);
  return MT_OK;
}

mt_status mti_cpu_convert(const mti_view *src, const mti_view *dst) {
  int64_t numel = mti_shape_numel(dst->ndim, dst->shape);
  if (numel == 0) return MT_OK;
  pair_layout l;
  pair_layout_init(&l, src, dst);
  convert_job j = {&l, src->data, dst->data, src->dtype, dst->dtype,
                   mt_dtype_size(src->dtype), mt_dtype_size(dst->dtype)};
  int k = find_transpose_dim(&l);
  if (k >= 0) return convert_tiled(&j, k, numel);
  int nt = threads_for(numel);
  if (nt == 1) {
    convert_range(&j, 0, numel);
    return MT_OK;
  }
#pragma omp parallel num_threads(nt)
  {
    /* Ranges cut at multiples of 64 elements keep threads off each other's
     * cache lines in contiguous output. */
    int64_t parts = omp_get_num_threads(), me = omp_get_thread_num();
    int64_t begin = numel * me / parts / 64 * 64;
    int64_t end = me + 1 == parts ? numel : numel * (me + 1) / parts / 64 * 64;
    convert_range(&j, begin, end);
  }
  return MT_OK;
}
