/*
 * ref.c - independent reference semantics for the tests (see ref.h).
 */
#include "ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ dtype facts */

size_t ref_size(mt_dtype d) {
  switch (d) {
  case MT_BOOL: case MT_UINT8: case MT_INT8: return 1;
  case MT_INT16: case MT_FLOAT16: case MT_BFLOAT16: return 2;
  case MT_INT32: case MT_FLOAT32: return 4;
  case MT_INT64: case MT_FLOAT64: return 8;
  }
  return 0;
}

int ref_is_float(mt_dtype d) {
  return d == MT_FLOAT16 || d == MT_BFLOAT16 || d == MT_FLOAT32 || d == MT_FLOAT64;
}

int ref_is_int(mt_dtype d) {
  return d == MT_UINT8 || d == MT_INT8 || d == MT_INT16 || d == MT_INT32 || d == MT_INT64;
}

/* 0 bool, 1 integer, 2 floating */
static int category(mt_dtype d) { return d == MT_BOOL ? 0 : ref_is_int(d) ? 1 : 2; }

mt_dtype ref_promote(mt_dtype a, mt_dtype b) {
  if (a == b) return a;
  if (category(a) != category(b)) return category(a) > category(b) ? a : b;
  if (category(a) == 1) {
    /* uint8 is the one unsigned integer: it fits in any wider signed type. */
    if (a == MT_UINT8 || b == MT_UINT8) {
      mt_dtype s = a == MT_UINT8 ? b : a;
      return s == MT_INT8 ? MT_INT16 : s;
    }
    return ref_size(a) > ref_size(b) ? a : b;
  }
  /* two different floats */
  if ((a == MT_FLOAT16 && b == MT_BFLOAT16) || (a == MT_BFLOAT16 && b == MT_FLOAT16))
    return MT_FLOAT32;
  return ref_size(a) > ref_size(b) ? a : b;
}

/* ---------------------------------------------------------- small floats */

/* A binary float with exp_bits exponent bits and man_bits fraction bits. */
typedef struct minifloat {
  int exp_bits, man_bits;
} minifloat;

static const minifloat F16 = {5, 10}, BF16 = {8, 7};

static double mf_decode(minifloat f, uint16_t h) {
  int bias = (1 << (f.exp_bits - 1)) - 1;
  unsigned exp_all = (1u << f.exp_bits) - 1u;
  int negative = (h >> (f.exp_bits + f.man_bits)) & 1;
  unsigned e = (h >> f.man_bits) & exp_all;
  unsigned m = h & ((1u << f.man_bits) - 1u);
  double v;
  if (e == exp_all) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp((double)m, 1 - bias - f.man_bits);
  else v = ldexp(1.0 + ldexp((double)m, -f.man_bits), (int)e - bias);
  return negative ? -v : v;
}

static uint16_t mf_encode(minifloat f, double x) {
  int bias = (1 << (f.exp_bits - 1)) - 1, emin = 1 - bias, emax = bias;
  unsigned exp_all = (1u << f.exp_bits) - 1u;
  unsigned sign = signbit(x) ? 1u << (f.exp_bits + f.man_bits) : 0u;
  unsigned inf = sign | (exp_all << f.man_bits);
  if (isnan(x)) return (uint16_t)(inf | (1u << (f.man_bits - 1)));
  double a = fabs(x);
  if (isinf(a)) return (uint16_t)inf;
  if (a < ldexp(1.0, emin)) {
    /* Subnormal: count quanta of 2^(emin - man_bits); rounding up to the
     * smallest normal carries into the exponent field by itself. */
    double q = nearbyint(ldexp(a, f.man_bits - emin));
    return (uint16_t)(sign | (unsigned)q);
  }
  int e;
  frexp(a, &e);
  int exponent = e - 1; /* a = 1.xxx * 2^exponent */
  double q = nearbyint(ldexp(a, f.man_bits - exponent));
  if (q >= ldexp(1.0, f.man_bits + 1)) {
    q = ldexp(1.0, f.man_bits);
    exponent++;
  }
  if (exponent > emax) return (uint16_t)inf;
  unsigned frac = (unsigned)(q - ldexp(1.0, f.man_bits));
  return (uint16_t)(sign | ((unsigned)(exponent + bias) << f.man_bits) | frac);
}

