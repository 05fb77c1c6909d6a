/*
 * vmath.h - float32 math that GCC vectorises.
 *
 * libm's expf/logf/tanhf are opaque calls, so a loop over them stays scalar
 * (the vector variants in libmvec need -ffast-math, which breaks NaN rules).
 * The functions here are branch-free: special cases are handled by selects,
 * the exponent by integer bit arithmetic, so a loop that calls them turns into
 * SIMD code. Each is within about 2 ulp of the correctly rounded result and
 * gets inf, 0, -inf and NaN right. No FMA is assumed (the build is ISO C,
 * which does not contract a*b+c), so the range reductions split constants
 * into an exact high part and a small correction (Cody-Waite).
 */
#ifndef MTI_CPU_VMATH_H
#define MTI_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t mti_vbits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline float mti_vfloat(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* c ? a : b as a bit blend. A plain ?: lets GCC move the arithmetic of the
 * chosen arm under a branch (it may trap, so it is not speculated back) or
 * thread a clamped constant through the rest of the function; either way
 * the loop no longer vectorises. Both arms are computed. */
static inline float mti_vsel(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)(c != 0);
  return mti_vfloat((mti_vbits(a) & m) | (mti_vbits(b) & ~m));
}

/* The same for double. */
static inline double mti_vseld(int c, double a, double b) {
  uint64_t ua, ub, m = 0u - (uint64_t)(c != 0);
  memcpy(&ua, &a, sizeof ua);
  memcpy(&ub, &b, sizeof ub);
  ua = (ua & m) | (ub & ~m);
  memcpy(&a, &ua, sizeof a);
  return a;
}

/* e^x. x is reduced to r = x - n*ln2 with |r| <= ln2/2 and n = round(x/ln2)
 * (the 1.5*2^23 trick rounds without a conversion instruction); e^r comes
 * from a degree-7 polynomial (Cephes), and 2^n is applied as two normal
 * factors so that results down in the subnormal range round only once.
 * Clamping x to [-104, 89] makes overflow give inf and underflow give 0. */
static inline float mti_vexpf(float x) {
  const float shifter = 0x1.8p23f;
  float xc = mti_vsel(x < -104.0f, -104.0f, x); /* NaN passes both clamps */
  xc = mti_vsel(xc > 89.0f, 89.0f, xc);
  float t = xc * 1.44269504088896341f + shifter;
  float n = t - shifter;
  int32_t ni = (int32_t)(mti_vbits(t) - mti_vbits(shifter));
  float r = xc - n * 0.693359375f; /* exact: the constant has 9 significant bits */
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  int32_t n1 = ni / 2, n2 = ni - n1; /* both in [-75, 64]: normal scale factors */
  float s1 = mti_vfloat((uint32_t)(n1 + 127) << 23);
  float s2 = mti_vfloat((uint32_t)(n2 + 127) << 23);
  return y * s1 * s2;
}

/* Natural logarithm. x = m * 2^e with m in [sqrt(1/2), sqrt(2)); log(m)
 * from a polynomial in f = m - 1 (Cephes). Subnormals are scaled by 2^25
 * first; x < 0 gives NaN, 0 gives -inf, inf and NaN give themselves. */
static inline float mti_vlogf(float x) {
  int tiny = x < 0x1p-126f;
  float xs = mti_vsel(tiny, x * 0x1p25f, x);
  uint32_t u = mti_vbits(xs);
  /* e such that m = x / 2^e lies in [sqrt(1/2), sqrt(2)): subtracting the
   * bits of sqrt(1/2) moves that range onto one exponent value; the added
   * 128 << 23 keeps the shift on a non-negative number. */
  int32_t e = (int32_t)((u - 0x3f3504f3u + 0x40000000u) >> 23) - 128;
  float m = mti_vfloat(u - ((uint32_t)e << 23));
  float fe = (float)(e - (int32_t)(25u & (0u - (uint32_t)tiny)));
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
  float r = f + y + fe * 0.693359375f;
  r = mti_vsel(x == 0.0f, -(float)INFINITY, r);
  r = mti_vsel(x == (float)INFINITY, x, r);
  return mti_vsel(!(x >= 0.0f), (float)NAN, r); /* x < 0 or NaN */
}

/* 1 / (1 + e^-x), written with e = e^-|x| (which cannot overflow) as
 * 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, so the left tail keeps
 * its relative precision down to the subnormals. */
static inline float mti_vsigmoidf(float x) {
  float e = mti_vexpf(mti_vsel(x < 0.0f, x, -x));
  return mti_vsel(x < 0.0f, e, 1.0f) / (1.0f + e);
}

/* x * sigmoid(x). */
static inline float mti_vsiluf(float x) { return x * mti_vsigmoidf(x); }

/* tanh: an odd polynomial below |x| = 0.625 (Cephes), where the exp form
 * would cancel, and sign(x) * (1 - 2 / (e^2|x| + 1)) above it. */
static inline float mti_vtanhf(float x) {
  float a = mti_vfloat(mti_vbits(x) & 0x7fffffffu);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (mti_vexpf(2.0f * a) + 1.0f);
  big = mti_vsel(x < 0.0f, -big, big);
  return mti_vsel(a < 0.625f, small, big);
}

