/*
 * philox.h - the Philox 4x32-10 counter-based generator and the mappings
 * from its output words to uniform and normal values.
 *
 * Header-only and usable from C and CUDA (MTI_HOSTDEV), so that every backend
 * computes mt_rand / mt_randn with the very same code. mt_rand is
 * bit-identical across devices (exact integer-to-float mappings). mt_randn
 * uses the log and sincos below, plain arithmetic plus one square root, so
 * devices that round each operation alike (no fused multiply-add contraction:
 * nvcc --fmad=false) agree bit for bit, and others within a few ulp.
 *
 * Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC 2011): a 128-bit counter and a 64-bit key give four 32-bit words.
 *
 * THE STREAM LAYOUT (every backend must follow it exactly)
 *
 *   key     = { (uint32_t)seed, (uint32_t)(seed >> 32) }
 *   counter = { (uint32_t)b, (uint32_t)(b >> 32), stream, 0 }
 *             b is the block number, stream is MTI_PHILOX_STREAM_UNIFORM (0)
 *             for mt_rand and MTI_PHILOX_STREAM_NORMAL (1) for mt_randn, so
 *             rand and randn with one seed are independent.
 *   w[0..3] = mti_philox4x32_10(counter, key)
 *
 * Element i of the row-major output (any shape: only the flat index counts)
 * comes from block b = i / E, position j = i % E, where E is the number of
 * elements a block makes:
 *
 *   rand,  float32/float16/bfloat16 (E = 4):
 *          element 4b+j = uniform_f32 / uniform_f16 / uniform_bf16 (w[j])
 *   rand,  float64 (E = 2):
 *          element 2b   = uniform_f64(w[0], w[1])
 *          element 2b+1 = uniform_f64(w[2], w[3])
 *   randn, float32/float16/bfloat16 (E = 4), Box-Muller in float32:
 *          (element 4b,   element 4b+1) = box_muller_f32(w[0], w[1])
 *          (element 4b+2, element 4b+3) = box_muller_f32(w[2], w[3])
 *          the first word of a pair gives the radius, the second the angle;
 *          the first element of a pair is the cosine one, the second the sine
 *          one; float16/bfloat16 store the float32 value rounded to nearest
 *          even.
 *   randn, float64 (E = 2), Box-Muller in float64:
 *          (element 2b, element 2b+1) = box_muller_f64(w[0], w[1], w[2], w[3])
 *          (w[0], w[1]) give the radius, (w[2], w[3]) the angle.
 *
 * The uniform mappings are exact (the value is an integer times a power of
 * two that the dtype represents without rounding) and never give 1.0.
 * A tail block past the last element is computed and its extra values dropped.
 *
 * The integer and sampling ops use streams of their own:
 *
 *   randint (E = 2), r = high - low as uint64:
 *          element 2b+j = low + ((uint64)w[2j+1] << 32 | w[2j]) % r
 *   dropout (E = 4): element 4b+j is kept when uniform_f32(w[j]) >= p
 *   multinomial, row r of R rows, C categories, n samples:
 *          with replacement: sample s of row r takes block r * n + s and
 *          u = uniform_f64(w[0], w[1]); it is the first category whose
 *          running sum of probabilities (float64, in category order)
 *          exceeds u * total, or the last category with a positive
 *          probability when rounding leaves none;
 *          without replacement: category c of row r takes block r * C + c,
 *          u = uniform_f64(w[0], w[1]) + 2^-53 in (0, 1], and the key
 *          -log(u) / p (mti_philox_log; +inf for p = 0); the samples are
 *          the n smallest keys in increasing order, ties by lower category
 *          (an exponential race: the Gumbel top-k trick).
 */
#ifndef MTI_PHILOX_H
#define MTI_PHILOX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define MTI_HOSTDEV __host__ __device__
#else
#define MTI_HOSTDEV
#endif

#define MTI_PHILOX_M0 0xD2511F53u /* round multipliers */
#define MTI_PHILOX_M1 0xCD9E8D57u
#define MTI_PHILOX_W0 0x9E3779B9u /* key schedule (Weyl) increments */
#define MTI_PHILOX_W1 0xBB67AE85u

enum {
  MTI_PHILOX_STREAM_UNIFORM = 0,
  MTI_PHILOX_STREAM_NORMAL = 1,
  MTI_PHILOX_STREAM_RANDINT = 2,     /* see "randint" below */
  MTI_PHILOX_STREAM_MULTINOMIAL = 3, /* see "multinomial" below */
  MTI_PHILOX_STREAM_DROPOUT = 4      /* see "dropout" below */
};

typedef struct mti_philox_words {
  uint32_t w[4];
} mti_philox_words;