double ref_f16_decode(uint16_t h) { return mf_decode(F16, h); }
uint16_t ref_f16_encode(double x) { return mf_encode(F16, x); }
double ref_bf16_decode(uint16_t h) { return mf_decode(BF16, h); }
uint16_t ref_bf16_encode(double x) { return mf_encode(BF16, x); }

/* ------------------------------------------------------------ conversions */

static double to_f32(double v) {
  /* Beyond FLT_MAX plus half an ulp rounds to infinity. */
  if (fabs(v) >= 0x1.ffffffp+127) return v > 0 ? INFINITY : -INFINITY;
  return (double)(float)v;
}

static void int_range(mt_dtype d, double *lo, double *hi) {
  switch (d) {
  case MT_UINT8: *lo = 0; *hi = 255; break;
  case MT_INT8: *lo = -128; *hi = 127; break;
  case MT_INT16: *lo = -32768; *hi = 32767; break;
  case MT_INT32: *lo = -2147483648.0; *hi = 2147483647.0; break;
  default: *lo = -0x1p63; *hi = 0x1p63; break; /* int64: upper bound exclusive */
  }
}

/* Float to integer with the cast rules, as an int64 (exact). */
static int64_t float_to_int(double v, mt_dtype d) {
  if (isnan(v)) return 0;
  double lo, hi;
  int_range(d, &lo, &hi);
  double t = trunc(v);
  if (d == MT_INT64) {
    if (t >= hi) return INT64_MAX;
    if (t <= lo) return INT64_MIN;
    return (int64_t)t;
  }
  if (t > hi) t = hi;
  if (t < lo) t = lo;
  return (int64_t)t;
}

double ref_round_to(double v, mt_dtype d) {
  switch (d) {
  case MT_BOOL: return v != 0 ? 1.0 : 0.0;
  case MT_FLOAT16: return ref_f16_decode(ref_f16_encode(v));
  case MT_BFLOAT16: return ref_bf16_decode(ref_bf16_encode(v));
  case MT_FLOAT32: return to_f32(v);
  case MT_FLOAT64: return v;
  default: return (double)float_to_int(v, d);
  }
}

int64_t ref_wrap(int64_t v, mt_dtype d) {
  uint64_t u = (uint64_t)v;
  switch (d) {
  case MT_BOOL: return v != 0;
  case MT_UINT8: return (int64_t)(u & 0xffu);
  case MT_INT8: return (int64_t)((u & 0xffu) ^ 0x80u) - 0x80;
  case MT_INT16: return (int64_t)((u & 0xffffu) ^ 0x8000u) - 0x8000;
  case MT_INT32: return (int64_t)((u & 0xffffffffu) ^ 0x80000000u) - 0x80000000ll;
  default: return v;
  }
}

int64_t ref_load_i64(const void *p, mt_dtype d) {
  switch (d) {
  case MT_BOOL: return *(const uint8_t *)p != 0;
  case MT_UINT8: return *(const uint8_t *)p;
  case MT_INT8: return *(const int8_t *)p;
  case MT_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
  case MT_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
  case MT_INT64: { int64_t v; memcpy(&v, p, 8); return v; }
  default: return float_to_int(ref_load(p, d), MT_INT64);
  }
}

double ref_load(const void *p, mt_dtype d) {
  uint16_t h;
  switch (d) {
  case MT_FLOAT16: memcpy(&h, p, 2); return ref_f16_decode(h);
  case MT_BFLOAT16: memcpy(&h, p, 2); return ref_bf16_decode(h);
  case MT_FLOAT32: { float f; memcpy(&f, p, 4); return f; }
  case MT_FLOAT64: { double f; memcpy(&f, p, 8); return f; }
  default: return (double)ref_load_i64(p, d);
  }
}

static void store_int(void *p, mt_dtype d, int64_t v) {
  switch (d) {
  case MT_BOOL: *(uint8_t *)p = v != 0; break;
  case MT_UINT8: *(uint8_t *)p = (uint8_t)ref_wrap(v, d); break;
  case MT_INT8: *(int8_t *)p = (int8_t)ref_wrap(v, d); break;
  case MT_INT16: { int16_t x = (int16_t)ref_wrap(v, d); memcpy(p, &x, 2); break; }
  case MT_INT32: { int32_t x = (int32_t)ref_wrap(v, d); memcpy(p, &x, 4); break; }
  default: memcpy(p, &v, 8); break;
  }
}

