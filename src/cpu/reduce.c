/*
 * reduce.c - sum, mean, prod, amax, amin, argmax and argmin.
 *
 * A reduction is first normalised: size-1 dims are dropped, negative strides
 * flipped and the dims sorted by stride, so any dense permutation of memory
 * (a transpose, a flip) is read in memory order without a copy. The kept dims
 * then come out in memory order as well; a final strided conversion puts them
 * in out's order (and dtype) when that differs.
 *
 * On dense data the work is a sequence of steps, one per run of adjacent
 * reduced dims, each a [outer, R, inner] reduction on contiguous memory:
 * inner == 1 reduces rows (several SIMD accumulators per row), inner > 1
 * accumulates rows of length inner (SIMD across inner); float16 and bfloat16
 * run the float32 kernels on pieces widened in cache. Inputs that are not
 * dense, or of a dtype without kernels (float16 and bfloat16 for the arg
 * reductions), are staged with mti_cpu_convert in pieces of at most STAGE_BYTES.
 *
 * A caller's stop flag (cpu/stop.h) is tested per task and per staged
 * piece: a reduction over a huge broadcast view stops within milliseconds.
 *
 * Results do not depend on the thread count: long rows and columns are split
 * at fixed, shape-derived points, and the partial results joined in order.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu_kernels.h"
#include "cpu_simd.h"
#include "stop.h"

enum { RED_SUM, RED_PROD, RED_MAX, RED_MIN, RED_ARGMAX, RED_ARGMIN };

#define LANES 32          /* independent accumulators per row: 4 AVX2 vectors of f32 */
#define ROW_BLOCK 1024    /* elements a lane accumulator takes before joining the wide one */
#define SHORT_ROWS 8      /* rows shorter than 2 * LANES summed side by side (8 chains, not 1) */
#define ROW_CHUNK 16384   /* longer rows are cut into chunks reduced separately */
#define COL_TILE 2048     /* columns one accumulator tile covers */
#define COL_BLOCK 64      /* rows a column accumulator takes before joining the wide one */
#define COL_CHUNK (1 << 20) /* elements per task when a column reduction is cut along R */
#define COL_MIN_TASKS 16  /* fewer [outer x tile] tasks than this: cut R as well */
#define STAGE_BYTES ((int64_t)16 << 20)

/* ---- element operations (a = a op v) ---- */

#define OP_ADD(a, v) ((a) += (v))
#define OP_MUL(a, v) ((a) *= (v))
#define OP_MAXI(a, v) ((a) = (v) > (a) ? (v) : (a))
#define OP_MINI(a, v) ((a) = (v) < (a) ? (v) : (a))
/* A NaN operand wins, and stays: v > NaN and v < NaN are false. */
#define OP_MAXF(a, v) ((a) = ((v) > (a) || (v) != (v)) ? (v) : (a))
#define OP_MINF(a, v) ((a) = ((v) < (a) || (v) != (v)) ? (v) : (a))

/*
 * Reduction kernels of input type T: lanes of type LT accumulate blocks, and
 * block results join wide accumulators of the result type PT (float32 sums
 * join in double, which keeps 10M-element sums accurate to ~1e-7).
 *  _rows  nrows consecutive rows of n elements each (n <= ROW_CHUNK)
 *  _cols  out[c] = reduce over r < nrows of x[r * ld + c], c < w <= COL_TILE (four
 *         rows at a time, so that acc is loaded and stored once per four)
 *  _join  acc[i] = acc[i] op p[i]
 */
#define RED_ROWS(NAME, T, LT, PT, ID, STEP, JOIN)                                               \
  MTI_SIMD_CLONES static void NAME##_rows(const void *xv, int64_t nrows, int64_t n, void *ov) { \
    PT *out = ov;                                                                               \
    int64_t row = 0;                                                                            \
    for (; n < 2 * LANES && nrows - row >= SHORT_ROWS; row += SHORT_ROWS) {                     \
      const T *x = (const T *)xv + row * n;                                                     \
      PT r[SHORT_ROWS];                                                                         \
      for (int j = 0; j < SHORT_ROWS; j++) r[j] = (PT)(ID);                                     \
      for (int64_t i = 0; i < n; i++)                                                           \
        for (int j = 0; j < SHORT_ROWS; j++) JOIN(r[j], (PT)x[j * n + i]);                      \
      for (int j = 0; j < SHORT_ROWS; j++) out[row + j] = r[j];                                 \
    }                                                                                           \
    for (; row < nrows; row++) {                                                                \
      const T *x = (const T *)xv + row * n;                                                     \
      PT r = (PT)(ID);                                                                          \
      int64_t i = 0;                                                                            \
      if (n >= 2 * LANES) {                                                                     \
        PT wide[LANES];                                                                         \
        LT acc[LANES];                                                                          \
        for (int j = 0; j < LANES; j++) wide[j] = (PT)(ID);                                     \
        while (n - i >= LANES) {                                                                \
          int64_t m = (n - i) / LANES * LANES;                                                  \
          if (m > ROW_BLOCK) m = ROW_BLOCK;                                                     \
          for (int j = 0; j < LANES; j++) acc[j] = (LT)(ID);                                    \
          for (int64_t k = i; k < i + m; k += LANES)                                            \
            for (int j = 0; j < LANES; j++) STEP(acc[j], (LT)x[k + j]);                         \
          for (int j = 0; j < LANES; j++) JOIN(wide[j], (PT)acc[j]);                            \
          i += m;                                                                               \
        }                                                                                       \
        for (int w = LANES / 2; w > 0; w /= 2)                                                  \
          for (int j = 0; j < w; j++) JOIN(wide[j], wide[j + w]);                               \
        r = wide[0];                                                                            \
      }                                                                                         \
      for (; i < n; i++) JOIN(r, (PT)x[i]);                                                     \
      out[row] = r;                                                                             \
    }                                                                                           \
  }