/* The ten rounds of Philox 4x32 on counter c with key (k0, k1). */
MTI_HOSTDEV static inline mti_philox_words mti_philox4x32_10(mti_philox_words c, uint32_t k0,
                                                            uint32_t k1) {
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += MTI_PHILOX_W0;
      k1 += MTI_PHILOX_W1;
    }
    uint64_t p0 = (uint64_t)MTI_PHILOX_M0 * c.w[0];
    uint64_t p1 = (uint64_t)MTI_PHILOX_M1 * c.w[2];
    mti_philox_words n;
    n.w[0] = (uint32_t)(p1 >> 32) ^ c.w[1] ^ k0;
    n.w[1] = (uint32_t)p1;
    n.w[2] = (uint32_t)(p0 >> 32) ^ c.w[3] ^ k1;
    n.w[3] = (uint32_t)p0;
    c = n;
  }
  return c;
}

/* The four words of block b of a stream (see the layout above). */
MTI_HOSTDEV static inline mti_philox_words mti_philox_block(uint64_t seed, uint32_t stream,
                                                           uint64_t b) {
  mti_philox_words c = {{(uint32_t)b, (uint32_t)(b >> 32), stream, 0u}};
  return mti_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* ---- uniform [0, 1): the top bits of a word times a power of two. The
 * integers are converted as int32, which SIMD units do natively; every step
 * is exact, so the value is the documented one on any device ---- */

/* k * 2^-24 with k the top 24 bits: every value is a float32. */
MTI_HOSTDEV static inline float mti_philox_uniform_f32(uint32_t x) {
  return (float)(int32_t)(x >> 8) * 0x1p-24f;
}

/* k * 2^-11 with k the top 11 bits, as a float32 that float16 holds exactly
 * (the smallest non-zero value, 2^-11, is a normal float16). */
MTI_HOSTDEV static inline float mti_philox_uniform_f16(uint32_t x) {
  return (float)(int32_t)(x >> 21) * 0x1p-11f;
}

/* k * 2^-8 with k the top 8 bits, as a float32 that bfloat16 holds exactly. */
MTI_HOSTDEV static inline float mti_philox_uniform_bf16(uint32_t x) {
  return (float)(int32_t)(x >> 24) * 0x1p-8f;
}

/* k * 2^-53 with k the top 53 bits of the 64-bit word (hi << 32 | lo):
 * all of hi and the top 21 bits of lo, added without overlap. */
MTI_HOSTDEV static inline double mti_philox_uniform_f64(uint32_t lo, uint32_t hi) {
  double high = ((double)(int32_t)(hi >> 1) * 2.0 + (double)(int32_t)(hi & 1u)) * 0x1p-32;
  double low = (double)(int32_t)(lo >> 11) * 0x1p-53;
  return high + low;
}

/* ---- normal: Box-Muller, z0 = r cos(2 pi t), z1 = r sin(2 pi t) with
 * r = sqrt(-2 log u). u is uniform in (0, 1], so log never sees 0 ---- */

MTI_HOSTDEV static inline uint32_t mti_philox_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

MTI_HOSTDEV static inline float mti_philox_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* log(x) for a normal float x > 0: x = m * 2^e with m in [sqrt(1/2),
 * sqrt(2)) (subtracting the bits of sqrt(1/2) puts that range on one
 * exponent value), log(m) from the Cephes polynomial in f = m - 1, about
 * 1 ulp. Plain arithmetic, so loops over it vectorise and every device
 * computes the same. */
MTI_HOSTDEV static inline float mti_philox_logf(float x) {
  uint32_t u = mti_philox_f32_bits(x);
  int32_t e = (int32_t)((u - 0x3f3504f3u + 0x40000000u) >> 23) - 128;
  float m = mti_philox_bits_f32(u - ((uint32_t)e << 23));
  float fe = (float)e;
  float f = m - 1.0f;
  float z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  float y = p * f * z;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  return f + y + fe * 0.693359375f;
}

/* -2 log(u) for the radius, from word x: u = (k + 1) * 2^-24 in (0, 1]. */
MTI_HOSTDEV static inline float mti_philox_radius2_f32(uint32_t x) {
  float u = (float)(int32_t)((x >> 8) + 1u) * 0x1p-24f;
  return -2.0f * mti_philox_logf(u);
}

/* cos(2 pi t) and sin(2 pi t) for t = uniform_f32(x). The reduction is
 * exact: q = round(4t) is the quadrant, f = t - q/4 in [-1/8, 1/8] is a
 * multiple of 2^-24 (no rounding), and the Cephes sinf/cosf polynomials
 * take x = 2 pi f in [-pi/4, pi/4], about 1 ulp. The quadrant swaps and
 * negates the pair. */
MTI_HOSTDEV static inline void mti_philox_sincos2pi_f32(uint32_t x, float *c, float *s) {
  float t = mti_philox_uniform_f32(x);
  int32_t q = (int32_t)(4.0f * t + 0.5f); /* positive: truncation rounds */
  float a = (t - (float)q * 0.25f) * 6.28318530717958647692f;
  float z = a * a;
  float sn = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * a + a;
  float cs = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) *
                 z * z -
             0.5f * z + 1.0f;
  int32_t odd = q & 1, neg_c = (q + 1) & 2, neg_s = q & 2;
  float c0 = odd ? sn : cs, s0 = odd ? cs : sn;
  *c = neg_c ? -c0 : c0;
  *s = neg_s ? -s0 : s0;
}