void ref_store(void *p, mt_dtype d, double v) {
  uint16_t h;
  switch (d) {
  case MT_BOOL: *(uint8_t *)p = v != 0; break;
  case MT_FLOAT16: h = ref_f16_encode(v); memcpy(p, &h, 2); break;
  case MT_BFLOAT16: h = ref_bf16_encode(v); memcpy(p, &h, 2); break;
  case MT_FLOAT32: { float f = (float)to_f32(v); memcpy(p, &f, 4); break; }
  case MT_FLOAT64: memcpy(p, &v, 8); break;
  default: store_int(p, d, float_to_int(v, d)); break;
  }
}

void ref_store_i64(void *p, mt_dtype d, int64_t v) {
  switch (d) {
  case MT_FLOAT32: { float f = (float)v; memcpy(p, &f, 4); break; }
  case MT_FLOAT64: case MT_FLOAT16: case MT_BFLOAT16: ref_store(p, d, (double)v); break;
  default: store_int(p, d, v); break;
  }
}

void ref_convert(const void *src, mt_dtype sd, void *dst, mt_dtype dd) {
  if (ref_is_float(sd)) ref_store(dst, dd, ref_load(src, sd));
  else ref_store_i64(dst, dd, ref_load_i64(src, sd));
}

double *ref_read(const mt_tensor *t) {
  int64_t n = mt_numel(t);
  mt_dtype d = mt_tensor_dtype(t);
  size_t es = ref_size(d);
  unsigned char *raw = malloc((size_t)(n ? n : 1) * es);
  double *out = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!raw || !out || mt_to_host(t, raw, (size_t)n * es) != MT_OK) {
    free(raw);
    free(out);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) out[i] = ref_load(raw + (size_t)i * es, d);
  free(raw);
  return out;
}

/* ------------------------------------------------------------------ shapes */

int64_t ref_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

int ref_broadcast(int andim, const int64_t *ashape, int bndim, const int64_t *bshape, int *ondim,
                  int64_t *oshape) {
  int n = andim > bndim ? andim : bndim;
  int64_t tmp[16];
  for (int i = 0; i < n; i++) {
    int ai = andim - n + i, bi = bndim - n + i;
    int64_t a = ai >= 0 ? ashape[ai] : 1, b = bi >= 0 ? bshape[bi] : 1;
    if (a != b && a != 1 && b != 1) return 0;
    tmp[i] = a == 1 ? b : a;
  }
  for (int i = 0; i < n; i++) oshape[i] = tmp[i];
  *ondim = n;
  return 1;
}

