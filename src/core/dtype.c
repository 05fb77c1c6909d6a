/*
 * dtype.c - dtype names and sizes, promotion, scalar conversions.
 */
#include "core/dtype.h"

#include <stdbool.h>

static const struct {
  const char *name;
  size_t size;
} dtype_facts[MTI_NUM_DTYPES] = {
#define MT_DTYPE(NAME, name, size) [MT_##NAME] = {#name, size},
#include "core/dtypes.def"
#undef MT_DTYPE
};

size_t mt_dtype_size(mt_dtype d) { return mti_dtype_valid((int)d) ? dtype_facts[d].size : 0; }

const char *mt_dtype_name(mt_dtype d) {
  return mti_dtype_valid((int)d) ? dtype_facts[d].name : "invalid";
}

/* Signed integer of at least `bytes` bytes (int64 at most). */
static mt_dtype signed_int_of_size(size_t bytes) {
  if (bytes <= 1) return MT_INT8;
  if (bytes <= 2) return MT_INT16;
  if (bytes <= 4) return MT_INT32;
  return MT_INT64;
}

mt_dtype mti_promote(mt_dtype a, mt_dtype b) {
  if (a == b) return a;
  if (a == MT_BOOL) return b;
  if (b == MT_BOOL) return a;
  bool af = mti_dtype_is_float(a), bf = mti_dtype_is_float(b);
  if (af && bf) {
    if ((a == MT_FLOAT16 && b == MT_BFLOAT16) || (a == MT_BFLOAT16 && b == MT_FLOAT16))
      return MT_FLOAT32;
    return a > b ? a : b; /* f16/bf16 < f32 < f64 in enum order */
  }
  if (af) return a;
  if (bf) return b;
  /* Two integers. uint8 is the only unsigned one: with a signed type it
   * needs a signed type wider than one byte. */
  if (a == MT_UINT8 || b == MT_UINT8) {
    mt_dtype other = a == MT_UINT8 ? b : a;
    return signed_int_of_size(mt_dtype_size(other) > 1 ? mt_dtype_size(other) : 2);
  }
  return a > b ? a : b;
}

double mti_load_double(const void *p, mt_dtype d) {
  switch (d) {
  case MT_BOOL: return *(const uint8_t *)p != 0;
  case MT_UINT8: return *(const uint8_t *)p;
  case MT_INT8: return *(const int8_t *)p;
  case MT_INT16: return *(const int16_t *)p;
  case MT_INT32: return *(const int32_t *)p;
  case MT_INT64: return (double)*(const int64_t *)p;
  case MT_FLOAT16: return mti_f16_to_f32(*(const uint16_t *)p);
  case MT_BFLOAT16: return mti_bf16_to_f32(*(const uint16_t *)p);
  case MT_FLOAT32: return *(const float *)p;
  case MT_FLOAT64: return *(const double *)p;
  }
  return 0.0;
}

int64_t mti_double_to_int(double v, mt_dtype d) {
  if (isnan(v)) return 0;
  double lo, hi;
  switch (d) {
  case MT_UINT8: lo = 0; hi = 255; break;
  case MT_INT8: lo = -128; hi = 127; break;
  case MT_INT16: lo = -32768; hi = 32767; break;
  case MT_INT32: lo = -2147483648.0; hi = 2147483647.0; break;
  default:
    /* int64: 2^63 is not representable, so compare against it exclusively. */
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
  }
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return (int64_t)hi;
  return (int64_t)v;
}

void mti_store_double(void *p, mt_dtype d, double v) {
  switch (d) {
  case MT_BOOL: *(uint8_t *)p = v != 0.0; break; /* NaN != 0 is true */
  case MT_UINT8: *(uint8_t *)p = (uint8_t)mti_double_to_int(v, d); break;
  case MT_INT8: *(int8_t *)p = (int8_t)mti_double_to_int(v, d); break;
  case MT_INT16: *(int16_t *)p = (int16_t)mti_double_to_int(v, d); break;
  case MT_INT32: *(int32_t *)p = (int32_t)mti_double_to_int(v, d); break;
  case MT_INT64: *(int64_t *)p = mti_double_to_int(v, d); break;
  case MT_FLOAT16: *(uint16_t *)p = mti_f32_to_f16((float)v); break;
  case MT_BFLOAT16: *(uint16_t *)p = mti_f32_to_bf16((float)v); break;
  case MT_FLOAT32: *(float *)p = (float)v; break;
  case MT_FLOAT64: *(double *)p = v; break;
  }
}