/* Two independent N(0,1) float32 values from two words: wr feeds the radius,
 * wt the angle. */
MTI_HOSTDEV static inline void mti_philox_box_muller_f32(uint32_t wr, uint32_t wt, float *z0,
                                                         float *z1) {
  float r = sqrtf(mti_philox_radius2_f32(wr));
  float c, s;
  mti_philox_sincos2pi_f32(wt, &c, &s);
  *z0 = r * c;
  *z1 = r * s;
}

/* log(x) for a normal double x > 0: x = m * 2^e with m in [sqrt(1/2),
 * sqrt(2)) as for mti_philox_logf, and log(m) = 2 atanh(w) with
 * w = (m - 1) / (m + 1), as s + s^3 R(s^2) / S(s^2) for s = 2w (the Cephes
 * rational approximation, about 1 ulp). */
MTI_HOSTDEV static inline double mti_philox_log(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  int32_t e = (int32_t)((u - 0x3fe6a09e667f3bcdull + 0x4000000000000000ull) >> 52) - 1024;
  uint64_t mu = u - ((uint64_t)(int64_t)e << 52);
  double m;
  memcpy(&m, &mu, sizeof m);
  double fe = (double)e;
  double s = (m - 1.0) / (0.5 * m + 0.5);
  double z = s * s;
  double r = ((-7.89580278884799154124e-1 * z + 1.63866645699558079767e1) * z -
              6.41409952958715622951e1);
  double q = ((z - 3.56722798256324312549e1) * z + 3.12093766372244180303e2) * z -
             7.69691943550460008604e2;
  double y = s * (z * r / q);
  y = y - fe * 2.121944400546905827679e-4;
  y = y + s;
  return y + fe * 0.693359375;
}

/* -2 log(u) for the radius, from words (lo, hi): u = (k + 1) * 2^-53 in
 * (0, 1] with k the 53 bits of uniform_f64. */
MTI_HOSTDEV static inline double mti_philox_radius2_f64(uint32_t lo, uint32_t hi) {
  double u = mti_philox_uniform_f64(lo, hi) + 0x1p-53; /* exact */
  return -2.0 * mti_philox_log(u);
}

#define MTI_PHILOX_TWO_PI 6.283185307179586476925286766559

/* cos(2 pi t) and sin(2 pi t) for t = uniform_f64(lo, hi), reduced exactly as
 * in mti_philox_sincos2pi_f32, with the Cephes sin/cos polynomials. */
MTI_HOSTDEV static inline void mti_philox_sincos2pi_f64(uint32_t lo, uint32_t hi, double *c,
                                                        double *s) {
  double t = mti_philox_uniform_f64(lo, hi);
  int32_t q = (int32_t)(4.0 * t + 0.5); /* positive: truncation rounds */
  double a = (t - (double)q * 0.25) * MTI_PHILOX_TWO_PI;
  double z = a * a;
  double ps = ((((1.58962301576546568060e-10 * z - 2.50507477628578072866e-8) * z +
                 2.75573136213857245213e-6) * z - 1.98412698295895385996e-4) * z +
               8.33333333332211858878e-3) * z - 1.66666666666666307295e-1;
  double pc = ((((-1.13585365213876817300e-11 * z + 2.08757008419747316778e-9) * z -
                 2.75573141792967388112e-7) * z + 2.48015872888517045348e-5) * z -
               1.38888888888730564116e-3) * z + 4.16666666666665929218e-2;
  double sn = a + a * z * ps;
  double cs = 1.0 - 0.5 * z + z * z * pc;
  int32_t odd = q & 1, neg_c = (q + 1) & 2, neg_s = q & 2;
  double c0 = odd ? sn : cs, s0 = odd ? cs : sn;
  *c = neg_c ? -c0 : c0;
  *s = neg_s ? -s0 : s0;
}

/* Two independent N(0,1) float64 values from four words: (r_lo, r_hi) feed
 * the radius, (t_lo, t_hi) the angle. */
MTI_HOSTDEV static inline void mti_philox_box_muller_f64(uint32_t r_lo, uint32_t r_hi,
                                                         uint32_t t_lo, uint32_t t_hi,
                                                         double *z0, double *z1) {
  double r = sqrt(mti_philox_radius2_f64(r_lo, r_hi));
  double c, s;
  mti_philox_sincos2pi_f64(t_lo, t_hi, &c, &s);
  *z0 = r * c;
  *z1 = r * s;
}

#endif