void ref_unravel(int64_t flat, int ndim, const int64_t *shape, int64_t *idx) {
  for (int i = ndim - 1; i >= 0; i--) {
    idx[i] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
}

int64_t ref_bcast_offset(const int64_t *idx, int ondim, int indim, const int64_t *inshape) {
  int64_t off = 0;
  for (int i = 0; i < indim; i++) {
    int64_t k = inshape[i] == 1 ? 0 : idx[ondim - indim + i];
    off = off * inshape[i] + k;
  }
  return off;
}

/* ------------------------------------------------------------------ scalars */

int64_t ref_int_pow(int64_t base, int64_t exp, mt_dtype d) {
  if (exp < 0) {
    if (base == 1) return 1;
    if (base == -1) return (exp % 2) ? ref_wrap(-1, d) : 1;
    return 0;
  }
  /* square and multiply, modulo 2^64 like the wrapped dtypes */
  uint64_t r = 1, b = (uint64_t)base;
  for (uint64_t e = (uint64_t)exp; e; e >>= 1, b *= b)
    if (e & 1u) r *= b;
  return ref_wrap((int64_t)r, d);
}

static double nan_max(double x, double y, int is_max) {
  if (isnan(x) || isnan(y)) return NAN;
  return is_max ? (x > y ? x : y) : (x < y ? x : y);
}

double ref_binary(ref_binop op, double x, double y, mt_dtype p) {
  switch (op) {
  case REF_EQ: return x == y;
  case REF_NE: return x != y;
  case REF_LT: return x < y;
  case REF_LE: return x <= y;
  case REF_GT: return x > y;
  case REF_GE: return x >= y;
  case REF_AND: return x != 0 && y != 0;
  case REF_OR: return x != 0 || y != 0;
  case REF_DIV: return x / y;
  default: break;
  }
  if (p == MT_BOOL) {
    switch (op) {
    case REF_ADD: case REF_MAX: return x != 0 || y != 0;
    case REF_MUL: case REF_MIN: return x != 0 && y != 0;
    default: return NAN; /* sub/pow: refused */
    }
  }
  if (ref_is_int(p)) {
    uint64_t a = (uint64_t)(int64_t)x, b = (uint64_t)(int64_t)y;
    switch (op) {
    case REF_ADD: return (double)ref_wrap((int64_t)(a + b), p);
    case REF_SUB: return (double)ref_wrap((int64_t)(a - b), p);
    case REF_MUL: return (double)ref_wrap((int64_t)(a * b), p);
    case REF_POW: return (double)ref_int_pow((int64_t)x, (int64_t)y, p);
    case REF_MAX: return x > y ? x : y;
    case REF_MIN: return x < y ? x : y;
    default: return NAN;
    }
  }
  switch (op) {
  case REF_ADD: return x + y;
  case REF_SUB: return x - y;
  case REF_MUL: return x * y;
  case REF_POW: return pow(x, y);
  case REF_MAX: return nan_max(x, y, 1);
  case REF_MIN: return nan_max(x, y, 0);
  default: return NAN;
  }
}

mt_dtype ref_binary_dtype(ref_binop op, mt_dtype a, mt_dtype b) {
  mt_dtype p = ref_promote(a, b);
  if (op >= REF_EQ) return MT_BOOL;
  if (op == REF_DIV && !ref_is_float(p)) return MT_FLOAT32;
  return p;
}

static int unop_is_float(ref_unop op) {
  switch (op) {
  case REF_EXP: case REF_LOG: case REF_SQRT: case REF_RSQRT: case REF_SIN: case REF_COS:
  case REF_TANH: case REF_SIGMOID: case REF_GELU: case REF_SILU: case REF_RECIPROCAL: return 1;
  default: return 0;
  }
}

mt_dtype ref_unary_dtype(ref_unop op, mt_dtype d) {
  if (op == REF_NOT) return MT_BOOL;
  if (unop_is_float(op) && !ref_is_float(d)) return MT_FLOAT32;
  return d;
}

double ref_unary(ref_unop op, double x, mt_dtype d) {
  int integral = !ref_is_float(d);
  switch (op) {
  case REF_NEG: return integral ? (double)ref_wrap((int64_t)(0u - (uint64_t)(int64_t)x), d) : -x;
  case REF_ABS:
    if (integral) return (double)ref_wrap(x < 0 ? (int64_t)(0u - (uint64_t)(int64_t)x) : (int64_t)x, d);
    return fabs(x);
  case REF_EXP: return exp(x);
  case REF_LOG: return log(x);
  case REF_SQRT: return sqrt(x);
  case REF_RSQRT: return 1.0 / sqrt(x);
  case REF_SIN: return sin(x);
  case REF_COS: return cos(x);
  case REF_TANH: return tanh(x);
  case REF_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case REF_RELU: return isnan(x) ? x : x > 0 ? x : 0.0;
  case REF_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
  case REF_SILU: return x / (1.0 + exp(-x));
  case REF_FLOOR: return floor(x);
  case REF_CEIL: return ceil(x);
  case REF_ROUND: return nearbyint(x);
  case REF_SIGN: return isnan(x) ? x : x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
  case REF_RECIPROCAL: return 1.0 / x;
  case REF_NOT: return x == 0 ? 1.0 : 0.0;
  default: return NAN;
  }
}

/* ------------------------------------------------------------- reductions */

void ref_reduce(ref_redop op, const double *in, int ndim, const int64_t *shape, unsigned mask,
                double *out) {
  int64_t kept_shape[16], idx[16];
  int kept = 0;
  int64_t count = 1;
  for (int d = 0; d < ndim; d++) {
    if (mask >> d & 1u) count *= shape[d];
    else kept_shape[kept++] = shape[d];
  }
  int64_t nout = ref_numel(kept, kept_shape), nin = ref_numel(ndim, shape);
  double init = op == REF_PROD ? 1.0 : op == REF_AMAX ? -INFINITY : op == REF_AMIN ? INFINITY : 0.0;
  for (int64_t o = 0; o < nout; o++) out[o] = init;
  for (int64_t i = 0; i < nin; i++) {
    ref_unravel(i, ndim, shape, idx);
    int64_t o = 0;
    for (int d = 0; d < ndim; d++)
      if (!(mask >> d & 1u)) o = o * shape[d] + idx[d];
    double x = in[i];
    switch (op) {
    case REF_SUM: case REF_MEAN: out[o] += x; break;
    case REF_PROD: out[o] *= x; break;
    case REF_AMAX: out[o] = nan_max(out[o], x, 1); break;
    case REF_AMIN: out[o] = nan_max(out[o], x, 0); break;
    }
  }
  if (op == REF_MEAN)
    for (int64_t o = 0; o < nout; o++) out[o] = count ? out[o] / (double)count : NAN;
}

/* Splits shape around dim into outer * n * inner. */
static void split_dim(int ndim, const int64_t *shape, int dim, int64_t *outer, int64_t *n,
                      int64_t *inner) {
  *outer = ref_numel(dim, shape);
  *n = ndim ? shape[dim] : 1;
  *inner = ndim ? ref_numel(ndim - dim - 1, shape + dim + 1) : 1;
}

void ref_argreduce(int is_max, const double *in, int ndim, const int64_t *shape, int dim,
                   double *out) {
  int64_t outer, n, inner;
  split_dim(ndim, shape, dim, &outer, &n, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const double *row = in + o * n * inner + j;
      int64_t best = 0;
      for (int64_t k = 1; k < n; k++) {
        double x = row[k * inner], b = row[best * inner];
        if (isnan(b)) break;
        if (isnan(x) || (is_max ? x > b : x < b)) best = k;
      }
      out[o * inner + j] = (double)best;
    }
}

void ref_softmax(int log_form, const double *in, int ndim, const int64_t *shape, int dim,
                 double *out) {
  int64_t outer, n, inner;
  split_dim(ndim, shape, dim, &outer, &n, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      const double *row = in + o * n * inner + j;
      double *orow = out + o * n * inner + j;
      double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < n; k++) m = row[k * inner] > m ? row[k * inner] : m;
      for (int64_t k = 0; k < n; k++) s += exp(row[k * inner] - m);
      for (int64_t k = 0; k < n; k++)
        orow[k * inner] = log_form ? row[k * inner] - m - log(s) : exp(row[k * inner] - m) / s;
    }
}