#define RED_COLS(NAME, T, LT, PT, ID, STEP, JOIN)                                               \
  MTI_SIMD_CLONES static void NAME##_cols(const void *xv, int64_t nrows, int64_t w, int64_t ld, \
                                          void *ov) {                                           \
    const T *x = xv;                                                                            \
    PT *out = ov;                                                                               \
    LT acc[COL_TILE];                                                                           \
    for (int64_t c = 0; c < w; c++) out[c] = (PT)(ID);                                          \
    for (int64_t r0 = 0; r0 < nrows; r0 += COL_BLOCK) {                                         \
      int64_t r1 = nrows - r0 > COL_BLOCK ? r0 + COL_BLOCK : nrows;                             \
      for (int64_t c = 0; c < w; c++) acc[c] = (LT)(ID);                                        \
      int64_t r = r0;                                                                           \
      for (; r1 - r >= 4; r += 4) {                                                             \
        const T *x0 = x + r * ld, *x1 = x0 + ld, *x2 = x1 + ld, *x3 = x2 + ld;                  \
        for (int64_t c = 0; c < w; c++) {                                                       \
          LT a = (LT)x0[c], b = (LT)x2[c];                                                      \
          STEP(a, (LT)x1[c]);                                                                   \
          STEP(b, (LT)x3[c]);                                                                   \
          STEP(a, b);                                                                           \
          STEP(acc[c], a);                                                                      \
        }                                                                                       \
      }                                                                                         \
      for (; r < r1; r++)                                                                       \
        for (int64_t c = 0; c < w; c++) STEP(acc[c], (LT)x[r * ld + c]);                        \
      for (int64_t c = 0; c < w; c++) JOIN(out[c], (PT)acc[c]);                                 \
    }                                                                                           \
  }                                                                                             \
  static void NAME##_join(void *av, const void *pv, int64_t n) {                                \
    PT *a = av;                                                                                 \
    const PT *p = pv;                                                                           \
    for (int64_t i = 0; i < n; i++) JOIN(a[i], p[i]);                                           \
  }

#define RED_KERNEL(NAME, T, LT, PT, ID, STEP, JOIN) \
  RED_ROWS(NAME, T, LT, PT, ID, STEP, JOIN)         \
  RED_COLS(NAME, T, LT, PT, ID, STEP, JOIN)

/* Lanes of a max / min: a plain select, which is one vmaxps / vminps. */
#define PICK_MAX(a, v) ((v) > (a) ? (v) : (a))
#define PICK_MIN(a, v) ((v) < (a) ? (v) : (a))
/* NaN detection for float rows (_F; nothing for integers, _I): a lane sum
 * is NaN when the row holds a NaN, or both infinities, or overflows both
 * ways; only then is the row scanned for a NaN. */
#define NAN_ADD_F(s, v) ((s) += (v))
#define NAN_ADD_I(s, v) ((void)(s), (void)(v))
#define NAN_SCAN_F(T, x, n, s, r)                                         \
  if ((s) != (s)) {                                                       \
    int nan_ = 0;                                                         \
    for (int64_t k_ = 0; k_ < (n); k_++) nan_ |= (x)[k_] != (x)[k_];      \
    if (nan_) r = (T)NAN;                                                 \
  }
#define NAN_SCAN_I(T, x, n, s, r) (void)(s);

/* result = PICK over x[0..n) (n >= 1), NaN if x holds one (KIND F); in
 * LANES lanes for long rows. */
#define ROW_EXTREME(T, x, n, PICK, KIND, result)                         \
  do {                                                                   \
    T r_ = (x)[0], t_ = 0;                                               \
    int64_t i_ = 0;                                                      \
    if ((n) >= 2 * LANES) {                                              \
      T m_[LANES], s_[LANES];                                            \
      for (int j_ = 0; j_ < LANES; j_++) m_[j_] = (x)[0], s_[j_] = 0;    \
      for (; (n) - i_ >= LANES; i_ += LANES)                             \
        for (int j_ = 0; j_ < LANES; j_++) {                             \
          T v_ = (x)[i_ + j_];                                           \
          m_[j_] = PICK(m_[j_], v_);                                     \
          NAN_ADD_##KIND(s_[j_], v_);                                    \
        }                                                                \
      for (int j_ = 0; j_ < LANES; j_++) {                               \
        r_ = PICK(r_, m_[j_]);                                           \
        NAN_ADD_##KIND(t_, s_[j_]);                                      \
      }                                                                  \
    }                                                                    \
    for (; i_ < (n); i_++) {                                             \
      r_ = PICK(r_, (x)[i_]);                                            \
      NAN_ADD_##KIND(t_, (x)[i_]);                                       \
    }                                                                    \
    NAN_SCAN_##KIND(T, x, n, t_, r_)                                     \
    result = r_;                                                         \
  } while (0)

/* amax / amin rows (the result type is T). */
#define EXT_ROWS(NAME, T, PICK, KIND)                                                           \
  MTI_SIMD_CLONES static void NAME##_rows(const void *xv, int64_t nrows, int64_t n, void *ov) { \
    T *out = ov;                                                                                \
    for (int64_t row = 0; row < nrows; row++) {                                                 \
      const T *x = (const T *)xv + row * n;                                                     \
      ROW_EXTREME(T, x, n, PICK, KIND, out[row]);                                               \
    }                                                                                           \
  }