/* erfc(z) for z >= 0 given z and z^2 = sq_hi + sq_lo, where sq_hi is exact
 * (Numerical Recipes' erfcc, relative error < 1.2e-7): with t = 1/(1 + z/2),
 * erfc(z) = t * exp(-z^2 + P(t)). The large part of the exponent is passed
 * in exactly because any rounding of it would scale the result by e^error. */
static inline float mti_verfcf_split(float z, float sq_hi, float sq_lo) {
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * mti_vexpf(-sq_hi) * mti_vexpf(p - sq_lo);
}

/* Exact gelu, x * Phi(x) with Phi(x) = erfc(|x| / sqrt 2) / 2 on the left
 * and 1 - erfc(|x| / sqrt 2) / 2 on the right, so that the left tail keeps
 * its relative precision (1 + erf(x) would cancel there); near 0 a Taylor
 * series of erf is more exact. z^2 = x^2 / 2 is formed from x, whose 12-bit
 * head squares exactly, not from the rounded z. |x| is clamped at 22, past
 * which erfc underflows (this keeps inf * 0 out). */
static inline float mti_vgeluf(float x) {
  float a = mti_vfloat(mti_vbits(x) & 0x7fffffffu);
  a = mti_vsel(a > 22.0f, 22.0f, a);
  float hi = mti_vfloat(mti_vbits(a) & 0xfffff000u);
  float sq_hi = 0.5f * (hi * hi);
  float sq_lo = 0.5f * ((a - hi) * (a + hi));
  float z = a * 0.70710678118654752f;
  float c = 0.5f * mti_verfcf_split(z, sq_hi, sq_lo);
  float phi = mti_vsel(x < 0.0f, c, 1.0f - c);
  float z2 = sq_hi + sq_lo;
  float q = -1.0f / 9360.0f;
  q = q * z2 + 1.0f / 1320.0f;
  q = q * z2 - 1.0f / 216.0f;
  q = q * z2 + 1.0f / 42.0f;
  q = q * z2 - 1.0f / 10.0f;
  q = q * z2 + 1.0f / 3.0f;
  q = q * z2 - 1.0f;
  float half_erf = -0.56418958354775629f * z * q; /* erf(z) / 2 */
  float phi_small = mti_vsel(x < 0.0f, 0.5f - half_erf, 0.5f + half_erf);
  return x * mti_vsel(a < 0.7f, phi_small, phi);
}

static inline uint64_t mti_vbitsd(double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static inline double mti_vdouble(uint64_t u) {
  double f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* sqrt, correctly rounded like sqrtf (which does not vectorise: it may set
 * errno). In double: 1/sqrt(x) from a bit-trick estimate and four Newton
 * steps, s = x/sqrt(x), one residual correction, so s is within about an
 * ulp of double; a float's square root is never that close to a midpoint
 * between two floats (x = m^2 would need an odd square of 50 bits), so
 * rounding s to float gives the correctly rounded result (checked for all
 * 2^32 inputs). x < 0 gives NaN; -0, inf and NaN give themselves. */
static inline float mti_vsqrtf(float x) {
  double d = (double)x;
  double y = mti_vdouble(0x5fe6eb50c7b537a9u - (mti_vbitsd(d) >> 1));
  for (int k = 0; k < 4; k++) y = y * (1.5 - 0.5 * d * y * y);
  double s = d * y;
  s = s + 0.5 * y * (d - s * s);
  float r = (float)s;
  r = mti_vsel(x == 0.0f || x == (float)INFINITY, x, r);
  return mti_vsel(!(x >= 0.0f), (float)NAN, r); /* x < 0 or NaN */
}

/* Arguments up to this magnitude get the fast sin/cos below; callers use
 * libm beyond it. */
#define MTI_VTRIG_MAX 0x1p20f

/* sin(x) for quadrant 0, cos(x) for quadrant 1, ... of a float x with
 * |x| <= MTI_VTRIG_MAX, in double: x = j * pi/2 + r with j = round(x * 2/pi)
 * (pi/2 split in a 33-bit head, so j * head is exact, and a tail), then
 * Taylor polynomials of sin and cos on |r| <= pi/4 (error below 1e-9), and
 * the quadrant (j + quadrant) mod 4 picks +-sin(r) or +-cos(r). Within one
 * ulp of float. inf and NaN give NaN. */
static inline float mti_vsincosf(float x, uint64_t quadrant) {
  const double shifter = 0x1.8p52;
  double d = (double)x;
  double t = d * 0.63661977236758134308 + shifter;
  double j = t - shifter;
  uint64_t q = mti_vbitsd(t) + quadrant;
  double r = (d - j * 1.57079632673412561417e+00) - j * 6.07710050650619224932e-11;
  double z = r * r;
  double s = -1.0 / 39916800;
  s = s * z + 1.0 / 362880;
  s = s * z - 1.0 / 5040;
  s = s * z + 1.0 / 120;
  s = s * z - 1.0 / 6;
  s = r + r * z * s;
  double c = -1.0 / 3628800;
  c = c * z + 1.0 / 40320;
  c = c * z - 1.0 / 720;
  c = c * z + 1.0 / 24;
  c = c * z - 0.5;
  c = 1.0 + z * c;
  double v = mti_vseld((int)(q & 1u), c, s);
  return (float)mti_vdouble(mti_vbitsd(v) ^ ((q & 2u) << 62));
}

static inline float mti_vsinf(float x) { return mti_vsincosf(x, 0); }
static inline float mti_vcosf(float x) { return mti_vsincosf(x, 1); }

#endif