void ref_layer_norm(const double *in, int ndim, const int64_t *shape, const double *weight,
                    const double *bias, double eps, double *out) {
  int64_t n = shape[ndim - 1], rows = ref_numel(ndim - 1, shape);
  for (int64_t r = 0; r < rows; r++) {
    const double *x = in + r * n;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < n; k++) mean += x[k];
    mean /= (double)n;
    for (int64_t k = 0; k < n; k++) var += (x[k] - mean) * (x[k] - mean);
    var /= (double)n;
    for (int64_t k = 0; k < n; k++) {
      double y = (x[k] - mean) / sqrt(var + eps);
      if (weight) y *= weight[k];
      if (bias) y += bias[k];
      out[r * n + k] = y;
    }
  }
}

int ref_matmul(const double *a, int andim, const int64_t *ashape, const double *b, int bndim,
               const int64_t *bshape, double *out, int *ondim, int64_t *oshape) {
  if (andim < 1 || bndim < 1) return 0;
  int64_t m = andim >= 2 ? ashape[andim - 2] : 1, k = ashape[andim - 1];
  int64_t kb = bndim >= 2 ? bshape[bndim - 2] : bshape[0], n = bndim >= 2 ? bshape[bndim - 1] : 1;
  if (k != kb) return 0;
  int abatch = andim > 2 ? andim - 2 : 0, bbatch = bndim > 2 ? bndim - 2 : 0, nb;
  int64_t batch[16];
  if (!ref_broadcast(abatch, ashape, bbatch, bshape, &nb, batch)) return 0;
  *ondim = nb;
  for (int i = 0; i < nb; i++) oshape[i] = batch[i];
  if (andim >= 2) oshape[(*ondim)++] = m;
  if (bndim >= 2) oshape[(*ondim)++] = n;
  if (!out) return 1;
  int64_t nbatch = ref_numel(nb, batch), idx[16];
  for (int64_t t = 0; t < nbatch; t++) {
    ref_unravel(t, nb, batch, idx);
    const double *pa = a + ref_bcast_offset(idx, nb, abatch, ashape) * m * k;
    const double *pb = b + ref_bcast_offset(idx, nb, bbatch, bshape) * k * n;
    double *po = out + t * m * n;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t q = 0; q < k; q++) s += pa[i * k + q] * pb[q * n + j];
        po[i * n + j] = s;
      }
  }
  return 1;
}