/* sum and prod of integers wrap in uint64; amax/amin keep the type. */
#define RED_INT_KERNELS(S, T, TMIN, TMAX)                          \
  RED_KERNEL(sum_##S, T, uint64_t, uint64_t, 0, OP_ADD, OP_ADD)    \
  RED_KERNEL(prod_##S, T, uint64_t, uint64_t, 1, OP_MUL, OP_MUL)   \
  EXT_ROWS(max_##S, T, PICK_MAX, I)                                \
  RED_COLS(max_##S, T, T, T, TMIN, OP_MAXI, OP_MAXI)               \
  EXT_ROWS(min_##S, T, PICK_MIN, I)                                \
  RED_COLS(min_##S, T, T, T, TMAX, OP_MINI, OP_MINI)

RED_INT_KERNELS(b8, uint8_t, 0, 1)
RED_INT_KERNELS(u8, uint8_t, 0, UINT8_MAX)
RED_INT_KERNELS(i8, int8_t, INT8_MIN, INT8_MAX)
RED_INT_KERNELS(i16, int16_t, INT16_MIN, INT16_MAX)
RED_INT_KERNELS(i32, int32_t, INT32_MIN, INT32_MAX)
RED_INT_KERNELS(i64, int64_t, INT64_MIN, INT64_MAX)
RED_KERNEL(sum_f32, float, float, double, 0, OP_ADD, OP_ADD)
RED_KERNEL(prod_f32, float, double, double, 1, OP_MUL, OP_MUL)
EXT_ROWS(max_f32, float, PICK_MAX, F)
RED_COLS(max_f32, float, float, float, -INFINITY, OP_MAXF, OP_MAXF)
EXT_ROWS(min_f32, float, PICK_MIN, F)
RED_COLS(min_f32, float, float, float, INFINITY, OP_MINF, OP_MINF)
RED_KERNEL(sum_f64, double, double, double, 0, OP_ADD, OP_ADD)
RED_KERNEL(prod_f64, double, double, double, 1, OP_MUL, OP_MUL)
EXT_ROWS(max_f64, double, PICK_MAX, F)
RED_COLS(max_f64, double, double, double, -INFINITY, OP_MAXF, OP_MAXF)
EXT_ROWS(min_f64, double, PICK_MIN, F)
RED_COLS(min_f64, double, double, double, INFINITY, OP_MINF, OP_MINF)

/* ---- arg kernels: first index of the max/min; a NaN beats all but an earlier NaN ---- */

#define BETTER_MAXF(v, b) ((v) > (b) || ((v) != (v) && (b) == (b)))
#define BETTER_MINF(v, b) ((v) < (b) || ((v) != (v) && (b) == (b)))
#define BETTER_MAXI(v, b) ((v) > (b))
#define BETTER_MINI(v, b) ((v) < (b))
/* at = the first i < n with MATCH(x[i], b) (at == -1 on entry), testing
 * LANES elements at a time; FIND_F looks for b, or for a NaN when b is NaN. */
#define MATCH_EQ(v, b) ((v) == (b))
#define MATCH_NAN(v, b) ((v) != (v))
#define FIRST_MATCH(x, n, b, MATCH, at)                                  \
  do {                                                                   \
    int64_t i_ = 0;                                                      \
    for (; at < 0 && (n) - i_ >= LANES; i_ += LANES) {                   \
      int hit_ = 0;                                                      \
      for (int j_ = 0; j_ < LANES; j_++) hit_ |= MATCH((x)[i_ + j_], b); \
      for (int j_ = 0; hit_ && at < 0; j_++)                             \
        if (MATCH((x)[i_ + j_], b)) at = i_ + j_;                        \
    }                                                                    \
    for (; at < 0 && i_ < (n); i_++)                                     \
      if (MATCH((x)[i_], b)) at = i_;                                    \
  } while (0)
#define FIND_F(x, n, b, at)                \
  if ((b) != (b))                          \
    FIRST_MATCH(x, n, b, MATCH_NAN, at);   \
  else                                     \
    FIRST_MATCH(x, n, b, MATCH_EQ, at)
#define FIND_I(x, n, b, at) FIRST_MATCH(x, n, b, MATCH_EQ, at)

/*
 * Arg kernels of input type T, with the same shapes as above; each also gives
 * the winning values (val, may be NULL for _rows) so that chunks can be
 * merged. _rows finds the extreme value first (as amax does), then the
 * first index holding it: two cheap passes, the second on cached data and
 * usually stopping early.
 *  _merge  takes (v2, i2 + off) where it beats (v, i): chunks in index order
 */
#define ARG_KERNEL(NAME, T, PICK, KIND, BETTER)                                                  \
  MTI_SIMD_CLONES static void NAME##_rows(const void *xv, int64_t nrows, int64_t n,             \
                                          int64_t *idx, void *valv) {                           \
    T *val = valv;                                                                              \
    for (int64_t row = 0; row < nrows; row++) {                                                 \
      const T *x = (const T *)xv + row * n;                                                     \
      T best;                                                                                   \
      ROW_EXTREME(T, x, n, PICK, KIND, best);                                                   \
      int64_t at = -1;                                                                          \
      FIND_##KIND(x, n, best, at);                                                              \
      idx[row] = at;                                                                            \
      if (val) val[row] = best;                                                                 \
    }                                                                                           \
  }                                                                                             \
  MTI_SIMD_CLONES static void NAME##_cols(const void *xv, int64_t nrows, int64_t w, int64_t ld, \
                                          int64_t *idx, void *valv) {                           \
    const T *x = xv;                                                                            \
    T best[COL_TILE];                                                                           \
    for (int64_t c = 0; c < w; c++) best[c] = x[c], idx[c] = 0;                                 \
    for (int64_t r = 1; r < nrows; r++) {                                                       \
      const T *row = x + r * ld;                                                                \
      for (int64_t c = 0; c < w; c++) {                                                         \
        T v = row[c];                                                                           \
        int take = BETTER(v, best[c]);                                                          \
        best[c] = take ? v : best[c];                                                           \
        idx[c] = take ? r : idx[c];                                                             \
      }                                                                                         \
    }                                                                                           \
    if (valv) memcpy(valv, best, sizeof(T) * (size_t)w);                                        \
  }                                                                                             \
  static void NAME##_merge(void *vv, int64_t *i, const void *v2v, const int64_t *i2, int64_t n, \
                           int64_t off) {                                                       \
    T *v = vv;                                                                                  \
    const T *v2 = v2v;                                                                          \
    for (int64_t k = 0; k < n; k++)                                                             \
      if (BETTER(v2[k], v[k])) v[k] = v2[k], i[k] = i2[k] + off;                                \
  }

#define ARG_KERNELS(S, T, KIND)                                              \
  ARG_KERNEL(argmax_##S, T, PICK_MAX, KIND, BETTER_MAX##KIND) \
  ARG_KERNEL(argmin_##S, T, PICK_MIN, KIND, BETTER_MIN##KIND)

ARG_KERNELS(u8, uint8_t, I)
ARG_KERNELS(i8, int8_t, I)
ARG_KERNELS(i16, int16_t, I)
ARG_KERNELS(i32, int32_t, I)
ARG_KERNELS(i64, int64_t, I)
ARG_KERNELS(f32, float, F)
ARG_KERNELS(f64, double, F)

/* ---- float16 and bfloat16: the float32 kernels on cache-sized pieces ----
 * The 16-bit input is widened (exactly) into a float32 buffer of ROW_CHUNK
 * elements on the stack, and the float32 kernel reduces that: whole rows
 * (a row kernel never sees rows longer than ROW_CHUNK, so the sums are the
 * float32 kernel's), or a few rows of a column tile at a time, their
 * results joined in order. No full-size float32 copy is made, and the
 * input is read once, at its own width. */

/* Rows of a column tile of width w widened per piece: whole COL_BLOCKs
 * where they fit (so the sums match the float32 kernel's), else as many as fit. */
static int64_t half_col_rows(int64_t w) {
  int64_t fit = ROW_CHUNK / w;
  return fit >= COL_BLOCK ? fit / COL_BLOCK * COL_BLOCK : fit;
}

#define HALF_KERNEL(OP, S, DT, PT)                                                             \
  static void OP##_##S##_rows(const void *xv, int64_t nrows, int64_t n, void *ov) {            \
    float buf[ROW_CHUNK];                                                                      \
    int64_t per = n ? ROW_CHUNK / n : nrows;                                                   \
    for (int64_t r = 0; r < nrows; r += per) {                                                 \
      int64_t m = nrows - r < per ? nrows - r : per;                                           \
      mti_cpu_convert_row((const uint16_t *)xv + r * n, DT, 1, buf, MT_FLOAT32, 1, m * n);     \
      OP##_f32_rows(buf, m, n, (PT *)ov + r);                                                  \
    }                                                                                          \
  }                                                                                            \
  static void OP##_##S##_cols(const void *xv, int64_t nrows, int64_t w, int64_t ld,            \
                              void *ov) {                                                      \
    float buf[ROW_CHUNK];                                                                      \
    PT part[COL_TILE];                                                                         \
    int64_t per = half_col_rows(w), r = 0;                                                     \
    do { /* once at least: nrows 0 sets out to the identity */                                 \
      int64_t m = nrows - r < per ? nrows - r : per;                                           \
      for (int64_t i = 0; i < m; i++)                                                          \
        mti_cpu_convert_row((const uint16_t *)xv + (r + i) * ld, DT, 1, buf + i * w,           \
                            MT_FLOAT32, 1, w);                                                 \
      OP##_f32_cols(buf, m, w, w, r ? (void *)part : ov);                                      \
      if (r) OP##_f32_join(ov, part, w);                                                       \
      r += m;                                                                                  \
    } while (r < nrows);                                                                       \
  }

#define HALF_KERNELS(S, DT)              \
  HALF_KERNEL(sum, S, DT, double)        \
  HALF_KERNEL(prod, S, DT, double)       \
  HALF_KERNEL(max, S, DT, float)         \
  HALF_KERNEL(min, S, DT, float)
HALF_KERNELS(f16, MT_FLOAT16)
HALF_KERNELS(bf16, MT_BFLOAT16)

/* ---- kernel tables ---- */

typedef struct red_kernel {
  void (*rows)(const void *x, int64_t nrows, int64_t n, void *out);
  void (*cols)(const void *x, int64_t nrows, int64_t w, int64_t ld, void *out);
  void (*join)(void *acc, const void *p, int64_t n);
  mt_dtype pdt; /* dtype of the results */
} red_kernel;

typedef struct arg_kernel {
  void (*rows)(const void *x, int64_t nrows, int64_t n, int64_t *idx, void *val);
  void (*cols)(const void *x, int64_t nrows, int64_t w, int64_t ld, int64_t *idx, void *val);
  void (*merge)(void *v, int64_t *i, const void *v2, const int64_t *i2, int64_t n, int64_t off);
} arg_kernel;

#define RK(NAME, PDT) {NAME##_rows, NAME##_cols, NAME##_join, PDT}
#define RK_INT(S, T) \
  {RK(sum_##S, MT_INT64), RK(prod_##S, MT_INT64), RK(max_##S, T), RK(min_##S, T)}

/* Half-precision kernels join their results with the float32 ones'. */
#define RK_HALF(S)                                                                 \
  {{sum_##S##_rows, sum_##S##_cols, sum_f32_join, MT_FLOAT64},                     \
   {prod_##S##_rows, prod_##S##_cols, prod_f32_join, MT_FLOAT64},                  \
   {max_##S##_rows, max_##S##_cols, max_f32_join, MT_FLOAT32},                     \
   {min_##S##_rows, min_##S##_cols, min_f32_join, MT_FLOAT32}}

/* Indexed by input dtype. */
static const red_kernel red_kernels[MTI_NUM_DTYPES][4] = {
    [MT_BOOL] = RK_INT(b8, MT_BOOL),
    [MT_UINT8] = RK_INT(u8, MT_UINT8),
    [MT_INT8] = RK_INT(i8, MT_INT8),
    [MT_INT16] = RK_INT(i16, MT_INT16),
    [MT_INT32] = RK_INT(i32, MT_INT32),
    [MT_INT64] = RK_INT(i64, MT_INT64),
    [MT_FLOAT16] = RK_HALF(f16),
    [MT_BFLOAT16] = RK_HALF(bf16),
    [MT_FLOAT32] = {RK(sum_f32, MT_FLOAT64), RK(prod_f32, MT_FLOAT64), RK(max_f32, MT_FLOAT32),
                    RK(min_f32, MT_FLOAT32)},
    [MT_FLOAT64] = {RK(sum_f64, MT_FLOAT64), RK(prod_f64, MT_FLOAT64), RK(max_f64, MT_FLOAT64),
                    RK(min_f64, MT_FLOAT64)},
};

#define AK(NAME) {NAME##_rows, NAME##_cols, NAME##_merge}
#define AK2(S) {AK(argmax_##S), AK(argmin_##S)}

static const arg_kernel arg_kernels[MTI_NUM_DTYPES][2] = {
    [MT_BOOL] = AK2(u8),    [MT_UINT8] = AK2(u8),     [MT_INT8] = AK2(i8),
    [MT_INT16] = AK2(i16),  [MT_INT32] = AK2(i32),    [MT_INT64] = AK2(i64),
    [MT_FLOAT32] = AK2(f32), [MT_FLOAT64] = AK2(f64),
};

/* ---- one [outer, R, inner] step on contiguous memory ---- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Rows per task: tasks of at least 16K elements are worth scheduling
 * dynamically (which keeps both cores busy when one is slowed by other load). */
static int64_t rows_per_task(int64_t n) { return n >= 16384 ? 1 : 16384 / (n ? n : 1); }

/* Rows of R <= ROW_CHUNK are reduced whole, in parallel over rows; longer
 * rows are cut into ROW_CHUNK pieces whose results are joined in order. */
static mt_status red_rows(const char *fn, const red_kernel *k, size_t xsz, const char *x,
                          int64_t outer, int64_t n, char *out) {
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
  size_t psz = mt_dtype_size(k->pdt);
  int par = outer * n >= MTI_CPU_PARALLEL_MIN;
  if (n <= ROW_CHUNK) {
    int64_t per = rows_per_task(n), ntask = cdiv(outer, per);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      if (mti_cpu_stop_raised(stop)) continue;
      int64_t o = t * per;
      k->rows(x + (size_t)(o * n) * xsz, min64(per, outer - o), n, out + (size_t)o * psz);
    }
    return MT_OK;
  }
  int64_t nch = cdiv(n, ROW_CHUNK);
  char *part = malloc((size_t)(outer * nch) * psz);
  if (!part) return mti_error_oom(fn, (size_t)(outer * nch) * psz);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
  for (int64_t q = 0; q < outer * nch; q++) {
    if (mti_cpu_stop_raised(stop)) continue;
    int64_t o = q / nch, c = (q % nch) * ROW_CHUNK;
    k->rows(x + (size_t)(o * n + c) * xsz, 1, min64(ROW_CHUNK, n - c), part + (size_t)q * psz);
  }
  for (int64_t o = 0; o < outer; o++) {
    memcpy(out + (size_t)o * psz, part + (size_t)(o * nch) * psz, psz);
    for (int64_t c = 1; c < nch; c++)
      k->join(out + (size_t)o * psz, part + (size_t)(o * nch + c) * psz, 1);
  }
  free(part);
  return MT_OK;
}

/* Rows per R-chunk of a column reduction: R is cut only when outer x tiles
 * gives too few tasks, into pieces of about COL_CHUNK elements. */
static int64_t col_chunk_rows(int64_t outer, int64_t r, int64_t inner) {
  if (outer * cdiv(inner, COL_TILE) >= COL_MIN_TASKS) return r;
  int64_t rc = COL_CHUNK / min64(inner, COL_TILE);
  rc = rc < COL_BLOCK ? COL_BLOCK : rc / COL_BLOCK * COL_BLOCK;
  return min64(rc, r);
}

/* Tasks are (outer, R-chunk, column tile), or blocks of outer indices when
 * one tile covers a whole [R, inner] slice; R-chunks after the first go to
 * a scratch buffer and are joined into out in order. */
static mt_status red_cols(const char *fn, const red_kernel *k, size_t xsz, const char *x,
                          int64_t outer, int64_t r, int64_t inner, char *out) {
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
  size_t psz = mt_dtype_size(k->pdt);
  int64_t ntile = cdiv(inner, COL_TILE), rc = col_chunk_rows(outer, r, inner);
  int64_t nrc = cdiv(r, rc);
  char *part = NULL;
  if (nrc > 1) {
    size_t bytes = (size_t)(outer * (nrc - 1) * inner) * psz;
    if (!(part = malloc(bytes))) return mti_error_oom(fn, bytes);
  }
  int par = outer * r * inner >= MTI_CPU_PARALLEL_MIN;
  int64_t per = nrc * ntile == 1 ? rows_per_task(r * inner) : 1;
  int64_t ntask = cdiv(outer, per) * nrc * ntile;
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
  for (int64_t q = 0; q < ntask; q++) {
    if (mti_cpu_stop_raised(stop)) continue;
    int64_t o0 = q / (nrc * ntile) * per, c = q / ntile % nrc, col = q % ntile * COL_TILE;
    for (int64_t o = o0; o < min64(o0 + per, outer); o++) {
      const char *src = x + (size_t)((o * r + c * rc) * inner + col) * xsz;
      char *dst = c == 0 ? out + (size_t)(o * inner + col) * psz
                         : part + (size_t)((o * (nrc - 1) + c - 1) * inner + col) * psz;
      k->cols(src, min64(rc, r - c * rc), min64(COL_TILE, inner - col), inner, dst);
    }
  }
  for (int64_t o = 0; o < outer && part; o++)
    for (int64_t c = 1; c < nrc; c++)
      k->join(out + (size_t)(o * inner) * psz,
              part + (size_t)((o * (nrc - 1) + c - 1) * inner) * psz, inner);
  free(part);
  return MT_OK;
}

/* Arg reduction of rows: long rows are cut into chunks whose (value, index)
 * pairs are merged in order. */
static mt_status arg_rows(const char *fn, const arg_kernel *k, size_t xsz, const char *x,
                          int64_t outer, int64_t n, int64_t *out) {
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
  int par = outer * n >= MTI_CPU_PARALLEL_MIN;
  if (n <= ROW_CHUNK) {
    int64_t per = rows_per_task(n), ntask = cdiv(outer, per);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
    for (int64_t t = 0; t < ntask; t++) {
      if (mti_cpu_stop_raised(stop)) continue;
      int64_t o = t * per;
      k->rows(x + (size_t)(o * n) * xsz, min64(per, outer - o), n, out + o, NULL);
    }
    return MT_OK;
  }
  int64_t nch = cdiv(n, ROW_CHUNK), np = outer * nch;
  int64_t *pidx = malloc((size_t)np * (sizeof(int64_t) + xsz));
  if (!pidx) return mti_error_oom(fn, (size_t)np * (sizeof(int64_t) + xsz));
  char *pval = (char *)(pidx + np);
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
  for (int64_t q = 0; q < np; q++) {
    if (mti_cpu_stop_raised(stop)) continue;
    int64_t o = q / nch, c = (q % nch) * ROW_CHUNK;
    k->rows(x + (size_t)(o * n + c) * xsz, 1, min64(ROW_CHUNK, n - c), pidx + q,
            pval + (size_t)q * xsz);
  }
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t c = 1; c < nch; c++)
      k->merge(pval + (size_t)(o * nch) * xsz, pidx + o * nch, pval + (size_t)(o * nch + c) * xsz,
               pidx + o * nch + c, 1, c * ROW_CHUNK);
    out[o] = pidx[o * nch];
  }
  free(pidx);
  return MT_OK;
}

/* Arg reduction along R of [outer, R, inner]: tasks as in red_cols, every
 * task keeping its (value, index) pairs, merged in R order. */
static mt_status arg_cols(const char *fn, const arg_kernel *k, size_t xsz, const char *x,
                          int64_t outer, int64_t r, int64_t inner, int64_t *out) {
  const atomic_int *stop = mti_cpu_stop_flag(); /* for the team threads */
  int64_t ntile = cdiv(inner, COL_TILE), rc = col_chunk_rows(outer, r, inner);
  int64_t nrc = cdiv(r, rc), np = outer * nrc * inner;
  int64_t *pidx = NULL;
  char *pval = NULL;
  if (nrc > 1) {
    if (!(pidx = malloc((size_t)np * (sizeof(int64_t) + xsz))))
      return mti_error_oom(fn, (size_t)np * (sizeof(int64_t) + xsz));
    pval = (char *)(pidx + np);
  }
  int par = outer * r * inner >= MTI_CPU_PARALLEL_MIN;
  int64_t per = nrc * ntile == 1 ? rows_per_task(r * inner) : 1;
  int64_t ntask = cdiv(outer, per) * nrc * ntile;
#pragma omp parallel for schedule(dynamic) if (par) num_threads(mti_cpu_threads())
  for (int64_t q = 0; q < ntask; q++) {
    if (mti_cpu_stop_raised(stop)) continue;
    int64_t o0 = q / (nrc * ntile) * per, c = q / ntile % nrc, col = q % ntile * COL_TILE;
    for (int64_t o = o0; o < min64(o0 + per, outer); o++) {
      const char *src = x + (size_t)((o * r + c * rc) * inner + col) * xsz;
      int64_t at = (o * nrc + c) * inner + col;
      k->cols(src, min64(rc, r - c * rc), min64(COL_TILE, inner - col), inner,
              pidx ? pidx + at : out + o * inner + col, pidx ? pval + (size_t)at * xsz : NULL);
    }
  }
  for (int64_t o = 0; o < outer && pidx; o++) {
    int64_t first = o * nrc * inner;
    for (int64_t c = 1; c < nrc; c++)
      k->merge(pval + (size_t)first * xsz, pidx + first, pval + (size_t)(first + c * inner) * xsz,
               pidx + first + c * inner, inner, c * rc);
    memcpy(out + o * inner, pidx + first, sizeof(int64_t) * (size_t)inner);
  }
  free(pidx);
  return MT_OK;
}

/* ---- normalised problem ---- */

typedef struct rdim {
  int64_t size, stride; /* of the input, in elements */
  int64_t ostride;      /* of out, for kept dims */
  int red;
} rdim;

typedef struct rview {
  const char *data;
  mt_dtype dtype;
  int ndim;
  rdim d[MT_MAX_DIMS];
} rview;

typedef struct rctx {
  const char *fn; /* "mt_sum", ... for messages */
  int op;       /* RED_* */
  mt_dtype sdt; /* dtype the kernels read: the input's, or float32 where it has none */
  mt_dtype pdt; /* dtype of the results */
} rctx;

/* The view of `in` without size-1 dims, with positive strides (a flipped
 * kept dim moves out's origin by *ooff and negates its out stride; the
 * reduced dim of an arg reduction is never flipped, its order matters), and
 * its dims sorted by decreasing |stride| (stable). */
static void normalize(const mti_view *in, uint32_t mask, int arg, rview *v, int64_t *ooff) {
  int64_t ostride[MT_MAX_DIMS], os = 1;
  for (int d = in->ndim - 1; d >= 0; d--) {
    ostride[d] = os;
    if (!(mask >> d & 1u)) os *= in->shape[d];
  }
  const char *data = in->data;
  size_t esz = mt_dtype_size(in->dtype);
  *ooff = 0;
  v->dtype = in->dtype;
  v->ndim = 0;
  for (int d = 0; d < in->ndim; d++) {
    if (in->shape[d] == 1) continue;
    rdim r = {in->shape[d], in->strides[d], ostride[d], (int)(mask >> d & 1u)};
    if (r.stride < 0 && !(arg && r.red)) {
      data += (r.size - 1) * r.stride * (int64_t)esz;
      r.stride = -r.stride;
      if (!r.red) {
        *ooff += (r.size - 1) * r.ostride;
        r.ostride = -r.ostride;
      }
    }
    int at = v->ndim++;
    while (at > 0 && llabs(v->d[at - 1].stride) < llabs(r.stride)) {
      v->d[at] = v->d[at - 1];
      at--;
    }
    v->d[at] = r;
  }
  v->data = data;
}

static int64_t rview_numel(const rview *v) {
  int64_t n = 1;
  for (int i = 0; i < v->ndim; i++) n *= v->d[i].size;
  return n;
}

/* Row-major in its (sorted) dim order. */
static int rview_dense(const rview *v) {
  int64_t s = 1;
  for (int i = v->ndim - 1; i >= 0; i--) {
    if (v->d[i].stride != s) return 0;
    s *= v->d[i].size;
  }
  return 1;
}

/* Runs of adjacent reduced / kept dims of a dense view, as sizes. */
static int rview_groups(const rview *v, int64_t *size, int *red) {
  int ng = 0;
  for (int i = 0; i < v->ndim; i++) {
    if (ng && red[ng - 1] == v->d[i].red) {
      size[ng - 1] *= v->d[i].size;
    } else {
      size[ng] = v->d[i].size;
      red[ng++] = v->d[i].red;
    }
  }
  return ng;
}

/* Below this many elements, an innermost reduced run goes after the
 * reduced runs outside it: summing [64, 16, 64] over dims 0 and 2 as 1024
 * rows of 64 costs a join per row, while dim 0 first is one streaming
 * column pass and leaves 16 rows. */
#define SHORT_RUN 256

/* The reduced run to do next: the innermost, unless it is short and an
 * outer one exists (arg reductions have a single run). */
static int next_run(const int64_t *size, const int *red, int ng) {
  int j = ng - 1;
  while (!red[j]) j--;
  if (size[j] >= SHORT_RUN) return j;
  for (int i = j - 1; i >= 0; i--)
    if (red[i]) return i;
  return j;
}

/* Drops run j; the kept runs around it become one. */
static void drop_run(int64_t *size, int *red, int *ng, int j) {
  int merge = j > 0 && j + 1 < *ng, from = j + 1 + merge, to = j;
  if (merge) size[j - 1] *= size[j + 1];
  for (; from < *ng; from++, to++) size[to] = size[from], red[to] = red[from];
  *ng = to;
}

/* Reduces dense x (dtype xdt, laid out as v) into res, one reduced run a
 * step (next_run's order), each step's results (in the result dtype)
 * feeding the next. */
static mt_status run_steps(const rctx *c, const rview *v, mt_dtype xdt, const char *x, char *res) {
  int64_t size[MT_MAX_DIMS];
  int red[MT_MAX_DIMS];
  int ng = rview_groups(v, size, red);
  char *owned = NULL;
  mt_status s = MT_OK;
  for (;;) {
    int j = next_run(size, red, ng), more = 0;
    for (int i = 0; i < ng; i++) more |= red[i] && i != j;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < j; i++) outer *= size[i];
    for (int i = j + 1; i < ng; i++) inner *= size[i];
    size_t xsz = mt_dtype_size(xdt);
    char *dst = res;
    if (more) {
      size_t bytes = (size_t)(outer * inner) * mt_dtype_size(c->pdt);
      if (!(dst = malloc(bytes))) {
        s = mti_error_oom(c->fn, bytes);
        break;
      }
    }
    if (c->op >= RED_ARGMAX) {
      const arg_kernel *k = &arg_kernels[xdt][c->op - RED_ARGMAX];
      s = inner == 1 ? arg_rows(c->fn, k, xsz, x, outer, size[j], (int64_t *)dst)
                     : arg_cols(c->fn, k, xsz, x, outer, size[j], inner, (int64_t *)dst);
    } else {
      const red_kernel *k = &red_kernels[xdt][c->op];
      s = inner == 1 ? red_rows(c->fn, k, xsz, x, outer, size[j], dst)
                     : red_cols(c->fn, k, xsz, x, outer, size[j], inner, dst);
    }
    free(owned);
    owned = more ? dst : NULL;
    if (s || !more || mti_cpu_stopped()) break;
    drop_run(size, red, &ng, j);
    x = dst;
    xdt = c->pdt;
  }
  if (s) free(owned);
  return s;
}

/* Converts the view into a contiguous buffer of the kernels' dtype. */
static mt_status stage(const rctx *c, const rview *v, char **buf) {
  int64_t n = rview_numel(v);
  size_t bytes = (size_t)n * mt_dtype_size(c->sdt);
  if (!(*buf = malloc(bytes ? bytes : 1))) return mti_error_oom(c->fn, bytes);
  mti_view src = {(void *)v->data, v->dtype, v->ndim, {0}, {0}};
  mti_view dst = {*buf, c->sdt, v->ndim, {0}, {0}};
  int64_t s = 1;
  for (int i = v->ndim - 1; i >= 0; i--) {
    src.shape[i] = dst.shape[i] = v->d[i].size;
    src.strides[i] = v->d[i].stride;
    dst.strides[i] = s;
    s *= v->d[i].size;
  }
  mt_status st = mti_cpu_convert(&src, &dst);
  if (st) free(*buf);
  return st;
}

/* A sub-view of v: index range [start, start + cnt) of dim k, or index
 * start alone with dim k dropped. */
static rview subview(const rview *v, int k, int64_t start, int64_t cnt, int drop) {
  rview sub = *v;
  sub.data += start * v->d[k].stride * (int64_t)mt_dtype_size(v->dtype);
  sub.d[k].size = cnt;
  if (drop) {
    memmove(&sub.d[k], &sub.d[k + 1], sizeof(rdim) * (size_t)(v->ndim - k - 1));
    sub.ndim--;
  }
  return sub;
}

/*
 * Reduces v into res (results contiguous in v's order of kept dims). Data
 * the kernels can read in place is reduced directly; otherwise it is staged,
 * in pieces no larger than STAGE_BYTES: independent pieces along the
 * outermost kept dim, or, when all dims are reduced, pieces along dim 0
 * whose results are joined in order (arg reductions of one dim are staged
 * whole).
 */
static mt_status reduce_view(const rctx *c, const rview *v, char *res) {
  if (v->dtype == c->sdt && rview_dense(v)) return run_steps(c, v, v->dtype, v->data, res);
  int64_t n = rview_numel(v);
  size_t ssz = mt_dtype_size(c->sdt), psz = mt_dtype_size(c->pdt);
  int k = 0;
  while (k < v->ndim && v->d[k].red) k++;
  int split_kept = k < v->ndim, arg = c->op >= RED_ARGMAX;
  if (n * (int64_t)ssz <= STAGE_BYTES || (!split_kept && arg)) {
    char *buf;
    mt_status s = stage(c, v, &buf);
    if (s) return s;
    rview dense = *v;
    int64_t stride = 1;
    for (int i = v->ndim - 1; i >= 0; i--) dense.d[i].stride = stride, stride *= v->d[i].size;
    s = run_steps(c, &dense, c->sdt, buf, res);
    free(buf);
    return s;
  }
  if (!split_kept) k = 0;
  int64_t slab = n / v->d[k].size, per = STAGE_BYTES / (slab * (int64_t)ssz);
  if (per < 1) per = 1;
  int64_t rstride = 1; /* results per index of dim k */
  for (int i = k + 1; i < v->ndim && split_kept; i++)
    if (!v->d[i].red) rstride *= v->d[i].size;
  union { double f; int64_t i; } partial; /* one result of any dtype */
  for (int64_t start = 0; start < v->d[k].size && !mti_cpu_stopped(); start += per) {
    rview sub = subview(v, k, start, min64(per, v->d[k].size - start), per == 1);
    char *dst = split_kept ? res + (size_t)(start * rstride) * psz : start ? (char *)&partial : res;
    mt_status s = reduce_view(c, &sub, dst);
    if (s) return s;
    if (!split_kept && start) red_kernels[c->pdt][c->op].join(res, &partial, 1);
  }
  return MT_OK;
}

/* ---- results into out ---- */

/* out[i] = v for all i (the reduction of nothing). */
static void fill_value(const mti_view *out, int64_t n, double v) {
  size_t osz = mt_dtype_size(out->dtype);
  char *o = out->data;
  mti_store_double(o, out->dtype, v);
  for (int64_t have = 1; have < n;) {
    int64_t m = min64(have, n - have);
    memcpy(o + (size_t)have * osz, o, (size_t)m * osz);
    have += m;
  }
}

/* The input without its reduced dims (kept with size 1 under keepdim):
 * a view with out's shape, for reductions over dims of size 1. */
static mti_view squeeze_reduced(const mti_view *in, uint32_t mask, int keepdim) {
  mti_view v = *in;
  v.ndim = 0;
  for (int d = 0; d < in->ndim; d++) {
    if ((mask >> d & 1u) && !keepdim) continue;
    v.shape[v.ndim] = in->shape[d];
    v.strides[v.ndim++] = in->strides[d];
  }
  return v;
}

/* res (pdt, kept dims in v's order) scaled by 1/count for a mean, then
 * converted into out through strides that restore out's dim order. */
static mt_status finish(const rview *v, mt_dtype pdt, char *res, int64_t nres, double mean_div,
                        const mti_view *out, int64_t ooff) {
  mti_view src = {res, pdt, 0, {0}, {0}};
  mti_view dst = {(char *)out->data + ooff * (int64_t)mt_dtype_size(out->dtype), out->dtype, 0,
                  {0}, {0}};
  for (int i = 0; i < v->ndim; i++) {
    if (v->d[i].red) continue;
    dst.shape[dst.ndim] = src.shape[src.ndim] = v->d[i].size;
    dst.strides[dst.ndim++] = v->d[i].ostride;
    src.ndim++;
  }
  mti_shape_contiguous_strides(src.ndim, src.shape, src.strides);
  if (mean_div > 0) {
    double *d = (double *)res;
    for (int64_t i = 0; i < nres; i++) {
      if (pdt == MT_INT64) {
        int64_t iv;
        memcpy(&iv, res + (size_t)i * 8, 8);
        d[i] = (double)iv;
      }
      d[i] /= mean_div;
    }
    src.dtype = MT_FLOAT64;
  }
  if (src.data == dst.data && src.dtype == dst.dtype) return MT_OK;
  return mti_cpu_convert(&src, &dst);
}

/* Whether out is already v's kept dims in v's order (results can go there). */
static int out_in_order(const rview *v, int64_t ooff) {
  int64_t s = 1;
  for (int i = v->ndim - 1; i >= 0; i--) {
    if (v->d[i].red) continue;
    if (v->d[i].ostride != s) return 0;
    s *= v->d[i].size;
  }
  return ooff == 0;
}

/* Normalises, reduces into out directly when out's dtype and order allow,
 * or into a scratch buffer that finish() converts. */
static mt_status reduce_into(const rctx *c, const mti_view *in, uint32_t mask, double mean_div,
                             int64_t nout, const mti_view *out) {
  rview v;
  int64_t ooff;
  normalize(in, mask, c->op >= RED_ARGMAX, &v, &ooff);
  int direct = c->pdt == out->dtype && out_in_order(&v, ooff);
  char *res = out->data;
  if (!direct) {
    size_t bytes = (size_t)nout * mt_dtype_size(c->pdt);
    if (!(res = malloc(bytes))) return mti_error_oom(c->fn, bytes);
  }
  mt_status s = reduce_view(c, &v, res);
  if (!s && (!direct || mean_div > 0)) s = finish(&v, c->pdt, res, nout, mean_div, out, ooff);
  if (!direct) free(res);
  return s;
}

static const char *op_fn(mti_op op) {
  switch (op) {
  case MTI_OP_SUM: return "mt_sum";
  case MTI_OP_MEAN: return "mt_mean";
  case MTI_OP_PROD: return "mt_prod";
  case MTI_OP_AMAX: return "mt_amax";
  case MTI_OP_AMIN: return "mt_amin";
  case MTI_OP_ARGMAX: return "mt_argmax";
  default: return "mt_argmin";
  }
}

mt_status mti_cpu_reduce(mti_op op, const mti_view *in, const mti_attrs *at, const mti_view *out) {
  uint32_t mask = at->dims_mask & (in->ndim ? (uint32_t)((1u << in->ndim) - 1u) : 0u);
  int64_t nout = 1, count = 1;
  for (int d = 0; d < in->ndim; d++) {
    if (mask >> d & 1u) count *= in->shape[d];
    else nout *= in->shape[d];
  }
  if (nout == 0) return MT_OK;
  if (count == 0) {
    if (op == MTI_OP_AMAX || op == MTI_OP_AMIN)
      return mti_error(MT_ERR_SHAPE, "%s: dims: cannot reduce an empty extent", op_fn(op));
    fill_value(out, nout, op == MTI_OP_SUM ? 0.0 : op == MTI_OP_PROD ? 1.0 : NAN);
    return MT_OK;
  }
  if (count == 1) {
    mti_view src = squeeze_reduced(in, mask, (at->flags & MTI_FLAG_KEEPDIM) != 0);
    return mti_cpu_convert(&src, out);
  }
  int rop = op == MTI_OP_PROD ? RED_PROD
            : op == MTI_OP_AMAX ? RED_MAX
            : op == MTI_OP_AMIN ? RED_MIN
                                : RED_SUM;
  mt_dtype sdt = red_kernels[in->dtype][0].rows ? in->dtype : MT_FLOAT32;
  rctx c = {op_fn(op), rop, sdt, red_kernels[sdt][rop].pdt};
  return reduce_into(&c, in, mask, op == MTI_OP_MEAN ? (double)count : 0.0, nout, out);
}

mt_status mti_cpu_argreduce(mti_op op, const mti_view *in, const mti_attrs *at,
                            const mti_view *out) {
  int64_t nout = 1;
  for (int d = 0; d < in->ndim; d++)
    if (d != at->dim) nout *= in->shape[d];
  if (in->ndim == 0 || nout == 0 || in->shape[at->dim] == 1) {
    if (in->ndim == 0 || in->shape[at->dim] == 1) memset(out->data, 0, (size_t)nout * 8);
    return MT_OK;
  }
  if (in->shape[at->dim] == 0)
    return mti_error(MT_ERR_SHAPE, "%s: dim: cannot reduce an empty extent", op_fn(op));
  mt_dtype sdt = arg_kernels[in->dtype][0].rows ? in->dtype : MT_FLOAT32;
  rctx c = {op_fn(op), op == MTI_OP_ARGMAX ? RED_ARGMAX : RED_ARGMIN, sdt, MT_INT64};
  return reduce_into(&c, in, 1u << at->dim, 0.0, nout, out);
}