/* ---- normalisations and losses ---- */

void ref_rms_norm(const double *x, int64_t rows, int64_t n, const double *w, double eps,
                  double *out) {
  for (int64_t r = 0; r < rows; r++) {
    const double *xr = x + r * n;
    double sq = 0;
    for (int64_t i = 0; i < n; i++) sq += xr[i] * xr[i];
    double f = 1.0 / sqrt(sq / (double)n + eps);
    for (int64_t i = 0; i < n; i++) out[r * n + i] = xr[i] * f * (w ? w[i] : 1.0);
  }
}

/* mean and biased variance of n values at stride 1 */
static void ref_stats_of(const double *x, int64_t n, double *mean, double *var) {
  double s = 0, q = 0;
  for (int64_t i = 0; i < n; i++) s += x[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) q += (x[i] - *mean) * (x[i] - *mean);
  *var = q / (double)n;
}

void ref_group_norm(const double *x, int64_t n, int64_t c, int64_t spatial, int64_t groups,
                    const double *w, const double *b, double eps, double *out, double *mean,
                    double *rstd) {
  int64_t per = c / groups, len = per * spatial;
  for (int64_t i = 0; i < n; i++)
    for (int64_t g = 0; g < groups; g++) {
      int64_t base = (i * c + g * per) * spatial;
      double m, v;
      ref_stats_of(x + base, len, &m, &v);
      double r = 1.0 / sqrt(v + eps);
      if (mean) mean[i * groups + g] = m;
      if (rstd) rstd[i * groups + g] = r;
      for (int64_t k = 0; k < len; k++) {
        int64_t ch = g * per + k / spatial;
        out[base + k] = (x[base + k] - m) * r * (w ? w[ch] : 1.0) + (b ? b[ch] : 0.0);
      }
    }
}

void ref_batch_stats(const double *x, int64_t n, int64_t c, int64_t spatial, double *mean,
                     double *var) {
  for (int64_t ch = 0; ch < c; ch++) {
    double s = 0, q = 0, count = (double)(n * spatial);
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < spatial; k++) s += x[(i * c + ch) * spatial + k];
    mean[ch] = s / count;
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < spatial; k++) {
        double d = x[(i * c + ch) * spatial + k] - mean[ch];
        q += d * d;
      }
    var[ch] = q / count;
  }
}

void ref_batch_norm(const double *x, int64_t n, int64_t c, int64_t spatial, const double *mean,
                    const double *var, const double *w, const double *b, double eps, double *out) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t ch = 0; ch < c; ch++)
      for (int64_t k = 0; k < spatial; k++) {
        int64_t at = (i * c + ch) * spatial + k;
        out[at] = (x[at] - mean[ch]) / sqrt(var[ch] + eps) * (w ? w[ch] : 1.0) +
                  (b ? b[ch] : 0.0);
      }
}

double ref_cross_entropy(const double *x, const int64_t *target, int64_t n, int64_t c,
                         int64_t inner, int64_t ignore_index, double ls) {
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < inner; j++) {
      int64_t t = target[i * inner + j];
      if (t == ignore_index) continue;
      const double *row = x + i * c * inner + j;
      double m = -INFINITY, s = 0, sum = 0;
      for (int64_t k = 0; k < c; k++) m = row[k * inner] > m ? row[k * inner] : m;
      for (int64_t k = 0; k < c; k++) s += exp(row[k * inner] - m), sum += row[k * inner];
      double lse = m + log(s);
      total += (1 - ls) * (lse - row[t * inner]) + ls * (lse - sum / (double)c);
      count++;
    }
  return count ? total / (double)count : NAN;
}

/* ---- convolution and pooling ---- */

void ref_conv2d(const double *x, const int64_t *xs, const double *w, const int64_t *ws,
                const double *bias, const int64_t *stride, const int64_t *padding,
                const int64_t *dilation, int64_t groups, double *out, int64_t *oh, int64_t *ow) {
  int64_t n = xs[0], c = xs[1], h = xs[2], wd = xs[3], o = ws[0], cg = ws[1];
  int64_t kh = ws[2], kw = ws[3], og = o / groups;
  *oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  *ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  for (int64_t b = 0; b < n; b++)
    for (int64_t oc = 0; oc < o; oc++)
      for (int64_t y = 0; y < *oh; y++)
        for (int64_t z = 0; z < *ow; z++) {
          double s = bias ? bias[oc] : 0.0;
          for (int64_t ic = 0; ic < cg; ic++)
            for (int64_t i = 0; i < kh; i++)
              for (int64_t j = 0; j < kw; j++) {
                int64_t iy = y * stride[0] - padding[0] + i * dilation[0];
                int64_t iz = z * stride[1] - padding[1] + j * dilation[1];
                if (iy < 0 || iy >= h || iz < 0 || iz >= wd) continue;
                int64_t chan = (oc / og) * cg + ic;
                s += w[((oc * cg + ic) * kh + i) * kw + j] * x[((b * c + chan) * h + iy) * wd + iz];
              }
          out[((b * o + oc) * *oh + y) * *ow + z] = s;
        }
}

void ref_pool2d(int is_max, const double *x, int64_t planes, int64_t h, int64_t w,
                const int64_t *kernel, const int64_t *stride, const int64_t *padding, double *out,
                double *index, int64_t *oh, int64_t *ow) {
  *oh = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
  *ow = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
  for (int64_t p = 0; p < planes; p++)
    for (int64_t y = 0; y < *oh; y++)
      for (int64_t z = 0; z < *ow; z++) {
        double best = -INFINITY, sum = 0;
        int64_t at = -1;
        for (int64_t i = 0; i < kernel[0]; i++)
          for (int64_t j = 0; j < kernel[1]; j++) {
            int64_t iy = y * stride[0] - padding[0] + i, iz = z * stride[1] - padding[1] + j;
            if (iy < 0 || iy >= h || iz < 0 || iz >= w) continue; /* padding: 0 to the sum */
            double v = x[(p * h + iy) * w + iz];
            if (at < 0 || v > best || isnan(v)) best = v, at = iy * w + iz;
            sum += v;
          }
        int64_t k = (p * *oh + y) * *ow + z;
        out[k] = is_max ? best : sum / (double)(kernel[0] * kernel[1]);
        if (index) index[k] = (double)at;
      }
}

void ref_adaptive_avg_pool2d(const double *x, int64_t planes, int64_t h, int64_t w, int64_t oh,
                             int64_t ow, double *out) {
  for (int64_t p = 0; p < planes; p++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t z = 0; z < ow; z++) {
        int64_t y0 = (int64_t)floor((double)(y * h) / (double)oh);
        int64_t y1 = (int64_t)ceil((double)((y + 1) * h) / (double)oh);
        int64_t z0 = (int64_t)floor((double)(z * w) / (double)ow);
        int64_t z1 = (int64_t)ceil((double)((z + 1) * w) / (double)ow);
        double sum = 0;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t iz = z0; iz < z1; iz++) sum += x[(p * h + iy) * w + iz];
        out[(p * oh + y) * ow + z] = sum / (double)((y1 - y0) * (z1 - z0));
      }
}

void ref_attention(const double *q, const double *k, const double *v, const double *bias,
                   int64_t batch, int64_t len, int64_t keys, int64_t e, int64_t ev, int causal,
                   double scale, double *out) {
  double *w = malloc(sizeof(double) * (size_t)(keys ? keys : 1));
  for (int64_t b = 0; b < batch; b++)
    for (int64_t i = 0; i < len; i++) {
      const double *qi = q + (b * len + i) * e;
      double mx = -INFINITY;
      for (int64_t j = 0; j < keys; j++) {
        double s = 0;
        for (int64_t c = 0; c < e; c++) s += qi[c] * k[(b * keys + j) * e + c];
        s *= scale;
        if (bias) s += bias[(b * len + i) * keys + j];
        if (causal && j > i) s = -INFINITY;
        w[j] = s;
        if (s > mx || isnan(s)) mx = isnan(mx) ? mx : s;
      }
      double sum = 0;
      for (int64_t j = 0; j < keys; j++) sum += w[j] = exp(w[j] - mx);
      double *oi = out + (b * len + i) * ev;
      for (int64_t c = 0; c < ev; c++) {
        double acc = 0;
        for (int64_t j = 0; j < keys; j++) acc += w[j] / sum * v[(b * keys + j) * ev + c];
        oi[c] = acc;
      }
    }
  free(w);
}
